"""Renderers: take plain results (never a model) and return images, SVG or HTML objects.

Saving is a separate step (``image.save(path)``, :func:`save_attention_diagrams`).
"""

from .diagrams import (
    SVG,
    render_head,
    render_head_svg,
    render_overview,
    render_overview_svg,
    save_attention_diagrams,
)
from .html_view import HTMLView, render_view

__all__ = [
    "SVG",
    "HTMLView",
    "render_view",
    "render_head",
    "render_head_svg",
    "render_overview",
    "render_overview_svg",
    "save_attention_diagrams",
]
