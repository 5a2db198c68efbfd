"""The probe's data: treebank sentences with their gold labels, and each word's vector per layer.

Sentences are read by :func:`mlmtool.analysis.heads.treebank.read_conllu` and tokenized word
by word by the syntax probe's :func:`~mlmtool.analysis.heads.syntax._tokenize_trees` (which
also leaves out, and counts, sentences longer than the model accepts). The probe works on
the treebank's *syntactic* words: both words of a multiword token (``du`` = ``de`` + ``le``)
get the vector of their one surface token.

A word's vector is the mean of its pieces' hidden states (the rule of ``mlmtool embed``);
one forward pass per batch (:func:`mlmtool.core.forward.iter_forward`) gives every layer,
and the vectors are kept in float16 (``[layers, words, hidden]``: 13 x 204k x 768 x 2 bytes
= 4 GB for the whole English-EWT train set on a base model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import MlmtoolError
from ..heads.treebank import DependencyTree, read_conllu

#: The UPOS tag left out of UUAS and root accuracy (Hewitt & Manning 2019 leave punctuation out).
PUNCT = "PUNCT"


@dataclass
class ProbeSentences:
    """The treebank sentences that fit the model, flattened to words.

    Attributes:
        trees: ``[N]`` the sentences kept.
        offsets: ``int [N+1]``: sentence ``i``'s words are ``offsets[i]:offsets[i+1]``.
        forms: ``[W]`` each word's form (lower-cased; the control tasks' word type).
        labels: ``{"upos"|"xpos"|"deprel": [W] str}`` gold labels (``deprel`` of the root
            is ``"root"``).
        heads: ``int [W]`` the governor's index among all words, -1 for the root.
        n_skipped: sentences longer than the model's limit; n_unaligned: sentences with a
            word that got no piece (left out too).
        ids: ``[N][S]`` token ids (special tokens included); word_ids: ``[N][S]`` each
            token's surface token in ``trees[i].tokens`` (None for special tokens).
    """

    trees: list[DependencyTree]
    offsets: np.ndarray
    forms: list[str]
    labels: dict[str, list[str]]
    heads: np.ndarray
    n_skipped: int = 0
    n_unaligned: int = 0
    ids: list = field(default_factory=list)
    word_ids: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.trees)

    @property
    def n_words(self) -> int:
        return int(self.offsets[-1])


def word_columns(path: str | Path) -> dict[int, tuple[list[str], list[str]]]:
    """``{first line of a sentence: (forms [W], xpos [W])}`` of a CoNLL-U file's word lines.

    Only what :class:`DependencyTree` does not keep: the syntactic words' FORM (a multiword
    token's words, not its surface form) and XPOS. Multiword ranges (``3-4``) and empty nodes
    (``5.1``) are skipped, as :func:`read_conllu` skips them. The file was already checked
    by :func:`read_conllu`, so this scanner trusts its format.
    """
    out: dict[int, tuple[list[str], list[str]]] = {}
    forms: list[str] = []
    xpos: list[str] = []
    start = 0
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines + [""], 1):
        if not line.strip():
            if start:
                out[start] = (forms, xpos)
            forms, xpos, start = [], [], 0
            continue
        start = start or number
        fields = line.split("\t")
        if not line.startswith("#") and fields[0].isdigit():
            forms.append(fields[1])
            xpos.append(fields[4])
    return out


def read_treebank(source: str | Path | Sequence[DependencyTree], what: str
                  ) -> tuple[list[DependencyTree], dict[int, tuple[list[str], list[str]]] | None]:
    """Trees and (for a file) its word columns; ``what`` (``"train"``/``"test"``) names the
    file in messages.

    Raises:
        MlmtoolError: missing, empty or non-CoNLL-U file (``param=what``).
    """
    if not isinstance(source, (str, Path)):
        return list(source), None
    try:
        trees = read_conllu(source)
    except MlmtoolError as exc:
        raise MlmtoolError(f"{what}: {exc}", param=what) from None
    return trees, word_columns(source)


def prepare(lm, trees: Sequence[DependencyTree], columns: dict | None, need_xpos: bool = False) -> ProbeSentences:
    """Tokenize the trees once and flatten their gold labels to words.

    Args:
        lm: a :class:`~mlmtool.models.LoadedModel` (only its tokenizer and limit are used).
        trees: the sentences; columns: :func:`word_columns` of their file (None for trees
            given in Python: forms then come from the surface tokens and XPOS is unknown).
        need_xpos: XPOS is probed.

    Returns:
        :class:`ProbeSentences`, with the token ids :func:`word_states` runs.

    Raises:
        MlmtoolError: every sentence too long (``param="treebank"``); XPOS asked of trees
            without a file (``param="tasks"``).
    """
    from ..heads.syntax import _tokenize_trees

    if need_xpos and columns is None:
        raise MlmtoolError("tasks: xpos needs the treebank as a CoNLL-U file", param="tasks")
    prepared, kept = _tokenize_trees(lm, trees)
    sents, ids, word_ids = [], [], []
    unaligned = 0
    for (tree, _), seq, wids in zip(kept, prepared.ids, prepared.word_ids):
        if len({w for w in wids if w is not None}) < len(tree.tokens):
            unaligned += 1
            continue
        sents.append(tree), ids.append(seq), word_ids.append(wids)
    out = _flatten(sents, columns)
    out.n_skipped, out.n_unaligned = prepared.n_skipped, unaligned
    out.ids, out.word_ids = ids, word_ids
    return out


def _flatten(trees: list[DependencyTree], columns: dict | None) -> ProbeSentences:
    """Concatenate the trees' words and labels (see :class:`ProbeSentences`)."""
    forms, upos, xpos, deprel, heads, offsets = [], [], [], [], [], [0]
    for tree in trees:
        base = offsets[-1]
        col = columns.get(tree.line) if columns is not None else None
        if col is not None and len(col[0]) == len(tree.heads):
            forms += [f.lower() for f in col[0]]
            xpos += col[1]
        else:
            forms += [tree.tokens[t].lower() for t in tree.token_of]
            xpos += ["_"] * len(tree.heads)
        upos += tree.upos
        deprel += tree.relations
        heads += [base + h - 1 if h else -1 for h in tree.heads]
        offsets.append(base + len(tree.heads))
    return ProbeSentences(trees=trees, offsets=np.array(offsets, dtype=np.int64), forms=forms,
                          labels={"upos": upos, "xpos": xpos, "deprel": deprel},
                          heads=np.array(heads, dtype=np.int64))


def word_states(lm, sents: ProbeSentences, layers: Sequence[int], batch_size: int = 32) -> np.ndarray:
    """Every word's vector at each of ``layers``: the mean of its pieces' hidden states.

    Args:
        lm: the model; sents: from :func:`prepare`; layers: hidden-state indices (0 = the
            embedding output, L = the last layer); batch_size: sentences per forward pass.

    Returns:
        ``float16 [len(layers), W, D]`` (W = ``sents.n_words``), rows in word order.
    """
    from ...core.forward import iter_forward

    hidden = lm.model.config.hidden_size
    out = np.zeros((len(layers), sents.n_words, hidden), dtype=np.float16)
    for item in iter_forward(lm, sents.ids, hidden_states=True, batch_size=batch_size):
        i = item.index
        tree = sents.trees[i]
        wids = sents.word_ids[i]
        member = np.zeros((len(tree.tokens), len(wids)), dtype=np.float32)  # [T, S]
        for s, w in enumerate(wids):
            if w is not None:
                member[w, s] = 1.0
        member /= member.sum(1, keepdims=True)
        states = item.hidden_states[list(layers)]  # [layers, S, D]
        tokens = np.einsum("ts,lsd->ltd", member, states)  # [layers, T, D]
        out[:, sents.offsets[i]:sents.offsets[i + 1]] = tokens[:, tree.token_of]
    return out


def tree_distances(heads: np.ndarray) -> np.ndarray:
    """Path lengths between the words of one tree.

    Args:
        heads: ``int [n]`` each word's governor among the sentence's words (from 0), -1 for
            the root.

    Returns:
        ``float32 [n, n]`` edges on the undirected tree's path (0 on the diagonal).
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import shortest_path

    n = len(heads)
    deps = np.flatnonzero(heads >= 0)
    graph = csr_matrix((np.ones(len(deps)), (deps, heads[deps])), shape=(n, n))
    return shortest_path(graph, directed=False, unweighted=True).astype(np.float32)


def tree_depths(heads: np.ndarray) -> np.ndarray:
    """``float32 [n]``: each word's edges to the root (the root's depth is 0)."""
    roots = np.flatnonzero(heads < 0)
    return tree_distances(heads)[roots[0]].copy()


__all__ = ["PUNCT", "ProbeSentences", "prepare", "read_treebank", "tree_depths", "tree_distances",
           "word_columns", "word_states"]
