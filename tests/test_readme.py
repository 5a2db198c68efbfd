"""Every command shown in README.md and docs/cli.md runs as written (issue 30).

What counts as a command (:func:`extract_commands`): in a ```bash block, every line that is
not blank and not a ``#`` comment; in a ```console block, every line that starts with ``$ ``
(the rest of the block is output). A line ending in ``\\`` continues on the next one (in a
console block that line may start with the prompt ``> ``). Inline code in prose and tables
(``mlmtool predict The [MASK] sat.`` in docs/cli.md's grammar table) is an illustrative
fragment, never run; a runnable example goes in a fenced block.

How each command runs (:func:`run_command`), in the order of the document, all in one fresh
temporary directory per document, so a later command may use an earlier one's output
(``finetune -o my-mlm`` then ``predict -m my-mlm``):

- the temporary directory holds a symlink ``datasets`` -> the clone's ``datasets/``, so the
  paths the documents use (``datasets/bank.txt``, relative to the clone root) resolve as they
  do for a reader in the clone, and nothing the commands write lands in the clone;
- through ``bash -c`` (quotes, pipes and trailing comments as a reader's shell sees them), with
  the directory of ``sys.executable`` first on PATH, so ``mlmtool`` is this checkout's
  (``python -m mlmtool`` where that directory has no ``mlmtool`` script);
- offline (``HF_HUB_OFFLINE=1``): the documents must use the shipped models (en-mini, minilm);
- pass = exit status 0, and every file a command names with ``-o/--output DIR`` (a non-empty
  directory), ``--html FILE``, ``--png FILE`` or ``--save-vectors FILE`` exists afterwards;
- ``mlmtool serve`` (:data:`LONG_RUNNING`) is started with ``--port 0`` (any free port; a
  ``--port`` or ``--open`` in the document is dropped), answers one request (GET /api/models,
  which must name every ``-m`` model) once its start line has said where it listens, and is
  stopped with SIGINT, as Ctrl-C stops it.

Set-up commands are skipped by :data:`SKIP`, each with its reason. A command added to either
document later is covered without a change here. Marked slow: each command loads its model in
a new process (about 6 minutes for the two documents on 2 busy cores).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "docs/cli.md")

# Commands not run, by their first words, and why.
SKIP = {
    "make demo": "set-up: creates the venv this test runs in (its predict is also in the README tour)",
    "make test": "set-up: runs the whole suite, this test included",
    "git clone": "set-up: needs the network; the test runs against this clone",
    "pip install": "set-up: needs the network; the venv is installed already",
    "torchrun": "needs several processes; tests/test_finetune_distributed.py covers it",
}
# Sub-commands that run until stopped; they answer one request instead of exiting.
LONG_RUNNING = {"serve"}
# Flags whose value is a file or directory the command writes.
OUTPUT_DIR_FLAGS = ("-o", "--output")
OUTPUT_FILE_FLAGS = ("--html", "--png", "--save-vectors")
# Hang guards only: a command that passes never waits for these.
COMMAND_TIMEOUT_S = 1200
SERVE_START_TIMEOUT_S = 600

_FENCE = re.compile(r"^```(\w*)\s*$")


def extract_commands(markdown: str) -> list[str]:
    """The shell commands of a Markdown text, in order (see the module docstring).

    Args:
        markdown: the document's text.

    Returns:
        One string per command, continuation lines joined (the ``\\`` and newline kept, as a
        shell reads them).
    """
    commands: list[str] = []
    lang = None  # the open fence's language, None outside a fence
    pending: str | None = None  # a command whose last line ended in a backslash
    for line in markdown.splitlines():
        fence = _FENCE.match(line.strip())
        if fence:
            lang = fence.group(1) if lang is None else None
            pending = None
            continue
        if lang not in ("bash", "console"):
            continue
        if pending is not None:
            if lang == "console" and line.startswith("> "):
                line = line[2:]  # the shell's continuation prompt
            text = pending + "\n" + line
        elif lang == "console":
            if not line.startswith("$ "):
                continue
            text = line[2:]
        else:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            text = line
        if text.rstrip().endswith("\\"):
            pending = text
        else:
            commands.append(text.strip())
            pending = None
    return commands


def skip_reason(command: str) -> str | None:
    """The reason in :data:`SKIP` for a command, or None when it runs."""
    words = shlex.split(command, comments=True)
    for prefix, reason in SKIP.items():
        if words[: len(prefix.split())] == prefix.split():
            return reason
    return None


def written_paths(command: str) -> list[tuple[str, str]]:
    """The outputs a command names: ``[("dir" | "file", path), ...]``."""
    words = shlex.split(command, comments=True)
    paths = []
    for i, word in enumerate(words):
        flag, eq, value = word.partition("=")
        if not eq:
            value = words[i + 1] if i + 1 < len(words) else ""
        if flag in OUTPUT_DIR_FLAGS and value:
            paths.append(("dir", value))
        elif flag in OUTPUT_FILE_FLAGS and value:
            paths.append(("file", value))
    return paths


def _mlmtool() -> list[str]:
    script = Path(sys.executable).parent / "mlmtool"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mlmtool"]


def _env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _shell_script(command: str) -> str:
    if _mlmtool()[0] == sys.executable:
        return f'mlmtool() {{ {shlex.quote(sys.executable)} -m mlmtool "$@"; }}\n{command}'
    return command


def _case(doc: str, number: int, command: str):
    reason = skip_reason(command)
    marks = [pytest.mark.skip(reason=reason)] if reason else []
    words = shlex.split(command, comments=True)
    start = words.index("mlmtool") if "mlmtool" in words[:-1] else 0  # a pipeline: its mlmtool
    label = f"{doc}:{number}:{' '.join(words[start:start + 2])}"
    return pytest.param(doc, command, marks=marks, id=label)


CASES = [_case(doc, n, command) for doc in DOCS
         for n, command in enumerate(extract_commands((ROOT / doc).read_text(encoding="utf-8")), 1)]


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory):
    """One fresh directory per document, with ``datasets`` -> the clone's ``datasets/``."""
    made: dict[str, Path] = {}

    def workdir(doc: str) -> Path:
        if doc not in made:
            path = tmp_path_factory.mktemp(Path(doc).stem)
            (path / "datasets").symlink_to(ROOT / "datasets", target_is_directory=True)
            made[doc] = path
        return made[doc]

    return workdir


def run_command(command: str, cwd: Path) -> None:
    """Run one command as a reader would paste it; fail with its output unless it exits 0."""
    done = subprocess.run(["bash", "-c", _shell_script(command)], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    assert done.returncode == 0, (f"`{command}` exited {done.returncode}\n"
                                  f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}")


def _serve_argv(words: list[str]) -> list[str]:
    """``mlmtool serve ...`` on any free port, without opening a browser."""
    argv, rest = [], iter(words[1:])
    for word in rest:
        if word == "--port":
            next(rest, None)
        elif not (word.startswith("--port=") or word == "--open"):
            argv.append(word)
    return _mlmtool() + argv + ["--port", "0"]


def serve_one_request(command: str, cwd: Path) -> None:
    """Start a long-running command, ask it one thing, stop it (see the module docstring)."""
    words = shlex.split(command, comments=True)
    assert words[0] == "mlmtool", f"a long-running command must start with mlmtool: {command}"
    models = [words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-m", "--model")]
    errors = cwd / "serve.stderr"
    with open(errors, "w", encoding="utf-8") as err:
        proc = subprocess.Popen(_serve_argv(words), cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                                stderr=err, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout] + [lines.put("")],
                     daemon=True).start()
    try:
        url = None
        while url is None:
            line = lines.get(timeout=SERVE_START_TIMEOUT_S)
            assert line, f"`{command}` ended before serving:\n{errors.read_text(encoding='utf-8')[-3000:]}"
            found = re.search(r"(http://\S+?/)", line)
            url = found and found.group(1)
        # The socket listens before the start line is printed: this request waits, never races.
        with urllib.request.urlopen(url + "api/models", timeout=SERVE_START_TIMEOUT_S) as reply:
            assert reply.status == 200
            body = reply.read().decode("utf-8")
        json.loads(body)
        for model in models:
            assert model in body, f"GET /api/models does not name {model}: {body[:500]}"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"`{command}` did not stop on SIGINT")


@pytest.mark.slow
@pytest.mark.parametrize("doc, command", CASES)
def test_documented_command_runs(doc, command, workdirs):
    cwd = workdirs(doc)
    words = shlex.split(command, comments=True)
    if words[0] == "mlmtool" and len(words) > 1 and words[1] in LONG_RUNNING:
        serve_one_request(command, cwd)
        return
    run_command(command, cwd)
    for kind, path in written_paths(command):
        target = cwd / path
        if kind == "dir":
            assert target.is_dir() and any(target.iterdir()), f"`{command}` wrote nothing to {path}"
        else:
            assert target.is_file(), f"`{command}` did not write {path}"


def test_extractor_reads_fences_prompts_and_continuations():
    text = "\n".join([
        "```bash", "# a comment", "mlmtool a -o out/  # trailing", "", "mlmtool b \\", "  --html x.html",
        "```", "mlmtool prose is not run", "```console", "$ mlmtool c", "output line", "$ mlmtool d \\",
        "> more", "```", "```python", "mlmtool.load('en-mini')", "```",
    ])
    assert extract_commands(text) == ["mlmtool a -o out/  # trailing", "mlmtool b \\\n  --html x.html",
                                      "mlmtool c", "mlmtool d \\\nmore"]
    assert written_paths("mlmtool b -o out/ --html=x.html --png y.png  # --png z.png") == [
        ("dir", "out/"), ("file", "x.html"), ("file", "y.png")]
    assert skip_reason("make demo   # creates .venv") and not skip_reason("mlmtool models")


def test_every_document_has_commands_and_each_command_is_mlmtool_or_skipped():
    for case in CASES:
        doc, command = case.values
        assert case.marks or "mlmtool" in shlex.split(command, comments=True), (doc, command)
    assert any(case.values[0] == "README.md" and not case.marks for case in CASES)
