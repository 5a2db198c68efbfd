"""The view's "Words" switch and layer labels in a real browser (issue 26, issue 24).

Debian's Chromium driven by Playwright (:mod:`tests.browsing`), network cut off; skipped when
``/usr/bin/chromium`` is absent. The page's word view must show exactly the Python side's
aggregation (:func:`mlmtool.analysis.words.aggregate_words`); a model with local layers gets
its layer labels in the grid and titles and its notes as a caption, BERT neither.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mlmtool.analysis.attention import AttentionResult
from mlmtool.analysis.words import WORDS_NOTE, aggregate_words
from mlmtool.render.html_view import render_view
from tests.browsing import CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]

TOKENS = ["[CLS]", "i", "like", "tooth", "##pas", "##te", "very", "much", "[SEP]"]
WORD_IDS = [None, 0, 1, 2, 2, 2, 3, 4, None]


def split_result(**changes) -> AttentionResult:
    """Two layers x two heads of sharp random attention over ``TOKENS`` (one word in three pieces)."""
    rng = np.random.default_rng(1)
    att = np.exp(rng.normal(size=(2, 2, len(TOKENS), len(TOKENS))) * 3)
    res = AttentionResult(text="i like toothpaste very much", tokens=list(TOKENS),
                          attention=(att / att.sum(-1, keepdims=True)).astype(np.float32), word_ids=list(WORD_IDS),
                          special=[w is None for w in WORD_IDS], model_name="fake")
    return replace(res, **changes)


# the file-page browser of tests/test_browser.py (a module-scoped Chromium, file:// only)
from tests.test_browser import browser_context, open_view, page  # noqa: E402,F401


def summed_head(page) -> np.ndarray:
    """The "selected tokens" table's head column (the summed rows of the picked units)."""
    return np.array([float(x) for x in page.locator(".mlmv-sum-row").evaluate_all("rs => rs.map(r => r.dataset.head)")])


def test_words_switch_shows_the_python_aggregation_and_back(page, tmp_path):
    res = split_result()
    words = aggregate_words(res)
    root = open_view(page, render_view(res, precision="float16"), tmp_path / "v.html")
    assert root.get_attribute("data-unit") == "token"
    assert page.locator(".mlmv-chip").all_text_contents() == TOKENS
    switch = page.locator(".mlmv-f-words")
    assert switch.is_visible() and not switch.is_checked()
    page.locator(".mlmv-thumb[data-layer='2'][data-head='2']").click()
    switch.check()
    assert root.get_attribute("data-unit") == "word" and root.get_attribute("data-selected") == "L2H2"
    assert page.locator(".mlmv-chip").all_text_contents() == words.tokens
    assert page.locator(".mlmv-lines text.mlmv-tok-from").count() == len(words.tokens)
    assert "then words" in page.locator(".mlmv-rollout-title").text_content()
    assert WORDS_NOTE in page.locator(".mlmv-arch-notes").text_content()
    page.locator(".mlmv-chip[data-i='3']").click()  # "toothpaste"
    np.testing.assert_allclose(summed_head(page), words.attention[1, 1, 3], atol=2e-3)  # float16 on the page
    assert np.isclose(summed_head(page).sum(), 1.0, atol=5e-3)  # a word row sums to 1
    switch.uncheck()
    assert root.get_attribute("data-unit") == "token" and page.locator(".mlmv-chip").count() == len(TOKENS)
    assert page.locator(".mlmv-arch-notes").is_hidden()  # BERT-like: no notes in the piece view
    page.locator(".mlmv-chip[data-i='4']").click()  # "##pas"
    np.testing.assert_allclose(summed_head(page), res.attention[1, 1, 4], atol=2e-3)
    assert page.problems == [] and page.context.external == []


def test_words_flag_opens_in_words_and_bert_looks_unchanged(page, tmp_path):
    root = open_view(page, render_view(split_result(), words=True), tmp_path / "w.html")
    assert root.get_attribute("data-unit") == "word" and page.locator(".mlmv-f-words").is_checked()
    assert "toothpaste" in page.locator(".mlmv-chip").all_text_contents()
    assert page.locator(".mlmv-row").first.text_content() == "L1"  # no layer kinds for BERT
    assert page.locator(".mlmv-detail-title").text_content() == "Layer 1, Head 1"
    whole = split_result(tokens=["[CLS]", "i", "like", "paste", "very", "much", "[SEP]"],
                         word_ids=[None, 0, 1, 2, 3, 4, None], special=[True] + [False] * 5 + [True],
                         attention=split_result().attention[:, :, :7, :7] / split_result().attention[:, :, :7, :7]
                         .sum(-1, keepdims=True))
    open_view(page, render_view(whole), tmp_path / "one-piece.html")
    assert page.locator(".mlmv-f-words-wrap").is_hidden()  # every word one piece: no switch
    assert page.problems == []


def test_local_layers_are_labelled_and_notes_shown(page, tmp_path):
    res = split_result(local_window=[None, 64], notes=["layer 2 attends to 64 tokens either side"])
    open_view(page, render_view(res), tmp_path / "local.html")
    rows = page.locator(".mlmv-row").all_text_contents()
    assert rows == ["L1 \u00b7 global", "L2 \u00b7 local \u00b164"]
    page.locator(".mlmv-thumb[data-layer='2'][data-head='1']").click()
    assert page.locator(".mlmv-detail-title").text_content() == "Layer 2 \u00b7 local \u00b164, Head 1"
    notes = page.locator(".mlmv-arch-notes")
    assert notes.is_visible() and notes.text_content() == "layer 2 attends to 64 tokens either side"
    assert page.problems == []
