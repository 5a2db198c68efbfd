"""``POST /api/layers`` (``mlmtool predict --by-layer --json``) and ``POST /api/summary``
(``mlmtool attention --summary rollout|flow --json``): the Layers tab of the page."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ..batcher import options_key
from ..handlers import ApiError
from ..schemas import LayersRequest, SummaryRequest
from ..state import ServerState, server_state

router = APIRouter()


@router.post("/api/layers", summary="What the masked-LM head reads after every layer: "
                                    "`mlmtool predict --by-layer --json`")
def api_layers(req: LayersRequest, state: ServerState = Depends(server_state)):
    """The JSON of ``mlmtool predict --by-layer --json`` for one sentence (layer 0 = the embeddings).
    \f
    :meth:`~mlmtool.analysis.layerwise.LayerwisePrediction.to_dict`.

    Raises:
        ApiError: limits (422), unknown model (400); MlmtoolError / NoMLMHeadError: no mask,
            too long, no masked-LM head (400).
    """
    from ...analysis.layerwise import layerwise_predictions

    state.limits.check_text(req.text)
    state.limits.check_range(req.top_k, 1, state.limits.max_top_k, "top_k", "max_top_k")
    name, lm, _ = state.pick(req.model)
    lm.require_mlm_head()
    result = state.batched(name, options_key("layers", top_k=req.top_k), req.text,  # concurrent requests: one batch
                           lambda texts: layerwise_predictions(lm, list(texts), top_k=req.top_k))
    return result.to_dict()


@router.post("/api/summary", summary="Attention rollout or flow over a range of layers: "
                                     "`mlmtool attention --summary rollout|flow --json`")
def api_summary(req: SummaryRequest, state: ServerState = Depends(server_state)):
    """The JSON of ``mlmtool attention --summary METHOD --json``: one token x token matrix.
    \f
    The model runs under its gate; rollout and flow (CPU, on the attention) do not hold it.

    Raises:
        ApiError: limits, ``layers`` not [first, last] (422), unknown model (400);
        MlmtoolError: layers outside the model, flow over 64 tokens (400).
    """
    from ...analysis.rollout import attention_flow, attention_rollout
    from .attention import batched_attention

    state.limits.check_text(req.text)
    if req.layers is not None and len(req.layers) != 2:
        raise ApiError(422, "layers must be [first, last], counted from 1", "layers")
    span = tuple(req.layers) if req.layers is not None else None
    result = batched_attention(state, req.model, req.text)  # batched with /api/attention's requests
    summarise = attention_rollout if req.method == "rollout" else attention_flow
    return summarise(result, span).to_dict()  # type: ignore[arg-type]
