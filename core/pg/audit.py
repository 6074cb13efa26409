"""The audit log in the state database: the same hash chain as core/audit.py.

The app role appends but cannot read the log unless the scope is an admin's, so the
chain's tail comes from `audit_tail()`, which also makes appends from several servers
take turns (its lock lasts until the appending transaction ends). An entry is written in
the transaction of the change it describes: both commit, or neither.
"""

from __future__ import annotations

import psycopg

from .. import audit
from ..access import AccessDenied, Scope
from .bridge import PgCursor
from .state import PgScope, PgState


def append_audit(cur: psycopg.Cursor, scope: Scope, action: str, target: str = "", *, outcome: str = "ok",
                 session_id: str = "") -> int:
    """Append one entry inside the current transaction (whose scope must be `scope`'s); its seq."""
    if action not in audit.ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    return audit._append(PgCursor(cur), scope, action, target, outcome, session_id)


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
    return audit.verify_rows(rows)
