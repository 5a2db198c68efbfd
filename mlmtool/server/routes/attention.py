"""``POST /api/attention``: the attention of every layer and head, packed as in the static view."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ..batcher import options_key
from ..schemas import AttentionRequest
from ..state import ServerState, server_state

router = APIRouter()


def attention_payload(result, precision: str = "uint8") -> dict:
    """An :class:`~mlmtool.analysis.attention.AttentionResult` with its weights packed by
    :func:`~mlmtool.render.html_view.encode_attention` (``shape`` ``[L, H, S, S]``)."""
    from ...render.html_view import encode_attention

    return {"text": result.text, "model": result.model_name, "tokens": list(result.tokens),
            "special": [bool(s) for s in result.special], "word_ids": list(result.word_ids),
            "layers": result.num_layers, "heads": result.num_heads,
            "attention": encode_attention(result.attention, precision)}  # type: ignore[arg-type]


@router.post("/api/attention", summary="Attention of every layer and head, quantised as in the static view")
def api_attention(req: AttentionRequest, state: ServerState = Depends(server_state)):
    """Tokens and the attention of every head, packed as in the static view ([MASK] optional).
    \f

    Concurrent requests run as one batch (:mod:`mlmtool.server.batcher`); the weights are
    packed outside the model's gate.

    Raises:
        ApiError: text too long (422), unknown model (400); MlmtoolError: empty or too long (400);
        BusyError: too many waiting (429).
    """
    state.limits.check_text(req.text)
    return attention_payload(batched_attention(state, req.model, req.text), req.precision)


def batched_attention(state: ServerState, model: str | None, text: str):
    """The :class:`~mlmtool.analysis.attention.AttentionResult` of ``text``, computed in one
    batch with concurrent attention requests for the same model (``/api/attention`` and
    ``/api/summary`` share the batches).

    Raises:
        ApiError: unknown model (400); MlmtoolError: as :func:`~mlmtool.analysis.attention.attention`.
    """
    from ...analysis.attention import attention

    name, lm, _ = state.pick(model)
    return state.batched(name, options_key("attention"), text, lambda texts: attention(lm, list(texts)))
