"""``POST /api/search`` (``mlmtool search --json`` on the index given with ``serve --index DIR``)
and ``GET /api/search/sentence/{n}`` (one corpus sentence, so the page can open a hit)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ..features import Features, features
from ..handlers import ApiError
from ..schemas import SearchRequest
from ..state import ServerState, server_state

router = APIRouter()


def _index(feats: Features):
    """The app's corpus index. Raises: ApiError (404): the server was started without ``--index``."""
    if feats.index is None:
        raise ApiError(404, "this server has no corpus index (start it with --index DIR)")
    return feats.index


@router.post("/api/search", summary="The corpus words nearest a [bracketed] word: `mlmtool search --json`")
def api_search(req: SearchRequest, state: ServerState = Depends(server_state), feats: Features = Depends(features)):
    """The JSON of ``mlmtool search INDEX QUERY --json`` on the server's index, with the
    index's model (the request's ``model``, if given, must be that one).
    \f

    Raises:
        ApiError: no index (404), limits (422), another model than the index's (400);
        MlmtoolError: no or two brackets, a layer that was not indexed, ``pos`` without
            tags (400).
    """
    from ...analysis.corpus.query import search

    index = _index(feats)
    state.limits.check_text(req.query, "query")
    state.limits.check_range(req.top_k, 1, state.limits.max_top_k, "top_k", "max_top_k")
    if req.model is not None and req.model != feats.index_model:
        raise ApiError(400, f"the index was made by model '{feats.index_model}', not '{req.model}'", "model")
    _, lm, gate = state.pick(feats.index_model)
    with gate.hold():
        result = search(index, req.query, lm, layer=req.layer, top_k=req.top_k, words=req.words, pos=req.pos)
    return result.to_dict()


@router.get("/api/search/sentence/{number}", summary="One sentence of the corpus index, by its line number")
def api_search_sentence(number: int, feats: Features = Depends(features)):
    """``{"sentence": number, "text": the sentence}`` (numbers as in search hits: lines from 0).
    \f

    Raises:
        ApiError: no index, or no such sentence (404).
    """
    text = _index(feats).texts.get(number)
    if text is None:
        raise ApiError(404, f"the index has no sentence {number}", "number")
    return {"sentence": number, "text": text}
