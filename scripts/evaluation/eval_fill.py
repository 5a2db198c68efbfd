#!/usr/bin/env python
"""Fill-mask accuracy of a model on held-out English text and on everyday sentences.

Held-out text: whole words are masked with probability 15 % (all pieces of a chosen word
together, as in whole-word masking, Devlin et al. 2019 / BERT's ``wwm`` release); only words
containing a letter or digit are eligible, so punctuation does not inflate the score. For
every masked piece the model's top-1 / top-5 predictions are compared with the original
piece (token-level accuracy, all masks of a passage predicted at once).

``--unit token`` masks single word pieces instead (15 % of the pieces of such words), the
usual token-level figure of MLM training logs.

Top-5 is also given by kind of word: function words (scikit-learn's English stop-word
list), other single-piece words ("content"), and pieces of words the tokenizer splits.

Everyday sentences (``datasets/everyday_fill.tsv``): a hit when any of the top-5 words is
one of the acceptable answers.

Usage::

    python -m scripts.evaluation.eval_fill                       # en-mini on the default held-out files
    python -m scripts.evaluation.eval_fill -m minilm -m DIR --heldout corpus/heldout-anarchism.txt

The held-out files are written by ``scripts/en_mini/build.py corpus`` from Debian
packages that are not used for training (debian-reference-en, fortune-anarchism).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


#: Passages read from each held-out file (the card's figures use this many).
MAX_PASSAGES = 600


def read_passages(path: Path, limit: int = MAX_PASSAGES) -> list[str]:
    """The first ``limit`` non-empty lines of a UTF-8 held-out file, one passage each."""
    return [l for l in Path(path).read_text(encoding="utf-8").splitlines() if l.strip()][:limit]


#: Kinds of masked pieces that :func:`heldout_accuracy` also scores apart.
KINDS = ("function", "content", "split")


def word_kind(word: str, n_pieces: int) -> str:
    """``"split"`` for a word the tokenizer cuts into several pieces; else ``"function"`` for
    a stop word (scikit-learn's ``ENGLISH_STOP_WORDS``, the Glasgow IR group's list) and
    ``"content"`` for any other word."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    if n_pieces > 1:
        return "split"
    return "function" if word.lower() in ENGLISH_STOP_WORDS else "content"


def mask_passages(tok, passages: list[str], rate: float = 0.15, seed: int = 0, max_len: int = 128,
                  unit: str = "word"):
    """Mask whole words (``unit="word"``) or single pieces (``"token"``) at ``rate``.

    Only words with a letter or digit are eligible. Returns
    ``[(input_ids, {position: original_id}, {position: kind})]`` with kinds from :func:`word_kind`.
    """
    rng = random.Random(seed)
    out = []
    for text in passages:
        enc = tok(text, truncation=True, max_length=max_len)
        ids, wids = list(enc["input_ids"]), enc.word_ids()
        words: dict[int, list[int]] = {}
        for pos, w in enumerate(wids):
            if w is not None:
                words.setdefault(w, []).append(pos)
        units = ([(w, [p]) for w, ps in words.items() for p in ps] if unit == "token"  # every piece alone
                 else list(words.items()))
        gold, kinds = {}, {}
        for w, positions in units:
            span = enc.word_to_chars(w)
            word = text[span.start:span.end]
            if not any(c.isalnum() for c in word):
                continue
            if rng.random() < rate:
                for p in positions:
                    gold[p] = ids[p]
                    kinds[p] = word_kind(word, len(words[w]))
                    ids[p] = tok.mask_token_id
        if gold:
            out.append((ids, gold, kinds))
    return out


def heldout_accuracy(lm, passages: list[str], batch_size: int = 32, unit: str = "word") -> dict:
    """Top-1 and top-5 accuracy over masked pieces (see module docstring), overall and by kind,
    and the masked-LM loss there.

    Returns ``{"masked_tokens", "top1", "top5", "loss", "perplexity", "by_kind": {kind:
    {"masked_tokens", "top5"}}}``: accuracies as fractions; ``loss`` the mean cross-entropy of
    the original piece in nats per masked piece (the MLM training loss, Devlin et al. 2019, on
    text no stage trained on), ``perplexity`` its ``exp``. ``unit`` as in :func:`mask_passages`.
    """
    import math

    import torch

    from mlmtool.core.forward import iter_forward, mask_positions

    items = mask_passages(lm.tokenizer, passages, max_len=min(128, lm.max_length), unit=unit)
    top1 = top5 = total = 0
    nll = 0.0
    by_kind = {k: [0, 0] for k in KINDS}
    ids = [item[0] for item in items]
    for f in iter_forward(lm, ids, positions=[mask_positions(lm, row) for row in ids], batch_size=batch_size):
        cols = mask_positions(lm, f.ids)
        gold_ids, kinds = items[f.index][1], items[f.index][2]
        golds = [gold_ids[c] for c in cols]  # the original piece at each mask
        best = f.logits.topk(5, dim=-1).indices.tolist()
        nll += torch.nn.functional.cross_entropy(f.logits, torch.tensor(golds), reduction="sum").item()
        for c, gold, cand in zip(cols, golds, best):
            top1 += cand[0] == gold
            top5 += gold in cand
            total += 1
            by_kind[kinds[c]][0] += gold in cand
            by_kind[kinds[c]][1] += 1
    loss = nll / max(total, 1)
    return {"masked_tokens": total, "top1": top1 / max(total, 1), "top5": top5 / max(total, 1),
            "loss": round(loss, 4), "perplexity": round(math.exp(loss), 2),
            "by_kind": {k: {"masked_tokens": n, "top5": hit / max(n, 1)} for k, (hit, n) in by_kind.items()}}


def everyday_hits(lm, path: Path) -> dict:
    """Hit rate of top-5 predictions on the everyday sentence set."""
    from mlmtool.analysis.predict import predict

    rows = [l.split("\t") for l in path.read_text(encoding="utf-8").splitlines()
            if l.strip() and not l.startswith("#")]
    results = predict(lm, [r[0] for r in rows], top_k=5)
    hits, detail = 0, []
    for (sentence, answers), res in zip(rows, results):
        ok = {a.strip().lower() for a in answers.split(",")}
        words = [c.token.strip().lower() for c in res.masks[0].candidates]
        hit = any(w in ok for w in words)
        hits += hit
        detail.append({"sentence": sentence, "top5": words, "hit": hit})
    return {"sentences": len(rows), "hits": hits, "hit_rate": hits / len(rows), "detail": detail}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", action="append", help="model name or directory (repeatable); default en-mini")
    ap.add_argument("--heldout", action="append", type=Path,
                    help="held-out text file, one passage per line (repeatable); default corpus/heldout-*.txt")
    ap.add_argument("--everyday", type=Path, default=ROOT / "datasets" / "everyday_fill.tsv")
    ap.add_argument("--max-passages", type=int, default=MAX_PASSAGES,
                    help=f"passages per held-out file (default {MAX_PASSAGES})")
    ap.add_argument("--unit", choices=["word", "token"], default="word",
                    help="mask whole words (default, the card's figures) or single word pieces")
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument("-v", "--verbose", action="store_true", help="show every everyday sentence")
    args = ap.parse_args(argv)

    from mlmtool.errors import MlmtoolError
    from mlmtool.models import load

    files = args.heldout or sorted((ROOT / "corpus").glob("heldout-*.txt"))
    if not files:
        print("note: no held-out text in corpus/ (not committed); `python -m scripts.en_mini.offline_corpus` "
              "writes it from Debian packages", file=sys.stderr)
    report = []
    for name in args.model or ["en-mini"]:
        try:
            lm = load(name, device="cpu")
            lm.require_mlm_head()
        except MlmtoolError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        entry = {"model": name, "heldout": {}, "everyday": None}
        for f in files:
            entry["heldout"][f.name] = heldout_accuracy(lm, read_passages(f, args.max_passages), unit=args.unit)
        if args.everyday and args.everyday.exists():
            entry["everyday"] = everyday_hits(lm, args.everyday)
        report.append(entry)
        if not args.json:
            print(f"model {name}")
            for fname, acc in entry["heldout"].items():
                print(f"  {fname}: top-1 {acc['top1']:.1%}  top-5 {acc['top5']:.1%}  "
                      f"loss {acc['loss']:.3f} ({acc['masked_tokens']} masked tokens)")
                print("    top-5 by kind: " + ", ".join(
                    f"{k} words {v['top5']:.1%} ({v['masked_tokens']})" if k != "split"
                    else f"pieces of split words {v['top5']:.1%} ({v['masked_tokens']})"
                    for k, v in acc["by_kind"].items()))
            if entry["everyday"]:
                e = entry["everyday"]
                print(f"  everyday sentences: {e['hits']}/{e['sentences']} with a fitting word in the top 5 "
                      f"({e['hit_rate']:.0%})")
                if args.verbose:
                    for d in e["detail"]:
                        print(f"    {'+' if d['hit'] else '-'} {d['sentence']}  ->  {', '.join(d['top5'])}")
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
