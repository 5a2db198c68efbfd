"""One font rule for every renderer: DejaVu Sans first, then fonts for the scripts it lacks.

DejaVu Sans (shipped with matplotlib) covers Latin, Greek, Cyrillic, Arabic and Hebrew, so
English output is drawn exactly as before. Text it cannot draw (Chinese, Japanese, Korean,
Devanagari, emoji) falls back along :func:`font_chain`:

1. a system font found through matplotlib's font manager (Noto Sans CJK, Source Han Sans,
   WenQuanYi, PingFang, Hiragino, Microsoft YaHei, Yu Gothic, Malgun Gothic, Noto Sans
   Devanagari, Noto Emoji, Symbola, ...: the names in :data:`SYSTEM_FAMILIES`);
2. else a font installed with mlmtool from PyPI: Noto Sans CJK TC Regular
   (``cvttf-notosanscjk-regular``; all of Chinese, Japanese kana/kanji and Korean Hangul)
   and Noto Sans Devanagari (``fontpkg-noto-sans-devanagari``), both SIL OFL 1.1
   (docs/dependencies.md says why these).

How each renderer uses it:

- **Pillow** draws one string with one font, so :func:`pil_font` picks, per string, the first
  font of the chain that has a glyph for every character (else the one that has most).
  Pillow with libraqm (``PIL.features.check('raqm')``) shapes the text and lays out
  right-to-left scripts (Arabic joining forms, Hebrew order) by itself; without libraqm,
  Arabic and Hebrew come out unjoined and left-to-right (the one known limitation).
- **matplotlib** (3.6+) falls back glyph by glyph through a list of families:
  :func:`use_in_matplotlib` registers the packaged files with the font manager and appends
  the chain's families to ``rcParams["font.family"]`` (after the user's families, so
  nothing that DejaVu Sans draws changes). matplotlib does not shape text: Arabic and Hebrew in figures
  are drawn in logical order with isolated letter forms.
- **HTML/SVG**: :data:`CSS_SANS` / :data:`CSS_MONO` are the font stacks of the templates
  and of the SVG diagrams; the browser falls back glyph by glyph and shapes RTL itself.

Colour emoji fonts (bitmap CBDT, e.g. Noto Color Emoji) are not used: Pillow can only load
them at one size and matplotlib cannot draw them; a monochrome system emoji font (Noto Emoji,
Symbola, Segoe UI Symbol) is used when present, otherwise emoji are boxes in PNGs.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import ImageFont

#: System families looked up through matplotlib's font manager, in order of preference.
SYSTEM_FAMILIES = (
    "Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Sans CJK KR",
    "Source Han Sans SC", "Source Han Sans", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
    "PingFang SC", "Hiragino Sans", "Hiragino Sans GB", "Microsoft YaHei", "Yu Gothic",
    "Meiryo", "Malgun Gothic", "Apple SD Gothic Neo", "Noto Sans Devanagari", "Mangal",
    "Noto Emoji", "Symbola", "Segoe UI Symbol",
)

#: Fonts installed with mlmtool: (module, file inside it); used when no system font covers.
PACKAGED_FONTS = (
    ("cvttf_NotoSansCJK_Regular", "NotoSansCJKtc-Regular.otf"),
    ("fontpkg_noto_sans_devanagari", "files/NotoSansDevanagari[wdth,wght].ttf"),
)

_CJK_CSS = ('"Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Hiragino Sans", '
            '"Microsoft YaHei", "Yu Gothic", "Malgun Gothic", "WenQuanYi Micro Hei", '
            '"Noto Sans Devanagari", "Noto Color Emoji", "Segoe UI Emoji", "Apple Color Emoji"')
#: The one sans-serif stack of every HTML page and SVG diagram.
CSS_SANS = f'system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Arial, {_CJK_CSS}, sans-serif'
#: The one monospace stack (token chips, tables of pieces).
CSS_MONO = f'ui-monospace, "DejaVu Sans Mono", {_CJK_CSS}, monospace'


def _dejavu() -> Path | None:
    """DejaVu Sans as shipped in matplotlib's ``mpl-data``, or None."""
    spec = importlib.util.find_spec("matplotlib")
    if spec and spec.origin:
        path = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return path
    return None


def _packaged(module: str, name: str) -> Path | None:
    """The file ``name`` inside the installed package ``module``, or None."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / name
    return path if path.is_file() else None


@lru_cache(maxsize=1)
def _system_fonts() -> tuple[Path, ...]:
    """Files of the :data:`SYSTEM_FAMILIES` present on this machine (matplotlib's font list)."""
    from matplotlib import font_manager

    by_name: dict[str, Path] = {}
    for entry in font_manager.fontManager.ttflist:
        if entry.style == "normal" and entry.weight in (400, "normal", "regular", "book"):
            by_name.setdefault(entry.name, Path(entry.fname))
    return tuple(by_name[f] for f in SYSTEM_FAMILIES if f in by_name)


@lru_cache(maxsize=1)
def font_chain() -> tuple[Path, ...]:
    """The font files in fallback order: DejaVu Sans, system fonts, then packaged fonts.

    Returns:
        Paths of existing files (no duplicates); may be empty when even matplotlib's DejaVu
        Sans is missing (Pillow's default font is then used).
    """
    chain = [p for p in (_dejavu(), *_system_fonts(), *(_packaged(m, n) for m, n in PACKAGED_FONTS))
             if p is not None]
    return tuple(dict.fromkeys(chain))


@lru_cache(maxsize=None)
def _coverage(path: Path) -> frozenset[int]:
    """The code points that ``path`` has glyphs for (its cmap, read by FreeType)."""
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(str(path)).get_charmap())


def font_path_for(text: str) -> Path | None:
    """The first font of :func:`font_chain` that covers every character of ``text``.

    Whitespace and control characters are not counted. When no font covers them all, the
    font covering most of them (the earliest on ties). None only when the chain is empty.
    """
    chain = font_chain()
    if not chain:
        return None
    needed = {ord(c) for c in text if c.isprintable() and not c.isspace()}
    best, best_count = chain[0], -1
    for path in chain:
        count = len(needed & _coverage(path))
        if count == len(needed):
            return path
        if count > best_count:
            best, best_count = path, count
    return best


@lru_cache(maxsize=64)
def _truetype(path: Path | None, size: int) -> ImageFont.FreeTypeFont:
    if path is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(str(path), size)


def pil_font(text: str, size: int) -> ImageFont.FreeTypeFont:
    """A Pillow font at ``size`` px that draws ``text`` (see :func:`font_path_for`).

    With libraqm, Pillow shapes the text with it and picks the direction from the text
    (right-to-left for Arabic and Hebrew).
    """
    return _truetype(font_path_for(text), size)


_MPL_DONE = False


def _existing_texts(artists) -> list:
    """The ``Text`` objects of the figures of ``artists`` (Axes, Figures, sequences, None)."""
    from matplotlib.text import Text

    stack, figures = [artists], {}
    while stack:
        a = stack.pop()
        if isinstance(a, (list, tuple, np.ndarray)):
            stack.extend(a)
        elif a is not None:
            fig = getattr(a, "figure", None) or a
            figures[id(fig)] = fig
    return [t for fig in figures.values() for t in fig.findobj(Text)]


def use_in_matplotlib(artists=None) -> list[str]:
    """Make matplotlib fall back to the chain's fonts for glyphs DejaVu Sans lacks.

    Registers the packaged font files with ``matplotlib.font_manager.fontManager`` and
    appends their family names to ``rcParams["font.family"]`` (the user's families, e.g.
    ``sans-serif`` = DejaVu Sans, stay first, so figures without such glyphs are unchanged).
    matplotlib >= 3.6 falls back glyph by glyph through that list; a generic family there
    stands for its first font only, which is why the names go into ``font.family``. Text
    made before this call (the titles and tick labels of an ``ax`` the caller passes) keeps
    its font list, so the texts of ``artists``' figures get the fallbacks appended too.

    Args:
        artists: an ``Axes``, ``Figure`` or a sequence of them, or None (default).

    Returns:
        The family names of the fallback fonts, in chain order.
    """
    global _MPL_DONE
    import matplotlib
    from matplotlib import font_manager

    families = []
    for path in font_chain()[1:]:
        if not _MPL_DONE:
            font_manager.fontManager.addfont(str(path))
        families.append(font_manager.FontProperties(fname=str(path)).get_name())
    families = list(dict.fromkeys(families))
    _MPL_DONE = True
    current = list(matplotlib.rcParams["font.family"])
    matplotlib.rcParams["font.family"] = current + [f for f in families if f not in current]
    for text in _existing_texts(artists):
        have = list(text.get_fontfamily())
        text.set_fontfamily(have + [f for f in families if f not in have])
    return families
