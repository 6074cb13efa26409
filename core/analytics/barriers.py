"""Communication barriers: how often, how severe, whether addressed, and what they do to the alliance.

A barrier row is one category in one session (category, severity, addressed, note); see
DOMAIN.md, "Communication barriers". Every function runs one DuckDB query through
`Store.query` for the whole scope and returns a polars frame with the columns listed in
its docstring. A barrier whose `addressed` is unknown (null) is not counted as
unaddressed.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import polars as pl

from ..access import Scope
from ..catalog import Catalog
from ..store import Store
from .sql import CODEBOOK_CTE, MAIN_THERAPIST_CTE, client_filter

CODEBOOK = "barrier_categories"


def _codebook(catalog: Catalog) -> list[dict]:
    return [{"code": code, "label": label, "code_order": i}
            for i, (code, label) in enumerate(catalog.codebooks[CODEBOOK].codes.items())]


_COUNTS = """count(*) AS count,
           count(*) FILTER (WHERE b.addressed = false) AS unaddressed,
           count(*) FILTER (WHERE b.addressed = false) / count(*) AS share_unaddressed,
           avg(b.severity) AS mean_severity, max(b.severity) AS max_severity"""


def barrier_summary(store: Store, catalog: Catalog, scope: Scope,
                    clients: Sequence[str] | None = None) -> pl.DataFrame:
    """Barriers per client and category.

    Columns: client_id, therapist_id, category, label, count (sessions with the
    barrier), unaddressed (of those, not addressed), share_unaddressed (0-1),
    mean_severity, max_severity, last_session. Sorted by client, then codebook order.
    """
    params = {"codebook": _codebook(catalog)}
    sql = f"""WITH {CODEBOOK_CTE}, {MAIN_THERAPIST_CTE},
    per_client AS (
        SELECT b.client_id, b.category, {_COUNTS}, max(b.session_number) AS last_session
        FROM barriers b WHERE {client_filter(clients, params, "b.client_id")}
        GROUP BY ALL)
    SELECT p.client_id, m.therapist_id, p.category, coalesce(cb.label, p.category) AS label,
           p.* EXCLUDE (client_id, category)
    FROM per_client p
    LEFT JOIN main_therapist m USING (client_id)
    LEFT JOIN codebook cb ON cb.code = p.category
    ORDER BY p.client_id, cb.code_order NULLS LAST, p.category"""
    return store.query(sql, params, scope=scope)


def barrier_caseload(store: Store, catalog: Catalog, scope: Scope) -> pl.DataFrame:
    """Barriers per category across the whole scope.

    Columns: category, label, clients (clients with the barrier at least once),
    share_of_clients (of all clients in scope with a session), count, unaddressed,
    share_unaddressed, mean_severity, max_severity. Sorted by codebook order.
    """
    params = {"codebook": _codebook(catalog)}
    sql = f"""WITH {CODEBOOK_CTE},
    per_category AS (
        SELECT b.category, count(DISTINCT b.client_id) AS clients, {_COUNTS}
        FROM barriers b GROUP BY ALL)
    SELECT p.category, coalesce(cb.label, p.category) AS label, p.clients,
           p.clients / (SELECT count(DISTINCT client_id) FROM sessions) AS share_of_clients,
           p.* EXCLUDE (category, clients)
    FROM per_category p LEFT JOIN codebook cb ON cb.code = p.category
    ORDER BY cb.code_order NULLS LAST, p.category"""
    return store.query(sql, params, scope=scope)


class AllianceEffect(NamedTuple):
    """Alliance change in sessions with a barrier versus without.

    per_client: client_id, therapist_id, n_with, n_without, mean_change_with,
    mean_change_without, difference (with - without; null unless both kinds occur).

    overall (one row): clients, clients_with_both, n_with, n_without,
    mean_change_with, mean_change_without, difference (pooled over sessions),
    mean_within_client_difference (the mean of the per-client differences over clients
    with both kinds of session), welch_t, welch_df.
    """
    per_client: pl.DataFrame
    overall: pl.DataFrame


def barrier_alliance_effect(store: Store, catalog: Catalog, scope: Scope,
                            clients: Sequence[str] | None = None, instrument: str = "SRS", scale: str = "total",
                            rater: str = "client", category: str | None = None) -> AllianceEffect:
    """Does the alliance fare worse in sessions with a communication barrier?

    For each scored session after a client's first, the change is the score minus the
    score of the client's previous scored session (gaps are bridged), oriented by the
    instrument's direction in the catalog: a positive change is always an improvement
    (for a lower-is-better instrument the sign is flipped). Sessions are split by whether
    they have a barrier row (of `category`, or of any category), and the changes are
    averaged per client and over the whole scope.

    The pooled comparison treats sessions as independent although they are nested in
    clients, so `welch_t` is descriptive, not a significance test; the within-client
    difference (each client compared with themselves) is the fairer summary when clients
    with barriers differ from those without.
    """
    spec = catalog.instruments.get(instrument)
    if spec is None or spec.kind != "alliance":
        known = ", ".join(catalog.instruments_of("alliance"))
        raise ValueError(f"{instrument!r} is not an alliance instrument in the catalog; choose one of {known}.")
    if scale not in spec.scales:
        raise ValueError(f"{instrument} has no scale {scale!r}; its scales are {', '.join(spec.scales)}.")
    if rater not in spec.raters:
        raise ValueError(f"{instrument} is not rated by {rater!r}; its raters are {', '.join(spec.raters)}.")
    categories = catalog.codebooks[CODEBOOK].codes
    if category is not None and category not in categories:
        raise ValueError(f"{category!r} is not a barrier category; the categories are {', '.join(categories)}.")
    params = {"instrument": instrument, "scale": scale, "rater": rater, "sign": spec.sign}
    barrier_where = "TRUE"
    if category is not None:
        params["category"] = category
        barrier_where = "category = $category"
    sql = f"""WITH {MAIN_THERAPIST_CTE},
    scores AS (
        SELECT client_id, session_number,
               $sign * (score - lag(score) OVER (PARTITION BY client_id ORDER BY session_number)) AS change
        FROM ratings
        WHERE instrument = $instrument AND scale = $scale AND rater = $rater AND score IS NOT NULL
              AND {client_filter(clients, params)}),
    marked AS (
        SELECT s.client_id, s.change, b.client_id IS NOT NULL AS barrier
        FROM scores s
        LEFT JOIN (SELECT DISTINCT client_id, session_number FROM barriers WHERE {barrier_where}) b
               ON b.client_id = s.client_id AND b.session_number = s.session_number
        WHERE s.change IS NOT NULL)
    SELECT grouping(client_id) = 1 AS overall, client_id, any_value(m.therapist_id) AS therapist_id,
           count(*) FILTER (WHERE barrier) AS n_with, count(*) FILTER (WHERE NOT barrier) AS n_without,
           avg(change) FILTER (WHERE barrier) AS mean_change_with,
           avg(change) FILTER (WHERE NOT barrier) AS mean_change_without,
           var_samp(change) FILTER (WHERE barrier) AS var_with,
           var_samp(change) FILTER (WHERE NOT barrier) AS var_without
    FROM marked LEFT JOIN main_therapist m USING (client_id)
    GROUP BY GROUPING SETS ((client_id), ())
    ORDER BY overall, client_id"""
    rows = store.query(sql, params, scope=scope)
    per_client = rows.filter(~pl.col("overall")).select(
        "client_id", "therapist_id", "n_with", "n_without", "mean_change_with", "mean_change_without",
        (pl.col("mean_change_with") - pl.col("mean_change_without")).alias("difference"))
    return AllianceEffect(per_client, _overall(rows.filter(pl.col("overall")), per_client))


def _overall(pooled: pl.DataFrame, per_client: pl.DataFrame) -> pl.DataFrame:
    both = per_client["difference"].drop_nulls()
    row = pooled.row(0, named=True) if pooled.height else {}
    n1, n2 = row.get("n_with") or 0, row.get("n_without") or 0
    m1, m2 = row.get("mean_change_with"), row.get("mean_change_without")
    v1, v2 = row.get("var_with"), row.get("var_without")
    t = df = None
    if n1 >= 2 and n2 >= 2 and v1 is not None and v2 is not None and (v1 / n1 + v2 / n2) > 0:
        se2 = v1 / n1 + v2 / n2
        t = (m1 - m2) / math.sqrt(se2)
        df = se2 ** 2 / ((v1 / n1) ** 2 / (n1 - 1) + (v2 / n2) ** 2 / (n2 - 1))
    return pl.DataFrame([{
        "clients": per_client.height, "clients_with_both": both.len(), "n_with": n1, "n_without": n2,
        "mean_change_with": m1, "mean_change_without": m2,
        "difference": m1 - m2 if m1 is not None and m2 is not None else None,
        "mean_within_client_difference": both.mean() if both.len() else None,
        "welch_t": t, "welch_df": df}],
        schema={"clients": pl.Int64, "clients_with_both": pl.Int64, "n_with": pl.Int64, "n_without": pl.Int64,
                "mean_change_with": pl.Float64, "mean_change_without": pl.Float64, "difference": pl.Float64,
                "mean_within_client_difference": pl.Float64, "welch_t": pl.Float64, "welch_df": pl.Float64})


def _like_pattern(text: str) -> str:
    """A case-insensitive substring pattern in which %, _ and the escape match themselves."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def barrier_notes(store: Store, scope: Scope, clients: Sequence[str] | None = None,
                  category: str | None = None, search: str | None = None,
                  limit: int = 200, offset: int = 0) -> pl.DataFrame:
    """One page of barrier notes, for a paged list.

    `search` is a case-insensitive substring of the note (%, _ and backslash are taken
    literally). Columns: client_id, session_number, category, severity, addressed, note,
    matches (all rows matching the filters, for the pager). Sorted by client and session.
    """
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must be 0 or more.")
    params: dict = {"limit": int(limit), "offset": int(offset)}
    where = [client_filter(clients, params)]
    if category is not None:
        params["category"] = category
        where.append("category = $category")
    if search:
        params["pattern"] = _like_pattern(search)
        where.append("note ILIKE $pattern ESCAPE '\\'")
    sql = f"""SELECT client_id, session_number, category, severity, addressed, note,
           count(*) OVER () AS matches
    FROM barriers WHERE {' AND '.join(where)}
    ORDER BY client_id, session_number, category
    LIMIT $limit OFFSET $offset"""
    return store.query(sql, params, scope=scope)


def barrier_by_session(store: Store, scope: Scope) -> pl.DataFrame:
    """Barrier notes per session number and category across the scope (what a chart of
    categories over the course of therapy draws): session_number, category, count, unaddressed."""
    return store.query("""SELECT session_number, category, count(*) AS count,
                                 count(*) FILTER (WHERE addressed = false) AS unaddressed
                          FROM barriers GROUP BY ALL ORDER BY session_number, category""", scope=scope)
