"""The PostgreSQL state database: its migrations, its row-level security (the second line
behind core/access.py), and concurrent saves. Against a real PostgreSQL on loopback."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psycopg
import pytest

from core.access import AccessDenied, Scope
from core.cli import main
from core.pg import (APP_ROLE, SCHEMA_VERSION, STATE_TABLES, PgConflict, PgDenied, PgScope, PgState, PgStateError,
                     append_audit, default_dsn, migrate, next_id, verify_audit)
from tests.pgserver import OWNER, WEB, PgServer, pg_server  # noqa: F401  (the session's server)

ADMIN = Scope.admin("admin1")
# Scopes as the app resolves them, with the clients the analytic snapshot gives them: the
# supervisor of group-north (therapists th01-th03), its trainees th02 and th03, and the
# supervisor of group-south (th05).
SUP = Scope.supervisor("sup1", ["group-north"], ["th01", "th02", "th03"])
SUP_CLIENTS = {"c001", "c002", "c003"}
SUP_SOUTH = Scope.supervisor("sup2", ["group-south"], ["th05"])
TRAINEE = Scope.trainee("th02", "th02", ["group-north"])
TRAINEE3 = Scope.trainee("th03", "th03", ["group-north"])
ADMIN_TABLES = ("batches", "quarantine", "audit_log", "auth_sessions", "purges")

SEED = """
INSERT INTO users VALUES ('s-admin1', '', 'admin1', 'admin', NULL, now(), 'test'),
    ('s-sup1', '', 'sup1', 'supervisor', NULL, now(), 'test'),
    ('s-sup2', '', 'sup2', 'supervisor', NULL, now(), 'test'),
    ('s-th02', '', 'th02', 'trainee', 'th02', now(), 'test'), ('s-th03', '', 'th03', 'trainee', 'th03', now(), 'test');
INSERT INTO user_groups VALUES ('s-sup1', '', 'group-north', 'leads'), ('s-sup2', '', 'group-south', 'leads'),
    ('s-th02', '', 'group-north', 'member'), ('s-th03', '', 'group-north', 'member');
INSERT INTO conferences VALUES (nextval('conference_ids'), 'group-north', '2026-12-01', 'sup1', now(), '{sup1}', 1),
    (nextval('conference_ids'), 'group-south', '2026-12-02', 'sup2', now(), '{sup2}', 1);
INSERT INTO agenda_items (conference_id, position, case_label, client_id, reason, minutes)
    VALUES (1, 1, 'Case A', 'c001', 'not on track', 15), (1, 2, 'Case B', 'c002', 'rupture', 15),
    (2, 1, 'Case A', 'c010', 'sudden gain', 15);
INSERT INTO conference_snapshots VALUES (1, 'c001', 8, 8, 2.5, '{off_track}'), (1, 'c002', 6, 6, 1.5, '{rupture}'),
    (2, 'c010', 9, 9, 1.0, '{}');
INSERT INTO conference_entries VALUES
    (nextval('entry_ids'), 1, 1, 'c001', 'note', 'th02''s case: alliance dips', NULL, NULL, NULL, 'sup1', now(),
     false, NULL),
    (nextval('entry_ids'), 1, 1, 'c002', 'note', 'th01''s case: repair', NULL, NULL, NULL, 'sup1', now(), false, NULL),
    (nextval('entry_ids'), 1, 2, 'c010', 'note', 'south case', NULL, NULL, NULL, 'sup2', now(), false, NULL);
INSERT INTO calibration_exercises VALUES
    (nextval('exercise_ids'), 'group-north', 'c002', 'rating', 'SRS:total', '{1,2}', 'sup1', now()),
    (nextval('exercise_ids'), 'group-south', 'c010', 'rating', 'SRS:total', '{1}', 'sup2', now());
INSERT INTO calibration_answers VALUES (1, 'th02', 1, 30, NULL, now()), (1, 'th03', 1, 34, NULL, now()),
    (1, 'th03', 2, 36, NULL, now()), (2, 'th05', 1, 20, NULL, now());
INSERT INTO batches VALUES (nextval('batch_ids'), now(), 'admin1', 'export.zip', 'abc', false, '{}', '{}', '{}',
    '{}', '[]');
INSERT INTO quarantine VALUES (1, 'sessions', 'sessions.csv', 3, '{"client_id": "c9"}', '[]');
INSERT INTO auth_sessions VALUES ('key1', 's-th02', '', now(), NULL, NULL);
INSERT INTO audit_log VALUES (1, now(), 'admin1', 'admin', 'admin', 'sign_in', '', 'k', 'ok', repeat('0', 64), 'h1');
INSERT INTO purges VALUES (2, 'admin1', now(), 'a name in the text');
INSERT INTO store_info VALUES ('demo', 'false');
"""


@dataclass
class Db:
    server: PgServer
    name: str

    @property
    def owner(self) -> str:
        return self.server.dsn(OWNER, self.name)

    @property
    def web(self) -> str:
        return self.server.dsn(WEB, self.name)

    def as_owner(self, sql: str, params=None):
        with psycopg.connect(self.owner, autocommit=True) as conn:
            conn.execute("SET search_path TO caseconf")
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else None


def new_db(server: PgServer, *, migrated: bool = True, seeded: bool = False) -> Db:
    db = Db(server, server.new_database())
    if migrated:
        migrate(db.owner)
        server.superuser(f"GRANT {APP_ROLE} TO {WEB}")  # the role exists once a database is migrated
    if seeded:
        db.as_owner(SEED)
    return db


@pytest.fixture(scope="module")
def seeded(pg_server):
    """A migrated database with two groups' conferences, read by the read-only tests."""
    db = new_db(pg_server, seeded=True)
    state = PgState(db.web, max_size=2)
    yield state
    state.close()


@pytest.fixture
def fresh(pg_server):
    """The same rows in a database of the test's own, for tests that write."""
    db = new_db(pg_server, seeded=True)
    state = PgState(db.web, max_size=3)
    yield db, state
    state.close()


def count(state: PgState, table: str, scope, clients=None) -> int:
    return state.scalar(f"SELECT count(*) FROM {table}", scope=scope, clients=clients)


def column(state: PgState, sql: str, scope, clients=None) -> list:
    return [next(iter(row.values())) for row in state.rows(sql, scope=scope, clients=clients)]


# ----------------------------------------------------------------------------- migrations

def test_migrating_an_empty_database_makes_every_state_table_with_row_level_security(pg_server):
    db = new_db(pg_server, migrated=False)
    assert migrate(db.owner) == list(range(1, SCHEMA_VERSION + 1))
    secured = dict(db.as_owner("SELECT relname, relrowsecurity FROM pg_class WHERE relnamespace = "
                               "'caseconf'::regnamespace AND relkind = 'r'"))
    assert set(STATE_TABLES) | {"schema_migrations"} == set(secured)
    assert all(secured[table] for table in STATE_TABLES)
    assert db.as_owner("SELECT version FROM schema_info") == [(SCHEMA_VERSION,)]
    assert {name for (name,) in db.as_owner("SELECT sequencename FROM pg_sequences")} == {
        "batch_ids", "conference_ids", "entry_ids", "exercise_ids"}


def test_migrating_again_changes_nothing(pg_server):
    db = new_db(pg_server)
    before = db.as_owner("SELECT version, applied_at FROM schema_migrations ORDER BY version")
    assert migrate(db.owner) == []
    assert db.as_owner("SELECT version, applied_at FROM schema_migrations ORDER BY version") == before


def test_a_database_from_a_newer_version_is_refused_with_a_sentence(pg_server):
    db = new_db(pg_server)
    db.as_owner("INSERT INTO schema_migrations VALUES (%s, 'from the future', now(), 'x')", [SCHEMA_VERSION + 1])
    with pytest.raises(PgStateError, match="newer version of this software.*update the software"):
        migrate(db.owner)
    with pytest.raises(PgStateError, match="newer version"):
        PgState(db.web)


def test_migrating_as_the_apps_login_is_refused_with_a_sentence(pg_server):
    db = new_db(pg_server, migrated=False)
    with pytest.raises(PgStateError, match=f"The login '{WEB}' may not change .*migrate as the role that owns it"):
        migrate(db.web)


def test_the_app_refuses_a_database_that_was_not_migrated(pg_server):
    db = new_db(pg_server, migrated=False)
    with pytest.raises(PgStateError, match="python -m core migrate"):
        PgState(db.web)


def test_the_app_refuses_a_login_that_may_not_act_as_the_app_role(pg_server):
    db = new_db(pg_server)
    with pytest.raises(PgStateError, match=f"may not act as {APP_ROLE}: .*GRANT {APP_ROLE} TO {OWNER}"):
        PgState(db.owner)  # the owner would read around the policies


def test_even_a_superuser_login_reads_through_the_policies(pg_server):
    db = new_db(pg_server, seeded=True)
    state = PgState(pg_server.dsn("postgres", db.name), max_size=1)
    try:
        assert column(state, "SELECT client_id FROM agenda_items", TRAINEE, {"c001"}) == ["c001"]
    finally:
        state.close()


def test_an_unreachable_server_is_a_sentence():
    with pytest.raises(PgStateError, match="cannot be reached.*postgres"):
        migrate("postgresql://nobody@127.0.0.1:1/none", timeout=2)


def test_the_migrate_command_migrates_and_says_so(pg_server, capsys):
    db = new_db(pg_server, migrated=False)
    assert main(["migrate", "--dsn", db.owner]) == 0
    assert f"to schema {SCHEMA_VERSION}" in capsys.readouterr().out
    assert main(["migrate", "--dsn", db.owner]) == 0
    assert "already at schema" in capsys.readouterr().out
    assert main(["migrate", "--dsn", "postgresql://nobody@127.0.0.1:1/none"]) == 2
    assert "cannot be reached" in capsys.readouterr().err


def test_the_address_comes_from_the_environment_then_secrets(tmp_path, monkeypatch):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[connections.caseconf]\npostgres = "postgresql://app@db/caseconf"\n')
    monkeypatch.delenv("CASECONF_POSTGRES", raising=False)
    assert default_dsn(secrets) == "postgresql://app@db/caseconf"
    assert default_dsn(tmp_path / "none.toml") is None
    monkeypatch.setenv("CASECONF_POSTGRES", "postgresql://other@db/x")
    assert default_dsn(secrets) == "postgresql://other@db/x"


# ----------------------------------------------------------------------------- what each scope must not see

def test_without_a_scope_nothing_is_seen_or_written(seeded, pg_server):
    with psycopg.connect(seeded._pool.conninfo, autocommit=True) as conn:
        conn.execute(f"SET ROLE {APP_ROLE}")
        conn.execute("SET search_path TO caseconf")
        for table in STATE_TABLES:
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
        # A role the policies do not know, or a user left empty, is no scope either.
        for role, user in (("root", "x"), ("admin", "")):
            with conn.transaction():
                conn.execute("SELECT set_config('caseconf.role', %s, true), set_config('caseconf.user', %s, true), "
                             "set_config('caseconf.clients', '*', true), set_config('caseconf.groups', '*', true)",
                             [role, user])
                assert conn.execute("SELECT count(*) FROM conference_entries").fetchone()[0] == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO audit_log VALUES (9, now(), 'x', 'admin', '', 'sign_in', '', '', 'ok', '', '')")


def test_a_scope_naming_some_cases_must_name_their_clients():
    with pytest.raises(AccessDenied, match="name its clients"):
        PgScope.of(TRAINEE)
    with pytest.raises(AccessDenied):
        PgScope.of("admin")  # type: ignore[arg-type]
    assert PgScope.of(ADMIN).settings() == {"user": "admin1", "role": "admin", "clients": "*", "groups": "*"}


def test_a_trainee_sees_only_their_own_clients_on_the_agenda_and_in_the_notes(seeded):
    for table in ("agenda_items", "conference_entries", "conference_snapshots"):
        assert column(seeded, f"SELECT DISTINCT client_id FROM {table}", TRAINEE, {"c001"}) == ["c001"], table


def test_a_trainee_sees_no_other_groups_conference(seeded):
    assert column(seeded, "SELECT supervision_group FROM conferences", TRAINEE, {"c001"}) == ["group-north"]
    assert column(seeded, "SELECT exercise_id FROM calibration_exercises", TRAINEE, {"c001"}) == [1]


def test_a_supervisor_sees_only_the_groups_they_lead(seeded):
    assert column(seeded, "SELECT supervision_group FROM conferences", SUP, SUP_CLIENTS) == ["group-north"]
    assert set(column(seeded, "SELECT client_id FROM conference_entries", SUP, SUP_CLIENTS)) == {"c001", "c002"}
    assert column(seeded, "SELECT client_id FROM agenda_items", SUP_SOUTH, {"c010"}) == ["c010"]
    # Clients of the other group named by mistake still hide behind the other group's conference.
    assert count(seeded, "agenda_items", SUP, SUP_CLIENTS | {"c010"}) == 2


def test_a_client_list_is_read_verbatim_by_the_policies(seeded):
    odd = {'c"1', "c,2", "c}3", "c\\4", "c001"}
    assert seeded.scalar("SELECT caseconf.scope_clients()", scope=TRAINEE, clients=odd) == sorted(odd)


def test_only_an_admin_reads_the_admin_tables(seeded):
    for table in ADMIN_TABLES:
        assert count(seeded, table, TRAINEE, {"c001"}) == 0, table
        assert count(seeded, table, SUP, SUP_CLIENTS) == 0, table
        assert count(seeded, table, ADMIN) == 1, table
    assert count(seeded, "store_info", TRAINEE, {"c001"}) == 1


def test_a_user_reads_only_their_own_user_rows(seeded):
    assert column(seeded, "SELECT display_id FROM users", TRAINEE, {"c001"}) == ["th02"]
    assert column(seeded, "SELECT supervision_group FROM user_groups", SUP, SUP_CLIENTS) == ["group-north"]
    assert count(seeded, "users", ADMIN) == 5


def test_an_admin_sees_every_row(seeded):
    assert count(seeded, "conference_entries", ADMIN) == 3
    assert count(seeded, "calibration_answers", ADMIN) == 4


def test_a_trainee_reads_only_their_own_answers_until_two_raters_completed_the_exercise(fresh):
    _, state = fresh
    assert column(state, "SELECT DISTINCT rater FROM calibration_answers", TRAINEE, {"c001"}) == ["th02"]
    assert count(state, "calibration_answers", SUP, SUP_CLIENTS) == 3  # the supervisor is not blind
    answer = ("INSERT INTO calibration_answers VALUES (1, 'th02', %s, %s, NULL, now()) ON CONFLICT "
              "(exercise_id, rater, session_number) DO UPDATE SET score = excluded.score, saved_at = excluded.saved_at")
    assert state.execute(answer, [1, 32], scope=TRAINEE, clients={"c001"}) == 1  # a new answer replaces one's own
    assert count(state, "calibration_answers", TRAINEE, {"c001"}) == 1
    state.execute(answer, [2, 31], scope=TRAINEE, clients={"c001"})
    answers = state.frame("SELECT rater, session_number, score FROM calibration_answers ORDER BY 1, 2",
                          scope=TRAINEE, clients={"c001"})
    assert answers.rows() == [("th02", 1, 32.0), ("th02", 2, 31.0), ("th03", 1, 34.0), ("th03", 2, 36.0)]


def test_nobody_answers_for_another_rater(fresh):
    _, state = fresh
    with pytest.raises(PgDenied, match="row-level security"):
        state.execute("INSERT INTO calibration_answers VALUES (1, 'th03', 2, 10, NULL, now())", scope=TRAINEE,
                      clients={"c001"})


def test_only_the_groups_supervisor_writes_its_conference(fresh):
    _, state = fresh
    note = ("INSERT INTO conference_entries VALUES (nextval('entry_ids'), 1, 1, %s, 'note', 'x', NULL, NULL, NULL, "
            "%s, now(), false, NULL)")
    with pytest.raises(PgDenied):
        state.execute(note, ["c001", "th02"], scope=TRAINEE, clients={"c001"})
    with pytest.raises(PgDenied):
        state.execute(note, ["c001", "sup2"], scope=SUP_SOUTH, clients={"c001", "c010"})
    assert state.execute(note, ["c001", "sup1"], scope=SUP, clients=SUP_CLIENTS) == 1


def test_a_scope_does_not_outlive_its_transaction(fresh):
    db, _ = fresh
    state = PgState(db.web, max_size=1)  # one connection: the next statement runs on the same one
    try:
        assert count(state, "conference_entries", ADMIN) == 3
        with state._pool.connection() as conn:
            assert conn.execute("SELECT count(*) FROM conference_entries").fetchone()[0] == 0
    finally:
        state.close()


# ----------------------------------------------------------------------------- the audit log

def test_the_app_appends_to_the_audit_log_but_never_changes_it(fresh):
    db, state = fresh
    with state.transaction(TRAINEE, {"c001"}) as cur:
        assert append_audit(cur, TRAINEE, "view_case", "client c001") == 2
        assert cur.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0  # appended, not read
    assert db.as_owner("SELECT prev_hash FROM audit_log WHERE seq = 2") == [("h1",)]
    for statement in ("UPDATE audit_log SET outcome = 'edited'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with pytest.raises(PgDenied, match="permission denied"):
            state.execute(statement, scope=ADMIN)
    with pytest.raises(PgDenied):  # nobody appends in another's name
        with state.transaction(TRAINEE, {"c001"}) as cur:
            append_audit(cur, ADMIN, "view_case", "client c002")
    assert count(state, "audit_log", ADMIN) == 2


def test_appends_from_two_servers_at_once_keep_one_unbroken_chain(fresh):
    db, state = fresh
    db.as_owner("DELETE FROM audit_log")  # the seeded entry is not chained
    other = PgState(db.web, max_size=2)  # a second app server
    writers = [(state, TRAINEE, {"c001"}), (other, SUP, SUP_CLIENTS)] * 2
    failures = []

    def append_many(server: PgState, scope: Scope, clients) -> None:
        try:
            for n in range(10):
                with server.transaction(scope, clients) as cur:
                    append_audit(cur, scope, "view_case", f"client c00{n % 3 + 1}")
        except Exception as err:  # reported below: a thread's exception would be lost
            failures.append(err)

    threads = [threading.Thread(target=append_many, args=writer) for writer in writers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        other.close()
    assert not failures
    assert verify_audit(state, ADMIN) == (True, "The audit log's 40 entries verify.")
    db.as_owner("UPDATE audit_log SET target = 'client c999' WHERE seq = 7")
    intact, sentence = verify_audit(state, ADMIN)
    assert not intact and sentence.startswith("Entry 7 (view_case by ")


# ----------------------------------------------------------------------------- concurrent saves

def test_two_saves_of_the_same_note_version_one_wins_the_other_is_refused(fresh, pg_server):
    db, state = fresh
    save = ("INSERT INTO conference_entries VALUES (1, 2, 1, 'c001', 'note', %s, NULL, NULL, NULL, 'sup1', now(), "
            "false, NULL)")
    first_written, release, outcome = threading.Event(), threading.Event(), {}

    def write(name: str, hold: bool) -> None:
        try:
            with state.transaction(SUP, SUP_CLIENTS) as cur:
                cur.execute(save, [f"{name}'s text"])
                if hold:
                    first_written.set()
                    release.wait(20)
            outcome[name] = "saved"
        except PgConflict as err:
            outcome[name] = err

    first = threading.Thread(target=write, args=("first", True))
    first.start()
    assert first_written.wait(20)
    second = threading.Thread(target=write, args=("second", False))
    second.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not pg_server.superuser(  # the second waits on the first's key
            "SELECT 1 FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'", [db.name]):
        time.sleep(0.05)
    assert time.monotonic() < deadline, "the second save never waited for the first"
    release.set()
    first.join(20)
    second.join(20)
    assert outcome["first"] == "saved"
    assert isinstance(outcome["second"], PgConflict) and "this version of the note" in str(outcome["second"])
    assert db.as_owner("SELECT text FROM conference_entries WHERE entry_id = 1 AND version = 2") == [("first's text",)]


def test_ids_come_from_the_sequences(fresh):
    _, state = fresh
    with state.transaction(SUP, SUP_CLIENTS) as cur:
        assert next_id(cur, "entry_ids") == 4
    with pytest.raises(ValueError):
        with state.transaction(SUP, SUP_CLIENTS) as cur:
            next_id(cur, "users")
