"""Comparing JSON answers that may come from different batches (helpers for the server tests).

A batched answer of ``mlmtool serve`` has the same structure, strings, ints and order as the
answer of the same request alone; its floats may differ by float32 rounding, because the
matrix kernels round a row differently in a taller or wider (padded) matrix
(:mod:`mlmtool.server.batcher`). :func:`assert_same_answer` checks exactly that.
"""

from __future__ import annotations

import math

#: Float tolerance of a batched answer: relative or absolute (float32 rounding, a few ulps of
#: a log-probability summed over a sentence).
REL, ABS = 1e-5, 1e-5


def same_answer(got, expected, rel: float = REL, abs_: float = ABS, where: str = "$") -> str | None:
    """None when ``got`` equals ``expected`` (JSON values) with floats within ``rel``/``abs_``;
    else where and how they first differ (a JSON path such as ``$.masks[0].candidates[1].score``)."""
    if isinstance(expected, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        return None if math.isclose(got, expected, rel_tol=rel, abs_tol=abs_) else f"{where}: {got!r} != {expected!r}"
    if type(got) is not type(expected):
        return f"{where}: {type(got).__name__} != {type(expected).__name__}"
    if isinstance(expected, dict):
        if set(got) != set(expected):
            return f"{where}: keys {sorted(got)} != {sorted(expected)}"
        items = ((f"{where}.{k}", got[k], expected[k]) for k in expected)
    elif isinstance(expected, list):
        if len(got) != len(expected):
            return f"{where}: {len(got)} items != {len(expected)}"
        items = ((f"{where}[{i}]", g, e) for i, (g, e) in enumerate(zip(got, expected)))
    else:
        return None if got == expected else f"{where}: {got!r} != {expected!r}"
    for path, g, e in items:
        diff = same_answer(g, e, rel, abs_, path)
        if diff:
            return diff
    return None


def assert_same_answer(got, expected, rel: float = REL, abs_: float = ABS) -> None:
    """Assert :func:`same_answer` (the message names the first difference)."""
    diff = same_answer(got, expected, rel, abs_)
    assert diff is None, diff
