"""SHAP explanations of a masked-word prediction: which words raise or lower ``p(word | [MASK])``.

The explained function maps a (partly hidden) sentence to the probability of one target word
at the ``[MASK]``, scored as ``mlmtool predict`` scores it: for a word of one vocabulary piece
the softmax over the whole vocabulary at the mask position; for a word of several pieces
(``toothpaste`` = ``tooth ##pas ##te``) its PLL-word-l2r probability (Kauf & Ivanova 2023,
"A Better Way to Do Masked Language Model Scoring", ACL): the mask becomes the word's ``n``
pieces and the product of each piece's probability with the later pieces masked is taken
(:func:`mlmtool.analysis.pll.word_copies`, the copies predict's whole-word search scores, so
the explained value is predict's score for the word). It is explained with the
`shap <https://github.com/shap/shap>`_ library's Partition explainer (Owen values over a
hierarchy of the words; Lundberg & Lee 2017, "A Unified Approach to Interpreting Model
Predictions") and :class:`TokenMasker`, a masker written to shap's public masker protocol
(a callable ``masker(mask, x)`` with ``shape`` and ``clustering``; no private shap API, so
any shap >= 0.51 works):

* the features are the tokens of the text's words; the ``[MASK]`` tokens and the special
  tokens (``[CLS]``/``[SEP]``) are never hidden, so their SHAP value is exactly 0;
* a hidden token is replaced by the model's mask token, the masked LM's own "unknown word"
  (shap's Text-masker default for tokenizers that have one); the masker works on token
  ids, so positions never shift and the explained ``[MASK]`` is always where it was;
* the hierarchy (:func:`word_hierarchy`) joins a word's pieces first, then neighbouring
  words into phrases (SciPy's Ward linkage on positions along the sentence);
* shap's masked inputs are evaluated in batches of ``batch_size`` sentences per forward pass,
  with the vocabulary projection run at the mask position only.

SHAP values are per token; a word's value is the sum of its pieces' values (Owen values
are additive over a coalition, and the hierarchy merges a word's pieces first). Additivity
(SHAP's efficiency) holds at any budget: ``base_value + sum(values) == p(target | full
sentence)``, where ``base_value`` is ``p(target)`` with every hideable token hidden; it holds
for a word of several pieces too, since the explained value is one function of the sentence.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..core.forward import encode, iter_forward
from ..defaults import MAX_EVALS, TOP_K
from ..errors import MlmtoolError
from ..models import LoadedModel
from ..tokens import USER_MASK, display_token, piece, to_model_text, word_ids_of, word_pieces, word_strings


@dataclass
class ExplainResult:
    """SHAP values of every word for one masked prediction.

    Attributes:
        text: the user's text (with ``[MASK]``).
        target: the explained word (``"cat"``, ``"toothpaste"``; a piece like ``"##ing"`` when
            that was asked for).
        target_id: its vocabulary id when it is one piece, None for a word of several pieces.
        mask_index: which mask is explained, counted from 1 as users see it.
        mask_position: its token position in the model input (from 0, ``[CLS]`` = 0).
        tokens: display strings of the model input tokens, specials included (``[seq]``).
        token_values: ``float64 [seq]`` SHAP value of each token, in probability units
            (0 for special tokens and masks, which are never hidden).
        words: the text's words as the user wrote them (``[words]``).
        word_values: ``float64 [words]`` sum of the SHAP values of each word's pieces.
        word_tokens: ``[words]`` token positions of each word (from 0).
        word_is_mask: ``[words]`` True for ``[MASK]`` words.
        base_value: ``p(target)`` at the mask with every other word hidden (all masks).
        full_value: ``p(target | full sentence)``; equals ``base_value + sum(word_values)``
            up to floating point.
        model_name: the model's name.
        max_evals: the evaluation budget given to shap.
        evaluations: how many sentences were actually evaluated.
        top_predictions: ``mlmtool predict``'s top :data:`mlmtool.defaults.TOP_K` ``(word,
            score)`` at the mask on the full sentence (the other masks left masked), for context.
        target_ids: the target's vocabulary ids (``[n]`` pieces).
        target_pieces: its pieces as the tokenizer writes them (``["tooth", "##pas", "##te"]``).
        scoring: how the explained value is computed: ``"softmax"`` (one piece: the softmax
            probability at the mask) or ``"pll-word-l2r"`` (several pieces: Kauf & Ivanova 2023).
        explained: one line saying which value was explained (for people and ``--json``).
    """

    text: str
    target: str
    target_id: int | None
    mask_index: int
    mask_position: int
    tokens: list[str]
    token_values: np.ndarray
    words: list[str]
    word_values: np.ndarray
    word_tokens: list[list[int]]
    word_is_mask: list[bool]
    base_value: float
    full_value: float
    model_name: str = ""
    max_evals: int = 0
    evaluations: int = 0
    top_predictions: list[tuple[str, float]] = field(default_factory=list)
    target_ids: list[int] = field(default_factory=list)
    target_pieces: list[str] = field(default_factory=list)
    scoring: str = "softmax"
    explained: str = ""

    def to_dict(self) -> dict:
        """A JSON-ready ``dict`` (arrays as lists; words with their values)."""
        out = asdict(self)
        out["token_values"] = [float(v) for v in self.token_values]
        out["word_values"] = [float(v) for v in self.word_values]
        out["top_predictions"] = [[t, float(p)] for t, p in self.top_predictions]
        out["sum_of_values"] = float(np.sum(self.word_values))
        return out

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as UTF-8 JSON to ``path``; returns the path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return path


def resolve_target(lm: LoadedModel, text: str, target: str, mask_index: int = 1) -> int:
    """The vocabulary id of ``target`` as it would be written at the ``mask_index``-th mask.

    The target replaces the mask in the text and the text is re-tokenized, so the
    tokenizer's own rules decide (lower-casing, BPE's leading-space marker ``Ġ``). A fast
    tokenizer's character offsets find the target's pieces; a slow one's (no offsets) are
    the pieces that differ from the masked text's. For a word of several pieces use
    :func:`target_pieces`.

    Raises:
        MlmtoolError: the target is empty or is several tokens for this model (the message
            lists the pieces and suggests the first as a target).
    """
    word, ids, span = _target_span(lm, text, target, mask_index)
    pieces = lm.tokenizer.convert_ids_to_tokens([ids[i] for i in span])
    if len(span) != 1 or pieces[0] == lm.tokenizer.unk_token:
        if pieces == [lm.tokenizer.unk_token] or not pieces:
            _check_known(lm, word, pieces)
        shown = " + ".join(display_token(p) for p in pieces)
        raise MlmtoolError(f"target '{word}' is {len(pieces)} tokens for model '{lm.name}' "
                           f"({shown}); SHAP explains one token, e.g. its first piece "
                           f"'{piece(lm.tokenizer, ids[span[0]])[0]}'", param="target")
    return int(ids[span[0]])


def target_pieces(lm: LoadedModel, text: str, target: str, mask_index: int = 1) -> list[int]:
    """The vocabulary ids of the word ``target`` as the tokenizer writes it at the ``mask_index``-th mask.

    As :func:`resolve_target` (the target written into the text and re-tokenized), but a word
    of several pieces is accepted: ``"toothpaste"`` → the ids of ``tooth ##pas ##te`` on an
    uncased BERT vocabulary.

    Returns:
        ``[n]`` piece ids, ``n >= 1``.

    Raises:
        MlmtoolError: an empty target or one with spaces, a piece the vocabulary does not
            have (``[UNK]``), or a target the tokenizer reads as several words (``cat.``:
            every later piece must continue the word, as in ``predict``'s words).
    """
    word, ids, span = _target_span(lm, text, target, mask_index)
    pieces = lm.tokenizer.convert_ids_to_tokens([ids[i] for i in span])
    _check_known(lm, word, pieces)
    if not all(piece(lm.tokenizer, ids[i])[1] for i in span[1:]):
        shown = " + ".join(display_token(p) for p in pieces)
        raise MlmtoolError(f"target '{word}' is several words for model '{lm.name}' ({shown}); "
                           "give one word (its pieces must form one word, as predict's words do)", param="target")
    return [int(ids[i]) for i in span]


def _check_known(lm: LoadedModel, word: str, pieces: list[str]) -> None:
    """MlmtoolError (``param="target"``) when ``pieces`` is empty or holds the unknown token."""
    if not pieces or lm.tokenizer.unk_token in pieces:
        raise MlmtoolError(f"target '{word}' is not in the vocabulary of model '{lm.name}'", param="target")


def _target_span(lm: LoadedModel, text: str, target: str, mask_index: int) -> tuple[str, list[int], list[int]]:
    """``(word, ids, span)``: the target written at the ``mask_index``-th mask, the filled text's
    ids (special tokens included) and the positions of the target's pieces in them.

    Raises:
        MlmtoolError: an empty target or one with whitespace.
    """
    word = target.strip()
    if not word or any(c.isspace() for c in word):
        raise MlmtoolError(f"target must be one word, got '{target}'", param="target")
    model_text = to_model_text(text, lm.mask_token)
    start = -1
    for _ in range(mask_index):
        start = model_text.find(lm.mask_token, start + 1)
    filled = model_text[:start] + word + model_text[start + len(lm.mask_token):]
    if getattr(lm.tokenizer, "is_fast", False):
        enc = lm.tokenizer(filled, return_offsets_mapping=True, add_special_tokens=True)
        span = [i for i, (a, b) in enumerate(enc["offset_mapping"])
                if b > a and a < start + len(word) and b > start]
        return word, list(enc["input_ids"]), span
    # no offsets (e.g. MeCab + WordPiece): the pieces that differ from the masked text's
    ids = list(lm.tokenizer(filled, add_special_tokens=True)["input_ids"])
    masked_ids = list(lm.tokenizer(model_text, add_special_tokens=True)["input_ids"])
    head = next((k for k, (a, b) in enumerate(zip(ids, masked_ids)) if a != b), min(len(ids), len(masked_ids)))
    tail = 0
    while tail < min(len(ids), len(masked_ids)) - head and ids[-1 - tail] == masked_ids[-1 - tail]:
        tail += 1
    return word, ids, list(range(head, len(ids) - tail))


class TokenMasker:
    """A shap masker over the hideable tokens of one sentence: hidden tokens become the mask token.

    It follows shap's documented masker protocol for the Partition explainer: a callable
    ``masker(mask, x)`` with the attributes ``shape`` and ``clustering`` (see
    ``shap.explainers.Partition``: "The function used to "mask" out hidden features of the
    form ``masker(mask, x)``"). It uses no private shap attribute and works on shap 0.51+.

    The features are the hideable tokens only: every token of a word, except the mask tokens
    of the text (so the explained mask is always in place and earns no credit) and the special
    tokens (``[CLS]``, ``[SEP]``, ``<s>``, which are not words). A hidden token is replaced by
    the model's mask token, the masked LM's own "unknown word" (shap's Text-masker default for
    tokenizers that have one); positions never shift.

    Args:
        ids: ``int [seq]`` token ids of the model input, special tokens included.
        hideable: ``int [features]`` positions (from 0, increasing) of the hideable tokens.
        word_of: ``int [features]`` the word each hideable token belongs to (non-decreasing).
        mask_token_id: the id that replaces a hidden token.
        breaks: ``bool [features]`` True where a clause boundary follows the feature
            (after punctuation); optional.

    Attributes:
        shape: ``(1, features)``: each call returns one masked sentence.
        clustering: ``float64 [features - 1, 4]`` the feature hierarchy in SciPy linkage
            format (see :func:`word_hierarchy`).
    """

    def __init__(self, ids, hideable, word_of, mask_token_id: int, breaks=None):
        self.ids = np.asarray(ids, dtype=np.int64)
        self.hideable = np.asarray(hideable, dtype=np.int64)
        self.mask_token_id = int(mask_token_id)
        self.shape = (1, len(self.hideable))
        self.clustering = word_hierarchy(word_of, breaks)

    def features(self) -> np.ndarray:
        """``int [features]`` the token ids of the hideable tokens: the ``x`` to explain."""
        return self.ids[self.hideable]

    def __call__(self, mask, x) -> np.ndarray:
        """``int [1, seq]``: the sentence with the features where ``mask`` is False hidden.

        Args:
            mask: ``bool [features]`` True = the feature is shown.
            x: ``int [features]`` the features' token ids (:meth:`features`).
        """
        out = self.ids.copy()
        out[self.hideable] = np.where(np.asarray(mask, dtype=bool), np.asarray(x, dtype=np.int64),
                                      self.mask_token_id)
        return out[None, :]


def word_hierarchy(word_of, breaks=None) -> np.ndarray:
    """A hierarchy of tokens in which each word's pieces join first, then neighbouring words.

    SciPy's Ward linkage (``scipy.cluster.hierarchy.linkage(method="ward")``) on positions
    along the sentence: the pieces of one word share a position, so they merge first (at
    distance 0), and words merge with their neighbours into contiguous, roughly balanced
    phrases; a clause boundary (``breaks``, after punctuation) adds one extra unit of distance,
    so clauses tend to stay together, in the spirit of shap's Text-masker hierarchy.

    Args:
        word_of: ``int [features]`` the word of each token (non-decreasing).
        breaks: ``bool [features]`` True where a boundary follows the token; None = none.

    Returns:
        ``float64 [features - 1, 4]`` linkage matrix (children, distance, size), as the
        Partition explainer expects; ``[0, 4]`` for a single feature.
    """
    from scipy.cluster.hierarchy import linkage

    word_of = np.asarray(word_of, dtype=np.int64)
    n = len(word_of)
    if n < 2:
        return np.zeros((0, 4), dtype=np.float64)
    brk = np.zeros(n, dtype=bool) if breaks is None else np.asarray(breaks, dtype=bool)
    step = np.zeros(n, dtype=np.float64)
    step[1:] = (word_of[1:] != word_of[:-1]) * (1.0 + brk[:-1])
    return linkage(np.cumsum(step)[:, None], method="ward").astype(np.float64)


def _make_masker(lm: LoadedModel, encoding, ids: list[int]) -> TokenMasker:
    """:class:`TokenMasker` for one encoded sentence (tokens of words, masks excepted)."""
    word_ids = word_ids_of(encoding, 0, lm.tokenizer)
    hideable = [i for i, w in enumerate(word_ids) if w is not None and ids[i] != lm.mask_token_id]
    word_of = [word_ids[i] for i in hideable]
    tokens = lm.tokenizer.convert_ids_to_tokens([ids[i] for i in hideable])
    breaks = [bool(re.fullmatch(r"\W+", t.lstrip("\u0120\u2581"))) for t in tokens]  # after , . ; ...
    return TokenMasker(ids, hideable, word_of, lm.mask_token_id, breaks)


def target_probability(lm: LoadedModel, input_ids: np.ndarray, position: int, target_id: int,
                       batch_size: int = 32) -> np.ndarray:
    """``p(target_id)`` at token ``position`` for a batch of equal-length id sequences.

    Args:
        input_ids: ``int [n, seq]`` token ids (special tokens included, no padding).
        position: the mask's token position (from 0).
        target_id: the vocabulary id whose probability is returned.
        batch_size: sequences per forward pass (default 32).

    Returns:
        ``float64 [n]`` probabilities (softmax over the vocabulary at ``position``).
    """
    ids_all = np.asarray(input_ids, dtype=np.int64).reshape(len(input_ids), -1).tolist()
    out = np.empty(len(ids_all), dtype=np.float64)
    for f in iter_forward(lm, ids_all, positions=[[position]] * len(ids_all), batch_size=batch_size):
        out[f.index] = float(f.logits[0].softmax(-1)[target_id])
    return out


def word_probability(lm: LoadedModel, input_ids: np.ndarray, position: int, word: list[int],
                     batch_size: int = 32) -> np.ndarray:
    """``p(word)`` at token ``position`` for a batch of equal-length id sequences, as predict scores it.

    One piece: the softmax probability (:func:`target_probability`). Several pieces: the
    word's PLL-word-l2r probability (Kauf & Ivanova 2023): the mask at ``position`` becomes the
    ``n`` pieces, and ``exp`` of the sum over pieces ``j`` of ``log p(piece j)`` with pieces
    ``j..n`` masked (:func:`mlmtool.analysis.pll.word_copies`, scored by
    :func:`mlmtool.analysis.pll.score_copies`: the copies and scores of ``predict``'s search).

    Args:
        input_ids: ``int [b, seq]`` token ids (special tokens included, no padding).
        position: the mask's token position (from 0).
        word: ``[n]`` the word's piece ids (from :func:`target_pieces`).
        batch_size: copies per forward pass (default 32).

    Returns:
        ``float64 [b]`` probabilities in [0, 1].
    """
    if len(word) == 1:
        return target_probability(lm, input_ids, position, word[0], batch_size)
    from .pll import score_copies, word_copies

    rows = np.asarray(input_ids, dtype=np.int64).reshape(len(input_ids), -1).tolist()
    copies = [c for ids in rows for c in word_copies(ids, position, word, lm.mask_token_id)]
    logp = np.asarray(score_copies(lm, copies, batch_size), dtype=np.float64).reshape(len(rows), len(word))
    return np.exp(logp.sum(1))


def explain(lm: LoadedModel, text: str, target: str | None = None, mask_index: int = 1,
            max_evals: int = MAX_EVALS, batch_size: int = 32, seed: int = 0,
            progress: bool | None = False) -> ExplainResult:
    """Explain ``p(target | text)`` at a mask with SHAP (Partition explainer, :class:`TokenMasker`).

    Args:
        lm: a model from :func:`mlmtool.load` with a masked-LM head.
        text: one sentence with at least one ``[MASK]`` (or the model's own mask token).
        target: the word whose probability is explained; None (default) = ``mlmtool
            predict``'s top word at the mask. A word of several pieces is explained through
            its PLL-word-l2r probability (:func:`word_probability`), predict's score for it.
        mask_index: which mask to explain when there are several, from 1 (default 1).
        max_evals: shap's evaluation budget (default :data:`mlmtool.defaults.MAX_EVALS`, 500,
            shap's default). With fewer than about ``words**2`` evaluations the deepest
            coalitions are not split and their credit is shared evenly; additivity holds at
            any budget. A word of ``n`` pieces costs ``n`` forward rows per evaluation.
        batch_size: sentences per forward pass (default 32).
        seed: seed for shap's tie-breaking (NumPy's global RNG, restored afterwards).
        progress: show a tqdm progress bar on stderr; None = only on a terminal.

    Returns:
        :class:`ExplainResult`; values are in probability units (``[0, 1]`` scale);
        ``scoring`` and ``explained`` say which value was explained.

    Raises:
        NoMLMHeadError: the model cannot fill masks.
        MlmtoolError: ``shap`` is not installed, no mask, a bad ``mask_index`` or
            ``max_evals``, a target that is not one word of vocabulary pieces, a text with no
            word besides the mask, or a text longer than the model's limit.
    """
    shap, encoding, ids, position, masker, word = _checked(lm, text, target, mask_index, max_evals)
    top = _top_words(lm, text, mask_index)
    word = list(top[0].ids) if word is None else word

    def value(x: np.ndarray) -> np.ndarray:  # [b, seq] token ids -> [b] probabilities
        return word_probability(lm, x, position, word, batch_size)

    values, base, evaluations = _shap_values(shap, masker, value, max_evals, batch_size, seed, progress)
    groups = word_pieces(word_ids_of(encoding, 0, lm.tokenizer))
    name = lm.tokenizer.decode(word).strip() or "".join(lm.tokenizer.convert_ids_to_tokens(word))
    return ExplainResult(
        text=text, target=name, target_id=word[0] if len(word) == 1 else None,
        mask_index=mask_index, mask_position=position,
        tokens=[display_token(t) for t in lm.tokenizer.convert_ids_to_tokens(ids)],
        token_values=values, words=_user_words(lm, text, encoding),
        word_values=np.array([values[g].sum() for g in groups], dtype=np.float64),
        word_tokens=groups, word_is_mask=[all(ids[p] == lm.mask_token_id for p in g) for g in groups],
        base_value=base, full_value=float(value(np.array([ids]))[0]), model_name=lm.name,
        max_evals=max_evals, evaluations=evaluations,
        top_predictions=[(c.word, float(c.score)) for c in top],
        target_ids=list(word), target_pieces=lm.tokenizer.convert_ids_to_tokens(word),
        scoring="softmax" if len(word) == 1 else "pll-word-l2r",
        explained=_explained(lm, name, word, mask_index))


def _top_words(lm: LoadedModel, text: str, mask_index: int) -> list:
    """``mlmtool predict``'s candidates (:class:`~mlmtool.analysis.fill.Candidate`, best first)
    at the ``mask_index``-th mask of ``text``, the other masks left masked; default options."""
    from .fill import fill_words

    return list(fill_words(lm, text, top_k=TOP_K).masks[mask_index - 1].candidates)


def _explained(lm: LoadedModel, name: str, word: list[int], mask_index: int) -> str:
    """One line saying which value :func:`explain` explained."""
    if len(word) == 1:
        return (f"p('{name}') at mask {mask_index}: the softmax probability of this one vocabulary piece "
                "over the whole vocabulary at the mask (predict's score for it)")
    pieces = " ".join(lm.tokenizer.convert_ids_to_tokens(word))
    return (f"p('{name}') at mask {mask_index}: the word's PLL-word-l2r probability (Kauf & Ivanova 2023), the "
            f"product of its {len(word)} pieces' probabilities ({pieces}), each with the later pieces masked "
            "(predict's score for it)")


def check_explain(lm: LoadedModel, text: str, target: str | None = None, mask_index: int = 1,
                  max_evals: int = MAX_EVALS) -> None:
    """Check the arguments of :func:`explain` without running the model (the web app refuses
    a bad request at once with this, before queueing a SHAP job).

    Raises:
        NoMLMHeadError, MlmtoolError: exactly what :func:`explain` raises for these arguments.
    """
    _checked(lm, text, target, mask_index, max_evals)


def _checked(lm: LoadedModel, text: str, target: str | None, mask_index: int, max_evals: int):
    """:func:`explain`'s checks, in its order: ``(shap, encoding, ids, position, masker,
    word)``, ``word`` the target's piece ids (:func:`target_pieces`), None when no target was given."""
    shap = _import_shap()
    lm.require_mlm_head()
    if max_evals < 3:
        raise MlmtoolError(f"max_evals must be at least 3, got {max_evals}", param="max_evals")
    encoding, ids, position = _mask_position(lm, text, mask_index)
    word = None if target is None else target_pieces(lm, text, target, mask_index)
    masker = _make_masker(lm, encoding, ids)
    if len(masker.hideable) == 0:
        raise MlmtoolError("the text has no words besides the mask, so there is nothing to explain")
    return shap, encoding, ids, position, masker, word


def _import_shap():
    """The ``shap`` module (its import-time warnings silenced); MlmtoolError when missing."""
    import warnings

    with warnings.catch_warnings():  # shap 0.51 warns about matplotlib colormap APIs on import
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        try:
            import shap
        except ImportError:
            raise MlmtoolError("explain needs the 'shap' package: pip install 'mlmtool[explain]'") from None
    return shap


def _mask_position(lm: LoadedModel, text: str, mask_index: int):
    """``(encoding, ids, position)``: the encoded text, its ids ``[seq]`` and the token position
    (from 0) of the ``mask_index``-th mask (from 1). MlmtoolError for a bad ``mask_index``."""
    encoding = encode(lm, [text], need_mask=True)
    ids = list(encoding["input_ids"][0])
    positions = [i for i, t in enumerate(ids) if t == lm.mask_token_id]
    if not 1 <= mask_index <= len(positions):
        raise MlmtoolError(f"mask_index must be between 1 and {len(positions)} (the number of "
                           f"{USER_MASK} tokens in the text), got {mask_index}", param="mask_index")
    return encoding, ids, positions[mask_index - 1]


def _shap_values(shap, masker: TokenMasker, value, max_evals: int, batch_size: int, seed: int,
                 progress: bool | None) -> tuple[np.ndarray, float, int]:
    """Run shap's Partition explainer on ``value`` (``int [b, seq]`` ids → ``float64 [b]``).

    Returns:
        ``(values, base_value, evaluations)``: ``float64 [seq]`` SHAP value per token (0 for
        the tokens the masker never hides), the value with every hideable token hidden, and
        the number of sentences evaluated.
    """
    from tqdm.auto import tqdm

    n_features = len(masker.hideable)
    total = min(max_evals, max(n_features * (n_features - 1), 0) + 2)
    bar = tqdm(total=total, desc="SHAP evaluations", unit="sent", leave=False,
               disable=None if progress is None else not progress)
    count = [0]

    def f(x: np.ndarray) -> np.ndarray:  # [n, seq] token ids -> [n] probabilities
        out = value(x)
        count[0] += len(out)
        bar.update(len(out))
        return out

    explainer = shap.explainers.Partition(f, masker)
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        # shap's batch_size is the number of masked sentences per call of ``f``
        exp = explainer(masker.features()[None, :], max_evals=max_evals, batch_size=batch_size, silent=True)
    finally:
        np.random.set_state(state)
        bar.close()
    values = np.zeros(len(masker.ids), dtype=np.float64)  # [seq]; kept tokens stay exactly 0
    values[masker.hideable] = np.asarray(exp.values[0], dtype=np.float64).reshape(-1)
    return values, float(np.asarray(exp.base_values).reshape(-1)[0]), count[0]


def _user_words(lm: LoadedModel, text: str, encoding) -> list[str]:
    """The text's words as the user wrote them, the model's mask token shown as ``[MASK]``."""
    words = word_strings(to_model_text(text, lm.mask_token), encoding, 0, lm.tokenizer)
    if lm.mask_token != USER_MASK:
        words = [USER_MASK if w == lm.mask_token else w for w in words]
    return words
