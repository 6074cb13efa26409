"""The Case page's overview on one 1080p screen, in a real browser: the chart is no taller
than the screen less the app's top bar, and none of its labels (row labels, row titles,
axis titles, legend entries) runs into another, for the demo case with the most coded
themes. The server, the browser and their helpers are tests/test_browser.py's."""

from __future__ import annotations

from tests.test_browser import LAPTOP, _observe, _open, _problems, _visit
from tests.test_browser import browser, demo_store, pytestmark  # noqa: F401
from tests.test_browser_present import OVERLAPS_JS

SCREEN = {"width": 1920, "height": 1080}
TOP_BAR_PX = 60  # Streamlit's header above the page


def test_the_case_overview_fits_one_1080p_screen_without_overlapping_labels(browser, demo_store, tmp_path):
    first = "/case?client=c045"
    with _open(browser, demo_store, tmp_path / "server", first, "Case", SCREEN) as (page, watch):
        chart = page.locator('[data-testid="stMain"] .stPlotlyChart').first
        box = chart.bounding_box()
        assert box["height"] <= SCREEN["height"] - TOP_BAR_PX, f"the overview is taller than the screen: {box}"
        assert page.evaluate(OVERLAPS_JS) == [], "labels of the overview run into each other"
        assert _problems(_observe(page), watch) == []


UPRIGHT_JS = """() => {
    const chart = document.querySelector('[data-testid="stMain"] .stPlotlyChart');
    // Every x axis's tick labels (a row's axis is x, x2, ...; only the bottom one shows them).
    const ticks = [...chart.querySelectorAll('.xaxislayer-above text')].filter(e => e.textContent);
    return {turned: ticks.filter(e => /rotate/.test(e.getAttribute('transform') || '')).map(e => e.textContent),
            labels: ticks.map(e => e.textContent)};
}"""


def test_a_laptop_reads_the_session_axis_upright(browser, demo_store, tmp_path):
    # At 1400 px the overview's plot is about 380 px wide: a label at each of c051's 19
    # sessions was turned on its side (and read sideways in a meeting).
    first = "/case?client=c051"
    with _open(browser, demo_store, tmp_path / "server", first, "Case", LAPTOP) as (page, watch):
        seen = page.evaluate(UPRIGHT_JS)
        assert seen["turned"] == [], f"session labels turned on their side: {seen['turned']}"
        assert "0" in seen["labels"] and "18" in seen["labels"], seen["labels"]
        assert page.evaluate(OVERLAPS_JS) == [], "labels of the overview run into each other"
        assert _problems(_observe(page), watch) == []


PLOT_JS = """() => {
    const chart = document.querySelector('[data-testid="stMain"] .stPlotlyChart');
    const size = chart.querySelector('.js-plotly-plot')._fullLayout._size;
    return {chart: Math.round(chart.getBoundingClientRect().width), plot: Math.round(size.w), left: size.l, right: size.r};
}"""


def test_a_laptop_gives_the_overviews_plot_more_than_half_of_the_chart(browser, demo_store, tmp_path):
    # At 1400x900 with the sidebar open the overview was 911 px wide (the wide layout's
    # side margins took 170 px), its legends beside the rows took 292 px and its row labels
    # 238 px: 381 px were left for the sessions of c051.
    first = "/case?client=c051"
    with _open(browser, demo_store, tmp_path / "server", first, "Case", LAPTOP) as (page, watch):
        for client in ("c051", "c015"):
            if client != "c051":  # the first is open
                _visit(page, f"/case?client={client}", "Case")
            seen = page.evaluate(PLOT_JS)
            assert seen["plot"] >= 520 and seen["plot"] > seen["chart"] / 2, (client, seen)
            assert page.evaluate(OVERLAPS_JS) == [], f"{client}: labels of the overview run into each other"
        assert _problems(_observe(page), watch) == []


# Markers that reach past their row's plot area while a clip path cuts them: each one's
# trace, the point's box and the row's box (as Chromium laid them out).
CUT_MARKERS_JS = """() => {
    const chart = document.querySelector('[data-testid="stMain"] .stPlotlyChart');
    const gd = chart.querySelector('.js-plotly-plot');
    const svg = gd.querySelector('.main-svg').getBoundingClientRect();
    const size = gd._fullLayout._size;
    const cut = [];
    for (const sub of gd.querySelectorAll('.cartesianlayer > g.subplot')) {
        const name = [...sub.classList].find(c => /^x\\d*y\\d*$/.test(c));
        const ya = gd._fullLayout['yaxis' + name.split('y')[1]], xa = gd._fullLayout['xaxis' + name.split('y')[0].slice(1)];
        const box = {left: svg.left + size.l + xa.domain[0] * size.w, right: svg.left + size.l + xa.domain[1] * size.w,
                     top: svg.top + size.t + (1 - ya.domain[1]) * size.h, bottom: svg.top + size.t + (1 - ya.domain[0]) * size.h};
        for (const point of sub.querySelectorAll('.scatterlayer path.point')) {
            const b = point.getBoundingClientRect();
            if (!b.width) continue;
            const out = b.top < box.top - 1 || b.bottom > box.bottom + 1 || b.left < box.left - 1 || b.right > box.right + 1;
            let clipped = false;
            for (let e = point; e && e !== gd; e = e.parentElement) if (e.getAttribute('clip-path')) clipped = true;
            if (out && clipped) cut.push({trace: point.closest('.trace').__data__[0].trace.name, row: name,
                                          point: [Math.round(b.top), Math.round(b.bottom)], row_box: [Math.round(box.top), Math.round(box.bottom)]});
        }
    }
    return cut;
}"""


def test_a_mark_at_the_edge_of_its_row_is_drawn_whole(browser, demo_store, tmp_path):
    # c015's rupture at SRS 18, the lowest score of its alliance row, was a triangle cut in
    # half by the row's bottom edge; c051's GAD-7 19 lost its top at the row's upper edge.
    first = "/case?client=c015"
    with _open(browser, demo_store, tmp_path / "server", first, "Case", LAPTOP) as (page, watch):
        for client in ("c015", "c051"):
            if client != "c015":  # the first is open
                _visit(page, f"/case?client={client}", "Case")
            assert page.evaluate(CUT_MARKERS_JS) == [], f"{client}: marks cut at their row's edge"
        assert _problems(_observe(page), watch) == []
