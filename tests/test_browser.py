"""The real app in a real browser: `streamlit run app.py` driven by Chromium.

What AppTest cannot see is checked here:

1. Every page answers a deep link on a *cold* server (a freshly started one whose first
   page request is that link): its title, its charts (drawn, with data), no exception,
   no error box, no "Page not found" dialog, no browser console error, and the page runs
   inside the app's own navigation (its titles in the sidebar, the wide layout), not as a
   bare script from the `pages/` folder (Streamlit issue 9992).
2. Uploading the messy example export on the Data page: the validation report and the
   quarantine show every planted problem, and no planted identifier reaches the page.
3. Selecting a row of the caseload table opens that case's page.
4. A full-page screenshot of every page lands in tests/artifacts/screenshots/ (to look at).

The browser is Debian's Chromium at /usr/bin/chromium (never a downloaded one); without
it these tests are skipped. Every server gets its own copy of the demo store, so no test
touches a real store, and every server is stopped (its whole process group) at the end.
"""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlparse

import pytest

from core.store import copy_store
from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="browser tests need Chromium at /usr/bin/chromium "
                                "(Debian package 'chromium'; `./dev test` installs it)")
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

from core.web import PAGES as APP_PAGES  # noqa: E402  (name, title, icon) in navigation order

SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
EXPORT = ROOT / "data" / "examples" / "messy_export.zip"
VIEWPORT = {"width": 1600, "height": 1000}  # a projector in a conference room
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]
START_TIMEOUT = 60  # seconds for a server to answer /_stcore/health
RENDER_TIMEOUT = 60_000  # ms for a cold page to finish its first run (imports, first queries)

NAV_TITLES = [title for _, title, _ in APP_PAGES]

# name -> (deep link, h1 title, Plotly charts the page draws for the demo data, URL it ends
# at). The counts follow the page code: the Case page draws the overview plus the open
# tab's chart (Alliance; a tab's charts are drawn when it is opened); Themes and Barriers draw three each; Caseload (rows with SVG sparklines),
# Data and Catalog none. The root URL opens Caseload at its own URL.
PAGES = {
    "caseload": ("/caseload", "Caseload", 0, "/caseload"),
    "case": ("/case?client=c015", "Case", 2, "/case?client=c015"),
    "themes": ("/themes", "Themes", 3, "/themes"),
    "barriers": ("/barriers", "Barriers", 3, "/barriers"),
    "conference": ("/conference", "Conference", 0, "/conference"),
    "present": ("/present", "Present", 0, "/present"),
    "calibration": ("/calibration", "Calibration", 0, "/calibration"),
    "data": ("/data", "Data", 0, "/data"),
    "catalog": ("/catalog", "Catalog", 0, "/catalog"),
    "root": ("/", "Caseload", 0, "/caseload"),
}

# The planted problems of data/examples/README.md: (file, spreadsheet line) of each
# quarantined row, and the identifying text planted in the export.
PLANTED_ROWS = {
    ("sessions.csv", 17),
    *{("ratings.csv", line) for line in (3, 10, 11, 12, 13, 14, 15)},
    ("themes.csv", 9), ("themes.csv", 10),
    *{("barriers.csv", line) for line in (5, 6, 7, 8, 9)},
    ("events.csv", 6),
}
PLANTED_IDENTIFIERS = ["p104@example.org", "0161 496 0000", "Jenkins", "lowmood.diary@example.org"]

# Requests that leave the machine are blocked (the tests are hermetic and a clinic's server
# may be offline). The only one the app makes: Streamlit fetches the favicon for the
# material icon `page_icon` of app.py from fonts.gstatic.com. Anything new fails the tests.
ALLOWED_EXTERNAL_HOSTS = {"fonts.gstatic.com"}
GRID_ROW_HEIGHT = 35  # px, header and data rows of st.dataframe

# ----------------------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`streamlit run app.py` on a free port, on its own copy of a store, in its own process group."""

    def __init__(self, store: Path, folder: Path, more_secrets=None):
        """`more_secrets(port)`: more of secrets.toml (e.g. an [auth] section naming the port)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.store = folder / "caseconf.duckdb"
        copy_store(store, self.store)  # its state file and its current data snapshot
        self.port = _free_port()
        # The secrets file wins over CASECONF_DB, so a developer's .streamlit/secrets.toml
        # (which may name the clinic's real store) is replaced by one naming the copy.
        secrets = folder / "secrets.toml"
        secrets.write_text(f'[connections.caseconf]\npath = "{self.store.as_posix()}"\ndemo_if_empty = false\n'
                           + (more_secrets(self.port) if more_secrets else ""), encoding="utf-8")
        self.log = folder / "server.log"
        env = {**os.environ, "CASECONF_DB": str(self.store), "CASECONF_DEMO": "0"}
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                 "--server.port", str(self.port), "--server.fileWatcherType", "none",
                 "--secrets.files", str(secrets)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"streamlit exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                with urllib.request.urlopen(self.url("/_stcore/health"), timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        pytest.fail(f"streamlit did not answer /_stcore/health within {START_TIMEOUT} s:\n{self.log_text()}")

    def url(self, path: str) -> str:
        return f"http://localhost:{self.port}{path}"

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the session leader's group: streamlit and its children
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


# ----------------------------------------------------------------------------- the browser


class Watch:
    """What a page told the browser: console errors, uncaught exceptions, requests that left the machine."""

    def __init__(self, context, port: int):
        self.port = port
        self.errors: list[str] = []
        self.external: list[str] = []
        context.route("**/*", self._route)

    def attach(self, page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def _route(self, route) -> None:
        host = urlparse(route.request.url).hostname
        if host in ("localhost", "127.0.0.1"):
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()

    def _console(self, message) -> None:
        if message.type != "error":
            return
        url = (message.location or {}).get("url", "")
        # Benign: on a deep link (/case, /themes, ...) Streamlit's frontend first looks for
        # the server under the link's own path (/case/_stcore/health, .../host-config),
        # gets a 404, and then finds it at the root. Only those two 404s are ignored.
        if re.fullmatch(rf"http://localhost:{self.port}/[\w-]+/_stcore/(health|host-config)", url):
            return
        # A request we blocked ourselves (see ALLOWED_EXTERNAL_HOSTS; checked separately).
        if urlparse(url).hostname in ALLOWED_EXTERNAL_HOSTS and url in self.external:
            return
        self.errors.append(f"console: {message.text} ({url})")

    def unexpected_hosts(self) -> set[str]:
        return {urlparse(u).hostname for u in self.external} - ALLOWED_EXTERNAL_HOSTS


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory) -> Path:
    """The demo data in a store file; every server runs on its own copy."""
    path = tmp_path_factory.mktemp("browser") / "demo.duckdb"
    subprocess.run([sys.executable, "-m", "core", "demo", "--db", str(path)], cwd=ROOT, check=True,
                   capture_output=True, timeout=120)
    return path


@pytest.fixture(scope="module")
def servers(demo_store, tmp_path_factory):
    """Start a fresh (cold) server: `servers(name)`. All are stopped when the module ends."""
    started: list[Server] = []
    root = tmp_path_factory.mktemp("servers")

    def start(name: str) -> Server:
        server = Server(demo_store, root / f"{name}-{len(started)}")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# Every label a page menu in the sidebar shows at any moment, recorded from the first paint
# on: Streamlit's menu of file names, had it flashed before the app's own, is caught too.
NAV_LINKS = '[data-testid="stSidebar"] [data-testid="stSidebarNavLink"], [data-testid="stSidebar"] [data-testid="stPageLink-NavLink"]'
NAV_RECORDER = """(() => {
    const seen = new Set();
    window.__navSeen = seen;
    const record = () => document.querySelectorAll('%s')
        .forEach(e => seen.add(e.innerText.trim().split('\\n').pop().trim()));
    new MutationObserver(record).observe(document, {childList: true, subtree: true, characterData: true});
})();""" % NAV_LINKS


def _new_page(browser, server: Server):
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.add_init_script(NAV_RECORDER)
    watch = Watch(context, server.port)
    page = context.new_page()
    watch.attach(page)
    page.set_default_timeout(RENDER_TIMEOUT)
    return context, page, watch


def _goto(page, url: str, role: str = "admin") -> None:
    """Open `url`; on the demo store's sign-in screen, sign in first as the demo `role` (the
    page then opens at the same address)."""
    page.goto(url)
    demo = page.locator('[data-testid="stMain"] button', has_text=f"Sign in as the demo {role}")
    menu = page.locator('[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"]')
    demo.or_(menu).first.wait_for()
    if demo.count():
        demo.click()
        menu.first.wait_for()


def _settled(page, title: str) -> None:
    """Wait until the page shows `title` and its script run has finished, and lazy charts are drawn."""
    page.locator('[data-testid="stMain"] h1', has_text=title).first.wait_for()
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]'
                           '[data-test-connection-state="CONNECTED"]')
    # Plotly and the data grid load lazily: a skeleton stands in until they are drawn.
    page.wait_for_function("""() => !document.querySelector('[data-testid="stMain"] [data-testid="stSkeleton"]')
        && [...document.querySelectorAll('[data-testid="stMain"] .stPlotlyChart')]
           .every(c => c.querySelector('.js-plotly-plot .main-svg'))""")
    page.wait_for_timeout(500)  # late console messages


CHARTS_JS = """() => [...document.querySelectorAll('[data-testid="stMain"] .stPlotlyChart')].map(c => {
    const gd = c.querySelector('.js-plotly-plot');
    const box = c.getBoundingClientRect();
    const len = a => (a && typeof a.length === 'number') ? a.length : 0;
    const traces = (gd && gd._fullData) || [];
    const points = traces.filter(t => t.visible !== false).reduce((n, t) => n + Math.max(
        len(t.x), len(t.y), len(t.z), len(t.values), len(t.node && t.node.label), len(t.link && t.link.value)), 0);
    return {
        drawn: !!(gd && gd.querySelector('.main-svg')),
        traces: traces.length, points,
        title: (gd && gd.layout && gd.layout.title && gd.layout.title.text) || '',
        notes: ((gd && gd.layout && gd.layout.annotations) || []).map(a => a.text).join(' | '),
        width: Math.round(box.width), height: Math.round(box.height),
        plot_width: Math.round((gd && gd._fullLayout && gd._fullLayout._size && gd._fullLayout._size.w) || 0),
        plot_height: Math.round((gd && gd._fullLayout && gd._fullLayout._size && gd._fullLayout._size.h) || 0),
        shown: box.width > 0 && box.height > 0,   // charts in a tab that is not open have no box
    };
})"""


def _observe(page) -> dict:
    """What the page shows: title, navigation, layout width, charts, error elements, dialogs."""
    return page.evaluate("""() => {
        const all = sel => [...document.querySelectorAll(sel)];
        const main = document.querySelector('[data-testid="stMainBlockContainer"]');
        return {
            url: location.href,
            titles: all('[data-testid="stMain"] h1').map(e => e.innerText.trim()),
            // a link's text is its icon's ligature name, then its label
            nav: all('%s')
                 .map(e => e.innerText.trim().split('\\n').pop().trim()),
            main_width: main ? Math.round(main.getBoundingClientRect().width) : 0,
            exceptions: all('[data-testid="stException"]').map(e => e.innerText.trim().slice(0, 300)),
            error_boxes: all('[data-testid="stAlertContentError"]').map(e => e.innerText.trim().slice(0, 300)),
            warning_boxes: all('[data-testid="stAlertContentWarning"]').map(e => e.innerText.trim().slice(0, 300)),
            dialogs: all('[data-testid="stDialog"], [role="dialog"]').map(e => e.innerText.trim().slice(0, 300)),
            body: document.body.innerText,
            dataframes: all('[data-testid="stMain"] [data-testid="stDataFrame"]').length,
            nav_ever: window.__navSeen ? [...window.__navSeen] : null,
        };
    }""" % NAV_LINKS) | {"charts": page.evaluate(CHARTS_JS)}


def _screenshot(page, name: str) -> Path:
    """A screenshot of the whole page. Streamlit scrolls inside its own container, so the
    viewport is made as tall as the content for the moment of the shot."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("""() => Math.max(...['stMain', 'stAppViewContainer', 'stSidebarContent']
        .map(id => document.querySelector(`[data-testid="${id}"]`)).filter(Boolean).map(e => e.scrollHeight))""")
    path = SCREENSHOTS / f"{name}.png"
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], min(int(height), 12000))})
    try:
        page.wait_for_timeout(700)  # charts follow the new size
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(VIEWPORT)
    return path


def _chart_faults(charts: list[dict]) -> list[str]:
    """Charts not drawn, empty without saying why, or too small to read on a projector."""
    faults = []
    for chart in charts:
        if not chart["drawn"]:
            faults.append(f"not drawn: {chart}")
        # A chart without data must say why (the charts' empty figure: no traces, a note).
        if not (chart["traces"] and chart["points"]) and not (chart["traces"] == 0 and chart["notes"]):
            faults.append(f"empty: {chart}")
        # A chart in a tab that is not open has no size; a note needs no room. The plot area
        # is what is left once the legend, the colour bar and the axis labels took theirs.
        if chart["shown"] and chart["traces"] and (chart["width"] < 500 or chart["height"] < 250
                               or chart["plot_width"] < 300 or chart["plot_height"] < 150):
            faults.append(f"too small: {chart}")
    return faults


def _problems(seen: dict, watch: Watch) -> list[str]:
    """Everything that must not be on a page: exceptions, error boxes, dialogs, console errors."""
    found = [f"exception: {e}" for e in seen["exceptions"]]
    found += [f"error box: {e}" for e in seen["error_boxes"]]
    found += [f"dialog: {e}" for e in seen["dialogs"]]
    if "Page not found" in seen["body"] and not seen["dialogs"]:
        found.append("'Page not found' on the page")
    found += watch.errors
    found += [f"request to {host} (not on the allowed list)" for host in sorted(watch.unexpected_hosts())]
    return found


# ----------------------------------------------------------------------------- 1. cold deep links


@pytest.fixture(scope="module")
def cold(browser, servers):
    """`cold(name)`: open the page by its deep link as the first request of a fresh server,
    once per page (the tests below share the visit), and take its screenshot."""
    visits: dict[str, dict] = {}

    def visit(name: str) -> dict:
        if name not in visits:
            link, title, _, _ = PAGES[name]
            server = servers(name)
            context, page, watch = _new_page(browser, server)
            try:
                _goto(page, server.url(link))
                _settled(page, title)
                seen = _observe(page)
                _screenshot(page, name)
                seen["problems"] = _problems(seen, watch)
                visits[name] = seen
            except Exception as error:  # one failed visit fails that page's tests, without a retry
                visits[name] = f"{type(error).__name__}: {error}\n--- server log ---\n{server.log_text()}"
            finally:
                context.close()
                server.stop()
        if isinstance(visits[name], str):
            pytest.fail(f"opening {PAGES[name][0]} on a cold server failed: {visits[name]}")
        return visits[name]

    return visit


def _this_machines_other_address() -> str | None:
    """An address of this machine that is not loopback (the one its default route uses), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # a documentation address: nothing is sent
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_the_app_listens_on_loopback_only_unless_told_otherwise(servers):
    """Seen wrong: `./dev start` (and `streamlit run app.py`) listened on every interface, so
    anyone on the network reached the app and its demo sign-in; the units and nginx are how a
    clinic opens it to others."""
    other = _this_machines_other_address()
    if other is None:
        pytest.skip("this machine has no address besides loopback")
    server = servers("loopback-only")
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/_stcore/health", timeout=5) as answer:
        assert answer.status == 200
    with socket.socket() as outside:
        outside.settimeout(5)
        reached = outside.connect_ex((other, server.port))
    assert reached != 0, f"the app answered on {other}:{server.port}, an address other machines can reach"


@pytest.mark.parametrize("name", PAGES)
def test_a_cold_deep_link_shows_the_page_without_errors(cold, name):
    seen = cold(name)
    _, title, _, lands = PAGES[name]
    assert seen["titles"] == [title]
    url = urlparse(seen["url"])
    assert (url.path, parse_qs(url.query)) == (urlparse(lands).path, parse_qs(urlparse(lands).query)), \
        "the page is not at its own URL (a bookmark would not bring it back)"
    assert seen["problems"] == []
    assert seen["warning_boxes"] == []  # e.g. the Case page's "no case with this client id"


@pytest.mark.parametrize("name", PAGES)
def test_a_cold_deep_link_runs_inside_the_apps_navigation(cold, name):
    """With a `pages/` folder next to app.py, a fresh server answers its first request in
    Streamlit's legacy pages-folder mode, which runs pages/NAME.py on its own, without app.py
    (no page config, the file names as navigation, st.switch_page fails) unless the page
    hands over to the app's navigation first (`core.web.ensure_navigation`)."""
    seen = cold(name)
    assert seen["nav"] == NAV_TITLES, "the sidebar is not the app's page menu"
    assert seen["main_width"] > 1000, "the page is not in the app's wide layout"
    # Not even for a moment: the legacy mode's menu of file names never shows.
    # (The recorder saw the app's menu itself, so it was watching.)
    assert seen["nav_ever"] is not None and set(seen["nav_ever"]) == set(NAV_TITLES), seen["nav_ever"]


@pytest.mark.parametrize("name", PAGES)
def test_a_cold_deep_link_draws_its_charts(cold, name):
    seen = cold(name)
    expected = PAGES[name][2]
    charts = seen["charts"]
    assert len(charts) == expected, charts
    assert _chart_faults(charts) == []
    if PAGES[name][1] == "Caseload":
        assert seen["dataframes"] == 0  # a list of rows whose reasons are never cut off


def test_the_case_flags_wrap_and_read_as_plain_text(cold):
    """The flags table escapes Markdown in its cells: the flags read as the catalog's words
    (never as codes), the sentences keep their punctuation, and no backslash of the escaping shows."""
    body = cold("case")["body"]
    assert "Alliance rupture, not repaired" in body and "rupture_not_repaired" not in body and "\\" not in body
    assert re.search(r"SRS fell from \d+ to \d+ at session \d+ \(threshold [\d.]+ points\)", body)


# ----------------------------------------------------------------------------- 2. upload


def _grid_rows(frame) -> list[list[str]]:
    """The rows of a data grid that are rendered (its accessible table mirrors the canvas)."""
    return frame.evaluate("""f => [...f.querySelectorAll('table[role="grid"] tbody tr')]
        .map(r => [...r.querySelectorAll('td')].map(td => td.textContent))""")


def _grid_header(frame) -> list[str]:
    return frame.evaluate("""f => [...f.querySelectorAll('table[role="grid"] thead th')]
        .map(th => th.textContent)""")


def _grid_row_count(frame) -> int:
    """Rows of a data grid (aria-rowcount counts the header row too)."""
    return int(frame.locator('table[role="grid"]').get_attribute("aria-rowcount")) - 1


def _all_grid_rows(page, frame) -> list[list[str]]:
    """Every row of a data grid: scroll the grid down and collect the rows each position renders."""
    rows: dict[str, list[str]] = {}
    total = _grid_row_count(frame)
    for _ in range(total + 2):
        for row in _grid_rows(frame):
            rows["\x1f".join(row)] = row
        if len(rows) >= total:
            break
        frame.evaluate("f => f.querySelector('.dvn-scroller').scrollBy(0, 200)")  # the grid's own scroller
        page.wait_for_timeout(150)
    return list(rows.values())


def test_uploading_the_messy_export_reports_and_quarantines_every_planted_problem(browser, servers):
    archive = zipfile.ZipFile(EXPORT)
    raw = "".join(archive.read(n).decode("utf-8-sig", errors="replace") for n in archive.namelist())
    assert all(text in raw for text in PLANTED_IDENTIFIERS), "the example export no longer holds what README says"

    server = servers("upload")
    context, page, watch = _new_page(browser, server)
    try:
        _goto(page, server.url("/data"))
        _settled(page, "Data")
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(EXPORT))
        page.locator('[data-testid="stFileChipName"]', has_text=EXPORT.name).wait_for()
        page.locator('[data-testid="stFormSubmitButton"] button', has_text="Import").click()
        page.locator('[data-testid="stMain"] h3', has_text="Validation report").wait_for()
        _settled(page, "Data")

        seen = _observe(page)
        assert _problems(seen, watch) == []
        # The result: 16 rows quarantined (a warning, since not everything loaded).
        assert any("16 rows quarantined" in w for w in seen["warning_boxes"]), seen["warning_boxes"]

        grids = page.locator('[data-testid="stMain"] [data-testid="stDataFrame"]').all()
        frames = {tuple(_grid_header(f)): f for f in grids}
        report = next(f for h, f in frames.items() if "rule" in h)  # columns off screen are not in the DOM
        quarantine = next(f for h, f in frames.items() if "raw_values" in h)

        # The validation report: download it and compare with the planted problems.
        with page.expect_download() as download:
            page.get_by_role("button", name="Download the report (CSV)").click()
        report_csv = Path(download.value.path()).read_text(encoding="utf-8-sig")
        problems = list(csv.DictReader(io.StringIO(report_csv)))
        assert _grid_row_count(report) == len(problems)
        assert {(Path(p["file"]).name, int(p["line"])) for p in problems} == PLANTED_ROWS
        assert all(p["message"].strip() for p in problems)
        # Identifying values are shown masked, never as written.
        values = " ".join(p["value"] for p in problems)
        for mask in ("[identifying id]", "[phone]", "[name]", "[email]"):
            assert mask in values, f"{mask} missing from the report"

        _screenshot(page, "data_after_import")

        # The quarantine: exactly the 16 planted rows, with their raw values.
        assert _grid_row_count(quarantine) == len(PLANTED_ROWS) == 16
        header = _grid_header(quarantine)
        rows = _all_grid_rows(page, quarantine)
        file_at, line_at = header.index("file"), header.index("line")
        assert {(Path(r[file_at]).name, int(r[line_at])) for r in rows} == PLANTED_ROWS

        # Nothing identifying anywhere: the page text, every grid cell rendered, the report.
        seen_text = "\n".join([page.evaluate("() => document.body.textContent"), report_csv,
                               *("\t".join(r) for r in rows)])
        for text in PLANTED_IDENTIFIERS:
            assert text not in seen_text, f"identifying text on the page: {text}"

        assert watch.errors == []
    finally:
        context.close()
        server.stop()


# ----------------------------------------------------------------------------- 3. caseload -> case


def test_selecting_a_caseload_row_opens_that_case(browser, servers):
    """Click the first row's case link: the first request of this fresh server is
    /caseload, as when a supervisor opens a bookmark after a restart."""
    server = servers("caseload-select")
    context, page, watch = _new_page(browser, server)
    try:
        _goto(page, server.url("/caseload"))
        _settled(page, "Caseload")
        link = page.locator('[data-testid="stMain"] a[data-testid="stPageLink-NavLink"]').first
        client = link.inner_text().strip().split("\n")[-1].strip()
        assert re.fullmatch(r"c\d{3}", client), client
        link.click()

        page.wait_for_url(re.compile(r"/case\?"))
        _settled(page, "Case")
        seen = _observe(page)
        assert urlparse(seen["url"]).path == "/case"
        assert parse_qs(urlparse(seen["url"]).query) == {"client": [client]}
        assert page.locator('[data-testid="stSelectbox"] input[role="combobox"]').first.input_value() == client
        assert _problems(seen, watch) == []
        assert seen["nav"] == NAV_TITLES
        assert seen["charts"] and _chart_faults(seen["charts"]) == []
        _screenshot(page, "case_from_caseload")

        # Each tab of the case: its charts are drawn at a readable size once it is open.
        tabs = page.locator('[data-testid="stMain"] [data-testid="stTab"]')
        assert tabs.all_inner_texts() == ["Alliance", "Outcome", "Themes", "Barriers"]
        for k in range(tabs.count()):
            tabs.nth(k).click()
            panel = page.locator('[data-testid="stMain"] [data-testid="stTabPanel"]').nth(k)
            panel.wait_for(state="visible")
            # A click on a tab reruns the page, which draws the open tab's charts.
            panel.locator('.stPlotlyChart .main-svg').first.wait_for()
            _settled(page, "Case")
            charts = [c for c in page.evaluate(CHARTS_JS) if c["shown"]]
            assert len(charts) >= 2, f"no chart in the {tabs.nth(k).inner_text()} tab"  # the overview + the tab's
            assert _chart_faults(charts) == []
            panel.screenshot(path=str(SCREENSHOTS / f"case_tab_{tabs.nth(k).inner_text().strip().lower()}.png"))
        assert _problems(_observe(page), watch) == []
    finally:
        context.close()
        server.stop()


# ----------------------------------------------------------------------------- 4. a conference


@pytest.fixture(scope="module")
def conference_store(demo_store, tmp_path_factory) -> tuple[Path, int, list[str]]:
    """The demo store with a conference of group-north (three cases), made as a scheduled
    job would make it; returns the store, the conference id and its client ids."""
    path = tmp_path_factory.mktemp("conference") / "demo.duckdb"
    copy_store(demo_store, path)
    out = subprocess.run([sys.executable, "-m", "core", "conference", "new", "--group", "group-north", "--cases", "3",
                          "--user", "sup1", "--db", str(path), "--json"], cwd=ROOT, check=True, capture_output=True,
                         text=True, timeout=120)
    import json
    made = json.loads(out.stdout)
    return path, made["id"], [item["client_id"] for item in made["agenda"]]


LAPTOP = {"width": 1400, "height": 900}  # a laptop's window, the sidebar open


@contextmanager
def _open(browser, store: Path, folder: Path, link: str, title: str, viewport: dict | None = None):
    """A fresh server on a copy of `store`, a browser page (of `viewport`'s size, if given)
    at `link` settled on `title`: yields (page, watch); closes both at the end."""
    server = Server(store, folder)
    context, page, watch = _new_page(browser, server)
    try:
        if viewport:
            page.set_viewport_size(viewport)
        _goto(page, server.url(link))
        _settled(page, title)
        yield page, watch
    finally:
        context.close()
        server.stop()


def _visit(page, link: str, title: str) -> None:
    """Go to `link` on the server the page is on, and wait for `title` to settle."""
    _goto(page, urljoin(page.url, link))
    _settled(page, title)


def _main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def test_presentation_mode_runs_a_conference_case_by_case(browser, conference_store, tmp_path):
    """A cold deep link to a conference's slides: Case A by its label (no client or
    therapist id on screen), its chart, a running timer, the small-group figure suppressed;
    Next and Previous move through the agenda and the URL keeps the place."""
    store, conference_id, clients = conference_store
    with _open(browser, store, tmp_path / "server", f"/present?conference={conference_id}", "Present") as (page,
                                                                                                        watch):
        main = page.locator('[data-testid="stMain"]')
        assert main.locator("h2").first.inner_text().strip() == "Case A"
        seen = _observe(page)
        assert _problems(seen, watch) == []
        assert seen["charts"] and _chart_faults(seen["charts"]) == []
        assert seen["charts"][0]["title"] == "Case A: case overview"
        therapists = [f"th{n:02d}" for n in range(1, 13)]
        shown = _main_text(page)
        assert not [c for c in clients + therapists if re.search(rf"\b{c}\b", shown)]
        assert "fewer than 11" in shown  # one therapist's handful of cases: not drawn
        timer = main.locator('[data-testid="presentTimer"]').first
        first = timer.inner_text()
        page.wait_for_timeout(2500)
        assert timer.inner_text() != first, "the timer does not run"
        _screenshot(page, "present_case_a")

        main.get_by_role("button", name="Next").click()
        main.locator("h2", has_text="Case B").first.wait_for()
        _settled(page, "Present")
        assert parse_qs(urlparse(page.url).query)["item"] == ["2"]
        main.get_by_role("button", name="Previous").click()
        main.locator("h2", has_text="Case A").first.wait_for()
        page.get_by_text("Hide the presenting therapist").click()
        main.locator("h2", has_text="presented by").first.wait_for()
        assert _problems(_observe(page), watch) == []


def test_the_handout_downloads_and_opens_offline(browser, conference_store, tmp_path):
    """On the Conference page: prepare the (de-identified) handout, download it, open the
    file with the network cut off: every case's chart is drawn, no id is named."""
    store, conference_id, clients = conference_store
    with _open(browser, store, tmp_path / "server", f"/conference?conference={conference_id}", "Conference") as (
            page, watch):
        page.locator('[data-testid="stMain"] [data-testid="stButtonGroup"] button', has_text="Handout").click()
        page.get_by_role("button", name="Prepare the handout").click()
        button = page.get_by_role("button", name=re.compile("Download the handout"))
        button.wait_for()
        _screenshot(page, "conference_handout")
        with page.expect_download() as download:
            button.click()
        saved = tmp_path / "handout.html"
        download.value.save_as(saved)
        assert _problems(_observe(page), watch) == []

    text = saved.read_text(encoding="utf-8")
    assert "<script src" not in text and saved.stat().st_size > 3_000_000
    offline = browser.new_context(viewport=VIEWPORT, offline=True)
    try:
        sheet = offline.new_page()
        errors: list[str] = []
        sheet.on("pageerror", lambda error: errors.append(str(error)))
        sheet.goto(saved.as_uri())
        sheet.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3")
        body = sheet.locator("body").inner_text()
        assert "Case A" in body and "Case C" in body and errors == []
        assert not [c for c in clients if re.search(rf"\b{c}\b", body)]
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        sheet.screenshot(path=str(SCREENSHOTS / "handout.png"), full_page=True)
    finally:
        offline.close()
