"""Best attention head per dependency relation across treebanks, as one Markdown table.

Reads the ``heads.json`` that ``mlmtool heads --conllu TREEBANK -o DIR`` writes into each
DIR and prints, per relation (dependent -> governor direction, Clark et al. 2019 §4), the
best head and its accuracy against the best fixed-offset baseline in each folder::

    for tb in en_ewt fr_gsd de_gsd zh_gsdsimp ja_gsd; do
      mlmtool heads -m multi-mini --conllu ../shared/data/ud/$tb-ud-dev.conllu -o syntax-$tb
    done
    python -m scripts.evaluation.syntax_table syntax-*

Cells read ``L7-H3 0.77 (0.39)``: layer and head numbered from 1, accuracy, baseline.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RELATIONS = ("nsubj", "obj", "det", "amod", "advmod", "case", "aux", "mark", "cop", "nmod", "obl", "conj")


def best_by_relation(heads_json: Path, direction: str = "dep->gov") -> dict[str, dict]:
    """``relation -> the syntax entry`` of one ``heads.json`` for ``direction``."""
    data = json.loads(heads_json.read_text(encoding="utf-8"))
    return {e["relation"]: e for e in data.get("syntax", []) if e["direction"] == direction}


def table(folders: list[Path]) -> str:
    """The Markdown table: one row per relation of :data:`RELATIONS`, one column per folder."""
    columns = [(f.name, best_by_relation(f / "heads.json")) for f in folders]
    lines = ["| relation | " + " | ".join(name for name, _ in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for rel in RELATIONS:
        cells = []
        for _, best in columns:
            e = best.get(rel)
            cells.append(f"L{e['layer']}-H{e['head']} {e['accuracy']:.2f} ({e['baseline']:.2f})" if e else "–")
        lines.append(f"| {rel} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table([Path(p) for p in sys.argv[1:]]))
