"""``mlmtool predict`` and ``mlmtool attention``."""

from __future__ import annotations

import json

import click

from ._common import (check_output_file, load_model, model_options, overwrite_option, read_sentences,
                      text_arguments)
from ._diagrams import attention_format_option, write_diagrams


def _no_head_line(lm) -> str:
    """Why a model without an MLM head gives attention but no predictions."""
    return (f"No predictions: '{lm.name}' has no masked-LM head; predictions need an MLM head "
            "(the attention output does not).")


@click.command()
@text_arguments
@click.option("-k", "--top-k", default=5, show_default=True, type=click.IntRange(1, None),
              help="Candidates per mask.")
@model_options
@click.option("--json", "as_json", is_flag=True, help="Print predictions as JSON.")
@click.option("-b", "--batch-size", default=32, show_default=True, type=click.IntRange(1, None),
              help="Sentences per forward pass (with `-`).")
@click.option("-a", "--attention-dir", type=click.Path(file_okay=False), default=None,
              help="Also write one attention diagram per head (and overview) here.")
@attention_format_option
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Also write one self-contained interactive HTML view (predictions + all heads).")
@overwrite_option
def predict(text, input_file, top_k, model, lang, as_json, batch_size, attention_dir, fmt, html_path, overwrite):
    """Predict the words hidden behind [MASK] in TEXT.

    Write [MASK] for each word to guess (it becomes the model's own mask token, e.g.
    <mask> for RoBERTa). TEXT may be several words, `-` to read one sentence per line
    from stdin, or nothing to be asked for it.

    \b
    Examples:
      mlmtool predict "The [MASK] sat on the mat." -k 3
      mlmtool predict -m minilm "The [MASK] sat on the mat." --attention-dir out/
      printf 'A [MASK] day.\\nI like [MASK].\\n' | mlmtool predict - --json
    """
    from ..analysis.predict import predict as run_predict

    texts = read_sentences(text, input_file)
    if (attention_dir or html_path) and len(texts) > 1:
        raise click.UsageError("--attention-dir and --html take one sentence, not several")
    if html_path:
        check_output_file(html_path, overwrite)
    lm = load_model(model, lang)
    results = run_predict(lm, texts, top_k=top_k, batch_size=batch_size) if lm.has_mlm_head else None
    if attention_dir or html_path:
        from ..analysis.attention import attention

        att = attention(lm, texts[0])
        if attention_dir:
            write_diagrams(lm, att, attention_dir, fmt, overwrite)
        if html_path:
            from ..render.html_view import render_view

            note = None if results else _no_head_line(lm)
            render_view(att, results[0] if results else None, note=note).save(html_path)
            click.echo(f"Wrote {html_path}", err=True)
    if results is None:
        if attention_dir or html_path:
            click.echo(_no_head_line(lm), err=True)
            return
        lm.require_mlm_head()
    if as_json:
        payload = [r.to_dict() for r in results]
        click.echo(json.dumps(payload[0] if len(payload) == 1 and text != ("-",) else payload,
                              ensure_ascii=False, indent=2))
        return
    _print_predictions(results)


def _print_predictions(results) -> None:
    """People's view: each filled sentence with its probability."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)
    for n, res in enumerate(results):
        if len(results) > 1:
            if n:
                console.print()
            console.print(f"[bold]{escape(res.text)}[/bold]")
        for mask in res.masks:
            if len(res.masks) > 1:
                console.print(f"[dim]mask {mask.index} of {len(res.masks)}:[/dim]")
            for cand in mask.candidates:
                console.print(f"{escape(cand.sequence)}  [cyan]({cand.score:.4f})[/cyan]")
