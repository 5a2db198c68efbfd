"""The HTML view in a real browser: Debian's Chromium driven by Playwright, network cut off.

Chromium comes from Debian (``apt-get install chromium``; ``.ci/run`` installs it), never
from ``playwright install``. The tests skip cleanly when ``/usr/bin/chromium`` is absent.
Every request that is not ``file://`` is aborted and recorded; a test fails on any such
request, any console error, any page error and any dialog (``alert``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlmtool.analysis.attention import AttentionResult
from mlmtool.render.html_view import _viridis_hex, render_view
from tests.browsing import CHROMIUM, chromium_context, watch

XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


def softmax_attention(layers, heads, n, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    att = np.exp(rng.normal(size=(layers, heads, n, n)) * 2)
    return (att / att.sum(-1, keepdims=True)).astype(np.float32)


def fake_result(layers, heads, tokens, text) -> AttentionResult:
    n = len(tokens)
    return AttentionResult(text=text, tokens=tokens, attention=softmax_attention(layers, heads, n),
                           word_ids=[None] + list(range(n - 2)) + [None],
                           special=[True] + [False] * (n - 2) + [True], model_name="fake-base")


def viridis() -> np.ndarray:
    """The page's colour map, ``uint8 [256, 3]``."""
    return np.frombuffer(bytes.fromhex(_viridis_hex()), dtype=np.uint8).reshape(256, 3)


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    """A headless Chromium with a fresh user-data dir; non-file requests are aborted."""
    pytest.importorskip("playwright.sync_api")
    with chromium_context(tmp_path_factory.mktemp("chromium-profile"), lambda url: url.startswith("file://"),
                          viewport={"width": 1500, "height": 1100}, accept_downloads=True, offline=True) as context:
        yield context


@pytest.fixture
def page(browser_context):
    """A fresh tab that records console errors, page errors and dialogs."""
    with watch(browser_context) as pg:
        yield pg


def open_view(page, view, path: Path):
    """Save ``view`` to ``path``, open it, wait until it is drawn; returns the view's root."""
    view.save(path)
    page.goto(path.resolve().as_uri())
    page.wait_for_selector(".mlmv[data-ready='1']", timeout=15_000)
    return page.locator(".mlmv")


def assert_grid_aligned(root, rows: int, cols: int) -> None:
    """Thumbnails form a table: one row per layer, one column per head."""
    boxes = root.locator(".mlmv-thumb:visible").evaluate_all(
        "bs => bs.map(b => { const r = b.getBoundingClientRect(); return [+b.dataset.layer, +b.dataset.head, r.x, r.y]; })")
    assert len(boxes) == rows * cols
    for key, coord in ((0, 3), (1, 2)):  # same layer -> same y; same head -> same x
        groups = {}
        for b in boxes:
            groups.setdefault(b[key], set()).add(round(b[coord]))
        assert all(len(v) == 1 for v in groups.values()), groups
    assert len({round(b[3]) for b in boxes}) == rows and len({round(b[2]) for b in boxes}) == cols


def visible_lines(page) -> list[tuple[int, int]]:
    return page.evaluate("""() => Array.from(document.querySelectorAll('.mlmv-lines line'))
        .filter(l => getComputedStyle(l).display !== 'none').map(l => [+l.dataset.i, +l.dataset.j])""")


def test_grid_click_hover_filters_offline(page, browser_context, tmp_path):
    L, H = 12, 12
    tokens = ["[CLS]", *XSS, *[f"w{i}" for i in range(13)], "[SEP]"]
    text = f"a {XSS[0]} b {XSS[1]} c"
    res = fake_result(L, H, tokens, text)
    labels = {(3, 7): "next token", (1, 2): "[CLS]", (5, 5): "next token"}
    open_view(page, render_view(res, head_labels=labels, note="Predictions need an MLM head."),
              tmp_path / "view.html")
    n = len(tokens)

    # the grid: L x H thumbnails, each an n x n canvas whose pixels are the colour-mapped weights
    assert page.locator(".mlmv-thumb").count() == L * H
    assert page.locator(".mlmv-row").count() == L and page.locator(".mlmv-col").count() == H
    assert_grid_aligned(page, L, H)
    pixels = page.evaluate("""([l, h]) => {
        const c = document.querySelector(`.mlmv-thumb[data-layer="${l}"][data-head="${h}"] canvas`);
        return [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)];
    }""", [3, 7])
    assert pixels[:2] == [n, n]
    rgb = np.array(pixels[2], dtype=np.uint8).reshape(n, n, 4)[..., :3]
    levels = np.clip(np.rint(res.attention[2, 6] * 255), 0, 255).astype(int)  # layer 3, head 7 from 0
    assert np.array_equal(rgb, viridis()[levels])

    # click a head: the large view shows it, with its label
    page.click(".mlmv-thumb[data-layer='3'][data-head='7']")
    assert page.inner_text(".mlmv-detail-title") == "Layer 3, Head 7"
    assert page.inner_text(".mlmv-detail-label") == "Role: next token"
    assert page.locator(".mlmv-thumb.mlmv-selected").count() == 1
    assert page.get_attribute(".mlmv-thumb.mlmv-selected", "data-layer") == "3"

    # hover a cell of the heatmap: the caption names the two tokens and the (8-bit) weight
    geo = page.evaluate("() => Object.assign({}, document.querySelector('.mlmv-heat').dataset)")
    page.locator(".mlmv-heat").scroll_into_view_if_needed()
    box = page.locator(".mlmv-heat").bounding_box()
    i, j, cell = 4, 9, float(geo["cell"])
    page.mouse.move(box["x"] + float(geo["left"]) + (j + 0.5) * cell, box["y"] + float(geo["top"]) + (i + 0.5) * cell)
    caption = page.inner_text(".mlmv-hover")
    assert f"({i}) → “{tokens[j]}” ({j}): {levels[i, j] / 255:.3f}" in caption

    # hover a token in the line view: only its links stay visible
    every = visible_lines(page)
    assert len(every) > n
    page.hover(".mlmv-tok-from[data-i='5']")
    shown = visible_lines(page)
    assert shown and all(a == 5 for a, _ in shown)
    assert sorted(shown) == sorted(x for x in every if x[0] == 5)
    page.hover(".mlmv-tok-to[data-i='3']")
    assert all(b == 3 for _, b in visible_lines(page))
    page.mouse.move(1, 1)
    assert len(visible_lines(page)) == len(every)

    # filters: one layer, then one head
    page.select_option(".mlmv-f-layer", "2")
    visible = page.locator(".mlmv-thumb:visible")
    assert visible.count() == H
    assert set(visible.evaluate_all("bs => bs.map(b => b.dataset.layer)")) == {"2"}
    page.select_option(".mlmv-f-head", "7")
    assert page.locator(".mlmv-thumb:visible").count() == 1
    page.select_option(".mlmv-f-layer", "")
    assert_grid_aligned(page, L, 1)
    page.select_option(".mlmv-f-layer", "")
    page.select_option(".mlmv-f-head", "")
    page.select_option(".mlmv-f-role", "next token")
    assert page.locator(".mlmv-thumb:not(.mlmv-dim)").count() == 2

    # hostile strings are text: nothing ran, no <img> was created, the strings are shown as written
    assert page.locator("img").count() == 0
    assert page.inner_text(".mlmv-text") == text
    chips = page.locator(".mlmv-chip").all_inner_texts()
    assert chips[1:3] == XSS
    assert page.inner_text(".mlmv-note") == "Predictions need an MLM head."

    shot = tmp_path / "view.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    assert page.problems == []
    assert browser_context.external == []


def test_downloads_svg_and_png(page, tmp_path):
    tokens = ["[CLS]", XSS[0], "cat", "[SEP]"]
    res = fake_result(2, 3, tokens, "x")
    open_view(page, render_view(res), tmp_path / "view.html")
    page.click(".mlmv-thumb[data-layer='2'][data-head='3']")
    with page.expect_download() as info:
        page.click(".mlmv-dl-svg")
    svg_path = tmp_path / info.value.suggested_filename
    info.value.save_as(svg_path)
    assert svg_path.name == "Attention_Layer2_Head3.svg"
    svg = svg_path.read_text(encoding="utf-8")
    assert svg.startswith("<svg") and svg.count("<rect") == 1 + len(tokens) ** 2
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg and "<script>" not in svg
    assert "Layer 2, Head 3" in svg
    import xml.dom.minidom
    xml.dom.minidom.parseString(svg)  # well-formed

    with page.expect_download() as info:
        page.click(".mlmv-dl-png")
    png_path = tmp_path / "head.png"
    info.value.save_as(png_path)
    assert info.value.suggested_filename == "Attention_Layer2_Head3.png"
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.problems == []


@pytest.mark.parametrize("precision,compress", [("uint8", False), ("float16", True), ("float16", False)])
def test_every_encoding_decodes_to_the_same_pixels(page, tmp_path, precision, compress):
    res = fake_result(2, 3, ["[CLS]", "a", "b", "c", "[SEP]"], "a b c")
    open_view(page, render_view(res, precision=precision, compress=compress), tmp_path / "v.html")
    got = page.evaluate("""() => Array.from(document.querySelectorAll('.mlmv-thumb canvas')).map(c =>
        Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data))""")
    att = res.attention.astype(np.float16).astype(np.float32) if precision == "float16" else res.attention
    levels = np.clip(np.rint(att * 255), 0, 255).astype(int).reshape(6, 5, 5)
    for k, data in enumerate(got):
        assert np.array_equal(np.array(data, dtype=np.uint8).reshape(5, 5, 4)[..., :3], viridis()[levels[k]])
    assert page.problems == []


def test_real_model_page_with_predictions(page, tiny_bert, tmp_path):
    from mlmtool.commands.view import build_view

    view, note = build_view(tiny_bert, "the [MASK] sat on the mat .", top_k=3)
    assert note is None
    open_view(page, view, tmp_path / "bert.html")
    assert page.locator(".mlmv-thumb").count() == tiny_bert.num_layers * tiny_bert.num_heads
    assert_grid_aligned(page, tiny_bert.num_layers, tiny_bert.num_heads)
    from mlmtool.analysis.predict import predict

    pred = predict(tiny_bert, "the [MASK] sat on the mat .", top_k=3)
    rows = page.locator(".mlmv-preds tr")
    assert rows.count() == 3
    for r, cand in enumerate(pred.masks[0].candidates):
        assert rows.nth(r).locator(".mlmv-tok").inner_text() == cand.token
        assert rows.nth(r).locator(".mlmv-p").inner_text() == f"{100 * cand.score:.1f} %"
    assert page.locator(".mlmv-chip.mlmv-mask").count() == 1
    assert page.problems == []


def test_two_fragments_on_one_page_work_independently(page):
    """What Jupyter does: several ``_repr_html_`` outputs in one document."""
    a = render_view(fake_result(2, 2, ["[CLS]", "a", "[SEP]"], "a"))
    b = render_view(fake_result(3, 1, ["[CLS]", "b", "c", "[SEP]"], "b c"))
    page.set_content(f"<html><body>{a._repr_html_()}<hr>{b._repr_html_()}</body></html>")
    page.wait_for_function("document.querySelectorAll(\".mlmv[data-ready='1']\").length === 2")
    roots = page.locator(".mlmv")
    assert roots.nth(0).locator(".mlmv-thumb").count() == 4
    assert roots.nth(1).locator(".mlmv-thumb").count() == 3
    assert_grid_aligned(roots.nth(0), 2, 2)
    assert_grid_aligned(roots.nth(1), 3, 1)
    roots.nth(1).locator(".mlmv-thumb[data-layer='3']").click()
    assert roots.nth(1).locator(".mlmv-detail-title").inner_text() == "Layer 3, Head 1"
    assert roots.nth(0).locator(".mlmv-detail-title").inner_text() == "Layer 1, Head 1"
    assert page.problems == []


def test_harness_sees_external_requests(page, browser_context, tmp_path):
    """Control: the request recorder does catch a page that reaches out."""
    path = tmp_path / "leak.html"
    path.write_text('<img src="http://example.com/x.png">', encoding="utf-8")
    page.goto(path.as_uri())
    page.wait_for_load_state()
    assert browser_context.external == ["http://example.com/x.png"]
    browser_context.external.clear()


def _cell_rgb(page, selector, i, j):
    """The colour at the centre of cell (i, j) of a heatmap canvas drawn by view.js."""
    return page.evaluate("""([sel, i, j]) => {
        const c = document.querySelector(sel), d = c.dataset, k = c.width / parseFloat(c.style.width);
        const x = (+d.left + (j + 0.5) * +d.cell) * k, y = (+d.top + (i + 0.5) * +d.cell) * k;
        return Array.from(c.getContext('2d').getImageData(Math.floor(x), Math.floor(y), 1, 1).data).slice(0, 3);
    }""", [selector, i, j])


def _sums(page):
    return page.evaluate("""() => Array.from(document.querySelectorAll('.mlmv-sum-row')).map(r =>
        [+r.dataset.head, r.dataset.rollout === undefined ? null : +r.dataset.rollout])""")


def test_rollout_layerwise_and_selected_tokens_panels(page, browser_context, tiny_bert, tmp_path):
    from mlmtool.analysis.attention import attention
    from mlmtool.analysis.layerwise import layerwise_predictions
    from mlmtool.analysis.predict import predict
    from mlmtool.analysis.rollout import attention_rollout

    text = "the [MASK] sat on the mat ."
    att = attention(tiny_bert, text)
    lw = layerwise_predictions(tiny_bert, text, top_k=3)
    roll = attention_rollout(att)
    open_view(page, render_view(att, predict(tiny_bert, text, top_k=3), layerwise=lw), tmp_path / "panels.html")
    n = len(att.tokens)
    half = roll.matrix.astype(np.float16).astype(np.float64)  # the page holds the rollout as float16

    # rollout panel: title, and every cell's colour is the colour-mapped rollout value
    assert page.locator(".mlmv-rollout-wrap").is_visible()
    assert page.inner_text(".mlmv-rollout-title") == roll.title
    levels = np.clip(np.rint(half * 255), 0, 255).astype(int)
    for i, j in [(0, 0), (1, 2), (n - 1, 3), (4, 4)]:
        assert _cell_rgb(page, ".mlmv-rollout", i, j) == viridis()[levels[i, j]].tolist()
    geo = page.evaluate("() => Object.assign({}, document.querySelector('.mlmv-rollout').dataset)")
    page.locator(".mlmv-rollout").scroll_into_view_if_needed()
    box = page.locator(".mlmv-rollout").bounding_box()
    cell = float(geo["cell"])
    page.mouse.move(box["x"] + float(geo["left"]) + 2.5 * cell, box["y"] + float(geo["top"]) + 1.5 * cell)
    assert page.inner_text(".mlmv-rollout-hover").endswith(f"({2}): {half[1, 2]:.3f}")

    # layer-wise panel: one table per mask, layers 0..L as rows, with the ranks and pieces of the result
    mask = lw.masks[0]
    rows = page.locator(".mlmv-lw-row")
    assert rows.count() == tiny_bert.num_layers + 1
    assert rows.locator(".mlmv-rank").all_inner_texts() == [str(r.final_rank) for r in mask.by_layer]
    first = rows.nth(0).locator(".mlmv-piece").all_inner_texts()
    assert [p.rsplit(" ", 1)[0] for p in first] == [t.token for t in mask.by_layer[0].top]
    assert page.locator(".mlmv-lw-mask h3").inner_text().startswith(f"Mask 1: final “{mask.final_token.strip()}”")

    # selected tokens: nothing yet; one token = its row; two tokens = the sum of both rows
    assert not page.locator(".mlmv-sum").is_visible()
    page.click(".mlmv-chip[data-i='1']")
    one = np.array(_sums(page))
    head = lambda l, h: np.clip(np.rint(att.attention[l, h] * 255), 0, 255) / 255  # uint8 on the page
    np.testing.assert_allclose(one[:, 0], head(0, 0)[1], atol=1e-5)
    np.testing.assert_allclose(one[:, 1], half[1], atol=1e-5)
    page.click(".mlmv-chip[data-i='3']")
    two = np.array(_sums(page))
    assert not np.allclose(two, one)  # the summed view changed
    np.testing.assert_allclose(two[:, 0], head(0, 0)[1] + head(0, 0)[3], atol=1e-5)
    np.testing.assert_allclose(two[:, 1], half[1] + half[3], atol=1e-5)
    assert page.get_attribute(".mlmv", "data-picked") == "1,3"
    assert page.locator(".mlmv-chip.mlmv-picked").count() == 2
    # another head: the head column follows it, the rollout column stays
    page.click(".mlmv-thumb[data-layer='2'][data-head='3']")
    other = np.array(_sums(page))
    np.testing.assert_allclose(other[:, 0], head(1, 2)[1] + head(1, 2)[3], atol=1e-5)
    np.testing.assert_allclose(other[:, 1], two[:, 1])
    assert page.inner_text(".mlmv-sum-head") == "Layer 2, Head 3"
    # clicking a token again drops it; Clear drops all
    page.click(".mlmv-chip[data-i='1']")
    np.testing.assert_allclose(np.array(_sums(page))[:, 1], half[3], atol=1e-5)
    page.click(".mlmv-picked-clear")
    assert not page.locator(".mlmv-sum").is_visible() and page.locator(".mlmv-chip.mlmv-picked").count() == 0

    assert page.problems == []
    assert browser_context.external == []


def test_panels_without_rollout_or_layerwise(page, browser_context, tmp_path):
    res = fake_result(2, 2, ["[CLS]", XSS[0], "b", "[SEP]"], "x")
    open_view(page, render_view(res, rollout=False), tmp_path / "plain.html")
    assert not page.locator(".mlmv-rollout-wrap").is_visible()
    assert not page.locator(".mlmv-layerwise").is_visible()
    page.click(".mlmv-chip[data-i='1']")
    page.click(".mlmv-chip[data-i='2']")
    sums = _sums(page)
    levels = np.clip(np.rint(res.attention[0, 0] * 255), 0, 255) / 255
    np.testing.assert_allclose([s[0] for s in sums], levels[1] + levels[2], atol=1e-5)
    assert all(s[1] is None for s in sums) and not page.locator(".mlmv-sum-roll").is_visible()
    assert page.locator(".mlmv-sum-row .mlmv-tok").nth(1).inner_text() == XSS[0]  # shown as text
    assert page.locator("img").count() == 0
    assert page.problems == [] and browser_context.external == []


# ---- the one decoder (templates/decode.js) in both pages ----

def _tampered(page_html: str, css_class: str, change) -> str:
    """The page with its JSON payload changed by ``change(data)`` (the script and its hash stay)."""
    import json
    import re

    from mlmtool.render._document import json_for_script

    pattern = re.compile(rf'(<script type="application/json" class="{css_class}">)(.*?)(</script>)', re.S)
    data = json.loads(pattern.search(page_html).group(2))
    change(data)
    return pattern.sub(lambda m: m.group(1) + json_for_script(data) + m.group(3), page_html, count=1)


def test_compare_page_decodes_with_the_shared_decoder(page, browser_context, tiny_bert, tmp_path):
    from mlmtool.analysis.compare import compare_texts
    from mlmtool.render.compare_view import render_compare_html

    res = compare_texts(tiny_bert, "the cat sat on the mat .", "the dog sat on the mat .")
    for compress in (True, False):
        path = render_compare_html(res, compress=compress).save(tmp_path / f"c{compress}.html")
        page.goto(path.resolve().as_uri())
        page.wait_for_selector(".mlmc[data-ready='1']", timeout=15_000)
        assert page.locator(".mlmc-cell").count() == 3 * tiny_bert.num_layers * tiny_bert.num_heads
    assert page.problems == [] and browser_context.external == []


def test_both_pages_refuse_data_that_does_not_fit_its_shape(page, browser_context, tiny_bert, tmp_path):
    """The decoder's size check, in the view and in the compare page: an error, no drawing."""
    from mlmtool.analysis.compare import compare_texts
    from mlmtool.render.compare_view import render_compare_html

    def grow(key):
        return lambda data: data[key]["shape"].__setitem__(0, data[key]["shape"][0] + 1)

    view = _tampered(str(render_view(fake_result(2, 2, ["[CLS]", "a", "[SEP]"], "a"))), "mlmv-data", grow("attention"))
    (tmp_path / "v.html").write_text(view, encoding="utf-8")
    page.goto((tmp_path / "v.html").resolve().as_uri())
    page.wait_for_selector(".mlmv-error", state="visible", timeout=15_000)
    assert page.inner_text(".mlmv-error") == "Error: attention data has the wrong size"

    res = compare_texts(tiny_bert, "the cat sat .", "the dog sat .")
    compare = _tampered(str(render_compare_html(res)), "mlmc-data", grow("attention_b"))
    (tmp_path / "c.html").write_text(compare, encoding="utf-8")
    page.goto((tmp_path / "c.html").resolve().as_uri())
    page.wait_for_selector(".mlmc[data-ready='error']", timeout=15_000)
    assert page.inner_text(".mlmc-error") == "Error: attention data has the wrong size"
    assert browser_context.external == []
