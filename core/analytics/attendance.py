"""Risk items and attendance: what a supervisor must never miss, and who is slipping away.

- Risk items (catalog `risk_items` of an instrument, e.g. PHQ-9 item 9): item-level
  ratings (`scale` = item9, the contract's extension), each answer checked against the
  item's rule. A positive answer calls for a risk assessment; an answer of 0 is no safety
  (the catalog's caveat says why), so the flag never claims one.
- Attendance: `sessions.attendance` (attended, no_show, cancelled_late, cancelled; without
  it, attended = false reads as a no-show, the contract). Missed sessions (no-shows and
  late cancellations) within the triage's lookback, and lost contact: sessions are still
  booked but none attended for more than `[attendance] lost_contact_days`.

Every function is one bulk query over the clients in scope.
"""

from __future__ import annotations

import polars as pl

from ..access import Scope
from ..catalog import Catalog
from .sql import bound_table, client_clause

RISK_SCHEMA = {"client_id": pl.String, "instrument": pl.String, "item": pl.String, "session_number": pl.Int32,
               "score": pl.Float64, "alert": pl.Boolean, "text": pl.String, "rule": pl.String, "value": pl.Float64,
               "source": pl.String, "caveat": pl.String}


def risk_rows(catalog: Catalog) -> list[tuple]:
    """(instrument, item, text, rule, value, source, caveat) of every risk item in the catalog."""
    return [(key, item, spec.text, spec.rule, spec.value, spec.source, spec.caveat)
            for key, inst in catalog.instruments.items() for item, spec in inst.risk_items.items()]


def risk_answers(store, catalog: Catalog, scope: Scope, clients=None) -> pl.DataFrame:
    """Every client-rated answer to a risk item: client_id, instrument, item, session_number,
    score, alert (the item's rule met), text, rule, value, source, caveat; latest first."""
    rows = risk_rows(catalog)
    if not rows:
        return pl.DataFrame(schema=RISK_SCHEMA)
    bind: dict = {}
    items = bound_table("risk_items", ["instrument", "item", "text", "rule", "value", "source", "caveat"],
                        ["VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "DOUBLE", "VARCHAR", "VARCHAR"], rows, bind)
    sql = f"""
    WITH {items}
    SELECT r.client_id, r.instrument, r.scale AS item, r.session_number::INTEGER AS session_number, r.score,
           CASE i.rule WHEN 'gt' THEN r.score > i.value WHEN 'ge' THEN r.score >= i.value
                       WHEN 'lt' THEN r.score < i.value ELSE r.score <= i.value END AS alert,
           i.text, i.rule, i.value, i.source, i.caveat
    FROM ratings r JOIN risk_items i ON i.instrument = r.instrument AND i.item = r.scale
    WHERE r.rater = 'client' AND r.score IS NOT NULL{client_clause('r.client_id', clients, bind)}
    ORDER BY r.client_id, r.session_number DESC, r.instrument, r.scale
    """
    return store.query(sql, bind, scope=scope).cast(RISK_SCHEMA)


MISSED = ("no_show", "cancelled_late")  # what the `attendance` flag counts; a timely cancellation is not missed

ATTENDANCE_SCHEMA = {"client_id": pl.String, "attended": pl.UInt32, "no_show": pl.UInt32,
                     "cancelled_late": pl.UInt32, "cancelled": pl.UInt32,
                     "missed_recent": pl.UInt32, "missed_sessions": pl.List(pl.Int32),
                     "last_session": pl.Int32, "last_attended_session": pl.Int32, "last_attended_day": pl.Int32,
                     "last_booked_day": pl.Int32, "booked_since": pl.UInt32}


def attendance(store, scope: Scope, clients=None, lookback: int = 6) -> pl.DataFrame:
    """Per client: sessions by kind (attended, no_show, cancelled_late, cancelled), the
    missed ones (no-shows and late cancellations) within the last `lookback` sessions, the
    last attended session and its day, the last booked day and the sessions booked since
    the last attended one."""
    bind: dict = {"lookback": lookback, "missed": list(MISSED)}
    # One pass over the sessions: the client's last session and last attended session come
    # with each row (one window), so the counts after them are plain filtered aggregates,
    # not subqueries that read the sessions again for every client.
    sql = f"""
    WITH s AS (
        SELECT client_id, session_number, days_since_intake AS day, attended IS DISTINCT FROM false AS came,
               coalesce(attendance, CASE WHEN attended IS DISTINCT FROM false THEN 'attended' ELSE 'no_show' END)
                   AS kind,
               max(session_number) OVER w AS last_session,
               max(session_number) FILTER (WHERE attended IS DISTINCT FROM false) OVER w AS last_came
        FROM sessions WHERE TRUE{client_clause('client_id', clients, bind)}
        WINDOW w AS (PARTITION BY client_id))
    SELECT client_id, any_value(last_session) AS last_session,
           count(*) FILTER (WHERE came) AS attended, count(*) FILTER (WHERE kind = 'no_show') AS no_show,
           count(*) FILTER (WHERE kind = 'cancelled_late') AS cancelled_late,
           count(*) FILTER (WHERE kind = 'cancelled') AS cancelled,
           count(*) FILTER (WHERE list_contains($missed, kind) AND session_number > last_session - $lookback)
               AS missed_recent,
           coalesce(list(session_number ORDER BY session_number)
                    FILTER (WHERE list_contains($missed, kind) AND session_number > last_session - $lookback),
                    []) AS missed_sessions,
           max(session_number) FILTER (WHERE came) AS last_attended_session,
           max(day) AS last_booked_day,
           max(day) FILTER (WHERE came) AS last_attended_day,
           count(*) FILTER (WHERE session_number > coalesce(last_came, -1)) AS booked_since
    FROM s GROUP BY client_id ORDER BY client_id
    """
    frame = store.query(sql, bind, scope=scope)
    return frame.select(list(ATTENDANCE_SCHEMA)).cast(ATTENDANCE_SCHEMA)
