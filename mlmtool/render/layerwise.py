"""The picture of a prediction forming: the final word across layers, and the top pieces per layer.

Takes a :class:`~mlmtool.analysis.layerwise.LayerwisePrediction` (plain data, never a model)
and returns a matplotlib figure with, for each mask, two panels:

* left: the final prediction's probability (line, left axis, 0..1) and its rank (dashed,
  right axis, log scale with rank 1 at the top) at layers 0 (embeddings) .. L;
* right: a layers x top-k grid, one row per layer (layer 0 at the top), each cell a piece
  shaded by its probability on the fixed 0..1 viridis scale of the attention diagrams, the
  final prediction's cells outlined.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..analysis.layerwise import LayerwisePrediction, MaskLayers
from .fonts import use_in_matplotlib


def render_layerwise(result: LayerwisePrediction, mask: int | None = None, axes: Sequence | None = None):
    """Draw the layer-wise predictions of one text.

    Args:
        result: from :func:`mlmtool.layerwise_predictions`.
        mask: draw only this mask (counted from 1); None = every mask, one row of panels each.
        axes: ``(curve_ax, grid_ax)`` to draw one mask into (then ``mask`` defaults to 1);
            None = a new figure.

    Returns:
        The matplotlib ``Figure`` (``fig.savefig("layers.png")`` writes it).

    Raises:
        ValueError: ``mask`` outside ``1..len(result.masks)``.
    """
    from matplotlib.figure import Figure
    use_in_matplotlib(axes)  # fonts for CJK and other scripts

    if mask is not None and not 1 <= mask <= len(result.masks):
        raise ValueError(f"mask {mask} is outside 1..{len(result.masks)}")
    if axes is not None:
        curve_ax, grid_ax = axes
        _draw_mask(result, result.masks[(mask or 1) - 1], curve_ax, grid_ax)
        return curve_ax.figure
    masks = result.masks if mask is None else [result.masks[mask - 1]]
    rows = result.num_layers + 1
    k = max(len(m.by_layer[0].top) for m in masks)
    height = max(2.6, 0.34 * rows + 1.4)
    fig = Figure(figsize=(4.2 + 1.25 * k, height * len(masks)), layout="constrained")
    grid = fig.subplots(len(masks), 2, squeeze=False, width_ratios=[3.2, 1.25 * k])
    for (curve_ax, grid_ax), m in zip(grid, masks):
        _draw_mask(result, m, curve_ax, grid_ax)
    return fig


def _draw_mask(result: LayerwisePrediction, m: MaskLayers, curve_ax, grid_ax) -> None:
    from matplotlib import colormaps
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import FuncFormatter, NullFormatter

    layers = [r.layer for r in m.by_layer]
    probs = [r.final_probability for r in m.by_layer]
    ranks = [r.final_rank for r in m.by_layer]
    name = f"mask {m.index}" if len(result.masks) > 1 else "the mask"
    curve_ax.plot(layers, probs, marker="o", color="#2a6fdb", label="probability")
    curve_ax.set_ylim(0, 1)
    curve_ax.set_xlabel("layer (0 = embeddings)")
    curve_ax.set_ylabel(f"p('{m.final_token.strip()}')", color="#2a6fdb")
    curve_ax.set_xticks(layers)
    curve_ax.set_title(f"Final prediction at {name}: '{m.final_token.strip()}'", fontsize=10)
    rank_ax = curve_ax.twinx()
    rank_ax.plot(layers, ranks, marker="s", linestyle="--", color="#b3261e", label="rank")
    rank_ax.set_yscale("log")
    rank_ax.set_ylim(max(10, max(ranks) * 1.5), 0.8)  # rank 1 at the top
    rank_ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    rank_ax.yaxis.set_minor_formatter(NullFormatter())
    rank_ax.set_ylabel("rank (1 = top)", color="#b3261e")

    cmap = colormaps["viridis"]
    k = max(len(r.top) for r in m.by_layer)
    values = np.zeros((len(layers), k))
    for y, row in enumerate(m.by_layer):
        values[y, :len(row.top)] = [t.probability for t in row.top]
    grid_ax.imshow(values, cmap=cmap, vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    for y, row in enumerate(m.by_layer):
        for x, t in enumerate(row.top):
            light = t.probability > 0.6  # viridis turns light above ~0.6
            grid_ax.text(x, y, f"{t.token.strip() or repr(t.token)}\n{t.probability:.2f}", ha="center",
                         va="center", fontsize=7, color="black" if light else "white")
            if t.token == m.final_token:
                grid_ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="#e8453c", linewidth=2))
    grid_ax.set_yticks(range(len(layers)), [str(l) for l in layers])
    grid_ax.set_xticks(range(k), [str(i + 1) for i in range(k)])
    grid_ax.set_xlabel("top pieces (rank)")
    grid_ax.set_ylabel("layer")
    grid_ax.set_title("Top pieces per layer (outlined: the final prediction)", fontsize=10)
