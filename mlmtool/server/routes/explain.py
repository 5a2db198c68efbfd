"""``POST /api/explain`` (start a SHAP explanation: 202 and a job) and ``GET /api/explain/{id}``
(its status, progress and, when done, ``mlmtool explain --json``'s result).

The job itself runs on the app's SHAP worker (:func:`mlmtool.server.state.run_explain`).
A request the library would refuse is refused at once (HTTP 400 with the library's own
message, :func:`check_explain`), not as a failed job.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends

from ..handlers import ApiError
from ..schemas import ExplainRequest
from ..state import ServerState, server_state

router = APIRouter()

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


def check_explain(lm, req: ExplainRequest) -> None:
    """The library's own checks of an explanation (:func:`mlmtool.analysis.explain.check_explain`),
    run now so that a bad request is a 400, not a failed job; the model does not run.

    Raises:
        MlmtoolError: the library's refusal (HTTP 400), e.g. no [MASK], a mask out of
            range, a target that is not one token, no masked-LM head.
    """
    from ...analysis.explain import check_explain as library_check

    library_check(lm, req.text, target=req.target, mask_index=req.mask, max_evals=req.max_evals)


@router.post("/api/explain", status_code=202,
             summary="Start a SHAP explanation (seconds); poll GET /api/explain/{id} for progress and result")
def api_explain(req: ExplainRequest, state: ServerState = Depends(server_state)):
    """The queued job (id, status, progress) and the ``url`` to poll.
    \f

    Raises:
        ApiError: text too long or ``max_evals`` over the limit (422), unknown model (400);
        MlmtoolError: the library refuses the request (400, :func:`check_explain`);
        BusyError: the queue is full (429).
    """
    state.limits.check_text(req.text)
    state.limits.check_range(req.max_evals, 3, state.limits.max_evals, "max_evals", "max_evals")
    name, lm, _ = state.pick(req.model)
    check_explain(lm, req)
    params = {"text": req.text, "target": req.target, "mask": req.mask, "max_evals": req.max_evals,
              "seed": req.seed}
    job = state.jobs.submit(name, params, req.max_evals)
    found = state.jobs.get(job.id)
    return {**job.to_dict(found[1] if found else None), "url": f"/api/explain/{job.id}"}


@router.get("/api/explain/{job_id}", summary="A SHAP job: status, progress, and the result of "
                                             "`mlmtool explain --json` when done")
def api_explain_job(job_id: str, state: ServerState = Depends(server_state)):
    """The job: status, progress (``queue_position`` while queued), result or error.
    \f

    Raises:
        ApiError: (404) no such job, or it was forgotten (the last ``keep`` finished jobs are kept).
    """
    found = state.jobs.get(job_id) if _JOB_ID.match(job_id) else None
    if found is None:
        raise ApiError(404, f"no explain job '{job_id[:40]}' (finished jobs are kept for the last "
                            f"{state.jobs.keep} explanations)", "job_id")
    job, ahead = found
    return job.to_dict(ahead)
