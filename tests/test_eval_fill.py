"""scripts/evaluation/eval_fill.py: what is masked, how hits are counted (hand-computable cases)."""

import math
from pathlib import Path

import pytest
import torch

from scripts.evaluation import eval_fill


def test_whole_words_are_masked_together_and_punctuation_never(tiny_bert):
    tok = tiny_bert.tokenizer
    [(ids, gold, kinds)] = eval_fill.mask_passages(tok, ["the cat walking ."], rate=1.0)
    pieces = tok.convert_ids_to_tokens(tok("the cat walking .")["input_ids"])
    assert pieces == ["[CLS]", "the", "cat", "walk", "##ing", ".", "[SEP]"]
    assert sorted(gold) == [1, 2, 3, 4]  # every piece of every word, not "." nor specials
    assert [gold[p] for p in sorted(gold)] == tok.convert_tokens_to_ids(["the", "cat", "walk", "##ing"])
    assert [kinds[p] for p in sorted(gold)] == ["function", "content", "split", "split"]
    assert tok.convert_ids_to_tokens(ids) == ["[CLS]"] + ["[MASK]"] * 4 + [".", "[SEP]"]
    assert eval_fill.mask_passages(tok, ["the cat walking ."], rate=0.0) == []


def test_token_unit_masks_pieces_one_by_one(tiny_bert):
    tok = tiny_bert.tokenizer
    text = " ".join(["cat walking ."] * 30)
    walk, ing = tok.convert_tokens_to_ids(["walk", "##ing"])

    def halves(gold):  # masked pieces of "walking" whose partner piece is not masked
        return sum((g == walk and p + 1 not in gold) or (g == ing and p - 1 not in gold) for p, g in gold.items())

    words = eval_fill.mask_passages(tok, [text], rate=0.5, seed=1)[0][1]
    tokens = eval_fill.mask_passages(tok, [text], rate=0.5, seed=1, unit="token")[0][1]
    assert walk in words.values() and halves(words) == 0
    assert halves(tokens) > 0


def test_hits_are_counted_per_masked_piece(tiny_bert, monkeypatch):
    import mlmtool.core.forward as core

    tok = tiny_bert.tokenizer
    ranking = tok.convert_tokens_to_ids(["the", "cat", "sat", "on", "dog"])

    def fixed_logits(model, input_ids, attention_mask, rows=None, cols=None, **kw):
        # always ranks the, cat, sat, on, dog first
        logits = torch.zeros(len(rows), len(tok))
        logits[:, ranking] = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0])
        return core.BatchOutput(logits=logits)

    real = eval_fill.mask_passages
    monkeypatch.setattr(core, "run_batch", fixed_logits)
    monkeypatch.setattr(eval_fill, "mask_passages", lambda t, p, **kw: real(t, p, rate=1.0))
    acc = eval_fill.heldout_accuracy(tiny_bert, ["the cat sat on the mat ."])
    # masked: the cat sat on the mat -> top-1 hits "the" twice of 6, top-5 misses only "mat"
    assert acc["masked_tokens"] == 6
    assert acc["top1"] == pytest.approx(2 / 6) and acc["top5"] == pytest.approx(5 / 6)
    assert acc["by_kind"]["function"] == {"masked_tokens": 3, "top5": 1.0}  # the, on, the
    assert acc["by_kind"]["content"] == {"masked_tokens": 3, "top5": pytest.approx(2 / 3)}  # cat, sat, mat
    assert acc["by_kind"]["split"]["masked_tokens"] == 0
    # loss: -log softmax at the gold piece; logits 5,4,3,2,1 on five pieces and 0 on the rest
    lse = math.log(sum(math.exp(v) for v in (5, 4, 3, 2, 1)) + (len(tok) - 5))
    gold_logits = [5.0, 4.0, 3.0, 2.0, 5.0, 0.0]  # the cat sat on the mat
    assert acc["loss"] == pytest.approx(sum(lse - g for g in gold_logits) / 6, abs=1e-4)
    assert acc["perplexity"] == pytest.approx(math.exp(acc["loss"]), rel=1e-3)
