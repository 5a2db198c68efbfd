"""``mlmtool explain``: SHAP values for a masked-word prediction."""

from __future__ import annotations

import json

import click

from ._common import load_model, model_options, overwrite_option, prepare_output_dir, read_texts

#: Files written into ``--out DIR``.
OUTPUT_FILES = ("explanation.html", "explanation.png", "explanation.json")


@click.command()
@click.argument("text", nargs=-1)
@click.option("-t", "--target", default=None, metavar="WORD",
              help="Explain the probability of this word (one vocabulary token).  [default: the top prediction]")
@click.option("--mask", "mask_index", type=click.IntRange(1, None), default=1, show_default=True,
              help="Which [MASK] to explain when the text has several (counted from 1).")
@model_options
@click.option("--max-evals", type=click.IntRange(3, None), default=500, show_default=True,
              help="SHAP's budget of model evaluations (more = finer attribution, slower).")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write explanation.html, explanation.png (bar chart) and explanation.json here.")
@click.option("--json", "as_json", is_flag=True, help="Print the SHAP values and base value as JSON.")
@click.option("-b", "--batch-size", default=32, show_default=True, type=click.IntRange(1, None),
              help="Sentences per forward pass.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for SHAP's tie-breaking.")
@overwrite_option
def explain(text, target, mask_index, model, lang, max_evals, out_dir, as_json, batch_size, seed, overwrite):
    """Explain with SHAP which words of TEXT make the model predict a word at [MASK].

    Each word gets a SHAP value: how much it raises (red) or lowers (blue) the probability of
    the predicted word (or --target) at the mask. The values add up to
    p(target | sentence) minus the base value, p(target) with every word hidden.

    \b
    Examples:
      mlmtool explain "The [MASK] sat on the mat."
      mlmtool explain "The [MASK] sat on the mat." --target dog --out why/
      mlmtool explain "Paris is the [MASK] of France." --json
    """
    from rich.console import Console

    from ..analysis.explain import explain as run_explain
    from ..render.shap_view import bar_chart, render_html, render_terminal

    texts = [" ".join(text)] if text and "-" not in text else read_texts(text)
    if len(texts) != 1:
        raise click.UsageError("explain takes one sentence")
    out = prepare_output_dir(out_dir, overwrite, list(OUTPUT_FILES)) if out_dir else None
    lm = load_model(model, lang)
    result = run_explain(lm, texts[0], target=target, mask_index=mask_index, max_evals=max_evals,
                         batch_size=batch_size, seed=seed, progress=None)
    payload = result.to_dict()
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        Console(highlight=False, soft_wrap=True).print(render_terminal(result))
    if out is not None:
        render_html(result).save(out / "explanation.html")
        bar_chart(result).savefig(out / "explanation.png", dpi=150)
        (out / "explanation.json").write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n",
                                              encoding="utf-8")
        click.echo(f"Wrote {', '.join(OUTPUT_FILES)} to {out}/", err=True)
