"""Fill-mask predictions: piece-level parity with the HF pipeline (max_pieces=1), mask
translation, batching, errors, and the masked-LM head only at masked positions.

Whole-word and joint fill have their own tests in test_fill.py."""

import pytest
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
        ours = predict(lm, text, top_k=k, max_pieces=1).masks[0].candidates
        theirs = _pipeline(lm, k)(text.replace("[MASK]", lm.mask_token))
        assert [c.token_id for c in ours] == [t["token"] for t in theirs]
        assert [c.token for c in ours] == [t["token_str"] for t in theirs]
        for c, t in zip(ours, theirs):
            assert c.score == pytest.approx(t["score"], abs=1e-6)


def test_several_masks_match_pipeline(tiny_bert):
    text = "the [MASK] sat on the [MASK] ."
    ours = predict(tiny_bert, text, top_k=3, max_pieces=1, independent=True)
    theirs = _pipeline(tiny_bert, 3)(text)
    assert len(ours.masks) == 2 == len(theirs) and ours.sentences == []
    for m, t in zip(ours.masks, theirs):
        assert [c.token_id for c in m.candidates] == [x["token"] for x in t]
        assert [c.score for c in m.candidates] == pytest.approx([x["score"] for x in t], abs=1e-6)
    # each sequence fills only its own mask; the other is a blank, never the mask token
    first, second = ours.masks[0].candidates[0], ours.masks[1].candidates[0]
    assert first.sequence == fill_text(text, "[MASK]", 0, first.word, False).replace("[MASK]", "___")
    assert second.sequence == fill_text(text, "[MASK]", 1, second.word, False).replace("[MASK]", "___")


def test_user_mask_is_translated_for_roberta(tiny_roberta):
    a = predict(tiny_roberta, "the cat [MASK] on the mat .", top_k=5)
    b = predict(tiny_roberta, "the cat <mask> on the mat .", top_k=5)
    assert [c.ids for c in a.masks[0].candidates] == [c.ids for c in b.masks[0].candidates]
    assert "<mask>" in a.tokens
    assert all("[MASK]" not in c.sequence for c in a.masks[0].candidates)


def test_batch_equals_one_by_one_and_keeps_order(tiny_bert):
    texts = ["the [MASK] .", "a big red [MASK] was very fast .", "we [MASK] a good book .",
             "the dog ran in the [MASK] and the cat sat on the mat ."]
    for options in ({"max_pieces": 1}, {}):  # piece level, and whole words (the default)
        batched = predict(tiny_bert, texts, top_k=4, batch_size=3, **options)
        for text, res in zip(texts, batched):
            single = predict(tiny_bert, text, top_k=4, **options)
            assert res.text == text
            assert [c.ids for c in res.masks[0].candidates] == [c.ids for c in single.masks[0].candidates]
            for a, b in zip(res.masks[0].candidates, single.masks[0].candidates):
                assert a.score == pytest.approx(b.score, abs=1e-5)


def test_scores_are_probabilities(tiny_bert):
    res = predict(tiny_bert, "the [MASK] sat .", top_k=tiny_bert.model.config.vocab_size, max_pieces=1)
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
    for name in ("top_k", "max_pieces", "beam"):
        with pytest.raises(MlmtoolError, match=f"^{name} must be at least 1 \\(got 0\\)") as err:
            predict(tiny_bert, "the [MASK] .", **{name: 0})
        assert err.value.param == name


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
    predict(tiny_bert, ["the [MASK] sat on the [MASK] .", "a [MASK] ."], top_k=2, max_pieces=1, independent=True)
    assert seen == [(3, 32)]


def test_whole_word_search_projects_one_position_per_copy(tiny_bert, monkeypatch):
    """Every forward pass of the whole-word search asks the head for one row per sequence
    (the piece being chosen), and the first pass for one row per mask."""
    import mlmtool.core.forward as core

    calls = []
    original = core.run_batch

    def spy(model, input_ids, attention_mask, **kw):
        calls.append((int(input_ids.shape[0]), int(kw["rows"].shape[0]), int(attention_mask.sum())))
        return original(model, input_ids, attention_mask, **kw)

    monkeypatch.setattr(core, "run_batch", spy)
    predict(tiny_bert, "the [MASK] sat on the mat .", top_k=3, max_pieces=3, batch_size=64)
    assert calls[0] == (1, 1, 9)  # the text as given: 9 tokens, one mask
    assert len(calls) >= 2 and all(batch == rows for batch, rows, _ in calls[1:])


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_roberta"])
def test_piece_level_fast_path_equals_the_search(fixture, request):
    """``max_pieces=1`` skips the whole-word search (one top-k over a batched pass,
    ``fill_pieces``); its answers equal the search's at the same settings, masks one by one."""
    from mlmtool.analysis.fill import fill_encoded, fill_pieces
    from mlmtool.core.forward import encode

    lm = request.getfixturevalue(fixture)
    texts = ["The [MASK] sat on the mat.", "A [MASK] and a [MASK] went to the big red house today.",
             "[MASK] is good."]
    encoded = encode(lm, texts, need_mask=True)["input_ids"]
    fast = fill_pieces(lm, texts, encoded, top_k=7, batch_size=2)
    slow, _ = fill_encoded(lm, texts, encoded, top_k=7, max_pieces=1, independent=True, batch_size=2)
    assert [p.to_dict() for p in fast] == [p.to_dict() for p in slow]
    assert all(len(m.candidates) == 7 for p in fast for m in p.masks)
