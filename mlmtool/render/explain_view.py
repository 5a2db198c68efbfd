"""Views of a SHAP explanation: terminal (rich), self-contained HTML, and a bar chart.

All take an :class:`~mlmtool.analysis.explain.ExplainResult` (plain data, never a model). Colours follow
the shap library's plots: red (``#ff0051``) for words that raise the target's probability,
blue (``#008bfb``) for words that lower it; the shade grows with ``|value|`` relative to the
largest ``|value|`` in the sentence.
"""

from __future__ import annotations

import numpy as np

from ..analysis.explain import ExplainResult
from ._document import HTML, template
from .fonts import use_in_matplotlib

#: shap's plot colours (``shap.plots.colors.red_rgb`` / ``blue_rgb``).
RED = (255, 0, 81)
BLUE = (0, 139, 251)


def _shade(value: float, scale: float) -> tuple[tuple[int, int, int], float]:
    """``(rgb, strength)``: white blended towards red/blue by ``|value| / scale`` (0..1)."""
    strength = 0.0 if scale <= 0 else min(1.0, abs(value) / scale)
    base = RED if value > 0 else BLUE
    rgb = tuple(round(255 + (c - 255) * strength) for c in base)
    return rgb, strength  # type: ignore[return-value]


def _hex(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _scale(result: ExplainResult) -> float:
    vals = np.abs(np.asarray(result.word_values, dtype=np.float64))
    return float(vals.max()) if vals.size else 0.0


def value_format(result: ExplainResult) -> str:
    """A signed format for this explanation's values: 4 decimals, or 3 significant digits in
    scientific notation when every value is below 0.001 (e.g. a tiny untrained model)."""
    return "{:+.4f}" if _scale(result) >= 1e-3 or _scale(result) == 0 else "{:+.2e}"


def _mask_label(result: ExplainResult, is_target_mask: bool) -> str:
    return f"[MASK→{result.target}]" if is_target_mask else "[MASK]"


def _word_rows(result: ExplainResult) -> list[dict]:
    """One dict per word: text, value, colour, strength, whether it is the explained mask."""
    scale = _scale(result)
    rows = []
    mask_seen = 0
    for i, (word, value, is_mask) in enumerate(zip(result.words, result.word_values, result.word_is_mask)):
        target_mask = False
        if is_mask:
            mask_seen += 1
            target_mask = mask_seen == result.mask_index
        rgb, strength = _shade(float(value), scale)
        rows.append({"n": i + 1, "word": _mask_label(result, target_mask) if is_mask else word,
                     "value": float(value), "colour": _hex(rgb), "strength": strength,
                     "is_mask": is_mask, "target_mask": target_mask,
                     "dark": strength > 0.6})
    return rows


def render_explain_text(result: ExplainResult, top: int = 10):
    """A rich renderable: the sentence with words shaded by SHAP value, and a ranked table.

    Args:
        result: from :func:`mlmtool.explain`.
        top: how many words the table lists, largest ``|value|`` first (default 10).

    Returns:
        A ``rich.console.Group``; print it with ``rich.console.Console().print(...)``.
    """
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    rows = _word_rows(result)
    fmt = value_format(result)
    head = Text()
    head.append(f"p({result.target!r} at mask {result.mask_index}) = ", style="bold")
    head.append(f"{result.full_value:.4f}", style="bold cyan")
    head.append(f"   base value (every word hidden) = {result.base_value:.4f}, "
                "SHAP values sum to " + fmt.format(float(np.sum(result.word_values))), style="dim")
    sentence = Text()
    for k, row in enumerate(rows):
        if k:
            sentence.append(" ")
        if row["target_mask"]:
            sentence.append(row["word"], style="bold reverse")
        elif row["is_mask"]:
            sentence.append(row["word"], style="dim")
        else:
            fg = "white" if row["dark"] else "black"
            sentence.append(row["word"], style=f"{fg} on {row['colour']}")
    legend = Text("red raises the probability, blue lowers it; darker = larger effect", style="dim")
    if getattr(result, "scoring", "softmax") != "softmax":  # a word of several pieces: say which value
        legend.append("\n" + result.explained, style="dim")
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    table.add_column("#", justify="right", style="dim")
    table.add_column("word")
    table.add_column("SHAP value", justify="right")
    ranked = sorted((r for r in rows if not r["is_mask"]), key=lambda r: -abs(r["value"]))[:top]
    for row in ranked:
        colour = "red" if row["value"] > 0 else "blue" if row["value"] < 0 else "default"
        table.add_row(str(row["n"]), row["word"], Text(fmt.format(row["value"]), style=colour))
    return Group(head, sentence, legend, Text(""), table)


def render_explain_html(result: ExplainResult) -> HTML:
    """A self-contained HTML page of the explanation (inline CSS, no scripts, works offline).

    Shows the sentence with shaded words (hover for the exact value), a table of every word
    with a signed bar, the base and full probabilities and the model's top predictions.

    Returns:
        :class:`~mlmtool.render._document.HTML` (``str`` with ``_repr_html_`` and ``.save(path)``).
    """
    rows = _word_rows(result)
    scale = _scale(result) or 1.0
    for row in rows:
        row["bar"] = abs(row["value"]) / scale * 100  # percent of the half-width
    fmt = value_format(result)
    for row in rows:
        row["shown"] = fmt.format(row["value"])
    page = template("shap.html").render(
        r=result, rows=rows, total=fmt.format(float(np.sum(result.word_values))),
        red=_hex(RED), blue=_hex(BLUE))
    return HTML(page)


def render_explain_bars(result: ExplainResult, ax=None):
    """Horizontal bar chart of each word's SHAP value, words in sentence order (top to bottom).

    Args:
        result: from :func:`mlmtool.explain`.
        ax: matplotlib ``Axes`` to draw on; None (default) makes a new ``Figure`` (no pyplot).

    Returns:
        The ``matplotlib.figure.Figure``; save it with ``fig.savefig("explanation.png")``.
    """
    from matplotlib.figure import Figure
    use_in_matplotlib(ax)  # fonts for CJK and other scripts

    rows = [r for r in _word_rows(result) if not r["is_mask"]]
    if ax is None:
        fig = Figure(figsize=(7.5, 1.2 + 0.32 * max(3, len(rows))), layout="constrained")
        ax = fig.add_subplot()
    fig = ax.figure
    ys = np.arange(len(rows))
    values = [r["value"] for r in rows]
    colours = [_hex(RED) if v > 0 else _hex(BLUE) for v in values]
    ax.barh(ys, values, color=colours, height=0.7)
    ax.set_yticks(ys, [f"{r['word']}" for r in rows])
    ax.invert_yaxis()
    ax.axvline(0, color="#444444", linewidth=0.8)
    span = max((abs(v) for v in values), default=0.0) or 1.0
    fmt = value_format(result)
    for y, v in zip(ys, values):
        ax.text(v + (0.02 * span if v >= 0 else -0.02 * span), y, fmt.format(v), va="center",
                ha="left" if v >= 0 else "right", fontsize=8, color="#333333")
    ax.set_xlim(-1.35 * span if min(values, default=0) < 0 else -0.1 * span,
                1.35 * span if max(values, default=0) > 0 else 0.1 * span)
    ax.set_xlabel(f"SHAP value: change in p({result.target!r}) at the mask")
    ax.set_title(f"p({result.target!r}) = {result.full_value:.4f}, base value {result.base_value:.4f}\n"
                 f"{result.text}", fontsize=10)
    ax.grid(True, axis="x", color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)
    return fig
