"""`python -m core` as a cron job or a person at a terminal uses it: exit codes, JSON, sentences."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time


from core.store import Store
from tests.conftest import SYSTEM, ROOT, write_csv

SESSIONS = "client_id,therapist_id,session_number\nc1,t1,0\nc1,t1,1\n"


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_import_exits_0_when_every_row_loads(tmp_path):
    write_csv(tmp_path / "x", "sessions", SESSIONS)
    out = run("import", str(tmp_path / "x"), "--db", str(tmp_path / "s.duckdb"), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert {"batch", "loaded", "quarantined", "ignored", "problems"} <= set(report)
    assert report["loaded"] == {"sessions": 2}


def test_import_exits_1_with_quarantined_rows_and_reports_them(tmp_path):
    write_csv(tmp_path / "x", "sessions", SESSIONS)
    write_csv(tmp_path / "x", "ratings", "client_id,session_number,instrument,score\nc1,1,SRS,50\nc1,0,SRS,30\n")
    out = run("import", str(tmp_path / "x"), "--db", str(tmp_path / "s.duckdb"), "--json")
    assert out.returncode == 1, out.stderr
    (problem,) = json.loads(out.stdout)["problems"]
    assert set(problem) >= {"table", "line", "column", "value", "rule", "message"}
    assert (problem["table"], problem["line"], problem["column"], problem["value"]) == ("ratings", 2, "score", "50")


def test_import_exits_2_with_a_sentence_for_a_missing_path(tmp_path):
    out = run("import", str(tmp_path / "nowhere"), "--db", str(tmp_path / "s.duckdb"))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and out.stderr.startswith("Error: ")


def test_import_exits_2_when_the_sessions_table_is_missing(tmp_path):
    write_csv(tmp_path / "x", "ratings", "client_id,session_number,instrument,score\nc1,1,SRS,30\n")
    out = run("import", str(tmp_path / "x"), "--db", str(tmp_path / "s.duckdb"), "--json")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert json.loads(out.stdout)["error"]


def test_the_text_report_never_shows_identifying_text(tmp_path):
    write_csv(tmp_path / "x", "sessions", SESSIONS)
    write_csv(tmp_path / "x", "barriers", "client_id,session_number,category,severity,note\n"
              "c1,1,boundary,2,Client wants Mrs Jenkins from next door to join; email j.jenkins@example.org\n")
    out = run("import", str(tmp_path / "x"), "--db", str(tmp_path / "s.duckdb"))
    assert out.returncode == 1
    for text in ("Jenkins", "example.org"):
        assert text not in out.stdout and text not in out.stderr


def test_demo_loads_the_bundled_dataset_once(tmp_path):
    db = str(tmp_path / "s.duckdb")
    first = run("demo", "--db", db, "--if-empty")
    assert first.returncode == 0, first.stderr
    second = run("demo", "--db", db, "--if-empty")
    assert "already holds data" in second.stdout
    store = Store(db)
    assert store.scalar("SELECT count(DISTINCT client_id) FROM sessions", scope=SYSTEM) >= 50
    store.close()


def test_a_killed_import_leaves_the_store_as_it_was(tmp_path):
    from devtools.synth import write_synthetic_clinic
    db = tmp_path / "s.duckdb"
    write_csv(tmp_path / "first", "sessions", SESSIONS)
    assert run("import", str(tmp_path / "first"), "--db", str(db)).returncode == 0
    write_synthetic_clinic(tmp_path / "big", 60_000)
    proc = subprocess.Popen([sys.executable, "-m", "core", "import", str(tmp_path / "big"), "--db", str(db),
                             "--progress"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "Writing ratings" in line:
            break
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the import finished before it could be killed"
    store = Store(db)
    assert store.scalar("SELECT count(*) FROM sessions", scope=SYSTEM) == 2
    assert store.scalar("SELECT count(*) FROM ratings", scope=SYSTEM) == 0
    assert store.scalar("SELECT count(*) FROM batches", scope=SYSTEM) == 1
    store.close()


def test_import_json_bounds_its_problems_and_the_text_says_how_many_more(tmp_path):
    from core.report import REPORT_EXAMPLES
    many = REPORT_EXAMPLES + 7
    write_csv(tmp_path / "x", "sessions", "client_id,therapist_id,session_number\n"
              + "".join(f"c{i},t1,{'x' if i else 0}\n" for i in range(many + 1)))
    out = run("import", str(tmp_path / "x"), "--db", str(tmp_path / "s.duckdb"), "--json")
    report = json.loads(out.stdout)
    assert len(report["problems"]) == REPORT_EXAMPLES and report["problems_truncated"] == 7
    assert report["problem_counts"] == [{"table": "sessions", "column": "session_number", "rule": "type",
                                         "count": many}]
    text = run("import", str(tmp_path / "x"), "--db", str(tmp_path / "t.duckdb")).stdout
    assert "7 more problems not listed" in text and text.count("is not a whole number") == REPORT_EXAMPLES


def test_what_the_command_line_writes_is_not_readable_by_the_machines_other_users(tmp_path):
    """Seen wrong: run by hand from a shell with the usual umask 022, the command line made the
    store 0644 and its snapshot folder 0755 with 0644 snapshots: clinical data readable by
    every account on the server, outside the units' UMask=0027."""
    folder = tmp_path / "store"
    folder.mkdir(mode=0o755)
    db = folder / "clinic.duckdb"
    run = subprocess.run(["sh", "-c", 'umask 022 && exec "$0" -m core demo --db "$1"', sys.executable, str(db)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    made = [path for path in folder.rglob("*")]
    assert db in made and any(path.is_dir() for path in made) and len(made) >= 3, made
    readable = [f"{path.relative_to(folder)} {oct(path.stat().st_mode & 0o777)}" for path in made
                if path.stat().st_mode & 0o007]
    assert not readable, f"readable by the machine's other users: {readable}"
