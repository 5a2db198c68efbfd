"""The run: one pass of the model over the sentences, scoring every head batch by batch.

:func:`score_heads` tokenizes once (:func:`.sentences.prepare_sentences`), runs the forward
core (:func:`mlmtool.core.forward.iter_forward` with ``attentions=True``: length-bucketed
batches, so memory holds one batch of attention at a time), turns each sentence's attention
into word-level attention and its metrics (:mod:`.metrics`, NumPy over all heads at once)
and collects them into :class:`.scores.HeadScores`. :func:`score_results` does the same from
attention already computed (no model). An *observer* (the dependency probe of
:mod:`.syntax`) may look at the same word-level attention during the pass.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Iterable, Protocol, Sequence

import numpy as np

from ...errors import MlmtoolError
from .metrics import METRICS, PATTERNS, SentenceUnits, pair_sentence, sentence_metrics, sentence_units, word_attention
from .scores import HeadExample, HeadScores, Link, PairScores
from .sentences import PreparedSentences, alternatives, cooccurring, parse_pair, prepare_sentences

#: ``get(indices)`` → ``[(AttentionResult, words)]``: attention again for a few sentences.
Fetch = Callable[[list[int]], list]


class Observer(Protocol):
    """Something that also reads each sentence's word-level attention during the pass."""

    def add(self, i: int, w: np.ndarray, units: SentenceUnits) -> None:
        """Sentence ``i`` (index into the prepared sentences): ``w`` is ``float32 [L, H, U, U]``."""


def make_example(metric: str, layer: int, head: int, sentence: str, score: float,
                 w: np.ndarray, units: SentenceUnits, max_links: int = 8) -> HeadExample:
    """The strongest link of each word for one head (``layer``/``head`` from 1).

    Args:
        w: ``float32 [L, H, U, U]`` word-level attention of the sentence.

    Returns:
        :class:`HeadExample` with at most ``max_links`` links, strongest first.
    """
    a = w[layer - 1, head - 1]  # [U, U]
    links = []
    for u in units.word_index:
        v = int(a[u].argmax())
        links.append(Link(units.names[u], units.names[v], float(a[u, v]), int(u), v))
    links.sort(key=lambda k: -k.weight)
    return HeadExample(metric, layer, head, sentence, float(score), list(units.names), links[:max_links])


def _pick_sentence(values: np.ndarray, word_counts: Sequence[int], min_words: int = 5) -> int:
    """Index of the sentence with the highest finite value, preferring ``min_words``+ words."""
    vals = np.where(np.isnan(values), -np.inf, values)
    long_enough = np.array(word_counts) >= min_words
    if long_enough.any() and np.isfinite(vals[long_enough]).any():
        vals = np.where(long_enough, vals, -np.inf)
    return int(np.argmax(vals))


class _Accumulator:
    """Collects per-sentence metrics and pair statistics, then builds :class:`HeadScores`."""

    def __init__(self, n: int, layers: int, heads: int, pairs: Sequence[tuple[str, str]]):
        self.per_sentence = np.full((n, len(METRICS), layers, heads), np.nan, dtype=np.float32)
        self.word_counts = [0] * n
        self.pairs = [(s, t, alternatives(s), alternatives(t)) for s, t in pairs]
        self.pair_att: list[dict[int, np.ndarray]] = [{} for _ in pairs]
        self.pair_hit: list[dict[int, np.ndarray]] = [{} for _ in pairs]
        self.pair_occ = [0] * len(pairs)
        self.pair_offsets: list[Counter] = [Counter() for _ in pairs]
        self.special_names: dict[str, str] = {}

    def add(self, i: int, result, words: Sequence[str] | None = None) -> tuple[SentenceUnits, np.ndarray]:
        """Score sentence ``i``; returns its units and word-level attention ``[L, H, U, U]``."""
        units = sentence_units(result, words)
        w = word_attention(result.attention, units.membership)
        self.per_sentence[i] = sentence_metrics(w, units)
        self.word_counts[i] = len(units.word_index)
        for name, kind in zip(units.names, units.kinds):
            self.special_names.setdefault(kind, name)
        for p, (_, _, src, tgt) in enumerate(self.pairs):
            found = pair_sentence(w, units, src, tgt)
            if found is not None:
                att, hit, occ, offsets = found
                self.pair_att[p][i], self.pair_hit[p][i] = att, hit
                self.pair_occ[p] += occ
                self.pair_offsets[p].update(offsets)
        return units, w

    def finish(self, model_name: str, sentences: list[str], n_skipped: int, get: Fetch) -> HeadScores:
        """Build the result; ``get(indices)`` gives attention again for the example sentences."""
        L, H = self.per_sentence.shape[2:]
        scores = HeadScores(
            model_name=model_name, num_layers=L, num_heads=H, sentences=sentences,
            per_sentence=self.per_sentence, n_skipped=n_skipped,
            special_names={"cls": self.special_names.get("cls", "[CLS]"),
                           "sep": self.special_names.get("sep", "[SEP]")})
        # Examples: the top head of each pattern, in the sentence where it scores highest.
        wanted: list[tuple[str, int, int, int, float]] = []
        for metric in PATTERNS + ("entropy",):
            top = scores.top(metric, 1, lowest=metric == "entropy")
            if not top:
                continue
            layer, head, _ = top[0]
            values = self.per_sentence[:, METRICS.index(metric), layer - 1, head - 1]
            pick = _pick_sentence(-values if metric == "entropy" else values, self.word_counts)
            wanted.append((metric, layer, head, pick, float(values[pick])))
        for p, (src, tgt, _, _) in enumerate(self.pairs):
            used = sorted(self.pair_att[p])
            mean_att = (np.mean([self.pair_att[p][i] for i in used], axis=0).astype(np.float32)
                        if used else np.zeros((L, H), np.float32))
            mean_hit = (np.mean([self.pair_hit[p][i] for i in used], axis=0).astype(np.float32)
                        if used else np.zeros((L, H), np.float32))
            scores.pairs.append(PairScores(src, tgt, len(used), self.pair_occ[p], mean_att, mean_hit,
                                           dict(self.pair_offsets[p]), used))
            if used:
                layer, head, _, _ = scores.pairs[-1].top(1)[0]
                best = max(used, key=lambda i: float(self.pair_att[p][i][layer - 1, head - 1]))
                wanted.append((f"pair:{p}", layer, head, best,
                               float(self.pair_att[p][best][layer - 1, head - 1])))
        if wanted:
            needed = sorted({x[3] for x in wanted})
            results = dict(zip(needed, get(needed)))
            for metric, layer, head, i, value in wanted:
                res, words = results[i]
                units = sentence_units(res, words)
                w = word_attention(res.attention, units.membership)
                ex = make_example(metric.split(":")[0], layer, head, sentences[i], value, w, units)
                if metric.startswith("pair:"):
                    scores.pairs[int(metric.split(":")[1])].example = ex
                else:
                    scores.examples[metric] = ex
        return scores


def _parse_pairs(pairs: Iterable[str | tuple[str, str]]) -> list[tuple[str, str]]:
    return [parse_pair(p) if isinstance(p, str) else tuple(p) for p in pairs]


def score_results(results: Sequence, words: Sequence[Sequence[str]] | None = None,
                  pairs: Iterable[str | tuple[str, str]] = (), model_name: str | None = None
                  ) -> HeadScores:
    """Score heads from attention already computed (no model needed).

    Args:
        results: :class:`~mlmtool.analysis.attention.AttentionResult` per sentence (same
            layer and head counts).
        words: optional surface words per sentence (for pair matching and display).
        pairs: ``"WORD:WORD"`` strings or ``(source, target)`` tuples.
        model_name: for the report; default the first result's ``model_name``.

    Returns:
        :class:`HeadScores` (examples included).

    Raises:
        MlmtoolError: no results (``param="results"``), or a malformed pair (``"pairs"``).
    """
    results = list(results)
    if not results:
        raise MlmtoolError("results is empty: no sentences to score", param="results")
    parsed = _parse_pairs(pairs)
    L, H = results[0].attention.shape[:2]
    acc = _Accumulator(len(results), L, H, parsed)
    word_lists = list(words) if words is not None else [None] * len(results)
    for i, res in enumerate(results):
        acc.add(i, res, word_lists[i])
    return acc.finish(model_name if model_name is not None else results[0].model_name,
                      [r.text for r in results], 0,
                      lambda idx: [(results[i], word_lists[i]) for i in idx])


def attention_result(lm, prepared: PreparedSentences, i: int, weights: np.ndarray):
    """The :class:`~mlmtool.analysis.attention.AttentionResult` of prepared sentence ``i``.

    Args:
        weights: ``float32 [L, H, S, S]`` from the forward core for ``prepared.ids[i]``.
    """
    from ..attention import make_result

    return make_result(lm, prepared.texts[i], prepared.ids[i], prepared.word_ids[i], weights)


def score_notes(lm) -> tuple[list[str], list[str]]:
    """``(layer_labels, notes)`` for :class:`HeadScores`: the model's attention notes
    (:func:`mlmtool.analysis.arch.attention_notes`) and what the statistics assume.

    Local layers: their heads cannot reach words beyond the window, so their scores (for
    [CLS]/[SEP], long-range pairs, entropy) are over the words inside it; the metrics are
    computed the same way for every layer. Grouped-query attention: the heads of a group
    share keys and values, so they are compared as separate heads but are not independent.
    """
    from ..arch import layer_label, layout

    shape = layout(lm)
    notes = list(shape.notes)
    local = [w for w in shape.local_window if w is not None]
    if local:
        notes.append(f"head statistics take each layer's attention as the model computes it: heads of local "
                     f"layers see only words within ±{max(local)} tokens, so their scores for [CLS], [SEP] and "
                     "distant words are limited by the window (with fewer tokens than the window, "
                     "local and global layers see the same words)")
    return [layer_label(w) for w in shape.local_window], notes


def check_prepared(lm, prepared: PreparedSentences, what: str = "sentences") -> None:
    """Raise when nothing is left to score (all empty, or all longer than the model accepts).

    Raises:
        MlmtoolError: with ``param="sentences"``.
    """
    if len(prepared):
        return
    if prepared.n_skipped:
        raise MlmtoolError(f"{what}: all {prepared.n_skipped} are longer than the {lm.max_length} "
                           f"tokens model '{lm.name}' accepts; use shorter sentences", param="sentences")
    raise MlmtoolError(f"{what}: the input is empty, no sentences to score", param="sentences")


def score_prepared(lm, prepared: PreparedSentences, pairs: Sequence[tuple[str, str]] = (),
                   batch_size: int = 32, progress: Callable[[int, int], None] | None = None,
                   observer: Observer | None = None) -> tuple[HeadScores, Fetch]:
    """Run the model once over ``prepared`` and score every head (the loop of :func:`score_heads`).

    Args:
        lm: a :class:`~mlmtool.models.LoadedModel`.
        prepared: sentences already tokenized (:func:`prepare_sentences` or a treebank).
        pairs: parsed ``(source, target)`` word pairs.
        batch_size: sentences per forward pass.
        progress: ``callback(done, total)`` after each sentence.
        observer: also given each sentence's word-level attention (see :class:`Observer`).

    Raises:
        MlmtoolError: the architecture gives no token x token attention
            (:func:`mlmtool.analysis.arch.check_attention`).

    Returns:
        ``(HeadScores, get)`` where ``get(indices)`` runs the model again on a few sentences
        and returns ``[(AttentionResult, words)]`` (for examples).
    """
    from ...core.forward import forward, iter_forward
    from ..arch import attention_heads, check_attention

    check_attention(lm)
    acc = _Accumulator(len(prepared), lm.num_layers, attention_heads(lm), pairs)
    for done, f in enumerate(iter_forward(lm, prepared.ids, attentions=True, batch_size=batch_size), 1):
        res = attention_result(lm, prepared, f.index, f.attentions)
        units, w = acc.add(f.index, res, prepared.words[f.index])
        if observer is not None:
            observer.add(f.index, w, units)
        if progress is not None:
            progress(done, len(prepared))

    def get(indices: list[int]) -> list:
        found = forward(lm, [prepared.ids[i] for i in indices], attentions=True, batch_size=batch_size)
        return [(attention_result(lm, prepared, i, f.attentions), prepared.words[i])
                for f, i in zip(found, indices)]

    scores = acc.finish(lm.name, list(prepared.texts), prepared.n_skipped, get)
    scores.layer_labels, scores.notes = score_notes(lm)
    return scores, get


def score_heads(lm, sentences: Sequence[str], pairs: Iterable[str | tuple[str, str]] = (),
                batch_size: int = 32, progress: Callable[[int, int], None] | None = None) -> HeadScores:
    """Run the model over ``sentences`` and score every head on every metric.

    The forward pass is the forward core (:func:`mlmtool.core.forward.iter_forward`,
    batched and bucketed by length); each batch's attention is scored and dropped, so
    memory stays at one batch however many sentences there are. Scoring is NumPy over all
    heads at once (:mod:`.metrics`; Clark et al. 2019, arXiv:1906.04341).

    Args:
        lm: a model from :func:`mlmtool.load` (no MLM head needed).
        sentences: the texts (empty ones ignored).
        pairs: ``"WORD:WORD"`` hypotheses, e.g. ``"quickly:ran"``; each side may list
            alternatives with ``|``. Words are matched case-insensitively as whole words.
        batch_size: sentences per forward pass (default 32).
        progress: optional ``callback(done, total)`` after each sentence.

    Returns:
        :class:`HeadScores`; sentences longer than the model's limit are left out and
        counted in ``n_skipped``.

    Raises:
        MlmtoolError: no sentences, all longer than the model limit (``param="sentences"``),
            a malformed pair, or a pair whose words never occur in the same sentence
            (``param="pairs"``; checked before the model runs).
    """
    parsed = _parse_pairs(pairs)
    prepared = prepare_sentences(lm, sentences)
    check_prepared(lm, prepared)
    for pair in parsed:
        if cooccurring(prepared.words, prepared.texts, pair) == 0:
            raise MlmtoolError(f"pairs '{pair[0]}:{pair[1]}': the two words never occur in the same "
                               f"sentence (checked {len(prepared)} sentences); add sentences that "
                               "contain both, or pick other words", param="pairs")
    return score_prepared(lm, prepared, parsed, batch_size=batch_size, progress=progress)[0]
