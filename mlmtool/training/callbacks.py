"""HF ``Trainer`` callbacks of a fine-tuning run, and the report lines they write.

* :class:`Evaluation`: held-out loss at each epoch's end (with the epoch's training loss)
  and every ``eval_steps``; one report line each; the numbers are logged into
  ``trainer.state.log_history`` (``mlmtool_*`` keys, kept in checkpoints) so a resumed run
  keeps its history (:func:`read_history`).
* :class:`TimeLimit`: ``max_minutes``, stop cleanly (then evaluated and saved as complete).
* :class:`Checkpoints`: one at least every ``checkpoint_minutes``; none right before the
  final save.
* :class:`Progress`: the step bar with the latest loss as postfix instead of log lines.

Decisions taken from a clock are summed over processes (``Accelerator.reduce``), so every
rank stops or saves at the same step.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

from transformers import PrinterCallback, ProgressCallback, TrainerCallback

from .loss import EvalResult, LossTally


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


def _any_process(trainer, flag: bool) -> bool:
    """True on every process when ``flag`` is True on any of them."""
    import torch

    acc = trainer.accelerator
    if acc.num_processes == 1:
        return flag
    return bool(acc.reduce(torch.tensor([float(flag)], device=acc.device), reduction="sum").item() > 0)


class Evaluation(TrainerCallback):
    """Held-out loss at each epoch's end and every ``eval_steps``; a report line for each.

    Args:
        trainer: the run's ``Trainer`` (for ``log`` and its ``accelerator``).
        tally: the training loss sums (:class:`LossTally`) taken at each epoch's end.
        held_out: measures the held-out loss (None without a split).
        eval_steps: also evaluate every N steps (not at the last one: the epoch end does).
        emit: where the report lines go.

    Attributes:
        seconds: wall time spent evaluating (to leave out of the training time).
        tokens_at_start: training tokens already seen when ``train()`` began (so a resumed
            run's tokens/s counts only its own).
    """

    def __init__(self, trainer, tally: LossTally, held_out: Callable[[], EvalResult | None],
                 eval_steps: int | None, emit: Callable[[str], None]):
        self.trainer, self.tally, self.held_out = trainer, tally, held_out
        self.eval_steps, self.emit = eval_steps, emit
        self.seconds = 0.0  # wall time spent evaluating
        self.tokens_at_start = 0  # tokens seen before this train() call (a resumed run's earlier ones)

    def on_train_begin(self, args, state, control, **kw):
        self.tokens_at_start = state.num_input_tokens_seen  # after Trainer loaded a checkpoint's state

    def on_step_end(self, args, state, control, **kw):
        if self.eval_steps and state.global_step % self.eval_steps == 0 and not control.should_training_stop:
            self._evaluate(state, "step", None)

    def on_epoch_end(self, args, state, control, **kw):
        loss_sum, n = self.tally.take(self.trainer.accelerator)
        self._evaluate(state, "epoch", loss_sum / n if n else None)

    def _evaluate(self, state, kind: str, train_loss: float | None) -> None:
        t0 = time.perf_counter()
        res = self.held_out()
        self.seconds += time.perf_counter() - t0
        stats = EpochStats(epoch=round(state.epoch or 0.0, 4), step=state.global_step, train_loss=train_loss,
                           eval_loss=res.loss if res else None,
                           eval_perplexity=res.perplexity if res else None, kind=kind)
        self.trainer.log({"mlmtool_" + k: v for k, v in asdict(stats).items() if v is not None and k != "kind"}
                         | {"mlmtool_kind": kind})
        parts = [f"Epoch {stats.epoch:g}" if kind == "epoch" else f"Step {stats.step}"]
        if train_loss is not None:
            parts.append(f"Loss: {train_loss:.4f}")
        if res:
            parts.append(f"held-out loss: {res.loss:.4f}, perplexity: {res.perplexity:.2f}")
        self.emit(", ".join(parts))


class TimeLimit(TrainerCallback):
    """Stop training cleanly once ``minutes`` of training have passed (``stopped`` says so)."""

    def __init__(self, trainer, minutes: float):
        self.trainer, self.minutes = trainer, minutes
        self.stopped = False
        self.t0 = time.monotonic()

    def on_train_begin(self, args, state, control, **kw):
        self.t0 = time.monotonic()

    def on_step_end(self, args, state, control, **kw):
        due = _any_process(self.trainer, time.monotonic() - self.t0 >= 60 * self.minutes)
        if due and not control.should_training_stop:
            self.stopped = control.should_training_stop = True


class Checkpoints(TrainerCallback):
    """A checkpoint at least every ``minutes`` (None: only Trainer's own), none before the end.

    Added after :class:`TimeLimit`: when training stops at this step (last step or time
    limit), the final model is saved next anyway, so no checkpoint is written.
    """

    def __init__(self, trainer, minutes: float | None):
        self.trainer, self.minutes = trainer, minutes
        self.last_save = time.monotonic()

    def on_train_begin(self, args, state, control, **kw):
        self.last_save = time.monotonic()

    def on_step_end(self, args, state, control, **kw):
        due = self.minutes is not None and _any_process(
            self.trainer, time.monotonic() - self.last_save >= 60 * self.minutes)
        if control.should_training_stop:
            control.should_save = False
        elif due:
            control.should_save = True

    def on_epoch_end(self, args, state, control, **kw):
        if control.should_training_stop:
            control.should_save = False

    def on_save(self, args, state, control, **kw):
        self.last_save = time.monotonic()


class StopOnSignal(TrainerCallback):
    """Ctrl-C (SIGINT) or SIGTERM (what cluster schedulers send before they kill) during
    training: finish the current step, save a checkpoint in ``<output>.partial/``, stop.

    The handlers are installed at the start of training and restored at its end (main thread
    only); every process stops at the same step. :func:`mlmtool.training.train.finetune`
    then raises ``KeyboardInterrupt``, so the command says how to ``--resume``.
    """

    def __init__(self, trainer):
        self.trainer, self.requested, self.stopped, self._before = trainer, False, False, {}

    def _request(self, signum, frame):
        self.requested = True

    def on_train_begin(self, args, state, control, **kw):
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._before[sig] = signal.signal(sig, self._request)
            except ValueError:  # not the main thread: leave the signals alone
                return

    def on_step_end(self, args, state, control, **kw):
        if _any_process(self.trainer, self.requested):
            self.stopped = control.should_save = control.should_training_stop = True

    def on_train_end(self, args, state, control, **kw):
        import signal

        for sig, handler in self._before.items():
            signal.signal(sig, handler)
        self._before = {}


class Progress(ProgressCallback):
    """The step bar, with the latest training loss as its postfix instead of log lines."""

    def on_log(self, args, state, control, logs=None, **kw):
        if state.is_world_process_zero and self.training_bar is not None and logs and "loss" in logs:
            self.training_bar.set_postfix(loss=f"{logs['loss']:.4f}", refresh=False)


def add_callbacks(trainer, config, tally: LossTally, held_out: Callable[[], EvalResult | None],
                  emit: Callable[[str], None], extra: Sequence = ()) -> tuple[Evaluation, TimeLimit | None]:
    """Replace Trainer's printing callbacks with this module's, then add ``extra``.

    Order matters: :class:`TimeLimit` decides to stop before :class:`Checkpoints` and
    :class:`Evaluation` look at ``control.should_training_stop``.

    Returns:
        ``(evaluation, time_limit)``: for the evaluation time and whether the limit stopped
        training (None without ``config.max_minutes``).
    """
    limit = TimeLimit(trainer, config.max_minutes) if config.max_minutes is not None else None
    evaluation = Evaluation(trainer, tally, held_out, config.eval_steps, emit)
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    for cb in [limit, Checkpoints(trainer, config.checkpoint_minutes), evaluation,
               Progress() if config.progress else None, StopOnSignal(trainer), *extra]:
        if cb is not None:
            trainer.add_callback(cb)
    return evaluation, limit


def read_history(log_history: list[dict]) -> list[EpochStats]:
    """The :class:`EpochStats` that :class:`Evaluation` logged (this run and any it resumed)."""
    return [EpochStats(epoch=e.get("mlmtool_epoch", 0.0), step=int(e.get("mlmtool_step", 0)),
                       train_loss=e.get("mlmtool_train_loss"), eval_loss=e.get("mlmtool_eval_loss"),
                       eval_perplexity=e.get("mlmtool_eval_perplexity"), kind=e["mlmtool_kind"])
            for e in log_history if "mlmtool_kind" in e]


def emitter(report: Callable[[str], None] | None) -> Callable[[str], None]:
    """Wrap ``report`` so its lines do not tear a running tqdm progress bar (None: drop lines)."""
    if report is None:
        return lambda line: None

    def emit(line: str) -> None:
        from tqdm import tqdm

        with tqdm.external_write_mode(file=sys.stderr):
            report(line)

    return emit
