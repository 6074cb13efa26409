"""Triage: which cases need the conference's time, and why, for every client in a scope at once.

Each flag is a code, one sentence with the numbers behind it, the session it concerns and
the rule that made it (`params`). A case's priority is the sum of its flags' weights from
the catalog's [triage] section; the case list is ordered by priority, highest first, then
by the most recent session. Every source below is one bulk query or one vectorised pass
over all clients (see the analytics modules); nothing loops per client.

| code | from | rule |
|---|---|---|
| risk | `attendance.risk_answers` | a risk item (catalog `risk_items`, e.g. PHQ-9 item 9) answered on its alert side within `lookback_sessions`; always sorts first |
| attendance | `attendance.attendance` | `[attendance] min_missed` missed sessions (no-show or late cancellation) within `lookback_sessions` |
| lost_contact | same | sessions still booked, none attended for more than `[attendance] lost_contact_days` |
| boundary | `ruptures.coded_events` | a coded `boundary_violation` within `lookback_sessions` (crossings raise none) |
| harmed, deteriorated | `outcomes.change_table` | reliable deterioration first -> last score (harmed: into the clinical range) |
| no_reliable_change | same | unchanged after `stalled_after_sessions` attended sessions |
| not_on_track, behind_expected | `expected.latest_colour` | latest outcome colour red / orange |
| sudden_loss, sudden_gain | `outcomes.sudden_changes` | Tang & DeRubeis criteria, within `lookback_sessions`; one per client and instrument (`[sudden_gains] multiple`, as suddengains' create_byperson), reversal noted |
| rupture_not_repaired, rupture_pending | `ruptures.detect_ruptures` | on `rupture_scales`, within `lookback_sessions` |
| coded_rupture_not_repaired | `ruptures.coded_events` | a coded rupture with no coded repair, within `lookback_sessions` |
| alliance_below_cutoff | latest client-rated alliance total | on the concern side of the instrument's cutoff |
| alliance_drop | same | fell by at least the instrument's `alert_drop` from the previous score (PCOMS / OpenFIT) |
| alliance_discrepancy | `ruptures.alliance_discrepancy` | flagged on the total scale, within `lookback_sessions` |
| barriers_unaddressed | barriers | unaddressed notes within `lookback_sessions`: `barrier_min_unaddressed`, or one of high severity |
| countertransference | `themes.pervasive_codes` | a listed code in >= `countertransference_share_attended` of the attended sessions (the share of coded sessions shown beside it) |

When one client has several findings of one code (two unrepaired ruptures, say), the
flag names the most recent and says how many more there are.

Precomputed at publish
----------------------
Made from the sources above, the triage of a large clinic takes seconds (the clinic-wide
reference bands, rupture detection and sudden gains dominate). So every snapshot an
import publishes holds the triage of every client as the store's owner sees it
(`summarize`): `triage_cases` (one row per client: the case list's columns, how many
session rows the client has, and whether every row of the session tables belongs to one
of them) and `triage_flags` (the flags in their order), with `triage_info` naming the
catalog they were made with. A read takes them through the reader's scope (a trainee
sees the rows of their own clients only) when they fit what the reader would compute:

- the catalog in force is the one they were made with, and the sudden-gain criteria are
  the catalog's;
- a client's rows are used only when the scope sees every session of the client (and the
  client has no rows outside its sessions); a client whose sessions the scope sees only
  in part (a trainee who took over a case) is computed from the sources as before, with
  the scope, for that client alone.

Either way the result is the one the sources give (test_triage_summary checks it on the
demo clinic and a synthetic one, for several scopes).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import duckdb
import polars as pl

from ..access import Scope, checked_sql, scoped_sql
from ..catalog import Catalog, CatalogError, default_catalog
from ..store import ANALYTIC_TABLES, on_publish
from .attendance import attendance, risk_answers
from .change import clinical_expr
from .expected import CLINIC, keep_reference, latest_colour, reference, reference_key
from .outcomes import SuddenGainParams, change_table, classify_ends, one_per_client, outcome_series, sudden_changes
from .ruptures import WORDS, RuptureParams, alliance_discrepancy, coded_events, detect_ruptures
from .sql import MAIN_THERAPIST_CTE, NOT_ATTENDED, bound_table, client_clause, recent_join
from .themes import pervasive_codes

_log = logging.getLogger(__name__)

# `instrument`: the instrument the flag's finding is on (the one its sentence names first),
# empty for a flag not read from scores (coded events, barriers, themes, attendance);
# `instruments`: every instrument of its findings, the "(and N more)" ones too.
FLAG_SCHEMA = {"client_id": pl.String, "code": pl.String, "reason": pl.String, "session": pl.Int32,
               "params": pl.String, "weight": pl.Float64, "instrument": pl.String,
               "instruments": pl.List(pl.String)}
CASE_SCHEMA = {"client_id": pl.String, "therapist_id": pl.String, "supervision_group": pl.String,
               "sessions": pl.UInt32, "latest_session": pl.Int32}


def num(e: pl.Expr) -> pl.Expr:
    """A number as people write it: 38, 6.6, 2.52 (at most two decimals, no trailing zeros)."""
    r = e.round(2)
    return (pl.when(r == r.round(0)).then(r.round(0).cast(pl.Int64).cast(pl.String))
            .otherwise(r.cast(pl.String)))


def cases(store, scope: Scope, clients=None) -> pl.DataFrame:
    """One row per client in scope: main therapist (who held most sessions), the
    therapist's supervision group, attended sessions and the latest session number."""
    bind: dict = {}
    sql = f"""
    WITH {MAIN_THERAPIST_CTE}
    SELECT s.client_id, any_value(m.therapist_id) AS therapist_id, any_value(t.supervision_group) AS supervision_group,
           count(*) FILTER (WHERE s.attended IS DISTINCT FROM false) AS sessions,
           max(s.session_number)::INTEGER AS latest_session
    FROM sessions s JOIN main_therapist m USING (client_id)
    LEFT JOIN therapists t ON t.therapist_id = m.therapist_id
    WHERE TRUE{client_clause('s.client_id', clients, bind)}
    GROUP BY s.client_id
    ORDER BY s.client_id
    """
    return store.query(sql, bind, scope=scope).cast(CASE_SCHEMA)


def _series_name(instrument: pl.Expr, scale: pl.Expr, rater: pl.Expr) -> pl.Expr:
    """"SRS", "WAI-SR bond", "WAI-SR (therapist)": the scale only when not the total."""
    return pl.concat_str(
        instrument,
        pl.when(scale != "total").then(pl.concat_str(pl.lit(" "), scale)).otherwise(pl.lit("")),
        pl.when(rater != "client").then(pl.concat_str(pl.lit(" ("), rater, pl.lit(")"))).otherwise(pl.lit("")),
    )


def _recent(frame: pl.DataFrame, latest: Callable[[], pl.DataFrame], lookback: int, column: str) -> pl.DataFrame:
    """The rows of `frame` whose `column` lies within the last `lookback` sessions of the
    client; `latest()` gives the case list (waiting for it if it is still being made)."""
    return (frame.join(latest().select("client_id", "latest_session"), on="client_id")
            .filter(pl.col(column) > pl.col("latest_session") - lookback))


def _flags(frame: pl.DataFrame, code: str, reason: pl.Expr, session: pl.Expr, params: pl.Expr | str) -> pl.DataFrame:
    """One flag per client for `code`: the most recent finding, with "(and N more)", and the
    instrument of the finding named when `frame` has an `instrument` column."""
    columns = ("client_id", "code", "reason", "session", "params", "instrument", "instruments")
    if frame.is_empty():
        return pl.DataFrame(schema={k: FLAG_SCHEMA[k] for k in columns})
    params = pl.lit(params) if isinstance(params, str) else params
    instrument = pl.col("instrument") if "instrument" in frame.columns else pl.lit(None)
    rows = frame.select(pl.col("client_id"), reason.alias("reason"), session.cast(pl.Int32).alias("session"),
                        params.cast(pl.String).alias("params"), instrument.cast(pl.String).alias("instrument"))
    more = pl.len() - 1
    # Findings of one session are told apart by their sentence: the one named never
    # depends on the order the rows came in (nor on which other clients are in scope).
    return (rows.sort("client_id", "session", "reason", descending=[False, True, False],
                      maintain_order=True)
            .group_by("client_id", maintain_order=True)
            .agg(pl.col("reason").first(), pl.col("session").first(), pl.col("params").first(),
                 pl.col("instrument").first(), pl.col("instrument").drop_nulls().unique(maintain_order=True)
                 .alias("instruments"), more.alias("more"))
            .with_columns(code=pl.lit(code),
                          reason=pl.when(pl.col("more") > 0)
                          .then(pl.format("{} (and {} more)", pl.col("reason"), pl.col("more")))
                          .otherwise(pl.col("reason")))
            .select(*columns))


def _rupture_flags(store, catalog, scope, clients, latest, lookback) -> list[pl.DataFrame]:
    rp = RuptureParams.from_catalog(catalog)
    # Only ruptures after the last scored session - lookback can lie within the lookback
    # of the client's latest session (which is at or after the last scored one).
    found = detect_ruptures(store, catalog, rp, scope=scope, clients=clients, scales=catalog.triage.rupture_scales,
                            recent=lookback)
    found = _recent(found, latest, lookback, "session")
    name = _series_name(pl.col("instrument"), pl.col("scale"), pl.col("rater"))
    threshold = (pl.when(pl.col("threshold_points").is_not_null())
                 .then(pl.format(" (threshold {} points)", num(pl.col("threshold_points"))))
                 .otherwise(pl.lit(" (crossed the cutoff)")))
    fell = pl.format("{} fell from {} to {} at session {}{}", name, num(pl.col("previous_score")),
                     num(pl.col("score")), pl.col("session"), threshold)
    window = rp.repair_window
    return [
        _flags(found.filter(pl.col("repair") == "not repaired"), "rupture_not_repaired",
               pl.concat_str(fell, pl.lit(f"; not repaired within the next {window} rating{'s' if window != 1 else ''}")),
               pl.col("session"), pl.col("params")),
        _flags(found.filter(pl.col("repair") == "pending"), "rupture_pending",
               pl.concat_str(fell, pl.format("; not yet back to {} ({} of {} ratings since)",
                                             num(pl.col("previous_score")), pl.col("ratings_since"), pl.lit(window))),
               pl.col("session"), pl.col("params")),
    ]


def _coded_rupture_flags(events: pl.DataFrame, catalog, latest, lookback) -> pl.DataFrame:
    open_ = _recent(events.filter(pl.col("is_rupture") & ~pl.col("repaired")), latest, lookback, "session_number")
    labels = catalog.codebooks["events"].codes
    label = pl.col("event").replace_strict(labels, default=pl.col("event"), return_dtype=pl.String)
    return _flags(open_, "coded_rupture_not_repaired",
                  pl.format("{} coded at session {} by the {}; no repair coded since", label,
                            pl.col("session_number"), pl.col("rater")),
                  pl.col("session_number"), pl.col("params"))


def _latest_alliance(store, catalog, scope, clients) -> pl.DataFrame:
    """The last two client-rated total scores of each alliance instrument with a cutoff or an alert drop."""
    rows = [(k, i.sign, i.cutoff.value if i.cutoff else None, i.cutoff.clinical if i.cutoff else None, i.alert_drop)
            for k, i in catalog.instruments_of("alliance").items() if i.cutoff or i.alert_drop]
    if not rows:
        return pl.DataFrame()
    bind: dict = {}
    meta = bound_table("meta", ["instrument", "sign", "cutoff", "cutoff_clinical", "alert_drop"],
                       ["VARCHAR", "INTEGER", "DOUBLE", "VARCHAR", "DOUBLE"], rows, bind)
    sql = f"""
    WITH {meta}
    SELECT r.client_id, r.instrument, any_value(m.sign) AS sign, any_value(m.cutoff) AS cutoff,
           any_value(m.cutoff_clinical) AS cutoff_clinical, any_value(m.alert_drop) AS alert_drop,
           max_by(r.session_number, r.session_number, 2) AS sessions, max_by(r.score, r.session_number, 2) AS scores
    FROM ratings r JOIN meta m ON m.instrument = r.instrument
    {NOT_ATTENDED}
    WHERE r.scale = 'total' AND r.rater = 'client' AND r.score IS NOT NULL{client_clause('r.client_id', clients, bind)}
    GROUP BY r.client_id, r.instrument
    """
    return store.query(sql, bind, scope=scope).with_columns(
        session=pl.col("sessions").list.get(0).cast(pl.Int32), score=pl.col("scores").list.get(0),
        previous_session=pl.col("sessions").list.get(1, null_on_oob=True).cast(pl.Int32),
        previous_score=pl.col("scores").list.get(1, null_on_oob=True))


def _alliance_flags(store, catalog, scope, clients) -> list[pl.DataFrame]:
    latest = _latest_alliance(store, catalog, scope, clients)
    if latest.is_empty():
        return []
    cut, score = pl.col("cutoff"), pl.col("score")
    below = clinical_expr(score)  # the concern side of an alliance cutoff, as for outcome cutoffs
    words = pl.col("cutoff_clinical").replace_strict(WORDS, default="", return_dtype=pl.String)
    drop = pl.col("sign") * (pl.col("previous_score") - score)
    return [
        _flags(latest.filter(below), "alliance_below_cutoff",
               pl.format("Latest {} {} (session {}) is {} the cutoff {}", pl.col("instrument"), num(score),
                         pl.col("session"), words, num(cut)),
               pl.col("session"), pl.format("{} cutoff {} (catalog)", pl.col("instrument"), num(cut))),
        _flags(latest.filter(pl.col("alert_drop").is_not_null() & (drop >= pl.col("alert_drop") - 1e-9)),
               "alliance_drop",
               pl.format("{} fell from {} at session {} to {} at session {}", pl.col("instrument"),
                         num(pl.col("previous_score")), pl.col("previous_session"), num(score), pl.col("session")),
               pl.col("session"),
               pl.format("alert at a drop of {} point(s) or more from the previous score (PCOMS / OpenFIT)",
                         num(pl.col("alert_drop")))),
    ]


def _discrepancy_flags(store, catalog, scope, clients, lookback) -> pl.DataFrame:
    found = alliance_discrepancy(store, catalog, scope, clients, scales=["total"], flagged_only=True,
                                 recent=lookback)
    return _flags(found, "alliance_discrepancy",
                  pl.format("At session {} the client rated {} {} and the therapist {} ({} points apart)",
                            pl.col("session_number"), pl.col("instrument"), num(pl.col("client_score")),
                            num(pl.col("therapist_score")), num(pl.col("difference").abs())),
                  pl.col("session_number"), pl.col("params"))


def _change_flags(change: pl.DataFrame, sessions: pl.DataFrame, stalled: int) -> list[pl.DataFrame]:
    went = pl.format("{} went from {} (session {}) to {} (session {})", pl.col("instrument"), num(pl.col("first")),
                     pl.col("first_session"), num(pl.col("last")), pl.col("last_session"))
    rule = pl.format("reliable change: a change {} {} points (Jacobson & Truax; catalog)",
                     pl.when(pl.col("rc_rule") == "ge").then(pl.lit(">=")).otherwise(pl.lit(">")),
                     num(pl.col("threshold")))
    cutoff = pl.format("clinical cutoff {}", num(pl.col("cutoff")))
    with_sessions = change.join(sessions.select("client_id", "sessions"), on="client_id")
    return [
        _flags(change.filter(pl.col("category") == "harmed"), "harmed",
               pl.concat_str(went, pl.lit(": a reliable deterioration into the clinical range ("), cutoff,
                             pl.lit(")")), pl.col("last_session"), rule),
        _flags(change.filter(pl.col("category") == "deteriorated"), "deteriorated",
               pl.concat_str(went, pl.lit(": a reliable deterioration")), pl.col("last_session"), rule),
        _flags(with_sessions.filter((pl.col("category") == "unchanged") & (pl.col("sessions") >= stalled)
                                    & (pl.col("scores") >= 2)),
               "no_reliable_change",
               pl.format("{} changed by {} points from session {} to {}, over {} sessions; not a reliable change",
                         pl.col("instrument"), num(pl.col("change")), pl.col("first_session"),
                         pl.col("last_session"), pl.col("sessions")),
               pl.col("last_session"), rule),
    ]


def _track_flags(colours: pl.DataFrame, catalog: Catalog) -> list[pl.DataFrame]:
    lower, floor = catalog.not_on_track.percentiles
    sign = pl.col("instrument").replace_strict({k: i.sign for k, i in catalog.instruments.items()},
                                               default=1, return_dtype=pl.Int32)
    improved = sign * pl.col("change")
    how = (pl.when(improved >= 0).then(pl.format("improved by {}", num(improved)))
           .otherwise(pl.format("worse by {}", num(-improved))))
    base = pl.format("{} {} at session {} (intake {}): {} points; similar clients improved by {} (median)",
                     pl.col("instrument"), num(pl.col("score")), pl.col("session_number"), num(pl.col("intake")),
                     how, num(sign * pl.col("expected")))
    def at(column: str, p: float) -> pl.Expr:
        return pl.concat_str(base, pl.format(", at least {} at the {}th percentile", num(sign * pl.col(column)),
                                             pl.lit(f"{p * 100:g}")))

    return [
        _flags(colours.filter(pl.col("colour") == "red"), "not_on_track", at("floor", floor),
               pl.col("session_number"), pl.col("method")),
        _flags(colours.filter(pl.col("colour") == "orange"), "behind_expected", at("lower", lower),
               pl.col("session_number"), pl.col("method")),
    ]


def _recent_scores(series: pl.DataFrame, latest: pl.DataFrame, lookback: int) -> pl.DataFrame:
    """The scores a sudden change within the last `lookback` sessions can depend on: a
    postgain session after latest - lookback has its pregain window (two sessions before
    the pregain session) inside the last lookback + 3 sessions. Earlier scores become
    gaps, which leaves every interval in the window exactly as on the whole series
    (test_triage checks this) and spares the work on the rest."""
    keep = series.join(latest.select("client_id", "latest_session"), on="client_id")
    return keep.filter(pl.col("session_number") > pl.col("latest_session") - lookback - 3).drop("latest_session")


def _sudden_flags(sudden: pl.DataFrame, latest, lookback, multiple: str) -> list[pl.DataFrame]:
    recent = _recent(sudden, latest, lookback, "postgain_session")
    # One per client, instrument and kind among the recent ones, as suddengains'
    # create_byperson: gains whose windows overlap are one event, not two flags' worth.
    recent = recent.filter(one_per_client(recent, multiple))
    text = pl.format("{} between sessions {} and {}: {} to {} ({} points{})", pl.col("instrument"),
                     pl.col("pregain_session"), pl.col("postgain_session"), num(pl.col("pregain_score")),
                     num(pl.col("postgain_score")), num(pl.col("magnitude")),
                     pl.when(pl.col("reversed")).then(pl.lit("; since reversed: more than half of it lost"))
                     .otherwise(pl.lit("")))
    return [
        _flags(recent.filter(pl.col("kind") == "loss"), "sudden_loss",
               pl.concat_str(pl.lit("Sudden loss on "), text), pl.col("postgain_session"), pl.col("params")),
        _flags(recent.filter(pl.col("kind") == "gain"), "sudden_gain",
               pl.concat_str(pl.lit("Sudden gain on "), text, pl.lit(": what helped?")),
               pl.col("postgain_session"), pl.col("params")),
    ]


def _barrier_flags(store, catalog, scope, clients) -> pl.DataFrame:
    t = catalog.triage
    bind: dict = {"min_n": t.barrier_min_unaddressed, "high": t.barrier_high_severity}
    sql = f"""
    SELECT b.client_id, count(*) AS n, max(b.severity) AS worst, max(b.session_number)::INTEGER AS session,
           string_agg(DISTINCT b.category, ', ' ORDER BY b.category) AS categories
    FROM barriers b {recent_join('b', t.lookback_sessions, bind)}
    WHERE b.addressed = false{client_clause('b.client_id', clients, bind)}
    GROUP BY b.client_id
    HAVING count(*) >= $min_n OR max(b.severity) >= $high
    """
    found = store.query(sql, bind, scope=scope)
    return _flags(found, "barriers_unaddressed",
                  pl.format("{} barrier note(s) left unaddressed in the last {} sessions ({}); highest severity {}",
                            pl.col("n"), pl.lit(t.lookback_sessions), pl.col("categories"), pl.col("worst")),
                  pl.col("session"),
                  f"unaddressed barriers in the last {t.lookback_sessions} sessions: {t.barrier_min_unaddressed} "
                  f"or more, or one of severity {t.barrier_high_severity}")


def _countertransference_flags(store, catalog, scope, clients) -> pl.DataFrame:
    # Two denominators (issue 14): the share of the coded sessions says how often the code
    # is chosen when coding happens; the share of the attended sessions says how much of the
    # therapy it marks, and does not grow when coding is sparse. The flag follows the second.
    t = catalog.triage
    found = pervasive_codes(store, catalog, scope, clients, kinds=["countertransference"],
                            codes=t.countertransference_codes, min_share=t.countertransference_share_attended,
                            min_sessions=t.countertransference_min_sessions)
    return _flags(found, "countertransference",
                  pl.format("Countertransference '{}' coded in {} of {} attended sessions ({}%; {} of {} coded "
                            "sessions, {}%), last at session {}",
                            pl.col("label"), pl.col("sessions_with_code"), pl.col("sessions_scored"),
                            (pl.col("pervasiveness") * 100).round(0).cast(pl.Int64), pl.col("sessions_with_code"),
                            pl.col("sessions_coded"), (pl.col("share_coded") * 100).round(0).cast(pl.Int64),
                            pl.col("last_session")),
                  pl.col("last_session"),
                  f"share of attended sessions >= {t.countertransference_share_attended:.0%}, at least "
                  f"{t.countertransference_min_sessions} sessions (Betan et al. 2005 factors); the share of coded "
                  "sessions is shown beside it")


def _boundary_flags(events: pl.DataFrame, latest, lookback) -> pl.DataFrame:
    found = _recent(events.filter(pl.col("event") == "boundary_violation"), latest, lookback, "session_number")
    return _flags(found, "boundary",
                  pl.format("Boundary violation coded at session {} by the {}", pl.col("session_number"),
                            pl.col("rater")),
                  pl.col("session_number"),
                  "a coded boundary violation within the lookback (Gutheil & Gabbard 1998: violations harm the "
                  "client; crossings, which can serve the work, raise no flag)")


def _risk_flags(store, catalog, scope, clients, latest, lookback) -> pl.DataFrame:
    found = risk_answers(store, catalog, scope, clients).filter(pl.col("alert"))
    found = _recent(found, latest, lookback, "session_number")
    item = pl.col("item").str.replace("item", "item ")
    return _flags(found, "risk",
                  pl.format("{} {} ('{}') answered {} at session {}: assess the risk now", pl.col("instrument"), item,
                            pl.col("text"), num(pl.col("score")), pl.col("session_number")),
                  pl.col("session_number"),
                  pl.format("{} {}: an answer {} {} alerts. {} Source: {}", pl.col("instrument"), item,
                            pl.col("rule").replace_strict({"gt": ">", "ge": ">=", "lt": "<", "le": "<="},
                                                          default="?", return_dtype=pl.String),
                            num(pl.col("value")), pl.col("caveat"), pl.col("source")))


def _attendance_flags(store, catalog, scope, clients, lookback) -> list[pl.DataFrame]:
    a = catalog.attendance
    found = attendance(store, scope, clients, lookback)
    missed = found.filter(pl.col("missed_recent") >= a.min_missed).with_columns(
        listed=pl.col("missed_sessions").cast(pl.List(pl.String)).list.join(", "))
    gap = pl.col("last_booked_day") - pl.col("last_attended_day")
    lost = found.filter(pl.col("booked_since") > 0, gap > a.lost_contact_days)
    return [
        _flags(missed, "attendance",
               pl.format("{} of the last {} sessions missed (no-show or late cancellation): session(s) {}",
                         pl.col("missed_recent"), pl.lit(lookback), pl.col("listed")),
               pl.col("last_session"),
               f"{a.min_missed} or more sessions with attended = false (a no-show or a late cancellation) within "
               f"the last {lookback} sessions (project setting; dropout definitions disagree, Swift & Greenberg "
               "2012)"),
        _flags(lost, "lost_contact",
               pl.format("No attended session for {} days (last at session {}); {} booked session(s) since, "
                         "none attended", gap, pl.col("last_attended_session"), pl.col("booked_since")),
               pl.col("last_session"),
               f"sessions still booked, none attended for more than {a.lost_contact_days} days (project setting, "
               "unconfirmed; dropout definitions disagree, Swift & Greenberg 2012)"),
    ]


def triage_flags(store, catalog: Catalog, scope: Scope, clients=None, *,
                 sg: SuddenGainParams | None = None, case_list: pl.DataFrame | None = None,
                 series: pl.DataFrame | None = None) -> pl.DataFrame:
    """Every flag of every client in scope: client_id, code, reason, session, params, weight;
    ordered by client, then weight (highest first)."""
    if case_list is None and series is None:
        return _case_list_and_flags_read(store, catalog, scope, clients, sg)[1]
    return _case_list_and_flags(store, catalog, scope, clients, sg, case_list, series)[1]


def case_flags(store, catalog: Catalog, scope: Scope, clients, *, sg: SuddenGainParams | None = None,
               case_list: pl.DataFrame, series: pl.DataFrame) -> pl.DataFrame:
    """The flags of `clients` (as `triage_flags`) for a case's summary, which has read their
    case list and outcome series already: the snapshot's precomputed flags where they fit
    the reader (the same rows, `_precomputed`), computed from the sources for the rest.
    Computing them took most of the first draw of a case."""
    found = _precomputed(store, catalog, scope, clients, sg)
    if found is None:
        return _case_list_and_flags(store, catalog, scope, clients, sg, case_list, series)[1]
    _, flags, rest = found
    if rest:
        rest = sorted(rest)
        live = _case_list_and_flags(store, catalog, scope, rest, sg, case_list.filter(pl.col("client_id").is_in(rest)),
                                    series.filter(pl.col("client_id").is_in(rest)))[1]
        flags = pl.concat([flags, live]).sort("client_id", maintain_order=True)
    return flags


def _case_list_and_flags(store, catalog: Catalog, scope: Scope, clients, sg: SuddenGainParams | None,
                         case_list: pl.DataFrame | None, series: pl.DataFrame | None
                         ) -> tuple[pl.DataFrame, pl.DataFrame]:
    t = catalog.triage
    sg = sg or SuddenGainParams.from_catalog(catalog)
    lookback = t.lookback_sessions

    # Two at a time, for speed: a DuckDB query keeps both cores busy only part of the time
    # (and the sudden gains are numpy work on one core), so a second source started
    # alongside uses the idle core. Every source reads through its own cursor. The case
    # list (latest session per client) is made alongside too: a source waits for it only
    # after its own query, to keep its recent findings.
    with ThreadPoolExecutor(max_workers=2) as pool:
        if case_list is None:
            cases_made = pool.submit(cases, store, scope, clients)
        else:
            cases_made = Future()
            cases_made.set_result(case_list)

        latest = cases_made.result  # the case list, waiting for it if it is still being made

        def change_and_track() -> list[list[pl.DataFrame]]:
            if series is not None:
                change = change_table(series, catalog)
                return [_change_flags(change, latest(), t.stalled_after_sessions),
                        _track_flags(latest_colour(store, catalog, scope, clients), catalog)]
            # For speed, without the whole outcome series: the ends of each series come with
            # the latest colours, in one pass (test_triage checks both ways agree).
            colours = latest_colour(store, catalog, scope, clients, with_ends=True)
            ends = colours.select("client_id", "instrument", "first_session",
                                  pl.col("session_number").alias("last_session"), pl.col("intake").alias("first"),
                                  pl.col("score").alias("last"), "scores")
            return [_change_flags(classify_ends(ends, catalog), latest(), t.stalled_after_sessions),
                    _track_flags(colours.drop("first_session", "scores"), catalog)]

        def coded() -> list[list[pl.DataFrame]]:
            # The coded ruptures and the boundary violations from one read of the events.
            events = coded_events(store, scope, clients, catalog=catalog)
            return [[_coded_rupture_flags(events, catalog, latest, lookback)],
                    [_boundary_flags(events, latest, lookback)]]

        def sudden() -> list[list[pl.DataFrame]]:
            # The recent scores as `_recent_scores` keeps them; read only those when no series is given.
            recent = (_recent_scores(series, latest(), lookback) if series is not None
                      else outcome_series(store, catalog, scope, clients, recent=lookback + 3, ordered=False))
            return [_sudden_flags(sudden_changes(recent, catalog, sg), latest, lookback, sg.multiple)]

        # Each job gives its flags in groups, the groups in the order they were always
        # concatenated (ties in the sort below keep that order): rupture, coded rupture,
        # alliance, discrepancy, change, track, sudden, barrier, countertransference.
        # Listed longest first, the order they start in.
        jobs = [
            ((4, 5), change_and_track),
            ((0,), lambda: [_rupture_flags(store, catalog, scope, clients, latest, lookback)]),
            ((6,), sudden),
            ((3,), lambda: [[_discrepancy_flags(store, catalog, scope, clients, lookback)]]),
            ((8,), lambda: [[_countertransference_flags(store, catalog, scope, clients)]]),
            ((2,), lambda: [_alliance_flags(store, catalog, scope, clients)]),
            ((1, 11), coded),
            ((7,), lambda: [[_barrier_flags(store, catalog, scope, clients)]]),
            ((9,), lambda: [[_risk_flags(store, catalog, scope, clients, latest, lookback)]]),
            ((10,), lambda: [_attendance_flags(store, catalog, scope, clients, lookback)]),
        ]
        running = [(places, pool.submit(job)) for places, job in jobs]
    groups = {place: group for places, future in running for place, group in zip(places, future.result())}
    parts = [part for place in sorted(groups) for part in groups[place]]
    flags = pl.concat([p.cast({k: v for k, v in FLAG_SCHEMA.items() if k != "weight"}) for p in parts])
    weights = pl.DataFrame({"code": list(t.weights), "weight": list(t.weights.values())},
                           schema={"code": pl.String, "weight": pl.Float64})
    flags = (flags.join(weights, on="code", how="left").select(list(FLAG_SCHEMA)).cast(FLAG_SCHEMA)
             .sort([pl.col("client_id"), pl.col("code") == "risk", pl.col("weight"), pl.col("session")],
                   descending=[False, True, True, True], maintain_order=True))
    return cases_made.result(), flags


def triage(store, catalog: Catalog, scope: Scope, clients=None, *,
           sg: SuddenGainParams | None = None, precomputed: bool = True) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The case list in priority order and its flags.

    Returns (case_list, flags). case_list: client_id, therapist_id, supervision_group,
    sessions, latest_session, priority (sum of weights), n_flags, codes (list, heaviest
    first), rank (1 = first on the agenda). Clients without flags are listed too, with
    priority 0, so a supervisor sees the whole caseload. A case with a `risk` flag comes
    before every case without one, whatever the weights.

    `precomputed=False` computes everything from the sources, leaving out the triage the
    snapshot holds (for the tests that compare both; the result is the same).
    """
    if precomputed:
        case_list, flags = _case_list_and_flags_read(store, catalog, scope, clients, sg)
    else:
        case_list, flags = _case_list_and_flags(store, catalog, scope, clients, sg, None, None)
    per_client = flags.group_by("client_id").agg(priority=pl.col("weight").sum(), n_flags=pl.len(),
                                                 codes=pl.col("code"), risk=(pl.col("code") == "risk").any())
    ranked = (case_list.join(per_client, on="client_id", how="left")
              .with_columns(pl.col("priority").fill_null(0.0), pl.col("n_flags").fill_null(0).cast(pl.UInt32),
                            pl.col("codes").fill_null([]), pl.col("risk").fill_null(False))
              .sort(["risk", "priority", "latest_session", "client_id"], descending=[True, True, True, False])
              .drop("risk")
              .with_row_index("rank", offset=1))
    return ranked, flags


# ----------------------------------------------------------------------------- precomputed at publish
SUMMARY_INFO, SUMMARY_CASES, SUMMARY_FLAGS = "triage_info", "triage_cases", "triage_flags"
# The tables whose rows belong to a session: a client with rows in them that no session
# holds is seen differently by a narrowed scope (which reads them through its sessions).
_SESSION_TABLES = ("ratings", "themes", "barriers", "events")
_EVERY = Scope.system("the triage kept in the snapshot")


def catalog_key(catalog: Catalog) -> str:
    """What the precomputed triage depends on in the catalog: all of it, as one digest."""
    return hashlib.sha256(catalog.model_dump_json().encode()).hexdigest()


class _Building:
    """The read side of the store (`query`, `scalar`) over a snapshot file still being
    built: the analytic tables from its connection, the state from the store."""

    def __init__(self, con: duckdb.DuckDBPyConnection, store, analytic_tables: frozenset[str]):
        self.con, self.store, self.analytic = con, store, analytic_tables
        # Its own name in the per-process caches keyed by the store's file (the reference bands).
        self.path = f"{getattr(store, 'path', 'store')}#building-{uuid.uuid4().hex}"

    def _here(self, sql: str) -> bool:
        return checked_sql(sql) <= self.analytic

    def query(self, sql: str, params=None, *, scope: Scope) -> pl.DataFrame:
        if not self._here(sql):
            return self.store.query(sql, params, scope=scope)
        cur = self.con.cursor()
        try:
            return cur.sql(scoped_sql(sql, scope), params=params or None).pl()
        finally:
            cur.close()

    def scalar(self, sql: str, params=None, *, scope: Scope):
        if not self._here(sql):
            return self.store.scalar(sql, params, scope=scope)
        cur = self.con.cursor()
        try:
            rows = cur.execute(scoped_sql(sql, scope), params or []).fetchall()
            return rows[0][0] if rows else None
        finally:
            cur.close()


def summarize(con: duckdb.DuckDBPyConnection, store, catalog: Catalog, analytic_tables: frozenset[str]) -> None:
    """Write the triage of every client, and the clinic's expected-change reference it was
    made with (`expected.keep_reference`), into the snapshot being built on `con` (its data
    committed, the summary tables present): run when a snapshot is published."""
    # The copy still holds the reference of the snapshot it was copied from, made from the
    # data before this publish: never read back (the reference is made afresh here, from
    # this snapshot's data, and kept in it below).
    con.execute("DELETE FROM reference_info")
    reader = _Building(con, store, analytic_tables)
    kept = reference(reader, catalog, CLINIC)
    case_list, flags = _case_list_and_flags(reader, catalog, _EVERY, None, None, None, None)
    orphans = " UNION ".join(f"SELECT client_id FROM {t} t WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE "
                             "s.client_id = t.client_id AND s.session_number = t.session_number)"
                             for t in _SESSION_TABLES)
    rows = reader.query(f"""
        WITH orphans AS ({orphans})
        SELECT client_id, count(*) AS all_sessions, client_id NOT IN (SELECT client_id FROM orphans) AS whole
        FROM sessions GROUP BY client_id""", scope=_EVERY)
    cases_out = case_list.join(rows, on="client_id", how="left").with_columns(
        pl.col("all_sessions").fill_null(0), pl.col("whole").fill_null(False))
    flags_out = flags.with_row_index("ord").select(*FLAG_SCHEMA, pl.col("ord").cast(pl.Int64))
    cur = con.cursor()
    try:
        cur.execute("BEGIN TRANSACTION")
        for table in (SUMMARY_INFO, SUMMARY_CASES, SUMMARY_FLAGS):
            cur.execute(f"DELETE FROM {table}")
        cur.register("cases_out", cases_out)
        cur.register("flags_out", flags_out)
        cur.execute(f"INSERT INTO {SUMMARY_CASES} SELECT client_id, therapist_id, supervision_group, sessions, "
                    "latest_session, all_sessions, whole FROM cases_out")
        cur.execute(f"INSERT INTO {SUMMARY_FLAGS} (client_id, code, reason, session, params, weight, ord, "
                    "instrument, instruments) SELECT client_id, code, reason, session, params, weight, ord, "
                    "instrument, instruments FROM flags_out")
        cur.execute(f"INSERT INTO {SUMMARY_INFO} VALUES (?)", [catalog_key(catalog)])
        keep_reference(cur, kept, reference_key(catalog))
        cur.execute("COMMIT")
    finally:
        cur.close()


@on_publish
def keep_triage(con: duckdb.DuckDBPyConnection, store) -> None:
    """The triage of every client, written into the snapshot being published (its data
    committed), with the catalog in force; none (the triage then reads the data, as
    before) when the catalog cannot be read, which the import does not need."""
    try:
        catalog = default_catalog()
    except CatalogError:
        return  # the publish left no kept triage: the readers compute it from the data
    try:
        summarize(con, store, catalog, ANALYTIC_TABLES)
    except Exception as err:  # an import or the store's opening never fails for what is only kept for speed
        con.execute(f"DELETE FROM {SUMMARY_INFO}")
        con.execute("DELETE FROM reference_info")
        # The error's type only: its message could quote the data.
        _log.warning("The triage was not kept with this snapshot (%s); it is computed from the data instead.",
                     type(err).__name__)


def _case_list_and_flags_read(store, catalog: Catalog, scope: Scope, clients, sg: SuddenGainParams | None
                              ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The case list and flags from the snapshot's precomputed triage where it fits the
    reader (see the module notes), from the sources for the rest."""
    found = _precomputed(store, catalog, scope, clients, sg)
    if found is None:
        return _case_list_and_flags(store, catalog, scope, clients, sg, None, None)
    case_list, flags, rest = found
    if rest:
        live_cases, live_flags = _case_list_and_flags(store, catalog, scope, sorted(rest), sg, None, None)
        case_list = pl.concat([case_list, live_cases]).sort("client_id", maintain_order=True)
        flags = pl.concat([flags, live_flags]).sort("client_id", maintain_order=True)
    return case_list, flags


def _precomputed(store, catalog: Catalog, scope: Scope, clients, sg: SuddenGainParams | None):
    """(case list, flags, clients to compute from the sources) from the snapshot, or None
    when it holds no triage made with this catalog (or `sg` is not the catalog's)."""
    if sg is not None and sg != SuddenGainParams.from_catalog(catalog):
        return None
    try:
        made_with = store.query(f"SELECT catalog_key FROM {SUMMARY_INFO}", scope=scope)
    except (duckdb.CatalogException, AttributeError):  # a snapshot or a store without the tables
        return None
    if made_with.height != 1 or made_with.item() != catalog_key(catalog):
        return None
    bind: dict = {}
    where = client_clause("c.client_id", clients, bind)
    if scope.is_everything:
        cases_sql = f"SELECT c.*, TRUE AS usable FROM {SUMMARY_CASES} c WHERE TRUE{where}"
    else:
        # Usable when the scope sees every session of the client: the rows were made from all of them.
        cases_sql = f"""
        WITH seen AS (SELECT client_id, count(*) AS n FROM sessions c WHERE TRUE{where} GROUP BY client_id)
        SELECT seen.client_id, c.* EXCLUDE (client_id), coalesce(c.whole AND seen.n = c.all_sessions, false) AS usable
        FROM seen LEFT JOIN {SUMMARY_CASES} c USING (client_id)"""
    found = store.query(cases_sql, bind, scope=scope)
    usable = found.filter(pl.col("usable"))
    rest = set(found.filter(~pl.col("usable"))["client_id"].to_list())
    case_list = usable.select(list(CASE_SCHEMA)).cast(CASE_SCHEMA).sort("client_id")
    bind = {}
    if scope.is_everything:
        flags_sql = f"SELECT * FROM {SUMMARY_FLAGS} c WHERE TRUE{client_clause('c.client_id', clients, bind)}"
    else:
        bind["usable"] = case_list["client_id"].to_list()
        flags_sql = f"SELECT * FROM {SUMMARY_FLAGS} c WHERE c.client_id IN (SELECT unnest($usable))"
    # Put in order here: DuckDB sorting the rows with their sentences costs more than the read.
    flags = (store.query(flags_sql, bind, scope=scope).sort("ord")
             .select(list(FLAG_SCHEMA)).cast(FLAG_SCHEMA))
    return case_list, flags, rest
