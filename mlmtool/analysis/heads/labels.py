"""Head-role labels from whatever a user hands in, as one dict ``{"L3H10": "next token"}``.

``mlmtool view --heads heads.json``, ``mlmtool serve --heads`` and the library's
``render_view(head_labels=...)`` accept labels in several shapes (a ``heads.json`` written by
``mlmtool heads``, hand-written dicts, lists of records); :func:`head_labels_from` reads them
all into one form. Layers and heads are counted from 1 everywhere here.

The keys are spelled ``L{layer}H{head}`` (:func:`label_key`) because the view's JSON payload
(``view_payload``, ``POST /api/view``) and its page script use that spelling; people read
heads as ``L3-H10`` (:func:`mlmtool.render.heads_view.head_name`), and both spellings are
accepted as input.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

from ...errors import MlmtoolError

#: A head written as text: ``"L3H10"``, ``"L3-H10"``, ``"3,10"``, ``"3-10"``, ``"l3 h10"``.
HEAD_KEY = re.compile(r"^\s*L?\s*(\d+)\s*[^\d]+\s*H?\s*(\d+)\s*$", re.IGNORECASE)

#: Fields of a record that may hold its label, in order of preference.
LABEL_FIELDS = ("label", "role", "pattern", "name")

#: Keys under which a whole document (e.g. ``heads.json``) keeps its labels.
CONTAINER_KEYS = ("labels", "heads")


def label_key(layer: int, head: int) -> str:
    """``"L{layer}H{head}"``: the key of a head in the labels dict (both from 1)."""
    return f"L{layer}H{head}"


def label_of(value: Any) -> str | None:
    """The label text of ``value``: the string itself, or a record's first string field of
    :data:`LABEL_FIELDS`; None when there is none."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for field in LABEL_FIELDS:
            if isinstance(value.get(field), str):
                return value[field]
    return None


def _head_number(layer: Any, head: Any, num_layers: int | None, num_heads: int | None) -> tuple[int, int]:
    """``(layer, head)`` as ints from 1, checked against the model's size when given.

    Raises:
        MlmtoolError: not numbers, below 1, or outside ``1..num_layers`` x ``1..num_heads``.
    """
    try:
        l, h = int(layer), int(head)
    except (TypeError, ValueError):
        raise MlmtoolError(f"head labels: '{layer}', '{head}' is not a layer and head number") from None
    if l < 1 or h < 1 or (num_layers and l > num_layers) or (num_heads and h > num_heads):
        size = f"1..{num_layers} x 1..{num_heads}" if num_layers and num_heads else "numbers from 1"
        raise MlmtoolError(f"head labels: layer {l}, head {h} is outside the model ({size})")
    return l, h


#: Adds one label: ``put(layer, head, value)``; a value without a label is skipped.
Put = Callable[[Any, Any, Any], None]


def _is_layer_key(key: Any, value: Any) -> bool:
    """``{"3": {"10": "label"}}``: a layer number whose value is a dict of heads (not a record)."""
    digits = isinstance(key, int) or (isinstance(key, str) and key.strip().isdigit())
    return digits and isinstance(value, dict) and label_of(value) is None


def _read_mapping(obj: dict, put: Put) -> None:
    """Labels keyed by ``(layer, head)``, by ``"L3H10"``-like text, or by layer then head.

    Raises:
        MlmtoolError: a key that names no head.
    """
    for key, value in obj.items():
        match = HEAD_KEY.match(key) if isinstance(key, str) else None
        if isinstance(key, tuple) and len(key) == 2:
            put(key[0], key[1], value)
        elif match:
            put(match.group(1), match.group(2), value)
        elif _is_layer_key(key, value):
            for head, sub in value.items():
                put(key, head, sub)
        else:
            raise MlmtoolError(f"head labels: key '{key}' is not a head (use 'L3H10' or (3, 10))")


def _read_records(items: list, put: Put) -> None:
    """Records ``{"layer": 3, "head": 10, "label": ...}``; other items are skipped."""
    for item in items:
        if isinstance(item, dict) and "layer" in item and "head" in item:
            put(item["layer"], item["head"], item)


def _read_labels(obj: Any, put: Put) -> None:
    """Any accepted form: a container (``"labels"``/``"heads"``), a mapping or a record list.

    Raises:
        MlmtoolError: ``obj`` is neither a dict nor a list, or a key names no head.
    """
    if isinstance(obj, dict):
        for key in CONTAINER_KEYS:
            if key in obj and isinstance(obj[key], (dict, list)):
                return _read_labels(obj[key], put)
        return _read_mapping(obj, put)
    if isinstance(obj, list):
        return _read_records(obj, put)
    raise MlmtoolError("head labels must be a dict or a list of {layer, head, label} records")


def _add_syntax(obj: Any, out: dict[str, str], put: Put) -> None:
    """``heads.json`` with ``--conllu``: each relation's best head that beats the fixed-offset
    baseline gets ``"nsubj dep->gov"`` appended to its label (or as its label)."""
    records = (obj.get("syntax") or []) if isinstance(obj, dict) else []
    for r in records:
        if isinstance(r, dict) and "layer" in r and "head" in r and (r.get("accuracy") or 0) > (r.get("baseline") or 0):
            key, tag = label_key(r["layer"], r["head"]), f"{r.get('relation')} {r.get('direction')}"
            put(r["layer"], r["head"], f"{out[key]}; {tag}" if key in out else tag)


def head_labels_from(obj: Any, num_layers: int | None = None, num_heads: int | None = None
                     ) -> dict[str, str]:
    """Normalise head-role labels to ``{"L{l}H{h}": label}`` with layers and heads from 1.

    Accepted forms (all counted from 1, as ``mlmtool heads`` writes them):

    * ``{(layer, head): "label"}``;
    * ``{"L3H10": "label"}`` (also ``"L3-H10"``, ``"3,10"``, ``"3-10"``, ``"L3 H10"``, any case);
    * ``{"3": {"10": "label"}}`` (layer, then head);
    * a list of records ``[{"layer": 3, "head": 10, "label": "next token"}, ...]`` (the
      label may be under ``label``, ``role``, ``pattern`` or ``name``);
    * a dict holding one of the above under ``"labels"`` or ``"heads"`` (a whole
      ``heads.json``); a value may itself be a record with a ``label`` field;
    * with ``mlmtool heads --conllu``, its ``"syntax"`` records: each relation's best head
      (when it beats the fixed-offset baseline) adds ``"nsubj dep->gov"`` to that head's label.

    Args:
        obj: labels in one of the forms above, or None.
        num_layers, num_heads: when given, every head must lie in ``1..num_layers`` x
            ``1..num_heads``.

    Returns:
        ``{"L{l}H{h}": label}`` (:func:`label_key`); empty for ``None`` or an empty dict.

    Raises:
        MlmtoolError: a key that names no head, a head outside the model, or no labels
            found in a non-empty object.
    """
    if obj is None:
        return {}
    out: dict[str, str] = {}

    def put(layer: Any, head: Any, value: Any) -> None:
        text = label_of(value)
        if text is not None:
            out[label_key(*_head_number(layer, head, num_layers, num_heads))] = text

    _read_labels(obj, put)
    _add_syntax(obj, out, put)
    if not out and obj:
        raise MlmtoolError("no head labels found (expected e.g. {\"L3H10\": \"next token\"})")
    return out


def load_head_labels(path: str | Path, num_layers: int | None = None,
                     num_heads: int | None = None) -> dict[str, str]:
    """Read head labels from a JSON file (e.g. ``heads.json`` of ``mlmtool heads``).

    Args:
        path: a UTF-8 JSON file in a form :func:`head_labels_from` accepts.
        num_layers, num_heads: the model's size, checked as in :func:`head_labels_from`.

    Returns:
        ``{"L{l}H{h}": label}`` as :func:`head_labels_from`.

    Raises:
        MlmtoolError: the file is missing, a directory, not UTF-8 JSON, or holds no valid labels.
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
