"""Diagrams of attention rollout and attention flow: one token x token heatmap, head-diagram style.

Takes an :class:`~mlmtool.analysis.rollout.AttentionSummary` (plain data, never a model) and
draws it exactly like one head of :mod:`mlmtool.render.diagrams` (same labels, viridis
palette, fixed 0..1 colour bar; lighter = more): row ``i`` is token ``i`` after the last
layer of the range, column ``j`` the input token ``j`` it draws on. Rows sum to 1, as
attention rows do, so the two kinds of diagram read the same way. Where the summary has
notes (:attr:`AttentionSummary.notes`: what rollout or flow assumes about ModernBERT's local
layers, grouped-query attention) they are written under the picture; for BERT there are none
and the picture is the plain heatmap.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from ..analysis.rollout import AttentionSummary
from .diagrams import SVG, matrix_image, matrix_layout, matrix_svg, with_caption
from .fonts import use_in_matplotlib


def summary_filename(summary: AttentionSummary, fmt: str = "png") -> str:
    """``rollout.png`` / ``flow.svg``: the file a summary is saved as."""
    return f"{summary.method}.{fmt}"


def render_summary(summary: AttentionSummary, ax=None):
    """Draw a rollout or flow matrix as a token x token heatmap.

    Args:
        summary: from :func:`mlmtool.attention_rollout` or :func:`mlmtool.attention_flow`
            (``matrix`` ``[seq, seq]``, rows sum to 1).
        ax: a matplotlib ``Axes`` to draw into (viridis on a fixed 0..1 scale, tokens on
            both axes, a colour bar); default None = a Pillow palette image drawn like one
            head of :mod:`mlmtool.render.diagrams`.

    Returns:
        Without ``ax``: a Pillow image titled e.g. "Attention rollout, layers 1-12 (model)",
        the summary's notes under it (:func:`mlmtool.render.diagrams.with_caption`);
        ``image.save("rollout.png")`` writes it. With ``ax``: the matplotlib ``Figure`` of
        ``ax`` (the Captum ``plt_fig_axis`` habit), the notes under the x-axis label.
    """
    if ax is not None:
        return _draw_summary(summary, ax)
    image = matrix_image(summary.matrix, summary.title, matrix_layout(summary.tokens))
    return with_caption(image, list(summary.notes))


def _draw_summary(summary: AttentionSummary, ax):
    """The summary matrix on a matplotlib ``ax``: row = token after the last layer, column =
    input token; returns ``ax.figure``."""
    use_in_matplotlib(ax)  # fonts for CJK and other scripts
    n = len(summary.tokens)
    image = ax.imshow(summary.matrix, cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(n), list(summary.tokens), rotation=90, fontsize=7)
    ax.set_yticks(range(n), list(summary.tokens), fontsize=7)
    notes = ["• " + "\n   ".join(textwrap.wrap(note, 80)) for note in summary.notes]
    ax.set_xlabel("\n".join(["input token", *notes]), **({"fontsize": 8} if notes else {}))
    ax.set_ylabel(f"token after layer {summary.layers[1]}")
    ax.set_title(summary.title, fontsize=10)
    ax.figure.colorbar(image, ax=ax, label="share of the token", shrink=0.9)
    return ax.figure


def render_summary_svg(summary: AttentionSummary) -> SVG:
    """Like :func:`render_summary` but as SVG (each cell has a tooltip with its value).

    Returns:
        An :class:`~mlmtool.render.diagrams.SVG` string (``.save(path)`` writes it; Jupyter
        shows it); the notes are lines of text under the grid.
    """
    return matrix_svg(summary.tokens, summary.matrix, summary.title, notes=list(summary.notes))


def save_summary(summary: AttentionSummary, out_dir: str | Path, fmt: str = "png") -> Path:
    """Write the summary diagram into ``out_dir`` as :func:`summary_filename` and return the path.

    Raises:
        ValueError: unknown ``fmt`` (use png or svg).
    """
    if fmt not in ("png", "svg"):
        raise ValueError(f"unknown format '{fmt}' (use png or svg)")
    path = Path(out_dir) / summary_filename(summary, fmt)
    if fmt == "svg":
        return render_summary_svg(summary).save(path)
    render_summary(summary).save(path, format="PNG", compress_level=1)
    return path
