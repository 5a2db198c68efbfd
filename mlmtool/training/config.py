"""The settings of one fine-tuning run: :class:`FinetuneConfig`, its defaults and checks.

Each field carries its command-line spelling and help in ``metadata`` (``flags``, ``help``,
``metavar``; ``min``/``max`` with ``min_open``/``max_open`` for ranges), so
``mlmtool finetune``'s options are generated from this one table
(:mod:`mlmtool.commands.finetune`) and :meth:`FinetuneConfig.check` validates the same
ranges for library callers. This module imports no torch, so ``mlmtool --help`` stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from ..errors import MlmtoolError

__all__ = ["FinetuneConfig", "DEFAULT_MAX_LENGTH"]

#: Default ``max_length``: BERT's pre-training used 128 tokens for 90 % of its steps
#: (Devlin et al. 2019, appendix A.2); attention cost grows with the square of the length.
DEFAULT_MAX_LENGTH = 128


def _opt(default, *flags: str, help: str, **meta):
    """A dataclass field with its CLI spelling (``flags``), ``help`` and range in ``metadata``."""
    return field(default=default, metadata=dict(flags=flags, help=help, **meta))


_AT_LEAST_1 = dict(min=1)
_POSITIVE = dict(min=0, min_open=True)


@dataclass
class FinetuneConfig:
    """Everything one fine-tuning run needs (``mlmtool finetune``'s options are its fields).

    Attributes:
        corpus: UTF-8 text file path(s); one passage per line, or paragraphs separated by a
            blank line.
        output: directory for the trained model (default ``finetuned-model``).
        model: start model: registry name, directory or Hub id; None = registry model for
            ``lang``.
        lang: registry language used when ``model`` is None (default ``"en"``).
        epochs: passes over the training chunks (default 3, at least 1).
        batch_size: chunks per step per process (default 16).
        learning_rate: AdamW peak learning rate; None picks 5e-5 for full fine-tuning (HF
            ``run_mlm.py``), 5e-4 for LoRA (Hu et al. 2021, RoBERTa-base) and 1e-4 from
            scratch (Devlin et al. 2019 pre-training).
        head_learning_rate: peak learning rate for the masked-LM head's own parameters (a
            fresh head learns faster with a larger one, as classifier heads usually get);
            None = ``learning_rate``.
        bf16: train under bfloat16 autocast (``torch.autocast``; weights stay float32). About
            1.8x faster on CPUs with AVX512-BF16/AMX and on recent GPUs; off by default.
        warmup_ratio: share of the steps with linear warm-up (default 0.06, Liu et al. 2019,
            RoBERTa); then linear decay to 0. Library only (no flag).
        weight_decay: AdamW weight decay (default 0.01, Devlin et al. 2019). Library only.
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
        checkpoint_minutes: save a checkpoint at least this often (default 10; None =
            never by time), besides one at each epoch's end.
        save_steps: save a checkpoint every N steps instead of at each epoch's end.
        resume: continue from the last checkpoint in ``<output>.partial/``.
        overwrite: replace an existing non-empty output directory (and any checkpoints of
            an earlier interrupted run).
        progress: show a progress bar (main process only).
    """

    corpus: list[str] = field(default_factory=list)  # CORPUS... on the command line
    output: str = _opt("finetuned-model", "-o", "--output", metavar="DIR", path="dir",
                       help="Directory for the trained model (written only when training is complete).")
    model: str | None = None  # -m/--model and -l/--lang: the shared model_options
    lang: str = "en"
    epochs: int = _opt(3, "-e", "--epochs", help="Passes over the training text.", **_AT_LEAST_1)
    batch_size: int = _opt(16, "-b", "--batch-size", help="Chunks per optimizer step (per process).",
                           **_AT_LEAST_1)
    learning_rate: float | None = _opt(
        None, "--learning-rate", "--lr", **_POSITIVE,
        help="AdamW peak learning rate (linear warm-up, then decay). "
             "Default 5e-5; 5e-4 with --lora; 1e-4 with --from-scratch.")
    head_learning_rate: float | None = _opt(
        None, "--head-lr", **_POSITIVE,
        help="Learning rate for the MLM head's own parameters [default: --lr]; a fresh head "
             "(e.g. minilm's) learns faster with a larger one.")
    bf16: bool = _opt(False, "--bf16", help="Train under bfloat16 autocast (faster on CPUs with "
                      "AVX512-BF16/AMX and recent GPUs; weights stay float32).")
    warmup_ratio: float = field(default=0.06, metadata=dict(min=0, max=1))
    weight_decay: float = field(default=0.01, metadata=dict(min=0))
    max_length: int | None = _opt(None, "--max-length", min=8, unit=" tokens",
                                  help="Tokens per training chunk, special tokens included "
                                       "[default: 128 or the model's limit].")
    mlm_probability: float = _opt(0.15, "--mlm-probability", min=0, max=1, min_open=True, max_open=True,
                                  help="Share of tokens masked (of those 80% [MASK], 10% random, 10% kept).")
    whole_word_mask: bool = _opt(False, "--whole-word-mask", help="Mask all pieces of a word together.")
    eval_fraction: float = _opt(0.1, "--eval-fraction", min=0, max=1, max_open=True,
                                help="Share of the text held out to measure loss and perplexity (0: none).")
    seed: int = _opt(42, "--seed", help="Random seed (split, masking, order).")
    max_steps: int | None = _opt(None, "--max-steps", help="Stop after this many optimizer steps "
                                 "(overrides --epochs).", **_AT_LEAST_1)
    max_minutes: float | None = _opt(None, "--max-minutes", **_POSITIVE, help="Stop cleanly after this "
                                     "many minutes of training; the model is evaluated and saved.")
    trainable_layers: int | None = _opt(None, "--trainable-layers", metavar="N", **_AT_LEAST_1,
                                        help="Train only the top N encoder layers and the MLM head "
                                             "[default: all].")
    lora: int | None = _opt(None, "--lora", metavar="R", help="Train LoRA adapters of rank R (peft) and save "
                            "only those (a few MB).", **_AT_LEAST_1)
    from_scratch: bool = _opt(False, "--from-scratch", help="Train a new small model with the start "
                              "model's tokenizer (see --layers/--heads/--hidden).")
    layers: int = _opt(4, "--layers", help="--from-scratch layers.", **_AT_LEAST_1)
    heads: int = _opt(4, "--heads", help="--from-scratch heads.", **_AT_LEAST_1)
    hidden: int = _opt(256, "--hidden", min=8, help="--from-scratch hidden size (feed-forward 4x).")
    eval_steps: int | None = _opt(None, "--eval-steps", metavar="N", **_AT_LEAST_1,
                                  help="Also measure held-out loss every N steps.")
    logging_steps: int = _opt(10, "--logging-steps", help="Refresh the progress bar's loss every N steps.",
                              **_AT_LEAST_1)
    checkpoint_minutes: float | None = _opt(10.0, "--checkpoint-minutes", **_POSITIVE,
                                            help="Save a checkpoint at least this often (and at each "
                                                 "epoch's end).")
    save_steps: int | None = _opt(None, "--save-steps", metavar="N", **_AT_LEAST_1,
                                  help="Save a checkpoint every N steps instead of at each epoch's end.")
    resume: bool = _opt(False, "--resume", help="Continue an interrupted run from its last checkpoint "
                        "(<output>.partial/).")
    overwrite: bool = _opt(False, "--overwrite", help="Replace an existing output directory (and the "
                           "checkpoints of an interrupted run).")
    progress: bool = _opt(True, "-q", "--quiet", negate=True, help="No progress bar.")

    def check(self) -> None:
        """Raise :class:`MlmtoolError` (one line, naming the parameter) for values no run can use.

        The ranges are those in each field's ``metadata`` (the command line enforces the
        same ones), plus the combinations that exclude each other.
        """
        if not self.corpus:
            raise MlmtoolError("no corpus file given", param="corpus")
        for f in fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if value is None or ("min" not in meta and "max" not in meta):
                continue
            low, high = meta.get("min"), meta.get("max")
            too_low = low is not None and (value <= low if meta.get("min_open") else value < low)
            too_high = high is not None and (value >= high if meta.get("max_open") else value > high)
            if too_low or too_high:
                raise MlmtoolError(f"{f.name} must be {_range_words(meta)} (got {value})", param=f.name)
        if self.lora and self.trainable_layers:
            raise MlmtoolError("lora and trainable_layers exclude each other; choose one", param="lora")
        if self.lora and self.from_scratch:
            raise MlmtoolError("lora adapts a trained model; it cannot be used with from_scratch", param="lora")
        if self.from_scratch and self.hidden % self.heads:
            raise MlmtoolError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})",
                               param="hidden")

    def default_learning_rate(self) -> float:
        """The learning rate used when ``learning_rate`` is None (see the class docstring)."""
        if self.learning_rate is not None:
            return self.learning_rate
        if self.lora:
            return 5e-4
        return 1e-4 if self.from_scratch else 5e-5

    @property
    def eval_batch_size(self) -> int:
        """Rows per held-out forward pass: ``max(2 * batch_size, 8)`` (no gradients to keep)."""
        return max(2 * self.batch_size, 8)


def _range_words(meta) -> str:
    """``at least 1``, ``positive``, ``in (0, 1)``: the range of a field's ``metadata``."""
    low, high, unit = meta.get("min"), meta.get("max"), meta.get("unit", "")
    if high is None:
        if meta.get("min_open"):
            return "positive" if low == 0 else f"above {low}{unit}"
        return f"at least {low}{unit}"
    if low is None:
        return f"below {high}{unit}" if meta.get("max_open") else f"at most {high}{unit}"
    return f"in {'(' if meta.get('min_open') else '['}{low}, {high}{')' if meta.get('max_open') else ']'}"
