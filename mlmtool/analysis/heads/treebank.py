"""Treebank I/O: CoNLL-U files read into dependency trees, and their relation counts.

The probe of :mod:`.syntax` reads its gold parses from here. CoNLL-U
(https://universaldependencies.org/format.html) is read with the ``conllu`` package, after a
check of every word line so that an error names its line. Words are the treebank's: a
multiword token (``3-4 du`` = ``de`` + ``le``) is one unit of text, as the format says (its
range line holds the surface form, its words the syntax), so both words belong to the one
surface token and an arc between two words of one token is left out; empty nodes (``5.1``)
are not words of the surface sentence and are left out. Relation subtypes (``nmod:poss``) are
folded into the main relation (``nmod``) unless ``subtypes=True``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ...defaults import MIN_COUNT
from ...errors import MlmtoolError

#: Relations with fewer arcs than this are not reported (Clark et al. 2019 Table 1 uses 100).
DEFAULT_MIN_COUNT = MIN_COUNT

#: A CoNLL-U ID: a word number, a multiword range (``3-4``) or an empty node (``5.1``).
_ID = re.compile(r"^(\d+)(?:([-.])(\d+))?$")


@dataclass
class DependencyTree:
    """One sentence of a treebank: its surface tokens and its dependency arcs.

    Attributes:
        text: the sentence (the ``# text =`` comment, else the tokens joined by their
            ``SpaceAfter``).
        tokens: ``[T]`` surface tokens in order (a multiword token is one token).
        space_after: ``[T]`` False where ``MISC`` says ``SpaceAfter=No``.
        upos: ``[W]`` universal part-of-speech tag of each syntactic word (W ≥ T).
        token_of: ``[W]`` index of the surface token each word belongs to (from 0).
        heads: ``[W]`` the governor's word number (from 1; 0 = the root).
        relations: ``[W]`` the relation to the governor (subtype folded unless asked).
        line: the file's line number (from 1) where the sentence starts.
    """

    text: str
    tokens: list[str]
    space_after: list[bool]
    upos: list[str]
    token_of: list[int]
    heads: list[int]
    relations: list[str]
    line: int = 1

    def arcs(self) -> list[tuple[int, int, str, str, str]]:
        """The arcs between two different surface tokens: ``(dep_token, gov_token, relation,
        dep_upos, gov_upos)``, token indices from 0; the root arc is left out."""
        out = []
        for w, (head, rel) in enumerate(zip(self.heads, self.relations)):
            if head == 0:
                continue
            dep, gov = self.token_of[w], self.token_of[head - 1]
            if dep != gov:
                out.append((dep, gov, rel, self.upos[w], self.upos[head - 1]))
        return out


def read_conllu(path: str | Path, subtypes: bool = False) -> list[DependencyTree]:
    """Read a CoNLL-U file (UTF-8) into :class:`DependencyTree` objects.

    Args:
        path: the file.
        subtypes: keep relation subtypes (``nmod:poss``); default folds them (``nmod``).

    Returns:
        The sentences in file order.

    Raises:
        MlmtoolError: missing or non-UTF-8 file, or a line that is not CoNLL-U (the message
            names the line; ``param="treebank"``).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MlmtoolError(f"treebank '{p}' does not exist", param="treebank") from None
    except IsADirectoryError:
        raise MlmtoolError(f"treebank '{p}' is a directory, expected a CoNLL-U file", param="treebank") from None
    except UnicodeDecodeError:
        raise MlmtoolError(f"treebank '{p}' is not UTF-8 text (CoNLL-U files are UTF-8)", param="treebank") from None
    return parse_conllu(text, name=str(p), subtypes=subtypes)


def parse_conllu(text: str, name: str = "<text>", subtypes: bool = False) -> list[DependencyTree]:
    """Parse CoNLL-U text (see :func:`read_conllu`); ``name`` is used in error messages.

    Every word line is checked before the ``conllu`` package parses the sentence, so an
    error names its line: 10 tab-separated fields, an ID that is a number, a range
    (``3-4``) or an empty node (``5.1``), a HEAD that is a word of the sentence.

    Raises:
        MlmtoolError: as :func:`read_conllu`, or the ``conllu`` package is not installed.
    """
    try:
        import conllu
    except ImportError:
        raise MlmtoolError("treebank: reading CoNLL-U needs the conllu package: pip install "
                           "'mlmtool[syntax]' (or pip install conllu)", param="treebank") from None

    trees: list[DependencyTree] = []
    block: list[str] = []
    start = 0
    lines = text.splitlines()
    for number, line in enumerate(lines + [""], 1):
        if line.strip():
            if not block:
                start = number
            if not line.startswith("#"):
                _check_line(line, number, name)
            block.append(line)
            continue
        if not block:
            continue
        try:
            sentences = conllu.parse("\n".join(block) + "\n\n")
        except conllu.exceptions.ParseException as exc:
            raise MlmtoolError(f"treebank '{name}' line {start}: not CoNLL-U ({exc})", param="treebank") from None
        for sentence in sentences:
            tree = _tree(sentence, start, name, subtypes)
            if tree is not None:
                trees.append(tree)
        block = []
    if not trees:
        raise MlmtoolError(f"treebank '{name}' has no sentences (CoNLL-U: one word per line, "
                           "10 tab-separated fields, a blank line after each sentence)", param="treebank")
    return trees


def _check_line(line: str, number: int, name: str) -> None:
    fields = line.split("\t")
    where = f"treebank '{name}' line {number}: not CoNLL-U"
    if len(fields) != 10:
        raise MlmtoolError(f"{where}: expected 10 tab-separated fields (ID FORM LEMMA UPOS XPOS FEATS HEAD "
                           f"DEPREL DEPS MISC), found {len(fields)}", param="treebank")
    match = _ID.match(fields[0])
    if match is None:
        raise MlmtoolError(f"{where}: ID '{fields[0]}' is not a word number, a range (3-4) or an empty "
                           "node (5.1)", param="treebank")
    if match.group(2) is None and not fields[6].isdigit():
        raise MlmtoolError(f"{where}: HEAD '{fields[6]}' is not a word number (0 = root)", param="treebank")


def _tree(sentence, line: int, name: str, subtypes: bool) -> DependencyTree | None:
    """A :class:`DependencyTree` from one ``conllu.TokenList`` (None when it has no words)."""
    tokens: list[str] = []
    space_after: list[bool] = []
    upos, token_of, heads, relations = [], [], [], []
    range_end = 0  # last word number covered by the current multiword token
    for item in sentence:
        ident = item["id"]
        misc = item.get("misc") or {}
        if isinstance(ident, tuple):
            if ident[1] == "-":  # multiword token: the surface form of words ident[0]..ident[2]
                tokens.append(item["form"])
                space_after.append(misc.get("SpaceAfter") != "No")
                range_end = int(ident[2])
            continue  # "." = an empty node: not a word of the surface sentence
        if ident > range_end:
            tokens.append(item["form"])
            space_after.append(misc.get("SpaceAfter") != "No")
        relation = str(item["deprel"] or "_")
        upos.append(str(item["upos"] or "_"))
        token_of.append(len(tokens) - 1)
        heads.append(int(item["head"]) if item["head"] is not None else 0)
        relations.append(relation if subtypes else relation.split(":")[0])
    if not heads:
        return None
    for w, head in enumerate(heads):
        if head > len(heads):
            raise MlmtoolError(f"treebank '{name}' line {line}: not CoNLL-U: word {w + 1} has HEAD {head} "
                               f"but the sentence has {len(heads)} words", param="treebank")
    text = sentence.metadata.get("text") or "".join(
        t + (" " if s else "") for t, s in zip(tokens, space_after)).strip()
    return DependencyTree(text=text, tokens=tokens, space_after=space_after, upos=upos, token_of=token_of,
                          heads=heads, relations=relations, line=line)


def relation_counts(trees: Iterable[DependencyTree]) -> Counter:
    """Arcs per relation over ``trees`` (root arcs and arcs inside one token left out).

    Returns:
        ``Counter`` ``{relation: arcs}``, counted as :meth:`DependencyTree.arcs` lists them.
    """
    return Counter(rel for tree in trees for _, _, rel, _, _ in tree.arcs())


def frequent_relations(counts: Counter, min_count: int = DEFAULT_MIN_COUNT, n_sentences: int = 0) -> list[str]:
    """The relations with at least ``min_count`` arcs, most frequent first.

    Args:
        counts: arcs per relation (:func:`relation_counts`).
        min_count: fewest arcs a relation needs (default :data:`DEFAULT_MIN_COUNT`).
        n_sentences: the treebank's sentences, for the error message only.

    Raises:
        MlmtoolError: there is none (``param="min_count"``; the message gives the most
            frequent relations).
    """
    relations = [rel for rel, c in counts.most_common() if c >= min_count]
    if not relations:
        top = ", ".join(f"{rel} {c}" for rel, c in counts.most_common(3)) or "no arcs at all"
        raise MlmtoolError(f"min_count: no relation has {min_count} or more arcs in the treebank's "
                           f"{n_sentences} sentences (most frequent: {top}); lower it or give a larger "
                           "treebank", param="min_count")
    return relations


__all__ = ["DEFAULT_MIN_COUNT", "DependencyTree", "frequent_relations", "parse_conllu", "read_conllu",
           "relation_counts"]
