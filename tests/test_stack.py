"""A clinic network on loopback: PostgreSQL, two app servers behind nginx, one snapshot folder.

Real processes throughout: PostgreSQL (Debian's, run as the postgres user) holding the
state, two `streamlit run` servers in server mode over it and one shared snapshot folder,
nginx with the site file rendered from deploy/nginx/caseconf.conf.in, Chromium for the
people. Each test pins one browser
to each app server (nginx's access log names the server a routing cookie reaches) and
checks what a clinic must be able to rely on:

(a) notes saved at the same moment through both servers are all kept, and two edits of
    the same note at once: one is saved, the other is refused with a sentence, never
    written over it;
(b) an import that publishes a new data snapshot while both servers serve: no error, and
    both show the new data at their next rerun;
(c) one app server killed (SIGKILL) and started again: every saved note is still there,
    the other server goes on serving through nginx, and the killed server's browser is
    moved to it.

Skipped only when nginx, Chromium or PostgreSQL is missing (CI installs all three).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.access import Scope
from core.store import Store, default_snapshots
from devtools.local_postgres import OWNER, WEB
from devtools.stack import POSTGRES_ENV, SITE_FILE, Stack, clinic_site, find_nginx
from tests.conftest import ROOT
from tests.pgserver import pg_server  # noqa: F401  (the session's server)
from tests.test_browser import browser  # noqa: F401  (one headless Chromium per module)

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium (Debian package 'chromium')"),
    pytest.mark.skipif(find_nginx() is None, reason="needs nginx (Debian package 'nginx')"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")

STEP_MS = 60_000
NAV = '[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"]'
SETTLED = '[data-testid="stApp"][data-test-script-state="notRunning"][data-test-connection-state="CONNECTED"]'
FAULTS = '[data-testid="stException"], [data-testid="stAlertContentError"]'


def test_the_shipped_site_file_is_the_template_rendered_for_a_clinic():
    """deploy/nginx/caseconf.conf is what `python -m devtools.stack site` renders: the tests'
    and the benchmark's nginx runs the same routing a clinic installs."""
    assert SITE_FILE.read_text(encoding="utf-8") == clinic_site(), \
        "deploy/nginx/caseconf.conf differs from its template: run `python -m devtools.stack site > deploy/nginx/caseconf.conf`"
    assert "hash $caseconf_route consistent;" in clinic_site() and "upgrade" in clinic_site()


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def conference_store(pg_server, tmp_path_factory) -> tuple[Path, str, int]:
    """The demo data with a conference of group-north (three cases), as the scheduled job
    makes it, in server mode: a migrated state database (kept as a template) and the
    snapshot folder beside `path`."""
    path = tmp_path_factory.mktemp("stack") / "demo.duckdb"
    dsn = pg_server.app_database()
    env = {**os.environ, POSTGRES_ENV: dsn, "CASECONF_DEMO": "0"}
    run = dict(cwd=ROOT, check=True, capture_output=True, text=True, timeout=180, env=env)
    subprocess.run([sys.executable, "-m", "core", "demo", "--db", str(path)], **run)
    made = subprocess.run([sys.executable, "-m", "core", "conference", "new", "--group", "group-north", "--cases", "3",
                           "--user", "sup1", "--db", str(path), "--json"], **run)
    return path, dsn.rsplit("/", 1)[1], json.loads(made.stdout)["id"]


@pytest.fixture
def stack(pg_server, conference_store, tmp_path):
    """PostgreSQL, two app servers and nginx over a fresh copy of the conference store: a
    database made from the template and a copy of its snapshot folder."""
    source, template, conference_id = conference_store
    database = f"{template}_{tmp_path.name[-12:].lower().replace('-', '_')}"
    database = "t" + database[-40:]
    pg_server.superuser(f"CREATE DATABASE {database} TEMPLATE {template} OWNER {OWNER}")
    store = tmp_path / "store" / "caseconf.duckdb"
    shutil.copytree(default_snapshots(source), default_snapshots(store))
    with Stack(store, tmp_path / "stack", replicas=2, postgres=pg_server.dsn(WEB, database)) as running:
        running.conference_id = conference_id
        yield running


def pinned_pages(browser, stack: Stack, within_s: float = 40) -> list:
    """One browser page per app server: new contexts until the routing cookie of one has
    reached each server (nginx's access log says which), the others closed. A server nginx
    has just seen fail is skipped for its fail_timeout, so this keeps trying a while."""
    pages: dict[str, object] = {}
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.set_default_timeout(STEP_MS)
        page = context.new_page()
        page.goto(f"{stack.url}/_stcore/health")
        route = next(c["value"] for c in context.cookies() if c["name"] == "caseconf_route")
        upstream = _upstream_of(stack, route)
        if upstream in pages:
            context.close()
            time.sleep(0.3)
            continue
        pages[upstream] = page
        if len(pages) == len(stack.servers):
            return [pages[s.address] for s in stack.servers]
    raise AssertionError(f"in {within_s} s no browsers reached every app server: {sorted(pages)}")


LOG_LINE = re.compile(r'" \d{3} (?P<upstreams>.+) [\d.]+ (?P<route>\S+)$')


def _upstream_of(stack: Stack, route: str) -> str:
    """The app server that answered the latest request with `route` (after any failed ones)."""
    for line in reversed(stack.access_log()):
        found = LOG_LINE.search(line)
        if found and found["route"] == route:
            return found["upstreams"].split(", ")[-1]
    raise AssertionError(f"the access log has no request with the route {route}")


def _sign_in(page, url: str) -> None:
    """Open `url` and sign in as the demo admin (the page then opens at the same address)."""
    page.goto(url)
    demo = page.locator('[data-testid="stMain"] button', has_text="Sign in as the demo admin")
    menu = page.locator(NAV)
    demo.or_(menu).first.wait_for()
    if demo.count():
        demo.click()
        menu.first.wait_for()
    page.wait_for_selector(SETTLED)


def _open_notes(page, stack: Stack) -> None:
    _sign_in(page, f"{stack.url}/conference?conference={stack.conference_id}")
    main = page.locator('[data-testid="stMain"]')
    main.locator('[data-testid="stButtonGroup"] button', has_text="Notes and decisions").click()
    main.locator('textarea[aria-label="New note"]').wait_for()
    page.wait_for_selector(SETTLED)


def _shows_saved(page, text: str) -> None:
    page.wait_for_function("""text => [...document.querySelectorAll('[data-testid="stMain"] textarea')]
        .some(t => t.getAttribute('aria-label') !== 'New note' && t.value === text)""", arg=text)


def _type_note(page, text: str) -> None:
    page.locator('[data-testid="stMain"] textarea[aria-label="New note"]').fill(text)


def _save(page):
    page.get_by_role("button", name="Save the note").click(no_wait_after=True)


def _faults(page) -> list[str]:
    return page.locator(FAULTS).all_inner_texts()


def _entries(stack: Stack):
    store = Store(stack.store, postgres=stack.postgres)
    try:
        return store.query("SELECT entry_id, version, text, saved_by FROM conference_entries ORDER BY entry_id, "
                           "version", scope=Scope.system("test"))
    finally:
        store.close()


# ----------------------------------------------------------------------------- (a) notes


def test_notes_saved_at_once_through_both_servers_are_kept_and_a_concurrent_edit_is_refused(browser, stack):
    first, second = pinned_pages(browser, stack)
    for page in (first, second):
        _open_notes(page, stack)
    ours = {first: "Through the first server: the rupture was never named.",
            second: "Through the second server: try a repair conversation first."}
    for page, text in ours.items():
        _type_note(page, text)
    for page in ours:  # both saves in flight at once
        _save(page)
    for page, text in ours.items():
        _shows_saved(page, text)
        page.wait_for_selector(SETTLED)
        assert _faults(page) == []
    stored = _entries(stack)
    assert sorted(stored["text"].to_list()) == sorted(ours.values()), "a note saved at the same moment was lost"
    assert stored["entry_id"].n_unique() == 2

    # Both open the notes afresh (each shows both notes at version 1) and change the
    # first-saved one at once: one edit is saved, the other refused with a sentence.
    entry = stored["entry_id"][0]
    for page in (first, second):
        _open_notes(page, stack)
    edits = {first: "Edited through the first server.", second: "Edited through the second server."}
    boxes = {page: page.locator(f'[data-testid="stMain"] textarea[aria-label="Note {entry}"]') for page in edits}
    for page, text in edits.items():
        boxes[page].fill(text)
    for page in edits:  # leaving the field saves it
        boxes[page].press("Tab", no_wait_after=True)
    refused = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not refused:
        refused = [page for page in edits if page.locator('[data-testid="stAlertContentError"]',
                                                          has_text="was not saved").count()]
        time.sleep(0.2)
    assert len(refused) == 1, "two edits of one note at once: exactly one must be refused"
    loser = refused[0]
    winner = next(page for page in edits if page is not loser)
    sentence = loser.locator('[data-testid="stAlertContentError"]').first.inner_text()
    assert re.search(rf"Entry {entry} was changed by .+ since you opened it, so your version was not saved", sentence)
    versions = _entries(stack).filter(_col("entry_id") == entry)
    assert versions["version"].to_list() == [1, 2], "the refused edit was written anyway"
    assert versions["text"][-1] == edits[winner] and edits[loser] not in _entries(stack)["text"].to_list()
    loser.wait_for_selector(SETTLED)
    assert loser.locator(f'[data-testid="stMain"] textarea[aria-label="Note {entry}"]').input_value() == edits[loser], \
        "the refused text is no longer in its box"


def _col(name):
    import polars as pl
    return pl.col(name)


# ----------------------------------------------------------------------------- (b) import


def _cases_caption(page) -> int:
    caption = page.locator('[data-testid="stMain"] [data-testid="stCaptionContainer"]', has_text="cases, highest")
    return int(re.search(r"of ([\d,]+) cases", caption.first.inner_text()).group(1).replace(",", ""))


def _rerun(page, title: str) -> None:
    """Go to `title` through the app's menu and wait for its run to finish."""
    page.locator(NAV, has_text=title).first.click()
    page.locator('[data-testid="stMain"] h1', has_text=title).first.wait_for()
    page.wait_for_selector(SETTLED)


def test_an_import_published_while_both_servers_serve_shows_at_the_next_rerun_without_error(browser, stack,
                                                                                             tmp_path):
    pages = pinned_pages(browser, stack)
    for page in pages:
        _sign_in(page, f"{stack.url}/caseload")
    before = [_cases_caption(page) for page in pages]
    export = tmp_path / "export"
    export.mkdir()
    (export / "sessions.csv").write_text("client_id,therapist_id,session_number\n"
                                         + "".join(f"c9{n:02d},th01,{s}\n" for n in range(3) for s in range(2)),
                                         encoding="utf-8")
    importer = subprocess.Popen([sys.executable, "-m", "core", "import", str(export), "--db", str(stack.store),
                                 "--json"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, POSTGRES_ENV: stack.postgres})
    reruns = 0
    try:
        while importer.poll() is None or reruns < 2:  # people keep reading while it runs
            for page in pages:
                _rerun(page, "Themes" if reruns % 2 == 0 else "Caseload")
                assert _faults(page) == [], "a page showed an error during the import"
            reruns += 1
            assert reruns < 60, "the import did not finish"
        out, err = importer.communicate(timeout=120)
    finally:
        if importer.poll() is None:
            importer.kill()
    assert importer.returncode == 0, err
    assert json.loads(out)["loaded"]["sessions"] == 6
    for page in pages:  # the import has finished: one rerun shows it
        _rerun(page, "Themes")
        _rerun(page, "Caseload")
        assert _cases_caption(page) == before[0] + 3
        assert _faults(page) == []
    assert before[0] == before[1]


# ----------------------------------------------------------------------------- (c) a server dies


def test_a_killed_app_server_loses_nothing_and_the_other_keeps_serving(browser, stack):
    survivor, victim = pinned_pages(browser, stack)
    for page in (survivor, victim):
        _open_notes(page, stack)
    saved = []
    for page, text in ((survivor, "Before the crash, through the survivor."),
                       (victim, "Before the crash, through the server that dies.")):
        _type_note(page, text)
        _save(page)
        _shows_saved(page, text)
        saved.append(text)
    stack.servers[1].kill()

    # The survivor goes on serving through nginx.
    _type_note(survivor, "While the other server is down.")
    _save(survivor)
    _shows_saved(survivor, "While the other server is down.")
    saved.append("While the other server is down.")
    # The dead server's browser is moved to the survivor: it signs in again and saves there.
    _open_notes(victim, stack)
    _type_note(victim, "After the crash, through the survivor.")
    _save(victim)
    _shows_saved(victim, "After the crash, through the survivor.")
    saved.append("After the crash, through the survivor.")
    assert _upstream_of(stack, next(c["value"] for c in victim.context.cookies()
                                    if c["name"] == "caseconf_route")) == stack.servers[0].address

    stack.restart(1)
    back = pinned_pages(browser, stack)[1]  # a browser routed to the restarted server
    _open_notes(back, stack)
    for text in saved:
        _shows_saved(back, text)
    assert _faults(back) == [] and _faults(survivor) == []
    assert sorted(_entries(stack)["text"].to_list()) == sorted(saved), "a saved note was lost"
