"""Themes across a caseload: pervasiveness per code, and therapist by code patterns."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from ..analytics.suppression import share_hidden
from ..catalog import Catalog, SuppressionSettings
from .base import BASE_FONT, PALETTE, SEQUENTIAL, TEMPLATE, empty_figure, _esc, _finish, _is_empty, _kind_short, _pct


def pervasiveness_chart(frame: pl.DataFrame, catalog: Catalog | None = None, kind: str | None = None,
                        suppression: SuppressionSettings | None = None) -> go.Figure:
    """Caseload pervasiveness per code, from `themes.caseload_pervasiveness` (one row per
    code): for each code the mean pervasiveness over the clients coded for its kind (a
    client without the code counts 0), and in how many of them it occurs.

    With `suppression` (a group-level figure shown to a group), a code that 1 to 10 of the
    clients have, or 1 to 10 lack, is left out: its count, and its mean (which times the
    clients gives one client's share), could single a client out."""
    if not _is_empty(frame) and kind is not None:
        frame = frame.filter(pl.col("kind") == kind)
    if _is_empty(frame):
        return empty_figure("No coded themes in this caseload yet: import a themes table to see which "
                            "patterns recur.")
    kinds = list(catalog.vocabularies.theme_kinds) if catalog is not None else sorted(frame["kind"].unique())
    rows = sorted(frame.to_dicts(), key=lambda r: (kinds.index(r["kind"]) if r["kind"] in kinds else len(kinds),
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
                      # Room right of 100 % for the labels, but no tick there: the axis read
                      # "120 %", a share no code can have.
                      xaxis=dict(title_text="Mean share of coded sessions (%)", ticksuffix=" %",
                                 range=[0, max(100.0, 100 * max(r["mean"] for r in rows)) * 1.35],
                                 tickvals=list(range(0, 101, 20))),
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
