"""Masked-LM fine-tuning (and training from scratch) on plain text, with HF ``Trainer``.

One call, :func:`finetune`, takes a :class:`~mlmtool.training.config.FinetuneConfig` and
returns a :class:`~mlmtool.training.output.FinetuneResult`; ``mlmtool finetune`` is a thin
shell over it. The parts, one module each in :mod:`mlmtool.training`:

* ``config``: the settings, their defaults and checks (the CLI's options come from them).
* ``data``: UTF-8 text read with ``datasets``, packed into chunks of at most ``max_length``
  tokens (nothing dropped), masked by transformers' ``DataCollatorForLanguageModeling`` as in
  BERT (15 %; 80 % mask / 10 % random / 10 % kept; or whole words).
* ``loss``: the MLM head runs at masked positions only (through the forward core,
  :func:`mlmtool.core.forward.run_batch`), the speed-up over a plain
  ``AutoModelForMaskedLM`` (``scripts/benchmarks/bench_finetune.py``); held-out loss is measured on a
  fixed, seeded masking of the held-out chunks, so numbers before, during and after
  training (and between runs) are comparable; perplexity = ``exp(mean cross-entropy per
  masked token)``.
* ``model``: start model or a new one, frozen layers, LoRA (``peft``), the head's own
  learning rate.
* ``callbacks``: evaluation lines, time limit, timed checkpoints, progress bar.
* ``output``: checks that nothing is lost; checkpoints go to ``<output>.partial/``
  (``resume=True`` continues from the last one); the final model is written there and
  renamed into place only when complete.

Training is HF ``Trainer`` (AdamW, linear warm-up and decay), so ``torchrun
--nproc_per_node N -m mlmtool finetune ...`` and ``accelerate launch`` work unchanged.

Example (tiny model, seconds)::

    >>> cfg = FinetuneConfig(corpus=["corpus.txt"], model="path/to/tiny-bert",   # doctest: +SKIP
    ...                      output="out", epochs=2, max_length=32)
    >>> res = finetune(cfg)
    >>> res.before.perplexity > res.after.perplexity
    True
"""

from __future__ import annotations

import functools
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import MlmtoolError
from ..models import LoadedModel
from .callbacks import EpochStats, add_callbacks, emitter, read_history
from .config import DEFAULT_MAX_LENGTH, FinetuneConfig
from .data import make_collator, read_corpus, split_corpus
from .loss import EvalResult, LossTally, evaluate_mlm, install_masked_forward
from .model import count_parameters, head_lr_optimizer, prepare_model, restore
from .output import FinetuneResult, check_output, check_resume, save, write_state
from .report import report_end, report_start

__all__ = ["finetune", "FinetuneConfig", "FinetuneResult"]


def finetune(config: FinetuneConfig, *, lm: LoadedModel | None = None,
             report: Callable[[str], None] | None = None, callbacks: Sequence[Any] = ()) -> FinetuneResult:
    """Fine-tune (or train from scratch) a masked language model on text files.

    Steps: check the settings, output and corpus; load the start model
    (:func:`mlmtool.models.load`); pack the corpus into chunks and hold ``eval_fraction`` of
    them out; measure held-out loss/perplexity; train with HF ``Trainer`` (loss at masked
    positions only, :func:`mlmtool.training.loss.masked_lm_loss`); measure again; save model
    + tokenizer (safetensors) and ``training_summary.json`` into ``output``.

    Works unchanged under ``torchrun --nproc_per_node N`` / ``accelerate launch``: every
    process reads the corpus, trains its share of each batch, and process 0 writes files.

    Args:
        config: the run's settings (:class:`FinetuneConfig`).
        lm: an already loaded start model to use instead of loading ``config.model``; it is
            trained in place (left in eval mode, eager attention).
        report: called with each line for people (corpus summary, one line per epoch like
            ``Epoch 1, Loss: 4.4672, held-out loss: ..., perplexity: ...``); process 0 only.
        callbacks: extra ``transformers.TrainerCallback`` objects.

    Returns:
        :class:`FinetuneResult` (also saved as ``<output>/training_summary.json``).

    Raises:
        MlmtoolError: bad settings, unusable corpus (missing, empty, binary, not UTF-8, too
            small for the held-out split), output that would overwrite something, a start
            model that cannot be loaded, or ``resume`` with changed settings.
    """
    import transformers

    config.check()
    output, partial = check_output(config)
    files, sample_by = read_corpus(config.corpus)
    saved = check_resume(partial, config) if config.resume else None
    emit = emitter(report if int(os.environ.get("RANK", "0")) == 0 else None)
    lm = lm if lm is not None else _load(config)
    tok, max_length = lm.tokenizer, _max_length(lm, config)

    transformers.logging.set_verbosity_error()
    train_ds, eval_rows, corpus = split_corpus(files, sample_by, tok, max_length, eval_fraction=config.eval_fraction,
                                               seed=config.seed, mlm_probability=config.mlm_probability,
                                               whole_word_mask=config.whole_word_mask)
    emit(corpus.describe(max_length))
    start_report = report_start(lm, eval_rows, config)  # the start model's predictions, before it is trained
    model = prepare_model(lm, config)
    tally = LossTally()
    undo = install_masked_forward(model, tally)  # before Trainer, which reads forward's signature
    trainer = _trainer(model, tok, train_ds, config, partial)
    acc = trainer.accelerator
    held_out = functools.partial(evaluate_mlm, model, eval_rows, config.eval_batch_size, tok.pad_token_id or 0, acc)
    evaluation, limit = add_callbacks(trainer, config, tally, held_out, emit, callbacks)

    resume_from, before = _starting_point(config, partial, saved, held_out, acc, corpus.bytes, emit)
    seconds = _train(trainer, resume_from, undo) - evaluation.seconds
    result = _result(config, output, lm, model, trainer, corpus, seconds, evaluation, limit, resume_from, before,
                     held_out)
    if acc.is_main_process:
        save(model, tok, result, output, partial)
        report_end(output, start_report, before, result.after, emit)
    acc.wait_for_everyone()
    restore(lm, model)
    return result


def _starting_point(config: FinetuneConfig, partial: Path, saved: dict | None, held_out: Callable[[], Any],
                    accelerator, corpus_bytes: int, emit: Callable[[str], None]
                    ) -> tuple[str | None, EvalResult | None]:
    """Where training starts: ``(checkpoint to resume from or None, held-out numbers before)``.

    A resumed run takes its "before" numbers from the interrupted run's state; a fresh run
    measures them now and records its state (process 0) for a later ``resume``.
    """
    from transformers.trainer_utils import get_last_checkpoint

    resume_from = get_last_checkpoint(str(partial)) if config.resume else None
    if resume_from:
        before = EvalResult(**saved["before"]) if saved.get("before") else None
        emit(f"Resuming from {resume_from}")
    else:
        before = held_out()
        if accelerator.is_main_process:
            write_state(partial, config, before, corpus_bytes)
    if before:
        emit(f"Before training: held-out loss {before.loss:.4f}, perplexity {before.perplexity:.2f}")
    return resume_from, before


def _train(trainer, resume_from: str | None, undo: Callable[[], None]) -> float:
    """Run ``trainer.train`` (from ``resume_from`` when set), then remove the masked-loss
    forward (``undo``) whatever happens; returns the wall time in seconds.

    Raises:
        KeyboardInterrupt: Ctrl-C or SIGTERM stopped training after saving a checkpoint
            (:class:`~mlmtool.training.callbacks.StopOnSignal`); ``--resume`` continues it.
    """
    from .callbacks import StopOnSignal

    start = time.perf_counter()
    try:
        trainer.train(resume_from_checkpoint=resume_from)
    finally:
        undo()
    if any(isinstance(cb, StopOnSignal) and cb.stopped for cb in trainer.callback_handler.callbacks):
        raise KeyboardInterrupt
    return time.perf_counter() - start


def _result(config: FinetuneConfig, output: Path, lm: LoadedModel, model, trainer, corpus, seconds: float,
            evaluation, limit, resume_from: str | None, before: EvalResult | None,
            held_out: Callable[[], Any]) -> FinetuneResult:
    """The run's :class:`FinetuneResult`; the held-out numbers after training are the last
    epoch's when it measured them at the final step, else measured now (every process)."""
    acc = trainer.accelerator
    state, history = trainer.state, read_history(trainer.state.log_history)
    after = _final_evaluation(history, state.global_step, before) or held_out()
    session_tokens = state.num_input_tokens_seen - evaluation.tokens_at_start
    trainable, total = count_parameters(model)
    return FinetuneResult(
        output=str(output), start_model=lm.name, start_source=lm.source, corpus=corpus, steps=state.global_step,
        epochs=round(state.epoch or 0.0, 4), tokens_seen=int(state.num_input_tokens_seen),
        train_seconds=round(seconds, 3), eval_seconds=round(evaluation.seconds, 3),
        tokens_per_second=round(session_tokens / max(seconds, 1e-9), 1), history=history, before=before,
        after=after, stopped_early=bool(limit and limit.stopped),
        resumed_from_step=int(resume_from.rsplit("-", 1)[-1]) if resume_from else 0,
        world_size=acc.num_processes, rank_checksums=_checksums(model, acc),
        trainable_parameters=trainable, total_parameters=total, config=asdict(config))


def _trainer(model, tokenizer, train_ds, config: FinetuneConfig, partial: Path):
    """The HF ``Trainer`` of this run, with the head's own learning rate if one is set.

    Also removes the checkpoints of an earlier run when ``overwrite`` starts a fresh one
    (process 0; the others wait).
    """
    from transformers import Trainer

    trainer = Trainer(model=model, args=_training_args(config, partial), train_dataset=train_ds,
                      processing_class=tokenizer,
                      data_collator=make_collator(tokenizer, config.mlm_probability, config.whole_word_mask))
    if config.head_learning_rate is not None:
        trainer.optimizer = head_lr_optimizer(model, config, trainer.get_decay_parameter_names(model))
    if config.overwrite and not config.resume and trainer.accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return trainer


def _final_evaluation(history: list[EpochStats], step: int, before: EvalResult | None) -> EvalResult | None:
    """The held-out numbers already measured at ``step`` (the last epoch's end), or None."""
    last = history[-1] if history else None
    if last is None or last.step != step or last.eval_loss is None:
        return None
    return EvalResult(loss=last.eval_loss, perplexity=last.eval_perplexity, tokens=before.tokens if before else 0)


def _load(config: FinetuneConfig) -> LoadedModel:
    """The start model through the one loader (:func:`mlmtool.models.load`)."""
    from ..models import load

    return load(config.model, config.lang)


def _max_length(lm: LoadedModel, config: FinetuneConfig) -> int:
    """Tokens per chunk: ``config.max_length`` or min(128, the model's limit).

    Raises:
        MlmtoolError: the tokenizer is not a fast one, or ``max_length`` exceeds the model's limit.
    """
    if not getattr(lm.tokenizer, "is_fast", False):
        raise MlmtoolError(f"model '{lm.name}' has no fast tokenizer, which fine-tuning needs")
    max_length = config.max_length or min(DEFAULT_MAX_LENGTH, lm.max_length)
    if max_length > lm.max_length:
        raise MlmtoolError(f"max_length {max_length} is more than model '{lm.name}' accepts ({lm.max_length})",
                           param="max_length")
    return max_length


def _training_args(config: FinetuneConfig, partial: Path):
    """``TrainingArguments`` for this run (CPU unless CUDA is available; gloo on CPU)."""
    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    save_by = dict(save_strategy="steps", save_steps=config.save_steps) if config.save_steps \
        else dict(save_strategy="epoch")
    return TrainingArguments(
        output_dir=str(partial),
        per_device_train_batch_size=config.batch_size, num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1, learning_rate=config.default_learning_rate(),
        warmup_steps=config.warmup_ratio, weight_decay=config.weight_decay, lr_scheduler_type="linear",
        optim="adamw_torch_fused", logging_steps=config.logging_steps, save_total_limit=2, **save_by,
        seed=config.seed, data_seed=config.seed, report_to="none", use_cpu=not cuda,
        ddp_backend=None if cuda or world == 1 else "gloo", ddp_find_unused_parameters=False,
        disable_tqdm=not config.progress, remove_unused_columns=False, dataloader_drop_last=False,
        include_num_input_tokens_seen="non_padding", bf16=config.bf16,
    )


def _checksums(model, accelerator) -> list[float]:
    """Each process's sum of all parameters (float64), gathered to every process in rank order."""
    import torch

    with torch.no_grad():
        local = sum(p.detach().double().sum() for p in model.parameters())
    t = torch.as_tensor([float(local)], dtype=torch.float64, device=accelerator.device)
    return accelerator.gather(t).tolist()
