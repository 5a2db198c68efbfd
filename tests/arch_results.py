"""What every (architecture, command) of the architecture tests did, for ``docs/models.md``.

``tests/test_architectures.py`` (fill, score, embed, finetune) and
``tests/test_architecture_attention.py`` (attention, rollout, heads, view, compare) call
:func:`record` after each CLI run; with ``MLMTOOL_ARCH_RESULTS=<file>`` set, :func:`write`
merges the outcomes into that JSON file at the end of the session (so the two modules may run
in one session or one after the other; delete the file to start afresh).
``python -m scripts.models_table <file>`` turns it into ``docs/models.md``.

File format::

    {"results": {"<model_type>": {"<command>": "works" | "refuses: <the one line>"}},
     "unbuildable": {"<model_type>": "<why it is not built>"}}
"""

from __future__ import annotations

import json
import os
from pathlib import Path

#: ``model_type -> command -> "works" | "refuses: <line>"`` of this session.
RESULTS: dict[str, dict[str, str]] = {}
#: ``model_type -> reason`` for architectures of the mapping not built in this session.
UNBUILDABLE: dict[str, str] = {}
ENV = "MLMTOOL_ARCH_RESULTS"


def refusal_line(output: str) -> str:
    """The one line a refused command printed (``Error: `` removed): the line naming the error,
    else the last non-empty line."""
    lines = [ln.strip() for ln in output.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error:")]
    return (errors or lines or [""])[-1].removeprefix("Error: ")


def record(arch: str, command: str, result, strict: bool = True) -> None:
    """Note a CLI result (a click ``Result``): ``works`` (exit 0) or ``refuses: <line>`` (exit 2).

    Args:
        strict: assert that a refusal is exit 2 with exactly one non-empty line (the house
            rule); with False any non-zero exit is noted as a refusal and the caller checks it.
    """
    if result.exit_code == 0:
        RESULTS.setdefault(arch, {})[command] = "works"
        return
    if strict:
        lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
        assert result.exit_code == 2 and len(lines) == 1, (arch, command, result.output, result.exception)
    RESULTS.setdefault(arch, {})[command] = "refuses: " + refusal_line(result.output)


def write(path: str | os.PathLike | None = None) -> Path | None:
    """Merge :data:`RESULTS` and :data:`UNBUILDABLE` into ``path`` (default ``$MLMTOOL_ARCH_RESULTS``;
    nothing when neither is set); returns the path written."""
    path = path or os.environ.get(ENV)
    if not path:
        return None
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    results, unbuildable = data.get("results", {}), data.get("unbuildable", {})
    for arch, commands in RESULTS.items():
        results.setdefault(arch, {}).update(commands)
    unbuildable.update(UNBUILDABLE)
    path.write_text(json.dumps({"results": results, "unbuildable": unbuildable}, indent=1, sort_keys=True,
                               ensure_ascii=False) + "\n", encoding="utf-8")
    return path
