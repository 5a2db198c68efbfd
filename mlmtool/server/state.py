"""What every endpoint shares: the loaded models, their gates, the SHAP queue and the limits.

:func:`build_state` makes one :class:`ServerState` per app; :func:`~mlmtool.server.app.create_app`
puts it on ``app.state.server`` and endpoints receive it through ``Depends(server_state)``
(a unit test passes one directly).
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Iterator

from fastapi import Request

from ..errors import MlmtoolError
from .handlers import ApiError
from .schemas import Limits
from .batcher import BATCH_WINDOW_S, MAX_BATCH, Batcher
from .worker import ExplainJobs, ModelGate, guarded


@dataclass
class ServerState:
    """The app's shared state.

    Attributes:
        models: ``{name: LoadedModel}``; default: the name of the first one.
        limits: the request limits.
        gates: ``{name: ModelGate}``, one per model (:mod:`mlmtool.server.worker`).
        batchers: ``{name: Batcher}``, one per model, over its gate (:mod:`mlmtool.server.batcher`);
            :meth:`batched` runs a request through it.
        jobs: the SHAP job queue (its worker runs :func:`run_explain`).
        heads: ``{name: heads.json object}`` given at start; labels: ``{name: {"L1H2": label}}``.
        page: the HTML of ``GET /``.
    """

    models: dict[str, Any]
    default: str
    limits: Limits
    gates: dict[str, ModelGate]
    jobs: ExplainJobs
    heads: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    page: str = ""
    batchers: dict[str, Batcher] = field(default_factory=dict)

    def pick(self, name: str | None) -> tuple[str, Any, ModelGate]:
        """``(name, LoadedModel, gate)`` of a loaded model (None: the default one).

        Raises:
            ApiError: (400) the model is not loaded.
        """
        if name is None:
            name = self.default
        if name not in self.models:
            raise ApiError(400, f"model '{name}' is not loaded; this server has: {', '.join(self.models)}",
                           "model")
        return name, self.models[name], self.gates[name]

    def batched(self, name: str, key, payload, compute):
        """``compute``'s answer for ``payload``, batched with concurrent requests of the same
        ``key`` for model ``name`` (:meth:`Batcher.run <mlmtool.server.batcher.Batcher.run>`).

        Raises:
            BusyError: too many requests wait (429) or the server is stopping (503); whatever
                ``compute`` raises for this payload.
        """
        batcher = self.batchers.get(name)
        if batcher is None:  # a state built by hand (tests): the defaults (setdefault: one wins a race)
            batcher = self.batchers.setdefault(name, Batcher(self.gates[name], max_waiting=self.limits.max_waiting))
        return batcher.run(key, payload, compute)

    @contextmanager
    def hold_all(self, *names: str) -> Iterator[None]:
        """Hold the gates of several models, always in name order (no deadlock)."""
        with ExitStack() as stack:
            for n in sorted(set(names)):
                stack.enter_context(self.gates[n].hold())
            yield


def run_explain(job, on_call, *, models: dict[str, Any], gates: dict[str, ModelGate]) -> dict:
    """The SHAP job of ``POST /api/explain``: :func:`mlmtool.explain` on the job's model,
    which takes the model's gate for each call (:func:`~mlmtool.server.worker.guarded`).

    Returns:
        ``ExplainResult.to_dict()``.

    Raises:
        MlmtoolError: the library's refusal (the job's error message).
    """
    from ..analysis.explain import explain

    p = job.params
    lm = guarded(models[job.model], gates[job.model], on_call)
    return explain(lm, p["text"], target=p["target"], mask_index=p["mask"], max_evals=p["max_evals"],
                   seed=p["seed"], progress=False).to_dict()


def build_state(models: dict[str, Any], heads: dict[str, Any] | None, limits: Limits, *,
                batch_window: float = BATCH_WINDOW_S, max_batch: int = MAX_BATCH) -> ServerState:
    """The state of an app around ``models`` (see :func:`~mlmtool.server.app.create_app`).

    ``batch_window`` (seconds) and ``max_batch`` (requests) tune every model's
    :class:`~mlmtool.server.batcher.Batcher`; ``max_batch=1`` turns batching off.

    Raises:
        MlmtoolError: no models, heads for a model that is not loaded, or heads that name
            heads outside their model.
    """
    from ..render.html_view import head_labels_from
    from .page import page_html

    if not models:
        raise MlmtoolError("create_app needs at least one loaded model", param="models")
    models, heads = dict(models), dict(heads or {})
    default = next(iter(models))
    labels: dict[str, dict[str, str]] = {}
    for name, obj in heads.items():
        if name not in models:
            raise MlmtoolError(f"heads given for model '{name}', which is not loaded", param="heads")
        labels[name] = head_labels_from(obj, models[name].num_layers, models[name].num_heads)
    gates = {name: ModelGate(limits.max_waiting) for name in models}
    batchers = {name: Batcher(gate, window=batch_window, max_batch=max_batch, max_waiting=limits.max_waiting)
                for name, gate in gates.items()}
    jobs = ExplainJobs(partial(run_explain, models=models, gates=gates), max_jobs=limits.max_explain_jobs)
    return ServerState(models=models, default=default, limits=limits, gates=gates, jobs=jobs,
                       heads=heads, labels=labels, page=page_html(models, default, limits), batchers=batchers)


async def server_state(request: Request) -> ServerState:
    """The dependency of every endpoint: the :class:`ServerState` of the app serving ``request``."""
    return request.app.state.server
