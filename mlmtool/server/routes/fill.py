"""``POST /api/predict`` (fill [MASK], as ``mlmtool predict --json``) and ``POST /api/view``
(everything the page draws for one sentence, as ``mlmtool view`` computes it)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ..batcher import options_key
from ..schemas import PredictRequest, ViewRequest
from ..state import ServerState, server_state

router = APIRouter()


def predict_payload(lm, text: str | list[str], **options) -> dict | list[dict]:
    """What ``mlmtool predict --json TEXT`` prints for one sentence, as a dict: the same
    :func:`~mlmtool.analysis.predict.predict` and :func:`~mlmtool.analysis.predict.predict_json`.
    A list of texts (one batched search, the ``compute`` of a predict batch,
    :mod:`mlmtool.server.batcher`) gives a list of dicts, in order.

    ``options``: ``top_k``, ``max_pieces``, ``beam``, ``independent`` (the command's flags).
    """
    from ...analysis.predict import predict, predict_json

    return predict_json(predict(lm, text, **options))


def fill_request(req: PredictRequest | ViewRequest, state: ServerState):
    """``(name, lm, gate, fill options)`` of a request with a text and fill options.

    Raises:
        ApiError: the text or an option is over its limit (422), or the model is not loaded (400).
    """
    state.limits.check_text(req.text)
    options = state.limits.check_fill(req)
    return (*state.pick(req.model), options)


@router.post("/api/predict", summary="Fill [MASK]: the same JSON as `mlmtool predict --json`")
def api_predict(req: PredictRequest, state: ServerState = Depends(server_state)):
    """The JSON of ``mlmtool predict --json`` for the sentence.
    \f

    Concurrent requests with the same options run as one batch (:mod:`mlmtool.server.batcher`).

    Raises:
        ApiError: limits (422), unknown model (400); MlmtoolError: no mask, too long, no
            masked-LM head (400); BusyError: too many waiting (429).
    """
    name, lm, _, options = fill_request(req, state)
    return state.batched(name, options_key("predict", **options), req.text,
                         lambda texts: predict_payload(lm, list(texts), **options))


@router.post("/api/view", summary="Everything the page draws for one sentence (the static view's data)")
def api_view(req: ViewRequest, state: ServerState = Depends(server_state)):
    """The data the page draws for the sentence: attention, predictions (or a note why there
    are none), head labels, and ``model``."""
    from ...analysis.attention import view_inputs
    from ...render.html_view import view_payload

    name, lm, gate, options = fill_request(req, state)
    with gate.hold():
        att, prediction, note = view_inputs(lm, req.text, **options)
    payload = view_payload(att, prediction, head_labels=state.labels.get(name), note=note,
                           title=f"mlmtool: {name}")
    payload["model"] = name
    return payload
