"""Head scores as plain data: the result dataclasses, head labels and the ``heads.json`` layout.

:class:`HeadScores` holds every head's per-sentence metrics (:mod:`.metrics`); it ranks
heads (:meth:`HeadScores.top`), names them (:func:`head_labels`) and turns everything into
JSON-ready data (:meth:`HeadScores.to_dict`, the ``heads.json`` format). No model and no
forward pass here.

Layers and heads are numbered from 0 inside the arrays (``[layers, heads]``) and from 1 in
everything a user sees: :meth:`HeadScores.top`, :func:`head_labels` output keys, the JSON of
:meth:`HeadScores.to_dict` and the report.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...defaults import THRESHOLD
from .metrics import METRICS, PATTERNS

#: Labels beyond the patterns: a broad head, and a head with no clear pattern.
BROAD, MIXED = "broad", "mixed"

#: Default thresholds for :func:`head_labels`.
DEFAULT_THRESHOLD = THRESHOLD
DEFAULT_BROAD_THRESHOLD = 0.75

#: Bump when the layout of :meth:`HeadScores.to_dict` changes incompatibly.
JSON_VERSION = 1

CITATION = ('Clark, Khandelwal, Levy & Manning (2019), "What Does BERT Look At? An Analysis '
            "of BERT's Attention\", BlackboxNLP, arXiv:1906.04341")

#: Short human titles; ``{cls}``/``{sep}`` become the model's special tokens.
TITLES = {
    "prev": "the previous word",
    "next": "the next word",
    "self": "the word itself",
    "cls": "{cls}",
    "sep": "{sep}",
    "punct": "punctuation",
    "entropy": "entropy (bits)",
    "broadness": "broadness",
    "next_peak": "peaks at next word",
    "prev_peak": "peaks at previous word",
    BROAD: "broad attention",
    MIXED: "mixed",
}

#: One-line readings of a head whose strongest pattern is this one (for the report).
READINGS = {
    "prev": "each word looks at the word just before it (a left-context / bigram head).",
    "next": "each word looks at the word just after it (a right-context head).",
    "self": "each word mostly keeps its own representation (an identity-like head).",
    "cls": "words park their attention on {cls}, a no-op when the head has nothing to do.",
    "sep": "words park their attention on {sep}; Clark et al. read this as a no-op head "
           "(attention to [SEP] carries little gradient).",
    "punct": "words attend to punctuation (commas, full stops), another frequent parking spot.",
    "entropy": "High entropy means the head spreads its attention over the whole sentence "
               "(bag-of-words); low entropy means it picks one target.",
}




# --------------------------------------------------------------------------------------------
# Data


@dataclass
class Link:
    """One attention link between two units of a sentence (words or special tokens).

    Attributes:
        source: the attending word (surface form).
        target: the attended unit (a word or a special token such as ``[SEP]``).
        weight: word-level attention weight in [0, 1].
        source_index: position of the source among the sentence's units (from 0;
            unit 0 is ``[CLS]`` for BERT).
        target_index: position of the target among the units (from 0).
    """

    source: str
    target: str
    weight: float
    source_index: int
    target_index: int


@dataclass
class HeadExample:
    """An example sentence for one head: its strongest word-level links.

    Attributes:
        metric: the pattern it illustrates (a key of :data:`METRICS`) or ``"pair"``.
        layer: layer number, from 1.
        head: head number, from 1.
        sentence: the sentence.
        score: the head's score for ``metric`` on this sentence.
        units: the sentence's units (special tokens and words, in order).
        links: for each word, its most attended unit, strongest first (at most 8).
    """

    metric: str
    layer: int
    head: int
    sentence: str
    score: float
    units: list[str]
    links: list[Link]


@dataclass
class PairScores:
    """How much word ``source`` attends to word ``target`` in every head.

    Averaged over the sentences where both occur (every source/target occurrence pair in
    a sentence counts; the per-sentence mean is then averaged over sentences).

    Attributes:
        source: the attending word(s) as given (``quickly`` or ``quickly|slowly``).
        target: the attended word(s) as given.
        n_sentences: sentences containing both.
        n_occurrences: (source, target) occurrence pairs counted.
        attention: ``float32 [layers, heads]`` mean weight of source → target (fraction of
            the source word's attention, in [0, 1]); indices from 0.
        hit_rate: ``float32 [layers, heads]`` fraction of occurrences where ``target`` is the
            word the source attends to most (specials excluded).
        offsets: ``{target position - source position: count}`` in words, so a reader can
            see when a pair is mostly adjacent (then a next/previous-word head will win).
        sentences: indices (from 0) of the sentences used, into ``HeadScores.sentences``.
        example: the best-ranked head's links in the sentence where it scores highest.
    """

    source: str
    target: str
    n_sentences: int
    n_occurrences: int
    attention: np.ndarray
    hit_rate: np.ndarray
    offsets: dict[int, int]
    sentences: list[int]
    example: HeadExample | None = None

    def top(self, k: int = 5) -> list[tuple[int, int, float, float]]:
        """The ``k`` heads with the most source → target attention.

        Returns:
            ``(layer, head, attention, hit_rate)`` tuples, layers/heads from 1, best first.
        """
        order = np.argsort(-self.attention, axis=None, kind="stable")[:k]
        heads = self.attention.shape[1]
        return [(int(i) // heads + 1, int(i) % heads + 1, float(self.attention.flat[i]),
                 float(self.hit_rate.flat[i])) for i in order]


@dataclass
class HeadScores:
    """Every head's scores on every metric, averaged over a set of sentences.

    Attributes:
        model_name: the model's name.
        num_layers: layers (``L``).
        num_heads: heads per layer (``H``).
        sentences: the sentences scored (too-long ones are left out, see ``n_skipped``).
        per_sentence: ``float32 [N, len(METRICS), L, H]``, NaN where a metric is undefined
            for a sentence (``next`` in a one-word sentence, ``punct`` without punctuation).
        special_names: ``{"cls": "[CLS]", "sep": "[SEP]"}`` (the model's own tokens).
        n_skipped: sentences left out because they were longer than the model's limit.
        examples: one :class:`HeadExample` per metric of :data:`PATTERNS` (+ ``entropy``),
            for the top head.
        pairs: one :class:`PairScores` per pair of words (``pairs=`` of :func:`score_heads`).
        syntax: the dependency probe (:class:`~mlmtool.analysis.heads.syntax.SyntaxScores`)
            when the sentences came from a treebank, else None.
        layer_labels: per layer ``"global"`` / ``"local ±w"`` for models with local
            sliding-window layers (ModernBERT), else ``[]``.
        notes: what the scores assume about this model's attention (local layers,
            grouped-query attention), one line each; ``[]`` for BERT-like models.
    """

    model_name: str
    num_layers: int
    num_heads: int
    sentences: list[str]
    per_sentence: np.ndarray
    special_names: dict[str, str] = field(default_factory=lambda: {"cls": "[CLS]", "sep": "[SEP]"})
    n_skipped: int = 0
    examples: dict[str, HeadExample] = field(default_factory=dict)
    pairs: list[PairScores] = field(default_factory=list)
    syntax: Any = None
    layer_labels: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def score(self, metric: str) -> np.ndarray:
        """``float32 [layers, heads]``: ``metric`` averaged over the sentences where defined.

        Indices count from 0. NaN when the metric is defined for no sentence (``punct`` on
        a corpus without punctuation).

        Raises:
            KeyError: ``metric`` is not one of :data:`METRICS`.
        """
        if metric not in METRICS:
            raise KeyError(f"unknown metric '{metric}'; choose one of {', '.join(METRICS)}")
        values = self.per_sentence[:, METRICS.index(metric)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
            return np.nanmean(values, axis=0).astype(np.float32)

    @property
    def scores(self) -> dict[str, np.ndarray]:
        """``{metric: float32 [layers, heads]}`` for every metric of :data:`METRICS`."""
        return {m: self.score(m) for m in METRICS}

    def top(self, metric: str, k: int = 3, lowest: bool = False) -> list[tuple[int, int, float]]:
        """The ``k`` best heads for ``metric`` as ``(layer, head, score)``, from 1.

        ``lowest=True`` ranks from the smallest value (e.g. the most focused heads by
        entropy). NaN scores are never ranked.
        """
        values = self.score(metric)
        flat = np.where(np.isnan(values), np.inf if lowest else -np.inf, values).ravel()
        order = np.argsort(flat if lowest else -flat, kind="stable")[:k]
        return [(int(i) // self.num_heads + 1, int(i) % self.num_heads + 1, float(values.flat[i]))
                for i in order if np.isfinite(flat[i])]

    def title(self, metric: str) -> str:
        """A metric's human title with the model's special tokens (``[SEP]``, ``</s>``)."""
        return TITLES.get(metric, metric).format(**self.special_names)

    def labels(self, threshold: float = DEFAULT_THRESHOLD,
               broad_threshold: float = DEFAULT_BROAD_THRESHOLD) -> np.ndarray:
        """Per-head labels, ``str [layers, heads]``; see :func:`head_labels`."""
        return head_labels(self, threshold, broad_threshold)

    def to_dict(self, threshold: float = DEFAULT_THRESHOLD,
                broad_threshold: float = DEFAULT_BROAD_THRESHOLD, top_k: int = 5) -> dict:
        """Everything as JSON-ready data (the ``heads.json`` format, version :data:`JSON_VERSION`).

        Layout (layers and heads from 1; NaN becomes ``null``)::

            {"format": "mlmtool-heads", "version": 1, "model", "num_layers", "num_heads",
             "n_sentences", "n_skipped", "method", "threshold", "broad_threshold",
             "special_names": {"cls": "[CLS]", "sep": "[SEP]"},
             "metrics": [{"name", "title", "pattern": bool, "unit"}],
             "heads": [{"layer", "head", "label", "scores": {metric: value}}],   # L*H rows
             "matrices": {metric: [[value per head] per layer]},
             "top": {metric: [{"layer", "head", "score"}]},
             "examples": {metric: {"layer", "head", "sentence", "score", "units", "links"}},
             "pairs": [{"source", "target", "n_sentences", "n_occurrences", "offsets",
                        "heads": [{"layer", "head", "attention", "hit_rate"}] (best first),
                        "matrix": [[...]], "example"}],
             "syntax": [{"relation", "direction", "layer", "head", "accuracy", "baseline",
                         "n"}],   # only with a treebank; see SyntaxScores.records
             "layer_labels": ["global", "local ±64", ...],   # only with local layers
             "notes": ["..."]}                               # only when there are notes
        """
        scores = self.scores
        labels = self.labels(threshold, broad_threshold)
        heads = []
        for layer in range(self.num_layers):
            for head in range(self.num_heads):
                heads.append({"layer": layer + 1, "head": head + 1, "label": str(labels[layer, head]),
                              "scores": {m: _num(scores[m][layer, head]) for m in METRICS}})
        return {
            "format": "mlmtool-heads",
            "version": JSON_VERSION,
            "model": self.model_name,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "n_sentences": len(self.sentences),
            "n_skipped": self.n_skipped,
            "method": CITATION + "; word-level attention: mean over the attending word's pieces, "
                      "sum over the attended word's pieces",
            "threshold": threshold,
            "broad_threshold": broad_threshold,
            "special_names": dict(self.special_names),
            "metrics": [{"name": m, "title": self.title(m), "pattern": m in PATTERNS,
                         "unit": "bits" if m == "entropy" else "fraction"} for m in METRICS],
            "heads": heads,
            "matrices": {m: [[_num(v) for v in row] for row in scores[m]] for m in METRICS},
            "top": {m: [{"layer": l, "head": h, "score": _num(s)}
                        for l, h, s in self.top(m, top_k, lowest=False)] for m in METRICS},
            "examples": {m: _example_dict(e) for m, e in self.examples.items()},
            "pairs": [_pair_dict(p) for p in self.pairs],
            **({"syntax": self.syntax.records()} if self.syntax is not None else {}),
            **({"layer_labels": list(self.layer_labels)} if self.layer_labels else {}),
            **({"notes": list(self.notes)} if self.notes else {}),
        }

    def save(self, path: str | Path, threshold: float = DEFAULT_THRESHOLD,
             broad_threshold: float = DEFAULT_BROAD_THRESHOLD) -> Path:
        """Write :meth:`to_dict` as UTF-8 JSON (the ``heads.json`` file) and return the path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(threshold, broad_threshold), ensure_ascii=False, indent=1),
                        encoding="utf-8")
        return path


def _num(value) -> float | None:
    """A float rounded for JSON, or None for NaN."""
    value = float(value)
    return None if math.isnan(value) else round(value, 5)


def _example_dict(ex: HeadExample | None) -> dict | None:
    if ex is None:
        return None
    return {"metric": ex.metric, "layer": ex.layer, "head": ex.head, "sentence": ex.sentence,
            "score": _num(ex.score), "units": ex.units,
            "links": [{"from": k.source, "to": k.target, "weight": _num(k.weight),
                       "from_index": k.source_index, "to_index": k.target_index} for k in ex.links]}


def _pair_dict(p: PairScores) -> dict:
    heads = p.attention.shape[1]
    order = np.argsort(-p.attention, axis=None, kind="stable")
    return {
        "source": p.source, "target": p.target, "n_sentences": p.n_sentences,
        "n_occurrences": p.n_occurrences,
        "offsets": {str(k): v for k, v in sorted(p.offsets.items())},
        "heads": [{"layer": int(i) // heads + 1, "head": int(i) % heads + 1,
                   "attention": _num(p.attention.flat[i]), "hit_rate": _num(p.hit_rate.flat[i])}
                  for i in order],
        "matrix": [[_num(v) for v in row] for row in p.attention],
        "example": _example_dict(p.example),
    }


def head_labels(scores: HeadScores, threshold: float = DEFAULT_THRESHOLD,
                broad_threshold: float = DEFAULT_BROAD_THRESHOLD) -> np.ndarray:
    """Name what each head does: its strongest pattern, ``"broad"`` or ``"mixed"``.

    A head gets the pattern of :data:`PATTERNS` it scores highest on when that score is at
    least ``threshold``; otherwise ``"broad"`` when its broadness (entropy / log2 of the
    sentence's unit count, in [0, 1]) is at least ``broad_threshold``; otherwise ``"mixed"``.
    Clark et al. (2019) name heads the same way by eye; the thresholds are ours.

    Args:
        scores: from :func:`score_heads` or :func:`score_results`.
        threshold: minimum fraction of attention (default 0.5: the pattern gets most of it).
        broad_threshold: minimum broadness for ``"broad"`` (default 0.75).

    Returns:
        ``numpy str array [layers, heads]`` (indices from 0; show them from 1).
    """
    stack = np.stack([scores.score(p) for p in PATTERNS])  # [P, L, H]
    stack = np.where(np.isnan(stack), -np.inf, stack)
    best = stack.argmax(0)
    best_score = stack.max(0)
    names = np.array(PATTERNS, dtype=object)[best]
    broad = np.nan_to_num(scores.score("broadness"), nan=0.0) >= broad_threshold
    out = np.where(best_score >= threshold, names, np.where(broad, BROAD, MIXED))
    return out.astype(str)

