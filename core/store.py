"""The store: what people write, in one small *state* file, and the data, in snapshot files.

- The **state** (a DuckDB file, `data/caseconf.duckdb` by default) holds what people
  write: users, conferences, notes, calibration, the audit log, the import batches and
  their quarantine. No process keeps it open: each opens it when it reads or writes and
  lets it go once idle (`IDLE_S`) or after `HOLD_S` of continuous use, so the command line
  can work while the app serves; a process that finds it held waits, bounded, for its turn.
- The **data** (sessions, ratings, themes, barriers, events, therapists and the history
  of what imports replaced) lives in immutable DuckDB *snapshot* files beside it
  (`caseconf.snapshots/`). An import (one at a time) writes a complete new snapshot and
  switches the state's pointer to it in the same state transaction that records its batch;
  every process reads snapshots read-only and moves to the new one at its next `refresh`
  (the app: every rerun). Old snapshots are removed after a grace period.

Every read goes through `Store.query`, which applies the reader's scope (see `access`)
and runs on the side that holds the tables it names. Writes happen only inside
`Store.transaction` (state) or `Store.publish` (data), so a process killed half-way leaves
both as they were.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import shutil
import threading
import time
import uuid
import weakref
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import polars as pl

from . import DATA_DIR, INSTALLED, contract
from .access import AccessDenied, Scope, checked_sql, scoped_sql
from .errors import StoreConflict, StoreError  # noqa: F401  (raised here, and by the state's servers)

ENV_VAR = "CASECONF_DB"
SNAPSHOTS_ENV_VAR = "CASECONF_SNAPSHOTS"
# Installed as a plugin the package folder is no place for a clinic's data: the working folder is.
DEFAULT_PATH = Path("caseconf.duckdb") if INSTALLED else DATA_DIR / "caseconf.duckdb"

# The contract's tables (core/contract.py): the natural key of each, what an import
# upserts by, and its stored columns (absolute dates are never stored).
KEYS: dict[str, tuple[str, ...]] = dict(contract.KEYS)
COLUMNS: dict[str, dict[str, str]] = {name: table.stored for name, table in contract.CONTRACT.items()}
TABLES = tuple(COLUMNS)
# Optional columns added after the first schema, each by its own migration.
ADDED_COLUMNS = {name: table.added for name, table in contract.CONTRACT.items() if table.added}


def _data_table_ddl(table: str) -> str:
    """The table as the first schema made it: columns added later come by their own migration."""
    added = ADDED_COLUMNS.get(table, ())
    cols = ",\n  ".join(f"{name} {kind}" for name, kind in COLUMNS[table].items() if name not in added)
    # batch_id: the import that first loaded the row; updated_batch: the last that changed it.
    return f"CREATE TABLE {table} (\n  {cols},\n  batch_id INTEGER NOT NULL,\n  updated_batch INTEGER\n)"


HISTORY_DDL = """CREATE TABLE history (
    batch_id INTEGER NOT NULL,
    table_name VARCHAR NOT NULL,
    key JSON NOT NULL,
    action VARCHAR NOT NULL,
    before JSON
)"""

# The tables that live in snapshot files; every other table is the state's.
# The triage kept per client in each snapshot, made when it is published (analytics.triage.summarize).
SUMMARY_TABLES = ("triage_info", "triage_cases", "triage_flags")
# The clinic's expected-change reference, made when a snapshot is published (analytics.expected).
REFERENCE_TABLES = ("reference_info", "reference_severity", "reference_model", "reference_loo")
ANALYTIC_TABLES = frozenset((*TABLES, "history", "snapshot_info", *SUMMARY_TABLES, *REFERENCE_TABLES))

# Each migration takes the state from version i to i + 1, in one transaction. Versions 1 to 4
# date from when one file held everything; version 5 (`_split_out_data`, in Python) moves
# the data tables into the first snapshot file.
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
        HISTORY_DDL,
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
]
SCHEMA_VERSION = len(MIGRATIONS) + 1

# Each snapshot migration takes a snapshot file from version i to i + 1; a new snapshot is
# built from a copy of the current one, so it is migrated before anything is written to it.
SNAPSHOT_MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE snapshot_info (version INTEGER NOT NULL)",
        "INSERT INTO snapshot_info VALUES (0)",
        *[_data_table_ddl(t) for t in TABLES],
        HISTORY_DDL,
    ],
    [
        # sessions.attendance (CONTRACT.md extension): data imported before it read their
        # attended = false as a no-show, as an import without the column does.
        "ALTER TABLE sessions ADD COLUMN IF NOT EXISTS attendance VARCHAR",
        "UPDATE sessions SET attendance = CASE WHEN attended IS DISTINCT FROM false THEN 'attended' ELSE 'no_show' END "
        "WHERE attendance IS NULL",
    ],
    [
        # sessions.feedback_discussed (CONTRACT.md extension): empty, i.e. not recorded, for
        # data imported before it.
        "ALTER TABLE sessions ADD COLUMN IF NOT EXISTS feedback_discussed BOOLEAN",
    ],
    [
        # The triage of every client, kept with the data (analytics.triage): the tables
        # empty, i.e. no precomputed triage, until the next publish fills them (opening
        # the store publishes the migrated copy, which does).
        "CREATE TABLE IF NOT EXISTS triage_info (catalog_key VARCHAR NOT NULL)",
        """CREATE TABLE IF NOT EXISTS triage_cases (client_id VARCHAR, therapist_id VARCHAR,
            supervision_group VARCHAR, sessions UINTEGER, latest_session INTEGER, all_sessions BIGINT NOT NULL,
            whole BOOLEAN NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS triage_flags (client_id VARCHAR, code VARCHAR, reason VARCHAR,
            session INTEGER, params VARCHAR, weight DOUBLE, ord BIGINT NOT NULL)""",
    ],
    [
        # Each kept flag names the instrument its finding is on and every instrument of its
        # findings (the case overview draws them); the triage kept before is dropped, so
        # it is computed from the data until a publish keeps it again.
        "ALTER TABLE triage_flags ADD COLUMN IF NOT EXISTS instrument VARCHAR",
        "ALTER TABLE triage_flags ADD COLUMN IF NOT EXISTS instruments VARCHAR[]",
        "DELETE FROM triage_info",
    ],
    [
        # The clinic's expected-change reference (analytics.expected.reference), kept with the
        # data it was fitted on: empty, i.e. fitted on first use as before, until the next
        # publish fills it. `settings_key` names the catalog settings it was made with.
        "CREATE TABLE IF NOT EXISTS reference_info (settings_key VARCHAR NOT NULL)",
        """CREATE TABLE IF NOT EXISTS reference_severity (ord BIGINT NOT NULL, instrument VARCHAR, band VARCHAR,
            band_from DOUBLE, band_to DOUBLE, band_text VARCHAR, basis VARCHAR)""",
        """CREATE TABLE IF NOT EXISTS reference_model (ord BIGINT NOT NULL, instrument VARCHAR, fold BIGINT,
            folds BIGINT, n BIGINT, max_since BIGINT, coef DOUBLE[], method VARCHAR)""",
        """CREATE TABLE IF NOT EXISTS reference_loo (ord BIGINT NOT NULL, client_id VARCHAR, instrument VARCHAR,
            fold BIGINT)""",
    ],
]
SNAPSHOT_VERSION = len(SNAPSHOT_MIGRATIONS)

# The janitors that let the state file go stop before the interpreter does: a daemon
# thread stopped inside DuckDB's close (it lets go of the GIL and takes it back) aborted
# the process at exit ("terminate called ... exception not rethrown").
_EXITING = threading.Event()
_JANITORS: weakref.WeakSet[threading.Thread] = weakref.WeakSet()  # the running ones


@atexit.register
def _stop_janitors() -> None:
    _EXITING.set()
    for janitor in list(_JANITORS):
        janitor.join(timeout=LOCK_WAIT_S)


IDLE_S = 0.5          # a process lets the state file go after this long unused
HOLD_S = 1.0          # ... and after this long held without a pause, at its next pause
LOCK_WAIT_S = 60.0    # how long a read or write waits for another process to let it go
PUBLISH_WAIT_S = 900.0  # how long an import waits for another import to finish
GRACE_S = 600.0       # a replaced snapshot is removed this long after its successor appeared
SNAPSHOT_GLOB = "snapshot-*.duckdb"
# The store's own bookkeeping (migrations, the snapshot pointer, an import's batch record).
BOOKKEEPING = Scope.system("the store's own bookkeeping")
# Set a fact about the store (both engines run it).
SET_INFO = "INSERT INTO store_info VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"


def default_path() -> Path:
    return Path(os.environ.get(ENV_VAR) or DEFAULT_PATH)


def default_snapshots(path: str | os.PathLike) -> Path:
    """The snapshot folder beside a state file: `caseconf.duckdb` -> `caseconf.snapshots/`."""
    path = Path(path)
    return path.with_name(path.stem + ".snapshots")


def _is_lock_conflict(err: Exception) -> bool:
    text = str(err).lower()
    return "could not set lock" in text or "conflicting lock" in text


def _connect(path: Path, *, read_only: bool = False, wait_s: float = LOCK_WAIT_S) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to `path`, waiting (bounded) while another process holds the file."""
    deadline = time.monotonic() + wait_s
    delay = 0.005
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as err:
            if not _is_lock_conflict(err):
                raise StoreError(f"The database file {path.name} cannot be opened: {err}") from None
            if time.monotonic() >= deadline:
                raise StoreError(f"The database file {path.name} is busy: another program has held it for "
                                 f"{wait_s:.0f} seconds. Try again in a minute; if it stays busy, a program "
                                 "that opened the file directly is holding it.") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.02)


class _StateFile:
    """One process's connection to the state file: opened on demand, let go when idle.

    Many threads share it (a cursor each). Once nobody in the process has used it for
    `idle_s`, or it has been held `hold_s` without a pause, a janitor thread closes it at
    the next moment nobody uses it, so other processes get their turn; after such a forced
    pause this process waits a moment before taking the file again.
    """

    def __init__(self, path: Path, idle_s: float = IDLE_S, hold_s: float = HOLD_S):
        self.path, self.idle_s, self.hold_s = path, idle_s, hold_s
        self._lock = threading.Condition()  # a lock, and a wait for the last user to finish
        self._con: duckdb.DuckDBPyConnection | None = None
        self._users = 0
        self._opened = self._last = self._released = 0.0
        self._janitor: threading.Thread | None = None

    @contextmanager
    def cursor(self):
        with self._lock:
            if self._con is None:
                pause = self._released + min(0.05, self.idle_s) - time.monotonic()
                if pause > 0:  # just let go for others: give a waiting process the first chance
                    time.sleep(pause)
                self._con = _connect(self.path)
                self._opened = time.monotonic()
                if self._janitor is None or not self._janitor.is_alive():
                    self._janitor = threading.Thread(target=self._watch, daemon=True, name="caseconf-state")
                    self._janitor.start()
                    _JANITORS.add(self._janitor)
            self._users += 1
            con = self._con
        cur = con.cursor()
        try:
            yield cur
        finally:
            cur.close()
            with self._lock:
                self._users -= 1
                self._last = time.monotonic()
                self._lock.notify_all()
                if self._users == 0 and self.idle_s <= 0:
                    self._close_locked()

    def _watch(self) -> None:
        while not _EXITING.wait(max(min(self.idle_s, self.hold_s) / 4, 0.01)):
            with self._lock:
                if self._con is None:
                    self._janitor = None
                    return
                now = time.monotonic()
                if self._users == 0 and (now - self._last >= self.idle_s or now - self._opened >= self.hold_s):
                    self._close_locked()

    def _close_locked(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
            self._released = time.monotonic()

    def rewrite(self) -> None:
        """Copy the state into a fresh file and put it in the old one's place, so that what
        was deleted or overwritten is in no byte of the file (DuckDB leaves old values in the
        slack of blocks still in use: a purged note was readable in the file's bytes).

        Other processes reach the file by its path and wait while it is taken, so it stays
        taken throughout: the old file until the new one is in its place, the new one (opened
        under its temporary name before the rename) until the old one is closed.
        """
        with self._lock:
            if not self._lock.wait_for(lambda: self._users == 0, timeout=LOCK_WAIT_S):
                raise StoreError(f"The store {self.path.name} could not be rewritten: a read did not finish "
                                 f"within {LOCK_WAIT_S:g} seconds.")
            if self._con is None:
                self._con = _connect(self.path)
                self._opened = time.monotonic()
            fresh = self.path.with_name(f".{self.path.name}.rewrite-{uuid.uuid4().hex[:8]}")
            held = None
            try:
                con = self._con
                con.execute("CHECKPOINT")  # nothing left in the old file's log for its close to write
                name = con.execute("SELECT current_database()").fetchall()[0][0]
                con.execute(f"ATTACH '{_sql_path(fresh)}' AS caseconf_rewrite")
                try:
                    con.execute(f'COPY FROM DATABASE "{name}" TO caseconf_rewrite')
                finally:
                    con.execute("DETACH caseconf_rewrite")
                held = duckdb.connect(str(fresh))  # taken before it has the store's name
                _fsync(fresh)
                os.replace(fresh, self.path)
                _fsync(self.path.parent)
            finally:
                self._close_locked()  # the old file, now nameless, goes with its connection
                if held is not None:
                    held.close()
                fresh.unlink(missing_ok=True)
                fresh.with_name(fresh.name + ".wal").unlink(missing_ok=True)

    def close(self) -> None:
        """Close the connection once nobody uses it (a background read, e.g. the warm-up of
        a fresh server, finishes first: closing under it failed with "connection is busy")."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._users == 0, timeout=LOCK_WAIT_S):
                raise StoreError(f"The store {self.path.name} could not be closed: a read did not finish "
                                 f"within {LOCK_WAIT_S:g} seconds.")
            self._close_locked()


class Store:
    """One clinic's store: its state file and its snapshot folder. Create through
    `open_store` (one per process and file)."""

    def __init__(self, path: str | os.PathLike, snapshots: str | os.PathLike | None = None, *,
                 postgres: str | None = None, idle_s: float = IDLE_S, grace_s: float = GRACE_S):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.snapshots = Path(snapshots) if snapshots else default_snapshots(self.path)
        self.grace_s = grace_s
        # Server mode: the state in PostgreSQL (migrated by `python -m core migrate`), the
        # data in the snapshot folder every app server shares.
        self._pg = None
        self._state = None
        if postgres:
            from .pg.bridge import PgSide
            self._pg = PgSide(postgres)
        else:
            self._state = _StateFile(self.path, idle_s)
        self._write_lock = threading.Lock()
        self._readers: dict[str, duckdb.DuckDBPyConnection] = {}
        # Queries running on each reader, and the readers replaced by a newer snapshot that
        # close when their last query ends (DuckDB refuses to close a connection in use).
        self._reader_users: dict[str, int] = {}
        self._retired: set[str] = set()
        self._readers_lock = threading.Condition()
        self._visible: dict[tuple, frozenset[str]] = {}
        self._current: str | None = None
        self.closed = False
        if self._pg is None:
            _refuse_other_files(self.path)
            try:
                self._migrate()
            except StoreError:
                self._state.close()  # a file refused is let go at once
                raise
        else:
            self._first_snapshot()
        self.refresh()
        if self._snapshot_version() < SNAPSHOT_VERSION:
            with self.publish():  # a snapshot from an older version of this software: migrate a copy
                pass
        self.collect_garbage()

    # ------------------------------------------------------------------ the state file
    @property
    def server_mode(self) -> bool:
        """True when the state lives in PostgreSQL (several app servers share it)."""
        return self._pg is not None

    @property
    def where(self) -> str:
        """Where the state lives, for sentences (never a password)."""
        return f"PostgreSQL {self._pg.where}" if self._pg is not None else self.path.name

    @contextmanager
    def state_cursor(self):
        """A cursor on the state, around the scoper: for migrations, tests and the store's
        own bookkeeping; every reader goes through `query`. (PostgreSQL: one transaction.)"""
        if self._pg is not None:
            with self._pg.transaction(BOOKKEEPING) as cur:
                yield cur
            return
        with self._state.cursor() as cur:
            yield cur

    def rewrite_state(self) -> bool:
        """Rewrite the state file so that text deleted or overwritten (a purged note) is gone
        from its bytes, not only from its tables; True when done. Server mode:
        False, PostgreSQL keeps old row versions until its VACUUM FULL (the admin's part)."""
        if self._pg is not None:
            return False
        with self._write_lock:
            self._state.rewrite()
        return True

    def version(self) -> int:
        if self._pg is not None:
            return self._pg.version()
        with self.state_cursor() as cur:
            exists = cur.execute("SELECT count(*) FROM information_schema.tables "
                                 "WHERE table_name = 'schema_info' AND table_schema = 'main'").fetchall()[0][0]
            return cur.execute("SELECT version FROM schema_info").fetchall()[0][0] if exists else 0

    def _migrate(self) -> None:
        current = self.version()
        if current == 0:
            with self.state_cursor() as cur:
                others = cur.execute("SELECT count(*) FROM information_schema.tables "
                                     "WHERE table_catalog = current_database()").fetchall()[0][0]
            if others:  # another program's DuckDB database: never add tables to it
                raise StoreError(f"{self.path.name} is not a database of this software: it holds another "
                                 "program's tables. Name this software's store, or a new file to start one.")
        if current > SCHEMA_VERSION:
            raise StoreError(f"The database {self.path.name} was written by a newer version of this "
                             f"software (schema {current}); update the software before opening it.")
        for version in range(current, len(MIGRATIONS)):
            with self.transaction(BOOKKEEPING) as cur:
                for statement in MIGRATIONS[version]:
                    cur.execute(statement)
                cur.execute("UPDATE schema_info SET version = ?", [version + 1])
        if current < SCHEMA_VERSION:
            self._split_out_data()

    def _split_out_data(self) -> None:
        """Version 5: copy the data tables into the first snapshot, then drop them here.

        A crash before the state's commit leaves the state at version 4 with its data (the
        next open does it again) and at most an unused file, which garbage collection removes.
        """
        self.snapshots.mkdir(parents=True, exist_ok=True)
        building = self._building_path()
        with self.state_cursor() as cur:
            cur.execute(f"ATTACH '{_sql_path(building)}' AS snap")
            try:
                for statement in SNAPSHOT_MIGRATIONS[0]:
                    cur.execute(statement.replace("CREATE TABLE ", "CREATE TABLE snap.", 1)
                                .replace("INSERT INTO ", "INSERT INTO snap.", 1))
                cur.execute(f"UPDATE snap.snapshot_info SET version = {len(SNAPSHOT_MIGRATIONS[:1])}")
                for table in (*TABLES, "history"):
                    cur.execute(f"INSERT INTO snap.{table} BY NAME SELECT * FROM main.{table}")
            finally:
                cur.execute("DETACH snap")
        name = self._place(_migrated(building))  # the first snapshot is born at the current snapshot version
        try:
            with self.transaction(BOOKKEEPING) as cur:
                for table in (*TABLES, "history"):
                    cur.execute(f"DROP TABLE main.{table}")
                cur.execute(SET_INFO, ["snapshot", name])
                cur.execute("UPDATE schema_info SET version = ?", [SCHEMA_VERSION])
        except BaseException:
            (self.snapshots / name).unlink(missing_ok=True)
            raise

    def _first_snapshot(self) -> None:
        """Server mode: a new state database gets an empty first snapshot (two servers
        starting at once: one pointer wins, the other file is garbage)."""
        with self.state_cursor() as cur:
            if cur.execute("SELECT value FROM store_info WHERE key = 'snapshot'").fetchall():
                return
        self.snapshots.mkdir(parents=True, exist_ok=True)
        building = self._building_path()
        name = self._place(_migrated(building))
        with self.transaction(BOOKKEEPING) as cur:
            cur.execute("INSERT INTO store_info VALUES ('snapshot', ?) ON CONFLICT (key) DO NOTHING", [name])

    @contextmanager
    def transaction(self, scope: Scope):
        """A cursor on the state inside BEGIN ... COMMIT, writing as `scope` (in server mode
        the database's row policies hold it to that scope); any exception rolls back."""
        if not isinstance(scope, Scope):
            raise AccessDenied("A write without a scope was refused: every write names its writer's scope.")
        if self._pg is not None:
            from .pg.state import PgDenied, PgStateError
            try:
                with self._pg.transaction(scope, self._pg_clients(scope)) as cur:
                    yield cur
            except (PgDenied, StoreConflict):  # refused by the row policies; another server's write won
                raise
            except PgStateError as err:  # the database refused: a sentence
                raise StoreError(str(err)) from err
            return
        with self._write_lock, self.state_cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")

    def _pg_clients(self, scope: Scope) -> frozenset[str] | None:
        """The clients a server-mode transaction of `scope` may touch (None: every client)."""
        if scope.is_admin and scope.therapist_ids is None and scope.client_ids is None:
            return None
        return self.visible_clients(scope) or frozenset()

    def next_batch_id(self) -> int:
        """A new import's number (numbers of imports that fail are not used again)."""
        with self.state_cursor() as cur:
            return int(cur.execute("SELECT nextval('batch_ids')").fetchall()[0][0])

    # ------------------------------------------------------------------ the snapshots
    def refresh(self) -> str:
        """Move to the state's current snapshot (another process may have published one);
        returns its name, which changes with every import (the data's generation)."""
        with self.state_cursor() as cur:
            found = cur.execute("SELECT value FROM store_info WHERE key = 'snapshot'").fetchall()
        if not found:
            raise StoreError(f"The database {self.path.name} names no data snapshot; it was not made by this "
                             "software, or its state file was replaced without its snapshot folder.")
        name = found[0][0]
        if name != self._current:
            self._current = name
            self._visible.clear()
            self._close_readers(keep=name)
        return name

    def generation(self) -> str:
        """The data's generation: the current snapshot's name, read again from the state."""
        return self.refresh()

    @property
    def snapshot_path(self) -> Path:
        return self.snapshots / (self._current or self.refresh())

    def _take_reader(self) -> tuple[str, duckdb.DuckDBPyConnection]:
        with self._readers_lock:  # the current name read under the lock a switch of snapshot takes
            name = self._current or self.refresh()
            con = self._readers.get(name)
            if con is None:
                path = self.snapshots / name
                if not path.exists():
                    raise StoreError(f"The data snapshot {name} is missing from {self.snapshots.name}: the "
                                     "snapshot folder must be kept (and backed up) with the database file.")
                con = self._readers[name] = _connect(path, read_only=True)
            self._reader_users[name] = self._reader_users.get(name, 0) + 1
            return name, con

    def _give_back_reader(self, name: str) -> None:
        with self._readers_lock:
            self._reader_users[name] -= 1
            if self._reader_users[name] == 0:
                del self._reader_users[name]
                if name in self._retired:
                    self._retired.discard(name)
                    self._readers.pop(name).close()
            self._readers_lock.notify_all()

    def _close_readers(self, keep: str | None = None, wait: bool = False) -> None:
        """Close the readers of every snapshot but `keep`: at once when no query runs on
        one, else when its last query ends; with `wait`, wait for them (closing the store)."""
        with self._readers_lock:
            if wait:
                self._readers_lock.wait_for(lambda: not any(n != keep for n in self._reader_users),
                                            timeout=LOCK_WAIT_S)
            for name in [n for n in self._readers if n != keep]:
                if self._reader_users.get(name):
                    self._retired.add(name)
                else:
                    self._readers.pop(name).close()

    @contextmanager
    def snapshot_cursor(self):
        """A cursor on the current snapshot (read-only), around the scoper: for tests and
        the importer's own checks; every reader goes through `query`."""
        name, con = self._take_reader()
        try:
            cur = con.cursor()
            try:
                yield cur
            finally:
                cur.close()
        finally:
            self._give_back_reader(name)

    def _snapshot_version(self) -> int:
        with self.snapshot_cursor() as cur:
            return cur.execute("SELECT version FROM snapshot_info").fetchall()[0][0]

    def _building_path(self) -> Path:
        return self.snapshots / f".building-{os.getpid()}-{uuid.uuid4().hex[:12]}.duckdb"

    def _place(self, building: Path) -> str:
        """Make a finished snapshot file durable under its final name; returns the name."""
        _fsync(building)
        name = f"snapshot-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}.duckdb"
        os.replace(building, self.snapshots / name)
        _fsync(self.snapshots)
        return name

    @contextmanager
    def _publish_lock(self):
        """One importer at a time, across processes (an advisory lock on a file in the folder)."""
        self.snapshots.mkdir(parents=True, exist_ok=True)
        with open(self.snapshots / ".publish.lock", "a+") as handle:
            deadline = time.monotonic() + PUBLISH_WAIT_S
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreError("Another import has been running for 15 minutes; try again when it "
                                         "has finished.") from None
                    time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def publish(self, after=None):
        """Write to the data tables: a cursor inside a transaction on a copy of the current
        snapshot. On success the copy becomes the current snapshot, switched in one state
        transaction that also runs `after(state_cursor)` (the import's batch and quarantine);
        on any exception nothing is published and nothing of the state changes."""
        with self._publish_lock():
            base = self.snapshots / self.refresh()
            building = self._building_path()
            try:
                shutil.copyfile(base, building)
                con = duckdb.connect(str(building))
                try:
                    _migrate_snapshot(con)
                    cur = con.cursor()
                    cur.execute("BEGIN TRANSACTION")
                    try:
                        yield cur
                    except BaseException:
                        cur.execute("ROLLBACK")
                        raise
                    cur.execute("COMMIT")
                    cur.close()
                    # What the copy kept was made from the data before: gone, unless a step
                    # makes it again from these (the readers then compute it live).
                    for table in KEPT_INFO:
                        con.execute(f"DELETE FROM {table}")
                    for step in PUBLISH_STEPS:
                        step(con, self)
                    con.execute("CHECKPOINT")
                finally:
                    con.close()
                name = self._place(building)
                try:
                    with self.transaction(BOOKKEEPING) as state:
                        if after is not None:
                            after(state)
                        state.execute(SET_INFO, ["snapshot", name])
                except BaseException:
                    (self.snapshots / name).unlink(missing_ok=True)
                    raise
            finally:
                building.unlink(missing_ok=True)
            self.refresh()
        self.collect_garbage()

    def collect_garbage(self) -> list[str]:
        """Remove snapshots replaced more than `grace_s` ago (a process still reading one
        keeps its open file until it moves on) and builds a crashed import left; returns
        the names removed."""
        if not self.snapshots.exists():
            return []
        now, removed = time.time(), []
        current = self._current
        files = sorted(self.snapshots.glob(SNAPSHOT_GLOB), key=lambda p: (p.stat().st_mtime, p.name))
        newer_since = {older.name: newer.stat().st_mtime for older, newer in zip(files, files[1:])}
        for path in files:
            replaced_at = newer_since.get(path.name)
            if path.name != current and replaced_at is not None and now - replaced_at > self.grace_s:
                path.unlink(missing_ok=True)
                removed.append(path.name)
        for path in self.snapshots.glob(".building-*"):
            try:
                stale = now - path.stat().st_mtime > max(self.grace_s, 3600)
            except FileNotFoundError:
                continue
            if stale:
                path.unlink(missing_ok=True)
                removed.append(path.name)
        return removed

    # ------------------------------------------------------------------ reading
    def _route(self, sql: str, scope: Scope) -> tuple[str, str]:
        """Which side holds the tables `sql` reads, and `sql` as `scope` may see it there."""
        if not isinstance(scope, Scope):
            raise AccessDenied("A read without a scope was refused: every read names its reader's scope.")
        tables = checked_sql(sql)
        data = tables & ANALYTIC_TABLES
        if data and tables - ANALYTIC_TABLES:
            raise StoreError("A query reads both data tables (" + ", ".join(sorted(data)) + ") and the state ("
                             + ", ".join(sorted(tables - ANALYTIC_TABLES)) + "); they live in different files: "
                             "read them in two queries.")
        if data:
            return "data", scoped_sql(sql, scope)
        return "state", scoped_sql(sql, scope, visible_clients=self.visible_clients(scope),
                                   schema="caseconf" if self._pg is not None else "main")

    def visible_clients(self, scope: Scope) -> frozenset[str] | None:
        """The clients whose data `scope` may see (None: every client): the state's rules
        name them, since the state file holds no sessions to look them up in."""
        if scope.therapist_ids is None and scope.client_ids is None:
            return None
        key = (self._current, scope.key())
        found = self._visible.get(key)
        if found is None:
            with self.snapshot_cursor() as cur:
                found = frozenset(row[0] for row in cur.execute(
                    scoped_sql("SELECT DISTINCT client_id FROM sessions", scope)).fetchall())
            if len(self._visible) > 1024:
                self._visible.clear()
            self._visible[key] = found
        return found

    @contextmanager
    def _cursor_for(self, side: str):
        with (self.snapshot_cursor() if side == "data" else self.state_cursor()) as cur:
            yield cur

    def query(self, sql: str, params=None, *, scope: Scope) -> pl.DataFrame:
        """Run a read query as `scope` may see it; the result as a polars frame."""
        side, text = self._route(sql, scope)
        if side == "state" and self._pg is not None:
            return self._pg.frame(text, params, scope=scope, clients=self._pg_clients(scope))
        with self._cursor_for(side) as cur:
            return cur.sql(text, params=params or None).pl()

    def scalar(self, sql: str, params=None, *, scope: Scope):
        side, text = self._route(sql, scope)
        if side == "state" and self._pg is not None:
            return self._pg.scalar(text, params, scope=scope, clients=self._pg_clients(scope))
        with self._cursor_for(side) as cur:
            rows = cur.execute(text, params or []).fetchall()
            return rows[0][0] if rows else None

    def is_empty(self) -> bool:
        """True when the store holds no session at all (whoever asks: it names no case)."""
        return self.scalar("SELECT count(*) FROM sessions", scope=Scope.system("is the store empty")) == 0

    def close(self) -> None:
        self.closed = True
        try:
            if self._pg is not None:
                self._pg.close()
            else:
                self._state.close()
        finally:
            self._close_readers(wait=True)


def _refuse_other_files(path: Path) -> None:
    """DuckDB opens a CSV, Parquet or JSON file as a database holding a view of it: a store
    named by mistake as the export ("--db sessions.csv") failed half-way with a traceback."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return  # no file yet (a new store), or one the connection will say it cannot open
    if head and head[8:12] != b"DUCK":  # every DuckDB database file carries it there
        raise StoreError(f"{path.name} is not a database of this software (it is no DuckDB file); name "
                         "this software's store, or a new file to start one.")


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _migrated(path: Path) -> Path:
    """The snapshot file at `path` (made if absent) brought to the current snapshot version."""
    con = duckdb.connect(str(path))
    try:
        _migrate_snapshot(con)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return path


def _migrate_snapshot(con: duckdb.DuckDBPyConnection) -> None:
    exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'snapshot_info' "
                         "AND table_schema = 'main'").fetchall()[0][0]
    current = con.execute("SELECT version FROM snapshot_info").fetchall()[0][0] if exists else 0
    if current > SNAPSHOT_VERSION:
        raise StoreError(f"A data snapshot was written by a newer version of this software (snapshot schema "
                         f"{current}); update the software before importing.")
    for version in range(current, SNAPSHOT_VERSION):
        con.execute("BEGIN TRANSACTION")
        for statement in SNAPSHOT_MIGRATIONS[version]:
            con.execute(statement)
        con.execute("UPDATE snapshot_info SET version = ?", [version + 1])
        con.execute("COMMIT")


# What else a published snapshot keeps, made from its committed data before it is put in
# place: each step takes the snapshot's connection and the store. A layer above the store
# registers its steps (analytics.triage keeps every client's triage), so the store never
# reaches up into the analytics; a step that fails fails the publish, nothing half made.
PUBLISH_STEPS: list = []
# The tables saying what a snapshot keeps was made with (analytics.triage, analytics.expected):
# without their row a reader computes from the data.
KEPT_INFO = ("triage_info", "reference_info")


def on_publish(step):
    """Register `step(con, store)` to run on every snapshot being published."""
    if step not in PUBLISH_STEPS:
        PUBLISH_STEPS.append(step)
    return step


def copy_store(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Copy a store (its state file and its current snapshot) to `target`, e.g. for a
    backup or a test server; the source must not be written meanwhile. Returns `target`."""
    source, target = Path(source), Path(target)
    original = Store(source)
    try:
        name = original.refresh()
        snapshot = original.snapshots / name
        original.close()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        folder = default_snapshots(target)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(snapshot, folder / name)
    finally:
        original.close()
    return target


_stores: dict[tuple, Store] = {}
_stores_lock = threading.Lock()


def open_store(path: str | os.PathLike | None = None, *, postgres: str | None = None,
               snapshots: str | os.PathLike | None = None) -> Store:
    """The process's one Store for `path` (default: CASECONF_DB or data/caseconf.duckdb).

    Server mode when a PostgreSQL address is given or configured (CASECONF_POSTGRES, or
    `[connections.caseconf] postgres` in secrets.toml); the snapshot folder is `snapshots`,
    CASECONF_SNAPSHOTS, `[connections.caseconf] snapshots`, else the one beside `path`."""
    from .pg.state import default_dsn, server_setting
    resolved = Path(path or default_path()).resolve()
    postgres = postgres or default_dsn()
    snapshots = snapshots or server_setting("snapshots", SNAPSHOTS_ENV_VAR)
    key = (resolved, postgres or "", str(snapshots or ""))
    with _stores_lock:
        store = _stores.get(key)
        if store is None or store.closed:
            store = _stores[key] = Store(resolved, snapshots, postgres=postgres)
        return store


def close_all() -> None:
    with _stores_lock:  # closing waits for running reads: not while holding the lock open_store needs
        stores = list(_stores.values())
        _stores.clear()
    for store in stores:
        store.close()


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


def insert_quarantine(cur: duckdb.DuckDBPyConnection, batch_id: int, files: list[Path]) -> None:
    """An import's quarantined rows, from the Parquet files it wrote them to (table_name,
    source, line, raw, problems; see report.QuarantineFiles), into the state's quarantine.
    The files are scanned, not loaded: a million rows pass through in pieces. (Their
    folder is a fresh one in the temporary folder: a name without glob characters.)"""
    if files and getattr(cur, "dialect", "duckdb") == "postgres":  # (COPY does not run under row-level security)
        for file in files:
            for part in pl.read_parquet(file, columns=["table_name", "source", "line", "raw", "problems"]
                                        ).iter_slices(50_000):
                cur.executemany("INSERT INTO quarantine (batch_id, table_name, source, line, raw, problems) "
                                "VALUES (?, ?, ?, ?, ?::JSONB, ?::JSONB)", ((batch_id, *row) for row in part.iter_rows()))
    elif files:
        cur.execute("INSERT INTO quarantine SELECT ?, table_name, source, line, raw::JSON, problems::JSON "
                    "FROM read_parquet(?::VARCHAR[])", [batch_id, [str(f) for f in files]])


def insert_batch(cur: duckdb.DuckDBPyConnection, batch_id: int, *, imported_by: str, file_name: str, sha256: str,
                 redacted: bool, loaded: dict, quarantined: dict, inserted: dict, updated: dict,
                 ignored: list) -> None:
    """The record of one import: who, when, which file (name and hash), counts per table."""
    cur.execute("INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        batch_id, datetime.now(timezone.utc), imported_by, file_name, sha256, redacted, json.dumps(loaded),
        json.dumps(quarantined), json.dumps(inserted), json.dumps(updated), json.dumps(ignored)])


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
