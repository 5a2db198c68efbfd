"""``mlmtool probe``: label probes with control tasks and the structural probe.

A planted direction gives a known answer; the structural probe's metrics and loss are checked
against references written here (scipy's MST and Spearman; Hewitt & Manning's formula);
the command runs on the UD treebanks of five languages and refuses bad input in one line.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

UD = Path(__file__).resolve().parents[2] / "shared" / "data" / "ud"

#: A toy grammar in the tiny BERT's vocabulary: DET NOUN VERB ADP DET NOUN PUNCT.
_WORDS = {"DET": ["the", "a"], "NOUN": ["cat", "dog", "mat", "house", "tree", "car", "book", "park"],
          "VERB": ["sat", "ran", "walked", "played"], "ADP": ["on", "in", "of", "to"], "PUNCT": ["."]}
_SHAPE = [("DET", 2, "det"), ("NOUN", 3, "nsubj"), ("VERB", 0, "root"), ("ADP", 6, "case"), ("DET", 6, "det"),
          ("NOUN", 3, "obl"), ("PUNCT", 3, "punct")]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One BLAS and torch thread: on a busy 2-core machine threads only contend."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


def write_conllu(path: Path, n: int, seed: int = 0, extra_label: str | None = None) -> Path:
    """``n`` toy sentences (seeded); ``extra_label`` replaces the last sentence's first UPOS."""
    rng = random.Random(seed)
    blocks = []
    for s in range(n):
        lines = []
        for i, (tag, head, rel) in enumerate(_SHAPE, 1):
            form = rng.choice(_WORDS[tag])
            tag = extra_label if (extra_label and s == n - 1 and i == 1) else tag
            lines.append(f"{i}\t{form}\t{form}\t{tag}\t{tag[:2]}\t_\t{head}\t{rel}\t_\t_")
        blocks.append("\n".join(lines))
    path.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return path


@pytest.fixture
def toy(tmp_path):
    return write_conllu(tmp_path / "train.conllu", 40, 0), write_conllu(tmp_path / "test.conllu", 20, 1)


def test_planted_direction_gives_accuracy_one_and_high_selectivity(tiny_bert, toy, monkeypatch):
    from mlmtool.analysis.probe import probe, run

    tags = sorted(_WORDS)

    def planted(lm, sents, layers, batch_size=32):  # [layers, W, D]: noise; layer 1 carries the tag
        rng = np.random.default_rng(len(sents))
        x = rng.normal(size=(len(layers), sents.n_words, 32)).astype(np.float32)
        k = list(layers).index(1)
        x[k] *= 0.1
        for w, tag in enumerate(sents.labels["upos"]):
            x[k, w, tags.index(tag)] += 3.0
        return x.astype(np.float16)

    monkeypatch.setattr(run, "word_states", planted)
    result = probe(tiny_bert, *toy, tasks=["upos"], control=True)
    rows = {r["layer"]: r["upos"] for r in result.to_dict()["layers"]}
    assert rows[1]["accuracy"] == 1.0 and result.best("upos") == 1
    assert rows[1]["control_accuracy"] < 0.75 and rows[1]["selectivity"] > 0.25
    assert rows[0]["accuracy"] < 0.9 and rows[2]["accuracy"] < 0.9


def _sentences(tiny_bert, path):
    from mlmtool.analysis.probe.data import prepare, read_treebank

    return prepare(tiny_bert, *read_treebank(path, "test"))


def _mixed_lengths(tmp_path) -> Path:
    """Toy sentences of 4 to 7 words (the punctuation kept), so DSpr averages over lengths."""
    text = write_conllu(tmp_path / "base.conllu", 12, 3).read_text(encoding="utf-8")
    blocks = text.strip().split("\n\n")
    out = []
    for b, block in enumerate(blocks):
        lines = block.split("\n")
        keep = 7 - b % 4  # drop trailing words; heads into dropped words go to the verb
        kept = [ln.split("\t") for ln in lines[:keep]]
        for f in kept:
            f[6] = f[6] if int(f[6]) <= keep else "3"
        out.append("\n".join("\t".join(f) for f in kept))
    path = tmp_path / "mixed.conllu"
    path.write_text("\n\n".join(out) + "\n\n", encoding="utf-8")
    return path


def test_structural_metrics_equal_scipy_references(tiny_bert, tmp_path):
    from scipy.sparse.csgraph import minimum_spanning_tree
    from scipy.stats import spearmanr

    from mlmtool.analysis.probe import structural as st

    sents = _sentences(tiny_bert, _mixed_lengths(tmp_path))
    rng = np.random.default_rng(0)
    gold_d, gold_n = st.gold_targets(sents, "distance"), st.gold_targets(sents, "depth")
    pred_d = []
    for g in gold_d:
        a = rng.random(g.shape) + 0.01
        pred_d.append(((a + a.T) / 2 * (1 - np.eye(len(g)))).astype(np.float32))
    pred_n = [rng.random(len(g)).astype(np.float32) for g in gold_n]
    right = total = roots = 0
    by_len_d, by_len_n = {}, {}
    for i, (pd, gd, pn, gn) in enumerate(zip(pred_d, gold_d, pred_n, gold_n)):
        a, b = sents.offsets[i], sents.offsets[i + 1]
        keep = np.array([t != "PUNCT" for t in sents.labels["upos"][a:b]])
        words = np.flatnonzero(keep)
        mst = minimum_spanning_tree(pd[np.ix_(words, words)]).tocoo()
        found = {tuple(sorted((int(words[r]), int(words[c])))) for r, c in zip(mst.row, mst.col)}
        heads = sents.heads[a:b] - a
        gold = {tuple(sorted((w, int(h)))) for w, h in enumerate(heads) if sents.heads[a + w] >= 0
                and keep[w] and keep[h]}
        right, total = right + len(gold & found), total + len(gold)
        roots += int(words[pn[words].argmin()] == np.flatnonzero(sents.heads[a:b] < 0)[0])
        n = len(gd)
        by_len_d.setdefault(n, []).extend(spearmanr(pd[r], gd[r])[0] for r in range(n))
        by_len_n.setdefault(n, []).append(spearmanr(pn, gn)[0])
    got_d, got_n = st.evaluate("distance", pred_d, gold_d, sents), st.evaluate("depth", pred_n, gold_n, sents)
    assert got_d["uuas"] == pytest.approx(right / total)
    assert got_d["dspr"] == pytest.approx(np.mean([np.mean(v) for n, v in by_len_d.items() if 5 <= n <= 50]))
    assert got_n["nspr"] == pytest.approx(np.mean([np.mean(v) for n, v in by_len_n.items() if 5 <= n <= 50]))
    assert got_n["root_accuracy"] == pytest.approx(roots / len(sents))


def test_losses_equal_the_papers_formula_on_a_hand_sized_batch():
    import torch

    from mlmtool.analysis.probe.structural import depth_loss, distance_loss

    pred = torch.tensor([[[0.0, 2.0, 9.0], [2.0, 0.0, 9.0], [9.0, 9.0, 9.0]],
                         [[0.0, 0.5, 3.0], [0.5, 0.0, 1.0], [3.0, 1.0, 0.0]]])
    gold = torch.tensor([[[0.0, 1.0, -1.0], [1.0, 0.0, -1.0], [-1.0, -1.0, -1.0]],
                         [[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]]])
    lengths = torch.tensor([2, 3])
    # 1/|S| sum_s 1/n_s^2 sum_ij |d_pred - d_T|: sentence 1 = (1 + 1) / 4, sentence 2 = (0.5*2 + 1*2) / 9
    assert float(distance_loss(pred, gold, lengths)) == pytest.approx(((2 / 4) + (3 / 9)) / 2)
    pd, gd = torch.tensor([[0.5, 2.0, 7.0], [1.0, 0.0, 2.5]]), torch.tensor([[0.0, 1.0, -1.0], [0.0, 1.0, 2.0]])
    # 1/|S| sum_s 1/n_s sum_i |depth_pred - depth_T|
    assert float(depth_loss(pd, gd, lengths)) == pytest.approx(((0.5 + 1.0) / 2 + (1.0 + 1.0 + 0.5) / 3) / 2)


def test_mst_is_a_spanning_tree_of_least_weight():
    from scipy.sparse.csgraph import minimum_spanning_tree

    from mlmtool.analysis.probe.structural import mst_edges

    a = np.random.default_rng(1).random((9, 9)) + 0.01
    d = (a + a.T) / 2
    ours = mst_edges(d)
    assert len(ours) == 8
    assert sum(d[i, j] for i, j in ours) == pytest.approx(minimum_spanning_tree(np.triu(d, 1)).sum())


def test_cli_trains_saves_and_loads(tiny_bert_dir, toy, runner, tmp_path):
    from mlmtool.cli import cli as main

    train, test = toy
    args = ["probe", "-m", str(tiny_bert_dir), "--train", str(train), "--test", str(test), "--epochs", "2",
            "--rank", "8", "--control"]
    res = runner.invoke(main, args + ["--json", "-o", str(tmp_path / "out"), "--html", str(tmp_path / "p.html"),
                                      "--png", str(tmp_path / "p.png")])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [r["layer"] for r in data["layers"]] == [0, 1, 2]
    assert set(data["layers"][0]) == {"layer", "upos", "deprel", "distance", "depth"}
    assert set(data["layers"][0]["upos"]) == {"accuracy", "control_accuracy", "selectivity"}
    assert set(data["layers"][0]["depth"]) == {"root_accuracy", "nspr"}
    assert data["counts"]["test_sentences"] == 20 and data["counts"]["train_skipped"] == 0
    assert {"probe.md", "probe.json", "probes.safetensors", "probes.json"} <= {p.name for p in (tmp_path / "out").iterdir()}
    assert "<img" in (tmp_path / "p.html").read_text() and (tmp_path / "p.png").stat().st_size > 1000
    again = runner.invoke(main, ["probe", "-m", str(tiny_bert_dir), "--test", str(test), "--json",
                                 "--load", str(tmp_path / "out")])
    assert again.exit_code == 0, again.output
    loaded = json.loads(again.stdout)
    for a, b in zip(data["layers"], loaded["layers"]):
        assert a["upos"]["accuracy"] == b["upos"]["accuracy"] and a["distance"] == b["distance"]


def test_unseen_test_labels_exit_2_unless_ignored(tiny_bert_dir, tmp_path, runner):
    from mlmtool.cli import cli as main

    train = write_conllu(tmp_path / "train.conllu", 20, 0)
    test = write_conllu(tmp_path / "test.conllu", 5, 1, extra_label="INTJ")
    args = ["probe", "-m", str(tiny_bert_dir), "--train", str(train), "--test", str(test), "-t", "upos",
            "-t", "deprel", "--layers", "0-1", "--control"]
    res = runner.invoke(main, args)
    assert res.exit_code == 2 and "Traceback" not in res.output
    (line,) = [ln for ln in res.output.splitlines() if ln.startswith("Error")]
    assert "never seen in training: upos INTJ (1)" in line and "--ignore-unseen" in line
    res = runner.invoke(main, args + ["--ignore-unseen", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["unseen_labels"] == {"upos": {"INTJ": 1}} and data["counts"]["test_unseen_upos"] == 1
    assert "skipped 1 test words of upos" in res.stderr
    assert data["baselines"]["upos"]["majority"] == pytest.approx(9 / 34, abs=1e-4)  # DET (tied with NOUN, met first): 10 less the INTJ


BAD = {"missing": "does not exist", "empty": "no sentences", "not_conllu": "not CoNLL-U", "layers": "0-2",
       "task": "chunk", "load": "trained on model", "load_nothing": "no saved probes",
       "load_unseen": "never seen in training: upos INTJ (1)", "layers_syntax": "0 = the embedding output"}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_exit_2(case, tiny_bert_dir, tiny_encoder_dir, toy, saved_probes, runner,
                                          tmp_path):
    from mlmtool.cli import cli as main

    train, test = toy
    args = {"missing": ["--train", str(tmp_path / "nope.conllu"), "--test", str(test)],
            "empty": ["--train", str(tmp_path / "empty.conllu"), "--test", str(test)],
            "not_conllu": ["--train", str(train), "--test", str(tmp_path / "plain.txt")],
            "layers": ["--train", str(train), "--test", str(test), "--layers", "0-7"],
            "task": ["--train", str(train), "--test", str(test), "-t", "chunk"],
            "layers_syntax": ["--train", str(train), "--test", str(test), "--layers", "1:2"],
            "load": ["--test", str(test), "--load", str(tmp_path / "saved")],
            "load_nothing": ["--test", str(test), "--load", str(tmp_path)],
            "load_unseen": ["--test", str(write_conllu(tmp_path / "intj.conllu", 3, 1, extra_label="INTJ")),
                            "--load", str(saved_probes[0])]}[case]
    (tmp_path / "empty.conllu").write_text("", encoding="utf-8")
    (tmp_path / "plain.txt").write_text("the cat sat on the mat .\n", encoding="utf-8")
    model = str(tiny_bert_dir)
    if case == "load":  # probes saved for the encoder-only copy's name, read with the MLM model
        from mlmtool.analysis.probe import ProbeConfig, probe
        from mlmtool.models import load

        (tmp_path / "saved").mkdir()
        probe(load(str(tiny_encoder_dir)), train, test, tasks=["upos"], layers=[0],
              config=ProbeConfig(max_iter=20)).probes.save(tmp_path / "saved")
    res = runner.invoke(main, ["probe", "-m", model] + args)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("Error")]
    assert len(lines) == 1 and "Traceback" not in res.output
    assert BAD[case] in lines[0]


def test_layers_option_takes_ranges_and_lists():
    from mlmtool.commands.probe import parse_probe_layers

    assert parse_probe_layers("0-3") == [0, 1, 2, 3] and parse_probe_layers("4") == [4]
    assert parse_probe_layers("0, 6,10-12") == [0, 6, 10, 11, 12] and parse_probe_layers(None) is None


def test_facade_and_renderers(tiny_bert, toy):
    import mlmtool
    from mlmtool.render.probe_view import render_probe_markdown, render_probe_table

    result = mlmtool.probe(tiny_bert, *toy, tasks=["upos", "distance"], layers=(1, 2),
                           config=mlmtool.analysis.probe.ProbeConfig(epochs=1, rank=4, max_iter=20))
    assert isinstance(result, mlmtool.ProbeResult) and result.layers == [1, 2]
    fig = mlmtool.render_probe(result)
    assert len(fig.axes) == 2
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    assert mlmtool.render_probe(result, ax=ax) is ax.figure
    assert "| layer |" in render_probe_markdown(result) and render_probe_table(result).row_count == 3  # + majority


LANG_FILES = {"en": "en_ewt", "fr": "fr_gsd", "de": "de_gsd", "zh": "zh_gsdsimp", "ja": "ja_gsd"}


@pytest.mark.slow
@pytest.mark.skipif(not UD.is_dir(), reason="UD treebanks not in ../shared/data/ud")
@pytest.mark.parametrize("lang", list(LANG_FILES))
def test_every_ud_treebank_runs_on_a_tiny_model_of_its_kind(lang, tiny_bert, tmp_path, tmp_path_factory):
    from mlmtool.analysis.probe import ProbeConfig, probe

    blocks = (UD / f"{LANG_FILES[lang]}-ud-dev.conllu").read_text(encoding="utf-8").strip().split("\n\n")
    train, test = tmp_path / "train.conllu", tmp_path / "test.conllu"
    train.write_text("\n\n".join(blocks[:30]) + "\n\n", encoding="utf-8")
    test.write_text("\n\n".join(blocks[30:45]) + "\n\n", encoding="utf-8")
    if lang == "en":
        lm = tiny_bert
    else:
        from test_multilingual import build_model

        from mlmtool.models import load

        lm = load(str(build_model(lang, tmp_path_factory.mktemp(f"probe-{lang}"))))
    result = probe(lm, train, test, tasks=["upos", "xpos", "deprel", "distance", "depth"], layers=[0, 1],
                   config=ProbeConfig(epochs=1, rank=8, max_iter=30), ignore_unseen=True)
    c = result.counts
    assert c["train_sentences"] + c["train_skipped"] + c["train_unaligned"] == 30
    assert c["test_words"] > 0
    for row in result.to_dict()["layers"]:
        assert 0 <= row["upos"]["accuracy"] <= 1 and 0 <= row["distance"]["uuas"] <= 1


@pytest.fixture(scope="module")
def saved_probes(tiny_bert, tmp_path_factory):
    """Probes of every word task trained on toy sentences and saved (``-o DIR``)."""
    from mlmtool.analysis.probe import ProbeConfig, probe

    tmp = tmp_path_factory.mktemp("probe-saved")
    train, test = write_conllu(tmp / "train.conllu", 30, 0), write_conllu(tmp / "test.conllu", 5, 1)
    result = probe(tiny_bert, train, test, tasks=["upos", "distance", "depth"],
                   config=ProbeConfig(epochs=1, rank=4, max_iter=50))
    return result.probes.save(tmp), result.probes


def test_predict_words_reads_each_word_as_the_trained_probe_does(tiny_bert, saved_probes):
    from mlmtool.analysis.embed import word_vectors
    from mlmtool.analysis.probe import predict_words

    folder, probes = saved_probes
    text = "The cats sat on the mat ."  # "cats" = cat ##s: a word of two pieces
    out = predict_words(tiny_bert, folder, text)
    assert out.words == ["The", "cats", "sat", "on", "the", "mat", "."] and out.layers == [0, 1, 2]
    for k, layer in enumerate(out.layers):
        p = probes.labels[("upos", layer)]
        x = word_vectors(tiny_bert, text, layer=layer).vectors  # mlmtool embed's word vectors
        assert out.labels[k] == [p.classes[c] for c in p.predict(x)]
        z = ((x - p.mean) / p.scale) @ p.weight.T + p.bias
        probs = np.exp(z - z.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        assert out.probabilities[k] == pytest.approx(probs.max(1).tolist(), abs=1e-5)
        assert all(t[0][0] == lab and [q for _, q in t] == sorted((q for _, q in t), reverse=True)
                   for t, lab in zip(out.top[k], out.labels[k]))
    row = out.to_dict()["layers"][1]
    assert set(row) == {"layer", "labels", "probabilities", "top"} and row["top"][0][0]["label"] == row["labels"][0]
    json.dumps(out.to_dict())


def test_predict_words_structural_tasks(tiny_bert, saved_probes):
    from mlmtool.analysis.probe import predict_words
    from mlmtool.analysis.probe.structural import mst_edges

    folder, _ = saved_probes
    from mlmtool.analysis.probe import load_probes

    dist = predict_words(tiny_bert, load_probes(folder, tiny_bert), "the dog ran in the park .", task="distance",
                         layers=[2])
    d = np.array(dist.distances[0])
    assert d.shape == (7, 7) and np.allclose(d, d.T, atol=1e-4) and len(dist.edges[0]) == 6
    assert set(map(tuple, dist.edges[0])) == mst_edges(d)
    depth = predict_words(tiny_bert, folder, "the dog ran in the park .", task="depth")
    assert len(depth.depths) == 3 and all(len(r) == 7 and min(r) >= 0 for r in depth.depths)
    assert set(depth.to_dict()["layers"][0]) == {"layer", "depths"}


@pytest.mark.parametrize("case", ["other_model", "other_model_loaded", "deprel", "not_saved", "layer", "empty",
                                  "no_probes"])
def test_predict_words_refuses_in_one_line(case, tiny_bert, tiny_encoder_dir, saved_probes, tmp_path):
    from mlmtool.analysis.probe import predict_words
    from mlmtool.errors import MlmtoolError
    from mlmtool.models import load

    folder, probes = saved_probes
    lm = load(str(tiny_encoder_dir)) if case.startswith("other_model") else tiny_bert
    folder = probes if case == "other_model_loaded" else folder
    kwargs = {"other_model": {}, "other_model_loaded": {}, "deprel": {"task": "deprel"}, "not_saved": {"task": "xpos"},
              "layer": {"layers": [5]}, "empty": {}, "no_probes": {}}[case]
    text = "  " if case == "empty" else "the cat sat ."
    with pytest.raises(MlmtoolError) as err:
        predict_words(lm, tmp_path if case == "no_probes" else folder, text, **kwargs)
    word = {"other_model": "trained on model", "other_model_loaded": "trained on model", "deprel": "governor", "not_saved": "no 'xpos' probe",
            "layer": "not 5", "empty": "empty", "no_probes": "no saved probes"}[case]
    assert word in str(err.value) and "\n" not in str(err.value)


def _tree_vectors(sents, layers, planted: int, dim: int = 32) -> np.ndarray:
    """``[layers, W, dim]`` noise, except at ``planted``: each word is the sum of one vector
    of length 5 per edge on its path to the root (axis = the edge's dependent), so with
    ``B = I / 5`` on those axes ``‖B(h_i − h_j)‖²`` is the tree distance and ``‖B h_i‖²`` the
    depth (Hewitt & Manning 2019 §2); the length keeps ``B`` near its initial scale."""
    rng = np.random.default_rng(len(sents))
    x = rng.normal(size=(len(layers), sents.n_words, dim)).astype(np.float32)
    k = list(layers).index(planted)
    x[k] *= 0.05
    for i in range(len(sents)):
        a, b = sents.offsets[i], sents.offsets[i + 1]
        heads = sents.heads[a:b] - a
        for w in range(b - a):
            v = w
            while sents.heads[a + v] >= 0:
                x[k, a + w, 8 + v] += 5.0
                v = int(heads[v])
    return x.astype(np.float16)


def test_structural_probe_finds_a_planted_tree(tiny_bert, tmp_path, monkeypatch):
    from mlmtool.analysis.probe import ProbeConfig, probe, run

    monkeypatch.setattr(run, "word_states", lambda lm, s, layers, batch_size=32: _tree_vectors(s, layers, 1))
    train, test = write_conllu(tmp_path / "train.conllu", 100, 0), _mixed_lengths(tmp_path)
    result = probe(tiny_bert, train, test, tasks=["distance", "depth"], config=ProbeConfig(rank=16))
    rows = {r["layer"]: r for r in result.to_dict()["layers"]}
    # Spearman stays under 1: the gold distances tie often, the noise breaks the ties
    assert rows[1]["distance"]["uuas"] == 1.0 and rows[1]["distance"]["dspr"] > 0.9
    assert rows[1]["depth"]["root_accuracy"] == 1.0 and rows[1]["depth"]["nspr"] > 0.85
    assert max(rows[0]["distance"]["uuas"], rows[2]["distance"]["uuas"]) < 0.6
    assert result.best("distance") == 1 and result.best("depth") == 1


def test_structural_training_stops_early_and_keeps_the_best_projection(tiny_bert, toy, monkeypatch):
    from mlmtool.analysis.probe import structural as st
    from mlmtool.analysis.probe.data import prepare, read_treebank

    sents = prepare(tiny_bert, *read_treebank(toy[0], "train"))
    x = np.random.default_rng(0).normal(size=(sents.n_words, 32)).astype(np.float32)
    gold = st.gold_targets(sents, "distance")
    seen = []

    def flat(proj, *args):  # the held-out loss never improves after the first epoch
        seen.append(proj.detach().clone())
        return 1.0

    monkeypatch.setattr(st, "_mean_loss", flat)
    proj = st.fit(x, sents, "distance", gold, rank=4, epochs=40)
    assert len(seen) == 6  # epoch 0 is the best; 5 epochs without improvement, then stop
    assert np.array_equal(proj, seen[0].numpy()) and not np.array_equal(proj, seen[-1].numpy())
