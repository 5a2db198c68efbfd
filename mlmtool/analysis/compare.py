"""Compare two models on the same text(s), or one model on two texts: heads and predictions.

Two forms, one result (:class:`ComparisonResult`):

* :func:`compare_models`: models A and B (same vocabulary, same layers × heads) read the
  same sentences. A head's distance on a sentence is the mean over attention rows of the
  Jensen–Shannon distance between A's and B's row; sentences are averaged.
* :func:`compare_texts`: one model reads text 1 and text 2 (a minimal pair). Attention is
  made word-level first (Clark et al. 2019, section 4.1, as ``mlmtool heads``:
  :func:`mlmtool.analysis.heads.metrics.word_attention`), words are aligned
  (:func:`align_words`), and the distance is taken over the rows of the aligned words,
  restricted to the aligned units (special tokens and aligned words; each row renormalised).

The Jensen–Shannon distance (Lin 1991; Endres & Schindelin 2003: the square root of the
divergence is a metric) is :func:`scipy.spatial.distance.jensenshannon` with ``base=2``: 0 =
the same distribution, 1 = disjoint supports.

Each model reads all its sentences in one batched run (:func:`run_side`): attention and,
where a text has a mask and the model a masked-LM head, the logits at the masks from the
same pass, which start fill's whole-word search (:mod:`mlmtool.analysis.fill`). Words of
several pieces that only the other side proposed are scored on this side with fill's rule,
PLL-word-l2r (:func:`score_words`, through :mod:`mlmtool.analysis.pll`). With a mask, each
side's layer-wise predictions (:mod:`mlmtool.analysis.layerwise`) take one more pass.
:class:`Side` keeps one side as plain data, so it can be compared later
(:func:`compare_sides`; the fine-tuning report keeps its start model this way).

Layers and heads count from 1 in :meth:`ComparisonResult.top`, :meth:`ComparisonResult.heads`
and the JSON; from 0 inside the arrays (``distance[l, h]`` is layer ``l + 1``, head ``h + 1``).
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.forward import encode, iter_forward, mask_positions, mlm_head
from ..defaults import TOP_HEADS, TOP_K
from ..errors import MlmtoolError
from ..models import LoadedModel
from ..tokens import USER_MASK, to_model_text, word_strings
from .arch import attention_heads, check_attention
from .attention import AttentionResult, attention_from
from .fill import DEFAULT_MAX_PIECES, Prediction, check_fill_options, fill_encoded
from .heads.metrics import sentence_units, word_attention
from .layerwise import LayerwisePrediction, layerwise_predictions
from .pll import score_copies, word_copies

#: The distance, for titles, captions and the JSON.
METHOD = ("Jensen-Shannon distance (base 2, in [0, 1]) between the two attention distributions "
          "of each row (attending token or word), averaged over rows and sentences")

CITATION = ("Lin (1991), Divergence measures based on the Shannon entropy, IEEE Trans. Inf. Theory "
            "37(1); Endres & Schindelin (2003), A new metric for probability distributions, IEEE "
            "Trans. Inf. Theory 49(7)")

#: Bump when the layout of :meth:`ComparisonResult.to_dict` changes incompatibly.
JSON_VERSION = 1


# --------------------------------------------------------------------------------------------
# Data


@dataclass
class Side:
    """What one model did on its sentences (plain data, no model inside): :func:`run_side`.

    Attributes:
        label: how the side is shown (the model's name, or ``"text 1"``).
        model_name: the model's name.
        texts: the user's sentences (with ``[MASK]``).
        attention: one :class:`~mlmtool.analysis.attention.AttentionResult` per sentence
            (token-level ``float32 [L, H, S, S]``).
        words: the surface form of each sentence's words (the tokenizer's words, so
            punctuation is a word of its own), from the user's text.
        predictions: per sentence, a whole-word :class:`~mlmtool.analysis.fill.Prediction`,
            or None when the sentence has no mask or the model no masked-LM head.
        ids: per sentence, the token ids ``[S]`` the model read.
        rows: per sentence, ``float32 ndarray [n_masks, V]`` log-probabilities at the masks
            (log-softmax of the first pass), or None like ``predictions``.
        known: per sentence and mask, ``{word ids: log_prob}`` of every word scored on this
            side (its own candidates, and words scored by :func:`score_words`).
        vocab: ``{token: id}`` of the tokenizer (to check that two sides can be compared).
        has_mlm_head: whether the model could predict (False: attention only).
        layerwise: per sentence, the layer-wise predictions at its masks (logit lens,
            :mod:`mlmtool.analysis.layerwise`), or None (no mask, no separable head, or not asked).
    """

    label: str
    model_name: str
    texts: list[str]
    attention: list[AttentionResult]
    words: list[list[str]]
    predictions: list[Prediction | None]
    ids: list[list[int]] = field(repr=False, default_factory=list)
    rows: list[np.ndarray | None] = field(repr=False, default_factory=list)
    known: list[list[dict]] = field(repr=False, default_factory=list)
    vocab: dict[str, int] = field(repr=False, default_factory=dict)
    has_mlm_head: bool = True
    layerwise: list[LayerwisePrediction | None] = field(repr=False, default_factory=list)

    @property
    def num_layers(self) -> int:
        """Layers of the model (from the attention)."""
        return self.attention[0].num_layers

    @property
    def num_heads(self) -> int:
        """Heads per layer (from the attention)."""
        return self.attention[0].num_heads

    def log_prob(self, i: int, m: int, ids: Sequence[int]) -> float | None:
        """Log-probability of the word ``ids`` at mask ``m`` of sentence ``i`` (from 0) on
        this side, or None when it was not scored (a word of several pieces not looked up)."""
        if self.rows[i] is None or m >= len(self.known[i]):
            return None
        key = tuple(int(t) for t in ids)
        if key in self.known[i][m]:
            return self.known[i][m][key]
        return float(self.rows[i][m, key[0]]) if len(key) == 1 else None

    def subset(self, index: Sequence[int], label: str) -> "Side":
        """The same side restricted to the sentences ``index`` (from 0); it shares the
        per-sentence score tables, so words scored on the subset are known to ``self``."""
        pick = lambda xs: [xs[i] for i in index]  # noqa: E731
        return Side(label=label, model_name=self.model_name, texts=pick(self.texts), attention=pick(self.attention),
                    words=pick(self.words), predictions=pick(self.predictions), ids=pick(self.ids),
                    rows=pick(self.rows), known=pick(self.known), vocab=self.vocab, has_mlm_head=self.has_mlm_head,
                    layerwise=pick(self.layerwise) if self.layerwise else [])


@dataclass
class CandidateChange:
    """One candidate word for one mask, under both sides.

    Attributes:
        word: the word as written into the sentence.
        ids: its vocabulary pieces' ids (one id for a one-piece word).
        score_a, score_b: probability in [0, 1] under side A and side B (the word's
            ``exp(log_prob)`` as :mod:`mlmtool.analysis.fill` scores it); None where that
            side could not score it (a word of several pieces, the model no longer at hand).
        rank_a, rank_b: rank (from 1) in that side's top-k, None when outside it.
    """

    word: str
    ids: list[int]
    score_a: float | None
    score_b: float | None
    rank_a: int | None
    rank_b: int | None

    @property
    def change(self) -> float | None:
        """``score_b - score_a`` (probability, in [-1, 1]); None when a side has no score."""
        if self.score_a is None or self.score_b is None:
            return None
        return self.score_b - self.score_a


@dataclass
class MaskChange:
    """The candidates of one mask under both sides.

    Attributes:
        sentence: which sentence (from 1; for two texts, the pair's number).
        mask: which mask of the sentence (from 1).
        text_a, text_b: the sentence as each side read it.
        candidates: the union of both top-k lists: A's in A's order, then B's others in B's
            order.
    """

    sentence: int
    mask: int
    text_a: str
    text_b: str
    candidates: list[CandidateChange]

    def to_dict(self) -> dict:
        """A JSON-ready dict (each candidate with its ``change``)."""
        d = asdict(self)
        for c, obj in zip(d["candidates"], self.candidates):
            c["change"] = obj.change
        return d


@dataclass
class AlignedWord:
    """Two words the two-text comparison treats as the same place.

    Attributes:
        position_a, position_b: the word's number in text 1 and text 2 (from 1; the
            tokenizer's words, so punctuation counts as a word).
        word_a, word_b: the words as written.
    """

    position_a: int
    position_b: int
    word_a: str
    word_b: str

    @property
    def same(self) -> bool:
        """True when the two words are equal (case-folded)."""
        return self.word_a.casefold() == self.word_b.casefold()


@dataclass
class ComparisonResult:
    """What changed between two sides, per head and per prediction.

    Attributes:
        kind: ``"models"`` (two models, same sentences) or ``"texts"`` (one model, two texts).
        labels: ``(A, B)`` as shown (model names, or ``"text 1"``, ``"text 2"``).
        models: ``(model A, model B)`` names (the same name twice for ``"texts"``).
        texts_a, texts_b: the sentences each side read (equal lists for ``"models"``).
        distance: ``float64 [L, H]`` mean Jensen–Shannon distance per head (0 = same, 1 =
            disjoint), indices from 0.
        per_sentence: ``float64 [n, L, H]`` the distance on each sentence.
        predictions_a, predictions_b: per sentence, the side's
            :class:`~mlmtool.analysis.fill.Prediction` or None.
        changes: one :class:`MaskChange` per mask present on both sides.
        alignment: for ``"texts"``, the aligned words (empty for ``"models"``).
        units_a, units_b: the shown sentence's units (tokens for ``"models"``; special
            tokens and words for ``"texts"``).
        attention_a, attention_b: ``float32 [L, H, U, U]`` the shown sentence's attention
            over those units (rows sum to 1).
        pairs: ``[(u_a, u_b), ...]`` unit indices (from 0) aligned between the two sides,
            in A's order (all units for ``"models"``).
        shown: index (from 0) of the sentence whose attention is kept.
        notes: one-line remarks (a side without predictions, ...).
        layerwise_a, layerwise_b: per sentence, each side's layer-wise predictions at the
            masks (:class:`~mlmtool.analysis.layerwise.LayerwisePrediction`) or None.
    """

    kind: str
    labels: tuple[str, str]
    models: tuple[str, str]
    texts_a: list[str]
    texts_b: list[str]
    distance: np.ndarray
    per_sentence: np.ndarray
    predictions_a: list[Prediction | None]
    predictions_b: list[Prediction | None]
    changes: list[MaskChange]
    alignment: list[AlignedWord]
    units_a: list[str]
    units_b: list[str]
    attention_a: np.ndarray
    attention_b: np.ndarray
    pairs: list[tuple[int, int]]
    shown: int = 0
    notes: list[str] = field(default_factory=list)
    layerwise_a: list[LayerwisePrediction | None] = field(default_factory=list)
    layerwise_b: list[LayerwisePrediction | None] = field(default_factory=list)

    num_layers = property(lambda self: int(self.distance.shape[0]), doc="Layers compared.")
    num_heads = property(lambda self: int(self.distance.shape[1]), doc="Heads per layer compared.")

    def top(self, k: int = TOP_HEADS) -> list[tuple[int, int, float]]:
        """The ``k`` heads that changed most: ``(layer, head, distance)``, from 1, largest first."""
        order = np.argsort(-self.distance, axis=None, kind="stable")[:k]
        return [(int(i) // self.num_heads + 1, int(i) % self.num_heads + 1, float(self.distance.flat[i]))
                for i in order]

    def heads(self) -> list[dict]:
        """Every head as ``{"layer", "head", "distance"}`` (from 1), in layer, head order."""
        return [{"layer": l + 1, "head": h + 1, "distance": float(d)}
                for (l, h), d in np.ndenumerate(self.distance)]

    def difference(self) -> np.ndarray:
        """``float32 [L, H, n, n]``: B − A on the aligned units of the shown sentence.

        Rows and columns follow :attr:`pairs` (A's order); values in [-1, 1].
        """
        ia = [a for a, _ in self.pairs]
        ib = [b for _, b in self.pairs]
        return self.attention_b[:, :, ib][..., ib] - self.attention_a[:, :, ia][..., ia]

    def to_dict(self) -> dict:
        """A JSON-ready dict: ``heads`` (list of ``{layer, head, distance}``), ``top``,
        ``predictions`` (``{"a": [...], "b": [...]}``, one entry or null per sentence),
        ``changes``, ``layerwise`` (like ``predictions``), ``alignment`` and what was compared."""
        return {
            "version": JSON_VERSION,
            "kind": self.kind,
            "labels": list(self.labels),
            "models": list(self.models),
            "texts_a": list(self.texts_a),
            "texts_b": list(self.texts_b),
            "n_sentences": len(self.texts_a),
            "method": METHOD,
            "citation": CITATION,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "heads": self.heads(),
            "top": [{"layer": l, "head": h, "distance": d} for l, h, d in self.top()],
            "predictions": {"a": [p.to_dict() if p is not None else None for p in self.predictions_a],
                            "b": [p.to_dict() if p is not None else None for p in self.predictions_b]},
            "changes": [c.to_dict() for c in self.changes],
            "layerwise": {"a": [p.to_dict() if p is not None else None for p in self.layerwise_a],
                          "b": [p.to_dict() if p is not None else None for p in self.layerwise_b]},
            "alignment": [asdict(a) | {"same": a.same} for a in self.alignment],
            "notes": list(self.notes),
        }

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (UTF-8) to ``path`` and return the path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
        return path


# --------------------------------------------------------------------------------------------
# Metric and alignment (plain NumPy, no model)


def js_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen–Shannon distance (base 2) between rows, averaged over rows.

    Args:
        p, q: ``float [..., R, C]`` non-negative rows (each is normalised to sum 1 by
            :func:`scipy.spatial.distance.jensenshannon`).

    Returns:
        ``float64 [...]``: the mean over the ``R`` rows of each row's distance, in [0, 1].
        Rounding can make a row's divergence a hair below 0; such rows count as 0.

    Source: Lin (1991); Endres & Schindelin (2003) (the square root of the divergence is a
    metric); scipy's implementation.
    """
    from scipy.spatial.distance import jensenshannon

    d = jensenshannon(np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64), base=2, axis=-1)
    return np.nan_to_num(d, nan=0.0).mean(-1)


def align_words(words_a: Sequence[str], words_b: Sequence[str]) -> list[tuple[int, int]]:
    """Pairs of word indices (from 0) that stand for the same place in two texts.

    Same number of words: every position with itself (a substitution such as he/she is
    aligned). Otherwise ``difflib.SequenceMatcher(autojunk=False)`` on the case-folded
    words: its equal blocks, plus the words of a replaced block of the same length on both
    sides, position by position; inserted and deleted words stay unaligned.

    Returns:
        ``[(i, j), ...]`` increasing in both ``i`` and ``j``.
    """
    if len(words_a) == len(words_b):
        return [(i, i) for i in range(len(words_a))]
    a = [w.casefold() for w in words_a]
    b = [w.casefold() for w in words_b]
    out: list[tuple[int, int]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            out.extend(zip(range(i1, i2), range(j1, j2)))
    return out


def same_vocabulary(vocab_a: dict[str, int], vocab_b: dict[str, int], name_a: str, name_b: str) -> None:
    """Raise :class:`MlmtoolError` unless two tokenizers map the same tokens to the same ids."""
    if vocab_a != vocab_b:
        raise MlmtoolError(
            f"models '{name_a}' and '{name_b}' have different vocabularies ({len(vocab_a):,} and "
            f"{len(vocab_b):,} tokens); compare needs two models that share a tokenizer")


# --------------------------------------------------------------------------------------------
# Running one side


def run_side(lm: LoadedModel, texts: Sequence[str], *, label: str | None = None, top_k: int = TOP_K,
             max_pieces: int = DEFAULT_MAX_PIECES, layerwise: bool = True, batch_size: int = 32) -> Side:
    """Run ``lm`` once over ``texts`` (batched) and keep attention and whole-word predictions.

    Sentences with a mask go through :func:`mlmtool.analysis.fill.fill_encoded` (its first
    pass returns the attention too); the others through
    :func:`mlmtool.core.forward.iter_forward` with attention only. Every sentence is read
    once; fill adds the passes that words of several pieces need, and the layer-wise
    predictions (:func:`mlmtool.analysis.layerwise.layerwise_predictions`) one more pass over
    the sentences with a mask.

    Args:
        lm: a model from :func:`mlmtool.load` (predictions only when it has a masked-LM head).
        texts: sentences; ``[MASK]`` marks words to predict (optional).
        label: how the side is shown (default the model's name).
        top_k: candidates per mask (default :data:`mlmtool.defaults.TOP_K`).
        max_pieces: the most pieces a predicted word may have (1 = piece level).
        layerwise: also the layer-wise predictions at the masks (default True; needs a
            masked-LM head that is a separate module).
        batch_size: sequences per forward pass.

    Returns:
        A :class:`Side`. Useful on its own to keep what a model did before it changes (the
        fine-tuning report captures the start model this way before training).

    Raises:
        MlmtoolError: no texts, an empty text, a text over the model's limit, bad top_k, an
            architecture without token x token attention (:func:`mlmtool.analysis.arch.check_attention`).
    """
    texts = list(texts)
    if not texts:
        raise MlmtoolError("no sentences to compare")
    check_attention(lm)
    check_fill_options(top_k, max_pieces)
    encoding = encode(lm, texts)
    ids = [list(e) for e in encoding["input_ids"]]
    n = len(texts)
    masked = [i for i in range(n) if lm.has_mlm_head and mask_positions(lm, ids[i])]
    plain = [i for i in range(n) if i not in set(masked)]
    attention: list = [None] * n
    predictions: list = [None] * n
    rows: list = [None] * n
    known: list = [[] for _ in range(n)]
    if masked:
        preds, first = fill_encoded(lm, [texts[i] for i in masked], [ids[i] for i in masked], top_k=top_k,
                                    max_pieces=max_pieces, batch_size=batch_size, attentions=True)
        for k, i in enumerate(masked):
            attention[i] = attention_from(lm, texts[i], encoding, i, first[k].attentions)
            predictions[i] = preds[k]
            rows[i] = first[k].logits.float().log_softmax(-1).cpu().numpy()  # [n_masks, V]
            known[i] = [{tuple(c.ids): c.log_prob for c in m.candidates} for m in preds[k].masks]
    for f in iter_forward(lm, [ids[i] for i in plain], attentions=True, batch_size=batch_size):
        i = plain[f.index]
        attention[i] = attention_from(lm, texts[i], encoding, i, f.attentions)
    lens = _side_layerwise(lm, texts, masked, top_k, batch_size) if layerwise else [None] * n
    return Side(label=label or lm.name, model_name=lm.name, texts=texts, attention=attention,
                words=_side_words(lm, texts, encoding), predictions=predictions, ids=ids, rows=rows, known=known,
                vocab=lm.tokenizer.get_vocab(), has_mlm_head=lm.has_mlm_head, layerwise=lens)


def _side_layerwise(lm: LoadedModel, texts: list[str], masked: list[int], top_k: int,
                    batch_size: int) -> list[LayerwisePrediction | None]:
    """Per sentence, the layer-wise predictions at its masks (only the sentences ``masked``,
    and only when the masked-LM head is a separate module), else None."""
    lens: list = [None] * len(texts)
    if masked and mlm_head(lm.model) is not None:
        for i, res in zip(masked, layerwise_predictions(lm, [texts[i] for i in masked], top_k=top_k,
                                                        batch_size=batch_size)):
            lens[i] = res
    return lens


def _side_words(lm: LoadedModel, texts: list[str], encoding) -> list[list[str]]:
    """The surface form of each sentence's words (the tokenizer's words), masks as ``[MASK]``."""
    model_texts = [to_model_text(t, lm.mask_token) for t in texts]
    return [[w.replace(lm.mask_token, USER_MASK) for w in word_strings(t, encoding, i, lm.tokenizer)]
            for i, t in enumerate(model_texts)]


def score_words(lm: LoadedModel, side: Side, wanted: Sequence[tuple[int, int, Sequence[int]]],
                batch_size: int = 32) -> None:
    """Score words of several pieces at masks of ``side`` with ``lm`` (the side's model).

    The score is PLL-word-l2r (Kauf & Ivanova 2023), the rule
    :mod:`mlmtool.analysis.fill` ranks words by: the mask becomes ``n`` pieces and piece
    ``j`` is read with pieces ``1..j-1`` filled and the rest masked; the natural-log
    probabilities are summed (:func:`mlmtool.analysis.pll.word_copies`,
    :func:`~mlmtool.analysis.pll.score_copies`). All pieces of all words go through one
    batched run.

    Args:
        lm: the model ``side`` came from, unchanged since.
        side: from :func:`run_side`; the scores land in ``side.known``.
        wanted: ``(sentence, mask, word ids)``, sentence and mask from 0. Words already
            known, of one piece, or too long for the model are skipped.
        batch_size: copies per forward pass (default 32).

    Raises:
        NoMLMHeadError: ``lm`` has no trained masked-LM head.
    """
    copies, owner = [], []
    for i, m, word in wanted:
        word = tuple(int(t) for t in word)
        if side.rows[i] is None or len(word) < 2 or side.log_prob(i, m, word) is not None:
            continue
        ids = side.ids[i]
        p = mask_positions(lm, ids)[m]
        if len(ids) - 1 + len(word) > lm.max_length:
            continue
        side.known[i][m][word] = 0.0  # a word wanted twice is scored once
        copies += word_copies(ids, p, word, lm.mask_token_id)
        owner += [(i, m, word)] * len(word)
    for (i, m, word), value in zip(owner, score_copies(lm, copies, batch_size)):
        side.known[i][m][word] += value


def cross_score(a: Side, b: Side, lm_a: LoadedModel | None = None, lm_b: LoadedModel | None = None,
                batch_size: int = 32) -> None:
    """Score on each side the words of several pieces that only the other side proposed.

    Sentence ``i`` of ``a`` is paired with sentence ``i`` of ``b``, mask ``m`` with mask ``m``.
    A side whose model is not given (None: e.g. captured before training) is left as it is;
    such words then have no score there.

    Args:
        a, b: sides from :func:`run_side`; lm_a, lm_b: their models, unchanged since.
    """
    for_a, for_b = [], []
    for i, (pa, pb) in enumerate(zip(a.predictions, b.predictions)):
        if pa is None or pb is None:
            continue
        for m, (ma, mb) in enumerate(zip(pa.masks, pb.masks)):
            for_a.extend((i, m, c.ids) for c in mb.candidates)
            for_b.extend((i, m, c.ids) for c in ma.candidates)
    if lm_a is not None:
        score_words(lm_a, a, for_a, batch_size)
    if lm_b is not None:
        score_words(lm_b, b, for_b, batch_size)


# --------------------------------------------------------------------------------------------
# The two forms


def compare_models(lm_a: LoadedModel, lm_b: LoadedModel, texts: str | Sequence[str], *, top_k: int = TOP_K,
                   max_pieces: int = DEFAULT_MAX_PIECES, layerwise: bool = True, batch_size: int = 32,
                   shown: int = 0, words: bool = False) -> ComparisonResult:
    """Compare two models' attention (every head) and predictions on the same sentences.

    Args:
        lm_a, lm_b: models with the same vocabulary and the same layers × heads (e.g. a
            model and its fine-tuned copy).
        texts: one sentence or several; with several, per-head distances are averaged.
        top_k: candidates per mask (default :data:`mlmtool.defaults.TOP_K`; predictions need a
            masked-LM head on that side).
        max_pieces: the most pieces a predicted word may have (default 3; 1 = piece level).
        layerwise: also each side's layer-wise predictions at the masks (default True).
        batch_size: sentences per forward pass (each model runs once over all sentences).
        shown: which sentence's attention to keep for the heatmaps (from 0).
        words: compare word-level attention (each side's aggregated by
            :func:`mlmtool.analysis.words.aggregate_words`, Clark et al. 2019) instead of pieces.

    Returns:
        :class:`ComparisonResult` with ``kind="models"``.

    Raises:
        MlmtoolError: different vocabularies or head counts, no/empty text, a text over
            either model's limit, bad top_k.

    Example:
        >>> res = compare_models(lm, lm, "The cat sat.")  # doctest: +SKIP
        >>> float(res.distance.max())  # doctest: +SKIP
        0.0
    """
    items = [texts] if isinstance(texts, str) else list(texts)
    if not items:
        raise MlmtoolError("no sentences to compare")
    same_vocabulary(lm_a.tokenizer.get_vocab(), lm_b.tokenizer.get_vocab(), lm_a.name, lm_b.name)
    heads_a, heads_b = attention_heads(lm_a), attention_heads(lm_b)
    if (lm_a.num_layers, heads_a) != (lm_b.num_layers, heads_b):
        raise MlmtoolError(
            f"models '{lm_a.name}' ({lm_a.num_layers} layers x {heads_a} heads) and '{lm_b.name}' "
            f"({lm_b.num_layers} x {heads_b}) have different heads, so they cannot be compared head by head")
    label_a, label_b = (lm_a.name, lm_b.name) if lm_a.name != lm_b.name else (f"{lm_a.name} (A)", f"{lm_b.name} (B)")
    a = run_side(lm_a, items, label=label_a, top_k=top_k, max_pieces=max_pieces, layerwise=layerwise,
                 batch_size=batch_size)
    b = run_side(lm_b, items, label=label_b, top_k=top_k, max_pieces=max_pieces, layerwise=layerwise,
                 batch_size=batch_size)
    cross_score(a, b, lm_a, lm_b, batch_size)
    if words:
        from .words import aggregate_words

        for side in (a, b):
            side.attention = [aggregate_words(r) for r in side.attention]
    return compare_sides(a, b, shown=shown)


def compare_sides(a: Side, b: Side, *, shown: int = 0) -> ComparisonResult:
    """Compare two :class:`Side` objects that read the same sentences (no model call).

    A word of several pieces proposed by only one side has no score on the other unless
    :func:`score_words` looked it up while that side's model was at hand.

    Raises:
        MlmtoolError: the sides differ in vocabulary, heads, sentences or tokenization.
    """
    same_vocabulary(a.vocab, b.vocab, a.model_name, b.model_name)
    if (a.num_layers, a.num_heads) != (b.num_layers, b.num_heads):
        raise MlmtoolError(f"'{a.label}' has {a.num_layers} x {a.num_heads} heads and '{b.label}' "
                           f"{b.num_layers} x {b.num_heads}; they cannot be compared head by head")
    if len(a.texts) != len(b.texts):
        raise MlmtoolError(f"the sides read {len(a.texts)} and {len(b.texts)} sentences")
    per = np.zeros((len(a.texts), a.num_layers, a.num_heads))
    for i, (ra, rb) in enumerate(zip(a.attention, b.attention)):
        if ra.tokens != rb.tokens:
            raise MlmtoolError(f"sentence {i + 1} is tokenized differently by '{a.label}' and '{b.label}'")
        per[i] = js_distance(ra.attention, rb.attention)
    shown = min(max(shown, 0), len(a.texts) - 1)
    tokens = list(a.attention[shown].tokens)
    changes = [c for i in range(len(a.texts)) for c in _mask_changes(a, b, i, i, i + 1)]
    return ComparisonResult(
        kind="models", labels=(a.label, b.label), models=(a.model_name, b.model_name),
        texts_a=list(a.texts), texts_b=list(b.texts), distance=per.mean(0), per_sentence=per,
        predictions_a=list(a.predictions), predictions_b=list(b.predictions), changes=changes,
        alignment=[], units_a=tokens, units_b=list(tokens), attention_a=a.attention[shown].attention,
        attention_b=b.attention[shown].attention, pairs=[(u, u) for u in range(len(tokens))], shown=shown,
        notes=_prediction_notes(a, b) + _attention_notes(a, b), layerwise_a=_lens(a), layerwise_b=_lens(b))


def compare_texts(lm: LoadedModel, text_a: str, text_b: str, *, top_k: int = TOP_K,
                  max_pieces: int = DEFAULT_MAX_PIECES, layerwise: bool = True) -> ComparisonResult:
    """Compare how one model reads two texts (a minimal pair): heads on aligned words, predictions.

    Both texts run in one batched pass. Attention becomes word-level (Clark et al. 2019: mean
    over attending pieces, sum over attended pieces), words are aligned (:func:`align_words`),
    and each head's distance is the Jensen–Shannon distance of the aligned rows over the
    aligned units (special tokens and aligned words), averaged over those rows.

    Args:
        lm: a model from :func:`mlmtool.load`.
        text_a, text_b: the two texts; masks are paired in order (mask 1 with mask 1, ...).
        top_k: candidates per mask (default :data:`mlmtool.defaults.TOP_K`).
        max_pieces: the most pieces a predicted word may have (default 3; 1 = piece level).
        layerwise: also the layer-wise predictions at each text's masks (default True).

    Returns:
        :class:`ComparisonResult` with ``kind="texts"``, ``alignment`` filled.

    Raises:
        MlmtoolError: an empty text, a text over the model's limit, no word in common, bad top_k.
    """
    both = run_side(lm, [text_a, text_b], top_k=top_k, max_pieces=max_pieces, layerwise=layerwise)
    res_a, res_b = both.attention
    ua, ub = sentence_units(res_a, both.words[0] or None), sentence_units(res_b, both.words[1] or None)
    wa, wb = ua.word_index, ub.word_index
    names_a = [ua.names[u] for u in wa]
    names_b = [ub.names[u] for u in wb]
    word_pairs = align_words(names_a, names_b)
    if not word_pairs:
        raise MlmtoolError("the two texts have no word in common to align")
    special = [list(np.flatnonzero(np.array(u.kinds) != "word")) for u in (ua, ub)]
    pairs = sorted([(int(wa[i]), int(wb[j])) for i, j in word_pairs]
                   + [(int(x), int(y)) for x, y in zip(*special)])
    att_a = word_attention(res_a.attention, ua.membership)  # [L, H, Ua, Ua]
    att_b = word_attention(res_b.attention, ub.membership)
    ia = [p[0] for p in pairs]
    ib = [p[1] for p in pairs]
    distance = js_distance(att_a[:, :, ia][..., ia], att_b[:, :, ib][..., ib])
    a, b = both.subset([0], "text 1"), both.subset([1], "text 2")  # views: scores land in both
    cross_score(a, b, lm, lm)
    alignment = [AlignedWord(i + 1, j + 1, names_a[i], names_b[j]) for i, j in word_pairs]
    return ComparisonResult(
        kind="texts", labels=("text 1", "text 2"), models=(lm.name, lm.name), texts_a=[text_a],
        texts_b=[text_b], distance=distance, per_sentence=distance[None], predictions_a=a.predictions,
        predictions_b=b.predictions, changes=_mask_changes(a, b, 0, 0, 1), alignment=alignment,
        units_a=list(ua.names), units_b=list(ub.names), attention_a=att_a.astype(np.float32),
        attention_b=att_b.astype(np.float32), pairs=pairs, notes=_prediction_notes(a, b) + _attention_notes(a, b),
        layerwise_a=_lens(a), layerwise_b=_lens(b))


# --------------------------------------------------------------------------------------------
# Predictions side by side


def _mask_changes(a: Side, b: Side, i: int, j: int, number: int) -> list[MaskChange]:
    """Candidates of each mask of ``a``'s sentence ``i`` and ``b``'s sentence ``j``, paired in order."""
    pa, pb = a.predictions[i], b.predictions[j]
    if pa is None or pb is None:
        return []
    out = []
    for m, (ma, mb) in enumerate(zip(pa.masks, pb.masks)):
        rank_a = {tuple(c.ids): r for r, c in enumerate(ma.candidates, 1)}
        rank_b = {tuple(c.ids): r for r, c in enumerate(mb.candidates, 1)}
        seen: dict[tuple, str] = {}
        for c in list(ma.candidates) + list(mb.candidates):
            seen.setdefault(tuple(c.ids), c.word)
        cands = []
        for key, word in seen.items():
            la, lb = a.log_prob(i, m, key), b.log_prob(j, m, key)
            cands.append(CandidateChange(word=word, ids=list(key), score_a=None if la is None else math.exp(la),
                                         score_b=None if lb is None else math.exp(lb), rank_a=rank_a.get(key),
                                         rank_b=rank_b.get(key)))
        out.append(MaskChange(sentence=number, mask=m + 1, text_a=pa.text, text_b=pb.text, candidates=cands))
    return out


def _lens(side: Side) -> list:
    """The side's layer-wise predictions, one entry (or None) per sentence."""
    return list(side.layerwise) if side.layerwise else [None] * len(side.texts)


def _attention_notes(a: Side, b: Side) -> list[str]:
    """The architecture notes of each side's attention (local layers, grouped-query attention:
    :attr:`AttentionResult.notes`), each once, naming the side when the two differ."""
    notes_a, notes_b = list(a.attention[0].notes), list(b.attention[0].notes)
    if notes_a == notes_b:
        return notes_a
    return [f"'{a.label}': {n}" for n in notes_a] + [f"'{b.label}': {n}" for n in notes_b]


def _prediction_notes(a: Side, b: Side) -> list[str]:
    """Why a side has no predictions where the other has some."""
    notes = []
    for side, other in ((a, b), (b, a)):
        if all(p is None for p in side.predictions) and any(p is not None for p in other.predictions):
            why = "no [MASK] in its text" if side.has_mlm_head else "no masked-LM head"
            notes.append(f"only '{other.label}' has predictions: '{side.label}' has {why}")
    return notes
