"""Presentation mode in a real browser, as the room sees it on a 1920x1080 projector and a
1400x900 laptop: the whole screen for the slide (no sidebar, no header), the case's
overview on one screen, the arrow keys for next and previous, a large timer in its phase's
colour that P pauses, and cases lettered in agenda order after a reorder. The server, the
browser and their helpers are tests/test_browser.py's."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from core.catalog import default_catalog
from core.conference import meetings
from core.store import Store, copy_store
from tests.conftest import SYSTEM, as_user
from tests.test_browser import (LAPTOP, SCREENSHOTS, Server, _chart_faults, _goto, _new_page, _observe,  # noqa: F401
                                _open, _problems, _settled, _visit, browser, demo_store, pytestmark, CHARTS_JS)


@pytest.fixture
def reordered(demo_store, tmp_path) -> tuple[Path, int, list[str]]:
    """A copy of the demo store with a conference of group-north (four cases) whose last
    case was moved first, as a supervisor does before the meeting."""
    path = tmp_path / "store" / "demo.duckdb"
    path.parent.mkdir()
    copy_store(demo_store, path)  # the state file and its current snapshot
    store = Store(path)
    try:
        made = meetings.new_conference(store, default_catalog(), "group-north", cases=4, scope=as_user("sup1"))
        order = [i["client_id"] for i in made["agenda"]]
        order = order[-1:] + order[:-1]
        meetings.reorder(store, made["id"], order, scope=SYSTEM)
    finally:
        store.close()
    return path, made["id"], order


BOXES_JS = """() => {
    const box = sel => { const e = document.querySelector(sel); if (!e) return null;
        const r = e.getBoundingClientRect(); return r.width && r.height ? {top: r.top, bottom: r.bottom} : null; };
    const timer = document.querySelector('[data-testid="presentTimer"]');
    return {
        sidebar: box('[data-testid="stSidebar"]'), header: box('[data-testid="stHeader"]'),
        slide: box('[data-testid="stMain"] h2'), chart: box('[data-testid="stMain"] .stPlotlyChart'),
        timer: timer && {...box('[data-testid="presentTimer"]'), phase: timer.dataset.phase,
                         paused: timer.dataset.paused, colour: getComputedStyle(timer).color,
                         size: parseFloat(getComputedStyle(timer.firstElementChild).fontSize),
                         text: timer.innerText},
    };
}"""


# Pairs of texts of the first chart on the page (tick labels, row titles, axis titles,
# legend entries) whose boxes overlap, as Chromium laid them out.
OVERLAPS_JS = """() => {
    const chart = document.querySelector('[data-testid="stMain"] .stPlotlyChart');
    const texts = [...chart.querySelectorAll('.ytick text, .xtick text, .annotation-text, .g-ytitle text, .legendtext')]
        .map(e => [e.textContent.slice(0, 40), e.getBoundingClientRect()]).filter(([, b]) => b.width && b.height);
    const found = [];
    for (let i = 0; i < texts.length; i++) for (let j = i + 1; j < texts.length; j++) {
        const [a, A] = texts[i], [b, B] = texts[j];
        if (Math.min(A.right, B.right) - Math.max(A.left, B.left) > 1
            && Math.min(A.bottom, B.bottom) - Math.max(A.top, B.top) > 1) found.push(`${a} / ${b}`);
    }
    return found;
}"""


def _slide(page) -> str:
    return page.locator('[data-testid="stMain"] h2').first.inner_text().strip()


@pytest.mark.parametrize("width, height", [(1920, 1080), (1400, 900)])
def test_projector_mode_gives_the_slide_the_whole_screen(browser, reordered, tmp_path, width, height):
    path, conference_id, order = reordered
    server = Server(path, tmp_path / "server")
    context, page, watch = _new_page(browser, server)
    try:
        page.set_viewport_size({"width": width, "height": height})
        _goto(page, server.url(f"/present?conference={conference_id}"))
        _settled(page, "Present")
        page.keyboard.press("f")  # the Projector button's key
        page.wait_for_url(lambda url: parse_qs(urlparse(url).query).get("projector") == ["1"])
        page.locator('[data-testid="stMain"] h2').first.wait_for()
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
        page.wait_for_function("() => document.querySelector('[data-testid=\"stMain\"] .stPlotlyChart .main-svg')")
        page.wait_for_timeout(800)
        page.screenshot(path=str(SCREENSHOTS / f"present_projector_{width}x{height}.png"))
        seen = page.evaluate(BOXES_JS)
        assert seen["sidebar"] is None and seen["header"] is None, "projector mode still shows the app's chrome"
        # Lettered in agenda order: the case moved first is Case A.
        assert _slide(page) == "Case A"
        assert "1 of 4" in page.locator('[data-testid="stMain"]').inner_text()
        if (width, height) == (1920, 1080):
            assert seen["chart"]["bottom"] <= height, f"the overview runs below the screen: {seen['chart']}"
            assert page.evaluate(OVERLAPS_JS) == [], "labels of the overview run into each other"
        assert seen["timer"]["bottom"] <= 250 and seen["timer"]["size"] >= 48, seen["timer"]
        assert seen["timer"]["phase"] == "on time" and seen["timer"]["colour"] == "rgb(0, 158, 115)"
        charts = page.evaluate(CHARTS_JS)
        assert charts and _chart_faults(charts[:1]) == []

        # The keyboard: the right arrow is Next, the left one Previous, P pauses the timer.
        page.mouse.click(width - 5, height - 5)  # the keys go to the page, not to a widget
        page.keyboard.press("ArrowRight")
        page.locator('[data-testid="stMain"] h2', has_text="Case B").first.wait_for()
        assert parse_qs(urlparse(page.url).query)["item"] == ["2"]
        assert parse_qs(urlparse(page.url).query)["projector"] == ["1"]
        page.keyboard.press("ArrowLeft")
        page.locator('[data-testid="stMain"] h2', has_text="Case A").first.wait_for()
        page.keyboard.press("p")
        page.locator('[data-testid="presentTimer"][data-paused="true"]').wait_for()
        clock = page.locator('[data-testid="presentTimer"]').inner_text()
        page.wait_for_timeout(2200)
        assert page.locator('[data-testid="presentTimer"]').inner_text() == clock, "a paused timer ran on"
        assert _problems(_observe(page), watch) == []
    finally:
        context.close()
        server.stop()


def test_the_slide_outside_projector_mode_shows_a_fitted_overview(browser, reordered, tmp_path):
    """Outside projector mode (a laptop at 1400x900, the sidebar open) the slide drew the
    case's overview at its natural height: 1910 px for Case A (c051), two screens with its
    rows far apart, and the theme heatmap's two-line labels ran into each other. It is now
    fitted as on the Case page: at most 940 px tall, every label clear of the others."""
    path, conference_id, order = reordered
    with _open(browser, path, tmp_path / "server", f"/present?conference={conference_id}&item=1", "Present",
               LAPTOP) as (page, watch):
        for item in range(1, len(order) + 1):
            if item > 1:  # the first is open
                _visit(page, f"/present?conference={conference_id}&item={item}", "Present")
            chart = page.locator('[data-testid="stMain"] .stPlotlyChart').first
            box = chart.bounding_box()
            assert box["height"] <= 940, f"slide {item}: the overview is {box['height']:.0f} px tall"
            assert page.evaluate(OVERLAPS_JS) == [], f"slide {item}: labels of the overview run into each other"
        page.screenshot(path=str(SCREENSHOTS / "present_slide_1400x900.png"))
        assert _problems(_observe(page), watch) == []


# The slide's buttons whose label is cut (an ellipsis: its text wider than its box).
CUT_BUTTONS_JS = """() => [...document.querySelectorAll('[data-testid="stMain"] button')].filter(b => b.offsetWidth)
    .map(b => [b.innerText.replace(/\\s+/g, ' ').trim(), [...b.querySelectorAll('*')]
               .some(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).textOverflow === 'ellipsis')])
    .filter(([, cut]) => cut).map(([text]) => text)"""


def test_the_slides_buttons_show_their_whole_labels_on_a_laptop(browser, reordered, tmp_path):
    """At 1400x900 with the sidebar open the slide's first and last columns were too narrow
    for their buttons: "Previous" read "Pre..." and "Projector" "Proj...", their keys hidden."""
    path, conference_id, order = reordered
    with _open(browser, path, tmp_path / "server", f"/present?conference={conference_id}&item=2", "Present",
               LAPTOP) as (page, watch):
        texts = page.locator('[data-testid="stMain"] button').all_inner_texts()
        assert any("Previous" in t for t in texts) and any("Projector" in t for t in texts), texts
        assert page.evaluate(CUT_BUTTONS_JS) == []
        assert _problems(_observe(page), watch) == []
