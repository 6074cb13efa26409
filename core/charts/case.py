"""The case overview: everything about one case on one session axis, and the same
overview sized for one projector screen."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import polars as pl

from ..catalog import Catalog, Instrument
from .alliance import _alliance_frame, _alliance_panels, _events_panel
from .barriers import _barrier_panel
from .base import MAX_POINTS, _client_suffix, _compose, empty_figure, _is_empty, limit_points, _Panel
from .outcome import _outcome_panel
from .process import _empathy_panel, _feedback_panel
from .themes import _theme_panel


def case_figure(*, ratings: pl.DataFrame | None = None, alliance: Instrument | None = None,
                ruptures: pl.DataFrame | None = None, events: pl.DataFrame | None = None,
                scores: pl.DataFrame | None = None, outcome: Instrument | None = None,
                expected_band: pl.DataFrame | None = None, sudden_gains: pl.DataFrame | None = None,
                sudden_losses: pl.DataFrame | None = None, timeline: pl.DataFrame | None = None,
                barriers: pl.DataFrame | None = None, catalog: Catalog | None = None,
                feedback: pl.DataFrame | None = None, empathy: pl.DataFrame | None = None) -> go.Figure:
    """Everything about one case on one session axis: the alliance totals (cutoff,
    ruptures, repairs) and coded events, the outcome against its expected band, the
    theme heatmap and the barriers. Each argument as for the chart of its own; a row
    without data is left out."""
    panels: list[_Panel | None] = []
    frame = _alliance_frame(ratings, alliance) if not _is_empty(ratings) else None
    if not _is_empty(frame):
        panels += _alliance_panels(limit_points(frame, MAX_POINTS // 4, by=("scale", "rater")), alliance, ruptures,
                                   with_subscales=False)
        panels.append(_events_panel(events, catalog))
    # The process beside the alliance: scores discussed with the client, and empathy.
    panels += [_feedback_panel(feedback), _empathy_panel(empathy, catalog)]
    if not _is_empty(scores):
        panels.append(_outcome_panel(scores, expected_band, outcome, None, None, sudden_gains, sudden_losses, None))
    if not _is_empty(timeline):
        panels.append(_theme_panel(timeline, catalog, max_cells=MAX_POINTS // 4))
    if not _is_empty(barriers):
        panels.append(_barrier_panel(barriers, catalog))
    fig = _compose(f"Case overview{_client_suffix(ratings, scores, timeline, barriers)}", panels)
    if fig is None:
        return empty_figure("Nothing recorded for this case yet: import sessions with ratings, themes or "
                            "barriers to see the case here.")
    # Many rows share one legend: across the top, it leaves the plots the full width. It
    # sits above the first row's title (an annotation the legend does not make room for).
    # The title takes the first 50 px, the legend (about three entries a line) the next.
    entries = sum(1 for t in fig.data if t.showlegend is not False and t.type != "heatmap")
    legend_px = 28 * math.ceil(entries / 3)
    height = fig.layout.height + legend_px
    fig.update_layout(height=height, margin=dict(t=50 + legend_px + 40, b=80),
                      title=dict(yref="container", y=1, yanchor="top", pad=dict(t=12)),
                      legend=dict(orientation="h", yref="container", y=1 - 50 / height, yanchor="top",
                                  x=0, xanchor="left"))
    return fig


def fit_height(fig: go.Figure, height: int) -> go.Figure:
    """`fig` (a `case_figure`) drawn `height` pixels high, its rows shrunk in proportion,
    the legend kept under the title: the overview on one projector screen."""
    fig = go.Figure(fig)
    fig.update_layout(height=height)
    if fig.layout.legend.yref == "container":
        # A projector is wide: about five legend entries a line, not three.
        entries = sum(1 for t in fig.data if t.showlegend is not False and t.type != "heatmap")
        fig.update_layout(legend_y=1 - 50 / height, margin_t=50 + 28 * math.ceil(entries / 5) + 30)
    return fig
