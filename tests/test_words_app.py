"""The Words switch in ``mlmtool serve``'s page (issue 26), in a module of its own.

Its own module because it opens a second Playwright (a real server needs a context that
allows ``http://127.0.0.1``): a sync Playwright cannot start while another one — a
module-scoped browser of the same module — is still open in the thread.
"""

from __future__ import annotations

import pytest

from tests.browsing import CHROMIUM, server_browser, watch

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


@pytest.mark.slow
def test_words_switch_in_the_web_app(tiny_bert_dir, tmp_path_factory):
    """``mlmtool serve``'s page draws the view with the same view.js: the switch is there too."""
    pytest.importorskip("uvicorn")
    from tests.test_server import Server

    server = Server(tiny_bert_dir, cwd=tmp_path_factory.mktemp("serve-words"))
    try:
        with server_browser(server.url, tmp_path_factory.mktemp("chromium-serve-words"),
                            viewport={"width": 1400, "height": 1000}) as context, watch(context) as page:
            page.goto(server.url)
            page.fill("#app-text", "the cats played sadly .")
            page.press("#app-text", "Enter")
            page.wait_for_function("() => (document.querySelector('.mlmv-text') || {}).textContent === "
                                   "'the cats played sadly .'", timeout=120_000)
            page.wait_for_selector("#mlmv-app[data-ready='1']", timeout=120_000)
            assert "##s" in page.locator(".mlmv-chip").all_text_contents()
            page.locator(".mlmv-f-words").check()
            assert page.get_attribute("#mlmv-app", "data-unit") == "word"
            assert page.locator(".mlmv-chip").all_text_contents() == [
                "[CLS]", "the", "cats", "played", "sadly", ".", "[SEP]"]
            assert page.problems == []
    finally:
        rc, _, err = server.stop()
        assert rc == 0 and "Traceback" not in err, err
