"""Benchmark: all 144 attention diagrams (12 layers x 12 heads) for a 20-token sentence.

mlmtool draws with NumPy into palette images (Pillow) and reuses the label layout; the
reference draws one matplotlib figure per head (``imshow`` + tick labels + ``savefig``),
as most notebooks do. Target: mlmtool under 1.5 s on 2 cores.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path


def bert_base_attention(seq: int = 20, seed: int = 0):
    """Attention of a randomly initialised BERT-base-shaped model (12 x 12) on ``seq`` tokens."""
    import torch
    from transformers import BertConfig, BertModel

    from mlmtool.analysis.attention import AttentionResult

    torch.manual_seed(seed)
    model = BertModel(BertConfig(attn_implementation="eager")).eval()
    ids = torch.randint(1000, 20000, (1, seq))
    with torch.no_grad():
        att = torch.stack(model(input_ids=ids, output_attentions=True).attentions, 1)[0].numpy()
    words = "the quick brown fox jumps over the lazy dog while a small bird sings in the old tall tree".split()
    tokens = ["[CLS]"] + words[: seq - 2] + ["[SEP]"]
    return AttentionResult(text=" ".join(words), tokens=tokens, attention=att,
                           word_ids=[None] * seq, special=[False] * seq, model_name="bert-base (random)")


def matplotlib_loop(res, out: Path) -> None:
    """Reference: one matplotlib figure per head."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for l in range(res.num_layers):
        for h in range(res.num_heads):
            fig, ax = plt.subplots(figsize=(6, 6))
            ax.imshow(res.attention[l, h], cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks(range(len(res.tokens)), res.tokens, rotation=90)
            ax.set_yticks(range(len(res.tokens)), res.tokens)
            ax.set_title(f"Layer {l + 1}, Head {h + 1}")
            fig.savefig(out / f"Attention_Layer{l + 1}_Head{h + 1}.png")
            plt.close(fig)


def run() -> None:
    from mlmtool.render.diagrams import save_attention_diagrams

    res = bert_base_attention()
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        save_attention_diagrams(res, a)  # warm-up: fonts, palette
        for f in Path(a).iterdir():
            f.unlink()
        t0 = time.perf_counter()
        paths = save_attention_diagrams(res, a)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        matplotlib_loop(res, Path(b))
        t_ref = time.perf_counter() - t0
    print(f"attention diagrams, {res.num_layers * res.num_heads} heads, {len(res.tokens)} tokens "
          f"(+ overview: {len(paths)} files):")
    print(f"  mlmtool (Pillow, vectorised):    {t_ours:6.2f} s  (target < 1.5 s)")
    print(f"  one matplotlib figure per head:  {t_ref:6.2f} s")
    print(f"  speed-up: {t_ref / t_ours:.1f}x")
