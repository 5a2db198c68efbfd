"""``mlmtool score``: pseudo-log-likelihood of sentences, and accuracy on minimal pairs."""

from __future__ import annotations

import json

import click

from ..analysis.score import BATCH_SIZE, VARIANTS
from ._common import (check_output_file, json_option, load_model, model_options, overwrite_option, read_sentences,
                      text_arguments)


@click.command("score")
@text_arguments
@click.option("--pairs", "pairs_file", type=click.Path(dir_okay=False), default=None, metavar="FILE.tsv",
              help="Minimal pairs, one 'good<TAB>bad[<TAB>phenomenon]' per line: print accuracy: N/M.")
@click.option("--variant", type=click.Choice(VARIANTS), default=VARIANTS[0], show_default=True,
              help="PLL of Salazar et al. 2020, or word-l2r of Kauf & Ivanova 2023 (later pieces of the "
                   "same word masked too).")
@model_options
@json_option
@click.option("-b", "--batch-size", default=BATCH_SIZE, show_default=True, type=click.IntRange(1, None),
              help="Masked copies per forward pass (bucketed by length).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Also write the token bars as one self-contained HTML page.")
@click.option("--png", "png_path", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Also write a bar chart of each token's -log p.")
@overwrite_option
def score(text, input_file, pairs_file, variant, model, lang, as_json, batch_size, html_path, png_path, overwrite):
    """Score TEXT by pseudo-log-likelihood (PLL) and pseudo-perplexity (PPPL).

    Each token is masked in turn and the model's log-probability of the original token
    is taken (Salazar et al. 2020, "Masked Language Model Scoring"); PLL is their sum
    (natural log, higher = more acceptable), PPPL = exp(-PLL / tokens). The terminal shows
    one bar per token, its length -log p.

    TEXT is one sentence; several quoted sentences are scored one by one; `-` and -i FILE
    read one sentence per line.

    \b
    Examples:
      mlmtool score "The cats sleep on the sofa."
      mlmtool score "The keys are on the table." "The keys is on the table."
      mlmtool score -i sentences.txt --json
      mlmtool score --pairs datasets/minimal_pairs.tsv
    """
    if pairs_file:
        if text or input_file:
            raise click.UsageError("give sentences (TEXT, -, -i FILE) or --pairs FILE, not both")
        if html_path or png_path:
            raise click.UsageError("--html and --png draw sentence scores; they do not go with --pairs")
        _score_pairs(pairs_file, variant, model, lang, as_json, batch_size)
        return
    # several quoted sentences ("A b." "C d.") are one sentence each; bare words are one sentence
    several = len(text) > 1 and all(" " in t.strip() for t in text)
    texts = list(text) if several else read_sentences(text, input_file)
    for path in (html_path, png_path):
        if path:
            check_output_file(path, overwrite)
    lm = load_model(model, lang)
    from ..analysis.score import score_sentences

    scores = score_sentences(lm, texts, variant=variant, batch_size=batch_size)
    if html_path:
        from ..render.score_view import render_score_html

        render_score_html(scores, title=f"mlmtool score: {lm.name}").save(html_path)
        click.echo(f"Wrote {html_path}", err=True)
    if png_path:
        from ..render.score_view import render_score_png

        render_score_png(scores).savefig(png_path, dpi=110)
        click.echo(f"Wrote {png_path}", err=True)
    if as_json:
        payload = [s.to_dict() for s in scores]
        one = text and text != ("-",) and not several  # one TEXT sentence: an object, else a list
        click.echo(json.dumps(payload[0] if one else payload, ensure_ascii=False, indent=2))
        return
    from rich.console import Console

    from ..render.score_view import render_score_text

    Console(highlight=False, soft_wrap=True).print(render_score_text(scores))


def _score_pairs(pairs_file: str, variant: str, model, lang, as_json: bool, batch_size: int) -> None:
    """Print ``accuracy: N/M`` (and per phenomenon), or the per-pair PLLs as JSON."""
    from ..analysis.score import read_pairs, score_pairs

    pairs = read_pairs(pairs_file)  # bad lines are reported before the model loads
    lm = load_model(model, lang)
    result = score_pairs(lm, pairs, variant=variant, batch_size=batch_size)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    groups = result.by_phenomenon()
    if len(groups) > 1 or "" not in groups:
        width = max(len(k) for k in groups)
        for name, (c, t) in groups.items():
            click.echo(f"  {name or '(unlabelled)':<{width}}  {c}/{t}")
    click.echo(f"accuracy: {result.correct}/{result.total} ({100 * result.accuracy:.1f}%)")
