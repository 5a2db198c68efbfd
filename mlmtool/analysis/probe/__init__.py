"""What each layer's word vectors encode: label probes with control tasks, and the structural probe.

* :mod:`.data` — CoNLL-U sentences flattened to words, each word's vector per layer.
* :mod:`.labels` — ``upos``/``xpos``/``deprel``: logistic regression (Tenney et al. 2019
  edge probing for ``deprel``); control tasks and selectivity (Hewitt & Liang 2019).
* :mod:`.structural` — ``distance``/``depth``: the structural probe, UUAS, DSpr, root
  accuracy, NSpr (Hewitt & Manning 2019).
* :mod:`.config` — the tasks and :class:`ProbeConfig` (light).
* :mod:`.result` — :class:`ProbeResult`, saved probes.
* :mod:`.run` — :func:`probe`, the one entry point.
* :mod:`.predict` — :func:`predict_words`: saved probes read one typed sentence.
"""

from __future__ import annotations

import importlib

from .config import DEFAULT_TASKS, TASKS, ProbeConfig

_LAZY = {"ProbeResult": ".result", "TrainedProbes": ".result", "load_probes": ".result", "probe": ".run",
         "WordPredictions": ".predict", "predict_words": ".predict"}


def __getattr__(name: str):
    """The heavy names (NumPy, scikit-learn, torch) are imported on first use (PEP 562)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["DEFAULT_TASKS", "TASKS", "ProbeConfig", "ProbeResult", "TrainedProbes", "WordPredictions", "load_probes",
           "predict_words", "probe"]
