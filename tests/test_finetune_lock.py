"""``mlmtool finetune`` refuses an output folder that a running finetune holds (``filelock``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import CORPUS

HOLD = "import sys, filelock\nwith filelock.FileLock(sys.argv[1]):\n    print('locked', flush=True)\n    sys.stdin.read()"


def test_second_finetune_on_a_locked_output_is_refused(tiny_bert_dir, runner, tmp_path):
    from mlmtool.cli import cli

    (tmp_path / "c.txt").write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    # another process holds the lock, as a running finetune does (it says so, then waits for stdin)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out) + ".lock"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        r = runner.invoke(cli, ["finetune", str(tmp_path / "c.txt"), "-m", str(tiny_bert_dir), "-o", str(out),
                                "--max-steps", "1"])
    finally:
        holder.communicate("")
    assert r.exit_code == 2
    assert r.output.strip().count("\n") == 0 and "another finetune" in r.output
    assert not out.exists()


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_signal_saves_a_checkpoint_and_resume_continues(tiny_bert_dir, corpus, tmp_path, signame):
    """SIGTERM (a cluster scheduler) or Ctrl-C at step 2: the step finishes, a checkpoint is
    saved, training stops with KeyboardInterrupt; ``resume`` continues from step 2."""
    import os
    import signal

    from transformers import TrainerCallback

    from mlmtool.training.config import FinetuneConfig
    from mlmtool.training.train import finetune

    class SignalAt(TrainerCallback):  # the process signals itself, at a step the test chooses
        def on_step_begin(self, args, state, control, **kw):  # during step 2
            if state.global_step == 1 and not getattr(self, "sent", False):
                self.sent = True
                os.kill(os.getpid(), getattr(signal, signame))

    config = dict(corpus=[str(corpus)], model=str(tiny_bert_dir), output=str(tmp_path / "out"), max_length=32,
                  batch_size=16, progress=False, checkpoint_minutes=None, max_steps=4)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        finetune(FinetuneConfig(**config), callbacks=[SignalAt()])
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored
    assert (tmp_path / "out.partial" / "checkpoint-2").is_dir() and not (tmp_path / "out").exists()
    result = finetune(FinetuneConfig(**config, resume=True))
    assert (result.resumed_from_step, result.steps) == (2, 4)
