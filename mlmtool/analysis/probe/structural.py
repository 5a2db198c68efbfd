"""The structural probe (Hewitt & Manning 2019, "A Structural Probe for Finding Syntax in
Word Representations", NAACL, https://aclanthology.org/N19-1419; conventions of their code,
github.com/john-hewitt/structural-probes: ``probe.py``, ``loss.py``, ``reporter.py``).

A linear map ``B`` (``[rank, D]``, rank 128 by default) is trained so that

* ``distance``: the squared distance ``‖B(h_i − h_j)‖²`` approximates the tree distance
  ``d_T(w_i, w_j)`` (edges on the path between the two words);
* ``depth``: the squared norm ``‖B h_i‖²`` approximates the word's depth in the tree.

Loss (their ``L1DistanceLoss`` / ``L1DepthLoss``): per sentence of ``n`` words the L1 error
summed over word pairs and divided by ``n²`` (over words, divided by ``n`` for depth), then
averaged over the batch's sentences. Training (:func:`fit`): Adam at 0.001, ``B``
initialised uniform in [−0.05, 0.05], batches of 20 sentences, up to 40 epochs with the
rate cut tenfold whenever the held-out loss does not improve and early stopping after 5
such epochs, the best ``B`` kept: their ``regimen.py`` and NAACL 2019 configs.

Metrics (their ``reporter.py``): **UUAS** — the minimum spanning tree of the predicted
distances over the non-punctuation words (Prim's algorithm), the share of gold undirected
arcs between two non-punctuation words it contains, pooled over the corpus; **DSpr** — per
word, the Spearman correlation of its predicted and gold distances to all words of its
sentence, averaged per sentence length, then over the lengths 5–50; **root accuracy** — the
non-punctuation word of least predicted depth is the gold root (the non-punctuation word of
least gold depth); **NSpr** — per sentence, the Spearman correlation of predicted and gold
depths, averaged as DSpr. Punctuation is UPOS ``PUNCT``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np

from .data import PUNCT, ProbeSentences, tree_depths, tree_distances

#: The structural tasks and their metrics, the first being the one ranked in tables.
STRUCTURAL_TASKS = {"distance": ("uuas", "dspr"), "depth": ("nspr", "root_accuracy")}

#: Sentence lengths averaged by DSpr and NSpr (Hewitt & Manning 2019 §3.1).
SPEARMAN_LENGTHS = (5, 50)


def distance_loss(pred, gold, lengths):
    """Their ``L1DistanceLoss``: ``mean_s  Σ_ij |pred − gold| / n_s²`` over valid pairs.

    Args:
        pred: ``Tensor [B, n, n]`` predicted squared distances; gold: ``[B, n, n]`` tree
            distances, −1 on padding; lengths: ``[B]`` words per sentence.

    Returns:
        A scalar tensor.
    """
    valid = (gold != -1).float()
    per_sent = ((pred - gold).abs() * valid).sum(dim=(1, 2)) / lengths.float().pow(2)
    return per_sent.sum() / (lengths != 0).sum().float()


def depth_loss(pred, gold, lengths):
    """Their ``L1DepthLoss``: ``mean_s  Σ_i |pred − gold| / n_s``; shapes ``[B, n]``, gold −1
    on padding."""
    valid = (gold != -1).float()
    per_sent = ((pred - gold).abs() * valid).sum(dim=1) / lengths.float()
    return per_sent.sum() / (lengths != 0).sum().float()


def predict_batch(proj, x, kind: str):
    """``‖B(h_i − h_j)‖²`` ``[B, n, n]`` (distance) or ``‖B h_i‖²`` ``[B, n]`` (depth).

    Args:
        proj: ``Tensor [rank, D]``; x: ``Tensor [B, n, D]`` padded word vectors.
    """
    return from_projected(x @ proj.T, kind)


def from_projected(t, kind: str):
    """:func:`predict_batch` from the projected vectors ``t = x Bᵀ`` ``[B, n, rank]``."""
    sq = (t * t).sum(-1)
    if kind == "depth":
        return sq
    return (sq[:, :, None] + sq[:, None, :] - 2 * t @ t.transpose(1, 2)).clamp_min(0)


def gold_targets(sents: ProbeSentences, kind: str) -> list[np.ndarray]:
    """Per sentence the gold tree distances ``[n, n]`` or depths ``[n]`` (float32)."""
    out = []
    for i in range(len(sents)):
        a, b = sents.offsets[i], sents.offsets[i + 1]
        heads = np.where(sents.heads[a:b] >= 0, sents.heads[a:b] - a, -1)
        out.append(tree_distances(heads) if kind == "distance" else tree_depths(heads))
    return out


def _batch(gold: Sequence[np.ndarray], offsets: np.ndarray, idx: Sequence[int]):
    """One batch of sentences ``idx``: ``(words [N], slots [N], gold [B, n(, n)] with −1
    padding, lengths [B])``; word ``words[k]`` (an index into all words) goes to row
    ``slots[k]`` of the padded ``[B * n]`` layout."""
    import torch

    lengths = torch.tensor([int(offsets[i + 1] - offsets[i]) for i in idx])
    n = int(lengths.max())
    words = torch.from_numpy(np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in idx]))
    slots = torch.from_numpy(np.concatenate([r * n + np.arange(int(k)) for r, k in enumerate(lengths)]))
    gb = torch.full((len(idx), n) + ((n,) if gold[idx[0]].ndim == 2 else ()), -1.0)
    for r, i in enumerate(idx):
        k = int(lengths[r])
        gb[(r, slice(0, k), slice(0, k)) if gb.ndim == 3 else (r, slice(0, k))] = torch.from_numpy(gold[i])
    return words, slots, gb, lengths


def _batch_loss(proj, xt, batch, kind: str):
    """The loss of one :func:`_batch`: only real words are projected (padding stays zero)."""
    import torch

    words, slots, gb, lengths = batch
    t = torch.zeros(gb.shape[0] * gb.shape[1], proj.shape[0]).index_copy(0, slots, xt[words] @ proj.T)
    pred = from_projected(t.view(gb.shape[0], gb.shape[1], -1), kind)
    return (distance_loss if kind == "distance" else depth_loss)(pred, gb, lengths)


def fit(x: np.ndarray, sents: ProbeSentences, kind: str, gold: Sequence[np.ndarray], rank: int = 128,
        epochs: int = 40, lr: float = 1e-3, batch_sentences: int = 20, seed: int = 0,
        dev_fraction: float = 0.1) -> np.ndarray:
    """Train a structural probe on one layer, with the training regimen of Hewitt & Manning's
    code (``regimen.py``: ``ProbeRegimen.train_until_convergence``).

    Adam (``lr`` 0.001); after each epoch the loss on held-out sentences (the dev set of
    their regimen: here a seeded ``dev_fraction`` of the training sentences, at least one,
    none when there are fewer than 10) sets the rate (``ReduceLROnPlateau``, factor 0.1,
    patience 0), the ``B`` of least dev loss is kept (an improvement is > 1e-4), and training
    stops after 5 epochs without one or after ``epochs`` (40, theirs). Without held-out
    sentences every epoch runs and the last ``B`` is returned.

    Args:
        x: ``[W, D]`` the layer's word vectors; sents: their sentences; kind: ``"distance"``
            or ``"depth"``; gold: :func:`gold_targets` of ``sents``; rank: rows of ``B``;
            epochs: at most this many passes over the sentences (shuffled, seeded); lr:
            Adam's learning rate; batch_sentences: sentences per step; dev_fraction: share
            of sentences held out for the stopping rule.

    Returns:
        ``float32 [rank, D]`` the trained ``B``.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    xt = torch.from_numpy(np.asarray(x, dtype=np.float32))
    proj = torch.empty(rank, xt.shape[1]).uniform_(-0.05, 0.05, generator=gen).requires_grad_()
    opt = torch.optim.Adam([proj], lr=lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.1, patience=0)
    order = torch.randperm(len(sents), generator=gen).tolist()
    n_dev = max(1, int(round(dev_fraction * len(order)))) if len(order) >= 10 and dev_fraction > 0 else 0
    dev, train = order[:n_dev], order[n_dev:]
    best, best_loss, best_epoch = proj.detach().clone(), float("inf"), -1
    for epoch in range(epochs):
        perm = [train[i] for i in torch.randperm(len(train), generator=gen).tolist()]
        for k in range(0, len(perm), batch_sentences):
            opt.zero_grad()
            _batch_loss(proj, xt, _batch(gold, sents.offsets, perm[k:k + batch_sentences]), kind).backward()
            opt.step()
        if not dev:
            best = proj.detach().clone()
            continue
        dev_loss = _mean_loss(proj, xt, gold, sents.offsets, dev, kind, batch_sentences)
        sched.step(dev_loss)
        if dev_loss < best_loss - 1e-4:
            best, best_loss, best_epoch = proj.detach().clone(), dev_loss, epoch
        elif best_epoch < epoch - 4:
            break
    return best.numpy()


def _mean_loss(proj, xt, gold, offsets, idx: list[int], kind: str, batch_sentences: int) -> float:
    """The loss per sentence averaged over the sentences ``idx`` (no gradient)."""
    import torch

    total = 0.0
    with torch.no_grad():
        for k in range(0, len(idx), batch_sentences):
            batch = idx[k:k + batch_sentences]
            total += float(_batch_loss(proj, xt, _batch(gold, offsets, batch), kind)) * len(batch)
    return total / len(idx)


def predict(proj: np.ndarray, x: np.ndarray, sents: ProbeSentences, kind: str) -> list[np.ndarray]:
    """Per sentence the predicted squared distances ``[n, n]`` or depths ``[n]`` (float32)."""
    import torch

    p = torch.from_numpy(np.asarray(proj, dtype=np.float32))
    out = []
    with torch.no_grad():
        for i in range(len(sents)):
            xs = torch.from_numpy(np.asarray(x[sents.offsets[i]:sents.offsets[i + 1]], dtype=np.float32))
            out.append(predict_batch(p, xs[None], kind)[0].numpy())
    return out


def mst_edges(dist: np.ndarray) -> set[tuple[int, int]]:
    """Prim's minimum spanning tree of a dense symmetric ``[n, n]`` matrix: ``{(i, j)}``, i < j."""
    n = len(dist)
    if n < 2:
        return set()
    inside = np.zeros(n, dtype=bool)
    inside[0] = True
    best = dist[0].astype(np.float64).copy()
    link = np.zeros(n, dtype=np.int64)
    edges = set()
    for _ in range(n - 1):
        cand = np.where(inside, np.inf, best)
        j = int(cand.argmin())
        edges.add((min(j, int(link[j])), max(j, int(link[j]))))
        inside[j] = True
        closer = dist[j] < best
        best = np.where(closer, dist[j], best)
        link = np.where(closer, j, link)
    return edges


def _sentence(sents: ProbeSentences, i: int) -> tuple[np.ndarray, np.ndarray]:
    """``(heads [n] within the sentence, -1 = root; non-punctuation mask [n])``."""
    a, b = sents.offsets[i], sents.offsets[i + 1]
    heads = np.where(sents.heads[a:b] >= 0, sents.heads[a:b] - a, -1)
    keep = np.array([t != PUNCT for t in sents.labels["upos"][a:b]])
    return heads, keep


def uuas(pred: Sequence[np.ndarray], sents: ProbeSentences) -> float:
    """Undirected unlabelled attachment score of the predicted distances' MST (pooled)."""
    right = total = 0
    for i, d in enumerate(pred):
        heads, keep = _sentence(sents, i)
        words = np.flatnonzero(keep)
        gold = {(min(w, h), max(w, h)) for w, h in enumerate(heads) if h >= 0 and keep[w] and keep[h]}
        found = {(int(words[a]), int(words[b])) for a, b in mst_edges(d[np.ix_(words, words)])}
        right += len(gold & found)
        total += len(gold)
    return right / total if total else float("nan")


def _spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair of ``a``, ``b`` (``[k, n]``; ties get mean ranks)."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a, axis=-1), rankdata(b, axis=-1)
    ra -= ra.mean(-1, keepdims=True)
    rb -= rb.mean(-1, keepdims=True)
    den = np.sqrt((ra * ra).sum(-1) * (rb * rb).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (ra * rb).sum(-1) / den, np.nan)


def _by_length(rhos_per_sentence: Sequence[np.ndarray], lengths: Sequence[int]) -> float:
    """Mean per sentence length, then mean over the lengths in :data:`SPEARMAN_LENGTHS`."""
    groups: dict[int, list[float]] = defaultdict(list)
    lo, hi = SPEARMAN_LENGTHS
    for rhos, n in zip(rhos_per_sentence, lengths):
        if lo <= n <= hi:
            groups[n].extend(r for r in np.atleast_1d(rhos).tolist() if r == r)
    means = [np.mean(v) for v in groups.values() if v]
    return float(np.mean(means)) if means else float("nan")


def dspr(pred: Sequence[np.ndarray], gold: Sequence[np.ndarray]) -> float:
    """Distance Spearman: per word, its predicted vs gold distances; see the module doc."""
    return _by_length([_spearman_rows(p, g) for p, g in zip(pred, gold)], [len(g) for g in gold])


def nspr(pred: Sequence[np.ndarray], gold: Sequence[np.ndarray]) -> float:
    """Depth Spearman: per sentence, predicted vs gold depths; see the module doc."""
    return _by_length([_spearman_rows(p[None], g[None]) for p, g in zip(pred, gold)], [len(g) for g in gold])


def root_accuracy(pred: Sequence[np.ndarray], gold: Sequence[np.ndarray], sents: ProbeSentences) -> float:
    """Share of sentences whose least-deep predicted non-punctuation word is the gold root."""
    right = total = 0
    for i, (p, g) in enumerate(zip(pred, gold)):
        _, keep = _sentence(sents, i)
        if not keep.any():
            continue
        words = np.flatnonzero(keep)
        right += int(words[p[words].argmin()] == words[g[words].argmin()])
        total += 1
    return right / total if total else float("nan")


def evaluate(kind: str, pred: Sequence[np.ndarray], gold: Sequence[np.ndarray], sents: ProbeSentences
             ) -> dict[str, float]:
    """The task's metrics (:data:`STRUCTURAL_TASKS`): ``{"uuas", "dspr"}`` or ``{"nspr", "root_accuracy"}``."""
    if kind == "distance":
        return {"uuas": uuas(pred, sents), "dspr": dspr(pred, gold)}
    return {"nspr": nspr(pred, gold), "root_accuracy": root_accuracy(pred, gold, sents)}


__all__ = ["SPEARMAN_LENGTHS", "STRUCTURAL_TASKS", "depth_loss", "distance_loss", "dspr", "evaluate", "fit",
           "from_projected", "gold_targets", "mst_edges", "nspr", "predict", "predict_batch", "root_accuracy", "uuas"]
