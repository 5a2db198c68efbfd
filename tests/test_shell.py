"""``mlmtool shell``: what each task prints and writes is what the library gives on the same model.

Answers go through stdin (CliRunner, one per line; end of input follows the last one), and
once through a real terminal (pexpect). Each test checks a property a bug would break: the
printed predictions equal :func:`mlmtool.predict`, the diagrams are :func:`mlmtool.render_head`'s
pixels, the page's attention is :func:`mlmtool.attention`'s, the model is loaded once, bad
answers are re-asked with click's reason, files are never replaced without a yes.
"""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest

DATA_RE = re.compile(r'<script type="application/json" class="mlmv-data">(.*?)</script>', re.S)
MENU = "Choice: "
#: A candidate as ``mlmtool predict`` prints it: sequence, probability, the pieces when several.
PRINTED = r"^(\S.*?)  \((\d\.\d{4})\)(?:  \[.*\])?$"


def shell(runner, answers: list[str], *args):
    """Run the shell with one answer per line; end of input follows the last answer."""
    from mlmtool.cli import cli

    return runner.invoke(cli, ["shell", *args], input="".join(a + "\n" for a in answers))


def page_data(path) -> dict:
    return json.loads(DATA_RE.search(path.read_text(encoding="utf-8")).group(1))


def assert_clean_exit(result):
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "Aborted!" not in result.output
    assert result.output.rstrip().endswith("Bye.")


@pytest.fixture
def load_calls(monkeypatch):
    """Every call of ``mlmtool.models.load`` during the test, as ``(model, lang)``."""
    import mlmtool.models

    calls = []
    real_load = mlmtool.models.load

    def counting_load(model=None, lang="en", **kwargs):
        calls.append((model, lang))
        return real_load(model, lang, **kwargs)

    monkeypatch.setattr(mlmtool.models, "load", counting_load)
    yield calls
    assert mlmtool.models.load is counting_load  # the shell never replaced the loader


def test_predict_prints_the_library_answer_and_writes_its_diagrams_and_page(
        runner, tiny_bert, tiny_bert_dir, tmp_path, load_calls):
    import mlmtool
    from PIL import Image

    from mlmtool.render.html_view import decode_attention

    text = "the [MASK] sat on the mat ."
    r = shell(runner, [str(tiny_bert_dir), "1", text, "3", "y", "", "y", "", "0"])
    assert_clean_exit(r)
    expected = mlmtool.predict(tiny_bert, text, top_k=3).masks[0].candidates
    printed = re.findall(PRINTED, r.output, re.M)
    assert printed == [(c.sequence, f"{c.score:.4f}") for c in expected]

    att = mlmtool.attention(tiny_bert, text)
    folder = tmp_path / "attention"
    names = {p.name for p in folder.iterdir()}
    assert names == {f"Attention_Layer{l}_Head{h}.png" for l in (1, 2) for h in (1, 2, 3, 4)} | {"overview.png"}
    for layer, head in [(1, 1), (2, 4)]:  # each file is that head's diagram, not another's
        written = np.asarray(Image.open(folder / f"Attention_Layer{layer}_Head{head}.png").convert("RGB"))
        assert np.array_equal(written, np.asarray(mlmtool.render_head(att, layer, head).convert("RGB")))

    data = page_data(tmp_path / "view.html")
    assert [c["token"] for c in data["predictions"][0]["candidates"]] == [c.token for c in expected]
    assert data["tokens"] == list(att.tokens)
    assert np.abs(decode_attention(data["attention"]) - att.attention).max() <= 1 / 255 + 1e-6
    assert "Written in this session: attention, view.html" in r.output
    assert load_calls == [(str(tiny_bert_dir), "en")]


def test_predict_prints_what_mlmtool_predict_prints(runner, tiny_bert_dir):
    """Several masks: the shell prints the joint sentences, through the CLI's renderer."""
    from mlmtool.cli import cli

    text = "the [MASK] sat on the [MASK] ."
    r = shell(runner, ["1", text, "3", "n", "n", "0"], "-m", str(tiny_bert_dir))
    assert_clean_exit(r)
    cli_lines = runner.invoke(cli, ["predict", "-m", str(tiny_bert_dir), "-k", "3", text]).stdout.splitlines()
    assert len(cli_lines) == 3 and "[MASK]" not in cli_lines[0]
    assert re.findall(PRINTED, r.output, re.M) == re.findall(PRINTED, "\n".join(cli_lines), re.M)
    assert "\n".join(cli_lines) in r.output


def test_every_task_runs_on_the_one_loaded_model(runner, tiny_bert, tiny_bert_dir, tmp_path, load_calls):
    pytest.importorskip("sklearn")
    import mlmtool

    sentences = ["the cat sat on the mat .", "the dog ran in the park .", "she opened the door ."]
    (tmp_path / "s.txt").write_text("\n".join(sentences) + "\n", encoding="utf-8")
    answers = ["5", "s.txt", "", "",                                 # heads
               "3", "s.txt", "pca", "", "y", "",                     # embed (sentences from a file)
               "1", "the [MASK] ran .", "2", "n", "y", "", "0"]       # predict + page
    r = shell(runner, answers, "-m", str(tiny_bert_dir))
    assert_clean_exit(r)
    assert load_calls == [(str(tiny_bert_dir), "en")]

    # heads: the labels written, printed and shown in the later page are the library's
    labels = mlmtool.head_labels(mlmtool.score_heads(tiny_bert, sentences))
    expected = {f"L{l + 1}H{h + 1}": str(labels[l, h]) for l in range(2) for h in range(4)}
    heads = json.loads((tmp_path / "heads" / "heads.json").read_text(encoding="utf-8"))
    assert {f"L{h['layer']}H{h['head']}": h["label"] for h in heads["heads"]} == expected
    assert page_data(tmp_path / "view.html")["labels"] == expected
    for label in set(expected.values()):
        assert f"  {label}: " + ", ".join(k for k, v in expected.items() if v == label) in r.output
    assert {"analysis.md", "heads.json"} <= {p.name for p in (tmp_path / "heads").iterdir()}

    # embed: one point per word of the file's sentences, a real PNG and HTML page
    n_words = len(mlmtool.word_vectors(tiny_bert, sentences))
    assert f"{n_words} words from 3 sentence(s), layer 2 of 2, PCA" in r.output
    assert (tmp_path / "embeddings.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "embeddings.html").read_text(encoding="utf-8")
    assert page.count('<g class="pt ') == n_words


def test_bad_menu_answers_are_reasked_by_click(runner, tiny_bert_dir):
    r = shell(runner, ["x", "9", "", "q"], "-m", str(tiny_bert_dir))
    assert_clean_exit(r)
    assert "Error: 'x' is not one of '1'" in r.output and "Error: '9' is not one of '1'" in r.output
    assert r.output.count(MENU) == 4  # x, 9, empty (asked again silently), q
    assert r.output.count("Model: ") == 1  # no task ran, the menu was not redrawn


def test_bad_answers_inside_a_task_are_reasked(runner, tiny_bert, tiny_bert_dir, tmp_path):
    import mlmtool

    text = "the [MASK] sat ."
    r = shell(runner, ["1", text, "0", "two", "2", "n", "y", "out.html", "0"], "-m", str(tiny_bert_dir))
    assert_clean_exit(r)
    assert "Error: 0 is not in the range x>=1." in r.output
    assert "Error: 'two' is not a valid integer range." in r.output
    printed = re.findall(PRINTED, r.output, re.M)
    assert len(printed) == 2  # the answer finally accepted
    assert printed[0][0] == mlmtool.predict(tiny_bert, text, top_k=2).masks[0].candidates[0].sequence
    assert page_data(tmp_path / "out.html")["text"] == text


def test_output_that_is_a_directory_is_refused_by_click(runner, tiny_bert_dir, tmp_path):
    (tmp_path / "adir").mkdir()
    r = shell(runner, ["1", "the cat sat .", "n", "y", "adir", "page.html", "0"], "-m", str(tiny_bert_dir))
    assert_clean_exit(r)
    assert "Error: File 'adir' is a directory." in r.output
    assert page_data(tmp_path / "page.html")["predictions"] is None
    assert list((tmp_path / "adir").iterdir()) == []


def test_model_menu_reasks_until_a_model_loads(runner, tiny_bert_dir, load_calls):
    from mlmtool.registry import REGISTRY

    r = shell(runner, ["99", "no/such/dir", str(tiny_bert_dir), "0"])
    assert_clean_exit(r)
    assert f"Error: type a number from 1 to {len(REGISTRY)}, a name or a directory" in r.output
    assert "Error: no such model directory: 'no/such/dir'" in r.output
    assert f"Model: {tiny_bert_dir} (2 layers x 4 heads, masked-LM head)" in r.output
    assert load_calls == [("no/such/dir", "en"), (str(tiny_bert_dir), "en")]  # "99" never reached the loader


@pytest.mark.parametrize("answers", [[], ["1", "the [MASK] sat ."], ["1"], ["5", ""]])
def test_end_of_input_leaves_cleanly(runner, tiny_bert_dir, answers):
    r = shell(runner, answers, "-m", str(tiny_bert_dir))
    assert_clean_exit(r)


def test_end_of_input_at_the_model_menu(runner, load_calls):
    r = shell(runner, [])
    assert_clean_exit(r)
    assert "Model: " in r.output and load_calls == []


def test_files_are_replaced_only_after_a_yes(runner, tiny_bert_dir, tmp_path):
    (tmp_path / "view.html").write_text("mine", encoding="utf-8")
    r = shell(runner, ["1", "the cat sat .", "n", "y", "", "n", "other.html", "0"], "-m", str(tiny_bert_dir))
    assert_clean_exit(r)
    assert "'view.html' exists. Replace it?" in r.output
    assert (tmp_path / "view.html").read_text(encoding="utf-8") == "mine"
    data = page_data(tmp_path / "other.html")
    assert data["predictions"] is None and data["note"].startswith("No [MASK] in the sentence")

    (tmp_path / "attention").mkdir()
    (tmp_path / "attention" / "overview.png").write_bytes(b"mine")
    r = shell(runner, ["1", "the cat sat .", "y", "", "n", "diagrams", "n", "0"], "-m", str(tiny_bert_dir))
    assert_clean_exit(r)
    assert "'attention' already has files. Write over them?" in r.output
    assert (tmp_path / "attention" / "overview.png").read_bytes() == b"mine"
    assert len(list((tmp_path / "diagrams").iterdir())) == 2 * 4 + 1


def test_a_library_error_is_one_line_and_the_menu_goes_on(runner, tiny_bert, tiny_bert_dir):
    import mlmtool

    long_text = "the [MASK] " + "cat " * 80  # longer than the tiny model's 64 positions
    with pytest.raises(mlmtool.MlmtoolError) as exc:
        mlmtool.predict(tiny_bert, long_text)
    r = shell(runner, ["1", long_text, "", "1", "the [MASK] sat .", "1", "n", "n", "0"], "-m", str(tiny_bert_dir))
    assert_clean_exit(r)
    assert f"Error: {str(exc.value).splitlines()[0]}\n" in r.output
    after = r.output.split(str(exc.value).splitlines()[0], 1)[1]
    assert after.count(MENU) == 2  # back at the menu, and the next task worked
    best = mlmtool.predict(tiny_bert, "the [MASK] sat .", top_k=1).masks[0].candidates[0]
    assert f"\n{best.sequence}  ({best.score:.4f})" in after


def test_a_task_whose_extra_is_missing_is_not_available(runner, tiny_bert_dir, monkeypatch):
    from mlmtool.commands.shell import tasks

    embed = next(t for t in tasks.TASKS if t.key == "3")

    def must_not_run(session):
        raise AssertionError("an unavailable task ran")

    monkeypatch.setattr(embed, "needs", ("no_such_module_xyz",))
    monkeypatch.setattr(embed, "run", must_not_run)
    r = shell(runner, ["3", "0"], "-m", str(tiny_bert_dir))
    assert_clean_exit(r)
    assert "3) Embed words and plot them in 2-D (not available)" in r.output
    assert "is not available in this installation (it needs no_such_module_xyz)" in r.output
    assert "1) Predict masked words (+ attention diagrams, HTML page)\n" in r.output


def test_word_pairs_are_checked_at_the_prompt(runner, tiny_bert_dir, tmp_path):
    from mlmtool.analysis.heads import parse_pair
    from mlmtool.errors import MlmtoolError

    with pytest.raises(MlmtoolError) as exc:
        parse_pair("nonsense")
    (tmp_path / "s.txt").write_text("the cat sat on the mat .\nthe dog ran in the park .\n", encoding="utf-8")
    r = shell(runner, ["5", "s.txt", "", "nonsense", "cat:sat", "0"], "-m", str(tiny_bert_dir))
    assert_clean_exit(r)
    assert f"Error: {exc.value}" in r.output
    heads = json.loads((tmp_path / "heads" / "heads.json").read_text(encoding="utf-8"))
    assert [(p["source"], p["target"]) for p in heads["pairs"]] == [("cat", "sat")]


def test_without_an_mlm_head_predict_and_explain_say_why(runner, tiny_bert_dir, monkeypatch, tmp_path):
    import mlmtool.models

    real_load = mlmtool.models.load

    def headless(*args, **kwargs):
        lm = real_load(*args, **kwargs)
        lm.has_mlm_head = False
        return lm

    monkeypatch.setattr(mlmtool.models, "load", headless)
    r = shell(runner, ["4", "1", "the [MASK] sat .", "n", "y", "", "0"], "-m", str(tiny_bert_dir))
    assert_clean_exit(r)
    assert "has no masked-LM head, and explaining a prediction needs one" in r.output
    assert "predictions need an MLM head" in r.output  # the note of the page, view and predict
    assert not re.search(r"\(\d\.\d{4}\)", r.output)  # no candidates printed
    data = page_data(tmp_path / "view.html")
    assert data["predictions"] is None and "no trained masked-LM head" in data["note"]


@pytest.mark.slow
def test_explain_prints_and_writes_the_library_result(runner, tiny_bert, tiny_bert_dir, tmp_path):
    pytest.importorskip("shap")
    import mlmtool

    text = "the [MASK] sat ."
    r = shell(runner, ["4", "the cat sat .", text, "", "y", "", "0"], "-m", str(tiny_bert_dir))
    assert_clean_exit(r)
    assert "Error: the sentence needs a [MASK]" in r.output  # re-asked, then accepted
    expected = mlmtool.explain(tiny_bert, text)
    assert f"p({expected.target!r} at mask 1) = {expected.full_value:.4f}" in r.output
    saved = json.loads((tmp_path / "explain" / "explanation.json").read_text(encoding="utf-8"))
    assert saved["target"] == expected.target
    assert np.allclose(saved["word_values"], expected.word_values, atol=1e-6)
    assert (tmp_path / "explain" / "explanation.png").read_bytes()[:4] == b"\x89PNG"
    assert "<html" in (tmp_path / "explain" / "explanation.html").read_text(encoding="utf-8").lower()


@pytest.mark.slow
def test_finetune_trains_a_copy_then_switches(runner, tiny_bert, tiny_bert_dir, tmp_path, load_calls):
    pytest.importorskip("datasets")
    import mlmtool

    lines = ["the cat sat on the mat .", "the dog ran in the park .", "she opened the door .",
             "we read a good book ."] * 60
    (tmp_path / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    text = "the [MASK] sat on the mat ."
    before = mlmtool.predict(tiny_bert, text, top_k=1).masks[0].candidates[0]
    r = shell(runner, ["2", "corpus.txt", "ft", "1", "", "n",      # train, keep the old model
                       "1", text, "1", "n", "n",                   # ... which is unchanged
                       "2", "corpus.txt", "ft2", "1", "", "y", "0"], "-m", str(tiny_bert_dir))
    assert_clean_exit(r)
    assert (tmp_path / "ft" / "config.json").is_file() and (tmp_path / "ft2" / "config.json").is_file()
    assert f"\n{before.sequence}  ({before.score:.4f})" in r.output  # the session's weights were not trained
    assert "Model: ft2 (2 layers x 4 heads, masked-LM head)" in r.output
    # the shell loads the start model once and ft2 when asked to switch; finetune's report
    # (ft/report.html, ft2/report.html) reads each saved model back once
    assert load_calls == [(str(tiny_bert_dir), "en"), ("ft", "en"),  # start model; ft's report
                          ("ft2", "en"), ("ft2", "en")]  # ft2's report; the switch to ft2
    assert (tmp_path / "ft" / "report.html").is_file() and (tmp_path / "ft2" / "report.html").is_file()


def _default_sigint():
    """In the child before exec: SIGINT back to its default action. A suite run as a background
    job (``pytest &``) ignores SIGINT, an ignored signal stays ignored across exec, and Python
    then installs no KeyboardInterrupt handler, so Ctrl-C would do nothing in the shell."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_real_terminal_ctrl_c_and_ctrl_d(tiny_bert_dir, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    cmd = [sys.executable, "-m", "mlmtool", "shell", "-m", str(tiny_bert_dir)]
    env = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "TERM": "dumb", "PATH": "/usr/bin:/bin"}
    spawn = {"cwd": str(tmp_path), "encoding": "utf-8", "timeout": 90, "env": env, "preexec_fn": _default_sigint}
    child = pexpect.spawn(cmd[0], cmd[1:], **spawn)
    try:
        child.expect(MENU)
        child.sendline("1")
        child.expect(r"Sentence \(write \[MASK\]")
        child.sendline("the [MASK] sat on the mat .")
        child.expect(r"How many candidates per mask \[5\]: ")
        child.sendline("0")
        child.expect(r"Error: 0 is not in the range x>=1\.")
        child.expect(r"How many candidates per mask \[5\]: ")
        child.sendline("2")
        child.expect(r"\(0\.\d{4}\)")
        child.expect(r"diagrams.*\[y/N\]: ")
        child.sendline("")
        child.expect(r"HTML page\? \[Y/n\]: ")
        child.sendline("n")
        child.expect(MENU)
        child.sendline("nonsense")
        child.expect("Error: 'nonsense' is not one of")
        child.expect(MENU)
        child.sendintr()  # Ctrl-C at a prompt
        child.expect("Bye.")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0 and "Traceback" not in child.before

    child = pexpect.spawn(cmd[0], cmd[1:], **spawn)
    try:
        child.expect(MENU)
        child.sendeof()  # Ctrl-D
        child.expect("Bye.")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
