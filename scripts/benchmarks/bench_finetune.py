"""Benchmark: ``mlmtool finetune`` vs a plain HF ``Trainer`` on the same model, text and steps.

Both runs start from the same MiniLM weights (``minilm`` registry entry: 6 layers, hidden
384, vocabulary 30,522, fresh MLM head tied to the word embeddings), train on the same
chunks in the same order with the same masking and dropout random streams (both seeded by
``Trainer``), with the same AdamW settings, and are measured on the same fixed held-out
masking. The only difference is the forward pass:

* plain: ``AutoModelForMaskedLM`` + ``DataCollatorForLanguageModeling`` — the MLM head
  projects every position to the vocabulary, then the loss keeps the masked ~15 %;
* mlmtool: :func:`mlmtool.training.loss.masked_lm_loss` — the head runs at masked positions only.

Printed: training tokens/s (non-padding tokens over the training loop's wall time, held-out
evaluation excluded) of both and their ratio (target >= 1.5x), and held-out loss after N
steps (target: mlmtool no worse than plain; the two should agree to rounding).

Corpus: docstrings of the Python standard library (English prose found on every machine
with Python), or the file in ``MLMTOOL_BENCH_CORPUS``. ``MLMTOOL_BENCH_STEPS`` (default 20)
sets N. Run: ``python -m scripts.benchmarks.bench --only finetune``.
"""

from __future__ import annotations

import ast
import copy
import os
import re
import sysconfig
import tempfile
import time
from pathlib import Path

BATCH, MAX_LENGTH, LR, SEED = 16, 128, 1e-4, 0


def stdlib_docstrings(limit_bytes: int = 400_000) -> str:
    """Paragraphs (>= 8 words, no doctest lines) of the stdlib's docstrings, sorted by file."""
    out, total = [], 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for para in re.split(r"\n\s*\n", ast.get_docstring(node) or ""):
                para = " ".join(para.split())
                if len(para.split()) >= 8 and not para.startswith((">>>", "...")):
                    out.append(para)
                    total += len(para) + 1
                    if total >= limit_bytes:
                        return "\n".join(out) + "\n"
    return "\n".join(out) + "\n"


def _plain_run(model, tokenizer, train_ds, eval_rows, steps: int, out_dir: str):
    """The reference: HF Trainer + DataCollatorForLanguageModeling + AutoModelForMaskedLM."""
    from transformers import DataCollatorForLanguageModeling, PrinterCallback, Trainer, TrainingArguments

    from mlmtool.training.loss import evaluate_mlm

    args = TrainingArguments(
        output_dir=out_dir, per_device_train_batch_size=BATCH, max_steps=steps, learning_rate=LR,
        warmup_steps=0.06, weight_decay=0.01, lr_scheduler_type="linear", optim="adamw_torch_fused",
        logging_steps=10, save_strategy="no", seed=SEED, data_seed=SEED, report_to="none", use_cpu=True,
        disable_tqdm=True, remove_unused_columns=False, include_num_input_tokens_seen="non_padding")
    model.train()
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, processing_class=tokenizer,
                      data_collator=DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15))
    trainer.remove_callback(PrinterCallback)  # no log dicts on stdout
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    after = evaluate_mlm(model, eval_rows, 2 * BATCH, tokenizer.pad_token_id)
    return trainer.state.num_input_tokens_seen / seconds, after


def head_step_times(model, tokenizer, rows: list[dict], repeats: int = 3) -> tuple[float, float]:
    """Seconds of one forward + backward on the same masked batch, without the optimizer:
    ``(plain, masked)``: the whole MLM head at every position (what ``AutoModelForMaskedLM``
    with ``labels`` does) vs the head at the masked positions only
    (:func:`mlmtool.training.loss.masked_lm_loss`). ``plain / masked`` is what the
    masked-positions head alone saves per step; the two training loops differ in more than
    that (measured ratios came out above it), so it is a reading, not a bound. Best of ``repeats``.

    Args:
        rows: ``{"input_ids", "labels"}`` rows of equal length (masked chunks, no padding).
    """
    import torch

    from mlmtool.training.loss import masked_lm_loss

    batch = {k: torch.tensor([r[k] for r in rows]) for k in ("input_ids", "labels")}
    batch["attention_mask"] = torch.ones_like(batch["input_ids"])
    model.train()

    def plain():
        model(**batch).loss.backward()

    def masked():
        loss_sum, n = masked_lm_loss(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
        (loss_sum / n).backward()

    out = []
    for fn in (plain, masked):
        fn()  # warm-up
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        model.zero_grad(set_to_none=True)
        out.append(best)
    return out[0], out[1]


def run() -> None:
    """Train MiniLM N steps both ways; print tokens/s, ratio and held-out loss."""
    import torch

    from mlmtool.training.config import FinetuneConfig
    from mlmtool.training.data import build_chunks, fixed_eval_rows, make_collator
    from mlmtool.training.train import finetune
    from mlmtool.models import load

    steps = int(os.environ.get("MLMTOOL_BENCH_STEPS", "20"))
    with tempfile.TemporaryDirectory(prefix="mlmtool-bench-ft-") as tmp:
        corpus = os.environ.get("MLMTOOL_BENCH_CORPUS")
        if not corpus:
            corpus = os.path.join(tmp, "corpus.txt")
            Path(corpus).write_text(stdlib_docstrings(), encoding="utf-8")
        torch.manual_seed(SEED)
        lm = load("minilm")
        plain_model = copy.deepcopy(lm.model)
        plain_model.set_attn_implementation("sdpa")  # what from_pretrained gives by default

        cfg = FinetuneConfig(corpus=[corpus], output=os.path.join(tmp, "ours"), max_steps=steps,
                             batch_size=BATCH, max_length=MAX_LENGTH, learning_rate=LR, seed=SEED,
                             progress=False, checkpoint_minutes=None)
        ours = finetune(cfg, lm=lm)
        print(f"   corpus: {ours.corpus.bytes / 1e3:.0f} KB, {ours.corpus.tokens:,} tokens; "
              f"{steps} steps x {BATCH} chunks x <= {MAX_LENGTH} tokens; model minilm "
              f"({ours.total_parameters / 1e6:.1f}M parameters)", flush=True)

        # The same split and held-out masking as the mlmtool run (same seed, same functions).
        chunks = build_chunks([corpus], lm.tokenizer, MAX_LENGTH, sample_by=ours.corpus.sample_by)
        split = chunks.train_test_split(test_size=ours.corpus.eval_chunks, seed=SEED, shuffle=True)
        eval_rows = fixed_eval_rows(split["test"], make_collator(lm.tokenizer, 0.15, seed=SEED))
        train_ds = split["train"].remove_columns(["n_tokens"])
        plain_tps, plain_after = _plain_run(plain_model, lm.tokenizer, train_ds, eval_rows, steps,
                                            os.path.join(tmp, "plain"))

        step_rows = [r for r in eval_rows if len(r["input_ids"]) == MAX_LENGTH][:BATCH]
        t_plain, t_masked = head_step_times(plain_model, lm.tokenizer, step_rows) if step_rows else (0.0, 0.0)

    ratio = ours.tokens_per_second / plain_tps
    print(f"   held-out loss before: {ours.before.loss:.4f} (perplexity {ours.before.perplexity:.1f}), "
          f"{ours.before.tokens:,} masked tokens")
    print(f"   mlmtool finetune (head at masked positions): {ours.tokens_per_second:,.0f} tokens/s, "
          f"held-out loss after {steps} steps {ours.after.loss:.4f}")
    print(f"   plain HF Trainer + AutoModelForMaskedLM:     {plain_tps:,.0f} tokens/s, "
          f"held-out loss after {steps} steps {plain_after.loss:.4f}")
    print(f"   ratio: {ratio:.2f}x tokens/s (target >= 1.5x); held-out loss mlmtool - plain = "
          f"{ours.after.loss - plain_after.loss:+.4f} (target <= 0, same within rounding)", flush=True)
    if t_masked:
        print(f"   one forward + backward of {BATCH} x {MAX_LENGTH} tokens, no optimizer: head at every position "
              f"{t_plain:.3f} s, at masked positions {t_masked:.3f} s ({t_plain / t_masked:.2f}x: what the head "
              f"alone saves; the training loop's other costs differ too, so this is not a bound)", flush=True)


if __name__ == "__main__":
    run()
