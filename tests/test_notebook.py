"""docs/tour.ipynb in a real kernel, then in a real browser (issue 29, point 3).

The notebook (the README's Python tour on ``en-mini``, its views inline) is executed by
nbclient in an IPython kernel of this interpreter: the kernelspec is installed into a
temporary prefix (``ipykernel.kernelspec.install``) and found through ``JUPYTER_PATH``, so the
test needs no kernel registered on the machine (a clean CI clone works). Then:

- every view's output is self-contained, as JupyterLab, Notebook 7 and VS Code need when they
  sanitise or iframe outputs: scripts inline only (no ``src``), no require.js/AMD, no URL
  other than the SVG namespace, nothing over 1 MB;
- nbconvert exports it to HTML (the ``lab`` template) and Chromium (Playwright, Debian's
  binary, :mod:`tests.browsing`) opens it offline: every view is drawn (the interactive
  view's grid of canvases, the head picture, the rollout SVG, the score bars), no console
  error, no page error, no request leaves the page. nbconvert's own template loads require.js
  and MathJax from a CDN; they are pointed at empty local files, so a view that needed either
  (or any network) would fail here;
- each HTML output also runs alone in an ``<iframe sandbox="allow-scripts" srcdoc=...>``
  (how VS Code and Colab show outputs: no same-origin, no parent page).
"""

from __future__ import annotations

import html
import os
import re
import sys
from pathlib import Path

import pytest

from tests.browsing import CHROMIUM, chromium_context, watch

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "docs" / "tour.ipynb"
KERNEL = "mlmtool-tour"
#: The mime types the tour's views produce, in cell order.
VIEWS = ["image/png", "text/html", "image/svg+xml", "text/html"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The tour executed in a fresh kernel of this Python (``NotebookNode`` with outputs)."""
    import ipykernel.kernelspec
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    tmp = tmp_path_factory.mktemp("notebook")
    ipykernel.kernelspec.install(kernel_name=KERNEL, prefix=str(tmp / "prefix"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(tmp / "prefix" / "share" / "jupyter"))
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
        assert Path(spec.argv[0]).resolve() == Path(sys.executable).resolve()  # this venv's Python
        NotebookClient(nb, kernel_name=KERNEL, timeout=300, resources={"metadata": {"path": str(tmp)}}).execute(env=env)
    return nb


def _outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def _views(nb) -> list[tuple[str, str]]:
    """``(mime type, data)`` of every rich output, in cell order."""
    out = []
    for o in _outputs(nb):
        data = o.get("data", {})
        rich = [m for m in ("image/png", "text/html", "image/svg+xml") if m in data]
        out += [(rich[0], data[rich[0]])] if rich else []
    return out


def test_the_tour_runs_in_a_real_kernel(executed):
    assert not [o for o in _outputs(executed) if o.output_type == "error"]
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    assert [m for m, _ in _views(executed)] == VIEWS
    printed = "".join(o.text for o in _outputs(executed) if o.output_type == "stream")
    assert re.search(r"\[-?\d+\.\d+, -?\d+\.\d+\]", printed)  # the two PLL scores


def test_views_are_self_contained(executed):
    """Inline scripts only, no require.js/AMD, no URL but the SVG namespace, each under 1 MB."""
    for mime, data in _views(executed):
        text = data if isinstance(data, str) else "".join(data)
        assert len(text.encode()) < 1_000_000, mime
        if mime == "image/png":
            continue
        assert not re.search(r"<script[^>]*\ssrc\s*=", text, re.I), mime
        assert not re.search(r"<(link|iframe|img)[^>]*\s(src|href)\s*=\s*[\"']?(https?:|//)", text, re.I), mime
        assert not re.search(r"\b(requirejs|define\s*\(\s*\[|require\s*\(\s*\[)", text), mime
        urls = set(re.findall(r"https?://[^\s\"'<>)]+", text)) - {"http://www.w3.org/2000/svg"}
        assert not urls, (mime, urls)


def _export(nb, folder: Path) -> Path:
    """The notebook as HTML (nbconvert's ``lab`` template), its CDN scripts replaced by empty local files."""
    from nbconvert import HTMLExporter

    for stub in ("require.js", "mathjax.js"):
        (folder / stub).write_text("", encoding="utf-8")
    exporter = HTMLExporter(template_name="lab", require_js_url="require.js", mathjax_url="mathjax.js")
    body, _ = exporter.from_notebook_node(nb)
    path = folder / "tour.html"
    path.write_text(body, encoding="utf-8")
    return path


#: Each view drawn: the interactive view's canvases have pixels, the picture and the SVG (an
#: ``<img>`` of a data URL in nbconvert's export) are decoded with a size, the score bars have
#: widths. Returns a list of what is missing.
CHECK_VIEWS = """(expected) => {
  const missing = [];
  const views = document.querySelectorAll('.mlmv');
  if (views.length !== 1 || views[0].dataset.ready !== '1') missing.push('view not ready');
  const thumbs = document.querySelectorAll('.mlmv-thumb canvas');
  if (thumbs.length !== expected.heads) missing.push(`thumbs ${thumbs.length}`);
  const drawn = Array.from(thumbs).filter(c => c.width > 0 &&
      c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 !== 3 && v > 0));
  if (drawn.length !== thumbs.length) missing.push(`drawn thumbs ${drawn.length}`);
  const imgs = Array.from(document.querySelectorAll('img[src^="data:image/png"]'));
  if (imgs.length !== 1 || !(imgs[0].complete && imgs[0].naturalWidth > 100)) missing.push('head picture');
  const svgs = Array.from(document.querySelectorAll('img[src^="data:image/svg+xml"]'));  // how nbconvert embeds SVG
  if (svgs.length !== 1 || !(svgs[0].complete && svgs[0].naturalWidth > 100)) missing.push('rollout svg');
  const bars = Array.from(document.querySelectorAll('td.bar span')).filter(s => s.getBoundingClientRect().width > 0);
  if (bars.length < 8) missing.push(`score bars ${bars.length}`);
  return missing;
}"""


def test_exported_notebook_renders_every_view_offline(executed, tmp_path):
    pytest.importorskip("playwright.sync_api")
    path = _export(executed, tmp_path)
    with chromium_context(tmp_path / "profile", lambda url: url.startswith("file://"), offline=True,
                          viewport={"width": 1400, "height": 1000}) as context:
        with watch(context) as page:
            page.goto(path.as_uri())
            page.wait_for_selector(".mlmv[data-ready='1']", timeout=30_000)
            assert page.evaluate(CHECK_VIEWS, {"heads": 6 * 12}) == []
            page.click(".mlmv-thumb[data-layer='2'][data-head='9']")
            assert page.inner_text(".mlmv-detail-title").startswith("Layer 2")
            assert page.problems == [] and context.external == []


def test_each_html_view_runs_in_a_sandboxed_iframe(executed, tmp_path):
    """Like VS Code and Colab: the output alone in a sandboxed frame (scripts, no same origin)."""
    pytest.importorskip("playwright.sync_api")
    frames = [f'<iframe sandbox="allow-scripts" width="1200" height="700" srcdoc="{html.escape(d)}"></iframe>'
              for m, d in _views(executed) if m == "text/html"]
    path = tmp_path / "frames.html"
    path.write_text("<!DOCTYPE html><meta charset='utf-8'><body>" + "".join(frames) + "</body>", encoding="utf-8")
    with chromium_context(tmp_path / "profile", lambda url: url.startswith(("file://", "about:")), offline=True,
                          viewport={"width": 1300, "height": 900}) as context:
        with watch(context) as page:
            page.goto(path.as_uri())
            view, score = [f for f in page.frames if f != page.main_frame]
            view.wait_for_selector(".mlmv[data-ready='1']", timeout=30_000)
            assert view.locator(".mlmv-thumb").count() == 6 * 12
            assert score.locator("td.bar span").count() >= 8
            assert page.problems == [] and context.external == []
