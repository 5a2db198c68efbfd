"""``mlmtool heads``: score every attention head on standard patterns and write the analysis."""

from __future__ import annotations

import json

import click

from ._common import load_model, model_options, overwrite_option, prepare_output_dir, read_texts


def _check_pairs(ctx, param, values):
    """Validate ``--pair WORD:WORD`` before anything is loaded."""
    from ..errors import MlmtoolError
    from ..analysis.heads import parse_pair

    try:
        return [parse_pair(v) for v in values]
    except MlmtoolError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


@click.command()
@click.argument("text", nargs=-1)
@model_options
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default="heads",
              show_default=True, help="Directory for analysis.md, heads.json and the heatmaps.")
@click.option("-p", "--pair", "pairs", multiple=True, callback=_check_pairs, metavar="WORD:WORD",
              help="Measure how much the first word attends to the second in every head "
                   "(repeatable; alternatives with |, e.g. quickly|slowly:ran).")
@click.option("-t", "--threshold", default=0.5, show_default=True, type=click.FloatRange(0, 1),
              help="Minimum score for a head to be labelled with a pattern (else broad/mixed).")
@click.option("-n", "--limit", default=None, type=click.IntRange(1, None),
              help="Use only the first N sentences.")
@click.option("-k", "--top", "top_k", default=3, show_default=True, type=click.IntRange(1, 50),
              help="Heads listed per pattern in analysis.md and the summary.")
@click.option("-b", "--batch-size", default=32, show_default=True, type=click.IntRange(1, None),
              help="Sentences per forward pass.")
@click.option("--json", "as_json", is_flag=True, help="Print heads.json to stdout instead of the table.")
@overwrite_option
def heads(text, model, lang, out_dir, pairs, threshold, limit, top_k, batch_size, as_json, overwrite):
    """Find out what each attention head does, over many sentences.

    Scores every head on attention to the previous word, the next word, itself, [CLS],
    [SEP] (or the model's own special tokens) and punctuation, and on how broad it is
    (entropy in bits), at word level, following Clark et al. (2019) "What Does BERT Look
    At?". Writes analysis.md, heads.json and one layers x heads heatmap per pattern to
    --out. Layers and heads are counted from 1 (L2-H9 = layer 2, head 9).

    TEXT is a file of sentences (one per line), `-` for stdin, or quoted sentences; without
    it the sentence set shipped for the model's language is used (~300 for English).

    \b
    Examples:
      mlmtool heads -m minilm
      mlmtool heads -m minilm my_sentences.txt -o out/ --pair quickly:ran --pair big:car
      mlmtool heads -m minilm --pair "quickly|slowly|carefully:ran|walked|drove"
    """
    from ..analysis.heads import default_sentences, score_heads
    from ..render.heads_report import report_filenames, save_heads_report

    sentences = _read_sentences(text) if text else None
    out = prepare_output_dir(out_dir, overwrite, report_filenames(pairs))
    lm = load_model(model, lang)
    if sentences is None:
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


def _read_sentences(args: tuple[str, ...]) -> list[str]:
    """Sentences from FILE / ``-`` / literal arguments (:func:`read_texts`).

    An argument longer than a file name may be (255 bytes) is a sentence: ``read_texts``
    would ask the OS whether it is a file, which raises ``OSError`` for such names.
    """
    long_args = [a for a in args if len(a.encode("utf-8")) > 255]
    short = [a for a in args if len(a.encode("utf-8")) <= 255]
    return (read_texts(short, prompt=False) if short else []) + long_args


def _print_summary(scores, threshold: float, top_k: int) -> None:
    """People's view: the top heads of each pattern, and the pairs."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..analysis.heads import PATTERNS
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
