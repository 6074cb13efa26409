"""The charts' shared look and parts: the `caseconf` Plotly template (projector-sized type,
the Okabe-Ito palette), escaping of free text for hovers, the points cap, score and session
axes, and `_compose`, which stacks panels on one session axis."""

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

from ..catalog import Catalog, Instrument


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
# Ruptures (detected or coded) in a colour no outcome colour, rater or barrier uses, so a
# rupture on the alliance row never reads as a red not-on-track score on the outcome row.
RUPTURE_COLOUR = OKABE_ITO["reddish_purple"]
INK = "#222222"
# Yellow last: it is hard to see on white, so only a chart with eight series gets it.
PALETTE = tuple(OKABE_ITO[c] for c in ("blue", "orange", "bluish_green", "vermillion", "sky_blue",
                                       "reddish_purple", "black", "yellow"))
# One hue, light to dark (after ColorBrewer "Blues"): the order survives any colour vision and grey print.
SEQUENTIAL = [[0.0, "#deebf7"], [0.5, "#4a98c9"], [1.0, "#08306b"]]



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
                      xaxis=dict(visible=False), yaxis=dict(visible=False), meta={"empty": message})
    return fig


def empty_message(fig: go.Figure) -> str | None:
    """The message of a figure made by `empty_figure` (it draws nothing else), else None."""
    meta = fig.layout.meta
    return meta.get("empty") if isinstance(meta, dict) else None


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


def _whole_sessions(fig: go.Figure) -> list:
    return [v for t in fig.data if t.type in ("scatter", "bar", "heatmap") and t.x is not None
            for v in t.x if isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer()]


SESSION_LABELS = 12  # more session ticks than this: every other one is labelled


def _ticks_for(span: float) -> dict:
    """Whole-number session ticks: every session on a short case, fewer on a long one.
    Beyond SESSION_LABELS ticks every other one is labelled: on a laptop's narrower chart
    (1400 px wide) a label at each of 19 sessions was turned on its side, and the turned
    labels pushed the axis title out of the figure."""
    for limit, step in ((20, 1), (40, 2), (100, 5), (200, 10)):
        if span <= limit:
            ticks = span // step + 1
            return dict(tick0=0, dtick=step, ticklabelstep=2 if ticks > SESSION_LABELS else 1)
    return {}


def _session_ticks(fig: go.Figure) -> dict:
    values = _whole_sessions(fig)
    return _ticks_for(max(values) - min(values)) if values else {}


def _session_range(fig: go.Figure) -> dict:
    """Half a session of room either side of the first and last session drawn, so the axis
    never shows a session that cannot exist (-1 before a session 0). Lines and bands
    drawn across the rows end half a session out; only whole session numbers count."""
    values = _whole_sessions(fig)
    if not values:
        return {}
    return dict(range=[min(values) - 0.6, max(values) + 0.6])


def share_session_axis(fig: go.Figure, span: tuple[int, int] | None) -> go.Figure:
    """`fig`'s session axis from the first to the last session of `span` (the case's), so
    every chart of one case puts a session at the same place as its overview does. A
    figure without data (a sentence) is left as it is."""
    if span is None or not fig.data:
        return fig
    low, high = span
    fig.update_xaxes(range=[low - 0.6, high + 0.6], **_ticks_for(high - low))
    return fig


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
    # A score row: the instrument's scale (low, high) and the smallest change that means
    # something on it, so the axis never stretches a smaller change over its full height.
    scale: tuple[float, float] | None = None
    change: float | None = None


def meaningful_change(instrument: Instrument | None) -> float | None:
    """The smallest change in points worth seeing on `instrument`'s total: its reliable
    change, else the smallest drop the catalog counts as a rupture (for an alliance
    instrument without a reliable change); None when the catalog gives neither."""
    if instrument is None:
        return None
    if instrument.reliable_change is not None:
        return float(instrument.reliable_change.threshold)
    return float(instrument.rupture_min_drop) if instrument.rupture_min_drop is not None else None


SPAN_OF_CHANGE = 2.0  # a score axis spans at least this many meaningful changes (one takes half its height)


def score_range(values: Sequence[float], scale: tuple[float, float] | None, change: float | None) -> list | None:
    """The y range of a score row: the values drawn with a little room, at least
    `SPAN_OF_CHANGE` x `change` points tall, kept inside the instrument's `scale`. None
    (autorange) without a change to keep visible."""
    values = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
              and math.isfinite(float(v))]
    if change is None or not values:
        return None
    low, high = min(values), max(values)
    span = max(high - low, SPAN_OF_CHANGE * change)
    pad = 0.06 * span
    middle = (low + high) / 2
    bottom, top = middle - span / 2 - pad, middle + span / 2 + pad
    if scale is not None:
        s_low, s_high = scale
        if bottom < s_low - pad:
            bottom, top = s_low - pad, s_low - pad + (top - bottom)
        if top > s_high + pad:
            bottom, top = max(s_low - pad, s_high + pad - (top - bottom)), s_high + pad
    return [bottom, top]


def _row_values(traces) -> list:
    return [v for t in traces if t.type in ("scatter", "bar") and t.y is not None for v in t.y if v is not None]


LEGEND_WRAP = 30  # characters on one line of a legend entry; a longer name breaks at a word
LEGEND_ENTRY_PX, LEGEND_CHAR_PX = 48, 7.6  # a legend entry: its symbol, and a character of its text (16 px)


def _legend_name(name: str) -> str:
    if not name or "<br>" in name or len(name) <= LEGEND_WRAP:
        return name
    # The name is escaped already: break it, never escape it again.
    # Never inside a word: an escaped name's entities (&amp;) stay whole.
    return "<br>".join(textwrap.wrap(name, LEGEND_WRAP, break_long_words=False, break_on_hyphens=False))


AXIS_TITLE_CHAR_PX = 9.5  # the width of one character of an axis title (18 px Arial)


def axis_title_lines(parts: Sequence[str], px: float) -> str:
    """An axis title of `parts` (escaped already), each begun on a line of its own and
    broken at words into lines of at most `px` pixels: a y axis's title longer than its
    plot is cut at both ends and runs into the chart's title above."""
    width = max(8, int(px / AXIS_TITLE_CHAR_PX))
    return "<br>".join(line for part in parts
                       for line in textwrap.wrap(part, width, break_long_words=False, break_on_hyphens=False))


ROW_LABEL_WRAP = 20  # characters on one line of a row's category label ("Countertransference:")


def row_label(label: str, width: int = ROW_LABEL_WRAP) -> str:
    """A row's category label (escaped already) in lines of at most `width` characters,
    broken at words: the longest label of any row sets the left margin of every row of a
    case overview, and "Language (interpreter needed)" on one line narrowed them all."""
    if not label or "<br>" in label or len(label) <= width:
        return label
    return "<br>".join(textwrap.wrap(label, width, break_long_words=False, break_on_hyphens=False))


def _legend_px(names: list[str], font_size: int = BASE_FONT - 1) -> int:
    """The width of a legend of `names` (their longest line) in type of `font_size`, in pixels."""
    lines = [line for name in names for line in name.split("<br>")]
    return int(LEGEND_ENTRY_PX + LEGEND_CHAR_PX * font_size / (BASE_FONT - 1)
               * max((len(line) for line in lines), default=0))


def legend_name(row: int) -> str:
    """The layout key of the legend of a chart's `row` (from 1): "legend", "legend2", ..."""
    return "legend" if row == 1 else f"legend{row}"


def place_legends(fig: go.Figure, font_size: int = BASE_FONT - 1) -> go.Figure:
    """Each row's legend beside its row, from the row's top: a reader finds what a mark
    means next to the mark (one legend for many rows sat far from most of them)."""
    for key in sorted({t.legend or "legend" for t in fig.data}):
        row = int(key[6:] or 1)
        axis = fig.layout["yaxis" if row == 1 else f"yaxis{row}"]
        top = axis.domain[1] if axis is not None and axis.domain else 1.0
        fig.update_layout({key: dict(x=1.01, xanchor="left", y=top, yanchor="top", yref="paper", orientation="v",
                                     font=dict(size=font_size), bgcolor="rgba(255,255,255,0.85)",
                                     tracegroupgap=2)})
    return fig


def _compose(title: str, panels: list[_Panel | None], x_title: str = SESSION_AXIS) -> go.Figure | None:
    """Stack panels on one shared x axis, each with its own legend beside it; None when no
    panel has anything to draw."""
    panels = [p for p in panels if p is not None and p.traces]
    if not panels:
        return None
    rows = len(panels)
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.07 if rows > 1 else 0.0,
                        row_heights=[p.height for p in panels],
                        subplot_titles=[p.title for p in panels] if rows > 1 else None)
    shown: list[str] = []
    told: dict[str, set] = {}  # legend entries already given by a row of the same kind
    for row, panel in enumerate(panels, start=1):
        seen = set()
        kind = panel.title.split(":")[0]
        before = told.setdefault(kind, set()) if kind else set()
        for trace in panel.traces:
            # One legend entry for the same thing drawn twice in a row, or in a row of the
            # same kind above (a second outcome instrument's colours mean what the first's do).
            if trace.showlegend is not False and trace.type != "heatmap" and trace.name:
                trace.name = _legend_name(trace.name)
                key = (trace.legendgroup, trace.name)
                trace.showlegend = not ((trace.legendgroup and key in seen) or trace.name in before)
                seen.add(key)
                if trace.showlegend:
                    shown.append(trace.name)
            trace.legend = legend_name(row)
            # A mark on a score at its row's edge is drawn whole: clipped at the plot's edge, a
            # rupture's triangle at the lowest score lost its lower half (lines stay clipped).
            if trace.type == "scatter" and "markers" in (trace.mode or ""):
                trace.cliponaxis = False
            fig.add_trace(trace, row=row, col=1)
        if kind:
            before |= {t.name for t in panel.traces if t.name}
        fig.update_yaxes(row=row, col=1, **panel.yaxis)
        wanted = score_range(_row_values(panel.traces), panel.scale, panel.change)
        if wanted is not None and "range" not in panel.yaxis:
            fig.update_yaxes(row=row, col=1, range=wanted, autorange=False)
    fig.update_xaxes(**_session_ticks(fig), **_session_range(fig))
    fig.update_xaxes(title_text=x_title, row=rows, col=1)
    fig.update_layout(template=TEMPLATE, title=dict(text=title), height=sum(p.height for p in panels) + 170,
                      hovermode="closest", margin=dict(r=max(40, _legend_px(shown) + 24) if shown else 40))
    place_legends(fig)
    plot_px = fig.layout.height - 160  # the template's margins, about
    for trace in fig.data:  # a heatmap's colour bar sits beside its own row
        if trace.type == "heatmap":
            colorbar_beside(trace, fig.layout["yaxis" + trace.yaxis[1:]].domain, plot_px)
    return _finish(fig)


COLORBAR_TICK_PX = 36  # a colour bar's tick label needs this much of its height, or only its ends are named


def colorbar_beside(heatmap, domain, plot_px: float) -> None:
    """A heatmap's colour bar beside its row, as tall as the row; a bar too short for a
    label at every tick names its two ends only (the labels ran into each other)."""
    heatmap.colorbar.update(y=(domain[0] + domain[1]) / 2, len=domain[1] - domain[0], yanchor="middle")
    values, texts = heatmap.colorbar.tickvals, heatmap.colorbar.ticktext
    if values is None or texts is None or len(values) <= 2:
        return
    if (domain[1] - domain[0]) * plot_px < COLORBAR_TICK_PX * len(values):
        heatmap.colorbar.update(tickvals=[values[0], values[-1]], ticktext=[texts[0], texts[-1]])
