"""docs/models.md cannot drift: it is what ``scripts/models_table.py`` renders from the committed
results (docs/models.json), and those results cover every architecture the tests run and every
architecture of transformers' masked-LM mapping (a new one in transformers fails here until the
architecture tests are rerun and the table regenerated, see the script's docstring)."""

from __future__ import annotations

import json

from scripts import models_table


def _data():
    return json.loads(models_table.RESULTS_JSON.read_text(encoding="utf-8"))


def test_committed_table_is_the_rendering_of_the_committed_results():
    assert models_table.TABLE_MD.read_text(encoding="utf-8") == models_table.render(_data()), \
        "docs/models.md is stale: run python -m scripts.models_table"


def test_results_cover_every_architecture_and_command():
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    from test_architectures import ARCHS, UNBUILDABLE

    data = _data()
    assert data["unbuildable"] == UNBUILDABLE
    assert set(MODEL_FOR_MASKED_LM_MAPPING_NAMES) <= set(data["results"]) | set(data["unbuildable"])
    recorded = {c for commands in data["results"].values() for c in commands}
    assert {c for c, _ in models_table.COLUMNS} <= recorded
    for arch in ARCHS:
        assert {"predict --json", "predict", "score", "embed", "finetune", "attention -o", "heads"} <= \
            set(data["results"][arch]), arch


def test_refusals_are_shown_without_temporary_folders():
    text = models_table.TABLE_MD.read_text(encoding="utf-8")
    assert "pytest-" not in text and "/tmp" not in text
    assert models_table.clean("no attention view for model '/tmp/pytest-of-x/pytest-3/archs0/funnel': a|b") == \
        "no attention view for model 'MODEL': a\\|b"
    row = models_table.table({"results": {"x": {"predict": "works", "score": "refuses: no | way"}}})
    assert row[2].startswith("| `x` | – | ✓ | – | ✗ 1 |") and row[-1] == "1. no \\| way"
