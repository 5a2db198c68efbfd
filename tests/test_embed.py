"""Tests for :mod:`mlmtool.embed`, :mod:`mlmtool.render.embed_view` and ``mlmtool embed``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from mlmtool.cli import cli
from mlmtool.analysis.embed import auto_perplexity, load_vectors, project, word_vectors

SENTENCES = ["he walked to the bank of the river .", "the cats ran in the park .", "we read a good book ."]


def _hidden(lm, text, layer):
    """Hidden states ``[seq, hidden]`` of one text at ``layer``, computed directly with the model."""
    import torch

    enc = lm.tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        out = lm.model.base_model(**enc, output_hidden_states=True)
    return out.hidden_states[layer][0].numpy(), enc


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_word_vector_is_mean_of_its_pieces(tiny_bert, layer):
    text = "The Cats walked slowly"  # cats = cat ##s, walked is one piece
    wv = word_vectors(tiny_bert, text, layer=layer)
    hidden, enc = _hidden(tiny_bert, text, layer)
    tokens = tiny_bert.tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    assert tokens == ["[CLS]", "the", "cat", "##s", "walked", "slowly", "[SEP]"]
    assert wv.words == ["The", "Cats", "walked", "slowly"]  # the user's spelling, not the tokens
    assert wv.vectors.shape == (4, tiny_bert.model.config.hidden_size)
    np.testing.assert_allclose(wv.vectors[1], (hidden[2] + hidden[3]) / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(wv.vectors[0], hidden[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(wv.vectors[3], hidden[5], rtol=1e-5, atol=1e-6)
    assert wv.layer == layer and wv.sentence_index == [0, 0, 0, 0]


def test_default_layer_is_last_and_padding_never_enters(tiny_bert):
    texts = SENTENCES + ["a dog ."]
    one_by_one = word_vectors(tiny_bert, texts, batch_size=1)
    batched = word_vectors(tiny_bert, texts, batch_size=4)  # padded to the longest sentence
    assert one_by_one.layer == batched.layer == tiny_bert.num_layers
    assert batched.words == one_by_one.words
    assert batched.sentence_index == [i for i, t in enumerate(texts) for _ in t.split()]
    np.testing.assert_allclose(batched.vectors, one_by_one.vectors, rtol=1e-4, atol=1e-5)


def test_keep_special_adds_the_special_tokens_in_order(tiny_bert):
    wv = word_vectors(tiny_bert, "the cat sat", keep_special=True, layer=1)
    hidden, _ = _hidden(tiny_bert, "the cat sat", 1)
    assert wv.words == ["[CLS]", "the", "cat", "sat", "[SEP]"]
    assert wv.special == [True, False, False, False, True]
    np.testing.assert_allclose(wv.vectors[0], hidden[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(wv.vectors[4], hidden[4], rtol=1e-5, atol=1e-6)


def test_roberta_words_come_from_character_offsets(tiny_roberta):
    wv = word_vectors(tiny_roberta, ["the dog ran in the park .", "the cat sat on the mat ."])
    assert wv.words == "the dog ran in the park . the cat sat on the mat .".split()
    assert np.isfinite(wv.vectors).all()


def test_layer_out_of_range_is_a_user_error(tiny_bert):
    from mlmtool.errors import MlmtoolError

    with pytest.raises(MlmtoolError, match="between 0 .* and 2"):
        word_vectors(tiny_bert, "the cat sat", layer=3)


def test_pca_equals_sklearn_on_the_saved_vectors(tiny_bert_dir, runner):
    from sklearn.decomposition import PCA

    Path("s.txt").write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    result = runner.invoke(cli, ["embed", "-m", str(tiny_bert_dir), "-i", "s.txt", "--save-vectors", "v.npz",
                                 "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    saved = np.load("v.npz", allow_pickle=False)
    expected = PCA(n_components=2).fit_transform(saved["vectors"].astype(np.float64))
    got = np.array([[p["x"], p["y"]] for p in payload["points"]])
    # principal axes are defined up to sign: compare column by column
    for k in range(2):
        sign = np.sign(got[:, k] @ expected[:, k])
        np.testing.assert_allclose(got[:, k], sign * expected[:, k], rtol=1e-6, atol=1e-6)
    assert [p["word"] for p in payload["points"]] == saved["words"].tolist()
    assert [p["sentence"] for p in payload["points"]] == (saved["sentence_index"] + 1).tolist()
    assert saved["sentences"].tolist() == SENTENCES and int(saved["layer"]) == 2
    assert sum(payload["explained_variance"]) <= 1.0
    assert not Path("embeddings.png").exists()  # --json and --save-vectors were asked for instead


def test_vectors_round_trip(tiny_bert, tmp_path):
    wv = word_vectors(tiny_bert, SENTENCES, layer=1)
    back = load_vectors(wv.save(tmp_path / "v.npz"))
    np.testing.assert_array_equal(back.vectors, wv.vectors)
    assert (back.words, back.sentence_index, back.sentences, back.layer) == \
        (wv.words, wv.sentence_index, wv.sentences, 1)


def test_vectors_to_dict_is_json_and_matches_the_vectors(tiny_bert):
    import json

    wv = word_vectors(tiny_bert, SENTENCES, layer=1)
    data = json.loads(json.dumps(wv.to_dict()))
    np.testing.assert_array_equal(np.array(data["vectors"], dtype=np.float32), wv.vectors)
    assert (data["words"], data["sentence_index"], data["sentences"], data["special"], data["layer"]) == \
        (wv.words, wv.sentence_index, wv.sentences, wv.special, 1)


def test_auto_perplexity_is_valid_and_explained():
    assert auto_perplexity(200) == (30.0, None)
    for n in (3, 4, 10, 50, 91):
        value, note = auto_perplexity(n)
        assert 0 < value < n and 3 * value <= max(n - 1, 3)
        assert note and f"only {n} points" in note
    with pytest.raises(ValueError, match="below the number of points"):
        auto_perplexity(5, requested=5)


def test_tsne_small_input_lowers_perplexity_and_says_so(tiny_bert_dir, runner):
    result = runner.invoke(cli, ["embed", "-m", str(tiny_bert_dir), "the cat sat on", "--method", "tsne",
                                 "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["method"] == "tsne" and payload["perplexity"] == 1.0 and len(payload["points"]) == 4
    assert "perplexity set to 1" in result.stderr


def test_tsne_is_seeded(tiny_bert):
    wv = word_vectors(tiny_bert, SENTENCES)
    a, b = project(wv, "tsne", seed=3), project(wv, "tsne", seed=3)
    np.testing.assert_array_equal(a.coords, b.coords)


@pytest.mark.parametrize("args, message", [
    (["the cat"], "need at least 3 words"),
    (["the cat sat", "--method", "tsne", "--perplexity", "3"], "--perplexity must be above 0 and below"),
    (["the cat sat", "--layer", "7"], "--layer must be between 0"),
    (["the cat sat", "--png", "plot.svg"], "ending in .png"),
    (["the cat sat", "--save-vectors", "v.txt"], "ending in .npz"),
    # -o is the output directory now; a file name there was the PNG of earlier releases
    (["the cat sat", "-o", "plot.png"], "use --png plot.png"),
    (["the cat sat", "-o", "map.html"], "use --html map.html"),
    (["the cat sat", "-o", "v.npz"], "use --save-vectors v.npz"),
    (["the cat sat", "--out", "plot.png"], "--out is now --png FILE"),  # the old long flag
    # each TEXT argument was a sentence in earlier releases: now TEXT is one sentence
    (["he sat on the bank .", "the bank lends money ."], "use -i FILE"),
    (["the cat sat", "-i", "s.txt"], "not both"),
    (["the cat sat", "--png", "p.png", "--html", "p.png"], "must be different files"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tiny_bert_dir, runner, args, message):
    result = runner.invoke(cli, ["embed", "-m", str(tiny_bert_dir), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert list(Path(".").iterdir()) == []


def test_existing_outputs_are_not_overwritten(tiny_bert_dir, runner):
    Path("plot.png").write_bytes(b"mine")
    args = ["embed", "-m", str(tiny_bert_dir), *SENTENCES[0].split()]
    result = runner.invoke(cli, [*args, "--png", "plot.png", "--html", "plot.html"])
    assert result.exit_code == 2 and "already exists" in result.output
    assert Path("plot.png").read_bytes() == b"mine" and not Path("plot.html").exists()
    result = runner.invoke(cli, [*args, "--png", "plot.png", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert Path("plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # -o DIR refuses to replace its own files, and leaves other files in DIR alone
    Path("map").mkdir()
    Path("map/embeddings.html").write_text("mine", encoding="utf-8")
    Path("map/notes.txt").write_text("keep", encoding="utf-8")
    result = runner.invoke(cli, [*args, "-o", "map"])
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert sorted(p.name for p in Path("map").iterdir()) == ["embeddings.html", "notes.txt"]
    assert Path("map/embeddings.html").read_text(encoding="utf-8") == "mine"
    result = runner.invoke(cli, [*args, "-o", "map", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert Path("map/embeddings.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert Path("map/notes.txt").read_text(encoding="utf-8") == "keep"


def test_output_dir_holds_every_output(tiny_bert_dir, runner):
    Path("s.txt").write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    result = runner.invoke(cli, ["embed", "-m", str(tiny_bert_dir), "-i", "s.txt", "-o", "map", "--json"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in Path("map").iterdir()) == [
        "embeddings.html", "embeddings.json", "embeddings.png", "vectors.npz"]
    saved = json.loads(Path("map/embeddings.json").read_text(encoding="utf-8"))
    assert saved == json.loads(result.stdout)  # the file holds what --json prints
    assert [p["word"] for p in saved["points"]] == " ".join(SENTENCES).split()
    back = load_vectors("map/vectors.npz")
    assert back.words == [p["word"] for p in saved["points"]] and back.sentences == SENTENCES
    assert Path("map/embeddings.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = Path("map/embeddings.html").read_text(encoding="utf-8")
    assert page.count('class="pt ') == len(saved["points"])
    assert not Path("embeddings.png").exists()  # nothing written outside -o DIR


def test_a_file_name_as_text_gives_the_hint(tiny_bert_dir, runner):
    Path("notes.txt").write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    for args in (["notes.txt"], ["notes.txt", "-"]):
        result = runner.invoke(cli, ["embed", "-m", str(tiny_bert_dir), *args])
        assert result.exit_code == 2 and "-i" in result.output and "Traceback" not in result.output
        assert len([line for line in result.output.splitlines() if line.startswith("Error:")]) == 1
    assert sorted(p.name for p in Path(".").iterdir()) == ["notes.txt"]
    result = runner.invoke(cli, ["embed", "-m", str(tiny_bert_dir), "notes.txt"])
    assert "use -i notes.txt" in result.output


def test_png_and_html_from_file_and_stdin(tiny_bert_dir, runner):
    Path("s.txt").write_text("\n".join(SENTENCES[:2]) + "\n\n" + SENTENCES[2] + "\n", encoding="utf-8")
    result = runner.invoke(cli, ["embed", "-m", str(tiny_bert_dir), "-i", "s.txt", "--html", "p.html",
                                 "--png", "p.png", "--color", "word"])
    assert result.exit_code == 0, result.output
    assert "3 sentence(s)" in result.stderr
    piped = runner.invoke(cli, ["embed", "-m", str(tiny_bert_dir), "-", "--json"],
                          input="\n".join(SENTENCES) + "\n")
    assert piped.exit_code == 0, piped.output
    assert json.loads(piped.stdout)["sentences"] == SENTENCES and "3 sentence(s)" in piped.stderr
    from PIL import Image

    with Image.open("p.png") as img:
        assert img.format == "PNG" and img.width > 500
    page = Path("p.html").read_text(encoding="utf-8")
    assert page.count('class="pt ') == sum(len(s.split()) for s in SENTENCES)
    assert 'data-sentence="he walked to the bank of the river ."' in page


def test_html_is_offline_and_escaped(tiny_bert):
    from mlmtool.render.embed_view import render_embedding_html

    texts = ['the cat sat on <script>alert("x")</script> mat', "the dog ran"]
    page = str(render_embedding_html(project(word_vectors(tiny_bert, texts), "pca")))
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    urls = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page)
    assert urls == []  # nothing is loaded from the network
    assert "@import" not in page and "http://www.w3.org/2000/svg" in page  # only the SVG namespace


def test_colour_by_word_groups_repeated_words(tiny_bert):
    from mlmtool.render.embed_view import _groups, categorical_colours, render_embedding

    proj = project(word_vectors(tiny_bert, ["the bank of the river", "the bank gave money"]), "pca")
    groups = _groups(proj, "word")
    assert groups.labels == ["the", "bank", "other words"]
    assert [groups.labels[g] for g in groups.of_point] == [
        "the", "bank", "other words", "the", "other words", "the", "bank", "other words", "other words"]
    assert groups.colours[:2] == categorical_colours(2) and groups.colours[2] == "#9e9e9e"
    by_sentence = _groups(proj, "sentence")
    assert by_sentence.of_point == [0] * 5 + [1] * 4
    assert by_sentence.labels[0] == "1: the bank of the river"  # sentences counted from 1
    fig = render_embedding(proj, color="word")
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["the", "bank", "other words"]
    assert "layer 2, PCA" in fig.axes[0].get_title()


@pytest.mark.slow
def test_minilm_separates_the_two_senses_of_bank(minilm):
    """Real MiniLM: "bank" (river) is closer to "bank" (river) than to "bank" (money) at the
    last layer, while the input embeddings (layer 0) barely tell them apart."""
    texts = ["He sat on the bank of the river.", "The river bank was covered in mud.",
             "She deposited the money at the bank.", "The bank approved his loan."]

    def cosines(layer):
        wv = word_vectors(minilm, texts, layer=layer)
        idx = [i for i, w in enumerate(wv.words) if w == "bank"]
        assert [wv.sentence_index[i] for i in idx] == [0, 1, 2, 3]
        v = wv.vectors[idx] / np.linalg.norm(wv.vectors[idx], axis=1, keepdims=True)
        c = v @ v.T
        return np.array([c[0, 1], c[2, 3]]), c[:2, 2:].ravel()

    same, cross = cosines(minilm.num_layers)
    assert same.min() > cross.max()
    same0, cross0 = cosines(0)
    assert (same.mean() - cross.mean()) > (same0.mean() - cross0.mean()) + 0.03


@pytest.mark.slow
def test_minilm_cli_tsne_html(minilm, runner):
    texts = ["He sat on the bank of the river.", "She deposited the money at the bank.",
             "The fishermen waited on the river bank."]
    Path("bank.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    result = runner.invoke(cli, ["embed", "-m", "minilm", "-i", "bank.txt", "--method", "tsne", "--layer", "4",
                                 "--html", "bank.html", "--png", "bank.png"])
    assert result.exit_code == 0, result.output
    assert "layer 4 of 6" in result.stderr
    page = Path("bank.html").read_text(encoding="utf-8")
    assert page.count('data-word="bank"') == 3 and "t-SNE" in page
