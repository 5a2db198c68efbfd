"""Debian's Chromium driven by Playwright for the browser tests (imported as ``tests.browsing``).

Chromium comes from Debian (``apt-get install chromium``; ``.ci/run`` installs it), never from
``playwright install``. Requests the test does not allow are aborted and recorded in
``context.external``; :func:`watch` records console errors, page errors and dialogs
(``alert``) in ``page.problems``, so a test can fail on any of them.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

CHROMIUM = Path(os.environ.get("MLMTOOL_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
        "--disable-dev-shm-usage"]


@contextmanager
def chromium_context(profile: Path, allowed: Callable[[str], bool], **options):
    """A headless Chromium with a fresh user-data dir ``profile``; a request whose URL
    ``allowed`` refuses is aborted and appended to ``context.external``.

    ``options`` go to Playwright's ``launch_persistent_context`` (viewport, offline, ...).
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=ARGS, **options)
        context.external = []

        context.route("**/*", lambda r: r.continue_() if allowed(r.request.url)
                      else (context.external.append(r.request.url), r.abort()))
        try:
            yield context
        finally:
            context.close()


@contextmanager
def server_browser(url: str, profile: Path, **options):
    """:func:`chromium_context` for a page served at ``url`` (only its requests allowed);
    skips the test when Chromium or Playwright is missing."""
    import pytest

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    with chromium_context(profile, lambda u: u.startswith(url), **options) as context:
        yield context


@contextmanager
def watch(context):
    """A new tab of ``context`` whose console errors, page errors and dialogs go to ``page.problems``."""
    pg = context.new_page()
    pg.problems = []
    context.external.clear()
    pg.on("console", lambda m: m.type == "error" and pg.problems.append(f"console: {m.text}"))
    pg.on("pageerror", lambda e: pg.problems.append(f"pageerror: {e}"))
    pg.on("dialog", lambda d: (pg.problems.append(f"dialog: {d.message}"), d.dismiss()))
    try:
        yield pg
    finally:
        pg.close()
