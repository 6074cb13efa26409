"""Benchmarks: scripts that print figures and ratios (never timed unit tests).

`python -m core bench analytics --sessions N` builds a store of N synthetic sessions and
times the triage of every client in a fresh process (cold), then again (warm).

`python -m core bench pages --sessions N` runs every page through Streamlit's AppTest
against such a store, each in a fresh process: cold (empty caches), then warm.

`python -m core bench browser` times the pages in Chromium against `streamlit run`
(`devtools.browser_bench`).

`python -m core bench import --sessions N` writes a synthetic clinic of N sessions as
CSV files, then times, each in a fresh process on the same files: (a) DuckDB loading
them with `read_csv` into tables, no validation (the floor), and (b) the full import;
five runs of each, alternating, compared by their medians.

`python -m core bench faulty --sessions N` times the import of N sessions whose every row
is faulty (quarantined) against N valid ones, five runs of each, alternating, each in a
fresh process: the ratio of the medians and the peak memory.

`python -m core bench privacy --notes N` times the privacy guard's bulk scan
(`privacy.scan_many`, what the importer runs on a column of notes) over N distinct notes
made from the labelled corpus of the repository's tests (clean clinical notes, one in fifty
with an identifier), five times, and prints notes per second (median and range).
The last line printed is one JSON object.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core import HOME
from core.contract import IMPORT_ORDER

from .synth import BENCH_ADMIN, build_synthetic_store, with_a_conference, write_synthetic_clinic

ROOT = Path(__file__).resolve().parent.parent  # the checkout: devtools/ and core/ side by side
TABLES = IMPORT_ORDER
REPEATS = 5  # runs of each side of the import benchmark


def _peak_rss_mb() -> float:
    """This process's peak resident memory. On Linux ru_maxrss keeps the parent's peak
    across fork and exec, so a child started after the parent built a large store would
    report the parent's figure; VmHWM belongs to the child's own memory image."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kilobytes
    except OSError:
        pass
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_raw(folder: str, db: str) -> dict:
    import duckdb
    start = time.perf_counter()
    con = duckdb.connect(db)
    for table in TABLES:
        path = Path(folder) / f"{table}.csv"
        if path.exists():
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_csv(?, header = true)", [str(path)])
    con.close()
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb()}


def _child_import(folder: str, db: str) -> dict:
    from core.importer import import_dataset
    from core.store import Store
    start = time.perf_counter()
    store = Store(db)
    result = import_dataset(folder, store, imported_by="benchmark")
    store.close()
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb(),
            "loaded": sum(result.loaded.values()), "quarantined": sum(result.quarantined.values()),
            "phases": result.seconds}


def _in_child(kind: str, *paths: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", f"{__package__}.bench", kind, *map(str, paths)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_import(sessions: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="caseconf-bench-") as tmp:
        folder = Path(tmp) / "export"
        start = time.perf_counter()
        rows_by_table = write_synthetic_clinic(folder, sessions)
        print(f"generated {sessions:,} sessions, {sum(rows_by_table.values()):,} rows in "
              f"{time.perf_counter() - start:.1f} s: "
              + ", ".join(f"{t} {n:,}" for t, n in rows_by_table.items()))
        # On a shared machine one run can be 15 % off the next: each side runs REPEATS
        # times, alternating, each in a fresh process on a new file, and the medians are
        # compared. Every run is printed.
        # Each run starts with the last run's store written out (os.sync), so that neither
        # side pays for the disk writes of the other.
        raws, fulls = [], []
        for k in range(REPEATS):
            os.sync()
            raws.append(_in_child("raw", folder, Path(tmp) / f"raw{k}.duckdb"))
            os.sync()
            fulls.append(_in_child("import", folder, Path(tmp) / f"import{k}.duckdb"))
            print(f"run {k + 1}: (a) DuckDB read_csv into tables, no validation: {raws[-1]['seconds']:.2f} s, "
                  f"peak {raws[-1]['peak_rss_mb']:.0f} MB; (b) full import (read, validate, privacy scan, "
                  f"upsert): {fulls[-1]['seconds']:.2f} s, peak {fulls[-1]['peak_rss_mb']:.0f} MB, "
                  f"{fulls[-1]['loaded']:,} rows loaded, {fulls[-1]['quarantined']:,} quarantined")
        raw_s = statistics.median(r["seconds"] for r in raws)
        full_s = statistics.median(r["seconds"] for r in fulls)
        peak = max(r["peak_rss_mb"] for r in fulls)
        ratio = full_s / raw_s
        print(f"median of {REPEATS}: raw {raw_s:.2f} s, import {full_s:.2f} s; ratio import / raw: {ratio:.2f} "
              f"(goal <= 1.5); highest import peak {peak:.0f} MB")
        return {"sessions": sessions, "rows": sum(rows_by_table.values()), "raw_s": round(raw_s, 3),
                "import_s": round(full_s, 3), "ratio": round(ratio, 2), "peak_rss_mb": round(peak, 1),
                "runs": REPEATS, "loaded": min(r["loaded"] for r in fulls),
                # The import's phases (median seconds); "privacy" runs inside "check".
                "phases_s": {k: round(statistics.median(r["phases"][k] for r in fulls), 3) for k in fulls[0]["phases"]}}


def write_sessions(folder: Path, rows: int, valid: bool) -> None:
    """An export of `rows` sessions (one sessions.csv, 24 MB at 10^6): valid, or each with
    a session number that is no number, so that every row is quarantined with one problem."""
    folder.mkdir(parents=True)
    with open(folder / "sessions.csv", "w") as out:
        out.write("client_id,therapist_id,session_number,days_since_intake\n")
        for i in range(rows):
            out.write(f"c{i // 10},t{i % 50},{i % 10 if valid else 'x'},{7 * (i % 10)}\n")


def bench_faulty(sessions: int) -> dict:
    """The import of an export whose every row is faulty against one of as many valid rows:
    each REPEATS times, alternating, each in a fresh process; medians compared."""
    with tempfile.TemporaryDirectory(prefix="caseconf-bench-") as tmp:
        folders = {kind: Path(tmp) / kind for kind in ("valid", "faulty")}
        for kind, folder in folders.items():
            write_sessions(folder, sessions, kind == "valid")
        runs: dict[str, list[dict]] = {"valid": [], "faulty": []}
        for k in range(REPEATS):
            for kind, folder in folders.items():
                os.sync()
                runs[kind].append(_in_child("import", folder, Path(tmp) / f"{kind}{k}.duckdb"))
            print(f"run {k + 1}: valid {runs['valid'][-1]['seconds']:.2f} s, peak "
                  f"{runs['valid'][-1]['peak_rss_mb']:.0f} MB; faulty {runs['faulty'][-1]['seconds']:.2f} s, peak "
                  f"{runs['faulty'][-1]['peak_rss_mb']:.0f} MB, {runs['faulty'][-1]['quarantined']:,} quarantined",
                  flush=True)
        valid_s = statistics.median(r["seconds"] for r in runs["valid"])
        faulty_s = statistics.median(r["seconds"] for r in runs["faulty"])
        peak = max(r["peak_rss_mb"] for r in runs["faulty"])
        print(f"median of {REPEATS}: valid {valid_s:.2f} s, faulty {faulty_s:.2f} s; ratio {faulty_s / valid_s:.2f} "
              f"(goal <= 2.0); highest faulty peak {peak:.0f} MB (goal <= 1,024)")
        return {"rows": sessions, "runs": REPEATS, "valid_s": round(valid_s, 3), "faulty_s": round(faulty_s, 3),
                "ratio": round(faulty_s / valid_s, 2), "faulty_peak_rss_mb": round(peak, 1),
                "valid_peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs["valid"]), 1),
                "quarantined": min(r["quarantined"] for r in runs["faulty"]),
                "loaded": min(r["loaded"] for r in runs["valid"])}


def _child_analytics(db: str) -> dict:
    """Triage every client of the store, cold (a fresh process), then once more warm."""
    from core.access import Scope
    from core.analytics import triage as t
    from core.catalog import default_catalog
    from core.store import Store
    catalog = default_catalog()
    store = Store(db)
    every = Scope.system("benchmark")
    # DuckDB hands results to polars through pyarrow, imported on the first read; a running
    # server has it loaded (Streamlit imports it). Timed apart, as the page benchmark does.
    start = time.perf_counter()
    import pyarrow  # noqa: F401
    imports = time.perf_counter() - start
    start = time.perf_counter()
    case_list, flags = t.triage(store, catalog, every)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    t.triage(store, catalog, every)
    warm = time.perf_counter() - start
    start = time.perf_counter()
    t.triage(store, catalog, every, precomputed=False)
    computed = time.perf_counter() - start
    store.close()
    return {"seconds": cold, "warm_s": warm, "imports_s": imports, "computed_s": computed,
            "clients": case_list.height, "flags": flags.height,
            "flagged": int((case_list["priority"] > 0).sum()), "peak_rss_mb": _peak_rss_mb()}


def bench_analytics(sessions: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="caseconf-bench-") as tmp:
        db = Path(tmp) / "clinic.duckdb"
        start = time.perf_counter()
        rows = build_synthetic_store(db, sessions)
        print(f"built a store of {sessions:,} sessions, {sum(rows.values()):,} rows in "
              f"{time.perf_counter() - start:.1f} s")
        out = _in_child("analytics", db)
        print(f"triage of {out['clients']:,} clients: {out['seconds']:.2f} s in a fresh process (after "
              f"{out['imports_s']:.2f} s of imports), {out['warm_s']:.2f} s again; {out['flags']:,} flags on "
              f"{out['flagged']:,} clients; computed from the sources instead of the snapshot's triage: "
              f"{out['computed_s']:.2f} s; peak {out['peak_rss_mb']:.0f} MB (goal <= 1 s at 1,000,000 sessions)")
        return {"sessions": sessions, "clients": out["clients"], "triage_s": round(out["seconds"], 3),
                "warm_s": round(out["warm_s"], 3), "imports_s": round(out["imports_s"], 3),
                "computed_s": round(out["computed_s"], 3), "peak_rss_mb": round(out["peak_rss_mb"], 1)}


def _page_names() -> list[str]:
    """The app's pages, asked of a child process: the benchmark's own process (the command
    line's) never loads Streamlit or its adapter; each page's child does."""
    return _in_child("page_names")["names"]


def _child_page_names() -> dict:
    import logging
    logging.getLogger("streamlit").setLevel(logging.ERROR)  # no "no runtime" notes: no page runs here
    from core.web import PAGES
    return {"names": [name for name, _, _ in PAGES]}




def signed_in(at, subject: str, issuer: str = "https://idp.example") -> None:
    """An AppTest signed in through the OIDC sign-in as `subject` (a test provider's claims)."""
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "test",
                          "client_id": "caseconf", "client_secret": "test",
                          "server_metadata_url": f"{issuer}/.well-known/openid-configuration"}
    at.user = {"is_logged_in": True, "sub": subject, "iss": issuer, "iat": 1, "nonce": "n", "exp": 2}


def _child_page(db: str, name: str) -> dict:
    """One page through AppTest in a fresh process: the first run with empty caches
    (cold), then the same page again (warm). Imports are done before the clock starts:
    a running server has them already."""
    import os
    os.environ["CASECONF_DB"] = db
    os.environ["CASECONF_DEMO"] = "0"
    from streamlit.testing.v1 import AppTest
    from core import charts, web  # noqa: F401  (imports, as in a running server)
    # Streamlit's one-time start-up, with the modules it loads on first use (pandas, for
    # its first table), which a running server has loaded since its first page.
    AppTest.from_string("import streamlit as st\nst.text('warm-up')\nst.dataframe({'a': [1]})").run()
    app = str(HOME / "app.py")
    at = AppTest.from_file(app, default_timeout=600)
    signed_in(at, BENCH_ADMIN)
    if name != "caseload":
        at.switch_page(f"pages/{name}.py")
    times = []
    for _ in range(2):
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
        if at.exception:
            raise RuntimeError(f"The {name} page failed: {at.exception[0].value}")
    return {"cold_s": times[0], "warm_s": times[1], "peak_rss_mb": _peak_rss_mb()}


def bench_pages(sessions: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="caseconf-bench-") as tmp:
        db = Path(tmp) / "clinic.duckdb"
        build_synthetic_store(db, sessions)
        with_a_conference(db)
        print(f"built a store of {sessions:,} sessions with a conference (goal at 1,000,000: cold <= 1.5 s, "
              "warm <= 0.2 s per page)")
        results = {}
        for name in _page_names():
            out = _in_child("page", db, name)
            results[name] = {"cold_s": round(out["cold_s"], 3), "warm_s": round(out["warm_s"], 3)}
            print(f"{name:<10} cold {out['cold_s']:6.2f} s   warm {out['warm_s']:6.2f} s   "
                  f"peak {out['peak_rss_mb']:.0f} MB", flush=True)
        return {"sessions": sessions, "pages": results}


def bench_browser(**options) -> dict:
    from .browser_bench import bench_browser as run_browser  # Playwright only when asked for
    return run_browser(**options)


PRIVACY_CORPUS = HOME / "tests" / "data" / "privacy_corpus_generated.csv"


def _privacy_notes(count: int, seed: int) -> list[str]:
    """`count` distinct notes of one to three corpus notes each; one in fifty holds an
    identifier, as in an export where most notes are clean."""
    import csv
    import random
    with PRIVACY_CORPUS.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    clean = [r["note"] for r in rows if not r["kinds"]]
    identifying = [r["note"] for r in rows if r["kinds"]]
    rng = random.Random(seed)
    notes: dict[str, None] = {}
    while len(notes) < count:
        parts = rng.sample(clean, rng.choice((2, 3, 3)))
        if len(notes) % 50 == 0:
            parts[0] = rng.choice(identifying)
        notes[" ".join(parts)] = None
    return list(notes)


def bench_privacy(notes: int) -> dict:
    from core import privacy
    privacy.scan_many(_privacy_notes(1000, seed=0))  # load the name lists and gazetteer, as a server has
    rates, cpu_rates, flagged = [], [], 0
    for k in range(REPEATS):
        batch = _privacy_notes(notes, seed=k + 1)  # new notes each run: no repeated note is free
        start, cpu = time.perf_counter(), time.process_time()
        found = privacy.scan_many(batch)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        rates.append(notes / seconds)
        # The process's own CPU time too: on a shared machine the wall clock also counts
        # the time others' processes had the cores (polars may use more than one core).
        cpu_rates.append(notes / cpu_seconds)
        flagged = sum(map(bool, found))
        print(f"run {k + 1}: {notes:,} notes in {seconds:.2f} s = {rates[-1]:,.0f} notes/s "
              f"({cpu_seconds:.2f} s of CPU = {cpu_rates[-1]:,.0f} notes/s); {flagged:,} flagged", flush=True)
    median = statistics.median(rates)
    print(f"median {median:,.0f} notes/s (range {min(rates):,.0f}-{max(rates):,.0f}; goal >= 50,000); "
          f"by CPU time {statistics.median(cpu_rates):,.0f} (range {min(cpu_rates):,.0f}-{max(cpu_rates):,.0f})")
    return {"notes": notes, "runs": REPEATS, "notes_per_s": round(median), "min_notes_per_s": round(min(rates)),
            "max_notes_per_s": round(max(rates)), "cpu_notes_per_s": round(statistics.median(cpu_rates)),
            "min_cpu_notes_per_s": round(min(cpu_rates)), "max_cpu_notes_per_s": round(max(cpu_rates)),
            "flagged": flagged}


BENCHES = {"import": bench_import, "faulty": bench_faulty, "analytics": bench_analytics, "pages": bench_pages,
           "browser": bench_browser}


def run(what: str, sessions: int | None = None, notes: int = 200_000, **options) -> int:
    if what in ("pages", "browser") and not (HOME / "app.py").exists():
        print("The page benchmark runs the standalone app (app.py): run it in a checkout of the repository, "
              "not from the installed package.", file=sys.stderr)
        return 2
    if what == "privacy":
        if not PRIVACY_CORPUS.exists():
            print("The privacy benchmark reads the labelled corpus of the tests: run it in a checkout of the "
                  "repository, not from the installed package.", file=sys.stderr)
            return 2
        print(json.dumps(bench_privacy(notes)))
        return 0
    print(json.dumps(BENCHES[what](**options) if what == "browser" else BENCHES[what](sessions)))
    return 0


CHILDREN = {"raw": _child_raw, "import": _child_import, "analytics": _child_analytics, "page": _child_page,
            "page_names": _child_page_names}

if __name__ == "__main__":
    kind, *paths = sys.argv[1:]
    print(json.dumps(CHILDREN[kind](*paths)))
