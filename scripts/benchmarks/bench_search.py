"""Benchmark: corpus search (``mlmtool index`` / ``mlmtool search``, issue 28).

1. Size: bytes per word per layer of the faiss IVF file, against the float16 vectors alone
   (``2 * D`` bytes; 768 at MiniLM's hidden 384) and exBERT's ~225 KB per token. Target ≤ 2x.
2. Build throughput: words/s of :func:`mlmtool.build_index` (one layer) against a plain
   batched forward pass (tokenizer + :func:`mlmtool.core.forward.iter_forward`, no extra
   outputs) over the same sentences in the same run, alternating, fastest of 3 after a warm-up
   of each. Target ≥ 0.8x. Peak resident memory of the process.
3. Search: p50 / p95 ms per query of one layer of ``--vectors`` synthetic unit vectors
   (clustered: 5,000 centres plus noise, D = 384, float16; the queries are held-out draws)
   through a faiss IVF layer built as ``mlmtool index`` builds one of that size (the settings
   of :func:`mlmtool.analysis.corpus.store.ivf_settings`), and recall@10 against exact cosine
   search (every inner product in float32), at several ``nprobe`` values; the layer's build
   time and file size. Targets: p50 < 20 ms, recall@10 ≥ 0.95 at 1,000,000 vectors.

4. Recall on real vectors: the five UD dev treebanks of ``../shared/data/ud`` (about 100,000
   words) indexed by MiniLM; random corpus words searched through the lists against the exact
   scan, at several ``nprobe`` (:func:`real_recall`).

Sentences: the ``# text =`` lines of ``datasets/en_ewt-dev-300.conllu`` (repeated to
``--sentences``). Model: ``minilm``, CPU.

Run: ``python -m scripts.benchmarks.bench_search [--sentences 2000] [--vectors 1000000]`` or
``python -m scripts.benchmarks.bench --only search``.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def treebank_texts(path: Path) -> list[str]:
    """The ``# text =`` lines of a CoNLL-U file, in order."""
    return [ln[len("# text = "):].strip() for ln in path.read_text(encoding="utf-8").splitlines()
            if ln.startswith("# text = ")]


def sentences(n: int) -> list[str]:
    """``n`` sentences: the treebank's texts, repeated in order."""
    lines = treebank_texts(ROOT / "datasets" / "en_ewt-dev-300.conllu")
    return [lines[i % len(lines)] for i in range(n)]


def size_and_throughput(n_sentences: int, reps: int = 3) -> None:
    """Sections 1 and 2 (see the module docstring): after one warm-up of each (imports, first
    allocations), ``reps`` alternating runs of the plain pass and the build; the fastest of each."""
    import mlmtool
    from mlmtool.core.forward import iter_forward

    lm = mlmtool.load("minilm")
    texts = sentences(n_sentences)

    def plain(lines: list[str]) -> None:  # tokenize + batched forward, nothing kept
        ids = lm.tokenizer(lines, add_special_tokens=True, truncation=True, max_length=lm.max_length)["input_ids"]
        for _ in iter_forward(lm, ids, batch_size=32):
            pass

    with tempfile.TemporaryDirectory() as tmp:
        corpus, warm = Path(tmp) / "corpus.txt", Path(tmp) / "warm.txt"
        corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
        warm.write_text("\n".join(texts[:64]) + "\n", encoding="utf-8")
        plain(texts[:64])
        mlmtool.build_index(lm, warm, Path(tmp) / "warm", layers=[lm.num_layers])
        times: dict[str, list[float]] = {"plain": [], "build": []}
        for rep in range(reps):
            t = time.perf_counter()
            plain(texts)
            times["plain"].append(time.perf_counter() - t)
            folder = Path(tmp) / f"ix{rep}"
            t = time.perf_counter()
            info = mlmtool.build_index(lm, corpus, folder, layers=[lm.num_layers], batch_size=32)
            times["build"].append(time.perf_counter() - t)
        layer_bytes = (folder / info.layer_files[str(lm.num_layers)]).stat().st_size
        table_bytes = sum((folder / n).stat().st_size for pair in info.tables for n in pair)
    words, plain_s, built_s = info.words, min(times["plain"]), min(times["build"])
    per = layer_bytes / words
    print(f"size: {per:.0f} bytes/word/layer (faiss IVF, float16) vs {2 * info.hidden_size} float16 vectors "
          f"= {per / (2 * info.hidden_size):.2f}x; word table + sentences {table_bytes / words:.1f} bytes/word "
          f"(once for all layers); exBERT ~225 KB/token -> {225_000 / (per + table_bytes / words):.0f}x smaller")
    print(f"build: {words} words, index {words / built_s:.0f} words/s vs plain forward {words / plain_s:.0f} words/s "
          f"= {plain_s / built_s:.2f}x (fastest of {reps}; runs: plain "
          f"{', '.join(f'{x:.1f}' for x in times['plain'])} s, build {', '.join(f'{x:.1f}' for x in times['build'])} s); "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def synthetic(n: int, dim: int = 384, seed: int = 0):
    """``float16 [n, dim]`` unit vectors: 5,000 Gaussian centres plus noise (0.6 per axis)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((5000, dim)).astype(np.float32)
    out = np.empty((n, dim), np.float16)
    for s in range(0, n, 100_000):
        e = min(n, s + 100_000)
        x = centres[rng.integers(0, len(centres), e - s)] + 0.6 * rng.standard_normal((e - s, dim), np.float32)
        out[s:e] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def search_speed(n: int, queries: int = 200, probes: tuple[int, ...] = (8, 16, 32, 48, 64)) -> None:
    """Section 3 (see the module docstring): one layer built as ``mlmtool index`` builds it
    (:class:`~mlmtool.analysis.corpus.merge.LayerWriter`: k-means on a uniform sample, then the
    inverted lists filled chunk by chunk, faiss on every core), then p50/p95 per query (one thread)
    and recall@10 against exact cosine search at each ``nprobe`` in ``probes`` (the index's
    default marked)."""
    import faiss
    import numpy as np

    from mlmtool.analysis.corpus.merge import SEED, LayerWriter
    from mlmtool.analysis.corpus.store import IndexInfo, ivf_settings

    settings = ivf_settings(n)
    both = synthetic(n + queries)  # the queries are held-out draws from the same centres
    data, q = both[:n], both[n:].astype(np.float32)
    writer = LayerWriter(IndexInfo(path="", model="synthetic", model_hash="", hidden_size=data.shape[1], layers=[1]))
    t = time.perf_counter()  # as LayerWriter.fill: k-means on a seeded uniform sample, then every vector
    picked = np.sort(np.random.default_rng(SEED).choice(n, size=settings["train"], replace=False))
    writer.learn(data[None, picked].astype(np.float32), n)
    for s in range(0, n, 20_000):
        writer.add(data[None, s:s + 20_000])
    index = writer.indexes[0]
    built = time.perf_counter() - t
    writer.close()
    with tempfile.TemporaryDirectory() as tmp:
        faiss.write_index(index, str(Path(tmp) / "layer.faiss"))
        size = (Path(tmp) / "layer.faiss").stat().st_size
    print(f"search: {n:,} synthetic vectors (D {data.shape[1]}, float16), IVF {settings['nlist']} lists "
          f"(k-means on {settings['train']:,}): built in {built:.1f} s (2 threads) = {n / built:,.0f} vectors/s, "
          f"file {size / n:.0f} bytes/vector = {size / n / (2 * data.shape[1]):.2f}x the float16 vectors")
    exact = np.empty((len(q), 10), np.int64)  # the reference: every inner product, float32, top 10
    for s in range(0, n, 100_000):
        block = data[s:s + 100_000].astype(np.float32) @ q.T  # [block, queries]
        if s == 0:
            best_s, best_i = np.full((len(q), 10), -np.inf), np.zeros((len(q), 10), np.int64)
        cand_s = np.concatenate([best_s, block.T], axis=1)
        cand_i = np.concatenate([best_i, np.broadcast_to(np.arange(s, s + block.shape[0]), (len(q), block.shape[0]))], axis=1)
        top = np.argsort(-cand_s, axis=1, kind="stable")[:, :10]
        best_s, best_i = np.take_along_axis(cand_s, top, 1), np.take_along_axis(cand_i, top, 1)
    exact[:] = best_i
    faiss.omp_set_num_threads(1)
    for nprobe in probes:
        index.nprobe = min(nprobe, index.nlist)
        times, found = [], []
        for v in q:
            t = time.perf_counter()
            found.append(index.search(v[None], 10)[1][0])
            times.append((time.perf_counter() - t) * 1000)
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)])
        mark = "  <- the index's default" if nprobe == settings["nprobe"] else ""
        print(f"search: nprobe {nprobe:>3}: p50 {np.percentile(times, 50):.2f} ms, p95 {np.percentile(times, 95):.2f} ms "
              f"per query (one thread, k=10); recall@10 vs exact {recall:.3f}{mark}")


def real_recall(queries: int = 300, seed: int = 0) -> None:
    """Section 4: recall on real vectors. Every sentence of the five UD dev treebanks in
    ``../shared/data/ud`` (English, French, German, Chinese, Japanese; ~100,000 words) indexed
    by MiniLM at its last layer as ``mlmtool index`` does; ``queries`` corpus words drawn at
    random are searched through the lists and by the exact scan, at several ``nprobe`` (the
    fraction of lists the default scans at 1,000,000 words is marked)."""
    import random

    import numpy as np

    import mlmtool
    from mlmtool.analysis.corpus.store import ivf_settings

    ud = ROOT.parent / "shared" / "data" / "ud"
    files = sorted(ud.glob("*-ud-dev.conllu"))
    if not files:
        print(f"real vectors: no treebanks in {ud}; skipped")
        return
    texts = [t for f in files for t in treebank_texts(f)]
    lm = mlmtool.load("minilm")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "ud.txt"
        corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
        info = mlmtool.build_index(lm, corpus, Path(tmp) / "ix", layers=[lm.num_layers])
        index = mlmtool.load_index(info.path)
        layer = index.layer(lm.num_layers)
        matrix = index.vectors(lm.num_layers).astype(np.float32)
        rng = random.Random(seed)
        chosen = rng.sample(range(info.words), queries)
        exact = [set(np.argsort(-(matrix @ matrix[k]), kind="stable")[:10].tolist()) for k in chosen]
        big = ivf_settings(1_000_000)
        at_1m = max(1, round(info.ivf["nlist"] * big["nprobe"] / big["nlist"]))
        print(f"real vectors: {info.words:,} words of {len(texts):,} UD sentences (5 languages), MiniLM layer "
              f"{lm.num_layers}, {info.ivf['nlist']} lists; {queries} corpus words as queries")
        for nprobe in sorted({1, 8, at_1m, 32, info.ivf["nprobe"]} & set(range(1, info.ivf["nlist"] + 1))):
            layer.nprobe = nprobe
            found = [set(layer.search(matrix[k][None], 10)[1][0].tolist()) for k in chosen]
            recall = np.mean([len(a & b) / 10 for a, b in zip(found, exact)])
            mark = (f"  <- the fraction of lists the default scans at 1M words ({big['nprobe']} of {big['nlist']})"
                    if nprobe == at_1m else "  <- the index's default" if nprobe == info.ivf["nprobe"] else "")
            print(f"real vectors: nprobe {nprobe:>2} of {info.ivf['nlist']}: recall@10 vs exact {recall:.3f}{mark}")


def run(n_sentences: int = 2000, n_vectors: int = 1_000_000) -> None:
    """All four sections; prints one line per figure."""
    size_and_throughput(n_sentences)
    search_speed(n_vectors)
    real_recall()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=2000, help="corpus lines for sections 1-2")
    parser.add_argument("--vectors", type=int, default=1_000_000,
                        help="synthetic vectors for section 3 (1M: minutes to build the graph on 2 cores)")
    args = parser.parse_args()
    run(args.sentences, args.vectors)
