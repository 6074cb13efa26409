"""The store: one embedded DuckDB file, its schema and its migrations.

One connection per process (DuckDB refuses concurrent use of one connection), a cursor
per query or transaction. Every read goes through `Store.query`, which applies the
reader's scope (see `access`). Writes happen only inside `Store.transaction`, so a
process killed half-way leaves the file as it was.
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from .access import Scope, scoped_sql

ENV_VAR = "CASECONF_DB"
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "caseconf.duckdb"

# The natural key of each contract table: what an import upserts by.
KEYS: dict[str, tuple[str, ...]] = {
    "sessions": ("client_id", "session_number"),
    "ratings": ("client_id", "session_number", "instrument", "scale", "rater"),
    "themes": ("client_id", "session_number", "kind", "code", "rater"),
    "barriers": ("client_id", "session_number", "category"),
    "events": ("client_id", "session_number", "event", "rater"),
    "therapists": ("therapist_id",),
}

# Stored columns of each contract table (absolute dates are never stored).
COLUMNS: dict[str, dict[str, str]] = {
    "sessions": {"client_id": "VARCHAR", "session_number": "INTEGER", "therapist_id": "VARCHAR",
                 "days_since_intake": "INTEGER", "modality": "VARCHAR", "attended": "BOOLEAN",
                 "attendance": "VARCHAR"},
    "ratings": {"client_id": "VARCHAR", "session_number": "INTEGER", "instrument": "VARCHAR",
                "scale": "VARCHAR", "rater": "VARCHAR", "score": "DOUBLE"},
    "themes": {"client_id": "VARCHAR", "session_number": "INTEGER", "kind": "VARCHAR",
               "code": "VARCHAR", "rater": "VARCHAR", "intensity": "INTEGER", "note": "VARCHAR"},
    "barriers": {"client_id": "VARCHAR", "session_number": "INTEGER", "category": "VARCHAR",
                 "severity": "INTEGER", "addressed": "BOOLEAN", "note": "VARCHAR"},
    "events": {"client_id": "VARCHAR", "session_number": "INTEGER", "event": "VARCHAR",
               "rater": "VARCHAR", "note": "VARCHAR"},
    "therapists": {"therapist_id": "VARCHAR", "supervision_group": "VARCHAR", "level": "VARCHAR"},
}

TABLES = tuple(COLUMNS)
ADDED_COLUMNS = {"sessions": ("attendance",)}  # optional columns added after the first schema


def _data_table_ddl(table: str) -> str:
    cols = ",\n  ".join(f"{name} {kind}" for name, kind in COLUMNS[table].items())
    # batch_id: the import that first loaded the row; updated_batch: the last that changed it.
    return f"CREATE TABLE {table} (\n  {cols},\n  batch_id INTEGER NOT NULL,\n  updated_batch INTEGER\n)"


# Each migration takes the store from version i to i + 1, in one transaction.
MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE schema_info (version INTEGER NOT NULL)",
        "INSERT INTO schema_info VALUES (0)",
        "CREATE SEQUENCE batch_ids START 1",
        """CREATE TABLE batches (
            batch_id INTEGER PRIMARY KEY,
            imported_at TIMESTAMPTZ NOT NULL,
            imported_by VARCHAR NOT NULL,
            file_name VARCHAR NOT NULL,
            sha256 VARCHAR NOT NULL,
            redacted BOOLEAN NOT NULL,
            loaded JSON NOT NULL,
            quarantined JSON NOT NULL,
            inserted JSON NOT NULL,
            updated JSON NOT NULL,
            ignored JSON NOT NULL
        )""",
        # One row per quarantined input row: its raw values (identifying text masked)
        # and every reason, so it can be fixed and imported again.
        """CREATE TABLE quarantine (
            batch_id INTEGER NOT NULL,
            table_name VARCHAR NOT NULL,
            source VARCHAR NOT NULL,
            line INTEGER,
            raw JSON NOT NULL,
            problems JSON NOT NULL
        )""",
        # What an update replaced: the key and the values before, per batch.
        """CREATE TABLE history (
            batch_id INTEGER NOT NULL,
            table_name VARCHAR NOT NULL,
            key JSON NOT NULL,
            action VARCHAR NOT NULL,
            before JSON
        )""",
        *[_data_table_ddl(t) for t in TABLES],
    ],
    # Version 2: case conferences and their agendas (core/conference/meetings.py).
    [
        "CREATE SEQUENCE conference_ids START 1",
        """CREATE TABLE conferences (
            conference_id INTEGER PRIMARY KEY,
            supervision_group VARCHAR NOT NULL,
            held_on DATE NOT NULL,
            created_by VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            attendees VARCHAR[] NOT NULL
        )""",
        # One row per case on the agenda, in order; a removed item is kept with who,
        # when and why (soft delete).
        """CREATE TABLE agenda_items (
            conference_id INTEGER NOT NULL,
            position INTEGER NOT NULL,
            case_label VARCHAR NOT NULL,
            client_id VARCHAR NOT NULL,
            reason VARCHAR NOT NULL,
            minutes INTEGER NOT NULL,
            deleted_at TIMESTAMPTZ,
            deleted_by VARCHAR,
            deleted_why VARCHAR
        )""",
    ],
    # Version 3: what a conference says and decides, what the data showed when it was
    # made (for the next conference's follow-up), and the calibration exercises.
    [
        # The store's generation (latest batch) when the conference was made.
        "ALTER TABLE conferences ADD COLUMN generation INTEGER",
        # Every case of the group as the triage saw it when the conference was made.
        """CREATE TABLE conference_snapshots (
            conference_id INTEGER NOT NULL,
            client_id VARCHAR NOT NULL,
            sessions INTEGER NOT NULL,
            latest_session INTEGER,
            priority DOUBLE NOT NULL,
            flags VARCHAR[] NOT NULL
        )""",
        "CREATE SEQUENCE entry_ids START 1",
        # Notes and action items per case on an agenda. Append-only: every save is a new
        # version with its author and time, and a deletion is a version that says who and
        # why, so the full history can always be shown. The current state of an entry is
        # its latest version.
        """CREATE TABLE conference_entries (
            entry_id INTEGER NOT NULL,
            version INTEGER NOT NULL,
            conference_id INTEGER NOT NULL,
            client_id VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            text VARCHAR NOT NULL,
            owner VARCHAR,
            due_on DATE,
            status VARCHAR,
            saved_by VARCHAR NOT NULL,
            saved_at TIMESTAMPTZ NOT NULL,
            deleted BOOLEAN NOT NULL,
            why VARCHAR,
            PRIMARY KEY (entry_id, version)
        )""",
        "CREATE SEQUENCE exercise_ids START 1",
        # A calibration exercise: trainees rate (a number per session) or code (one code per
        # session) a case blind; the answers give an ICC or Fleiss' kappa.
        """CREATE TABLE calibration_exercises (
            exercise_id INTEGER PRIMARY KEY,
            supervision_group VARCHAR NOT NULL,
            client_id VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            subject VARCHAR NOT NULL,
            sessions INTEGER[] NOT NULL,
            created_by VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL
        )""",
        """CREATE TABLE calibration_answers (
            exercise_id INTEGER NOT NULL,
            rater VARCHAR NOT NULL,
            session_number INTEGER NOT NULL,
            score DOUBLE,
            code VARCHAR,
            saved_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (exercise_id, rater, session_number)
        )""",
    ],
    # Version 4: who may sign in and what they may see (core/identity.py), the audit trail
    # (core/audit.py), and facts about the store itself.
    [
        # A user is the identity provider's subject; issuer '' accepts the subject from any
        # provider the server trusts (a clinic with one provider need not name it).
        """CREATE TABLE users (
            subject VARCHAR NOT NULL,
            issuer VARCHAR NOT NULL,
            display_id VARCHAR NOT NULL UNIQUE,
            role VARCHAR NOT NULL,
            therapist_id VARCHAR,
            created_at TIMESTAMPTZ NOT NULL,
            created_by VARCHAR NOT NULL,
            PRIMARY KEY (subject, issuer)
        )""",
        # relation: 'leads' (a supervisor's group) or 'member' (a trainee's group).
        """CREATE TABLE user_groups (
            subject VARCHAR NOT NULL,
            issuer VARCHAR NOT NULL,
            supervision_group VARCHAR NOT NULL,
            relation VARCHAR NOT NULL,
            PRIMARY KEY (subject, issuer, supervision_group)
        )""",
        # The server's record of a sign-in: a copied cookie is refused once it has ended.
        """CREATE TABLE auth_sessions (
            session_key VARCHAR PRIMARY KEY,
            subject VARCHAR NOT NULL,
            issuer VARCHAR NOT NULL,
            started_at TIMESTAMPTZ NOT NULL,
            ended_at TIMESTAMPTZ,
            end_reason VARCHAR
        )""",
        # Append-only and hash-chained: each entry's hash covers the previous entry's hash.
        """CREATE TABLE audit_log (
            seq BIGINT PRIMARY KEY,
            logged_at TIMESTAMPTZ NOT NULL,
            user_id VARCHAR NOT NULL,
            role VARCHAR NOT NULL,
            scope VARCHAR NOT NULL,
            action VARCHAR NOT NULL,
            target VARCHAR NOT NULL,
            session_id VARCHAR NOT NULL,
            outcome VARCHAR NOT NULL,
            prev_hash VARCHAR NOT NULL,
            hash VARCHAR NOT NULL
        )""",
        # A note's or decision's text purged from every version: who, when and why.
        """CREATE TABLE purges (
            entry_id INTEGER NOT NULL,
            purged_by VARCHAR NOT NULL,
            purged_at TIMESTAMPTZ NOT NULL,
            why VARCHAR NOT NULL
        )""",
        "CREATE TABLE store_info (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
    ],
    [
        # sessions.attendance (CONTRACT.md extension): a store made before it reads its
        # attended = false as a no-show, as an import without the column does. (A store made
        # since has the column from the data tables' definition.)
        "ALTER TABLE sessions ADD COLUMN IF NOT EXISTS attendance VARCHAR",
        "UPDATE sessions SET attendance = CASE WHEN attended IS DISTINCT FROM false THEN 'attended' ELSE 'no_show' END "
        "WHERE attendance IS NULL",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(Exception):
    """The store cannot be opened or is newer than this software; a sentence."""


def default_path() -> Path:
    return Path(os.environ.get(ENV_VAR) or DEFAULT_PATH)


class Store:
    """The DuckDB file of one clinic. Create through `open_store` (one per process)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path))
        except duckdb.Error as err:
            raise StoreError(f"The database file {self.path.name} cannot be opened: {err}") from None
        self._write_lock = threading.Lock()
        self.closed = False
        self._migrate()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self._con.cursor()

    def version(self) -> int:
        cur = self.cursor()
        exists = cur.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_info'").fetchall()[0][0]
        return cur.execute("SELECT version FROM schema_info").fetchall()[0][0] if exists else 0

    def _migrate(self) -> None:
        current = self.version()
        if current > SCHEMA_VERSION:
            raise StoreError(f"The database {self.path.name} was written by a newer version of this "
                             f"software (schema {current}); update the software before opening it.")
        for version in range(current, SCHEMA_VERSION):
            with self.transaction() as cur:
                for statement in MIGRATIONS[version]:
                    cur.execute(statement)
                cur.execute("UPDATE schema_info SET version = ?", [version + 1])

    @contextmanager
    def transaction(self):
        """A cursor inside BEGIN ... COMMIT; any exception rolls everything back."""
        with self._write_lock:
            cur = self.cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
            finally:
                cur.close()

    def query(self, sql: str, params=None, *, scope: Scope) -> pl.DataFrame:
        """Run a read query as `scope` may see it; the result as a polars frame."""
        cur = self.cursor()
        try:
            return cur.sql(scoped_sql(sql, scope), params=params or None).pl()
        finally:
            cur.close()

    def scalar(self, sql: str, params=None, *, scope: Scope):
        cur = self.cursor()
        try:
            rows = cur.execute(scoped_sql(sql, scope), params or []).fetchall()
            return rows[0][0] if rows else None
        finally:
            cur.close()

    def is_empty(self) -> bool:
        """True when the store holds no session at all (whoever asks: it names no case)."""
        return self.scalar("SELECT count(*) FROM sessions", scope=Scope.system("is the store empty")) == 0

    def close(self) -> None:
        self.closed = True
        self._con.close()


_stores: dict[Path, Store] = {}
_stores_lock = threading.Lock()


def open_store(path: str | os.PathLike | None = None) -> Store:
    """The process's one Store for `path` (default: CASECONF_DB or data/caseconf.duckdb)."""
    resolved = Path(path or default_path()).resolve()
    with _stores_lock:
        store = _stores.get(resolved)
        if store is None:
            store = _stores[resolved] = Store(resolved)
        return store


def close_all() -> None:
    with _stores_lock:
        for store in _stores.values():
            store.close()
        _stores.clear()


def upsert(cur: duckdb.DuckDBPyConnection, table: str, rows: pl.DataFrame, batch_id: int) -> tuple[int, int]:
    """Insert new keys, update changed ones (recording what they replaced in `history`).

    `rows` holds the table's columns with unique keys. Returns (inserted, updated); rows
    whose values equal the stored ones are left alone, so a repeated import changes nothing.
    """
    keys = KEYS[table]
    values = [c for c in COLUMNS[table] if c not in keys]
    # A column added to the contract later (sessions.attendance) may be absent from rows
    # built by code rather than by an import: it is stored empty.
    staged = rows.with_columns(pl.lit(None, pl.String).alias(c) for c in ADDED_COLUMNS.get(table, ())
                               if c not in rows.columns).select(list(COLUMNS[table]))
    on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
    differs = (f"row({', '.join('t.' + v for v in values)}) IS DISTINCT FROM "
               f"row({', '.join('s.' + v for v in values)})")
    key_json = "to_json(struct_pack(" + ", ".join(f"{k} := t.{k}" for k in keys) + "))"
    before_json = "to_json(struct_pack(" + ", ".join(f"{v} := t.{v}" for v in values) + "))"
    cur.register("staged_rows", staged)
    try:
        # Into an empty table (a first import) every row is new: the look-up of millions of
        # keys among none would only read them all once more.
        stored = cur.execute(f"SELECT EXISTS (SELECT 1 FROM main.{table})").fetchall()[0][0]
        existing = cur.execute(f"SELECT count(*) FROM staged_rows s SEMI JOIN main.{table} t ON {on}"
                               ).fetchall()[0][0] if stored else 0
        updated = 0
        if existing and values:
            cur.execute(f"""INSERT INTO history
                SELECT ?, '{table}', {key_json}, 'update', {before_json}
                FROM main.{table} t JOIN staged_rows s ON {on} WHERE {differs}""", [batch_id])
            updated = cur.execute("SELECT count(*) FROM history WHERE batch_id = ? AND table_name = ?",
                                  [batch_id, table]).fetchall()[0][0]
        if updated:
            assignments = ", ".join(f"{v} = s.{v}" for v in values)
            cur.execute(f"""UPDATE main.{table} t SET {assignments}, updated_batch = ?
                FROM staged_rows s WHERE {on} AND {differs}""", [batch_id])
        columns = ", ".join(COLUMNS[table])
        source = f"staged_rows s ANTI JOIN main.{table} t ON {on}" if existing else "staged_rows s"
        # Rows have no order in a table (every read says ORDER BY), so DuckDB may insert in
        # parallel: a third faster at millions of rows. The setting is the database's, so it
        # is set back at once.
        cur.execute("SET preserve_insertion_order = false")
        try:
            cur.execute(f"INSERT INTO main.{table} ({columns}, batch_id) "
                        f"SELECT {', '.join('s.' + c for c in COLUMNS[table])}, ? FROM {source}", [batch_id])
        finally:
            cur.execute("RESET preserve_insertion_order")
    finally:
        cur.unregister("staged_rows")
    return staged.height - existing, updated


def counts(store: Store, scope: Scope) -> dict[str, int]:
    """How many clients, therapists, sessions and ratings `scope` can see."""
    return store.query(
        "SELECT (SELECT count(DISTINCT client_id) FROM sessions) AS clients, "
        "(SELECT count(DISTINCT therapist_id) FROM sessions) AS therapists, "
        "(SELECT count(*) FROM sessions) AS sessions, (SELECT count(*) FROM ratings) AS ratings",
        scope=scope).row(0, named=True)


def batches(store: Store, scope: Scope, limit: int = 20) -> pl.DataFrame:
    """The latest imports: who, when, which file, what was loaded and quarantined (an admin's read)."""
    return store.query("SELECT batch_id AS batch, imported_at, imported_by, file_name, sha256, loaded, "
                       "quarantined, inserted, updated FROM batches ORDER BY batch_id DESC LIMIT ?", [limit],
                       scope=scope)


def quarantine_rows(store: Store, scope: Scope, batch_id: int | None = None, limit: int = 100,
                    offset: int = 0) -> pl.DataFrame:
    """Quarantined rows, newest import first: batch, table, file, line, the raw values
    (identifying text already masked at import) and the reasons, as text."""
    where = "WHERE batch_id = $b" if batch_id is not None else ""
    params = {"limit": limit, "offset": offset, **({"b": batch_id} if batch_id is not None else {})}
    rows = store.query(
        f"SELECT batch_id AS batch, table_name AS \"table\", source AS file, line, raw::VARCHAR AS raw, "
        f"problems::VARCHAR AS problems FROM quarantine {where} "
        "ORDER BY batch_id DESC, table_name, line LIMIT $limit OFFSET $offset", params, scope=scope)
    # As people read them: "column = value; ..." and the reasons' sentences, not JSON.
    return rows.with_columns(
        pl.col("raw").map_elements(_readable_values, return_dtype=pl.String).alias("raw_values"),
        pl.col("problems").map_elements(lambda text: " | ".join(p["message"] for p in json.loads(text)),
                                        return_dtype=pl.String),
    ).select("batch", "table", "file", "line", "raw_values", "problems")


def _readable_values(text: str) -> str:
    values = json.loads(text)
    return "; ".join(f"{k} = {v}" for k, v in values.items() if v is not None and not str(k).startswith("_"))
