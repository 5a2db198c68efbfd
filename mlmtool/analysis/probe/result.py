"""What ``mlmtool probe`` returns and keeps: :class:`ProbeConfig`, :class:`ProbeResult` and the
trained probes (:class:`TrainedProbes`, saved as ``probes.safetensors`` + ``probes.json``)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ...errors import MlmtoolError
from .config import DEFAULT_TASKS, TASKS, ProbeConfig
from .labels import LABEL_TASKS, LinearProbe
from .structural import STRUCTURAL_TASKS

#: File names in a probes folder (``-o DIR`` / ``--load DIR``).
WEIGHTS_FILE, META_FILE = "probes.safetensors", "probes.json"


def _num(v) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 4)


def main_metric(task: str) -> str:
    """The metric a task is ranked by: accuracy, UUAS (distance) or NSpr (depth)."""
    return STRUCTURAL_TASKS[task][0] if task in STRUCTURAL_TASKS else "accuracy"


@dataclass
class ProbeResult:
    """Per layer, what each probe reads from the word vectors.

    Attributes:
        model_name: the model; tasks: the tasks probed (order of :data:`TASKS`).
        layers: ``[K]`` hidden-state layers probed (0 = the embedding output).
        scores: ``[K]`` per layer ``{task: {metric: value}}``: ``accuracy``,
            ``control_accuracy``, ``selectivity`` for label tasks (the last two None without
            control), ``uuas``/``dspr`` for distance, ``root_accuracy``/``nspr`` for depth;
            fractions in [0, 1] (Spearman in [-1, 1]).
        baselines: ``{task: {"majority": accuracy}}`` for label tasks (layer 0 is the
            no-context baseline of every task).
        counts: sentences and words of train and test, and sentences left out
            (``*_skipped``: over the model's limit; ``*_unaligned``: a word with no piece),
            and ``test_unseen_<task>``: test words skipped for a label never seen in training.
        unseen_labels: ``{task: {label: test words}}`` gold labels never seen in training
            (their words are skipped: ``probe(..., ignore_unseen=True)``).
        config: the :class:`ProbeConfig` used; control: whether control tasks were run.
        probes: the trained probes (None when they were loaded from a folder).
    """

    model_name: str
    tasks: list[str]
    layers: list[int]
    scores: list[dict[str, dict[str, float | None]]]
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    unseen_labels: dict[str, dict[str, int]] = field(default_factory=dict)
    config: ProbeConfig = field(default_factory=ProbeConfig)
    control: bool = False
    probes: "TrainedProbes | None" = None

    def best(self, task: str) -> int:
        """The layer with the highest :func:`main_metric` (the lowest such layer on ties)."""
        metric = main_metric(task)
        values = [row[task].get(metric) for row in self.scores]
        values = [-math.inf if v is None or v != v else v for v in values]
        return self.layers[int(np.argmax(values))]

    def to_dict(self) -> dict:
        """JSON-ready: ``{"model", "tasks", "layers": [{"layer": l, task: {metric: v}}], "best",
        "baselines", "counts", "unseen_labels", "control", "config"}``."""
        rows = [{"layer": layer, **{t: {m: _num(v) for m, v in row[t].items()} for t in self.tasks}}
                for layer, row in zip(self.layers, self.scores)]
        return {"model": self.model_name, "tasks": list(self.tasks), "layers": rows,
                "best": {t: self.best(t) for t in self.tasks},
                "baselines": {t: {k: _num(v) for k, v in b.items()} for t, b in self.baselines.items()},
                "counts": dict(self.counts), "unseen_labels": self.unseen_labels, "control": self.control,
                "config": asdict(self.config)}

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` to ``path`` (UTF-8 JSON); returns the path; OSError if it cannot."""
        return _write_json(Path(path), self.to_dict())


def _write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


@dataclass
class TrainedProbes:
    """The probes of one run, reusable on another test file (``--load DIR``).

    Attributes:
        model_name: the model they were trained on; hidden_size, num_layers: its shape
            (checked on load).
        layers: hidden-state layers; tasks: tasks.
        labels: ``{(task, layer): LinearProbe}``; structural: ``{(task, layer): B [rank, D]}``.
    """

    model_name: str
    hidden_size: int
    num_layers: int
    tasks: list[str]
    layers: list[int]
    labels: dict[tuple[str, int], LinearProbe] = field(default_factory=dict)
    structural: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)

    def save(self, folder: str | Path) -> Path:
        """Write ``probes.safetensors`` (every weight) and ``probes.json`` (model, tasks,
        layers, class names) into ``folder``; returns the folder."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        tensors, classes = {}, {}
        for (task, layer), p in self.labels.items():
            for name in ("weight", "bias", "mean", "scale"):
                tensors[f"{task}/{layer}/{name}"] = np.ascontiguousarray(getattr(p, name), dtype=np.float32)
            classes[f"{task}/{layer}"] = p.classes
        for (task, layer), proj in self.structural.items():
            tensors[f"{task}/{layer}/proj"] = np.ascontiguousarray(proj, dtype=np.float32)
        save_file(tensors, str(folder / WEIGHTS_FILE))
        meta = {"model": self.model_name, "hidden_size": self.hidden_size, "num_layers": self.num_layers,
                "tasks": self.tasks, "layers": self.layers, "classes": classes}
        _write_json(folder / META_FILE, meta)
        return folder


def load_probes(folder: str | Path, lm) -> TrainedProbes:
    """Read probes saved by :meth:`TrainedProbes.save` for model ``lm``.

    Raises:
        MlmtoolError: no probes in ``folder``, or they were trained on another model or
            shape (``param="load"``).
    """
    from safetensors.numpy import load_file

    folder = Path(folder)
    if not (folder / META_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise MlmtoolError(f"load: '{folder}' has no saved probes ({META_FILE} and {WEIGHTS_FILE}; "
                           "write them with -o DIR)", param="load")
    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    hidden = lm.model.config.hidden_size
    if (meta["model"], meta["hidden_size"], meta["num_layers"]) != (lm.name, hidden, lm.num_layers):
        raise MlmtoolError(f"load: the probes in '{folder}' were trained on model '{meta['model']}' "
                           f"({meta['num_layers']} layers, hidden {meta['hidden_size']}), not '{lm.name}' "
                           f"({lm.num_layers} layers, hidden {hidden}); use -m {meta['model']}", param="load")
    w = load_file(str(folder / WEIGHTS_FILE))
    out = TrainedProbes(meta["model"], hidden, lm.num_layers, list(meta["tasks"]), list(meta["layers"]))
    for task in out.tasks:
        for layer in out.layers:
            key = f"{task}/{layer}"
            if task in LABEL_TASKS:
                out.labels[(task, layer)] = LinearProbe(meta["classes"][key], w[key + "/weight"], w[key + "/bias"],
                                                        w[key + "/mean"], w[key + "/scale"])
            else:
                out.structural[(task, layer)] = w[key + "/proj"]
    return out


__all__ = ["DEFAULT_TASKS", "META_FILE", "TASKS", "WEIGHTS_FILE", "ProbeConfig", "ProbeResult", "TrainedProbes",
           "load_probes", "main_metric"]
