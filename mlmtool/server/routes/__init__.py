"""The endpoints, one :class:`fastapi.APIRouter` per group, each in its own module.

Every endpoint is a plain function of its request body and the app's
:class:`~mlmtool.server.state.ServerState` (``Depends(server_state)``), so a test can call
it alone. :data:`ROUTERS` is what :func:`~mlmtool.server.app.create_app` includes, in order.

An endpoint's docstring opens with what the API answers (FastAPI shows it in the OpenAPI
schema); a form feed (``\\f``) ends that part, and what follows (the errors raised, in
Python's terms) stays out of the schema.
"""

from __future__ import annotations

from . import attention, compare, embed, explain, fill, heads, layers, models, pages, probe, score, search

#: Every router of the app: pages, then the JSON API.
ROUTERS = (pages.router, models.router, fill.router, attention.router, layers.router, embed.router, score.router,
           compare.router, heads.router, explain.router, search.router, probe.router)
