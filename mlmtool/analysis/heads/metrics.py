"""Per-sentence head metrics in plain NumPy: word units, word-level attention, the patterns.

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
Arrays index layers and heads from 0.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

#: Patterns a head can be labelled with (fractions of attention in [0, 1]), in report order.
PATTERNS: tuple[str, ...] = ("prev", "next", "self", "cls", "sep", "punct")

#: Every per-head metric, in storage order (``HeadScores.per_sentence[:, m]``).
METRICS: tuple[str, ...] = PATTERNS + ("entropy", "broadness", "next_peak", "prev_peak")


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
        word_ids: ``[U]`` the word index of each unit (the tokenizer's word id, e.g. a
            treebank token's position), None for special tokens.
    """

    names: list[str]
    kinds: list[str]
    membership: np.ndarray
    word_ids: list[int | None] = field(default_factory=list)

    @property
    def word_index(self) -> np.ndarray:
        """``int [n_words]``: unit indices of the words, in order."""
        return np.array([u for u, k in enumerate(self.kinds) if k == "word"], dtype=np.int64)


def sentence_units(result, words: Sequence[str] | None = None) -> SentenceUnits:
    """Group an :class:`~mlmtool.analysis.attention.AttentionResult`'s tokens into units.

    Args:
        result: attention for one sentence (``tokens``, ``word_ids``).
        words: surface form of each word (same order as ``word_ids``); default: the
            word's pieces joined (``##`` removed).

    Returns:
        :class:`SentenceUnits` in token order. Words are ordered by first token, so a
        word id that is not ``0, 1, 2, ...`` (words the tokenizer gave no piece) still
        gets its own unit.
    """
    seq = len(result.tokens)
    unit_of: list[int] = []
    names: list[str] = []
    kinds: list[str] = []
    word_unit: dict[int, int] = {}
    unit_words: list[int | None] = []
    # Special tokens are the ones outside any word (word id None). ``result.special`` is not
    # used: ``get_special_tokens_mask`` also flags [UNK], which is a word of the text.
    for pos, (token, wid) in enumerate(zip(result.tokens, result.word_ids)):
        if wid is None:
            unit_of.append(len(names))
            names.append(token)
            kinds.append("cls" if pos == 0 else "sep")
            unit_words.append(None)
        elif wid in word_unit:
            unit = word_unit[wid]
            unit_of.append(unit)
            names[unit] += token[2:] if token.startswith("##") else token
        else:
            word_unit[wid] = len(names)
            unit_of.append(len(names))
            names.append(token[2:] if token.startswith("##") and len(token) > 2 else token)
            kinds.append("word")
            unit_words.append(wid)
    if words is not None and len(words) == len(word_unit):
        for (wid, unit), word in zip(sorted(word_unit.items()), words):
            names[unit] = word
    elif words is not None and all(0 <= wid < len(words) for wid in word_unit):
        for wid, unit in word_unit.items():  # some words have no piece (e.g. a control character)
            names[unit] = words[wid]
    membership = np.zeros((len(names), seq), dtype=np.float32)
    membership[unit_of, np.arange(seq)] = 1.0
    return SentenceUnits(names=names, kinds=kinds, membership=membership, word_ids=unit_words)


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


def word_matches(units: SentenceUnits, wanted: set[str]) -> list[int]:
    """Unit indices of the words whose casefolded surface form is in ``wanted``."""
    return [u for u, (name, kind) in enumerate(zip(units.names, units.kinds))
            if kind == "word" and name.casefold() in wanted]


def pair_sentence(w: np.ndarray, units: SentenceUnits, src: set[str], tgt: set[str]):
    """One sentence's attention from the ``src`` words to the ``tgt`` words, every head at once.

    Args:
        w: ``float32 [layers, heads, U, U]`` word-level attention.
        units: the sentence's units.
        src, tgt: casefolded alternatives of the source and target word.

    Returns:
        None when no (source, target) occurrence pair of different words is in the
        sentence; else ``(attention [L, H], hit_rate [L, H], occurrences, offsets)``: the
        mean source → target weight, the share of occurrences whose most-attended word
        (specials excluded) is the target, the number of pairs, and the target position
        minus the source position of each pair, in words.
    """
    s_units = word_matches(units, src)
    t_units = word_matches(units, tgt)
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
