"""``mlmtool heads``: score every attention head on standard patterns and write the analysis."""

from __future__ import annotations

import json

import click

from ..defaults import MIN_COUNT, THRESHOLD
from ._common import (batch_size_option, json_option, load_model, model_options, output_option, overwrite_option,
                      prepare_output_dir, read_sentences, text_arguments, top_k_option)


def _check_pairs(ctx, param, values):
    """Validate ``--pair WORD:WORD`` / ``--pair ADV:VERB`` before anything is loaded.

    Returns the pairs as given (strings); tag pairs are checked against the UPOS tags.
    """
    from ..analysis.heads.sentences import is_upos_pair, parse_pair, parse_upos_pair
    from ..errors import MlmtoolError

    try:
        for v in values:
            parse_upos_pair(v) if is_upos_pair(v) else parse_pair(v)
    except MlmtoolError as exc:
        raise click.BadParameter(str(exc).removeprefix("pairs: ").removeprefix("pairs "), ctx, param) from None
    return list(values)


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
@click.option("--conllu", "treebank", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Score the sentences of this CoNLL-U treebank and probe every head against its gold "
                   "dependency parses (Clark et al. 2019, section 4).")
@click.option("--min-count", default=MIN_COUNT, show_default=True, type=click.IntRange(1, None),
              help="With --conllu: probe only relations with at least this many arcs.")
@click.option("--subtypes", is_flag=True, help="With --conllu: keep relation subtypes (nmod:poss) apart.")
@click.option("-p", "--pair", "pairs", multiple=True, callback=_check_pairs, metavar="WORD:WORD",
              help="Measure how much the first word attends to the second in every head "
                   "(repeatable; alternatives with |, e.g. quickly|slowly:ran). With --conllu, UPOS tags "
                   "in capitals (ADV:VERB) probe the arcs between two parts of speech.")
@click.option("--threshold", default=THRESHOLD, show_default=True, type=click.FloatRange(0, 1),
              help="Minimum score for a head to be labelled with a pattern (else broad/mixed).")
@click.option("-t", "old_t", default=None, hidden=True, expose_value=False, callback=_old_threshold_flag)
@click.option("-n", "--limit", default=None, type=click.IntRange(1, None),
              help="Use only the first N sentences.")
@top_k_option(default=3, help="Heads listed per pattern in analysis.md and the summary.")
@click.option("--top", "old_top", default=None, hidden=True, type=click.IntRange(1, None))
@batch_size_option(32)
@json_option
@overwrite_option
def heads(text, input_file, model, lang, output, old_out, treebank, min_count, subtypes, pairs, threshold, limit,
          top_k, old_top, batch_size, as_json, overwrite):
    """Find out what each attention head does, over many sentences.

    Scores every head on attention to the previous word, the next word, itself, [CLS],
    [SEP] (or the model's own special tokens) and punctuation, and on how broad it is
    (entropy in bits), at word level, following Clark et al. (2019) "What Does BERT Look
    At?". Writes analysis.md, heads.json and one layers x heads heatmap per pattern into
    -o/--output. Layers and heads are counted from 1 (L2-H9 = layer 2, head 9).

    TEXT is one sentence, `-` reads one sentence per line from stdin, -i FILE one per line
    from FILE; with none of them the sentence set shipped for the model's language is used
    (~300 for English). --conllu FILE takes the sentences of a treebank instead and adds
    the syntax probe: for each relation, the head whose most-attended word is the governor
    most often, against the best fixed-offset baseline.

    \b
    Examples:
      mlmtool heads -m minilm
      mlmtool heads -m minilm -i my_sentences.txt -o out/ --pair quickly:ran --pair big:car
      mlmtool heads -m minilm --pair "quickly|slowly|carefully:ran|walked|drove"
      mlmtool heads -m minilm --conllu en_ewt-ud-dev.conllu --pair ADV:VERB --pair ADJ:NOUN
    """
    from ..analysis.heads.sentences import split_pairs
    from ..render.heads_view import save_heads_report

    if old_out is not None:
        click.echo("Note: --out is now -o/--output.", err=True)
        output = old_out
    if old_top is not None:
        click.echo("Note: --top is now -k/--top-k.", err=True)
        top_k = old_top
    word_pairs, upos_pairs = split_pairs(pairs)
    if treebank is None:
        scores, out, lm = _sentence_scores(text, input_file, word_pairs, upos_pairs, limit, output, overwrite, model,
                                           lang, batch_size)
    else:
        scores, out, lm = _treebank_scores(text, input_file, treebank, min_count, subtypes, pairs, word_pairs,
                                           upos_pairs, limit, output, overwrite, model, lang, batch_size)
    if scores.n_skipped:
        click.echo(f"Skipped {scores.n_skipped} sentence(s) longer than the {lm.max_length} tokens "
                   f"'{lm.name}' accepts.", err=True)
    for note in scores.notes:
        click.echo(f"Note: {note}.", err=True)
    paths = save_heads_report(scores, out, threshold=threshold, top_k=top_k)
    if as_json:
        click.echo(json.dumps(scores.to_dict(threshold), ensure_ascii=False, indent=1))
    else:
        _print_summary(scores, threshold, top_k)
    click.echo(f"Wrote {paths[0].name}, {paths[1].name}, {paths[2].name} and {len(paths) - 3} heatmaps "
               f"to {out}/", err=True)


def _sentence_scores(text, input_file, word_pairs, upos_pairs, limit, output, overwrite, model, lang, batch_size):
    """Sentences (TEXT, ``-``, -i FILE, else the shipped set of the model's language): check the
    output names, then load and score.

    Returns:
        ``(HeadScores, output directory, the model)``.

    Raises:
        click.UsageError: a part-of-speech pair without a treebank.
    """
    from ..analysis.heads.run import score_heads
    from ..analysis.heads.sentences import default_sentences
    from ..render.heads_view import report_filenames

    if upos_pairs:
        raise click.UsageError(f"--pair {upos_pairs[0]} names part-of-speech tags, which come from a "
                               "treebank: add --conllu FILE (or write words in small letters)")
    sentences = read_sentences(text, input_file, required=False)
    out = prepare_output_dir(output, overwrite, report_filenames(word_pairs))
    lm = load_model(model, lang)
    if not sentences:
        set_lang = lm.entry.lang if lm.entry is not None else lang
        sentences = default_sentences(set_lang)
        click.echo(f"Using the shipped {set_lang} sentence set ({len(sentences)} sentences).", err=True)
    if limit:
        sentences = sentences[:limit]
    return score_heads(lm, sentences, pairs=word_pairs, batch_size=batch_size), out, lm


def _treebank_scores(text, input_file, treebank, min_count, subtypes, pairs, word_pairs, upos_pairs, limit, output,
                     overwrite, model, lang, batch_size):
    """``--conllu``: read the treebank, check the output names, then load and score.

    Returns:
        ``(HeadScores with .syntax, output directory, the model)``.
    """
    from ..analysis.heads.syntax import score_syntax
    from ..analysis.heads.treebank import frequent_relations, read_conllu, relation_counts
    from ..render.heads_view import report_filenames

    if text or input_file:
        raise click.UsageError("give sentences as TEXT / -i FILE or a treebank with --conllu, not both")
    trees = read_conllu(treebank, subtypes=subtypes)[:limit]
    relations = frequent_relations(relation_counts(trees), min_count, len(trees))  # before the model loads
    out = prepare_output_dir(output, overwrite, report_filenames(word_pairs, relations + upos_pairs))
    lm = load_model(model, lang)
    scores = score_syntax(lm, trees, pairs=pairs, min_count=min_count, subtypes=subtypes, batch_size=batch_size)
    return scores, out, lm


def _print_summary(scores, threshold: float, top_k: int) -> None:
    """People's view: the top heads of each pattern, and the pairs."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..analysis.heads.metrics import PATTERNS
    from ..render.heads_view import head_name

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
    if scores.syntax is not None:
        _print_syntax(console, scores.syntax)
    labels = scores.labels(threshold)
    for i, pair in enumerate(scores.pairs, 1):
        top = pair.top(top_k)
        cells = ", ".join(f"{head_name(l, h)} {a:.2f} [{labels[l - 1, h - 1]}]" for l, h, a, _ in top)
        console.print(f"pair {i} {escape(pair.source)} → {escape(pair.target)} "
                      f"({pair.n_sentences} sentences): {escape(cells)}")


def _print_syntax(console, syntax) -> None:
    """The probe as Clark et al. 2019 Table 1: per relation the best head against the baseline."""
    from rich.markup import escape
    from rich.table import Table

    from ..render.heads_view import head_name

    table = Table(title=f"syntax probe over {syntax.n_sentences} treebank sentences "
                        "(accuracy = share of arcs whose governor the head picks)")
    for name in ("relation", "arcs", "best head", "direction", "accuracy", "baseline (offset)", "gain"):
        table.add_column(name, justify="left" if name in ("relation", "best head", "direction") else "right")
    for g, relation in enumerate(syntax.relations):
        layer, head, acc, direction = syntax.best(relation)
        base, offset = syntax.baseline(relation)
        table.add_row(escape(relation), str(int(syntax.n[g])), head_name(layer, head), direction, f"{acc:.2f}",
                      f"{base:.2f} ({offset:+d})", f"{acc - base:+.2f}")
    console.print(table)
