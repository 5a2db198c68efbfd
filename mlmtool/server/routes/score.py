"""``POST /api/score``: pseudo-log-likelihood of sentences, or minimal pairs (``mlmtool score --json``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ..batcher import options_key
from ..handlers import ApiError
from ..schemas import Limits, ScoreRequest
from ..state import ServerState, server_state

router = APIRouter()


def check_pairs(pairs: list[list[str]], limits: Limits) -> list[tuple[str, str, str, int]]:
    """``(good, bad, phenomenon, line)`` rows of :func:`~mlmtool.analysis.score.score_pairs`;
    ``line`` is the pair's place in the list, from 1 (a file's line number in the CLI).

    Raises:
        ApiError: (422) 0 or too many pairs, a pair that is not [good, bad(, phenomenon)], a text too long.
    """
    for i, pair in enumerate(limits.check_count(pairs, "pairs")):
        if len(pair) not in (2, 3):
            raise ApiError(422, f"pairs[{i}] must be [good, bad] or [good, bad, phenomenon]", "pairs")
        for j, t in enumerate(pair):
            limits.check_text(t, f"pairs[{i}][{j}]")
    return [(p[0], p[1], p[2] if len(p) > 2 else "", i + 1) for i, p in enumerate(pairs)]


@router.post("/api/score", summary="Pseudo-log-likelihood of sentences, or minimal pairs: `mlmtool score --json`")
def api_score(req: ScoreRequest, state: ServerState = Depends(server_state)):
    """The JSON of ``mlmtool score --json``: one score (``text``), a list (``texts``) or the
    pairs' accuracy (``pairs``).
    \f
    Concurrent ``text`` / ``texts`` requests with the same variant run as one batch
    (:mod:`mlmtool.server.batcher`); ``pairs`` run alone under the model's gate.

    Raises:
        ApiError: not exactly one of text/texts/pairs, limits (422), unknown model (400);
        BusyError: too many waiting (429).
    """
    from ...analysis.score import score_pairs

    given = [f for f in ("text", "texts", "pairs") if getattr(req, f) is not None]
    if len(given) != 1:
        raise ApiError(422, "give exactly one of text, texts and pairs"
                       + (f" (got {', '.join(given)})" if given else ""))
    name, lm, gate = state.pick(req.model)
    if req.pairs is not None:
        rows = check_pairs(req.pairs, state.limits)
        with gate.hold():
            return score_pairs(lm, rows, variant=req.variant).to_dict()
    if req.text is not None:
        texts = [state.limits.check_text(req.text)]
    else:
        texts = state.limits.check_texts(req.texts)  # type: ignore[arg-type]
    scores = state.batched(name, options_key("score", variant=req.variant), texts,
                           lambda groups: score_groups(lm, groups, req.variant))
    return scores[0].to_dict() if req.text is not None else [s.to_dict() for s in scores]


def score_groups(lm, groups: list[list[str]], variant: str) -> list[list]:
    """:func:`~mlmtool.analysis.score.score_sentences` of several requests' texts in one call
    (the ``compute`` of a score batch): ``groups[i]`` is request ``i``'s texts, and the answer
    ``[i]`` its :class:`~mlmtool.analysis.score.SentenceScore` list, in order."""
    from ...analysis.score import score_sentences

    scores = score_sentences(lm, [t for g in groups for t in g], variant=variant)
    out, start = [], 0
    for g in groups:
        out.append(scores[start:start + len(g)])
        start += len(g)
    return out
