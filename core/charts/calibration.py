"""Calibration exercises: each rater's score per session."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from .base import BASE_FONT, GREY, INK, OKABE_ITO, TEMPLATE, empty_figure, _esc, _finish, _is_empty, _num


def calibration_scores_chart(divergence: pl.DataFrame, low: float, high: float, unit: str = "points") -> go.Figure:
    """Each rater's score per session of a calibration exercise (`calibration.agreement`'s
    divergence: session_number, mean, answers, scores; widest spread first), one row a
    session: a dot a score, written beside it, on the scale from `low` (just below the
    lowest score given, so 30, 32 and 34 stand apart) to `high`; the line spans the
    spread, the bar marks the mean. Raters stay unnamed on the chart (the table names them)."""
    if _is_empty(divergence):
        return empty_figure("No scores to compare yet: the chart fills in once two raters answered every session.")
    rows = divergence.to_dicts()
    sessions = [f"Session {r['session_number']}" for r in rows]
    fig = go.Figure()
    xs, ys, texts = [], [], []
    for name, r in zip(sessions, rows):
        scores = sorted(s for s in (r["scores"] or []) if s is not None)
        if scores:
            fig.add_trace(go.Scatter(x=[scores[0], scores[-1]], y=[name, name], mode="lines", showlegend=False,
                                     line=dict(color=GREY, width=3), hoverinfo="skip"))
        # Equal scores are drawn once, with how many raters gave them.
        for score in sorted(set(scores)):
            times = scores.count(score)
            xs.append(score)
            ys.append(name)
            texts.append(f"{score:g}" + (f" ×{times}" if times > 1 else ""))
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers+text", name="A rater's score", text=texts,
                             textposition="top center", textfont=dict(size=BASE_FONT),
                             marker=dict(color=OKABE_ITO["blue"], size=14, line=dict(color="white", width=1)),
                             hovertemplate="%{y}: %{text}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[r["mean"] for r in rows], y=sessions, mode="markers", name="Mean",
                             marker=dict(color=INK, symbol="line-ns-open", size=22, line=dict(width=3)),
                             hovertext=[f"Mean {_num(r['mean'])}<br>{_esc(r.get('answers') or '')}" for r in rows],
                             hovertemplate="%{hovertext}<extra></extra>"))
    fig.update_layout(template=TEMPLATE, height=170 + 60 * len(rows),
                      title=dict(text="Each rater's score per session, widest spread at the top"),
                      xaxis=dict(title_text=f"Score ({_esc(unit)}), from {low:g} (not from zero) to {high:g}",
                                 range=[low, high + (high - low) * 0.03]),
                      yaxis=dict(autorange="reversed", type="category", categoryorder="array",
                                 categoryarray=sessions, showgrid=False),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1, xanchor="right"))
    return _finish(fig)
