"""The state database in PostgreSQL: migrations, and transactions that carry their reader's scope.

`migrate(dsn)` runs as the role that owns the schema. The app opens `PgState(dsn)` as a
login granted `caseconf_app`; every connection of its pool acts as that role, and every
`transaction(scope)` first sets the scope's four settings (`schema.SCOPE_SETTINGS`) with
set_config(..., true), which last until the transaction ends: a connection handed back to
the pool keeps no scope, and a statement run without one sees no row.

Every error a person can cause or meet comes out as a `PgStateError` whose text is a
sentence: a write that lost a race is a `PgConflict`, one the scope does not allow a
`PgDenied`.
"""

from __future__ import annotations

import os
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import polars as pl
import psycopg
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from ..access import ROLES, AccessDenied, Scope
from ..errors import StoreConflict, StoreError
from .schema import APP_ROLE, EVERY, MIGRATIONS, SCHEMA, SCHEMA_VERSION, SEQUENCES

ENV_VAR = "CASECONF_POSTGRES"
SECRETS = Path(__file__).resolve().parents[2] / ".streamlit" / "secrets.toml"
# Held by a migration's transaction, so that two servers migrating at once take turns.
_MIGRATION_LOCK = 0x63617365  # "case"


class PgStateError(StoreError):
    """The state database cannot do what was asked; a sentence (a StoreError, so the
    command line and the pages answer it as they answer the store's own)."""


class PgConflict(PgStateError, StoreConflict):
    """Someone else's write to the same rows won; nothing of this one was kept."""


class PgDenied(PgStateError, AccessDenied):
    """The database refused a read or write outside the transaction's scope."""


def default_dsn(secrets: Path | None = None) -> str | None:
    """CASECONF_POSTGRES, else `[connections.caseconf] postgres` of .streamlit/secrets.toml."""
    return server_setting("postgres", ENV_VAR, secrets)


def server_setting(key: str, env_var: str, secrets: Path | None = None) -> str | None:
    """A server setting: the environment variable `env_var`, else `[connections.caseconf] key`
    of .streamlit/secrets.toml (the working folder's, else this installation's)."""
    if os.environ.get(env_var):
        return os.environ[env_var]
    for path in ([secrets] if secrets else [Path(".streamlit") / "secrets.toml", SECRETS]):
        try:
            settings = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise PgStateError(f"{path.name} cannot be read ({err}); fix it or set {env_var}.") from None
        value = (settings.get("connections", {}).get("caseconf", {}) or {}).get(key)
        return str(value) if value else None
    return None


def describe(dsn: str) -> str:
    """The database a DSN names, for sentences: never its password."""
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.Error:
        raise PgStateError("The PostgreSQL address is not a connection string; write it as "
                           "postgresql://USER@HOST:PORT/DATABASE.") from None
    host = info.get("host") or "the local socket"
    port = f":{info['port']}" if info.get("port") else ""
    return f"'{info.get('dbname') or info.get('user') or 'postgres'}' on {host}{port}"


# -------------------------------------------------------------------------- the reader's scope

@dataclass(frozen=True)
class PgScope:
    """A Scope as the state database's policies read it.

    clients: the client ids the reader may see (None: every client, admin and system only);
    the app computes them from the analytic snapshot, where the therapists' cases are.
    groups: the supervision groups whose conferences and exercises may be seen (None: all).
    """
    user: str
    role: str
    clients: frozenset[str] | None
    groups: frozenset[str] | None

    @classmethod
    def of(cls, scope: Scope, clients: Iterable[str] | None = None) -> "PgScope":
        if not isinstance(scope, Scope):
            raise AccessDenied("A transaction without a scope was refused: every transaction names its reader.")
        if scope.role not in (*ROLES, "system") or not scope.user:
            raise AccessDenied(f"The scope of '{scope.user}' has no known role; nothing was read or written.")
        narrowed = scope.therapist_ids is not None or scope.client_ids is not None
        if clients is None and (narrowed or not scope.is_admin):
            raise AccessDenied(f"The scope of '{scope.user}' covers some cases only: name its clients.")
        if clients is not None:
            clients = frozenset(clients) if scope.client_ids is None else frozenset(clients) & scope.client_ids
        if scope.groups is None and not scope.is_admin:
            raise AccessDenied(f"The scope of '{scope.user}' names no supervision group.")
        return cls(scope.user, scope.role, clients, scope.groups)

    def settings(self) -> dict[str, str]:
        """The values of caseconf.user, .role, .clients and .groups."""
        return {"user": self.user, "role": self.role, "clients": _array_literal(self.clients),
                "groups": _array_literal(self.groups)}


def _array_literal(values: frozenset[str] | None) -> str:
    if values is None:
        return EVERY
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in sorted(values))
    return "{" + ",".join(quoted) + "}"


_SET_SCOPE = ("SELECT set_config('caseconf.user', %(user)s, true), set_config('caseconf.role', %(role)s, true), "
              "set_config('caseconf.clients', %(clients)s, true), set_config('caseconf.groups', %(groups)s, true), "
              "current_user")


# -------------------------------------------------------------------------- errors as sentences

# What a unique key protects, for the sentence of the write that lost.
_KEYS = {"conference_entries_pkey": "this version of the note", "agenda_items_active": "this case on the agenda",
         "calibration_answers_pkey": "this answer", "users_display_id_key": "this display id",
         "users_pkey": "this user", "audit_log_pkey": "this audit entry"}


def _sentence(err: psycopg.Error, where: str) -> PgStateError:
    text = str(err).strip()
    primary = err.diag.message_primary or (text.splitlines()[0] if text else type(err).__name__)
    if isinstance(err, PoolTimeout):
        return PgStateError(f"No connection to the state database {where} became free in time; the server is busy "
                            "or PostgreSQL stopped answering. Try again in a moment.")
    if isinstance(err, errors.UniqueViolation):
        what = _KEYS.get(err.diag.constraint_name or "", "the same row")
        return PgConflict(f"Someone else saved {what} at the same moment; theirs was kept and this change was not "
                          "saved. Reload to see it, then save again.")
    if isinstance(err, (errors.SerializationFailure, errors.DeadlockDetected, errors.LockNotAvailable)):
        return PgConflict("Another change to the same rows was being saved at the same moment; this one was not "
                          "saved. Try again.")
    if isinstance(err, errors.InsufficientPrivilege):
        return PgDenied(f"The state database refused this: {primary}. The signed-in user's scope does not allow it.")
    if isinstance(err, (errors.UndefinedTable, errors.InvalidSchemaName, errors.UndefinedFunction,
                        errors.UndefinedObject)):
        return PgStateError(f"The state database {where} is not set up for this software ({primary}); run "
                            "'python -m core migrate' as the database's owner.")
    if isinstance(err, psycopg.OperationalError) and not err.sqlstate:
        return PgStateError(f"The state database {where} cannot be reached ({primary}). Check that PostgreSQL "
                            f"runs and that [connections.caseconf] postgres (or {ENV_VAR}) names it.")
    return PgStateError(f"The state database {where} refused a statement: {primary}.")


def _connect(dsn: str, timeout: float, **kwargs) -> psycopg.Connection:
    return psycopg.connect(dsn, connect_timeout=max(1, int(timeout)), **kwargs)


# -------------------------------------------------------------------------- migrations

def _newer(current: int, where: str) -> PgStateError:
    return PgStateError(f"The state database {where} was migrated by a newer version of this software (schema "
                        f"{current}; this one knows {SCHEMA_VERSION}); update the software before using it.")


def migrate(dsn: str, *, timeout: float = 10.0) -> list[int]:
    """Bring the state database to SCHEMA_VERSION, one transaction a migration; the
    versions applied (none when it was up to date). Run as the role that owns it."""
    where, applied, migration = describe(dsn), [], None
    try:
        with _connect(dsn, timeout, autocommit=True) as conn:
            while True:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATION_LOCK])
                    if conn.execute("SELECT to_regclass(%s)", [f"{SCHEMA}.schema_migrations"]).fetchone()[0] is None:
                        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
                        conn.execute(f"CREATE TABLE {SCHEMA}.schema_migrations (version integer PRIMARY KEY, "
                                     "name text NOT NULL, applied_at timestamptz NOT NULL, applied_by text NOT NULL)")
                    current = conn.execute(f"SELECT coalesce(max(version), 0) FROM {SCHEMA}.schema_migrations"
                                           ).fetchone()[0]
                    if current > SCHEMA_VERSION:
                        raise _newer(current, where)
                    if current == SCHEMA_VERSION:
                        return applied
                    migration = MIGRATIONS[current]
                    conn.execute(f"SET LOCAL search_path TO {SCHEMA}")
                    for statement in migration.statements:
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_migrations VALUES (%s, %s, now(), current_user)",
                                 [migration.version, migration.name])
                applied.append(migration.version)
                migration = None
    except psycopg.Error as err:
        primary = err.diag.message_primary or ""
        if isinstance(err, errors.InsufficientPrivilege):
            if "create role" in primary:
                raise PgStateError(f"The role {APP_ROLE} does not exist and the migrating login may not create it: "
                                   f"as a superuser run CREATE ROLE {APP_ROLE} NOLOGIN, then migrate again.") from err
            raise PgStateError(f"The login '{conninfo_to_dict(dsn).get('user', '')}' may not change the state "
                               f"database {where} ({primary}): migrate as the role that owns it, --dsn "
                               "postgresql://OWNER@HOST/DATABASE.") from err
        if migration is not None and err.sqlstate:
            raise PgStateError(f"Migration {migration.version} ({migration.name}) of the state database {where} "
                               f"failed and was rolled back: {err.diag.message_primary or err}.") from err
        raise _sentence(err, where) from err


# -------------------------------------------------------------------------- the app's connection

def _configure(conn: psycopg.Connection) -> None:
    # The app acts as the group role whatever else its login may do (even a superuser's
    # login): the policies apply.
    conn.execute(f"SET ROLE {APP_ROLE}")
    conn.execute(f"SET search_path TO {SCHEMA}")
    # A transaction left open (a stuck rerun) would hold its locks, the audit log's among
    # them, and stall every other server's writes: the server ends it instead.
    conn.execute("SET idle_in_transaction_session_timeout = '60s'")


class PgState:
    """The state database as the app uses it: a pool of connections acting as `caseconf_app`."""

    def __init__(self, dsn: str, *, max_size: int = 8, timeout: float = 10.0):
        self.where = describe(dsn)
        self._check(dsn, timeout)
        self._pool = ConnectionPool(dsn, min_size=1, max_size=max_size, timeout=timeout, open=False,
                                    kwargs={"autocommit": True, "connect_timeout": max(1, int(timeout))},
                                    configure=_configure, check=ConnectionPool.check_connection,
                                    name="caseconf-state")
        try:
            self._pool.open(wait=True, timeout=timeout)
        except PoolTimeout as err:
            self._pool.close()
            raise _sentence(err, self.where) from err

    def _check(self, dsn: str, timeout: float) -> None:
        """Refuse a database this software cannot use, and a login that cannot act as the app."""
        try:
            with _connect(dsn, timeout, autocommit=True) as conn:
                user = conn.info.user
                try:
                    _configure(conn)
                except errors.InsufficientPrivilege:
                    raise PgStateError(f"The login '{user}' may not act as {APP_ROLE}: as the database's owner run "
                                       f"GRANT {APP_ROLE} TO {user}.") from None
                current = conn.execute("SELECT version FROM schema_info").fetchone()[0]
        except psycopg.Error as err:
            raise _sentence(err, self.where) from err
        if current > SCHEMA_VERSION:
            raise _newer(current, self.where)
        if current < SCHEMA_VERSION:
            raise PgStateError(f"The state database {self.where} is at schema {current}; this software needs "
                               f"{SCHEMA_VERSION}: run 'python -m core migrate' as the database's owner.")

    @contextmanager
    def transaction(self, scope: Scope | PgScope, clients: Iterable[str] | None = None
                    ) -> Iterator[psycopg.Cursor]:
        """A cursor inside BEGIN ... COMMIT that reads and writes as `scope` (with the
        visible `clients` unless the scope sees every client); any exception rolls back."""
        settings = (scope if isinstance(scope, PgScope) else PgScope.of(scope, clients)).settings()
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                if cur.execute(_SET_SCOPE, settings).fetchone()[-1] != APP_ROLE:
                    raise PgStateError(f"A connection to {self.where} no longer acts as {APP_ROLE}; nothing was "
                                       "read or written.")
                yield cur
        except psycopg.Error as err:
            raise _sentence(err, self.where) from err

    # -- short helpers, each one transaction
    def rows(self, query: str, params=None, *, scope: Scope | PgScope,
             clients: Iterable[str] | None = None) -> list[dict[str, Any]]:
        with self.transaction(scope, clients) as cur:
            cur.execute(query, params)
            names = [c.name for c in cur.description or ()]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    def frame(self, query: str, params=None, *, scope: Scope | PgScope,
              clients: Iterable[str] | None = None) -> pl.DataFrame:
        with self.transaction(scope, clients) as cur:
            cur.execute(query, params)
            names = [c.name for c in cur.description or ()]
            return pl.DataFrame(cur.fetchall(), schema=names, orient="row", infer_schema_length=None)

    def scalar(self, query: str, params=None, *, scope: Scope | PgScope, clients: Iterable[str] | None = None):
        with self.transaction(scope, clients) as cur:
            row = cur.execute(query, params).fetchone()
            return row[0] if row else None

    def execute(self, query: str, params=None, *, scope: Scope | PgScope,
                clients: Iterable[str] | None = None) -> int:
        """Run one write; how many rows it changed."""
        with self.transaction(scope, clients) as cur:
            return cur.execute(query, params).rowcount

    def version(self) -> int:
        try:
            with self._pool.connection() as conn:
                return conn.execute("SELECT version FROM schema_info").fetchone()[0]
        except psycopg.Error as err:
            raise _sentence(err, self.where) from err

    def close(self) -> None:
        self._pool.close()


def next_id(cur: psycopg.Cursor, sequence: str) -> int:
    """The next batch, conference, entry or exercise id."""
    if sequence not in SEQUENCES:
        raise ValueError(f"unknown sequence {sequence!r}")
    return cur.execute("SELECT nextval(%s)", [sequence]).fetchone()[0]
