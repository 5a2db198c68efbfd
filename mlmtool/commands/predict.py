"""``mlmtool predict`` and ``mlmtool attention``."""

from __future__ import annotations

import json

import click

from ._common import (check_output_file, load_model, model_options, overwrite_option, prepare_output_dir,
                      read_texts)


def _attention_options(func):
    func = click.option("-f", "--format", "fmt", type=click.Choice(["png", "svg"]), default="png",
                        show_default=True, help="Diagram file format.")(func)
    return func


def _sentences(text: tuple[str, ...]) -> list[str]:
    """The words of TEXT joined into one sentence, or `-`/a file/nothing via :func:`read_texts`."""
    return [" ".join(text)] if text and "-" not in text else read_texts(text)


def _no_head_line(lm) -> str:
    """Why a model without an MLM head gives attention but no predictions."""
    return (f"No predictions: '{lm.name}' has no masked-LM head; predictions need an MLM head "
            "(the attention output does not).")


def _write_diagrams(lm, result, out_dir: str, fmt: str, overwrite: bool) -> int:
    """Write all head diagrams of an attention ``result``; return the file count."""
    from ..render.diagrams import diagram_filename, save_attention_diagrams

    names = [diagram_filename(l, h, fmt) for l in range(1, lm.num_layers + 1)
             for h in range(1, lm.num_heads + 1)] + [f"overview.{fmt}"]
    out = prepare_output_dir(out_dir, overwrite, names)
    paths = save_attention_diagrams(result, out, fmt)
    click.echo(f"Wrote {len(paths) - 1} head diagrams ({lm.num_layers} layers x {lm.num_heads} heads) "
               f"and overview.{fmt} to {out}/", err=True)
    return len(paths)


@click.command()
@click.argument("text", nargs=-1)
@click.option("-k", "--top-k", default=5, show_default=True, type=click.IntRange(1, None),
              help="Candidates per mask.")
@model_options
@click.option("--json", "as_json", is_flag=True, help="Print predictions as JSON.")
@click.option("-b", "--batch-size", default=32, show_default=True, type=click.IntRange(1, None),
              help="Sentences per forward pass (with `-`).")
@click.option("-a", "--attention-dir", type=click.Path(file_okay=False), default=None,
              help="Also write one attention diagram per head (and overview) here.")
@_attention_options
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Also write one self-contained interactive HTML view (predictions + all heads).")
@overwrite_option
def predict(text, top_k, model, lang, as_json, batch_size, attention_dir, fmt, html_path, overwrite):
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

    texts = _sentences(text)
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
            _write_diagrams(lm, att, attention_dir, fmt, overwrite)
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
