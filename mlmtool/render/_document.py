"""A text document (SVG, HTML) that is a ``str``, shows itself in Jupyter and saves itself."""

from __future__ import annotations

from pathlib import Path


class TextDocument(str):
    """Base of :class:`~mlmtool.render.diagrams.SVG` and :class:`~mlmtool.render.scatter.HTML`."""

    def save(self, path: str | Path) -> Path:
        """Write the document to ``path`` (UTF-8) and return the path."""
        path = Path(path)
        path.write_text(str(self), encoding="utf-8")
        return path
