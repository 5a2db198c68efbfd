"""``mlmtool embed``: contextual word embeddings projected to 2-D (PCA or t-SNE)."""

from __future__ import annotations

import json

import click

from ._common import check_output_file, load_model, model_options, overwrite_option, read_texts


@click.command()
@click.argument("text", nargs=-1)
@click.option("--method", type=click.Choice(["pca", "tsne"]), default="pca", show_default=True,
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
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None,
              help="Write the scatter plot as PNG here.  [default: embeddings.png when no other output is asked for]")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), default=None,
              help="Write an interactive, self-contained HTML scatter here.")
@click.option("--save-vectors", type=click.Path(dir_okay=False), default=None,
              help="Save the word vectors and labels to this .npz file.")
@click.option("--json", "as_json", is_flag=True, help="Print the 2-D points as JSON on stdout.")
@click.option("-b", "--batch-size", default=16, show_default=True, type=click.IntRange(1, None),
              help="Sentences per forward pass.")
@overwrite_option
def embed(text, method, layer, model, lang, color, keep_special, perplexity, seed, out, html_out,
          save_vectors, as_json, batch_size, overwrite):
    """Map the words of TEXT to 2-D by their contextual embeddings.

    Each TEXT argument is one sentence; `-` reads one sentence per line from stdin and a
    file path reads its lines. Every word becomes one point (sub-word pieces averaged), so
    the same word in different sentences can be compared.

    \b
    Examples:
      mlmtool embed -m minilm "He sat on the bank of the river." "The bank lends money."
      mlmtool embed sentences.txt --method tsne --layer 3 --html plot.html
      mlmtool embed - --save-vectors vectors.npz --color word < sentences.txt
    """
    from ..analysis.embed import project, word_vectors
    from ..render.scatter import scatter_figure, scatter_html

    texts = read_texts(text)
    if out is None and html_out is None and save_vectors is None and not as_json:
        out = "embeddings.png"
    if out is not None and not out.lower().endswith(".png"):
        raise click.BadParameter("the plot is written as PNG; give a file name ending in .png",
                                 param_hint="'-o' / '--out'")
    if save_vectors is not None and not save_vectors.endswith(".npz"):
        raise click.BadParameter("vectors are saved as NumPy .npz; give a name ending in .npz",
                                 param_hint="'--save-vectors'")
    targets = [p for p in (out, html_out, save_vectors) if p is not None]
    if len(set(targets)) != len(targets):
        raise click.UsageError("--out, --html and --save-vectors must be different files")
    for path in targets:  # refuse before any computation, so nothing is lost
        check_output_file(path, overwrite)

    lm = load_model(model, lang)
    vectors = word_vectors(lm, texts, layer=layer, keep_special=keep_special, batch_size=batch_size)
    proj = project(vectors, method=method, perplexity=perplexity, seed=seed)
    for note in proj.notes:
        click.echo(f"Note: {note}", err=True)

    written = []
    if save_vectors is not None:
        written.append(str(vectors.save(save_vectors)))
    if out is not None:
        scatter_figure(proj, color=color).savefig(out, dpi=150)
        written.append(out)
    if html_out is not None:
        written.append(str(scatter_html(proj, color=color).save(html_out)))
    if as_json:
        click.echo(json.dumps(proj.to_dict(), ensure_ascii=False, indent=2))
    layer_txt = "input embeddings (layer 0)" if proj.layer == 0 else f"layer {proj.layer} of {lm.num_layers}"
    extra = ""
    if proj.explained_variance:
        extra = f"; the two axes explain {sum(proj.explained_variance) * 100:.1f}% of the variance"
    click.echo(f"{len(vectors)} words from {len(texts)} sentence(s), {layer_txt}, "
               f"{'PCA' if method == 'pca' else 't-SNE'}{extra}", err=True)
    if written:
        click.echo("Wrote " + ", ".join(written), err=True)
