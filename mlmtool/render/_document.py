"""Text documents (SVG, HTML) that are a ``str``, show themselves in Jupyter and save themselves;
and the Jinja2 templates of the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


class TextDocument(str):
    """Base of :class:`~mlmtool.render.diagrams.SVG` and :class:`HTML`."""

    def save(self, path: str | Path) -> Path:
        """Write the document to ``path`` (UTF-8) and return the path."""
        path = Path(path)
        path.write_text(str(self), encoding="utf-8")
        return path


class HTML(TextDocument):
    """An HTML document as a string that Jupyter displays and that can save itself."""

    def _repr_html_(self) -> str:
        return str(self)


def template(name: str):
    """The Jinja2 template ``mlmtool/templates/<name>`` (autoescaping on)."""
    from jinja2 import Environment

    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    text = resources.files("mlmtool").joinpath("templates", name).read_text(encoding="utf-8")
    return env.from_string(text)
