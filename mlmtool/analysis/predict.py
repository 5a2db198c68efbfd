"""Masked-word prediction (fill-mask), batched, with the vocabulary projection at masks only.

The result equals ``transformers.pipeline("fill-mask")`` on the same model and text
(probabilities are the softmax of the masked position's logits over the whole vocabulary;
see ``transformers/pipelines/fill_mask.py``), but it is faster on many sentences:

* sentences are sorted by length and batched (bucketing), so little padding is computed;
* the encoder runs once per batch, and the masked-LM head (hidden → vocabulary logits,
  ``[n_masks, vocab]``) runs only at mask positions instead of at every token.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..core.forward import encode, iter_forward, mask_positions
from ..errors import MlmtoolError
from ..models import LoadedModel
from ..tokens import USER_MASK, fill_text, piece


@dataclass
class Candidate:
    """One proposal for one mask.

    Attributes:
        token: the vocabulary entry as ``tokenizer.decode([token_id])`` (same as the HF
            pipeline's ``token_str``).
        token_id: vocabulary id.
        score: probability in [0, 1] (softmax over the vocabulary at the mask).
        sequence: the user's text with this mask filled (sub-word pieces joined to the
            previous word) and any other masks left as ``[MASK]``.
    """

    token: str
    token_id: int
    score: float
    sequence: str


@dataclass
class MaskPrediction:
    """Top-k candidates for one mask.

    Attributes:
        index: which mask in the text, counted from 1 as users see it.
        position: token position of the mask in the model input (from 0, ``[CLS]`` is 0).
        candidates: ``top_k`` candidates, most probable first.
    """

    index: int
    position: int
    candidates: list[Candidate] = field(default_factory=list)


@dataclass
class Prediction:
    """Fill-mask result for one text.

    Attributes:
        text: the user's text (with ``[MASK]``).
        tokens: the model's input tokens, special tokens included (``[seq]``).
        masks: one :class:`MaskPrediction` per mask, in text order.
    """

    text: str
    tokens: list[str]
    masks: list[MaskPrediction]

    def to_dict(self) -> dict:
        """A JSON-ready ``dict``."""
        return asdict(self)

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as UTF-8 JSON to ``path``."""
        import json

        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
        return path


def predict(lm: LoadedModel, texts: str | list[str], top_k: int = 5,
            batch_size: int = 32) -> Prediction | list[Prediction]:
    """Predict the top-k words for every ``[MASK]`` in one text or many.

    Args:
        lm: a model from :func:`mlmtool.load` with a masked-LM head.
        texts: one text or a list; ``[MASK]`` (or the model's own mask token) marks each
            word to guess. Several masks per text are allowed; each gets its own top-k
            (the other masks stay masked, as in the HF pipeline).
        top_k: candidates per mask (default 5, at most the vocabulary size).
        batch_size: texts per forward pass (default 32); texts are bucketed by length.

    Returns:
        A :class:`Prediction` for a single string, else a list in input order.

    Raises:
        NoMLMHeadError: the model has no trained masked-LM head.
        MlmtoolError: no mask, empty text, text longer than the model's limit, bad top_k.
    """
    single = isinstance(texts, str)
    items = [texts] if single else list(texts)
    lm.require_mlm_head()
    check_top_k(top_k)
    encoded = encode(lm, items, need_mask=True)["input_ids"]
    results: list[Prediction | None] = [None] * len(items)
    for f in iter_forward(lm, encoded, positions=[mask_positions(lm, e) for e in encoded],
                          batch_size=batch_size):
        results[f.index] = prediction_from(lm, items[f.index], f.ids, f.logits, top_k)
    return results[0] if single else results  # type: ignore[return-value]


def check_top_k(top_k: int) -> None:
    """Raise :class:`MlmtoolError` unless ``top_k`` ≥ 1."""
    if top_k < 1:
        raise MlmtoolError(f"top_k must be at least 1 (got {top_k})", param="top_k")


def prediction_from(lm: LoadedModel, text: str, ids: list[int], logits, top_k: int = 5) -> Prediction:
    """Post-process one forward pass into a :class:`Prediction` (no model call).

    Args:
        text: the user's text; ids: its token ids ``[S]``.
        logits: ``Tensor [n_masks, V]``: vocabulary logits at the masks, in text order.
        top_k: candidates per mask (clipped to the vocabulary size).
    """
    positions = mask_positions(lm, ids)
    top_k = min(top_k, logits.shape[-1])
    probs, top = logits.float().softmax(-1).topk(top_k, dim=-1)  # [n_masks, k]
    masks = [MaskPrediction(index=m + 1, position=pos,
                            candidates=_candidates(lm, text, m, p_row, t_row))
             for m, (pos, p_row, t_row) in enumerate(zip(positions, probs.tolist(), top.tolist()))]
    return Prediction(text=text, tokens=lm.tokenizer.convert_ids_to_tokens(ids), masks=masks)


def _candidates(lm: LoadedModel, text: str, mask_index: int, probs: list[float],
                ids: list[int]) -> list[Candidate]:
    """Turn one mask's top-k ids and probabilities into :class:`Candidate` objects."""
    user_text = text.replace(lm.mask_token, USER_MASK) if lm.mask_token != USER_MASK else text
    out = []
    for p, tid in zip(probs, ids):
        word, joins = piece(lm.tokenizer, tid)
        out.append(Candidate(token=lm.tokenizer.decode([tid]), token_id=tid, score=p,
                             sequence=fill_text(user_text, USER_MASK, mask_index, word, joins)))
    return out
