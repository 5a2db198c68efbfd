"""``mlmtool embed``: contextual word embeddings projected to 2-D (PCA or t-SNE)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..analysis.embed import METHODS
from ._common import (batch_size_option, check_output_file, json_option, load_model, model_options,
                      output_option, overwrite_option, prepare_output_dir, read_sentences, text_arguments)

#: What ``-o/--output DIR`` writes, by kind: the PNG map, the HTML map, the points, the vectors.
OUTPUT_FILES = {"png": "embeddings.png", "html": "embeddings.html", "json": "embeddings.json",
                "vectors": "vectors.npz"}

#: ``-o`` values that name a file (the meaning of ``-o`` in earlier releases) → the flag to use.
_FILE_FLAGS = {".png": "--png", ".html": "--html", ".htm": "--html", ".npz": "--save-vectors"}


def _file_name_hint(value: str | None) -> None:
    """``-o plot.png`` wrote a PNG in earlier releases; now ``-o`` is a directory."""
    if value is not None and not Path(value).is_dir():
        suffix = Path(value).suffix.lower()
        if suffix in _FILE_FLAGS or suffix in (".svg", ".pdf", ".jpg", ".jpeg", ".json"):
            flag = _FILE_FLAGS.get(suffix, "--png")
            raise click.UsageError(f"-o/--output is the directory embed writes into; to write the one "
                                   f"file '{value}', use {flag} {value}")


def _old_out(value: str | None) -> None:
    """``--out FILE`` was the PNG file in earlier releases."""
    if value is not None:
        raise click.UsageError(f"--out is now --png FILE (the PNG file) or -o/--output DIR (the directory for "
                               f"all files); e.g. --png {value}")


def _several_sentences_hint(text) -> None:
    """Earlier releases read each TEXT argument as a sentence (and a file name as its lines)."""
    if len(text) > 1 and any(t == "-" or " " in t.strip() or Path(t).is_file() for t in text):
        raise click.UsageError("TEXT is ONE sentence; to map several, write one per line in a file "
                               "and use -i FILE (or `-` to read them from stdin)")


@click.command()
@text_arguments
@click.option("--method", type=click.Choice(METHODS), default=METHODS[0], show_default=True,
              help="2-D projection (scikit-learn PCA or t-SNE).")
@click.option("--layer", type=int, default=None, metavar="N",
              help="Hidden-state layer: 0 = input embeddings, 1..L = output of layer N.  [default: last]")
@model_options
@click.option("--color", "--colour", "color", type=click.Choice(["sentence", "word"]), default="sentence",
              show_default=True, help="Colour points by sentence, or by word (repeated words get colours).")
@click.option("--keep-special", is_flag=True, help="Also plot special tokens ([CLS], [SEP], ...).")
@click.option("--perplexity", type=float, default=None,
              help="t-SNE perplexity.  [default: 30, lowered automatically for few words]")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed for t-SNE.")
@output_option(what="embeddings.png, embeddings.html, embeddings.json and vectors.npz")
@click.option("--out", "old_out", default=None, hidden=True, expose_value=False,
              callback=lambda ctx, param, value: _old_out(value))
@click.option("--png", "png_out", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help=f"Write the scatter plot as this PNG file.  [default: {OUTPUT_FILES['png']} when no "
                   "other output is asked for]")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write an interactive, self-contained HTML scatter to this file.")
@click.option("--save-vectors", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Save the word vectors and labels to this .npz file.")
@json_option
@batch_size_option(16)
@overwrite_option
def embed(text, input_file, method, layer, model, lang, color, keep_special, perplexity, seed, output, png_out,
          html_out, save_vectors, as_json, batch_size, overwrite):
    """Map the words of sentences to 2-D by their contextual embeddings.

    Every word becomes one point (sub-word pieces averaged), so the same word in different
    sentences can be compared. TEXT is one sentence; `-` reads one sentence per line from
    stdin and -i FILE one per line from FILE. -o DIR writes embeddings.png, embeddings.html,
    embeddings.json and vectors.npz into DIR; --png / --html / --save-vectors FILE write one
    file each.

    \b
    Examples:
      printf 'He sat on the bank of the river.\\nThe bank lends money.\\n' | mlmtool embed -m minilm -
      mlmtool embed -i sentences.txt --method tsne --layer 3 --html plot.html
      mlmtool embed -i sentences.txt -o map/ --color word
    """
    from ..analysis.embed import project, word_vectors

    _file_name_hint(output)
    _several_sentences_hint(text)
    texts = read_sentences(text, input_file)
    if output is None and png_out is None and html_out is None and save_vectors is None and not as_json:
        png_out = OUTPUT_FILES["png"]
    if png_out is not None and not png_out.lower().endswith(".png"):
        raise click.BadParameter("the plot is written as PNG; give a file name ending in .png",
                                 param_hint="'--png'")
    if save_vectors is not None and not save_vectors.endswith(".npz"):
        raise click.BadParameter("vectors are saved as NumPy .npz; give a name ending in .npz",
                                 param_hint="'--save-vectors'")
    files = [p for p in (png_out, html_out, save_vectors) if p is not None]
    if len({Path(p).resolve() for p in files}) != len(files):
        raise click.UsageError("--png, --html and --save-vectors must be different files")
    for path in files:  # refuse before any computation, so nothing is lost
        check_output_file(path, overwrite)
    out_dir = prepare_output_dir(output, overwrite, list(OUTPUT_FILES.values())) if output else None

    lm = load_model(model, lang)
    vectors = word_vectors(lm, texts, layer=layer, keep_special=keep_special, batch_size=batch_size)
    proj = project(vectors, method=method, perplexity=perplexity, seed=seed)
    for note in proj.notes:
        click.echo(f"Note: {note}", err=True)

    targets = {"png": [png_out], "html": [html_out], "vectors": [save_vectors], "json": []}
    if out_dir is not None:
        for kind, name in OUTPUT_FILES.items():
            targets[kind].append(str(out_dir / name))
    written = write_outputs(proj, vectors, targets, color)
    if as_json:
        click.echo(json.dumps(proj.to_dict(), ensure_ascii=False, indent=2))
    click.echo(summary_line(proj, lm.num_layers), err=True)
    if written:
        click.echo("Wrote " + ", ".join(written), err=True)


def write_outputs(proj, vectors, targets: dict[str, list], color: str = "sentence") -> list[str]:
    """Write a projection's files (``mlmtool embed`` and the shell).

    Args:
        proj: the :class:`~mlmtool.analysis.embed.Projection`; vectors: its
            :class:`~mlmtool.analysis.embed.WordVectors`.
        targets: paths by kind, None entries skipped: ``png`` (the scatter plot, 150 dpi),
            ``html`` (the interactive scatter), ``vectors`` (``.npz``), ``json`` (the points).
        color: ``"sentence"`` (default) or ``"word"``, as ``--color``.

    Returns:
        The paths written, in the order of ``targets``.
    """
    from ..render.embed_view import render_embedding, render_embedding_html

    written = []
    for kind, paths in targets.items():
        for path in filter(None, paths):
            if kind == "png":
                render_embedding(proj, color=color).savefig(path, dpi=150)
            elif kind == "html":
                render_embedding_html(proj, color=color).save(path)
            elif kind == "vectors":
                vectors.save(path)
            else:
                proj.save(path)
            written.append(path)
    return written


def summary_line(proj, num_layers: int) -> str:
    """``"12 words from 2 sentence(s), layer 6 of 6, PCA; the two axes explain 41.0% of the
    variance"``: what a projection shows, for people (``mlmtool embed`` and the shell)."""
    layer_txt = "input embeddings (layer 0)" if proj.layer == 0 else f"layer {proj.layer} of {num_layers}"
    extra = ""
    if proj.explained_variance:
        extra = f"; the two axes explain {sum(proj.explained_variance) * 100:.1f}% of the variance"
    return (f"{len(proj.words)} words from {len(proj.sentences)} sentence(s), {layer_txt}, "
            f"{'PCA' if proj.method == 'pca' else 't-SNE'}{extra}")
