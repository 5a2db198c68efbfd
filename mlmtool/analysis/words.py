"""Words, not pieces: attention and its summaries aggregated from tokens to words.

A word split into pieces (``tooth ##brush``, ``▁play ing``, ``Ġplay ing``) is one row and
one column here. The rule is the one ``mlmtool heads`` uses, from Clark, Khandelwal, Levy &
Manning (2019), "What Does BERT Look At?", BlackboxNLP, section 4.1
(:func:`mlmtool.analysis.heads.metrics.word_attention`, the one implementation):

* attention **from** a word is the **mean** over its pieces' rows,
* attention **to** a word is the **sum** over its pieces' columns,

so every word row still sums to 1. Words are the tokenizer's words
(:func:`mlmtool.tokens.word_ids_of`: WordPiece, byte-level BPE, SentencePiece and MeCab +
WordPiece alike); special tokens (``[CLS]``, ``[SEP]``, ``<s>``, ``</s>``) stay units of
their own. Rollout and flow are computed on the pieces, as the model computes attention, and
aggregated to words afterwards with the same rule (:func:`aggregate_summary`); the result says
so in its title and notes. A text whose every word is one piece comes back unchanged.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .attention import AttentionResult
from .heads.metrics import SentenceUnits, sentence_units, word_attention

#: The note a word-level result carries (shown under diagrams and on the page).
WORDS_NOTE = ("attention aggregated from pieces to words (Clark et al. 2019: mean over the attending word's "
              "pieces, sum over the attended word's pieces; rows still sum to 1)")


def word_units(result: AttentionResult) -> SentenceUnits:
    """The units of ``result``'s text: special tokens on their own, each word's pieces grouped
    (:func:`mlmtool.analysis.heads.metrics.sentence_units`; ``membership`` is ``float32 [U, seq]``)."""
    return sentence_units(result)


def is_piece_level(result: AttentionResult) -> bool:
    """True when some word of ``result`` has several pieces (aggregating would change it)."""
    words = [w for w in result.word_ids if w is not None]
    return len(words) != len(set(words))


def unit_pieces(units: SentenceUnits) -> list[list[int]]:
    """``[U]`` the token positions (from 0) of each unit, in order."""
    return [np.flatnonzero(row).tolist() for row in units.membership]


def aggregate_words(result: AttentionResult) -> AttentionResult:
    """An attention result with one row and one column per word (Clark et al. 2019, section 4.1).

    Args:
        result: piece-level attention from :func:`mlmtool.attention` (``attention`` is
            ``float32 [layers, heads, seq, seq]``).

    Returns:
        An :class:`~mlmtool.analysis.attention.AttentionResult` over the ``U`` units:
        ``tokens`` are the words as joined pieces (``##`` and BPE/SentencePiece markers
        removed) and the special tokens, ``attention`` ``float32 [layers, heads, U, U]``
        (row = mean of the word's piece rows, column = sum of its piece columns; rows sum
        to 1), ``word_ids``/``special`` per unit, ``pieces`` the token positions each unit
        covers, and :data:`WORDS_NOTE` added to ``notes``. A result that is already
        word-level (``pieces`` set), or whose every word is one piece, is returned as it is.

    Example:
        >>> words = aggregate_words(mlmtool.attention(lm, "I like toothpaste."))  # doctest: +SKIP
        >>> words.tokens                                                         # doctest: +SKIP
        ['[CLS]', 'i', 'like', 'toothpaste', '.', '[SEP]']
    """
    if result.pieces is not None or not is_piece_level(result):
        return result
    units = word_units(result)
    weights = word_attention(result.attention, units.membership).astype(np.float32)
    return replace(result, tokens=list(units.names), attention=np.ascontiguousarray(weights),
                   word_ids=list(units.word_ids), special=[k != "word" for k in units.kinds],
                   notes=list(result.notes) + [WORDS_NOTE], pieces=unit_pieces(units))


def aggregate_matrix(matrix: np.ndarray, units: SentenceUnits) -> np.ndarray:
    """One ``[seq, seq]`` row-stochastic matrix → ``[U, U]`` by the same rule (float64)."""
    return word_attention(np.asarray(matrix, dtype=np.float64)[None, None], units.membership.astype(np.float64))[0, 0]


def aggregate_summary(summary, result: AttentionResult):
    """A rollout or flow summary aggregated to words *after* it was computed on the pieces.

    Args:
        summary: an :class:`~mlmtool.analysis.rollout.AttentionSummary` of ``result``
            (``matrix`` ``float64 [seq, seq]``).
        result: the piece-level attention it was computed from (for the words).

    Returns:
        A summary over the ``U`` units (``matrix`` and, for flow, ``raw`` ``float64 [U, U]``;
        rows of ``matrix`` still sum to 1), ``words=True`` (its title says "words") and a
        note saying the aggregation came after the summary; ``summary`` itself when every
        word is one piece.

    Raises:
        ValueError: the summary and the attention are for different texts.
    """
    if summary.text != result.text or len(summary.tokens) != len(result.tokens):
        raise ValueError("the summary and the attention are for different texts")
    if not is_piece_level(result):
        return summary
    units = word_units(result)
    note = (f"{summary.method} computed on the pieces, then aggregated to words (Clark et al. 2019: mean over "
            "the word's pieces as rows, sum over them as columns; rows still sum to 1)")
    raw = None if summary.raw is None else aggregate_matrix(summary.raw, units)
    return replace(summary, tokens=list(units.names), matrix=aggregate_matrix(summary.matrix, units),
                   special=[k != "word" for k in units.kinds], raw=raw, notes=list(summary.notes) + [note],
                   words=True)
