"""Saved probes applied to one typed sentence: what each layer's probe reads from each word.

The sentence's words are the tokenizer's (:func:`mlmtool.tokens.word_ids_of`, the rule of
``mlmtool embed``; Chinese and Japanese words from the segmenter), and a word's vector is
the mean of its pieces' hidden states, as in training (:func:`.data.word_states`). The
probes are those written by ``mlmtool probe -o DIR`` (:meth:`.result.TrainedProbes.save`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import MlmtoolError
from .labels import LABEL_TASKS
from .result import TrainedProbes, load_probes

#: Tasks a single unparsed sentence can be probed for (``deprel`` needs each word's governor).
WORD_TASKS = ("upos", "xpos", "distance", "depth")

#: Alternatives kept per word for a label task.
TOP_K = 3


@dataclass
class WordPredictions:
    """Per probed layer, the saved probe's reading of each word of one sentence.

    Attributes:
        model_name: the model; text: the sentence; task: the probed task.
        words: ``[W]`` the sentence's words (surface strings).
        layers: ``[K]`` hidden-state layers (0 = the embedding output).
        labels: label tasks: ``[K][W]`` the predicted label (None for structural tasks).
        probabilities: label tasks: ``[K][W]`` its softmax probability in [0, 1].
        top: label tasks: ``[K][W]`` up to :data:`TOP_K` ``(label, probability)`` pairs,
            most probable first.
        depths: ``depth``: ``[K][W]`` the predicted depth ``‖B h_i‖²`` (tree edges to the
            root; the least deep word is the predicted root).
        distances: ``distance``: ``[K]`` predicted squared distances ``‖B(h_i − h_j)‖²``,
            ``[W][W]``; edges: ``[K]`` the minimum spanning tree of each (the predicted
            undirected tree, ``(i, j)`` word indices from 0, i < j; punctuation is kept, as
            the sentence has no gold UPOS).
    """

    model_name: str
    text: str
    task: str
    words: list[str]
    layers: list[int]
    labels: list[list[str]] | None = None
    probabilities: list[list[float]] | None = None
    top: list[list[list[tuple[str, float]]]] | None = None
    depths: list[list[float]] | None = None
    distances: list[list[list[float]]] | None = None
    edges: list[list[tuple[int, int]]] | None = None

    def to_dict(self) -> dict:
        """JSON-ready: ``{"model", "text", "task", "words", "layers": [{"layer": l, ...}]}``;
        a layer holds ``labels``, ``probabilities`` and ``top`` (``[{"label", "probability"}]``
        per word) for label tasks, ``depths`` for ``depth``, ``distances`` and ``edges`` for
        ``distance``; numbers rounded to 4 places."""
        rows = []
        for k, layer in enumerate(self.layers):
            row: dict = {"layer": layer}
            if self.labels is not None:
                row["labels"] = list(self.labels[k])
                row["probabilities"] = [round(p, 4) for p in self.probabilities[k]]
                row["top"] = [[{"label": c, "probability": round(p, 4)} for c, p in word]
                              for word in self.top[k]]
            if self.depths is not None:
                row["depths"] = [round(d, 4) for d in self.depths[k]]
            if self.distances is not None:
                row["distances"] = [[round(d, 4) for d in r] for r in self.distances[k]]
                row["edges"] = [list(e) for e in self.edges[k]]
            rows.append(row)
        return {"model": self.model_name, "text": self.text, "task": self.task, "words": list(self.words),
                "layers": rows}


def sentence_word_states(lm, text: str, layers: Sequence[int]) -> tuple[list[str], np.ndarray]:
    """One sentence's words and their vectors at ``layers``.

    Returns:
        ``(words [W], float32 [len(layers), W, D])``: each word's vector is the mean of its
        pieces' hidden states (one forward pass, :func:`mlmtool.core.forward.iter_forward`).

    Raises:
        MlmtoolError: an empty text, or one longer than the model accepts (``param="text"``).
    """
    from ...core.forward import encode, iter_forward
    from ...tokens import to_model_text, word_ids_of, word_pieces, word_strings

    try:
        encoding = encode(lm, [text])
    except MlmtoolError as exc:
        raise MlmtoolError(f"text: {exc}", param="text") from None
    groups = word_pieces(word_ids_of(encoding, 0, lm.tokenizer))
    words = word_strings(to_model_text(text, lm.mask_token), encoding, 0, lm.tokenizer)
    (item,) = iter_forward(lm, [encoding["input_ids"][0]], hidden_states=True, batch_size=1)
    states = item.hidden_states[list(layers)]  # [K, S, D]
    vectors = np.stack([states[:, g].mean(axis=1) for g in groups], axis=1)  # [K, W, D]
    return words, vectors.astype(np.float32)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _label_layer(probe, x: np.ndarray) -> tuple[list[str], list[float], list[list[tuple[str, float]]]]:
    """One label probe on ``x`` ``[W, D]``: predicted labels, their probabilities, the top-k."""
    p = _softmax(((x - probe.mean) / probe.scale) @ probe.weight.T + probe.bias)  # [W, C]
    order = np.argsort(-p, axis=1, kind="stable")[:, :TOP_K]
    top = [[(probe.classes[c], float(p[w, c])) for c in order[w]] for w in range(len(x))]
    return [t[0][0] for t in top], [t[0][1] for t in top], top


def predict_words(lm, probe_dir: str | Path | TrainedProbes, text: str, task: str = "upos",
                  layers: Sequence[int] | None = None) -> WordPredictions:
    """Apply the probes saved in ``probe_dir`` to one typed sentence, layer by layer.

    Label tasks (``upos``, ``xpos``): each word's label by the saved logistic regression,
    with its softmax probability and the :data:`TOP_K` most probable labels. ``depth``: each
    word's predicted depth; ``distance``: the predicted squared distances and their minimum
    spanning tree (Hewitt & Manning 2019; :mod:`.structural`).

    Args:
        lm: the model the probes were trained on (:func:`mlmtool.load`).
        probe_dir: a folder written by ``mlmtool probe -o DIR`` (``probes.safetensors`` +
            ``probes.json``), or probes already read (:func:`.result.load_probes`, or
            ``result.probes``), so a server reads the folder once.
        text: one sentence (``[MASK]`` becomes the model's mask token).
        task: one of :data:`WORD_TASKS` that the folder holds (default ``upos``).
        layers: hidden-state layers among the saved ones; None = every saved layer.

    Returns:
        :class:`WordPredictions`.

    Raises:
        MlmtoolError: no probes in the folder, or probes of another model (``param="load"``);
            a task or layer the folder lacks (``param="task"``/``"layers"``); an empty or
            too-long text (``param="text"``).

    Example:
        >>> predict_words(lm, "out", "The cat sat.").to_dict()["layers"][0]["labels"]  # doctest: +SKIP
        ['DET', 'NOUN', 'VERB', 'PUNCT']
    """
    from .structural import mst_edges, predict_batch

    saved = probe_dir if isinstance(probe_dir, TrainedProbes) else load_probes(probe_dir, lm)
    if saved.model_name != lm.name:
        raise MlmtoolError(f"load: these probes were trained on model '{saved.model_name}', not '{lm.name}'; "
                           f"use -m {saved.model_name}", param="load")
    layers = _check(saved, task, layers)
    words, x = sentence_word_states(lm, text, layers)
    out = WordPredictions(lm.name, text, task, words, layers)
    if task in LABEL_TASKS:
        per = [_label_layer(saved.labels[(task, layer)], x[k]) for k, layer in enumerate(layers)]
        out.labels, out.probabilities, out.top = ([p[i] for p in per] for i in range(3))
        return out
    import torch

    with torch.no_grad():
        pred = [predict_batch(torch.from_numpy(saved.structural[(task, layer)]), torch.from_numpy(x[k])[None],
                              task)[0].numpy() for k, layer in enumerate(layers)]
    if task == "depth":
        out.depths = [p.astype(float).tolist() for p in pred]
    else:
        out.distances = [p.astype(float).tolist() for p in pred]
        out.edges = [sorted(mst_edges(p)) for p in pred]
    return out


def _check(saved, task: str, layers: Sequence[int] | None) -> list[int]:
    """The layers to read; raises :class:`MlmtoolError` for a task or layer not saved."""
    if task not in WORD_TASKS:
        why = " (deprel needs each word's governor: a parsed sentence)" if task == "deprel" else ""
        raise MlmtoolError(f"task: '{task}' cannot be read from a typed sentence{why}; choose from "
                           f"{', '.join(WORD_TASKS)}", param="task")
    if task not in saved.tasks:
        raise MlmtoolError(f"task: the saved probes have no '{task}' probe (they have "
                           f"{', '.join(saved.tasks)})", param="task")
    if layers is None:
        return list(saved.layers)
    missing = sorted(set(layers) - set(saved.layers))
    if missing or not layers:
        raise MlmtoolError(f"layers: the saved probes cover layers {', '.join(map(str, saved.layers))}; "
                           f"not {', '.join(map(str, missing)) or 'none'}", param="layers")
    return sorted(set(int(v) for v in layers))


__all__ = ["TOP_K", "WORD_TASKS", "WordPredictions", "predict_words", "sentence_word_states"]
