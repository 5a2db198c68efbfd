"""The syntax probe: does a head's most-attended word follow the dependency tree?

Method: Clark, Khandelwal, Levy & Manning (2019), "What Does BERT Look At?", §4.2 and
Table 1 (arXiv:1906.04341; their ``attn_head_predictor`` in ``Syntax_Analysis.ipynb`` of
github.com/clarkkev/attention-analysis). Against gold dependency parses (CoNLL-U, e.g. the
Universal Dependencies treebanks), for every relation and every head, in two directions:

* ``dep->gov``: the word the dependent attends to most (itself and special tokens never
  count) is its governor;
* ``gov->dep``: on the transposed map, the word that attends most to the dependent is its
  governor.

Accuracy is the share of a relation's arcs predicted right; the root arc is left out. The
baseline is the best fixed relative offset for the relation (the most common
``governor position - dependent position``, in words, e.g. ``+1`` for ``det`` in English),
the strongest of Clark et al.'s offset predictors. Attention is word-level as in the rest
of :mod:`mlmtool.analysis.heads` (mean over the attending word's pieces, sum over the
attended word's pieces).

The gold parses come from :mod:`.treebank` (CoNLL-U; a multiword token is one surface
token, an arc inside one token is left out, relation subtypes are folded unless
``subtypes=True``). Each surface token is given to the tokenizer as one word
(:func:`mlmtool.tokens.encode_words`), so Chinese and Japanese words are never re-split
across the treebank's boundaries.

Part-of-speech pairs (``ADV:VERB``, read by :func:`.sentences.parse_upos_pair`) are probed
like relations: the arcs of any relation between a word of the first tag and a word of the
second, in either order.

The treebank reading, the pair parsing and :func:`~mlmtool.tokens.encode_words` are
re-exported here under their old names.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ...errors import MlmtoolError
from ...tokens import encode_words
from .metrics import SentenceUnits
from .scores import HeadScores, _num
from .sentences import (UPOS_TAGS, PreparedSentences, cooccurring, is_upos_pair, parse_upos_pair,
                        split_pairs)
from .treebank import (DEFAULT_MIN_COUNT, DependencyTree, frequent_relations, parse_conllu, read_conllu,
                       relation_counts)

#: The two probe directions of Clark et al. 2019 (their "dep -> head" and "head <- dep").
DIRECTIONS: tuple[str, str] = ("dep->gov", "gov->dep")

#: Example sentences remembered per relation while the model runs.
_CANDIDATES = 12


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class SyntaxArc:
    """One arc of an example sentence, with what the head predicted.

    Attributes:
        dependent, governor: the two words (surface forms).
        predicted: the word the head picked for the dependent.
        weight: the head's word-level attention on that link (from the dependent for
            ``dep->gov``, to the dependent for ``gov->dep``), in [0, 1].
        correct: ``predicted`` is the governor.
    """

    dependent: str
    governor: str
    predicted: str
    weight: float
    correct: bool


@dataclass
class SyntaxExample:
    """An example sentence for a relation's best head.

    Attributes:
        relation: the relation (or part-of-speech pair); direction: one of :data:`DIRECTIONS`.
        layer, head: the head, from 1.
        sentence: the sentence; arcs: its arcs of ``relation`` and the head's picks.
    """

    relation: str
    direction: str
    layer: int
    head: int
    sentence: str
    arcs: list[SyntaxArc]


@dataclass
class SyntaxScores:
    """Every head's accuracy on every relation, in both directions (Clark et al. 2019 §4.2).

    Attributes:
        model_name: the model.
        relations: ``[G]`` the relations with at least ``min_count`` arcs (most frequent
            first), then the part-of-speech pairs (``ADV:VERB``).
        offsets: ``[G]`` ``{governor position - dependent position: arcs}`` in words.
        kinds: ``[G]`` ``"relation"`` or ``"upos_pair"``.
        n: ``int [G]`` arcs evaluated per relation.
        correct: ``int [G, 2, L, H]`` arcs predicted right per direction (index 0 =
            ``dep->gov``) and head; indices from 0.
        n_sentences: treebank sentences scored; n_skipped: sentences longer than the model's
            limit, left out.
        min_count: the threshold used; subtypes: whether relation subtypes were kept.
        examples: ``{(relation, direction): SyntaxExample}`` for each relation's better
            direction.
    """

    model_name: str
    relations: list[str]
    offsets: list[dict[int, int]]
    kinds: list[str]
    n: np.ndarray
    correct: np.ndarray
    n_sentences: int = 0
    n_skipped: int = 0
    min_count: int = DEFAULT_MIN_COUNT
    subtypes: bool = False
    examples: dict[tuple[str, str], SyntaxExample] = field(default_factory=dict)

    @property
    def accuracy(self) -> np.ndarray:
        """``float32 [G, 2, L, H]``: share of each relation's arcs each head predicts right."""
        return (self.correct / np.maximum(self.n, 1)[:, None, None, None]).astype(np.float32)

    def index(self, relation: str) -> int:
        """Position of ``relation`` in :attr:`relations`.

        Raises:
            KeyError: not a relation of this probe.
        """
        try:
            return self.relations.index(relation)
        except ValueError:
            raise KeyError(f"relation '{relation}' was not probed; probed: {', '.join(self.relations)}") from None

    def baseline(self, relation: str) -> tuple[float, int]:
        """``(accuracy, offset)`` of the best fixed relative offset for ``relation``: always
        predicting the word ``offset`` positions away from the dependent."""
        g = self.index(relation)
        if not self.offsets[g]:
            return 0.0, 0
        offset, count = max(self.offsets[g].items(), key=lambda kv: (kv[1], -abs(kv[0])))
        return count / max(int(self.n[g]), 1), int(offset)

    def best(self, relation: str, direction: str | None = None) -> tuple[int, int, float, str]:
        """The best head for ``relation``: ``(layer, head, accuracy, direction)``, from 1.

        ``direction`` = None takes the better of the two; ties go to the lower layer and head.
        """
        g = self.index(relation)
        dirs = range(2) if direction is None else [DIRECTIONS.index(direction)]
        best = None
        for d in dirs:
            acc = self.accuracy[g, d]
            i = int(np.argmax(acc))  # first maximum: lowest layer, then head
            cand = (i // acc.shape[1] + 1, i % acc.shape[1] + 1, float(acc.flat[i]), DIRECTIONS[d])
            if best is None or cand[2] > best[2]:
                best = cand
        return best  # type: ignore[return-value]

    def records(self) -> list[dict]:
        """The ``syntax`` list of ``heads.json``: per relation and direction its best head.

        Each record: ``relation``, ``kind``, ``direction``, ``layer``, ``head`` (both from
        1), ``accuracy``, ``baseline`` (best fixed offset), ``offset``, ``n`` (arcs).
        """
        out = []
        for relation, kind, n in zip(self.relations, self.kinds, self.n):
            base, offset = self.baseline(relation)
            for direction in DIRECTIONS:
                layer, head, acc, _ = self.best(relation, direction)
                out.append({"relation": relation, "kind": kind, "direction": direction, "layer": layer,
                            "head": head, "accuracy": _num(acc), "baseline": _num(base), "offset": offset,
                            "n": int(n)})
        return out

    def to_dict(self) -> dict:
        """JSON-ready: the records plus the full ``[layers][heads]`` accuracy matrices."""
        acc = self.accuracy
        return {"model": self.model_name, "n_sentences": self.n_sentences, "n_skipped": self.n_skipped,
                "min_count": self.min_count, "subtypes": self.subtypes, "records": self.records(),
                "matrices": {rel: {d: [[_num(v) for v in row] for row in acc[g, k]]
                                   for k, d in enumerate(DIRECTIONS)}
                             for g, rel in enumerate(self.relations)}}

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as UTF-8 JSON to ``path`` (as :meth:`HeadScores.save`
        writes ``heads.json``) and return the path.

        Raises:
            OSError: the file cannot be written.
        """
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
        return path


# --------------------------------------------------------------------------------------------
# Preparing the treebank


@dataclass
class _Arcs:
    """One sentence's arcs to probe: ``int [A]`` dependent and governor word indices
    (surface tokens, from 0) and the relation index of each."""

    dep: np.ndarray
    gov: np.ndarray
    group: np.ndarray


def prepare_treebank(lm, trees: Sequence[DependencyTree], upos_pairs: Sequence[str] = (),
                     min_count: int = DEFAULT_MIN_COUNT) -> tuple[PreparedSentences, list[str], list[str]]:
    """Tokenize the treebank once and list the arcs of every relation to probe.

    Sentences longer than the model's limit are left out (``n_skipped``); arcs whose words got
    no piece are left out too.

    Returns:
        ``(prepared, relations, kinds)``: ``prepared.extra[i]`` holds sentence ``i``'s arcs;
        ``relations`` the probed relations (at least ``min_count`` arcs, most frequent
        first) then the part-of-speech pairs.

    Raises:
        MlmtoolError: all sentences too long (``param="treebank"``); no relation with
            ``min_count`` arcs (``param="min_count"``); a pair of tags no arc links
            (``param="pairs"``).
    """
    if min_count < 1:
        raise MlmtoolError(f"min_count must be at least 1 (got {min_count})", param="min_count")
    prepared, kept = _tokenize_trees(lm, trees)
    counts = Counter(rel for _, arcs in kept for _, _, rel, _, _ in arcs)
    relations = frequent_relations(counts, min_count, len(kept))
    prepared.extra = _probed_arcs(kept, relations, upos_pairs)
    return prepared, relations + list(upos_pairs), ["relation"] * len(relations) + ["upos_pair"] * len(upos_pairs)


def _tokenize_trees(lm, trees: Sequence[DependencyTree]
                    ) -> tuple[PreparedSentences, list[tuple[DependencyTree, list]]]:
    """The trees that fit the model, tokenized word by word (:func:`~mlmtool.tokens.encode_words`),
    each with its arcs between two words that got pieces.

    Raises:
        MlmtoolError: every sentence is longer than the model's limit (``param="treebank"``).
    """
    ids, word_ids = encode_words(lm, [t.tokens for t in trees], [t.space_after for t in trees])
    prepared = PreparedSentences([], [], [], [])
    kept: list[tuple[DependencyTree, list]] = []
    for tree, seq, wids in zip(trees, ids, word_ids):
        if len(seq) > lm.max_length:
            prepared.n_skipped += 1
            continue
        have = {w for w in wids if w is not None}
        arcs = [a for a in tree.arcs() if a[0] in have and a[1] in have]
        prepared.texts.append(tree.text)
        prepared.words.append(list(tree.tokens))
        prepared.ids.append(seq)
        prepared.word_ids.append(wids)
        kept.append((tree, arcs))
    if not kept:
        raise MlmtoolError(f"treebank: all {prepared.n_skipped} sentences are longer than the {lm.max_length} "
                           f"tokens model '{lm.name}' accepts", param="treebank")
    return prepared, kept


def _probed_arcs(kept: list[tuple[DependencyTree, list]], relations: list[str],
                 upos_pairs: Sequence[str]) -> list[_Arcs]:
    """Per sentence, its arcs of the probed ``relations`` (group ``g``) and of each tag pair
    (group ``len(relations) + p``; an arc may be in both).

    Raises:
        MlmtoolError: a pair of tags that no arc links (``param="pairs"``).
    """
    tag_sets = [parse_upos_pair(p) for p in upos_pairs]
    groups = {rel: g for g, rel in enumerate(relations)}
    pair_arcs = [0] * len(tag_sets)
    out = []
    for tree, arcs in kept:
        dep, gov, group = [], [], []
        for d, h, rel, dep_tag, gov_tag in arcs:
            if rel in groups:
                dep.append(d), gov.append(h), group.append(groups[rel])
            for p, (a, b) in enumerate(tag_sets):
                if (dep_tag in a and gov_tag in b) or (dep_tag in b and gov_tag in a):
                    dep.append(d), gov.append(h), group.append(len(relations) + p)
                    pair_arcs[p] += 1
        out.append(_Arcs(np.array(dep, dtype=np.int64), np.array(gov, dtype=np.int64),
                         np.array(group, dtype=np.int64)))
    for spec, count in zip(upos_pairs, pair_arcs):
        if not count:
            a, b = spec.split(":")
            raise MlmtoolError(f"pairs '{spec}': no arc of the treebank links a {a} word and a {b} word",
                               param="pairs")
    return out


# --------------------------------------------------------------------------------------------
# The probe


class SyntaxProbe:
    """Counts, during the model's pass, how often each head's pick is the governor.

    An observer for :func:`mlmtool.analysis.heads.run.score_prepared`: :meth:`add` gets each
    sentence's word-level attention ``[L, H, U, U]``; all heads and arcs of a sentence are
    scored at once with NumPy (two ``argmax`` and one matrix product per sentence).
    """

    def __init__(self, prepared: PreparedSentences, relations: Sequence[str], layers: int, heads: int):
        self.arcs: list[_Arcs] = prepared.extra
        self.G = len(relations)
        self.n = np.zeros(self.G, dtype=np.int64)
        self.offsets: list[Counter] = [Counter() for _ in relations]
        for arcs in self.arcs:
            np.add.at(self.n, arcs.group, 1)
            for g, off in zip(arcs.group.tolist(), (arcs.gov - arcs.dep).tolist()):
                self.offsets[g][off] += 1
        self.correct = np.zeros((self.G, 2, layers, heads), dtype=np.int64)
        #: per relation: [(sentence, all arcs right [2, L, H])] for picking examples
        self.candidates: list[list[tuple[int, np.ndarray]]] = [[] for _ in relations]

    def predictions(self, w: np.ndarray, units: SentenceUnits, arcs: _Arcs):
        """``(hits [2, L, H, A], dep [A], gov [A])``: each head's hit per direction and arc;
        dep/gov are positions among the sentence's words (units of kind word)."""
        words = units.word_index
        known = [w for w in units.word_ids if w is not None]
        pos = np.full(1 + max(known + arcs.dep.tolist() + arcs.gov.tolist()), -1, dtype=np.int64)
        for p, u in enumerate(words):
            pos[units.word_ids[u]] = p
        dep, gov = pos[arcs.dep], pos[arcs.gov]
        ww = w[:, :, words[:, None], words[None, :]]  # [L, H, n, n]: word units only
        n = len(words)
        ww[:, :, np.arange(n), np.arange(n)] = -np.inf  # a word never predicts itself
        dep_to_gov = ww.argmax(-1)[:, :, dep]  # [L, H, A]: the dependent's most-attended word
        gov_to_dep = ww.argmax(-2)[:, :, dep]  # [L, H, A]: the word attending most to it
        return np.stack([dep_to_gov == gov, gov_to_dep == gov]), dep, gov

    def add(self, i: int, w: np.ndarray, units: SentenceUnits) -> None:
        """Score sentence ``i``; ``w``: ``float32 [L, H, U, U]`` word-level attention."""
        arcs = self.arcs[i]
        A = len(arcs.group)
        if not A:
            return
        hits, _, _ = self.predictions(w, units, arcs)  # [2, L, H, A]
        onehot = np.zeros((self.G, A), dtype=np.int64)
        onehot[arcs.group, np.arange(A)] = 1
        D, L, H, _ = hits.shape
        self.correct += (onehot @ hits.reshape(D * L * H, A).T.astype(np.int64)).reshape(self.G, D, L, H)
        for g in np.unique(arcs.group).tolist():
            if len(self.candidates[g]) < _CANDIDATES and 5 <= len(units.word_index) <= 20:
                self.candidates[g].append((i, hits[..., arcs.group == g].all(-1)))

    def finish(self, model_name: str, relations: list[str], kinds: list[str], prepared: PreparedSentences,
               get, min_count: int, subtypes: bool) -> SyntaxScores:
        """Build :class:`SyntaxScores`, with an example sentence per relation (``get(indices)``
        gives attention again for a few sentences)."""
        from .metrics import sentence_units, word_attention

        scores = SyntaxScores(model_name=model_name, relations=list(relations), kinds=list(kinds), n=self.n.copy(),
                              correct=self.correct.copy(), offsets=[dict(c) for c in self.offsets],
                              n_sentences=len(prepared), n_skipped=prepared.n_skipped, min_count=min_count,
                              subtypes=subtypes)
        wanted = []
        for g, relation in enumerate(relations):
            if not self.candidates[g]:
                continue
            layer, head, _, direction = scores.best(relation)
            d = DIRECTIONS.index(direction)
            right = [i for i, ok in self.candidates[g] if ok[d, layer - 1, head - 1]]
            wanted.append((g, relation, direction, layer, head, (right or [self.candidates[g][0][0]])[0]))
        if not wanted:
            return scores
        needed = sorted({x[-1] for x in wanted})
        results = dict(zip(needed, get(needed)))
        for g, relation, direction, layer, head, i in wanted:
            res, words = results[i]
            units = sentence_units(res, words)
            w = word_attention(res.attention, units.membership)
            arcs = self.arcs[i]
            hits, dep, gov = self.predictions(w, units, arcs)
            d = DIRECTIONS.index(direction)
            a = w[layer - 1, head - 1][np.ix_(units.word_index, units.word_index)].copy()  # [n, n]
            np.fill_diagonal(a, -np.inf)
            names = [units.names[u] for u in units.word_index]
            shown = []
            for k in np.flatnonzero(arcs.group == g):
                pick = int(a[dep[k]].argmax()) if d == 0 else int(a[:, dep[k]].argmax())
                weight = float(a[dep[k], pick] if d == 0 else a[pick, dep[k]])
                shown.append(SyntaxArc(names[dep[k]], names[gov[k]], names[pick], weight,
                                       bool(hits[d, layer - 1, head - 1, k])))
            scores.examples[(relation, direction)] = SyntaxExample(relation, direction, layer, head,
                                                                   prepared.texts[i], shown[:6])
        return scores


def score_syntax(lm, treebank: str | Path | Sequence[DependencyTree], pairs: Iterable[str | tuple[str, str]] = (),
                 min_count: int = DEFAULT_MIN_COUNT, subtypes: bool = False, limit: int | None = None,
                 batch_size: int = 32, progress: Callable[[int, int], None] | None = None) -> HeadScores:
    """Score every head on a treebank: the surface patterns and the syntax probe, in one pass.

    Args:
        lm: a model from :func:`mlmtool.load` (no MLM head needed).
        treebank: a CoNLL-U file, or trees from :func:`read_conllu`.
        pairs: ``"ADV:VERB"`` part-of-speech pairs (UPOS tags, in capitals; probed like a
            relation) and/or ``"word:word"`` word pairs (as :func:`~.run.score_heads`).
        min_count: probe only relations with at least this many arcs (default 100, as Clark
            et al. 2019 Table 1).
        subtypes: keep relation subtypes (``nmod:poss``) instead of folding them.
        limit: use only the first ``limit`` sentences.
        batch_size: sentences per forward pass.
        progress: ``callback(done, total)`` after each sentence.

    Returns:
        :class:`~.scores.HeadScores` over the treebank's sentences with ``.syntax`` set to a
        :class:`SyntaxScores`.

    Raises:
        MlmtoolError: not CoNLL-U (naming the line), no relation reaching ``min_count``, all
            sentences too long, a pair tag that is not UPOS, a tag pair no arc links, or a
            word pair that never occurs in one sentence.
    """
    from ..arch import attention_heads, check_attention
    from .run import check_prepared, score_prepared

    check_attention(lm)
    trees = read_conllu(treebank, subtypes=subtypes) if isinstance(treebank, (str, Path)) else list(treebank)
    if limit is not None:
        trees = trees[:limit]
    word_pairs, upos_pairs = split_pairs(pairs)
    prepared, relations, kinds = prepare_treebank(lm, trees, upos_pairs, min_count)
    check_prepared(lm, prepared, "treebank")
    for pair in word_pairs:
        if cooccurring(prepared.words, prepared.texts, pair) == 0:
            raise MlmtoolError(f"pairs '{pair[0]}:{pair[1]}': the two words never occur in the same "
                               f"sentence of the treebank ({len(prepared)} sentences)", param="pairs")
    probe = SyntaxProbe(prepared, relations, lm.num_layers, attention_heads(lm))
    scores, get = score_prepared(lm, prepared, word_pairs, batch_size=batch_size, progress=progress,
                                 observer=probe)
    scores.syntax = probe.finish(lm.name, relations, kinds, prepared, get, min_count, subtypes)
    return scores


__all__ = ["DEFAULT_MIN_COUNT", "DIRECTIONS", "UPOS_TAGS", "DependencyTree", "SyntaxArc", "SyntaxExample",
           "SyntaxProbe", "SyntaxScores", "encode_words", "frequent_relations", "is_upos_pair", "parse_conllu",
           "parse_upos_pair", "prepare_treebank", "read_conllu", "relation_counts", "score_syntax",
           "split_pairs"]
