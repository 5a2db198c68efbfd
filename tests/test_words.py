"""Words, not pieces (issue 26): attention aggregated to words, and SHAP for a word of several pieces.

The aggregation is Clark et al. 2019's (mean over the attending word's pieces, sum over the
attended word's), the rule ``mlmtool heads`` uses; the explained value of a word of several
pieces is predict's PLL-word-l2r score (Kauf & Ivanova 2023).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from mlmtool.analysis.attention import AttentionResult, attention
from mlmtool.analysis.rollout import attention_flow, attention_rollout
from mlmtool.analysis.words import WORDS_NOTE, aggregate_summary, aggregate_words
from mlmtool.cli import cli

SPLIT = "the cats played sadly in the park ."  # cat ##s, sad ##ly for the tiny BERT
WHOLE = "the cat sat on the mat ."  # every word one piece


def hand_result() -> AttentionResult:
    """``[CLS] a b ##c [SEP]``: one layer, one head, a matrix written by hand (rows sum to 1)."""
    att = np.array([[0.5, 0.1, 0.2, 0.1, 0.1],
                    [0.2, 0.2, 0.2, 0.2, 0.2],
                    [0.1, 0.3, 0.2, 0.2, 0.2],
                    [0.3, 0.1, 0.4, 0.0, 0.2],
                    [0.0, 0.0, 0.5, 0.5, 0.0]], dtype=np.float32)[None, None]
    return AttentionResult(text="a bc", tokens=["[CLS]", "a", "b", "##c", "[SEP]"], attention=att,
                           word_ids=[None, 0, 1, 1, None], special=[True, False, False, False, True],
                           model_name="hand")


def test_hand_built_matrix_aggregates_to_the_hand_computed_one():
    words = aggregate_words(hand_result())
    # rows: mean over the attending word's pieces; columns: sum over the attended word's pieces
    want = np.array([[0.5, 0.1, 0.3, 0.1],
                     [0.2, 0.2, 0.4, 0.2],
                     [0.2, 0.2, 0.4, 0.2],   # mean of b [.1 .3 .4 .2] and ##c [.3 .1 .4 .2]
                     [0.0, 0.0, 1.0, 0.0]])
    np.testing.assert_allclose(words.attention[0, 0], want, atol=1e-6)
    assert words.tokens == ["[CLS]", "a", "bc", "[SEP]"] and words.special == [True, False, False, True]
    assert words.pieces == [[0], [1], [2, 3], [4]] and words.notes == [WORDS_NOTE]
    assert aggregate_words(words) is words  # already words


@pytest.fixture(scope="module")
def split_bert(tiny_bert):
    return attention(tiny_bert, SPLIT)


def test_word_rows_sum_to_one_bert_and_byte_level_bpe(tiny_bert, tiny_roberta, split_bert):
    words = aggregate_words(split_bert)
    assert words.tokens == ["[CLS]", "the", "cats", "played", "sadly", "in", "the", "park", ".", "[SEP]"]
    np.testing.assert_allclose(words.attention.sum(-1), 1.0, atol=1e-5)
    assert words.attention.shape == (2, 4, 10, 10)
    for text in ("the playing cats sat quickly .", "runningly wonderful"):  # byte-level BPE splits these
        res = attention(tiny_roberta, text)
        w = attention(tiny_roberta, text, words=True)
        assert len(w.tokens) == len({x for x in res.word_ids if x is not None}) + 2  # <s> ... </s>
        np.testing.assert_allclose(w.attention.sum(-1), 1.0, atol=1e-5)
        assert "".join(w.tokens[1:-1]).replace(" ", "") == "".join(res.tokens[1:-1]).replace(" ", "")


def test_every_word_one_piece_gives_the_piece_view_unchanged(tiny_bert):
    from mlmtool.render.html_view import view_payload

    res = attention(tiny_bert, WHOLE)
    same = aggregate_words(res)
    assert same.tokens == res.tokens and np.array_equal(same.attention, res.attention) and same.pieces is None
    roll = attention_rollout(res)
    assert aggregate_summary(roll, res) is roll and not roll.words
    assert view_payload(res)["words"] is None and view_payload(res)["unit"] == "token"


def test_rollout_and_flow_are_aggregated_after_the_summary(split_bert):
    words = aggregate_words(split_bert)
    for summary in (attention_rollout(split_bert), attention_flow(split_bert)):
        agg = aggregate_summary(summary, split_bert)
        assert agg.words and "then words" in agg.title and agg.tokens == words.tokens
        assert "aggregated to words" in agg.notes[-1]
        np.testing.assert_allclose(agg.matrix.sum(1), 1.0, atol=1e-9)
        m = np.zeros((len(words.tokens), len(split_bert.tokens)))  # membership, by hand
        for u, group in enumerate(words.pieces):
            m[u, group] = 1
        want = (m / m.sum(1, keepdims=True)) @ summary.matrix @ m.T
        np.testing.assert_allclose(agg.matrix, want, atol=1e-12)
        assert agg.to_dict()["words"] is True
    # after, not before: on sharp attention the rollout of word-level weights is another matrix
    rng = np.random.default_rng(0)
    sharp = np.exp(rng.normal(size=split_bert.attention.shape) * 4)
    sharp = replace(split_bert, attention=(sharp / sharp.sum(-1, keepdims=True)).astype(np.float32))
    assert not np.allclose(attention_rollout(aggregate_words(sharp)).matrix,
                           aggregate_summary(attention_rollout(sharp), sharp).matrix, atol=1e-3)


def test_view_payload_carries_the_word_view(split_bert):
    from mlmtool.render.html_view import decode_attention, view_payload

    words = aggregate_words(split_bert)
    data = view_payload(split_bert, words=True, precision="float16")
    assert data["unit"] == "word" and data["words"]["tokens"] == words.tokens
    np.testing.assert_allclose(decode_attention(data["words"]["attention"]), words.attention, atol=1e-3)
    assert "then words" in data["words"]["rollout"]["title"]
    assert data["layer_labels"] == [] and data["notes"] == []  # BERT: no layer kinds, no notes
    assert view_payload(split_bert, words=False)["words"] is None
    assert view_payload(split_bert)["unit"] == "token" and view_payload(split_bert)["words"] is not None


def test_view_payload_carries_layer_labels_and_notes():
    from mlmtool.render.html_view import view_payload

    res = replace(hand_result(), attention=np.repeat(hand_result().attention, 2, axis=0),
                  local_window=[None, 64], notes=["layer 2 is local"])
    data = view_payload(res)
    assert data["layer_labels"] == ["global", "local ±64"] and data["notes"] == ["layer 2 is local"]


# --------------------------------------------------------------------------------------------
# CLI


def test_attention_words_json_and_summary(tiny_bert_dir, runner):
    out = runner.invoke(cli, ["attention", "-m", str(tiny_bert_dir), SPLIT, "--words", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert "cats" in data["tokens"] and "##s" not in data["tokens"] and data["pieces"][2] == [2, 3]
    np.testing.assert_allclose(np.array(data["attention"]).sum(-1), 1.0, atol=1e-5)
    roll = runner.invoke(cli, ["attention", "-m", str(tiny_bert_dir), SPLIT, "--words", "--summary", "rollout",
                               "--json"])
    assert roll.exit_code == 0 and json.loads(roll.stdout)["words"] is True
    assert "aggregated to words" in roll.stderr


def test_attention_words_diagrams(tiny_bert_dir, runner, tmp_path):
    out = runner.invoke(cli, ["attention", "-m", str(tiny_bert_dir), SPLIT, "--words", "-o", str(tmp_path / "d")])
    assert out.exit_code == 0, out.output
    assert "words" in out.stderr and (tmp_path / "d" / "overview.png").exists()


def test_view_and_predict_words_pages(tiny_bert_dir, runner, tmp_path):
    page = tmp_path / "v.html"
    out = runner.invoke(cli, ["view", "-m", str(tiny_bert_dir), "the [MASK] played sadly .", "--words",
                              "--html", str(page)])
    assert out.exit_code == 0, out.output
    data = json.loads(re.search(r'class="mlmv-data">(.*?)</script>', page.read_text(), re.S).group(1))
    assert data["unit"] == "word" and "sadly" in data["words"]["tokens"]
    assert data["words"]["masks"] == [2]  # [CLS] the [MASK]: the mask's word
    out = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), "the [MASK] played sadly .", "--words",
                              "--html", str(tmp_path / "p.html"), "-o", str(tmp_path / "pd")])
    assert out.exit_code == 0, out.output
    assert "words" in out.stderr
    bad = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), "the [MASK] sat .", "--words"])
    assert bad.exit_code == 2 and "--words" in bad.output and "Traceback" not in bad.output


def test_compare_models_words(tiny_bert_dir, runner):
    out = runner.invoke(cli, ["compare", "-m", str(tiny_bert_dir), "-m", str(tiny_bert_dir), SPLIT, "--words",
                              "--json"])
    assert out.exit_code == 0, out.output
    assert max(h["distance"] for h in json.loads(out.stdout)["heads"]) == pytest.approx(0.0, abs=1e-6)


# --------------------------------------------------------------------------------------------
# SHAP for a word of several pieces


def test_two_piece_target_additivity_and_predicts_score(tiny_bert):
    from mlmtool.analysis.explain import explain
    from mlmtool.analysis.fill import fill_words

    text = "the [MASK] sat on the mat ."
    r = explain(tiny_bert, text, target="cats", max_evals=60)
    assert r.target_pieces == ["cat", "##s"] and r.target_id is None and r.scoring == "pll-word-l2r"
    assert "PLL-word-l2r" in r.explained
    assert r.base_value + r.token_values.sum() == pytest.approx(r.full_value, abs=1e-4, rel=1e-4)
    assert r.base_value + r.word_values.sum() == pytest.approx(r.full_value, abs=1e-9, rel=1e-6)
    # predict, with a beam wide enough to reach every two-piece word, scores "cats" the same
    cands = fill_words(tiny_bert, text, top_k=500, beam=200, max_pieces=2).masks[0].candidates
    cats = next(c for c in cands if c.word == "cats")
    assert cats.pieces == ["cat", "##s"] and r.full_value == pytest.approx(cats.score, rel=1e-5)


@pytest.mark.parametrize("target, message", [
    ("zebra", "is not in the vocabulary"),
    ("cat.", "is several words"),
    ("two words", "must be one word"),
])
def test_bad_targets_are_one_line_exit_2(tiny_bert_dir, runner, target, message):
    out = runner.invoke(cli, ["explain", "-m", str(tiny_bert_dir), "the [MASK] sat .", "--target", target])
    assert out.exit_code == 2 and message in out.output and "Traceback" not in out.output
    assert len(out.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_en_mini_toothpaste_additivity():
    from mlmtool.analysis.explain import explain
    from mlmtool.analysis.pll import score_copies, word_copies
    from mlmtool.core.forward import encode
    from mlmtool.models import load

    lm = load("en-mini")
    assert lm.tokenizer.tokenize("toothpaste") == ["tooth", "##pas", "##te"]
    text = "I brush my teeth with [MASK] every morning."
    r = explain(lm, text, target="toothpaste", max_evals=40)
    assert r.target_pieces == ["tooth", "##pas", "##te"] and r.scoring == "pll-word-l2r"
    assert r.base_value + r.word_values.sum() == pytest.approx(r.full_value, abs=1e-4, rel=1e-4)
    # the value is predict's rule: PLL-word-l2r over the word's copies (analysis.pll)
    ids = [int(t) for t in encode(lm, [text], need_mask=True)["input_ids"][0]]
    logp = score_copies(lm, word_copies(ids, r.mask_position, r.target_ids, lm.mask_token_id))
    assert r.full_value == pytest.approx(float(np.exp(sum(logp))), rel=1e-5)
    top = explain(lm, text, max_evals=20)  # the default target is predict's top word
    assert top.target == top.top_predictions[0][0] and top.full_value == pytest.approx(top.top_predictions[0][1],
                                                                                       rel=1e-5)
