"""``mlmtool shell``: answers through stdin (CliRunner), and once under a real terminal (pexpect)."""

from __future__ import annotations

import json
import re
import sys

import pytest

DATA_RE = re.compile(r'<script type="application/json" class="mlmv-data">(.*?)</script>', re.S)


def shell(runner, answers: list[str], *args):
    """Run the shell with one answer per line; end of input follows the last answer."""
    from mlmtool.cli import cli

    return runner.invoke(cli, ["shell", *args], input="".join(a + "\n" for a in answers))


def page_data(path) -> dict:
    return json.loads(DATA_RE.search(path.read_text(encoding="utf-8")).group(1))


def assert_clean_exit(result):
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert result.output.rstrip().endswith("Bye.")


def test_choose_model_predict_diagrams_and_html(runner, tiny_bert, tiny_bert_dir, tmp_path):
    from mlmtool.analysis.predict import predict

    text = "the [MASK] sat on the mat ."
    r = shell(runner, [str(tiny_bert_dir), "1", text, "3", "y", "", "y", "", "0"])
    assert_clean_exit(r)
    expected = predict(tiny_bert, text, top_k=3).masks[0].candidates
    for cand in expected:  # the library's answer, as printed by the shell
        assert f"  {cand.sequence}  ({cand.score:.4f})" in r.output
    files = sorted(p.name for p in (tmp_path / "attention").iterdir())
    assert len(files) == tiny_bert.num_layers * tiny_bert.num_heads + 1 and "overview.png" in files
    data = page_data(tmp_path / "view.html")
    assert [c["token"] for c in data["predictions"][0]["candidates"]] == [c.token for c in expected]
    assert "Written in this session: attention, view.html" in r.output


def test_bad_choices_reprompt(runner, tiny_bert_dir):
    r = shell(runner, ["x", "9", "", "q"], "-m", str(tiny_bert_dir))
    assert_clean_exit(r)
    assert "'x' is not a choice" in r.output and "'9' is not a choice" in r.output
    assert r.output.count("Choice:") == 4


def test_model_menu_reprompts_until_a_model_loads(runner, tiny_bert_dir):
    r = shell(runner, ["99", "no/such/dir", str(tiny_bert_dir), "0"])
    assert_clean_exit(r)
    assert "Type a number from 1 to" in r.output
    assert "Error: no such model directory: 'no/such/dir'" in r.output
    assert f"Model: {tiny_bert_dir} (2 layers x 4 heads, masked-LM head)" in r.output


@pytest.mark.parametrize("answers", [[], ["1", "the [MASK] sat ."], ["1"]])
def test_end_of_input_leaves_cleanly(runner, tiny_bert_dir, answers):
    r = shell(runner, answers, "-m", str(tiny_bert_dir))
    assert_clean_exit(r)


def test_end_of_input_at_the_model_menu(runner):
    r = shell(runner, [])
    assert_clean_exit(r)


def test_files_are_replaced_only_after_a_yes(runner, tiny_bert_dir, tmp_path):
    (tmp_path / "view.html").write_text("mine", encoding="utf-8")
    r = shell(runner, ["1", "the cat sat .", "n", "y", "", "n", "other.html", "0"], "-m", str(tiny_bert_dir))
    assert_clean_exit(r)
    assert "'view.html' exists. Replace it?" in r.output
    assert (tmp_path / "view.html").read_text(encoding="utf-8") == "mine"
    assert page_data(tmp_path / "other.html")["predictions"] is None
    assert "No [MASK] in the sentence" in r.output


def test_missing_subcommand_is_not_available(runner, tiny_bert_dir, monkeypatch):
    import mlmtool.cli

    monkeypatch.setitem(mlmtool.cli.COMMANDS, "finetune", "mlmtool.commands.no_such_module:finetune")
    r = shell(runner, ["2", "0"], "-m", str(tiny_bert_dir))
    assert_clean_exit(r)
    assert "Fine-tune the model on a text file (not available)" in r.output
    assert "is not available in this installation" in r.output


def test_heads_labels_reach_later_pages_and_model_loads_once(runner, tiny_bert_dir, tmp_path, monkeypatch):
    pytest.importorskip("mlmtool.commands.heads")
    import mlmtool.models

    calls = []
    real_load = mlmtool.models.load

    def counting_load(*args, **kwargs):
        calls.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(mlmtool.models, "load", counting_load)
    (tmp_path / "s.txt").write_text("the cat sat on the mat .\nthe dog ran in the park .\n"
                                    "she opened the door .\n", encoding="utf-8")
    r = shell(runner, ["5", "s.txt", "", "", "1", "the cat sat .", "n", "y", "", "0"], "-m", str(tiny_bert_dir))
    assert_clean_exit(r)
    assert f"$ mlmtool heads s.txt -m {tiny_bert_dir} -o heads" in r.output
    heads = json.loads((tmp_path / "heads" / "heads.json").read_text(encoding="utf-8"))
    expected = {f"L{h['layer']}H{h['head']}": h["label"] for h in heads["heads"]}
    assert page_data(tmp_path / "view.html")["labels"] == expected
    assert len(calls) == 1  # heads ran on the model the shell had loaded
    assert mlmtool.models.load is counting_load  # and the loader is back as it was


@pytest.mark.slow
def test_explain_through_the_shell(runner, tiny_bert_dir):
    pytest.importorskip("mlmtool.commands.explain")
    r = shell(runner, ["4", "the cat sat .", "the [MASK] sat .", "", "n", "0"], "-m", str(tiny_bert_dir))
    assert_clean_exit(r)
    assert "The sentence needs a [MASK]" in r.output
    assert "$ mlmtool explain 'the [MASK] sat .'" in r.output
    assert "SHAP" in r.output


def test_embed_through_the_shell(runner, tiny_bert_dir, tmp_path):
    pytest.importorskip("mlmtool.commands.embed")
    r = shell(runner, ["3", "the cat sat on the mat .", "the dog ran .", "", "pca", "", "n", "0"],
              "-m", str(tiny_bert_dir))
    assert_clean_exit(r)
    assert (tmp_path / "embeddings.png").read_bytes()[:4] == b"\x89PNG"


def test_explain_needs_an_mlm_head(runner, tiny_bert_dir, monkeypatch):
    import mlmtool.models

    real_load = mlmtool.models.load

    def headless(*args, **kwargs):
        lm = real_load(*args, **kwargs)
        lm.has_mlm_head = False
        return lm

    monkeypatch.setattr(mlmtool.models, "load", headless)
    r = shell(runner, ["4", "1", "the [MASK] sat .", "n", "n", "0"], "-m", str(tiny_bert_dir))
    assert_clean_exit(r)
    assert "has no masked-LM head, and explaining a prediction needs one" in r.output
    assert "predictions need one" in r.output


@pytest.mark.slow
def test_finetune_through_the_shell_then_switch(runner, tiny_bert_dir, tmp_path):
    pytest.importorskip("mlmtool.commands.finetune")
    lines = ["the cat sat on the mat .", "the dog ran in the park .", "she opened the door .",
             "we read a good book ."] * 60
    (tmp_path / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = shell(runner, ["2", "corpus.txt", "ft", "1", "", "y", "0"], "-m", str(tiny_bert_dir))
    assert_clean_exit(r)
    assert (tmp_path / "ft" / "config.json").is_file()
    assert "Model: ft (2 layers x 4 heads, masked-LM head)" in r.output


@pytest.mark.slow
def test_real_terminal_ctrl_c_and_ctrl_d(tiny_bert_dir, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    cmd = [sys.executable, "-m", "mlmtool", "shell", "-m", str(tiny_bert_dir)]
    child = pexpect.spawn(cmd[0], cmd[1:], cwd=str(tmp_path), encoding="utf-8", timeout=90,
                          env={"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "TERM": "dumb",
                               "PATH": "/usr/bin:/bin"})
    try:
        child.expect("Choice: ")
        child.sendline("1")
        child.expect(r"Sentence \(write \[MASK\]")
        child.sendline("the [MASK] sat on the mat .")
        child.expect(r"How many candidates per mask \[5\]: ")
        child.sendline("2")
        child.expect(r"\(0\.\d{4}\)")
        child.expect(r"diagrams.*\[y/N\]: ")
        child.sendline("")
        child.expect(r"HTML page\? \[Y/n\]: ")
        child.sendline("n")
        child.expect("Choice: ")
        child.sendline("nonsense")
        child.expect("'nonsense' is not a choice")
        child.expect("Choice: ")
        child.sendintr()  # Ctrl-C at a prompt
        child.expect("Bye.")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0 and "Traceback" not in child.before

    child = pexpect.spawn(cmd[0], cmd[1:], cwd=str(tmp_path), encoding="utf-8", timeout=90,
                          env={"HF_HUB_OFFLINE": "1", "TERM": "dumb", "PATH": "/usr/bin:/bin"})
    try:
        child.expect("Choice: ")
        child.sendeof()  # Ctrl-D
        child.expect("Bye.")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
