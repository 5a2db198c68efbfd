"""Held-out evaluation of fill-mask models (``python -m scripts.evaluation.eval_fill``)."""
