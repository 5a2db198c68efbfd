"""Renderers: take plain results (never a model) and return images, figures, SVG or HTML objects.

One module per thing drawn: ``diagrams`` (attention head diagrams), ``html_view`` (the
interactive page), ``summary`` (rollout / flow), ``layerwise``, ``heads_view``,
``embed_view``, ``explain_view``, ``score_view``, ``compare_view``. Every function is named
``render_*`` and returns a value; saving is a separate step (``image.save(path)``,
``figure.savefig(path)``, :func:`mlmtool.save_attention_diagrams`). Import the public names
from :mod:`mlmtool`; this package re-exports nothing.
"""
