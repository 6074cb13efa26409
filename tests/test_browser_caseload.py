"""The caseload in a real browser at 1400x900 and 1920x1080: which cases and why, read in
ten seconds. Every flag's reason shown whole, the outcome's colour with words, a sparkline
with the cutoff and the ruptures, a case opened by the keyboard, a focused menu link unlike
the current page's, and the theme's 17 px text in captions and cells. The server, the
browser and their helpers are tests/test_browser.py's."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

from tests.test_browser import (SCREENSHOTS, Server, _goto, _new_page, _observe, _problems, _settled,  # noqa: F401
                                browser, demo_store, pytestmark)

ROWS_JS = """() => {
    const main = document.querySelector('[data-testid="stMain"]');
    const links = [...main.querySelectorAll('a[data-testid="stPageLink-NavLink"]')];
    const size = sel => { const e = main.querySelector(sel); return e ? parseFloat(getComputedStyle(e).fontSize) : 0; };
    return {
        cases: links.map(a => a.innerText.trim().split('\\n').pop().trim()),
        texts: [...main.querySelectorAll('[data-testid="stText"]')].map(e => ({
            text: e.innerText, cut: e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1})),
        badges: [...main.querySelectorAll('[data-testid="stMarkdownContainer"]')].map(e => e.innerText.trim())
                 .filter(t => /^(red|orange|green|grey)$/.test(t)),
        sparklines: [...main.querySelectorAll('img')].filter(i => i.src.includes('svg')).length,
        caption_px: size('[data-testid="stCaptionContainer"]'), text_px: size('[data-testid="stText"]'),
    };
}"""


@pytest.mark.parametrize("width, height", [(1400, 900), (1920, 1080)])
def test_the_caseload_shows_which_cases_and_why_in_full(browser, demo_store, tmp_path, width, height):
    server = Server(demo_store, tmp_path / "server")
    context, page, watch = _new_page(browser, server)
    try:
        page.set_viewport_size({"width": width, "height": height})
        _goto(page, server.url("/caseload"))
        _settled(page, "Caseload")
        page.screenshot(path=str(SCREENSHOTS / f"caseload_{width}x{height}.png"))
        seen = page.evaluate(ROWS_JS)
        assert seen["cases"] and all(re.fullmatch(r"c\d{3}", c) for c in seen["cases"]), seen["cases"]
        whys = [t for t in seen["texts"] if "session" in t["text"] or "%" in t["text"]]
        assert whys and not [t for t in whys if t["cut"]], "a reason is cut off"
        # The outcome's colour with words; a grey one says why in a clinician's words.
        assert len(seen["badges"]) == len(seen["cases"]), seen["badges"]
        shown = page.locator('[data-testid="stMain"]').inner_text()
        assert "no reference" not in shown
        assert re.search(r"(only the first score so far|to compare with)", shown)
        assert seen["sparklines"] == len(seen["cases"])
        assert seen["caption_px"] >= 17 and seen["text_px"] >= 17, seen

        # A focused menu link looks different from the current page's link.
        menu = page.locator('[data-testid="stSidebar"] a[data-testid="stPageLink-NavLink"]')
        menu.first.focus()
        page.keyboard.press("Tab")
        styles = page.evaluate("""() => [...document.querySelectorAll(
            '[data-testid="stSidebar"] a[data-testid="stPageLink-NavLink"]')].slice(0, 2).map(a => {
                const s = getComputedStyle(a); return [s.outlineStyle, s.outlineWidth, s.backgroundColor]; })""")
        assert styles[1][0] != "none" and styles[0][0] == "none", styles

        # A case opens by the keyboard: its link, then Enter.
        first = seen["cases"][0]
        page.locator('[data-testid="stMain"] a[data-testid="stPageLink-NavLink"]').first.focus()
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/case\\?"))
        _settled(page, "Case")
        assert parse_qs(urlparse(page.url).query) == {"client": [first]}
        assert _problems(_observe(page), watch) == []
    finally:
        context.close()
        server.stop()
