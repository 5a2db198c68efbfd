"""Pictures of a comparison: the layers × heads distance heatmap (PNG) and one HTML page.

Both take a :class:`~mlmtool.analysis.compare.ComparisonResult` (plain data), never a model.

* :func:`render_compare_heatmap` draws ``result.distance`` with the heads report's
  :func:`~mlmtool.render.heads_view.render_heatmap` and returns the matplotlib ``Figure``.
* :func:`render_compare_html` returns an :class:`~mlmtool.render._document.HTML` page built
  by :func:`~mlmtool.render._document.build_page` (JavaScript and CSS from
  ``mlmtool/templates/compare.{html,js,css}`` and the shared ``decode.js`` inlined, a
  Content-Security-Policy that forbids every request) with both sides' head
  grids, a difference grid (B − A, signed colours, each head's distance written under it),
  the predictions side by side, both sides' layer-wise predictions at the masks and, for
  the clicked head, both large heatmaps and their difference. Token text travels as escaped
  JSON and is inserted with ``textContent`` only.
"""

from __future__ import annotations

import numpy as np

from ..analysis.compare import CITATION, METHOD, ComparisonResult
from ._document import HTML, build_page, colormap_hex
from .heads_view import render_heatmap
from .html_view import encode_attention
from .fonts import use_in_matplotlib

#: File name ``mlmtool compare -o DIR`` gives the heatmap.
HEATMAP_NAME = "compare_heads.png"


def render_compare_heatmap(result: ComparisonResult, ax=None, title: str | None = None):
    """Heatmap of every head's Jensen–Shannon distance (layers × heads, from 1).

    Args:
        result: from :func:`~mlmtool.analysis.compare.compare_models` or ``compare_texts``.
        ax: a matplotlib ``Axes`` to draw into; default a new figure.
        title: default ``"A vs B: attention change per head (n sentences)"``.

    Returns:
        The matplotlib ``Figure``. The colour scale runs from 0 to the largest distance.
    """
    n = len(result.texts_a)
    where = f"{n} sentences" if n > 1 else ("aligned words" if result.kind == "texts" else "1 sentence")
    title = title or f"{result.labels[0]} vs {result.labels[1]}: attention change per head ({where})"
    top = float(np.nanmax(result.distance)) if result.distance.size else 0.0
    use_in_matplotlib(ax)  # fonts for CJK and other scripts
    if ax is None:  # room for the title and the colour bar's caption when there are few heads
        from matplotlib.figure import Figure

        layers, heads = result.distance.shape
        ax = Figure(figsize=(max(6.0, 2.2 + 0.55 * heads), max(3.2, 1.5 + 0.45 * layers)), dpi=100,
                    layout="constrained").add_subplot()
    return render_heatmap(result.distance, title, ax, vmin=0.0, vmax=max(top, 1e-6),
                          colorbar_label="Jensen-Shannon distance (0 = same)", fmt="{:.3f}")


def _predictions(preds) -> list:
    """Per sentence: None or the masks' candidates (word, probability)."""
    return [None if p is None else [{"mask": m.index, "candidates": [{"word": c.word, "score": float(c.score)}
                                                                      for c in m.candidates]} for m in p.masks]
            for p in preds]


def _layers(lw) -> list | None:
    """One sentence's layer-wise predictions for the page: per mask, the final word and per
    layer the top three pieces and the final word's rank."""
    if lw is None:
        return None
    return [{"mask": m.index, "final": m.final_token,
             "layers": [{"layer": r.layer, "top": [[t.token, round(t.probability, 4)] for t in r.top[:3]],
                         "rank": r.final_rank} for r in m.by_layer]} for m in lw.masks]


def render_compare_html(result: ComparisonResult, title: str | None = None, compress: bool = True) -> HTML:
    """Render the interactive comparison page.

    Args:
        result: the comparison (its shown sentence's attention is drawn; distances are the
            averages over all its sentences).
        title: page title (default ``"mlmtool compare: A vs B"``).
        compress: deflate the attention bytes (default True; the browser needs
            ``DecompressionStream``: Chrome 80, Firefox 113, Safari 16.4).

    Returns:
        An :class:`~mlmtool.render._document.HTML` page (``str()`` = the document,
        ``.fragment`` = what ``_repr_html_`` shows, ``.save(path)``).

    Raises:
        ValueError: the distances hold NaN or infinity (not JSON).
    """
    title = title or f"mlmtool compare: {result.labels[0]} vs {result.labels[1]}"
    return build_page("compare", "mlmtoolCompare", compare_payload(result, title, compress), title, "mlmc")


def compare_payload(result: ComparisonResult, title: str, compress: bool = True) -> dict:
    """The data of the comparison page (what ``compare.js`` draws): attention packed by
    :func:`~mlmtool.render.html_view.encode_attention`, distances, predictions, alignment.

    Used by :func:`render_compare_html` and by the Compare tab of ``mlmtool serve``
    (``POST /api/compare/view``).

    Raises:
        ValueError: the distances hold NaN or infinity (not JSON).
    """
    return {
        "version": 1,
        "title": title,
        "kind": result.kind,
        "labels": list(result.labels),
        "models": list(result.models),
        "texts_a": list(result.texts_a),
        "texts_b": list(result.texts_b),
        "shown": result.shown,
        "method": METHOD,
        "citation": CITATION,
        "layers": result.num_layers,
        "heads": result.num_heads,
        "distance": [[round(float(d), 6) for d in row] for row in result.distance],
        "units_a": list(result.units_a),
        "units_b": list(result.units_b),
        "pairs": [[int(a), int(b)] for a, b in result.pairs],
        "attention_a": encode_attention(result.attention_a, "uint8", compress),
        "attention_b": encode_attention(result.attention_b, "uint8", compress),
        "changes": [c.to_dict() for c in result.changes],
        "predictions_a": _predictions(result.predictions_a),
        "predictions_b": _predictions(result.predictions_b),
        "layerwise_a": _layers(result.layerwise_a[result.shown]) if result.layerwise_a else None,
        "layerwise_b": _layers(result.layerwise_b[result.shown]) if result.layerwise_b else None,
        "alignment": [{"a": w.word_a, "b": w.word_b, "same": w.same} for w in result.alignment],
        "notes": list(result.notes),
        "viridis": colormap_hex("viridis"),
        "diverging": colormap_hex("RdBu_r"),
    }
