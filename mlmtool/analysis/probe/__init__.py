"""What each layer's word vectors encode: label probes with control tasks, and the structural probe.

* :mod:`.data` — CoNLL-U sentences flattened to words, each word's vector per layer.
* :mod:`.labels` — ``upos``/``xpos``/``deprel``: logistic regression (Tenney et al. 2019
  edge probing for ``deprel``); control tasks and selectivity (Hewitt & Liang 2019).
* :mod:`.structural` — ``distance``/``depth``: the structural probe, UUAS, DSpr, root
  accuracy, NSpr (Hewitt & Manning 2019).
* :mod:`.result` — :class:`ProbeResult`, :class:`ProbeConfig`, saved probes.
* :mod:`.run` — :func:`probe`, the one entry point.
"""

from __future__ import annotations

from .result import DEFAULT_TASKS, TASKS, ProbeConfig, ProbeResult, TrainedProbes, load_probes
from .run import probe

__all__ = ["DEFAULT_TASKS", "TASKS", "ProbeConfig", "ProbeResult", "TrainedProbes", "load_probes", "probe"]
