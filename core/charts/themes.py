"""The theme timeline: session by code heatmap of one client's transference,
countertransference and CCRT codes."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import polars as pl

from ..catalog import Catalog
from .base import (MAX_POINTS, _client_suffix, _code_order, _compose, empty_figure, _esc, _is_empty, _kind_short,
                   _num, _Panel)


INTENSITY_MAX = 5  # the data contract's theme intensity, 1-5
# Grey for "coded without an intensity" (drawn as 0), then light to dark blue for 1-5.
INTENSITY_SCALE = [[0.0, "#d0d0d0"], [0.1, "#d0d0d0"], [0.1, "#c6dbef"], [0.55, "#4a98c9"], [1.0, "#08306b"]]


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
