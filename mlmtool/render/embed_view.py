"""Scatter plots of projected word embeddings: a matplotlib figure and an offline HTML page.

Both take a :class:`~mlmtool.analysis.embed.Projection` (plain data, never a model) and colour the
points by sentence (default) or by word. Colours come from matplotlib's qualitative
``tab10``/``tab20`` maps, the same in the PNG and the HTML.

The HTML page is one self-contained file (inline SVG, CSS and a few lines of JavaScript from
the package template ``mlmtool/templates/scatter.html``): no network is needed to open it.
Hovering a point shows its word and sentence; clicking a legend entry hides or shows a
group. Without JavaScript the points still carry ``<title>`` tooltips.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..analysis.embed import Projection
from ._document import HTML, template
from .fonts import use_in_matplotlib

#: Colour modes: one colour per sentence, or per word (words seen once are grey).
COLOR_MODES = ("sentence", "word")

_GREY = "#9e9e9e"


def categorical_colours(n: int) -> list[str]:
    """``n`` hex colours from matplotlib's ``tab10`` (n ≤ 10) or ``tab20``, cycling beyond 20."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    size = cmap.N
    out = []
    for i in range(n):
        r, g, b, _ = cmap(i % size)
        out.append(f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}")
    return out


@dataclass
class _Groups:
    """Colour group of every point and the legend: ``labels[k]`` drawn in ``colours[k]``."""

    of_point: list[int]
    labels: list[str]
    colours: list[str]


def _shorten(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _groups(proj: Projection, color: str) -> _Groups:
    """Group points for colouring.

    ``sentence``: one group per sentence, labelled ``"1: <sentence>"`` (sentences counted
    from 1). ``word``: one group per word (case-insensitive) that occurs more than once;
    all words that occur once share a grey "other words" group, so repeated words, the ones
    worth comparing across contexts, stand out.
    """
    if color not in COLOR_MODES:
        raise ValueError(f"color must be one of {COLOR_MODES}, got {color!r}")
    if color == "sentence":
        labels = [f"{i + 1}: {_shorten(s)}" for i, s in enumerate(proj.sentences)]
        return _Groups(list(proj.sentence_index), labels, categorical_colours(len(labels)))
    keys = [w.lower() for w in proj.words]
    counts = Counter(keys)
    repeated = [k for k in dict.fromkeys(keys) if counts[k] > 1]
    index = {k: i for i, k in enumerate(repeated)}
    other = len(repeated)
    of_point = [index.get(k, other) for k in keys]
    labels = list(repeated)
    colours = categorical_colours(len(repeated))
    if other in of_point:
        labels.append("other words")
        colours.append(_GREY)
    return _Groups(of_point, labels, colours)


def _title(proj: Projection) -> str:
    layer = "input embeddings (layer 0)" if proj.layer == 0 else f"layer {proj.layer}"
    method = "PCA" if proj.method == "pca" else "t-SNE"
    name = f"{proj.model_name}, " if proj.model_name else ""
    return f"Word embeddings: {name}{layer}, {method}"


def _axis_labels(proj: Projection) -> tuple[str, str]:
    if proj.method == "pca" and proj.explained_variance:
        return tuple(f"PC{i + 1} ({v * 100:.1f}% of variance)"  # type: ignore[return-value]
                     for i, v in enumerate(proj.explained_variance[:2]))
    if proj.method == "tsne":
        return f"t-SNE 1 (perplexity {proj.perplexity:g})", "t-SNE 2"
    return "x", "y"


def render_embedding(proj: Projection, color: str = "sentence", ax=None, labels: bool = True):
    """Draw the projected words as labelled points with matplotlib.

    Args:
        proj: from :func:`mlmtool.project`.
        color: ``"sentence"`` (default) or ``"word"`` (see :data:`COLOR_MODES`).
        ax: a matplotlib ``Axes`` to draw on; None (default) makes a new ``Figure``
            (no pyplot, so no GUI backend is needed).
        labels: write each point's word next to it (default True).

    Returns:
        The ``matplotlib.figure.Figure``; save it with ``fig.savefig("plot.png", dpi=150)``.

    Raises:
        ValueError: unknown ``color``.
    """
    from matplotlib.figure import Figure
    use_in_matplotlib(ax)  # fonts for CJK and other scripts

    groups = _groups(proj, color)
    if ax is None:
        fig = Figure(figsize=(9, 6.5), layout="constrained")
        ax = fig.add_subplot()
    fig = ax.figure
    xy = np.asarray(proj.coords)
    for g, (label, colour) in enumerate(zip(groups.labels, groups.colours)):
        sel = [i for i, k in enumerate(groups.of_point) if k == g]
        if not sel:
            continue
        marker_sizes = [22 if proj.special[i] else 40 for i in sel]
        ax.scatter(xy[sel, 0], xy[sel, 1], s=marker_sizes, c=colour, label=label,
                   edgecolors="white", linewidths=0.6, zorder=2)
    if labels:
        for i, word in enumerate(proj.words):
            ax.annotate(word, (xy[i, 0], xy[i, 1]), xytext=(4, 3), textcoords="offset points",
                        fontsize=8, color="#555555" if proj.special[i] else "#222222", zorder=3)
    xlabel, ylabel = _axis_labels(proj)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(_title(proj))
    ax.grid(True, color="#e6e6e6", linewidth=0.6, zorder=0)
    ax.legend(loc="best", fontsize=8, framealpha=0.85, title="sentence" if color == "sentence" else "word")
    return fig


def render_embedding_html(proj: Projection, color: str = "sentence", width: int = 860,
                 height: int = 600) -> HTML:
    """An interactive, self-contained HTML scatter of the projected words.

    Hovering a point shows the word and its whole sentence; clicking a legend entry hides or
    shows that group; a checkbox hides the word labels. Everything (SVG, CSS, JavaScript)
    is inline: the page works offline.

    Args:
        proj: from :func:`mlmtool.project`.
        color: ``"sentence"`` (default) or ``"word"``.
        width, height: size of the plot area in CSS pixels (defaults 860 x 600).

    Returns:
        :class:`~mlmtool.render._document.HTML` (``str`` with ``_repr_html_`` and ``.save(path)``).

    Raises:
        ValueError: unknown ``color``.
    """
    groups = _groups(proj, color)
    xy = np.asarray(proj.coords, dtype=np.float64)
    margin, right = 36, 90  # room on the right for the last labels
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    sx = margin + (xy[:, 0] - lo[0]) / span[0] * (width - margin - right)
    sy = height - margin - (xy[:, 1] - lo[1]) / span[1] * (height - 2 * margin)  # y grows upwards
    points = [
        {"x": f"{sx[i]:.1f}", "y": f"{sy[i]:.1f}", "word": proj.words[i],
         "sentence": proj.sentences[proj.sentence_index[i]], "sentence_no": proj.sentence_index[i] + 1,
         "group": groups.of_point[i], "colour": groups.colours[groups.of_point[i]],
         "special": proj.special[i], "px": f"{xy[i, 0]:.4g}", "py": f"{xy[i, 1]:.4g}"}
        for i in range(len(proj.words))
    ]
    legend = [{"label": lab, "colour": col, "count": groups.of_point.count(g)}
              for g, (lab, col) in enumerate(zip(groups.labels, groups.colours))]
    xlabel, ylabel = _axis_labels(proj)
    page = template("scatter.html").render(
        title=_title(proj), points=points, legend=legend, width=width, height=height,
        xlabel=xlabel, ylabel=ylabel, color=color, notes=proj.notes,
        n_sentences=len(proj.sentences))
    return HTML(page)
