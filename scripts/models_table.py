"""docs/models.md: every masked-LM architecture of transformers × every command, from the tests.

The architecture tests (``tests/test_architectures.py``: fill, score, embed, finetune;
``tests/test_architecture_attention.py``: attention, rollout, heads, view, compare) run each
command through the CLI on a tiny random model of each architecture and, with
``MLMTOOL_ARCH_RESULTS`` set, write what happened (``works`` or ``refuses: <the one line>``)
to a JSON file (format: ``tests/arch_results.py``). This script copies that file to
``docs/models.json`` and renders ``docs/models.md`` from it; nothing in the table is written
by hand::

    rm -f /tmp/arch.json
    MLMTOOL_ARCH_RESULTS=/tmp/arch.json pytest -n 0 tests/test_architectures.py \\
        tests/test_architecture_attention.py
    python -m scripts.models_table /tmp/arch.json

Without an argument it re-renders ``docs/models.md`` from ``docs/models.json``
(``tests/test_models_doc.py`` checks that the two agree).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"
RESULTS_JSON = DOCS / "models.json"
TABLE_MD = DOCS / "models.md"

#: Table columns: (command as recorded by the tests, column heading), in the order of a tour.
COLUMNS = (
    ("predict --json", "predict `--max-pieces 1`"),
    ("predict", "predict"),
    ("predict --by-layer", "`--by-layer`"),
    ("score", "score"),
    ("embed", "embed"),
    ("attention -o", "attention"),
    ("attention --summary rollout", "rollout"),
    ("heads", "heads"),
    ("view --html", "view"),
    ("compare", "compare"),
    ("finetune", "finetune"),
    ("finetune --lora", "`--lora`"),
    ("finetune --from-scratch", "`--from-scratch`"),
)
#: Rows the attention tests add under another name: name → how the table shows it.
VARIANTS = {"big_bird-sparse": "big_bird (`attention_type=\"block_sparse\"`)"}
#: Why the architectures that are not built are out of scope, by the first words of their reason.
SCOPE = """\
These are in transformers' masked-LM mapping but are not masked LMs that mlmtool can inspect
token by token, so the tests do not build them:

- **Sequence-to-sequence denoisers** (BART, mBART, MVP): the masked-LM class is the whole
  encoder-decoder; its logits come from a decoder that regenerates the text, so there is no
  per-token masked-LM head on an encoder's hidden states, and the encoder's attention is not
  what produced a prediction. The attention commands refuse them from the config alone
  (`mlmtool.analysis.arch.attention_support`).
- **Perceiver**: attends from a fixed set of latent vectors to the input (cross-attention), so
  it has neither one hidden state per input token in every layer nor token × token attention.
- **Vision-language models** (ModernVBERT, UltraVBERT): the config nests a text and a vision
  config, and the models expect image inputs; text-only inspection of their language half is
  better done on the text model they were built from (ModernBERT / UltraBERT, in the table).
- **X-MOD**: every layer carries one adapter per language, chosen per input
  (`set_default_language` or `lang_ids`); mlmtool has no notion of an input's language
  adapter, so any answer would silently depend on the default one. Its attention commands are
  tested (they run with the default adapter)."""

_PATH = re.compile(r"(?:/[\w.+-]+)*/pytest-[^\s',:]*")


def clean(reason: str) -> str:
    """A refusal line with the test's temporary model folder replaced by ``MODEL`` and
    Markdown table characters escaped."""
    return _PATH.sub("MODEL", reason).replace("|", "\\|").strip()


def _cell(outcome: str | None, notes: dict[str, int]) -> str:
    """``✓``, ``✗ n`` (n = the footnote of the refusal, numbered in order of first use) or ``–``."""
    if outcome is None:
        return "–"
    if outcome == "works":
        return "✓"
    reason = clean(outcome.removeprefix("refuses: "))
    notes.setdefault(reason, len(notes) + 1)
    return f"✗ {notes[reason]}"


def _merge_finetuned(commands: dict[str, str]) -> dict[str, str]:
    """``finetune`` counts as working only if the model it saved predicts too."""
    out = dict(commands)
    after = out.pop("predict (finetuned)", None)
    if out.get("finetune") == "works" and after not in (None, "works"):
        out["finetune"] = "refuses: the finetuned model does not predict: " + after.removeprefix("refuses: ")
    return out


def table(data: dict) -> list[str]:
    """The architectures × commands table and its footnotes (lines of Markdown)."""
    results = data["results"]
    notes: dict[str, int] = {}
    lines = ["| architecture | " + " | ".join(h for _, h in COLUMNS) + " |",
             "|---|" + ":-:|" * len(COLUMNS)]
    for arch in sorted(results):
        commands = _merge_finetuned(results[arch])
        name = VARIANTS.get(arch, f"`{arch}`")
        lines.append(f"| {name} | " + " | ".join(_cell(commands.get(c), notes) for c, _ in COLUMNS) + " |")
    lines += ["", "✓ exit 0 and the test's checked property; ✗ n: refused with exit 2 and the one line of "
              "note n (MODEL: what was given to `-m`); – not run for this architecture (`--lora` and "
              "`--from-scratch` run on the architectures of issue 24 and the reference ones; the tiny "
              "models of the attention tests are built separately, so `big_bird` with block-sparse "
              "attention and `xmod` have rows of their own there).", ""]
    lines += [f"{n}. {reason}" for reason, n in notes.items()]
    return lines


def render(data: dict) -> str:
    """``docs/models.md`` for the results ``data`` (the JSON of ``tests/arch_results.py``)."""
    unbuildable = data.get("unbuildable", {})
    out = ["# Masked-LM architectures × commands", "",
           "<!-- generated by `python -m scripts.models_table` from docs/models.json; do not edit -->", "",
           "Every architecture in transformers' masked-LM mapping (`MODEL_FOR_MASKED_LM_MAPPING_NAMES`), as "
           "a tiny random model built from its config with a tokenizer of its real kind, run through each "
           "command of the command line by `tests/test_architectures.py` (fill, score, embed, finetune) and "
           "`tests/test_architecture_attention.py` (attention, rollout, heads, view, compare). "
           "A ✓ is an exit 0 *and* a checked property: the located masked-LM head gives the model's own "
           "logits (1e-5); `predict --max-pieces 1` equals `transformers.pipeline(\"fill-mask\")`; attention "
           "rows sum to 1 with the architecture's real number of heads and local layers zero beyond "
           "their window; rollout rows sum to 1; the masked-positions loss equals the model's own loss "
           "(1e-5). A refusal is one line and exit 2, never a traceback.", "",
           "Attention as each architecture has it: ModernBERT's local sliding-window layers are "
           "labelled (`Layer 2 · local ±64`) in the diagrams, the heatmaps and the heads report, and "
           "rollout/flow say what they assume about them; grouped-query attention (EuroBERT) is "
           "noted wherever heads are compared (heads of a group share keys and values).", ""]
    out += ["To regenerate after a change (a few minutes on two cores): `rm -f arch.json; "
            "MLMTOOL_ARCH_RESULTS=$PWD/arch.json pytest -n 0 tests/test_architectures.py "
            "tests/test_architecture_attention.py; python -m scripts.models_table arch.json`.", ""]
    out += table(data)
    if unbuildable:
        out += ["", "## Not built", "", SCOPE, "", "| architecture | why it is not built |", "|---|---|"]
        out += [f"| `{arch}` | {clean(why)} |" for arch, why in sorted(unbuildable.items())]
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> None:
    """``[RESULTS_JSON]``: copy it to docs/models.json (when given) and write docs/models.md."""
    if argv:
        data = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
        RESULTS_JSON.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                                encoding="utf-8")
    data = json.loads(RESULTS_JSON.read_text(encoding="utf-8"))
    TABLE_MD.write_text(render(data), encoding="utf-8")
    print(f"wrote {TABLE_MD} ({len(data['results'])} architectures)")


if __name__ == "__main__":
    main(sys.argv[1:])
