"""The process the founding brief names beside the alliance: whether a session's scores were
discussed with the client (`sessions.feedback_discussed`, the contract's extension: the
active part of PCOMS, Duncan's adherence scale) and the client's rating of the therapist's
empathy (instruments of catalog kind "empathy", e.g. the CARE measure, Mercer et al. 2004).

Both are shown on the case's session axis; neither raises a flag. Each function is one bulk
query over the clients in scope.
"""

from __future__ import annotations

import polars as pl

from ..access import Scope
from ..catalog import Catalog
from ..psychometrics import total_from_items
from .sql import client_clause

FEEDBACK_SCHEMA = {"client_id": pl.String, "session_number": pl.Int32, "feedback_discussed": pl.Boolean}
FEEDBACK_KINDS = ("discussed", "not_discussed", "not_recorded")
EMPATHY_SCHEMA = {"client_id": pl.String, "instrument": pl.String, "session_number": pl.Int32, "score": pl.Float64,
                  "answered": pl.Int32, "items": pl.Int32}


def feedback_sessions(store, scope: Scope, clients=None) -> pl.DataFrame:
    """Every attended session: client_id, session_number, feedback_discussed (true, false, or
    null when not recorded). A missed session has no feedback to give."""
    bind: dict = {}
    sql = f"""
    SELECT client_id, session_number::INTEGER AS session_number, feedback_discussed
    FROM sessions WHERE attended IS DISTINCT FROM false{client_clause('client_id', clients, bind)}
    ORDER BY client_id, session_number"""
    return store.query(sql, bind, scope=scope).cast(FEEDBACK_SCHEMA)


def feedback_counts(frame: pl.DataFrame) -> dict[str, dict[str, int]]:
    """Per client, attended sessions by feedback: discussed, not_discussed, not_recorded."""
    counts = frame.group_by("client_id").agg(
        discussed=pl.col("feedback_discussed").eq(True).sum(),
        not_discussed=pl.col("feedback_discussed").eq(False).sum(),
        not_recorded=pl.col("feedback_discussed").is_null().sum())
    return {r.pop("client_id"): {k: int(r[k]) for k in FEEDBACK_KINDS} for r in counts.iter_rows(named=True)}


def empathy_ratings(store, catalog: Catalog, scope: Scope, clients=None, *, scored_only: bool = True) -> pl.DataFrame:
    """Client-rated totals of the catalog's empathy instruments: client_id, instrument,
    session_number, score, answered, items; in session order.

    A total given in the file stands as given (answered and items are null). A session with
    item answers and no total is scored by the instrument's `total_from_items` rule (the
    CARE: each missing answer, "does not apply" included, replaced by the mean of the
    answered items; more than 2 missing: no total): answered and items say from how many
    answers. A session the rule cannot score has a null score and is returned only when
    `scored_only` is False."""
    instruments = catalog.instruments_of("empathy")
    if not instruments:
        return pl.DataFrame(schema=EMPATHY_SCHEMA)
    bind: dict = {"keys": list(instruments)}
    # One row per rated session: the given total, and how many items were answered and their
    # sum (the item scales are exactly item1 ... itemN: the import checks them).
    sql = f"""
    SELECT client_id, instrument, session_number::INTEGER AS session_number,
           max(score) FILTER (WHERE scale = 'total') AS given,
           count(*) FILTER (WHERE scale LIKE 'item%') AS answered,
           sum(score) FILTER (WHERE scale LIKE 'item%') AS item_sum
    FROM ratings WHERE list_contains($keys, instrument) AND rater = 'client'
      AND score IS NOT NULL{client_clause('client_id', clients, bind)}
    GROUP BY ALL
    ORDER BY client_id, instrument, session_number"""
    rows = []
    for r in store.query(sql, bind, scope=scope).iter_rows(named=True):
        rule, items = instruments[r["instrument"]].total_from_items, instruments[r["instrument"]].items
        if r["given"] is not None:
            score, answered, count = r["given"], None, None
        elif rule is None or items is None:
            continue  # items without a scoring rule form no total
        else:
            count, answered = items.count, int(r["answered"])
            score = total_from_items(r["item_sum"], answered, count, rule.max_missing)
        if score is None and scored_only:
            continue
        rows.append((r["client_id"], r["instrument"], r["session_number"], score, answered, count))
    return pl.DataFrame(rows, schema=EMPATHY_SCHEMA, orient="row")
