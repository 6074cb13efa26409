"""The process beside the alliance: whether the scores were discussed with the client
(the active part of PCOMS), and empathy as the client rates it."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from ..catalog import Catalog
from .base import OKABE_ITO, PALETTE, _esc, _is_empty, _Panel


# sessions.feedback_discussed (the contract's extension): the active part of PCOMS.
FEEDBACK_STYLE = {True: ("Scores discussed with the client", OKABE_ITO["blue"], "circle"),
                  False: ("Scores not discussed", OKABE_ITO["orange"], "circle-open")}


def _feedback_panel(feedback: pl.DataFrame | None) -> _Panel | None:
    """One row: each attended session with its feedback recorded, discussed (filled) or not
    (open). No panel when the case records no feedback (the column is optional)."""
    if _is_empty(feedback):
        return None
    recorded = feedback.filter(pl.col("feedback_discussed").is_not_null())
    if recorded.is_empty():
        return None
    row = "Feedback"
    missing = feedback.height - recorded.height
    traces = []
    for value, (name, colour, symbol) in FEEDBACK_STYLE.items():
        sessions = recorded.filter(pl.col("feedback_discussed") == value)["session_number"].to_list()
        if not sessions:
            continue
        traces.append(go.Scatter(
            x=sessions, y=[row] * len(sessions), mode="markers", name=name, legendgroup="feedback",
            marker=dict(symbol=symbol, size=14, color=colour, line=dict(width=2, color=colour)),
            hovertemplate=f"{name}<br>session %{{x}}<extra></extra>"))
    title = "Feedback: scores discussed with the client" + (f" ({missing} attended not recorded)" if missing else "")
    return _Panel(traces, dict(type="category", showgrid=False, showticklabels=False), height=90, title=title)


def _empathy_panel(empathy: pl.DataFrame | None, catalog: Catalog | None) -> _Panel | None:
    """The client's rating of the therapist's empathy (catalog kind "empathy", e.g. CARE), one
    line per instrument on its own scale's range."""
    if _is_empty(empathy):
        return None
    traces, ranges = [], []
    for i, key in enumerate(sorted(empathy["instrument"].unique().to_list())):
        inst = catalog.instruments.get(key) if catalog is not None else None
        rows = empathy.filter(pl.col("instrument") == key).sort("session_number")
        name = f"{key} empathy (client)"
        colour = PALETTE[(i + 4) % len(PALETTE)]  # sky blue first: no outcome or rupture colour
        traces.append(go.Scatter(
            x=rows["session_number"].to_list(), y=rows["score"].to_list(), mode="lines+markers", name=_esc(name),
            line=dict(color=colour, width=3), marker=dict(symbol="star", size=13, color=colour),
            hovertemplate=f"{_esc(inst.name if inst else key)}<br>session %{{x}}: %{{y:g}}<extra></extra>"))
        if inst is not None:
            ranges.append(inst.scales["total"])
    axis = dict(title_text="Empathy score")
    if ranges:
        low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
        axis.update(range=[low - 0.02 * (high - low), high + 0.02 * (high - low)],
                    title_text=f"Empathy ({low:g}-{high:g})")
    return _Panel(traces, axis, height=220, title="Empathy rated by the client")
