"""The caseload list's alliance curves: a Plotly sparkline and a small SVG one."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from ..catalog import Instrument
from .base import BASE_FONT, GREY, OKABE_ITO, RUPTURE_COLOUR, TEMPLATE, empty_figure, _is_empty, limit_points, _scale_range


def sparkline(series: pl.DataFrame | pl.Series, instrument: Instrument | None = None, width: int = 220,
              height: int = 56) -> go.Figure:
    """A tiny alliance curve for the caseload list: no axes, no legend, the latest
    score marked, the cutoff faint. `series`: session_number, score (one client, one
    instrument, scale and rater), or a polars Series of scores in session order. With
    `instrument` the y range is the scale's range, so sparklines compare across clients."""
    if isinstance(series, pl.Series):
        series = pl.DataFrame({"score": series}).with_row_index("session_number", offset=1)
    if _is_empty(series) or series["score"].drop_nulls().len() == 0:
        fig = empty_figure("no scores", height=height)
        fig.update_layout(width=width, margin=dict(l=0, r=0, t=0, b=0))
        fig.layout.annotations[0].font.size = BASE_FONT - 4
        return fig
    frame = limit_points(series.filter(pl.col("score").is_not_null()).sort("session_number"), 400)
    x, y = frame["session_number"].to_list(), frame["score"].to_list()
    fig = go.Figure()
    cutoff = instrument.cutoff if instrument is not None else None
    if cutoff is not None:
        fig.add_trace(go.Scatter(x=[x[0], x[-1]], y=[cutoff.value] * 2, mode="lines", hoverinfo="skip",
                                 line=dict(color="#bbbbbb", width=1, dash="dot"), name="cutoff"))
    fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line=dict(color=OKABE_ITO["blue"], width=2), name="score",
                             hovertemplate="Session %{x}: %{y}<extra></extra>"))
    concern = cutoff is not None and cutoff.is_clinical(y[-1])
    fig.add_trace(go.Scatter(x=[x[-1]], y=[y[-1]], mode="markers", name="latest", hoverinfo="skip",
                             marker=dict(size=7, color=OKABE_ITO["vermillion"] if concern else OKABE_ITO["blue"])))
    low_high = _scale_range(instrument)
    fig.update_layout(template=TEMPLATE, width=width, height=height, showlegend=False,
                      margin=dict(l=2, r=2, t=2, b=2),
                      xaxis=dict(visible=False), yaxis=dict(visible=False, range=list(low_high) if low_high else None))
    return fig



def sparkline_svg(scores: list[float | None], instrument: Instrument | None = None,
                  rupture_at: list[int] | tuple = (), width: int = 200, height: int = 52) -> str:
    """A caseload row's alliance curve as a small SVG (numbers only, no text from data):
    the scores in session order, the cutoff dotted, each rupture a vermillion triangle, the
    latest score a dot (vermillion when below the cutoff). The y axis spans the client's own
    scores, widened to twice the instrument's reliable change (or its rupture drop): a
    change the size of a reliable one fills half the height, and a flat line looks flat (on the scale's 0-40
    every client's curve was a thin line near the top)."""
    points = [(i, s) for i, s in enumerate(scores) if s is not None]
    if not points:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">'
                f'<title>no scores</title></svg>')
    values = [s for _, s in points]
    cutoff = instrument.cutoff.value if instrument is not None and instrument.cutoff is not None else None
    # The catalog's reliable change, else its smallest drop that counts as a rupture (the
    # SRS has no published reliable change; the catalog keeps the two consistent).
    rc = (instrument.reliable_change.threshold if instrument.reliable_change else instrument.rupture_min_drop or 0) \
        if instrument is not None else 0
    low, high = min(values), max(values)
    if cutoff is not None and abs(cutoff - (low + high) / 2) <= max(rc, high - low):
        low, high = min(low, cutoff), max(high, cutoff)
    span = max(high - low, 2 * rc, 1e-9)
    middle = (low + high) / 2
    low, high = middle - span / 2, middle + span / 2
    scale_range = _scale_range(instrument)
    if scale_range:  # never beyond the scale itself
        if low < scale_range[0]:
            low, high = scale_range[0], scale_range[0] + span
        if high > scale_range[1]:
            low, high = scale_range[1] - span, scale_range[1]
    pad, last = 5, max(1, len(scores) - 1)

    def xy(i: int, s: float) -> tuple[float, float]:
        return (pad + (width - 2 * pad) * i / last,
                height - pad - (height - 2 * pad) * (s - low) / (high - low))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">']
    if cutoff is not None and low <= cutoff <= high:
        y = xy(0, cutoff)[1]
        parts.append(f'<line data-mark="cutoff" x1="{pad}" x2="{width - pad}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="{GREY}" stroke-width="1.5" stroke-dasharray="4 3"/>')
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, s) for i, s in points))
    parts.append(f'<polyline data-mark="scores" points="{line}" fill="none" stroke="{OKABE_ITO["blue"]}" '
                 'stroke-width="2.5" stroke-linejoin="round"/>')
    for i in rupture_at:
        if 0 <= i < len(scores) and scores[i] is not None:
            x, y = xy(i, scores[i])
            parts.append(f'<path data-mark="rupture" d="M{x - 5:.1f},{y + 5:.1f} L{x + 5:.1f},{y + 5:.1f} '
                         f'L{x:.1f},{y - 4:.1f} Z" fill="{RUPTURE_COLOUR}"/>')
    i, s = points[-1]
    concern = instrument is not None and instrument.cutoff is not None and instrument.cutoff.is_clinical(s)
    x, y = xy(i, s)
    parts.append(f'<circle data-mark="latest" cx="{x:.1f}" cy="{y:.1f}" r="3.5" '
                 f'fill="{OKABE_ITO["vermillion"] if concern else OKABE_ITO["blue"]}"/>')
    return "".join(parts) + "</svg>"
