"""The web app of ``mlmtool serve``: a JSON API and one page, on the same library as the CLI.

:func:`create_app` takes models that are already loaded (``{name: LoadedModel}``) and
returns a FastAPI application; ``mlmtool serve`` runs it under uvicorn, tests drive it with
FastAPI's ``TestClient``. The endpoints (listed by ``GET /docs`` and ``/openapi.json``) live
in :mod:`mlmtool.server.routes`, one router per group; every answer is computed by the
library functions the command line uses and serialised by the same ``to_dict()``.

Safety rules (a server, even on localhost): no request names a file or a model that was not
loaded at start (:mod:`~mlmtool.server.schemas`: unknown fields are refused; :class:`Limits`);
bodies must be small JSON and the Host header one of ``allowed_hosts``
(:mod:`~mlmtool.server.guard`); no CORS header is sent unless ``cors`` names origins. Every
error is JSON ``{"error": message}`` (:mod:`~mlmtool.server.handlers`). Who runs a model
when: :mod:`mlmtool.server.worker`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from .features import load_features
from .guard import Guard
from .handlers import register_error_handlers
from .page import page_html
from .routes import ROUTERS
from .schemas import Limits, PredictRequest
from .state import build_state

__all__ = ["LOOPBACK_HOSTS", "Limits", "PredictRequest", "create_app"]

#: Host names a loopback server answers to (the Host header, port removed).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

DESCRIPTION = ("The mlmtool toolkit over HTTP: predictions, attention, layer-wise predictions, scores, "
               "comparisons, embeddings, head analyses, SHAP explanations, probes and corpus search for "
               "the models loaded at start. Every answer is the JSON the "
               "command line prints with --json. Errors are JSON {\"error\": message}.")


def create_app(models: dict[str, Any], *, heads: dict[str, Any] | None = None,
               cors: list[str] | tuple[str, ...] | None = None, limits: Limits | None = None,
               allowed_hosts: list[str] | tuple[str, ...] | None = LOOPBACK_HOSTS,
               index: str | Path | None = None, probe: str | Path | None = None) -> FastAPI:
    """Build the web app around models that are already loaded.

    Args:
        models: ``{name: LoadedModel}``, the only models requests can use; the first is
            the default. Names are what requests and the page's model switcher say.
        heads: ``{name: heads.json object}`` (e.g. from ``mlmtool heads``) per model, served
            by ``/api/heads`` and used to label the heads on the page; None = none.
        cors: origins allowed to call the API from other pages (``["http://localhost:3000"]``);
            None (default) sends no CORS header at all.
        limits: request limits (default :class:`Limits`).
        allowed_hosts: Host header values answered (port ignored; ``None`` = any, for a
            server bound to a public interface). Default: the loopback names.
        index: an ``mlmtool index`` folder for the Search tab and ``/api/search``; its model
            must be one of ``models`` (same weights). None = no search.
        probe: an ``mlmtool probe -o`` folder for the Probe tab and ``/api/probe``. None = none.

    Returns:
        A ``fastapi.FastAPI`` (ASGI) application; ``app.state.server`` is its
        :class:`~mlmtool.server.state.ServerState`, ``app.state.gates[name]`` each model's
        :class:`~mlmtool.server.worker.ModelGate`, ``app.state.jobs`` the SHAP queue,
        ``app.state.features`` the :class:`~mlmtool.server.features.Features` (index, probe).

    Raises:
        MlmtoolError: no models, or heads for a model that is not loaded, or heads that
            name heads outside their model; an index made by a model that is not loaded, or
            a folder that is not an index (or partial); a probe folder without probe.json.
    """
    state = build_state(models, heads, limits or Limits())
    features = load_features(state.models, index, probe)
    state.page = page_html(state.models, state.default, state.limits, heads=tuple(state.heads), features=features)
    app = FastAPI(title="mlmtool serve", version=_version(), docs_url=None, redoc_url=None,
                  description=DESCRIPTION)
    app.state.server = state
    app.state.models, app.state.gates, app.state.jobs, app.state.limits = \
        state.models, state.gates, state.jobs, state.limits
    app.state.features = features
    for router in ROUTERS:
        app.include_router(router)
    register_error_handlers(app)
    # middleware: pure ASGI, the last added is the outermost
    app.add_middleware(Guard, limits=state.limits, allowed_hosts=allowed_hosts)
    if cors:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors), allow_methods=["GET", "POST"],
                           allow_headers=["Content-Type"])
    return app


def _version() -> str:
    from .. import __version__

    return __version__
