"""``torchrun --nproc_per_node 2 -m mlmtool finetune``: two CPU processes (gloo), tiny model.

Checks that data-parallel training through HF Trainer works unchanged: both ranks end with
the same parameters (their checksums, gathered by :func:`mlmtool.training.train.finetune`, agree),
exactly one model directory is written (by rank 0) and no checkpoint directory is left.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest

from conftest import CORPUS


@pytest.mark.slow
def test_torchrun_two_cpu_processes_agree_and_save_one_model(tmp_path, tiny_bert_dir):
    corpus = tmp_path / "corpus.txt"
    rng = random.Random(0)
    corpus.write_text("\n".join(rng.choice(CORPUS) for _ in range(300)) + "\n", encoding="utf-8")
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "mlmtool", "finetune", str(corpus), "-m", str(tiny_bert_dir), "-o", "dist-out",
           "--max-steps", "6", "--max-length", "32", "--lr", "3e-3", "--eval-steps", "3", "-q"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    summary = json.loads((tmp_path / "dist-out" / "training_summary.json").read_text())
    assert summary["world_size"] == 2
    a, b = summary["rank_checksums"]
    assert a == b  # identical parameters on both ranks
    assert summary["steps"] == 6
    # 2 processes x 16 chunks per step: twice the tokens of one process' batches
    assert summary["tokens_seen"] > 6 * 16 * 20
    assert summary["after"]["loss"] < summary["before"]["loss"]
    # printed once (rank 0), not once per process
    assert proc.stdout.count("Epoch 1, Loss: ") == 1 and proc.stdout.count("Held-out perplexity") == 1
    entries = sorted(p.name for p in tmp_path.iterdir())
    assert entries == ["corpus.txt", "dist-out"]
    assert (tmp_path / "dist-out" / "model.safetensors").is_file()
