"""Attention weights of every layer and head for a text, as plain data.

The model runs here once; renderers (:mod:`mlmtool.render`) and analyses take the
:class:`AttentionResult` and never see the model (the BertViz ``head_view(attention,
tokens)`` split).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .models import LoadedModel
from .predict import _batches, _pad, encode_checked
from .tokens import display_token


@dataclass
class AttentionResult:
    """Attention weights for one text.

    Attributes:
        text: the user's text.
        tokens: display strings of the input tokens, special tokens included
            (``[seq]``; BPE/SentencePiece markers removed, ``##`` kept).
        attention: ``float32 [layers, heads, seq, seq]``; ``attention[l, h, i, j]`` is how
            much token ``i`` (the attending token, row) attends to token ``j`` (column) in
            layer ``l + 1``, head ``h + 1``: indices count from 0 here, everything shown
            to users counts from 1. Each row sums to 1 (softmax).
        word_ids: ``[seq]`` index of the word each token belongs to (None for special
            tokens), from the fast tokenizer.
        special: ``[seq]`` True for special tokens (``[CLS]``, ``[SEP]``, ``<s>``...).
        model_name: the model's name, for titles.
    """

    text: str
    tokens: list[str]
    attention: np.ndarray
    word_ids: list[int | None]
    special: list[bool]
    model_name: str = ""

    @property
    def num_layers(self) -> int:
        """Number of layers (``attention.shape[0]``)."""
        return int(self.attention.shape[0])

    @property
    def num_heads(self) -> int:
        """Heads per layer (``attention.shape[1]``)."""
        return int(self.attention.shape[1])


def attention(lm: LoadedModel, texts: str | list[str], batch_size: int = 16
              ) -> AttentionResult | list[AttentionResult]:
    """Run the encoder with ``output_attentions=True`` and return the weights.

    Args:
        lm: a model from :func:`mlmtool.load` (eager attention; no MLM head needed).
        texts: one text or a list; ``[MASK]`` is translated to the model's mask token.
        batch_size: texts per forward pass (default 16), bucketed by length; padding
            never reaches the returned matrices (each is cut to its own length).

    Returns:
        One :class:`AttentionResult` for a string, else a list in input order.

    Raises:
        MlmtoolError: an empty text or one longer than the model's maximum length.
    """
    import torch

    single = isinstance(texts, str)
    items = [texts] if single else list(texts)
    encoding = encode_checked(lm, items, need_mask=False)
    encoded = encoding["input_ids"]
    out: list[AttentionResult | None] = [None] * len(items)
    tok = lm.tokenizer
    with torch.inference_mode():
        for batch in _batches([len(e) for e in encoded], batch_size):
            ids, att = _pad(lm, [encoded[i] for i in batch])
            result = lm.encoder(input_ids=ids, attention_mask=att, output_attentions=True)
            stacked = torch.stack(result.attentions, dim=1).float().cpu().numpy()  # [b, L, H, S, S]
            for r, i in enumerate(batch):
                n = len(encoded[i])
                word_ids = _word_ids(encoding, i, encoded[i], tok)
                out[i] = AttentionResult(
                    text=items[i],
                    tokens=[display_token(t) for t in tok.convert_ids_to_tokens(encoded[i])],
                    attention=np.ascontiguousarray(stacked[r, :, :, :n, :n]),
                    word_ids=word_ids,
                    special=[w is None for w in word_ids],
                    model_name=lm.name,
                )
    return out[0] if single else out  # type: ignore[return-value]



def _word_ids(encoding, i: int, ids: list[int], tok) -> list[int | None]:
    """Word index per token (None for special tokens).

    Fast tokenizers know it; for slow ones (e.g. MeCab-based Japanese BERT) every
    non-special token counts as its own word.
    """
    if getattr(encoding, "is_fast", False):
        return list(encoding.word_ids(i))
    mask = tok.get_special_tokens_mask(ids, already_has_special_tokens=True)
    out, w = [], 0
    for m in mask:
        out.append(None if m else w)
        w += not m
    return out
