"""The audit log in the state database: the same hash chain as core/audit.py.

The app role appends but cannot read the log unless the scope is an admin's, so the
chain's tail comes from `audit_tail()`, which also makes appends from several servers
take turns (its lock lasts until the appending transaction ends). An entry is written in
the transaction of the change it describes: both commit, or neither.
"""

from __future__ import annotations

import datetime as dt

import psycopg

from .. import audit
from ..access import AccessDenied, Scope
from .state import PgScope, PgState


def append_audit(cur: psycopg.Cursor, scope: Scope, action: str, target: str = "", *, outcome: str = "ok",
                 session_id: str = "") -> int:
    """Append one entry inside the current transaction (whose scope must be `scope`'s); its seq."""
    if action not in audit.ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    seq, prev_hash = cur.execute("SELECT seq, hash FROM audit_tail()").fetchone()
    seq, prev_hash = (seq + 1, prev_hash) if seq is not None else (1, audit.GENESIS)
    # Microseconds, UTC, written as text in the hash so that reading it back verifies.
    at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    entry = {"seq": seq, "at": at.isoformat(sep=" "), "user_id": scope.user, "role": scope.role,
             "scope": scope.describe(), "action": action, "target": str(target)[:500], "session_id": session_id,
             "outcome": outcome}
    cur.execute("INSERT INTO audit_log VALUES (%s, %s::timestamp AT TIME ZONE 'UTC', %s, %s, %s, %s, %s, %s, %s, "
                "%s, %s)", [seq, entry["at"], entry["user_id"], entry["role"], entry["scope"], action,
                            entry["target"], session_id, outcome, prev_hash, audit._digest(prev_hash, entry)])
    return seq


def verify_audit(state: PgState, scope: Scope | PgScope) -> tuple[bool, str]:
    """(True, summary) when every entry's hash follows from the one before; else (False, a
    sentence naming the first entry that does not verify). An admin's read."""
    if scope.role not in ("admin", "system"):
        raise AccessDenied("Only an admin may read the audit log.")
    with state.transaction(scope) as cur:
        cur.execute("SELECT seq, to_char(logged_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS at, user_id, "
                    "role, scope, action, target, session_id, outcome, prev_hash, hash FROM audit_log ORDER BY seq")
        names = [c.name for c in cur.description]
        rows = [dict(zip(names, row)) for row in cur]
    prev_hash, expected_seq = audit.GENESIS, 1
    for row in rows:
        if row["seq"] != expected_seq:
            return False, (f"Entry {expected_seq} is missing: the log goes on at entry {row['seq']}. "
                           "Entries were removed.")
        if row["prev_hash"] != prev_hash or audit._digest(prev_hash, audit._as_written(row)) != row["hash"]:
            return False, (f"Entry {row['seq']} ({row['action']} by {row['user_id']} at {row['at']} UTC) does not "
                           "verify: it, or the entry before it, was changed after it was written.")
        prev_hash, expected_seq = row["hash"], expected_seq + 1
    return True, f"The audit log's {len(rows)} entries verify."
