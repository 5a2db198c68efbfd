"""Benchmark: score every head of the MiniLM encoder (6 x 12) over 300 shipped sentences.

mlmtool runs :func:`mlmtool.score_heads`: batched, length-bucketed forward passes
(the forward core, ``mlmtool.core.forward``) and NumPy metrics over all heads of a sentence at once. The
reference is the loop most notebooks write: one forward pass per sentence, then a Python
loop over layers and heads computing the word-level matrix and each metric per head (NumPy
inside the loop). Both produce the same numbers (checked here). Target: mlmtool under 30 s
on 2 cores, including the report files.

Also prints the proof for the report: the top next-/previous-word heads and how often their
attention peaks at offset +1 / -1.
"""

from __future__ import annotations

import tempfile
import time

import numpy as np

N_SENTENCES = 300


def naive_scores(lm, sentences: list[str]) -> dict[str, np.ndarray]:
    """Reference: per sentence one forward pass; per layer and head a Python loop with NumPy
    inside (word matrix ``M_mean @ A @ M.T``, then each metric). Returns ``{metric: [L, H]}``."""
    import torch

    from mlmtool.analysis.heads.metrics import is_punctuation
    from mlmtool.tokens import word_pieces

    L, H = lm.num_layers, lm.num_heads
    sums = {m: np.zeros((L, H)) for m in ("prev", "next", "self", "cls", "sep", "punct", "entropy")}
    counts = {m: 0 for m in sums}
    for text in sentences:
        enc = lm.tokenizer(text, return_tensors="pt")
        with torch.inference_mode():
            att = lm.encoder(**enc, output_attentions=True).attentions
        word_ids = enc.word_ids(0)
        seq = len(word_ids)
        units = [[0]] + word_pieces(word_ids) + [[seq - 1]]
        member = np.zeros((len(units), seq))
        for u, pos in enumerate(units):
            member[u, pos] = 1
        mean_rows = member / member.sum(1, keepdims=True)
        ids = enc["input_ids"][0].tolist()
        names = [""] + ["".join(lm.tokenizer.convert_ids_to_tokens([ids[p] for p in pos])).replace("##", "")
                        for pos in units[1:-1]] + [""]
        words = list(range(1, len(units) - 1))
        punct = [u for u in words if is_punctuation(names[u])]
        n = len(words)
        for l in range(L):
            a_layer = att[l][0].numpy()
            for h in range(H):
                w = mean_rows @ a_layer[h] @ member.T
                if n >= 2:
                    sums["next"][l, h] += np.mean([w[words[i], words[i + 1]] for i in range(n - 1)])
                    sums["prev"][l, h] += np.mean([w[words[i + 1], words[i]] for i in range(n - 1)])
                sums["self"][l, h] += np.mean([w[u, u] for u in words])
                sums["cls"][l, h] += np.mean([w[u, 0] for u in words])
                sums["sep"][l, h] += np.mean([w[u, len(units) - 1] for u in words])
                if punct:
                    sums["punct"][l, h] += np.mean([w[u, punct].sum() for u in words])
                rows = np.clip(w[words], 1e-12, 1)
                sums["entropy"][l, h] += float(np.mean(-(w[words] * np.log2(rows)).sum(1)))
        for m in ("self", "cls", "sep", "entropy"):
            counts[m] += 1
        counts["next"] += n >= 2
        counts["prev"] += n >= 2
        counts["punct"] += bool(punct)
    return {m: sums[m] / max(counts[m], 1) for m in sums}


def run() -> None:
    import torch

    from mlmtool.analysis.heads.metrics import PATTERNS
    from mlmtool.analysis.heads.run import score_heads
    from mlmtool.analysis.heads.scores import head_labels
    from mlmtool.analysis.heads.sentences import default_sentences
    from mlmtool.models import load
    from mlmtool.render.heads_view import save_heads_report

    lm = load("minilm")
    sentences = default_sentences("en")[:N_SENTENCES]
    score_heads(lm, sentences[:8])  # warm-up (first-call allocations)
    t0 = time.perf_counter()
    scores = score_heads(lm, sentences)
    t_score = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        save_heads_report(scores, out)
        t_save = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = naive_scores(lm, sentences)
    t_ref = time.perf_counter() - t0
    diff = max(float(np.nanmax(np.abs(scores.score(m) - ref[m]))) for m in ref)
    print(f"heads: {len(scores.sentences)} sentences on '{lm.name}' ({lm.num_layers} layers x "
          f"{lm.num_heads} heads), {torch.get_num_threads()} torch threads:")
    print(f"  mlmtool score_heads (batched, NumPy over heads): {t_score:6.2f} s"
          f"  (+ {t_save:.2f} s report and heatmaps; target < 30 s in all)")
    print(f"  per-sentence forward + per-head Python loop:     {t_ref:6.2f} s")
    print(f"  speed-up: {t_ref / t_score:.1f}x   (largest score difference: {diff:.1e})")
    labels = head_labels(scores)
    for metric, offset in (("next", "+1"), ("prev", "-1")):
        (l, h, s), = scores.top(metric, 1)
        peak = scores.score(f"{metric}_peak")[l - 1, h - 1]
        print(f"  top {metric:4s} head: L{l}-H{h} score {s:.3f}; most-attended word at offset {offset} "
              f"for {100 * peak:.1f}% of words (label: {labels[l - 1, h - 1]})")
    counts = {p: int((labels == p).sum()) for p in PATTERNS + ("broad", "mixed")}
    print("  labels: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v))


if __name__ == "__main__":
    run()
