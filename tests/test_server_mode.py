"""Server mode: the state in PostgreSQL, the data in a snapshot folder, several app servers.

Two `Store`s on one database and one folder stand for two app servers: each is what one
`streamlit run` process opens. Everything people write goes through the same functions as
in the embedded store (the conference, its notes, calibration, users, sign-ins, the audit
log, import batches), against a real PostgreSQL on loopback.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core import audit, identity
from core.access import Scope
from core.catalog import default_catalog
from core.conference import calibration, followup, meetings, notes
from core.conference.meetings import ConferenceError
from core.importer import import_dataset, load_demo
from core.store import Store
from tests.pgserver import pg_server  # noqa: F401  (the session's server)
from tests.test_pgstate import new_db

ROOT = Path(__file__).resolve().parents[1]
EXPORT = ROOT / "data" / "examples" / "messy_export.zip"
ADMIN = Scope.admin("admin1")
CAT = default_catalog()


def _server(db, folder: Path) -> Store:
    """One app server's store: the shared database and the shared snapshot folder."""
    return Store(folder / "unused-state.duckdb", folder / "snapshots", postgres=db.web)


@pytest.fixture
def clinic(pg_server, tmp_path):
    """Two app servers over one state database with the demo data and one user per role."""
    db = new_db(pg_server)
    one, two = _server(db, tmp_path), _server(db, tmp_path)
    load_demo(one, only_if_empty=True)
    identity.add_demo_users(one)
    for store in (one, two):
        store.refresh()
    yield db, one, two
    one.close()
    two.close()


def _scope(store: Store, subject: str) -> Scope:
    return identity.scope_for(store, identity.find_user(store, subject, "demo"))


def test_a_server_keeps_no_state_file_and_its_data_in_the_shared_snapshot_folder(clinic, tmp_path):
    db, one, two = clinic
    assert one.server_mode and "PostgreSQL" in one.where
    assert not (tmp_path / "unused-state.duckdb").exists()
    assert one.generation() == two.generation()  # one pointer, in the database
    files = sorted(p.name for p in (tmp_path / "snapshots").glob("snapshot-*.duckdb"))
    assert len(files) == 2 and one.generation() in files  # the empty first one stays for the grace period
    assert db.as_owner("SELECT count(*) FROM batches")[0][0] == 1
    assert db.as_owner("SELECT count(*) FROM users")[0][0] == 3
    assert one.scalar("SELECT count(*) FROM sessions", scope=ADMIN) == 1050


def test_a_conference_made_on_one_server_is_edited_and_followed_on_the_other(clinic):
    _, one, two = clinic
    sup = _scope(one, "demo-supervisor")
    made = meetings.new_conference(one, CAT, "group-north", scope=sup, held_on=dt.date(2026, 11, 1))
    cid = made["id"]
    order = [a["client_id"] for a in made["agenda"]]
    assert len(order) == 5 and made["agenda"][0]["case_label"] == "Case A"
    # The other server sees it, reorders it, takes a case off and puts another on.
    assert meetings.agenda(two, cid, scope=sup)["client_id"].to_list() == order
    meetings.reorder(two, cid, order[::-1], scope=sup)
    after = meetings.agenda(one, cid, scope=sup)
    assert after["client_id"].to_list() == order[::-1]
    assert after["case_label"].to_list() == ["Case A", "Case B", "Case C", "Case D", "Case E"]
    meetings.remove_item(one, cid, 1, scope=sup, why="discussed last week")
    others = [c for c in calibration.group_cases(one, "group-north", sup) if c not in order]
    meetings.add_item(two, CAT, cid, others[0], "the group asked for it", scope=sup)
    kept = meetings.agenda(one, cid, include_removed=True, scope=sup)
    assert kept.height == 6 and kept["deleted_why"].drop_nulls().to_list() == ["discussed last week"]
    assert meetings.conferences(two, sup)["cases"].to_list() == [5]
    # A second conference on the same date is refused unless confirmed; the next one's
    # follow-up compares with this one.
    with pytest.raises(meetings.SameDay):
        meetings.new_conference(two, CAT, "group-north", scope=sup, held_on=dt.date(2026, 11, 1))
    later = meetings.new_conference(two, CAT, "group-north", scope=sup, held_on=dt.date(2026, 11, 15))
    assert followup.previous_conference(one, later["id"], sup)["id"] == cid
    assert followup.changes_since(one, CAT, later["id"], sup).height > 0


def test_notes_saved_at_the_same_moment_through_both_servers_are_all_kept(clinic):
    _, one, two = clinic
    sup = _scope(one, "demo-supervisor")
    cid = meetings.new_conference(one, CAT, "group-north", scope=sup)["id"]
    client = meetings.agenda(one, cid, scope=sup)["client_id"][0]
    saved, failed, start = [], [], threading.Barrier(8)

    def write(store: Store, n: int) -> None:
        start.wait(timeout=30)
        try:
            saved.append(notes.save_entry(store, cid, client, kind="note", text=f"observation {n}", scope=sup))
        except Exception as err:  # noqa: BLE001 - every failure is reported below
            failed.append(repr(err))

    threads = [threading.Thread(target=write, args=((one, two)[n % 2], n)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failed == [] and len(set(saved)) == 8
    texts = sorted(notes.entries(two, cid, client, scope=sup)["text"].to_list())
    assert texts == sorted(f"observation {n}" for n in range(8))


def test_two_edits_of_the_same_note_at_the_same_moment_one_wins_the_other_is_refused(clinic):
    _, one, two = clinic
    sup = _scope(one, "demo-supervisor")
    cid = meetings.new_conference(one, CAT, "group-north", scope=sup)["id"]
    client = meetings.agenda(one, cid, scope=sup)["client_id"][0]
    entry = notes.save_entry(one, cid, client, kind="note", text="first draft", scope=sup)
    results, start = {}, threading.Barrier(6)

    def edit(store: Store, n: int) -> None:
        start.wait(timeout=30)
        try:
            notes.save_entry(store, cid, client, kind="note", text=f"edit {n}", scope=sup, entry_id=entry,
                             base_version=1)
            results[n] = "saved"
        except notes.EditConflict as err:  # also the race the database decided: both texts for the page
            results[n] = (err.yours, err.theirs["text"], str(err))
        except ConferenceError as err:
            results[n] = str(err)

    threads = [threading.Thread(target=edit, args=((one, two)[n % 2], n)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    winners = [n for n, r in results.items() if r == "saved"]
    assert len(results) == 6 and len(winners) == 1, results
    losers = {n: r for n, r in results.items() if n != winners[0]}
    assert all(isinstance(r, tuple) for r in losers.values()), f"a refused edit without both texts: {losers}"
    assert all(r[0] == f"edit {n}" and "was not saved" in r[2] for n, r in losers.items()), losers
    versions = notes.history(two, cid, entry, scope=sup)
    assert versions["version"].to_list() == [1, 2] and versions["text"][1] == f"edit {winners[0]}"


def test_an_import_on_one_server_shows_on_the_other_at_its_next_rerun(clinic):
    _, one, two = clinic
    before = two.generation()
    clients = two.scalar("SELECT count(DISTINCT client_id) FROM sessions", scope=ADMIN)
    result = import_dataset(EXPORT, one, imported_by="admin1")
    assert result.batch_id == 2
    assert two.generation() != before  # the next rerun reads the new pointer
    assert two.scalar("SELECT count(DISTINCT client_id) FROM sessions", scope=ADMIN) > clients
    quarantined = two.query("SELECT count(*) AS n FROM quarantine WHERE batch_id = 2", scope=ADMIN)["n"][0]
    assert quarantined == sum(result.quarantined.values()) > 0


def test_the_database_itself_keeps_a_trainee_to_their_own_cases(clinic):
    """The second line: even a query that forgot its scope's rules (sent straight to the
    database as the trainee) reads only what the trainee may see."""
    _, one, two = clinic
    sup = _scope(one, "demo-supervisor")
    trainee = _scope(one, "demo-trainee")
    cid = meetings.new_conference(one, CAT, "group-north", scope=sup)["id"]
    for client in meetings.agenda(one, cid, scope=sup)["client_id"]:
        notes.save_entry(one, cid, client, kind="note", text="a note", scope=sup)
    own = one.visible_clients(trainee)
    with one._pg.transaction(trainee, own) as cur:  # no scoped_sql: the policies alone
        seen = {r[0] for r in cur.execute("SELECT client_id FROM conference_entries").fetchall()}
        users = {r[0] for r in cur.execute("SELECT display_id FROM users").fetchall()}
        audit_rows = cur.execute("SELECT count(*) FROM audit_log").fetchall()[0][0]
    assert seen and seen <= own
    assert users == {"demo-trainee"} and audit_rows == 0
    assert set(notes.entries(two, cid, scope=trainee)["client_id"]) == seen


def test_calibration_stays_blind_across_servers_until_two_raters_finished(clinic):
    _, one, two = clinic
    sup = _scope(one, "demo-supervisor")
    trainee = _scope(one, "demo-trainee")
    identity.add_user(one, "t3", "trainee", issuer="demo", therapist_id="th03", groups=["group-north"])
    other = _scope(one, "t3")
    case = calibration.group_cases(one, "group-north", sup)[0]
    sessions = calibration.attended_sessions(one, case, sup)[:2]
    ex = calibration.new_exercise(one, CAT, "group-north", case, "rating", "SRS:total", sessions, scope=sup)
    for s in sessions:
        calibration.save_answer(one, CAT, ex, s, score=30, scope=trainee)
    assert set(calibration.answers(two, ex, other)["rater"]) == set()  # blind
    calibration.save_answer(two, CAT, ex, sessions[0], score=32, scope=other)
    calibration.save_answer(two, CAT, ex, sessions[0], score=33, scope=other)  # a new answer replaces theirs
    calibration.save_answer(one, CAT, ex, sessions[1], score=34, scope=other)
    assert set(calibration.answers(two, ex, trainee)["rater"]) == {"demo-trainee", "t3"}
    listed = calibration.exercises(one, sup, "group-north").row(0, named=True)
    assert (listed["raters"], listed["finished"], sorted(listed["sessions"])) == (2, 2, sorted(sessions))
    assert calibration.answers(one, ex, sup).filter(calibration.pl.col("rater") == "t3")["score"].to_list() == [33, 34]


def test_sign_ins_users_and_the_audit_log_are_shared_and_the_chain_verifies(clinic):
    _, one, two = clinic
    user = identity.find_user(two, "demo-trainee", "demo")
    assert identity.session_state(one, "k1", user, 3600) == "new"
    assert identity.session_state(two, "k1", user, 3600) == "active"
    identity.end_session(two, "k1")
    assert identity.session_state(one, "k1", user, 3600) == "ended"
    assert identity.session_state(one, "k2", user, 0) == "new"
    assert identity.session_state(two, "k2", user, -1) == "expired"
    sup = _scope(one, "demo-supervisor")
    cid = meetings.new_conference(one, CAT, "group-north", scope=sup)["id"]
    client = meetings.agenda(two, cid, scope=sup)["client_id"][0]
    entry = notes.save_entry(two, cid, client, kind="note", text="to be purged", scope=sup)
    notes.delete_entry(one, entry, scope=sup, why="wrong case")
    assert notes.purge_entry(two, entry, scope=ADMIN, why="a name slipped in") == 2
    assert set(notes.history(one, cid, entry, scope=sup)["text"]) == {notes.PURGED}
    threads = [threading.Thread(target=audit.record, args=((one, two)[n % 2], sup, "view_case", f"c{n:03d}"))
               for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    ok, summary = audit.verify(two, ADMIN)
    assert ok, summary
    log = audit.entries(one, ADMIN)
    assert log.height >= 14 and log["seq"].to_list() == list(range(1, log.height + 1))
    assert {"conference_new", "note_write", "note_delete", "purge", "view_case"} <= set(log["action"])
    assert len(identity.remove_user(one, "demo-trainee")) == 1
    assert identity.session_state(two, "k3", user, 3600) == "new"  # the cookie names a user no more known...
    assert identity.find_user(two, "demo-trainee", "demo") is None  # ...and the sign-in finds nobody


def test_the_command_line_works_on_the_shared_state(clinic, tmp_path):
    db, one, _ = clinic
    env = {**os.environ, "CASECONF_POSTGRES": db.web, "CASECONF_SNAPSHOTS": str(tmp_path / "snapshots"),
           "CASECONF_DB": str(tmp_path / "unused-state.duckdb")}
    run = subprocess.run([sys.executable, "-m", "core", "conference", "new", "--group", "group-north", "--user",
                          "sup1", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert meetings.conferences(one, ADMIN)["supervision_group"].to_list() == ["group-north"]


# ----------------------------------------------------------------------------- the pages


@pytest.fixture
def served(clinic, tmp_path, monkeypatch):
    """The app's pages in server mode: the server's settings name the database and the folder."""
    from tests.conftest import add_test_users
    db, one, _ = clinic
    add_test_users(one)
    identity.add_user(one, "sup1", "supervisor", groups=["group-north"])
    monkeypatch.setenv("CASECONF_POSTGRES", db.web)
    monkeypatch.setenv("CASECONF_SNAPSHOTS", str(tmp_path / "snapshots"))
    monkeypatch.setenv("CASECONF_DB", str(tmp_path / "unused-state.duckdb"))
    monkeypatch.setenv("CASECONF_DEMO", "0")
    yield db, one
    from core.store import close_all
    close_all()


@pytest.mark.parametrize("user", ["admin1", "sup1", "th02"])
def test_every_page_renders_in_server_mode_for_each_role(served, user):
    from streamlit.testing.v1 import AppTest

    from devtools.bench import signed_in
    from tests.test_pages import PAGES, no_errors, open_page
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    signed_in(at, user)
    at.run()
    for name in PAGES:
        at = open_page(at, name)
        assert not at.exception, (name, [e.value for e in at.exception])
        refused = [e.value for e in at.error if "not open to your role" in e.value]
        assert not refused or user != "admin1", (name, refused)
        if not refused:
            no_errors(at)


def test_a_note_saved_on_the_conference_page_is_in_the_state_database(served):
    from streamlit.testing.v1 import AppTest

    from devtools.bench import signed_in
    from tests.test_pages import no_errors, open_page
    db, one = served
    sup = Scope.supervisor("sup1", ["group-north"], meetings.group_therapists(one, "group-north"))
    cid = meetings.new_conference(one, CAT, "group-north", cases=3, scope=sup)["id"]
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    signed_in(at, "sup1")
    at = open_page(at.run(), "conference", conference=str(cid))
    at = at.segmented_control(key="conf_section").set_value("Notes and decisions").run()
    no_errors(at)
    at.text_area(key="conf_note_text").input("The group noticed the rupture was never named.")
    at = next(b for b in at.button if b.label == "Save the note").click().run()
    no_errors(at)
    rows = db.as_owner("SELECT saved_by, text FROM conference_entries")
    assert rows == [("sup1", "The group noticed the rupture was never named.")]


def test_an_unreachable_state_database_is_one_sentence_at_the_command_line(tmp_path):
    env = {**os.environ, "CASECONF_POSTGRES": "postgresql://nobody@127.0.0.1:1/caseconf",
           "CASECONF_DB": str(tmp_path / "unused.duckdb")}
    run = subprocess.run([sys.executable, "-m", "core", "users", "list"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "cannot be reached" in run.stderr and "CASECONF_POSTGRES" in run.stderr
