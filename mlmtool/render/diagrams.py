"""Attention diagrams: one token × token heatmap per head, and an overview of all heads.

Rows are the attending token (query), columns the token attended to (key); the cell shade is
the attention weight on a fixed 0..1 scale with the viridis colour map (van der Walt & Smith,
matplotlib), so lighter means higher. Layers and heads are numbered from 1 in titles, file
names and the arguments of these functions.

Speed: drawing is vectorised with NumPy into 8-bit palette images (Pillow), with the token
labels drawn once per sentence and reused for every head, so all 144 heads of BERT-base for
a 20-token sentence take well under a second (``scripts/benchmarks/bench.py`` measures it against one
matplotlib figure per head).
"""

from __future__ import annotations

import html
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..analysis.attention import AttentionResult
from ._document import TextDocument
from .fonts import CSS_SANS, pil_font

#: Palette layout: indices 0..127 are colour-map levels, 128..255 a grey ramp for text.
_LEVELS = 128


@lru_cache(maxsize=1)
def _palette() -> list[int]:
    """768 ints: 128 viridis colours followed by 128 greys (black → white)."""
    from matplotlib import colormaps  # colour data only; no figure is made

    cmap = (colormaps["viridis"](np.linspace(0, 1, _LEVELS))[:, :3] * 255).round().astype(np.uint8)
    greys = np.repeat(np.linspace(0, 255, _LEVELS).round().astype(np.uint8)[:, None], 3, axis=1)
    return np.concatenate([cmap, greys]).reshape(-1).tolist()


def _font(size: int, text: str = "") -> ImageFont.FreeTypeFont:
    """The font that draws ``text`` at ``size`` px: DejaVu Sans unless the text needs another
    script's font (:func:`mlmtool.render.fonts.pil_font`, the one font rule)."""
    return pil_font(text, size)


def _grey_to_index(grey: np.ndarray) -> np.ndarray:
    """Map 8-bit grey levels (text anti-aliasing) onto the palette's grey ramp."""
    return (_LEVELS + (grey.astype(np.uint16) * (_LEVELS - 1) + 127) // 255).astype(np.uint8)


def _levels(weights: np.ndarray) -> np.ndarray:
    """Attention weights in [0, 1] → palette indices 0..127."""
    return np.clip(np.rint(weights * (_LEVELS - 1)), 0, _LEVELS - 1).astype(np.uint8)


@dataclass
class _Layout:
    """Where things go in a head diagram; the label template is drawn once per sentence."""

    cell: int
    left: int
    top: int
    title_h: int
    template: np.ndarray  # uint8 [height, width] palette indices
    font_size: int


def _layout(tokens: list[str]) -> _Layout:
    """Draw the token labels, colour bar and margins for ``tokens`` once."""
    n = len(tokens)
    font_size = 14 if n <= 40 else 11 if n <= 96 else 9
    fonts = [_font(font_size, t) for t in tokens]  # per label: CJK labels get a CJK font
    cell = font_size + 8
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    label_w = max(int(measure.textlength(t, font=f)) for t, f in zip(tokens, fonts)) + 8
    title_h = font_size + 16
    left, top = label_w, title_h + label_w
    bar_w = 70
    width, height = left + n * cell + bar_w, top + n * cell + 10
    canvas = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(canvas)
    for i, (t, font) in enumerate(zip(tokens, fonts)):  # row labels: attending token
        y = top + i * cell + cell // 2
        draw.text((left - 4, y), t, font=font, fill=0, anchor="rm")
    strip = Image.new("L", (label_w, cell), 255)  # column labels, rotated 90°
    for j, (t, font) in enumerate(zip(tokens, fonts)):
        strip.paste(255, (0, 0, label_w, cell))
        ImageDraw.Draw(strip).text((4, cell // 2), t, font=font, fill=0, anchor="lm")
        canvas.paste(strip.rotate(90, expand=True), (left + j * cell, title_h))
    template = _grey_to_index(np.asarray(canvas))
    # colour bar: 0 at the bottom, 1 at the top
    bx, by, bh = left + n * cell + 14, top, max(n * cell, 60)
    bar = _levels(np.linspace(1, 0, bh))[:, None].repeat(12, axis=1)
    template = np.pad(template, ((0, max(0, by + bh + 10 - height)), (0, 0)), constant_values=255)
    template[by:by + bh, bx:bx + 12] = bar
    ticks = Image.new("L", (bar_w - 30, bh + font_size), 255)
    tdraw = ImageDraw.Draw(ticks)
    for value in (0.0, 0.5, 1.0):
        tdraw.text((2, int((1 - value) * (bh - 1)) + font_size // 2), f"{value:g}", font=_font(11),
                   fill=0, anchor="lm")
    template[by - font_size // 2: by - font_size // 2 + ticks.height, bx + 16: bx + 16 + ticks.width] = \
        _grey_to_index(np.asarray(ticks))
    return _Layout(cell, left, top, title_h, template, font_size)


def _title_strip(text: str, width: int, height: int, size: int) -> np.ndarray:
    """A white strip with ``text`` in black, as palette indices."""
    strip = Image.new("L", (width, height), 255)
    ImageDraw.Draw(strip).text((8, height // 2), text, font=_font(size, text), fill=0, anchor="lm")
    return _grey_to_index(np.asarray(strip))


def _check_head(result: AttentionResult, layer: int, head: int) -> None:
    if not (1 <= layer <= result.num_layers and 1 <= head <= result.num_heads):
        raise ValueError(
            f"layer {layer}, head {head} is outside 1..{result.num_layers} x 1..{result.num_heads}")


def _title(result: AttentionResult, layer: int, head: int) -> str:
    """``Layer L, Head H (model)``, plus the layer's kind where the model has local layers
    (``Layer 2 · local ±64, Head 1``: ModernBERT's sliding-window layers, from the result)."""
    name = f" ({result.model_name})" if result.model_name else ""
    labels = result.layer_labels
    kind = f" · {labels[layer - 1]}" if labels else ""
    return f"Layer {layer}{kind}, Head {head}{name}"


def matrix_image(weights: np.ndarray, title: str, lay: _Layout) -> Image.Image:
    """One token x token heatmap in the head-diagram style (shared by head and summary diagrams).

    Args:
        weights: ``[seq, seq]`` values on the fixed 0..1 scale (rows = the token that
            attends or receives, columns = the token attended to or given).
        title: the line drawn above the grid.
        lay: from :func:`matrix_layout` for the same tokens.
    """
    n, c = weights.shape[0], lay.cell
    pixels = lay.template.copy()
    grid = _levels(np.asarray(weights))  # [seq, seq]
    pixels[lay.top:lay.top + n * c, lay.left:lay.left + n * c] = np.repeat(np.repeat(grid, c, 0), c, 1)
    pixels[:lay.title_h, :] = _title_strip(title, pixels.shape[1], lay.title_h, lay.font_size + 2)
    img = Image.fromarray(pixels, mode="P")
    img.putpalette(_palette())
    return img


def matrix_layout(tokens: list[str]) -> _Layout:
    """The labels, colour bar and margins for ``tokens``, drawn once and reused per matrix."""
    return _layout(tokens)


def _head_image(result: AttentionResult, layer: int, head: int, lay: _Layout) -> Image.Image:
    return matrix_image(result.attention[layer - 1, head - 1], _title(result, layer, head), lay)


def render_head(result: AttentionResult, layer: int, head: int) -> Image.Image:
    """Draw one head's attention as a token × token heatmap.

    Args:
        result: from :func:`mlmtool.attention`.
        layer: layer number counted from 1.
        head: head number counted from 1.

    Returns:
        A Pillow palette image (``image.save("x.png")`` writes it; Jupyter shows it). Rows
        are attending tokens, columns attended tokens, title "Layer L, Head H".

    Raises:
        ValueError: layer or head outside the model's range.
    """
    _check_head(result, layer, head)
    return _head_image(result, layer, head, _layout(result.tokens))


def _wrap(text: str, width: int, font) -> list[str]:
    """``text`` broken at spaces into lines at most ``width`` px wide in ``font`` (a longer word
    stays whole on its own line)."""
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    lines: list[str] = []
    for word in text.split():
        if lines and measure.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def with_caption(img: Image.Image, notes: list[str], size: int = 12, min_width: int = 420) -> Image.Image:
    """``img`` (a palette image of this module) with ``notes`` written under it, one bullet each.

    The notes say what a picture of this model's attention assumes (ModernBERT's local
    layers, grouped-query attention: :func:`mlmtool.analysis.arch.attention_notes`). The
    image is widened with white to ``min_width`` px when narrower, so the notes stay readable.

    Args:
        img: a ``P``-mode image on :func:`_palette` (head, overview or summary diagram).
        notes: one line of text each; ``[]`` returns ``img`` itself (BERT: unchanged).
        size: font size in px (default 12).

    Returns:
        A new palette image, ``img`` at the top left.
    """
    if not notes:
        return img
    font = _font(size, " ".join(notes))
    width = max(img.width, min_width)
    lines = [ln for note in notes for ln in ["• " + x if i == 0 else "   " + x
                                             for i, x in enumerate(_wrap(note, width - 44, font))]]
    strip = Image.new("L", (width, 10 + len(lines) * (size + 5)), 255)
    draw = ImageDraw.Draw(strip)
    for i, line in enumerate(lines):
        draw.text((8, 6 + i * (size + 5)), line, font=font, fill=0, anchor="la")
    top = np.full((img.height, width), 255, dtype=np.uint8)  # 255: white on the grey ramp
    top[:, :img.width] = np.asarray(img)
    out = Image.fromarray(np.concatenate([top, _grey_to_index(np.asarray(strip))]), mode="P")
    out.putpalette(_palette())
    return out


def _row_labels(result: AttentionResult) -> list[str]:
    """``L1``..``L{L}``, with the layer's kind where the model has local layers (``L2 · local ±64``)."""
    labels = result.layer_labels
    return [f"L{l + 1}" + (f" · {labels[l]}" if labels else "") for l in range(result.num_layers)]


def render_overview(result: AttentionResult, thumb: int = 72) -> Image.Image:
    """All heads in one grid: rows are layers 1..L, columns heads 1..H.

    Where the model has local sliding-window layers (ModernBERT) each row says its kind
    (``L2 · local ±64``), and the model's attention notes (:attr:`AttentionResult.notes`:
    local layers, grouped-query attention) are written under the grid; for BERT neither.

    Args:
        result: from :func:`mlmtool.attention`.
        thumb: approximate thumbnail side in pixels (default 72); each token gets
            ``max(1, thumb // seq)`` pixels.

    Returns:
        A Pillow palette image with "L1".."L{L}" and "H1".."H{H}" labels.
    """
    L, H, n = result.num_layers, result.num_heads, len(result.tokens)
    px = max(1, thumb // n)
    side, gap = n * px, 6
    font = _font(12)
    rows = _row_labels(result)
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    left = 40 if not result.layer_labels else int(max(measure.textlength(r, font=font) for r in rows)) + 14
    top = 48
    width, height = left + H * (side + gap), top + L * (side + gap)
    canvas = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 14), f"Attention, all heads ({result.model_name or 'model'}): rows = layers, "
              "columns = heads", font=font, fill=0, anchor="lm")
    for h in range(H):
        draw.text((left + h * (side + gap) + side // 2, top - 8), f"H{h + 1}", font=font, fill=0, anchor="mb")
    for l in range(L):
        draw.text((left - 6, top + l * (side + gap) + side // 2), rows[l], font=font, fill=0, anchor="rm")
    pixels = _grey_to_index(np.asarray(canvas))
    grids = np.repeat(np.repeat(_levels(result.attention), px, 2), px, 3)  # [L, H, side, side]
    for l in range(L):
        y = top + l * (side + gap)
        for h in range(H):
            x = left + h * (side + gap)
            pixels[y:y + side, x:x + side] = grids[l, h]
    img = Image.fromarray(pixels, mode="P")
    img.putpalette(_palette())
    return with_caption(img, list(result.notes))


class SVG(TextDocument):
    """An SVG document as a string that Jupyter displays and that can save itself."""

    def _repr_svg_(self) -> str:
        return str(self)


def _hex_colours() -> list[str]:
    pal = _palette()
    return [f"#{pal[3 * i]:02x}{pal[3 * i + 1]:02x}{pal[3 * i + 2]:02x}" for i in range(_LEVELS)]


def _svg_cells(weights: np.ndarray, x0: float, y0: float, cell: float) -> str:
    colours = _hex_colours()
    levels = _levels(weights)
    n = weights.shape[0]
    return "".join(
        f'<rect x="{x0 + j * cell:g}" y="{y0 + i * cell:g}" width="{cell:g}" height="{cell:g}" '
        f'fill="{colours[levels[i, j]]}"><title>{weights[i, j]:.3f}</title></rect>'
        for i in range(n) for j in range(n))


def render_head_svg(result: AttentionResult, layer: int, head: int) -> SVG:
    """Like :func:`render_head` but as scalable SVG (each cell has a tooltip with its weight).

    Raises:
        ValueError: layer or head outside the model's range.
    """
    _check_head(result, layer, head)
    return matrix_svg(result.tokens, result.attention[layer - 1, head - 1], _title(result, layer, head))


def matrix_svg(tokens: list[str], weights: np.ndarray, title: str, notes: list[str] | None = None) -> SVG:
    """One token x token heatmap as SVG in the head-diagram style (a tooltip per cell).

    Args:
        tokens: ``[seq]`` labels; weights: ``[seq, seq]`` on the fixed 0..1 scale; title: top line.
        notes: lines written under the grid, one bullet each (default none).
    """
    escaped, notes = [html.escape(t) for t in tokens], list(notes or [])
    n, cell = len(escaped), 22
    label = 8 + 8 * max(len(t) for t in tokens)
    left, top = label, 32 + label
    w, h = left + n * cell + 10, top + n * cell + 10
    if notes:
        w, h = max(w, 24 + 7 * max(map(len, notes))), h + 20 * len(notes)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             f'font-family="{html.escape(CSS_SANS)}" font-size="13">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="8" y="20" font-size="15">{html.escape(title)}</text>']
    for i, t in enumerate(escaped):
        parts.append(f'<text x="{left - 4}" y="{top + i * cell + cell / 2 + 4:g}" text-anchor="end">{t}</text>')
        x = left + i * cell + cell / 2 + 4
        parts.append(f'<text x="{x:g}" y="{top - 4}" transform="rotate(-90 {x:g} {top - 4})">{t}</text>')
    parts.append(_svg_cells(np.asarray(weights), left, top, cell))
    parts += [f'<text x="8" y="{top + n * cell + 24 + 20 * i:g}" font-size="12">• {html.escape(note)}</text>'
              for i, note in enumerate(notes)]
    parts.append("</svg>")
    return SVG("".join(parts))


def render_overview_svg(result: AttentionResult, thumb: int = 72) -> SVG:
    """Like :func:`render_overview` but as SVG (layer kinds and notes as text, for local layers)."""
    L, H, n = result.num_layers, result.num_heads, len(result.tokens)
    cell = max(thumb / n, 0.5)
    rows, notes = _row_labels(result), list(result.notes)
    left = 40 if not result.layer_labels else 14 + 7 * max(len(r) for r in rows)
    side, gap, top = n * cell, 6, 48
    w, h = left + H * (side + gap), top + L * (side + gap)
    grid_h, w, h = h, (max(w, 24 + 6 * max(map(len, notes))) if notes else w), h + 18 * len(notes)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:g}" height="{h:g}" '
             f'font-family="{html.escape(CSS_SANS)}" font-size="12">',
             f'<rect width="{w:g}" height="{h:g}" fill="white"/>',
             f'<text x="4" y="18">Attention, all heads ({html.escape(result.model_name or "model")})</text>']
    for hd in range(H):
        parts.append(f'<text x="{left + hd * (side + gap) + side / 2:g}" y="{top - 8}" '
                     f'text-anchor="middle">H{hd + 1}</text>')
    for l in range(L):
        parts.append(f'<text x="{left - 6}" y="{top + l * (side + gap) + side / 2 + 4:g}" '
                     f'text-anchor="end">{html.escape(rows[l])}</text>')
        for hd in range(H):
            parts.append(_svg_cells(result.attention[l, hd], left + hd * (side + gap),
                                    top + l * (side + gap), cell))
    parts += [f'<text x="8" y="{grid_h + 14 + 18 * i:g}" font-size="11">• {html.escape(note)}</text>'
              for i, note in enumerate(notes)]
    parts.append("</svg>")
    return SVG("".join(parts))


def diagram_filename(layer: int, head: int, fmt: str = "png") -> str:
    """``Attention_Layer{L}_Head{H}.{fmt}`` with L and H counted from 1."""
    return f"Attention_Layer{layer}_Head{head}.{fmt}"


def save_attention_diagrams(result: AttentionResult, out_dir: str | Path, fmt: str = "png",
                            workers: int = 2) -> list[Path]:
    """Write one diagram per head plus ``overview.{fmt}`` into ``out_dir``.

    Files are named ``Attention_Layer{L}_Head{H}.{fmt}`` with L and H counted from 1, so a
    12-layer, 12-head model gives 144 head files and the overview.

    Args:
        result: from :func:`mlmtool.attention`.
        out_dir: an existing directory (the caller decides about overwriting).
        fmt: ``"png"`` (default) or ``"svg"``.
        workers: threads encoding PNGs in parallel (Pillow releases the GIL), default 2.

    Returns:
        The written paths, heads in layer-major order, the overview last.

    Raises:
        ValueError: unknown ``fmt``.
    """
    if fmt not in ("png", "svg"):
        raise ValueError(f"unknown format '{fmt}' (use png or svg)")
    out = Path(out_dir)
    heads = [(l, h) for l in range(1, result.num_layers + 1) for h in range(1, result.num_heads + 1)]
    paths = [out / diagram_filename(l, h, fmt) for l, h in heads]
    if fmt == "svg":
        for (l, h), path in zip(heads, paths):
            render_head_svg(result, l, h).save(path)
        overview = render_overview_svg(result).save(out / "overview.svg")
        return paths + [overview]
    lay = _layout(result.tokens)

    def write(job):
        (l, h), path = job
        _head_image(result, l, h, lay).save(path, format="PNG", compress_level=1)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(write, zip(heads, paths)))
    render_overview(result).save(out / "overview.png", format="PNG", compress_level=1)
    return paths + [out / "overview.png"]
