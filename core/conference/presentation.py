"""Presentation mode: one case at a time, by its label, with the group-level context.

Beside the case itself, presentation mode shows figures built from several clients: the
presenting therapist's countertransference across their cases, the group's transference
themes, and how the alliance fares in sessions with a communication barrier across the
group. Colleagues in the room often know the caseload, so a figure built from fewer
clients than the catalog's `[conference] min_group_clients` (11) is suppressed: the slide
says so instead of drawing it. Inside a figure that is drawn, each cell follows the small-cell
rule too (catalog `[suppression]`, the CMS policy): a code that 1 to 10 of the clients have
or lack is not shown (`analytics.suppression`), and no figure draws one marker per client.
"""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go
import polars as pl

from .. import charts
from ..access import Scope
from ..analytics import barriers, themes
from ..catalog import Catalog
from ..store import Store
from .labels import id_labels
from .meetings import agenda, group_scope
from .notes import entries

PRESENTER = "presenting therapist"


@dataclass(frozen=True)
class GroupView:
    title: str
    clients: int                 # how many clients the figure is built from
    figure: go.Figure | None     # None when suppressed
    note: str                    # what the figure shows, or why it is not shown


def small_cell(clients: int, minimum: int) -> bool:
    """True when a figure built from `clients` clients must not be shown."""
    return clients < minimum


def _view(title: str, clients: int, minimum: int, build, about: str) -> GroupView:
    if small_cell(clients, minimum):
        return GroupView(title, clients, None,
                         f"Not shown: built from {clients} client(s), fewer than {minimum}. Small groups can "
                         "single a client out to colleagues who know the caseload.")
    figure = build()
    nothing = charts.empty_message(figure)
    if nothing:  # drawn, it would be an empty frame under "Built from N clients": say why instead
        return GroupView(title, clients, None, nothing)
    return GroupView(title, clients, figure, about)


def group_views(store: Store, catalog: Catalog, group: str, therapist_id: str | None, *, scope: Scope,
                hide_therapist: bool = False) -> list[GroupView]:
    """The group-level figures for a slide of a case held by `therapist_id` in `group`,
    each suppressed when built from fewer than the catalog's minimum of clients."""
    minimum = catalog.conference.min_group_clients
    cases = group_scope(store, scope, group)
    views = []
    if therapist_id:
        patterns = themes.therapist_patterns(store, catalog, cases.for_group(group, [therapist_id]))
        clients = int(patterns["clients_coded"].max() or 0) if patterns.height else 0
        if hide_therapist:
            patterns = patterns.with_columns(therapist_id=pl.lit(PRESENTER))
        views.append(_view("The therapist's countertransference across their cases", clients, minimum,
                           lambda: charts.therapist_pattern_chart(patterns, catalog,
                                                                  suppression=catalog.suppression),
                           "The share of the therapist's coded cases in which each countertransference code "
                           "occurs; bold cells recur across cases."))
    perv = themes.caseload_pervasiveness(store, catalog, cases, kinds=["transference"])
    views.append(_view("The group's transference themes", int(perv["clients_coded"].max() or 0), minimum,
                       lambda: charts.pervasiveness_chart(perv, catalog, kind="transference",
                                                          suppression=catalog.suppression),
                       "Mean pervasiveness of each transference code over the group's coded cases."))
    alliance = next(iter(catalog.instruments_of("alliance")), None)
    if alliance:
        effect = barriers.barrier_alliance_effect(store, catalog, cases, instrument=alliance)
        # No marker per client (a cell of one); the pooled panel needs no ids either.
        per_client = effect.per_client.with_columns(client_id=pl.lit(None, pl.String))
        if "therapist_id" in per_client.columns:
            per_client = per_client.with_columns(therapist_id=pl.lit(None, pl.String))
        effect = effect._replace(per_client=per_client)
        # Counted by the clients with both kinds of session, whose differences are averaged.
        both = int(effect.overall["clients_with_both"][0] or 0) if effect.overall.height else 0
        views.append(_view("Barriers and the alliance across the group", both, minimum,
                           lambda: charts.barrier_alliance_chart(effect, catalog.instruments[alliance],
                                                                 per_client_panel=False),
                           "Alliance change in sessions with a communication barrier against sessions "
                           "without, across the group's cases."))
    return views


@dataclass(frozen=True)
class SlideTexts:
    reason: str
    notes: list[str]
    actions: pl.DataFrame        # text, owner, due_on, status


def slide_texts(store: Store, conference_id: int, item: dict, therapist_id: str | None, *, scope: Scope,
                hide_therapist: bool = True) -> SlideTexts:
    """What a slide prints of the free text: the agenda reason, the notes and the actions of
    the case, every client id as its label ("Case B", "another case") and, unless the
    presenting therapist is shown, every therapist id as words (`labels`). An action's owner
    stays the user id it is, except the hidden presenter's own, which becomes "the presenting
    therapist"."""
    items = agenda(store, conference_id, scope=scope)
    words = id_labels(store, items, presenting=therapist_id, hide_presenter=hide_therapist,
                      therapists=hide_therapist)
    said = entries(store, conference_id, item["client_id"], scope=scope)
    notes = [words.sub(t) for t in said.filter(pl.col("kind") == "note")["text"].to_list()]
    actions = (said.filter(pl.col("kind") == "action").select("text", "owner", "due_on", "status")
               .with_columns(pl.col("text").map_elements(words.sub, return_dtype=pl.String),
                             pl.col("owner").map_elements(words.person if hide_therapist else words.sub,
                                                          return_dtype=pl.String)))
    return SlideTexts(words.sub(item["reason"]), notes, actions)


def slide_title(item: dict, hide_therapist: bool, therapist_id: str | None, labels_only: bool = True) -> str:
    """The heading of a case's slide: its label, and the therapist unless hidden."""
    name = item["case_label"] if labels_only else f"{item['case_label']} ({item['client_id']})"
    if hide_therapist or not therapist_id:
        return name
    return f"{name}, presented by {therapist_id}"
