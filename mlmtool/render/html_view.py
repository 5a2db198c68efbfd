"""One self-contained, interactive HTML page for one sentence: predictions and every head.

:func:`render_view` takes plain results (an :class:`~mlmtool.attention.AttentionResult` and
optionally a :class:`~mlmtool.predict.Prediction`), never a model, and returns an
:class:`HTMLView`: Jupyter shows it inline (``_repr_html_``), ``str(view)`` is a complete
HTML document and ``view.save(path)`` writes it. The page shows the sentence, the top-k
candidates of each mask, a layers x heads grid of thumbnails, and for the clicked head a
large token x token heatmap plus a BertViz-style two-column line view (Vig 2019, "A
Multiscale Visualization of Attention in the Transformer Model"), with layer/head/role
filters and SVG/PNG download of the selected head. Three more panels: the attention rollout
of all layers (Abnar & Zuidema 2020; computed from the attention given, or any
:class:`~mlmtool.analysis.rollout.AttentionSummary` passed in, e.g. flow), the layer-wise
predictions at each mask (when a :class:`~mlmtool.analysis.layerwise.LayerwisePrediction`
is passed), and "selected tokens": click several tokens of the sentence to see their summed
attention in the selected head and in the rollout.

What it fixes compared with BertViz's ``head_view`` (``bertviz/head_view.py``):

* **Offline**: the JavaScript and CSS (``mlmtool/templates/view.{js,css}``) are inlined;
  the page loads nothing (BertViz loads require.js, d3 and jQuery from CDNs). The saved
  document carries a Content-Security-Policy with ``default-src 'none'`` and the hash of
  its one script, so the browser refuses any request and any other script.
* **Small**: attention is sent as 8-bit values (``round(weight * 255)``, error at most
  1/510) or IEEE half floats, deflate-compressed (``zlib``, RFC 1950) and base64-encoded,
  and decoded in the browser with ``DecompressionStream`` (Chrome 80, Firefox 113, Safari
  16.4). BertViz writes every weight as a JSON float: ~52 MB at 128 tokens for BERT-base;
  ``scripts/benchmarks/bench_html.py`` measures both.
* **Safe**: token strings travel as JSON inside ``<script type="application/json">`` with
  ``<``, ``>``, ``&``, U+2028 and U+2029 escaped as ``\\uXXXX``, and the page inserts them
  with ``textContent`` only, so a sentence such as ``<script>alert(1)</script>`` is shown
  as text and runs nothing.

Layers and heads are numbered from 1 everywhere on the page and in ``head_labels``; the
attention array inside :class:`~mlmtool.attention.AttentionResult` counts from 0.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import uuid
import zlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..analysis.attention import AttentionResult
from ..errors import MlmtoolError

#: Attention precision choices: 8-bit levels or IEEE 754 half floats.
Precision = Literal["uint8", "float16"]

_HEAD_KEY = re.compile(r"^\s*L?\s*(\d+)\s*[^\d]+\s*H?\s*(\d+)\s*$", re.IGNORECASE)
_LABEL_FIELDS = ("label", "role", "pattern", "name")


@dataclass
class HTMLView:
    """A rendered view: an HTML fragment plus the standalone document around it.

    Attributes:
        fragment: a ``<div>`` with its own ``<style>``, data and ``<script>`` (what
            Jupyter shows; several fragments can share one page, ids are unique).
        document: the complete HTML5 document (``<!DOCTYPE html>``... with a
            Content-Security-Policy that forbids every network request).
        title: the page title.
    """

    fragment: str
    document: str
    title: str

    def _repr_html_(self) -> str:
        """Jupyter's rich display: the fragment."""
        return self.fragment

    def __str__(self) -> str:
        """The complete, self-contained HTML document."""
        return self.document

    def save(self, path: str | Path) -> Path:
        """Write the document to ``path`` (UTF-8) and return the path.

        Overwrites without asking; the command line checks first
        (:func:`mlmtool.commands._common.check_output_file`).
        """
        path = Path(path)
        path.write_text(self.document, encoding="utf-8")
        return path


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


def head_labels_from(obj: Any, num_layers: int | None = None, num_heads: int | None = None
                     ) -> dict[str, str]:
    """Normalise head-role labels to ``{"L{l}H{h}": label}`` with layers and heads from 1.

    Accepted forms (all counted from 1, as ``mlmtool heads`` writes them):

    * ``{(layer, head): "label"}``;
    * ``{"L3H10": "label"}`` (also ``"3,10"``, ``"3-10"``, ``"L3 H10"``, any case);
    * ``{"3": {"10": "label"}}`` (layer, then head);
    * a list of records ``[{"layer": 3, "head": 10, "label": "next token"}, ...]`` (the
      label may be under ``label``, ``role``, ``pattern`` or ``name``);
    * a dict holding one of the above under ``"labels"`` or ``"heads"`` (a whole
      ``heads.json``); a value may itself be a record with a ``label`` field;
    * with ``mlmtool heads --conllu``, its ``"syntax"`` records: each relation's best head
      (when it beats the fixed-offset baseline) adds ``"nsubj dep->gov"`` to that head's label.

    Args:
        obj: labels in one of the forms above.
        num_layers, num_heads: when given, every head must lie in ``1..num_layers`` x
            ``1..num_heads``.

    Returns:
        ``{"L{l}H{h}": label}``; empty for ``None`` or an empty dict.

    Raises:
        MlmtoolError: a key that names no head, a head outside the model, or no labels
            found in a non-empty object.
    """
    if obj is None:
        return {}
    out: dict[str, str] = {}

    def label_of(value: Any) -> str | None:
        if isinstance(value, str):
            return value
        if isinstance(value, dict):
            for f in _LABEL_FIELDS:
                if isinstance(value.get(f), str):
                    return value[f]
        return None

    def put(layer: Any, head: Any, value: Any) -> None:
        text = label_of(value)
        if text is None:
            return
        try:
            l, h = int(layer), int(head)
        except (TypeError, ValueError):
            raise MlmtoolError(f"head labels: '{layer}', '{head}' is not a layer and head number") from None
        if l < 1 or h < 1 or (num_layers and l > num_layers) or (num_heads and h > num_heads):
            size = f"1..{num_layers} x 1..{num_heads}" if num_layers and num_heads else "numbers from 1"
            raise MlmtoolError(f"head labels: layer {l}, head {h} is outside the model ({size})")
        out[f"L{l}H{h}"] = text

    def walk(o: Any) -> None:
        if isinstance(o, dict):
            for key in ("labels", "heads"):
                if key in o and isinstance(o[key], (dict, list)):
                    walk(o[key])
                    return
            for key, value in o.items():
                if isinstance(key, tuple) and len(key) == 2:
                    put(key[0], key[1], value)
                elif isinstance(key, str) and _HEAD_KEY.match(key):
                    m = _HEAD_KEY.match(key)
                    put(m.group(1), m.group(2), value)
                elif (isinstance(key, int) or (isinstance(key, str) and key.strip().isdigit())) \
                        and isinstance(value, dict) and label_of(value) is None:
                    for head, sub in value.items():
                        put(key, head, sub)
                else:
                    raise MlmtoolError(f"head labels: key '{key}' is not a head (use 'L3H10' or (3, 10))")
        elif isinstance(o, list):
            for item in o:
                if isinstance(item, dict) and "layer" in item and "head" in item:
                    put(item["layer"], item["head"], item)
        else:
            raise MlmtoolError("head labels must be a dict or a list of {layer, head, label} records")

    walk(obj)
    for r in (obj.get("syntax") or []) if isinstance(obj, dict) else []:
        if isinstance(r, dict) and "layer" in r and "head" in r and (r.get("accuracy") or 0) > (r.get("baseline") or 0):
            key, tag = f"L{r['layer']}H{r['head']}", f"{r.get('relation')} {r.get('direction')}"
            put(r["layer"], r["head"], f"{out[key]}; {tag}" if key in out else tag)
    if not out and obj:
        raise MlmtoolError("no head labels found (expected e.g. {\"L3H10\": \"next token\"})")
    return out


def load_head_labels(path: str | Path, num_layers: int | None = None,
                     num_heads: int | None = None) -> dict[str, str]:
    """Read head labels from a JSON file (e.g. ``heads.json`` of ``mlmtool heads``).

    Returns:
        ``{"L{l}H{h}": label}`` as :func:`head_labels_from`.

    Raises:
        MlmtoolError: the file is missing, not UTF-8 JSON, or holds no valid labels.
    """
    p = Path(path)
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MlmtoolError(f"no such file: '{p}'") from None
    except IsADirectoryError:
        raise MlmtoolError(f"'{p}' is a directory, expected a JSON file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MlmtoolError(f"'{p}' is not valid JSON ({str(exc).splitlines()[0]})") from None
    return head_labels_from(obj, num_layers, num_heads)


@lru_cache(maxsize=1)
def _viridis_hex() -> str:
    """The viridis colour map (van der Walt & Smith, matplotlib) as 256 RGB hex triplets."""
    from matplotlib import colormaps  # colour data only; no figure is made

    rgb = (colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)
    return rgb.tobytes().hex()


@lru_cache(maxsize=1)
def _assets() -> tuple[str, str, str]:
    """``(template, css, js)`` text from the package data folder ``mlmtool/templates``."""
    folder = resources.files("mlmtool") / "templates"
    return tuple((folder / name).read_text(encoding="utf-8")  # type: ignore[return-value]
                 for name in ("view.html", "view.css", "view.js"))


def json_for_script(payload: Any) -> str:
    """``json.dumps`` made safe inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` become ``\\u003c``, ``\\u003e``, ``\\u0026`` (so no ``</script>``
    or ``<!--`` can close the element) and U+2028/U+2029 are escaped; ``JSON.parse``
    returns the original strings.
    """
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


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


def view_payload(attention: AttentionResult, prediction=None, head_labels: dict | list | None = None,
                 title: str | None = None, note: str | None = None, precision: Precision = "uint8",
                 compress: bool = True, rollout=True, layerwise=None) -> dict[str, Any]:
    """The JSON data the view's JavaScript draws (``view.js``), as :func:`render_view` embeds it.

    ``mlmtool serve`` sends the same dict to its page (``POST /api/view``), so the static
    page and the web app draw from one format. Arguments and errors as :func:`render_view`.

    Returns:
        A JSON-ready dict: ``version``, ``title``, ``model``, ``text``, ``tokens``,
        ``special``, ``masks`` (token positions from 0), ``layers``, ``heads``, ``labels``
        (``{"L{l}H{h}": label}``, from 1), ``predictions``, ``note``, ``colormap``,
        ``attention`` (:func:`encode_attention`), ``rollout`` (``{method, title, layers,
        matrix}`` with ``matrix`` a float16 ``[1, 1, S, S]`` :func:`encode_attention`, or
        None) and ``layerwise`` (per mask ``{index, position, final_token, by_layer}``, or None).
    """
    att = attention.attention
    n = len(attention.tokens)
    if att.ndim != 4 or att.shape[2:] != (n, n):
        raise ValueError(f"attention shape {att.shape} does not match {n} tokens")
    if prediction is not None and prediction.text != attention.text:
        raise ValueError("the prediction and the attention are for different texts")
    labels = head_labels_from(head_labels, attention.num_layers, attention.num_heads)
    title = title or f"mlmtool: {attention.model_name or 'attention'}"
    masks = sorted({m.position for m in prediction.masks}) if prediction is not None else []
    if rollout is True:
        from ..analysis.rollout import attention_rollout

        rollout = attention_rollout(attention)
    if rollout is not False and rollout is not None and \
            (rollout.text != attention.text or len(rollout.tokens) != n):
        raise ValueError("the rollout and the attention are for different texts")
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
        "rollout": _rollout_payload(rollout, compress) if rollout not in (None, False) else None,
        "layerwise": _layerwise_payload(layerwise) if layerwise is not None else None,
    }
    return payload


def render_view(attention: AttentionResult, prediction=None, head_labels: dict | list | None = None,
                title: str | None = None, note: str | None = None, precision: Precision = "uint8",
                compress: bool = True, rollout=True, layerwise=None) -> HTMLView:
    """Render the interactive view of one sentence.

    Args:
        attention: from :func:`mlmtool.attention` (``attention.attention`` is
            ``float32 [layers, heads, seq, seq]``, indices from 0).
        prediction: a :class:`~mlmtool.predict.Prediction` for the same text (top-k
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
            layers, computed here from ``attention`` (no model needed); an
            :class:`~mlmtool.analysis.rollout.AttentionSummary` for the same text (rollout
            of some layers, or flow); False = no rollout panel (the "selected tokens"
            panel then sums the selected head only). Sent as float16.
        layerwise: a :class:`~mlmtool.analysis.layerwise.LayerwisePrediction` for the same
            text (the layer-wise panel), or None.

    Returns:
        An :class:`HTMLView` (``_repr_html_``, ``str()`` = document, ``.save(path)``).

    Raises:
        MlmtoolError: head labels name heads outside the model.
        ValueError: ``attention.attention`` does not match the tokens, or ``prediction``,
            ``rollout`` or ``layerwise`` is for another text.

    Example:
        >>> view = render_view(mlmtool.attention(lm, "The cat sat."))  # doctest: +SKIP
        >>> view.save("view.html")  # doctest: +SKIP
    """
    import jinja2

    payload = view_payload(attention, prediction, head_labels, title, note, precision, compress,
                           rollout=rollout, layerwise=layerwise)
    title = payload["title"]
    root_id = f"mlmv-{uuid.uuid4().hex[:12]}"
    template, css, js = _assets()
    script = f"(function(){{\n{js}\nmlmtoolView({json.dumps(root_id)});\n}})();"
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    fragment = env.from_string(template).render(
        root_id=root_id, title=title, css=css, data=json_for_script(payload), script=script)
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    csp = (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
           "img-src data: blob:; base-uri 'none'; form-action 'none'")
    document = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n</head>\n<body style=\"margin:0\">\n"
        f"{fragment}\n</body>\n</html>\n")
    return HTMLView(fragment=fragment, document=document, title=title)
