"""Outcome: one client's scores against the expected band of similar clients, the
reliable-change band, the cutoff, sudden gains and losses, and the not-on-track colours."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from ..analytics.ruptures import WORDS as CLINICAL_WORDS
from ..catalog import Cutoff, Instrument
from .base import (GREY, INK, MAX_POINTS, OKABE_ITO, _client_suffix, _compose, empty_figure, _esc, hover_note,
                   _is_empty, limit_points, _line_across, _num, _Panel, _pct, _scale_range, _score_title,
                   meaningful_change)


# The not-on-track colours of expected.py (OpenFIT's green/orange/red/grey), drawn with
# colour-blind-safe hues and a distinct shape each.
TRACK_STYLE = {
    "green": (OKABE_ITO["bluish_green"], "circle", "Green: at or above expected"),
    "orange": (OKABE_ITO["orange"], "diamond", "Orange: below expected"),
    "red": (OKABE_ITO["vermillion"], "triangle-down", "Red: below the lower band"),
    "grey": (GREY, "circle-open", "Grey: too few scores or clients to compare"),
}


def _polygons(x: list, low: list, high: list) -> tuple[list, list]:
    """Closed shapes between two curves, one per run of sessions that have both, joined
    by None so one trace with fill="toself" draws them all."""
    xs, ys, run = [], [], []
    for item in [*zip(x, low, high), None]:
        if item is not None and item[1] is not None and item[2] is not None:
            run.append(item)
            continue
        if run:
            xs += [p[0] for p in run] + [p[0] for p in reversed(run)] + [run[0][0], None]
            ys += [p[1] for p in run] + [p[2] for p in reversed(run)] + [run[0][1], None]
            run = []
    return xs, ys


def _expected_traces(band: pl.DataFrame, intake: float) -> list:
    """The reference curve of similar clients. expected.py gives change from intake in
    points (median `expected`, lower percentile `lower`, floor percentile `floor`); drawn
    here as scores: intake + change. With an `upper` column the band runs lower-upper,
    otherwise floor-lower (the orange zone: below it is red, above it green)."""
    band = band.sort("session_number")
    base = band["intake"].to_list() if "intake" in band.columns else [intake] * band.height
    x = band["session_number"].to_list()

    def absolute(column):
        if column not in band.columns:
            return [None] * band.height
        return [None if v is None or b is None else b + v for v, b in zip(band[column].to_list(), base)]

    lower, expected = absolute("lower"), absolute("expected")
    upper = "upper" in band.columns
    low, high = (lower, absolute("upper")) if upper else (absolute("floor"), lower)
    traces = []
    xs, ys = _polygons(x, low, high)
    if xs:
        traces.append(go.Scatter(x=xs, y=ys, mode="lines", fill="toself", line=dict(width=0),
                                 fillcolor="rgba(230,159,0,0.22)", hoverinfo="skip",
                                 name="Expected band" if upper else "Orange zone: below expected"))
    if any(v is not None for v in expected):
        methods = band["method"].cast(pl.String).to_list() if "method" in band.columns else [None] * band.height
        traces.append(go.Scatter(
            x=x, y=expected, mode="lines", name="Expected (similar clients)",
            line=dict(color="#555555", dash="dash", width=2), connectgaps=False,
            hovertext=[f"Session {s}: expected {_num(e)}, lower band {_num(lo)}"
                       + (f"<br><i>{hover_note(m)}</i>" if m else "")
                       for s, e, lo, m in zip(x, expected, lower, methods)],
            hovertemplate="%{hovertext}<extra></extra>"))
    return traces


def _segments(changes: pl.DataFrame | None, client: str | None, kind: str, colour: str,
              scores: dict[int, float]) -> list:
    """Pregain -> postgain segments, drawn wide under the score line. The two scores come
    from the row when it has them, else from the client's series (`scores`, by session):
    the case summary's JSON carries only the sessions and the magnitude."""
    if _is_empty(changes):
        return []
    if client is not None and "client_id" in changes.columns:
        changes = changes.filter(pl.col("client_id") == client)
    xs, ys, hover = [], [], []
    for r in changes.sort("pregain_session").to_dicts():
        pre = r.get("pregain_score", scores.get(r["pregain_session"]))
        post = r.get("postgain_score", scores.get(r["postgain_session"]))
        share = f" ({_pct(r['change_pct'])} of the pregain score)" if r.get("change_pct") is not None else ""
        text = (f"<b>Sudden {kind}</b> between sessions {r['pregain_session']} and {r['postgain_session']}<br>"
                f"{_num(pre)} → {_num(post)}: {_num(r['magnitude'])} points{share}")
        xs += [r["pregain_session"], r["postgain_session"], None]
        ys += [pre, post, None]
        hover += [text, text, ""]
    if not xs:
        return []
    return [go.Scatter(x=xs, y=ys, mode="lines", name=f"Sudden {kind}", line=dict(color=colour, width=12),
                       opacity=0.45, hovertext=hover, hovertemplate="%{hovertext}<extra></extra>")]


def _outcome_panel(scores: pl.DataFrame, expected_band, instrument, rc_threshold, cutoff, sudden_gains,
                   sudden_losses, colours) -> _Panel | None:
    frame = scores
    if instrument is not None and "instrument" in frame.columns:
        frame = frame.filter(pl.col("instrument") == instrument.key)
    frame = frame.filter(pl.col("score").is_not_null()).sort("session_number")
    if frame.is_empty():
        return None
    client = frame["client_id"][0] if "client_id" in frame.columns and frame["client_id"].n_unique() == 1 else None
    if expected_band is None and "expected" in frame.columns:
        expected_band = frame
    if colours is None and "colour" in frame.columns:
        colours = frame
    first = float(frame["score"][0])
    x0, x1 = frame["session_number"].min() - 0.5, frame["session_number"].max() + 0.5
    by_session = dict(frame.select("session_number", "score").iter_rows()) if not _is_empty(sudden_gains) or \
        not _is_empty(sudden_losses) else {}
    frame = limit_points(frame, MAX_POINTS // 4)
    key = _esc(instrument.key) if instrument is not None else "Score"
    traces = []
    if rc_threshold is None and instrument is not None and instrument.reliable_change is not None:
        rc_threshold = instrument.reliable_change.threshold
    if rc_threshold is not None:
        t = float(rc_threshold)
        traces.append(go.Scatter(x=[x0, x1, x1, x0, x0], y=[first - t, first - t, first + t, first + t, first - t],
                                 mode="lines", fill="toself", fillcolor="rgba(0,0,0,0.07)", line=dict(width=0),
                                 hoverinfo="skip", name=f"Within ±{_num(t)}: no reliable change"))
    if not _is_empty(expected_band):
        band = limit_points(expected_band, MAX_POINTS // 4, y="expected") if "expected" in expected_band.columns \
            else expected_band
        traces += _expected_traces(band, first)
    if cutoff is None and instrument is not None:
        cutoff = instrument.cutoff
    if cutoff is not None:
        value = cutoff.value if isinstance(cutoff, Cutoff) else float(cutoff)
        words = f": clinical when {CLINICAL_WORDS[cutoff.clinical]} {value:g}" if isinstance(cutoff, Cutoff) else ""
        traces.append(_line_across(x0, x1, value, f"Clinical cutoff {value:g}", f"Clinical cutoff {value:g}{words}"))
    traces += _segments(sudden_gains, client, "gain", OKABE_ITO["bluish_green"], by_session)
    traces += _segments(sudden_losses, client, "loss", OKABE_ITO["vermillion"], by_session)
    sessions, values = frame["session_number"].to_list(), frame["score"].to_list()
    marked = not _is_empty(colours)
    traces.append(go.Scatter(
        x=sessions, y=values, mode="lines" if marked else "lines+markers", name=f"{key} score",
        line=dict(color=INK, width=2.5), marker=dict(color=INK, size=8),
        hovertext=[f"Session {s}: {key} {_num(v)} ({float(v) - first:+g} from the first score)"
                   for s, v in zip(sessions, values)],
        hovertemplate="%{hovertext}<extra></extra>"))
    if marked:
        traces += _colour_markers(frame, colours, key, first)
    return _Panel(traces, dict(title_text=_score_title(instrument, with_direction=True)), height=420,
                  scale=_scale_range(instrument),
                  change=float(rc_threshold) if rc_threshold is not None else meaningful_change(instrument),
                  title="Outcome")


def _colour_markers(frame: pl.DataFrame, colours: pl.DataFrame, key: str, first: float) -> list:
    columns = ["session_number", "colour"] + (["method"] if "method" in colours.columns else [])
    marked = frame.select("session_number", "score").join(
        colours.select(columns).unique("session_number", keep="first"), on="session_number", how="inner")
    traces = []
    for colour, (hue, symbol, name) in TRACK_STYLE.items():
        rows = marked.filter(pl.col("colour") == colour).to_dicts()
        if not rows:
            continue
        traces.append(go.Scatter(
            x=[r["session_number"] for r in rows], y=[r["score"] for r in rows], mode="markers", name=name,
            marker=dict(color=hue, symbol=symbol, size=14, line=dict(color=hue, width=2)),
            hovertext=[f"Session {r['session_number']}: {key} {_num(r['score'])} "
                       f"({float(r['score']) - first:+g} from the first score)<br>{name}"
                       + (f"<br><i>{hover_note(r['method'])}</i>" if r.get("method") else "") for r in rows],
            hovertemplate="%{hovertext}<extra></extra>"))
    return traces


def outcome_chart(scores: pl.DataFrame, expected_band: pl.DataFrame | None = None,
                  instrument: Instrument | None = None, rc_threshold: float | None = None,
                  cutoff: Cutoff | float | None = None, sudden_gains: pl.DataFrame | None = None,
                  sudden_losses: pl.DataFrame | None = None, colours: pl.DataFrame | None = None) -> go.Figure:
    """One client's outcome scores on one instrument, against what was expected.

    - `scores`: session_number, score (client_id, instrument optional). The rows of
      `track_colours` for the client can be passed as they are: their expected, lower,
      floor, intake, colour and method columns then serve as `expected_band` and `colours`.
    - `expected_band`: session_number, expected, lower, floor (and optionally upper,
      intake) as change from intake in points, as `expected.py` returns them.
    - `rc_threshold` and `cutoff` default to the instrument's catalog entry; the grey band
      is the first score ± the reliable change threshold.
    - `sudden_gains` / `sudden_losses`: rows of `identify_sudden_changes`, kept to the
      client of `scores` when both carry a client_id.
    - `colours`: session_number, colour (green, orange, red, grey) and optionally method.
    """
    key = instrument.key if instrument is not None else "outcome"
    panel = None if _is_empty(scores) else _outcome_panel(scores, expected_band, instrument, rc_threshold, cutoff,
                                                          sudden_gains, sudden_losses, colours)
    if panel is None:
        return empty_figure(f"No {key} scores for this client yet: import ratings with a column named after an "
                            "outcome instrument (ORS, PHQ-9, GAD-7, ...) to see the outcome here.")
    name = f"{instrument.name} ({instrument.key})" if instrument is not None else "Outcome"
    return _compose(f"Outcome: {_esc(name)}{_client_suffix(scores)}", [panel])
