"""Scripts of mlmtool, by job: ``benchmarks/`` (speed and size against references),
``en_mini/`` (building the shipped offline model) and ``evaluation/`` (held-out quality).

Run them as modules from the repository root, e.g. ``python -m scripts.evaluation.eval_fill``;
shared code is imported as ``scripts.<job>.<module>`` (no ``sys.path`` edits).
"""
