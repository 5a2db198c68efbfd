"""Fill masks with whole words, and several masks jointly.

The HF fill-mask pipeline puts one vocabulary *piece* at each mask and treats every mask on
its own (``transformers/pipelines/fill_mask.py``), so a word of two pieces ("toothpaste" =
``tooth ##pas ##te`` for an uncased BERT vocabulary) can never be an answer, and two masks
get two separate lists with no joint probability. Here:

**Whole words.** Each ``[MASK]`` stands for one word of 1 to ``max_pieces`` pieces. For each
span length ``n`` the mask is replaced by ``n`` mask tokens and the pieces are chosen left to
right with a beam search: the first piece must start a word (no WordPiece ``##…`` piece, no
BPE/SentencePiece piece without ``Ġ``/``▁``; no special token), every later piece must
continue it. A word ``w = p_1 … p_n`` is scored by

    log_prob(w) = Σ_j log p(p_j | context, p_1 … p_{j-1} filled, p_{j+1} … p_n masked)

which is the word's **PLL-word-l2r** (Kauf & Ivanova 2023, "A Better Way to Do Masked
Language Model Scoring", ACL: each piece is scored with the pieces to its right in the
same word masked, which fixes the original PLL's inflated scores for multi-piece words).
For one piece it is the fill-mask log-probability itself, so single-piece words keep the
HF pipeline's probabilities. Words of different lengths are ranked by this score directly,
without dividing by the length (dividing would favour long words, whose later pieces are
nearly certain); the probabilities are not renormalised over the allowed pieces, so the
model's own doubt that the slot holds ``n`` pieces (mass on pieces that would start a new
word) lowers every ``n``-piece word. A word is kept only in the tokenizer's own
segmentation (``play ##ing`` is dropped when ``playing`` is one piece; a one-piece word
must be text the tokenizer reads back as that piece), so no word is listed twice.
``score = exp(log_prob)``.

The beam keeps the ``beam`` best unfinished prefixes per mask at each step (over all span
lengths: each prefix's log-probability bounds every word it can become); a prefix whose
log-probability is already below the ``k``-th best complete word is dropped (later pieces
can only lower it), so the search stops early when one-piece words are confident. Words
completed at a step cost no more forward passes and all that may enter the top ``k`` are
kept.

**Several masks.** With two or more masks the top-k complete sentences are found by a beam
search over the masks, the most confident mask first (Jiang et al. 2020, "X-FACTR:
Multilingual Factual Knowledge Retrieval from Pretrained Language Models", EMNLP, the
"confidence" decoding): in each state the mask whose best one-slot piece is the most probable
is filled with each of its ``beam`` best words, and the ``beam`` states with the highest
joint log-probability (the sum of each word's ``log_prob`` in the context where it was
filled) are kept; the same words reached in two orders count once, at their best. Every
printed sentence has all its masks filled. Each mask's own list (the other masks left
masked, as the HF pipeline) comes with it, from the same first pass.

``max_pieces=1`` is piece-level fill: exactly the HF pipeline's top-k (any vocabulary entry,
continuation pieces and special tokens included), as :func:`mlmtool.predict` always gave.

Shapes: ``S`` tokens, ``V`` vocabulary size. All model calls go through
:func:`mlmtool.core.forward.iter_forward` (the vocabulary projection only at the positions
asked for); the search's copies (a prefix filled, the rest of the word masked) are the
PLL-word-l2r copies of :func:`mlmtool.analysis.pll.word_copies`, scored by
:func:`mlmtool.analysis.pll.copy_log_probs`, the primitive that ``score`` and ``compare``
use too.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from ..core.forward import encode, iter_forward, mask_positions
from ..defaults import TOP_K
from ..errors import MlmtoolError
from ..models import LoadedModel
from ..tokens import USER_MASK, fill_text, marker_style, piece
from .pll import copy_log_probs, word_copies

#: Default number of pieces a word may have.
DEFAULT_MAX_PIECES = 3
#: Default beam width (unfinished prefixes per mask and step, and sentences kept after
#: each mask is filled).
DEFAULT_BEAM = 2
#: How an unfilled mask is written in a printed sentence (a cloze blank, never the mask token).
BLANK = "___"
#: Sentences processed together through one search (bounds the memory of kept log-probs).
_CHUNK = 128


@dataclass
class Candidate:
    """One word proposed for one mask.

    Attributes:
        word: the word as written into the sentence (tokenizer markers removed; pieces joined).
        pieces: its vocabulary pieces as the tokenizer writes them, e.g. ``["tooth", "##pas", "##te"]``.
        ids: their vocabulary ids.
        token: ``tokenizer.decode(ids)`` (for one piece the HF pipeline's ``token_str``).
        token_id: the id when the word is one piece, else None (the HF pipeline's ``token``).
        score: ``exp(log_prob)``, in [0, 1]; for one piece the softmax probability at the mask.
        log_prob: natural-log probability: the word's PLL-word-l2r in its context (see the
            module docstring); with several masks filled jointly, the context has the masks
            filled before it filled.
        sequence: the user's text with this word at the mask; other masks are written as
            ``___`` (per-mask lists) or filled (joint sentences), never as ``[MASK]``.
    """

    word: str
    pieces: list[str]
    ids: list[int]
    token: str
    token_id: int | None
    score: float
    log_prob: float
    sequence: str

    def to_dict(self) -> dict:
        """A JSON-ready ``dict`` (``word``, ``pieces``, ``score``, ``log_prob``, ...)."""
        return asdict(self)


@dataclass
class MaskPrediction:
    """Top-k words for one mask, the other masks left masked (as the HF pipeline).

    Attributes:
        index: which mask in the text, counted from 1 as users see it.
        position: token position of the mask in the model input (from 0, ``[CLS]`` is 0).
        candidates: ``top_k`` candidates, most probable first.
    """

    index: int
    position: int
    candidates: list[Candidate] = field(default_factory=list)


@dataclass
class SentenceCandidate:
    """One complete sentence with every mask filled (joint fill of several masks).

    Attributes:
        sequence: the sentence with every mask filled.
        score: joint probability ``exp(log_prob)``.
        log_prob: the sum of the words' log-probabilities, each in the context where it was
            filled (most confident mask first).
        words: one :class:`Candidate` per mask, in text order (``sequence`` = this sentence).
        order: the masks in the order they were filled (counted from 1).
    """

    sequence: str
    score: float
    log_prob: float
    words: list[Candidate]
    order: list[int]


@dataclass
class Prediction:
    """Fill-mask result for one text.

    Attributes:
        text: the user's text (with ``[MASK]``).
        tokens: the model's input tokens, special tokens included (``[S]``).
        masks: one :class:`MaskPrediction` per mask, in text order (each mask on its own).
        sentences: with two or more masks filled jointly, the top-k complete sentences, best
            first; empty for one mask or ``independent=True``.
        max_pieces: the most pieces a word could have (1 = piece-level, the HF pipeline).
    """

    text: str
    tokens: list[str]
    masks: list[MaskPrediction]
    sentences: list[SentenceCandidate] = field(default_factory=list)
    max_pieces: int = DEFAULT_MAX_PIECES

    def to_dict(self) -> dict:
        """A JSON-ready ``dict``."""
        return asdict(self)

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as UTF-8 JSON to ``path``; returns the path."""
        import json

        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
        return path


def fill_words(lm: LoadedModel, texts: str | list[str], top_k: int = TOP_K, *,
               max_pieces: int = DEFAULT_MAX_PIECES, beam: int = DEFAULT_BEAM, independent: bool = False,
               batch_size: int = 32) -> Prediction | list[Prediction]:
    """Fill every ``[MASK]`` with whole words; several masks jointly (see the module docstring).

    The implementation behind :func:`mlmtool.predict`, which is the primary public name
    (the ``predict`` command and ``POST /api/predict`` call it). ``fill_words`` is its alias,
    kept for code that imports it: the same search and results, with ``batch_size``
    keyword-only here (``predict`` also takes it as the fourth positional argument).

    Args, returns and errors: as :func:`mlmtool.analysis.predict.predict` (one list of
    them, kept there); ``batch_size`` counts the sequences of one search step, bucketed by
    length across sentences.
    """
    single = isinstance(texts, str)
    items = [texts] if single else list(texts)
    lm.require_mlm_head()
    check_fill_options(top_k, max_pieces, beam)
    encoded = encode(lm, items, need_mask=True)["input_ids"]
    if max_pieces == 1 and (independent or all(len(mask_positions(lm, e)) == 1 for e in encoded)):
        results = fill_pieces(lm, items, encoded, top_k=top_k, batch_size=batch_size)
        return results[0] if single else results
    results: list[Prediction] = []
    for start in range(0, len(items), _CHUNK):
        preds, _ = fill_encoded(lm, items[start:start + _CHUNK], encoded[start:start + _CHUNK], top_k=top_k,
                                max_pieces=max_pieces, beam=beam, independent=independent,
                                batch_size=batch_size)
        results.extend(preds)
    return results[0] if single else results


def fill_pieces(lm: LoadedModel, texts: Sequence[str], encoded: Sequence[Sequence[int]], *, top_k: int = TOP_K,
                batch_size: int = 32) -> list[Prediction]:
    """Piece-level fill (``max_pieces=1``, each mask on its own): a top-k over one batched pass.

    What the HF fill-mask pipeline computes (``transformers/pipelines/fill_mask.py``: the
    softmax of the masked position's logits over the whole vocabulary, then top-k), without
    the whole-word search: every text is bucketed by length with all the others
    (:func:`~mlmtool.core.forward.iter_forward`), the masked-LM head runs only at the masks,
    and only ``top_k`` log-probabilities per mask are kept. The answers equal
    :func:`fill_encoded`'s at ``max_pieces=1, independent=True`` (same ``log_softmax`` rows,
    same ``topk``).

    Args:
        lm, top_k, batch_size: as :func:`fill_words`; texts: the user's texts; encoded:
            their token ids (each with at least one mask).

    Returns:
        One :class:`Prediction` per text, in input order (per-mask lists only, no joint sentences).
    """
    positions = [mask_positions(lm, e) for e in encoded]
    per_mask: list = [None] * len(texts)
    for f in iter_forward(lm, encoded, positions=positions, batch_size=batch_size):
        vals, idx = f.logits.log_softmax(-1).topk(min(top_k, f.logits.shape[-1]), dim=-1)  # [masks, k]
        per_mask[f.index] = [[((int(i),), float(v)) for v, i in zip(vs, ids)]
                             for vs, ids in zip(vals.tolist(), idx.tolist())]
    return [_prediction(lm, texts[i], encoded[i], per_mask[i], [], 1) for i in range(len(texts))]


def check_fill_options(top_k: int, max_pieces: int = 1, beam: int = 1) -> None:
    """Raise :class:`MlmtoolError` unless ``top_k``, ``max_pieces`` and ``beam`` are at least 1."""
    for name, value in (("top_k", top_k), ("max_pieces", max_pieces), ("beam", beam)):
        if not isinstance(value, int) or value < 1:
            raise MlmtoolError(f"{name} must be at least 1 (got {value})", param=name)


def fill_encoded(lm: LoadedModel, texts: Sequence[str], encoded: Sequence[Sequence[int]], *, top_k: int = TOP_K,
                 max_pieces: int = DEFAULT_MAX_PIECES, beam: int = DEFAULT_BEAM, independent: bool = False,
                 batch_size: int = 32, attentions: bool = False):
    """The search of :func:`fill_words` on already encoded texts (no argument checks).

    Args:
        lm, top_k, max_pieces, beam, independent, batch_size: as :func:`fill_words`.
        texts: the user's texts; encoded: their token ids from
            :func:`mlmtool.core.forward.encode` (each with at least one mask).
        attentions: also return the attention weights of the first forward pass (the texts
            as given, every mask one token), so a caller drawing attention needs no second pass.

    Returns:
        ``(predictions, first)``: one :class:`Prediction` per text, and per text the
        :class:`mlmtool.core.forward.Forward` of that first pass (``.attentions`` is
        ``float32 [L, H, S, S]`` when asked for, else None).

    Raises:
        NoMLMHeadError: the model has no trained masked-LM head.
    """
    vocab = _vocabulary(lm, max_pieces)
    search = _Search(lm, vocab, max_pieces, beam, batch_size)
    n_masks = [len(mask_positions(lm, e)) for e in encoded]
    joint = [not independent and n > 1 for n in n_masks]
    first: list = [None] * len(texts)
    per_mask: list[list[list]] = [[[] for _ in range(n)] for n in n_masks]
    sentences: list[list[_State]] = [[] for _ in texts]
    states = [_State(sent=i, fills=(None,) * n_masks[i]) for i in range(len(texts))]
    root = True
    while states:
        layouts, rows = _read_states(lm, states, encoded, batch_size, attentions and root, first if root else None)
        slots, owners = _slots(states, layouts, rows, vocab, joint, root, top_k, beam)
        grown: dict[int, list[_State]] = {}
        for (s, m, own, grow), found in zip(owners, search.solve(slots)):
            state = states[s]
            if own:
                per_mask[state.sent][m] = found[:top_k]
            if grow:
                keep = top_k if len(state.open()) == 1 else beam
                grown.setdefault(state.sent, []).extend(state.child(m, w, lp) for w, lp in found[:keep])
        states = _next_states(grown, sentences, top_k, beam)
        root = False
    preds = [_prediction(lm, texts[i], encoded[i], per_mask[i], sentences[i], max_pieces)
             for i in range(len(texts))]
    return preds, first


def _read_states(lm: LoadedModel, states: list["_State"], encoded: Sequence[Sequence[int]], batch_size: int,
                 attentions: bool, first: list | None):
    """One batched pass over partly filled sentences: ``(layouts, rows)``.

    ``layouts[s]`` is :meth:`_State.layout` of state ``s``; ``rows[s]`` the log-probabilities
    ``[open masks, V]`` at its open masks. On the root pass ``first`` is a list, and each
    sentence's :class:`~mlmtool.core.forward.Forward` lands in it (attention included when asked).
    """
    layouts = [s.layout(encoded[s.sent], lm.mask_token_id) for s in states]
    rows: list = [None] * len(states)
    for f in iter_forward(lm, [ids for ids, _ in layouts], positions=[pos for _, pos in layouts],
                          batch_size=batch_size, attentions=attentions):
        rows[f.index] = f.logits.log_softmax(-1)  # [open masks, V]
        if first is not None:
            first[states[f.index].sent] = f
    return layouts, rows


def _slots(states: list["_State"], layouts: list, rows: list, vocab: "_Vocabulary", joint: list[bool], root: bool,
           top_k: int, beam: int) -> tuple[list["_Slot"], list[tuple[int, int, bool, bool]]]:
    """The whole-word problems of one step: ``(slots, owners)``.

    On the root pass every mask gets its own list (``top_k`` words); with several masks
    filled jointly, the most confident open mask of each state is grown (``beam`` words, or
    ``top_k`` for its last mask). ``owners[i]`` = ``(state, mask, own list, grow)`` of ``slots[i]``.
    """
    slots, owners = [], []
    for s, (state, (ids, pos), row) in enumerate(zip(states, layouts, rows)):
        open_masks = state.open()
        last = len(open_masks) == 1
        chosen = vocab.most_confident(row) if joint[state.sent] else None
        for u, m in enumerate(open_masks):
            own, grow = root, u == chosen
            if not (own or grow):
                continue
            k = max(top_k if own else 0, (top_k if last else beam) if grow else 0)
            slots.append(_Slot(ids, pos[u], row[u], k, initial=vocab.text_initial(ids, pos[u])))
            owners.append((s, m, own, grow))
    return slots, owners


def _next_states(grown: dict[int, list["_State"]], sentences: list[list["_State"]], top_k: int,
                 beam: int) -> list["_State"]:
    """The ``beam`` best partly filled states of each sentence for the next step.

    The same words reached in another order count once, at their best; a sentence whose
    best state is complete gets its ``top_k`` complete states in ``sentences`` instead.
    """
    states = []
    for sent, children in grown.items():
        best: dict[tuple, _State] = {}
        for child in children:
            key = child.words()
            if key not in best or child.log_prob > best[key].log_prob:
                best[key] = child
        ranked = sorted(best.values(), key=lambda c: -c.log_prob)
        if not ranked[0].open():
            sentences[sent] = ranked[:top_k]
        else:
            states.extend(ranked[:beam])
    return states


# --------------------------------------------------------------------------- the search


@dataclass
class _State:
    """A partly filled sentence: ``fills[m]`` = ``(ids, log_prob)`` of mask ``m``'s word, or None."""

    sent: int
    fills: tuple
    log_prob: float = 0.0
    order: tuple = ()

    def open(self) -> list[int]:
        """Indices (from 0) of the masks still unfilled."""
        return [m for m, f in enumerate(self.fills) if f is None]

    def words(self) -> tuple:
        """The filled words' ids per mask (None where open): the state without its history."""
        return tuple(None if f is None else f[0] for f in self.fills)

    def layout(self, original: Sequence[int], mask_id: int) -> tuple[list[int], list[int]]:
        """``(ids, open_positions)``: each filled mask replaced by its word's pieces, and the
        token positions of the masks still open (in text order)."""
        out, open_positions, m = [], [], 0
        for t in original:
            if t == mask_id:
                fill = self.fills[m]
                if fill is None:
                    open_positions.append(len(out))
                    out.append(t)
                else:
                    out.extend(fill[0])
                m += 1
            else:
                out.append(t)
        return out, open_positions

    def child(self, m: int, ids, lp: float) -> "_State":
        """This state with mask ``m`` filled by ``ids`` (log-probability ``lp``)."""
        fills = list(self.fills)
        fills[m] = (tuple(ids), lp)
        return _State(self.sent, tuple(fills), self.log_prob + lp, self.order + (m,))


@dataclass
class _Slot:
    """One whole-word problem: fill the mask at ``position`` of ``ids``.

    ``first`` is the log-probability row ``[V]`` at the mask in ``ids`` itself (the one-piece
    copy, already computed); ``k`` complete words are wanted. ``initial``: the word needs no
    word-start marker there (it opens the text, or follows a bare ``Ġ``/``▁`` token).
    """

    ids: list[int]
    position: int
    first: object
    k: int
    initial: bool = False


class _Vocabulary:
    """Which pieces may start a word and which continue one, as boolean tensors ``[V]``."""

    def __init__(self, lm: LoadedModel, max_pieces: int):
        import torch

        tok = lm.tokenizer
        size = int(lm.model.config.vocab_size)
        pieces = tok.convert_ids_to_tokens(list(range(min(size, len(tok)))))
        self.style = marker_style(tok)
        self.special = set(tok.all_special_ids)
        unused = re.compile(r"^\[unused\d+\]$|^<unused\d+>$")
        start = torch.zeros(size, dtype=torch.bool)
        cont = torch.zeros(size, dtype=torch.bool)
        for i, p in enumerate(pieces):
            if i in self.special or p is None or unused.match(p):
                continue
            is_cont = p.startswith("##") and len(p) > 2 if self.style == "wordpiece" else not p.startswith(self.style)
            (cont if is_cont else start)[i] = True
        self.piece_level = max_pieces == 1
        self.tokenizer = tok
        self.start = torch.ones(size, dtype=torch.bool) if self.piece_level else start
        self.start_initial = self.start | cont if self.style != "wordpiece" and not self.piece_level else self.start
        self.cont = cont
        self._single_ok: dict[int, bool] = {}  # id -> the piece alone is a word (checked lazily)

    def text_initial(self, ids: Sequence[int], position: int) -> bool:
        """True when a word at ``position`` needs no word-start marker: only special tokens
        come before it, or (BPE/SentencePiece) the token before it is a bare ``Ġ``/``▁``
        (a mask token that does not take in the space before it)."""
        if all(t in self.special for t in ids[:position]):
            return True
        return self.style != "wordpiece" and position > 0 and \
            self.tokenizer.convert_ids_to_tokens(int(ids[position - 1])) == self.style

    def starts(self, initial: bool):
        """The pieces that may open a word: ``bool [V]``."""
        return self.start_initial if initial else self.start

    def best_singles(self, row, k: int, initial: bool) -> list[tuple[tuple[int, ...], float]]:
        """The ``k`` best one-piece words of the log-probability ``row [V]``, as ``((id,), log_prob)``.

        A one-piece word must be text the tokenizer gives back as that same piece (no byte
        fragment of a character, no accent an uncased tokenizer strips); piece-level fill
        (``max_pieces=1``) takes every entry, as the HF pipeline.
        """
        allowed = self.starts(initial)
        n_allowed = int(allowed.sum())
        row = row.masked_fill(~allowed, -math.inf)
        want = k if self.piece_level else 2 * k + 4
        while True:
            vals, idx = row.topk(min(want, n_allowed))
            pairs = [(int(i), float(v)) for v, i in zip(vals.tolist(), idx.tolist()) if v > -math.inf]
            if not self.piece_level:
                unknown = [i for i, _ in pairs if i not in self._single_ok]
                for i, ok in zip(unknown, self.canonical([[i] for i in unknown])):
                    self._single_ok[i] = ok
                pairs = [(i, v) for i, v in pairs if self._single_ok[i]]
            if len(pairs) >= k or want >= n_allowed:
                return [((i,), v) for i, v in pairs[:k]]
            want *= 4

    def most_confident(self, rows) -> int:
        """Row index (from 0) of ``rows [U, V]`` whose best word-opening piece is the most probable."""
        return int(rows.masked_fill(~self.start, -math.inf).max(-1).values.argmax())

    def canonical(self, words: list[list[int]]) -> list[bool]:
        """True where the pieces are the tokenizer's own segmentation of the word they spell."""
        if not words:
            return []
        tok = self.tokenizer
        texts = [tok.decode(w).strip() for w in words]
        bare = tok(texts, add_special_tokens=False)["input_ids"]
        spaced = tok([" " + t for t in texts], add_special_tokens=False)["input_ids"]
        return [list(w) == a or list(w) == b for w, a, b in zip(words, bare, spaced)]


def _vocabulary(lm: LoadedModel, max_pieces: int) -> _Vocabulary:
    """The cached :class:`_Vocabulary` of ``lm`` (built once per model and mode)."""
    key = "_mlmtool_fill_vocab_%d" % (max_pieces == 1)
    cached = getattr(lm.tokenizer, key, None)
    if cached is None:
        cached = _Vocabulary(lm, max_pieces)
        try:
            setattr(lm.tokenizer, key, cached)
        except AttributeError:
            pass
    return cached


class _Search:
    """Beam search for whole words, all slots of all sentences advanced together step by step."""

    def __init__(self, lm: LoadedModel, vocab: _Vocabulary, max_pieces: int, beam: int, batch_size: int):
        self.lm, self.vocab, self.max_pieces, self.batch_size = lm, vocab, max_pieces, batch_size
        self.beam = min(beam, int(vocab.start.shape[0]))

    def solve(self, slots: list[_Slot]) -> list[list[tuple[tuple[int, ...], float]]]:
        """Per slot, up to ``slot.k`` words as ``(ids, log_prob)``, best first.

        One batched run per step serves every slot and span length (step ``j`` scores the
        ``j``-th piece of every live prefix); the one-piece words come from ``slot.first``.
        """
        found: list[list[tuple[tuple[int, ...], float]]] = []
        floor: list[float] = []  # the k-th best complete word so far: prefixes below it are dropped
        for slot in slots:
            words = self.vocab.best_singles(slot.first, slot.k, slot.initial)
            found.append(words)
            floor.append(words[-1][1] if len(words) >= slot.k else -math.inf)
        # live prefixes: (slot, span length n, prefix ids, log_prob of the prefix)
        hyps = [(s, n, (), 0.0) for s, slot in enumerate(slots) for n in range(2, self.max_pieces + 1)
                if len(slot.ids) - 1 + n <= self.lm.max_length]
        while hyps:
            done, grown = self._step(slots, hyps, floor)
            self._keep(slots, found, floor, done)
            hyps = []
            for s, options in grown.items():  # the beam: the best prefixes of this mask, any span length
                options.sort(key=lambda o: -o[2])
                hyps += [(s, n, prefix, lp) for n, prefix, lp in options[: self.beam] if lp > floor[s]]
        return found

    def _step(self, slots: list[_Slot], hyps: list, floor: list[float]):
        """Score the next piece of every live prefix: ``(done, grown)``.

        Each prefix's copy is its PLL-word-l2r copy (:func:`mlmtool.analysis.pll.word_copies`:
        the prefix filled, the rest of the span masked), all in one batched run. ``done``:
        complete words ``(slot, ids, log_prob)``; ``grown``: ``{slot: [(n, prefix, log_prob)]}``.
        Candidates at or below the slot's ``floor`` are dropped.
        """
        mask_id = self.lm.mask_token_id
        copies = [word_copies(slots[s].ids, slots[s].position, prefix + (mask_id,) * (n - len(prefix)), mask_id,
                              pieces=[len(prefix)])[0] for s, n, prefix, _ in hyps]
        grown: dict[int, list[tuple[int, tuple[int, ...], float]]] = {}
        done: list[tuple[int, tuple[int, ...], float]] = []
        for indices, rows in copy_log_probs(self.lm, copies, self.batch_size):
            for index, row in zip(indices, rows):  # row: [V] log-probabilities
                s, n, prefix, lp = hyps[index]
                allowed = self.vocab.cont if prefix else self.vocab.starts(slots[s].initial)
                last = len(prefix) + 1 == n
                width = max(self.beam, slots[s].k) if last else self.beam
                vals, idx = row.masked_fill(~allowed, -math.inf).topk(min(width, int(allowed.shape[0])))
                for v, i in zip(vals.tolist(), idx.tolist()):
                    if lp + v <= floor[s]:
                        break  # sorted: the rest are lower still
                    if last:  # a complete word costs no more forward passes: keep every one that may count
                        done.append((s, prefix + (int(i),), lp + v))
                    else:
                        grown.setdefault(s, []).append((n, prefix + (int(i),), lp + v))
        return done, grown

    def _keep(self, slots: list[_Slot], found: list, floor: list[float], done: list) -> None:
        """Add the complete words of ``done`` that are the tokenizer's own segmentation to
        ``found`` (best ``slot.k`` kept per slot) and raise each slot's ``floor``."""
        for (s, word, lp), ok in zip(done, self.vocab.canonical([list(d[1]) for d in done])):
            if ok:
                found[s].append((word, lp))
        for s in {d[0] for d in done}:
            found[s].sort(key=lambda w: -w[1])
            del found[s][slots[s].k:]
            if len(found[s]) >= slots[s].k:
                floor[s] = found[s][-1][1]


# --------------------------------------------------------------------------- results


def _prediction(lm: LoadedModel, text: str, ids: list[int], per_mask: list[list], sentences: list[_State],
                max_pieces: int) -> Prediction:
    """Turn the search's ``(ids, log_prob)`` lists into a :class:`Prediction`."""
    user_text = text.replace(lm.mask_token, USER_MASK) if lm.mask_token != USER_MASK else text
    positions = mask_positions(lm, ids)
    n = len(positions)
    masks = []
    for m, (pos, words) in enumerate(zip(positions, per_mask)):
        cands, seen = [], set()
        for wid, lp in words:
            word, joins = _written(lm, wid, max_pieces)
            seq = _sequence(lm, user_text, ids, {m: (word, joins)}, n)
            if max_pieces > 1 and seq in seen:
                continue  # two piece sequences that print alike are shown once, at their best
            seen.add(seq)
            cands.append(_candidate(lm, wid, lp, word, seq))
        masks.append(MaskPrediction(index=m + 1, position=pos, candidates=cands))
    joint, seen = [], set()
    for state in sentences:
        written = {m: _written(lm, f[0], max_pieces) for m, f in enumerate(state.fills)}
        seq = _sequence(lm, user_text, ids, written, n)
        if seq in seen:
            continue
        seen.add(seq)
        words = [_candidate(lm, f[0], f[1], written[m][0], seq) for m, f in enumerate(state.fills)]
        joint.append(SentenceCandidate(sequence=seq, score=math.exp(state.log_prob), log_prob=state.log_prob,
                                       words=words, order=[m + 1 for m in state.order]))
    return Prediction(text=text, tokens=lm.tokenizer.convert_ids_to_tokens(ids), masks=masks, sentences=joint,
                      max_pieces=max_pieces)


def _candidate(lm: LoadedModel, ids, lp: float, word: str, sequence: str) -> Candidate:
    ids = [int(i) for i in ids]
    return Candidate(word=word, pieces=lm.tokenizer.convert_ids_to_tokens(ids), ids=ids,
                     token=lm.tokenizer.decode(ids), token_id=ids[0] if len(ids) == 1 else None,
                     score=math.exp(lp), log_prob=lp, sequence=sequence)


def _written(lm: LoadedModel, ids, max_pieces: int) -> tuple[str, bool]:
    """``(text, joins_previous_word)`` for a word as it goes into the sentence.

    A special token proposed at piece level (only a random model does that) is written
    ``⟨MASK⟩``-style, so no printed sentence ever holds a mask token.
    """
    tok = lm.tokenizer
    ids = [int(i) for i in ids]
    if any(i in tok.all_special_ids for i in ids):
        return "⟨" + tok.convert_ids_to_tokens(ids[0]).strip("[]<>|") + "⟩", False
    if max_pieces == 1 and len(ids) == 1:
        return piece(tok, ids[0])
    return tok.decode(ids).strip(), False


def _sequence(lm: LoadedModel, user_text: str, ids: list[int], words: dict[int, tuple[str, bool]],
              n_masks: int) -> str:
    """The user's text with mask ``m`` replaced by ``words[m]`` and every other mask by ``___``."""
    if user_text.count(USER_MASK) == n_masks:
        out = user_text
        for m in reversed(range(n_masks)):
            word, joins = words.get(m, (BLANK, False))
            out = fill_text(out, USER_MASK, m, word, joins)
        return out
    # the text's masks did not map one to one onto mask tokens: write the filled ids instead
    pieces, m = [], 0
    for t in ids:
        if t == lm.mask_token_id:
            pieces.append(words.get(m, (BLANK, False))[0])
            m += 1
        else:
            pieces.append(lm.tokenizer.decode([t], skip_special_tokens=True))
    return " ".join(p for p in pieces if p).strip()
