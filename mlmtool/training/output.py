"""What a fine-tuning run leaves behind, and the checks that keep it from losing anything.

* :func:`check_output`: refuse an output that is a file, a non-empty directory (without
  ``overwrite``), or leftover checkpoints (without ``resume``/``overwrite``).
* :func:`check_resume` / :func:`write_state`: ``<output>.partial/mlmtool_finetune.json``
  records the settings that shape the data and the model, so ``resume`` continues the same run.
* :func:`save`: model + tokenizer (safetensors) + ``training_summary.json`` written to
  ``<output>.partial/final`` and renamed into place only when complete.
* :class:`FinetuneResult` (the summary) and :func:`load_summary`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.forward import unwrap
from ..errors import MlmtoolError
from .callbacks import EpochStats
from .config import FinetuneConfig
from .data import CorpusStats
from .loss import EvalResult

__all__ = ["FinetuneResult", "SUMMARY_NAME", "check_output", "check_resume", "write_state", "save",
           "load_summary"]

#: Name of the JSON summary written next to the model.
SUMMARY_NAME = "training_summary.json"
#: State file kept in ``<output>.partial/`` so ``resume`` can check it continues the same run.
STATE_NAME = "mlmtool_finetune.json"
#: Config fields that must not change between a run and its ``resume``.
RESUME_KEYS = ("model", "lang", "from_scratch", "layers", "heads", "hidden", "lora", "max_length",
               "whole_word_mask", "mlm_probability", "trainable_layers", "eval_fraction", "seed",
               "batch_size")


@dataclass
class FinetuneResult:
    """What :func:`mlmtool.training.train.finetune` did (also written as ``training_summary.json``).

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

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (UTF-8; the ``training_summary.json`` format, read back
        by :func:`load_summary`) to ``path`` and return the path.

        Raises:
            OSError: the file cannot be written.
        """
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return path


def partial_dir(output: Path) -> Path:
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
    partial = partial_dir(output)
    if output.exists() and not output.is_dir():
        raise MlmtoolError(f"output '{output}' is a file, not a directory", param="output")
    if output.is_dir() and any(output.iterdir()) and not config.overwrite:
        raise MlmtoolError(f"output '{output}' is not empty; replace it with overwrite, "
                           "or choose another output", param="output")
    if partial.exists() and not partial.is_dir():
        raise MlmtoolError(f"'{partial}' (where checkpoints go) is a file; move it away")
    has_ckpt = partial.is_dir() and get_last_checkpoint(str(partial)) is not None
    if config.resume and not has_ckpt:
        raise MlmtoolError(f"resume: no checkpoint to resume in '{partial}'", param="resume")
    if has_ckpt and not config.resume and not config.overwrite:
        raise MlmtoolError(f"'{partial}' holds checkpoints of an interrupted run; continue it with resume, "
                           "or start again with overwrite")
    return output, partial


def check_resume(partial: Path, config: FinetuneConfig) -> dict:
    """Compare ``config`` with the interrupted run's; return the saved state.

    Raises:
        MlmtoolError: a setting that shapes the data or the model differs, or the corpus
            changed size.
    """
    path = partial / STATE_NAME
    if not path.is_file():
        raise MlmtoolError(f"resume: '{partial}' has checkpoints but no {STATE_NAME}; use overwrite to "
                           "start again", param="resume")
    saved = json.loads(path.read_text(encoding="utf-8"))
    now = asdict(config)
    for key in RESUME_KEYS:
        if saved["config"].get(key) != now.get(key):
            raise MlmtoolError(f"resume: {key} was {saved['config'].get(key)!r} in the interrupted run, "
                               f"now {now.get(key)!r}; use the same settings (or overwrite to start again)",
                               param="resume")
    if saved.get("corpus_bytes") is not None and saved["corpus_bytes"] != sum(
            Path(p).stat().st_size for p in config.corpus):
        raise MlmtoolError("resume: the corpus changed since the interrupted run; "
                           "use the same corpus (or overwrite to start again)", param="resume")
    return saved


def write_state(partial: Path, config: FinetuneConfig, before: EvalResult | None, corpus_bytes: int) -> None:
    """Record a fresh run's settings and "before" numbers for a later :func:`check_resume`."""
    partial.mkdir(parents=True, exist_ok=True)
    state = {"config": asdict(config), "before": asdict(before) if before else None, "corpus_bytes": corpus_bytes}
    (partial / STATE_NAME).write_text(json.dumps(state, indent=2), encoding="utf-8")


def save(model, tokenizer, result: FinetuneResult, output: Path, partial: Path) -> None:
    """Write model, tokenizer and summary to ``partial/final``, then rename it to ``output``.

    A ``peft`` model saves only its adapters (and a fresh head's transform). An existing
    ``output`` (only with ``overwrite``) is moved aside first and deleted after the new
    directory is in place, so an interruption never leaves a half-written model.
    """
    final = partial / "final"
    if final.exists():
        shutil.rmtree(final)
    final.mkdir(parents=True)
    hf = unwrap(model)
    if hf is not model:  # peft: only the adapters
        model.save_pretrained(str(final))
        (final / "README.md").unlink(missing_ok=True)  # peft's empty model-card template
    else:
        hf.save_pretrained(str(final))
    tokenizer.save_pretrained(str(final))
    result.save(final / SUMMARY_NAME)
    if output.exists():
        os.replace(output, partial / "replaced")
    output.parent.mkdir(parents=True, exist_ok=True)
    os.replace(final, output)
    shutil.rmtree(partial, ignore_errors=True)


def load_summary(path: str | Path) -> dict:
    """Read ``training_summary.json`` from a fine-tuned model directory (or the file itself)."""
    p = Path(path)
    p = p / SUMMARY_NAME if p.is_dir() else p
    return json.loads(p.read_text(encoding="utf-8"))
