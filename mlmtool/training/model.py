"""What is trained, and how fast: the model a run trains and its optimizer.

* :func:`prepare_model`: the start model itself, or a new one of its architecture
  (``from_scratch``); optionally only the top layers trainable, or LoRA adapters (``peft``).
* :func:`head_lr_optimizer`: AdamW with the MLM head in groups of its own learning rate.
* :func:`restore`: hand a caller's model back in inference settings after training.

Layers are counted from 1 wherever a user sees them (``trainable_layers=2`` = the top two).
"""

from __future__ import annotations

import warnings

from ..core.forward import mlm_head, unwrap
from ..errors import MlmtoolError
from ..models import LoadedModel
from .config import FinetuneConfig


def prepare_model(lm: LoadedModel, config: FinetuneConfig):
    """The model to train, in training mode with SDPA attention.

    Args:
        lm: the loaded start model (its model is trained in place unless ``from_scratch``).
        config: ``from_scratch`` (+ ``layers``/``heads``/``hidden``/``seed``),
            ``trainable_layers``, ``lora``.

    Returns:
        A transformers masked-LM model, or a ``peft`` model around one.

    Raises:
        MlmtoolError: ``trainable_layers`` on an architecture without ``encoder.layer`` or
            beyond its depth; ``lora`` on a model peft cannot adapt.
    """
    if config.from_scratch:
        model = _new_model(lm, config)
    else:
        model = lm.model
        _set_attention(model, "sdpa")
    model.train()
    if config.trainable_layers:
        _freeze_below(model, config.trainable_layers)
    if config.lora:
        model = _lora_model(model, config.lora, fresh_head=not lm.has_mlm_head)
    return model


def restore(lm: LoadedModel, model) -> None:
    """Leave ``lm.model`` as the library uses it (eager attention, eval mode) if it was trained."""
    if lm.model is unwrap(model):
        _set_attention(lm.model, "eager")
        lm.model.eval()


def _new_model(lm: LoadedModel, config: FinetuneConfig):
    """A randomly initialised model of ``lm``'s architecture sized by ``config``."""
    import copy

    import torch
    from transformers import AutoModelForMaskedLM

    cfg = copy.deepcopy(lm.model.config)
    try:
        cfg.num_hidden_layers = config.layers
        cfg.num_attention_heads = config.heads
        if getattr(cfg, "num_key_value_heads", None) is not None:  # grouped-query (EuroBERT): one
            cfg.num_key_value_heads = config.heads                   # key/value head per head
        cfg.hidden_size = config.hidden
        cfg.intermediate_size = 4 * config.hidden
        cfg.vocab_size = len(lm.tokenizer)
    except (NotImplementedError, AttributeError) as exc:  # Funnel sizes by block_sizes
        raise MlmtoolError(f"--from-scratch cannot size a {cfg.model_type} model by layers/heads/hidden: "
                           f"{str(exc).splitlines()[0]}", param="from_scratch") from None
    torch.manual_seed(config.seed)
    model = AutoModelForMaskedLM.from_config(cfg)
    _set_attention(model, "sdpa")
    return model


def _set_attention(model, implementation: str) -> None:
    """Switch ``model`` to ``implementation`` (``sdpa`` / ``eager``) where the architecture has
    it; FNet, for one, has no SDPA (transformers raises ValueError) and keeps its own."""
    try:
        model.set_attn_implementation(implementation)
    except (ValueError, ImportError):
        pass


def _freeze_below(model, n_top: int) -> None:
    """Train only the top ``n_top`` encoder layers and the MLM head (tied decoder excluded).

    Raises:
        MlmtoolError: the architecture has no ``encoder.layer`` list or ``n_top`` is too big.
    """
    base = model.base_model
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None:
        raise MlmtoolError("trainable_layers needs a BERT-style encoder (encoder.layer); this model has none",
                           param="trainable_layers")
    if n_top > len(layers):
        raise MlmtoolError(f"trainable_layers {n_top} is more than the model's {len(layers)} layers",
                           param="trainable_layers")
    embeddings = model.get_input_embeddings().weight
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in list(layers)[len(layers) - n_top:]:
        for p in layer.parameters():
            p.requires_grad_(True)
    head = mlm_head(model)
    for p in (head.parameters() if head is not None else []):
        if p is not embeddings:
            p.requires_grad_(True)


def _lora_model(model, rank: int, fresh_head: bool):
    """Wrap ``model`` with LoRA adapters (``peft``) on the attention query/value projections.

    A freshly initialised MLM head (``fresh_head``) is trained in full as
    ``modules_to_save`` — except its decoder, which stays tied to the word embeddings.
    Follows Hu et al. 2021 (LoRA): ``lora_alpha = 2 * rank``, dropout 0.1.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    names = {n.rsplit(".", 1)[-1] for n, m in model.base_model.named_modules() if isinstance(m, torch.nn.Linear)}
    targets = next((list(pair) for pair in LORA_TARGETS if set(pair) <= names), None)
    save = _fresh_head_modules(model) if fresh_head else None
    try:
        with warnings.catch_warnings():  # peft calls deprecated transformers helpers
            warnings.simplefilter("ignore", FutureWarning)
            return get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.1,
                                                    target_modules=targets, modules_to_save=save))
    except ValueError as exc:
        raise MlmtoolError(f"lora is not supported for this model: {str(exc).splitlines()[0]}",
                           param="lora") from None


#: LoRA target modules, the first pair the encoder has wins: the attention query and value
#: projections under each architecture's names (Hu et al. 2021 adapt W_q and W_v); with
#: none, peft's defaults for the model type. BERT family ``query``/``value``; DeBERTa-v2
#: ``query_proj``; EuroBERT and Llama-style ``q_proj``; DistilBERT/XLM ``q_lin``; MPNet ``q``;
#: Funnel ``q_head``; fused projections: ModernBERT ``Wqkv``, DeBERTa ``in_proj``.
LORA_TARGETS: tuple[tuple[str, ...], ...] = (
    ("query", "value"), ("query_proj", "value_proj"), ("q_proj", "v_proj"), ("q_lin", "v_lin"),
    ("q", "v"), ("q_head", "v_head"), ("Wqkv",), ("in_proj",), ("qkv",),
)


def _fresh_head_modules(model) -> list[str] | None:
    """The leaf modules of a freshly initialised MLM head, as peft ``modules_to_save`` names
    (trained in full); a decoder tied to the word embeddings is left out."""
    from ..core.forward import head_path

    embeddings = model.get_input_embeddings().weight
    save = []
    for name in head_path(model):
        module = getattr(model, name.lstrip("~"))
        save += [f"{name.lstrip('~')}.{n}".rstrip(".") for n, m in module.named_modules()
                 if not list(m.children()) and any(True for _ in m.parameters(recurse=False))
                 and getattr(m, "weight", None) is not embeddings]
    return save or None


def head_lr_optimizer(model, config: FinetuneConfig, decay_names: list[str]):
    """AdamW with the MLM head's parameters at ``config.head_learning_rate``.

    Four groups at most: (head or not) × (weight decay or not). ``decay_names`` says which
    parameters get ``config.weight_decay``: pass ``trainer.get_decay_parameter_names(model)``
    (HF ``Trainer``'s rule: not biases, not norm layers), so the split is the one Trainer's
    default optimizer uses. A tied decoder weight is the word embedding and stays in the
    body's group.

    Returns:
        ``torch.optim.AdamW`` over the trainable parameters, with the fused kernel (one
        kernel per step for all parameters, CPU and CUDA since torch 2.4; what ``Trainer``
        uses by default since transformers 5 with torch >= 2.8: ``adamw_torch_fused``).
    """
    import torch

    head = mlm_head(model)
    head_ids = {id(p) for p in head.parameters()} if head is not None else set()
    head_ids.discard(id(model.get_input_embeddings().weight))  # a tied decoder is the embedding
    decay = set(decay_names)
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault((id(p) in head_ids, name in decay), []).append(p)
    lr = config.default_learning_rate()
    return torch.optim.AdamW([
        {"params": ps, "lr": config.head_learning_rate if is_head else lr,
         "weight_decay": config.weight_decay if decays else 0.0}
        for (is_head, decays), ps in groups.items()], lr=lr, fused=True)


def count_parameters(model) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts (tied tensors counted once)."""
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total
