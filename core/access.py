"""Who may see which cases: the one choke point every read goes through.

A reader's scope names the therapists whose cases may be seen (None: every case).
`scoped_sql` shadows the data tables with scoped common table expressions, so a query
written against plain table names (`sessions`, `ratings`, ...) sees only the rows in
scope; no page, report or command filters by hand. Access control (users, groups,
roles) will decide the scope; this module only applies it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Tables whose rows belong to a session, and so to the session's therapist.
SESSION_TABLES = ("ratings", "themes", "barriers", "events")
# Conference tables whose rows name a client: seen when the client has a session in scope.
CLIENT_TABLES = ("agenda_items", "conference_entries", "conference_snapshots", "calibration_exercises")


@dataclass(frozen=True)
class Scope:
    therapist_ids: frozenset[str] | None = None
    label: str = "every case"

    @classmethod
    def therapists(cls, ids, label: str | None = None) -> "Scope":
        ids = frozenset(ids)
        return cls(ids, label or f"{len(ids)} therapist(s)")

    @property
    def is_everything(self) -> bool:
        return self.therapist_ids is None


EVERYTHING = Scope()

_WITH = re.compile(r"^\s*with\s+(recursive\s+)?", re.IGNORECASE)


def _literal_list(values) -> str:
    quoted = ", ".join("'" + str(v).replace("'", "''") + "'" for v in sorted(values))
    return quoted or "NULL"


def scoped_sql(sql: str, scope: Scope) -> str:
    """Return `sql` so that it reads only what `scope` may see."""
    if scope.is_everything:
        return sql
    ids = _literal_list(scope.therapist_ids)
    ctes = [f"sessions AS (SELECT * FROM main.sessions WHERE therapist_id IN ({ids}))"]
    for table in SESSION_TABLES:
        ctes.append(
            f"{table} AS (SELECT t.* FROM main.{table} t SEMI JOIN sessions s "
            f"ON t.client_id = s.client_id AND t.session_number = s.session_number)")
    ctes.append(f"therapists AS (SELECT * FROM main.therapists WHERE therapist_id IN ({ids}))")
    for table in CLIENT_TABLES:
        ctes.append(f"{table} AS (SELECT t.* FROM main.{table} t WHERE t.client_id IN "
                    f"(SELECT client_id FROM sessions))")
    ctes.append("calibration_answers AS (SELECT a.* FROM main.calibration_answers a "
                "SEMI JOIN calibration_exercises e USING (exercise_id))")
    prefix = ",\n".join(ctes)
    match = _WITH.match(sql)
    if match:
        recursive = "RECURSIVE " if match.group(1) else ""
        return f"WITH {recursive}{prefix},\n{sql[match.end():]}"
    return f"WITH {prefix}\n{sql}"
