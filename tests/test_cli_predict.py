"""`mlmtool predict`, `mlmtool attention`, `mlmtool models` through Click's CliRunner."""

import json
import subprocess
import sys

import pytest

from mlmtool.cli import cli


def test_predict_prints_sentences_with_probabilities(runner, tiny_bert_dir):
    r = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), "-k", "3", "the cat [MASK] on the mat ."])
    assert r.exit_code == 0, r.output
    lines = [l for l in r.output.splitlines() if l.strip()]
    assert len(lines) == 3
    assert all(l.startswith("the cat ") and l.rstrip().endswith(")") for l in lines)


def test_predict_json_matches_library(runner, tiny_bert_dir, tiny_bert):
    from mlmtool.analysis.predict import predict

    r = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), "-k", "2", "--json", "the [MASK] sat ."])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    lib = predict(tiny_bert, "the [MASK] sat .", top_k=2)
    assert [c["token_id"] for c in data["masks"][0]["candidates"]] == [c.token_id for c in lib.masks[0].candidates]


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
    (["[MASK] " + "cat " * 80], "at most 64"),
    (["-k", "0", "the [MASK] ."], "0"),
])
def test_bad_input_exits_2_with_one_line(runner, tiny_bert_dir, args, needle):
    r = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), *args])
    assert r.exit_code == 2, r.output
    assert needle in r.output
    assert "Traceback" not in r.output


def test_unavailable_model_exits_2(runner, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = runner.invoke(cli, ["predict", "--lang", "fr", "Le [MASK] ."])
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        "Error: model 'almanach/camembert-base' is not in the local cache and the model hub cannot be "
        "reached; try --model <dir> or `mlmtool models`"]


def test_attention_dir_and_no_overwrite(runner, tiny_bert_dir, tmp_path):
    out = tmp_path / "att"
    r = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), "the [MASK] sat .", "--attention-dir", str(out)])
    assert r.exit_code == 0, r.output
    assert len(list(out.glob("Attention_Layer*_Head*.png"))) == 8
    before = (out / "Attention_Layer1_Head1.png").read_bytes()
    r = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), "a [MASK] .", "--attention-dir", str(out)])
    assert r.exit_code == 2 and "--overwrite" in r.output
    assert (out / "Attention_Layer1_Head1.png").read_bytes() == before
    (tmp_path / "afile").write_text("keep me")
    r = runner.invoke(cli, ["attention", "-m", str(tiny_bert_dir), "the cat .", "-o", str(tmp_path / "afile")])
    assert r.exit_code == 2 and (tmp_path / "afile").read_text() == "keep me"


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
    out = subprocess.run([sys.executable, "-c", "import sys, mlmtool.cli; mlmtool.cli.main(['--help'])"
                          " if False else None; import mlmtool.cli; print('torch' in sys.modules)"],
                         capture_output=True, text=True)
    assert out.stdout.strip() == "False"
    r = subprocess.run([sys.executable, "-m", "mlmtool", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "predict" in r.stdout


@pytest.mark.slow
def test_minilm_predict_explains_missing_head_but_draws(runner, tmp_path):
    r = runner.invoke(cli, ["predict", "-m", "minilm", "The [MASK] sat on the mat.",
                            "--attention-dir", str(tmp_path / "a")])
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
