"""Fill-mask predictions: parity with the HF pipeline, mask translation, batching, errors."""

import pytest
import torch
from transformers import pipeline

from mlmtool.errors import MlmtoolError
from mlmtool.analysis.predict import predict
from mlmtool.tokens import fill_text, piece


def _pipeline(lm, k):
    return pipeline("fill-mask", model=lm.model, tokenizer=lm.tokenizer, top_k=k, device=-1)


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_roberta"])
def test_top_k_equals_hf_pipeline(fixture, request):
    lm = request.getfixturevalue(fixture)
    k = 7
    for text in ["the cat [MASK] on the mat .", "she opened the [MASK] and let the cat out ."]:
        ours = predict(lm, text, top_k=k).masks[0].candidates
        theirs = _pipeline(lm, k)(text.replace("[MASK]", lm.mask_token))
        assert [c.token_id for c in ours] == [t["token"] for t in theirs]
        assert [c.token for c in ours] == [t["token_str"] for t in theirs]
        for c, t in zip(ours, theirs):
            assert c.score == pytest.approx(t["score"], abs=1e-6)


def test_several_masks_match_pipeline(tiny_bert):
    text = "the [MASK] sat on the [MASK] ."
    ours = predict(tiny_bert, text, top_k=3)
    theirs = _pipeline(tiny_bert, 3)(text)
    assert len(ours.masks) == 2 == len(theirs)
    for m, t in zip(ours.masks, theirs):
        assert [c.token_id for c in m.candidates] == [x["token"] for x in t]
    # each sequence fills only its own mask
    assert ours.masks[0].candidates[0].sequence.endswith("on the [MASK] .")
    assert ours.masks[1].candidates[0].sequence.startswith("the [MASK] sat")


def test_user_mask_is_translated_for_roberta(tiny_roberta):
    a = predict(tiny_roberta, "the cat [MASK] on the mat .", top_k=5)
    b = predict(tiny_roberta, "the cat <mask> on the mat .", top_k=5)
    assert [c.token_id for c in a.masks[0].candidates] == [c.token_id for c in b.masks[0].candidates]
    assert "<mask>" in a.tokens
    assert all("[MASK]" not in c.sequence for c in a.masks[0].candidates)


def test_batch_equals_one_by_one_and_keeps_order(tiny_bert):
    texts = ["the [MASK] .", "a big red [MASK] was very fast .", "we [MASK] a good book .",
             "the dog ran in the [MASK] and the cat sat on the mat ."]
    batched = predict(tiny_bert, texts, top_k=4, batch_size=3)
    for text, res in zip(texts, batched):
        single = predict(tiny_bert, text, top_k=4)
        assert res.text == text
        for a, b in zip(res.masks[0].candidates, single.masks[0].candidates):
            assert a.token_id == b.token_id
            assert a.score == pytest.approx(b.score, abs=1e-5)


def test_scores_are_probabilities(tiny_bert):
    res = predict(tiny_bert, "the [MASK] sat .", top_k=tiny_bert.model.config.vocab_size)
    scores = [c.score for c in res.masks[0].candidates]
    assert sum(scores) == pytest.approx(1.0, abs=1e-4)
    assert scores == sorted(scores, reverse=True)


def test_errors(tiny_bert):
    with pytest.raises(MlmtoolError, match=r"no \[MASK\]"):
        predict(tiny_bert, "the cat sat on the mat .")
    with pytest.raises(MlmtoolError, match="70 tokens long .* at most 64"):
        predict(tiny_bert, "[MASK] " + "cat " * 67)
    with pytest.raises(MlmtoolError, match="empty"):
        predict(tiny_bert, "   ")
    with pytest.raises(MlmtoolError, match="line 2"):
        predict(tiny_bert, ["the [MASK] .", "no mask here"])


def test_pieces_join_the_previous_word(tiny_bert, tiny_roberta):
    tok = tiny_bert.tokenizer
    assert piece(tok, tok.convert_tokens_to_ids("##ing")) == ("ing", True)
    assert piece(tok, tok.convert_tokens_to_ids("cat")) == ("cat", False)
    assert fill_text("I was play [MASK] today", "[MASK]", 0, "ing", True) == "I was playing today"
    assert fill_text("a [MASK] b [MASK]", "[MASK]", 1, "x", False) == "a [MASK] b x"
    rt = tiny_roberta.tokenizer
    assert piece(rt, rt.convert_tokens_to_ids("Ġcat"))[1] is False


def test_only_mask_positions_reach_the_head(tiny_bert, monkeypatch):
    """The vocabulary projection runs on [n_masks, hidden], not [batch, seq, hidden]."""
    seen = []
    from mlmtool.core.forward import mlm_head

    head = mlm_head(tiny_bert.model)
    original = head.forward

    def spy(x):
        seen.append(tuple(x.shape))
        return original(x)

    monkeypatch.setattr(head, "forward", spy)
    predict(tiny_bert, ["the [MASK] sat on the [MASK] .", "a [MASK] ."], top_k=2)
    assert seen == [(3, 32)]
