"""``mlmtool heads``: score every attention head on standard patterns and write the analysis."""

from __future__ import annotations

import json

import click

from ._common import (batch_size_option, json_option, load_model, model_options, output_option, overwrite_option,
                      prepare_output_dir, read_sentences, text_arguments, top_k_option)


def _check_pairs(ctx, param, values):
    """Validate ``--pair WORD:WORD`` before anything is loaded."""
    from ..analysis.heads.sentences import parse_pair
    from ..errors import MlmtoolError

    try:
        return [parse_pair(v) for v in values]
    except MlmtoolError as exc:
        raise click.BadParameter(str(exc).removeprefix("pairs: "), ctx, param) from None


def _old_threshold_flag(ctx, param, value):
    """``-t`` was ``--threshold`` until the one grammar; say so instead of guessing."""
    if value is not None:
        raise click.UsageError("-t no longer means --threshold; write --threshold "
                               f"{value}", ctx)
    return value


@click.command()
@text_arguments
@model_options
@output_option(default="heads", what="analysis.md, heads.json and the heatmaps")
@click.option("--out", "old_out", default=None, hidden=True, type=click.Path(file_okay=False))
@click.option("-p", "--pair", "pairs", multiple=True, callback=_check_pairs, metavar="WORD:WORD",
              help="Measure how much the first word attends to the second in every head "
                   "(repeatable; alternatives with |, e.g. quickly|slowly:ran).")
@click.option("--threshold", default=0.5, show_default=True, type=click.FloatRange(0, 1),
              help="Minimum score for a head to be labelled with a pattern (else broad/mixed).")
@click.option("-t", "old_t", default=None, hidden=True, expose_value=False, callback=_old_threshold_flag)
@click.option("-n", "--limit", default=None, type=click.IntRange(1, None),
              help="Use only the first N sentences.")
@top_k_option(default=3, help="Heads listed per pattern in analysis.md and the summary.")
@click.option("--top", "old_top", default=None, hidden=True, type=click.IntRange(1, None))
@batch_size_option(32)
@json_option
@overwrite_option
def heads(text, input_file, model, lang, output, old_out, pairs, threshold, limit, top_k, old_top, batch_size,
          as_json, overwrite):
    """Find out what each attention head does, over many sentences.

    Scores every head on attention to the previous word, the next word, itself, [CLS],
    [SEP] (or the model's own special tokens) and punctuation, and on how broad it is
    (entropy in bits), at word level, following Clark et al. (2019) "What Does BERT Look
    At?". Writes analysis.md, heads.json and one layers x heads heatmap per pattern into
    -o/--output. Layers and heads are counted from 1 (L2-H9 = layer 2, head 9).

    TEXT is one sentence, `-` reads one sentence per line from stdin, -i FILE one per line
    from FILE; with none of them the sentence set shipped for the model's language is used
    (~300 for English).

    \b
    Examples:
      mlmtool heads -m minilm
      mlmtool heads -m minilm -i my_sentences.txt -o out/ --pair quickly:ran --pair big:car
      mlmtool heads -m minilm --pair "quickly|slowly|carefully:ran|walked|drove"
    """
    from ..analysis.heads.run import score_heads
    from ..analysis.heads.sentences import default_sentences
    from ..render.heads_report import report_filenames, save_heads_report

    if old_out is not None:
        click.echo("Note: --out is now -o/--output.", err=True)
        output = old_out
    if old_top is not None:
        click.echo("Note: --top is now -k/--top-k.", err=True)
        top_k = old_top
    sentences = read_sentences(text, input_file, required=False)
    out = prepare_output_dir(output, overwrite, report_filenames(pairs))
    lm = load_model(model, lang)
    if not sentences:
        set_lang = lm.entry.lang if lm.entry is not None else lang
        sentences = default_sentences(set_lang)
        click.echo(f"Using the shipped {set_lang} sentence set ({len(sentences)} sentences).", err=True)
    if limit:
        sentences = sentences[:limit]
    scores = score_heads(lm, sentences, pairs=pairs, batch_size=batch_size)
    if scores.n_skipped:
        click.echo(f"Skipped {scores.n_skipped} sentence(s) longer than the {lm.max_length} tokens "
                   f"'{lm.name}' accepts.", err=True)
    paths = save_heads_report(scores, out, threshold=threshold, top_k=top_k)
    if as_json:
        click.echo(json.dumps(scores.to_dict(threshold), ensure_ascii=False, indent=1))
    else:
        _print_summary(scores, threshold, top_k)
    click.echo(f"Wrote {paths[0].name}, {paths[1].name}, {paths[2].name} and {len(paths) - 3} heatmaps "
               f"to {out}/", err=True)


def _print_summary(scores, threshold: float, top_k: int) -> None:
    """People's view: the top heads of each pattern, and the pairs."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..analysis.heads.metrics import PATTERNS
    from ..render.heads_report import head_name

    console = Console(highlight=False, soft_wrap=True)
    table = Table(title=f"{escape(scores.model_name)}: top heads over {len(scores.sentences)} sentences "
                        "(layer-head from 1; score = fraction of a word's attention)")
    table.add_column("attention to")
    table.add_column("top heads")
    for metric in PATTERNS + ("entropy",):
        top = scores.top(metric, top_k, lowest=metric == "entropy")
        unit = " bits" if metric == "entropy" else ""
        cells = ", ".join(f"{head_name(l, h)} {s:.2f}{unit}" for l, h, s in top) or "n/a"
        name = "lowest entropy" if metric == "entropy" else scores.title(metric)
        table.add_row(escape(name), cells)
    console.print(table)
    labels = scores.labels(threshold)
    for i, pair in enumerate(scores.pairs, 1):
        top = pair.top(top_k)
        cells = ", ".join(f"{head_name(l, h)} {a:.2f} [{labels[l - 1, h - 1]}]" for l, h, a, _ in top)
        console.print(f"pair {i} {escape(pair.source)} → {escape(pair.target)} "
                      f"({pair.n_sentences} sentences): {escape(cells)}")
