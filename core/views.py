"""What one case's views are drawn from: every part read once, and the case overview.

The Case page, presentation mode and the conference handout show the same case in the
same way; they all take its parts from `case_parts` and its overview from
`overview_figure`, so a case looks the same on screen, on the projector and on paper.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from . import charts
from .access import Scope
from .analytics import barriers, expected, outcomes, process, ruptures, summary, themes
from .catalog import Catalog


def case_parts(store, catalog: Catalog, client_id: str, scope: Scope, sg: dict | None = None) -> dict:
    """Everything the views of one case need: its summary (`summary.case_summaries`),
    ratings, detected ruptures, coded events, scored sessions with their colour and
    expected band (`track`), theme timeline and barrier notes. Raises
    `summary.UnknownClients` for a client outside `scope`."""
    params = outcomes.SuddenGainParams.from_catalog(catalog, **(sg or {}))
    clients = [client_id]
    return {
        "case": summary.case_summaries(store, catalog, clients, scope, sg=params)[0],
        "ratings": store.query("SELECT session_number, instrument, scale, rater, score FROM ratings "
                               "WHERE client_id = $c ORDER BY instrument, scale, rater, session_number",
                               {"c": client_id}, scope=scope),
        "ruptures": ruptures.detect_ruptures(store, catalog, scope=scope, clients=clients),
        "events": ruptures.coded_events(store, scope, clients, catalog=catalog),
        "track": expected.track_colours(store, catalog, scope, clients),
        "timeline": themes.theme_timeline(store, catalog, client_id, scope),
        "barriers": barriers.barrier_notes(store, scope, clients=clients, limit=500),
        "feedback": process.feedback_sessions(store, scope, clients),
        "empathy": process.empathy_ratings(store, catalog, scope, clients),
    }


def instruments_in(parts: dict, catalog: Catalog, kind: str) -> list[str]:
    """The catalog's instruments of `kind` ("alliance", "outcome") this case has ratings of."""
    ratings = parts["ratings"]
    present = set(ratings["instrument"].unique().to_list()) if ratings.height else set()
    return [key for key in catalog.instruments_of(kind) if key in present]


def sudden(parts: dict, kind: str, instrument: str) -> pl.DataFrame | None:
    """The case's sudden gains (`kind` "sudden_gains") or losses on one instrument, for a chart."""
    return _sudden_rows(parts, kind, [instrument])


def _sudden_rows(parts: dict, kind: str, instruments: list[str]) -> pl.DataFrame | None:
    case = parts["case"]
    rows = [dict(g, client_id=case["client_id"]) for g in case[kind] if g["instrument"] in instruments]
    return pl.DataFrame(rows) if rows else None


def session_span(parts: dict) -> tuple[int, int] | None:
    """The case's first and last session number over everything it has (sessions with
    ratings, scores, themes, barriers, events, feedback), or None when it has none."""
    lows, highs = [], []
    for frame in parts.values():
        if isinstance(frame, pl.DataFrame) and "session_number" in frame.columns and frame.height:
            column = frame["session_number"].drop_nulls()
            if column.len():
                lows.append(int(column.min()))
                highs.append(int(column.max()))
    return (min(lows), max(highs)) if lows else None


def on_case_axis(parts: dict, fig: go.Figure) -> go.Figure:
    """`fig` (a chart of this case over sessions) on the case's session axis: the detail
    charts put each session where the overview does."""
    return charts.share_session_axis(fig, session_span(parts))


def overview_instruments(parts: dict, catalog: Catalog, kind: str) -> list[str]:
    """The instruments of `kind` the case overview draws: every one a flag of the case is on
    (so the finding behind each flag is on screen), in the catalog's order; without such a
    flag, the case's first."""
    present = instruments_in(parts, catalog, kind)
    flagged = {i for f in parts["case"]["flags"] for i in (f.get("instruments") or [f.get("instrument")])}
    return [key for key in present if key in flagged] or present[:1]


def overview_figure(parts: dict, catalog: Catalog, title: str | None = None) -> go.Figure:
    """The case overview (`charts.case_figure`) on the case's alliance and outcome
    instruments (`overview_instruments`). `title` replaces the default one (which names
    the client), e.g. with a case label in presentation mode and in a de-identified handout."""
    alliance = [catalog.instruments[k] for k in overview_instruments(parts, catalog, "alliance")]
    outcome = [catalog.instruments[k] for k in overview_instruments(parts, catalog, "outcome")]
    keys = [i.key for i in outcome]
    fig = charts.case_figure(
        ratings=parts["ratings"], alliance=alliance or None,
        ruptures=parts["ruptures"], events=parts["events"],
        scores=parts["track"].filter(pl.col("instrument").is_in(keys)) if outcome else None, outcome=outcome or None,
        sudden_gains=_sudden_rows(parts, "sudden_gains", keys), sudden_losses=_sudden_rows(parts, "sudden_losses", keys),
        timeline=parts["timeline"], barriers=parts["barriers"], catalog=catalog,
        feedback=parts.get("feedback"), empathy=parts.get("empathy"))
    if title is not None:
        fig.update_layout(title_text=title)
    return on_case_axis(parts, fig)
