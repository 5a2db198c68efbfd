"""Sentence scoring (mlmtool.analysis.score, render.score_view, `mlmtool score`).

PLL equals a hand-written loop over the HF model (mask one token, run the model, take
log_softmax) and minicons' MaskedLMScorer; batching changes nothing, runs at most
``batch_size`` masked copies per pass and projects one position per copy; minimal pairs;
``save``; the views.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from mlmtool.analysis.score import read_pairs, score_pairs, score_sentences
from mlmtool.cli import cli
from mlmtool.errors import MlmtoolError

SENTENCES = ["the cats walked slowly .", "she opened the door and let the dog out .", "a dog .",
             "we read a good book in the park every morning ."]
PAIRS_FILE = Path(__file__).resolve().parents[1] / "datasets" / "minimal_pairs.tsv"


def _hand_pll(lm, text: str, variant: str = "original") -> tuple[float, list[float]]:
    """Salazar et al.'s PLL written out: each non-special token masked in turn (for word-l2r
    with the later tokens of its word), one HF forward each, log_softmax at that token."""
    enc = lm.tokenizer(text)
    ids, words = enc["input_ids"], enc.word_ids()
    values = []
    for p, w in enumerate(words):
        if w is None:
            continue
        masked = list(ids)
        for q in range(p, len(ids)):
            if q == p or (variant == "word-l2r" and words[q] == w):
                masked[q] = lm.mask_token_id
        with torch.no_grad():
            logits = lm.model(input_ids=torch.tensor([masked])).logits[0, p]
        values.append(float(logits.log_softmax(-1)[ids[p]]))
    return sum(values), values


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_roberta"])
@pytest.mark.parametrize("variant", ["original", "word-l2r"])
def test_pll_equals_a_hand_written_loop(fixture, variant, request):
    lm = request.getfixturevalue(fixture)
    ours = score_sentences(lm, SENTENCES, variant=variant, batch_size=16)
    for text, res in zip(SENTENCES, ours):
        pll, values = _hand_pll(lm, text, variant)
        assert res.text == text and res.variant == variant
        assert res.pll == pytest.approx(pll, abs=1e-5)
        assert [t.log_prob for t in res.tokens] == pytest.approx(values, abs=1e-5)
        assert res.pppl == pytest.approx(math.exp(-pll / len(values)), rel=1e-6)
    # the variants differ exactly where a word has several pieces ("cat ##s")
    cats = [t.token for t in ours[0].tokens]
    assert cats[1:3] == ["cat", "##s"] if fixture == "tiny_bert" else len(cats) > 5


def test_same_pll_as_minicons(tiny_bert):
    """Peer check: minicons' MaskedLMScorer (Misra 2022) on the same model and sentences."""
    pytest.importorskip("minicons.scorer")
    from scripts.benchmarks.bench_score import minicons_scorer

    peer = minicons_scorer(tiny_bert)
    for variant, metric in (("original", "original"), ("word-l2r", "within_word_l2r")):
        theirs = peer.sequence_score(SENTENCES, reduction=lambda x: x.sum(0).item(), PLL_metric=metric)
        ours = [s.pll for s in score_sentences(tiny_bert, SENTENCES, variant=variant)]
        assert ours == pytest.approx(theirs, abs=1e-4)


def test_batching_changes_nothing_and_projects_one_position_per_copy(tiny_bert, monkeypatch):
    import mlmtool.core.forward as core

    calls = []
    original = core.run_batch

    def spy(model, input_ids, attention_mask, **kw):
        calls.append((int(input_ids.shape[0]), int(kw["rows"].shape[0])))
        return original(model, input_ids, attention_mask, **kw)

    reference = [s.pll for s in score_sentences(tiny_bert, SENTENCES, batch_size=1)]
    monkeypatch.setattr(core, "run_batch", spy)
    for budget in (1, 12, 1000):
        calls.clear()
        got = score_sentences(tiny_bert, SENTENCES, batch_size=budget)
        assert [s.text for s in got] == SENTENCES
        assert [s.pll for s in got] == pytest.approx(reference, abs=1e-5)
        assert all(batch == rows for batch, rows in calls)  # the head sees one row per masked copy
        copies = [len(s.tokens) for s in got]
        assert sum(b for b, _ in calls) == sum(copies)
        if budget == 12:  # copies of several sentences share passes of at most 12, as few as fit
            assert all(b <= 12 for b, _ in calls) and len(calls) == math.ceil(sum(copies) / 12)
        if budget == 1000:
            assert len(calls) == 1


def test_save_writes_the_json_of_to_dict(tiny_bert, tmp_path):
    one = score_sentences(tiny_bert, "the cat sat on the mat .", variant="word-l2r")
    path = one.save(tmp_path / "score.json")
    assert path == tmp_path / "score.json" and json.loads(path.read_text(encoding="utf-8")) == \
        json.loads(json.dumps(one.to_dict()))
    pairs = score_pairs(tiny_bert, [("the cat sat .", "cat the sat .", "order")])
    written = pairs.save(str(tmp_path / "pairs.json"))
    assert written == tmp_path / "pairs.json"
    assert json.loads(written.read_text(encoding="utf-8")) == json.loads(json.dumps(pairs.to_dict()))
    assert pairs.save(written) == written  # an existing file is replaced, as every result's save does


def test_to_dict_and_errors(tiny_bert):
    res = score_sentences(tiny_bert, "the cat sat on the mat .")
    data = json.loads(json.dumps(res.to_dict()))
    assert set(data) >= {"text", "pll", "pppl", "tokens"} and set(data["tokens"][0]) >= {"token", "log_prob"}
    assert [t["token"] for t in data["tokens"]] == ["the", "cat", "sat", "on", "the", "mat", "."]
    with pytest.raises(MlmtoolError, match="empty"):
        score_sentences(tiny_bert, "   ")
    with pytest.raises(MlmtoolError, match="at most 64"):
        score_sentences(tiny_bert, "cat " * 80)
    with pytest.raises(MlmtoolError, match="^variant must be one of") as err:
        score_sentences(tiny_bert, "the cat .", variant="sum")
    assert err.value.param == "variant"


@pytest.mark.parametrize("content,message", [
    ("# comment\n\nthe cat sat .\tthe cat sit .\tagreement\nno tab here\n", "^p.tsv line 4: no TAB"),
    ("the cat sat .\tthe cat sit .\n  \tthe dog .\n", "^p.tsv line 2: the good sentence is empty"),
    ("the cat sat .\t \n", "^p.tsv line 1: the bad sentence is empty"),
    ("# only a comment\n", "no minimal pairs"),
])
def test_read_pairs_names_the_bad_line(tmp_path, content, message):
    path = tmp_path / "p.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(MlmtoolError, match=message):
        read_pairs(path)


def test_pair_accuracy_counts_good_above_bad(tiny_bert):
    pairs = [("the cat sat .", "cat the sat .", "order"), ("a dog ran .", "a dog run .", "agreement"),
             ("we read a book .", "we reads a book .", "agreement")]
    res = score_pairs(tiny_bert, pairs)
    plls = {s.text: s.pll for s in score_sentences(tiny_bert, [t for p in pairs for t in p[:2]])}
    expected = [plls[g] > plls[b] for g, b, _ in pairs]
    assert [p.correct for p in res.pairs] == expected and res.correct == sum(expected) and res.total == 3
    assert res.by_phenomenon() == {"order": (expected[0], 1), "agreement": (expected[1] + expected[2], 2)}
    assert json.loads(json.dumps(res.to_dict()))["pairs"][0]["good_pll"] == pytest.approx(plls["the cat sat ."])


def test_shipped_minimal_pairs():
    pairs = read_pairs(PAIRS_FILE)
    assert len(pairs) >= 60 and all(g != b for g, b, _, _ in pairs)
    counts = {}
    for _, _, phenomenon, _ in pairs:
        counts[phenomenon] = counts.get(phenomenon, 0) + 1
    assert set(counts) == {"subject-verb agreement", "determiner-noun agreement", "irregular forms",
                           "anaphor agreement", "word order"}
    assert min(counts.values()) >= 12


def test_views_show_each_token(tiny_bert):
    from rich.console import Console

    from mlmtool.render.score_view import render_score_html, render_score_png, render_score_text, token_colour

    assert token_colour(0.0) == "#2ca02c" and token_colour(-8.0) == token_colour(-50.0) == "#d62728"
    scores = score_sentences(tiny_bert, ["the cat sat .", "a < b ."])
    console = Console(record=True, width=120, color_system="truecolor")
    console.print(render_score_text(scores, width=30))
    lines = console.export_text().splitlines()
    bars = [l.count("█") for l in lines if "█" in l]
    surprisal = [-t.log_prob for s in scores for t in s.tokens]
    assert len(bars) == len(surprisal) and bars[surprisal.index(max(surprisal))] == 30  # one scale, full bar
    ranked = sorted(zip(surprisal, bars))
    assert all(a[1] <= b[1] for a, b in zip(ranked, ranked[1:]))  # more surprising, never a shorter bar
    assert "PLL" in lines[0] and f"{scores[0].pll:.3f}" in lines[0]
    page = str(render_score_html(scores))
    assert page.count('<tr>') == sum(len(s.tokens) for s in scores) and "&lt;" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    fig = render_score_png(scores)
    assert len(fig.axes) == 2 and [len(a.patches) for a in fig.axes] == [len(s.tokens) for s in scores]
    # in a notebook, the page's style must not restyle the notebook: every rule is scoped to the fragment
    import re

    frag = render_score_html(scores)._repr_html_()
    assert frag.startswith('<div class="mlmtool-score">') and "<body" not in frag and "<html" not in frag
    css = re.search(r"<style>(.*?)</style>", frag, re.S).group(1)
    selectors = [sel.strip() for rule in re.findall(r"([^{}]+)\{[^{}]*\}", css) for sel in rule.split(",")]
    assert selectors and all(sel == ".mlmtool-score" or sel.startswith(".mlmtool-score ") for sel in selectors)
    assert frag.count("<tr>") == page.count("<tr>")


def test_cli_score(runner, tiny_bert_dir, tiny_bert, tmp_path):
    lib = score_sentences(tiny_bert, "the cat sat on the mat .")
    r = runner.invoke(cli, ["score", "-m", str(tiny_bert_dir), "the cat sat on the mat .", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["pll"] == pytest.approx(lib.pll, abs=1e-6) and len(data["tokens"]) == 7
    r = runner.invoke(cli, ["score", "-m", str(tiny_bert_dir), "-", "--json", "--variant", "word-l2r"],
                      input="the cats sat .\n\na dog .\n")
    assert [d["text"] for d in json.loads(r.output)] == ["the cats sat .", "a dog ."]
    # several quoted sentences are one sentence each (the form); bare words are one sentence
    r = runner.invoke(cli, ["score", "-m", str(tiny_bert_dir), "the cat sat .", "a dog ran .", "--json"])
    both = json.loads(r.output)
    assert [d["text"] for d in both] == ["the cat sat .", "a dog ran ."]
    assert both[1]["pll"] == pytest.approx(score_sentences(tiny_bert, "a dog ran .").pll, abs=1e-6)
    r = runner.invoke(cli, ["score", "-m", str(tiny_bert_dir), "the", "cat", "sat", ".", "--json"])
    assert json.loads(r.output)["text"] == "the cat sat ."
    html, png = tmp_path / "s.html", tmp_path / "s.png"
    r = runner.invoke(cli, ["score", "-m", str(tiny_bert_dir), "the cat sat .", "--html", str(html), "--png", str(png)])
    assert r.exit_code == 0 and "PLL" in r.output and "█" in r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "<table>" in html.read_text()
    r = runner.invoke(cli, ["score", "-m", str(tiny_bert_dir), "the cat .", "--html", str(html)])
    assert r.exit_code == 2 and "--overwrite" in r.output


def test_cli_pairs_and_bad_input(runner, tiny_bert_dir, tmp_path):
    good = tmp_path / "pairs.tsv"
    good.write_text("the cat sat .\tcat the sat .\torder\na dog ran .\ta dog run .\tagreement\n", encoding="utf-8")
    r = runner.invoke(cli, ["score", "-m", str(tiny_bert_dir), "--pairs", str(good)])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[-1].startswith("accuracy: ") and "/2 (" in r.output
    r = runner.invoke(cli, ["score", "-m", str(tiny_bert_dir), "--pairs", str(good), "--json"])
    assert len(json.loads(r.output)["pairs"]) == 2
    bad = tmp_path / "bad.tsv"
    bad.write_text("the cat sat .\tcat the sat .\nno tab\n", encoding="utf-8")
    long = tmp_path / "long.tsv"
    long.write_text("# long\nthe cat sat .\tcat the sat .\na dog .\t" + "dog " * 80 + "\n", encoding="utf-8")
    for args, needle in ((["--pairs", str(bad)], "bad.tsv line 2: no TAB"),
                         (["--pairs", str(long)], "line 3, bad sentence: the text is 82 tokens long"),
                         ([""], "the text is empty"),
                         (["cat " * 80], "at most 64")):
        r = runner.invoke(cli, ["score", "-m", str(tiny_bert_dir), *args])
        assert r.exit_code == 2 and r.output.strip().splitlines() == [f"Error: {r.output.strip()[7:]}"]
        assert needle in r.output and "Traceback" not in r.output


@pytest.mark.slow
def test_en_mini_minimal_pairs(runner):
    """en-mini prefers the good sentence of the shipped pairs far above chance (74/80 measured)."""
    from mlmtool.models import load

    res = score_pairs(load("en-mini"), read_pairs(PAIRS_FILE))
    assert res.accuracy >= 0.75
    r = runner.invoke(cli, ["score", "-m", "en-mini", "--pairs", str(PAIRS_FILE)])
    assert f"accuracy: {res.correct}/{res.total}" in r.output
