"""The core conflictual relationship theme: one client's CCRT, and the caseload's
wish -> response of other -> response of self flows."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from .base import (BASE_FONT, FONT_FAMILY, OKABE_ITO, TEMPLATE, _client_suffix, empty_figure, _esc, _finish,
                   _is_empty, _pct, _rgba)


CCRT_PARTS = (("wish", "ccrt_wish", "Wish (W)", OKABE_ITO["blue"]),
              ("ro", "ccrt_ro", "Response of other (RO)", OKABE_ITO["orange"]),
              ("rs", "ccrt_rs", "Response of self (RS)", OKABE_ITO["bluish_green"]))


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
    # How many are drawn on a line of its own: on the title's line (91 characters) it ran past
    # the right edge of a 1400 px laptop's chart, cut after "combination".
    more = f"<br><sup>The {triads.height} most frequent of {every} combinations</sup>" if triads.height < every else ""
    fig.update_layout(template=TEMPLATE, height=max(460, 60 * tallest + 200),
                      title=dict(text=f"CCRT: wish → response of other → response of self{more}"),
                      margin=dict(t=130))
    return _finish(fig)
