"""What ``mlmtool serve --index DIR`` and ``--probe DIR`` add to the app: a corpus index for
the Search tab and a probe result for the Probe tab, checked once at start.

:func:`load_features` opens and checks them (the index's model must be one of the loaded
models: same weights; a probe folder must hold ``probe.json`` from ``mlmtool probe -o DIR``);
:func:`~mlmtool.server.app.create_app` puts the :class:`Features` on ``app.state.features``
and the endpoints of :mod:`.routes.search` and :mod:`.routes.probe` read it through
``Depends(features)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request

from ..errors import MlmtoolError

#: The file of ``mlmtool probe -o DIR`` the Probe tab shows (``ProbeResult.to_dict()``).
PROBE_FILE = "probe.json"


@dataclass
class Features:
    """The optional parts of one app.

    Attributes:
        index: the opened :class:`~mlmtool.analysis.corpus.store.CorpusIndex`, or None.
        index_model: the name of the loaded model with the index's weights (None without index).
        probe_dir: the ``--probe`` folder, or None; probe: its ``probe.json`` (a dict).
        probe_model: the loaded model the probes were trained on (by name), or None.
    """

    index: Any = None
    index_model: str | None = None
    probe_dir: Path | None = None
    probe: dict = field(default_factory=dict)
    probe_model: str | None = None

    def config(self) -> dict:
        """What the page needs to know: ``{"search": {...} | None, "probe": {...} | None}``."""
        search = None
        if self.index is not None:
            info = self.index.info
            search = {"model": self.index_model, "layers": list(info.layers), "words": info.words,
                      "sentences": info.sentences, "conllu": bool(info.conllu)}
        probe = None
        if self.probe_dir is not None:
            predict = self.probe_model is not None and can_predict()
            probe = {"model": self.probe_model, "predict": predict,
                     "word_tasks": [t for t in self.probe.get("tasks", []) if t in word_tasks()] if predict else []}
        return {"search": search, "probe": probe}


def can_predict() -> bool:
    """Whether this mlmtool can apply saved probes to a sentence (``probe.predict_words``)."""
    from ..analysis import probe

    try:
        return callable(getattr(probe, "predict_words"))
    except AttributeError:
        return False


def word_tasks() -> tuple[str, ...]:
    """The probe tasks a typed sentence can be read for (``probe.predict.WORD_TASKS``)."""
    from ..analysis.probe.predict import WORD_TASKS

    return WORD_TASKS


def _index_model(index, models: dict[str, Any]) -> str:
    """The first loaded model with the index's encoder weights.

    Raises:
        MlmtoolError: none of them (the index's model and the loaded ones named).
    """
    from ..analysis.corpus.store import weights_hash

    for name, lm in models.items():
        if weights_hash(lm) == index.info.model_hash:
            return name
    raise MlmtoolError(f"--index: '{index.path}' was made by model '{index.info.model}', which is not loaded "
                       f"(loaded: {', '.join(models)}); add -m {index.info.model}", param="index")


def _read_probe(folder: Path) -> dict:
    """``probe.json`` of a ``mlmtool probe -o DIR`` folder.

    Raises:
        MlmtoolError: no folder, no or unreadable ``probe.json``, not a probe result.
    """
    path = folder / PROBE_FILE
    if not folder.is_dir():
        raise MlmtoolError(f"--probe: no folder '{folder}'", param="probe")
    if not path.is_file():
        raise MlmtoolError(f"--probe: '{folder}' has no {PROBE_FILE} (write one with mlmtool probe ... -o DIR)",
                           param="probe")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MlmtoolError(f"--probe: '{path}' is not JSON ({str(exc).splitlines()[0]})", param="probe") from None
    if not (isinstance(data, dict) and isinstance(data.get("layers"), list) and isinstance(data.get("tasks"), list)):
        raise MlmtoolError(f"--probe: '{path}' is not the probe.json of mlmtool probe", param="probe")
    return data


def load_features(models: dict[str, Any], index: str | Path | None = None,
                  probe: str | Path | None = None) -> Features:
    """Open and check ``--index`` and ``--probe`` against the loaded ``models``.

    Args:
        models: ``{name: LoadedModel}`` of the app.
        index: an ``mlmtool index`` folder, or None.
        probe: an ``mlmtool probe -o`` folder, or None.

    Returns:
        :class:`Features`.

    Raises:
        MlmtoolError: an index that is not one (or partial), made by a model that is not
            loaded; a probe folder without a readable ``probe.json``. One line each.
    """
    out = Features()
    if index is not None:
        from ..analysis.corpus.store import load_index

        out.index = load_index(index)
        out.index_model = _index_model(out.index, models)
    if probe is not None:
        out.probe_dir = Path(probe)
        out.probe = _read_probe(out.probe_dir)
        by_lm_name = {lm.name: name for name, lm in models.items()}
        model = out.probe.get("model")
        out.probe_model = model if model in models else by_lm_name.get(model)
    return out


async def features(request: Request) -> Features:
    """The dependency of the search and probe endpoints: the app's :class:`Features`."""
    return request.app.state.features
