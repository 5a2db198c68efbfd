"""Benchmark: ``mlmtool explain`` (SHAP, Partition explainer) with batched model evaluations.

Both runs explain the same 20-word sentence with the same shap masker, explainer, seed and
budget (``max_evals`` 500), on the MiniLM encoder (``minilm`` registry entry: 6 layers,
hidden 384, vocabulary 30,522) with its MLM head tied to the word embeddings. That head is
not trained, so the probabilities mean nothing, but the compute is that of a real
MiniLM-sized masked LM, which is what is timed. The difference is the prediction function:

* mlmtool: :func:`mlmtool.explain.target_probability`: up to 32 masked sentences per
  forward pass, the vocabulary projection at the mask position only;
* reference: the plain function one would write for shap, one sentence per forward pass
  and ``model(...).logits`` (vocabulary projection at every position).

Printed: seconds for each, the ratio, and the largest difference between the two sets of
SHAP values (they must agree). Run: ``python -m scripts.benchmarks.bench --only explain``.
"""

from __future__ import annotations

import time

import numpy as np

TEXT = ("after a long walk along the river the old fisherman sat down on the [MASK] "
        "and watched the boats go by")
MAX_EVALS = 500


def run() -> None:
    import torch

    import mlmtool.analysis.explain as ex
    from mlmtool.models import load

    torch.set_num_threads(max(1, torch.get_num_threads()))
    lm = load("minilm")
    lm.has_mlm_head = True  # fresh head tied to the embeddings: timing only, see docstring
    ex.explain(lm, "the cat sat on the [MASK] .", max_evals=20)  # warm-up: shap import, numba

    t0 = time.perf_counter()
    ours = ex.explain(lm, TEXT, max_evals=MAX_EVALS, batch_size=32)
    t_ours = time.perf_counter() - t0

    def one_by_one(lm_, input_ids, position, target_id, batch_size=32):
        out = []
        with torch.inference_mode():
            for row in np.asarray(input_ids, dtype=np.int64):
                logits = lm_.model(input_ids=torch.from_numpy(row[None])).logits  # [1, seq, vocab]
                out.append(float(logits[0, position].softmax(-1)[target_id]))
        return np.array(out)

    fast = ex.target_probability
    ex.target_probability = one_by_one
    try:
        t0 = time.perf_counter()
        ref = ex.explain(lm, TEXT, target=ours.target, max_evals=MAX_EVALS, batch_size=2)
        t_ref = time.perf_counter() - t0
    finally:
        ex.target_probability = fast
    diff = float(np.abs(ours.word_values - ref.word_values).max())
    scale = float(np.abs(ours.word_values).max())
    print(f"SHAP explanation, {len(ours.words)} words, {ours.evaluations} model evaluations, MiniLM-sized MLM:")
    print(f"  mlmtool (batched, head at the mask only):  {t_ours:6.2f} s")
    print(f"  one sentence per forward, full logits:     {t_ref:6.2f} s")
    print(f"  speed-up: {t_ref / t_ours:.1f}x   (max |difference| of SHAP values {diff:.1e}, "
          f"largest value {scale:.1e})")
