"""Layer-wise predictions at each mask: at which layer does the model "know" the word?

The logit lens (nostalgebraist 2020, "interpreting GPT: the logit lens") applied to masked
LMs: the model's own masked-LM head (BERT: transform + GELU + layer norm + decoder, exactly
as after the last layer) is applied to the hidden state at each mask after every layer
``l = 0 .. L`` (0 = the embedding output). The hidden states come from the same single
forward pass (:func:`mlmtool.core.forward.iter_forward` with ``layer_logits=True``), and
only the mask positions go through the head.

For each layer the result holds the top-k pieces with their probabilities (softmax over the
whole vocabulary) and the rank and probability of the *final* prediction (the last layer's
top-1 piece), so a reader can see where it rises. The last layer equals
:func:`mlmtool.analysis.predict.predict` (same pieces, same probabilities).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..core.forward import encode, iter_forward, mask_positions
from ..defaults import TOP_K
from ..models import LoadedModel
from .predict import check_top_k


@dataclass
class TokenProbability:
    """One vocabulary piece and its probability at one layer.

    Attributes:
        token: the piece as ``tokenizer.decode([token_id])`` (as :class:`~mlmtool.analysis.predict.Candidate`).
        probability: softmax probability over the vocabulary, in [0, 1].
    """

    token: str
    probability: float


@dataclass
class LayerPrediction:
    """What the head reads from one layer's hidden state at one mask.

    Attributes:
        layer: 0 = the embeddings, 1..L = after that encoder layer (as users count).
        top: the ``top_k`` most probable pieces, most probable first.
        final_rank: rank (1 = most probable) of the final prediction at this layer:
            1 + the number of pieces with a strictly higher logit.
        final_probability: probability of the final prediction at this layer.
    """

    layer: int
    top: list[TokenProbability]
    final_rank: int
    final_probability: float


@dataclass
class MaskLayers:
    """Layer-wise predictions for one mask.

    Attributes:
        index: which mask in the text, from 1.
        position: token position of the mask in the model input (from 0).
        final_token: the last layer's top-1 piece; final_token_id: its vocabulary id.
        by_layer: ``L + 1`` :class:`LayerPrediction` objects, layer 0 first.
    """

    index: int
    position: int
    final_token: str
    final_token_id: int
    by_layer: list[LayerPrediction] = field(default_factory=list)


@dataclass
class LayerwisePrediction:
    """Layer-wise predictions for one text.

    Attributes:
        text: the user's text (with ``[MASK]``).
        tokens: the model's input tokens, special tokens included.
        num_layers: ``L`` (so ``by_layer`` has ``L + 1`` entries).
        masks: one :class:`MaskLayers` per mask, in text order.
        model_name: the model's name, for titles.
    """

    text: str
    tokens: list[str]
    num_layers: int
    masks: list[MaskLayers]
    model_name: str = ""

    def to_dict(self) -> dict:
        """A JSON-ready ``dict``; each mask has ``by_layer`` = ``[{layer, top: [{token,
        probability}], final_rank, final_probability}, ...]``, layer 0 first."""
        return asdict(self)

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (UTF-8) to ``path`` and return the path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
        return path


def layerwise_predictions(lm: LoadedModel, texts: str | list[str], top_k: int = TOP_K,
                          batch_size: int = 32) -> LayerwisePrediction | list[LayerwisePrediction]:
    """Top-k pieces at every mask after every layer, from one forward pass per batch.

    Args:
        lm: a model from :func:`mlmtool.load` with a trained masked-LM head that is a
            separate module (BERT ``cls``, RoBERTa ``lm_head``, DistilBERT ``vocab_*``).
        texts: one text or a list, each with at least one ``[MASK]``.
        top_k: pieces per layer and mask (default :data:`mlmtool.defaults.TOP_K`; clipped to
            the vocabulary size).
        batch_size: texts per forward pass (default 32), bucketed by length.

    Returns:
        A :class:`LayerwisePrediction` for a string, else a list in input order.

    Raises:
        NoMLMHeadError: the model has no trained masked-LM head.
        MlmtoolError: no mask, empty or too long text, ``top_k`` < 1.

    Example:
        >>> r = layerwise_predictions(lm, "The [MASK] sat on the mat.")   # doctest: +SKIP
        >>> [(l.layer, l.final_rank) for l in r.masks[0].by_layer]        # doctest: +SKIP
        [(0, 812), (1, 95), ..., (6, 1)]
    """
    single = isinstance(texts, str)
    items = [texts] if single else list(texts)
    lm.require_mlm_head()
    check_top_k(top_k)
    encoded = encode(lm, items, need_mask=True)["input_ids"]
    out: list[LayerwisePrediction | None] = [None] * len(items)
    for f in iter_forward(lm, encoded, positions=[mask_positions(lm, e) for e in encoded],
                          layer_logits=True, batch_size=batch_size):
        out[f.index] = layerwise_from(lm, items[f.index], f.ids, f.layer_logits, top_k)
    return out[0] if single else out  # type: ignore[return-value]


def layerwise_from(lm: LoadedModel, text: str, ids: list[int], layer_logits, top_k: int = TOP_K
                   ) -> LayerwisePrediction:
    """Post-process one forward pass into a :class:`LayerwisePrediction` (no model call).

    Args:
        text: the user's text; ids: its token ids ``[S]``.
        layer_logits: ``Tensor [L+1, n_masks, V]``, the head applied to every layer at the
            masks (text order), layer 0 = embeddings.
        top_k: pieces per layer (clipped to the vocabulary size).
    """
    logits = layer_logits.float()
    layers, n_masks, vocab = logits.shape
    k = min(top_k, vocab)
    probs = logits.softmax(-1)  # [L+1, n_masks, V]
    top_p, top_ids = probs.topk(k, dim=-1)  # [L+1, n_masks, k]
    final_ids = logits[-1].argmax(-1)  # [n_masks]
    idx = final_ids.view(1, -1, 1).expand(layers, -1, 1)
    final_logit = logits.gather(-1, idx)  # [L+1, n_masks, 1]
    ranks = (logits > final_logit).sum(-1) + 1  # [L+1, n_masks]
    final_p = probs.gather(-1, idx).squeeze(-1)  # [L+1, n_masks]
    decode = _decoder(lm.tokenizer)
    masks = []
    for m, pos in enumerate(mask_positions(lm, ids)):
        fid = int(final_ids[m])
        rows = [LayerPrediction(layer=l,
                                top=[TokenProbability(decode(t), float(p))
                                     for p, t in zip(top_p[l, m].tolist(), top_ids[l, m].tolist())],
                                final_rank=int(ranks[l, m]), final_probability=float(final_p[l, m]))
                for l in range(layers)]
        masks.append(MaskLayers(index=m + 1, position=pos, final_token=decode(fid), final_token_id=fid,
                                by_layer=rows))
    return LayerwisePrediction(text=text, tokens=lm.tokenizer.convert_ids_to_tokens(ids),
                               num_layers=layers - 1, masks=masks, model_name=lm.name)


def _decoder(tokenizer):
    """``tokenizer.decode([id])``, cached per id (the same piece recurs across layers)."""
    cache: dict[int, str] = {}

    def decode(token_id: int) -> str:
        if token_id not in cache:
            cache[token_id] = tokenizer.decode([token_id])
        return cache[token_id]

    return decode
