"""``POST /api/embed``: words on a plane by their contextual vectors (``mlmtool embed --json``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ..schemas import EmbedRequest
from ..state import ServerState, server_state

router = APIRouter()


@router.post("/api/embed", summary="Words on a plane by their contextual vectors: `mlmtool embed --json`")
def api_embed(req: EmbedRequest, state: ServerState = Depends(server_state)):
    """The JSON of ``mlmtool embed --json``: each word's place on the plane.
    \f
    :meth:`~mlmtool.analysis.embed.Projection.to_dict`; the model runs under its gate, the
    projection (CPU) does not hold it.

    Raises:
        ApiError: 0 or too many texts, one too long (422), unknown model (400);
        MlmtoolError: bad layer, fewer than 3 words, bad perplexity (400).
    """
    from ...analysis.embed import project, word_vectors

    state.limits.check_texts(req.texts)
    _, lm, gate = state.pick(req.model)
    with gate.hold():
        vectors = word_vectors(lm, req.texts, layer=req.layer, keep_special=req.keep_special)
    return project(vectors, method=req.method, perplexity=req.perplexity, seed=req.seed).to_dict()
