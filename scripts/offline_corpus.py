"""Gather the English corpora for the offline ``en-mini`` model from Debian packages.

Nothing here is committed as data: the packages are downloaded with ``apt-get download``
(Debian's registry is reachable where the model is built), unpacked with ``dpkg-deb -x``
into a cache folder, and cleaned into one passage per line.

Training sources (everyday and expository English):
    fortunes      quotations, jokes and literature excerpts (fortune-mod's data)
    wordnet-base  WordNet 3.0 glosses and their example sentences (Miller 1995)
    debian-handbook  The Debian Administrator's Handbook, en-US HTML
    python3.11-doc   the Python tutorial, FAQ and HOWTOs (HTML)

Held-out sources for ``scripts/eval_fill.py`` (never used for training):
    debian-reference-en  the Debian Reference (HTML)
    fortune-anarchism    long quotations on politics and society
"""

from __future__ import annotations

import gzip
import html
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

TRAIN_PACKAGES = ["fortunes", "wordnet-base", "debian-handbook", "python3.11-doc"]
HELDOUT_PACKAGES = ["debian-reference-en", "fortune-anarchism"]


def fetch(packages: list[str], cache: Path) -> Path:
    """Download and unpack Debian ``packages`` into ``cache/root``; return that root."""
    debs, root = cache / "debs", cache / "root"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        subprocess.run(["apt-get", "download", *missing], cwd=debs, check=True,
                       stdout=subprocess.DEVNULL)
    for deb in debs.glob("*.deb"):
        if deb.name.split("_")[0] in packages:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


class _Paragraphs(HTMLParser):
    """Collect the text of <p>, <li> and <dd> elements (not code or navigation)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._buf: list[str] | None = None
        self._skip = 0
        self._div = 0  # depth inside a DocBook <div class="para">

    def handle_starttag(self, tag, attrs):
        if tag == "div":
            if self._div:
                self._div += 1
            elif self._buf is None and ("class", "para") in attrs:
                self._div, self._buf = 1, []
        elif tag in ("pre", "script", "style", "code", "tt", "kbd"):
            self._skip += 1
        elif tag in ("p", "li", "dd") and self._buf is None:
            self._buf = []

    def handle_endtag(self, tag):
        if tag == "div" and self._div:
            self._div -= 1
            if not self._div and self._buf is not None:
                self.out.append("".join(self._buf))
                self._buf = None
        elif tag in ("pre", "script", "style", "code", "tt", "kbd"):
            self._skip = max(0, self._skip - 1)
            if self._buf is not None and tag in ("code", "tt", "kbd"):
                self._buf.append(" CODE ")
        elif tag in ("p", "li", "dd") and self._buf is not None and not self._div:
            self.out.append("".join(self._buf))
            self._buf = None

    def handle_data(self, data):
        if self._buf is not None and not self._skip:
            self._buf.append(data)


def _clean(text: str) -> str:
    text = html.unescape(re.sub(r"\s+", " ", text)).strip()
    return text


def _prose(text: str) -> bool:
    """Keep passages that look like English prose: enough words, few symbols, no code."""
    if "CODE" in text or len(text) < 40:
        return False
    words = text.split()
    if len(words) < 8:
        return False
    letters = sum(c.isalpha() or c.isspace() for c in text)
    return letters / len(text) > 0.85


def html_passages(files) -> list[str]:
    """Prose paragraphs from HTML files."""
    out = []
    for path in files:
        parser = _Paragraphs()
        parser.feed(Path(path).read_text(encoding="utf-8", errors="replace"))
        out.extend(t for t in map(_clean, parser.out) if _prose(t))
    return out


def fortune_passages(files) -> list[str]:
    """One passage per fortune cookie (entries are separated by ``%`` lines)."""
    out = []
    for path in files:
        raw = Path(path).read_text(encoding="utf-8", errors="replace")
        for entry in re.split(r"^%\s*$", raw, flags=re.M):
            lines = [l.strip() for l in entry.splitlines() if l.strip() and not l.strip().startswith("--")]
            text = _clean(" ".join(lines))
            if len(text.split()) >= 5 and sum(c.isalpha() or c.isspace() for c in text) / max(1, len(text)) > 0.8:
                out.append(text)
    return out


def wordnet_passages(root: Path, definition_every: int = 4) -> list[str]:
    """WordNet glosses: every example sentence (quoted) and one definition in
    ``definition_every`` (definitions are many and short; examples are everyday sentences)."""
    out = []
    n_def = 0
    for part in ("noun", "verb", "adj", "adv"):
        path = root / "usr/share/wordnet" / f"data.{part}"
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  ") or "|" not in line:
                continue
            gloss = line.split("|", 1)[1].strip()
            examples = re.findall(r'"([^"]+)"', gloss)
            definition = gloss.split(";")[0].strip().strip('"')
            for ex in examples:
                ex = ex.strip()
                if len(ex.split()) >= 4:
                    out.append(ex[0].upper() + ex[1:] + ("" if ex[-1] in ".!?" else "."))
            if len(definition.split()) >= 4 and not definition.startswith('"'):
                n_def += 1
                if n_def % definition_every:
                    continue
                out.append(definition[0].upper() + definition[1:] + ".")
    return out


def gather(cache: Path) -> dict[str, list[str]]:
    """All sources as ``{name: passages}``: training ones first, then held-out ones."""
    root = fetch(TRAIN_PACKAGES + HELDOUT_PACKAGES, cache)
    games = root / "usr/share/games/fortunes"
    fortune_files = [p for p in sorted(games.iterdir())
                     if p.is_file() and p.suffix not in (".dat", ".u8") and p.name != "anarchism"
                     and not p.is_symlink()]
    py = root / "usr/share/doc/python3.11/html"
    py_files = [p for sub in ("tutorial", "faq", "howto") for p in sorted((py / sub).glob("*.html"))]
    return {
        "fortunes": fortune_passages(fortune_files),
        "wordnet": wordnet_passages(root),
        "debian-handbook": html_passages(sorted((root / "usr/share/doc/debian-handbook/html/en-US").glob("*.html"))),
        "python-docs": html_passages(py_files),
        # held out:
        "debian-reference": html_passages(sorted((root / "usr/share/debian-reference").glob("*.en.html"))),
        "anarchism": fortune_passages([games / "anarchism"]),
    }


HELDOUT = ("debian-reference", "anarchism")


def write(cache: Path, out_dir: Path) -> dict[str, dict]:
    """Write ``train.txt`` and ``heldout-<source>.txt`` into ``out_dir``; return statistics."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = gather(cache)
    stats = {}
    train = []
    for name, passages in sources.items():
        stats[name] = {"passages": len(passages), "bytes": sum(len(p.encode()) + 1 for p in passages),
                       "use": "heldout" if name in HELDOUT else "train"}
        if name in HELDOUT:
            (out_dir / f"heldout-{name}.txt").write_text("\n".join(passages) + "\n", encoding="utf-8")
        else:
            train.extend(passages)
    import random

    random.Random(0).shuffle(train)
    (out_dir / "train.txt").write_text("\n".join(train) + "\n", encoding="utf-8")
    return stats


if __name__ == "__main__":
    import json
    import sys

    cache = Path(sys.argv[1] if len(sys.argv) > 1 else ".cache/debs")
    out = Path(sys.argv[2] if len(sys.argv) > 2 else "corpus")
    print(json.dumps(write(cache, out), indent=2))
