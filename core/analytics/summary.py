"""The case summary: what the case page shows and `python -m core case` prints, for one or more clients.

One call covers all the clients asked for: every part is a bulk query limited to those
clients (never a loop per client), and the flags come from the same triage as the case
list, so the page, the list and the command line always agree.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Sequence

import polars as pl

from ..access import Scope
from ..catalog import Catalog
from .attendance import attendance, risk_answers
from .barriers import barrier_summary
from .outcomes import SuddenGainParams, change_table, outcome_series, sudden_changes
from .process import FEEDBACK_KINDS, empathy_ratings, feedback_counts, feedback_sessions
from .ruptures import coded_events, detect_ruptures
from .themes import ccrt, pervasiveness
from .triage import case_flags, cases


class UnknownClients(LookupError):
    """Some client ids are not in the store (or not in the reader's scope)."""

    def __init__(self, missing: Sequence[str]):
        self.missing = list(missing)
        shown = ", ".join(self.missing[:5]) + (f" and {len(self.missing) - 5} more" if len(self.missing) > 5 else "")
        super().__init__(f"No case with the client id {shown} is in the store (or visible to you): "
                         "check the id, or import the client's sessions first.")


def _clean(value):
    """JSON-safe: NaN becomes null, floats keep up to 4 decimals."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _ccrt(best: dict | None, minimum: int) -> dict:
    """The CCRT's three parts, the coded sessions it rests on (the fewest of its parts) and
    whether that is fewer than the catalog's minimum (`[themes] ccrt_min_sessions`): tentative."""
    best = best or {}
    parts = {part: best.get(part) for part in ("wish", "ro", "rs")}
    counts = [best.get(f"{part}_sessions_scored") for part in parts if best.get(part)]
    sessions = int(min(counts)) if counts else 0
    return {**parts, "sessions": sessions, "tentative": bool(counts) and sessions < minimum, "min_sessions": minimum}


def _by_client(frame: pl.DataFrame, columns: list[str]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for row in frame.select("client_id", *columns).iter_rows(named=True):
        grouped[row.pop("client_id")].append(row)
    return grouped


def case_summaries(store, catalog: Catalog, client_ids: Sequence[str], scope: Scope, *,
                   sg: SuddenGainParams | None = None) -> list[dict]:
    """One summary per client id, in the order given. Raises `UnknownClients` when an id
    is not in the store within `scope`.

    Keys (CONTRACT.md, `python -m core case`): client_id, therapist_id, sessions, flags,
    change, sudden_gains, sudden_losses, ruptures, themes, barriers; and also
    supervision_group, latest_session, priority, sudden_gain_params, coded_events, ccrt,
    attendance (counts by kind), risk_items (item, score, session), feedback (attended
    sessions whose scores were discussed, not discussed, not recorded), empathy
    (instrument, session, score of the catalog's empathy instruments, items_answered when
    formed from items) and empathy_not_scored (sessions whose items were too few for a total).
    """
    ids = list(dict.fromkeys(str(c) for c in client_ids))
    case_list = cases(store, scope, ids)
    missing = [c for c in ids if c not in set(case_list["client_id"].to_list())]
    if missing:
        raise UnknownClients(missing)
    sg = sg or SuddenGainParams.from_catalog(catalog)
    series = outcome_series(store, catalog, scope, ids)
    flags = _by_client(case_flags(store, catalog, scope, ids, sg=sg, case_list=case_list, series=series),
                       ["code", "reason", "session", "params", "weight", "instrument", "instruments"])
    change = change_table(series, catalog)
    # The per-person table (suddengains' create_byperson): one gain or loss per client and
    # instrument, with how many met the criteria (`found`) and whether it reversed.
    sudden = sudden_changes(series, catalog, sg).filter(pl.col("selected"))
    sudden_cols = ["instrument", "pregain_session", "postgain_session", "magnitude", "pregain_score",
                   "postgain_score", "found", "reversed", "reversal_value", "params"]
    gains = _by_client(sudden.filter(pl.col("kind") == "gain"), sudden_cols)
    losses = _by_client(sudden.filter(pl.col("kind") == "loss"), sudden_cols)
    ruptures = _by_client(detect_ruptures(store, catalog, scope=scope, clients=ids),
                          ["instrument", "scale", "rater", "session", "previous_score", "score", "drop",
                           "threshold_points", "repaired_at", "repair", "method", "params"])
    events = _by_client(coded_events(store, scope, ids, catalog=catalog),
                        ["session_number", "event", "rater", "repaired_at", "params"])
    themes = _by_client(pervasiveness(store, catalog, scope, ids).sort("client_id", "kind", "pervasiveness", "code",
                                                                       descending=[False, False, True, False]),
                        ["kind", "code", "label", "pervasiveness", "sessions_with_code", "sessions_scored"])
    ccrts = {row["client_id"]: row for row in ccrt(store, catalog, scope, ids).iter_rows(named=True)}
    barriers = _by_client(barrier_summary(store, catalog, scope, ids),
                          ["category", "label", "count", "unaddressed", "max_severity", "last_session"])
    changes: dict[str, dict] = defaultdict(dict)
    for row in change.iter_rows(named=True):
        changes[row["client_id"]][row["instrument"]] = {
            "first": row["first"], "last": row["last"], "threshold": row["threshold"], "category": row["category"],
            "first_session": row["first_session"], "last_session": row["last_session"], "change": row["change"],
            "reliable": row["reliable"], "rule": row["rc_rule"], "cutoff": row["cutoff"]}
    risk = _by_client(risk_answers(store, catalog, scope, ids),
                      ["instrument", "item", "score", "session_number", "alert", "text"])
    came = {row["client_id"]: row for row in attendance(store, scope, ids, catalog.triage.lookback_sessions)
            .iter_rows(named=True)}
    info = {row["client_id"]: row for row in case_list.iter_rows(named=True)}
    feedback = feedback_counts(feedback_sessions(store, scope, ids))
    empathy = _by_client(empathy_ratings(store, catalog, scope, ids, scored_only=False),
                         ["instrument", "session_number", "score", "answered", "items"])
    out = []
    for cid in ids:
        c = info[cid]
        client_flags = flags.get(cid, [])
        best = ccrts.get(cid)
        out.append(_clean({
            "client_id": cid, "therapist_id": c["therapist_id"], "supervision_group": c["supervision_group"],
            "sessions": c["sessions"], "latest_session": c["latest_session"],
            "priority": sum(f["weight"] or 0 for f in client_flags),
            "flags": client_flags,
            "change": changes.get(cid, {}),
            "sudden_gain_params": {"cutoff": sg.cutoff, "pct": sg.pct, "alpha": sg.alpha,
                                   "include_intake": sg.include_intake, "multiple": sg.multiple},
            "sudden_gains": gains.get(cid, []), "sudden_losses": losses.get(cid, []),
            "ruptures": ruptures.get(cid, []), "coded_events": events.get(cid, []),
            "themes": themes.get(cid, []),
            "ccrt": _ccrt(best, catalog.themes.ccrt_min_sessions),
            "barriers": barriers.get(cid, []),
            # Counts by kind (CONTRACT.md: attended = false without an attendance column reads as no_show).
            "attendance": {kind: (came.get(cid) or {}).get(kind, 0)
                           for kind in ("attended", "no_show", "cancelled_late", "cancelled")},
            # Every answer to a risk item, latest first: item, score, session (alert: on the item's alert side).
            "risk_items": [{"instrument": r["instrument"], "item": r["item"], "score": r["score"],
                            "session": r["session_number"], "alert": r["alert"], "text": r["text"]}
                           for r in risk.get(cid, [])],
            # sessions.feedback_discussed (the contract's extension) over the attended sessions.
            "feedback": feedback.get(cid, dict.fromkeys(FEEDBACK_KINDS, 0)),
            # items_answered: the answers a total was formed from (null: the total was given).
            "empathy": [{"instrument": e["instrument"], "session": e["session_number"], "score": e["score"],
                         "items_answered": e["answered"]}
                        for e in empathy.get(cid, []) if e["score"] is not None],
            # Rated from items with too many missing for a total (the catalog's total_from_items).
            "empathy_not_scored": [{"instrument": e["instrument"], "session": e["session_number"],
                                    "items_answered": e["answered"], "items": e["items"]}
                                   for e in empathy.get(cid, []) if e["score"] is None],
        }))
    return out


def summary_text(summary: dict) -> str:
    """The summary as readable text for a terminal."""
    s = summary
    lines = [f"Case {s['client_id']} - therapist {s['therapist_id']}"
             + (f", {s['supervision_group']}" if s.get("supervision_group") else "")
             + f" - {s['sessions']} sessions attended, latest session {s['latest_session']}",
             f"Priority {s['priority']:g}" + (":" if s["flags"] else ": no flags")]
    lines += [f"  [{f['code']}] {f['reason']}" for f in s["flags"]]
    alerts = [r for r in s.get("risk_items", []) if r["alert"]]
    if alerts:
        lines.append("Risk items: " + "; ".join(f"{r['instrument']} {r['item']} = {r['score']:g} at session "
                                                f"{r['session']}" for r in alerts))
    a = s.get("attendance")
    if a:
        lines.append(f"Attendance: {a['attended']} attended, {a['no_show']} no-show(s), {a['cancelled_late']} late "
                     f"cancellation(s), {a['cancelled']} cancelled in time")
    f = s.get("feedback")
    if f and (f["discussed"] or f["not_discussed"]):
        lines.append(f"Feedback: scores discussed with the client in {f['discussed']} of "
                     f"{f['discussed'] + f['not_discussed'] + f['not_recorded']} attended sessions"
                     + (f" ({f['not_recorded']} not recorded)" if f["not_recorded"] else ""))
    if s.get("empathy"):
        lines.append("Empathy: " + ", ".join(
            f"{e['instrument']} {e['score']:g} at session {e['session']}"
            + (f" (from {e['items_answered']} answered items)" if e.get("items_answered") is not None else "")
            for e in s["empathy"]))
    for e in s.get("empathy_not_scored", []):
        lines.append(f"Empathy: {e['instrument']} at session {e['session']} not scored: {e['items_answered']} of "
                     f"{e['items']} items answered")
    if s["change"]:
        lines.append("Change (first -> last score):")
        for inst, ch in s["change"].items():
            lines.append(f"  {inst}: {ch['first']:g} -> {ch['last']:g} ({ch['category']}; reliable change "
                         f"{'>=' if ch['rule'] == 'ge' else '>'} {ch['threshold']:g} points)")
    for key, word in (("sudden_gains", "Sudden gain"), ("sudden_losses", "Sudden loss")):
        for g in s[key]:
            lines.append(f"{word}: {g['instrument']} sessions {g['pregain_session']} -> {g['postgain_session']}, "
                         f"{g['pregain_score']:g} -> {g['postgain_score']:g} ({g['magnitude']:g} points)"
                         + (f"; {g['found']} met the criteria, the {s['sudden_gain_params']['multiple']} shown"
                            if g["found"] > 1 else "") + ("; reversed" if g["reversed"] else ""))
    if s["ruptures"]:
        lines.append("Ruptures detected:")
        for r in s["ruptures"]:
            where = f"{r['instrument']} {r['scale']} ({r['rater']})"
            lines.append(f"  session {r['session']}: {where} fell {r['drop']:g} points; {r['repair']}"
                         + (f" at session {r['repaired_at']}" if r["repaired_at"] is not None else ""))
    ccrt_parts = {k: s["ccrt"].get(k) for k in ("wish", "ro", "rs") if s["ccrt"].get(k)}
    if ccrt_parts:
        lines.append("CCRT: " + "; ".join(f"{k.upper()} {v}" for k, v in ccrt_parts.items())
                     + (f" (tentative: from {s['ccrt']['sessions']} coded sessions, fewer than "
                        f"{s['ccrt']['min_sessions']})" if s["ccrt"].get("tentative") else ""))
    if s["barriers"]:
        lines.append("Barriers: " + "; ".join(f"{b['label']} {b['count']} ({b['unaddressed']} unaddressed)"
                                              for b in s["barriers"]))
    return "\n".join(lines)
