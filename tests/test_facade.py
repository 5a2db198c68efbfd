"""The public API (``mlmtool.__all__``) cannot break with import order.

A lazy facade (PEP 562) whose public names are also submodules breaks as soon as the
submodule is imported: Python binds the module object as the package attribute. These tests
import every submodule first, then use the facade.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types

import pytest

import mlmtool


def _import_everything() -> list[str]:
    """Import every module under ``mlmtool`` (those whose optional extras are missing are skipped)."""
    names = []
    for info in pkgutil.walk_packages(mlmtool.__path__, prefix="mlmtool."):
        if info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError as exc:  # an optional extra (e.g. the web app's fastapi) not installed
            if "mlmtool" in str(exc):
                raise
            continue
        names.append(info.name)
    return names


def test_no_public_name_is_a_module_even_after_every_import():
    imported = _import_everything()
    assert "mlmtool.core.forward" in imported and "mlmtool.analysis.predict" in imported
    for name in mlmtool.__all__:
        if name == "__version__":
            continue
        value = getattr(mlmtool, name)
        assert not isinstance(value, types.ModuleType), f"mlmtool.{name} is a module"
        assert getattr(value, "__doc__", None), f"mlmtool.{name} has no docstring"


def test_every_public_name_resolves_to_what_its_table_says():
    for name, module in mlmtool._LAZY.items():
        assert getattr(importlib.import_module(module), name) is getattr(mlmtool, name)
    assert sorted(dir(mlmtool)) == sorted(mlmtool.__all__)
    with pytest.raises(AttributeError):
        mlmtool.no_such_name  # noqa: B018


def test_public_functions_document_what_they_raise_or_return():
    """Every public function's docstring says what it returns (or raises)."""
    for name in mlmtool.__all__:
        value = getattr(mlmtool, name, None)
        if inspect.isfunction(value):
            doc = inspect.getdoc(value) or ""
            assert "Returns" in doc or "Raises" in doc or "return" in doc.lower(), name


def test_facade_calls_work_after_the_compute_modules_are_imported(tiny_bert):
    """The first round's bug: after mlmtool.attention(...), mlmtool.predict was a module."""
    _import_everything()
    text = "the [MASK] sat on the mat ."
    att = mlmtool.attention(tiny_bert, text)
    pred = mlmtool.predict(tiny_bert, text, max_pieces=1)
    assert att.attention.shape == (2, 4, 9, 9)
    assert abs(att.attention.sum(-1) - 1).max() < 1e-5  # rows are distributions
    assert pred.to_dict()["text"] == text
    assert mlmtool.predict(tiny_bert, text, max_pieces=1).to_dict() == pred.to_dict()  # still a function
    view = mlmtool.render_view(att, pred)
    assert "<html" in str(view).lower() and view._repr_html_()


@pytest.mark.slow
def test_readme_python_examples_run(tmp_path, monkeypatch, capsys):
    """Every ```python block of the README runs as written (en-mini, offline), so it cannot drift."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks, "the README has a Python tour"
    monkeypatch.chdir(tmp_path)
    for n, block in enumerate(blocks):
        exec(compile(block, f"README.md python block {n + 1}", "exec"), {})
    printed = capsys.readouterr().out.split()
    assert printed[0] == "door" and 0 < float(printed[1]) <= 1  # the top word and its probability
    assert (tmp_path / "l2h9.png").stat().st_size > 0 and (tmp_path / "view.html").stat().st_size > 0
