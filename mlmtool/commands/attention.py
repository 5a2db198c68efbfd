"""``mlmtool attention``: draw every attention head of a sentence."""

from __future__ import annotations

import click

from ._common import load_model, model_options, one_sentence, overwrite_option, read_sentences, text_arguments
from ._diagrams import attention_format_option, write_diagrams


@click.command("attention")
@text_arguments
@model_options
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default="attention",
              show_default=True, help="Directory for the diagrams.")
@attention_format_option
@overwrite_option
def attention_cmd(text, input_file, model, lang, out_dir, fmt, overwrite):
    """Draw every attention head for TEXT (no [MASK] needed, any encoder works).

    Writes Attention_Layer{L}_Head{H}.png (layers and heads counted from 1) and
    overview.png, all heads in one grid.
    """
    sentence = one_sentence(read_sentences(text, input_file), "attention")
    lm = load_model(model, lang)
    from ..analysis.attention import attention

    write_diagrams(lm, attention(lm, sentence), out_dir, fmt, overwrite)
