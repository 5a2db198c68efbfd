"""mlmtool index / mlmtool search (issue 28) on the tiny models of conftest.py.

Properties: search equals a brute-force cosine top-k over ``mlmtool.word_vectors`` (the rule of
``mlmtool embed``), exactly and through the inverted lists; an interrupted build resumes and appending lines
gives the index a fresh build gives; bad input is one line, exit 2, and nothing is deleted.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import mlmtool
from mlmtool.analysis.corpus import build as build_mod
from mlmtool.cli import cli

from conftest import CORPUS

pytestmark = pytest.mark.usefixtures("one_thread")

#: Unique lines (no two identical vectors, so no ties in the top-k).
LINES = [f"{s[:-2]} {tail} ." for s in CORPUS for tail in ("today", "at night", "in the park", "quickly")]


@pytest.fixture(scope="module")
def lm(tiny_bert_dir):
    return mlmtool.load(str(tiny_bert_dir))


@pytest.fixture(scope="module")
def built(lm, tmp_path_factory):
    """An index of LINES (32 lines, layers 1 and 2) and its corpus file."""
    folder = tmp_path_factory.mktemp("search")
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    info = mlmtool.build_index(lm, corpus, folder / "index", layers=[1, 2])
    return info, corpus


def _brute_force(lm, query_sentence: str, query_word: int, layer: int, k: int):
    """Top-k (score, sentence, word_index) by cosine over word_vectors of every line."""
    wv = mlmtool.word_vectors(lm, LINES, layer=layer)
    q = mlmtool.word_vectors(lm, [query_sentence], layer=layer).vectors[query_word]
    mat = wv.vectors / np.linalg.norm(wv.vectors, axis=1, keepdims=True)
    scores = mat @ (q / np.linalg.norm(q))
    word_no = [0] * len(wv.words)
    for i in range(1, len(word_no)):
        word_no[i] = word_no[i - 1] + 1 if wv.sentence_index[i] == wv.sentence_index[i - 1] else 0
    order = np.argsort(-scores)[:k]
    return {(wv.sentence_index[i], word_no[i]): float(scores[i]) for i in order}, scores[order]


def test_forward_keeps_only_the_hidden_layers_asked_for(lm):
    from mlmtool.core.forward import forward

    ids = [lm.tokenizer(s)["input_ids"] for s in LINES[:5]]
    full = forward(lm, ids, hidden_states=True, batch_size=2)
    some = forward(lm, ids, hidden_states=True, hidden_layers=[2, 0], batch_size=2)
    for a, b in zip(full, some):
        assert b.hidden_states.shape == (2, len(a.ids), 32)
        np.testing.assert_array_equal(b.hidden_states, a.hidden_states[[2, 0]])


@pytest.mark.parametrize("which", ["tiny_bert", "tiny_roberta"])
def test_words_from_offsets_are_those_of_word_strings(which, request):
    from mlmtool.tokens import word_ids_of, word_strings

    tok = request.getfixturevalue(which).tokenizer
    texts = ["The  cat sat, on the mat!", "  she opened   the door .", "He walked... to \"the\" bank-side", "x"]
    enc = tok(texts, return_offsets_mapping=True)
    for i, text in enumerate(texts):
        wid, words, spans = build_mod._text_words(tok, enc, i, text, True)
        assert wid == word_ids_of(enc, i, tok) and words == word_strings(text, enc, i, tok)
        assert [text[a:b] for a, b in spans] == words
        found = build_mod._spans(text, words)  # the general path: each word found in order
        assert [sp for sp, w in zip(spans, words) if w] == [sp for sp, w in zip(found, words) if w]


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("layer", [1, 2])
def test_search_equals_brute_force_cosine_top_k(lm, built, exact, layer):
    info, _ = built
    assert info.words == sum(len(s.split()) for s in LINES)
    res = mlmtool.search(info.path, "the dog ran to the [bank] .", lm, layer=layer, top_k=10, exact=exact)
    assert res.word == "bank" and res.word_index == 5 and res.exact is exact
    reference, ref_scores = _brute_force(lm, "the dog ran to the bank .", 5, layer, 10)
    got = [h.score for h in res.hits]
    np.testing.assert_allclose(got, ref_scores, atol=2e-3)  # float16 storage
    assert got == sorted(got, reverse=True)
    for h in res.hits:
        assert LINES[h.sentence].split()[h.word_index] == h.word
        assert f"{h.left} {h.word} {h.right}".strip() == LINES[h.sentence]
        if (h.sentence, h.word_index) in reference:
            assert abs(reference[(h.sentence, h.word_index)] - h.score) < 2e-3


def test_word_filters_and_the_json_of_the_cli(built, runner):
    info, _ = built
    out = runner.invoke(cli, ["search", info.path, "the", "[cat]", "sat", "on", "the", "mat", ".", "-k", "5",
                              "--same-word", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert {h["word"] for h in data["hits"]} == {"cat"} and len(data["hits"]) == 5
    assert set(data["hits"][0]) == {"sentence", "word_index", "word", "left", "right", "score"}
    assert data["summary"]["words"] == {"cat": 5}
    other = mlmtool.search(info.path, "the [cat] sat .", top_k=7, words="other")
    assert len(other.hits) == 7 and all(h.word != "cat" for h in other.hits)
    page = runner.invoke(cli, ["search", info.path, "the [cat] sat .", "--html", "hits.html"])
    assert page.exit_code == 0 and "keyword" not in page.output
    html = open("hits.html", encoding="utf-8").read()
    assert "default-src 'none'" in html and "<script" not in html and "cat" in html
    from mlmtool.render.search_view import render_search_html

    frag = render_search_html(other)._repr_html_()  # Jupyter's: the body, every style rule scoped to it
    assert frag.startswith('<div class="mlmtool-search">') and "<body" not in frag
    rules = re.findall(r"([^{}]+)\{[^{}]*\}", re.search(r"<style>(.*?)</style>", frag, re.S).group(1))
    assert rules and all(sel.strip().startswith(".mlmtool-search") for r in rules for sel in r.split(","))


def test_interrupted_build_resumes_and_new_lines_append(lm, tmp_path, monkeypatch):
    monkeypatch.setattr(build_mod, "CHUNK_LINES", 4)
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(LINES[:20]) + "\n", encoding="utf-8")
    real = build_mod.embed_sentences
    calls = []

    def stop_after_two(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(build_mod, "embed_sentences", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        mlmtool.build_index(lm, corpus, tmp_path / "ix", layers=[2])
    assert len(list((tmp_path / "ix" / ".building").glob("chunk-*.npz"))) == 2
    calls.clear()
    monkeypatch.setattr(build_mod, "embed_sentences", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    first = mlmtool.build_index(lm, corpus, tmp_path / "ix", layers=[2])
    assert len(calls) == 3 and first.lines == 20 and not (tmp_path / "ix" / ".building").exists()
    with corpus.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(LINES[20:]) + "\n")
    appended = mlmtool.build_index(lm, corpus, tmp_path / "ix", layers=[2])
    fresh = mlmtool.build_index(lm, corpus, tmp_path / "fresh", layers=[2])
    assert (appended.words, appended.lines, appended.generation) == (fresh.words, 32, 2)
    assert mlmtool.build_index(lm, corpus, tmp_path / "ix", layers=[2]).generation == 2  # nothing new
    a = mlmtool.search(appended.path, "a [river] .", lm, top_k=12)
    b = mlmtool.search(fresh.path, "a [river] .", lm, top_k=12)
    assert a.to_dict()["hits"] == b.to_dict()["hits"]
    np.testing.assert_array_equal(mlmtool.load_index(appended.path).vectors(2),
                                  mlmtool.load_index(fresh.path).vectors(2))


def _snapshot(folder):
    return sorted((p.relative_to(folder).as_posix(), p.stat().st_size) for p in folder.rglob("*"))


def test_bad_input_is_one_line_exit_2_and_nothing_is_deleted(built, tiny_bert_dir, tiny_roberta_dir,
                                                             runner, tmp_path):
    info, corpus = built
    (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
    (tmp_path / "bin.txt").write_bytes(b"abc\x00\x01\x02\n")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine", encoding="utf-8")
    m = ["-m", str(tiny_bert_dir)]
    cases = [
        (["index", str(tmp_path / "empty.txt"), *m, "-o", "a"], "empty"),
        (["index", str(tmp_path / "bin.txt"), *m, "-o", "b"], "binary"),
        (["index", str(corpus), *m, "-o", str(tmp_path / "notes")], "not an mlmtool index"),
        (["index", str(corpus), "-m", str(tiny_roberta_dir), "-o", info.path, "--layers", "1,2"], "not of"),
        (["search", info.path, "the cat sat ."], "no word in [brackets]"),
        (["search", info.path, "the [cat] [sat] ."], "more than one"),
        (["search", info.path, "the [cat] sat .", "--layer", "0"], "layer 0 is not in the index"),
        (["search", info.path, "the [cat] sat .", "--pos", "NOUN"], "no part-of-speech"),
        (["search", str(tmp_path / "notes"), "the [cat] sat ."], "not an mlmtool index"),
        (["index", str(corpus), *m, "-o", str(tmp_path / "notes" / "keep.txt")], "is a file"),
        (["index", str(corpus), *m, "-o", "c", "--layers", "1,3"], "layer 3 does not exist"),
        (["index", str(corpus), *m, "-o", info.path, "--layers", "2"], "indexes layers 1,2"),
    ]
    before = _snapshot(tmp_path)
    index_before = _snapshot(corpus.parent)
    for args, words in cases:
        out = runner.invoke(cli, args)
        assert out.exit_code == 2, (args, out.output)
        assert words in out.output and len(out.output.strip().splitlines()) == 1, (args, out.output)
    assert _snapshot(tmp_path) == before and _snapshot(corpus.parent) == index_before
    both = runner.invoke(cli, cases[3][0]).output
    assert str(tiny_bert_dir) in both and str(tiny_roberta_dir) in both  # both models named


def test_search_with_another_model_names_both(built, tiny_roberta, tiny_bert_dir):
    info, _ = built
    with pytest.raises(mlmtool.MlmtoolError) as err:
        mlmtool.search(info.path, "the [cat] sat .", tiny_roberta)
    assert str(tiny_bert_dir) in str(err.value) and tiny_roberta.name in str(err.value)


def test_partial_index_is_refused_and_kept(built, tmp_path, runner, tiny_bert_dir):
    import shutil

    info, corpus = built
    longer = tmp_path / "longer.txt"
    longer.write_text(corpus.read_text(encoding="utf-8") + "a new line .\n", encoding="utf-8")
    extend = ["index", str(longer), "-m", str(tiny_bert_dir), "--layers", "1,2", "-o"]
    damages = {  # what is done to a copy of the index -> the words of the refusal
        "missing layer": (lambda c: next(c.glob("layer-02*.faiss")).unlink(), "partial or corrupted"),
        "cut layer": (lambda c: _cut(next(c.glob("layer-01*.faiss"))), "corrupted index (layer-01"),
        "cut table": (lambda c: _cut(next(c.glob("words-*.parquet"))), "corrupted index (words-"),
        "bad manifest": (lambda c: (c / "manifest.json").write_text("{not json", encoding="utf-8"), "corrupted"),
    }
    for what, (damage, words) in damages.items():
        copy = tmp_path / what.replace(" ", "-")
        shutil.copytree(info.path, copy)
        damage(copy)
        before = _snapshot(copy)
        for args in (["search", str(copy), "the [cat] sat .", "--layer", "1"], [*extend, str(copy)]):
            out = runner.invoke(cli, args)
            assert out.exit_code == 2 and words in out.output, (what, args[0], out.output)
            assert len(out.output.strip().splitlines()) == 1, (what, out.output)
        assert _snapshot(copy) == before, what  # nothing deleted, nothing written


def _cut(path):
    """Keep the first half of a file (a copy interrupted midway)."""
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def test_conllu_index_carries_upos_and_filters_by_pos(lm, tmp_path):
    rows = []
    for n, sent in enumerate(["the cat sat on the mat .", "the dog ran in the park ."]):
        words = sent.split()
        tags = ["DET", "NOUN", "VERB", "ADP", "DET", "NOUN", "PUNCT"]
        rows.append(f"# sent_id = {n}\n# text = {sent}\n" + "".join(
            f"{i + 1}\t{w}\t{w}\t{t}\t_\t_\t{0 if t == 'VERB' else 3}\t{'root' if t == 'VERB' else 'dep'}\t_\t_\n"
            for i, (w, t) in enumerate(zip(words, tags))))
    (tmp_path / "t.conllu").write_text("\n".join(rows) + "\n", encoding="utf-8")
    info = mlmtool.build_index(lm, None, tmp_path / "ix", conllu=tmp_path / "t.conllu")
    res = mlmtool.search(info.path, "a [dog] ran .", lm, pos="NOUN", top_k=10)
    assert len(res.hits) == 4 and {h.upos for h in res.hits} == {"NOUN"}
    assert res.summary()["pos"] == {"NOUN": 4} and res.hits[0].relation == "dep"


def test_facade_results_speak_the_same_way(built, tmp_path):
    info, _ = built
    res = mlmtool.search(mlmtool.load_index(info.path), "the [cat] sat .", top_k=3)
    assert isinstance(res, mlmtool.SearchResult) and isinstance(res.hits[0], mlmtool.SearchHit)
    assert json.loads(res.save(tmp_path / "r.json").read_text())["hits"] == res.to_dict()["hits"]
    assert json.loads(info.save(tmp_path / "m.json").read_text())["words"] == info.words


def test_weights_hash_is_cached_until_the_weights_change(tiny_bert):
    """The index's model check hashes the encoder once per state of its weights: the same
    hash again without reading them, a new one after an in-place change."""
    import torch

    from mlmtool.analysis.corpus import store

    first = store.weights_hash(tiny_bert)
    assert store._HASHES[tiny_bert.encoder][1] == first
    assert store.weights_hash(tiny_bert) == first
    p = next(tiny_bert.encoder.parameters())
    saved = p.detach().clone()
    with torch.no_grad():
        p.add_(1.0)
    try:
        assert store.weights_hash(tiny_bert) != first
    finally:
        with torch.no_grad():
            p.copy_(saved)
    assert store.weights_hash(tiny_bert) == first


def test_ivf_lists_are_learnt_from_the_whole_build_and_kept_when_appending(lm, tmp_path, monkeypatch):
    """A new index gets sqrt(words)/2 inverted lists, learnt by k-means from a sample drawn from
    every chunk (not only the first: a corpus ordered by topic or language gets lists for all
    of it); appending keeps the lists; searching with every list probed equals the exact scan."""
    import faiss

    from mlmtool.analysis.corpus import merge, store

    monkeypatch.setattr(build_mod, "CHUNK_LINES", 4)
    monkeypatch.setattr(store, "TRAIN_PER_LIST", 4)
    samples = []
    real_new_layer = merge.new_layer

    def recording(dim, nlist):
        index = real_new_layer(dim, nlist)
        train = index.train

        def record(x):
            samples.append(np.array(x))
            return train(x)

        index.train = record
        return index

    monkeypatch.setattr(merge, "new_layer", recording)
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(LINES[:16]) + "\n", encoding="utf-8")
    info = mlmtool.build_index(lm, corpus, tmp_path / "ix", layers=[2])
    nlist = round(info.words ** 0.5 / 2)
    assert info.ivf == {"nlist": nlist, "nprobe": nlist, "train": 4 * nlist, "words": info.words}
    assert len(samples) == 1
    vectors = mlmtool.load_index(info.path).vectors(2).astype(np.float32)
    rows = [int(np.argmin(np.abs(vectors - x).sum(axis=1))) for x in samples[0]]  # each sample's word row
    assert len(samples[0]) == 4 * nlist and len(set(rows)) == len(rows)
    sentences = mlmtool.load_index(info.path).words.column("sentence").to_pylist()
    chunks = {sentences[r] // 4 for r in rows}
    assert 0 in chunks and 3 in chunks  # the first and the last of the four chunks
    layer = faiss.read_index(str(tmp_path / "ix" / info.layer_files["2"]))
    assert layer.nlist == nlist and layer.ntotal == info.words and not layer.by_residual
    assert sum(1 for k in range(nlist) if layer.invlists.list_size(k)) > 1  # k-means spread the words
    with corpus.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(LINES[16:]) + "\n")
    appended = mlmtool.build_index(lm, corpus, tmp_path / "ix", layers=[2])
    assert appended.lines == len(LINES) and appended.ivf == info.ivf and len(samples) == 1
    assert faiss.read_index(str(tmp_path / "ix" / appended.layer_files["2"])).ntotal == appended.words
    index = mlmtool.load_index(appended.path)
    assert index.layer(2).nprobe == nlist
    a = mlmtool.search(index, "a [river] .", lm, top_k=10, exact=False)
    b = mlmtool.search(index, "a [river] .", lm, top_k=10, exact=True)
    assert [(h.sentence, h.word_index) for h in a.hits] == [(h.sentence, h.word_index) for h in b.hits]
    np.testing.assert_allclose([h.score for h in a.hits], [h.score for h in b.hits], atol=1e-5)


def test_settings_rule_and_an_index_of_the_old_format_is_refused(built, tmp_path, runner):
    import shutil

    from mlmtool.analysis.corpus.store import MAX_LISTS, NPROBE, ivf_settings

    assert ivf_settings(1_000_000) == {"nlist": 500, "nprobe": NPROBE, "train": 32_000, "words": 1_000_000}
    assert ivf_settings(100) == {"nlist": 5, "nprobe": 5, "train": 100, "words": 100}
    assert ivf_settings(10**9)["nlist"] == MAX_LISTS
    # chunk lines: 2,048 at most, 64 MiB of float16 vectors at 25 words per line, 256 at least
    assert [build_mod.chunk_lines_for(n, d) for n, d in ((1, 384), (3, 384), (13, 768))] == [2048, 1165, 256]
    old = tmp_path / "old"
    shutil.copytree(built[0].path, old)
    manifest = json.loads((old / "manifest.json").read_text(encoding="utf-8"))
    (old / "manifest.json").write_text(json.dumps(dict(manifest, version=1)), encoding="utf-8")
    out = runner.invoke(cli, ["search", str(old), "the [cat] sat ."])
    assert out.exit_code == 2 and "format version 1" in out.output and "rebuild" in out.output
    assert len(out.output.strip().splitlines()) == 1


def test_query_brackets_and_literal_brackets():
    """One [bracketed] word; \\[ and \\] are literal brackets, kept in the sentence."""
    from mlmtool.analysis.corpus.query import parse_query
    from mlmtool.errors import MlmtoolError

    assert parse_query("The [bank] of the river.") == ("The bank of the river.", 4)
    assert parse_query(r"She wrote \[MASK\] on the [board].") == ("She wrote [MASK] on the board.", 24)
    assert parse_query(r"a [\[MASK\]] b") == ("a [MASK] b", 2)
    for bad, words in [("no brackets", "no word"), ("[a] [b]", "more than one"), ("[ ]", "empty or unclosed"),
                       ("a [b", "empty or unclosed"), ("a ]b[ c", "empty or unclosed"), (r"\[a\]", "no word")]:
        with pytest.raises(MlmtoolError, match=words):
            parse_query(bad)


def test_an_index_grown_fourfold_learns_new_lists_and_keeps_its_words(lm, tmp_path, monkeypatch):
    """Appending until the index holds REFIT_GROWTH times the words its lists were learnt from:
    new lists (sqrt(words)/2 of them, learnt from the old and the new words), every word kept
    with its id and float16 vector, and the same answers as a fresh build's exact scan."""
    import faiss

    from mlmtool.analysis.corpus import merge

    monkeypatch.setattr(build_mod, "CHUNK_LINES", 4)
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(LINES[:6]) + "\n", encoding="utf-8")
    first = mlmtool.build_index(lm, corpus, tmp_path / "ix", layers=[2])
    before = mlmtool.load_index(first.path).vectors(2)
    with corpus.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(LINES[6:]) + "\n")
    grown = mlmtool.build_index(lm, corpus, tmp_path / "ix", layers=[2])
    assert grown.words >= merge.REFIT_GROWTH * first.words  # 32 lines against 6: past the bound
    nlist = round(grown.words ** 0.5 / 2)
    assert nlist > first.ivf["nlist"] and grown.ivf["nlist"] == nlist and grown.ivf["words"] == grown.words
    layer = faiss.read_index(str(tmp_path / "ix" / grown.layer_files["2"]))
    assert layer.nlist == nlist and layer.ntotal == grown.words
    index = mlmtool.load_index(grown.path)
    after = index.vectors(2)
    np.testing.assert_array_equal(after[: first.words], before)  # the old words: same ids, same values
    fresh = mlmtool.build_index(lm, corpus, tmp_path / "fresh", layers=[2])
    np.testing.assert_array_equal(after, mlmtool.load_index(fresh.path).vectors(2))
    a = mlmtool.search(index, "a [river] .", lm, top_k=10, exact=False)
    b = mlmtool.search(fresh.path, "a [river] .", lm, top_k=10, exact=True)
    assert [(h.sentence, h.word_index) for h in a.hits] == [(h.sentence, h.word_index) for h in b.hits]


def test_the_table_fits_a_narrow_terminal_and_keeps_every_score(built, runner):
    """At 60 columns the contexts give way (…), never the word, the cosine or the sentence."""
    info, _ = built
    expected = mlmtool.search(info.path, "the [cat] sat .", top_k=4)
    for columns in ("60", "100"):
        out = runner.invoke(cli, ["search", info.path, "the [cat] sat .", "-k", "4"], env={"COLUMNS": columns})
        assert out.exit_code == 0, out.output
        lines = out.output.splitlines()
        assert max(len(line) for line in lines) <= int(columns)
        rows = [line for line in lines if line.startswith("│")]
        assert len(rows) == 4
        for row, hit in zip(rows, expected.hits):
            cells = [c.strip() for c in row.strip("│").split("│")]
            assert [cells[1], *cells[3:]] == [hit.word, f"{hit.score:.3f}", str(hit.sentence)], (columns, row)
