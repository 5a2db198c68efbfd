"""Pseudo-log-likelihood: the masked copies of a sequence, and their scores.

The one place that knows which tokens a PLL masks. Salazar, Liang, Nguyen & Kirchhoff 2020,
"Masked Language Model Scoring" (ACL): to score the token at position ``q``, the model reads
a copy of the sequence with ``q`` masked, and the natural-log probability of the original
token at ``q`` is taken; the PLL is the sum over the scored tokens (``variant="original"``).
Kauf & Ivanova 2023, "A Better Way to Do Masked Language Model Scoring" (ACL; minicons'
``PLL_metric="within_word_l2r"``) also mask the tokens to the right of ``q`` *in the same
word* (``variant="word-l2r"``): for a word of pieces ``p1 p2 p3``, scoring ``p1`` masks
``p1 p2 p3``, scoring ``p2`` masks ``p2 p3``, scoring ``p3`` masks ``p3``. So a word of
several pieces is not scored as near-certain from its own other pieces.

Three analyses use it:

* :func:`mlmtool.analysis.score.score_sentences`: every token of a sentence
  (:func:`masked_copies` with the tokenizer's words);
* :func:`mlmtool.analysis.compare.score_words`: a word of several pieces put at a mask
  (:func:`word_copies`);
* the whole-word search of :mod:`mlmtool.analysis.fill`: piece ``j`` of a word being built
  at a mask, its pieces ``1..j-1`` chosen, the rest still unknown (:func:`word_copies` with
  mask tokens standing for the unknown pieces, which the rule masks anyway).

The copies go through :func:`mlmtool.core.forward.iter_forward` (bucketed by length, the
vocabulary projection only at each copy's one scored position), ``batch_size`` copies per
forward pass: :func:`copy_log_probs` yields the log-probability rows batch by batch, and
:func:`score_copies` takes each copy's target from them.

Shapes: ``S`` tokens of a sequence (special tokens included), ``V`` vocabulary size, ``n``
copies in a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

from ..core.forward import iter_forward
from ..errors import MlmtoolError

#: The PLL variants: Salazar et al. 2020 and Kauf & Ivanova 2023.
VARIANTS = ("original", "word-l2r")


@dataclass
class MaskedCopy:
    """One masked copy of a sequence: what the model reads to score one token.

    Attributes:
        ids: ``[S]`` token ids with the masks in place (special tokens included).
        position: the scored position in ``ids`` (from 0).
        target: the vocabulary id whose log-probability is wanted at ``position`` (the
            original token there).
    """

    ids: list[int]
    position: int
    target: int


def mask_span(words: Sequence[int | None], position: int, variant: str = "word-l2r") -> list[int]:
    """Positions to mask when the token at ``position`` is scored.

    Args:
        words: ``[S]`` word index per token, None for a token of no word (a special token
            the tokenizer added); e.g. ``tokens.word_ids_of``.
        position: the scored token (from 0).
        variant: ``"original"`` (Salazar et al. 2020: the token alone) or ``"word-l2r"``
            (Kauf & Ivanova 2023: the token and the later tokens of the same word).

    Returns:
        The positions, increasing, ``position`` first.

    Raises:
        MlmtoolError: an unknown ``variant``.
    """
    check_variant(variant)
    word = words[position]
    if variant == "original" or word is None:
        return [position]
    return [position] + [q for q in range(position + 1, len(words)) if words[q] == word]


def masked_copies(ids: Sequence[int], words: Sequence[int | None], mask_id: int, variant: str = "word-l2r",
                  positions: Sequence[int] | None = None) -> list[MaskedCopy]:
    """The masked copies that score ``ids`` by PLL: one per scored position, in order.

    Args:
        ids: ``[S]`` token ids, special tokens included.
        words: ``[S]`` word index per token, None for a token that is not scored (the
            special tokens the tokenizer added).
        mask_id: the model's mask token id.
        variant: ``"word-l2r"`` (default; Kauf & Ivanova 2023) or ``"original"`` (Salazar
            et al. 2020); see :func:`mask_span`.
        positions: the positions to score (default: every position whose word is not None).

    Returns:
        One :class:`MaskedCopy` per scored position; its ``target`` is ``ids[position]``.

    Raises:
        MlmtoolError: an unknown ``variant``.
    """
    if positions is None:
        positions = [p for p, w in enumerate(words) if w is not None]
    out = []
    for p in positions:
        copy = list(ids)
        for q in mask_span(words, p, variant):
            copy[q] = mask_id
        out.append(MaskedCopy(ids=copy, position=p, target=int(ids[p])))
    return out


def word_copies(ids: Sequence[int], position: int, word: Sequence[int], mask_id: int,
                pieces: Sequence[int] | None = None) -> list[MaskedCopy]:
    """PLL-word-l2r copies of ``word`` written at ``position`` of ``ids`` (Kauf & Ivanova 2023).

    The one token at ``position`` (a mask) is replaced by the word's ``n`` pieces; the copy
    for piece ``j`` (from 0) has pieces ``0..j-1`` filled and pieces ``j..n-1`` masked, and
    scores position ``position + j``. Summing the copies' log-probabilities gives the word's
    PLL-word-l2r in this context (:func:`score_copies`).

    Args:
        ids: ``[S]`` token ids, special tokens included.
        position: the token that the word replaces (from 0).
        word: the word's ``n`` piece ids; a piece not known yet may be ``mask_id`` (the
            rule masks it whenever it matters).
        mask_id: the model's mask token id.
        pieces: which pieces to make copies for (from 0; default all ``n``).

    Returns:
        One :class:`MaskedCopy` per piece asked for, ``[S - 1 + n]`` ids each.
    """
    seq = list(ids[:position]) + [int(t) for t in word] + list(ids[position + 1:])
    words: list[int | None] = [None] * len(seq)
    words[position:position + len(word)] = [0] * len(word)
    chosen = range(len(word)) if pieces is None else pieces
    return masked_copies(seq, words, mask_id, "word-l2r", positions=[position + j for j in chosen])


def copy_log_probs(lm, copies: Sequence[MaskedCopy], batch_size: int = 32) -> Iterator[tuple[list[int], object]]:
    """Run the model on ``copies``: their log-probability rows, one forward pass at a time.

    Copies are bucketed by length (:func:`mlmtool.core.forward.iter_forward`), so a batch
    holds copies of similar length; only each copy's scored position goes through the
    masked-LM head.

    Args:
        lm: a :class:`mlmtool.models.LoadedModel` with a masked-LM head.
        copies: from :func:`masked_copies` or :func:`word_copies`.
        batch_size: copies per forward pass (default 32).

    Yields:
        ``(indices, log_probs)``: the copies' indices in ``copies`` and ``float32 Tensor
        [n, V]``, the natural-log softmax over the vocabulary at each copy's position,
        computed as ``logits - logsumexp(logits)``: on the CPU in float32 this is closer to
        a float64 log-softmax than ``torch.log_softmax`` (on en-mini, 6e-7 against 1.2e-5).

    Raises:
        NoMLMHeadError: the model has no trained masked-LM head (not raised for no copies:
            then nothing runs).
    """
    if not copies:
        return
    ids = [c.ids for c in copies]
    positions = [[c.position] for c in copies]
    batch: list = []
    for f in iter_forward(lm, ids, positions=positions, batch_size=batch_size):
        batch.append(f)  # iter_forward yields whole batches of batch_size in turn
        if len(batch) == batch_size:
            yield _log_softmax(batch)
            batch = []
    if batch:
        yield _log_softmax(batch)


def score_copies(lm, copies: Sequence[MaskedCopy], batch_size: int = 32) -> list[float]:
    """Natural-log probability of each copy's ``target`` at its ``position`` (``≤ 0``).

    Args:
        lm: a :class:`mlmtool.models.LoadedModel` with a masked-LM head.
        copies: from :func:`masked_copies` or :func:`word_copies`.
        batch_size: copies per forward pass (default 32), bucketed by length.

    Returns:
        ``[len(copies)]`` floats in input order; their sum over a sequence's copies is its PLL
        (Salazar et al. 2020), or PLL-word-l2r (Kauf & Ivanova 2023) for word-l2r copies.

    Raises:
        NoMLMHeadError: the model has no trained masked-LM head.
    """
    import torch

    out = [0.0] * len(copies)
    for indices, rows in copy_log_probs(lm, copies, batch_size):
        targets = torch.tensor([copies[i].target for i in indices], dtype=torch.long, device=rows.device)
        for i, value in zip(indices, rows.gather(1, targets[:, None])[:, 0].tolist()):
            out[i] = value
    return out


def _log_softmax(batch: list) -> tuple[list[int], object]:
    """``(indices, logits - logsumexp(logits))`` of one batch of :class:`~mlmtool.core.forward.Forward`
    items with one logits row each: ``float32 [n, V]``."""
    import torch

    logits = torch.cat([f.logits for f in batch])  # [n, V]
    return [f.index for f in batch], logits - logits.logsumexp(-1, keepdim=True)


def check_variant(variant: str) -> None:
    """Raise :class:`MlmtoolError` (``param="variant"``) unless ``variant`` is in :data:`VARIANTS`."""
    if variant not in VARIANTS:
        raise MlmtoolError(f"variant must be one of {', '.join(VARIANTS)} (got '{variant}')", param="variant")
