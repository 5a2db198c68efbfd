"""Tests for :mod:`mlmtool.explain`, :mod:`mlmtool.render.explain_view` and ``mlmtool explain``."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pytest

from mlmtool.cli import cli
from mlmtool.analysis.explain import explain
from mlmtool.commands.explain import OUTPUT_FILES

TEXT = "she opened the door and let the [MASK] out ."


def _p(lm, text, target, mask=-1):
    """p(target) at one mask of ``text``, through the independent fill-mask path (mlmtool.predict)."""
    from mlmtool.analysis.predict import predict

    res = predict(lm, text, top_k=lm.model.config.vocab_size)
    cands = res.masks[mask].candidates
    return next(c.score for c in cands if c.token_id == target)


@pytest.fixture(scope="module")
def cat_explanation(tiny_bert):
    """9 hideable tokens: the whole hierarchy takes 60 evaluations, so a budget of 100 already
    gives the exact Owen values, the same as shap's default 500."""
    r = explain(tiny_bert, TEXT, target="cat", max_evals=100)
    assert r.evaluations < r.max_evals  # the budget did not bind
    return r


def test_additivity_base_plus_values_is_the_model_probability(tiny_bert, cat_explanation):
    r = cat_explanation
    cat_id = tiny_bert.tokenizer.convert_tokens_to_ids("cat")
    assert r.target == "cat" and r.target_id == cat_id
    full = _p(tiny_bert, TEXT, cat_id)
    assert r.full_value == pytest.approx(full, rel=1e-5)
    assert r.base_value + r.token_values.sum() == pytest.approx(full, rel=1e-5, abs=1e-9)
    assert r.word_values.sum() == pytest.approx(r.token_values.sum(), abs=1e-12)
    # the base value is p(cat) with every word hidden, i.e. replaced by the mask token
    hidden = " ".join(["[MASK]"] * 10)
    assert r.base_value == pytest.approx(_p(tiny_bert, hidden, cat_id, mask=7), rel=1e-5)


def test_mask_and_special_tokens_are_never_hidden(cat_explanation):
    r = cat_explanation
    assert r.tokens[r.mask_position] == "[MASK]" and r.mask_position == 8
    assert r.token_values[r.mask_position] == 0.0
    assert r.token_values[0] == 0.0 and r.token_values[-1] == 0.0  # [CLS], [SEP]
    assert r.words == TEXT.split() and r.word_is_mask == [w == "[MASK]" for w in TEXT.split()]
    assert np.count_nonzero(r.word_values) >= 8  # every real word was perturbed


def test_two_words_give_the_exact_shapley_values(tiny_bert):
    """With two hideable words Owen values are Shapley values, computable from 4 sentences:
    phi_a = ((f(a) - f()) + (f(ab) - f(b))) / 2 (Shapley 1953)."""
    r = explain(tiny_bert, "cat dog [MASK]", target="sat")
    sat = r.target_id
    f = {key: _p(tiny_bert, text, sat) for key, text in {
        "": "[MASK] [MASK] [MASK]", "a": "cat [MASK] [MASK]", "b": "[MASK] dog [MASK]", "ab": "cat dog [MASK]"}.items()}
    phi_cat = ((f["a"] - f[""]) + (f["ab"] - f["b"])) / 2
    phi_dog = ((f["b"] - f[""]) + (f["ab"] - f["a"])) / 2
    # float32 forward passes in different batch shapes differ by ~1e-9 on p ~ 0.01
    np.testing.assert_allclose(r.word_values, [phi_cat, phi_dog, 0.0], rtol=0, atol=1e-8)
    assert r.word_values[2] == 0.0 and r.evaluations == 4
    assert r.base_value == pytest.approx(f[""], rel=1e-5)


def test_word_value_is_the_sum_of_its_pieces(tiny_bert):
    r = explain(tiny_bert, "the cats played in the [MASK] .", target="park", max_evals=300)
    assert r.tokens[1:5] == ["the", "cat", "##s", "played"]
    assert r.words[:2] == ["the", "cats"] and r.word_tokens[1] == [2, 3]
    assert r.word_values[1] == pytest.approx(r.token_values[2] + r.token_values[3], abs=1e-15)


def test_default_target_is_the_top_prediction_and_second_mask(tiny_bert):
    from mlmtool.analysis.predict import predict

    text = "the [MASK] sat on the [MASK] ."
    r = explain(tiny_bert, text, mask_index=2, max_evals=200)
    top = predict(tiny_bert, text, top_k=1).masks[1].candidates[0]
    assert r.target_id == top.token_id and r.full_value == pytest.approx(top.score, rel=1e-5)
    assert r.mask_position == 6 and r.mask_index == 2
    assert r.token_values[2] == 0.0 and r.token_values[6] == 0.0  # both masks are kept
    assert r.base_value + r.word_values.sum() == pytest.approx(r.full_value, rel=1e-5, abs=1e-9)


def test_batch_size_does_not_change_the_values(tiny_bert, cat_explanation):
    r = explain(tiny_bert, TEXT, target="cat", max_evals=100, batch_size=7)  # not 32
    np.testing.assert_allclose(r.token_values, cat_explanation.token_values, rtol=1e-4, atol=1e-9)
    assert r.evaluations == cat_explanation.evaluations


def test_roberta_mask_token(tiny_roberta):
    r = explain(tiny_roberta, "the dog ran in the [MASK] .", max_evals=300)
    assert "[MASK]" in r.words and r.tokens[r.mask_position] == "<mask>"
    assert r.base_value + r.token_values.sum() == pytest.approx(r.full_value, rel=1e-5, abs=1e-9)


def test_efficiency_holds_when_the_budget_runs_out(tiny_bert):
    """SHAP's efficiency: the values sum to p(full) - p(every hideable token hidden), even with
    10 evaluations for 9 tokens (most coalitions are never split), and p(all hidden) is
    computed here independently, through predict on the sentence written with masks."""
    text = "the cats played in the [MASK] and the [MASK] ."
    r = explain(tiny_bert, text, target="park", max_evals=10)
    assert r.tokens[1:4] == ["the", "cat", "##s"] and r.evaluations == 10
    park = r.target_id
    hidden = " ".join(["[MASK]"] * (len(r.tokens) - 2))  # every token of every word hidden
    p_hidden = _p(tiny_bert, hidden, park, mask=r.mask_position - 1)
    p_full = _p(tiny_bert, text, park, mask=0)
    assert r.base_value == pytest.approx(p_hidden, rel=1e-5)
    assert r.full_value == pytest.approx(p_full, rel=1e-5)
    # the values sum to the difference of those two probabilities (float32 forward passes in
    # other batch shapes differ by ~1e-9, so the identity is checked on the values shap saw)
    assert r.base_value + r.token_values.sum() == pytest.approx(r.full_value, rel=1e-6, abs=1e-9)
    assert r.mask_position == 7 and r.tokens[10] == "[MASK]"
    assert r.token_values[[0, 7, 10, 12]].tolist() == [0.0] * 4  # [CLS], both masks, [SEP]


def test_one_word_gets_the_whole_difference(tiny_bert):
    r = explain(tiny_bert, "cat [MASK]", target="sat")
    f_full, f_none = _p(tiny_bert, "cat [MASK]", r.target_id), _p(tiny_bert, "[MASK] [MASK]", r.target_id)
    assert r.base_value == pytest.approx(f_none, rel=1e-5) and r.full_value == pytest.approx(f_full, rel=1e-5)
    assert r.word_values[1] == 0.0 and r.evaluations == 2  # hidden and shown: nothing else to try
    assert r.word_values[0] == pytest.approx(r.full_value - r.base_value, rel=1e-4, abs=3e-9)


def test_token_masker_hides_words_only(tiny_bert):
    from mlmtool.analysis.explain import _make_masker
    from mlmtool.core.forward import encode

    text = "the cats sat on the [MASK] ."
    enc = encode(tiny_bert, [text], need_mask=True)
    ids = list(enc["input_ids"][0])  # [CLS] the cat ##s sat on the [MASK] . [SEP]
    m = _make_masker(tiny_bert, enc, ids)
    mask_id = tiny_bert.mask_token_id
    assert m.hideable.tolist() == [1, 2, 3, 4, 5, 6, 8] and m.shape == (1, 7)
    x = m.features()
    assert x.tolist() == [ids[i] for i in m.hideable]
    out = m(np.array([True, False, False, True, True, True, False]), x)
    assert out.shape == (1, len(ids))
    expect = list(ids)
    expect[2] = expect[3] = expect[8] = mask_id
    assert out[0].tolist() == expect  # hidden -> mask token; [CLS], [MASK], [SEP] untouched
    assert m(np.ones(7, bool), x)[0].tolist() == ids
    assert set(m(np.zeros(7, bool), x)[0, 1:-1].tolist()) == {mask_id}


def test_word_hierarchy_joins_pieces_first_then_neighbours():
    from scipy.cluster.hierarchy import is_valid_linkage, to_tree

    from mlmtool.analysis.explain import word_hierarchy

    word_of = [0, 1, 1, 1, 2, 3, 4, 5, 6]  # word 1 has three pieces
    z = word_hierarchy(word_of, breaks=[False] * 4 + [True] + [False] * 4)  # a comma after word 2
    assert is_valid_linkage(z) and z.shape == (8, 4)
    assert set(z[0, :2]) <= {1, 2, 3} and (z[:2, 2] == 0).all()
    assert z[1, 3] == 3  # the three pieces are one cluster before anything else merges

    def leaves(node):
        return sorted(node.pre_order())

    root = to_tree(z)
    clusters = []
    stack = [root]
    while stack:
        node = stack.pop()
        clusters.append(leaves(node))
        stack.extend(c for c in (node.left, node.right) if c is not None)
    for c in clusters:  # every coalition is a contiguous span of the sentence
        assert c == list(range(c[0], c[-1] + 1))
    assert [0, 1, 2, 3, 4] in clusters  # the clause before the comma stays together
    assert word_hierarchy([0]).shape == (0, 4)


def test_partition_explainer_with_our_masker_recovers_an_additive_game():
    """Through shap's public Partition explainer: for f = sum of weights of the shown tokens
    every Owen value is that token's weight (any hierarchy); with an interaction term the
    values still sum to f(all) - f(none) (Lundberg & Lee 2017, local accuracy)."""
    import shap

    from mlmtool.analysis.explain import TokenMasker

    ids = np.array([101, 11, 12, 13, 14, 15, 103, 16, 102])
    hideable = [1, 2, 3, 4, 5, 7]
    m = TokenMasker(ids, hideable, word_of=[0, 1, 1, 2, 3, 5], mask_token_id=103)
    w = np.array([0.3, -0.2, 0.05, 0.4, -0.1, 0.25])

    def additive(x):  # [n, seq] -> [n]
        return (x[:, hideable] != 103).astype(float) @ w

    exp = shap.explainers.Partition(additive, m)(m.features()[None, :], max_evals=500, silent=True)
    np.testing.assert_allclose(exp.values[0], w, atol=1e-12)
    assert float(np.asarray(exp.base_values).ravel()[0]) == 0.0

    def game(x):
        shown = (x[:, hideable] != 103).astype(float)
        return shown @ w + 0.7 * shown[:, 0] * shown[:, 4]

    for budget in (500, 6):
        exp = shap.explainers.Partition(game, m)(m.features()[None, :], max_evals=budget, silent=True)
        assert exp.values[0].sum() == pytest.approx(w.sum() + 0.7, abs=1e-12)


def test_only_shap_public_api_is_used():
    """Runs on the newest shap release (0.51.0 on PyPI when this was written, checked with
    `pip index versions shap`); the masker must not reach into shap's private parts, which
    change between releases (the old Text subclass used _segments_s, _tokenized_s,
    _update_s_cache and shap.maskers._text.partition_tree)."""
    import inspect

    import shap
    from packaging.version import Version

    import mlmtool.analysis.explain as module

    assert Version(shap.__version__) >= Version("0.51")
    source = inspect.getsource(module)
    assert re.findall(r"shap(?:\.\w+)*\._\w+", source) == []
    assert re.findall(r"\._(?:segments|tokenized|update_s_cache)\w*", source) == []
    assert "shap.maskers" not in source
    assert [line.strip() for line in source.splitlines() if re.match(r"\s*(from|import) shap", line)] == \
        ["import shap"]  # the explainer is used as shap.explainers.Partition(f, masker)


def test_progress_bar(tiny_bert, capsys):
    explain(tiny_bert, "the cat sat on the [MASK] .", target="mat", max_evals=50, progress=True)
    assert "SHAP evaluations" in capsys.readouterr().err


def test_cli_writes_html_png_json(tiny_bert_dir, runner):
    result = runner.invoke(cli, ["explain", "-m", str(tiny_bert_dir), TEXT, "--target", "cat", "-o", "why"])
    assert result.exit_code == 0, result.output
    assert "p('cat' at mask 1)" in result.stdout and "[MASK→cat]" in result.stdout
    data = json.loads(Path("why/explanation.json").read_text(encoding="utf-8"))
    assert data["base_value"] + sum(data["word_values"]) == pytest.approx(data["full_value"], rel=1e-5)
    page = Path("why/explanation.html").read_text(encoding="utf-8")
    assert "[MASK→cat]" in page and page.count('<td class="num">') >= 9
    assert data["explained"] in html.unescape(page)  # the page says which value was explained
    assert re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page) == []
    assert "<script" not in page
    assert Path("why/explanation.png").read_bytes()[:4] == b"\x89PNG"
    # a second run refuses to replace the files
    before = Path("why/explanation.json").read_bytes()
    again = runner.invoke(cli, ["explain", "-m", str(tiny_bert_dir), TEXT, "--target", "dog", "-o", "why"])
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert Path("why/explanation.json").read_bytes() == before
    # the earlier spelling --out DIR still works, with a note
    old = runner.invoke(cli, ["explain", "-m", str(tiny_bert_dir), TEXT, "--max-evals", "20", "--out", "old"])
    assert old.exit_code == 0, old.output
    assert "--out is now -o/--output" in old.stderr
    assert sorted(p.name for p in Path("old").iterdir()) == sorted(OUTPUT_FILES)


def test_cli_json_additive_even_when_the_budget_runs_out(tiny_bert_dir, runner):
    result = runner.invoke(cli, ["explain", "-m", str(tiny_bert_dir), "the cat sat on the [MASK] .", "--json",
                                 "--max-evals", "12"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"base_value", "full_value", "words", "word_values", "target", "tokens", "token_values"}
    assert data["words"] == "the cat sat on the [MASK] .".split()
    assert data["evaluations"] == 12 < 5 * 4  # fewer than a full partition needs
    assert data["base_value"] + data["sum_of_values"] == pytest.approx(data["full_value"], rel=1e-6)
    assert data["token_values"][0] == data["token_values"][6] == 0.0  # [CLS] and [MASK] earn nothing


def test_cli_reads_the_sentence_by_the_one_grammar(tiny_bert_dir, runner):
    base = ["explain", "-m", str(tiny_bert_dir), "--target", "cat", "--max-evals", "40", "--json"]
    by_words = runner.invoke(cli, [*base, *TEXT.split()])  # unquoted words: one sentence
    assert by_words.exit_code == 0, by_words.output
    Path("one.txt").write_text("\n" + TEXT + "\n\n", encoding="utf-8")
    from_file = runner.invoke(cli, [*base, "-i", "one.txt"])
    from_stdin = runner.invoke(cli, [*base, "-"], input=TEXT + "\n")
    values = [json.loads(r.stdout)["word_values"] for r in (by_words, from_file, from_stdin)]
    assert values[0] == values[1] == values[2] and json.loads(from_file.stdout)["text"] == TEXT
    Path("two.txt").write_text(TEXT + "\n" + TEXT + "\n", encoding="utf-8")
    two = runner.invoke(cli, [*base, "-i", "two.txt"])
    assert two.exit_code == 2 and "explain takes one sentence, not 2" in two.output
    named = runner.invoke(cli, [*base, "one.txt"])  # a file name as TEXT: the hint to use -i
    assert named.exit_code == 2 and "use -i one.txt" in named.output and "Traceback" not in named.output


@pytest.mark.parametrize("args, message", [
    (["she opened the door ."], "no [MASK] in the text"),
    ([TEXT, "--target", "cat."], "is several words for model"),
    ([TEXT, "--target", "zebra"], "is not in the vocabulary"),
    ([TEXT, "--target", "two words"], "must be one word"),
    ([TEXT, "--mask", "2"], "--mask must be between 1 and 1"),
    ([TEXT, "--max-evals", "1"], "--max-evals"),
    ([TEXT, "-t", "cat"], "use --target WORD"),  # -t is --threshold in heads
    ([TEXT, "-i", "sentences.txt"], "not both"),
])
def test_bad_input_is_one_line_exit_2(tiny_bert_dir, runner, args, message):
    result = runner.invoke(cli, ["explain", "-m", str(tiny_bert_dir), *args, "-o", "out"])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not Path("out").exists() or list(Path("out").iterdir()) == []


def test_multi_piece_target_is_explained_as_a_word(tiny_bert_dir, runner):
    # issue 26: a word of several pieces is explained through predict's score (PLL-word-l2r)
    result = runner.invoke(cli, ["explain", "-m", str(tiny_bert_dir), TEXT, "--target", "cats", "--json",
                                 "--max-evals", "20"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["target"] == "cats" and data["target_pieces"] == ["cat", "##s"] and data["scoring"] == "pll-word-l2r"


def test_model_without_mlm_head_is_refused(tiny_encoder_dir, runner):
    result = runner.invoke(cli, ["explain", "-m", str(tiny_encoder_dir), TEXT])
    assert result.exit_code == 2 and "without a masked-LM head" in result.output


def test_renderers_take_data(cat_explanation):
    from mlmtool.render.explain_view import render_explain_bars, render_explain_html, render_explain_text
    from rich.console import Console

    console = Console(record=True, width=120, color_system="truecolor")
    console.print(render_explain_text(cat_explanation))
    text = console.export_text()
    assert "she opened the door and let the [MASK→cat] out ." in text
    ranked = [line.split()[1] for line in text.splitlines() if re.match(r"\s*\d+\s+\S+\s+[+-]", line)]
    order = np.argsort(-np.abs(cat_explanation.word_values))
    assert ranked == [cat_explanation.words[i] for i in order if not cat_explanation.word_is_mask[i]]
    fig = render_explain_bars(cat_explanation)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == [w for w in TEXT.split() if w != "[MASK]"]  # sentence order, both "the"s kept
    assert str(render_explain_html(cat_explanation)).startswith("<!DOCTYPE html>")


@pytest.mark.slow
def test_offline_masked_lm_explains_a_real_prediction(runner):
    """On the offline masked-LM model (issue #4) once it exists: additivity and parity with predict."""
    from mlmtool.registry import REGISTRY

    if "en-mini" not in REGISTRY:
        pytest.skip("the offline masked-LM model 'en-mini' is not in the registry yet")
    from mlmtool.models import load
    from mlmtool.analysis.predict import predict

    lm = load("en-mini")
    text = "The capital of France is [MASK]."
    r = explain(lm, text, max_evals=300)
    top = predict(lm, text, top_k=1).masks[0].candidates[0]
    assert r.target_id == top.token_id and r.full_value == pytest.approx(top.score, rel=1e-4)
    assert r.base_value + r.word_values.sum() == pytest.approx(r.full_value, rel=1e-4, abs=1e-7)
    assert np.abs(r.word_values).max() > 1e-4
    result = runner.invoke(cli, ["explain", "-m", "en-mini", text, "--json", "--max-evals", "200"])
    assert result.exit_code == 0, result.output
