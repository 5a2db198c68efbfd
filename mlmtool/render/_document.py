"""Text documents (SVG, HTML) that are a ``str``, show themselves in Jupyter and save themselves;
the Jinja2 templates of the package; and :func:`build_page`, the one builder of the
interactive pages (the one-sentence view and the comparison).

An interactive page is a template (``mlmtool/templates/<name>.html``) with its CSS, its JSON
payload in ``<script type="application/json">`` and one inline script: the shared payload
decoder (``templates/decode.js``: base64, deflate, uint8 levels or float16) followed by the
page's own script (``templates/<name>.js``). The saved document carries a
Content-Security-Policy with ``default-src 'none'`` and the SHA-256 hash of that one script,
so the browser refuses every request and every other script.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import uuid
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np


class TextDocument(str):
    """Base of :class:`~mlmtool.render.diagrams.SVG` and :class:`HTML`."""

    def save(self, path: str | Path) -> Path:
        """Write the document to ``path`` (UTF-8, overwriting) and return the path.

        The command line checks for existing files first
        (:func:`mlmtool.commands._common.check_output_file`).
        """
        path = Path(path)
        path.write_text(str(self), encoding="utf-8")
        return path


class HTML(TextDocument):
    """An HTML document: a ``str`` that Jupyter displays and that can save itself.

    Every HTML renderer returns this type. ``str(page)`` is the complete document;
    ``page.save(path)`` writes it. Pages built by :func:`build_page` also keep the
    ``fragment`` Jupyter shows inline (a ``<div>`` with its own style, data and script, ids
    unique, so several can share one notebook); for the other pages the fragment is the
    document itself.

    Args:
        document: the complete HTML text.
        fragment: what ``_repr_html_`` shows (default: ``document``).
        title: the page title, when known.
    """

    def __new__(cls, document: str, fragment: str | None = None, title: str | None = None) -> "HTML":
        self = super().__new__(cls, document)
        self._fragment = fragment
        self.title = title
        return self

    @property
    def document(self) -> str:
        """The complete HTML document (the same text as ``str(self)``)."""
        return str.__str__(self)

    @property
    def fragment(self) -> str:
        """The part Jupyter shows inline (the whole document unless a fragment was given)."""
        return self.document if self._fragment is None else self._fragment

    def _repr_html_(self) -> str:
        """Jupyter's rich display: :attr:`fragment`."""
        return self.fragment

    def __reduce__(self):
        return (type(self), (self.document, self._fragment, self.title))


_CSS_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")


def scoped_fragment(document: str, scope: str) -> str:
    """A simple page (one ``<style>`` of plain rules, no script) as an inline fragment for
    Jupyter: its ``<body>`` in ``<div class="SCOPE">``, every CSS rule scoped to that class
    (``body`` → ``.SCOPE``, ``h1`` → ``.SCOPE h1``), so showing it does not restyle the
    notebook around it.

    Args:
        document: the complete page; scope: a CSS class name.

    Returns:
        The fragment's HTML text.
    """
    style = re.search(r"<style>(.*?)</style>", document, re.S)
    body = re.search(r"<body>(.*)</body>", document, re.S)

    def scoped(m: re.Match) -> str:
        selectors = [sel.strip() for sel in m.group(1).split(",")]
        return ",".join(f".{scope}" if sel == "body" else f".{scope} {sel}" for sel in selectors) + "{" + m.group(2) + "}"

    css = _CSS_RULE.sub(scoped, style.group(1)) if style else ""
    return f'<div class="{scope}"><style>{css}</style>{body.group(1) if body else document}</div>'


def template(name: str):
    """The Jinja2 template ``mlmtool/templates/<name>`` (autoescaping on)."""
    from jinja2 import Environment

    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    text = resources.files("mlmtool").joinpath("templates", name).read_text(encoding="utf-8")
    return env.from_string(text)


@lru_cache(maxsize=None)
def template_text(name: str) -> str:
    """The text of the package data file ``mlmtool/templates/<name>`` (read once)."""
    return (resources.files("mlmtool") / "templates" / name).read_text(encoding="utf-8")


def page_assets(name: str) -> tuple[str, str, str]:
    """``(template, css, js)`` of an interactive page: ``templates/<name>.{html,css,js}``."""
    return template_text(f"{name}.html"), template_text(f"{name}.css"), template_text(f"{name}.js")


@lru_cache(maxsize=4)
def colormap_hex(name: str) -> str:
    """A matplotlib colour map (e.g. viridis, van der Walt & Smith) as 256 RGB hex triplets.

    Returns:
        1,536 hex digits: 256 colours x (red, green, blue), one byte each.
    """
    from matplotlib import colormaps  # colour data only; no figure is made

    rgb = (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)
    return rgb.tobytes().hex()


def json_for_script(payload: Any) -> str:
    """``json.dumps`` made safe inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` become ``\\u003c``, ``\\u003e``, ``\\u0026`` (so no ``</script>``
    or ``<!--`` can close the element) and U+2028/U+2029 are escaped; ``JSON.parse``
    returns the original strings.

    Raises:
        ValueError: the payload holds NaN or infinity (not JSON).
    """
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def page_policy(script: str) -> str:
    """The Content-Security-Policy of a page whose only script is ``script``.

    Nothing may be loaded (``default-src 'none'``); the one inline script runs because its
    SHA-256 hash is listed (CSP Level 2 hash sources); inline styles and ``data:``/``blob:``
    images (the downloads) are allowed.
    """
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
            "img-src data: blob:; base-uri 'none'; form-action 'none'")


def page_script(js: str, entry: str, root_id: str) -> str:
    """The page's one inline script: the shared decoder, the page's script, and the call
    ``entry(root_id)``, all inside one function so fragments on one page stay apart."""
    return f"(function(){{\n{template_text('decode.js')}\n{js}\n{entry}({json.dumps(root_id)});\n}})();"


def build_page(name: str, entry: str, payload: Any, title: str, id_prefix: str) -> HTML:
    """Build an interactive page: template, CSS, payload and script, in one offline document.

    Args:
        name: the page's templates, ``mlmtool/templates/<name>.{html,css,js}`` (``"view"``,
            ``"compare"``); the template receives ``root_id``, ``title``, ``css``, ``data``
            and ``script``.
        entry: the JavaScript function of ``<name>.js`` that draws the page from its root
            element's id (``"mlmtoolView"``, ``"mlmtoolCompare"``).
        payload: JSON-ready data (:func:`json_for_script` embeds it).
        title: the page title.
        id_prefix: the root element's id is ``<id_prefix>-`` and 12 random hex digits.

    Returns:
        An :class:`HTML` document with its ``fragment`` and ``title``.

    Raises:
        ValueError: the payload holds NaN or infinity.
        jinja2.UndefinedError: the template needs a variable not listed above.
    """
    import jinja2

    root_id = f"{id_prefix}-{uuid.uuid4().hex[:12]}"
    template_src, css, js = page_assets(name)
    script = page_script(js, entry, root_id)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    fragment = env.from_string(template_src).render(
        root_id=root_id, title=title, css=css, data=json_for_script(payload), script=script)
    document = "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{page_policy(script)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>", "</head>", '<body style="margin:0">', fragment,
        "</body>", "</html>", ""])
    return HTML(document, fragment=fragment, title=title)
