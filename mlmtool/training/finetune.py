"""Masked-LM fine-tuning (and training from scratch) on plain text, with HF ``Trainer``.

One call, :func:`finetune`, takes a :class:`FinetuneConfig` and returns a
:class:`FinetuneResult`; ``mlmtool finetune`` is a thin shell over it.

* **Data** (:mod:`mlmtool.training.data`): UTF-8 text read with ``datasets``, packed into
  chunks of at most ``max_length`` tokens (nothing dropped), masked by transformers'
  ``DataCollatorForLanguageModeling`` as in BERT (15 %; 80 % mask / 10 % random / 10 %
  kept; or whole words).
* **Loss** (:mod:`mlmtool.training.loss`): the MLM head runs at masked positions only, the
  speed-up over a plain ``AutoModelForMaskedLM`` (``scripts/bench_finetune.py``).
* **Training**: HF ``Trainer`` (AdamW, linear warm-up and decay), so ``torchrun
  --nproc_per_node N -m mlmtool finetune ...`` and ``accelerate launch`` work unchanged.
  Held-out loss is measured on a fixed, seeded masking of the held-out chunks, so numbers
  before, during and after training (and between runs) are comparable; perplexity is
  ``exp(mean cross-entropy per masked token)``.
* **Output**: checkpoints go to ``<output>.partial/`` (``resume=True`` continues from the
  last one); the final model is written there and renamed into place only when complete.
  ``--lora`` saves only the adapters (``peft``).

Layers are counted from 1 wherever a user sees them (``trainable_layers=2`` = the top two).

Example (tiny model, seconds)::

    >>> cfg = FinetuneConfig(corpus=["corpus.txt"], model="path/to/tiny-bert",   # doctest: +SKIP
    ...                      output="out", epochs=2, max_length=32)
    >>> res = finetune(cfg)
    >>> res.before.perplexity > res.after.perplexity
    True
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..core.forward import mlm_head, unwrap as hf_model
from ..errors import MlmtoolError
from ..models import LoadedModel
from .data import build_chunks, fixed_eval_rows, make_collator, pack, read_corpus
from .loss import (EvalResult, LossTally, barrier, broadcast, dist_info, evaluate_mlm, gather_checksum,
                   install_masked_forward, masked_lm_loss)


__all__ = ["FinetuneConfig", "FinetuneResult", "EpochStats", "CorpusStats", "EvalResult", "finetune",
           "masked_lm_loss", "evaluate_mlm", "make_collator", "build_chunks", "fixed_eval_rows", "pack",
           "read_corpus", "load_summary", "SUMMARY_NAME"]

#: Name of the JSON summary written next to the model.
SUMMARY_NAME = "training_summary.json"
#: State file kept in ``<output>.partial/`` so ``--resume`` can check it continues the same run.
_STATE_NAME = "mlmtool_finetune.json"
#: Config fields that must not change between a run and its ``--resume``.
_RESUME_KEYS = ("model", "lang", "from_scratch", "layers", "heads", "hidden", "lora", "max_length",
                "whole_word_mask", "mlm_probability", "trainable_layers", "eval_fraction", "seed",
                "batch_size")
#: Default ``max_length``: BERT's pre-training used 128 tokens for 90 % of its steps
#: (Devlin et al. 2019, appendix A.2); attention cost grows with the square of the length.
DEFAULT_MAX_LENGTH = 128


@dataclass
class FinetuneConfig:
    """Everything one fine-tuning run needs (the CLI options map 1:1 onto these fields).

    Attributes:
        corpus: UTF-8 text file path(s); one passage per line, or paragraphs separated by a
            blank line.
        output: directory for the trained model (default ``finetuned-model``).
        model: start model: registry name, directory or Hub id; None = registry model for
            ``lang``.
        lang: registry language used when ``model`` is None (default ``"en"``).
        epochs: passes over the training chunks (default 3, at least 1).
        batch_size: chunks per step per process (default 16).
        bf16: train under bfloat16 autocast (``torch.autocast``; weights stay float32). About
            1.8x faster on CPUs with AVX512-BF16/AMX and on recent GPUs; off by default.
        head_learning_rate: peak learning rate for the masked-LM head's own parameters (a
            fresh head learns faster with a larger one, as classifier heads usually get);
            None = ``learning_rate``.
        learning_rate: AdamW peak learning rate; None picks 5e-5 for full fine-tuning (HF
            ``run_mlm.py``), 5e-4 for LoRA (Hu et al. 2021, RoBERTa-base) and 1e-4 from
            scratch (Devlin et al. 2019 pre-training).
        warmup_ratio: share of the steps with linear warm-up (default 0.06, Liu et al. 2019,
            RoBERTa); then linear decay to 0.
        weight_decay: AdamW weight decay (default 0.01, Devlin et al. 2019).
        max_length: tokens per chunk including ``[CLS]``/``[SEP]``; None = min(128, the
            model's limit).
        mlm_probability: share of tokens chosen for prediction (default 0.15).
        whole_word_mask: choose whole words (all their pieces) instead of single tokens.
        eval_fraction: share of the chunks held out for evaluation (default 0.1; 0 = none).
        seed: seeds the split, the held-out masking, initialisation and data order.
        max_steps: stop after this many optimizer steps (overrides ``epochs``).
        max_minutes: stop cleanly after this many minutes of training, evaluate and save
            the model as complete.
        trainable_layers: train only the top N encoder layers and the MLM head (the
            head's decoder stays tied to the frozen word embeddings); None = everything.
        lora: LoRA rank; train low-rank adapters on the attention query/value projections
            (``peft``) and save only the adapters. None = full fine-tuning.
        from_scratch: train a new randomly initialised model of the start model's
            architecture with ``layers``/``heads``/``hidden`` and its tokenizer.
        layers, heads, hidden: size of the ``from_scratch`` model (defaults 4, 4, 256;
            feed-forward size 4 × hidden).
        eval_steps: also evaluate every N steps (default: only at each epoch's end).
        logging_steps: how often the progress bar's loss is refreshed (default 10).
        checkpoint_minutes: save a checkpoint at least this often (default 10), besides one
            at each epoch's end.
        save_steps: save a checkpoint every N steps instead of at each epoch's end.
        resume: continue from the last checkpoint in ``<output>.partial/``.
        overwrite: replace an existing non-empty output directory (and any checkpoints of
            an earlier interrupted run).
        progress: show a progress bar (main process only).
    """

    corpus: list[str] = field(default_factory=list)
    output: str = "finetuned-model"
    model: str | None = None
    lang: str = "en"
    epochs: int = 3
    batch_size: int = 16
    learning_rate: float | None = None
    head_learning_rate: float | None = None
    bf16: bool = False
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    max_length: int | None = None
    mlm_probability: float = 0.15
    whole_word_mask: bool = False
    eval_fraction: float = 0.1
    seed: int = 42
    max_steps: int | None = None
    max_minutes: float | None = None
    trainable_layers: int | None = None
    lora: int | None = None
    from_scratch: bool = False
    layers: int = 4
    heads: int = 4
    hidden: int = 256
    eval_steps: int | None = None
    logging_steps: int = 10
    checkpoint_minutes: float | None = 10.0
    save_steps: int | None = None
    resume: bool = False
    overwrite: bool = False
    progress: bool = True

    def check(self) -> None:
        """Raise :class:`MlmtoolError` (one line) for values no run can use."""
        if not self.corpus:
            raise MlmtoolError("no corpus file given")
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "max_steps": self.max_steps,
                    "max_length": self.max_length, "lora": self.lora, "eval_steps": self.eval_steps,
                    "trainable_layers": self.trainable_layers, "logging_steps": self.logging_steps,
                    "save_steps": self.save_steps, "layers": self.layers, "heads": self.heads,
                    "hidden": self.hidden}
        for name, value in positive.items():
            if value is not None and value < 1:
                raise MlmtoolError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise MlmtoolError(f"--learning-rate must be positive (got {self.learning_rate})")
        if not 0 < self.mlm_probability < 1:
            raise MlmtoolError(f"--mlm-probability must be between 0 and 1 (got {self.mlm_probability})")
        if not 0 <= self.eval_fraction < 1:
            raise MlmtoolError(f"--eval-fraction must be in [0, 1) (got {self.eval_fraction})")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise MlmtoolError(f"--max-minutes must be positive (got {self.max_minutes})")
        if self.max_length is not None and self.max_length < 8:
            raise MlmtoolError(f"--max-length must be at least 8 tokens (got {self.max_length})")
        if self.lora and self.trainable_layers:
            raise MlmtoolError("--lora and --trainable-layers exclude each other; choose one")
        if self.lora and self.from_scratch:
            raise MlmtoolError("--lora adapts a trained model; it cannot be used with --from-scratch")
        if self.from_scratch and self.hidden % self.heads:
            raise MlmtoolError(f"--hidden ({self.hidden}) must be a multiple of --heads ({self.heads})")

    def default_learning_rate(self) -> float:
        """The learning rate used when ``learning_rate`` is None (see the class docstring)."""
        if self.learning_rate is not None:
            return self.learning_rate
        if self.lora:
            return 5e-4
        return 1e-4 if self.from_scratch else 5e-5


@dataclass
class EpochStats:
    """One line of the training log (an epoch's end, or an ``eval_steps`` evaluation).

    Attributes:
        epoch: epochs done (1, 2, ... at epoch ends; fractional when stopped early or for
            step evaluations).
        step: optimizer steps done.
        train_loss: mean cross-entropy per masked training token since the previous
            epoch end (nats); None for step evaluations.
        eval_loss: held-out loss (nats), None without a held-out split.
        eval_perplexity: ``exp(eval_loss)``.
        kind: ``"epoch"`` or ``"step"``.
    """

    epoch: float
    step: int
    train_loss: float | None
    eval_loss: float | None
    eval_perplexity: float | None
    kind: str = "epoch"


@dataclass
class CorpusStats:
    """What the corpus became.

    Attributes:
        files: ``{"path": ..., "bytes": ...}`` per input file (``<stdin>`` for ``-``).
        bytes: total size in bytes.
        tokens: text tokens (special tokens not counted).
        train_chunks, eval_chunks: number of chunks of at most ``max_length`` tokens.
        eval_masked_tokens: held-out tokens the loss is measured on.
        sample_by: ``"line"`` or ``"paragraph"`` (blank-line separated).
    """

    files: list[dict]
    bytes: int
    tokens: int
    train_chunks: int
    eval_chunks: int
    eval_masked_tokens: int
    sample_by: str


@dataclass
class FinetuneResult:
    """What :func:`finetune` did (also written as ``training_summary.json``).

    Attributes:
        output: the final model directory.
        start_model: name of the start model; ``start_source`` where its files are.
        corpus: :class:`CorpusStats`.
        steps: optimizer steps done in total (this run and any resumed one).
        epochs: epochs done (fractional when stopped early).
        tokens_seen: non-padding tokens (special tokens included) trained on, over all
            processes.
        train_seconds: wall time of this run's training loop, held-out evaluations excluded.
        eval_seconds: wall time of the held-out evaluations during training.
        tokens_per_second: this run's tokens / train_seconds.
        history: one :class:`EpochStats` per epoch end (and per ``eval_steps``).
        before, after: held-out quality before and after training (None without a split).
        stopped_early: True when ``max_minutes`` ended training.
        resumed_from_step: the checkpoint step this run continued from (0 = fresh start).
        world_size: number of training processes.
        rank_checksums: sum of all parameters on each process after training (equal on
            every rank when data-parallel training kept them in sync).
        trainable_parameters, total_parameters: parameter counts.
        config: the :class:`FinetuneConfig` as a dict.
    """

    output: str
    start_model: str
    start_source: str
    corpus: CorpusStats
    steps: int
    epochs: float
    tokens_seen: int
    train_seconds: float
    eval_seconds: float
    tokens_per_second: float
    history: list[EpochStats]
    before: EvalResult | None
    after: EvalResult | None
    stopped_early: bool
    resumed_from_step: int
    world_size: int
    rank_checksums: list[float]
    trainable_parameters: int
    total_parameters: int
    config: dict

    def to_dict(self) -> dict:
        """A JSON-ready dict (the content of ``training_summary.json``)."""
        return asdict(self)


# ----------------------------------------------------------------------------- model set-up


def _new_model(lm: LoadedModel, config: FinetuneConfig):
    """A randomly initialised model of ``lm``'s architecture sized by ``config``."""
    import copy

    import torch
    from transformers import AutoModelForMaskedLM

    cfg = copy.deepcopy(lm.model.config)
    cfg.num_hidden_layers = config.layers
    cfg.num_attention_heads = config.heads
    cfg.hidden_size = config.hidden
    cfg.intermediate_size = 4 * config.hidden
    cfg.vocab_size = len(lm.tokenizer)
    torch.manual_seed(config.seed)
    return AutoModelForMaskedLM.from_config(cfg, attn_implementation="sdpa")


def _freeze_below(model, n_top: int) -> None:
    """Train only the top ``n_top`` encoder layers and the MLM head (tied decoder excluded).

    Raises:
        MlmtoolError: the architecture has no ``encoder.layer`` list or ``n_top`` is too big.
    """
    base = model.base_model
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None:
        raise MlmtoolError("--trainable-layers needs a BERT-style encoder (encoder.layer); "
                           "this model has none")
    if n_top > len(layers):
        raise MlmtoolError(f"--trainable-layers {n_top} is more than the model's {len(layers)} layers")
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
    targets = [n for n in ("query", "value") if n in names] or None
    save = None
    head = mlm_head(model)
    if fresh_head and head is not None:
        prefix = "cls" if getattr(model, "cls", None) is head else "lm_head"
        embeddings = model.get_input_embeddings().weight
        save = [f"{prefix}.{n}" for n, m in head.named_modules()
                if n and not list(m.children()) and any(True for _ in m.parameters(recurse=False))
                and getattr(m, "weight", None) is not embeddings]
    try:
        with warnings.catch_warnings():  # peft calls deprecated transformers helpers
            warnings.simplefilter("ignore", FutureWarning)
            return get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.1,
                                                    target_modules=targets, modules_to_save=save))
    except ValueError as exc:
        raise MlmtoolError(f"--lora is not supported for this model: {str(exc).splitlines()[0]}") from None


def _optimizer(model, config: FinetuneConfig):
    """AdamW with the head at ``head_learning_rate``; None (Trainer's default) when unset.

    Weight decay skips biases and LayerNorm weights, as Trainer's default does.
    """
    if config.head_learning_rate is None:
        return None
    import torch

    head = mlm_head(model)
    head_ids = {id(p) for p in head.parameters()} if head is not None else set()
    head_ids.discard(id(model.get_input_embeddings().weight))  # a tied decoder is the embedding
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            no_decay = name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name
            groups.setdefault((id(p) in head_ids, no_decay), []).append(p)
    lr = config.default_learning_rate()
    return torch.optim.AdamW([
        {"params": ps, "lr": config.head_learning_rate if is_head else lr,
         "weight_decay": 0.0 if no_decay else config.weight_decay}
        for (is_head, no_decay), ps in groups.items()], lr=lr)


def _count(model) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts (tied tensors counted once)."""
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


# ----------------------------------------------------------------------------- callbacks


def _callbacks(trainer, tally: LossTally, eval_rows, config: FinetuneConfig, emit, history: list):
    """Trainer callbacks: epoch/step reports, time limit, timed checkpoints, quiet progress bar."""
    from transformers import ProgressCallback, TrainerCallback

    pad_id = trainer.processing_class.pad_token_id or 0
    eval_bs = max(2 * config.batch_size, 8)

    def evaluate(model, state, kind: str, train_loss: float | None) -> None:
        t0 = time.perf_counter()
        res = evaluate_mlm(model, eval_rows, eval_bs, pad_id)
        reports.eval_seconds += time.perf_counter() - t0
        stats = EpochStats(epoch=round(state.epoch or 0.0, 4), step=state.global_step, train_loss=train_loss,
                           eval_loss=res.loss if res else None,
                           eval_perplexity=res.perplexity if res else None, kind=kind)
        history.append(stats)
        trainer.log({"mlmtool_" + k: v for k, v in asdict(stats).items() if v is not None and k != "kind"}
                    | {"mlmtool_kind": kind})
        label = (f"Epoch {stats.epoch:g}" if kind == "epoch" else f"Step {stats.step}")
        parts = [label] + ([f"Loss: {train_loss:.4f}"] if train_loss is not None else [])
        if res:
            parts.append(f"held-out loss: {res.loss:.4f}, perplexity: {res.perplexity:.2f}")
        emit(", ".join(parts))

    class Reports(TrainerCallback):
        """Per-epoch line, ``eval_steps`` evaluations, ``max_minutes`` and timed checkpoints."""

        def __init__(self):
            self.stopped = False
            self.eval_seconds = 0.0
            self.t0 = self.last_save = time.monotonic()

        def on_train_begin(self, args, state, control, **kw):
            self.t0 = self.last_save = time.monotonic()

        def on_step_end(self, args, state, control, model=None, **kw):
            now = time.monotonic()
            stop = config.max_minutes is not None and now - self.t0 >= 60 * config.max_minutes
            save = config.checkpoint_minutes is not None and now - self.last_save >= 60 * config.checkpoint_minutes
            stop, save = (bool(v) for v in broadcast([float(stop), float(save)]))
            last = state.global_step >= state.max_steps
            if stop and not last:
                self.stopped = True
                control.should_training_stop = True
            if last or self.stopped:
                control.should_save = False  # the final model is saved next anyway
            elif save:
                control.should_save = True
            if config.eval_steps and state.global_step % config.eval_steps == 0 and not last and not self.stopped:
                evaluate(model, state, "step", None)

        def on_epoch_end(self, args, state, control, model=None, **kw):
            loss_sum, n = tally.take()
            evaluate(model, state, "epoch", loss_sum / n if n else None)
            if state.global_step >= state.max_steps or self.stopped:
                control.should_save = False

        def on_save(self, args, state, control, **kw):
            self.last_save = time.monotonic()

    class Progress(ProgressCallback):
        """The step bar, with the latest training loss as its postfix instead of log lines."""

        def on_log(self, args, state, control, logs=None, **kw):
            if state.is_world_process_zero and self.training_bar is not None and logs and "loss" in logs:
                self.training_bar.set_postfix(loss=f"{logs['loss']:.4f}", refresh=False)

    reports = Reports()
    return reports, Progress()


# ----------------------------------------------------------------------------- the run


def _partial_dir(output: Path) -> Path:
    """``<output>.partial``: checkpoints of a run in progress."""
    return output.with_name(output.name + ".partial")


def check_output(config: FinetuneConfig) -> tuple[Path, Path]:
    """Refuse outputs that would lose something; return ``(output, partial_dir)``.

    Raises:
        MlmtoolError: the output path is a file; it is a non-empty directory and
            ``overwrite`` is off; checkpoints of an earlier run exist and neither
            ``resume`` nor ``overwrite`` is set; ``resume`` finds no checkpoint.
    """
    from transformers.trainer_utils import get_last_checkpoint

    output = Path(config.output)
    partial = _partial_dir(output)
    if output.exists() and not output.is_dir():
        raise MlmtoolError(f"output path '{output}' is a file, not a directory")
    if output.is_dir() and any(output.iterdir()) and not config.overwrite:
        raise MlmtoolError(f"output directory '{output}' is not empty; use --overwrite to replace it "
                           "or choose another --output")
    if partial.exists() and not partial.is_dir():
        raise MlmtoolError(f"'{partial}' (where checkpoints go) is a file; move it away")
    has_ckpt = partial.is_dir() and get_last_checkpoint(str(partial)) is not None
    if config.resume and not has_ckpt:
        raise MlmtoolError(f"nothing to resume: no checkpoint in '{partial}'")
    if has_ckpt and not config.resume and not config.overwrite:
        raise MlmtoolError(f"'{partial}' holds checkpoints of an interrupted run; add --resume to "
                           "continue it or --overwrite to start again")
    return output, partial


def _check_resume(partial: Path, config: FinetuneConfig) -> dict:
    """Compare ``config`` with the interrupted run's; return the saved state.

    Raises:
        MlmtoolError: a setting that shapes the data or the model differs.
    """
    path = partial / _STATE_NAME
    if not path.is_file():
        raise MlmtoolError(f"'{partial}' has checkpoints but no {_STATE_NAME}; use --overwrite to start again")
    saved = json.loads(path.read_text(encoding="utf-8"))
    now = asdict(config)
    for key in _RESUME_KEYS:
        if saved["config"].get(key) != now.get(key):
            raise MlmtoolError(f"--resume: {key} was {saved['config'].get(key)!r} in the interrupted run, "
                               f"now {now.get(key)!r}; use the same settings (or --overwrite to start again)")
    if saved.get("corpus_bytes") is not None and saved["corpus_bytes"] != sum(
            Path(p).stat().st_size for p in config.corpus):
        raise MlmtoolError("--resume: the corpus changed since the interrupted run; "
                           "use the same corpus (or --overwrite to start again)")
    return saved


def _training_args(config: FinetuneConfig, partial: Path, world_hint: int):
    """``TrainingArguments`` for this run (CPU unless CUDA is available; gloo on CPU)."""
    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    save = dict(save_strategy="steps", save_steps=config.save_steps) if config.save_steps \
        else dict(save_strategy="epoch")
    return TrainingArguments(
        output_dir=str(partial),
        per_device_train_batch_size=config.batch_size, num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1, learning_rate=config.default_learning_rate(),
        warmup_steps=config.warmup_ratio, weight_decay=config.weight_decay, lr_scheduler_type="linear",
        optim="adamw_torch", logging_steps=config.logging_steps, save_total_limit=2, **save,
        seed=config.seed, data_seed=config.seed, report_to="none", use_cpu=not cuda,
        ddp_backend=None if cuda or world_hint == 1 else "gloo", ddp_find_unused_parameters=False,
        disable_tqdm=not config.progress, remove_unused_columns=False, dataloader_drop_last=False,
        include_num_input_tokens_seen="non_padding", bf16=config.bf16,
    )


def finetune(config: FinetuneConfig, *, lm: LoadedModel | None = None,
             report: Callable[[str], None] | None = None, callbacks: Sequence[Any] = ()) -> FinetuneResult:
    """Fine-tune (or train from scratch) a masked language model on text files.

    Steps: check the output and corpus; load the start model (:func:`mlmtool.models.load`);
    pack the corpus into chunks and hold ``eval_fraction`` of them out; measure held-out
    loss/perplexity; train with HF ``Trainer`` (loss at masked positions only,
    :func:`masked_lm_loss`); measure again; save model + tokenizer (safetensors) and
    ``training_summary.json`` into ``<output>.partial/final`` and rename it to ``output``.

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
    from transformers import PrinterCallback, ProgressCallback, Trainer

    config.check()
    output, partial = check_output(config)
    files, sample_by = read_corpus(config.corpus)
    saved_state = _check_resume(partial, config) if config.resume else None
    world_hint = int(os.environ.get("WORLD_SIZE", "1"))
    is_main = int(os.environ.get("RANK", "0")) == 0
    emit = _emitter(report if is_main else None)

    if lm is None:
        from ..models import load

        lm = load(config.model, config.lang)
    tokenizer = lm.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise MlmtoolError(f"model '{lm.name}' has no fast tokenizer, which fine-tuning needs")
    limit = lm.max_length
    max_length = config.max_length or min(DEFAULT_MAX_LENGTH, limit)
    if max_length > limit:
        raise MlmtoolError(f"--max-length {max_length} is more than model '{lm.name}' accepts ({limit})")

    transformers.logging.set_verbosity_error()
    chunks = build_chunks([f["path"] for f in files], tokenizer, max_length, sample_by=sample_by,
                          with_offsets=config.whole_word_mask)
    n_tokens = int(sum(chunks["n_tokens"]))
    n_eval = 0 if config.eval_fraction == 0 else max(1, round(len(chunks) * config.eval_fraction))
    if len(chunks) - n_eval < 1:
        raise MlmtoolError(
            f"the corpus is too small: {n_tokens} tokens make {len(chunks)} chunk(s) of up to {max_length} "
            f"tokens, too few to hold {config.eval_fraction:.0%} out for evaluation; add text, lower "
            "--max-length, or use --eval-fraction 0")
    if n_eval:
        split = chunks.train_test_split(test_size=n_eval, seed=config.seed, shuffle=True)
        train_ds, eval_ds = split["train"], split["test"]
    else:
        train_ds, eval_ds = chunks, None
    train_ds = train_ds.remove_columns(["n_tokens"])
    eval_rows = fixed_eval_rows(eval_ds, make_collator(tokenizer, config.mlm_probability, config.whole_word_mask,
                                                       seed=config.seed)) if eval_ds is not None else []
    corpus = CorpusStats(files=files, bytes=sum(f["bytes"] for f in files), tokens=n_tokens,
                         train_chunks=len(train_ds), eval_chunks=n_eval,
                         eval_masked_tokens=sum(sum(1 for x in r["labels"] if x != -100) for r in eval_rows),
                         sample_by=sample_by)
    emit(f"Corpus: {_size(corpus.bytes)}, {n_tokens:,} tokens in {len(chunks):,} chunks of up to "
         f"{max_length} tokens ({corpus.train_chunks:,} for training, {n_eval:,} held out)")

    # model
    fresh_head = not lm.has_mlm_head
    if config.from_scratch:
        model = _new_model(lm, config)
    else:
        model = lm.model
        model.set_attn_implementation("sdpa")
    model.train()
    if config.trainable_layers:
        _freeze_below(model, config.trainable_layers)
    if config.lora:
        model = _lora_model(model, config.lora, fresh_head)
    trainable, total = _count(model)

    args = _training_args(config, partial, world_hint)
    if config.overwrite and not config.resume and partial.exists() and args.process_index == 0:
        shutil.rmtree(partial)
    barrier()
    tally = LossTally()
    undo = install_masked_forward(model, tally)
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, processing_class=tokenizer,
                      data_collator=make_collator(tokenizer, config.mlm_probability, config.whole_word_mask),
                      optimizers=(_optimizer(model, config), None))
    history: list[EpochStats] = []
    reports, progress = _callbacks(trainer, tally, eval_rows, config, emit, history)
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(reports)
    if config.progress:
        trainer.add_callback(progress)
    for cb in callbacks:
        trainer.add_callback(cb)

    resume_from = None
    if config.resume:
        from transformers.trainer_utils import get_last_checkpoint

        resume_from = get_last_checkpoint(str(partial))
        before = EvalResult(**saved_state["before"]) if saved_state.get("before") else None
        emit(f"Resuming from {resume_from}")
    else:
        before = evaluate_mlm(model, eval_rows, max(2 * config.batch_size, 8), tokenizer.pad_token_id or 0)
        if is_main:
            partial.mkdir(parents=True, exist_ok=True)
            state = {"config": asdict(config), "before": asdict(before) if before else None,
                     "corpus_bytes": corpus.bytes}
            (partial / _STATE_NAME).write_text(json.dumps(state, indent=2), encoding="utf-8")
    if before:
        emit(f"Before training: held-out loss {before.loss:.4f}, perplexity {before.perplexity:.2f}")

    start = time.perf_counter()
    try:
        trainer.train(resume_from_checkpoint=resume_from)
    finally:
        undo()
    seconds = time.perf_counter() - start - reports.eval_seconds
    state = trainer.state
    resumed_step = int(resume_from.rsplit("-", 1)[-1]) if resume_from else 0
    history = _history(state.log_history)
    last = history[-1] if history else None
    if last is not None and last.step == state.global_step and last.eval_loss is not None:
        after = EvalResult(loss=last.eval_loss, perplexity=last.eval_perplexity,
                           tokens=before.tokens if before else 0)
    else:
        after = evaluate_mlm(model, eval_rows, max(2 * config.batch_size, 8), tokenizer.pad_token_id or 0)
    checksums = gather_checksum(model)
    session_tokens = state.num_input_tokens_seen - (trainer._initial_num_input_tokens_seen or 0)

    result = FinetuneResult(
        output=str(output), start_model=lm.name, start_source=lm.source, corpus=corpus,
        steps=state.global_step, epochs=round(state.epoch or 0.0, 4), tokens_seen=int(state.num_input_tokens_seen),
        train_seconds=round(seconds, 3), eval_seconds=round(reports.eval_seconds, 3), tokens_per_second=round(session_tokens / max(seconds, 1e-9), 1),
        history=history, before=before, after=after, stopped_early=reports.stopped,
        resumed_from_step=resumed_step, world_size=dist_info()[1], rank_checksums=checksums,
        trainable_parameters=trainable, total_parameters=total, config=asdict(config))
    if is_main:
        _save(model, tokenizer, result, output, partial)
    barrier()
    if not config.from_scratch and lm.model is hf_model(model):
        lm.model.set_attn_implementation("eager")
        lm.model.eval()
    return result


def _history(log_history: list[dict]) -> list[EpochStats]:
    """The :class:`EpochStats` lines logged by this run and any run it resumed."""
    out = []
    for entry in log_history:
        if "mlmtool_kind" not in entry:
            continue
        out.append(EpochStats(epoch=entry.get("mlmtool_epoch", 0.0), step=int(entry.get("mlmtool_step", 0)),
                              train_loss=entry.get("mlmtool_train_loss"), eval_loss=entry.get("mlmtool_eval_loss"),
                              eval_perplexity=entry.get("mlmtool_eval_perplexity"), kind=entry["mlmtool_kind"]))
    return out


def _save(model, tokenizer, result: FinetuneResult, output: Path, partial: Path) -> None:
    """Write model, tokenizer and summary to ``partial/final``, then rename it to ``output``.

    An existing ``output`` (only with ``overwrite``) is moved aside first and deleted after
    the new directory is in place, so an interruption never leaves a half-written model.
    """
    final = partial / "final"
    if final.exists():
        shutil.rmtree(final)
    final.mkdir(parents=True)
    hf = hf_model(model)
    if hf is not model:  # peft: only the adapters (and a fresh head's transform)
        model.save_pretrained(str(final))
        (final / "README.md").unlink(missing_ok=True)  # peft's empty model-card template
    else:
        hf.save_pretrained(str(final))
    tokenizer.save_pretrained(str(final))
    (final / SUMMARY_NAME).write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    old = None
    if output.exists():
        old = partial / "replaced"
        os.replace(output, old)
    output.parent.mkdir(parents=True, exist_ok=True)
    os.replace(final, output)
    shutil.rmtree(partial, ignore_errors=True)


def _size(n: int) -> str:
    """Human-readable byte count (``1.2 MB``)."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} GB"


def _emitter(report: Callable[[str], None] | None) -> Callable[[str], None]:
    """Wrap ``report`` so its lines do not tear a running tqdm progress bar."""
    if report is None:
        return lambda line: None

    def emit(line: str) -> None:
        from tqdm import tqdm

        with tqdm.external_write_mode(file=sys.stderr):
            report(line)

    return emit


def load_summary(path: str | Path) -> dict:
    """Read ``training_summary.json`` from a fine-tuned model directory (or the file itself)."""
    p = Path(path)
    p = p / SUMMARY_NAME if p.is_dir() else p
    return json.loads(p.read_text(encoding="utf-8"))
