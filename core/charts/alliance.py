"""The alliance: totals and subscales per rater, ruptures and repairs, coded events, and
the client - therapist difference, on one session axis."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from ..analytics.ruptures import REPAIR_EVENT, RUPTURE_PREFIX, WORDS as CLINICAL_WORDS
from ..catalog import Catalog, Instrument
from .base import (GREY, INK, MAX_POINTS, OKABE_ITO, RUPTURE_COLOUR, _client_suffix, _codebook_label, _compose,
                   empty_figure, _esc, hover_note, _is_empty, limit_points, _line_across, _num, _Panel, _scale_range,
                   _score_title, meaningful_change)


RATER_STYLE = {  # colour and marker: who rated
    "client": (OKABE_ITO["blue"], "circle"),
    "therapist": (OKABE_ITO["orange"], "square"),
    "observer": (OKABE_ITO["bluish_green"], "diamond"),
    "supervisor": (OKABE_ITO["black"], "cross"),
}
SCALE_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
EVENT_SYMBOLS = {"rupture_withdrawal": "triangle-down", "rupture_confrontation": "x", "repair": "triangle-up"}


def _alliance_frame(ratings: pl.DataFrame, instrument: Instrument | None) -> pl.DataFrame:
    frame = ratings
    if instrument is not None and "instrument" in frame.columns:
        frame = frame.filter(pl.col("instrument") == instrument.key)
    if "scale" not in frame.columns:
        frame = frame.with_columns(scale=pl.lit("total"))
    if "rater" not in frame.columns:
        frame = frame.with_columns(rater=pl.lit("client"))
    return frame.filter(pl.col("score").is_not_null()).sort("session_number")


def _series_order(frame: pl.DataFrame, instrument: Instrument | None) -> list[tuple[str, str]]:
    scales = list(instrument.scales) if instrument is not None else []
    raters = list(RATER_STYLE)
    pairs = frame.select("scale", "rater").unique().rows()
    return sorted(pairs, key=lambda p: (scales.index(p[0]) if p[0] in scales else len(scales), p[0],
                                        raters.index(p[1]) if p[1] in raters else len(raters), p[1]))


def _alliance_lines(frame: pl.DataFrame, instrument: Instrument | None, subscales: bool) -> list:
    traces = []
    scale_names = [s for s in (instrument.scales if instrument else []) if s != "total"]
    for scale, rater in _series_order(frame, instrument):
        if (scale == "total") == subscales:
            continue
        series = frame.filter((pl.col("scale") == scale) & (pl.col("rater") == rater))
        colour, symbol = RATER_STYLE.get(rater, (GREY, "circle"))
        dash = SCALE_DASHES[scale_names.index(scale) % len(SCALE_DASHES)] if scale in scale_names else "solid"
        sessions, scores = series["session_number"].to_list(), series["score"].to_list()
        who = f"{rater.capitalize()}: {scale}"
        traces.append(go.Scatter(
            x=sessions, y=scores, name=_esc(who), mode="lines+markers", legendgroup=rater,
            line=dict(color=colour, width=1.8 if subscales else 3.5, dash=dash),
            marker=dict(color=colour, symbol=symbol, size=6 if subscales else 10),
            hovertext=[f"Session {s}<br>{_esc(who)}: {_num(v)}" for s, v in zip(sessions, scores)],
            hovertemplate="%{hovertext}<extra></extra>"))
    return traces


def _repair_words(row: dict) -> str:
    if row.get("repaired_at") is not None:
        return f"Repaired at session {row['repaired_at']}"
    if row.get("repair") == "pending":
        return "Repair pending: the window is still open"
    return "Not repaired within the window"


def _rupture_markers(ruptures: pl.DataFrame | None, frame: pl.DataFrame, instrument: Instrument | None,
                     subscales: bool) -> list:
    if _is_empty(ruptures):
        return []
    found = ruptures
    if instrument is not None and "instrument" in found.columns:
        found = found.filter(pl.col("instrument") == instrument.key)
    found = found.filter((pl.col("scale") == "total") != subscales)
    if found.is_empty():
        return []
    rows = found.sort("session").to_dicts()
    hover = []
    for r in rows:
        needed = f"; the rule needs {_num(r['threshold_points'])}" if r.get("threshold_points") is not None else ""
        lines = [f"<b>Rupture</b> at session {r['session']} ({_esc(r['rater'])}, {_esc(r['scale'])})",
                 f"Drop of {_num(r['drop'])} points from session {r['previous_session']} "
                 f"({_num(r['previous_score'])} → {_num(r['score'])}){needed}",
                 _repair_words(r)]
        if r.get("params"):
            lines.append(f"<i>{hover_note(r['params'])}</i>")
        hover.append("<br>".join(lines))
    traces = [go.Scatter(
        x=[r["session"] for r in rows], y=[r["score"] for r in rows], mode="markers",
        name="Rupture (score drop)", legendgroup="rupture",
        marker=dict(symbol="triangle-down", size=17, color=RUPTURE_COLOUR,
                    line=dict(color="white", width=1.5)),
        hovertext=hover, hovertemplate="%{hovertext}<extra></extra>")]
    # Repairs sit on the series' score at the repair session.
    scores = {(s, sc, ra): v for s, sc, ra, v in frame.select("session_number", "scale", "rater", "score").rows()}
    repairs = [(r, scores.get((r["repaired_at"], r["scale"], r["rater"]))) for r in rows
               if r.get("repaired_at") is not None]
    repairs = [(r, v) for r, v in repairs if v is not None]
    if repairs:
        traces.append(go.Scatter(
            x=[r["repaired_at"] for r, _ in repairs], y=[v for _, v in repairs], mode="markers",
            name="Repair (score back)", legendgroup="repair",
            marker=dict(symbol="triangle-up", size=17, color=OKABE_ITO["bluish_green"],
                        line=dict(color="white", width=1.5)),
            hovertext=[f"<b>Repair</b> at session {r['repaired_at']} ({_esc(r['rater'])}, {_esc(r['scale'])})<br>"
                       f"Back to {_num(v)}, at least the {_num(r['previous_score'])} before the drop "
                       f"at session {r['session']}" for r, v in repairs],
            hovertemplate="%{hovertext}<extra></extra>"))
    return traces


def _event_label(catalog: Catalog | None, event: str) -> str:
    return _codebook_label(catalog, "events", event)


def _events_panel(events: pl.DataFrame | None, catalog: Catalog | None) -> _Panel | None:
    if _is_empty(events):
        return None
    grouped: dict[tuple[int, str], list[dict]] = {}
    for row in events.sort("session_number").to_dicts():
        grouped.setdefault((row["session_number"], row["event"]), []).append(row)
    # Ruptures first, withdrawal before confrontation, as Safran & Muran list them.
    kinds = sorted({e for _, e in grouped},
                   key=lambda e: (not e.startswith(RUPTURE_PREFIX), e != "rupture_withdrawal", e))
    traces = []
    for event in kinds:
        label = _event_label(catalog, event)
        points = [(s, rows) for (s, e), rows in grouped.items() if e == event]
        hover = []
        for session, rows in points:
            lines = [f"<b>{_esc(label)}</b>, session {session}"]
            for r in rows:
                note = hover_note(r.get("note")) if r.get("note") else "<i>no note</i>"
                lines.append(f"{_esc(r.get('rater') or 'unknown rater')}: {note}")
            if event.startswith(RUPTURE_PREFIX):
                repaired = [r["repaired_at"] for r in rows if r.get("repaired_at") is not None]
                lines.append(f"Coded repair at session {min(repaired)}" if repaired
                             else "No coded repair within the window")
            hover.append("<br>".join(lines))
        is_rupture = event.startswith(RUPTURE_PREFIX)
        colour = RUPTURE_COLOUR if is_rupture else OKABE_ITO["bluish_green"] if event == REPAIR_EVENT else GREY
        traces.append(go.Scatter(
            x=[s for s, _ in points], y=[_esc(label)] * len(points), mode="markers", name=_esc(f"Coded: {label}"),
            marker=dict(symbol=EVENT_SYMBOLS.get(event, "diamond" if is_rupture else "circle"), size=16,
                        color=colour, line=dict(width=2, color=colour)),
            hovertext=hover, hovertemplate="%{hovertext}<extra></extra>"))
    labels = [_esc(_event_label(catalog, e)) for e in kinds]
    return _Panel(traces, dict(type="category", categoryorder="array", categoryarray=labels[::-1],
                               showgrid=False), height=60 + 40 * len(labels), title="Coded ruptures and repairs")



def _discrepancy_panel(discrepancy: pl.DataFrame | None, instrument: Instrument | None) -> _Panel | None:
    if _is_empty(discrepancy):
        return None
    found = discrepancy
    if instrument is not None and "instrument" in found.columns:
        found = found.filter(pl.col("instrument") == instrument.key)
    found = found.filter(pl.col("scale") == "total").sort("session_number")
    if found.is_empty():
        return None
    rows = found.to_dicts()
    flagged = [bool(r.get("flagged")) for r in rows]
    traces = [go.Bar(
        x=[r["session_number"] for r in rows], y=[r["difference"] for r in rows], name="Client − therapist",
        marker=dict(color=[OKABE_ITO["vermillion"] if f else GREY for f in flagged],
                    pattern=dict(shape=["/" if f else "" for f in flagged])),
        hovertext=[f"Session {r['session_number']}: client {_num(r['client_score'])}, therapist "
                   f"{_num(r['therapist_score'])}<br>Difference {float(r['difference']):+g}"
                   + (" <b>(flagged)</b>" if f else "")
                   + (f"<br><i>{hover_note(r['params'])}</i>" if r.get("params") else "")
                   for r, f in zip(rows, flagged)],
        hovertemplate="%{hovertext}<extra></extra>")]
    limit = found["threshold_points"].drop_nulls()
    if limit.len():
        t = float(limit[0])
        x0, x1 = found["session_number"].min() - 0.5, found["session_number"].max() + 0.5
        traces.append(go.Scatter(x=[x0, x1, None, x0, x1], y=[t, t, None, -t, -t], mode="lines",
                                 name=f"Flag at ±{_num(t)} points", line=dict(color=INK, dash="dot", width=1.5),
                                 hoverinfo="skip"))
    return _Panel(traces, dict(title_text="Client − therapist (points)", zeroline=True, zerolinecolor="#999999"),
                  height=230, title="Client and therapist see the alliance differently")


def _alliance_panels(frame: pl.DataFrame, instrument: Instrument | None, ruptures, with_subscales: bool):
    sessions = frame["session_number"]
    total = _Panel(_alliance_lines(frame, instrument, subscales=False), dict(title_text=_score_title(instrument)),
                   height=380, title="Alliance (total)", scale=_scale_range(instrument),
                   change=meaningful_change(instrument))
    if total.traces:
        cutoff = instrument.cutoff if instrument is not None else None
        if cutoff is not None:
            words = f"concern when {CLINICAL_WORDS[cutoff.clinical]} {cutoff.value:g}"
            total.traces.insert(0, _line_across(sessions.min() - 0.5, sessions.max() + 0.5, cutoff.value,
                                                f"{_esc(instrument.key)} cutoff {cutoff.value:g}",
                                                f"{_esc(instrument.key)} cutoff {cutoff.value:g}: {words}"))
        total.traces += _rupture_markers(ruptures, frame, instrument, subscales=False)
    panels = [total]
    if with_subscales:
        ranges = {instrument.scales[s] for s in frame["scale"].unique() if instrument and s in instrument.scales
                  and s != "total"}
        title = f"Subscale score ({min(r[0] for r in ranges):g}-{max(r[1] for r in ranges):g})" if ranges \
            else "Subscale score"
        sub = _Panel(_alliance_lines(frame, instrument, subscales=True), dict(title_text=title), height=280,
                     title="Subscales")
        sub.traces += _rupture_markers(ruptures, frame, instrument, subscales=True)
        panels.append(sub)
    return panels


def alliance_chart(ratings: pl.DataFrame, ruptures: pl.DataFrame | None = None, events: pl.DataFrame | None = None,
                   discrepancy: pl.DataFrame | None = None, instrument: Instrument | None = None,
                   catalog: Catalog | None = None) -> go.Figure:
    """One client's alliance over sessions.

    - `ratings`: the client's rating rows (session_number, instrument, scale, rater,
      score); rows of other instruments than `instrument` are ignored.
    - `ruptures` (`detect_ruptures`), `events` (`coded_events`) and `discrepancy`
      (`alliance_discrepancy`) for the same client, each optional.

    Rows on one session axis: the total scale per rater (thick lines, the cutoff dashed,
    ruptures and repairs marked), the subscales (thin lines, one dash a subscale), the
    coded events, and the client - therapist difference (bars, flagged ones hatched).
    Colour and marker say who rated: blue circles the client, orange squares the therapist.
    """
    frame = _alliance_frame(ratings, instrument) if not _is_empty(ratings) else None
    if _is_empty(frame):
        if instrument is None:
            return empty_figure("No alliance ratings for this client yet: import ratings with an SRS or WAI-SR "
                                "column (for example SRS or WAI-SR:total:therapist) to see the alliance here.")
        return empty_figure(f"No {instrument.key} ratings for this client yet: import ratings with a column "
                            f"named {instrument.key} (or {instrument.key}:total:client) to see the alliance here.")
    frame = limit_points(frame, MAX_POINTS // 2, by=("scale", "rater"))
    name = f"{instrument.name} ({instrument.key})" if instrument is not None else "Alliance"
    panels = _alliance_panels(frame, instrument, ruptures, with_subscales=True)
    panels += [_events_panel(events, catalog), _discrepancy_panel(discrepancy, instrument)]
    return _compose(f"Alliance: {_esc(name)}{_client_suffix(ratings)}", panels)
