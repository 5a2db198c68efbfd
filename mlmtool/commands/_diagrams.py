"""Writing every head's diagram: shared by ``predict`` and ``attention``."""

from __future__ import annotations

import click

from ._common import prepare_output_dir


def attention_format_option(func):
    """``-f/--format png|svg`` for diagram files."""
    func = click.option("-f", "--format", "fmt", type=click.Choice(["png", "svg"]), default="png",
                        show_default=True, help="Diagram file format.")(func)
    return func


def words_option(func):
    """``--words``: attention aggregated to words (:func:`mlmtool.analysis.words.aggregate_words`)."""
    return click.option("--words", is_flag=True,
                        help="One row and column per word instead of per piece (Clark et al. 2019: mean over the "
                             "attending word's pieces, sum over the attended word's; rows still sum to 1).")(func)


def write_diagrams(lm, result, out_dir: str, fmt: str, overwrite: bool) -> int:
    """Write all head diagrams of an attention ``result``; return the file count."""
    from ..render.diagrams import diagram_filename, save_attention_diagrams

    names = [diagram_filename(l, h, fmt) for l in range(1, lm.num_layers + 1)
             for h in range(1, lm.num_heads + 1)] + [f"overview.{fmt}"]
    out = prepare_output_dir(out_dir, overwrite, names)
    paths = save_attention_diagrams(result, out, fmt)
    unit = ", words" if result.pieces is not None else ""
    click.echo(f"Wrote {len(paths) - 1} head diagrams ({lm.num_layers} layers x {lm.num_heads} heads{unit}) "
               f"and overview.{fmt} to {out}/", err=True)
    return len(paths)
