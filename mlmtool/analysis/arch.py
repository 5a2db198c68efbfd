"""Attention as each architecture really has it: which models give token x token weights,
how many heads they have, which layers are local, and what to say about shared keys.

Every attention path (``attention``, ``view``, ``heads``, ``rollout``/``flow``, ``compare``,
``predict -o/--html``) calls :func:`check_attention` before the model runs, and
:func:`layout` for what the result should carry. The rules are read from the model's
config (transformers 5 classes, ``transformers/models/<type>/modeling_<type>.py``):

* **Refused** (:func:`attention_support`): Funnel (pooling shortens the sequence between
  blocks, so the layers' matrices have different sizes), Longformer (local band plus global
  tokens, returned as ``[S, 2w+1]`` bands), BigBird with ``attention_type="block_sparse"``
  (attention by blocks; transformers records no weights), Reformer (LSH / chunked attention),
  FNet (Fourier mixing, no attention), MRA and YOSO (approximate attention, no
  ``[S, S]`` weights), Nyströmformer when its landmarks approximate the softmax, Perceiver
  (latent cross-attention) and encoder-decoder models (BART, mBART, MVP).
* **Heads** (:func:`attention_heads`): ConvBERT's self-attention has
  ``num_attention_heads // head_ratio`` heads (the rest of the width is span-based
  convolution); every other architecture has ``config.num_attention_heads``. The count of a
  result is always read from its tensor (``AttentionResult.num_heads``).
* **Local layers** (:func:`local_windows`): ModernBERT alternates global layers with local
  sliding-window layers (``global_attn_every_n_layers``, default 3; window
  ``local_attention``, default 128 in all, ±64 tokens); any config with ``layer_types`` and
  ``sliding_window`` likewise. A local layer's weights are zero beyond ±window.
* **Shared keys** (:func:`attention_notes`): grouped-query attention (EuroBERT,
  ``num_key_value_heads < num_attention_heads``): the heads of a group share keys and values.
* **Scores, not weights**: SqueezeBERT returns the pre-softmax scores (mask added);
  :func:`to_weights` applies the row softmax the model applies itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import MlmtoolError

#: model_type → why its attention cannot be shown as one token x token matrix per head.
REFUSED = {
    "funnel": "Funnel pools the sequence between blocks, so its layers attend over different numbers of "
              "tokens and there is no token x token matrix per layer",
    "longformer": "Longformer returns only its local band (±attention_window/2 tokens) plus global tokens, "
                  "not a token x token matrix",
    "reformer": "Reformer's LSH and chunked attention gives weights per hash bucket and chunk, "
                "not a token x token matrix",
    "fnet": "FNet mixes tokens with Fourier transforms and has no attention weights",
    "mra": "MRA computes a multi-resolution approximation of attention and returns no attention weights",
    "yoso": "YOSO approximates attention by hashing (LSH sampling) and returns no token x token weights",
    "perceiver": "Perceiver attends from a fixed set of latents to the input (cross-attention), "
                 "not token to token",
}

#: A ConvBERT default (``ConvBertConfig.head_ratio``).
CONVBERT_HEAD_RATIO = 2


@dataclass
class Layout:
    """What an attention result of this model carries besides the weights.

    Attributes:
        local_window: per layer (index 0 = layer 1), the half window ``w`` of a local
            sliding-window layer (token ``i`` attends to ``|i - j| <= w`` only), None for a
            global layer.
        notes: model-level notes, one line each (local layers, shared keys).
    """

    local_window: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def _config(lm):
    """The model's config (``lm.model.config``; a bare ``config`` object is accepted too)."""
    model = getattr(lm, "model", None)
    return getattr(model, "config", None) or getattr(lm, "config", None) or lm


def attention_support(lm) -> tuple[bool, str | None]:
    """Whether ``lm`` returns one ``[S, S]`` attention matrix per layer and head.

    Args:
        lm: a :class:`~mlmtool.models.LoadedModel` (or a transformers config).

    Returns:
        ``(True, None)``, or ``(False, reason)`` with ``reason`` one line naming the
        architecture and why (see :data:`REFUSED` and the module docstring).
    """
    cfg = _config(lm)
    kind = getattr(cfg, "model_type", "")
    if kind in REFUSED:
        return False, REFUSED[kind]
    if getattr(cfg, "is_encoder_decoder", False):
        return False, (f"{kind} is an encoder-decoder model; mlmtool's attention views read encoder-only "
                       "masked LMs")
    if kind == "big_bird" and getattr(cfg, "attention_type", "") == "block_sparse":
        return False, ("BigBird's block-sparse attention returns no token x token weights; a copy of the "
                       "model saved with attention_type='original_full' (the same weights) can be inspected")
    if kind == "nystromformer" and cfg.num_landmarks != cfg.segment_means_seq_len:
        return False, ("this Nyströmformer approximates attention with landmarks (num_landmarks != "
                       "segment_means_seq_len), so there is no token x token matrix")
    return True, None


def check_attention(lm) -> None:
    """Raise :class:`MlmtoolError` (one line, exit 2 on the command line) when
    :func:`attention_support` says no; the message starts with "no attention view for
    model '<name>'"."""
    ok, reason = attention_support(lm)
    if not ok:
        raise MlmtoolError(f"no attention view for model '{getattr(lm, 'name', '')}': {reason}")


def attention_heads(lm) -> int:
    """Self-attention heads per layer as the model really has them.

    ConvBERT: ``num_attention_heads // head_ratio`` (1 when that is below 1, as
    ``ConvBertSelfAttention`` does); every other architecture ``num_attention_heads``.
    """
    cfg = _config(lm)
    heads = int(getattr(cfg, "num_attention_heads", 0) or getattr(lm, "num_heads", 0))
    if getattr(cfg, "model_type", "") == "convbert":
        return max(1, heads // int(getattr(cfg, "head_ratio", CONVBERT_HEAD_RATIO)))
    return heads


def local_windows(lm) -> list[int | None]:
    """Per layer, the half window of a sliding-window layer, None for a global one.

    ModernBERT: ``layer_types`` (``"sliding_attention"`` every layer but each
    ``global_attn_every_n_layers``-th) and ``local_attention // 2`` (the config's
    ``sliding_window``); NeoMME-style ``per_layer_config[i].sliding_window``; other configs
    with ``layer_types`` and ``sliding_window`` the same way. ``[]`` when the config says
    nothing of layer types (all layers global).
    """
    cfg = _config(lm)
    types = getattr(cfg, "layer_types", None)
    if not types:
        return []
    per_layer = getattr(cfg, "per_layer_config", None)
    out: list[int | None] = []
    for i, kind in enumerate(types):
        window = None
        if kind == "sliding_attention":
            window = getattr(per_layer[i], "sliding_window", None) if per_layer else None
            window = window if window is not None else getattr(cfg, "sliding_window", None)
        out.append(int(window) if window is not None else None)
    return out


def layer_label(window: int | None) -> str:
    """``"local ±64"`` for a sliding-window layer, ``"global"`` otherwise."""
    return "global" if window is None else f"local ±{window}"


def attention_notes(lm, windows: list[int | None] | None = None) -> list[str]:
    """One line per fact a reader of this model's heads should know (none for BERT).

    Local layers: which, and their window. Grouped-query attention: how many heads share
    each key/value head.
    """
    cfg = _config(lm)
    windows = local_windows(lm) if windows is None else windows
    notes = []
    local = [i + 1 for i, w in enumerate(windows) if w is not None]
    if local:
        sizes = "/".join(map(str, sorted({windows[i - 1] for i in local})))
        which = ("every layer is a local sliding-window layer" if len(local) == len(windows) else
                 f"layer{'s' if len(local) > 1 else ''} {', '.join(map(str, local))} "
                 f"{'are' if len(local) > 1 else 'is a'} local sliding-window layer{'s' if len(local) > 1 else ''}")
        rest = "" if len(local) == len(windows) else "; the others are global"
        notes.append(f"{which} (each token attends to ±{sizes} tokens only){rest}")
    heads, kv = attention_heads(lm), getattr(cfg, "num_key_value_heads", None)
    if kv and kv < heads:
        notes.append(f"grouped-query attention: {heads} query heads share {kv} key/value heads (groups of "
                     f"{heads // kv} consecutive heads), so heads of a group differ only by their queries")
    return notes


def layout(lm) -> Layout:
    """:class:`Layout` of ``lm``: :func:`local_windows` (``[]`` when all global) and
    :func:`attention_notes`."""
    windows = local_windows(lm)
    if all(w is None for w in windows):
        windows = []
    return Layout(local_window=windows, notes=attention_notes(lm, windows))


def to_weights(lm, weights: np.ndarray) -> np.ndarray:
    """The attention weights of one sequence, rows summing to 1.

    Args:
        weights: ``float32 [L, H, S, S]`` as the forward core returned them.

    Returns:
        ``weights`` itself, or for SqueezeBERT (which returns the pre-softmax scores,
        ``SqueezeBertSelfAttention``) their row softmax: the weights the model uses.
    """
    if getattr(_config(lm), "model_type", "") != "squeezebert":
        return weights
    shifted = weights - weights.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
