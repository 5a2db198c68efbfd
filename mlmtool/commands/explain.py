"""``mlmtool explain``: SHAP values for a masked-word prediction."""

from __future__ import annotations

import json

import click

from ..defaults import MAX_EVALS
from ._common import (batch_size_option, json_option, load_model, model_options, one_sentence, output_option,
                      overwrite_option, prepare_output_dir, read_sentences, text_arguments)

#: Files written into ``-o/--output DIR``.
OUTPUT_FILES = ("explanation.html", "explanation.png", "explanation.json")


def _old_t(ctx, param, value):
    """``-t`` was ``--target`` here but is ``--threshold`` in ``heads``: say which to use."""
    if value is not None:
        raise click.UsageError("explain has no -t (it means --threshold in heads); use --target WORD")


@click.command()
@text_arguments
@click.option("--target", default=None, metavar="WORD",
              help="Explain the probability of this word (a word of several pieces: its PLL-word-l2r probability, predict's score).  [default: predict's top word]")
@click.option("-t", "old_t", hidden=True, expose_value=False, callback=_old_t)
@click.option("--mask", "mask_index", type=click.IntRange(1, None), default=1, show_default=True,
              help="Which [MASK] to explain when the text has several (counted from 1).")
@model_options
@click.option("--max-evals", type=click.IntRange(3, None), default=MAX_EVALS, show_default=True,
              help="SHAP's budget of model evaluations (more = finer attribution, slower).")
@output_option(what="explanation.html (page), explanation.png (bar chart) and explanation.json")
@click.option("--out", "old_out", default=None, hidden=True, type=click.Path(file_okay=False))
@json_option
@batch_size_option(32)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for SHAP's tie-breaking.")
@overwrite_option
def explain(text, input_file, target, mask_index, model, lang, max_evals, output, old_out, as_json, batch_size,
            seed, overwrite):
    """Explain with SHAP which words of TEXT make the model predict a word at [MASK].

    Each word gets a SHAP value: how much it raises (red) or lowers (blue) the probability of
    the predicted word (or --target) at the mask. The values add up to
    p(target | sentence) minus the base value, p(target) with every word hidden.
    TEXT is one sentence (`-` or -i FILE: a single line).

    \b
    Examples:
      mlmtool explain "The [MASK] sat on the mat."
      mlmtool explain "The [MASK] sat on the mat." --target dog -o why/
      mlmtool explain "Paris is the [MASK] of France." --json
    """
    from rich.console import Console

    from ..analysis.explain import explain as run_explain
    from ..render.explain_view import render_explain_text

    if old_out is not None:  # the same meaning (a directory) under its earlier name
        click.echo("Note: --out is now -o/--output.", err=True)
        output = old_out
    sentence = one_sentence(read_sentences(text, input_file), "explain")
    out = prepare_output_dir(output, overwrite, list(OUTPUT_FILES)) if output else None
    lm = load_model(model, lang)
    result = run_explain(lm, sentence, target=target, mask_index=mask_index, max_evals=max_evals,
                         batch_size=batch_size, seed=seed, progress=None)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        Console(highlight=False, soft_wrap=True).print(render_explain_text(result))
    if out is not None:
        write_files(result, out)
        click.echo(f"Wrote {', '.join(OUTPUT_FILES)} to {out}/", err=True)


def write_files(result, out) -> None:
    """Write :data:`OUTPUT_FILES` (page, bar chart, JSON) of an ``ExplainResult`` into folder ``out``."""
    from ..render.explain_view import render_explain_bars, render_explain_html

    render_explain_html(result).save(out / OUTPUT_FILES[0])
    render_explain_bars(result).savefig(out / OUTPUT_FILES[1], dpi=150)
    result.save(out / OUTPUT_FILES[2])
