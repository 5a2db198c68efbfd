"""``mlmtool attention``: draw every attention head of a sentence."""

from __future__ import annotations

import click

from ._common import load_model, model_options, overwrite_option
from .predict import _attention_options, _sentences, _write_diagrams


@click.command("attention")
@click.argument("text", nargs=-1)
@model_options
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default="attention",
              show_default=True, help="Directory for the diagrams.")
@_attention_options
@overwrite_option
def attention_cmd(text, model, lang, out_dir, fmt, overwrite):
    """Draw every attention head for TEXT (no [MASK] needed, any encoder works).

    Writes Attention_Layer{L}_Head{H}.png (layers and heads counted from 1) and
    overview.png, all heads in one grid.
    """
    texts = _sentences(text)
    if len(texts) != 1:
        raise click.UsageError("attention takes one sentence")
    lm = load_model(model, lang)
    from ..analysis.attention import attention

    _write_diagrams(lm, attention(lm, texts[0]), out_dir, fmt, overwrite)
