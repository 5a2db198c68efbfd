"""``GET /api/models`` (what is loaded, and the limits) and ``GET /api/heads`` (heads.json)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends, Query

from ..handlers import ApiError
from ..state import ServerState, server_state

router = APIRouter()


@router.get("/api/models", summary="The loaded models and the server's limits")
def api_models(state: ServerState = Depends(server_state)):
    """``{default, limits, models: [{name, layers, heads, has_mlm_head, mask_token,
    max_length, head_labels}]}``; ``head_labels``: a heads.json was given for the model."""
    return {"default": state.default, "limits": asdict(state.limits),
            "models": [{"name": n, "layers": lm.num_layers, "heads": lm.num_heads,
                        "has_mlm_head": lm.has_mlm_head, "mask_token": lm.mask_token,
                        "max_length": lm.max_length, "head_labels": n in state.labels}
                       for n, lm in state.models.items()]}


@router.get("/api/heads", summary="The heads.json given at start with --heads, for one model")
def api_heads(model: str | None = Query(None, description="A loaded model; default the first."),
              state: ServerState = Depends(server_state)):
    """The heads.json object given at start for ``model``, as given.
    \f

    Raises:
        ApiError: 400 the model is not loaded; 404 no heads.json was given for it.
    """
    name, _, _ = state.pick(model)
    if name not in state.heads:
        raise ApiError(404, f"no heads.json was given for model '{name}' (start the server with "
                            "--heads FILE)", "model")
    return state.heads[name]
