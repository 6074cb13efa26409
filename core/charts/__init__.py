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

One module a panel, beside `base` (the template, colours, escaping, the points cap and
the axes every panel shares): `alliance`, `process`, `outcome`, `themes`, `ccrt`,
`patterns`, `barriers`, `calibration`, `caseload` and `case` (the overview that stacks
them). Everything a page or a test uses is importable from `core.charts` itself.
"""

from __future__ import annotations

from .alliance import EVENT_SYMBOLS, RATER_STYLE, SCALE_DASHES, alliance_chart
from .barriers import (PER_CLIENT_MARKERS, SEVERITY_SIZES, SEVERITY_WORDS, barrier_alliance_chart,
                       barrier_categories_over_time, barrier_timeline_chart, barrier_unaddressed_chart)
from .base import (BASE_FONT, FONT_FAMILY, GREY, INK, MAX_POINTS, NOTE_HOVER_CHARS, NOTE_HOVER_WIDTH, OKABE_ITO,
                   PALETTE, RUPTURE_COLOUR, SEQUENTIAL, SESSION_AXIS, TEMPLATE, _finish, empty_figure, empty_message,
                   hover_note, limit_points, point_count, share_session_axis)
from .calibration import calibration_scores_chart
from .case import case_figure, fit_height
from .caseload import sparkline, sparkline_svg
from .ccrt import CCRT_PARTS, ccrt_chart, ccrt_sankey
from .outcome import TRACK_STYLE, outcome_chart
from .patterns import pervasiveness_chart, therapist_pattern_chart
from .process import FEEDBACK_STYLE
from .themes import INTENSITY_MAX, INTENSITY_SCALE, theme_timeline_chart


__all__ = [
    "BASE_FONT", "CCRT_PARTS", "EVENT_SYMBOLS", "FEEDBACK_STYLE", "FONT_FAMILY", "GREY", "INK", "INTENSITY_MAX",
    "INTENSITY_SCALE", "MAX_POINTS", "NOTE_HOVER_CHARS", "NOTE_HOVER_WIDTH", "OKABE_ITO", "PALETTE",
    "PER_CLIENT_MARKERS", "RATER_STYLE", "RUPTURE_COLOUR", "SCALE_DASHES", "SEQUENTIAL", "SESSION_AXIS",
    "SEVERITY_SIZES",
    "SEVERITY_WORDS", "TEMPLATE", "TRACK_STYLE", "_finish", "alliance_chart", "barrier_alliance_chart",
    "barrier_categories_over_time", "barrier_timeline_chart", "barrier_unaddressed_chart",
    "calibration_scores_chart", "case_figure", "ccrt_chart", "ccrt_sankey", "empty_figure", "empty_message", "fit_height",
    "hover_note", "limit_points", "outcome_chart", "pervasiveness_chart", "point_count", "share_session_axis", "sparkline",
    "sparkline_svg", "theme_timeline_chart", "therapist_pattern_chart",
]
