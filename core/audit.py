"""The audit log: who did what, when, in which scope, with what outcome.

Append-only and hash-chained: each entry's hash is the SHA-256 of the previous entry's
hash and the entry's own fields, so an entry edited, removed or inserted afterwards breaks
the chain from there on (`verify`). The app only ever appends; it has no function that
updates or deletes an entry. An entry names ids (a client, a conference, an entry), never
the text of a note.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import polars as pl

from .access import AccessDenied, Scope
from .store import Store

GENESIS = "0" * 64
ACTIONS = ("sign_in", "sign_out", "denied", "view_case", "download", "import", "note_write", "note_delete",
           "purge", "user_change", "conference_new", "agenda_edit", "calibration_answer", "demo_load")
FIELDS = ("seq", "at", "user_id", "role", "scope", "action", "target", "session_id", "outcome")


def _digest(prev_hash: str, entry: dict) -> str:
    canonical = json.dumps([prev_hash] + [str(entry[name]) for name in FIELDS], ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def record(store: Store, scope: Scope, action: str, target: str = "", *, outcome: str = "ok",
           session_id: str = "", cur=None) -> None:
    """Append one entry. Inside a write's transaction (`cur`), the entry commits or rolls
    back with the write it describes."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if cur is None:
        with store.transaction(scope) as own:
            _append(own, scope, action, target, outcome, session_id)
    else:
        _append(cur, scope, action, target, outcome, session_id)


def _append(cur, scope: Scope, action: str, target: str, outcome: str, session_id: str) -> int:
    # In the state database the log is not readable by the app's role; its tail comes from
    # audit_tail(), whose lock makes appends from several servers take turns.
    tail = ("SELECT seq, hash FROM audit_tail() WHERE seq IS NOT NULL"
            if getattr(cur, "dialect", "duckdb") == "postgres" else
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    last = cur.execute(tail).fetchall()
    seq, prev_hash = (last[0][0] + 1, last[0][1]) if last else (1, GENESIS)
    # Microseconds, UTC, written as text in the hash so that reading it back verifies.
    at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    entry = {"seq": seq, "at": at.isoformat(sep=" "), "user_id": scope.user, "role": scope.role,
             "scope": scope.describe(), "action": action, "target": str(target)[:500], "session_id": session_id,
             "outcome": outcome}
    cur.execute("INSERT INTO audit_log VALUES (?, ?::TIMESTAMP AT TIME ZONE 'UTC', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [seq, entry["at"], entry["user_id"], entry["role"], entry["scope"], action, entry["target"],
                 session_id, outcome, prev_hash, _digest(prev_hash, entry)])
    return seq


def _entries(store: Store, scope: Scope, where: str = "", params: dict | None = None) -> pl.DataFrame:
    if not scope.is_admin:
        raise AccessDenied("Only an admin may read the audit log.")
    found = store.query(
        "SELECT seq, logged_at, user_id, role, scope, action, "
        f"target, session_id, outcome, prev_hash, hash FROM audit_log {where} ORDER BY seq", params, scope=scope)
    # The time as `_append` wrote it: UTC, to the microsecond.
    return found.select("seq", pl.col("logged_at").dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S%.6f")
                        .alias("at"), *found.columns[2:])


def entries(store: Store, scope: Scope, *, since: dt.date | None = None, user: str | None = None,
            action: str | None = None, limit: int | None = None) -> pl.DataFrame:
    """The log, oldest first, filtered: `time` (UTC), user, role, scope, action, target, outcome."""
    conditions, params = [], {}
    if since:
        conditions.append("logged_at >= $since::TIMESTAMP AT TIME ZONE 'UTC'")
        params["since"] = since.isoformat()
    if user:
        conditions.append("user_id = $user")
        params["user"] = user
    if action:
        conditions.append("action = $action")
        params["action"] = action
    where = "WHERE " + " AND ".join(conditions) if conditions else ""
    found = _entries(store, scope, where, params or None)
    found = found.select("seq", pl.col("at").alias("time"), pl.col("user_id").alias("user"), "role", "scope",
                         "action", "target", "outcome", "session_id")
    return found.tail(limit) if limit else found


def verify(store: Store, scope: Scope) -> tuple[bool, str]:
    """(True, summary) when every entry's hash follows from the one before; else (False, a
    sentence naming the first entry that does not verify)."""
    return verify_rows(_entries(store, scope).to_dicts())


def verify_rows(rows: list[dict]) -> tuple[bool, str]:
    """The chain check of `verify` over entries read as `_entries` reads them, oldest first."""
    prev_hash, expected_seq = GENESIS, 1
    for row in rows:
        if row["seq"] != expected_seq:
            return False, (f"Entry {expected_seq} is missing: the log goes on at entry {row['seq']}. "
                           "Entries were removed.")
        if row["prev_hash"] != prev_hash or _digest(prev_hash, _as_written(row)) != row["hash"]:
            return False, (f"Entry {row['seq']} ({row['action']} by {row['user_id']} at {row['at']} UTC) does not "
                           "verify: it, or the entry before it, was changed after it was written.")
        prev_hash, expected_seq = row["hash"], expected_seq + 1
    if len(rows) == 1:
        return True, "The audit log's one entry verifies."
    return True, f"The audit log's {len(rows):,} entries verify." if rows else "The audit log is empty."


def _as_written(row: dict) -> dict:
    """The entry as `_append` hashed it (the time in Python's isoformat)."""
    at = dt.datetime.strptime(row["at"], "%Y-%m-%d %H:%M:%S.%f")
    return dict(row, at=at.isoformat(sep=" "))
