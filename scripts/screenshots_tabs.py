"""One screenshot per tab of ``mlmtool serve`` (docs/img/tab_<name>.png, 1000x700, small PNGs).

Builds what the Search, Probe and Heads tabs need with the command line on the shipped
en-mini model (a corpus index of the tiny models' sentences, probes trained on part of the
English UD dev treebank, a heads.json), starts ``python -m mlmtool serve`` on them, and
drives Debian's Chromium through every tab with Playwright (nothing outside the server is
reachable: every other request is aborted).

    .venv/bin/python scripts/screenshots_tabs.py [--out docs/img] [--ud ../shared/data/ud]

Takes a few minutes on 2 cores (the probe training most of it).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL = "en-mini"
CORPUS = ["The bank of the river was muddy after the rain.", "She paid the money into her bank account.",
          "We sat on the bank and watched the boats.", "The bank raised its interest rates again.",
          "The children played by the river all afternoon.", "He opened a savings account at the bank.",
          "Fish swam near the bank of the stream.", "The central bank cut rates to help the economy.",
          "They walked along the river to the old bridge.", "Her father works at a bank in the city."]
#: ?query of each tab (the sentence box and the tab's own inputs).
TABS = {
    "fill": {"text": "The [MASK] sat on the mat."},
    "layers": {"tab": "layers", "text": "Paris is the capital of [MASK]."},
    "score": {"tab": "score", "text": "The cats sleep.",
              "texts": "The cats sleep on the sofa.\nThe cats sleeps on the sofa."},
    "compare": {"tab": "compare", "text": "The doctor said that he [MASK] late.", "mode": "texts",
                "text2": "The doctor said that she [MASK] late."},
    "embed": {"tab": "embed", "text": CORPUS[0], "texts": "\n".join(CORPUS[:4]), "method": "tsne"},
    "heads": {"tab": "heads", "text": CORPUS[0], "texts": "\n".join(CORPUS)},
    "explain": {"tab": "explain", "text": "The [MASK] barked at the mailman.", "evals": "300"},
    "probe": {"tab": "probe", "text": "The cat sat on the mat.", "label": "upos"},
    "search": {"tab": "search", "text": "I deposited the cheque at the bank today.", "word": "6"},
}


def cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "mlmtool", *args], check=True, cwd=ROOT,
                   env={**os.environ, "HF_HUB_OFFLINE": "1"})


def prepare(work: Path, ud: Path) -> list[str]:
    """Build the index, the probes and heads.json; returns the serve arguments."""
    (work / "corpus.txt").write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    cli("index", str(work / "corpus.txt"), "-m", MODEL, "-o", str(work / "index"))
    blocks = (ud / "en_ewt-ud-dev.conllu").read_text(encoding="utf-8").strip().split("\n\n")
    (work / "train.conllu").write_text("\n\n".join(blocks[:300]) + "\n\n", encoding="utf-8")
    (work / "test.conllu").write_text("\n\n".join(blocks[300:400]) + "\n\n", encoding="utf-8")
    cli("probe", "-m", MODEL, "--train", str(work / "train.conllu"), "--test", str(work / "test.conllu"),
        "-t", "upos", "-t", "distance", "--control", "--rank", "32", "--epochs", "3", "-o", str(work / "probe"))
    cli("heads", "-m", MODEL, "-n", "60", "-o", str(work / "heads"))
    return ["-m", MODEL, "--index", str(work / "index"), "--probe", str(work / "probe"),
            "--heads", str(work / "heads" / "heads.json")]


def start(args: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "mlmtool", "serve", "--port", "0", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    line = proc.stdout.readline()
    m = re.match(r"^mlmtool serve: (http://\S+/) ", line)
    if not m:
        proc.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, m.group(1)


def shoot(url: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    from tests.browsing import ARGS, CHROMIUM

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(url) else r.abort())
        for name, query in TABS.items():
            page.goto(url + "?" + urlencode(query))
            if name == "fill":
                page.wait_for_selector("#mlmv-app[data-ready='1']", timeout=300_000)
            else:
                page.wait_for_function(f"() => document.getElementById('tab-{name}').dataset.state === 'done'",
                                       timeout=300_000)
            if name == "compare":
                page.wait_for_selector("#mlmc-app[data-ready='1']", timeout=300_000)
            page.screenshot(path=str(out / f"tab_{name}.png"))
            print(f"wrote {out / f'tab_{name}.png'} ({(out / f'tab_{name}.png').stat().st_size // 1024} KB)")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--ud", type=Path, default=ROOT.parent / "shared" / "data" / "ud")
    opts = parser.parse_args()
    opts.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start(prepare(Path(tmp), opts.ud))
        try:
            shoot(url, opts.out)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)


if __name__ == "__main__":
    main()
