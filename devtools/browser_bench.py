"""The browser benchmark: how long a page takes to be fully drawn, as a person sees it.

`python -m core bench browser` builds the demo store with a conference, starts
`streamlit run app.py` on loopback and drives Debian's Chromium (/usr/bin/chromium, never a
downloaded one) with Playwright. A time runs from the click that asks for a page to the
last change of the screen: the script has stopped running and nothing in the page changed
for QUIET_MS (the Present page's ticking timer aside).

- first_s: the page as the first one a freshly started server draws (a server a page:
  its deep link, then the demo admin's sign-in button, which draws it).
- warm_s: the median of `warm` visits through the page menu on a server that has drawn it.
- next_s: the median time of Present's Next and Previous (null when Present is not among
  the pages benchmarked).

Bounded: a few servers and `warm` visits a page, every wait cut off at `timeout` seconds.
Goal (issue 15): warm <= 1.5 s, first <= 3 s, next/previous <= 0.5 s on a 2-core machine.
The last line printed is one JSON object: {"pages": {NAME: {"first_s", "warm_s"}}, "next_s"}.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from core import HOME

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]
VIEWPORT = {"width": 1600, "height": 1000}
QUIET_MS = 300
# Page -> its deep link. The titles are the page menu's labels and the pages' h1.
PAGES = {"Caseload": "/caseload", "Case": "/case", "Themes": "/themes", "Barriers": "/barriers",
         "Present": "/present", "Conference": "/conference", "Data": "/data", "Calibration": "/calibration",
         "Catalog": "/catalog"}

# The time of the last click, and of the last change to the page that a person could see:
# nodes, text and attributes, except Streamlit's own test markers and the Present timer,
# which ticks every second.
WATCH_JS = """(() => {
    window.__clickAt = 0; window.__lastChange = performance.now();
    document.addEventListener('click', () => { window.__clickAt = performance.now(); }, true);
    const ticking = node => {
        const e = node && (node.nodeType === 1 ? node : node.parentElement);
        const host = e && e.closest('[data-testid="stElementContainer"]');
        return !!(host && host.querySelector('[data-testid="presentTimer"]'));
    };
    new MutationObserver(changes => {
        for (const c of changes) {
            if (c.type === 'attributes' && c.attributeName.startsWith('data-test')) continue;
            if (ticking(c.target)) continue;
            window.__lastChange = performance.now();
            return;
        }
    }).observe(document, {childList: true, subtree: true, characterData: true, attributes: true});
})();"""

STATE_JS = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    const h1 = document.querySelector('[data-testid="stMain"] h1');
    const h2 = document.querySelector('[data-testid="stMain"] h2');
    return {state: app ? app.dataset.testScriptState : null, title: h1 ? h1.innerText.trim() : '',
            slide: h2 ? h2.innerText.trim() : '', skeleton: !!document.querySelector('[data-testid="stSkeleton"]'),
            now: performance.now(), last: window.__lastChange, click: window.__clickAt};
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _server(store: Path, folder: Path, timeout: float):
    """`streamlit run app.py` on a free loopback port, on `store`, in its own process group."""
    port = _free_port()
    secrets = folder / f"secrets-{port}.toml"
    secrets.write_text(f'[connections.caseconf]\npath = "{store.as_posix()}"\ndemo_if_empty = false\n',
                       encoding="utf-8")
    log = (folder / f"server-{port}.log").open("wb")
    env = {**os.environ, "CASECONF_DB": str(store), "CASECONF_DEMO": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.address", "127.0.0.1", "--server.port", str(port),
                             "--server.fileWatcherType", "none", "--secrets.files", str(secrets)],
                            cwd=HOME, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"The server did not start; its log is {log.name}.")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()


def _drawn(page, timeout: float, title: str | None = None, slide_not: str | None = None) -> float:
    """Wait until the page is fully drawn after the last click; the seconds it took."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = page.evaluate(STATE_JS)
        if (s["state"] == "notRunning" and not s["skeleton"] and s["now"] - s["last"] >= QUIET_MS
                and (title is None or s["title"] == title) and (slide_not is None or s["slide"] not in ("", slide_not))):
            return max(0.0, (s["last"] - s["click"]) / 1000)
        page.wait_for_timeout(50)
    raise RuntimeError(f"The page ({title or 'Present'}) was not drawn within {timeout:g} s.")


def _menu(page, title: str):
    # The label ends the link's text (its icon's name comes first); a match anywhere in it
    # took "Caseload" for "Case", and the Case page's warm visits never arrived.
    label = re.compile(rf"{re.escape(title)}\s*$")
    return page.locator('[data-testid="stSidebar"] a[data-testid="stPageLink-NavLink"]', has_text=label).first


def _visit(page, title: str, timeout: float) -> float:
    _menu(page, title).click()
    return _drawn(page, timeout, title)


def _first(browser, store: Path, folder: Path, title: str, timeout: float) -> float:
    """The page's deep link on a fresh server; the clock runs from the demo sign-in's click."""
    with _server(store, folder, timeout) as url:
        context = browser.new_context(viewport=VIEWPORT)
        try:
            context.add_init_script(WATCH_JS)
            page = context.new_page()
            page.set_default_timeout(timeout * 1000)
            page.goto(url + PAGES[title])
            page.locator('[data-testid="stMain"] button', has_text="Sign in as the demo admin").click()
            return _drawn(page, timeout, title)
        finally:
            context.close()


def _demo_store(folder: Path) -> Path:
    from .synth import with_a_conference
    store = folder / "demo.duckdb"
    subprocess.run([sys.executable, "-m", "core", "demo", "--db", str(store)], cwd=HOME, check=True,
                   capture_output=True, timeout=600)
    with_a_conference(store)  # Present and Conference then show a meeting's agenda
    return store


def bench_browser(pages: list[str] | None = None, warm: int = 3, timeout: float = 60.0) -> dict:
    from playwright.sync_api import sync_playwright
    pages = pages or list(PAGES)
    unknown = [p for p in pages if p not in PAGES]
    if unknown:
        raise SystemExit(f"No page called {', '.join(unknown)}; the pages are {', '.join(PAGES)}.")
    if not CHROMIUM.exists():
        raise SystemExit(f"The browser benchmark needs Chromium at {CHROMIUM} (Debian package 'chromium').")
    result: dict = {"pages": {}, "next_s": None}
    with tempfile.TemporaryDirectory(prefix="caseconf-browser-") as tmp, sync_playwright() as pw:
        folder = Path(tmp)
        store = _demo_store(folder)
        print(f"demo store with a conference; {len(pages)} page(s), {warm} warm visit(s) each; goal: first <= 3 s, "
              "warm <= 1.5 s, next/previous <= 0.5 s", flush=True)
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            firsts = {}
            for title in pages:
                firsts[title] = _first(browser, store, folder, title, timeout)
                print(f"{title:<12} first {firsts[title]:6.2f} s", flush=True)
            with _server(store, folder, timeout) as url:
                context = browser.new_context(viewport=VIEWPORT)
                context.add_init_script(WATCH_JS)
                page = context.new_page()
                page.set_default_timeout(timeout * 1000)
                page.goto(url + "/catalog")
                page.locator('[data-testid="stMain"] button', has_text="Sign in as the demo admin").click()
                _drawn(page, timeout, "Catalog")
                for title in pages:
                    other = "Catalog" if title != "Catalog" else "Caseload"
                    times = []
                    try:
                        for _ in range(max(1, warm)):
                            _visit(page, other, timeout)
                            times.append(_visit(page, title, timeout))
                    except RuntimeError as err:  # one page that never settles costs its own figure only
                        print(f"{title}: {err}", flush=True)
                        result["pages"][title] = {"first_s": round(firsts[title], 3), "warm_s": None}
                        continue
                    result["pages"][title] = {"first_s": round(firsts[title], 3),
                                              "warm_s": round(statistics.median(times), 3)}
                    print(f"{title:<12} first {firsts[title]:6.2f} s   warm {statistics.median(times):6.2f} s "
                          f"(of {', '.join(f'{t:.2f}' for t in times)})", flush=True)
                if "Present" not in pages:
                    context.close()
                    return result
                _visit(page, "Present", timeout)
                steps = []
                for button in ["Next", "Previous"] * max(1, warm):
                    slide = page.evaluate(STATE_JS)["slide"]
                    page.locator('[data-testid="stMain"] button', has_text=button).first.click()
                    steps.append(_drawn(page, timeout, "Present", slide_not=slide))
                result["next_s"] = round(statistics.median(steps), 3)
                print(f"Present next/previous {result['next_s']:.2f} s (of {', '.join(f'{t:.2f}' for t in steps)})",
                      flush=True)
                context.close()
        finally:
            browser.close()
    return result
