"""The forward core: the only code that pads, buckets, batches and runs a model for inference.

Every analysis (predict, attention, view, heads, embed, explain, score, the held-out
evaluation of finetune, ...) asks this module for exactly what it needs and post-processes
plain tensors; nothing else calls a model's ``forward``. The split follows the HF
pipelines (``preprocess`` / ``_forward`` / ``postprocess``, ``transformers/pipelines/base.py``):

* :func:`encode` turns texts into token ids (``[MASK]`` → the model's mask token) and
  checks them (empty, no mask, too long);
* :func:`forward` / :func:`iter_forward` sort id sequences by length, pad each batch, run the
  encoder once per batch and cut every result back to its own length;
* :func:`run_batch` is the single call into the model for an already padded batch (also
  used with gradients by the training loss);
* :func:`mlm_head` is the masked-LM head (hidden → vocabulary logits), applied in
  :func:`run_batch` only, and only at the positions asked for, so the ``[batch, seq, vocab]``
  logits tensor is never built (for MiniLM the head, 384 x 30,522 multiply-adds per token, is
  about half of the per-token compute).

Shapes use ``L`` layers, ``H`` heads, ``S`` tokens (special tokens included), ``D`` hidden
size, ``V`` vocabulary size, ``P`` requested positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from ..errors import MlmtoolError
from ..tokens import USER_MASK, to_model_text
from .last_layer import capturable_layer, hidden_before_last, last_layer_at


@dataclass
class Forward:
    """What one forward pass returned for one sequence (only the parts asked for).

    Attributes:
        index: position of the sequence in the caller's input list (from 0).
        ids: the sequence's token ids, ``[S]`` (no padding).
        logits: ``float32 Tensor [P, V]`` vocabulary logits at the requested positions
            (in the order given), or None.
        layer_logits: ``float32 Tensor [L+1, P, V]``: the same masked-LM head applied to
            every layer's hidden state at those positions (index 0 = embeddings; the
            "logit lens", nostalgebraist 2020), or None.
        attentions: ``float32 ndarray [L, H, S, S]`` attention weights (rows = attending
            token, each row sums to 1), or None.
        hidden_states: ``float32 ndarray [L+1, S, D]`` (index 0 = embedding output, the HF
            ``hidden_states`` convention), or None.
    """

    index: int
    ids: list[int]
    logits: Any = None
    layer_logits: Any = None
    attentions: Any = None
    hidden_states: Any = None


@dataclass
class BatchOutput:
    """Tensors of one padded batch from :func:`run_batch` (only the parts asked for).

    Attributes:
        logits: ``Tensor [n, V]`` at the ``(rows, cols)`` asked for, or None.
        layer_logits: ``Tensor [L+1, n, V]`` at those positions, or None.
        attentions: tuple of ``L`` tensors ``[B, H, S, S]``, or None.
        hidden_states: tuple of ``L+1`` tensors ``[B, S, D]``, or None.
    """

    logits: Any = None
    layer_logits: Any = None
    attentions: Any = None
    hidden_states: Any = None


def unwrap(model):
    """The transformers model inside a peft / DDP / accelerate wrapper (or ``model`` itself)."""
    inner = model
    for _ in range(4):
        if hasattr(inner, "get_base_model"):
            inner = inner.get_base_model()
        elif hasattr(inner, "module") and not hasattr(inner, "config"):
            inner = inner.module
        else:
            break
    return inner


#: Heads that the rule of :func:`head_path` cannot find: the model's attributes applied in
#: this order (``transformers/models/<type>/modeling_<type>.py``, ``*ForMaskedLM.forward``).
#: DistilBERT's head is four attributes, and its activation is registered before the encoder;
#: NeoMME multiplies by ``unembedding_projection.weight`` (a leading ``~`` = ``h @ weight``).
HEAD_TABLE: dict[str, tuple[str, ...]] = {
    "distilbert": ("vocab_transform", "activation", "vocab_layer_norm", "vocab_projector"),
    "neomme": ("~unembedding_projection", "lm_head"),
}


#: Model types whose head returns a tuple ``(scores,)`` (``XLMPredLayer``), so wrapped.
_TUPLE_HEADS = ("xlm", "flaubert")


class _ChainHead:
    """A masked-LM head made of several attributes of the model, applied in order
    (ELECTRA ``generator_predictions`` → ``generator_lm_head``; ModernBERT ``head`` →
    ``decoder``; DistilBERT's four ``vocab_*`` modules)."""

    def __init__(self, model, names: Sequence[str]):
        self.model, self.names = model, tuple(names)

    def __call__(self, hidden):
        for name in self.names:
            if name.startswith("~"):
                hidden = hidden @ getattr(self.model, name[1:]).weight
            else:
                hidden = _logits_of(getattr(self.model, name)(hidden))
        return hidden

    def parameters(self):
        """The parameters of every module in the chain (a tied decoder included once)."""
        seen = set()
        for name in self.names:
            for p in getattr(self.model, name.lstrip("~")).parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield p


def _logits_of(out):
    """XLM's ``pred_layer`` returns a tuple ``(scores,)``; every other head a tensor."""
    return out[0] if isinstance(out, tuple) else out


def head_path(model) -> tuple[str, ...]:
    """Names of the model's attributes that make its masked-LM head, applied in order.

    The rule: the model's children other than the encoder (``base_model``) that hold
    parameters, in registration order, up to and including the one that holds the output
    embeddings (``get_output_embeddings()``, the vocabulary projection). It finds ``cls``
    (BERT, DeBERTa, ALBERT's ``predictions`` …), ``lm_head`` (RoBERTa, XLM-R, EuroBERT,
    Funnel …), ``pred_layer`` (XLM/FlauBERT), ``generator_predictions`` +
    ``generator_lm_head`` (ELECTRA, ConvBERT) and ``head`` + ``decoder`` (ModernBERT).
    :data:`HEAD_TABLE` names the exceptions. Returns ``()`` when there is no head.
    """
    names = HEAD_TABLE.get(getattr(getattr(model, "config", None), "model_type", None))
    if names and all(getattr(model, n.lstrip("~"), None) is not None for n in names):
        return names
    get_out = getattr(model, "get_output_embeddings", None)
    out_emb = get_out() if get_out is not None else None
    if out_emb is None:
        return ()
    encoder = getattr(model, "base_model", model)
    prefix = getattr(model, "base_model_prefix", None)  # by name too: a wrapper (the server's
    path = []                                           # gate) returns another object for it
    for name, child in model.named_children():
        if name == prefix or child is encoder or not any(True for _ in child.parameters()):
            continue
        path.append(name)
        if any(m is out_emb for m in child.modules()):
            return tuple(path)
    return ()


def mlm_head(model):
    """The callable mapping hidden states ``[..., D]`` to vocabulary logits ``[..., V]``.

    The module itself when the head is one attribute (``cls`` for BERT, ``lm_head`` for
    RoBERTa); a :class:`_ChainHead` (callable, with ``parameters()``) when it is several.
    Found by :func:`head_path`. Returns None when the model has no head (a bare encoder, or
    an architecture whose head the rule cannot find: then :func:`run_batch` runs the
    model's own forward and gathers the positions).
    """
    model = unwrap(model)
    if model is getattr(model, "base_model", model):
        return None
    names = head_path(model)
    if not names:
        return None
    if len(names) == 1 and model.config.model_type not in _TUPLE_HEADS:
        return getattr(model, names[0])
    return _ChainHead(model, names)


def run_batch(model, input_ids, attention_mask, *, rows=None, cols=None,
              attentions: bool = False, hidden_states: bool = False,
              layer_logits: bool = False, token_type_ids=None) -> BatchOutput:
    """Run ``model`` once on a padded batch: the one call into a model's forward.

    Gradient mode is the caller's choice (inference wraps this in ``torch.inference_mode``;
    the training loss calls it with gradients).

    Args:
        model: a transformers masked-LM model (``AutoModelForMaskedLM``) or bare encoder,
            possibly wrapped by peft/accelerate.
        input_ids: ``LongTensor [B, S]``; attention_mask: ``LongTensor [B, S]``, 1 = real.
        rows, cols: ``LongTensor [n]`` batch and token indices where logits are wanted;
            None = no logits.
        attentions: also return the attention weights of every layer.
        hidden_states: also return every layer's hidden states.
        layer_logits: also apply the head to every layer's hidden state at ``rows, cols``.
        token_type_ids: optional ``LongTensor [B, S]``.

    Without gradients, when only ``logits`` are asked of a BERT-like encoder, the last layer
    runs only at ``rows, cols`` (:mod:`mlmtool.core.last_layer`; equal to the full pass up to
    float rounding).

    Returns:
        :class:`BatchOutput`.
    """
    inner = unwrap(model)
    encoder = getattr(inner, "base_model", inner)
    head = mlm_head(inner) if (rows is not None or layer_logits) else None
    want_hidden = hidden_states or layer_logits
    extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
    out = BatchOutput()
    if (rows is not None or layer_logits) and head is None:
        if encoder is inner:
            raise MlmtoolError("this model has no masked-LM head, so it cannot predict tokens")
        if layer_logits:
            raise MlmtoolError("layer-wise predictions need a masked-LM head that is a separate module")
        # The class's forward: finetune shadows the instance's ``forward`` with the masked loss.
        full = type(inner).forward(inner, input_ids=input_ids, attention_mask=attention_mask,
                                   output_attentions=attentions, output_hidden_states=want_hidden, **extra)
        out.logits = full.logits[rows, cols] if rows is not None else None
        out.attentions = full.attentions if attentions else None
        out.hidden_states = full.hidden_states if hidden_states else None
        return out
    if rows is not None and not (attentions or want_hidden) and not _grad_enabled():
        last = capturable_layer(encoder)  # logits only, at a few positions: the last layer there only
        if last is not None:
            hidden, mask = hidden_before_last(encoder, last, input_ids=input_ids, attention_mask=attention_mask,
                                              **extra)
            out.logits = head(last_layer_at(last, hidden, mask, rows, cols))  # [n, V]
            return out
    enc = encoder(input_ids=input_ids, attention_mask=attention_mask, output_attentions=attentions,
                  output_hidden_states=want_hidden, **extra)
    if rows is not None:
        out.logits = head(enc.last_hidden_state[rows, cols])  # [n, V]
    if layer_logits:
        import torch

        check_layer_shapes(enc.hidden_states, enc.last_hidden_state, "layer-wise predictions")
        out.layer_logits = torch.stack([head(h[rows, cols]) for h in enc.hidden_states])  # [L+1, n, V]
    out.attentions = enc.attentions if attentions else None
    if hidden_states:
        check_layer_shapes(enc.hidden_states, enc.last_hidden_state, "every layer's hidden states")
    out.hidden_states = enc.hidden_states if hidden_states else None
    return out


def _grad_enabled() -> bool:
    import torch

    return torch.is_grad_enabled()


def check_layer_shapes(hidden_states, last, what: str) -> None:
    """Raise :class:`MlmtoolError` unless every ``[B, S, D]`` tensor of ``hidden_states`` has
    the shape of ``last`` (Funnel pools tokens between blocks; Reformer's layers carry two
    streams, so its last hidden state is ``2 D`` wide)."""
    if any(h.shape[1:] != last.shape[1:] for h in hidden_states):
        raise MlmtoolError(f"{what} need every layer in the shape of the last; this model pools "
                           "tokens between layers (Funnel) or keeps two streams (Reformer)")


def encode(lm, texts: Sequence[str], *, need_mask: bool = False):
    """Tokenize ``texts`` (``[MASK]`` → the model's mask token) and check every one.

    Args:
        lm: a :class:`mlmtool.models.LoadedModel`.
        texts: sentences.
        need_mask: require at least one mask in each text.

    Returns:
        The tokenizer's ``BatchEncoding`` without padding: ``["input_ids"]`` is one id list
        per text (special tokens included); ``.word_ids(i)`` maps tokens to words.

    Raises:
        MlmtoolError: a text is empty, has no mask (when ``need_mask``), or is longer than
            the model's maximum length (the message names both lengths and, with several
            texts, the line).
    """
    model_texts = [to_model_text(t, lm.mask_token) for t in texts]
    encoding = lm.tokenizer(model_texts, add_special_tokens=True, truncation=False)
    where = (lambda i: f"line {i + 1}: ") if len(texts) > 1 else (lambda i: "")
    for i, (text, ids) in enumerate(zip(texts, encoding["input_ids"])):
        if not text.strip():
            raise MlmtoolError(f"{where(i)}the text is empty")
        if need_mask and lm.mask_token_id not in ids:
            raise MlmtoolError(
                f"{where(i)}no {USER_MASK} in the text; write {USER_MASK} where the model "
                f"should guess a word, e.g. \"The {USER_MASK} sat on the mat.\"")
        check_length(lm, len(ids), where(i))
    return encoding


def check_length(lm, n_tokens: int, where: str = "") -> None:
    """Raise :class:`MlmtoolError` when ``n_tokens`` exceeds ``lm.max_length``."""
    if n_tokens > lm.max_length:
        raise MlmtoolError(f"{where}the text is {n_tokens} tokens long but model '{lm.name}' accepts "
                           f"at most {lm.max_length}; shorten it")


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first (bucketing).

    Args:
        lengths: ``[n]`` sequence lengths; batch_size: at most this many per batch (≥ 1).
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i:i + batch_size] for i in range(0, len(order), max(1, batch_size))]


def pad(rows: Sequence[Sequence[int]], pad_id: int | None, device=None):
    """Right-pad id lists to ``(input_ids, attention_mask)``, both ``LongTensor [B, S]``."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id or 0, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.as_tensor(list(r), dtype=torch.long)
        mask[i, : len(r)] = 1
    if device is not None:
        ids, mask = ids.to(device), mask.to(device)
    return ids, mask


def iter_forward(lm, ids: Sequence[Sequence[int]], *, positions: Sequence[Sequence[int]] | None = None,
                 attentions: bool = False, hidden_states: bool = False, layer_logits: bool = False,
                 batch_size: int = 32, hidden_layers: Sequence[int] | None = None) -> Iterator[Forward]:
    """Run the model on many id sequences, yielding one :class:`Forward` each, batch by batch.

    Sequences are bucketed by length (:func:`length_batches`) and right-padded; padding is
    cut away from every returned array, and the attention mask keeps it out of every real
    token's result. Results come in batch order (longest first): use ``Forward.index``.
    Memory stays at one batch, so this is the form for thousands of sentences.

    Args:
        lm: a :class:`mlmtool.models.LoadedModel`.
        ids: ``n`` lists of token ids (special tokens included).
        positions: per sequence, the token positions (from 0) where vocabulary logits are
            wanted; None = no logits. Only these positions go through the masked-LM head.
        attentions: return ``attentions [L, H, S, S]`` (NumPy, float32).
        hidden_states: return ``hidden_states [L+1, S, D]`` (NumPy, float32).
        layer_logits: return the head applied to every layer at ``positions``.
        batch_size: sequences per forward pass (default 32).
        hidden_layers: with ``hidden_states``, keep only these hidden-state layers (0 =
            embeddings), in this order: ``hidden_states`` is then ``[len(hidden_layers), S, D]``
            and only they are copied out of the model (the corpus index needs one or a few of
            the ``L+1``). None (default) = all.

    Raises:
        NoMLMHeadError: logits were asked of a model without a trained masked-LM head.
    """
    import torch

    if positions is not None or layer_logits:
        lm.require_mlm_head()
    pad_id = lm.tokenizer.pad_token_id
    device = lm.device
    with torch.inference_mode():
        for batch in length_batches([len(r) for r in ids], batch_size):
            input_ids, mask = pad([ids[i] for i in batch], pad_id, device)
            rows = cols = None
            if positions is not None:
                pairs = [(r, c) for r, i in enumerate(batch) for c in positions[i]]
                rows = torch.tensor([p[0] for p in pairs], dtype=torch.long, device=device)
                cols = torch.tensor([p[1] for p in pairs], dtype=torch.long, device=device)
            out = run_batch(lm.model, input_ids, mask, rows=rows, cols=cols, attentions=attentions,
                            hidden_states=hidden_states, layer_logits=layer_logits)
            att = torch.stack(out.attentions, 1).float().cpu().numpy() if attentions else None
            hid = _stack_hidden(out.hidden_states, hidden_layers) if hidden_states else None
            start = 0
            for r, i in enumerate(batch):
                n = len(ids[i])
                item = Forward(index=i, ids=list(ids[i]))
                if positions is not None:
                    k = len(positions[i])
                    item.logits = out.logits[start:start + k].float()
                    if layer_logits:
                        item.layer_logits = out.layer_logits[:, start:start + k].float()
                    start += k
                if att is not None:
                    item.attentions = att[r, :, :, :n, :n].copy()  # [L, H, S, S]
                if hid is not None:
                    item.hidden_states = hid[r, :, :n].copy()  # [L+1, S, D] (or [k, S, D])
                yield item


def _stack_hidden(hidden, layers: Sequence[int] | None):
    """``L+1`` tensors ``[B, S, D]`` (or those of ``layers``) → ``float32 ndarray [B, k, S, D]``."""
    import torch

    chosen = hidden if layers is None else [hidden[i] for i in layers]
    return torch.stack(chosen, 1).float().cpu().numpy()


def forward(lm, ids: Sequence[Sequence[int]], **kwargs) -> list[Forward]:
    """:func:`iter_forward`, collected in input order (same arguments).

    Returns:
        ``n`` :class:`Forward` objects, ``result[i]`` for ``ids[i]``.
    """
    out: list[Forward | None] = [None] * len(ids)
    for item in iter_forward(lm, ids, **kwargs):
        out[item.index] = item
    return out  # type: ignore[return-value]


def mask_positions(lm, ids: Sequence[int]) -> list[int]:
    """Token positions (from 0) of the model's mask token in ``ids``."""
    return [p for p, t in enumerate(ids) if t == lm.mask_token_id]
