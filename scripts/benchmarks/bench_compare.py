"""Benchmark: compare two 6 x 12 models (minilm and en-mini, both offline) on 100 sentences.

mlmtool runs :func:`mlmtool.compare_models`: one batched, length-bucketed pass per model over
all sentences (the forward core; counted here with a forward hook on each encoder) and the
Jensen-Shannon distance of every head's rows at once (scipy with ``axis=-1`` on
``[layers, heads, seq, seq]``). The reference is the loop a notebook writes: one forward
pass per sentence and model (HF ``output_attentions=True``), then a Python loop over layers
and heads calling scipy per head, timed on the first 20 sentences (it takes ~1 s a sentence
on 2 busy cores) and compared per sentence. Both give the same distances (checked here).

Run: ``python -m scripts.benchmarks.bench_compare`` (or ``python -m scripts.benchmarks.bench --only compare``).
"""

from __future__ import annotations

import time

import numpy as np

N_SENTENCES = 100
#: Sentences the (slow) reference loop runs on; the speed-up is per sentence.
N_REFERENCE = 20


def naive_distances(lm_a, lm_b, sentences: list[str]) -> np.ndarray:
    """Reference: per sentence one unbatched forward pass per model, then a loop over heads."""
    import torch
    from scipy.spatial.distance import jensenshannon

    L, H = lm_a.num_layers, lm_a.num_heads
    total = np.zeros((L, H))
    for text in sentences:
        enc = lm_a.tokenizer(text, return_tensors="pt")
        with torch.inference_mode():
            att_a = lm_a.encoder(**enc, output_attentions=True).attentions
            att_b = lm_b.encoder(**enc, output_attentions=True).attentions
        for l in range(L):
            a, b = att_a[l][0].double().numpy(), att_b[l][0].double().numpy()
            for h in range(H):
                total[l, h] += np.nan_to_num(jensenshannon(a[h], b[h], base=2, axis=-1)).mean()
    return total / len(sentences)


def _count_calls(lm) -> list[int]:
    """A one-element counter incremented on every call of ``lm``'s encoder."""
    calls = [0]
    lm.encoder.register_forward_pre_hook(lambda module, args: calls.__setitem__(0, calls[0] + 1))
    return calls


def run() -> None:
    import torch

    from mlmtool.analysis.compare import compare_models
    from mlmtool.analysis.heads.sentences import default_sentences
    from mlmtool.models import load

    lm_a, lm_b = load("minilm"), load("en-mini")
    sentences = default_sentences("en")[:N_SENTENCES]
    compare_models(lm_a, lm_b, sentences[:4])  # warm-up (first-call allocations)
    calls_a, calls_b = _count_calls(lm_a), _count_calls(lm_b)
    t0 = time.perf_counter()
    res = compare_models(lm_a, lm_b, sentences, batch_size=32)
    t_ours = time.perf_counter() - t0
    passes = (calls_a[0], calls_b[0])
    t0 = time.perf_counter()
    ref = naive_distances(lm_a, lm_b, sentences[:N_REFERENCE])
    t_ref = (time.perf_counter() - t0) * len(sentences) / N_REFERENCE
    diff = float(np.abs(res.per_sentence[:N_REFERENCE].mean(0) - ref).max())
    batches = -(-len(sentences) // 32)
    print(f"compare: {len(sentences)} sentences, '{lm_a.name}' vs '{lm_b.name}' ({lm_a.num_layers} layers x "
          f"{lm_a.num_heads} heads), {torch.get_num_threads()} torch threads:")
    print(f"  mlmtool compare_models (one batched pass per model): {t_ours:6.2f} s  "
          f"(encoder calls {passes[0]} + {passes[1]} = {batches} batches of <= 32 per model)")
    print(f"  per-sentence forward + per-head scipy loop:          {t_ref:6.2f} s  "
          f"(timed on {N_REFERENCE} sentences, scaled to {len(sentences)})")
    print(f"  speed-up: {t_ref / t_ours:.1f}x   (largest distance difference: {diff:.1e})")
    (l, h, d), = res.top(1)
    print(f"  most changed head: L{l}-H{h}, mean Jensen-Shannon distance {d:.3f}; "
          f"least: {float(res.distance.min()):.3f}")


if __name__ == "__main__":
    run()
