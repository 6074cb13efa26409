"""The SQL pieces the analytics share: a filter on the clients asked for, a table bound as
list parameters, the anti-join that leaves out missed sessions, "within the last N sessions"
(and both in one join), the client's main therapist and the codebooks as a bound table.

Each returns text to splice into a query run through `Store.query` (so the reader's scope
applies to every table it names) and binds its values into the query's parameters, never
into the SQL text.
"""

from __future__ import annotations

from typing import Sequence

from ..catalog import Catalog


# The client's therapist: most sessions in scope, ties to the first id. Shared with the
# barrier analyses so both name the same therapist for a client.
MAIN_THERAPIST_CTE = """main_therapist AS (
    SELECT client_id, first(therapist_id ORDER BY n DESC, therapist_id) AS therapist_id
    FROM (SELECT client_id, therapist_id, count(*) AS n FROM sessions GROUP BY ALL)
    GROUP BY client_id)"""

# The codebooks as a bound parameter (a list of structs), so labels and code order are
# joined inside DuckDB instead of being formatted into the SQL.
CODEBOOK_CTE = "codebook AS (SELECT unnest($codebook, recursive := true))"


def codebook_rows(catalog: Catalog, kinds: Sequence[str]) -> list[dict]:
    """The codebooks of `kinds` as rows: kind, code, label, kind_order, code_order."""
    return [{"kind": kind, "code": code, "label": label, "kind_order": k, "code_order": c}
            for k, kind in enumerate(kinds)
            for c, (code, label) in enumerate(catalog.codebooks[kind].codes.items())]


def client_filter(clients: Sequence[str] | None, params: dict, column: str = "client_id") -> str:
    """An SQL condition limiting rows to `clients` (bound as a parameter), or TRUE."""
    if clients is None:
        return "TRUE"
    params["clients"] = [str(c) for c in clients]
    return f"{column} IN (SELECT unnest($clients))"


def client_clause(column: str, clients, params: dict) -> str:
    """` AND column IN (the given client ids)`, or nothing when `clients` is None."""
    return "" if clients is None else " AND " + client_filter(clients, params, column)


def bound_table(name: str, columns: list[str], types: list[str], rows: list[tuple], params: dict) -> str:
    """A common table expression `name` holding `rows`, bound as one list parameter a
    column (a VALUES list of bound cells costs DuckDB more to plan than the query itself)."""
    selects = []
    for k, (column, kind) in enumerate(zip(columns, types)):
        params[f"{name}_{column}"] = [row[k] for row in rows]
        selects.append(f"unnest(${name}_{column}::{kind}[]) AS {column}")
    return f"{name} AS (SELECT {', '.join(selects)})"


# Only attended sessions with a score: ratings of sessions marked not attended are left
# out. A score whose attendance is unknown (NULL, or no session row) counts: the score
# itself shows the client was there. An anti-join with the few unattended sessions costs
# far less than joining every rating to its session. For speed the join key is the client
# alone, with the client's missed session numbers as a list: DuckDB hashes one string
# column instead of a (string, integer) pair, and the rows that come out keep their
# compressed strings, so what follows (grouping by client) runs about twice as fast.
# Same rows as ON client_id = ... AND session_number = ... (test_ruptures checks this).
# The ratings it filters are aliased `r`.
NOT_ATTENDED = ("ANTI JOIN (SELECT client_id, list(session_number) AS missed FROM sessions WHERE attended = false "
                "GROUP BY client_id) u ON u.client_id = r.client_id AND list_contains(u.missed, r.session_number)")


def recent_join(alias: str, recent: int, bind: dict) -> str:
    """A JOIN keeping the rows of `alias` (with client_id and session_number) whose session
    comes after the client's latest session in the sessions table (attended or not) minus
    `recent`: the triage's "within the last `recent` sessions"."""
    bind["recent"] = int(recent)
    return ("JOIN (SELECT client_id, max(session_number) - $recent AS since FROM sessions GROUP BY client_id) l "
            f"ON l.client_id = {alias}.client_id AND {alias}.session_number > l.since")


def recent_attended_join(alias: str, recent: int, bind: dict) -> str:
    """A JOIN keeping the rows of `alias` that `recent_join` keeps and `NOT_ATTENDED` keeps
    (none of a session marked not attended), in one join on the client: the client's
    latest session and missed sessions come from one pass over the sessions, and DuckDB
    builds its hash table on the clients, not on the rows (on its own, the inequality of
    `recent_join` had it hash the ratings). Same rows as both joins (test_ruptures checks)."""
    bind["recent"] = int(recent)
    return ("JOIN (SELECT client_id, max(session_number) - $recent AS since, "
            "coalesce(list(session_number) FILTER (WHERE attended = false), []) AS missed "
            "FROM sessions GROUP BY client_id) l "
            f"ON l.client_id = {alias}.client_id AND {alias}.session_number > l.since "
            f"AND NOT list_contains(l.missed, {alias}.session_number)")
