"""``mlmtool serve``: the toolkit as a local web app (FastAPI under uvicorn).

* :mod:`mlmtool.server.app`: :func:`create_app` (the JSON API and the page around models
  that are already loaded);
* :mod:`mlmtool.server.routes`: the endpoints, one ``APIRouter`` per group;
* :mod:`mlmtool.server.schemas`: the request bodies and :class:`Limits`;
* :mod:`mlmtool.server.state`: what the endpoints share (models, gates, the SHAP queue);
* :mod:`mlmtool.server.handlers`: every error as JSON; :mod:`mlmtool.server.guard`: the
  Host, size and content-type checks before routing;
* :mod:`mlmtool.server.worker`: who runs a model when (a gate per model, SHAP on its own
  bounded worker);
* :mod:`mlmtool.server.page`: the page (the static view's template and scripts, plus
  ``app.js``) and the offline API docs.

Needs the ``serve`` extra: ``pip install 'mlmtool[serve]'`` (fastapi, uvicorn).
"""

from __future__ import annotations

from .app import Limits, create_app

__all__ = ["Limits", "create_app"]
