"""A real OIDC sign-in in Chromium, for each role, against a local OIDC provider.

The provider is `oidc-provider-mock` (PyPI), started on loopback by the fixture and
stopped at the end; the app runs with the standard [auth] section of secrets.toml naming
it. Each role signs in through the provider's form, and the test records what the role
saw and what it was refused; then a cookie copied before sign-out is refused after it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_browser import (CHROMIUM, SCREENSHOTS, Server, _free_port, _new_page, _screenshot, _settled,
                                sync_api)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="browser tests need Chromium at /usr/bin/chromium")
pytest.importorskip("oidc_provider_mock", reason="the sign-in test needs the oidc-provider-mock package")

ROLES = {  # subject -> (role, what it must see, pages refused)
    "oidc-admin": ("admin", {"Data", "Admin", "Conference"}, set()),
    "oidc-sup": ("supervisor", {"Conference"}, {"data", "admin"}),
    "oidc-trainee": ("trainee", set(), {"conference", "data", "admin"}),
}
REPORT = SCREENSHOTS.parent / "signin-report.json"
TRAINEE_CLIENTS: set[str] = set()  # th02's clients, read from the store before the server starts
NORTH_CLIENTS: set[str] = set()  # the clients of group-north's therapists (the supervisor's)


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    """The OIDC provider on a free loopback port; its issuer URL."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("oidc") / "provider.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the OIDC provider did not start")
                time.sleep(0.2)
        yield issuer
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def clinic_store(tmp_path_factory) -> Path:
    """A real store (the demo data and a real import, so no demo sign-in) with one user per role."""
    path = tmp_path_factory.mktemp("clinic") / "clinic.duckdb"
    run = lambda *args: subprocess.run([sys.executable, "-m", "core", *args, "--db", str(path)], cwd=ROOT,  # noqa: E731
                                       check=False, capture_output=True, timeout=120)
    run("demo")
    run("import", str(ROOT / "data" / "examples" / "messy_export.zip"))
    run("users", "add", "oidc-admin", "--role", "admin")
    run("users", "add", "oidc-sup", "--role", "supervisor", "--group", "group-north")
    run("users", "add", "oidc-trainee", "--role", "trainee", "--therapist", "th02", "--group", "group-north")
    run("conference", "new", "--group", "group-north", "--cases", "3", "--user", "oidc-sup")
    from core.access import Scope
    from core.store import Store
    store = Store(path)  # before the server holds the file
    rows = store.query("SELECT DISTINCT client_id, therapist_id, supervision_group FROM sessions "
                       "JOIN therapists USING (therapist_id)", scope=Scope.system("test"))
    TRAINEE_CLIENTS.update(c for c, t, _ in rows.iter_rows() if t == "th02")
    NORTH_CLIENTS.update(c for c, _, g in rows.iter_rows() if g == "group-north")
    store.close()
    return path


@pytest.fixture(scope="module")
def server(clinic_store, provider, tmp_path_factory):
    auth = lambda port: (  # noqa: E731
        f'\n[auth]\nredirect_uri = "http://localhost:{port}/oauth2callback"\ncookie_secret = "test-cookie-secret-32-bytes-long!"\n'
        f'client_id = "caseconf"\nclient_secret = "caseconf-secret"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n')
    started = Server(clinic_store, tmp_path_factory.mktemp("signin-server"), more_secrets=auth)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu",
                                                                            "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


def sign_in(page, server, subject: str) -> None:
    page.goto(server.url("/caseload"))
    page.locator('[data-testid="stMain"] button', has_text="Sign in").click()
    page.locator('input[name="sub"]').fill(subject)  # the provider's own form
    page.locator('button[type="submit"]', has_text="Authorize").click()
    page.locator('[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"]').first.wait_for()


def menu(page) -> list[str]:
    return [e.inner_text().split("\n")[-1].strip()
            for e in page.locator('[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"]').all()]


def test_each_role_signs_in_and_sees_only_what_it_may(browser, server, clinic_store):
    report = {}
    for subject, (role, must_see, refused) in ROLES.items():
        context, page, watch = _new_page(browser, server)
        try:
            sign_in(page, server, subject)
            _settled(page, "Caseload")
            links = menu(page)
            assert must_see <= set(links), (subject, links)
            assert not {name.capitalize() for name in refused} & set(links), (subject, links)
            # Every case of theirs, flagged or not: the toggle off, one row (and link) a case.
            page.locator('[data-testid="stMain"] label', has_text="Only cases with a flag").click()
            page.wait_for_timeout(300)
            page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
            body = page.locator('[data-testid="stMain"]').inner_text()
            assert f"Signed in as {subject} ({role})" in page.locator('[data-testid="stSidebar"]').inner_text()
            clients = sorted(set(re.findall(r"\bc\d{3}\b", body)))
            _screenshot(page, f"signin-{role}")
            denied = {}
            for name in sorted(refused):
                page.goto(server.url(f"/{name}"))
                page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
                page.wait_for_timeout(500)
                text = page.locator('[data-testid="stMain"]').inner_text()
                denied[name] = "not open to your role" in text or "Page not found" in text \
                    or f"/{name}" not in page.url
                assert denied[name], (subject, name, text[:200])
            report[role] = {"subject": subject, "menu": links, "caseload_clients": clients, "refused": denied}
            if role == "trainee":
                assert clients and set(clients) <= TRAINEE_CLIENTS, (clients, TRAINEE_CLIENTS)
        finally:
            context.close()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2), encoding="utf-8")
    trainee, supervisor, admin = (set(report[r]["caseload_clients"]) for r in ("trainee", "supervisor", "admin"))
    # Least privilege, as the caseload shows it (the admin's first page holds 50 of every case).
    assert trainee < supervisor <= NORTH_CLIENTS and len(admin) > len(supervisor) and admin - NORTH_CLIENTS


def test_a_cookie_copied_before_sign_out_is_refused_after_it(browser, server):
    context, page, _ = _new_page(browser, server)
    try:
        sign_in(page, server, "oidc-sup")
        _settled(page, "Caseload")
        copied = context.cookies()
        page.locator('[data-testid="stSidebar"] button', has_text="Sign out").click()
        page.wait_for_timeout(1500)
    finally:
        context.close()
    thief = browser.new_context()
    try:
        thief.add_cookies(copied)
        page = thief.new_page()
        page.goto(server.url("/caseload"))
        page.locator("text=This sign-in has ended").wait_for(timeout=30_000)
        assert not page.locator('[data-testid="stMain"] [data-testid="stDataFrame"]').count()
    finally:
        thief.close()
