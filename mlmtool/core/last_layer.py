"""The last encoder layer run only where logits are wanted (BERT-family encoders).

When a pass needs vocabulary logits at a few positions and nothing else (piece-level and
whole-word fill, pseudo-log-likelihood scoring), the last layer's output is needed only at
those positions. In a post-LN Transformer layer (Vaswani et al. 2017; BERT, Devlin et al.
2019) a token's output depends on the other tokens only through the keys and values of
self-attention: ``out_t = FFN(LN(h_t + W_o softmax(q_t K^T / sqrt(d)) V))``. So the keys and
values are computed for every token, and the query, attention output, residuals, layer norms
and feed-forward network only for the ``P`` requested positions. For a 6-layer encoder with
``D`` 384 and ``F`` 1536 (MiniLM) this skips 5/6 of the last layer's matrix work at every
other token, about 14 % of the encoder. It is the idea of ``logits_to_keep`` in transformers'
causal LMs (compute the head only where it is read), taken one layer down.

How: :func:`hidden_before_last` runs the model's own forward (embeddings, attention mask,
every layer but the last, exactly as transformers computes them) and stops it at the last
layer's input with a forward pre-hook that raises; the hook is registered once per layer and
does nothing unless the calling thread asked for it (so concurrent passes on one shared
model, e.g. the server's, are untouched). :func:`last_layer_at` then applies the last
layer's own modules at the positions. :func:`capturable_layer` says which models qualify:
the BERT layer and its copies in transformers (RoBERTa, XLM-R, CamemBERT, ELECTRA), post-LN,
absolute positions, no cross-attention; everything else runs the full forward.
``tests/test_last_layer.py`` checks the logits against the full forward for each. A stopped
pass leaves the encoder by that exception, so forward hooks of the caller's own on the
encoder see it only with ``always_call=True`` (forward pre-hooks see every pass).
"""

from __future__ import annotations

import threading

#: Layer classes (transformers 5) whose forward is BERT's: self-attention (query/key/value,
#: ``scaling``) → ``attention.output`` (dense, dropout, LayerNorm(x + residual)) →
#: ``intermediate`` → ``output`` (dense, dropout, LayerNorm(x + residual)).
BERT_LIKE_LAYERS = frozenset({"BertLayer", "RobertaLayer", "XLMRobertaLayer", "CamembertLayer", "ElectraLayer"})

_local = threading.local()
_register_lock = threading.Lock()


class _LastLayerInput(Exception):
    """Raised by the pre-hook to stop the forward at the last layer: carries its input."""

    def __init__(self, hidden, mask):
        super().__init__("stopped at the last layer")
        self.hidden, self.mask = hidden, mask


def _stop_hook(module, args, kwargs):
    if getattr(_local, "layer", None) is module:
        hidden = args[0] if args else kwargs["hidden_states"]
        mask = args[1] if len(args) > 1 else kwargs.get("attention_mask")
        raise _LastLayerInput(hidden, mask)
    return None


def capturable_layer(encoder):
    """The encoder's last layer if :func:`last_layer_at` can run it, else None.

    Args:
        encoder: the bare encoder (``model.base_model``), a ``torch.nn.Module``; anything
            else (a wrapper such as the server's guarded model) gives None.

    Returns:
        The last layer module (a :data:`BERT_LIKE_LAYERS` class, not a decoder, no
        cross-attention, absolute positions, eager or SDPA attention), or None.
    """
    import torch

    if not isinstance(encoder, torch.nn.Module):
        return None
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if not isinstance(layers, torch.nn.ModuleList) or len(layers) == 0:
        return None
    layer = layers[-1]
    config = getattr(encoder, "config", None)
    if type(layer).__name__ not in BERT_LIKE_LAYERS or config is None or getattr(config, "is_decoder", False):
        return None
    attention = getattr(getattr(layer, "attention", None), "self", None)
    if (attention is None or hasattr(layer, "crossattention")
            or getattr(attention, "position_embedding_type", "absolute") != "absolute"
            or not all(hasattr(attention, a) for a in ("query", "key", "value", "scaling", "attention_head_size"))
            or getattr(config, "_attn_implementation", "eager") not in ("eager", "sdpa")):
        return None
    return layer


def hidden_before_last(encoder, layer, **inputs):
    """Run ``encoder`` up to ``layer`` (its last) and return that layer's input.

    Args:
        encoder: the bare encoder; layer: :func:`capturable_layer` of it.
        **inputs: the encoder's keyword arguments (``input_ids [B, S]``, ``attention_mask``, ...).

    Returns:
        ``(hidden [B, S, D], mask)``: the last layer's input hidden states and the attention
        mask transformers made for it (``[B, 1, S|1, S]`` additive float or boolean, or None).

    Raises:
        RuntimeError: the forward did not reach the layer (a model this module misjudged).
    """
    if not getattr(layer, "_mlmtool_stop_hook", False):
        with _register_lock:
            if not getattr(layer, "_mlmtool_stop_hook", False):
                layer.register_forward_pre_hook(_stop_hook, with_kwargs=True)
                layer._mlmtool_stop_hook = True
    _local.layer = layer
    try:
        encoder(**inputs)
    except _LastLayerInput as stop:
        return stop.hidden, stop.mask
    finally:
        _local.layer = None
    raise RuntimeError("the encoder's forward never reached its last layer")


def last_layer_at(layer, hidden, mask, rows, cols):
    """The output of BERT-like ``layer`` at the positions ``(rows, cols)`` only.

    Args:
        layer: :func:`capturable_layer`'s module.
        hidden: ``Tensor [B, S, D]``, the layer's input; mask: the attention mask given to
            it (see :func:`hidden_before_last`).
        rows, cols: ``LongTensor [n]`` batch and token indices.

    Returns:
        ``Tensor [n, D]``: what ``layer(hidden, mask)[rows, cols]`` is, up to float rounding.
    """
    import torch

    if mask is not None and mask.dim() != 4:  # not a mask this function knows: the whole layer
        return layer(hidden, mask)[rows, cols]
    attention = layer.attention.self
    batch, seq = hidden.shape[:2]
    heads, size = attention.num_attention_heads, attention.attention_head_size
    picked = hidden[rows, cols]  # [n, D]
    n = picked.shape[0]
    query = attention.query(picked).view(n, heads, 1, size)
    key = attention.key(hidden).view(batch, seq, heads, size).transpose(1, 2)[rows]  # [n, H, S, d]
    value = attention.value(hidden).view(batch, seq, heads, size).transpose(1, 2)[rows]
    scores = torch.matmul(query, key.transpose(2, 3)) * attention.scaling  # [n, H, 1, S]
    if mask is not None:
        picked_mask = mask[rows, :, cols, :] if mask.shape[2] > 1 else mask[rows, :, 0, :]  # [n, 1|H, S]
        picked_mask = picked_mask.unsqueeze(2)  # [n, 1|H, 1, S]
        if picked_mask.dtype == torch.bool:
            scores = scores.masked_fill(~picked_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + picked_mask
    probs = torch.softmax(scores, dim=-1)
    context = torch.matmul(probs, value).reshape(n, heads * size)  # [n, D]
    attended = layer.attention.output(context, picked)
    return layer.output(layer.intermediate(attended), attended)
