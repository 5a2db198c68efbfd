"""Tests for ``mlmtool heads``: the scorer (mlmtool.analysis.heads), the report and the CLI.

The scorer's proof is a model with hand-set attention: a tiny BERT whose layer 1 heads 1-3
attend to the next / previous token / themselves by construction (rotations of sinusoidal
position embeddings), and hand-made attention tensors whose answers are known by heart.
Parity: the vectorised metrics equal a naive per-head Python loop on random attention.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mlmtool.analysis.attention import AttentionResult
from mlmtool.errors import MlmtoolError
from mlmtool.analysis.heads.metrics import METRICS, PATTERNS, sentence_metrics, sentence_units, word_attention
from mlmtool.analysis.heads.run import score_heads, score_results
from mlmtool.analysis.heads.scores import head_labels
from mlmtool.analysis.heads.sentences import (cooccurring, dataset_dirs, dataset_path, default_sentences,
                                              parse_pair)

SENTENCES = [
    "the cat sat on the mat .",
    "the dog ran in the park .",
    "she opened the door and let the cat out .",
    "he walked to the bank of the river .",
    "they play in the city at night .",
    "we read a good book .",
    "the big red car was very fast .",
    "the small dog ran quickly to the house .",
    "a happy cat slowly walked in the park .",
]


def make_result(tokens, word_ids, attention, text="") -> AttentionResult:
    """An AttentionResult built by hand (special tokens = word id None)."""
    att = np.asarray(attention, dtype=np.float32)
    return AttentionResult(text=text or " ".join(tokens), tokens=list(tokens), attention=att,
                           word_ids=list(word_ids), special=[w is None for w in word_ids],
                           model_name="stub")


def pattern_attention(seq: int, punct_pos: int) -> np.ndarray:
    """``[2, 4, seq, seq]`` with one known pattern per head (token positions from 0).

    L1: H1 next token, H2 previous token, H3 itself, H4 first token ([CLS]);
    L2: H1 last token ([SEP]), H2 the punctuation token, H3 uniform, H4 0.4 next / 0.3 [CLS] /
    0.3 [SEP] (no pattern reaches 0.5 and it is not broad: "mixed").
    """
    att = np.zeros((2, 4, seq, seq), dtype=np.float32)
    idx = np.arange(seq)
    att[0, 0, idx, np.minimum(idx + 1, seq - 1)] = 1
    att[0, 1, idx, np.maximum(idx - 1, 0)] = 1
    att[0, 2, idx, idx] = 1
    att[0, 3, :, 0] = 1
    att[1, 0, :, seq - 1] = 1
    att[1, 1, :, punct_pos] = 1
    att[1, 2] = 1.0 / seq
    att[1, 3, idx, np.minimum(idx + 1, seq - 1)] += 0.4
    att[1, 3, :, 0] += 0.3
    att[1, 3, :, seq - 1] += 0.3
    return att


def stub_corpus(n: int = 3) -> list[AttentionResult]:
    out = []
    for words in (["the", "cat", "sat", "on", "the", "mat", "."], ["we", "read", "a", "book", "."],
                  ["dogs", "run", ",", "cats", "sleep", "."])[:n]:
        tokens = ["[CLS]"] + words + ["[SEP]"]
        word_ids = [None] + list(range(len(words))) + [None]
        out.append(make_result(tokens, word_ids, pattern_attention(len(tokens), tokens.index("."))))
    return out


# ------------------------------------------------------------------------------------------
# Word-level aggregation (Clark et al. 2019: mean over attending pieces, sum over attended)


def test_word_attention_by_hand():
    # [CLS] play ##ing [SEP]: "playing" is one word made of two pieces.
    a = np.array([[0.1, 0.2, 0.3, 0.4],
                  [0.5, 0.1, 0.1, 0.3],
                  [0.2, 0.2, 0.2, 0.4],
                  [0.0, 0.5, 0.5, 0.0]], dtype=np.float32)
    res = make_result(["[CLS]", "play", "##ing", "[SEP]"], [None, 0, 0, None], a[None, None])
    units = sentence_units(res)
    assert units.names == ["[CLS]", "playing", "[SEP]"]
    assert units.kinds == ["cls", "word", "sep"]
    w = word_attention(res.attention, units.membership)[0, 0]
    expected = np.array([[0.1, 0.2 + 0.3, 0.4],
                         [(0.5 + 0.2) / 2, (0.1 + 0.1 + 0.2 + 0.2) / 2, (0.3 + 0.4) / 2],
                         [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(w, expected, atol=1e-6)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-6)


def test_surface_words_replace_pieces():
    res = make_result(["[CLS]", "play", "##ing", "[SEP]"], [None, 0, 0, None], np.full((1, 1, 4, 4), 0.25))
    assert sentence_units(res, ["Playing"]).names == ["[CLS]", "Playing", "[SEP]"]


def _naive_metrics(att: np.ndarray, res: AttentionResult) -> dict[tuple[str, int, int], float]:
    """Reference: word attention and every metric with plain Python loops over heads and words."""
    groups: dict[int, list[int]] = {}
    units: list[list[int]] = []
    kinds: list[str] = []
    for pos, wid in enumerate(res.word_ids):
        if wid is None:
            units.append([pos])
            kinds.append("cls" if pos == 0 else "sep")
        elif wid in groups:
            groups[wid].append(pos)
        else:
            groups[wid] = [pos]
            units.append(groups[wid])
            kinds.append("word")
    words = [u for u, k in enumerate(kinds) if k == "word"]
    punct = [u for u in words if all(not c.isalnum() for c in res.tokens[units[u][0]])]
    out = {}
    for l in range(att.shape[0]):
        for h in range(att.shape[1]):
            w = [[sum(att[l, h, i, j] for i in units[u] for j in units[v]) / len(units[u])
                  for v in range(len(units))] for u in range(len(units))]
            out["next", l, h] = sum(w[a][b] for a, b in zip(words, words[1:])) / (len(words) - 1)
            out["prev", l, h] = sum(w[b][a] for a, b in zip(words, words[1:])) / (len(words) - 1)
            out["self", l, h] = sum(w[a][a] for a in words) / len(words)
            out["cls", l, h] = sum(w[a][0] for a in words) / len(words)
            out["sep", l, h] = sum(w[a][v] for a in words for v, k in enumerate(kinds) if k == "sep") / len(words)
            out["punct", l, h] = sum(w[a][p] for a in words for p in punct) / len(words)
            ent = [-sum(p * math.log2(p) for p in w[a] if p > 0) for a in words]
            out["entropy", l, h] = sum(ent) / len(words)
            best = [max(words, key=lambda v: w[a][v]) for a in words]
            out["next_peak", l, h] = sum(best[i] == words[i + 1] for i in range(len(words) - 1)) / (len(words) - 1)
            out["prev_peak", l, h] = sum(best[i] == words[i - 1] for i in range(1, len(words))) / (len(words) - 1)
    return out


def test_metrics_match_naive_loop_on_random_attention():
    rng = np.random.default_rng(0)
    tokens = ["[CLS]", "she", "play", "##ing", "the", "gui", "##ta", "##r", ",", "happily", ".", "[SEP]"]
    word_ids = [None, 0, 1, 1, 2, 3, 3, 3, 4, 5, 6, None]
    att = rng.dirichlet(np.ones(len(tokens)) * 0.5, size=(3, 4, len(tokens))).astype(np.float32)
    res = make_result(tokens, word_ids, att)
    units = sentence_units(res)
    got = sentence_metrics(word_attention(att, units.membership), units)
    ref = _naive_metrics(att, res)
    for (metric, l, h), value in ref.items():
        assert got[METRICS.index(metric), l, h] == pytest.approx(value, abs=1e-5), (metric, l, h)
    n_units = len(units.names)
    np.testing.assert_allclose(got[METRICS.index("broadness")],
                               got[METRICS.index("entropy")] / math.log2(n_units), rtol=1e-6)


def test_undefined_metrics_are_nan():
    # One word, no punctuation: next/prev/punct undefined, the rest defined.
    res = make_result(["[CLS]", "cat", "[SEP]"], [None, 0, None], np.full((1, 2, 3, 3), 1 / 3))
    units = sentence_units(res)
    got = sentence_metrics(word_attention(res.attention, units.membership), units)
    for metric in ("next", "prev", "punct", "next_peak", "prev_peak"):
        assert np.isnan(got[METRICS.index(metric)]).all(), metric
    assert got[METRICS.index("self")] == pytest.approx(1 / 3)


# ------------------------------------------------------------------------------------------
# The scorer finds hand-set heads


def test_score_results_finds_each_hand_set_head():
    scores = score_results(stub_corpus())
    expected = {"next": (1, 1), "prev": (1, 2), "self": (1, 3), "cls": (1, 4), "sep": (2, 1), "punct": (2, 2)}
    for metric, (layer, head) in expected.items():
        (l, h, s), = scores.top(metric, 1)
        assert (l, h) == (layer, head), metric
        assert s == pytest.approx(1.0), metric
    assert scores.score("next_peak")[0, 0] == pytest.approx(1.0)
    assert scores.score("prev_peak")[0, 1] == pytest.approx(1.0)
    # The uniform head is the broadest (broadness 1) and the one-target heads have 0 bits.
    assert scores.top("broadness", 1)[0][:2] == (2, 3)
    assert scores.score("broadness")[1, 2] == pytest.approx(1.0, abs=1e-5)
    assert scores.score("entropy")[0, 0] == pytest.approx(0.0, abs=1e-5)
    labels = head_labels(scores)
    assert labels.tolist() == [["next", "prev", "self", "cls"], ["sep", "punct", "broad", "mixed"]]
    assert scores.special_names == {"cls": "[CLS]", "sep": "[SEP]"}
    assert scores.examples["next"].layer == 1 and scores.examples["next"].head == 1
    assert all(k.weight == pytest.approx(1.0) for k in scores.examples["next"].links)


def test_word_level_next_for_split_words():
    # A token-level "next token" head: for the two-piece word "playing" half of its
    # (mean) row stays inside the word, so word-level next = (1 + 0.5 + 1) / 3 words with a next word.
    tokens = ["[CLS]", "she", "play", "##ing", "the", "cat", "[SEP]"]
    word_ids = [None, 0, 1, 1, 2, 3, None]
    att = np.zeros((1, 1, 7, 7), np.float32)
    idx = np.arange(7)
    att[0, 0, idx, np.minimum(idx + 1, 6)] = 1
    scores = score_results([make_result(tokens, word_ids, att)])
    assert scores.score("next")[0, 0] == pytest.approx((1 + 0.5 + 1) / 3)
    assert scores.score("self")[0, 0] == pytest.approx(0.5 / 4)


@pytest.fixture(scope="module")
def hand_set_bert(tiny_bert_dir):
    """Tiny BERT whose layer 1 heads 1, 2, 3 attend to the next token, the previous token, itself.

    Word embeddings are zero, so layer 1 sees only position embeddings p_i = (cos iθ, sin iθ,
    -cos iθ, -sin iθ, 0...), which LayerNorm scales by 4. Head h's key reads (x0, x1) and its
    query is that vector rotated by φ_h and scaled by c, so the score is ∝ cos((i - j)θ + φ_h):
    largest at j = i + 1 for φ = θ, j = i - 1 for φ = -θ, j = i for φ = 0.
    """
    import torch

    from mlmtool.models import load

    lm = load(str(tiny_bert_dir))
    emb = lm.model.bert.embeddings
    theta, c = 0.25, 60.0
    with torch.no_grad():
        emb.word_embeddings.weight.zero_()
        emb.token_type_embeddings.weight.zero_()
        pos = torch.zeros_like(emb.position_embeddings.weight)
        i = torch.arange(pos.shape[0], dtype=torch.float32)
        pos[:, 0], pos[:, 1], pos[:, 2], pos[:, 3] = (torch.cos(i * theta), torch.sin(i * theta),
                                                      -torch.cos(i * theta), -torch.sin(i * theta))
        emb.position_embeddings.weight.copy_(pos)
        attn = lm.model.bert.encoder.layer[0].attention.self
        size = attn.attention_head_size
        attn.query.weight.zero_(); attn.query.bias.zero_()
        attn.key.weight.zero_(); attn.key.bias.zero_()
        for head, phi in enumerate([theta, -theta, 0.0]):
            r = head * size
            attn.query.weight[r:r + 2, 0:2] = c * torch.tensor([[math.cos(phi), -math.sin(phi)],
                                                                [math.sin(phi), math.cos(phi)]])
            attn.key.weight[r, 0] = attn.key.weight[r + 1, 1] = 1.0
    return lm


def test_scorer_finds_hand_set_heads_in_a_real_model(hand_set_bert):
    scores = score_heads(hand_set_bert, SENTENCES, batch_size=4)
    assert (scores.num_layers, scores.num_heads) == (2, 4)
    for metric, head in (("next", 1), ("prev", 2), ("self", 3)):
        (l, h, s), = scores.top(metric, 1)
        assert (l, h) == (1, head), metric
        assert s > 0.99, metric
    assert scores.score("next_peak")[0, 0] == pytest.approx(1.0)
    assert scores.score("prev_peak")[0, 1] == pytest.approx(1.0)
    assert head_labels(scores)[0, :3].tolist() == ["next", "prev", "self"]


def test_word_rows_sum_to_one_on_a_real_model(tiny_bert):
    from mlmtool.analysis.attention import attention

    for res in attention(tiny_bert, ["she opened the door and let the cat out .", "running runs"]):
        units = sentence_units(res)
        w = word_attention(res.attention, units.membership)
        np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)


def test_roberta_special_tokens_named(tiny_roberta):
    from mlmtool.analysis.attention import attention

    scores = score_heads(tiny_roberta, SENTENCES[:3])
    assert scores.special_names == {"cls": "<s>", "sep": "</s>"}
    assert scores.title("sep") == "</s>"
    # Byte-level BPE (Ġ pieces): every metric equals the naive per-head loop on the same
    # attention, averaged over the sentences, and attention to <s> + </s> + all words is 1.
    refs = [_naive_metrics(res.attention, res) for res in attention(tiny_roberta, SENTENCES[:3])]
    for metric in ("prev", "next", "self", "cls", "sep", "entropy"):
        expected = np.array([[np.mean([r[metric, l, h] for r in refs]) for h in range(4)] for l in range(2)])
        np.testing.assert_allclose(scores.score(metric), expected, atol=1e-5, err_msg=metric)
    assert (scores.score("prev") > 0).all() and (scores.score("cls") > 0).all()


# ------------------------------------------------------------------------------------------
# Pairs


def test_pair_scores_by_hand():
    # quickly (word 2) → ran (word 1): head (0,1) attends to the previous token (= ran).
    tokens = ["[CLS]", "dogs", "ran", "quickly", ".", "[SEP]"]
    att = pattern_attention(len(tokens), 4)
    res = make_result(tokens, [None, 0, 1, 2, 3, None], att)
    other = stub_corpus(1)[0]
    scores = score_results([res, other], pairs=["quickly:ran"])
    pair, = scores.pairs
    assert (pair.n_sentences, pair.n_occurrences, pair.sentences) == (1, 1, [0])
    assert pair.offsets == {-1: 1}
    assert pair.attention[0, 1] == pytest.approx(1.0)
    assert pair.hit_rate[0, 1] == pytest.approx(1.0)
    assert pair.attention[0, 0] == pytest.approx(0.0)  # next-token head looks at "."
    assert pair.top(1)[0][:2] == (1, 2)
    assert pair.example.layer == 1 and pair.example.head == 2
    assert pair.attention[1, 2] == pytest.approx(1 / 6)  # uniform over 6 tokens


def test_parse_pair():
    assert parse_pair("quickly:ran") == ("quickly", "ran")
    assert parse_pair(" big|red : car ") == ("big|red", "car")
    for bad in ("quickly", "a:b:c", ":ran", "quickly:", "|:x"):
        with pytest.raises(MlmtoolError, match="WORD:WORD"):
            parse_pair(bad)


def test_cooccurring_counts_distinct_words():
    words = [["The", "cat", "sat"], ["the", "dog"], ["a", "cat", "the", "cat"]]
    texts = [" ".join(w) for w in words]
    assert cooccurring(words, texts, ("cat", "the")) == 2
    assert cooccurring(words, texts, ("the", "the")) == 0
    assert cooccurring(words, texts, ("cat", "cat")) == 1
    assert cooccurring(words, texts, ("dog|sat", "THE")) == 2


def test_pair_that_never_cooccurs_fails_before_the_model_runs(tiny_bert, monkeypatch):
    import mlmtool.core.forward

    monkeypatch.setattr(mlmtool.core.forward, "iter_forward", lambda *a, **k: pytest.fail("model ran"))
    with pytest.raises(MlmtoolError, match="never occur in the same sentence"):
        score_heads(tiny_bert, SENTENCES, pairs=["dog:mat"])


# ------------------------------------------------------------------------------------------
# Input handling


def test_long_sentences_are_skipped_and_counted(tiny_bert):
    long = " ".join(["the cat"] * 40)  # 80 words > 64 positions
    scores = score_heads(tiny_bert, SENTENCES[:3] + [long, "", "  "])
    assert scores.n_skipped == 1
    assert scores.sentences == SENTENCES[:3]
    with pytest.raises(MlmtoolError, match="all 2 are longer") as err:
        score_heads(tiny_bert, [long, long])
    assert err.value.param == "sentences"
    with pytest.raises(MlmtoolError, match="empty"):
        score_heads(tiny_bert, ["", " "])


def test_batches_give_the_same_scores_in_input_order(tiny_bert):
    # Batches come from the forward core longest first; every row must land on its sentence.
    one = score_heads(tiny_bert, SENTENCES, batch_size=1)
    many = score_heads(tiny_bert, SENTENCES, batch_size=4)
    np.testing.assert_allclose(one.per_sentence, many.per_sentence, atol=1e-5)
    alone = score_heads(tiny_bert, [SENTENCES[2]])
    np.testing.assert_allclose(many.per_sentence[2], alone.per_sentence[0], atol=1e-5)
    done = []
    score_heads(tiny_bert, SENTENCES, batch_size=4, progress=lambda d, n: done.append((d, n)))
    assert done[-1] == (len(SENTENCES), len(SENTENCES)) and len(done) == len(SENTENCES)


def test_default_sentence_sets_are_shipped():
    en = default_sentences("en")
    assert len(en) >= 300 and len(set(en)) == len(en)
    for lang in ("fr", "de", "zh", "ja", "multi"):
        assert 30 <= len(default_sentences(lang)) <= 60, lang
    with pytest.raises(MlmtoolError, match="lang 'xx' has no default sentence set"):
        default_sentences("xx")


def test_dataset_override(tmp_path, monkeypatch):
    (tmp_path / "heads").mkdir()
    (tmp_path / "heads" / "en.txt").write_text("one .\n\ntwo .\n", encoding="utf-8")
    monkeypatch.setenv("MLMTOOL_DATASETS", str(tmp_path))
    assert dataset_dirs()[0] == tmp_path / "heads"
    assert dataset_path("en") == tmp_path / "heads" / "en.txt"
    assert default_sentences("en") == ["one .", "two ."]
    assert len(default_sentences("fr")) >= 30  # falls back to the shipped set


# ------------------------------------------------------------------------------------------
# JSON and report


def test_to_dict_numbers_heads_from_one():
    scores = score_results(stub_corpus(), pairs=["cat:the"])
    data = json.loads(json.dumps(scores.to_dict()))
    assert data["format"] == "mlmtool-heads" and data["version"] == 1
    assert [(h["layer"], h["head"]) for h in data["heads"]][:5] == [(1, 1), (1, 2), (1, 3), (1, 4), (2, 1)]
    assert len(data["heads"]) == 8
    assert data["heads"][0]["label"] == "next"
    assert data["heads"][0]["scores"]["next"] == pytest.approx(1.0)
    assert data["matrices"]["prev"][0][1] == pytest.approx(1.0)
    assert data["top"]["sep"][0] == {"layer": 2, "head": 1, "score": pytest.approx(1.0)}
    assert data["examples"]["next"]["layer"] == 1
    assert data["pairs"][0]["source"] == "cat" and data["pairs"][0]["n_sentences"] == 1
    assert {m["name"] for m in data["metrics"]} == set(METRICS)


def test_nan_becomes_null_in_json():
    res = make_result(["[CLS]", "cat", "[SEP]"], [None, 0, None], np.full((1, 1, 3, 3), 1 / 3))
    data = json.loads(json.dumps(score_results([res]).to_dict()))
    assert data["heads"][0]["scores"]["next"] is None
    assert data["heads"][0]["scores"]["punct"] is None


def test_analysis_markdown_and_heatmaps(tmp_path):
    from mlmtool.render.heads_view import (render_heads_markdown, render_metric_heatmap, report_filenames,
                                             save_heads_report)

    scores = score_results(stub_corpus(), pairs=["cat:the"])
    md = render_heads_markdown(scores)
    assert "Clark" in md and "L1-H1" in md
    for metric in PATTERNS:
        assert f"heatmap_{metric}.png" in md
    assert "## Attention to the next word\n\nL1-H1 gives 100%" in md
    assert "## Pair 1: does *cat* attend to *the*?" in md
    fig = render_metric_heatmap(scores, "next")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3", "4"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1", "2"]
    paths = save_heads_report(scores, tmp_path)
    assert sorted(p.name for p in paths) == sorted(report_filenames([("cat", "the")]))
    assert all(p.stat().st_size > 0 for p in paths)


# ------------------------------------------------------------------------------------------
# CLI


def _cli(runner, *args, **kwargs):
    from mlmtool.cli import cli

    return runner.invoke(cli, ["heads", *args], **kwargs)


@pytest.fixture
def sentence_file(tmp_path):
    path = tmp_path / "sents.txt"
    path.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    return path


def test_cli_writes_report(runner, tiny_bert_dir, sentence_file, tmp_path):
    out = tmp_path / "out"
    result = _cli(runner, "-i", str(sentence_file), "-m", str(tiny_bert_dir), "-o", str(out), "-p", "cat:the",
                  "-k", "2")
    assert result.exit_code == 0, result.output
    from mlmtool.render.heads_view import report_filenames

    assert sorted(p.name for p in out.iterdir()) == sorted(report_filenames([("cat", "the")]))
    data = json.loads((out / "heads.json").read_text(encoding="utf-8"))
    assert data["n_sentences"] == len(SENTENCES) and data["num_layers"] == 2
    assert "L1-H" in result.output and "pair 1 cat → the" in result.output


def test_cli_json_and_default_set(runner, tiny_bert_dir, tmp_path):
    result = _cli(runner, "-m", str(tiny_bert_dir), "-n", "12", "--json", "-o", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["n_sentences"] == 12
    assert "shipped en sentence set" in result.stderr


def test_cli_reads_text_by_the_one_grammar(runner, tiny_bert_dir, tmp_path):
    # TEXT words are ONE sentence; `-` reads one sentence per stdin line.
    one = _cli(runner, "the", "cat", "sat", "on", "the", "mat", ".", "-m", str(tiny_bert_dir), "--json",
               "-o", str(tmp_path / "a"))
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout)["n_sentences"] == 1
    lines = _cli(runner, "-", "-m", str(tiny_bert_dir), "--json", "-o", str(tmp_path / "b"),
                 input="\n".join(SENTENCES[:4]) + "\n")
    assert lines.exit_code == 0, lines.output
    assert json.loads(lines.stdout)["n_sentences"] == 4


def test_cli_old_spellings_still_work_with_a_note(runner, tiny_bert_dir, sentence_file, tmp_path):
    result = _cli(runner, "-i", str(sentence_file), "-m", str(tiny_bert_dir), "--out", str(tmp_path / "o"),
                  "--top", "1")
    assert result.exit_code == 0, result.output
    assert "--out is now -o/--output" in result.stderr and "--top is now -k/--top-k" in result.stderr
    assert (tmp_path / "o" / "analysis.md").is_file()
    assert result.stdout.count("L1-H") + result.stdout.count("L2-H") <= 7  # one head per row


def test_cli_bad_input_exits_2_without_writing(runner, tiny_bert_dir, sentence_file, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    out = tmp_path / "out"
    cases = [
        (["-i", str(empty)], "input"),
        (["-i", str(sentence_file), "-p", "cat"], "WORD:WORD"),
        (["-i", str(sentence_file), "-p", "dog:mat"], "--pair 'dog:mat': the two words never occur"),
        ([" ".join(["the cat"] * 40)], "longer than"),
        (["-i", str(sentence_file), "--threshold", "2"], "threshold"),
        (["-i", str(sentence_file), "-t", "0.3"], "-t no longer means --threshold; write --threshold 0.3"),
        ([str(sentence_file)], f"use -i {sentence_file}"),
    ]
    for args, message in cases:
        result = _cli(runner, *args, "-m", str(tiny_bert_dir), "-o", str(out))
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
        assert not out.exists() or not any(out.iterdir()), args


def test_cli_never_overwrites_without_flag(runner, tiny_bert_dir, sentence_file, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "analysis.md").write_text("my notes", encoding="utf-8")
    (out / "other.txt").write_text("keep", encoding="utf-8")
    result = _cli(runner, "-i", str(sentence_file), "-m", str(tiny_bert_dir), "-o", str(out))
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert (out / "analysis.md").read_text(encoding="utf-8") == "my notes"
    result = _cli(runner, "-i", str(sentence_file), "-m", str(tiny_bert_dir), "-o", str(out), "--overwrite")
    assert result.exit_code == 0, result.output
    assert (out / "analysis.md").read_text(encoding="utf-8").startswith("# What the attention heads")
    assert (out / "other.txt").read_text(encoding="utf-8") == "keep"


def test_cli_skips_long_sentences_with_a_count(runner, tiny_bert_dir, tmp_path):
    path = tmp_path / "mixed.txt"
    path.write_text("\n".join(SENTENCES[:4] + [" ".join(["the cat"] * 40)]), encoding="utf-8")
    result = _cli(runner, "-i", str(path), "-m", str(tiny_bert_dir), "-o", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert "Skipped 1 sentence(s) longer than the 64 tokens" in result.stderr


# ------------------------------------------------------------------------------------------
# The real MiniLM encoder


@pytest.mark.slow
def test_minilm_next_and_previous_heads_peak_at_plus_minus_one(minilm):
    scores = score_heads(minilm, default_sentences("en")[:300])
    (pl, ph, ps), = scores.top("prev", 1)
    (nl, nh, ns), = scores.top("next", 1)
    # The top heads really peak at offset -1 / +1 on most words.
    assert scores.score("prev_peak")[pl - 1, ph - 1] > 0.9
    assert scores.score("next_peak")[nl - 1, nh - 1] > 0.9
    assert ps > 0.5 and ns > 0.5
    labels = head_labels(scores)
    assert labels[pl - 1, ph - 1] == "prev" and labels[nl - 1, nh - 1] == "next"
