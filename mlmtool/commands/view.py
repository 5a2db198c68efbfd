"""``mlmtool view``: one self-contained interactive HTML page for a sentence."""

from __future__ import annotations

import click

from ..analysis.view import build_view  # the library's; also importable from here, as before
from ._diagrams import words_option
from ._common import (check_output_file, load_model, model_options, one_sentence, output_option, overwrite_option,
                      read_sentences, text_arguments, top_k_option)

__all__ = ["build_view", "view"]


@click.command()
@text_arguments
@output_option(what="view.html")
@click.option("--html", "html_path", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the page to exactly this file [default: view.html, or DIR/view.html with -o].")
@top_k_option()
@click.option("--heads", "heads_file", type=click.Path(dir_okay=False), default=None,
              help="heads.json from `mlmtool heads` (or {\"L3H10\": \"label\"}): label each head.")
@click.option("--precision", type=click.Choice(["uint8", "float16"]), default="uint8", show_default=True,
              help="Attention in the page: 8-bit levels (smallest) or half floats.")
@words_option
@model_options
@overwrite_option
@click.option("--open", "open_page", is_flag=True, help="Open the page in the default browser.")
def view(text, input_file, output, html_path, top_k, heads_file, precision, words, model, lang, overwrite,
         open_page):
    """Write one interactive HTML page for TEXT: predictions and every attention head.

    The page is a single file that works offline (nothing is downloaded), opens by
    double-click and shows: the top-k words for each [MASK] with probabilities, a layers x
    heads grid of thumbnails, and for the clicked head a large heatmap and a line view
    (hover a token to see its links), with filters and SVG/PNG download. Layers and heads
    are numbered from 1. Models without an MLM head get the attention only. Where a word has
    several pieces, a "Words" switch shows one row and column per word (Clark et al. 2019);
    --words opens the page with it on.

    \b
    Examples:
      mlmtool view "The [MASK] sat on the mat." --html report.html -k 5
      mlmtool view -m minilm "The cat sat on the mat." -o out/
      mlmtool view "The [MASK] ran." --heads out/heads.json --html report.html
      mlmtool view "I like toothpaste." --words
    """
    from pathlib import Path

    from ..analysis.arch import attention_heads, check_attention, layout
    from ..render.html_view import head_labels_from, load_head_labels

    if output and Path(output).suffix.lower() in (".html", ".htm"):
        raise click.UsageError(f"-o/--output now names a directory; to write the page '{output}' use "
                               f"--html {output}")
    if output and html_path:
        raise click.UsageError("give -o/--output DIR or --html FILE, not both")
    sentence = one_sentence(read_sentences(text, input_file), "view")
    if output:
        Path(output).mkdir(parents=True, exist_ok=True)
    out = check_output_file(Path(output) / "view.html" if output else (html_path or "view.html"), overwrite)
    labels = load_head_labels(heads_file) if heads_file else None
    lm = load_model(model, lang)
    check_attention(lm)
    heads = attention_heads(lm)
    labels = head_labels_from(labels, lm.num_layers, heads) if labels else None
    page, note = build_view(lm, sentence, top_k=top_k, head_labels=labels, precision=precision,
                            words=True if words else None)
    page.save(out)
    size = Path(out).stat().st_size
    for line in ([note] if note else []) + [f"Note: {n}." for n in layout(lm).notes]:
        click.echo(line, err=True)
    click.echo(f"Wrote {out} ({size / 1e6:.2f} MB, {lm.num_layers} layers x {heads} heads); "
               "open it in a browser.", err=True)
    if open_page:
        click.launch(str(Path(out).resolve()))
