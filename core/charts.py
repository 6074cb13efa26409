"""Charts for the case conference: polars frames in, Plotly figures out.

Every function takes the frames that `core.analytics` returns (and catalog entries for
ranges, cutoffs and labels) and returns a `plotly.graph_objects.Figure`; nothing here
reads the store or imports Streamlit. Rules that hold for every chart:

- **One look.** The `caseconf` template, registered once below: type large enough to
  read from the back of a conference room on a projector, white background, light grid,
  and the Okabe-Ito palette (Okabe & Ito 2008), which stays distinct for the common
  colour-vision deficiencies. Where colour carries meaning, a marker shape or line dash
  carries it too. Streamlit pages should draw with `st.plotly_chart(fig, theme=None)`,
  or Streamlit's own theme replaces this one.
- **Notes are text, not markup.** Plotly renders hover text as HTML-like markup, so a
  note reading ``<b>x</b>`` would turn bold (and a link would be a link). Every free
  text is escaped and shortened by `hover_note` before it reaches a hover.
- **At most `MAX_POINTS` points a figure.** A browser drawing a million SVG markers
  freezes the meeting. Long series are thinned by min-max decimation (`limit_points`:
  each bucket keeps its lowest and highest score, so a rupture's drop survives), grids
  are binned, and `point_count` checks the result.
- **Empty input gives a sentence** (`empty_figure`): what is missing and how to get it,
  never a blank pair of axes.
- **One session axis.** Charts over a case share the x axis "Session number", so
  `case_figure` can stack alliance, outcome, themes and barriers on it.
"""

from __future__ import annotations

import html
import math
import re
import textwrap
from dataclasses import dataclass, field
from typing import Sequence

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
from plotly.subplots import make_subplots

from .analytics.barriers import AllianceEffect
from .analytics.ruptures import REPAIR_EVENT, RUPTURE_PREFIX
from .analytics.ruptures import WORDS as CLINICAL_WORDS
from .analytics.suppression import share_hidden
from .catalog import Catalog, Cutoff, Instrument, SuppressionSettings

TEMPLATE = "caseconf"
MAX_POINTS = 100_000
NOTE_HOVER_CHARS = 200  # a hover is a glance, not a reading room: the notes page shows the rest
NOTE_HOVER_WIDTH = 60
SESSION_AXIS = "Session number"
FONT_FAMILY = "Arial, Helvetica, sans-serif"
BASE_FONT = 17

# Okabe & Ito (2008), "Color Universal Design".
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "bluish_green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish_purple": "#CC79A7",
}
GREY = "#8C8C8C"
INK = "#222222"
# Yellow last: it is hard to see on white, so only a chart with eight series gets it.
PALETTE = tuple(OKABE_ITO[c] for c in ("blue", "orange", "bluish_green", "vermillion", "sky_blue",
                                       "reddish_purple", "black", "yellow"))
# One hue, light to dark (after ColorBrewer "Blues"): the order survives any colour vision and grey print.
SEQUENTIAL = [[0.0, "#deebf7"], [0.5, "#4a98c9"], [1.0, "#08306b"]]

RATER_STYLE = {  # colour and marker: who rated
    "client": (OKABE_ITO["blue"], "circle"),
    "therapist": (OKABE_ITO["orange"], "square"),
    "observer": (OKABE_ITO["bluish_green"], "diamond"),
    "supervisor": (OKABE_ITO["reddish_purple"], "cross"),
}
SCALE_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")

# The not-on-track colours of expected.py (OpenFIT's green/orange/red/grey), drawn with
# colour-blind-safe hues and a distinct shape each.
TRACK_STYLE = {
    "green": (OKABE_ITO["bluish_green"], "circle", "Green: at or above expected"),
    "orange": (OKABE_ITO["orange"], "diamond", "Orange: below expected"),
    "red": (OKABE_ITO["vermillion"], "triangle-down", "Red: below the lower band"),
    "grey": (GREY, "circle-open", "Grey: too few scores or clients to compare"),
}

EVENT_SYMBOLS = {"rupture_withdrawal": "triangle-down", "rupture_confrontation": "x", "repair": "triangle-up"}
SEVERITY_WORDS = {1: "low", 2: "moderate", 3: "high"}  # the data contract's barrier severity
SEVERITY_SIZES = {1: 12, 2: 17, 3: 23}
INTENSITY_MAX = 5  # the data contract's theme intensity, 1-5
# Grey for "coded without an intensity" (drawn as 0), then light to dark blue for 1-5.
INTENSITY_SCALE = [[0.0, "#d0d0d0"], [0.1, "#d0d0d0"], [0.1, "#c6dbef"], [0.55, "#4a98c9"], [1.0, "#08306b"]]
CCRT_PARTS = (("wish", "ccrt_wish", "Wish (W)", OKABE_ITO["blue"]),
              ("ro", "ccrt_ro", "Response of other (RO)", OKABE_ITO["orange"]),
              ("rs", "ccrt_rs", "Response of self (RS)", OKABE_ITO["bluish_green"]))


def _axis_style() -> dict:
    return dict(showgrid=True, gridcolor="#e3e3e3", gridwidth=1, zeroline=False, showline=True,
                linecolor="#555555", ticks="outside", tickcolor="#555555", automargin=True,
                title=dict(font=dict(size=BASE_FONT + 1), standoff=12), tickfont=dict(size=BASE_FONT - 1))


pio.templates[TEMPLATE] = go.layout.Template(layout=dict(
    font=dict(family=FONT_FAMILY, size=BASE_FONT, color=INK),
    title=dict(font=dict(size=BASE_FONT + 5), x=0.01, xanchor="left"),
    paper_bgcolor="white", plot_bgcolor="white", colorway=list(PALETTE),
    colorscale=dict(sequential=SEQUENTIAL),
    xaxis=_axis_style(), yaxis=_axis_style(),
    legend=dict(font=dict(size=BASE_FONT - 1), bgcolor="rgba(255,255,255,0.85)"),
    hoverlabel=dict(font=dict(family=FONT_FAMILY, size=BASE_FONT - 1), bgcolor="white", align="left"),
    margin=dict(l=80, r=40, t=90, b=70),
))


# --------------------------------------------------------------------------- helpers

def _esc(text) -> str:
    # quote=False: Plotly decodes &lt; &gt; &amp; and numeric entities but shows &quot;
    # literally; quotes cannot open a tag, so they stay as they are.
    return html.escape(str(text), quote=False)


def _wrap(text: str, width: int = NOTE_HOVER_WIDTH) -> str:
    return "<br>".join(_esc(line) for line in textwrap.wrap(text, width) or [""])


def hover_note(note, limit: int = NOTE_HOVER_CHARS, width: int = NOTE_HOVER_WIDTH) -> str:
    """A free-text note made safe for a hover: cut to `limit` characters (at a word
    where possible, with an ellipsis), escaped, wrapped into lines of `width`."""
    if note is None:
        return ""
    text = " ".join(str(note).split())
    if len(text) > limit:
        cut = text[:limit]
        cut = cut[:cut.rfind(" ")] if " " in cut[limit // 2:] else cut
        text = cut.rstrip(" ,;.") + "…"
    return _wrap(text, width)


def _rgba(colour: str, alpha: float) -> str:
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def _num(x) -> str:
    return "–" if x is None else f"{round(float(x), 2):g}"


def _signed(x) -> str:
    return "–" if x is None else f"{float(x):+.2f}"


def _pct(x) -> str:
    return "–" if x is None else f"{100 * float(x):.0f} %"


def empty_figure(message: str, height: int = 240) -> go.Figure:
    """A figure holding only `message`, for an input with nothing to draw."""
    fig = go.Figure()
    fig.add_annotation(text=_wrap(message, 90), x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=BASE_FONT + 1, color="#555555"))
    fig.update_layout(template=TEMPLATE, height=height, margin=dict(l=20, r=20, t=20, b=20),
                      xaxis=dict(visible=False), yaxis=dict(visible=False))
    return fig


def _is_empty(frame) -> bool:
    return frame is None or frame.height == 0


def point_count(fig: go.Figure) -> int:
    """The points a figure asks the browser to draw: markers and line vertices, bars,
    heatmap cells, Sankey nodes and links."""
    total = 0
    for trace in fig.data:
        if trace.type == "heatmap":
            total += sum(len(row) for row in trace.z) if trace.z is not None else 0
        elif trace.type == "sankey":
            total += len(trace.node.label or ()) + len(trace.link.value or ())
        else:
            total += max(len(trace.x) if trace.x is not None else 0, len(trace.y) if trace.y is not None else 0)
    return total


def limit_points(frame: pl.DataFrame, max_points: int = MAX_POINTS, *, x: str = "session_number",
                 y: str = "score", by: Sequence[str] = ()) -> pl.DataFrame:
    """At most `max_points` rows of a series frame, keeping its shape.

    Each series (one per value of `by`) is cut into equal buckets of consecutive rows by
    `x`, and each bucket keeps the rows with its lowest and highest `y` (min-max
    decimation): a sudden drop stays visible, where keeping every k-th row could step
    over it. A frame within the limit comes back unchanged."""
    if frame.height <= max_points:
        return frame
    by = list(by)
    groups = frame.select(by).unique().height if by else 1
    if 2 * groups > max_points:  # more series than pairs of points: no shape to keep
        return frame.sort([*by, x]).gather_every(math.ceil(frame.height / max_points))
    buckets = max(1, max_points // groups // 2)
    ranked = frame.with_row_index("_row").sort([*by, x])
    position, size = pl.int_range(pl.len()), pl.len()
    if by:
        position, size = position.over(by), size.over(by)
    ranked = ranked.with_columns(_bucket=(position * buckets // size))
    ends = ranked.group_by([*by, "_bucket"]).agg(low=pl.col("_row").sort_by(y).first(),
                                                 high=pl.col("_row").sort_by(y).last())
    keep = pl.concat([ends["low"], ends["high"]]).unique()
    return ranked.filter(pl.col("_row").is_in(keep.implode())).drop("_row", "_bucket")


_PER_POINT = ("x", "y", "text", "hovertext", "customdata")


def _thin(trace, step: int) -> None:
    """Keep every `step`-th point of a scatter or bar trace, with its per-point styling."""
    n = len(trace.x) if trace.x is not None else 0
    for name in _PER_POINT:
        value = trace[name]
        if value is not None and not isinstance(value, str) and len(value) == n:
            trace[name] = list(value)[::step]
    if "marker" in trace:
        for name in ("color", "size", "symbol"):
            value = trace.marker[name]
            if value is not None and not isinstance(value, (str, int, float)) and len(value) == n:
                trace.marker[name] = list(value)[::step]


def _finish(fig: go.Figure, max_points: int = MAX_POINTS) -> go.Figure:
    """The last guard of the points cap: inputs are limited before drawing, so this only
    thins what slipped through (scatter and bar traces; grids are binned upstream)."""
    total = point_count(fig)
    if total > max_points:
        step = math.ceil(total / max_points)
        for trace in fig.data:
            if trace.type in ("scatter", "scattergl", "bar") and trace.x is not None and len(trace.x) > 1:
                _thin(trace, step)
    return fig


def _scale_range(instrument: Instrument | None, scale: str = "total") -> tuple[float, float] | None:
    if instrument is None or scale not in instrument.scales:
        return None
    return instrument.scales[scale]


def _score_title(instrument: Instrument | None, scale: str = "total", with_direction: bool = False) -> str:
    if instrument is None:
        return "Score"
    key = instrument.key or instrument.name
    name = key if scale == "total" else f"{key} {scale}"
    low, high = instrument.scales.get(scale, instrument.scales["total"])
    title = f"{name} score ({low:g}-{high:g})"
    return f"{title}, {instrument.direction} is better" if with_direction else title


def _session_ticks(fig: go.Figure) -> dict:
    """Whole-number session ticks: every session on a short case, fewer on a long one."""
    values = [v for t in fig.data if t.type in ("scatter", "bar", "heatmap") and t.x is not None
              for v in t.x if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not values:
        return {}
    span = max(values) - min(values)
    for limit, step in ((20, 1), (40, 2), (100, 5), (200, 10)):
        if span <= limit:
            return dict(tick0=0, dtick=step)
    return {}


def _codebook_label(catalog: Catalog | None, codebook: str, code: str) -> str:
    if catalog is not None and codebook in catalog.codebooks:
        return catalog.codebooks[codebook].codes.get(code, code)
    return code.replace("_", " ").capitalize()


def _code_order(catalog: Catalog | None, codebook: str, code: str) -> int:
    if catalog is not None and codebook in catalog.codebooks:
        codes = list(catalog.codebooks[codebook].codes)
        return codes.index(code) if code in codes else len(codes)
    return 0


def _kind_short(catalog: Catalog | None, kind: str) -> str:
    """"RO" for "CCRT response of other (RO)", else the codebook's label."""
    label = catalog.codebooks[kind].label if catalog is not None and kind in catalog.codebooks else None
    if label is None:
        return kind.removeprefix("ccrt_").upper() if kind.startswith("ccrt_") else kind.capitalize()
    found = re.search(r"\(([^)]+)\)\s*$", label)
    return found.group(1) if found else label


def _client_suffix(*frames) -> str:
    for frame in frames:
        if frame is not None and "client_id" in frame.columns and frame["client_id"].n_unique() == 1:
            return f" · client {_esc(frame['client_id'][0])}"
    return ""


def _line_across(x0: float, x1: float, y: float, name: str, hover: str, *, dash="dash", colour=INK,
                 width=2.0, legendgroup: str | None = None, showlegend=True) -> go.Scatter:
    return go.Scatter(x=[x0, x1], y=[y, y], mode="lines", name=name, line=dict(color=colour, dash=dash, width=width),
                      hovertext=[hover, hover], hovertemplate="%{hovertext}<extra></extra>",
                      legendgroup=legendgroup, showlegend=showlegend)


# --------------------------------------------------------------------------- composing panels

@dataclass
class _Panel:
    """One row of a chart: its traces, its y axis and its height in pixels."""
    traces: list = field(default_factory=list)
    yaxis: dict = field(default_factory=dict)
    height: int = 360
    title: str = ""


def _compose(title: str, panels: list[_Panel | None], x_title: str = SESSION_AXIS) -> go.Figure | None:
    """Stack panels on one shared x axis; None when no panel has anything to draw."""
    panels = [p for p in panels if p is not None and p.traces]
    if not panels:
        return None
    rows = len(panels)
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.07 if rows > 1 else 0.0,
                        row_heights=[p.height for p in panels],
                        subplot_titles=[p.title for p in panels] if rows > 1 else None)
    for row, panel in enumerate(panels, start=1):
        for trace in panel.traces:
            fig.add_trace(trace, row=row, col=1)
        fig.update_yaxes(row=row, col=1, **panel.yaxis)
    fig.update_xaxes(**_session_ticks(fig))
    fig.update_xaxes(title_text=x_title, row=rows, col=1)
    fig.update_layout(template=TEMPLATE, title=dict(text=title), height=sum(p.height for p in panels) + 170,
                      hovermode="closest")
    seen = set()
    for trace in fig.data:  # one legend entry for the same thing drawn in several rows
        if trace.legendgroup and trace.showlegend is not False:
            trace.showlegend = (trace.legendgroup, trace.name) not in seen
            seen.add((trace.legendgroup, trace.name))
    for trace in fig.data:  # a heatmap's colour bar sits beside its own row
        if trace.type == "heatmap":
            domain = fig.layout["yaxis" + trace.yaxis[1:]].domain
            trace.colorbar.update(y=(domain[0] + domain[1]) / 2, len=domain[1] - domain[0], yanchor="middle")
    return _finish(fig)


# --------------------------------------------------------------------------- alliance

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
        marker=dict(symbol="triangle-down", size=17, color=OKABE_ITO["vermillion"],
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
        colour = OKABE_ITO["vermillion"] if is_rupture else OKABE_ITO["bluish_green"] if event == REPAIR_EVENT else GREY
        traces.append(go.Scatter(
            x=[s for s, _ in points], y=[_esc(label)] * len(points), mode="markers", name=_esc(f"Coded: {label}"),
            marker=dict(symbol=EVENT_SYMBOLS.get(event, "diamond" if is_rupture else "circle"), size=16,
                        color=colour, line=dict(width=2, color=colour)),
            hovertext=hover, hovertemplate="%{hovertext}<extra></extra>"))
    labels = [_esc(_event_label(catalog, e)) for e in kinds]
    return _Panel(traces, dict(type="category", categoryorder="array", categoryarray=labels[::-1],
                               showgrid=False), height=60 + 40 * len(labels), title="Coded ruptures and repairs")


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
                   height=380, title="Alliance (total)")
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


# --------------------------------------------------------------------------- outcome

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
            x=x, y=expected, mode="lines", name="Expected: median of similar clients",
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
                                 hoverinfo="skip", name=f"Within ±{_num(t)} of the first score: no reliable change"))
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


# --------------------------------------------------------------------------- themes

def _theme_panel(timeline: pl.DataFrame, catalog: Catalog | None, max_cells: int = MAX_POINTS) -> _Panel | None:
    coded = timeline.filter(pl.col("code").is_not_null())
    if coded.is_empty():
        return None
    if "label" not in coded.columns:
        coded = coded.with_columns(label=pl.col("code"))
    if "rater" not in coded.columns:
        coded = coded.with_columns(rater=pl.lit(None, pl.String))
    if "intensity" not in coded.columns:
        coded = coded.with_columns(intensity=pl.lit(None, pl.Int32))
    kinds = list(catalog.vocabularies.theme_kinds) if catalog is not None else []
    codes = sorted(coded.select("kind", "code", "label").unique().rows(),
                   key=lambda r: (kinds.index(r[0]) if r[0] in kinds else len(kinds), r[0],
                                  _code_order(catalog, r[0], r[1]), r[1]))
    first, last = coded["session_number"].min(), coded["session_number"].max()
    span = last - first + 1
    width = max(1, math.ceil(span * len(codes) / max_cells))  # sessions per cell, so the grid fits the cap
    cells = (coded.with_columns(bin=(pl.col("session_number") - first) // width)
             .group_by("bin", "kind", "code")
             .agg(intensity=pl.col("intensity").cast(pl.Float64).mean(),
                  raters=pl.col("rater").drop_nulls().unique().sort(),
                  sessions=pl.col("session_number").unique().sort()))
    bins = math.ceil(span / width)
    row_of = {(k, c): i for i, (k, c, _) in enumerate(codes)}
    z = [[None] * bins for _ in codes]
    hover = [[""] * bins for _ in codes]
    for cell in cells.to_dicts():
        i, j = row_of[(cell["kind"], cell["code"])], cell["bin"]
        value = cell["intensity"]
        z[i][j] = 0.0 if value is None else value
        kind, label = codes[i][0], codes[i][2]
        where = f"Session {cell['sessions'][0]}" if width == 1 else \
            f"Sessions {first + j * width}-{first + (j + 1) * width - 1} (coded in {len(cell['sessions'])})"
        raters = ", ".join(_esc(r) for r in cell["raters"]) or "rater not given"
        strength = "coded, no intensity given" if value is None else f"intensity {_num(value)}"
        hover[i][j] = f"{where}<br>{_esc(_kind_short(catalog, kind))}: {_esc(label)}<br>{strength} ({raters})"
    x = [first + j * width + (width - 1) / 2 if width > 1 else first + j for j in range(bins)]
    # A long label breaks after its codebook's name: the labels set the left margin of
    # every row of a case overview, and one long label would narrow all the plots.
    y = [f"{_esc(_kind_short(catalog, k))}:{'<br>' if len(_kind_short(catalog, k) + label) > 28 else ' '}"
         f"{_esc(label)}" for k, _, label in codes]
    heatmap = go.Heatmap(
        x=x, y=y, z=z, zmin=0, zmax=INTENSITY_MAX, colorscale=INTENSITY_SCALE, xgap=2, ygap=2,
        hovertext=hover, hovertemplate="%{hovertext}<extra></extra>", name="Themes", showscale=True,
        colorbar=dict(title=dict(text="Intensity"), tickvals=list(range(INTENSITY_MAX + 1)),
                      ticktext=["none given"] + [str(v) for v in range(1, INTENSITY_MAX + 1)]))
    return _Panel([heatmap], dict(autorange="reversed", showgrid=False, type="category"),
                  height=max(220, 60 + 40 * len(codes)), title="Transference, countertransference and CCRT")


def theme_timeline_chart(timeline: pl.DataFrame, catalog: Catalog | None = None) -> go.Figure:
    """Session by code heatmap of one client's coded themes (`theme_timeline`).

    A cell's colour is the mean intensity over the raters who gave one (1-5); grey means
    coded without an intensity, blank means not coded. Rows follow the catalog's order
    of kinds and codes when `catalog` is given."""
    panel = None if _is_empty(timeline) else _theme_panel(timeline, catalog)
    if panel is None:
        return empty_figure("No transference, countertransference or CCRT codes for this client yet: import a "
                            "themes table (kind, code, intensity per session) to see them here.")
    return _compose(f"Themes over the sessions{_client_suffix(timeline)}", [panel])


def ccrt_chart(ccrt: pl.DataFrame, pervasiveness: pl.DataFrame | None = None,
               min_sessions: int | None = None) -> go.Figure:
    """A client's CCRT: the most pervasive wish, response of other and response of self.

    With `ccrt` alone (one row of `themes.ccrt`) one bar per component; with the client's
    `pervasiveness` rows as well, every coded category of each component, the CCRT one
    coloured and the others grey. With `min_sessions` (the catalog's `[themes]
    ccrt_min_sessions`), a CCRT from fewer coded sessions is titled tentative."""
    if not _is_empty(pervasiveness):
        pervasiveness = pervasiveness.filter(pl.col("kind").is_in([kind for _, kind, _, _ in CCRT_PARTS]))
    if _is_empty(ccrt) and _is_empty(pervasiveness):
        return empty_figure("No CCRT coding for this client yet: code wishes (ccrt_wish), responses of other "
                            "(ccrt_ro) and responses of self (ccrt_rs) in the themes table.")
    title = f"Core conflictual relationship theme{_client_suffix(ccrt, pervasiveness)}"
    if min_sessions is not None and not _is_empty(ccrt):
        counts = [v for c, _, _, _ in CCRT_PARTS if (v := ccrt.row(0, named=True).get(f"{c}_sessions_scored"))]
        if counts and min(counts) < min_sessions:
            title += (f"<br><sup>Tentative: from {int(min(counts))} coded sessions, fewer than {min_sessions} "
                      "(catalog [themes])</sup>")
    axis = dict(title_text="Share of coded sessions (%)", range=[0, 105], ticksuffix=" %")
    if not _is_empty(pervasiveness):
        fig = make_subplots(rows=1, cols=3, subplot_titles=[name for _, _, name, _ in CCRT_PARTS],
                            horizontal_spacing=0.16)
        for col, (_, kind, name, colour) in enumerate(CCRT_PARTS, start=1):
            rows = pervasiveness.filter(pl.col("kind") == kind).sort("pervasiveness", descending=True).to_dicts()
            top = rows[0]["pervasiveness"] if rows else None
            fig.add_trace(go.Bar(
                y=[_esc(r["label"]) for r in rows], x=[100 * r["pervasiveness"] for r in rows], orientation="h",
                name=name, showlegend=False,
                marker=dict(color=[colour if r["pervasiveness"] == top else "#c8c8c8" for r in rows]),
                hovertext=[f"{_esc(r['label'])}: {_pct(r['pervasiveness'])} "
                           f"({r['sessions_with_code']} of {r['sessions_scored']} coded sessions)" for r in rows],
                hovertemplate="%{hovertext}<extra></extra>"), row=1, col=col)
            fig.update_yaxes(autorange="reversed", row=1, col=col)
            fig.update_xaxes(row=1, col=col, **axis)
        height = 180 + 34 * max(1, max(pervasiveness.group_by("kind").len()["len"].to_list()))
        fig.update_layout(template=TEMPLATE, title=dict(text=title), height=height)
        return _finish(fig)
    row = ccrt.row(0, named=True)
    parts = [(name, colour, row.get(f"{c}_label") or row.get(c), row.get(f"{c}_pervasiveness"),
              row.get(f"{c}_sessions_scored"), row.get(f"{c}_tied"))
             for c, _, name, colour in CCRT_PARTS if row.get(c) is not None]
    fig = go.Figure(go.Bar(
        y=[p[0] for p in parts], x=[100 * p[3] for p in parts], orientation="h", name="CCRT",
        marker=dict(color=[p[1] for p in parts]),
        text=[_esc(p[2]) + (" (tied)" if p[5] else "") for p in parts], textposition="auto",
        hovertext=[f"{p[0]}: {_esc(p[2])}<br>{_pct(p[3])} of {p[4]} coded sessions"
                   + ("<br>Tied with another category" if p[5] else "") for p in parts],
        hovertemplate="%{hovertext}<extra></extra>"))
    fig.update_layout(template=TEMPLATE, title=dict(text=title), height=340, showlegend=False,
                      yaxis=dict(autorange="reversed"), xaxis=axis)
    return _finish(fig)


def pervasiveness_chart(frame: pl.DataFrame, catalog: Catalog | None = None, kind: str | None = None,
                        suppression: SuppressionSettings | None = None) -> go.Figure:
    """Caseload pervasiveness per code, from `themes.pervasiveness` (one row per client
    and code): for each code the mean pervasiveness over the clients coded for its kind
    (a client without the code counts 0), and in how many of them it occurs.

    With `suppression` (a group-level figure shown to a group), a code that 1 to 10 of the
    clients have, or 1 to 10 lack, is left out: its count, and its mean (which times the
    clients gives one client's share), could single a client out."""
    if not _is_empty(frame) and kind is not None:
        frame = frame.filter(pl.col("kind") == kind)
    if _is_empty(frame):
        return empty_figure("No coded themes in this caseload yet: import a themes table to see which "
                            "patterns recur.")
    coded = frame.group_by("kind").agg(clients_coded=pl.col("client_id").n_unique())
    per_code = (frame.group_by("kind", "code")
                .agg(label=pl.col("label").first(), clients=pl.col("client_id").n_unique(),
                     total=pl.col("pervasiveness").sum())
                .join(coded, on="kind").with_columns(mean=pl.col("total") / pl.col("clients_coded")))
    kinds = list(catalog.vocabularies.theme_kinds) if catalog is not None else sorted(per_code["kind"].unique())
    rows = sorted(per_code.to_dicts(), key=lambda r: (kinds.index(r["kind"]) if r["kind"] in kinds else len(kinds),
                                                      -r["mean"], r["code"]))
    left_out = 0
    if suppression is not None:
        shown = [r for r in rows if not share_hidden(r["clients"], r["clients_coded"], suppression)]
        left_out, rows = len(rows) - len(shown), shown
        if not rows:
            return empty_figure(f"Not shown: every code is present or absent in 1 to {suppression.max_cell} of the "
                                "clients, a small cell that could single a client out.")
    colour_of = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(dict.fromkeys(r["kind"] for r in rows))}
    fig = go.Figure()
    for k, colour in colour_of.items():
        part = [r for r in rows if r["kind"] == k]
        fig.add_trace(go.Bar(
            y=[_esc(f"{_kind_short(catalog, k)}: {r['label']}") for r in part], x=[100 * r["mean"] for r in part],
            orientation="h", name=_esc(catalog.codebooks[k].label if catalog is not None and k in catalog.codebooks
                                       else _kind_short(catalog, k)), marker=dict(color=colour),
            # The label states the bar's own value first, so labels run in the bars' order;
            # the clients with the code follow in brackets.
            text=[f"{_pct(r['mean'])} ({r['clients']} of {r['clients_coded']} clients)" for r in part],
            textposition="outside", cliponaxis=False,
            hovertext=[f"{_esc(r['label'])}: occurs with {r['clients']} of {r['clients_coded']} clients coded for "
                       f"{_esc(_kind_short(catalog, k))}<br>Mean pervasiveness {_pct(r['mean'])}" for r in part],
            hovertemplate="%{hovertext}<extra></extra>"))
    note = (f"<br><sup>{left_out} code(s) not shown: present or absent in 1 to {suppression.max_cell} clients "
            "(small cells)</sup>" if left_out else "")
    fig.update_layout(template=TEMPLATE, height=160 + 30 * len(rows),
                      title=dict(text=f"Pervasiveness across the caseload{note}"),
                      xaxis=dict(title_text="Mean share of coded sessions (%)", ticksuffix=" %",
                                 range=[0, max(100.0, 100 * max(r["mean"] for r in rows)) * 1.35]),
                      yaxis=dict(autorange="reversed", categoryorder="array",
                                 categoryarray=[_esc(f"{_kind_short(catalog, r['kind'])}: {r['label']}")
                                                for r in rows]))
    return _finish(fig)


def therapist_pattern_chart(frame: pl.DataFrame, catalog: Catalog | None = None,
                            max_therapists: int = 200, suppression: SuppressionSettings | None = None) -> go.Figure:
    """Therapist by code heatmap from `themes.therapist_patterns`: the share of each
    therapist's coded clients with the code; the cell reads "clients with it / clients
    coded", bold where the analytics call it a recurring pattern. With `suppression`, a
    cell whose clients with or without the code number 1 to 10 is blank, its numbers unsaid."""
    if _is_empty(frame):
        return empty_figure("No coded themes to compare across therapists yet: import a themes table with "
                            "countertransference codes.")
    therapists = sorted(frame["therapist_id"].unique().to_list())
    shown = therapists[:max_therapists]  # a heatmap taller than a screen helps nobody
    frame = frame.filter(pl.col("therapist_id").is_in(shown))
    order = (frame.group_by("code").agg(label=pl.col("label").first(), n=pl.col("clients_with_code").sum(),
                                        kind=pl.col("kind").first())
             .sort(["n", "code"], descending=[True, False]))
    codes = order["code"].to_list()
    col = {c: j for j, c in enumerate(codes)}
    row = {t: i for i, t in enumerate(shown)}
    z = [[None] * len(codes) for _ in shown]
    text = [[""] * len(codes) for _ in shown]
    hover = [[""] * len(codes) for _ in shown]
    # A code that none of a therapist's coded clients has is 0 %, drawn and written "0/n":
    # a blank cell could be read as "not coded" (every therapist listed has coded clients;
    # only a suppressed cell, "·", stays without a colour).
    coded = dict(frame.group_by("therapist_id").agg(pl.col("clients_coded").max()).iter_rows())
    labels = dict(zip(order["code"], order["label"]))
    for t in shown:
        n = coded[t]
        for code, j in col.items():
            if suppression is not None and share_hidden(0, n, suppression):
                text[row[t]][j] = "·"
                hover[row[t]][j] = (f"{_esc(labels[code])}: not shown, present or absent in 1 to "
                                    f"{suppression.max_cell} clients (small cell)")
                continue
            z[row[t]][j], text[row[t]][j] = 0.0, f"0/{n}"
            hover[row[t]][j] = f"{_esc(t)} · {_esc(labels[code])}<br>none of {n} coded clients (0 %)"
    for r in frame.to_dicts():
        i, j = row[r["therapist_id"]], col[r["code"]]
        if suppression is not None and share_hidden(r["clients_with_code"], r["clients_coded"], suppression):
            z[i][j] = None
            text[i][j] = "·"
            hover[i][j] = (f"{_esc(r['label'])}: not shown, present or absent in 1 to {suppression.max_cell} "
                           "clients (small cell)")
            continue
        z[i][j] = 100 * r["share_of_clients"]
        count = f"{r['clients_with_code']}/{r['clients_coded']}"
        text[i][j] = f"<b>{count}</b>" if r["recurring"] else count
        hover[i][j] = (f"{_esc(r['therapist_id'])} · {_esc(r['label'])}<br>{count} coded clients "
                       f"({_pct(r['share_of_clients'])}), {int(r['sessions_with_code'])} sessions<br>"
                       f"Mean pervasiveness {_pct(r['mean_pervasiveness'])}"
                       + ("<br><b>Recurring across this therapist's cases</b>" if r["recurring"] else ""))
    kinds = order["kind"].unique().to_list()
    what = "Themes"
    if len(kinds) == 1:
        what = catalog.codebooks[kinds[0]].label if catalog is not None and kinds[0] in catalog.codebooks \
            else kinds[0].replace("_", " ").capitalize()
    fig = go.Figure(go.Heatmap(
        x=[_esc(v) for v in order["label"].to_list()], y=[_esc(t) for t in shown], z=z, zmin=0, zmax=100,
        colorscale=SEQUENTIAL, xgap=2, ygap=2, text=text, texttemplate="%{text}", textfont=dict(size=BASE_FONT - 2),
        hovertext=hover, hovertemplate="%{hovertext}<extra></extra>",
        colorbar=dict(title=dict(text="Clients (%)"), ticksuffix=" %")))
    more = f" (first {len(shown)} of {len(therapists)} therapists)" if len(shown) < len(therapists) else ""
    fig.update_layout(template=TEMPLATE, height=220 + 36 * len(shown),
                      title=dict(text=f"{_esc(what)} across each therapist's cases{more}<br>"
                                      "<sup>clients with the code / clients coded (0/n: none of them); bold = "
                                      "recurring pattern</sup>"),
                      xaxis=dict(title_text="Code", showgrid=False, tickangle=-30),
                      yaxis=dict(title_text="Therapist", autorange="reversed", showgrid=False, type="category"))
    return _finish(fig)


def ccrt_sankey(triads: pl.DataFrame, max_triads: int = 40) -> go.Figure:
    """Wish -> response of other -> response of self, from `themes.ccrt_triads`: the
    width of a flow is the number of sessions in which the two were coded together.
    Only the `max_triads` most frequent triads are drawn: past a few dozen the flows
    become a tangle nobody can follow on a projector."""
    if _is_empty(triads):
        return empty_figure("No session has a wish, a response of other and a response of self coded together "
                            "yet, so there is no CCRT flow to show.")
    every = triads.height
    triads = triads.sort(["sessions", "clients"], descending=True, maintain_order=True).head(max_triads)
    nodes: dict[tuple[str, str], int] = {}
    labels, colours = [], []
    for part, _, name, colour in CCRT_PARTS:
        totals = triads.group_by(part).agg(label=pl.col(f"{part}_label").first(), n=pl.col("sessions").sum()) \
            .sort(["n", part], descending=[True, False])
        for code, label, _n in totals.rows():
            nodes[(part, code)] = len(labels)
            labels.append(_esc(f"{name.split('(')[1].rstrip(')')}: {label}"))
            colours.append(colour)
    source, target, value, hover, link_colours = [], [], [], [], []
    for a, b in (("wish", "ro"), ("ro", "rs")):
        flows = triads.group_by(a, b).agg(n=pl.col("sessions").sum()).sort([a, b])
        for x, y, n in flows.rows():
            source.append(nodes[(a, x)])
            target.append(nodes[(b, y)])
            value.append(n)
            hover.append(f"{labels[nodes[(a, x)]]} → {labels[nodes[(b, y)]]}<br>{n} session(s)")
            link_colours.append(_rgba(colours[nodes[(a, x)]], 0.35))
    fig = go.Figure(go.Sankey(
        arrangement="snap",
        node=dict(label=labels, color=colours, pad=18, thickness=22, line=dict(color="white", width=1),
                  hovertemplate="%{label}<br>%{value} session(s)<extra></extra>"),
        link=dict(source=source, target=target, value=value, color=link_colours, customdata=hover,
                  hovertemplate="%{customdata}<extra></extra>"),
        textfont=dict(size=BASE_FONT - 1, family=FONT_FAMILY)))
    for x, (_, _, name, _) in zip((0.0, 0.5, 1.0), CCRT_PARTS):
        fig.add_annotation(text=f"<b>{name}</b>", x=x, y=1.07, xref="paper", yref="paper", showarrow=False,
                           xanchor={0.0: "left", 0.5: "center", 1.0: "right"}[x])
    tallest = max(triads[part].n_unique() for part, *_ in CCRT_PARTS)
    more = f" (the {triads.height} most frequent of {every} combinations)" if triads.height < every else ""
    fig.update_layout(template=TEMPLATE, height=max(460, 60 * tallest + 200),
                      title=dict(text=f"CCRT: wish → response of other → response of self{more}"),
                      margin=dict(t=130))
    return _finish(fig)


# --------------------------------------------------------------------------- barriers

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
            x=[r["session_number"] for r in part], y=[_esc(_barrier_label(r, catalog)) for r in part],
            mode="markers", name=name,
            # opacity 1: Plotly fades markers whose size varies (bubble charts) unless told.
            marker=dict(color=colour, symbol=symbol, size=[SEVERITY_SIZES.get(r.get("severity"), 12) for r in part],
                        line=dict(color=colour, width=2), opacity=1),
            hovertext=[f"Session {r['session_number']} · {_esc(_barrier_label(r, catalog))}<br>"
                       f"Severity: {SEVERITY_WORDS.get(r.get('severity'), 'not given')} · {name.lower()}"
                       + (f"<br>{hover_note(r['note'])}" if r.get("note") else "") for r in part],
            hovertemplate="%{hovertext}<extra></extra>"))
    order = sorted({r["category"] for r in rows}, key=lambda c: (_code_order(catalog, "barrier_categories", c), c))
    labels = {r["category"]: _esc(_barrier_label(r, catalog)) for r in rows}
    return _Panel(traces, dict(type="category", categoryorder="array", categoryarray=[labels[c] for c in order][::-1],
                               showgrid=True), height=max(170, 60 + 45 * len(order)),
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
                        column_widths=[0.35, 0.65] if per_client_panel else None, horizontal_spacing=0.14,
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
        cliponaxis=False, textfont=dict(size=BASE_FONT),
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
    fig.update_yaxes(title_text=f"Mean change from the session before ({unit}; up = better)", row=1, col=1)
    fig.update_layout(template=TEMPLATE, height=560, margin=dict(t=170),
                      title=dict(text=f"Alliance in sessions with and without a communication barrier{subtitle}"))
    return _finish(fig)


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


# --------------------------------------------------------------------------- caseload list and case page

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
                         f'L{x:.1f},{y - 4:.1f} Z" fill="{OKABE_ITO["vermillion"]}"/>')
    i, s = points[-1]
    concern = instrument is not None and instrument.cutoff is not None and instrument.cutoff.is_clinical(s)
    x, y = xy(i, s)
    parts.append(f'<circle data-mark="latest" cx="{x:.1f}" cy="{y:.1f}" r="3.5" '
                 f'fill="{OKABE_ITO["vermillion"] if concern else OKABE_ITO["blue"]}"/>')
    return "".join(parts) + "</svg>"
