"""Label probes: multinomial logistic regression from a layer's word vectors to a tag.

``upos`` and ``xpos`` read the word's own vector; ``deprel`` reads ``[dependent; governor]``
(the two vectors concatenated, edge probing as Tenney et al. 2019, "What do you learn from
context?", ICLR, arXiv:1905.06316); the root has no governor and is left out. The classifier
is scikit-learn's ``LogisticRegression`` (L2, ``C`` and ``solver`` from
:class:`~mlmtool.analysis.probe.ProbeConfig`) on features standardised with the training
mean and standard deviation. Only its weights are kept, so saved probes need no pickle.

Control tasks (Hewitt & Liang 2019, "Designing and Interpreting Probes with Control Tasks",
EMNLP, arXiv:1909.03368, §2): every word type (the lower-cased form; for ``deprel`` the
dependent's) gets a label drawn once from the training label distribution, the same label
wherever the type occurs, in training and test alike; the same probe is trained on those
labels. Selectivity = accuracy − control accuracy.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from .data import ProbeSentences

#: The label probes and the gold column each reads.
LABEL_TASKS = ("upos", "xpos", "deprel")


@dataclass
class LinearProbe:
    """A trained label probe: ``argmax(((x - mean) / scale) @ weight.T + bias)``.

    Attributes:
        classes: ``[C]`` the labels seen in training.
        weight: ``float32 [C, F]``; bias: ``float32 [C]``; mean, scale: ``float32 [F]`` the
            training features' standardisation (F = hidden, 2 x hidden for ``deprel``).
    """

    classes: list[str]
    weight: np.ndarray
    bias: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``int [n]`` class indices for features ``x`` ``[n, F]``."""
        z = (np.asarray(x, dtype=np.float32) - self.mean) / self.scale
        return (z @ self.weight.T + self.bias).argmax(1)

    def accuracy(self, x: np.ndarray, gold: list[str]) -> float:
        """Share of ``gold`` labels predicted (a label never seen in training counts wrong)."""
        if not len(gold):
            return float("nan")
        pred = np.array(self.classes, dtype=object)[self.predict(x)]
        return float(np.mean(pred == np.array(gold, dtype=object)))


def features(task: str, x: np.ndarray, sents: ProbeSentences) -> tuple[np.ndarray, list[str], list[str]]:
    """The probe's inputs for one layer.

    Args:
        task: one of :data:`LABEL_TASKS`; x: ``[W, D]`` the layer's word vectors.

    Returns:
        ``(features [n, F] float32, labels [n], word types [n])``: all words for
        ``upos``/``xpos`` (F = D); the non-root words for ``deprel`` (F = 2D).
    """
    x = np.asarray(x, dtype=np.float32)
    if task != "deprel":
        return x, sents.labels[task], sents.forms
    deps = np.flatnonzero(sents.heads >= 0)
    feats = np.concatenate([x[deps], x[sents.heads[deps]]], axis=1)
    return feats, [sents.labels["deprel"][d] for d in deps], [sents.forms[d] for d in deps]


def fit(x: np.ndarray, y: list[str], C: float = 1.0, solver: str = "lbfgs", max_iter: int = 200,
        seed: int = 0) -> LinearProbe:
    """Train a multinomial logistic regression (scikit-learn, L2 penalty ``1/C``).

    Args:
        x: ``float32 [n, F]`` features; y: ``[n]`` labels.

    Returns:
        :class:`LinearProbe`; a single training label gives a constant probe.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(0)
    scale = x.std(0) + 1e-6
    classes = sorted(set(y))
    F = x.shape[1]
    if len(classes) == 1:
        return LinearProbe(classes, np.zeros((1, F), np.float32), np.zeros(1, np.float32), mean, scale)
    model = LogisticRegression(C=C, solver=solver, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit((x - mean) / scale, y)
    weight, bias = model.coef_, model.intercept_
    if weight.shape[0] == 1:  # two classes: scikit-learn keeps one score, s > 0 = classes[1]
        weight, bias = np.vstack([-weight, weight]) / 2, np.concatenate([-bias, bias]) / 2
    return LinearProbe(list(model.classes_), weight.astype(np.float32), bias.astype(np.float32), mean, scale)


def control_labels(train_y: list[str], train_types: list[str], test_types: list[str], seed: int = 0
                   ) -> tuple[list[str], list[str]]:
    """Labels of the control task (Hewitt & Liang 2019 §2): one random label per word type.

    Each type of ``train_types`` ∪ ``test_types`` (sorted, so the draw is reproducible) gets
    a label drawn from the empirical distribution of ``train_y``.

    Returns:
        ``(control train labels [n_train], control test labels [n_test])``.
    """
    counts = Counter(train_y)
    labels = sorted(counts)
    p = np.array([counts[k] for k in labels], dtype=np.float64)
    types = sorted(set(train_types) | set(test_types))
    draw = np.random.default_rng(seed).choice(len(labels), size=len(types), p=p / p.sum())
    table = {t: labels[k] for t, k in zip(types, draw)}
    return [table[t] for t in train_types], [table[t] for t in test_types]


def majority_accuracy(train_y: list[str], test_y: list[str]) -> float:
    """Accuracy of always answering the most frequent training label (the majority baseline)."""
    if not test_y:
        return float("nan")
    top = Counter(train_y).most_common(1)[0][0]
    return sum(y == top for y in test_y) / len(test_y)


def unseen(train_y: list[str], test_y: list[str]) -> dict[str, int]:
    """``{label: test words}`` for test labels never seen in training (no probe can predict them)."""
    seen = set(train_y)
    return dict(Counter(y for y in test_y if y not in seen).most_common())


__all__ = ["LABEL_TASKS", "LinearProbe", "control_labels", "features", "fit", "majority_accuracy", "unseen"]
