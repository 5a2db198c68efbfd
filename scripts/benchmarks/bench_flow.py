"""Benchmark: attention flow (Abnar & Zuidema 2020) against the reference method, same input.

The reference is the method of the paper's code (``compute_flows`` / ``compute_node_flow`` in
``attention_graph_util.py`` of github.com/samiraabnar/attention_flow), written out here:
the whole layered graph (every token of every layer, ``(layers + 1) * seq`` nodes) built
once as a networkx ``DiGraph``, then one ``networkx.maximum_flow_value`` with Edmonds-Karp
per (output token, input token) pair. mlmtool's :func:`mlmtool.analysis.rollout.flow_matrix`
runs one SciPy max-flow (Dinic) per output token on a graph that holds one copy of the
layers per input token (exact per-pair values; the two are checked equal here).

Two inputs, 12 layers each: BERT-base shaped random softmax attention (12 heads,
``softmax(2 * N(0, 1))`` per row), and trained attention: en-mini's (the offline fill-mask
model, 6 layers) on an English text, its 6 layers used twice to make 12. Both are
head-averaged with the residual (``0.5 * A + 0.5 * I``). Trained attention is the harder
case for the max-flow solver (more augmenting phases).

Targets: >= 50x the reference at 16 tokens; 64 tokens in under 10 s. The reference takes
about a minute at 16 tokens, so by default it runs on the first ``--ref-rows`` output tokens
(every input token each) and its time is scaled to all rows (each row is about the same
amount of work: one max-flow per input token on the same graph); ``--full`` runs all pairs.
Run: ``python -m scripts.benchmarks.bench_flow [--full]`` or ``python -m scripts.benchmarks.bench --only flow``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def layer_matrices(seq: int, layers: int = 12, heads: int = 12, seed: int = 0) -> np.ndarray:
    """``[layers, seq, seq]`` residual-augmented head-averaged random attention."""
    from mlmtool.analysis.rollout import residual_attention

    rng = np.random.default_rng(seed)
    att = np.exp(2.0 * rng.standard_normal((layers, heads, seq, seq)))
    att /= att.sum(-1, keepdims=True)
    return residual_attention(att)


def reference_flow(aug: np.ndarray, rows: int | None = None) -> np.ndarray:
    """The reference method: one networkx Edmonds-Karp max-flow per (output, input) pair.

    Returns:
        ``[rows, seq]`` raw flow values for the first ``rows`` output tokens (all by default).
    """
    import networkx as nx
    from networkx.algorithms.flow import edmonds_karp

    L, n, _ = aug.shape
    graph = nx.DiGraph()
    graph.add_nodes_from(range((L + 1) * n))  # node l * n + i: token i after layer l (0 = input)
    for l in range(L):
        for i in range(n):
            for j in range(n):
                if aug[l, i, j] > 0:
                    graph.add_edge((l + 1) * n + i, l * n + j, capacity=float(aug[l, i, j]))
    rows = n if rows is None else rows
    return np.array([[nx.maximum_flow_value(graph, L * n + u, v, flow_func=edmonds_karp) for v in range(n)]
                     for u in range(rows)])


TEXT = ("The quick brown fox jumps over the lazy dog while the children watch from the old wooden bridge, "
        "and their parents talk about the weather, the harvest and the long winter that is coming soon to the "
        "valley, where the river freezes and the roads close for weeks, and nobody leaves the village until the "
        "first warm days of spring.")


def trained_matrices(*seqs: int) -> list[np.ndarray] | None:
    """en-mini's attention on the first words of :data:`TEXT` (at most ``seq`` tokens each),
    its 6 layers twice: one ``[12, seq, seq]`` per ``seq``; None when en-mini cannot be loaded."""
    import warnings

    from mlmtool.analysis.attention import attention
    from mlmtool.analysis.rollout import residual_attention
    from mlmtool.models import load

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lm = load("en-mini")
    except Exception as exc:  # noqa: BLE001 - a benchmark line, not a failure
        print(f"  (en-mini not available: {str(exc).splitlines()[0]})")
        return None
    words, out = TEXT.split(), []
    for seq in seqs:
        k = max(w for w in range(1, len(words) + 1) if len(lm.tokenizer(" ".join(words[:w]))["input_ids"]) <= seq)
        att = attention(lm, " ".join(words[:k])).attention
        out.append(residual_attention(np.concatenate([att, att])))
    return out


def compare(name: str, aug16: np.ndarray, aug64: np.ndarray, rows: int) -> None:
    """Print mlmtool vs the reference at ~16 tokens, and mlmtool at ~64 tokens."""
    from mlmtool.analysis.rollout import flow_matrix

    n = aug16.shape[-1]
    t0 = time.perf_counter()
    ours = flow_matrix(aug16)
    t_ours = time.perf_counter() - t0
    rows = min(rows, n)
    t0 = time.perf_counter()
    ref = reference_flow(aug16, rows)
    t_ref = (time.perf_counter() - t0) * n / rows
    err = np.abs(ref - ours[:rows]).max()
    scaled = "" if rows == n else f", measured on {rows} of {n} output tokens and scaled"
    print(f"  {name}, {n} tokens: mlmtool {t_ours:.3f} s, reference {t_ref:.1f} s{scaled}: "
          f"{t_ref / t_ours:.0f}x (target >= 50x); max |difference| {err:.1e}")
    t0 = time.perf_counter()
    c0 = time.process_time()
    flow_matrix(aug64)
    print(f"  {name}, {aug64.shape[-1]} tokens: mlmtool {time.perf_counter() - t0:.2f} s "
          f"(CPU {time.process_time() - c0:.2f} s; target < 10 s)")


def run(full: bool = False, ref_rows: int = 2) -> None:
    from mlmtool.analysis.rollout import flow_matrix

    print("Attention flow on 12 layers, all pairs (output token after layer 12, input token), one process;")
    print("reference = networkx Edmonds-Karp, one max-flow per pair on the whole graph (built once):")
    flow_matrix(layer_matrices(4))  # import SciPy outside the timing
    rows = 16 if full else ref_rows
    compare("random softmax", layer_matrices(16), layer_matrices(64), rows)
    trained = trained_matrices(16, 64)
    if trained is not None:
        compare("en-mini x2", *trained, rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="run the reference on all 256 pairs (about a minute)")
    parser.add_argument("--ref-rows", type=int, default=2, help="output tokens the reference runs on (default 2)")
    args = parser.parse_args()
    run(full=args.full, ref_rows=args.ref_rows)
