"""The data contract's tables in one place (CONTRACT.md says it for people; this module for
the code): their names, keys, columns, kinds and free-text columns.

The store builds its tables from it, validation its schemas and casts, and the readers,
the importer and the access rules their table lists; a new column or table is added here
(and to CONTRACT.md, extending, never breaking) and nowhere else by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

# What a cell of each kind is read as, and stored as (a date is never stored).
KINDS = ("id", "text", "int", "number", "bool", "date")
SQL_TYPES = {"id": "VARCHAR", "text": "VARCHAR", "int": "INTEGER", "number": "DOUBLE", "bool": "BOOLEAN"}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str                # id, text, int, number, bool, date
    required: bool = False   # the column must exist and every value must be present
    default: object = None   # used when the column is absent or the cell empty
    free_text: bool = False  # scanned by the privacy guard before anything is stored
    stored: bool = True      # False: read from an export, never stored (session_date)
    added: bool = False      # stored, but added after the first schema (by its own migration)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r} for column {self.name}")

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.kind]


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]     # the natural key: what an import upserts by
    columns: tuple[Column, ...]

    @property
    def stored(self) -> dict[str, str]:
        """Stored column -> SQL type, in the store's column order."""
        return {c.name: c.sql_type for c in self.columns if c.stored}

    @property
    def free_text(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.free_text)

    @property
    def added(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.added)

    @property
    def points_at_session(self) -> bool:
        """Its rows belong to a session (and so to the session's client and therapist)."""
        return self.name != "sessions" and self.key[:2] == SESSION_KEY


SESSION_KEY = ("client_id", "session_number")
_KEY_COLUMNS = (Column("client_id", "id", True), Column("session_number", "int", True))

# In CONTRACT.md's order. Columns in the store's order (a stored table keeps the order its
# first schema gave it).
_TABLES = (
    Table("sessions", SESSION_KEY, (
        *_KEY_COLUMNS, Column("therapist_id", "id", True), Column("days_since_intake", "int"),
        Column("session_date", "date", stored=False),
        Column("modality", "text", default="individual"), Column("attended", "bool", default=True),
        # Extensions (CONTRACT.md).
        Column("attendance", "text", added=True), Column("feedback_discussed", "bool", added=True))),
    Table("ratings", (*SESSION_KEY, "instrument", "scale", "rater"), (
        *_KEY_COLUMNS, Column("instrument", "text", True), Column("scale", "text", default="total"),
        Column("rater", "text", default="client"), Column("score", "number", True))),
    Table("themes", (*SESSION_KEY, "kind", "code", "rater"), (
        *_KEY_COLUMNS, Column("kind", "text", True), Column("code", "text", True),
        Column("rater", "text", default="therapist"), Column("intensity", "int"),
        Column("note", "text", free_text=True))),
    Table("barriers", (*SESSION_KEY, "category"), (
        *_KEY_COLUMNS, Column("category", "text", True), Column("severity", "int", True),
        Column("addressed", "bool", default=False), Column("note", "text", True, free_text=True))),
    Table("events", (*SESSION_KEY, "event", "rater"), (
        *_KEY_COLUMNS, Column("event", "text", True), Column("rater", "text", default="therapist"),
        Column("note", "text", free_text=True))),
    Table("therapists", ("therapist_id",), (
        Column("therapist_id", "id", True), Column("supervision_group", "text", free_text=True),
        Column("level", "text"))),
)

CONTRACT: dict[str, Table] = {t.name: t for t in _TABLES}
TABLES: tuple[str, ...] = tuple(CONTRACT)   # CONTRACT.md's order; "sessions" is required
REQUIRED_TABLE = "sessions"
# The roster first (sessions name its therapists), then sessions, then what points at them.
IMPORT_ORDER: tuple[str, ...] = ("therapists", "sessions",
                                 *(t.name for t in _TABLES if t.points_at_session))
SESSION_TABLES: tuple[str, ...] = tuple(t.name for t in _TABLES if t.points_at_session)
KEYS: dict[str, tuple[str, ...]] = {t.name: t.key for t in _TABLES}
FREE_TEXT: dict[str, tuple[str, ...]] = {t.name: t.free_text for t in _TABLES if t.free_text}
