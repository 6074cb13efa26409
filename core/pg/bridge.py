"""The store's state side on PostgreSQL (server mode), with the DuckDB state file's interface.

The code that reads and writes the state (conferences, notes, calibration, users, the
audit log, import batches) is written once, in SQL both engines run, with DuckDB's
placeholders (`?` and `$name`); `PgSide` gives it the same cursor as the state file: a
cursor whose `execute` takes those placeholders and returns itself, inside a transaction
that carries the reader's scope, so that the database's row-level policies apply to every
statement. Results come back as DuckDB gives them: JSON as text, arrays as lists, and
query results as typed polars frames (typed even when empty).
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterable, Iterator

import polars as pl
import psycopg
from psycopg.types.string import TextLoader

from ..access import Scope
from .state import PgState, PgStateError, _sentence

# DuckDB's placeholders, outside quoted text, and every percent sign (psycopg reads % anywhere).
_TOKENS = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|\?|\$([A-Za-z_][A-Za-z0-9_]*)|%""")


def to_psycopg(sql: str) -> str:
    """`sql` with `?` as %s and `$name` as %(name)s; a literal % doubled."""
    def swap(match: re.Match) -> str:
        token = match.group(0)
        if token[0] in "'\"":
            return token.replace("%", "%%")
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        return f"%({match.group(1)})s"
    return _TOKENS.sub(swap, sql)


# PostgreSQL type oids -> the polars type DuckDB's frames would have.
_TYPES = {16: pl.Boolean, 20: pl.Int64, 21: pl.Int16, 23: pl.Int32, 25: pl.String, 1043: pl.String,
          700: pl.Float32, 701: pl.Float64, 1700: pl.Float64, 1082: pl.Date, 1114: pl.Datetime("us"),
          1184: pl.Datetime("us", "UTC"), 114: pl.String, 3802: pl.String, 1009: pl.List(pl.String),
          1015: pl.List(pl.String), 1007: pl.List(pl.Int32), 1016: pl.List(pl.Int64), 19: pl.String}


class PgCursor:
    """A psycopg cursor that speaks the state file's dialect of placeholders."""

    dialect = "postgres"

    def __init__(self, cur: psycopg.Cursor):
        self._cur = cur
        for oid in ("json", "jsonb"):  # as text, as DuckDB returns JSON
            cur.adapters.register_loader(oid, TextLoader)

    def execute(self, sql: str, params=None) -> "PgCursor":
        # Without parameters psycopg reads the text as it is (a % is a %).
        self._cur.execute(to_psycopg(sql) if params else sql, params or None)
        return self

    def executemany(self, sql: str, rows: Iterable) -> "PgCursor":
        self._cur.executemany(to_psycopg(sql), list(rows))
        return self

    def fetchall(self) -> list[tuple]:
        return self._cur.fetchall() if self._cur.description else []

    def fetchone(self):
        return self._cur.fetchone() if self._cur.description else None

    @property
    def description(self):
        return self._cur.description

    @property
    def raw(self) -> psycopg.Cursor:
        """The psycopg cursor itself (for COPY)."""
        return self._cur

    def pl(self) -> pl.DataFrame:
        columns = self._cur.description or ()
        rows = self._cur.fetchall() if columns else []
        names = [c.name for c in columns]
        schema = {c.name: _TYPES.get(c.type_code) for c in columns}
        if all(kind is not None for kind in schema.values()):
            return pl.DataFrame(rows, schema=schema, orient="row")
        frame = pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)
        return frame.cast({n: k for n, k in schema.items() if k is not None}, strict=False)

    def close(self) -> None:
        pass


class PgSide:
    """The state in PostgreSQL, for a Store in server mode."""

    def __init__(self, dsn: str, *, max_size: int = 8, timeout: float = 10.0):
        self.state = PgState(dsn, max_size=max_size, timeout=timeout)
        self.where = self.state.where

    @contextmanager
    def transaction(self, scope: Scope, clients: Iterable[str] | None = None) -> Iterator[PgCursor]:
        """A cursor inside one transaction that reads and writes as `scope`; any exception
        rolls back, and a database error comes out as a sentence (PgStateError)."""
        try:
            with self.state.transaction(scope, clients) as cur:
                yield PgCursor(cur)
        except psycopg.Error as err:  # raised by the code inside, before the state's own handler saw it
            raise _sentence(err, self.where) from err

    def frame(self, sql: str, params, *, scope: Scope, clients: Iterable[str] | None) -> pl.DataFrame:
        with self.transaction(scope, clients) as cur:
            return cur.execute(sql, params).pl()

    def scalar(self, sql: str, params, *, scope: Scope, clients: Iterable[str] | None):
        with self.transaction(scope, clients) as cur:
            row = cur.execute(sql, params).fetchone()
            return row[0] if row else None

    def version(self) -> int:
        return self.state.version()

    def close(self) -> None:
        self.state.close()


__all__ = ["PgCursor", "PgSide", "PgStateError", "to_psycopg"]
