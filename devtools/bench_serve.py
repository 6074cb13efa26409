"""`python -m core bench serve`: the whole stack on loopback, driven by simulated people.

N app servers behind nginx (devtools.stack) over a fresh copy of the demo store, with a
conference for every supervision group. M simulated people, each a real browser
session (a Playwright context in one headless Chromium), sign in as the demo admin and
go round the app through its own menu: Caseload, Case, Themes, Conference (where they
save a note through the form and wait until the page shows it saved), Barriers, and
again, until the time is up; the time runs from the moment everyone has signed in.
A page load is timed from the click to the page's script
run having finished with its title drawn.

Afterwards the store is read directly (as the command line reads it): every note a user
saw saved must be there, else it counts as lost. The last line printed is one JSON object:
{"replicas", "users", "state", "page_loads", "p50_s", "p95_s", "errors", "notes_written", "notes_lost"}
("state": "postgresql" or "embedded").

Bounded: at most MAX_USERS users and MAX_SECONDS seconds, every browser step has a
timeout, and the drive as a whole is cancelled `GRACE_S` after its time is up.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .stack import POSTGRES_ENV, ROOT, Stack, StackError

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]
VIEWPORT = {"width": 1400, "height": 900}
MAX_USERS = 32
MAX_SECONDS = 600.0
STEP_TIMEOUT_MS = 60_000   # one page load or one save
GRACE_S = 90.0             # after the time is up, for the steps under way to finish
ROUND = ("Case", "Themes", "Conference", "Barriers", "Caseload")
NAV = '[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"]'
SETTLED = '[data-testid="stApp"][data-test-script-state="notRunning"][data-test-connection-state="CONNECTED"]'
FAULTS = '[data-testid="stException"], [data-testid="stAlertContentError"]'


@dataclass
class Tally:
    """What the users did and saw, across all of them."""
    load_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # texts the page showed saved


def demo_store(folder: Path, postgres: str | None = None) -> tuple[Path, list[int]]:
    """A fresh demo store in `folder` (its state in `postgres`, when given) with a conference of
    every demo supervision group."""
    path = folder / "caseconf.duckdb"
    env = {**os.environ, "CASECONF_DEMO": "0"}
    env.pop(POSTGRES_ENV, None)
    if postgres:
        env[POSTGRES_ENV] = postgres
    subprocess.run([sys.executable, "-m", "core", "demo", "--db", str(path)], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=300)
    with (ROOT / "data" / "demo" / "therapists.csv").open(encoding="utf-8") as handle:
        groups = sorted({row["supervision_group"] for row in csv.DictReader(handle) if row["supervision_group"]})
    conferences = []
    for group in groups:
        made = subprocess.run([sys.executable, "-m", "core", "conference", "new", "--group", group, "--cases", "3",
                               "--user", "sup1", "--db", str(path), "--json"], cwd=ROOT, env=env, check=True,
                              capture_output=True, text=True, timeout=300)
        conferences.append(json.loads(made.stdout)["id"])
    return path, conferences


# ----------------------------------------------------------------------------- one person


async def _settled(page, title: str) -> None:
    await page.locator('[data-testid="stMain"] h1', has_text=title).first.wait_for()
    await page.wait_for_selector(SETTLED)


async def sign_in(page, url: str, role: str = "admin") -> None:
    """Open `url` and sign in as the demo `role`; returns once the menu is drawn."""
    await page.goto(url)
    demo = page.locator('[data-testid="stMain"] button', has_text=f"Sign in as the demo {role}")
    menu = page.locator(NAV)
    await demo.or_(menu).first.wait_for()
    if await demo.count():
        await demo.click()
        await menu.first.wait_for()
    await page.wait_for_selector(SETTLED)


async def open_page(page, title: str) -> float:
    """Click `title` in the app's menu; seconds until the page is drawn and its run finished."""
    started = time.perf_counter()
    await page.locator(NAV, has_text=title).first.click()
    await _settled(page, title)
    return time.perf_counter() - started


async def save_note(page, text: str) -> None:
    """On the Conference page: Notes and decisions, type `text` as a new note, save, and
    wait until the page shows it among the saved notes."""
    main = page.locator('[data-testid="stMain"]')
    await main.locator('[data-testid="stButtonGroup"] button', has_text="Notes and decisions").click()
    box = main.locator('textarea[aria-label="New note"]')
    await box.wait_for()
    await page.wait_for_selector(SETTLED)
    await box.fill(text)
    await page.get_by_role("button", name="Save the note").click()
    await page.wait_for_function(
        """text => [...document.querySelectorAll('[data-testid="stMain"] textarea')]
                   .some(t => t.getAttribute('aria-label') !== 'New note' && t.value === text)""", arg=text)


async def _faults(page) -> list[str]:
    return [text.strip()[:200] for text in await page.locator(FAULTS).all_inner_texts()]


async def person(browser, url: str, number: int, ready: asyncio.Barrier, clock: dict, tally: Tally) -> None:
    """One person: signs in, waits until everyone has (the clock starts then), then goes
    round the app until the time is up."""
    context = await browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = await context.new_page()
    page.on("pageerror", lambda error: tally.errors.append(f"user {number}: browser error: {error}"))
    written = 0
    try:
        try:
            await sign_in(page, f"{url}/caseload")
        finally:
            try:
                await ready.wait()  # a user whose sign-in failed does not hold the others up
            except asyncio.BrokenBarrierError:  # some could not sign in in time: the rest go on
                pass
        while time.monotonic() < clock["deadline"]:
            for title in ROUND:
                if time.monotonic() >= clock["deadline"]:
                    break
                try:
                    tally.load_s.append(await open_page(page, title))
                    if title == "Conference":
                        written += 1
                        text = f"Bench note {written} of user {number} ({uuid.uuid4().hex[:12]})."
                        await save_note(page, text)
                        tally.notes.append(text)
                    tally.errors.extend(f"user {number}, {title}: {f}" for f in await _faults(page))
                except Exception as err:  # a timeout or a lost page: counted, then a fresh start
                    tally.errors.append(f"user {number}, {title}: {type(err).__name__}: {str(err)[:200]}")
                    if time.monotonic() < clock["deadline"]:
                        await sign_in(page, f"{url}/caseload")
    finally:
        await context.close()


async def drive(url: str, users: int, seconds: float, warm: list[str] = (), mark=lambda moment: None) -> Tally:
    """`users` people working for `seconds` through `url`; `warm`: app servers' own addresses
    to open once first (untimed), so the figures are not a cold start's. `mark("start")` and
    `mark("end")` are called when the timed window opens and closes."""
    from playwright.async_api import async_playwright
    tally = Tally()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for address in warm:
                context = await browser.new_context(viewport=VIEWPORT)
                context.set_default_timeout(STEP_TIMEOUT_MS * 2)
                page = await context.new_page()
                await sign_in(page, f"{address}/caseload")
                for title in ROUND:
                    await open_page(page, title)
                await context.close()
            clock: dict[str, float] = {}
            ready = asyncio.Barrier(users + 1)
            tasks = [asyncio.ensure_future(person(browser, url, n, ready, clock, tally)) for n in range(1, users + 1)]
            # Everyone signs in first (untimed, bounded); the time runs from then on.
            clock["deadline"] = time.monotonic() + STEP_TIMEOUT_MS / 1000 * 2 + seconds
            try:
                await asyncio.wait_for(ready.wait(), timeout=STEP_TIMEOUT_MS / 1000 * 2)
            except asyncio.TimeoutError:
                tally.errors.append("not every user could sign in in time; the others started anyway")
                await ready.abort()
            clock["deadline"] = time.monotonic() + seconds
            mark("start")
            done, pending = await asyncio.wait(tasks, timeout=seconds + GRACE_S)
            mark("end")
            for task in pending:
                task.cancel()
                tally.errors.append("a user was still busy after the time was up and was stopped")
            for task in done:
                if task.exception() is not None:
                    tally.errors.append(f"a user stopped: {type(task.exception()).__name__}: "
                                        f"{str(task.exception())[:200]}")
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            await browser.close()
    return tally


def stored_notes(store: Path, postgres: str | None = None) -> set[str]:
    """Every note text in the store (all versions), read as the command line reads it."""
    from core.access import Scope
    from core.store import Store
    opened = Store(store, postgres=postgres)
    try:
        frame = opened.query("SELECT text FROM conference_entries WHERE kind = 'note'",
                             scope=Scope.system("bench serve", user="bench"))
    finally:
        opened.close()
    return set(frame["text"].to_list())


def _cpu_s(pid: int) -> float:
    """CPU seconds (user and system) a process has used so far (Linux); 0 when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _peak_rss_mb(pid: int) -> float | None:
    """The highest resident memory a process has had (Linux), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def run(replicas: int = 2, users: int = 8, seconds: float = 60.0, *, postgres: str | None = None) -> int:
    """`postgres`: the state database's address, or "local" for a throwaway PostgreSQL on
    loopback that this run starts and stops; None for the embedded store."""
    if postgres == "local":
        from .local_postgres import LocalPostgresError, start_local
        try:
            server = start_local()
        except LocalPostgresError as err:
            print(f"Error: no local PostgreSQL: {str(err).splitlines()[0]}", file=sys.stderr)
            return 2
        with server:
            print(f"A throwaway PostgreSQL on 127.0.0.1:{server.port} holds the state.", file=sys.stderr)
            return run(replicas, users, seconds, postgres=server.app_database())
    if not 1 <= users <= MAX_USERS:
        print(f"Error: --users is between 1 and {MAX_USERS}.", file=sys.stderr)
        return 2
    if not 0 < seconds <= MAX_SECONDS:
        print(f"Error: --seconds is above 0 and at most {MAX_SECONDS:.0f}.", file=sys.stderr)
        return 2
    if not Path(CHROMIUM).exists():
        print(f"Error: the simulated users need Chromium at {CHROMIUM} (Debian package 'chromium').", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="caseconf-bench-") as folder:
        folder = Path(folder)
        print(f"Building a demo store with a conference per group in {folder} ...", file=sys.stderr)
        store, _ = demo_store(folder, postgres)
        try:
            with Stack(store, folder / "stack", replicas, postgres=postgres) as stack:
                print(f"{replicas} app server(s) behind nginx at {stack.url}; {users} user(s) for {seconds:g} s ...",
                      file=sys.stderr)
                cpu: dict[str, float] = {}
                mark = lambda moment: cpu.__setitem__(moment, sum(_cpu_s(s.proc.pid) for s in stack.servers))
                tally = asyncio.run(drive(stack.url, users, seconds,
                                          warm=[f"http://{s.address}" for s in stack.servers], mark=mark))
                peaks = [_peak_rss_mb(server.proc.pid) for server in stack.servers]  # while they run
            # What a page may not show: an exception the servers logged counts as an error too.
            for server in stack.servers:
                text = server.log.read_text(encoding="utf-8", errors="replace")
                tally.errors.extend(f"app server {server.port} logged a traceback"
                                    for _ in range(text.count("Traceback (most recent call last)")))
        except StackError as err:
            print(f"Error: the stack did not start: {err}", file=sys.stderr)
            return 2
        found = stored_notes(store, postgres)
    lost = [text for text in tally.notes if text not in found]
    print("Peak memory of each app server: " + ", ".join(f"{mb:.0f} MB" if mb else "unknown" for mb in peaks) + ".",
          file=sys.stderr)
    for line in tally.errors[:20]:
        print(f"  error: {line}", file=sys.stderr)
    loads = sorted(tally.load_s)
    if loads and "end" in cpu:
        used = cpu["end"] - cpu["start"]
        print(f"The app servers used {used:.1f} CPU seconds in the timed window: {used / len(loads):.2f} s per page "
              "load (a note's save included).", file=sys.stderr)
    p50, p95 = _percentile(loads, 0.50), _percentile(loads, 0.95)
    print(f"{len(loads)} page loads, p50 {p50 or 0:.2f} s, p95 {p95 or 0:.2f} s, {len(tally.errors)} errors; "
          f"{len(tally.notes)} notes saved, {len(lost)} missing from the store.")
    print(json.dumps({"replicas": replicas, "users": users, "state": "postgresql" if postgres else "embedded",
                      "page_loads": len(loads),
                      "p50_s": round(p50, 3) if p50 is not None else None,
                      "p95_s": round(p95, 3) if p95 is not None else None,
                      "errors": len(tally.errors), "notes_written": len(tally.notes), "notes_lost": len(lost)}))
    return 0 if not tally.errors and not lost else 1
