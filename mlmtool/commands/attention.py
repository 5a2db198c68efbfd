"""``mlmtool attention``: draw every attention head of a sentence, or one summary of all of them."""

from __future__ import annotations

import json

import click

from ..errors import MlmtoolError
from ._common import (
    json_option,
    load_model,
    model_options,
    one_sentence,
    output_option,
    overwrite_option,
    prepare_output_dir,
    read_sentences,
    text_arguments,
)
from ._diagrams import attention_format_option, words_option, write_diagrams


def parse_layers(value: str | None) -> tuple[int, int] | None:
    """``"3-6"`` → ``(3, 6)``, ``"4"`` → ``(4, 4)``, None → None (layers counted from 1).

    Raises:
        MlmtoolError: anything else (``param="layers"``).
    """
    if value is None:
        return None
    parts = value.replace(" ", "").split("-")
    if len(parts) in (1, 2) and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[-1])
    raise MlmtoolError(f"layers must be a range counted from 1, like 3-6 or 4 (got '{value}')",
                       param="layers")


@click.command("attention")
@text_arguments
@model_options
@output_option(default="attention", what="the diagrams")
@click.option("--out", "old_out", default=None, hidden=True, type=click.Path(file_okay=False))
@click.option("-s", "--summary", type=click.Choice(["rollout", "flow"]), default=None,
              help="Instead of one diagram per head, one token x token summary of all layers: attention "
                   "rollout or attention flow (Abnar & Zuidema 2020). Flow takes at most 64 tokens.")
@click.option("--layers", default=None, metavar="A-B",
              help="With --summary: only these layers, counted from 1 (e.g. 3-6, or 4).")
@words_option
@json_option
@attention_format_option
@overwrite_option
def attention_cmd(text, input_file, model, lang, output, old_out, summary, layers, words, as_json, fmt, overwrite):
    """Draw every attention head for TEXT (no [MASK] needed, any encoder works).

    Writes Attention_Layer{L}_Head{H}.png (layers and heads counted from 1) and
    overview.png, all heads in one grid, into -o DIR. With --summary rollout|flow it writes
    one heatmap instead, rollout.png or flow.png: row i is token i after the last layer,
    column j the input token it draws on; rows sum to 1. Rollout multiplies the layers'
    head-averaged attention (plus the residual, 0.5 A + 0.5 I); flow is the maximum flow
    through the attention graph, one max-flow per token pair (at most 64 tokens: its time
    grows as tokens^4, about 5 s at 64 tokens on 12 layers).

    --json prints the summary matrix (or, without --summary, every head's weights) as JSON
    instead of writing files; give -o as well to have both.

    --words draws one row and column per word instead of per piece (Clark et al. 2019: mean
    over the attending word's pieces, sum over the attended word's; rows still sum to 1);
    rollout and flow are computed on the pieces and aggregated to words after.

    \b
    Examples:
      mlmtool attention "The cat sat on the mat." -o diagrams/
      mlmtool attention "The cat sat on the mat." --summary rollout --layers 3-6
      mlmtool attention "The cat sat on the mat." --summary flow --json
      mlmtool attention "I like toothpaste." --words -o diagrams/
    """
    from ..analysis.arch import check_attention
    from ..analysis.attention import attention
    from ..analysis.rollout import check_layers
    from ..analysis.words import aggregate_summary, aggregate_words

    if old_out is not None:  # the same meaning (a directory) under its earlier name
        click.echo("Note: --out is now -o/--output.", err=True)
        output = old_out
    if layers is not None and summary is None:
        raise click.UsageError("--layers picks the layers of a summary; add --summary rollout or --summary flow")
    span = parse_layers(layers)
    explicit_dir = old_out is not None or \
        click.get_current_context().get_parameter_source("output") != click.core.ParameterSource.DEFAULT
    write_files = not as_json or explicit_dir
    sentence = one_sentence(read_sentences(text, input_file), "attention")
    lm = load_model(model, lang)
    check_attention(lm)
    span = check_layers(span, lm.num_layers)
    if summary == "flow":
        _check_flow_length(lm, sentence)
    pieces = attention(lm, sentence)
    result = aggregate_words(pieces) if words else pieces
    if summary is None:
        _echo_notes(result.notes)
        if write_files:
            write_diagrams(lm, result, output, fmt, overwrite)
        if as_json:
            click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    from ..analysis.rollout import attention_flow, attention_rollout

    res = attention_rollout(pieces, span) if summary == "rollout" else attention_flow(pieces, span)
    res = aggregate_summary(res, pieces) if words else res
    _echo_notes(res.notes)
    if write_files:
        from ..render.summary import save_summary, summary_filename

        out = prepare_output_dir(output, overwrite, [summary_filename(res, fmt)])
        path = save_summary(res, out, fmt)
        unit = "words" if res.words else "tokens"
        click.echo(f"Wrote {path} ({res.title}; rows: {unit} after layer {span[1]}, columns: input {unit})",
                   err=True)
    if as_json:
        click.echo(json.dumps(res.to_dict(), ensure_ascii=False))


def _echo_notes(notes) -> None:
    """Print each architecture note (local layers, shared keys) as one stderr line."""
    for note in notes:
        click.echo(f"Note: {note}.", err=True)


def _check_flow_length(lm, sentence: str) -> None:
    """Refuse a text longer than :data:`~mlmtool.analysis.rollout.MAX_FLOW_TOKENS` tokens for
    ``--summary flow`` (MlmtoolError, before the model runs)."""
    from ..analysis.rollout import MAX_FLOW_TOKENS
    from ..core.forward import encode

    n = len(encode(lm, [sentence])["input_ids"][0])
    if n > MAX_FLOW_TOKENS:
        raise MlmtoolError(f"--summary flow takes at most {MAX_FLOW_TOKENS} tokens and this text has {n}: "
                           "flow runs one max-flow per token pair, so its time grows as tokens^4 "
                           "(about 5 s at 64 on 12 layers); use --summary rollout for longer texts")
