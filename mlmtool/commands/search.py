"""``mlmtool search``: the corpus words nearest a bracketed word, from an ``mlmtool index``."""

from __future__ import annotations

import json

import click

from ._common import check_output_file, json_option, overwrite_option


@click.command()
@click.argument("index_dir", type=click.Path(file_okay=False))
@click.argument("query", nargs=-1, required=True)
@click.option("--layer", type=int, default=None, metavar="N", help="Indexed layer to search.  [default: the last]")
@click.option("-k", "--top-k", "top_k", default=20, show_default=True, type=click.IntRange(1, None),
              help="Hits to show.")
@click.option("--same-word", "words", flag_value="same", help="Only hits that are the query's word.")
@click.option("--other-words", "words", flag_value="other", help="Only hits that are other words.")
@click.option("--pos", default=None, metavar="UPOS", help="Only hits with this UPOS tag (--conllu indexes).")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write the hits as one offline HTML page.")
@json_option
@overwrite_option
def search(index_dir, query, layer, top_k, words, pos, html_out, as_json, overwrite):
    """Find the corpus words the model sees like the [bracketed] word of QUERY
    (write \\[ and \\] for literal brackets, e.g. a [MASK] in the sentence).

    The model is the index's (named in its manifest). Prints a keyword-in-context table and
    a summary of the hits; --json prints them as JSON.

    \b
    Examples:
      mlmtool search bank-index "The [bank] of the river was muddy." -k 10
      mlmtool search bank-index "She paid at the [bank]." --other-words --json
    """
    from ..analysis.corpus.query import search as run_search
    from ..render.search_view import context_width, render_search_html, render_search_text

    if html_out is not None:
        check_output_file(html_out, overwrite)
    result = run_search(index_dir, " ".join(query), layer=layer, top_k=top_k, words=words or "any", pos=pos)
    if html_out is not None:
        render_search_html(result).save(html_out)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        from rich.console import Console

        console = Console()
        console.print(render_search_text(result, context_width(result, console.width)))
    if html_out is not None:
        click.echo(f"Wrote {html_out}", err=True)
