"""The masked-LM loss computed at masked positions only, and held-out evaluation.

:func:`masked_lm_loss` runs the encoder on the whole batch but the MLM head (hidden →
vocabulary logits) only where ``labels != -100`` — about 15 % of the tokens — instead of at
every position as ``AutoModelForMaskedLM(labels=...)`` does. The cross-entropy is the same;
the vocabulary projection, about half of a small model's per-token compute (MiniLM: 384 ×
30,522 multiply-adds per token against ~10M for its 6 layers; :mod:`mlmtool.core.forward`),
shrinks about 6×. :func:`install_masked_forward` makes it the model's ``forward`` during
training, so ``DistributedDataParallel`` still synchronises gradients. Sums across processes
go through the ``Trainer``'s ``accelerate.Accelerator`` (``reduce``), so every rank sees the
same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from ..core.forward import pad, run_batch, unwrap


@dataclass
class EvalResult:
    """Held-out masked-LM quality.

    Attributes:
        loss: mean cross-entropy per masked token, in nats.
        perplexity: ``exp(loss)``.
        tokens: number of masked (predicted) tokens it was measured on.
    """

    loss: float
    perplexity: float
    tokens: int


def masked_lm_loss(model, input_ids, attention_mask, labels, token_type_ids=None):
    """Summed masked-LM cross-entropy, computing vocabulary logits at labelled positions only.

    Runs ``model.base_model`` (the encoder) on the batch, gathers the hidden states where
    ``labels != -100`` and applies the MLM head there. Equal to the loss of
    ``AutoModelForMaskedLM(..., labels=labels)`` times the number of labelled tokens, at a
    fraction of the head's cost.

    Args:
        model: a transformers masked-LM model (``BertForMaskedLM``, ``RobertaForMaskedLM``,
            ...) or a ``peft`` model around one.
        input_ids, attention_mask: LongTensors ``[batch, seq]``.
        labels: LongTensor ``[batch, seq]``, the original token id at chosen positions and
            -100 elsewhere.
        token_type_ids: optional LongTensor ``[batch, seq]``.

    Returns:
        ``(loss_sum, n)``: summed cross-entropy in nats (scalar tensor, differentiable) and
        the number of labelled tokens (int).
    """
    import torch
    import torch.nn.functional as F

    selected = labels != -100  # [batch, seq]
    rows, cols = torch.nonzero(selected, as_tuple=True)
    out = run_batch(model, input_ids, attention_mask, rows=rows, cols=cols, token_type_ids=token_type_ids)
    loss_sum = F.cross_entropy(out.logits.float(), labels[rows, cols], reduction="sum")
    return loss_sum, int(rows.numel())


class LossTally:
    """Running sum of training cross-entropy and masked-token count (per process)."""

    def __init__(self):
        self.sum, self.n = 0.0, 0

    def take(self, accelerator=None) -> tuple[float, int]:
        """Return and reset ``(sum, n)``, summed over all processes of ``accelerator``."""
        total = _sum_over_processes([self.sum, float(self.n)], accelerator)
        self.sum, self.n = 0.0, 0
        return total[0], int(total[1])


def install_masked_forward(model, tally: LossTally) -> Callable[[], None]:
    """Make ``model.forward`` compute :func:`masked_lm_loss`; return a function that undoes it.

    The instance attribute shadows the class's ``forward``, so ``model(...)`` — and
    ``DistributedDataParallel(model)(...)``, which keeps gradients in sync — run it. With
    ``num_items_in_batch`` (labelled tokens over all gradient-accumulation micro-batches and
    processes, passed by ``Trainer``) the loss is normalised by it, so every masked token
    weighs the same; otherwise it is the batch mean.
    """
    from transformers.modeling_outputs import MaskedLMOutput

    hf = unwrap(model)

    def forward(input_ids=None, attention_mask=None, token_type_ids=None, labels=None,
                num_items_in_batch=None, **kwargs):
        loss_sum, n = masked_lm_loss(hf, input_ids, attention_mask, labels, token_type_ids)
        tally.sum += float(loss_sum.detach())
        tally.n += n
        denominator = num_items_in_batch if num_items_in_batch is not None else max(n, 1)
        return MaskedLMOutput(loss=loss_sum / denominator)

    hf.forward = forward
    return lambda: hf.__dict__.pop("forward", None)


def _sum_over_processes(values: list[float], accelerator) -> list[float]:
    """``values`` summed over the processes of ``accelerator`` (float64; as is without one)."""
    if accelerator is None or accelerator.num_processes == 1:
        return list(values)
    import torch

    t = torch.tensor(values, dtype=torch.float64, device=accelerator.device)
    return accelerator.reduce(t, reduction="sum").tolist()


def evaluate_mlm(model, rows: list[dict], batch_size: int = 32, pad_id: int = 0,
                 accelerator=None) -> EvalResult | None:
    """Held-out masked-LM loss and perplexity on pre-masked rows.

    With an ``accelerator`` (the ``Trainer``'s), every process evaluates a share of the
    batches and the sums are added over processes (``Accelerator.reduce``), so all ranks
    return the same numbers. The model's train/eval mode is restored.

    Args:
        model: a masked-LM model (or ``peft`` model).
        rows: from :func:`fixed_eval_rows`.
        batch_size: rows per forward pass.
        pad_id: the tokenizer's padding id.
        accelerator: ``accelerate.Accelerator`` of a distributed run; None = this process
            evaluates every row.

    Returns:
        :class:`EvalResult` (mean cross-entropy per masked token in nats; perplexity =
        ``exp`` of it), or None when ``rows`` is empty.
    """
    import torch

    if not rows:
        return None
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with torch.inference_mode():
        for b, lo in enumerate(range(0, len(rows), batch_size)):
            if b % world != rank:
                continue
            chunk = rows[lo:lo + batch_size]
            ids, att = pad([r["input_ids"] for r in chunk], pad_id, device)
            labels = torch.full(ids.shape, -100, dtype=torch.long, device=device)
            for i, r in enumerate(chunk):
                labels[i, :len(r["labels"])] = torch.as_tensor(r["labels"], dtype=torch.long)
            loss_sum, n = masked_lm_loss(model, ids, att, labels)
            total += float(loss_sum)
            count += n
    if was_training:
        model.train()
    total, count = _sum_over_processes([total, float(count)], accelerator)
    if count == 0:
        return None
    loss = total / count
    return EvalResult(loss=loss, perplexity=math.exp(min(loss, 700.0)), tokens=int(count))
