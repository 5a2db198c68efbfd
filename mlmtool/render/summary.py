"""Diagrams of attention rollout and attention flow: one token x token heatmap, head-diagram style.

Takes an :class:`~mlmtool.analysis.rollout.AttentionSummary` (plain data, never a model) and
draws it exactly like one head of :mod:`mlmtool.render.diagrams` (same labels, viridis
palette, fixed 0..1 colour bar; lighter = more): row ``i`` is token ``i`` after the last
layer of the range, column ``j`` the input token ``j`` it draws on. Rows sum to 1, as
attention rows do, so the two kinds of diagram read the same way.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from ..analysis.rollout import AttentionSummary
from .diagrams import SVG, matrix_image, matrix_layout, matrix_svg


def summary_filename(summary: AttentionSummary, fmt: str = "png") -> str:
    """``rollout.png`` / ``flow.svg``: the file a summary is saved as."""
    return f"{summary.method}.{fmt}"


def render_summary(summary: AttentionSummary) -> Image.Image:
    """Draw a rollout or flow matrix as a token x token heatmap (a Pillow palette image).

    Args:
        summary: from :func:`mlmtool.attention_rollout` or :func:`mlmtool.attention_flow`
            (``matrix`` ``[seq, seq]``, rows sum to 1).

    Returns:
        A Pillow image titled e.g. "Attention rollout, layers 1-12 (model)";
        ``image.save("rollout.png")`` writes it.
    """
    return matrix_image(summary.matrix, summary.title, matrix_layout(summary.tokens))


def render_summary_svg(summary: AttentionSummary) -> SVG:
    """Like :func:`render_summary` but as SVG (each cell has a tooltip with its value).

    Returns:
        An :class:`~mlmtool.render.diagrams.SVG` string (``.save(path)`` writes it; Jupyter shows it).
    """
    return matrix_svg(summary.tokens, summary.matrix, summary.title)


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
