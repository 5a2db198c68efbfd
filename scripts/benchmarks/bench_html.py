"""Benchmark: size of the self-contained HTML view for BERT-base (12 x 12 heads).

mlmtool's page (``render_view``) sends attention as 8-bit levels, deflate-compressed and
base64-encoded, with its JavaScript and CSS inlined. The reference is BertViz's
``head_view``: it puts ``attention.tolist()`` into ``json.dumps`` (``bertviz/head_view.py``),
one JSON float per weight; users report 52 MB pages at 128 tokens and 212 MB at 256. The
BertViz payload is measured here in the same run, layer by layer (the same bytes as
``json.dumps`` of the whole list, without holding it in memory); its page adds only a few
kB of HTML/JS around it. Attention is random softmax (``softmax(N(0, 1) logits)`` per row),
which is fine for the size test; the uncompressed-uint8 column is a data-independent bound.
Target: <= 5 MB at 128 tokens.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np


def random_result(seq: int, layers: int = 12, heads: int = 12, seed: int = 0):
    """A BERT-base-shaped :class:`~mlmtool.attention.AttentionResult` of random softmax attention."""
    from mlmtool.analysis.attention import AttentionResult

    rng = np.random.default_rng(seed)
    att = np.exp(rng.standard_normal((layers, heads, seq, seq), dtype=np.float32))
    att /= att.sum(-1, keepdims=True)
    tokens = ["[CLS]"] + [f"word{i}" for i in range(seq - 2)] + ["[SEP]"]
    return AttentionResult(text=" ".join(tokens[1:-1]), tokens=tokens, attention=att,
                           word_ids=[None] + list(range(seq - 2)) + [None],
                           special=[True] + [False] * (seq - 2) + [True], model_name="bert-base (random)")


def bertviz_payload_bytes(res) -> int:
    """Bytes of BertViz's ``json.dumps(params)`` attention payload (``head_view``, one sentence)."""
    size = len(json.dumps({"attention": [{"name": None, "attn": [], "left_text": res.tokens,
                                          "right_text": res.tokens}]}).encode())
    layers = [len(json.dumps(layer.tolist())) for layer in res.attention]  # "[...]" per layer
    return size + sum(layers) + 2 * (len(layers) - 1)  # + ", " between layers


def run() -> None:
    from mlmtool.render.html_view import render_view

    print("HTML view of one sentence, 12 layers x 12 heads (BERT-base shape), random softmax attention:")
    print(f"  {'tokens':>6}  {'mlmtool page':>13}  {'uint8, no deflate':>17}  {'BertViz JSON':>12}  "
          f"{'ratio':>6}  {'render+save':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for seq in (32, 128, 256):
            res = random_result(seq)
            t0 = time.perf_counter()
            path = render_view(res).save(Path(tmp) / f"view{seq}.html")
            t_ours = time.perf_counter() - t0
            ours = path.stat().st_size
            plain = len(str(render_view(res, compress=False)).encode())
            ref = bertviz_payload_bytes(res)
            target = "  (target <= 5 MB)" if seq == 128 else ""
            print(f"  {seq:>6}  {ours / 1e6:>10.2f} MB  {plain / 1e6:>14.2f} MB  {ref / 1e6:>9.1f} MB  "
                  f"{ref / ours:>5.0f}x  {t_ours:>9.2f} s{target}")
    print("  (BertViz reported by its users: 52 MB at 128 tokens, 212 MB at 256)")
