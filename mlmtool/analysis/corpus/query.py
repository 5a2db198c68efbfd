"""Search an index: the corpus words whose vectors are nearest the bracketed word's (exBERT's
corpus search, Hoover et al. 2020), with their contexts and a summary of the hits.

The query sentence runs through the same path as the corpus (:func:`.build.embed_sentences`),
so its word vector is comparable; the score is the cosine of the two unit vectors. Layers
with at most :data:`~.store.EXACT_BELOW` words are scanned exactly; larger ones through the
inverted lists nearest the query (faiss IVF, ``nprobe`` lists), widening the candidate list
when filters drop hits.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ...errors import MlmtoolError
from .build import Sentence, embed_sentences
from .store import EXACT_BELOW, CorpusIndex, load_index, weights_hash

#: Word filters: every hit, the query's own word only, or other words only.
WORD_FILTERS = ("any", "same", "other")

#: Hits searched by default (``mlmtool search -k``).
SEARCH_TOP_K = 20


@dataclass
class SearchHit:
    """One corpus word near the query.

    Attributes:
        sentence: corpus line number (from 0). word_index: the word's number in it (from 0).
        word: the word as written. left, right: the sentence's text before and after it.
        score: cosine similarity of the two unit vectors (-1..1).
        upos, relation: UPOS tag and dependency relation (indexes built from CoNLL-U), else None.
    """

    sentence: int
    word_index: int
    word: str
    left: str
    right: str
    score: float
    upos: str | None = None
    relation: str | None = None

    def to_dict(self) -> dict:
        """A JSON-ready ``dict`` (``upos``/``relation`` only when known)."""
        out = asdict(self)
        for k in ("upos", "relation"):
            if out[k] is None:
                del out[k]
        return out


@dataclass
class SearchResult:
    """The hits of one query, nearest first, and their summary.

    Attributes:
        query: the sentence without brackets. word: the query word. word_index: its number (from 0).
        layer: the hidden-state layer searched. model: the index's model. index: the index folder.
        hits: :class:`SearchHit` list, score descending. words_filter: ``any``/``same``/``other``.
        pos: the UPOS filter, or None. exact: True when the layer was scanned exhaustively.
    """

    query: str
    word: str
    word_index: int
    layer: int
    model: str
    index: str
    hits: list[SearchHit]
    words_filter: str = "any"
    pos: str | None = None
    exact: bool = True
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """Counts over the hits (exBERT's histogram): ``words`` and ``pos`` (most common
        first), ``sentences`` (distinct), ``mean_score``."""
        return {"words": dict(Counter(h.word for h in self.hits).most_common()),
                "pos": dict(Counter(h.upos for h in self.hits if h.upos).most_common()),
                "sentences": len({h.sentence for h in self.hits}),
                "mean_score": (sum(h.score for h in self.hits) / len(self.hits)) if self.hits else None}

    def to_dict(self) -> dict:
        """``{"query", "word", "word_index", "layer", "model", "index", "hits": [...], "summary": {...}}``."""
        return {"query": self.query, "word": self.word, "word_index": self.word_index, "layer": self.layer,
                "model": self.model, "index": self.index, "filter": self.words_filter, "pos": self.pos,
                "exact": self.exact, "hits": [h.to_dict() for h in self.hits], "summary": self.summary()}

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as UTF-8 JSON to ``path``; returns the path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return path


def parse_query(text: str) -> tuple[str, int]:
    """``"The [bank] of the river."`` → ``("The bank of the river.", 4)``: the sentence and
    the character offset of the bracketed word (in the sentence returned).

    ``\\[`` and ``\\]`` are literal brackets (``"She wrote \\[MASK\\] on the [board]."``:
    the word is ``board`` and the sentence keeps ``[MASK]``), so any sentence can be searched.

    Raises:
        MlmtoolError: no bracketed word, more than one, or an empty or unclosed one.
    """
    clean: list[str] = []
    opens: list[int] = []
    closes: list[int] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and text[i + 1:i + 2] in ("[", "]"):
            clean.append(text[i + 1])
            i += 2
            continue
        if ch == "[":
            opens.append(len(clean))
        elif ch == "]":
            closes.append(len(clean))
        else:
            clean.append(ch)
        i += 1
    if not opens and not closes:
        what = "no word in [brackets]"
    elif len(opens) > 1 or len(closes) > 1:
        what = "more than one [bracketed] word"
    elif (len(opens) != 1 or len(closes) != 1 or opens[0] >= closes[0]
          or not "".join(clean[opens[0]:closes[0]]).strip()):
        what = "an empty or unclosed [bracket]"
    else:
        return "".join(clean), opens[0]
    raise MlmtoolError(f"the query has {what}; put exactly one word in brackets, e.g. \"The [bank] of the "
                       "river was muddy.\" (write \\[ and \\] for literal brackets)", param="query")


def query_vector(lm, text: str, layer: int):
    """The bracketed word's unit vector at ``layer``: ``(float16 [D], word, word_index)``.

    Raises:
        MlmtoolError: a bad query (:func:`parse_query`), or no word at the brackets.
    """
    clean, offset = parse_query(text)
    vectors, rows, _ = embed_sentences(lm, [Sentence(0, clean)], [layer], batch_size=1)
    for k, (start, end) in enumerate(zip(rows["start"], rows["end"])):
        if start <= offset < max(end, start + 1):
            return vectors[0, k], rows["word"][k], rows["word_index"][k]
    raise MlmtoolError(f"no word of the model's tokenizer starts at the brackets of \"{text}\"", param="query")


def _model_for(index: CorpusIndex, lm):
    """``lm``, or the index's model loaded by name; either must have the index's weights.

    Raises:
        MlmtoolError: other weights (both models named).
    """
    if lm is None:
        from ...models import load

        lm = load(index.info.model)
    if weights_hash(lm) != index.info.model_hash:
        raise MlmtoolError(f"the index '{index.path}' was made by model '{index.info.model}', not by "
                           f"'{lm.name}' (other weights); search it with '{index.info.model}'", param="model")
    return lm


def _nearest(index: CorpusIndex, layer: int, vector, count: int, exact: bool):
    """``count`` nearest keys and cosines: exact scan, or the ``nprobe`` inverted lists nearest
    the query (faiss IVF). Returns ``(keys [n], scores [n])``."""
    import numpy as np

    count = min(count, len(index))
    if exact:
        matrix = index.vectors(layer).astype(np.float32)  # [W, D], unit rows
        scores = matrix @ vector.astype(np.float32)
        keys = np.argsort(-scores, kind="stable")[:count]
        return keys, scores[keys]
    scores, keys = index.layer(layer).search(vector.astype(np.float32)[None], count)  # [1, count] each
    found = keys[0] >= 0  # fewer than count words in the probed lists: -1 ids
    return keys[0][found].astype(np.int64), scores[0][found].astype(np.float64)


def search(index: str | Path | CorpusIndex, query: str, lm=None, *, layer: int | None = None,
           top_k: int = SEARCH_TOP_K, words: str = "any", pos: str | None = None,
           exact: bool | None = None) -> SearchResult:
    """The corpus words nearest the bracketed word of ``query`` at one layer.

    Args:
        index: an index folder or a :class:`~.store.CorpusIndex` (:func:`~.store.load_index`).
        query: a sentence with one word in brackets, ``"The [bank] of the river was muddy."``.
        lm: the model; default the index's (loaded by name). Its weights must be the index's.
        layer: an indexed layer; default the last indexed one.
        top_k: hits wanted (default :data:`SEARCH_TOP_K`).
        words: ``"any"`` (default), ``"same"`` (only the query's word, case-folded) or ``"other"``.
        pos: keep only hits with this UPOS tag (indexes built from CoNLL-U).
        exact: scan every vector; default when the layer has at most :data:`~.store.EXACT_BELOW` words.

    Returns:
        :class:`SearchResult` with at most ``top_k`` hits, cosine descending.

    Raises:
        MlmtoolError: a bad query; a layer not indexed; another model; ``pos`` on an index
            without tags; an unknown ``words`` filter; a partial or corrupted index.
    """
    if words not in WORD_FILTERS:
        raise MlmtoolError(f"words must be one of {', '.join(WORD_FILTERS)}, got '{words}'", param="words")
    if top_k < 1:
        raise MlmtoolError("top_k must be at least 1", param="top_k")
    index = index if isinstance(index, CorpusIndex) else load_index(index)
    layer = index.info.layers[-1] if layer is None else layer
    index.layer(layer)  # a layer not indexed fails here, before the model loads
    if pos is not None and not index.info.conllu:
        raise MlmtoolError(f"the index '{index.path}' has no part-of-speech tags (build it with --conllu "
                           "to filter by POS)", param="pos")
    lm = _model_for(index, lm)
    vector, word, word_index = query_vector(lm, query, layer)
    exact = len(index) <= EXACT_BELOW if exact is None else exact
    keep = None if words == "any" and pos is None else _keep(word, words, pos)
    hits = _filtered_hits(index, layer, vector, top_k, exact, keep)
    return SearchResult(query=parse_query(query)[0], word=word, word_index=int(word_index), layer=layer,
                        model=index.info.model, index=str(index.path), hits=hits, words_filter=words,
                        pos=pos, exact=exact)


def _keep(word: str, words: str, pos: str | None):
    """The hit filter: ``(word, upos) -> bool``."""
    folded = word.casefold()

    def keep(w: str, upos: str | None) -> bool:
        if words == "same" and w.casefold() != folded:
            return False
        if words == "other" and w.casefold() == folded:
            return False
        return pos is None or (upos is not None and pos in upos.split("+"))

    return keep


def _filtered_hits(index: CorpusIndex, layer: int, vector, top_k: int, exact: bool, keep) -> list[SearchHit]:
    """Up to ``top_k`` hits passing ``keep`` (None = all), asking for 4x, 16x, ... candidates as needed."""
    count = top_k if keep is None else top_k * 4
    while True:
        keys, scores = _nearest(index, layer, vector, count, exact)
        rows = index.words.take(keys.tolist()).to_pydict() if len(keys) else {"word": [], "upos": []}
        chosen = [i for i, (w, u) in enumerate(zip(rows["word"], rows["upos"])) if keep is None or keep(w, u)]
        if len(chosen) >= top_k or count >= len(index):
            break
        count *= 4
    return [_hit(index, rows, i, float(scores[i])) for i in chosen[:top_k]]


def _hit(index: CorpusIndex, rows: dict, i: int, score: float) -> SearchHit:
    """Row ``i`` of a taken word table as a :class:`SearchHit` with its context."""
    text = index.texts.get(rows["sentence"][i], "")
    start, end = rows["start"][i], rows["end"][i]
    return SearchHit(sentence=int(rows["sentence"][i]), word_index=int(rows["word_index"][i]),
                     word=rows["word"][i], left=text[:start].strip(), right=text[end:].strip(),
                     score=round(score, 6), upos=rows["upos"][i], relation=rows["relation"][i])
