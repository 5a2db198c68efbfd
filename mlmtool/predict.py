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

from .errors import MlmtoolError
from .models import LoadedModel
from .tokens import USER_MASK, fill_text, piece, to_model_text


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


def encode_checked(lm: LoadedModel, texts: list[str], *, need_mask: bool):
    """Tokenize ``texts`` (``[MASK]`` translated to the model's mask) and validate them.

    Returns:
        The tokenizer's ``BatchEncoding``: ``["input_ids"]`` holds one list of ids per text
        (special tokens included, no padding) and ``.word_ids(i)`` maps tokens to words.

    Raises:
        MlmtoolError: a text is empty, has no mask (when ``need_mask``), or is longer than
            the model's maximum length (the message names both lengths).
    """
    model_texts = [to_model_text(t, lm.mask_token) for t in texts]
    encoding = lm.tokenizer(model_texts, add_special_tokens=True, truncation=False)
    encoded = encoding["input_ids"]
    where = (lambda i: f"line {i + 1}: ") if len(texts) > 1 else (lambda i: "")
    for i, (text, ids) in enumerate(zip(texts, encoded)):
        if not text.strip():
            raise MlmtoolError(f"{where(i)}the text is empty")
        if need_mask and lm.mask_token_id not in ids:
            raise MlmtoolError(
                f"{where(i)}no {USER_MASK} in the text; write {USER_MASK} where the model "
                f"should guess a word, e.g. \"The {USER_MASK} sat on the mat.\""
            )
        if len(ids) > lm.max_length:
            raise MlmtoolError(
                f"{where(i)}the text is {len(ids)} tokens long but model '{lm.name}' accepts "
                f"at most {lm.max_length}; shorten it"
            )
    return encoding


def _batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def _pad(lm: LoadedModel, rows: list[list[int]]):
    """Right-pad id lists to a ``[batch, seq]`` LongTensor and its attention mask."""
    import torch

    width = max(len(r) for r in rows)
    pad_id = lm.tokenizer.pad_token_id or 0
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids.to(lm.device), mask.to(lm.device)


def mask_logits(lm: LoadedModel, input_ids, attention_mask):
    """Vocabulary logits at the mask positions of a padded batch.

    Args:
        input_ids: ``LongTensor [batch, seq]``.
        attention_mask: ``LongTensor [batch, seq]``, 1 for real tokens.

    Returns:
        ``(rows, cols, logits)``: batch and token indices of every mask (``[n_masks]``
        each) and the logits there, ``FloatTensor [n_masks, vocab]``.
    """
    import torch

    rows, cols = torch.nonzero(input_ids == lm.mask_token_id, as_tuple=True)
    head = lm.mlm_head
    if head is not None:
        hidden = lm.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = head(hidden[rows, cols])  # [n_masks, vocab]
    else:  # heads split over several modules: run the whole model
        logits = lm.model(input_ids=input_ids, attention_mask=attention_mask).logits[rows, cols]
    return rows, cols, logits


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
    import torch

    single = isinstance(texts, str)
    items = [texts] if single else list(texts)
    lm.require_mlm_head()
    if top_k < 1:
        raise MlmtoolError(f"--top-k must be at least 1 (got {top_k})")
    top_k = min(top_k, lm.model.config.vocab_size)
    encoded = encode_checked(lm, items, need_mask=True)["input_ids"]
    results: list[Prediction | None] = [None] * len(items)
    with torch.inference_mode():
        for batch in _batches([len(e) for e in encoded], batch_size):
            ids, att = _pad(lm, [encoded[i] for i in batch])
            rows, cols, logits = mask_logits(lm, ids, att)
            probs, top = logits.float().softmax(-1).topk(top_k, dim=-1)  # [n_masks, k]
            per_text: dict[int, list[MaskPrediction]] = {}
            for r, c, p_row, t_row in zip(rows.tolist(), cols.tolist(), probs.tolist(), top.tolist()):
                i = batch[r]
                masks = per_text.setdefault(i, [])
                masks.append(MaskPrediction(index=len(masks) + 1, position=c,
                                            candidates=_candidates(lm, items[i], len(masks), p_row, t_row)))
            for r, i in enumerate(batch):
                results[i] = Prediction(text=items[i],
                                        tokens=lm.tokenizer.convert_ids_to_tokens(encoded[i]),
                                        masks=per_text.get(i, []))
    return results[0] if single else results  # type: ignore[return-value]


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
