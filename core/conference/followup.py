"""Follow-up: what the group decided last time, and what has changed in each case since.

When a conference is made, the triage of every case of the group is kept with it
(`conference_snapshots`). The next conference of the group compares that snapshot with
the data now: new sessions, flags resolved and new flags, per case; and it lists the
previous conference's action items with their status, and any action of an earlier
conference of the group that is still open.
"""

from __future__ import annotations

import polars as pl

from ..access import Scope
from ..analytics.triage import triage
from ..catalog import Catalog
from ..store import Store
from .meetings import agenda, conference, group_scope
from .notes import FINISHED, group_actions


def previous_conference(store: Store, conference_id: int, scope: Scope) -> dict | None:
    """The group's last conference held before this one's date (the latest made, if that
    day had several), or None. Another conference on the same date is not a previous
    meeting: it is a second one of that day (most often made by a repeated click)."""
    info = conference(store, conference_id, scope)
    rows = store.query("SELECT conference_id FROM conferences WHERE supervision_group = $g AND held_on < $d "
                       "ORDER BY held_on DESC, conference_id DESC LIMIT 1", {"g": info["group"], "d": info["date"]},
                       scope=scope)
    return conference(store, rows["conference_id"][0], scope) if rows.height else None


def changes_since(store: Store, catalog: Catalog, conference_id: int, scope: Scope) -> pl.DataFrame:
    """Per case of the group's snapshot at `conference_id`: sessions then and now, new
    sessions, the flags resolved since and the new flags, whether it was on that agenda;
    cases with a change first."""
    info = conference(store, conference_id, scope)
    cases = group_scope(store, scope, info["group"])
    then = store.query("SELECT client_id, sessions AS sessions_then, flags AS flags_then FROM conference_snapshots "
                       "WHERE conference_id = $id", {"id": conference_id}, scope=cases)
    case_list, _ = triage(store, catalog, cases)
    now = case_list.select("client_id", pl.col("sessions").cast(pl.Int64).alias("sessions_now"),
                           pl.col("codes").alias("flags_now"))
    on_agenda = agenda(store, conference_id, scope=cases)["client_id"]
    empty = pl.lit([], dtype=pl.List(pl.String))
    both = (then.join(now, on="client_id", how="full", coalesce=True)
            .with_columns(pl.col("sessions_then").cast(pl.Int64).fill_null(0), pl.col("sessions_now").fill_null(0),
                          pl.col("flags_then").fill_null(empty), pl.col("flags_now").fill_null(empty)))
    return (both.with_columns(
        new_sessions=(pl.col("sessions_now") - pl.col("sessions_then")).clip(lower_bound=0),
        flags_resolved=pl.col("flags_then").list.set_difference("flags_now").list.unique().list.sort(),
        new_flags=pl.col("flags_now").list.set_difference("flags_then").list.unique().list.sort(),
        on_agenda=pl.col("client_id").is_in(on_agenda.implode()))
        .with_columns(changed=(pl.col("new_sessions") > 0) | (pl.col("flags_resolved").list.len() > 0)
                      | (pl.col("new_flags").list.len() > 0))
        .sort(["on_agenda", "changed", "client_id"], descending=[True, True, False])
        .select("client_id", "on_agenda", "sessions_then", "sessions_now", "new_sessions", "flags_resolved",
                "new_flags", "changed"))


def follow_up(store: Store, catalog: Catalog, conference_id: int, scope: Scope) -> dict:
    """For `conference_id`: the previous conference of its group (`previous_conference`;
    None if none was held before), that conference's action items, the actions still open
    of every other earlier conference (held before, or made earlier the same day), and
    `changes_since` the previous conference."""
    previous = previous_conference(store, conference_id, scope)
    info = conference(store, conference_id, scope)
    earlier = group_actions(store, info["group"], group_scope(store, scope, info["group"])).filter(
        (pl.col("conference_date") < info["date"])
        | ((pl.col("conference_date") == info["date"]) & (pl.col("conference_id") < conference_id)))
    still_open = earlier.filter(~pl.col("status").is_in(FINISHED))
    if previous is None:
        return {"previous": None, "actions": None, "still_open": still_open, "changes": None}
    return {
        "previous": previous,
        "actions": earlier.filter(pl.col("conference_id") == previous["id"]),
        "still_open": still_open.filter(pl.col("conference_id") != previous["id"]),
        "changes": changes_since(store, catalog, previous["id"], scope),
    }
