"""One self-contained, interactive HTML page for one sentence: predictions and every head.

:func:`render_view` takes plain results (an :class:`~mlmtool.analysis.attention.AttentionResult`
and optionally a :class:`~mlmtool.analysis.predict.Prediction`), never a model, and returns an
:class:`~mlmtool.render._document.HTML` page: Jupyter shows it inline (``_repr_html_``),
``str(view)`` is a complete HTML document and ``view.save(path)`` writes it. The page shows
the sentence, the top-k candidates of each mask, a layers x heads grid of thumbnails, and for
the clicked head a large token x token heatmap plus a BertViz-style two-column line view (Vig
2019, "A Multiscale Visualization of Attention in the Transformer Model"), with
layer/head/role filters and SVG/PNG download of the selected head. Three more panels: the
attention rollout of all layers (Abnar & Zuidema 2020; an
:class:`~mlmtool.analysis.rollout.AttentionSummary`, by default
:func:`~mlmtool.analysis.rollout.attention_rollout` of the attention given), the layer-wise
predictions at each mask (when a :class:`~mlmtool.analysis.layerwise.LayerwisePrediction` is
passed), and "selected tokens": click several tokens of the sentence to see their summed
attention in the selected head and in the rollout.

The page works offline: :func:`~mlmtool.render._document.build_page` inlines its script and
CSS and sets a Content-Security-Policy that forbids every request. Attention travels as 8-bit
levels or half floats, deflate-compressed and base64-encoded (:func:`encode_attention`);
token strings travel as escaped JSON and are inserted with ``textContent`` only. Sizes and
the comparison with BertViz: ``docs/views.md``.

Layers and heads are numbered from 1 everywhere on the page and in ``head_labels``; the
attention array inside :class:`~mlmtool.analysis.attention.AttentionResult` counts from 0.
"""

from __future__ import annotations

import base64
import zlib
from typing import Any, Literal

import numpy as np

from ..analysis.attention import AttentionResult
from ..analysis.heads.labels import head_labels_from, load_head_labels
from ._document import HTML, build_page, colormap_hex, json_for_script, page_assets

#: Attention precision choices: 8-bit levels or IEEE 754 half floats.
Precision = Literal["uint8", "float16"]

#: The type every HTML renderer returns (kept under its old name; it was a dataclass with
#: ``fragment``, ``document`` and ``title``, which :class:`~mlmtool.render._document.HTML` keeps).
HTMLView = HTML

__all__ = ["HTMLView", "Precision", "decode_attention", "encode_attention", "head_labels_from",
           "json_for_script", "load_head_labels", "render_view", "view_payload"]


def encode_attention(attention: np.ndarray, precision: Precision = "uint8",
                     compress: bool = True) -> dict[str, Any]:
    """Pack an attention tensor into the page's compact form.

    Args:
        attention: ``float [layers, heads, seq, seq]``, weights in [0, 1].
        precision: ``"uint8"`` (default): ``q = round(w * 255)`` clipped to 0..255, one
            byte per weight, absolute error at most 1/510; ``"float16"``: IEEE 754 half
            floats, little-endian, two bytes per weight, relative error at most 2**-11.
        compress: deflate the bytes (zlib format, level 6) before base64 (default True).

    Returns:
        A JSON-ready dict: ``shape`` (4 ints), ``dtype`` (``uint8``/``float16``),
        ``scale`` (255 for uint8: weight = q / scale; 1 for float16), ``compression``
        (``"deflate"`` or ``"none"``) and ``data`` (base64 text, RFC 4648), in C order
        (index ``((l * heads + h) * seq + i) * seq + j``, all from 0).

    Raises:
        ValueError: ``attention`` is not 4-D with square last two axes, or unknown
            ``precision``.
    """
    att = np.asarray(attention)
    if att.ndim != 4 or att.shape[2] != att.shape[3]:
        raise ValueError(f"attention must be [layers, heads, seq, seq], got shape {att.shape}")
    if precision == "uint8":
        raw = np.clip(np.rint(att.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
        scale = 255
    elif precision == "float16":
        raw = att.astype("<f2")
        scale = 1
    else:
        raise ValueError(f"unknown precision '{precision}' (use uint8 or float16)")
    data = np.ascontiguousarray(raw).tobytes()
    if compress:
        data = zlib.compress(data, 6)
    return {
        "shape": [int(s) for s in att.shape],
        "dtype": precision,
        "scale": scale,
        "compression": "deflate" if compress else "none",
        "data": base64.b64encode(data).decode("ascii"),
    }


def decode_attention(packed: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_attention` (what the page's JavaScript does), for tests.

    Returns:
        ``float32 [layers, heads, seq, seq]`` weights.
    """
    data = base64.b64decode(packed["data"])
    if packed["compression"] == "deflate":
        data = zlib.decompress(data)
    dtype = np.uint8 if packed["dtype"] == "uint8" else np.dtype("<f2")
    values = np.frombuffer(data, dtype=dtype).astype(np.float32) / float(packed["scale"])
    return values.reshape(packed["shape"])


def _viridis_hex() -> str:
    """The viridis colour map (van der Walt & Smith, matplotlib) as 256 RGB hex triplets."""
    return colormap_hex("viridis")


def _assets() -> tuple[str, str, str]:
    """``(template, css, js)`` of the view from ``mlmtool/templates/view.*`` (the server's
    app page renders the same template)."""
    return page_assets("view")


def _predictions_payload(prediction) -> list[dict]:
    return [{"index": m.index, "position": m.position,
             "candidates": [{"token": c.token, "score": float(c.score), "sequence": c.sequence}
                            for c in m.candidates]}
            for m in prediction.masks]


def _rollout_payload(summary, compress: bool) -> dict[str, Any]:
    """A summary matrix for the page: title, method, layers (from 1) and float16 values."""
    matrix = np.asarray(summary.matrix, dtype=np.float32)[None, None]  # [1, 1, S, S]
    return {"method": summary.method, "title": summary.title, "layers": [int(x) for x in summary.layers],
            "matrix": encode_attention(matrix, "float16", compress)}


def _layerwise_payload(layerwise) -> list[dict]:
    return [{"index": m.index, "position": m.position, "final_token": m.final_token,
             "by_layer": [{"layer": r.layer, "final_rank": r.final_rank, "final_probability": r.final_probability,
                           "top": [{"token": t.token, "probability": t.probability} for t in r.top]}
                          for r in m.by_layer]}
            for m in layerwise.masks]


def _summary_for(attention: AttentionResult, rollout):
    """The rollout panel's summary: ``True`` = :func:`~mlmtool.analysis.rollout.attention_rollout`
    of all layers (the analysis computes it, from the attention given), a summary as given
    (checked to be for the same text), or None for ``False``/``None``.

    Raises:
        ValueError: the summary is for another text.
    """
    if rollout is False or rollout is None:
        return None
    if rollout is True:
        from ..analysis.rollout import attention_rollout

        return attention_rollout(attention)
    if rollout.text != attention.text or len(rollout.tokens) != len(attention.tokens):
        raise ValueError("the rollout and the attention are for different texts")
    return rollout


def _words_payload(attention: AttentionResult, rollout, masks: list[int], precision: Precision,
                   compress: bool) -> dict[str, Any]:
    """The page's word view: ``attention`` aggregated to words (:func:`mlmtool.analysis.words.aggregate_words`,
    Clark et al. 2019) and the rollout aggregated after it was computed on the pieces.

    Returns:
        ``{tokens, special, masks, pieces, note, attention, rollout}``: ``masks`` are the
        unit indices (from 0) holding the piece-level mask positions ``masks``, ``pieces`` the
        token positions each unit covers.
    """
    from ..analysis.words import WORDS_NOTE, aggregate_summary, aggregate_words

    words = aggregate_words(attention)
    unit_of = {p: u for u, group in enumerate(words.pieces) for p in group}
    summary = aggregate_summary(rollout, attention) if rollout is not None else None
    return {"tokens": list(words.tokens), "special": [bool(s) for s in words.special],
            "masks": sorted({unit_of[m] for m in masks if m in unit_of}), "pieces": words.pieces,
            "note": WORDS_NOTE, "attention": encode_attention(words.attention, precision, compress),
            "rollout": _rollout_payload(summary, compress) if summary is not None else None}


def view_payload(attention: AttentionResult, prediction=None, head_labels: dict | list | None = None,
                 title: str | None = None, note: str | None = None, precision: Precision = "uint8",
                 compress: bool = True, rollout=True, layerwise=None, words: bool | None = None) -> dict[str, Any]:
    """The JSON data the view's JavaScript draws (``view.js``), as :func:`render_view` embeds it.

    ``mlmtool serve`` sends the same dict to its page (``POST /api/view``), so the static
    page and the web app draw from one format. Arguments and errors as :func:`render_view`.

    Returns:
        A JSON-ready dict: ``version``, ``title``, ``model``, ``text``, ``tokens``,
        ``special``, ``masks`` (token positions from 0), ``layers``, ``heads``, ``labels``
        (``{"L{l}H{h}": label}``, from 1), ``predictions``, ``note``, ``colormap``,
        ``attention`` (:func:`encode_attention`), ``rollout`` (``{method, title, layers,
        matrix}`` with ``matrix`` a float16 ``[1, 1, S, S]`` :func:`encode_attention`, or
        None), ``layerwise`` (per mask ``{index, position, final_token, by_layer}``, or None),
        ``layer_labels`` (per layer ``"global"``/``"local ±w"``, ``[]`` when every layer is
        global) and ``notes`` (the model's attention notes, :mod:`mlmtool.analysis.arch`),
        ``words`` (the word view, :func:`_words_payload`, or None when every word is one piece
        or ``words=False``) and ``unit`` (``"word"`` or ``"token"``: the view shown first).
    """
    from ..analysis.words import is_piece_level

    att = attention.attention
    n = len(attention.tokens)
    if att.ndim != 4 or att.shape[2:] != (n, n):
        raise ValueError(f"attention shape {att.shape} does not match {n} tokens")
    if prediction is not None and prediction.text != attention.text:
        raise ValueError("the prediction and the attention are for different texts")
    labels = head_labels_from(head_labels, attention.num_layers, attention.num_heads)
    title = title or f"mlmtool: {attention.model_name or 'attention'}"
    masks = sorted({m.position for m in prediction.masks}) if prediction is not None else []
    rollout = _summary_for(attention, rollout)
    if layerwise is not None and layerwise.text != attention.text:
        raise ValueError("the layer-wise predictions and the attention are for different texts")
    payload = {
        "version": 1,
        "title": title,
        "model": attention.model_name,
        "text": attention.text,
        "tokens": list(attention.tokens),
        "special": [bool(s) for s in attention.special],
        "masks": masks,
        "layers": attention.num_layers,
        "heads": attention.num_heads,
        "labels": labels,
        "predictions": _predictions_payload(prediction) if prediction is not None else None,
        "note": note,
        "colormap": _viridis_hex(),
        "attention": encode_attention(att, precision, compress),
        "rollout": _rollout_payload(rollout, compress) if rollout is not None else None,
        "layerwise": _layerwise_payload(layerwise) if layerwise is not None else None,
        "layer_labels": list(attention.layer_labels),
        "notes": list(attention.notes),
        "words": None,
        "unit": "token",
    }
    if words is not False and attention.pieces is None and is_piece_level(attention):
        payload["words"] = _words_payload(attention, rollout, masks, precision, compress)
        payload["unit"] = "word" if words else "token"
    return payload


def render_view(attention: AttentionResult, prediction=None, head_labels: dict | list | None = None,
                title: str | None = None, note: str | None = None, precision: Precision = "uint8",
                compress: bool = True, rollout=True, layerwise=None, words: bool | None = None) -> HTML:
    """Render the interactive view of one sentence.

    Args:
        attention: from :func:`mlmtool.attention` (``attention.attention`` is
            ``float32 [layers, heads, seq, seq]``, indices from 0).
        prediction: a :class:`~mlmtool.analysis.predict.Prediction` for the same text (top-k
            candidates and probabilities per mask), or None for attention only.
        head_labels: head roles, layers and heads from 1: ``{(3, 10): "next token"}``,
            ``{"L3H10": "next token"}`` or a whole ``heads.json`` (see
            :func:`head_labels_from`).
        title: page title (default ``"mlmtool: <model name>"``).
        note: one line shown above the grid, e.g. why there are no predictions.
        precision: ``"uint8"`` (default, 1 byte per weight) or ``"float16"`` (2 bytes).
        compress: deflate the attention bytes (default True; the browser needs
            ``DecompressionStream``).
        rollout: the summary panel's matrix: True (default) = the attention rollout of all
            layers (:func:`~mlmtool.analysis.rollout.attention_rollout` of ``attention``); an
            :class:`~mlmtool.analysis.rollout.AttentionSummary` for the same text (rollout
            of some layers, or flow); False = no rollout panel (the "selected tokens"
            panel then sums the selected head only). Sent as float16.
        layerwise: a :class:`~mlmtool.analysis.layerwise.LayerwisePrediction` for the same
            text (the layer-wise panel), or None.
        words: the page's "Words" toggle (attention aggregated to words, Clark et al. 2019;
            :func:`mlmtool.analysis.words.aggregate_words`): None (default) = available, pieces
            shown first; True = available, words shown first; False = not in the page. Only
            when some word of the text has several pieces.

    Returns:
        An :class:`~mlmtool.render._document.HTML` page (``str()`` = the document,
        ``.fragment`` = what ``_repr_html_`` shows, ``.save(path)``), built by
        :func:`~mlmtool.render._document.build_page`.

    Raises:
        MlmtoolError: head labels name heads outside the model.
        ValueError: ``attention.attention`` does not match the tokens, or ``prediction``,
            ``rollout`` or ``layerwise`` is for another text.

    Example:
        >>> view = render_view(mlmtool.attention(lm, "The cat sat."))  # doctest: +SKIP
        >>> view.save("view.html")  # doctest: +SKIP
    """
    payload = view_payload(attention, prediction, head_labels, title, note, precision, compress,
                           rollout=rollout, layerwise=layerwise, words=words)
    return build_page("view", "mlmtoolView", payload, payload["title"], "mlmv")
