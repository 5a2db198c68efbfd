"""``GET /api/probe`` (the ``probe.json`` given with ``serve --probe DIR``) and
``POST /api/probe`` (the saved probes applied to a typed sentence, where this mlmtool can)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ..features import Features, can_predict, features
from ..handlers import ApiError
from ..schemas import ProbeWordsRequest
from ..state import ServerState, server_state

router = APIRouter()


def _probe(feats: Features) -> dict:
    """The saved result. Raises: ApiError (404): the server was started without ``--probe``."""
    if feats.probe_dir is None:
        raise ApiError(404, "this server has no probe result (start it with --probe DIR, a folder written "
                            "by mlmtool probe -o DIR)")
    return feats.probe


@router.get("/api/probe", summary="The probe result given at start: `mlmtool probe --json` as saved by -o DIR")
def api_probe(feats: Features = Depends(features)):
    """``probe.json`` of the ``--probe`` folder, as saved (the JSON of ``mlmtool probe --json``).
    \f

    Raises:
        ApiError: (404) no ``--probe`` folder was given.
    """
    return _probe(feats)


@router.post("/api/probe", summary="The saved probes' labels for the words of a sentence")
def api_probe_words(req: ProbeWordsRequest, state: ServerState = Depends(server_state),
                    feats: Features = Depends(features)):
    """The saved probes' label for each word of the sentence, per probed layer
    (``mlmtool.analysis.probe.predict_words(...).to_dict()``).
    \f

    Raises:
        ApiError: no ``--probe`` (404); the probes' model is not loaded (400); this mlmtool
            cannot apply saved probes (501); limits (422). MlmtoolError: the library's refusal.
    """
    _probe(feats)
    state.limits.check_text(req.text)
    if feats.probe_model is None:
        raise ApiError(400, f"the probes were trained on model '{feats.probe.get('model')}', which is not loaded")
    if not can_predict():
        raise ApiError(501, "this mlmtool cannot apply saved probes to a sentence yet (no probe.predict_words)")
    from ...analysis import probe

    _, lm, gate = state.pick(feats.probe_model)
    with gate.hold():
        result = probe.predict_words(lm, feats.probe_dir, req.text, task=req.task)
    return result.to_dict() if hasattr(result, "to_dict") else result
