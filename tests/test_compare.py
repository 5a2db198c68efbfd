"""mlmtool compare: two models on the same text, one model on two texts (tiny random models).

Properties, not "it ran": a model compared with itself gives 0 everywhere; a copy with one
head's query weights changed moves exactly that head and every head above it; the
vectorised distance equals scipy row by row; the probabilities equal predict(); words are
aligned as written; bad input is one line and exit 2.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon

from mlmtool.analysis.compare import align_words, compare_models, compare_texts, js_distance
from mlmtool.analysis.heads import sentence_units, word_attention
from mlmtool.analysis.predict import predict
from mlmtool.cli import cli
from mlmtool.errors import MlmtoolError
from mlmtool.models import load
from tests.browsing import CHROMIUM, chromium_context, watch

TEXTS = ["the cat sat on the [MASK] .", "she opened the door and let the cat out .",
         "the dog ran in the park .", "we read a [MASK] book and ate [MASK] ."]
XSS = "<script>alert(1)</script>"


@pytest.fixture
def twin(tiny_bert_dir):
    """A second, independent copy of the tiny BERT (its own weights in memory)."""
    return load(str(tiny_bert_dir))


def change_query(lm, layer: int, head: int, factor: float = 20.0) -> None:
    """Scale the query weights of one head (layer and head from 0) in place.

    A random tiny model's upper layer is nearly uniform, so what reaches it is small (layer 2
    moves by ~2e-6 when a layer-1 head moves by 0.09); unchanged heads stay exactly 0.
    """
    attn = lm.model.bert.encoder.layer[layer].attention.self
    d = attn.attention_head_size
    with torch.no_grad():
        attn.query.weight[head * d:(head + 1) * d] *= factor
        attn.query.bias[head * d:(head + 1) * d] += 0.5


# ------------------------------------------------------------------------------ the metric


def test_js_distance_matches_hand_computed_values():
    p = np.array([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8]])
    q = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.8]])
    h = lambda x: -sum(v * math.log2(v) for v in x if v > 0)  # noqa: E731
    # JSD(p, q) = H((p+q)/2) - (H(p) + H(q)) / 2 (Lin 1991); distance = its square root
    second = math.sqrt(h([0.75, 0.25]) - (h([0.5, 0.5]) + h([1.0, 0.0])) / 2)
    assert js_distance(p[:1], q[:1]) == pytest.approx(1.0)
    assert js_distance(p[1:2], q[1:2]) == pytest.approx(second)
    assert js_distance(p, q) == pytest.approx((1.0 + second + 0.0) / 3)


def test_align_words_by_position_or_difflib():
    assert align_words(["the", "cat", "sat"], ["the", "dog", "sat"]) == [(0, 0), (1, 1), (2, 2)]
    # one inserted word: it stays unaligned, the rest keep their partners
    assert align_words(["the", "cat", "sat", "."], ["the", "big", "cat", "sat", "."]) == [(0, 0), (1, 2), (2, 3), (3, 4)]
    # a same-length replaced block is aligned position by position; case does not matter
    assert align_words(["The", "cat", "sat", "down"], ["the", "dog", "sat", "on", "it"]) == [(0, 0), (1, 1), (2, 2)]
    assert align_words(["a", "b", "c"], ["x", "a", "y", "z", "c"]) == [(0, 1), (2, 4)]


# ------------------------------------------------------------------------------ two models


def test_identical_models_give_zero_everywhere(tiny_bert, twin):
    res = compare_models(tiny_bert, twin, TEXTS, top_k=3, batch_size=2)
    assert res.distance.shape == (2, 4) and res.per_sentence.shape == (len(TEXTS), 2, 4)
    assert float(np.abs(res.per_sentence).max()) < 1e-7
    assert len(res.changes) == 3  # masks in sentences 1 and 4 (two there)
    assert [(c.sentence, c.mask) for c in res.changes] == [(1, 1), (4, 1), (4, 2)]
    for c in res.changes:
        assert all(x.change == 0.0 and x.rank_a == x.rank_b for x in c.candidates)
        assert all(x.score_a is not None for x in c.candidates)
    assert float(np.abs(res.difference()).max()) == 0.0
    same = compare_models(tiny_bert, tiny_bert, TEXTS[0])
    assert float(same.distance.max()) == 0.0 and same.labels[0] != same.labels[1]


def test_changed_head_and_the_heads_above_it_move_the_ones_below_do_not(tiny_bert, tiny_bert_dir):
    top = load(str(tiny_bert_dir))
    change_query(top, layer=1, head=2)  # layer 2, head 3 as users count
    res = compare_models(tiny_bert, top, TEXTS)
    assert res.distance[1, 2] > 1e-2, res.distance
    assert float(np.delete(res.distance.ravel(), 1 * 4 + 2).max()) < 1e-9
    assert res.top(1)[0][:2] == (2, 3)

    bottom = load(str(tiny_bert_dir))
    change_query(bottom, layer=0, head=1)  # layer 1, head 2: every head of layer 2 sees it
    res = compare_models(tiny_bert, bottom, TEXTS)
    assert res.distance[0, 1] > 1e-2
    assert float(np.delete(res.distance[0], 1).max()) < 1e-9
    assert (res.distance[1] > 1e-6).all(), res.distance
    heads = res.to_dict()["heads"]
    assert heads[0] == {"layer": 1, "head": 1, "distance": pytest.approx(0.0, abs=1e-7)}
    assert [(h["layer"], h["head"]) for h in heads] == [(l, h) for l in (1, 2) for h in (1, 2, 3, 4)]


def test_distance_equals_scipy_row_by_row(tiny_bert, tiny_bert_dir):
    other = load(str(tiny_bert_dir))
    change_query(other, layer=0, head=0)
    res = compare_models(tiny_bert, other, TEXTS[:2])
    from mlmtool.analysis.attention import attention

    for i, text in enumerate(TEXTS[:2]):
        a, b = attention(tiny_bert, text).attention, attention(other, text).attention
        for l in range(2):
            for h in range(4):
                rows = [jensenshannon(a[l, h, r].astype(float), b[l, h, r].astype(float), base=2)
                        for r in range(a.shape[2])]
                assert res.per_sentence[i, l, h] == pytest.approx(np.mean(rows), abs=1e-9)
    assert res.distance == pytest.approx(res.per_sentence.mean(0))


def shifted_head(lm) -> None:
    """Tilt the MLM head's output bias so the two models predict differently."""
    with torch.no_grad():
        lm.model.cls.predictions.decoder.bias += torch.linspace(-2, 2, lm.model.config.vocab_size)


def test_probabilities_equal_fill_and_the_softmax_on_both_sides(tiny_bert, tiny_bert_dir):
    other = load(str(tiny_bert_dir))
    shifted_head(other)
    res = compare_models(tiny_bert, other, TEXTS[0], top_k=6)
    words_a = predict(tiny_bert, TEXTS[0], top_k=6).masks[0].candidates  # whole words (fill)
    words_b = predict(other, TEXTS[0], top_k=6).masks[0].candidates
    vocab = tiny_bert.model.config.vocab_size
    piece_a = {c.token_id: c.score for c in predict(tiny_bert, TEXTS[0], top_k=vocab, max_pieces=1).masks[0].candidates}
    piece_b = {c.token_id: c.score for c in predict(other, TEXTS[0], top_k=vocab, max_pieces=1).masks[0].candidates}
    (change,) = res.changes
    ids = [tuple(c.ids) for c in change.candidates]
    assert ids[:6] == [tuple(c.ids) for c in words_a]  # A's list first, in A's order
    assert set(ids) == {tuple(c.ids) for c in words_a} | {tuple(c.ids) for c in words_b}
    own_a = {tuple(c.ids): c.score for c in words_a}
    own_b = {tuple(c.ids): c.score for c in words_b}
    for c in change.candidates:
        key = tuple(c.ids)
        for score, own, piece in ((c.score_a, own_a, piece_a), (c.score_b, own_b, piece_b)):
            if key in own:
                assert score == pytest.approx(own[key], rel=1e-5)
            if len(key) == 1:
                assert score == pytest.approx(piece[key[0]], rel=1e-5)
        assert c.change == pytest.approx(c.score_b - c.score_a)


def test_score_words_reproduces_fill_scores_of_multi_piece_words(tiny_bert):
    from mlmtool.analysis.compare import run_side, score_words

    side = run_side(tiny_bert, ["the [MASK] sat on the mat ."], top_k=100)
    multi = [(tuple(c.ids), c.log_prob) for c in side.predictions[0].masks[0].candidates if len(c.ids) > 1]
    assert multi, "past the ~80 one-piece words, the tiny vocabulary makes words of two (cat ##s)"
    for word, _ in multi:
        del side.known[0][0][word]
    assert side.log_prob(0, 0, multi[0][0]) is None
    score_words(tiny_bert, side, [(0, 0, w) for w, _ in multi])
    for word, lp in multi:
        assert side.log_prob(0, 0, word) == pytest.approx(lp, abs=1e-5)


def test_a_side_without_masked_lm_head_gives_attention_and_a_note(tiny_bert, twin):
    from dataclasses import replace

    encoder = replace(twin, name="encoder-only", has_mlm_head=False)
    res = compare_models(tiny_bert, encoder, TEXTS[0])
    assert float(res.distance.max()) == 0.0
    assert res.predictions_a[0] is not None and res.predictions_b == [None] and res.changes == []
    assert res.notes == [f"only '{tiny_bert.name}' has predictions: 'encoder-only' has no masked-LM head"]


def test_different_vocabularies_and_too_long_texts_are_refused(tiny_bert, tiny_roberta):
    with pytest.raises(MlmtoolError, match="different vocabularies"):
        compare_models(tiny_bert, tiny_roberta, "the cat .")
    with pytest.raises(MlmtoolError, match="at most 64"):
        compare_models(tiny_bert, tiny_bert, ["the cat .", "cat " * 80])


# ------------------------------------------------------------------------------ two texts


def test_two_texts_differing_in_one_word_are_aligned_word_by_word(tiny_bert):
    res = compare_texts(tiny_bert, "the cat sat on the [MASK] .", "the dog sat on the [MASK] .")
    pairs = [(w.position_a, w.position_b, w.word_a, w.word_b, w.same) for w in res.alignment]
    assert pairs == [(1, 1, "the", "the", True), (2, 2, "cat", "dog", False), (3, 3, "sat", "sat", True),
                     (4, 4, "on", "on", True), (5, 5, "the", "the", True), (6, 6, "[MASK]", "[MASK]", True),
                     (7, 7, ".", ".", True)]
    assert res.units_a[0] == "[CLS]" and res.units_a[-1] == "[SEP]"
    assert res.pairs == [(u, u) for u in range(9)]  # specials and all 7 words
    assert len(res.changes) == 1 and res.changes[0].text_b.startswith("the dog")
    d = res.to_dict()
    assert d["alignment"][1] == {"position_a": 2, "position_b": 2, "word_a": "cat", "word_b": "dog", "same": False}


def test_texts_with_an_inserted_word_use_difflib_and_word_level_attention(tiny_bert):
    a, b = "the cat sat on the mat .", "the big cat sat on the mat ."
    res = compare_texts(tiny_bert, a, b)
    assert [(w.position_a, w.position_b, w.word_a) for w in res.alignment] == [
        (1, 1, "the"), (2, 3, "cat"), (3, 4, "sat"), (4, 5, "on"), (5, 6, "the"), (6, 7, "mat"), (7, 8, ".")]
    assert "big" not in [w.word_b for w in res.alignment]
    # the distance by hand: word-level attention (heads' rule), aligned rows and columns, scipy per row
    from mlmtool.analysis.attention import attention

    ra, rb = attention(tiny_bert, a), attention(tiny_bert, b)
    ua, ub = sentence_units(ra), sentence_units(rb)
    wa, wb = word_attention(ra.attention, ua.membership), word_attention(rb.attention, ub.membership)
    ia, ib = [0, 1, 2, 3, 4, 5, 6, 7, 8], [0, 1, 3, 4, 5, 6, 7, 8, 9]
    assert res.pairs == list(zip(ia, ib))
    for l in range(2):
        for h in range(4):
            rows = [jensenshannon(wa[l, h, i, ia].astype(float), wb[l, h, j, ib].astype(float), base=2)
                    for i, j in zip(ia, ib)]
            # (the two texts ran padded in one batch there, one by one here: float32 noise only)
            assert res.distance[l, h] == pytest.approx(np.mean(rows), abs=1e-6)
    assert res.difference().shape == (2, 4, 9, 9)
    same = compare_texts(tiny_bert, a, a)
    assert float(same.distance.max()) == 0.0


def test_texts_with_multi_piece_words_are_compared_at_word_level(tiny_bert):
    res = compare_texts(tiny_bert, "the dog plays .", "the dog walked .")
    assert [w.word_b for w in res.alignment] == ["the", "dog", "walked", "."]
    assert res.attention_a.shape[2:] == (len(res.units_a),) * 2
    assert np.allclose(res.attention_a.sum(-1), 1.0, atol=1e-5)


# ------------------------------------------------------------------------------ renderers


def test_heatmap_draws_the_distances(tiny_bert, tiny_bert_dir):
    from mlmtool.render.compare_view import render_compare_heatmap

    other = load(str(tiny_bert_dir))
    change_query(other, 1, 0)
    res = compare_models(tiny_bert, other, TEXTS[:2])
    fig = render_compare_heatmap(res)
    image = fig.axes[0].images[0]
    assert np.allclose(np.asarray(image.get_array()), res.distance)
    assert image.norm.vmin == 0.0 and image.norm.vmax == pytest.approx(res.distance.max())
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["1", "2", "3", "4"]


def test_html_is_self_contained_and_escapes_tokens(tiny_bert, twin):
    from mlmtool.render.compare_view import render_compare_html
    from mlmtool.render.html_view import decode_attention

    res = compare_models(tiny_bert, twin, f"the cat {XSS} sat on the [MASK] .")
    page = render_compare_html(res)
    doc = str(page)
    assert "<script>alert" not in doc and "\\u003cscript\\u003e" in doc
    assert "http://" not in doc.replace("http://www.w3.org", "") and "https://" not in doc
    assert "default-src 'none'" in doc
    data = json.loads(doc.split('class="mlmc-data">')[1].split("</script>")[0])
    assert data["layers"] == 2 and data["heads"] == 4 and len(data["distance"]) == 2
    assert np.abs(decode_attention(data["attention_a"]) - res.attention_a).max() <= 1 / 510 + 1e-6
    assert page._repr_html_() in doc


# ------------------------------------------------------------------------------ command line


def test_cli_two_models_json_png_and_html(runner, tiny_bert_dir, tmp_path):
    out = tmp_path / "out"
    r = runner.invoke(cli, ["compare", "-m", str(tiny_bert_dir), "-m", str(tiny_bert_dir), "the cat sat on the [MASK] .",
                            "--json", "-o", str(out), "--png", str(tmp_path / "h.png"), "--html", str(tmp_path / "c.html")])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["kind"] == "models" and len(d["heads"]) == 8
    assert {h["distance"] for h in d["heads"]} == {0.0}
    assert d["predictions"]["a"][0]["masks"][0]["candidates"] == d["predictions"]["b"][0]["masks"][0]["candidates"]
    for png in (out / "compare_heads.png", tmp_path / "h.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "c.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    # nothing is replaced without --overwrite
    again = runner.invoke(cli, ["compare", "-m", str(tiny_bert_dir), "-m", str(tiny_bert_dir), "the cat .",
                                "--png", str(tmp_path / "h.png")])
    assert again.exit_code == 2 and "already exists" in again.output


def test_cli_several_sentences_from_a_file_and_the_summary(runner, tiny_bert_dir, tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    r = runner.invoke(cli, ["compare", "-m", str(tiny_bert_dir), "-m", str(tiny_bert_dir), "-i", str(path),
                            "--top-heads", "3"])
    assert r.exit_code == 0, r.output
    assert f"on {len(TEXTS)} sentences" in r.stdout
    assert "L1-H1" in r.stdout and "L2-H4" not in r.stdout  # ties keep layer/head order; 3 rows
    assert "sentence 4, mask 2" in r.stdout


def test_cli_one_model_two_texts(runner, tiny_bert_dir):
    r = runner.invoke(cli, ["compare", "-m", str(tiny_bert_dir), "the cat sat .", "the dog sat .", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["kind"] == "texts" and [a["word_b"] for a in d["alignment"]] == ["the", "dog", "sat", "."]
    r = runner.invoke(cli, ["compare", "-m", str(tiny_bert_dir), "the cat sat [MASK] .", "the dog sat [MASK] ."])
    assert r.exit_code == 0 and "cat → dog" in r.stdout
    assert "mask 1: probability under each side" in r.stdout and "mask 1 layer by layer" in r.stdout


@pytest.mark.parametrize("args, needle", [
    (["-m", "{bert}", "the cat sat ."], "give a second model"),
    (["-m", "{bert}", "-m", "{bert}", "the", "cat", "sat"], "one or two texts"),
    (["-m", "{bert}", "-m", "{bert}", "-m", "{bert}", "the cat ."], "one or two models"),
    (["-m", "{bert}", "-m", "{roberta}", "the cat ."], "different vocabularies"),
    (["-m", "{bert}", "-m", "{bert}", "cat " * 80], "at most 64"),
    (["-m", "{bert}", "the cat .", "cat " * 80], "at most 64"),
    (["-m", "{bert}", "-m", "{bert}", "-k", "0", "the [MASK] ."], "top-k"),
])
def test_cli_bad_input_is_one_line_and_exit_2(runner, tiny_bert_dir, tiny_roberta_dir, args, needle):
    args = [a.format(bert=tiny_bert_dir, roberta=tiny_roberta_dir) for a in args]
    r = runner.invoke(cli, ["compare", *args])
    assert r.exit_code == 2, r.output
    assert needle in r.output and "Traceback" not in r.output
    assert len([line for line in r.output.splitlines() if line.startswith("Error")]) == 1


def test_cli_one_model_with_a_file_of_three_lines_is_refused(runner, tiny_bert_dir, tmp_path):
    path = tmp_path / "three.txt"
    path.write_text("a cat .\nthe dog .\nthe mat .\n", encoding="utf-8")
    r = runner.invoke(cli, ["compare", "-m", str(tiny_bert_dir), "-i", str(path)])
    assert r.exit_code == 2 and "one model compares two texts, not 3" in r.output


def test_facade_names(tiny_bert):
    import mlmtool

    assert mlmtool.compare_models is compare_models and mlmtool.compare_texts is compare_texts
    assert callable(mlmtool.render_compare_html) and mlmtool.ComparisonResult.__doc__


# ------------------------------------------------------------------------------ browser

@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed")
def test_page_in_a_browser_draws_grids_and_the_clicked_head_offline(tiny_bert, tiny_bert_dir, tmp_path):
    pytest.importorskip("playwright.sync_api")
    from mlmtool.render.compare_view import render_compare_html

    other = load(str(tiny_bert_dir))
    change_query(other, 1, 3)
    res = compare_models(tiny_bert, other, f"the cat {XSS} sat on the [MASK] .")
    path = render_compare_html(res).save(tmp_path / "c.html")
    with chromium_context(tmp_path / "profile", lambda url: url.startswith("file://")) as context, \
            watch(context) as page:
        page.goto(path.resolve().as_uri())
        page.wait_for_selector(".mlmc[data-ready='1']", timeout=15_000)
        assert page.locator(".mlmc-cell").count() == 3 * 2 * 4
        # the most changed head is selected at start: layer 2, head 4
        assert page.locator(".mlmc-detail-title").text_content().startswith("Layer 2, head 4")
        page.locator(".mlmc-grid-a .mlmc-cell[data-layer='1'][data-head='2']").click()
        assert page.locator(".mlmc-detail-title").text_content().startswith("Layer 1, head 2")
        assert page.locator(".mlmc-grid-d .mlmc-cell.mlmc-selected").get_attribute("data-head") == "2"
        assert XSS in page.locator(".mlmc-texts").text_content()
        assert page.locator(".mlmc-preds table").count() == 1
        assert page.locator(".mlmc-layers table tr").count() == 1 + 3  # header + layers 0..2
        # the difference of an unchanged head is drawn white-ish (0 on the signed scale)
        pixel = page.evaluate("""() => { const c = document.querySelector('.mlmc-big-d');
            const ctx = c.getContext('2d'); const d = ctx.getImageData(c.width - 6, c.height - 6, 1, 1).data;
            return [d[0], d[1], d[2]]; }""")
        assert min(pixel) > 220, pixel
        assert not page.problems and not context.external


def test_layerwise_predictions_of_both_sides_end_at_their_own_top_piece(tiny_bert, tiny_bert_dir):
    from mlmtool.analysis.layerwise import layerwise_predictions

    other = load(str(tiny_bert_dir))
    shifted_head(other)
    res = compare_models(tiny_bert, other, TEXTS[:3])
    assert res.layerwise_a[1] is None and res.layerwise_b[2] is None  # no mask there
    for lm, lens in ((tiny_bert, res.layerwise_a[0]), (other, res.layerwise_b[0])):
        assert lens.to_dict() == layerwise_predictions(lm, TEXTS[0]).to_dict()
        assert len(lens.masks[0].by_layer) == 3 and lens.masks[0].by_layer[-1].final_rank == 1
    assert res.layerwise_a[0].masks[0].final_token != res.layerwise_b[0].masks[0].final_token
    d = res.to_dict()["layerwise"]
    assert d["a"][1] is None and d["b"][0]["masks"][0]["by_layer"][0]["layer"] == 0
