"""The command line works while the app serves the same store.

A running app holds its store open and reads it on every rerun. The command line (a
person at a terminal, or the scheduled `conference new` the README suggests) must still
import, make a conference, export a handout, summarize a case and list users, and the
app must see what was imported on its next read. Here the app is stood in for by a
process that reads the store the way the app does (sign-in check, audit write, an
analytic read) ten times a second; the browser test in test_browser_cluster.py runs the
real app.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

EXPORT = ROOT / "data" / "examples" / "messy_export.zip"

# A busy app: every 0.1 s a rerun's worth of reads and one write, for at most 120 s.
READER = textwrap.dedent("""
    import sys, time
    from core.access import Scope
    from core.store import open_store
    from core import audit
    store = open_store(sys.argv[1])
    scope = Scope.system("the app", user="app")
    seen = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if hasattr(store, "refresh"):
            store.refresh()
        clients = store.scalar("SELECT count(DISTINCT client_id) FROM sessions", scope=scope)
        store.scalar("SELECT count(*) FROM users", scope=scope)
        audit.record(store, scope, "view_case", "c001")
        if clients != seen:
            print(f"clients {clients}", flush=True)
            seen = clients
        time.sleep(0.1)
""")


def _cli(*args, db: Path, timeout: float = 120):
    return subprocess.run([sys.executable, "-m", "core", *args, "--db", str(db)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "CASECONF_USER": "cron"})


@pytest.fixture
def busy_store(tmp_path):
    db = tmp_path / "clinic.duckdb"
    made = subprocess.run([sys.executable, "-m", "core", "demo", "--db", str(db)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    log = (tmp_path / "reader.log").open("w+")
    reader = subprocess.Popen([sys.executable, "-c", READER, str(db)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                              text=True)
    try:
        deadline = time.monotonic() + 60
        while "clients" not in Path(log.name).read_text():
            assert reader.poll() is None, Path(log.name).read_text()
            assert time.monotonic() < deadline, "the reading process did not start"
            time.sleep(0.1)
        yield db, reader, Path(log.name)
    finally:
        reader.kill()
        reader.wait(timeout=30)
        log.close()


def test_every_command_works_while_the_app_reads_and_the_app_sees_the_import(busy_store, tmp_path):
    db, reader, log = busy_store
    before = log.read_text().strip().splitlines()[-1]

    imported = _cli("import", str(EXPORT), "--json", db=db)
    assert imported.returncode in (0, 1), imported.stderr  # 1: the export's planted rows are quarantined
    assert json.loads(imported.stdout)["batch"]

    made = _cli("conference", "new", "--group", "group-north", "--date", "2026-12-07", "--json", db=db)
    assert made.returncode == 0, made.stderr
    conference = json.loads(made.stdout)["id"]

    handout = tmp_path / "handout.html"
    exported = _cli("conference", "export", str(conference), "--html", str(handout), db=db)
    assert exported.returncode == 0, exported.stderr
    assert handout.stat().st_size > 1000

    case = _cli("case", "c001", "--json", db=db)
    assert case.returncode == 0, case.stderr
    assert json.loads(case.stdout)["client_id"] == "c001"

    users = _cli("users", "list", "--json", db=db)
    assert users.returncode == 0, users.stderr

    assert reader.poll() is None, log.read_text()  # the app never failed meanwhile
    # The messy export brings clients the demo lacks: the app's next read counts them.
    deadline = time.monotonic() + 30
    while log.read_text().strip().splitlines()[-1] == before:
        assert reader.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"the app still shows '{before}' after the import"
        time.sleep(0.2)
    assert "Traceback" not in log.read_text()


def _history_files(page) -> list[str]:
    """The File column of the Data page's import history (the last grid on the page)."""
    from tests import test_browser as tb
    grid = page.locator('[data-testid="stMain"] [data-testid="stDataFrame"]').last
    grid.locator('table[role="grid"]').wait_for(state="attached")
    header = tb._grid_header(grid)
    return [row[header.index("File")] for row in tb._grid_rows(grid)]


def test_the_running_app_shows_what_the_command_line_imported_at_its_next_rerun(tmp_path):
    """The real app in Chromium: signed in on the Data page, the command line imports, and
    the same browser session, moving to Caseload and back, lists the new import."""
    from tests import test_browser as tb
    if not tb.CHROMIUM.exists():
        pytest.fail("this test needs Chromium at /usr/bin/chromium (Debian package 'chromium')")
    db = tmp_path / "demo.duckdb"
    made = subprocess.run([sys.executable, "-m", "core", "demo", "--db", str(db)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    server = tb.Server(db, tmp_path / "server")
    try:
        with tb.sync_api.sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=str(tb.CHROMIUM), args=tb.CHROMIUM_ARGS)
            try:
                context, page, watch = tb._new_page(chromium, server)
                tb._goto(page, server.url("/data"))
                tb._settled(page, "Data")
                assert "messy_export.zip" not in _history_files(page)
                imported = _cli("import", str(EXPORT), "--json", db=server.store)  # the server's own store
                assert imported.returncode in (0, 1), imported.stderr
                nav = page.locator(tb.NAV_LINKS)
                nav.filter(has_text="Caseload").first.click()
                tb._settled(page, "Caseload")
                nav.filter(has_text="Data").first.click()
                tb._settled(page, "Data")
                assert "messy_export.zip" in _history_files(page)
                assert tb._problems(tb._observe(page), watch) == []
                context.close()
            finally:
                chromium.close()
    finally:
        server.stop()
