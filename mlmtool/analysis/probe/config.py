"""The probe's tasks and training settings: plain data, light to import (the command line
reads them for its options without importing NumPy or scikit-learn)."""

from __future__ import annotations

from dataclasses import dataclass

#: Every task, in table order; the default set (``xpos`` is asked for by name).
TASKS = ("upos", "xpos", "deprel", "distance", "depth")
DEFAULT_TASKS = ("upos", "deprel", "distance", "depth")


@dataclass
class ProbeConfig:
    """Training settings (the command line shows the ones it exposes).

    Attributes:
        C: inverse L2 strength of the label probes (scikit-learn ``LogisticRegression``,
            default 1.0); solver: its solver (``"lbfgs"``, multinomial); max_iter: its
            iterations (100).
        rank: rows of the structural probe's ``B`` (128; Hewitt & Manning 2019 find 64–128
            enough); epochs: at most this many passes of Adam over the training sentences
            (40, theirs); lr: Adam's rate (1e-3, theirs, cut tenfold when the held-out loss
            stalls); batch_sentences: sentences per step (20, theirs); dev_fraction: share
            of the training sentences held out for that rule and for early stopping after
            5 epochs without improvement (0.1; their regimen uses the treebank's dev set,
            see :func:`mlmtool.analysis.probe.structural.fit`).
        seed: control-task draw and structural-probe initialisation and shuffling.
        batch_size: sentences per forward pass.
    """

    C: float = 1.0
    solver: str = "lbfgs"
    max_iter: int = 100
    rank: int = 128
    epochs: int = 40
    lr: float = 1e-3
    batch_sentences: int = 20
    dev_fraction: float = 0.1
    seed: int = 0
    batch_size: int = 32


__all__ = ["DEFAULT_TASKS", "TASKS", "ProbeConfig"]
