"""The store: schema and migrations, transactions, upsert by natural key, the scope choke point."""

import polars as pl
import pytest

from core.access import Scope
from core.store import SCHEMA_VERSION, Store, StoreError, upsert
from tests.conftest import SYSTEM


def _sessions(rows):
    return pl.DataFrame(rows, schema={"client_id": pl.String, "session_number": pl.Int64, "therapist_id": pl.String,
                                      "days_since_intake": pl.Int64, "modality": pl.String, "attended": pl.Boolean},
                        orient="row")


def test_a_new_store_is_migrated_to_the_current_schema(store):
    assert store.version() == SCHEMA_VERSION
    assert store.is_empty()


def test_reopening_a_store_keeps_its_data(tmp_path):
    path = tmp_path / "s.duckdb"
    first = Store(path)
    with first.transaction() as cur:
        upsert(cur, "sessions", _sessions([("c1", 0, "t1", 0, "individual", True)]), 1)
    first.close()
    again = Store(path)
    assert again.scalar("SELECT count(*) FROM sessions", scope=SYSTEM) == 1
    again.close()


def test_a_store_from_a_newer_version_is_refused_with_a_sentence(tmp_path):
    path = tmp_path / "s.duckdb"
    s = Store(path)
    with s.transaction() as cur:
        cur.execute("UPDATE schema_info SET version = 999")
    s.close()
    with pytest.raises(StoreError, match="newer version"):
        Store(path)


def test_a_failed_transaction_leaves_nothing(store):
    with pytest.raises(RuntimeError):
        with store.transaction() as cur:
            upsert(cur, "sessions", _sessions([("c1", 0, "t1", 0, "individual", True)]), 1)
            raise RuntimeError("disk full")
    assert store.is_empty()


def test_upsert_inserts_updates_by_key_and_records_history(store):
    with store.transaction() as cur:
        assert upsert(cur, "sessions", _sessions([("c1", 0, "t1", 0, "individual", True),
                                                  ("c1", 1, "t1", 7, "individual", True)]), 1) == (2, 0)
    with store.transaction() as cur:
        assert upsert(cur, "sessions", _sessions([("c1", 0, "t1", 0, "individual", True),
                                                  ("c1", 1, "t1", 8, "individual", True)]), 2) == (0, 1)
    assert store.scalar("SELECT days_since_intake FROM sessions WHERE session_number = 1", scope=SYSTEM) == 8
    history = store.query("SELECT batch_id, table_name, key, before FROM history", scope=SYSTEM)
    assert history.height == 1
    assert '"days_since_intake":7' in history["before"][0].replace(" ", "")
    assert store.scalar("SELECT updated_batch FROM sessions WHERE session_number = 1", scope=SYSTEM) == 2


def test_upsert_of_identical_rows_changes_nothing(store):
    rows = _sessions([("c1", 0, "t1", None, "individual", True)])
    with store.transaction() as cur:
        upsert(cur, "sessions", rows, 1)
    with store.transaction() as cur:
        assert upsert(cur, "sessions", rows, 2) == (0, 0)
    assert store.scalar("SELECT count(*) FROM history", scope=SYSTEM) == 0
    assert store.scalar("SELECT updated_batch FROM sessions", scope=SYSTEM) is None


def test_a_scope_sees_only_its_therapists_cases(store):
    with store.transaction() as cur:
        upsert(cur, "sessions", _sessions([("c1", 0, "t1", 0, "individual", True),
                                           ("c2", 0, "t2", 0, "individual", True)]), 1)
        ratings = pl.DataFrame({"client_id": ["c1", "c2"], "session_number": [0, 0], "instrument": ["SRS", "SRS"],
                                "scale": ["total", "total"], "rater": ["client", "client"], "score": [30.0, 31.0]})
        upsert(cur, "ratings", ratings, 1)
    only_t1 = Scope.therapists({"t1"})
    assert store.query("SELECT client_id FROM sessions", scope=only_t1)["client_id"].to_list() == ["c1"]
    assert store.query("SELECT client_id FROM ratings", scope=only_t1)["client_id"].to_list() == ["c1"]
    assert store.query("WITH x AS (SELECT * FROM ratings) SELECT count(*) AS n FROM x",
                       scope=only_t1)["n"][0] == 1
    assert store.scalar("SELECT count(*) FROM ratings", scope=SYSTEM) == 2
    assert store.scalar("SELECT count(*) FROM sessions", scope=Scope.therapists(set())) == 0


def test_a_scope_sees_only_the_conference_rows_of_its_cases(store):
    with store.transaction() as cur:
        upsert(cur, "sessions", _sessions([("c1", 0, "t1", 0, "individual", True),
                                           ("c2", 0, "t2", 0, "individual", True)]), 1)
        cur.execute("INSERT INTO conferences VALUES (1, 'g', DATE '2026-12-01', 'sup1', now(), [], 1)")
        for client in ("c1", "c2"):
            cur.execute("INSERT INTO agenda_items (conference_id, position, case_label, client_id, reason, minutes) "
                        "VALUES (1, 1, 'Case A', ?, 'why', 15)", [client])
            cur.execute("INSERT INTO conference_entries VALUES (?, 1, 1, ?, 'note', 'text', NULL, NULL, NULL, 'sup1', "
                        "now(), false, NULL)", [int(client[1]), client])
            cur.execute("INSERT INTO conference_snapshots VALUES (1, ?, 1, 0, 0, [])", [client])
            cur.execute("INSERT INTO calibration_exercises VALUES (?, 'g', ?, 'rating', 'SRS:total', [0], 'sup1', "
                        "now())", [int(client[1]), client])
            cur.execute("INSERT INTO calibration_answers VALUES (?, 'tr1', 0, 30, NULL, now())", [int(client[1])])
    only_t1 = Scope.therapists({"t1"})
    for table in ("agenda_items", "conference_entries", "conference_snapshots", "calibration_exercises"):
        assert store.query(f"SELECT client_id FROM {table}", scope=only_t1)["client_id"].to_list() == ["c1"], table
        assert store.scalar(f"SELECT count(*) FROM {table}", scope=SYSTEM) == 2
    assert store.query("SELECT exercise_id FROM calibration_answers", scope=only_t1)["exercise_id"].to_list() == [1]


def test_a_scope_cannot_be_escaped_by_quotes_in_an_id(store):
    with store.transaction() as cur:
        upsert(cur, "sessions", _sessions([("c1", 0, "t1", 0, "individual", True)]), 1)
    sneaky = Scope.therapists({"x') OR true OR ('1"})
    assert store.scalar("SELECT count(*) FROM sessions", scope=sneaky) == 0


def test_a_version_1_store_is_migrated_to_the_conference_tables_and_entries(tmp_path):
    path = tmp_path / "old.duckdb"
    store = Store(path)
    with store.transaction() as cur:
        for table in ("calibration_answers", "calibration_exercises", "conference_entries", "conference_snapshots",
                      "agenda_items", "conferences", "users", "user_groups", "auth_sessions", "audit_log", "purges",
                      "store_info"):
            cur.execute(f"DROP TABLE {table}")
        for sequence in ("exercise_ids", "entry_ids", "conference_ids"):
            cur.execute(f"DROP SEQUENCE {sequence}")
        cur.execute("UPDATE schema_info SET version = 1")
    store.close()
    store = Store(path)
    assert store.version() == SCHEMA_VERSION == 5
    for table in ("agenda_items", "conference_entries", "conference_snapshots", "calibration_exercises",
                  "calibration_answers", "users", "user_groups", "auth_sessions", "audit_log", "purges", "store_info"):
        assert store.scalar(f"SELECT count(*) FROM {table}", scope=SYSTEM) == 0
    store.close()


def test_a_store_made_before_the_attendance_column_reads_attended_false_as_a_no_show(tmp_path):
    path = tmp_path / "old.duckdb"
    store = Store(path)
    with store.transaction() as cur:
        upsert(cur, "sessions", _sessions([("c1", 0, "t1", 0, "individual", True),
                                           ("c1", 1, "t1", 7, "individual", False)]), 1)
        cur.execute("ALTER TABLE sessions DROP COLUMN attendance")
        cur.execute("UPDATE schema_info SET version = 4")
    store.close()
    store = Store(path)
    assert store.version() == SCHEMA_VERSION
    assert store.query("SELECT attendance FROM sessions ORDER BY session_number",
                       scope=SYSTEM)["attendance"].to_list() == ["attended", "no_show"]
    store.close()
