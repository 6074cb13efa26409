"""Transference, countertransference and the CCRT across sessions, for a whole scope at once.

Every function runs one DuckDB query through `Store.query` for all clients the scope
may see (never a loop over clients) and returns a polars frame whose columns are listed
in its docstring. Code labels and the order of codes come from the catalog's codebooks;
a code missing from its codebook keeps its key as label and sorts last.

Definitions
-----------
- A code *occurs* in a session when any rater coded it there; raters are merged, so a
  code coded by therapist and supervisor in one session counts once. Its *intensity* in
  that session is the mean over the raters who gave one.
- **Pervasiveness** (Luborsky's CCRT method, here with sessions in place of relationship
  episodes) = sessions with the code / sessions scored. Two denominators:

  - ``"coded"`` (default): the client's sessions with at least one code *of the same
    kind*. A session nobody coded for countertransference says nothing about it, so it
    should not dilute the share; this is the closest analogue of Luborsky's "scored
    episodes".
  - ``"attended"``: the client's attended sessions (plus any coded session marked as not
    attended, so the share never exceeds 1). Use it when coding is complete, i.e. every
    attended session was coded and an empty session means "absent".
- A client's **therapist** is the one who held most of the client's sessions in scope
  (ties: the first therapist id in alphabetical order).
"""

from __future__ import annotations

from typing import Literal, Sequence

import polars as pl

from ..access import Scope
from ..catalog import Catalog
from ..store import Store
from .sql import CODEBOOK_CTE, MAIN_THERAPIST_CTE, client_filter, codebook_rows

Denominator = Literal["coded", "attended"]
DENOMINATORS = ("coded", "attended")

# The three CCRT components: codebook (= theme kind) and the short name used in columns.
CCRT_COMPONENTS = {"ccrt_wish": "wish", "ccrt_ro": "ro", "ccrt_rs": "rs"}

def _check_kinds(catalog: Catalog, kinds: Sequence[str]) -> list[str]:
    known = catalog.vocabularies.theme_kinds
    unknown = [k for k in kinds if k not in known]
    if unknown:
        raise ValueError(f"Unknown theme kind(s) {', '.join(map(repr, unknown))}: the catalog's theme "
                         f"kinds are {', '.join(known)}.")
    return list(kinds)


def _check_denominator(denominator: str) -> None:
    if denominator not in DENOMINATORS:
        raise ValueError(f"The denominator must be 'coded' (sessions coded for that kind) or 'attended' "
                         f"(all attended sessions), not {denominator!r}.")


def _pervasiveness_ctes(kinds: list[str], clients, denominator: str, params: dict,
                        per_therapist: bool = False, codes: Sequence[str] | None = None,
                        coded_share: bool = False) -> str:
    """CTEs ending in `pervasiveness` (unit, kind, code, counts, share, intensity, span).

    The unit is the client, or with `per_therapist` the (therapist, client) pair, where
    each session counts for the therapist who held it. Each CTE is used once: DuckDB
    materialises a CTE that is read twice, which at 10^6 rows costs more than the reading.
    `codes` limits the codes counted (not the sessions scored, which count every code).
    `coded_share`, with the "attended" denominator, adds the share of the coded sessions
    beside it (`sessions_coded`, `share_coded`, as the "coded" denominator gives them).
    """
    params["kinds"] = kinds
    where = f"list_contains($kinds, t.kind) AND {client_filter(clients, params, 't.client_id')}"
    code_where = where
    if codes is not None:
        params["codes"] = [str(c) for c in codes]
        code_where += " AND list_contains($codes::VARCHAR[], t.code)"
    if per_therapist:
        source = ("themes t JOIN sessions s "
                  "ON s.client_id = t.client_id AND s.session_number = t.session_number")
        unit, keys = "s.therapist_id, t.client_id", "therapist_id, client_id"
    else:
        source, unit, keys = "themes t", "t.client_id", "client_id"
    ctes = [f"""coded AS (
        SELECT {unit}, t.session_number, t.kind, t.code, avg(t.intensity) AS intensity
        FROM {source} WHERE {code_where} GROUP BY ALL)""",
            f"""per_code AS (
        SELECT {keys}, kind, code, count(*) AS sessions_with_code, avg(intensity) AS mean_intensity,
               min(session_number) AS first_session, max(session_number) AS last_session
        FROM coded GROUP BY ALL)"""]
    coded = f"""scored AS (
        SELECT {keys}, kind, count(*) AS sessions_scored
        FROM (SELECT DISTINCT {unit}, t.session_number, t.kind FROM {source} WHERE {where})
        GROUP BY ALL)"""
    beside = ""
    if denominator == "coded":
        ctes.append(coded)
        scored_join, scored = f"JOIN scored USING ({keys}, kind)", "sessions_scored"
    else:
        # Attended sessions, plus coded sessions marked as not attended (rare), so the
        # share never exceeds 1; the second set is found through the few unattended sessions.
        ctes.append(f"""attended_sessions AS (
        SELECT {keys}, count(*) FILTER (WHERE attended) AS n FROM sessions
        WHERE {client_filter(clients, params)} GROUP BY ALL)""")
        ctes.append(f"""unattended_coded AS (
        SELECT {keys}, kind, count(*) AS n
        FROM (SELECT DISTINCT {unit}, t.session_number, t.kind FROM {source}
              SEMI JOIN (SELECT client_id, session_number FROM sessions WHERE NOT attended) u
                   ON u.client_id = t.client_id AND u.session_number = t.session_number
              WHERE {where})
        GROUP BY ALL)""")
        scored_join = (f"JOIN attended_sessions a USING ({keys}) "
                       f"LEFT JOIN unattended_coded u USING ({keys}, kind)")
        scored = "a.n + coalesce(u.n, 0)"
        if coded_share:
            ctes.append(coded)
            scored_join += f" JOIN scored c USING ({keys}, kind)"
            beside = (", c.sessions_scored AS sessions_coded, "
                      "sessions_with_code / c.sessions_scored AS share_coded")
    ctes.append(f"""pervasiveness AS (
        SELECT {keys}, kind, code, sessions_with_code, {scored} AS sessions_scored,
               sessions_with_code / ({scored}) AS pervasiveness,
               mean_intensity, first_session, last_session{beside}
        FROM per_code {scored_join})""")
    return ",\n".join(ctes)


def pervasiveness(store: Store, catalog: Catalog, scope: Scope, clients: Sequence[str] | None = None,
                  kinds: Sequence[str] | None = None, denominator: Denominator = "coded", *,
                  codes: Sequence[str] | None = None, therapist: bool = True) -> pl.DataFrame:
    """Pervasiveness of every code for every client in scope.

    Columns: client_id, therapist_id, kind, code, label, sessions_with_code,
    sessions_scored, pervasiveness (0-1), mean_intensity (mean over the sessions with the
    code; null when no intensity was given), first_session, last_session (session numbers).
    Only codes that occur are listed. Rows come in no particular order: at 10^6 sessions
    sorting the whole frame costs more than computing it, so sort the slice you draw.
    `codes` lists only those codes (shares still out of every coded session);
    `therapist=False` leaves out therapist_id (and the work of finding it).
    """
    _check_denominator(denominator)
    kinds = _check_kinds(catalog, kinds if kinds is not None else catalog.vocabularies.theme_kinds)
    params = {"codebook": codebook_rows(catalog, catalog.vocabularies.theme_kinds)}
    main, main_join, main_column = "", "", ""
    if therapist:
        main, main_join, main_column = f",\n    {MAIN_THERAPIST_CTE}", "LEFT JOIN main_therapist m USING (client_id)", \
            " m.therapist_id,"
    sql = f"""WITH {CODEBOOK_CTE},
    {_pervasiveness_ctes(kinds, clients, denominator, params, codes=codes)}{main}
    SELECT p.client_id,{main_column} p.kind, p.code, coalesce(cb.label, p.code) AS label,
           p.sessions_with_code, p.sessions_scored, p.pervasiveness, p.mean_intensity,
           p.first_session, p.last_session
    FROM pervasiveness p
    {main_join}
    LEFT JOIN codebook cb USING (kind, code)"""
    return store.query(sql, params, scope=scope)


def pervasive_codes(store: Store, catalog: Catalog, scope: Scope, clients: Sequence[str] | None = None, *,
                    kinds: Sequence[str], codes: Sequence[str], min_share: float, min_sessions: int) -> pl.DataFrame:
    """The `codes` that reach `min_share` of a client's attended sessions in at least
    `min_sessions` of them (the triage's countertransference), with the share of the coded
    sessions beside it: `pervasiveness`'s rows of those codes with the "attended"
    denominator and no therapist, the ones that pass, plus sessions_coded and share_coded
    (the "coded" denominator's sessions_scored and pervasiveness). One query that keeps
    only what passes, rather than both denominators' rows for every client and code."""
    kinds = _check_kinds(catalog, kinds)
    params = {"codebook": codebook_rows(catalog, catalog.vocabularies.theme_kinds),
              "min_share": float(min_share), "min_sessions": int(min_sessions)}
    sql = f"""WITH {CODEBOOK_CTE},
    {_pervasiveness_ctes(kinds, clients, "attended", params, codes=codes, coded_share=True)}
    SELECT p.client_id, p.kind, p.code, coalesce(cb.label, p.code) AS label,
           p.sessions_with_code, p.sessions_scored, p.pervasiveness, p.mean_intensity,
           p.first_session, p.last_session, p.sessions_coded, p.share_coded
    FROM pervasiveness p
    LEFT JOIN codebook cb USING (kind, code)
    WHERE p.pervasiveness >= $min_share AND p.sessions_with_code >= $min_sessions"""
    return store.query(sql, params, scope=scope)


def caseload_pervasiveness(store: Store, catalog: Catalog, scope: Scope, clients: Sequence[str] | None = None,
                           kinds: Sequence[str] | None = None) -> pl.DataFrame:
    """Pervasiveness per code across the clients in scope: what the caseload's chart draws,
    aggregated where the rows are (at 10^6 sessions the per-client frame has hundreds of
    thousands of rows; this has one per code).

    Columns: kind, code, label, clients (clients with the code), clients_coded (clients
    with any code of the kind), total (the sum of the clients' pervasiveness), mean (total
    / clients_coded: a coded client without the code counts 0). In no particular order."""
    kinds = _check_kinds(catalog, kinds if kinds is not None else catalog.vocabularies.theme_kinds)
    params = {"codebook": codebook_rows(catalog, catalog.vocabularies.theme_kinds)}
    sql = f"""WITH {CODEBOOK_CTE},
    {_pervasiveness_ctes(kinds, clients, "coded", params)},
    per_kind AS (SELECT kind, count(DISTINCT client_id) AS clients_coded FROM pervasiveness GROUP BY kind),
    code_totals AS (SELECT kind, code, count(*) AS clients, sum(pervasiveness) AS total
                 FROM pervasiveness GROUP BY kind, code)
    SELECT p.kind, p.code, coalesce(cb.label, p.code) AS label, p.clients, k.clients_coded, p.total,
           p.total / k.clients_coded AS mean
    FROM code_totals p JOIN per_kind k USING (kind)
    LEFT JOIN codebook cb USING (kind, code)"""
    return store.query(sql, params, scope=scope)


def ccrt(store: Store, catalog: Catalog, scope: Scope, clients: Sequence[str] | None = None,
         denominator: Denominator = "coded") -> pl.DataFrame:
    """Each client's CCRT: the most pervasive wish, response of other and response of self.

    Ties in pervasiveness go to the code with the higher mean intensity (a code without
    intensities loses), then to the code that comes first in the codebook (codes outside
    the codebook are refused at import, so the order is always defined);
    ``*_tied`` says that another code had the same pervasiveness, so a page can say the
    choice was close. A client without any CCRT coding is absent; a client coded for
    some components only has nulls in the others.

    Columns: client_id, therapist_id, then for each component c in (wish, ro, rs):
    c (code), c_label, c_pervasiveness, c_sessions_scored, c_tied.
    """
    _check_denominator(denominator)
    kinds = list(CCRT_COMPONENTS)
    params = {"codebook": codebook_rows(catalog, kinds)}
    # Per component the best code by (pervasiveness, intensity, codebook order), and the
    # two highest pervasiveness values, which tell whether the best was tied.
    picks = ",\n".join(
        f"any_value(code) FILTER (WHERE kind = '{kind}') AS {c}, "
        f"any_value(label) FILTER (WHERE kind = '{kind}') AS {c}_label, "
        f"any_value(pervasiveness) FILTER (WHERE kind = '{kind}') AS {c}_pervasiveness, "
        f"any_value(sessions_scored) FILTER (WHERE kind = '{kind}') AS {c}_sessions_scored, "
        f"any_value(tied) FILTER (WHERE kind = '{kind}') AS {c}_tied"
        for kind, c in CCRT_COMPONENTS.items())
    sql = f"""WITH {CODEBOOK_CTE},
    {_pervasiveness_ctes(kinds, clients, denominator, params)},
    {MAIN_THERAPIST_CTE},
    best AS (
        SELECT p.client_id, p.kind,
               max_by(p.code, (p.pervasiveness, coalesce(p.mean_intensity, '-infinity'::DOUBLE),
                               -coalesce(cb.code_order, 1000000))) AS code,
               max(p.pervasiveness) AS pervasiveness, any_value(p.sessions_scored) AS sessions_scored,
               max(p.pervasiveness, 2) AS two_highest
        FROM pervasiveness p LEFT JOIN codebook cb USING (kind, code)
        GROUP BY p.client_id, p.kind),
    labelled AS (
        SELECT b.client_id, b.kind, b.code, coalesce(cb.label, b.code) AS label, b.pervasiveness,
               b.sessions_scored, coalesce(b.two_highest[2] = b.two_highest[1], false) AS tied
        FROM best b LEFT JOIN codebook cb USING (kind, code)),
    picked AS (SELECT client_id, {picks} FROM labelled GROUP BY client_id)
    SELECT picked.client_id, m.therapist_id, picked.* EXCLUDE (client_id)
    FROM picked LEFT JOIN main_therapist m USING (client_id)
    ORDER BY picked.client_id"""
    return store.query(sql, params, scope=scope)


def therapist_patterns(store: Store, catalog: Catalog, scope: Scope, kind: str = "countertransference",
                       min_clients: int = 2, min_share: float = 0.5,
                       denominator: Denominator = "coded") -> pl.DataFrame:
    """Codes that recur across a therapist's cases.

    A heuristic for "a pattern that follows a therapist across cases", not a test: a code
    is ``recurring`` when it occurs with at least `min_clients` of the therapist's clients
    and with at least `min_share` of their clients coded for `kind`. Each session counts
    for the therapist who held it (countertransference is the reaction of the person in
    the room), so a client seen by two therapists is a case of each.

    Columns: therapist_id, kind, code, label, clients_with_code, clients_coded (the
    therapist's clients with any code of `kind`), share_of_clients, sessions_with_code,
    mean_pervasiveness (over all coded clients, a client without the code counting 0),
    recurring. Sorted by therapist, recurring first, falling share, codebook order.
    """
    _check_denominator(denominator)
    kinds = _check_kinds(catalog, [kind])
    if min_clients < 1 or not 0 <= min_share <= 1:
        raise ValueError("min_clients must be at least 1 and min_share between 0 and 1.")
    params = {"codebook": codebook_rows(catalog, kinds), "min_clients": min_clients, "min_share": min_share}
    sql = f"""WITH {CODEBOOK_CTE},
    {_pervasiveness_ctes(kinds, None, denominator, params, per_therapist=True)},
    coded_clients AS (
        SELECT therapist_id, count(DISTINCT client_id) AS clients_coded FROM scored GROUP BY therapist_id),
    per_therapist AS (
        SELECT therapist_id, kind, code, count(*) AS clients_with_code,
               sum(sessions_with_code) AS sessions_with_code, sum(pervasiveness) AS total_pervasiveness
        FROM pervasiveness GROUP BY ALL)
    SELECT p.therapist_id, p.kind, p.code, coalesce(cb.label, p.code) AS label,
           p.clients_with_code, c.clients_coded,
           p.clients_with_code / c.clients_coded AS share_of_clients,
           p.sessions_with_code,
           p.total_pervasiveness / c.clients_coded AS mean_pervasiveness,
           p.clients_with_code >= $min_clients AND p.clients_with_code / c.clients_coded >= $min_share
               AS recurring
    FROM per_therapist p JOIN coded_clients c USING (therapist_id)
    LEFT JOIN codebook cb USING (kind, code)
    ORDER BY p.therapist_id, recurring DESC, share_of_clients DESC, cb.code_order NULLS LAST, p.code"""
    return store.query(sql, params, scope=scope)


def theme_timeline(store: Store, catalog: Catalog, client_id: str, scope: Scope) -> pl.DataFrame:
    """Every theme row of one client, for a chart over sessions.

    Columns: session_number, kind, code, label, intensity, rater; sorted by session,
    kind and code in catalog order, rater. Empty when the client is out of scope.
    """
    params = {"codebook": codebook_rows(catalog, catalog.vocabularies.theme_kinds), "client": str(client_id)}
    sql = f"""WITH {CODEBOOK_CTE}
    SELECT t.session_number, t.kind, t.code, coalesce(cb.label, t.code) AS label, t.intensity, t.rater
    FROM themes t LEFT JOIN codebook cb USING (kind, code)
    WHERE t.client_id = $client
    ORDER BY t.session_number, cb.kind_order NULLS LAST, t.kind, cb.code_order NULLS LAST, t.code, t.rater"""
    return store.query(sql, params, scope=scope)


def theme_trend(store: Store, catalog: Catalog, scope: Scope, clients: Sequence[str] | None = None,
                window: int | None = None, kinds: Sequence[str] | None = None,
                min_sessions: int = 4) -> pl.DataFrame:
    """How each code's pervasiveness changed from the start of a case to its end.

    For each client and kind, the sessions coded for that kind are put in order and
    split: with ``window=None`` into the first and second half (with an odd number the
    middle session belongs to neither, so both halves have equal weight); with
    ``window=k`` the first k and the last k coded sessions (at most half each). Kinds
    with fewer than `min_sessions` coded sessions are left out: a trend over two
    sessions says nothing.

    Columns: client_id, therapist_id, kind, code, label, sessions_early, sessions_late,
    early, late (pervasiveness in each part, 0-1), change (late - early). So a page can
    say "mistrustful fell from 80 % to 20 % of sessions". Rows come in no particular order
    (see `pervasiveness`).
    """
    kinds = _check_kinds(catalog, kinds if kinds is not None else catalog.vocabularies.theme_kinds)
    if window is not None and window < 1:
        raise ValueError(f"The window must be a number of sessions of at least 1, not {window!r}.")
    if min_sessions < 2:
        raise ValueError("min_sessions must be at least 2 (one session for each part).")
    params = {"codebook": codebook_rows(catalog, catalog.vocabularies.theme_kinds), "kinds": kinds,
              "min_sessions": min_sessions}
    part = "len(s) // 2" if window is None else "least($window, len(s) // 2)"
    if window is not None:
        params["window"] = int(window)
    sql = f"""WITH {CODEBOOK_CTE},
    coded AS (
        SELECT DISTINCT client_id, session_number, kind, code FROM themes
        WHERE list_contains($kinds, kind) AND {client_filter(clients, params)}),
    -- Per client and kind the coded sessions in order; the parts are the first h and the
    -- last h of them, found by comparing with the h-th and the (n-h+1)-th session number.
    ordered AS (
        SELECT client_id, kind, list_sort(list(session_number)) AS s
        FROM (SELECT DISTINCT client_id, kind, session_number FROM themes
              WHERE list_contains($kinds, kind) AND {client_filter(clients, params)})
        GROUP BY ALL HAVING count(*) >= $min_sessions),
    parts AS (
        SELECT client_id, kind, h, s[h] AS early_end, s[len(s) - h + 1] AS late_start
        FROM (SELECT client_id, kind, s, {part} AS h FROM ordered)),
    counts AS (
        SELECT client_id, kind, code, any_value(h) AS h,
               count(*) FILTER (WHERE session_number <= early_end) AS n_early,
               count(*) FILTER (WHERE session_number >= late_start) AS n_late
        FROM coded JOIN parts USING (client_id, kind)
        GROUP BY ALL HAVING n_early + n_late > 0),
    {MAIN_THERAPIST_CTE}
    SELECT c.client_id, m.therapist_id, c.kind, c.code, coalesce(cb.label, c.code) AS label,
           c.h AS sessions_early, c.h AS sessions_late,
           c.n_early / c.h AS early, c.n_late / c.h AS late, (c.n_late - c.n_early) / c.h AS change
    FROM counts c
    LEFT JOIN main_therapist m USING (client_id)
    LEFT JOIN codebook cb USING (kind, code)"""
    return store.query(sql, params, scope=scope)


def ccrt_triads(store: Store, catalog: Catalog, scope: Scope,
                clients: Sequence[str] | None = None) -> pl.DataFrame:
    """How often a wish, a response of other and a response of self occur in one session.

    A session with several codes of a component contributes every combination (two
    wishes, one RO, one RS: two triads). For a Sankey diagram wish -> RO -> RS.

    Columns: wish, wish_label, ro, ro_label, rs, rs_label, sessions (sessions with the
    triad), clients (clients with it at least once); most frequent first.
    """
    kinds = list(CCRT_COMPONENTS)
    params = {"codebook": codebook_rows(catalog, kinds), "kinds": kinds}
    sql = f"""WITH {CODEBOOK_CTE},
    coded AS (
        SELECT DISTINCT client_id, session_number, kind, code FROM themes
        WHERE list_contains($kinds, kind) AND {client_filter(clients, params)}),
    triads AS (
        SELECT w.client_id, w.code AS wish, o.code AS ro, s.code AS rs
        FROM coded w
        JOIN coded o ON o.client_id = w.client_id AND o.session_number = w.session_number
                     AND o.kind = 'ccrt_ro'
        JOIN coded s ON s.client_id = w.client_id AND s.session_number = w.session_number
                     AND s.kind = 'ccrt_rs'
        WHERE w.kind = 'ccrt_wish'),
    counted AS (
        SELECT wish, ro, rs, count(*) AS sessions, count(DISTINCT client_id) AS clients
        FROM triads GROUP BY ALL)
    SELECT c.wish, coalesce(bw.label, c.wish) AS wish_label, c.ro, coalesce(bo.label, c.ro) AS ro_label,
           c.rs, coalesce(bs.label, c.rs) AS rs_label, c.sessions, c.clients
    FROM counted c
    LEFT JOIN codebook bw ON bw.kind = 'ccrt_wish' AND bw.code = c.wish
    LEFT JOIN codebook bo ON bo.kind = 'ccrt_ro' AND bo.code = c.ro
    LEFT JOIN codebook bs ON bs.kind = 'ccrt_rs' AND bs.code = c.rs
    ORDER BY c.sessions DESC, c.clients DESC, bw.code_order NULLS LAST, bo.code_order NULLS LAST,
             bs.code_order NULLS LAST, c.wish, c.ro, c.rs"""
    return store.query(sql, params, scope=scope)
