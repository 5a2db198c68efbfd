"""The pseudo-log-likelihood primitive (mlmtool.analysis.pll).

* the copies mask what Kauf & Ivanova 2023 say: for a word of pieces p1 p2 p3, scoring p1
  masks p1..p3, scoring p2 masks p2..p3, scoring p3 masks p3; ``original`` masks one token;
* a word put at a mask (:func:`word_copies`) gives the same copies as the sentence written
  out with that word;
* :func:`score_copies` equals a hand-written loop over the HF model (mask, forward,
  log_softmax, take the original token) to 1e-5, whatever the batch size;
* with one piece per word, PLL-word-l2r is the original PLL (Salazar et al. 2020);
* a multi-piece word scored by the primitive has the log-probability fill ranks it by.
"""

from __future__ import annotations

import pytest
import torch

from mlmtool.analysis.pll import (VARIANTS, MaskedCopy, copy_log_probs, mask_span, masked_copies, score_copies,
                                  word_copies)
from mlmtool.errors import MlmtoolError

M = 99  # a mask id for the structural tests


def _masked_at(copy: MaskedCopy, original: list[int]) -> list[int]:
    """Positions where ``copy`` differs from ``original`` (what it masks)."""
    return [q for q, (a, b) in enumerate(zip(copy.ids, original)) if a != b]


def test_word_l2r_masks_the_piece_and_the_later_pieces_of_its_word():
    # [CLS] w0 | p1 p2 p3 (one word) | w2 [SEP]
    ids = [1, 10, 21, 22, 23, 30, 2]
    words = [None, 0, 1, 1, 1, 2, None]
    l2r = masked_copies(ids, words, M, "word-l2r")
    assert [c.position for c in l2r] == [1, 2, 3, 4, 5]
    assert [_masked_at(c, ids) for c in l2r] == [[1], [2, 3, 4], [3, 4], [4], [5]]
    assert [c.target for c in l2r] == [10, 21, 22, 23, 30]
    original = masked_copies(ids, words, M, "original")
    assert [_masked_at(c, ids) for c in original] == [[1], [2], [3], [4], [5]]
    assert mask_span(words, 0) == [0]  # a token of no word: itself only
    assert masked_copies(ids, words, M, positions=[3])[0].ids == [1, 10, 21, M, M, 30, 2]
    with pytest.raises(MlmtoolError, match="^variant must be one of") as err:
        mask_span(words, 1, "sum")
    assert err.value.param == "variant" and VARIANTS == ("original", "word-l2r")


def test_the_tokenizer_words_give_the_kauf_ivanova_masks(tiny_bert):
    enc = tiny_bert.tokenizer("the catsing sat")  # cat ##s ##ing: one word of three pieces
    ids, words = enc["input_ids"], enc.word_ids()
    assert tiny_bert.tokenizer.convert_ids_to_tokens(ids)[2:5] == ["cat", "##s", "##ing"]
    copies = masked_copies(ids, words, tiny_bert.mask_token_id)
    assert [_masked_at(c, ids) for c in copies] == [[1], [2, 3, 4], [3, 4], [4], [5]]


def test_a_word_at_a_mask_gives_the_copies_of_the_sentence_written_out():
    ids = [1, 10, M, 30, 2]
    word = [21, 22, 23]
    written = [1, 10, 21, 22, 23, 30, 2]
    ours = word_copies(ids, 2, word, M)
    theirs = masked_copies(written, [None, None, 0, 0, 0, None, None], M)
    assert ours == theirs and [c.ids for c in ours] == [[1, 10, M, M, M, 30, 2], [1, 10, 21, M, M, 30, 2],
                                                        [1, 10, 21, 22, M, 30, 2]]
    assert word_copies(ids, 2, [21, M, M], M, pieces=[1]) == [MaskedCopy([1, 10, 21, M, M, 30, 2], 3, M)]


def _hand_log_probs(lm, copies: list[MaskedCopy]) -> list[float]:
    """One HF forward per copy, log_softmax at its position, the target's value."""
    out = []
    for c in copies:
        with torch.no_grad():
            logits = lm.model(input_ids=torch.tensor([c.ids])).logits[0, c.position]
        out.append(float(logits.log_softmax(-1)[c.target]))
    return out


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_roberta"])
@pytest.mark.parametrize("variant", ["original", "word-l2r"])
def test_score_copies_equals_a_hand_written_loop_at_any_batch_size(fixture, variant, request):
    lm = request.getfixturevalue(fixture)
    texts = ["the catsing walked slowly .", "a dog .", "she opened the door and let the dog out ."]
    enc = lm.tokenizer(texts)
    copies = [c for i in range(len(texts))
              for c in masked_copies(enc["input_ids"][i], enc.word_ids(i), lm.mask_token_id, variant)]
    expected = _hand_log_probs(lm, copies)
    for batch_size in (1, 7, 1000):
        assert score_copies(lm, copies, batch_size=batch_size) == pytest.approx(expected, abs=1e-5)


def test_copy_log_probs_are_normalised_batches_of_at_most_batch_size(tiny_bert):
    enc = tiny_bert.tokenizer("the cat sat on the mat .")
    copies = masked_copies(enc["input_ids"], enc.word_ids(), tiny_bert.mask_token_id)
    seen = []
    for indices, rows in copy_log_probs(tiny_bert, copies, batch_size=3):
        assert len(indices) <= 3 and rows.shape == (len(indices), tiny_bert.model.config.vocab_size)
        assert torch.allclose(rows.exp().sum(-1), torch.ones(len(indices)), atol=1e-5)
        seen += indices
    assert sorted(seen) == list(range(len(copies)))


def test_no_copies_run_nothing(tiny_bert, monkeypatch):
    import mlmtool.core.forward as core

    monkeypatch.setattr(core, "run_batch", lambda *a, **k: pytest.fail("the model ran"))
    assert score_copies(tiny_bert, []) == [] and list(copy_log_probs(tiny_bert, [])) == []


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_roberta"])
def test_one_piece_per_word_makes_word_l2r_the_original_pll(fixture, request):
    lm = request.getfixturevalue(fixture)
    # one piece per word in both vocabularies (the tiny BPE splits most other words)
    enc = lm.tokenizer("the cat sat on the mat ." if fixture == "tiny_bert" else "the cat in the .")
    ids, words = enc["input_ids"], enc.word_ids()
    scored = [w for w in words if w is not None]
    assert len(scored) == len(set(scored))  # one piece per word
    l2r = masked_copies(ids, words, lm.mask_token_id, "word-l2r")
    original = masked_copies(ids, words, lm.mask_token_id, "original")
    assert l2r == original
    assert sum(score_copies(lm, l2r)) == pytest.approx(sum(score_copies(lm, original)), abs=1e-6)


def test_a_multi_piece_word_scores_as_fill_ranks_it(tiny_bert):
    from mlmtool.analysis.fill import fill_words
    from mlmtool.core.forward import encode, mask_positions

    text = "the [MASK] sat on the mat ."
    res = fill_words(tiny_bert, text, top_k=100, max_pieces=3, beam=4)
    multi = [c for c in res.masks[0].candidates if len(c.ids) > 1][:5]
    assert multi, "the tiny model proposes words of several pieces when asked for 100"
    ids = encode(tiny_bert, [text])["input_ids"][0]
    p = mask_positions(tiny_bert, ids)[0]
    for c in multi:
        assert sum(score_copies(tiny_bert, word_copies(ids, p, c.ids, tiny_bert.mask_token_id))) == \
            pytest.approx(c.log_prob, abs=1e-5)
