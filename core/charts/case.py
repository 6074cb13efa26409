"""The case overview: everything about one case on one session axis, and the same
overview sized for one projector screen."""

from __future__ import annotations

import math
import textwrap


import plotly.graph_objects as go
import polars as pl

from ..catalog import Catalog, Instrument
from .alliance import _alliance_frame, _alliance_panels, _events_panel
from .barriers import _barrier_panel
from .base import (AXIS_TITLE_CHAR_PX, BASE_FONT, MAX_POINTS, _client_suffix, _compose, empty_figure, _is_empty,
                   _legend_px, limit_points, _Panel, colorbar_beside, place_legends)
from .outcome import _outcome_panel
from .process import _empathy_panel, _feedback_panel
from .themes import _theme_panel


def _several(value) -> list:
    if value is None:
        return [None]
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _of(frame: pl.DataFrame | None, instrument: Instrument | None) -> pl.DataFrame | None:
    """The rows of `frame` on `instrument` (all of them without an instrument column)."""
    if _is_empty(frame) or instrument is None or "instrument" not in frame.columns:
        return frame
    return frame.filter(pl.col("instrument") == instrument.key)


def _named(panel: _Panel | None, instrument: Instrument | None, several: bool) -> _Panel | None:
    """A row's title names its instrument when the overview draws several of its kind."""
    if panel is not None and several and instrument is not None:
        panel.title = f"{panel.title}: {instrument.key}"
    return panel


def case_figure(*, ratings: pl.DataFrame | None = None, alliance: Instrument | list[Instrument] | None = None,
                ruptures: pl.DataFrame | None = None, events: pl.DataFrame | None = None,
                scores: pl.DataFrame | None = None, outcome: Instrument | list[Instrument] | None = None,
                expected_band: pl.DataFrame | None = None, sudden_gains: pl.DataFrame | None = None,
                sudden_losses: pl.DataFrame | None = None, timeline: pl.DataFrame | None = None,
                barriers: pl.DataFrame | None = None, catalog: Catalog | None = None,
                feedback: pl.DataFrame | None = None, empathy: pl.DataFrame | None = None) -> go.Figure:
    """Everything about one case on one session axis: the alliance totals (cutoff,
    ruptures, repairs) and coded events, the outcome against its expected band, the
    theme heatmap and the barriers. Each argument as for the chart of its own; a row
    without data is left out. `alliance` and `outcome` may each be a list of instruments
    (e.g. every one a flag of the case is on): a row each, in that order, the frames'
    rows taken by their `instrument` column."""
    panels: list[_Panel | None] = []
    alliances = _several(alliance)
    for instrument in alliances:
        frame = _alliance_frame(ratings, instrument) if not _is_empty(ratings) else None
        if not _is_empty(frame):
            found = _alliance_panels(limit_points(frame, MAX_POINTS // 4, by=("scale", "rater")), instrument,
                                     _of(ruptures, instrument), with_subscales=False)
            panels += [_named(p, instrument, len(alliances) > 1) for p in found]
    if any(p is not None for p in panels):
        panels.append(_events_panel(events, catalog))
    # The process beside the alliance: scores discussed with the client, and empathy.
    panels += [_feedback_panel(feedback), _empathy_panel(empathy, catalog)]
    outcomes = _several(outcome)
    if not _is_empty(scores):
        for instrument in outcomes:
            panels.append(_named(_outcome_panel(scores, expected_band, instrument, None, None,
                                                _of(sudden_gains, instrument), _of(sudden_losses, instrument),
                                                None), instrument, len(outcomes) > 1))
    if not _is_empty(timeline):
        panels.append(_theme_panel(timeline, catalog, max_cells=MAX_POINTS // 4))
    if not _is_empty(barriers):
        panels.append(_barrier_panel(barriers, catalog))
    fig = _compose(f"Case overview{_client_suffix(ratings, scores, timeline, barriers)}", panels)
    if fig is None:
        return empty_figure("Nothing recorded for this case yet: import sessions with ratings, themes or "
                            "barriers to see the case here.")
    # The title in the top 50 px; each row's legend beside the row (charts.base.place_legends).
    fig.update_layout(margin=dict(t=90, b=80), title=dict(yref="container", y=1, yanchor="top", pad=dict(t=12)))
    return fig


# Sizes of a fitted overview's parts, in pixels of the figure (its type as the template sets it).
LABEL_LINE_PX = 22     # one line of a category label: 16 px tick type and its leading
ROW_GAP_PX = 32        # between two rows: the lower row's title (16 px type) and a little air
MIN_SCORE_ROW_PX = 120  # a score row still shows its scale's ticks and a change
MIN_THEME_ROWS = 3     # a crowded theme heatmap keeps at least its most coded codes


def _rows(fig: go.Figure) -> list[dict]:
    """The overview's rows top to bottom: their y axis, its traces, and for a row of
    categories (coded events, feedback, themes, barriers) its labels."""
    layout = fig.layout.to_plotly_json()
    names = sorted((k for k in layout if k.startswith("yaxis")), key=lambda k: int(k[5:] or 1))
    rows = []
    for name in names:
        ref = "y" + name[5:]
        axis = fig.layout[name]
        traces = [t for t in fig.data if (t.yaxis or "y") == ref]
        heatmaps = [t for t in traces if t.type == "heatmap"]
        labels = None
        if heatmaps:
            labels = [str(v) for v in heatmaps[0].y]
        elif axis.type == "category":
            if axis.showticklabels is False:
                labels = [""]
            elif axis.categoryarray is not None:
                labels = [str(v) for v in axis.categoryarray]
            else:
                labels = list(dict.fromkeys(str(v) for t in traces if t.y is not None for v in t.y))
        rows.append(dict(name=name, axis=axis, heatmap=heatmaps[0] if heatmaps else None, labels=labels,
                         domain=tuple(axis.domain or (0, 1)), legend=_row_legend_px(traces)))
    # Top first: make_subplots puts row 1 at the top of the paper.
    return sorted(rows, key=lambda r: -r["domain"][1])


LEGEND_ITEM_PX, LEGEND_LINE_PX = 26, 19  # a legend entry of one line (15 px type), each further line


def _row_legend_px(traces: list) -> int:
    """The height of a row's own legend: its entries, a long one in several lines."""
    names = [t.name for t in traces if t.showlegend is not False and t.type != "heatmap" and t.name]
    # A long legend may run on into the gap below its row (the next row's title is centred).
    return max(0, sum(LEGEND_ITEM_PX + LEGEND_LINE_PX * name.count("<br>") for name in names) - (ROW_GAP_PX - 8))


def _label_px(labels: list[str]) -> int:
    """The height a row of categories needs: the categories share it evenly, so each gets
    the lines of its longest label."""
    lines = max((label.count("<br>") + 1 for label in labels), default=1)
    return max(40, LABEL_LINE_PX * lines * len(labels) + 16)


def _keep_most_coded(row: dict, keep: int) -> int:
    """Keep the theme heatmap's `keep` most coded codes (in their order); returns how many it had."""
    heatmap = row["heatmap"]
    z = [list(r) for r in heatmap.z]
    every = len(z)
    coded = [sum(v is not None for v in r) for r in z]
    chosen = sorted(sorted(range(every), key=lambda i: (-coded[i], i))[:keep])
    heatmap.update(y=[heatmap.y[i] for i in chosen], z=[z[i] for i in chosen],
                   hovertext=[list(heatmap.hovertext[i]) for i in chosen] if heatmap.hovertext is not None else None)
    row["labels"] = [str(v) for v in heatmap.y]
    return every


def _wrap_title(text: str | None, px: float) -> str | None:
    """An axis title (written along the row's height) in as many lines as the row's height
    needs, at most three; past that the part after its comma (", lower is better") goes."""
    if not text or "<br>" in text or len(text) * AXIS_TITLE_CHAR_PX <= px:
        return text
    width = max(8, int(px / AXIS_TITLE_CHAR_PX))
    lines = textwrap.wrap(text, width)
    if len(lines) > 3 and "," in text:
        lines = textwrap.wrap(text.split(",")[0], width)
    return "<br>".join(lines[:3])


def fit_height(fig: go.Figure, height: int) -> go.Figure:
    """`fig` (a `case_figure`) drawn `height` pixels high, so the case's overview fits one
    screen: every row of categories (coded events, feedback, themes, barriers) keeps room
    for each of its labels, so no label runs into the next one, and the score rows share
    what is left. A theme heatmap with more codes than fit keeps its most coded ones and
    says so in its row's title. Each row's legend stays beside its row."""
    fig = go.Figure(fig)
    fig.update_layout(height=height)
    rows = _rows(fig)
    if not rows:
        return fig
    margin = fig.layout.margin
    plot_px = height - (margin.t if margin.t is not None else 90) - (margin.b if margin.b is not None else 70)
    old_tops = [r["domain"][1] for r in rows]
    room = plot_px - ROW_GAP_PX * (len(rows) - 1)
    scored = [r for r in rows if r["labels"] is None]
    # Each row keeps room for its labels and for its legend beside it; a score row at least
    # shows its scale's ticks and a change.
    least = {r["name"]: max(_label_px(r["labels"]), r["legend"]) if r["labels"] is not None
             else max(MIN_SCORE_ROW_PX, r["legend"]) for r in rows}
    free = room - sum(least[r["name"]] for r in rows if r["labels"] is not None)
    dropped = {}
    for row in rows:
        short = sum(least[r["name"]] for r in scored) - free
        if row["heatmap"] is not None and short > 0 and len(row["labels"]) > MIN_THEME_ROWS:
            before = least[row["name"]]
            keep = len(row["labels"])
            while keep > MIN_THEME_ROWS and before - max(_label_px(row["labels"][:keep]), row["legend"]) < short:
                keep -= 1
            dropped[row["name"]] = (keep, _keep_most_coded(row, keep))
            least[row["name"]] = max(_label_px(row["labels"]), row["legend"])
            free += before - least[row["name"]]
    shares = [r["domain"][1] - r["domain"][0] for r in scored]
    px = {r["name"]: least[r["name"]] for r in rows}
    for row in scored:
        share = (row["domain"][1] - row["domain"][0]) / (sum(shares) or 1)
        px[row["name"]] = max(60, free * share, least[row["name"]] if free >= 0 else 60)
    # Score rows given more than the room left give back what they have above their least.
    over = sum(px[r["name"]] for r in scored) - max(free, 0)
    spare = sum(px[r["name"]] - least[r["name"]] for r in scored if px[r["name"]] > least[r["name"]])
    if over > 0 and spare > 0:
        for row in scored:
            above = px[row["name"]] - least[row["name"]]
            if above > 0:
                px[row["name"]] -= above * min(1.0, over / spare)
    scale = max(0.05, min(1.0, room / sum(px.values())))  # too small a screen: every row shrinks alike
    # ... and so does the type of the legends beside them, which would run into each other.
    legend_font = max(12, math.floor((BASE_FONT - 1) * scale))
    top = 1.0
    new_tops = []
    for row in rows:
        size = px[row["name"]] * scale / plot_px
        domain = [max(0.0, top - size), top]
        fig.layout[row["name"]].domain = domain
        new_tops.append(top)
        if row["labels"] is None:
            fig.layout[row["name"]].title.text = _wrap_title(fig.layout[row["name"]].title.text,
                                                              px[row["name"]] * scale)
        if row["heatmap"] is not None:
            colorbar_beside(row["heatmap"], domain, plot_px)
        top = domain[0] - ROW_GAP_PX * scale / plot_px
    # The rows' titles (make_subplots' annotations at the top of each row's domain) follow.
    for note in fig.layout.annotations:
        if note.yref != "paper" or note.yanchor != "bottom":
            continue
        for row, old, new in zip(rows, old_tops, new_tops):
            if abs(note.y - old) < 1e-6:
                note.y = new
                if row["name"] in dropped:
                    keep, every = dropped[row["name"]]
                    note.text = f"{note.text} (the {keep} most coded of {every} codes)"
    # The right margin holds the legends in their type as drawn: sized for the full 16 px
    # when they were drawn smaller, it left the plot 20 px less of a laptop's chart.
    shown = [t.name for t in fig.data if t.showlegend is not False and t.type != "heatmap" and t.name]
    if shown:
        fig.update_layout(margin=dict(r=max(40, _legend_px(shown, legend_font) + 24)))
    return place_legends(fig, legend_font)
