"""The theme's text size (baseFontSize 17 in .streamlit/config.toml) in a real browser:
captions, widget labels and table cells are read from across a meeting room, so none is
drawn smaller than the theme promises. Measured as Chromium computes it: the font size of
every text on the page, and the font the data grid's canvas draws its cells with. The
server, the browser and their helpers are tests/test_browser.py's."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.catalog import default_catalog
from core.conference import meetings, notes
from core.store import Store, copy_store
from tests.conftest import as_user
from tests.test_browser import (LAPTOP, Server, _open, _goto, _new_page, _observe, _problems, _settled,  # noqa: F401
                                browser, demo_store, pytestmark)

PROMISED_PX = 17  # theme.baseFontSize

# Every font the page's canvases draw text with (the data grid draws its cells on one).
CANVAS_FONTS = """(() => {
    window.__canvasFonts = new Set();
    const draw = CanvasRenderingContext2D.prototype.fillText;
    CanvasRenderingContext2D.prototype.fillText = function (...args) {
        window.__canvasFonts.add(this.font);
        return draw.apply(this, args);
    };
})();"""

# Font size of every visible text in the main area, with where it is (charts and icons
# have their own sizes and are left out).
TEXT_SIZES = """() => {
    const main = document.querySelector('[data-testid="stMain"]');
    const walk = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
    const found = [];
    for (let node; (node = walk.nextNode());) {
        const e = node.parentElement;
        if (!node.textContent.trim() || e.closest('svg, .js-plotly-plot, [data-testid="stIconMaterial"]')) continue;
        if (!e.getBoundingClientRect().width) continue;
        const where = e.closest('[data-testid]');
        found.push({text: node.textContent.trim().slice(0, 40), px: parseFloat(getComputedStyle(e).fontSize),
                    where: where ? where.dataset.testid : e.tagName, tag: e.tagName + '.' + e.className.split(' ')[0]});
    }
    return found;
}"""


def _px(font: str) -> float:
    """The size of a canvas font such as '600 14.875px "Source Sans", sans-serif'."""
    return float(next(part for part in font.split() if part.endswith("px"))[:-2])


def _sizes(page) -> tuple[list[dict], list[str]]:
    return page.evaluate(TEXT_SIZES), page.evaluate("() => [...window.__canvasFonts]")


@pytest.fixture
def noted(demo_store, tmp_path) -> tuple[Path, int]:
    """A copy of the demo store with a conference whose first case has an action item."""
    path = tmp_path / "store" / "demo.duckdb"
    path.parent.mkdir()
    copy_store(demo_store, path)
    store = Store(path)
    try:
        made = meetings.new_conference(store, default_catalog(), "group-north", cases=2, scope=as_user("sup1"))
        notes.save_entry(store, made["id"], made["agenda"][0]["client_id"], kind="action", owner="th01",
                         text="Ask about the missed sessions.", scope=as_user("sup1"))
    finally:
        store.close()
    return path, made["id"]


def test_captions_labels_and_table_cells_have_the_themes_text_size(browser, noted, tmp_path):
    path, conference_id = noted
    server = Server(path, tmp_path / "server")
    context, page, watch = _new_page(browser, server)
    context.add_init_script(CANVAS_FONTS)
    try:
        _goto(page, server.url(f"/present?conference={conference_id}"))
        _settled(page, "Present")
        texts, fonts = _sizes(page)
        _goto(page, server.url("/catalog"))
        _settled(page, "Catalog")
        page.locator('[data-testid="stMain"] [data-testid="stExpander"] summary').first.click()
        page.wait_for_timeout(1000)
        more_texts, more_fonts = _sizes(page)
        texts, fonts = texts + more_texts, fonts + more_fonts
        kinds = {t["where"] for t in texts}
        assert "stCaptionContainer" in kinds, kinds
        assert any(t["text"].startswith("Ask about the missed sessions") for t in texts), "the action is no table cell"
        _assert_promised_size(texts, fonts)
        assert _problems(_observe(page), watch) == []
    finally:
        context.close()
        server.stop()


def _assert_promised_size(texts: list[dict], fonts: list[str]) -> None:
    small = [t for t in texts if t["px"] < PROMISED_PX - 0.05]
    small_cells = [f for f in fonts if _px(f) < PROMISED_PX - 0.05]
    assert (small, small_cells) == ([], []), (small, fonts)


def test_the_case_pages_tabs_have_the_themes_text_size(browser, demo_store, tmp_path):
    """Each tab of the Case page (the barrier notes were a data grid drawn on a canvas at
    14.875 px), measured while it is open: a closed tab's texts have no size to measure."""
    server = Server(demo_store, tmp_path / "server")
    context, page, watch = _new_page(browser, server)
    context.add_init_script(CANVAS_FONTS)
    try:
        _goto(page, server.url("/case?client=c045"))
        _settled(page, "Case")
        texts, fonts = _sizes(page)
        for tab in ("Alliance", "Outcome", "Themes", "Barriers"):
            page.get_by_role("tab", name=tab).click()
            page.wait_for_timeout(300)
            _settled(page, "Case")  # the click reruns the page, which draws the open tab
            more_texts, more_fonts = _sizes(page)
            texts, fonts = texts + more_texts, fonts + more_fonts
        # The Barriers tab is open: its notes are a table (the flags' table is the other one).
        assert page.locator('[data-testid="stMain"] [data-testid="stTable"]:visible').count() == 2
        _assert_promised_size(texts, fonts)
        assert _problems(_observe(page), watch) == []
    finally:
        context.close()
        server.stop()


# The size each bar's value label is drawn at: Plotly shrinks a label that is wider than
# its bar with a scale() in its transform, below the size its font names.
BAR_TEXT_PX = """() => [...document.querySelectorAll('[data-testid="stMain"] .stPlotlyChart text.bartext')].map(e => {
    const scale = /scale\\(([\\d.]+)/.exec(e.getAttribute('transform') || '');
    return {text: e.textContent, px: parseFloat(e.style.fontSize) * (scale ? parseFloat(scale[1]) : 1)};
})"""


def test_the_barrier_charts_bar_values_are_drawn_at_the_charts_text_size(browser, demo_store, tmp_path):
    """On a 1400 px laptop "+0.43 points / 106 sessions" above the pooled bars of the
    Barriers page's alliance chart was shrunk to fit its bar's width: 17 px type drawn at
    about 12 px, too small to read across a meeting room."""
    with _open(browser, demo_store, tmp_path / "server", "/barriers", "Barriers", LAPTOP) as (page, watch):
        labels = [t for t in page.evaluate(BAR_TEXT_PX) if "sessions" in t["text"]]
        assert len(labels) == 2, labels
        assert all(t["px"] >= 16 for t in labels), labels
        assert _problems(_observe(page), watch) == []
