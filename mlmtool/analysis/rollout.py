"""Attention rollout and attention flow: what the attention of all layers adds up to.

Both methods are from Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers"
(ACL), and take plain attention weights (an :class:`~mlmtool.analysis.attention.AttentionResult`),
never a model. Each layer ``l`` becomes one row-stochastic matrix::

    A_l = 0.5 * W_l + 0.5 * I,   rows renormalised to sum to 1        # [S, S]

with ``W_l`` the attention of layer ``l`` averaged over its heads (the residual connection
counted as an identity attention, the paper's section 3).

* **Rollout** (eq. 1): ``R = A_b @ A_(b-1) @ ... @ A_a`` over the chosen layers ``a..b``:
  ``R[i, j]`` is how much of input token ``j`` reaches token ``i`` after layer ``b`` when
  attention is propagated linearly. Rows sum to 1.
* **Flow**: the layers form a graph with one node per token and layer (the input
  embeddings are layer ``a - 1``); the edge from token ``i`` in layer ``l`` to token ``j``
  in layer ``l - 1`` has capacity ``A_l[i, j]``. ``F[i, j]`` is the value of the maximum
  flow from token ``i`` after layer ``b`` to input token ``j`` (one max-flow per pair of
  tokens, as defined in the paper and its code, ``attention_graph_util.compute_node_flow``
  of github.com/samiraabnar/attention_flow). Like that code, :func:`attention_flow`
  normalises each row to sum to 1 and also keeps the raw values.

Speed: the reference code runs networkx's Edmonds-Karp on the whole graph once per token
pair (about 65 s at 16 tokens on 12 layers). Here there is one max-flow per output token:
:func:`flow_matrix` builds one SciPy CSR graph, once, that holds a separate copy of the
layers for every input token, so one call to :func:`scipy.sparse.csgraph.maximum_flow`
(Dinic's algorithm, compiled) on integer-scaled capacities (:data:`FLOW_SCALE`) gives the
exact per-pair values of a whole row. Before that, a pass over a pruned graph (each token's
16 strongest edges in the layers between the first and the last) settles, exactly, every pair
whose flow there already reaches the pair's upper bound (see :func:`flow_matrix`).
``scripts/benchmarks/bench_flow.py`` measures both against the reference on the same input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MlmtoolError
from .attention import AttentionResult

#: Longest text (tokens, special tokens included) :func:`attention_flow` accepts by default.
#: The work grows about as ``seq**4`` (``seq**2`` max-flows, each on a graph of
#: ``layers * seq**2`` edges): on 12 layers 0.1-0.2 s at 16 tokens and 4-5 s of CPU at 64
#: tokens (``scripts/benchmarks/bench_flow.py``, random and trained attention), so 128 tokens would
#: take over a minute. Rollout has no such limit.
MAX_FLOW_TOKENS = 64

#: Capacities are ``round(weight * FLOW_SCALE)`` integers (SciPy's max-flow needs integers):
#: each edge is off by at most ``0.5 / FLOW_SCALE`` (5e-7), and a flow value by at most
#: that times the edges of a minimum cut.
FLOW_SCALE = 2 ** 20

#: Edges kept per token in the first, pruned pass of :func:`flow_matrix` (see there).
PRUNE_TO = 16


@dataclass
class AttentionSummary:
    """One token x token matrix summarising the attention of a range of layers.

    Attributes:
        method: ``"rollout"`` or ``"flow"``.
        text: the user's text.
        tokens: display strings of the tokens, special tokens included (``[seq]``).
        matrix: ``float64 [seq, seq]``; ``matrix[i, j]`` is the share of input token ``j``
            in token ``i`` after the last layer of ``layers`` (row ``i`` = output token,
            column ``j`` = input token, both from 0). Every row sums to 1.
        layers: ``(first, last)``, the layers used, counted from 1 (inclusive).
        special: ``[seq]`` True for special tokens.
        model_name: the model's name, for titles.
        raw: flow only: ``float64 [seq, seq]`` maximum-flow values before the rows are
            normalised (each at most 1, in units of attention weight); None for rollout.
        notes: what the summary assumes about this model's attention (local layers; see
            :func:`summary_notes`), one line each; ``[]`` for BERT-like models.
        words: True when the matrix was aggregated to words after the summary
            (:func:`mlmtool.analysis.words.aggregate_summary`); the title then says so.
    """

    method: str
    text: str
    tokens: list[str]
    matrix: np.ndarray
    layers: tuple[int, int]
    special: list[bool]
    model_name: str = ""
    raw: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    words: bool = False

    @property
    def title(self) -> str:
        """``"Attention rollout, layers 1-12 (model)"`` (or ``"Attention flow, ..."``), with
        ``", then words"`` after the span when aggregated to words after the summary."""
        a, b = self.layers
        span = f"layer {a}" if a == b else f"layers {a}-{b}"
        name = f" ({self.model_name})" if self.model_name else ""
        then = ", then words" if self.words else ""
        return f"Attention {self.method}, {span}{then}{name}"

    def to_dict(self) -> dict:
        """A JSON-ready ``dict``: ``method``, ``text``, ``tokens``, ``layers`` ``[first, last]``
        (from 1), ``matrix`` ``[seq][seq]``, ``special``, ``model``, for flow ``raw``, and
        ``notes`` when there are any, ``words: true`` when aggregated to words."""
        out = {"method": self.method, "text": self.text, "tokens": list(self.tokens),
               "layers": [int(self.layers[0]), int(self.layers[1])],
               "matrix": np.asarray(self.matrix, dtype=float).tolist(),
               "special": [bool(s) for s in self.special], "model": self.model_name}
        if self.raw is not None:
            out["raw"] = np.asarray(self.raw, dtype=float).tolist()
        if self.notes:
            out["notes"] = list(self.notes)
        if self.words:
            out["words"] = True
        return out

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (UTF-8) to ``path`` and return the path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")
        return path


def check_layers(layers: tuple[int, int] | None, num_layers: int) -> tuple[int, int]:
    """Validate a layer range counted from 1; None means all layers ``(1, num_layers)``.

    Raises:
        MlmtoolError: ``first > last`` or a layer outside ``1..num_layers`` (``param="layers"``).
    """
    if layers is None:
        return 1, num_layers
    try:
        first, last = (int(layers[0]), int(layers[1]))
    except (TypeError, ValueError, IndexError):
        raise MlmtoolError(f"layers must be two layer numbers (first, last), got {layers!r}",
                           param="layers") from None
    if first > last:
        raise MlmtoolError(f"layers {first}-{last}: the first layer is after the last", param="layers")
    if first < 1 or last > num_layers:
        raise MlmtoolError(f"layers {first}-{last} are outside the model: its layer numbers run from 1 to {num_layers}",
                           param="layers")
    return first, last


def residual_attention(attention: np.ndarray, layers: tuple[int, int] | None = None) -> np.ndarray:
    """Head-averaged attention with the residual added: ``0.5 * W + 0.5 * I``, rows renormalised.

    Args:
        attention: ``[L, H, S, S]`` weights (rows = attending token, each sums to 1).
        layers: ``(first, last)`` counted from 1, inclusive; None = all.

    Returns:
        ``float64 [last - first + 1, S, S]``, row-stochastic (Abnar & Zuidema 2020, sec. 3).

    Raises:
        MlmtoolError: bad ``layers``.
    """
    att = np.asarray(attention, dtype=np.float64)
    if att.ndim != 4 or att.shape[2] != att.shape[3]:
        raise ValueError(f"attention must be [layers, heads, seq, seq], got shape {att.shape}")
    first, last = check_layers(layers, att.shape[0])
    mean = att[first - 1:last].mean(axis=1)  # [L', S, S]
    aug = 0.5 * mean + 0.5 * np.eye(att.shape[-1])[None]
    return aug / aug.sum(axis=-1, keepdims=True)


def rollout_matrix(aug: np.ndarray) -> np.ndarray:
    """Attention rollout of row-stochastic layer matrices (Abnar & Zuidema 2020, eq. 1).

    Args:
        aug: ``[L, S, S]``, layer 1 first (e.g. from :func:`residual_attention`).

    Returns:
        ``float64 [S, S]`` = ``aug[L-1] @ ... @ aug[1] @ aug[0]``.
    """
    out = np.asarray(aug[0], dtype=np.float64)
    for layer in aug[1:]:
        out = np.asarray(layer, dtype=np.float64) @ out
    return out


def flow_matrix(aug: np.ndarray, scale: int = FLOW_SCALE, max_edges: int = 4_000_000,
                prune_to: int = PRUNE_TO) -> np.ndarray:
    """Maximum flow from every token after the last layer to every input token.

    The graph (section "Attention flow" of Abnar & Zuidema 2020): node ``(l, i)`` for layer
    ``l = 0..L`` (0 = the input) and token ``i``; an edge ``(l, i) -> (l - 1, j)`` with
    capacity ``aug[l - 1, i, j]``. ``F[u, v]`` is the max-flow value from ``(L, u)`` to
    ``(0, v)``.

    How: one :func:`scipy.sparse.csgraph.maximum_flow` (Dinic) per output token ``u``, on
    one CSR graph built once that holds a separate copy of the middle layers for every
    input token ``v``: the source ``(L, u)`` feeds all copies, copy ``v`` drains into the
    sink only through ``v``'s edges from layer 1. The copies share no edge, so a maximum
    flow of the whole graph is a maximum flow in each copy, and the flow that leaves the
    source into copy ``v`` is exactly the max-flow value from ``(L, u)`` to ``(0, v)``.
    Between output tokens only the source's capacities are rewritten. (A plain
    super-sink joined to every input token would not do: how a maximum flow splits
    between several sinks is not unique.)

    Exact shortcut, first: no flow can exceed ``min(what (L, u) can send, what (0, v) can
    receive)`` (the two one-layer cuts), and a flow found in a subgraph is a flow of the
    graph. So the layers between the first and the last are first cut to each token's
    ``prune_to`` strongest edges; every pair whose flow there already reaches that bound
    has exactly that value, and only the other pairs are solved on the whole graph. At 64
    tokens on 12 layers the bound is reached for over 99 % of the pairs of random and of
    trained (en-mini) attention, which at least halves the time; either way the result is the same
    integer max-flow.

    Args:
        aug: ``[L, S, S]`` non-negative capacities, layer 1 first.
        scale: capacities become ``round(c * scale)`` integers (default :data:`FLOW_SCALE`);
            ``scale * S * max(c)`` must stay below ``2**31``.
        max_edges: at most this many edges per max-flow call (memory: about 40 bytes
            each); more copies than fit are solved in several calls (default 4 million:
            64 tokens x 12 layers fit in one).
        prune_to: edges kept per token in the first, pruned pass (default :data:`PRUNE_TO` = 16,
            the fastest of 4-32 on random and on trained attention at 64 tokens; 0 = skip it).

    Returns:
        ``float64 [S, S]`` flow values in the units of ``aug``, rows not normalised.
    """
    aug = np.asarray(aug, dtype=np.float64)
    L, n, _ = aug.shape
    caps = np.rint(aug * scale).astype(np.int64)
    if caps.max(initial=0) * n >= 2 ** 31:
        raise ValueError("capacities too large for int32 max-flow; lower scale")
    caps = caps.astype(np.int32)
    if L == 1:
        return caps[0] / scale  # one edge per pair: its capacity is the flow
    todo = rollout_matrix(caps > 0) > 0  # [S, S]: pairs joined by at least one path
    out = np.zeros((n, n), dtype=np.int64)
    middle = caps[1:L - 1]  # [L-2, S, S]
    if prune_to and L > 2 and n > prune_to:
        done, bound = _pruned_pass(caps, middle, todo, prune_to, max_edges)
        out[done] = bound[done]
        todo &= ~done
    if todo.any():
        found = _copies_flow(caps, middle, todo, max_edges)
        out[todo] = found[todo]
    return out / scale


def _pruned_pass(caps: np.ndarray, middle: np.ndarray, todo: np.ndarray, prune_to: int,
                 max_edges: int) -> tuple[np.ndarray, np.ndarray]:
    """The exact shortcut of :func:`flow_matrix`: max-flow with the middle layers cut to each
    token's ``prune_to`` strongest edges; a pair whose flow there reaches the one-layer cut
    bound has exactly that value.

    Returns:
        ``(done, bound)``: ``bool [S, S]`` the pairs of ``todo`` settled, and ``int64 [S, S]``
        the bound ``min(what (L, u) sends, what (0, v) receives)``, their value.
    """
    L = len(caps)
    bound = np.minimum(caps[L - 1].sum(1, dtype=np.int64)[:, None], caps[0].sum(0, dtype=np.int64)[None, :])
    drop = np.argsort(-middle, axis=-1, kind="stable")[..., prune_to:]
    pruned = middle.copy()
    np.put_along_axis(pruned, drop, 0, axis=-1)
    found = _copies_flow(caps, pruned, todo, max_edges)
    return todo & (found == bound), bound


def _middle_edges(middle: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The non-zero edges of one copy of the middle layers, as ``(rows, cols, capacities)``.

    Args:
        middle: ``int32 [L-2, S, S]``, layers 2 .. L-1 (layer ``l`` -> ``l - 1`` uses
            ``middle[l - 2]``); n: tokens ``S``.

    Returns:
        Local node ids ``int64 [edges]`` (``(l - 1) * n + i`` for token ``i`` of layer ``l``)
        and capacities ``int32 [edges]``.
    """
    rows, cols, caps = [], [], []
    for l in range(2, len(middle) + 2):
        i, j = np.nonzero(middle[l - 2])
        rows.append((l - 1) * n + i)
        cols.append((l - 2) * n + j)
        caps.append(middle[l - 2][i, j])
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(caps)


def _copies_flow(caps: np.ndarray, middle: np.ndarray, todo: np.ndarray, max_edges: int) -> np.ndarray:
    """Integer max-flow of every pair in ``todo`` (``bool [S, S]``), one copy of the graph per sink.

    Args:
        caps: ``int32 [L, S, S]``; its first layer (into the sinks) and last (out of the
            sources) are used as they are; middle: ``int32 [L-2, S, S]``, the layers between.

    Returns:
        ``int64 [S, S]`` flow values (0 outside ``todo``).
    """
    import scipy.sparse as sparse
    from scipy.sparse.csgraph import maximum_flow

    L, n, _ = caps.shape
    tokens = np.arange(n)
    # One copy of layers L-1 .. 1: local node (l - 1) * n + i for token i of layer l.
    per_copy = (L - 1) * n
    mid_rows, mid_cols, mid_caps = _middle_edges(middle, n)
    width = int(todo.sum(1).max())
    copies = int(max(1, min(width, max_edges // (len(mid_caps) + 2 * n))))
    # Global nodes: 0 = source, 1 + c * per_copy + local for copy c, the sink last.
    sink = 1 + copies * per_copy
    rows = [np.zeros(copies * n, dtype=np.int64)]
    cols = [1 + (np.arange(copies)[:, None] * per_copy + (L - 2) * n + tokens[None, :]).ravel()]
    data = [np.ones(copies * n, dtype=np.int32)]  # source capacities, rewritten per call
    for c in range(copies):
        offset = 1 + c * per_copy
        rows += [offset + mid_rows, offset + tokens]
        cols += [offset + mid_cols, np.full(n, sink)]
        data += [mid_caps, np.ones(n, dtype=np.int32)]  # layer 1 -> sink, rewritten per call
    graph = sparse.csr_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
                              shape=(sink + 1, sink + 1), dtype=np.int32)
    graph.sort_indices()
    source_at = np.arange(graph.indptr[0], graph.indptr[1])  # copy-major, tokens in order
    layer1 = 1 + (np.arange(copies)[:, None] * per_copy + tokens[None, :])  # [copies, n] nodes
    sink_at = graph.indptr[layer1 + 1] - 1  # the sink is the last column of each of their rows
    top, bottom = caps[L - 1], caps[0]
    out = np.zeros((n, n), dtype=np.int64)
    for u in range(n):
        sinks = np.nonzero(todo[u])[0]
        for first in range(0, len(sinks), copies):
            chunk = sinks[first:first + copies]
            k = len(chunk)
            source = np.zeros((copies, n), dtype=np.int32)
            source[:k] = top[u]
            drain = np.zeros((copies, n), dtype=np.int32)
            drain[:k] = bottom[:, chunk].T  # copy c drains through input token chunk[c]
            graph.data[source_at] = source.ravel()
            graph.data[sink_at] = drain
            flow = maximum_flow(graph, 0, sink, method="dinic").flow
            a, b = flow.indptr[0], flow.indptr[1]
            per = np.bincount((flow.indices[a:b] - 1) // per_copy, weights=flow.data[a:b], minlength=copies)
            out[u, chunk] = np.rint(per[:k]).astype(np.int64)
    return out


def summary_notes(result: AttentionResult, span: tuple[int, int], method: str) -> list[str]:
    """What rollout or flow assumes about ``result``'s model over layers ``span`` (from 1).

    The model's own notes (:attr:`AttentionResult.notes`) first; then, when the span has
    local sliding-window layers, that their weights are taken as computed (zero beyond the
    window), so a token reaches farther tokens only through global layers or by hops over
    several local layers, and that heads are averaged with equal weight (as for every model).
    """
    notes = list(result.notes)
    windows = result.local_window[span[0] - 1:span[1]] if result.local_window else []
    local = [span[0] + i for i, w in enumerate(windows) if w is not None]
    if local:
        w = max(x for x in windows if x is not None)
        notes.append(f"{method} takes the local layers ({', '.join(map(str, local))}: ±{w} tokens) as they compute "
                     "attention, zero beyond the window: tokens farther apart are linked only through global "
                     "layers or by hops over several local layers; heads are averaged with equal weight")
    return notes


def attention_rollout(result: AttentionResult, layers: tuple[int, int] | None = None) -> AttentionSummary:
    """Attention rollout of a text's attention (Abnar & Zuidema 2020, eq. 1).

    Args:
        result: from :func:`mlmtool.attention` (``[L, H, S, S]`` weights, no model needed).
        layers: ``(first, last)`` counted from 1, inclusive (default: all layers).

    Returns:
        An :class:`AttentionSummary` with ``method="rollout"``; rows of ``matrix`` sum to 1.

    Raises:
        MlmtoolError: ``layers`` outside the model (``param="layers"``).

    Example:
        >>> s = attention_rollout(mlmtool.attention(lm, "The cat sat."))  # doctest: +SKIP
        >>> s.matrix.shape                                                # doctest: +SKIP
        (6, 6)
    """
    span = check_layers(layers, result.num_layers)
    matrix = rollout_matrix(residual_attention(result.attention, span))
    return AttentionSummary("rollout", result.text, list(result.tokens), matrix, span,
                            list(result.special), result.model_name, notes=summary_notes(result, span, "rollout"))


def attention_flow(result: AttentionResult, layers: tuple[int, int] | None = None,
                   max_tokens: int | None = MAX_FLOW_TOKENS, normalize: bool = True) -> AttentionSummary:
    """Attention flow of a text's attention (Abnar & Zuidema 2020): max-flow per token pair.

    Args:
        result: from :func:`mlmtool.attention`.
        layers: ``(first, last)`` counted from 1, inclusive (default: all layers).
        max_tokens: refuse longer texts (default :data:`MAX_FLOW_TOKENS` = 64; the time
            grows about as ``seq**4``); None = no limit.
        normalize: divide each row by its sum, as the paper's code does (default True);
            ``raw`` keeps the values either way.

    Returns:
        An :class:`AttentionSummary` with ``method="flow"`` and ``raw`` set.

    Raises:
        MlmtoolError: ``layers`` outside the model; the text has more than ``max_tokens``
            tokens (the message names the limit, why, and rollout as the alternative).
    """
    n = len(result.tokens)
    if max_tokens is not None and n > max_tokens:
        raise MlmtoolError(
            f"attention flow takes at most {max_tokens} tokens (this text has {n}): it runs one "
            f"max-flow per token pair, so its time grows as tokens^4 (about 5 s at 64 tokens on 12 layers); "
            "use rollout for longer texts", param="max_tokens")
    span = check_layers(layers, result.num_layers)
    raw = flow_matrix(residual_attention(result.attention, span))
    matrix = raw / np.maximum(raw.sum(axis=1, keepdims=True), 1e-300) if normalize else raw.copy()
    return AttentionSummary("flow", result.text, list(result.tokens), matrix, span,
                            list(result.special), result.model_name, raw=raw,
                            notes=summary_notes(result, span, "flow"))
