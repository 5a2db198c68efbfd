"""The tabs of ``mlmtool serve`` (issue 29, point 1): every capability in the page.

The API tests drive the app through FastAPI's TestClient on the tiny models of
``conftest.py`` and compare each new endpoint with the command that prints the same JSON
(``predict --by-layer``, ``attention --summary``, ``heads``, ``search``, ``probe``); bad
input is a 4xx JSON error. The browser test starts ``python -m mlmtool serve`` with
``--index``, ``--probe`` and ``--heads`` and drives every tab in Debian's Chromium, by
keyboard and by mouse, checks that the URL restores each tab, that the hostile sentences
stay text, that nothing leaves the server and that the console stays clean.

``MLMTOOL_SCREENSHOTS=DIR`` also writes one screenshot per tab (``tab_<name>.png``,
1000x700) into DIR; normal runs write nothing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from mlmtool.server.app import create_app  # noqa: E402
from tests.browsing import server_browser, watch  # noqa: E402
from tests.conftest import CORPUS  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

SENTENCE = "the [MASK] sat on the mat ."
PLAIN = "the cat sat on the mat ."
XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']
HOSTILE = f"a {XSS[0]} b [MASK] {XSS[1]} c"
#: The corpus of the search index: unique lines, so no two hits tie.
LINES = [f"{s[:-2]} {tail} ." for s in CORPUS for tail in ("today", "at night")]
CONLLU_ROWS = [("DET", 2, "det"), ("NOUN", 3, "nsubj"), ("VERB", 0, "root"), ("ADP", 5, "case"), ("NOUN", 3, "obl"),
               ("PUNCT", 3, "punct")]
CONLLU_WORDS = {"DET": ["the", "a"], "NOUN": ["cat", "dog", "mat", "house"], "VERB": ["sat", "ran"],
                "ADP": ["on", "in"], "PUNCT": ["."]}


def cli_json(runner, *args):
    from mlmtool.cli import cli

    result = runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def write_conllu(path: Path, n: int, seed: int) -> Path:
    """``n`` toy sentences of one shape (seeded word choices)."""
    import random

    rng = random.Random(seed)
    blocks = ["\n".join(f"{i}\t{w}\t{w}\t{tag}\t{tag}\t_\t{head}\t{rel}\t_\t_"
                        for i, (tag, head, rel) in enumerate(CONLLU_ROWS, 1)
                        for w in [rng.choice(CONLLU_WORDS[tag])]) for _ in range(n)]
    path.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def folders(tiny_bert_dir, tmp_path_factory):
    """``{index, probe, heads, probe_json}``: an index of LINES (layers 1, 2), a probe folder
    (``mlmtool probe -o``) and a heads.json, all made by the CLI on the tiny BERT."""
    from click.testing import CliRunner

    root = tmp_path_factory.mktemp("tabs")
    runner = CliRunner()
    (root / "corpus.txt").write_text("\n".join(LINES) + "\n", encoding="utf-8")
    from mlmtool.cli import cli

    r = runner.invoke(cli, ["index", str(root / "corpus.txt"), "-m", str(tiny_bert_dir), "-o", str(root / "index"),
                            "--layers", "1,2"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    train, test = write_conllu(root / "train.conllu", 24, 0), write_conllu(root / "test.conllu", 8, 1)
    probe_json = cli_json(runner, "probe", "-m", tiny_bert_dir, "--train", train, "--test", test, "-t", "upos",
                          "-t", "distance", "--control", "--rank", 4, "--epochs", 1, "-o", root / "probe", "--json")
    heads = cli_json(runner, "heads", "-m", tiny_bert_dir, "-i", root / "corpus.txt", "-o", root / "heads", "--json")
    return {"index": root / "index", "probe": root / "probe", "heads": root / "heads" / "heads.json",
            "probe_json": probe_json, "heads_json": heads, "corpus": root / "corpus.txt"}


@pytest.fixture(scope="module")
def client(tiny_bert, tiny_roberta, folders):
    app = create_app({"bert": tiny_bert, "roberta": tiny_roberta}, index=folders["index"], probe=folders["probe"])
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


def assert_error(r, status, needle=""):
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) <= {"error", "status", "param"} and needle in body["error"], body
    assert "\n" not in body["error"]


# ---- the API: each new endpoint is the CLI's JSON ---------------------------------------

def test_layers_and_summaries_are_the_cli_json(client, runner, tiny_bert_dir):
    r = client.post("/api/layers", json={"text": SENTENCE, "top_k": 3})
    assert r.status_code == 200
    assert r.json() == cli_json(runner, "predict", "-m", tiny_bert_dir, "--by-layer", "-k", 3, "--json", SENTENCE)
    for method, layers in (("rollout", None), ("flow", [2, 2])):
        body = {"text": PLAIN, "method": method, **({"layers": layers} if layers else {})}
        args = ["--layers", "2-2"] if layers else []
        expected = cli_json(runner, "attention", "-m", tiny_bert_dir, "--summary", method, *args, "--json", PLAIN)
        assert client.post("/api/summary", json=body).json() == expected


def test_heads_run_is_the_cli_json(client, runner, tiny_bert_dir, folders):
    texts = ["the cat sat on the mat .", "the dog ran in the park ."]
    Path("s.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    expected = cli_json(runner, "heads", "-m", tiny_bert_dir, "-i", "s.txt", "--threshold", 0.4, "--json")
    got = client.post("/api/heads", json={"texts": texts, "threshold": 0.4}).json()
    assert got == expected
    assert len(got["heads"]) == 2 * 4 and all(h["label"] for h in got["heads"])


def test_compare_view_is_the_pages_data(client, tiny_bert):
    from mlmtool.analysis.compare import compare_texts
    from mlmtool.render.compare_view import compare_payload

    texts = ["the [MASK] sat on the mat .", "the [MASK] ran in the park ."]
    got = client.post("/api/compare/view", json={"texts": texts}).json()
    result = compare_texts(tiny_bert, *texts)
    assert got == json.loads(json.dumps(compare_payload(result, f"{result.labels[0]} vs {result.labels[1]}")))


def test_search_is_the_cli_json_and_opens_sentences(client, runner, folders):
    query = "the dog ran to the [bank] ."
    expected = cli_json(runner, "search", folders["index"], query, "--layer", 1, "-k", 5, "--other-words", "--json")
    got = client.post("/api/search", json={"query": query, "layer": 1, "top_k": 5, "words": "other"}).json()
    assert got == expected and len(got["hits"]) == 5
    n = got["hits"][0]["sentence"]
    assert client.get(f"/api/search/sentence/{n}").json() == {"sentence": n, "text": LINES[n]}
    assert_error(client.get("/api/search/sentence/9999"), 404, "no sentence 9999")
    assert_error(client.post("/api/search", json={"query": "no brackets"}), 400, "brackets")
    assert_error(client.post("/api/search", json={"query": "[two] [words]"}), 400, "more than one")
    # literal brackets are written \[ \]: a sentence with [MASK] can be searched (the Search tab's query)
    masked = r"the dog ran to the \[MASK\] [bank] ."
    expected = cli_json(runner, "search", folders["index"], masked, "--layer", 1, "-k", 3, "--json")
    got = client.post("/api/search", json={"query": masked, "layer": 1, "top_k": 3}).json()
    assert got == expected and got["query"] == "the dog ran to the [MASK] bank ." and got["word"] == "bank"
    assert_error(client.post("/api/search", json={"query": query, "layer": 0}), 400, "not in the index")
    assert_error(client.post("/api/search", json={"query": query, "model": "roberta"}), 400, "made by model")
    assert_error(client.post("/api/search", json={"query": query, "top_k": 0}), 422, "top_k")
    assert_error(client.post("/api/search", json={"query": query, "index": "/etc"}), 422, "unknown field")


def test_probe_is_the_saved_cli_json_and_reads_a_sentence(client, folders, tiny_bert):
    from mlmtool.analysis.probe import predict_words

    assert client.get("/api/probe").json() == folders["probe_json"]
    for task in ("upos", "distance"):
        r = client.post("/api/probe", json={"text": PLAIN, "task": task})
        assert r.status_code == 200, r.text
        assert r.json() == predict_words(tiny_bert, folders["probe"], PLAIN, task=task).to_dict()
    assert_error(client.post("/api/probe", json={"text": PLAIN, "task": "depth"}), 400, "no 'depth' probe")
    assert_error(client.post("/api/probe", json={"text": PLAIN, "dir": "/tmp"}), 422, "unknown field")


def test_tab_endpoints_refuse_bad_input(client, tiny_bert):
    assert_error(client.post("/api/layers", json={"text": PLAIN}), 400, "no [MASK]")
    assert_error(client.post("/api/layers", json={"text": SENTENCE, "top_k": 0}), 422, "top_k")
    assert_error(client.post("/api/layers", json={"text": "w " * 1500}), 422, "max_text_chars")
    assert_error(client.post("/api/summary", json={"text": PLAIN, "layers": [1]}), 422, "[first, last]")
    assert_error(client.post("/api/summary", json={"text": PLAIN, "layers": [1, 9]}), 400, "layer")
    assert_error(client.post("/api/summary", json={"text": PLAIN, "method": "magic"}), 422, "method")
    assert_error(client.post("/api/summary", json={"text": " ".join(["cat"] * 80), "method": "flow"}), 400, "64")
    assert_error(client.post("/api/heads", json={"texts": []}), 422, "texts")
    assert_error(client.post("/api/heads", json={"texts": [PLAIN], "pairs": ["cat:mat"] * 9}), 422, "pairs")
    assert_error(client.post("/api/heads", json={"texts": [PLAIN], "pairs": ["nope"]}), 400, "WORD:WORD")
    assert_error(client.post("/api/heads", json={"texts": [PLAIN], "threshold": 2}), 422, "threshold")
    assert_error(client.post("/api/compare/view", json={"texts": [PLAIN]}), 422, "two texts")
    assert_error(client.post("/api/layers", json={"text": SENTENCE, "model": "nope"}), 400, "not loaded")
    bare = create_app({"bert": tiny_bert})
    with TestClient(bare, base_url="http://127.0.0.1") as c:
        assert_error(c.get("/api/probe"), 404, "--probe")
        assert_error(c.post("/api/search", json={"query": "[a]"}), 404, "--index")
        page = c.get("/").text
        assert 'id="tab-btn-search"' not in page and 'id="tab-btn-probe"' not in page
        assert 'id="tab-btn-layers"' in page and 'id="tab-btn-heads"' in page


def test_serve_refuses_bad_index_and_probe_in_one_line(runner, tiny_roberta_dir, folders, tmp_path):
    from mlmtool.cli import cli

    (tmp_path / "empty").mkdir()
    cases = [(["-m", tiny_roberta_dir, "--index", folders["index"]], "was made by model"),
             (["-m", tiny_roberta_dir, "--index", tmp_path / "empty"], "not an mlmtool index"),
             (["-m", tiny_roberta_dir, "--probe", tmp_path / "empty"], "probe.json")]
    for args, needle in cases:
        r = runner.invoke(cli, ["serve", "--port", "0", *map(str, args)])
        assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output, r.output
        assert len([line for line in r.output.splitlines() if line.strip()]) <= 3, r.output


# ---- the page in Chromium ------------------------------------------------------------------

class Server:
    """``python -m mlmtool serve --port 0 ARGS`` in a subprocess; ``url`` from its start line."""

    def __init__(self, args, cwd):
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        self.proc = subprocess.Popen([sys.executable, "-m", "mlmtool", "serve", "--port", "0", *map(str, args)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
        got, self.lines = threading.Event(), []

        def read():
            for line in self.proc.stdout:
                self.lines.append(line)
                got.set()

        threading.Thread(target=read, daemon=True).start()
        if not got.wait(180):  # a hang guard, not a speed check
            self.proc.kill()
            raise AssertionError("no start line: " + self.proc.stderr.read())
        m = re.match(r"^mlmtool serve: (http://127\.0\.0\.1:\d+/) \((.*); Ctrl-C stops\)$", self.lines[0].strip())
        assert m, self.lines
        self.url, self.names = m.group(1), m.group(2).split(", ")

    def stop(self):
        import signal

        self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        return rc, self.proc.stderr.read()


@pytest.fixture(scope="module")
def server(tiny_bert_dir, tiny_roberta_dir, folders, tmp_path_factory):
    srv = Server(["-m", tiny_bert_dir, "-m", tiny_roberta_dir, "-m", tiny_bert_dir, "--index", folders["index"],
                  "--probe", folders["probe"], "--heads", f"{tiny_bert_dir.name}={folders['heads']}"],
                 cwd=tmp_path_factory.mktemp("serve-tabs"))
    yield srv
    rc, err = srv.stop()
    assert rc == 0 and "Traceback" not in err, err


@pytest.fixture(scope="module")
def browser(server, tmp_path_factory):
    with server_browser(server.url, tmp_path_factory.mktemp("chromium-tabs"), viewport={"width": 1000, "height": 700}) as context:
        yield context


@pytest.fixture(scope="module")
def page(browser):
    with watch(browser) as pg:
        yield pg


SHOTS = os.environ.get("MLMTOOL_SCREENSHOTS")
TABS = ["fill", "layers", "score", "compare", "embed", "heads", "explain", "probe", "search"]


def wait_done(page, name, runs_before=0):
    """Wait until tab ``name`` finished a run after ``runs_before`` runs (hang guard: 120 s)."""
    if name == "fill":
        page.wait_for_selector("#mlmv-app[data-ready='1']", timeout=120_000)
        return
    page.wait_for_function("([n, r]) => { const p = document.getElementById('tab-' + n); "
                           "return Number(p.dataset.runs || 0) > r && p.dataset.state !== 'busy'; }",
                           arg=[name, runs_before], timeout=120_000)


def runs(page, name):
    return page.evaluate("n => Number((document.getElementById('tab-' + n) || {dataset: {}}).dataset.runs || 0)", name)


def check_tab(page, server, name):
    """The tab shows its result (what each tab draws, counted against the API)."""
    state = page.get_attribute(f"#tab-{name}", "data-state") if name != "fill" else "done"
    error = page.locator(f"#tab-{name} .tab-error")
    assert state == "done", (name, error.inner_text() if error.count() else "")
    if name == "layers":
        assert page.locator("#layers-by-layer tbody tr").count() == 3  # layers 0, 1, 2
        n = len(page.evaluate("() => [...document.querySelectorAll('#layers-summary tbody tr')]"))
        assert page.locator("#layers-summary td.cell").count() == n * n
    elif name == "score":
        assert page.locator("#score-out .tab-tok").count() > 0
    elif name == "compare":
        page.wait_for_selector("#mlmc-app[data-ready='1']", timeout=120_000)
    elif name == "embed":
        assert page.locator("#embed-out circle").count() >= 3
    elif name == "heads":
        assert page.locator("#heads-out td.head").count() == 2 * 4
    elif name == "explain":
        assert page.locator("#app-explain-words .app-word").count() >= 3
    elif name == "probe":
        assert page.locator("#probe-out tbody tr").count() == 3  # layers 0, 1, 2
        if "label=upos" in page.url:  # the saved probes read the sentence: one row per layer
            assert page.locator("#probe-words tbody tr").count() == 3
    elif name == "search":
        assert page.locator("#search-out tr.hit").count() > 0


def prepare(page, name):
    """What a tab needs besides the sentence box before it runs."""
    if name == "explain":
        before = runs(page, name)
        page.click("#app-explain-run")
        wait_done(page, name, before)
    elif name == "search":
        before = runs(page, name)
        page.click("#search-words button[data-word='1']")
        wait_done(page, name, before)
    elif name == "probe":
        wait_done(page, name, 0)
        before = runs(page, name)
        page.click("#probe-run")
        wait_done(page, name, before)
        assert "label=upos" in page.url


@pytest.mark.slow
@pytest.mark.browser
def test_every_tab_by_keyboard_and_mouse_restores_from_the_url(page, browser, server, folders):
    page.goto(server.url + "?text=" + SENTENCE.replace(" ", "+").replace("[", "%5B").replace("]", "%5D"))
    wait_done(page, "fill")
    urls = {"fill": page.url}
    # the keyboard: focus the open tab, then the arrow keys (Right) open the next one
    for prev, name in zip(TABS, TABS[1:]):
        before = runs(page, name)
        page.focus(f"#tab-btn-{prev}")  # (the mouse may have moved the focus into the tab)
        page.keyboard.press("ArrowRight")
        assert page.evaluate("() => document.activeElement.id") == f"tab-btn-{name}"
        assert page.get_attribute(f"#tab-btn-{name}", "aria-selected") == "true"
        assert page.is_visible(f"#tab-{name}") and not page.is_visible("#tab-fill")
        if name not in ("explain", "search", "probe"):  # these run on a click (probe: and on opening)
            wait_done(page, name, before)
        prepare(page, name)
        check_tab(page, server, name)
        assert f"tab={name}" in page.url
        urls[name] = page.url
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(SHOTS) / f"tab_{name}.png"))
    # a search hit opens its sentence in Fill & attention
    hit = page.locator("#search-out tr.hit").first
    shown = page.evaluate("() => document.body.dataset.shown")
    hit.focus()
    page.keyboard.press("Enter")
    page.wait_for_function("s => document.body.dataset.tab === 'fill' && document.body.dataset.shown !== s",
                           arg=shown, timeout=120_000)
    wait_done(page, "fill")
    assert page.input_value("#app-text") in LINES and page.inner_text(".mlmv-text") == page.input_value("#app-text")
    if SHOTS:
        page.goto(urls["fill"])
        wait_done(page, "fill")
        page.screenshot(path=str(Path(SHOTS) / "tab_fill.png"))
    # the URL restores each tab in a fresh load; the mouse runs it again
    for name in TABS[1:]:
        page.goto(urls[name])  # SHAP and search run from a shared URL too
        wait_done(page, name)
        assert page.get_attribute(f"#tab-btn-{name}", "aria-selected") == "true"
        check_tab(page, server, name)
        if name in ("layers", "score", "embed", "heads"):
            before = runs(page, name)
            page.click(f"#tab-{name} .tab-run")
            wait_done(page, name, before)
            check_tab(page, server, name)
    page.click("#tab-btn-layers")
    assert page.get_attribute("#tab-btn-layers", "aria-selected") == "true" and "tab=layers" in page.url
    assert page.problems == [] and browser.external == []


#: What each tab is given in the hostile test: {selector: text} filled after the tab opens.
HOSTILE_INPUTS = {"score": {"#score-texts": "\n".join(XSS + [HOSTILE]), "#score-pairs": f"{XSS[0]} | {XSS[1]}"},
                  "embed": {"#embed-texts": "\n".join(XSS + [HOSTILE])},
                  "heads": {"#heads-texts": "\n".join(XSS + [HOSTILE])},
                  "compare": {"#compare-text2": XSS[1]},
                  "explain": {"#explain-target": XSS[0]}}


def open_and_run(page, name):
    """Open tab ``name`` with the mouse (let an automatic run finish), fill its hostile inputs,
    run it with its own button (search: click the first word) and wait for the answer."""
    before = runs(page, name)
    page.click(f"#tab-btn-{name}")
    if page.get_attribute(f"#tab-{name}", "data-state") == "busy":
        wait_done(page, name, before)
    if name == "probe":  # the saved result opens with the tab; the button reads the sentence
        wait_done(page, name, 0)
        before = runs(page, name)
        page.click("#probe-run")
        wait_done(page, name, before)
        return
    for selector, text in HOSTILE_INPUTS.get(name, {}).items():
        page.fill(selector, text)
    if name == "compare":
        page.check("#compare-mode-texts")
    before = runs(page, name)
    page.click("#search-words button[data-word='0']" if name == "search" else f"#tab-{name} .tab-run")
    wait_done(page, name, before)


@pytest.mark.slow
@pytest.mark.browser
def test_hostile_sentences_are_text_in_every_tab(page, browser, server):
    page.goto(server.url + "?tab=%3Cimg%20src%3Dx%20onerror%3Dalert(3)%3E")
    assert page.inner_text("#app-error") == "This server has no tab '<img src=x onerror=alert(3)>'; " \
                                            "showing Fill & attention."
    page.fill("#app-text", HOSTILE)
    page.press("#app-text", "Enter")
    wait_done(page, "fill")
    assert page.inner_text(".mlmv-text") == HOSTILE
    for name in TABS[1:]:
        if name == "search":
            page.fill("#app-text", XSS[0] + " cat")
        open_and_run(page, name)
        assert page.locator("img").count() == 0
        error = page.locator(f"#tab-{name} .tab-error")
        if error.is_visible():  # an API refusal is one line of text
            assert "\n" not in error.inner_text()
    # the texts are shown as written, wherever a tab shows them
    assert page.locator("#score-out .tab-text").all_inner_texts() == XSS  # the pairs' good and bad sentences
    assert XSS[1] in page.inner_text(".mlmc-texts")
    assert XSS[0] in page.inner_text("#embed-out .tab-legend")
    assert page.inner_text("#search-words button[data-word='0']") == XSS[0]
    scripts = page.evaluate("() => [...document.scripts].map((s) => s.src || s.type)")
    assert len(scripts) == 8 and "" not in scripts  # the page's own; no script came from a sentence
    # the only console lines are the API's refusals (e.g. a SHAP target that is not one token)
    assert all(re.match(r"console: Failed to load resource: .* 4\d\d ", p) for p in page.problems), page.problems
    assert browser.external == []
