"""Benchmark: PLL scoring against minicons, and whole-word fill against piece-level fill.

1. ``mlmtool score`` (:func:`mlmtool.score_sentences`) against minicons'
   ``scorer.MaskedLMScorer.sequence_score`` (``pip install minicons``; Misra 2022) on the same
   model object and the same sentences: scored tokens per second, and the largest PLL
   difference between the two. minicons runs the whole model on every masked copy, so it
   projects every position of every copy to the vocabulary; mlmtool projects only the
   masked one and buckets sentences by length. Target: ratio >= 3x.
2. Whole-word fill (``mlmtool predict`` at its defaults: up to 3 pieces, beam 2) against
   piece-level fill (``--max-pieces 1``, one forward pass, the HF pipeline's answer) on the
   same one-mask sentences: time per sentence. Target: <= 4x the piece-level time.

Sentences: the first ones from the UD English EWT dev treebank when ``shared/data/ud`` is
beside the repository (6-15 words for scoring, whose cost grows with the square of the
length; 6-30 words for fill), else seeded generated sentences. Model: ``en-mini`` (the
offline fill-mask model), CPU.

Run: ``python -m scripts.benchmarks.bench_score [--sentences 500] [--fill-sentences 100]`` or
``python -m scripts.benchmarks.bench --only score``.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

WORDS = ("time year people way day man thing woman life child world school state family student "
         "group country problem hand part place case week company system program question work").split()


def ud_sentences(n: int, longest: int = 30) -> list[str]:
    """Up to ``n`` sentences of 6 to ``longest`` words from ``shared/data/ud/en_ewt-ud-dev.conllu``
    (the ``# text =`` lines), looked for beside the repository; [] when absent."""
    for parent in Path(__file__).resolve().parents:
        path = parent / "shared" / "data" / "ud" / "en_ewt-ud-dev.conllu"
        if path.is_file():
            break
    else:
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# text = "):
            text = line[len("# text = "):].strip()
            if 6 <= len(text.split()) <= longest:
                out.append(text)
                if len(out) == n:
                    break
    return out


def sentences(n: int, seed: int = 0, longest: int = 30) -> list[str]:
    """``n`` sentences: UD EWT when available, topped up with seeded generated ones."""
    out = ud_sentences(n, longest)
    rng = random.Random(seed)
    while len(out) < n:
        out.append("The " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 20))) + ".")
    return out


def masked(texts: list[str], seed: int = 0) -> list[str]:
    """Each sentence with one alphabetic word (seeded choice) replaced by ``[MASK]``."""
    rng = random.Random(seed)
    out = []
    for text in texts:
        words = text.split()
        choices = [i for i, w in enumerate(words) if w.isalpha()] or [0]
        words[rng.choice(choices)] = "[MASK]"
        out.append(" ".join(words))
    return out


def minicons_scorer(lm):
    """minicons' MaskedLMScorer on ``lm``'s model and tokenizer (the same objects mlmtool uses).

    minicons 0.3 calls ``tokenizer.batch_encode_plus``, which transformers 5 removed; a
    wrapper passes that call to the tokenizer itself.
    """
    from minicons import scorer

    class _Tokenizer:
        def __init__(self, tok):
            self._tok = tok

        def __getattr__(self, name):
            return getattr(self._tok, name)

        def batch_encode_plus(self, *args, **kwargs):
            return self._tok(*args, **kwargs)

    peer = scorer.MaskedLMScorer(lm.model, tokenizer=lm.tokenizer, device="cpu")
    peer.tokenizer = _Tokenizer(lm.tokenizer)
    return peer


def bench_pll(lm, texts: list[str], peer_batch: int = 8) -> None:
    """Scored tokens per second: mlmtool vs minicons (``peer_batch`` sentences per call)."""
    import torch

    from mlmtool.analysis.score import score_sentences

    peer = minicons_scorer(lm)
    score_sentences(lm, texts[:4])  # warm-up
    peer.sequence_score(texts[:4], reduction=lambda x: x.sum(0).item())
    t0 = time.perf_counter()
    ours = score_sentences(lm, texts)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = []
    for i in range(0, len(texts), peer_batch):
        theirs += peer.sequence_score(texts[i:i + peer_batch], reduction=lambda x: x.sum(0).item())
    t_ref = time.perf_counter() - t0
    tokens = sum(len(s.tokens) for s in ours)
    diff = max(abs(s.pll - p) for s, p in zip(ours, theirs))
    print(f"PLL, {len(texts)} sentences ({tokens} scored tokens) on {lm.name} ({torch.get_num_threads()} threads):")
    print(f"  mlmtool score_sentences:        {t_ours:7.2f} s  ({tokens / t_ours:8.1f} tokens/s)")
    print(f"  minicons MaskedLMScorer ({peer_batch}/call): {t_ref:7.2f} s  ({tokens / t_ref:8.1f} tokens/s)")
    print(f"  speed-up: {t_ref / t_ours:.2f}x (target >= 3x); largest PLL difference {diff:.2e}")
    t_enc, t_full = pll_ceiling(lm, texts)
    print(f"  the same masked copies through the encoder alone {t_enc:.2f} s, with the head at every position "
          f"{t_full:.2f} s: {t_full / t_enc:.2f}x is what skipping the vocabulary projection can save "
          f"(mlmtool reached {t_ref / t_ours / (t_full / t_enc):.0%} of it; the rest of minicons' time is its own)")


def pll_ceiling(lm, texts: list[str], batch_size: int = 32) -> tuple[float, float]:
    """Seconds to run every masked copy of ``texts`` (one per scored token, the same copies
    for both) ``(encoder only, whole model)``: the encoder alone (what mlmtool pays, plus one
    vocabulary row per copy) vs the encoder and the masked-LM head at every position (what
    minicons pays). ``whole / encoder`` bounds the speed-up any scorer that runs the encoder
    on every copy can reach over minicons: the vocabulary projection is all that is saved.
    Copies bucketed by length, ``batch_size`` per pass, ``torch.inference_mode``.
    """
    import torch

    from mlmtool.core.forward import encode, length_batches, pad

    special = set(lm.tokenizer.all_special_ids)
    copies = []
    for ids in encode(lm, texts)["input_ids"]:
        for p, t in enumerate(ids):
            if t not in special:
                copies.append(ids[:p] + [lm.mask_token_id] + ids[p + 1:])
    encoder = lm.model.base_model
    out = []
    for fn in (encoder, lm.model):
        t0 = time.perf_counter()
        with torch.inference_mode():
            for batch in length_batches([len(c) for c in copies], batch_size):
                ids, mask = pad([copies[i] for i in batch], lm.tokenizer.pad_token_id)
                fn(input_ids=ids, attention_mask=mask)
        out.append(time.perf_counter() - t0)
    return out[0], out[1]


def bench_fill(lm, texts: list[str]) -> None:
    """Time per sentence: whole-word fill at the defaults vs piece-level fill."""
    from mlmtool.analysis.predict import predict

    predict(lm, texts[:4])  # warm-up (and the vocabulary tables)
    predict(lm, texts[:4], max_pieces=1)
    t0 = time.perf_counter()
    pieces = predict(lm, texts, top_k=5, max_pieces=1)
    t_piece = time.perf_counter() - t0
    t0 = time.perf_counter()
    words = predict(lm, texts, top_k=5)
    t_word = time.perf_counter() - t0
    multi = sum(len(w.masks[0].candidates[0].pieces) > 1 for w in words)
    any_multi = sum(any(len(c.pieces) > 1 for c in w.masks[0].candidates) for w in words)
    cont = sum(p.masks[0].candidates[0].pieces[0].startswith("##") for p in pieces)
    n = len(texts)
    print(f"fill, {n} one-mask sentences, top-5:")
    print(f"  piece-level (--max-pieces 1):       {1000 * t_piece / n:7.2f} ms/sentence")
    print(f"  whole words (defaults: 3 pieces, beam 2): {1000 * t_word / n:7.2f} ms/sentence")
    print(f"  cost: {t_word / t_piece:.2f}x the piece-level time (target <= 4x); top-1 of several pieces in "
          f"{multi}/{n}, a word of several pieces in the top 5 in {any_multi}/{n}; "
          f"piece-level top-1 was a '##' piece in {cont}/{n}")


def run(n_score: int = 500, n_fill: int = 100) -> None:
    from mlmtool.models import load

    lm = load("en-mini")
    bench_pll(lm, sentences(n_score, longest=15))
    bench_fill(lm, masked(sentences(n_fill)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=500, help="sentences scored (default 500)")
    parser.add_argument("--fill-sentences", type=int, default=100, help="one-mask sentences filled (default 100)")
    args = parser.parse_args()
    run(args.sentences, args.fill_sentences)
