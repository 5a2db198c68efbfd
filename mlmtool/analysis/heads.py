"""What does each attention head do? Score every head on standard patterns over many sentences.

Method: Clark, Khandelwal, Levy & Manning (2019), "What Does BERT Look At? An Analysis of
BERT's Attention", BlackboxNLP (arXiv:1906.04341). For every sentence the attention of each
head is turned into **word-level** attention with their convention (section 4.1):

* attention *from* a split word is the **mean** over its pieces (the rows),
* attention *to* a split word is the **sum** over its pieces (the columns),

so word rows still sum to 1, and special tokens (``[CLS]``/``[SEP]``, ``<s>``/``</s>``) stay
units of their own. Then, for every head at once (NumPy over ``[layers, heads, ...]``, no
Python loop over heads), with "word" meaning a word unit (special tokens never attend here):

=========  =====================================================================
metric     per sentence (then averaged over the sentences where it is defined)
=========  =====================================================================
prev       mean over words with a previous word of the weight on the previous word
next       mean over words with a next word of the weight on the next word
self       mean over words of the weight on the word itself
cls        mean over words of the weight on the first special token (``[CLS]``, ``<s>``)
sep        mean over words of the weight on the other special tokens (``[SEP]``, ``</s>``)
punct      mean over words of the weight on punctuation words (sentences that have one)
entropy    mean over words of the entropy of the word's attention row, in bits
broadness  ``entropy / log2(units in the sentence)``: 0 = one target, 1 = uniform
next_peak  fraction of words (with a next word) whose most-attended *word* is the next one
prev_peak  fraction of words (with a previous word) whose most-attended word is the previous
=========  =====================================================================

The first six (:data:`PATTERNS`) are fractions of a word's attention in [0, 1]; Clark et
al. report the same quantities (their Figure 1 and 2) at token level. ``*_peak`` checks that
a "next word" head really *peaks* at offset +1 rather than merely giving it more than others.

Layers and heads are numbered from 0 inside the arrays (``[layers, heads]``) and from 1 in
everything a user sees: :meth:`HeadScores.top`, :func:`head_labels` output keys, the JSON of
:meth:`HeadScores.to_dict` and the report.

The default sentence sets (``datasets/heads/<lang>.txt``, written for mlmtool) are found by
:func:`dataset_path`.
"""

from __future__ import annotations

import math
import os
import sys
import unicodedata
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ..errors import MlmtoolError

#: Patterns a head can be labelled with (fractions of attention in [0, 1]), in report order.
PATTERNS: tuple[str, ...] = ("prev", "next", "self", "cls", "sep", "punct")

#: Every per-head metric, in storage order (``HeadScores.per_sentence[:, m]``).
METRICS: tuple[str, ...] = PATTERNS + ("entropy", "broadness", "next_peak", "prev_peak")

#: Labels beyond the patterns: a broad head, and a head with no clear pattern.
BROAD, MIXED = "broad", "mixed"

#: Default thresholds for :func:`head_labels`.
DEFAULT_THRESHOLD = 0.5
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
        pairs: one :class:`PairScores` per ``--pair``.
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
                        "matrix": [[...]], "example"}]}
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
        }


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


# --------------------------------------------------------------------------------------------
# Sentence sets


def dataset_dirs() -> list[Path]:
    """Folders searched for the default sentence sets, in order.

    1. ``$MLMTOOL_DATASETS/heads`` (a user override);
    2. the repository's ``datasets/heads`` (a source checkout or editable install);
    3. ``mlmtool/data/heads`` inside the installed package (package data);
    4. ``<prefix>/share/mlmtool/datasets/heads`` where ``<prefix>`` is the install's data
       directory (``sys.prefix`` or the ``--user`` base): setuptools ``data-files``.
    """
    import site
    import sysconfig

    dirs = []
    env = os.environ.get("MLMTOOL_DATASETS")
    if env:
        dirs.append(Path(env).expanduser() / "heads")
    here = Path(__file__).resolve().parent
    dirs += [here.parent / "datasets" / "heads", here / "data" / "heads"]
    prefixes = [sysconfig.get_paths().get("data"), sys.prefix, site.getuserbase()]
    for prefix in dict.fromkeys(p for p in prefixes if p):
        dirs.append(Path(prefix) / "share" / "mlmtool" / "datasets" / "heads")
    return dirs


def dataset_path(lang: str = "en") -> Path | None:
    """The default sentence file for ``lang`` (``en``, ``fr``, ``de``, ``zh``, ``ja``,
    ``multi``), or None when no folder of :func:`dataset_dirs` has it."""
    for folder in dataset_dirs():
        path = folder / f"{lang}.txt"
        if path.is_file():
            return path
    return None


def default_sentences(lang: str = "en") -> list[str]:
    """The shipped sentence set for ``lang`` (non-empty lines of ``<lang>.txt``).

    The sets were written for mlmtool: ``en`` has ~300 varied English sentences (adverbs,
    adjectives, clauses, questions, punctuation); the others ~40 each.

    Raises:
        MlmtoolError: no set for ``lang`` is installed.
    """
    path = dataset_path(lang)
    if path is None:
        known = sorted({p.stem for d in dataset_dirs() if d.is_dir() for p in d.glob("*.txt")})
        hint = f" (available: {', '.join(known)})" if known else ""
        raise MlmtoolError(f"no default sentence set for language '{lang}'{hint}; "
                           "give sentences as FILE, '-' (stdin) or quoted text")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------
# Pairs


def parse_pair(spec: str) -> tuple[str, str]:
    """Split ``"WORD:WORD"`` (each side may list alternatives, ``quickly|slowly:ran``).

    Raises:
        MlmtoolError: not exactly one ``:`` or an empty side.
    """
    parts = spec.split(":")
    if len(parts) != 2 or not all(_alternatives(p) for p in parts):
        raise MlmtoolError(f"pair '{spec}' is not WORD:WORD (e.g. quickly:ran; "
                           "alternatives with |, e.g. quickly|slowly:ran|walked)")
    return parts[0].strip(), parts[1].strip()


def _alternatives(side: str) -> set[str]:
    return {w.strip().casefold() for w in side.split("|") if w.strip()}


# --------------------------------------------------------------------------------------------
# Scoring


def is_punctuation(word: str) -> bool:
    """True when every character of ``word`` is Unicode punctuation (category ``P*``)."""
    return bool(word) and all(unicodedata.category(c).startswith("P") for c in word)


@dataclass
class SentenceUnits:
    """The units of one sentence: special tokens on their own, words grouped.

    Attributes:
        names: ``[U]`` display string of each unit (``[CLS]``, ``cat``, ``playing``...).
        kinds: ``[U]`` ``"cls"`` (a special token at position 0), ``"sep"`` (any other
            special token) or ``"word"``.
        membership: ``float32 [U, seq]``, 1 where token ``j`` belongs to unit ``u``.
    """

    names: list[str]
    kinds: list[str]
    membership: np.ndarray

    @property
    def word_index(self) -> np.ndarray:
        """``int [n_words]``: unit indices of the words, in order."""
        return np.array([u for u, k in enumerate(self.kinds) if k == "word"], dtype=np.int64)


def sentence_units(result, words: Sequence[str] | None = None) -> SentenceUnits:
    """Group an :class:`~mlmtool.attention.AttentionResult`'s tokens into units.

    Args:
        result: attention for one sentence (``tokens``, ``word_ids``, ``special``).
        words: surface form of each word (same order as ``word_ids``); default: the
            word's pieces joined (``##`` removed).

    Returns:
        :class:`SentenceUnits` in token order.
    """
    seq = len(result.tokens)
    unit_of: list[int] = []
    names: list[str] = []
    kinds: list[str] = []
    word_unit: dict[int, int] = {}
    # Special tokens are the ones outside any word (word id None). ``result.special`` is not
    # used: ``get_special_tokens_mask`` also flags [UNK], which is a word of the text.
    for pos, (token, wid) in enumerate(zip(result.tokens, result.word_ids)):
        if wid is None:
            unit_of.append(len(names))
            names.append(token)
            kinds.append("cls" if pos == 0 else "sep")
        elif wid in word_unit:
            unit = word_unit[wid]
            unit_of.append(unit)
            names[unit] += token[2:] if token.startswith("##") else token
        else:
            word_unit[wid] = len(names)
            unit_of.append(len(names))
            names.append(token[2:] if token.startswith("##") and len(token) > 2 else token)
            kinds.append("word")
    if words is not None and len(words) == len(word_unit):
        for (wid, unit), word in zip(sorted(word_unit.items()), words):
            names[unit] = word
    membership = np.zeros((len(names), seq), dtype=np.float32)
    membership[unit_of, np.arange(seq)] = 1.0
    return SentenceUnits(names=names, kinds=kinds, membership=membership)


def word_attention(attention: np.ndarray, membership: np.ndarray) -> np.ndarray:
    """Token-level attention → unit-level attention (Clark et al. 2019, section 4.1).

    Args:
        attention: ``float32 [layers, heads, seq, seq]`` (rows sum to 1).
        membership: ``float32 [U, seq]`` from :func:`sentence_units`.

    Returns:
        ``float32 [layers, heads, U, U]``: row ``u`` is the mean of unit ``u``'s token rows;
        column ``v`` the sum of unit ``v``'s token columns. Rows still sum to 1.
    """
    mean_rows = membership / membership.sum(1, keepdims=True)  # [U, S]
    return (mean_rows @ attention) @ membership.T  # [L, H, U, U]


def sentence_metrics(w: np.ndarray, units: SentenceUnits) -> np.ndarray:
    """All :data:`METRICS` of one sentence for every head at once.

    Args:
        w: ``float32 [layers, heads, U, U]`` from :func:`word_attention`.
        units: the sentence's units.

    Returns:
        ``float32 [len(METRICS), layers, heads]``, NaN where a metric is undefined (see
        the module docstring for each definition).
    """
    L, H, U, _ = w.shape
    out = np.full((len(METRICS), L, H), np.nan, dtype=np.float32)
    words = units.word_index
    n = len(words)
    if n == 0:
        return out
    rows = w[:, :, words, :]  # [L, H, n, U]
    m = METRICS.index
    if n >= 2:
        out[m("next")] = w[:, :, words[:-1], words[1:]].mean(-1)
        out[m("prev")] = w[:, :, words[1:], words[:-1]].mean(-1)
        peak = rows[..., words].argmax(-1)  # [L, H, n] index among words
        out[m("next_peak")] = (peak[..., :-1] == np.arange(1, n)).mean(-1)
        out[m("prev_peak")] = (peak[..., 1:] == np.arange(0, n - 1)).mean(-1)
    out[m("self")] = w[:, :, words, words].mean(-1)
    kinds = np.array(units.kinds)
    cls = np.flatnonzero(kinds == "cls")
    sep = np.flatnonzero(kinds == "sep")
    punct = np.array([u for u in words if is_punctuation(units.names[u])], dtype=np.int64)
    if len(cls):
        out[m("cls")] = rows[..., cls].sum(-1).mean(-1)
    if len(sep):
        out[m("sep")] = rows[..., sep].sum(-1).mean(-1)
    if len(punct):
        out[m("punct")] = rows[..., punct].sum(-1).mean(-1)
    p = np.clip(rows, 1e-12, 1.0)
    entropy = -(rows * np.log2(p)).sum(-1).mean(-1)  # [L, H] bits
    out[m("entropy")] = entropy
    out[m("broadness")] = entropy / math.log2(U) if U > 1 else 0.0
    return out


def _word_matches(names: list[str], kinds: list[str], wanted: set[str]) -> list[int]:
    return [u for u, (name, kind) in enumerate(zip(names, kinds))
            if kind == "word" and name.casefold() in wanted]


def _pair_sentence(w: np.ndarray, units: SentenceUnits, src: set[str], tgt: set[str]):
    """Per-sentence pair attention ``[L, H]``, hit rate ``[L, H]``, occurrences and offsets."""
    s_units = _word_matches(units.names, units.kinds, src)
    t_units = _word_matches(units.names, units.kinds, tgt)
    combos = [(s, t) for s in s_units for t in t_units if s != t]
    if not combos:
        return None
    s_idx = np.array([c[0] for c in combos])
    t_idx = np.array([c[1] for c in combos])
    words = units.word_index
    att = w[:, :, s_idx, t_idx]  # [L, H, c]
    best = words[w[:, :, s_idx][..., words].argmax(-1)]  # [L, H, c] unit index
    hit = (best == t_idx).astype(np.float32)
    position = {int(u): i for i, u in enumerate(words)}
    offsets = [position[int(t)] - position[int(s)] for s, t in combos]
    return att.mean(-1), hit.mean(-1), len(combos), offsets


def _example(metric: str, layer: int, head: int, sentence: str, score: float,
             w: np.ndarray, units: SentenceUnits, max_links: int = 8) -> HeadExample:
    """The strongest link of each word for one head (layer/head from 1)."""
    a = w[layer - 1, head - 1]  # [U, U]
    links = []
    for u in units.word_index:
        v = int(a[u].argmax())
        links.append(Link(units.names[u], units.names[v], float(a[u, v]), int(u), v))
    links.sort(key=lambda k: -k.weight)
    return HeadExample(metric, layer, head, sentence, float(score), list(units.names), links[:max_links])


def _pick_sentence(values: np.ndarray, word_counts: Sequence[int], min_words: int = 5) -> int:
    """Index of the sentence with the highest finite value, preferring ``min_words``+ words."""
    vals = np.where(np.isnan(values), -np.inf, values)
    long_enough = np.array(word_counts) >= min_words
    if long_enough.any() and np.isfinite(vals[long_enough]).any():
        vals = np.where(long_enough, vals, -np.inf)
    return int(np.argmax(vals))


class _Accumulator:
    """Collects per-sentence metrics and pair statistics, then builds :class:`HeadScores`."""

    def __init__(self, n: int, layers: int, heads: int, pairs: Sequence[tuple[str, str]]):
        self.per_sentence = np.full((n, len(METRICS), layers, heads), np.nan, dtype=np.float32)
        self.word_counts = [0] * n
        self.pairs = [(s, t, _alternatives(s), _alternatives(t)) for s, t in pairs]
        self.pair_att: list[dict[int, np.ndarray]] = [{} for _ in pairs]
        self.pair_hit: list[dict[int, np.ndarray]] = [{} for _ in pairs]
        self.pair_occ = [0] * len(pairs)
        self.pair_offsets: list[Counter] = [Counter() for _ in pairs]
        self.special_names: dict[str, str] = {}

    def add(self, i: int, result, words: Sequence[str] | None = None) -> None:
        units = sentence_units(result, words)
        w = word_attention(result.attention, units.membership)
        self.per_sentence[i] = sentence_metrics(w, units)
        self.word_counts[i] = len(units.word_index)
        for name, kind in zip(units.names, units.kinds):
            self.special_names.setdefault(kind, name)
        for p, (_, _, src, tgt) in enumerate(self.pairs):
            found = _pair_sentence(w, units, src, tgt)
            if found is not None:
                att, hit, occ, offsets = found
                self.pair_att[p][i], self.pair_hit[p][i] = att, hit
                self.pair_occ[p] += occ
                self.pair_offsets[p].update(offsets)

    def finish(self, model_name: str, sentences: list[str], n_skipped: int,
               get: Callable[[list[int]], list]) -> HeadScores:
        """Build the result; ``get(indices)`` returns AttentionResults for examples."""
        L, H = self.per_sentence.shape[2:]
        scores = HeadScores(
            model_name=model_name, num_layers=L, num_heads=H, sentences=sentences,
            per_sentence=self.per_sentence, n_skipped=n_skipped,
            special_names={"cls": self.special_names.get("cls", "[CLS]"),
                           "sep": self.special_names.get("sep", "[SEP]")})
        # Examples: the top head of each pattern, in the sentence where it scores highest.
        wanted: list[tuple[str, int, int, int, float]] = []
        for metric in PATTERNS + ("entropy",):
            top = scores.top(metric, 1, lowest=metric == "entropy")
            if not top:
                continue
            layer, head, _ = top[0]
            values = self.per_sentence[:, METRICS.index(metric), layer - 1, head - 1]
            pick = _pick_sentence(-values if metric == "entropy" else values, self.word_counts)
            wanted.append((metric, layer, head, pick, float(values[pick])))
        for p, (src, tgt, _, _) in enumerate(self.pairs):
            used = sorted(self.pair_att[p])
            mean_att = (np.mean([self.pair_att[p][i] for i in used], axis=0).astype(np.float32)
                        if used else np.zeros((L, H), np.float32))
            mean_hit = (np.mean([self.pair_hit[p][i] for i in used], axis=0).astype(np.float32)
                        if used else np.zeros((L, H), np.float32))
            scores.pairs.append(PairScores(src, tgt, len(used), self.pair_occ[p], mean_att, mean_hit,
                                           dict(self.pair_offsets[p]), used))
            if used:
                layer, head, _, _ = scores.pairs[-1].top(1)[0]
                best = max(used, key=lambda i: float(self.pair_att[p][i][layer - 1, head - 1]))
                wanted.append((f"pair:{p}", layer, head, best,
                               float(self.pair_att[p][best][layer - 1, head - 1])))
        if wanted:
            needed = sorted({x[3] for x in wanted})
            results = dict(zip(needed, get(needed)))
            for metric, layer, head, i, value in wanted:
                res, words = results[i]
                units = sentence_units(res, words)
                w = word_attention(res.attention, units.membership)
                ex = _example(metric.split(":")[0], layer, head, sentences[i], value, w, units)
                if metric.startswith("pair:"):
                    scores.pairs[int(metric.split(":")[1])].example = ex
                else:
                    scores.examples[metric] = ex
        return scores


def score_results(results: Sequence, words: Sequence[Sequence[str]] | None = None,
                  pairs: Iterable[str | tuple[str, str]] = (), model_name: str | None = None
                  ) -> HeadScores:
    """Score heads from attention already computed (no model needed).

    Args:
        results: :class:`~mlmtool.attention.AttentionResult` per sentence (same layer and
            head counts).
        words: optional surface words per sentence (for pair matching and display).
        pairs: ``"WORD:WORD"`` strings or ``(source, target)`` tuples.
        model_name: for the report; default the first result's ``model_name``.

    Returns:
        :class:`HeadScores` (examples included).

    Raises:
        MlmtoolError: no results, or a malformed pair.
    """
    results = list(results)
    if not results:
        raise MlmtoolError("no sentences to score")
    parsed = [parse_pair(p) if isinstance(p, str) else tuple(p) for p in pairs]
    L, H = results[0].attention.shape[:2]
    acc = _Accumulator(len(results), L, H, parsed)
    word_lists = list(words) if words is not None else [None] * len(results)
    for i, res in enumerate(results):
        acc.add(i, res, word_lists[i])
    return acc.finish(model_name if model_name is not None else results[0].model_name,
                      [r.text for r in results], 0,
                      lambda idx: [(results[i], word_lists[i]) for i in idx])


def prepare_sentences(lm, sentences: Sequence[str]) -> tuple[list[str], list[list[str] | None], int]:
    """Tokenize once: drop empty and too-long sentences, and read each word's surface form.

    Returns:
        ``(kept, words, n_skipped)``: the sentences that fit the model (order kept), their
        words (from the tokenizer's character offsets; None for slow tokenizers), and how
        many were longer than ``lm.max_length`` tokens.
    """
    from ..tokens import to_model_text, word_strings

    texts = [s.strip() for s in sentences if s and s.strip()]
    if not texts:
        return [], [], 0
    model_texts = [to_model_text(t, lm.mask_token) for t in texts]
    fast = getattr(lm.tokenizer, "is_fast", False)
    enc = lm.tokenizer(model_texts, add_special_tokens=True, truncation=False,
                       return_offsets_mapping=False)
    kept, words, skipped = [], [], 0
    for i, ids in enumerate(enc["input_ids"]):
        if len(ids) > lm.max_length:
            skipped += 1
            continue
        kept.append(texts[i])
        words.append(word_strings(model_texts[i], enc, i) if fast else None)
    return kept, words, skipped


def cooccurring(words: Sequence[Sequence[str] | None], sentences: Sequence[str],
                pair: tuple[str, str]) -> int:
    """How many sentences contain both words of ``pair`` (case-insensitive, whole words)."""
    src, tgt = _alternatives(pair[0]), _alternatives(pair[1])
    count = 0
    for ws, text in zip(words, sentences):
        tokens = [w.casefold() for w in ws] if ws is not None else text.casefold().split()
        s_pos = [i for i, w in enumerate(tokens) if w in src]
        t_pos = [i for i, w in enumerate(tokens) if w in tgt]
        if any(s != t for s in s_pos for t in t_pos):
            count += 1
    return count


def score_heads(lm, sentences: Sequence[str], pairs: Iterable[str | tuple[str, str]] = (),
                batch_size: int = 32, chunk_size: int = 512,
                progress: Callable[[int, int], None] | None = None) -> HeadScores:
    """Run the model over ``sentences`` and score every head on every metric.

    The forward pass is :func:`mlmtool.attention.attention` (batched and bucketed by
    length); sentences go through in chunks of ``chunk_size`` so memory stays bounded on
    large files. Scoring is NumPy over all heads at once.

    Args:
        lm: a model from :func:`mlmtool.load` (no MLM head needed).
        sentences: the texts (empty ones ignored).
        pairs: ``"WORD:WORD"`` hypotheses, e.g. ``"quickly:ran"``; each side may list
            alternatives with ``|``. Words are matched case-insensitively as whole words.
        batch_size: sentences per forward pass (default 32).
        chunk_size: sentences whose attention is held in memory at once (default 512).
        progress: optional ``callback(done, total)`` after each chunk.

    Returns:
        :class:`HeadScores`; sentences longer than the model's limit are left out and
        counted in ``n_skipped``.

    Raises:
        MlmtoolError: no sentences, all longer than the model limit, a malformed pair, or a
            pair whose words never occur in the same sentence (checked before the model
            runs).
    """
    from .attention import attention

    parsed = [parse_pair(p) if isinstance(p, str) else tuple(p) for p in pairs]
    texts, words, skipped = prepare_sentences(lm, sentences)
    if not texts:
        if skipped:
            raise MlmtoolError(f"all {skipped} sentences are longer than the {lm.max_length} tokens "
                               f"model '{lm.name}' accepts; use shorter sentences")
        raise MlmtoolError("no sentences to score: the input is empty")
    for pair in parsed:
        if cooccurring(words, texts, pair) == 0:
            raise MlmtoolError(f"--pair {pair[0]}:{pair[1]}: the two words never occur in the same "
                               f"sentence (checked {len(texts)} sentences); add sentences that "
                               "contain both, or pick other words")
    acc = _Accumulator(len(texts), lm.num_layers, lm.num_heads, parsed)
    for start in range(0, len(texts), chunk_size):
        chunk = texts[start:start + chunk_size]
        for k, res in enumerate(attention(lm, chunk, batch_size=batch_size)):
            acc.add(start + k, res, words[start + k])
        if progress is not None:
            progress(min(start + chunk_size, len(texts)), len(texts))

    def get(indices: list[int]):
        found = attention(lm, [texts[i] for i in indices], batch_size=batch_size)
        return [(res, words[i]) for res, i in zip(found, indices)]

    return acc.finish(lm.name, texts, skipped, get)
