"""Which sentences the heads are scored on: the shipped sets, the user's, and word pairs.

* :func:`default_sentences` reads the sets written for mlmtool (``datasets/heads/<lang>.txt``,
  found by :func:`dataset_path`);
* :func:`prepare_sentences` tokenizes once, drops empty and too-long sentences and keeps
  each word's surface form (fast tokenizers' character offsets);
* :func:`parse_pair` / :func:`cooccurring` read and check ``WORD:WORD`` hypotheses;
  :func:`parse_upos_pair` reads part-of-speech pairs (``ADV:VERB``, probed on a treebank by
  :mod:`.syntax`) and :func:`split_pairs` tells the two kinds apart.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ...errors import MlmtoolError

#: The 17 universal part-of-speech tags (https://universaldependencies.org/u/pos/).
UPOS_TAGS: tuple[str, ...] = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART",
                              "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X")


def dataset_dirs() -> list[Path]:
    """Folders searched for the default sentence sets, in order.

    1. ``$MLMTOOL_DATASETS/heads`` (a user override);
    2. the repository's ``datasets/heads`` (a source checkout or editable install);
    3. ``mlmtool/data/heads`` inside the installed package (package data);
    4. ``<prefix>/share/mlmtool/datasets/heads`` where ``<prefix>`` is the install's data
       directory (``sys.prefix`` or the ``--user`` base): setuptools ``data-files``.
    """
    import site
    import sysconfig

    dirs = []
    env = os.environ.get("MLMTOOL_DATASETS")
    if env:
        dirs.append(Path(env).expanduser() / "heads")
    package = Path(__file__).resolve().parents[2]  # .../mlmtool
    dirs += [package.parent / "datasets" / "heads", package / "data" / "heads"]
    prefixes = [sysconfig.get_paths().get("data"), sys.prefix, site.getuserbase()]
    for prefix in dict.fromkeys(p for p in prefixes if p):
        dirs.append(Path(prefix) / "share" / "mlmtool" / "datasets" / "heads")
    return dirs


def dataset_path(lang: str = "en") -> Path | None:
    """The default sentence file for ``lang`` (``en``, ``fr``, ``de``, ``zh``, ``ja``,
    ``multi``), or None when no folder of :func:`dataset_dirs` has it."""
    for folder in dataset_dirs():
        path = folder / f"{lang}.txt"
        if path.is_file():
            return path
    return None


def default_sentences(lang: str = "en") -> list[str]:
    """The shipped sentence set for ``lang`` (non-empty lines of ``<lang>.txt``).

    The sets were written for mlmtool: ``en`` has ~300 varied English sentences (adverbs,
    adjectives, clauses, questions, punctuation); the others ~40 each.

    Raises:
        MlmtoolError: no set for ``lang`` is installed (``param="lang"``).
    """
    path = dataset_path(lang)
    if path is None:
        known = sorted({p.stem for d in dataset_dirs() if d.is_dir() for p in d.glob("*.txt")})
        hint = f" (available: {', '.join(known)})" if known else ""
        raise MlmtoolError(f"lang '{lang}' has no default sentence set{hint}; give sentences "
                           "as TEXT, '-' (stdin) or a file of sentences", param="lang")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------
# Pairs


def parse_pair(spec: str) -> tuple[str, str]:
    """Split ``"WORD:WORD"`` (each side may list alternatives, ``quickly|slowly:ran``).

    Raises:
        MlmtoolError: not exactly one ``:`` or an empty side (``param="pairs"``).
    """
    parts = spec.split(":")
    if len(parts) != 2 or not all(alternatives(p) for p in parts):
        raise MlmtoolError(f"pairs: '{spec}' is not WORD:WORD (e.g. quickly:ran; "
                           "alternatives with |, e.g. quickly|slowly:ran|walked)", param="pairs")
    return parts[0].strip(), parts[1].strip()


def alternatives(side: str) -> set[str]:
    """The casefolded alternatives of one side of a pair (``"Quickly|slowly"`` → 2 words)."""
    return {w.strip().casefold() for w in side.split("|") if w.strip()}


def cooccurring(words: Sequence[Sequence[str] | None], sentences: Sequence[str],
                pair: tuple[str, str]) -> int:
    """How many sentences contain both words of ``pair`` (case-insensitive, whole words)."""
    src, tgt = alternatives(pair[0]), alternatives(pair[1])
    count = 0
    for ws, text in zip(words, sentences):
        tokens = [w.casefold() for w in ws] if ws is not None else text.casefold().split()
        s_pos = [i for i, w in enumerate(tokens) if w in src]
        t_pos = [i for i, w in enumerate(tokens) if w in tgt]
        if any(s != t for s in s_pos for t in t_pos):
            count += 1
    return count


def is_upos_pair(spec: str) -> bool:
    """True when ``spec`` is written as a tag pair (every alternative in capitals, ``ADV:VERB``).

    Word pairs are matched case-insensitively, so a word pair can always be written in small
    letters.
    """
    try:
        source, target = parse_pair(spec)
    except MlmtoolError:
        return False
    return all(w.isalpha() and w.isupper() for side in (source, target) for w in side.split("|") if w.strip())


def parse_upos_pair(spec: str) -> tuple[frozenset, frozenset]:
    """``"ADV:VERB"`` → ``({"ADV"}, {"VERB"})`` (alternatives with ``|``: ``ADV|ADJ:VERB``).

    Raises:
        MlmtoolError: a side that is not a UPOS tag (``param="pairs"``).
    """
    source, target = parse_pair(spec)
    sides = []
    for side in (source, target):
        tags = frozenset(t.strip() for t in side.split("|") if t.strip())
        bad = sorted(tags - set(UPOS_TAGS))
        if bad:
            raise MlmtoolError(f"pairs '{spec}': '{bad[0]}' is not a UPOS tag (one of {' '.join(UPOS_TAGS)})",
                               param="pairs")
        sides.append(tags)
    return sides[0], sides[1]


def split_pairs(pairs: Iterable[str | tuple[str, str]]) -> tuple[list[tuple[str, str]], list[str]]:
    """Word pairs and part-of-speech pairs of ``pairs`` (see :func:`is_upos_pair`).

    Returns:
        ``(word_pairs, upos_pairs)``: word pairs as ``(source, target)``, tag pairs as the
        normalised ``"ADV:VERB"`` strings (checked by :func:`parse_upos_pair`).
    """
    words, tags = [], []
    for p in pairs:
        spec = p if isinstance(p, str) else f"{p[0]}:{p[1]}"
        if is_upos_pair(spec):
            source, target = parse_upos_pair(spec)
            tags.append("|".join(sorted(source)) + ":" + "|".join(sorted(target)))
        else:
            words.append(parse_pair(spec))
    return words, tags


# --------------------------------------------------------------------------------------------
# Tokenizing once


@dataclass
class PreparedSentences:
    """Sentences tokenized for the model, too-long ones left out.

    Attributes:
        texts: ``[N]`` the sentences kept (input order).
        words: ``[N]`` surface form of each word (None when the tokenizer cannot say, e.g.
            a slow MeCab tokenizer).
        ids: ``[N]`` token ids, special tokens included (each at most ``lm.max_length``).
        word_ids: ``[N]`` per token the index of its word in ``words`` (None for special
            tokens).
        n_skipped: sentences left out because they were longer than ``lm.max_length``.
        extra: ``[N]`` anything a caller keeps per sentence (the treebank's parse), or empty.
    """

    texts: list[str]
    words: list[list[str] | None]
    ids: list[list[int]]
    word_ids: list[list[int | None]]
    n_skipped: int = 0
    extra: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)


def prepare_sentences(lm, sentences: Sequence[str]) -> PreparedSentences:
    """Tokenize once: drop empty and too-long sentences, and read each word's surface form.

    ``[MASK]`` becomes the model's mask token (:func:`mlmtool.tokens.to_model_text`).

    Returns:
        :class:`PreparedSentences` (order kept); surface words come from the fast
        tokenizer's character offsets, so case and accents are the user's.
    """
    from ...tokens import to_model_text, word_ids_of, word_strings

    texts = [s.strip() for s in sentences if s and s.strip()]
    out = PreparedSentences([], [], [], [])
    if not texts:
        return out
    model_texts = [to_model_text(t, lm.mask_token) for t in texts]
    enc = lm.tokenizer(model_texts, add_special_tokens=True, truncation=False)
    for i, ids in enumerate(enc["input_ids"]):
        if len(ids) > lm.max_length:
            out.n_skipped += 1
            continue
        out.texts.append(texts[i])
        out.ids.append(list(ids))
        out.words.append(word_strings(model_texts[i], enc, i, lm.tokenizer))
        out.word_ids.append(word_ids_of(enc, i, lm.tokenizer))
    return out
