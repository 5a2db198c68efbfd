"""``torchrun --nproc_per_node 2 -m mlmtool index``: two CPU processes (gloo), tiny model (issue 28).

The corpus is dealt out in chunks of 8 lines (rank 0 computes chunks 0, 2, 4, rank 1 chunks
1, 3); rank 0 merges them. The merged index must be the one a single process builds: the
same manifest facts, the same word and sentence tables (sentence numbers = line numbers), the
same float16 vectors bit for bit, so the same search answers.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import CORPUS

LINES = [f"{s[:-2]} {tail} ." for s in CORPUS for tail in ("today", "at night", "in the park", "quickly", "again")]
MANIFEST_FACTS = ("model", "model_hash", "hidden_size", "layers", "lines", "words", "sentences", "truncated",
                  "corpus_sha256", "conllu", "generation", "tables", "layer_files", "ivf")


@pytest.mark.slow
def test_two_process_build_answers_exactly_as_one_process(tmp_path, tiny_bert_dir, one_thread):
    import mlmtool

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(LINES[:20]) + "\n\n" + "\n".join(LINES[20:]) + "\n", encoding="utf-8")  # line 20 empty
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "mlmtool",
           "index", str(corpus), "-m", str(tiny_bert_dir), "--layers", "1,2", "--chunk-lines", "8", "-o", "shards"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stderr.count("words from") == 1  # one summary, from rank 0
    lm = mlmtool.load(str(tiny_bert_dir))
    mlmtool.build_index(lm, corpus, tmp_path / "single", layers=[1, 2], chunk_lines=8)  # one thread, as the ranks

    one, two = mlmtool.load_index(tmp_path / "single"), mlmtool.load_index(tmp_path / "shards")
    assert one.info.lines == len(LINES) + 1 and one.info.sentences == len(LINES)
    assert {k: getattr(two.info, k) for k in MANIFEST_FACTS} == {k: getattr(one.info, k) for k in MANIFEST_FACTS}
    assert two.words.equals(one.words) and two.texts == one.texts
    assert two.words.column("sentence").to_pylist()[-1] == len(LINES)  # numbered past the empty line
    for layer in (1, 2):
        np.testing.assert_array_equal(two.vectors(layer), one.vectors(layer))
    assert not (tmp_path / "shards" / ".building").exists()

    for query, layer in [("the dog ran to the [bank] .", 2), ("a [cat] sat quickly .", 1)]:
        for exact in (True, False):  # the scan, and the inverted lists (k-means is seeded: the same lists)
            a = mlmtool.search(one, query, lm, layer=layer, top_k=15, exact=exact)
            b = mlmtool.search(two, query, lm, layer=layer, top_k=15, exact=exact)
            assert b.to_dict()["hits"] == a.to_dict()["hits"] and len(a.hits) == 15
