"""Communication barriers: one client's over sessions, the caseload's over the course of
therapy, addressed or not, and the alliance in sessions with and without one."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from ..analytics.barriers import AllianceEffect
from ..catalog import Catalog, Instrument
from .base import (axis_title_lines, BASE_FONT, GREY, INK, MAX_POINTS, OKABE_ITO, PALETTE, SESSION_AXIS, TEMPLATE, _client_suffix,
                   _code_order, _codebook_label, _compose, empty_figure, _esc, _finish, hover_note, _is_empty,
                   limit_points, _num, _Panel, _pct, row_label, _session_ticks, _signed)


SEVERITY_WORDS = {1: "low", 2: "moderate", 3: "high"}  # the data contract's barrier severity
SEVERITY_SIZES = {1: 12, 2: 17, 3: 23}


def _barrier_label(row: dict, catalog: Catalog | None) -> str:
    return row.get("label") or _codebook_label(catalog, "barrier_categories", row["category"])


def _barrier_panel(barriers: pl.DataFrame, catalog: Catalog | None) -> _Panel | None:
    if _is_empty(barriers):
        return None
    rows = limit_points(barriers.sort("session_number"), MAX_POINTS // 4, y="severity").to_dicts() \
        if "severity" in barriers.columns else barriers.sort("session_number").to_dicts()
    states = (("Addressed", True, OKABE_ITO["blue"], "circle"),
              ("Not addressed", False, OKABE_ITO["vermillion"], "diamond"),
              ("Addressed: not recorded", None, GREY, "circle-open"))
    traces = []
    for name, state, colour, symbol in states:
        part = [r for r in rows if r.get("addressed") is state]
        if not part:
            continue
        traces.append(go.Scatter(
            x=[r["session_number"] for r in part], y=[row_label(_esc(_barrier_label(r, catalog))) for r in part],
            mode="markers", name=name,
            # opacity 1: Plotly fades markers whose size varies (bubble charts) unless told.
            marker=dict(color=colour, symbol=symbol, size=[SEVERITY_SIZES.get(r.get("severity"), 12) for r in part],
                        line=dict(color=colour, width=2), opacity=1),
            hovertext=[f"Session {r['session_number']} · {_esc(_barrier_label(r, catalog))}<br>"
                       f"Severity: {SEVERITY_WORDS.get(r.get('severity'), 'not given')} · {name.lower()}"
                       + (f"<br>{hover_note(r['note'])}" if r.get("note") else "") for r in part],
            hovertemplate="%{hovertext}<extra></extra>"))
    order = sorted({r["category"] for r in rows}, key=lambda c: (_code_order(catalog, "barrier_categories", c), c))
    labels = {r["category"]: row_label(_esc(_barrier_label(r, catalog))) for r in rows}
    lines = sum(labels[c].count("<br>") for c in order)  # a label's further lines need room too
    return _Panel(traces, dict(type="category", categoryorder="array", categoryarray=[labels[c] for c in order][::-1],
                               showgrid=True), height=max(170, 60 + 45 * len(order) + 22 * lines),
                  title="Communication barriers (larger = more severe)")


def barrier_timeline_chart(barriers: pl.DataFrame, catalog: Catalog | None = None) -> go.Figure:
    """One client's communication barriers over sessions (rows of `barrier_notes`):
    one row a category, marker size the severity, shape and colour whether the
    therapist addressed it; the note (escaped, shortened) in the hover."""
    panel = _barrier_panel(barriers, catalog) if not _is_empty(barriers) else None
    if panel is None:
        return empty_figure("No communication barriers recorded for this client: import a barriers table "
                            "(category, severity, addressed, note per session) to see them here.")
    return _compose(f"Communication barriers{_client_suffix(barriers)}", [panel])


def barrier_categories_over_time(frame: pl.DataFrame, catalog: Catalog | None = None,
                                 bin_size: int | None = None) -> go.Figure:
    """Barriers per category across the course of therapy, stacked per block of
    `bin_size` session numbers (default: single sessions up to 30, else blocks of 5).

    `frame`: barrier rows (session_number, category) or counts (session_number,
    category, count), for the whole caseload."""
    if _is_empty(frame):
        return empty_figure("No communication barriers recorded in this caseload yet.")
    counts = frame if "count" in frame.columns else frame.group_by("session_number", "category").agg(count=pl.len())
    span = counts["session_number"].max() - counts["session_number"].min()
    size = bin_size or (1 if span <= 30 else 5)
    start = counts["session_number"].min()
    binned = (counts.with_columns(block=(pl.col("session_number") - start) // size)
              .group_by("block", "category").agg(count=pl.col("count").sum()))
    cats = sorted(binned["category"].unique().to_list(),
                  key=lambda c: (_code_order(catalog, "barrier_categories", c), c))
    fig = go.Figure()
    for i, cat in enumerate(cats):
        part = binned.filter(pl.col("category") == cat).sort("block").to_dicts()
        label = _esc(_codebook_label(catalog, "barrier_categories", cat))
        starts = [start + r["block"] * size for r in part]
        where = [f"session {s}" if size == 1 else f"sessions {s}-{s + size - 1}" for s in starts]
        fig.add_trace(go.Bar(
            x=[s + (size - 1) / 2 for s in starts], y=[r["count"] for r in part], width=size * 0.9, name=label,
            marker=dict(color=PALETTE[i % len(PALETTE)]),
            hovertext=[f"{label}: {r['count']} in {w}" for r, w in zip(part, where)],
            hovertemplate="%{hovertext}<extra></extra>"))
    fig.update_layout(template=TEMPLATE, barmode="stack", height=480,
                      title=dict(text="Communication barriers over the course of therapy"),
                      xaxis=dict(title_text=SESSION_AXIS if size == 1 else f"{SESSION_AXIS} (blocks of {size})"),
                      yaxis=dict(title_text="Barriers recorded"))
    fig.update_xaxes(**_session_ticks(fig))
    return _finish(fig)


def barrier_unaddressed_chart(summary: pl.DataFrame) -> go.Figure:
    """Per category, how many recorded barriers the therapist addressed and how many
    not, from `barrier_caseload` (or `barrier_summary`, summed over clients)."""
    if _is_empty(summary):
        return empty_figure("No communication barriers recorded yet, so none can be unaddressed.")
    if "client_id" in summary.columns:
        summary = summary.group_by("category", maintain_order=True).agg(
            label=pl.col("label").first(), count=pl.col("count").sum(), unaddressed=pl.col("unaddressed").sum())
    rows = summary.to_dicts()
    labels = [_esc(r.get("label") or r["category"]) for r in rows]
    addressed = [r["count"] - r["unaddressed"] for r in rows]
    fig = go.Figure()
    for name, values, colour, pattern in (("Addressed", addressed, OKABE_ITO["blue"], ""),
                                          ("Not addressed", [r["unaddressed"] for r in rows],
                                           OKABE_ITO["vermillion"], "/")):
        fig.add_trace(go.Bar(
            y=labels, x=values, orientation="h", name=name, marker=dict(color=colour, pattern=dict(shape=pattern)),
            hovertext=[f"{lab}: {v} of {r['count']} {name.lower()} ({_pct(v / r['count'] if r['count'] else None)})"
                       for lab, v, r in zip(labels, values, rows)],
            hovertemplate="%{hovertext}<extra></extra>"))
    fig.update_layout(template=TEMPLATE, barmode="stack", height=180 + 42 * len(rows),
                      title=dict(text="Communication barriers: addressed in the session or not"),
                      xaxis=dict(title_text="Barriers recorded (sessions)"),
                      yaxis=dict(autorange="reversed"))
    return _finish(fig)


PER_CLIENT_MARKERS = 500  # above this many clients the right panel is a histogram


def _client_markers(fig: go.Figure, both: pl.DataFrame) -> None:
    """One marker per client, sorted by difference; one trace a side, each with a single
    colour: per-point colour lists cost Plotly seconds of validation."""
    ranked = both.with_row_index("rank", offset=1)
    for name, side, colour, symbol in (("Worse with a barrier", pl.col("difference") < 0, OKABE_ITO["vermillion"],
                                        "diamond"),
                                       ("Same or better with a barrier", pl.col("difference") >= 0,
                                        OKABE_ITO["blue"], "circle")):
        part = ranked.filter(side)
        fig.add_trace(go.Scatter(
            x=part["rank"].to_list(), y=part["difference"].to_list(), mode="markers", name=name,
            marker=dict(color=colour, symbol=symbol, size=11),
            hovertext=[f"Client {_esc(r['client_id'])}: {r['difference']:+.2f} ({r['n_with']} sessions with, "
                       f"{r['n_without']} without)" for r in part.to_dicts()],
            hovertemplate="%{hovertext}<extra></extra>"), row=1, col=2)


def barrier_alliance_chart(effect: AllianceEffect | pl.DataFrame, instrument: Instrument | None = None,
                           scale: str = "total", per_client_panel: bool = True) -> go.Figure:
    """Alliance change in sessions with a barrier versus without (`barrier_alliance_effect`).

    Left: the mean change from the previous session, pooled over sessions. Right: each
    client's own difference (with - without), sorted (a histogram of them above
    PER_CLIENT_MARKERS clients); below zero the alliance fared worse in that client's
    barrier sessions. Positive change is always an improvement. Without `per_client_panel` (a
    group-level figure shown to a group) only the pooled panel is drawn: one marker per
    client is a cell of one."""
    per_client = effect.per_client if isinstance(effect, AllianceEffect) else effect
    overall = effect.overall if isinstance(effect, AllianceEffect) else None
    if _is_empty(per_client) or per_client.select(pl.col("n_with").sum()).item() == 0:
        return empty_figure("No alliance score falls in a session with a recorded barrier yet, so there is "
                            "nothing to compare.")
    unit = f"{_esc(instrument.key)} points" if instrument is not None else "points"
    if instrument is not None and scale != "total":
        unit = f"{_esc(instrument.key)} {_esc(scale)} points"
    fig = make_subplots(rows=1, cols=2 if per_client_panel else 1,
                        column_widths=[0.4, 0.6] if per_client_panel else None, horizontal_spacing=0.14,
                        subplot_titles=["All sessions", "Each client with both kinds of session"]
                        if per_client_panel else ["All sessions"])
    if overall is not None and overall.height:
        o = overall.row(0, named=True)
        means = [o["mean_change_with"], o["mean_change_without"]]
        counts = [o["n_with"], o["n_without"]]
    else:
        means = [per_client["mean_change_with"].mean(), per_client["mean_change_without"].mean()]
        counts = [per_client["n_with"].sum(), per_client["n_without"].sum()]
    names = ["With a barrier", "Without"]
    # Two plain bars, each labelled with its own value: a hatched bar read as "the worse
    # one" even when it was the taller, better one. Whether the alliance fared better or
    # worse with a barrier is said in words in the title.
    fig.add_trace(go.Bar(
        x=names, y=means, name="Mean change", showlegend=False, marker=dict(color=[GREY, OKABE_ITO["blue"]]),
        text=[f"{_signed(m)} points<br>{c} sessions" for m, c in zip(means, counts)], textposition="outside",
        # At the chart's own size: Plotly shrank a label wider than its bar to about 12 px.
        cliponaxis=False, textfont=dict(size=BASE_FONT), constraintext="none",
        hovertext=[f"{n}: mean change {_num(m)} over {c} sessions" for n, m, c in zip(names, means, counts)],
        hovertemplate="%{hovertext}<extra></extra>"), row=1, col=1)
    known = [0.0, *(m for m in means if m is not None)]
    top, bottom = max(known), min(known)
    span = (top - bottom) or 1.0
    fig.update_yaxes(range=[bottom - (0.35 * span if bottom < 0 else 0), top + 0.35 * span], row=1, col=1)
    both = per_client.filter(pl.col("difference").is_not_null()).sort("difference")
    if per_client_panel and both.height > PER_CLIENT_MARKERS:
        # A large caseload: the distribution of the clients' differences, not one marker
        # each (tens of thousands of markers with hover texts cost seconds and say less).
        fig.add_trace(go.Histogram(
            x=both["difference"].to_numpy(), nbinsx=60, name="Clients", showlegend=False,
            marker=dict(color=OKABE_ITO["blue"]),
            hovertemplate="%{y} clients with a difference of %{x}<extra></extra>"), row=1, col=2)
        fig.add_vline(x=0, line=dict(color=INK, width=1.5), row=1, col=2)
        fig.update_xaxes(title_text=f"With − without ({unit}); below 0: worse with a barrier", row=1, col=2)
        fig.update_yaxes(title_text="Clients", row=1, col=2)
    elif per_client_panel:
        _client_markers(fig, both)
        fig.add_hline(y=0, line=dict(color=INK, width=1.5), row=1, col=2)
        fig.update_yaxes(title_text=f"With − without ({unit})", row=1, col=2)
        fig.update_xaxes(title_text="Clients, sorted", row=1, col=2)
    fig.add_hline(y=0, line=dict(color=INK, width=1.5), row=1, col=1)
    subtitle = ""
    if None not in means:
        fared = "better" if means[0] > means[1] else "worse" if means[0] < means[1] else "the same"
        subtitle = (f"<br><sup>With a barrier the alliance fared {fared}: {_signed(means[0])} {unit} a session, "
                    f"against {_signed(means[1])} without</sup>")
    if overall is not None and overall.height and overall["mean_within_client_difference"][0] is not None:
        o = overall.row(0, named=True)
        subtitle += (f"<br><sup>Within-client difference {o['mean_within_client_difference']:+.2f} {unit} over "
                     f"{o['clients_with_both']} clients (descriptive, not a test)</sup>")
    height, top, bottom = 600, 170, 70
    # In lines that fit the plot's height: on one line (62 characters, 590 px) the title
    # ran 270 px past a 320 px plot, over the chart's title and out of the figure.
    fig.update_yaxes(title_text=axis_title_lines(["Mean change from the session before", f"in {unit}",
                                                  "(up = better)"], height - top - bottom), row=1, col=1)
    fig.update_layout(template=TEMPLATE, height=height, margin=dict(t=top, b=bottom),
                      title=dict(text=f"Alliance in sessions with and without a communication barrier{subtitle}"))
    return _finish(fig)
