"""``POST /api/heads``: every attention head scored over typed sentences (``mlmtool heads --json``).

``GET /api/heads`` (the heads.json given at start) lives in :mod:`.models`; both answer the
same heads.json format, which the page's Heads tab draws as a labelled grid.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ..handlers import ApiError
from ..schemas import HeadsRequest
from ..state import ServerState, server_state

router = APIRouter()

#: Pairs per request (each is one more pass over the attention).
MAX_PAIRS = 8


@router.post("/api/heads", summary="Score every attention head over the sentences: `mlmtool heads --json`")
def api_heads_run(req: HeadsRequest, state: ServerState = Depends(server_state)):
    """The JSON of ``mlmtool heads TEXT... --json`` (the heads.json format, labels per head).
    \f
    :meth:`~mlmtool.analysis.heads.scores.HeadScores.to_dict` at ``threshold``.

    Raises:
        ApiError: limits, too many pairs (422), unknown model (400); MlmtoolError: a malformed
            pair or one whose words never meet, all sentences too long (400).
    """
    from ...analysis.heads.run import score_heads

    state.limits.check_texts(req.texts)
    if len(req.pairs) > MAX_PAIRS:
        raise ApiError(422, f"pairs must hold at most {MAX_PAIRS} items, got {len(req.pairs)}", "pairs")
    for i, pair in enumerate(req.pairs):
        state.limits.check_text(pair, f"pairs[{i}]")
    _, lm, gate = state.pick(req.model)
    with gate.hold():
        scores = score_heads(lm, req.texts, pairs=req.pairs)
    return scores.to_dict(req.threshold)
