"""``POST /api/compare``: two models on the same text(s), or one model on two texts
(``mlmtool compare --json``); ``POST /api/compare/view``: the same comparison as the data of
the comparison page (what ``compare.js`` draws, the page's Compare tab)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ..handlers import ApiError
from ..schemas import CompareRequest, CompareViewRequest
from ..state import ServerState, server_state

router = APIRouter()


def compare_result(req: CompareRequest, state: ServerState):
    """The :class:`~mlmtool.analysis.compare.ComparisonResult` of a request: two models on
    texts, or one model on two texts; both models' gates are held at once, in name order
    (no deadlock).

    Raises:
        ApiError: limits, not two models, not two texts for one model (422), unknown model
            (400); MlmtoolError: different vocabularies, no mask (400).
    """
    from ...analysis.compare import compare_models, compare_texts

    state.limits.check_texts(req.texts)
    state.limits.check_range(req.top_k, 1, state.limits.max_top_k, "top_k", "max_top_k")
    if req.models is not None:
        if req.model is not None or len(req.models) != 2:
            raise ApiError(422, "models must name two loaded models [A, B] (and then no model)", "models")
        (na, lm_a, _), (nb, lm_b, _) = state.pick(req.models[0]), state.pick(req.models[1])
        with state.hold_all(na, nb):
            return compare_models(lm_a, lm_b, req.texts, top_k=req.top_k)
    if len(req.texts) != 2:
        raise ApiError(422, f"one model compares two texts, not {len(req.texts)}; give models [A, B] to "
                            "compare two models", "texts")
    name, lm, _ = state.pick(req.model)
    with state.hold_all(name):
        return compare_texts(lm, req.texts[0], req.texts[1], top_k=req.top_k)


@router.post("/api/compare", summary="Two models on a text, or one model on two texts: "
                                     "`mlmtool compare --json`")
def api_compare(req: CompareRequest, state: ServerState = Depends(server_state)):
    """The JSON of ``mlmtool compare --json``: two models on texts, or one model on two texts.
    \f
    ``compare_models(...).to_dict()`` (``models: [A, B]``) or ``compare_texts(...).to_dict()``
    (:func:`compare_result`).

    Raises:
        ApiError: limits, not two models, not two texts for one model (422), unknown model
            (400); MlmtoolError: different vocabularies, no mask (400).
    """
    return compare_result(req, state).to_dict()


@router.post("/api/compare/view", summary="A comparison as the data of the comparison page (compare.js)")
def api_compare_view(req: CompareViewRequest, state: ServerState = Depends(server_state)):
    """The data ``mlmtool compare --html`` embeds in its page, for the same request as
    ``/api/compare``.
    \f
    :func:`~mlmtool.render.compare_view.compare_payload`.

    Raises:
        as :func:`compare_result`.
    """
    from ...render.compare_view import compare_payload

    result = compare_result(req, state)
    return compare_payload(result, f"{result.labels[0]} vs {result.labels[1]}")
