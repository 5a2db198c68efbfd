"""Tests for the syntax probe (mlmtool.analysis.heads.syntax) and ``mlmtool heads --conllu``.

The proof is a tiny BERT whose layer-1 attention is set by hand from the gold parse (a
forward hook on its first self-attention): head 1 attends from every piece of a dependent
to the first piece of its governor, head 2 from a governor to its dependents. The probe
must find exactly head 1 in ``dep->gov`` and head 2 in ``gov->dep``, with accuracy 1, for
every relation. Parity: the vectorised probe equals Clark et al.'s ``attn_head_predictor``
written as a plain loop over heads and arcs, on random attention.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlmtool.analysis.attention import AttentionResult
from mlmtool.analysis.heads.metrics import sentence_units, word_attention
from mlmtool.analysis.heads.sentences import PreparedSentences, is_upos_pair, parse_upos_pair, split_pairs
from mlmtool.analysis.heads.syntax import DIRECTIONS, SyntaxProbe, _Arcs, score_syntax
from mlmtool.analysis.heads.treebank import parse_conllu, read_conllu, relation_counts
from mlmtool.errors import MlmtoolError

UD = Path(__file__).resolve().parents[2] / "shared" / "data" / "ud"


def conllu(rows: list[list[tuple]], texts: list[str] | None = None) -> str:
    """CoNLL-U text from ``(id, form, upos, head, deprel[, misc])`` rows per sentence."""
    out = []
    for s, sentence in enumerate(rows):
        if texts:
            out.append(f"# text = {texts[s]}")
        for row in sentence:
            ident, form, upos, head, rel = row[:5]
            misc = row[5] if len(row) > 5 else "_"
            out.append("\t".join([str(ident), form, form.lower(), upos, "_", "_", str(head), rel, "_", misc]))
        out.append("")
    return "\n".join(out) + "\n"


def sentences(*specs: str) -> str:
    """CoNLL-U from ``"form/UPOS/head/relation ..."`` per sentence (heads are word numbers)."""
    return conllu([[(i, *word.rsplit("/", 3)) for i, word in enumerate(spec.split(), 1)] for spec in specs])


# Sentences in the tiny vocabulary of conftest.py; "cats", "parks", "playing" are split words.
TREEBANK = sentences(
    "the/DET/2/det cat/NOUN/3/nsubj sat/VERB/0/root on/ADP/6/case the/DET/6/det mat/NOUN/3/obl ./PUNCT/3/punct",
    "the/DET/3/det big/ADJ/3/amod dog/NOUN/4/nsubj ran/VERB/0/root quickly/ADV/4/advmod in/ADP/8/case "
    "the/DET/8/det park/NOUN/4/obl ./PUNCT/4/punct",
    "she/PRON/2/nsubj opened/VERB/0/root the/DET/4/det door/NOUN/2/obj and/CCONJ/6/cc let/VERB/2/conj "
    "the/DET/8/det cat/NOUN/6/obj out/ADP/6/compound:prt ./PUNCT/2/punct",
    "he/PRON/2/nsubj walked/VERB/0/root to/ADP/5/case the/DET/5/det bank/NOUN/2/obl of/ADP/8/case "
    "the/DET/8/det river/NOUN/5/nmod ./PUNCT/2/punct",
    "the/DET/3/det small/ADJ/3/amod cats/NOUN/4/nsubj played/VERB/0/root in/ADP/8/case the/DET/8/det "
    "green/ADJ/8/amod parks/NOUN/4/obl ./PUNCT/4/punct",
    "we/PRON/2/nsubj read/VERB/0/root a/DET/5/det good/ADJ/5/amod book/NOUN/2/obj ./PUNCT/2/punct",
    "they/PRON/2/nsubj walked/VERB/0/root slowly/ADV/2/advmod to/ADP/7/case the/DET/7/det red/ADJ/7/amod "
    "car/NOUN/2/obl ./PUNCT/2/punct",
    "he/PRON/3/nsubj was/AUX/3/aux playing/VERB/0/root in/ADP/6/case the/DET/6/det house/NOUN/3/obl "
    "at/ADP/8/case night/NOUN/3/obl ./PUNCT/3/punct",
)


# ------------------------------------------------------------------------------------------
# Reading CoNLL-U


MULTIWORD = """# sent_id = fr-1
# text = Il parle du chat.
1\tIl\til\tPRON\t_\t_\t2\tnsubj\t_\t_
2\tparle\tparler\tVERB\t_\t_\t0\troot\t_\t_
3-4\tdu\t_\t_\t_\t_\t_\t_\t_\t_
3\tde\tde\tADP\t_\t_\t5\tcase\t_\t_
4\tle\tle\tDET\t_\t_\t5\tdet\t_\t_
5\tchat\tchat\tNOUN\t_\t_\t2\tobl:arg\t_\tSpaceAfter=No
5.1\tchat\tchat\tNOUN\t_\t_\t_\t_\t2:obl\t_
6\t.\t.\tPUNCT\t_\t_\t2\tpunct\t_\t_

"""


def test_multiword_tokens_empty_nodes_and_subtypes():
    tree, = parse_conllu(MULTIWORD)
    assert tree.tokens == ["Il", "parle", "du", "chat", "."]  # the range line's surface form, no 5.1
    assert tree.space_after == [True, True, True, False, True]
    assert tree.token_of == [0, 1, 2, 2, 3, 4]  # de and le are both the token "du"
    assert tree.upos == ["PRON", "VERB", "ADP", "DET", "NOUN", "PUNCT"]
    assert tree.relations == ["nsubj", "root", "case", "det", "obl", "punct"]
    assert tree.text == "Il parle du chat."
    # Arcs between tokens (dep, gov, relation, tags); the root is left out.
    assert tree.arcs() == [(0, 1, "nsubj", "PRON", "VERB"), (2, 3, "case", "ADP", "NOUN"),
                           (2, 3, "det", "DET", "NOUN"), (3, 1, "obl", "NOUN", "VERB"),
                           (4, 1, "punct", "PUNCT", "VERB")]
    kept, = parse_conllu(MULTIWORD, subtypes=True)
    assert kept.relations[4] == "obl:arg"


def test_text_without_comment_follows_space_after():
    tree, = parse_conllu(MULTIWORD.replace("# text = Il parle du chat.\n", ""))
    assert tree.text == "Il parle du chat."


@pytest.mark.skipif(not UD.is_dir(), reason="UD treebanks not in ../shared/data/ud")
@pytest.mark.parametrize("name", ["en_ewt", "fr_gsd", "de_gsd", "zh_gsdsimp", "ja_gsd"])
def test_real_treebanks_rebuild_their_text(name):
    # Surface tokens joined by SpaceAfter give back every sentence's "# text" (multiword tokens,
    # empty nodes and spacing all read as the format says).
    import conllu as conllu_pkg

    path = UD / f"{name}-ud-dev.conllu"
    trees = read_conllu(path)
    with open(path, encoding="utf-8") as f:
        assert len(trees) == sum(1 for _ in conllu_pkg.parse_incr(f))
    for tree in trees:
        rebuilt = "".join(t + (" " if s else "") for t, s in zip(tree.tokens, tree.space_after)).strip()
        assert rebuilt == tree.text.strip(), (name, tree.line)
        assert len(tree.heads) == len(tree.upos) == len(tree.token_of) >= len(tree.tokens)
    assert relation_counts(trees)["nsubj"] >= 100


@pytest.mark.parametrize("content, line, what", [
    ("hello world\nthis is not conllu\n", 1, "expected 10 tab-separated fields"),
    (MULTIWORD.replace("1\tIl\til", "one\tIl\til"), 3, "ID 'one'"),
    (MULTIWORD.replace("\t2\tnsubj", "\tx\tnsubj"), 3, "HEAD 'x'"),
    (MULTIWORD + "1\tA\ta\tDET\t_\t_\t9\tdet\t_\t_\n", 12, "HEAD 9"),
    (MULTIWORD + "1\tA\ta\tDET\t_\t_\t0\troot\t_\n", 12, "found 9"),
])
def test_not_conllu_names_the_line(tmp_path, content, line, what):
    path = tmp_path / "bad.conllu"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(MlmtoolError, match=f"line {line}: not CoNLL-U") as err:
        read_conllu(path)
    assert what in str(err.value) and err.value.param == "treebank"
    assert "\n" not in str(err.value)


def test_unreadable_treebanks(tmp_path):
    (tmp_path / "latin1.conllu").write_bytes("1\tcaf\xe9".encode("latin-1"))
    (tmp_path / "empty.conllu").write_text("# only a comment\n\n", encoding="utf-8")
    for name, message in (("missing.conllu", "does not exist"), ("latin1.conllu", "not UTF-8"),
                          ("empty.conllu", "has no sentences")):
        with pytest.raises(MlmtoolError, match=message):
            read_conllu(tmp_path / name)


# ------------------------------------------------------------------------------------------
# Part-of-speech pairs


def test_upos_pairs():
    assert is_upos_pair("ADV:VERB") and is_upos_pair("ADV|ADJ:NOUN")
    assert not is_upos_pair("quickly:ran") and not is_upos_pair("ADV:ran") and not is_upos_pair("bad")
    assert parse_upos_pair("ADJ|ADV:VERB") == ({"ADJ", "ADV"}, {"VERB"})
    with pytest.raises(MlmtoolError, match="'ADVERB' is not a UPOS tag") as err:
        parse_upos_pair("ADVERB:VERB")
    assert err.value.param == "pairs"
    assert split_pairs(["ADV:VERB", "quickly:ran", ("big", "car")]) == ([("quickly", "ran"), ("big", "car")],
                                                                         ["ADV:VERB"])


# ------------------------------------------------------------------------------------------
# The probe equals a per-head loop (Clark et al.'s attn_head_predictor)


def _naive_probe(w_words: np.ndarray, arcs: list[tuple[int, int]]) -> np.ndarray:
    """``[2, L, H]`` hits summed over arcs, by plain loops: for each head, zero the diagonal
    (attention to self), argmax each dependent's row (dep->gov) or column (gov->dep)."""
    L, H, n, _ = w_words.shape
    out = np.zeros((2, L, H))
    for l in range(L):
        for h in range(H):
            a = w_words[l, h].copy()
            for i in range(n):
                a[i, i] = -1.0
            for dep, gov in arcs:
                out[0, l, h] += max(range(n), key=lambda j: a[dep, j]) == gov
                out[1, l, h] += max(range(n), key=lambda j: a[j, dep]) == gov
    return out


def test_probe_matches_naive_loop_on_random_attention():
    rng = np.random.default_rng(1)
    # [CLS] the cat play ##ing in the gard ##en [SEP]: 7 words, two of them split.
    tokens = ["[CLS]", "the", "cat", "play", "##ing", "in", "the", "gard", "##en", ".", "[SEP]"]
    word_ids = [None, 0, 1, 2, 2, 3, 4, 5, 5, 6, None]
    att = rng.dirichlet(np.ones(len(tokens)) * 0.3, size=(3, 4, len(tokens))).astype(np.float32)
    res = AttentionResult("x", tokens, att, word_ids, [w is None for w in word_ids])
    units = sentence_units(res)
    w = word_attention(att, units.membership)
    arcs = [(0, 1), (1, 2), (3, 5), (4, 5), (5, 2), (6, 2)]
    groups = [0, 1, 2, 0, 3, 4]
    prepared = PreparedSentences(["x"], [None], [[0] * len(tokens)], [word_ids],
                                 extra=[_Arcs(np.array([a[0] for a in arcs]), np.array([a[1] for a in arcs]),
                                              np.array(groups))])
    probe = SyntaxProbe(prepared, ["det", "nsubj", "case", "obl", "punct"], 3, 4)
    probe.add(0, w, units)
    words = units.word_index
    naive = {g: _naive_probe(w[:, :, words][:, :, :, words], [a for a, k in zip(arcs, groups) if k == g])
             for g in range(5)}
    for g in range(5):
        np.testing.assert_array_equal(probe.correct[g], naive[g], err_msg=str(g))
    assert probe.n.tolist() == [2, 1, 1, 1, 1]
    assert probe.offsets[0] == {1: 2}  # the -> cat and the -> garden: both the next word
    assert probe.offsets[2] == {2: 1}  # in -> garden


def test_baseline_is_the_most_common_offset():
    from mlmtool.analysis.heads.syntax import SyntaxScores

    s = SyntaxScores("m", ["det"], offsets=[{1: 6, 2: 3, -1: 1}], kinds=["relation"], n=np.array([10]),
                     correct=np.zeros((1, 2, 1, 1), int))
    assert s.baseline("det") == (0.6, 1)
    with pytest.raises(KeyError, match="was not probed"):
        s.baseline("nsubj")


# ------------------------------------------------------------------------------------------
# A tiny model with hand-set attention


def _first_pieces(tok, forms: list[str]) -> tuple[list[int], list[int]]:
    """Ids ([CLS] pieces [SEP]) and each word's first token position, by tokenizing each word
    on its own (independent of the code under test)."""
    ids, first = [tok.cls_token_id], []
    for form in forms:
        first.append(len(ids))
        ids += tok.convert_tokens_to_ids(tok.tokenize(form))
    return ids + [tok.sep_token_id], first


@pytest.fixture
def parse_attending_bert(tiny_bert_dir, tmp_path):
    """The tiny BERT with layer 1's attention set from the parse: head 1 from every piece of a
    dependent to its governor's first piece (the root to [CLS]); head 2 from every piece of a
    governor to its dependents' first pieces (evenly); other words to [CLS]."""
    import torch

    from mlmtool.models import load

    lm = load(str(tiny_bert_dir))
    tok = lm.tokenizer
    path = tmp_path / "tiny.conllu"
    path.write_text(TREEBANK, encoding="utf-8")
    maps = {}
    for tree in read_conllu(path):
        ids, first = _first_pieces(tok, tree.tokens)
        S = len(ids)
        a1, a2 = np.eye(S, dtype=np.float32), np.eye(S, dtype=np.float32)
        ends = first[1:] + [S - 1]
        for w, head in enumerate(tree.heads):
            for t in range(first[w], ends[w]):
                a1[t] = 0
                a1[t, first[head - 1] if head else 0] = 1
            deps = [d for d, h in enumerate(tree.heads) if h == w + 1]
            for t in range(first[w], ends[w]):
                a2[t] = 0
                if deps:
                    a2[t, [first[d] for d in deps]] = 1 / len(deps)
                else:
                    a2[t, 0] = 1
        maps[tuple(ids)] = (a1, a2)
    seen = {}

    def grab_ids(module, args, kwargs):
        seen["ids"] = kwargs["input_ids"]

    def set_attention(module, args, output):
        out, weights = output
        weights = weights.clone()
        for b, row in enumerate(seen["ids"].tolist()):
            while row and row[-1] == tok.pad_token_id:
                row.pop()
            a1, a2 = maps[tuple(row)]  # KeyError = the probe tokenized the words differently
            n = len(row)
            weights[b, 0, :n, :n] = torch.from_numpy(a1)
            weights[b, 1, :n, :n] = torch.from_numpy(a2)
        return out, weights

    hooks = [lm.model.bert.embeddings.register_forward_pre_hook(grab_ids, with_kwargs=True),
             lm.model.bert.encoder.layer[0].attention.self.register_forward_hook(set_attention)]
    yield lm, path
    for h in hooks:
        h.remove()


def test_probe_finds_the_hand_set_heads_exactly(parse_attending_bert):
    lm, path = parse_attending_bert
    scores = score_syntax(lm, path, min_count=5, batch_size=3)
    syn = scores.syntax
    assert syn.relations[:2] == ["det", "nsubj"] and set(syn.relations) == {"det", "nsubj", "case", "punct",
                                                                            "obl", "amod"}
    for relation in syn.relations:
        g = syn.index(relation)
        acc = syn.accuracy[g]
        assert syn.best(relation, "dep->gov") == (1, 1, 1.0, "dep->gov"), relation
        assert syn.best(relation, "gov->dep") == (1, 2, 1.0, "gov->dep"), relation
        assert (acc[0] == 1.0).sum() == 1 and (acc[1] == 1.0).sum() == 1, relation  # exactly that head
        assert syn.n[g] == sum(r == relation for t in read_conllu(path) for *_, r, _, _ in t.arcs())
    assert syn.baseline("det") == (pytest.approx(8 / 13), 1)  # "the big dog" etc.: 5 of 13 det arcs are +2
    assert syn.baseline("obl")[0] < 1
    ex = syn.examples[("det", "dep->gov")]
    assert (ex.layer, ex.head) == (1, 1) and all(a.correct and a.predicted == a.governor for a in ex.arcs)
    records = {(r["relation"], r["direction"]): r for r in scores.to_dict()["syntax"]}
    assert records["nsubj", "dep->gov"] == {"relation": "nsubj", "kind": "relation", "direction": "dep->gov",
                                             "layer": 1, "head": 1, "accuracy": 1.0,
                                             "baseline": pytest.approx(syn.baseline("nsubj")[0], abs=1e-5),
                                             "offset": syn.baseline("nsubj")[1], "n": 8}


def test_upos_pair_probed_like_a_relation(parse_attending_bert):
    lm, path = parse_attending_bert
    syn = score_syntax(lm, path, pairs=["ADJ:NOUN", "the:cat"], min_count=5).syntax
    g = syn.index("ADJ:NOUN")
    assert syn.kinds[g] == "upos_pair" and syn.n[g] == 5  # big, small, green, good, red
    assert syn.best("ADJ:NOUN", "dep->gov")[:3] == (1, 1, 1.0)


def test_long_sentences_are_skipped_and_counted(tiny_bert, tmp_path):
    long = [[(i, "the", "DET", 0 if i == 1 else 1, "root" if i == 1 else "det") for i in range(1, 80)]]
    path = tmp_path / "t.conllu"
    path.write_text(TREEBANK + conllu(long), encoding="utf-8")
    scores = score_syntax(tiny_bert, path, min_count=5)
    assert scores.n_skipped == 1 and scores.syntax.n_skipped == 1 and len(scores.sentences) == 8
    assert scores.syntax.n[scores.syntax.index("det")] == 13  # the long sentence's 78 det arcs are not counted


def test_min_count_and_pair_errors(tiny_bert, tmp_path):
    path = tmp_path / "t.conllu"
    path.write_text(TREEBANK, encoding="utf-8")
    with pytest.raises(MlmtoolError, match=r"no relation has 100 or more arcs .* \(most frequent: det 13, "
                                           r"nsubj 8, case 8\)") as err:
        score_syntax(tiny_bert, path)
    assert err.value.param == "min_count"
    with pytest.raises(MlmtoolError, match="no arc of the treebank links a INTJ word and a X word"):
        score_syntax(tiny_bert, path, pairs=["INTJ:X"], min_count=5)
    with pytest.raises(MlmtoolError, match="never occur in the same sentence"):
        score_syntax(tiny_bert, path, pairs=["river:car"], min_count=5)


def test_syntax_still_exports_the_moved_names():
    """Treebank reading, pair parsing and encode_words moved out of syntax.py; the old imports work."""
    from mlmtool import tokens
    from mlmtool.analysis.heads import sentences, syntax, treebank

    for module, names in ((treebank, ["DEFAULT_MIN_COUNT", "DependencyTree", "frequent_relations", "parse_conllu",
                                      "read_conllu", "relation_counts"]),
                          (sentences, ["UPOS_TAGS", "is_upos_pair", "parse_upos_pair", "split_pairs"]),
                          (tokens, ["encode_words"])):
        for name in names:
            assert getattr(syntax, name) is getattr(module, name) and name in syntax.__all__, name


# ------------------------------------------------------------------------------------------
# Report, JSON, HTML labels, CLI


def test_report_and_json(parse_attending_bert, tmp_path):
    from mlmtool.render.heads_view import render_heads_markdown, report_filenames, save_heads_report, syntax_filename
    from mlmtool.render.html_view import head_labels_from

    lm, path = parse_attending_bert
    scores = score_syntax(lm, path, min_count=5)
    md = render_heads_markdown(scores)
    assert "## Syntax: heads that follow the dependency tree" in md
    assert "| det | 13 | L1-H1 | 1.00 | L1-H2 | 1.00 | 0.62 (+1) | +0.38 |" in md
    assert "**nsubj**: L1-H1 (dep->gov) picks the governor for 100% of 8 arcs" in md
    assert f"({syntax_filename('det')})" in md
    out = tmp_path / "out"
    out.mkdir()
    paths = save_heads_report(scores, out)
    assert sorted(p.name for p in paths) == sorted(report_filenames(relations=scores.syntax.relations))
    data = json.loads((out / "heads.json").read_text(encoding="utf-8"))
    assert len(data["syntax"]) == 2 * len(scores.syntax.relations)
    # every result saves itself: the probe alone, and the scores without naming a threshold
    assert scores.syntax.save(tmp_path / "syntax.json") == tmp_path / "syntax.json"
    probe = json.loads((tmp_path / "syntax.json").read_text(encoding="utf-8"))
    assert probe == json.loads(json.dumps(scores.syntax.to_dict())) and probe["records"] == data["syntax"]
    assert json.loads(scores.save(tmp_path / "again.json").read_text(encoding="utf-8")) == data
    labels = head_labels_from(data, lm.num_layers, lm.num_heads)
    assert "det dep->gov" in labels["L1H1"] and "nsubj dep->gov" in labels["L1H1"]
    assert "det gov->dep" in labels["L1H2"]
    assert "dep->gov" not in labels.get("L2H3", "")  # heads that beat no baseline get no syntax label


def _cli(runner, *args, **kwargs):
    from mlmtool.cli import cli

    return runner.invoke(cli, ["heads", *args], **kwargs)


def test_cli_conllu(runner, tiny_bert_dir, tmp_path):
    path = tmp_path / "t.conllu"
    path.write_text(TREEBANK, encoding="utf-8")
    out = tmp_path / "out"
    r = _cli(runner, "-m", str(tiny_bert_dir), "--conllu", str(path), "--min-count", "5", "-o", str(out),
             "--pair", "ADJ:NOUN", "--pair", "the:cat", "--subtypes")
    assert r.exit_code == 0, r.output
    assert "syntax probe over 8 treebank sentences" in r.stdout and "ADJ:NOUN" in r.stdout
    assert (out / "syntax_det.png").is_file() and (out / "syntax_ADJ-NOUN.png").is_file()
    data = json.loads((out / "heads.json").read_text(encoding="utf-8"))
    assert {r["relation"] for r in data["syntax"]} >= {"det", "nsubj", "ADJ:NOUN"}
    assert data["n_sentences"] == 8 and data["pairs"][0]["source"] == "the"


@pytest.mark.parametrize("args, message", [
    (["--conllu", "{notconllu}"], "line 1: not CoNLL-U: expected 10 tab-separated fields"),
    (["--conllu", "{tb}"], "--min-count: no relation has 100 or more arcs"),
    (["--conllu", "{tb}", "--min-count", "5", "--pair", "ADVERB:VERB"], "'ADVERB' is not a UPOS tag"),
    (["--pair", "ADV:VERB", "the cat sat"], "names part-of-speech tags"),
    (["--conllu", "{tb}", "the cat sat"], "not both"),
    (["--conllu", "{tb}", "--min-count", "0"], "--min-count"),
])
def test_cli_conllu_bad_input(runner, tiny_bert_dir, tmp_path, args, message):
    (tmp_path / "tb.conllu").write_text(TREEBANK, encoding="utf-8")
    (tmp_path / "notconllu.txt").write_text("The cat sat.\nThe dog ran.\n", encoding="utf-8")
    out = tmp_path / "out"
    args = [a.format(tb=tmp_path / "tb.conllu", notconllu=tmp_path / "notconllu.txt") for a in args]
    r = _cli(runner, "-m", str(tiny_bert_dir), "-o", str(out), *args)
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert sum(line.startswith("Error") for line in r.output.splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


def test_cli_conllu_skips_long_sentences_with_a_count(runner, tiny_bert_dir, tmp_path):
    long = [[(i, "the", "DET", 0 if i == 1 else 1, "root" if i == 1 else "det") for i in range(1, 80)]]
    path = tmp_path / "t.conllu"
    path.write_text(TREEBANK + conllu(long), encoding="utf-8")
    r = _cli(runner, "-m", str(tiny_bert_dir), "--conllu", str(path), "--min-count", "5", "-o", str(tmp_path / "o"))
    assert r.exit_code == 0, r.output
    assert "Skipped 1 sentence(s) longer than the 64 tokens" in r.stderr


@pytest.mark.slow
@pytest.mark.skipif(not UD.is_dir(), reason="UD treebanks not in ../shared/data/ud")
def test_minilm_has_syntactic_heads(minilm):
    # Clark et al. 2019 Table 1 (BERT-base): det, aux, case heads beat the offset baseline.
    syn = score_syntax(minilm, UD / "en_ewt-ud-dev.conllu", limit=600).syntax
    for relation in ("det", "nsubj", "obj"):
        layer, head, acc, _ = syn.best(relation)
        assert acc > syn.baseline(relation)[0], relation
    assert set(DIRECTIONS) == {r["direction"] for r in syn.records()}
