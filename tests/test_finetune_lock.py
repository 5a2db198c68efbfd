"""``mlmtool finetune`` refuses an output folder that a running finetune holds (``filelock``)."""

from __future__ import annotations

import subprocess
import sys

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
