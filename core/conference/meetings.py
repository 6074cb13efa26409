"""Conferences and their agendas: a supervision group's meeting, pre-filled from the triage.

A conference belongs to a supervision group (the therapists' roster) and a date. Its
agenda lists cases in order, each with a label that hides the client id in presentation
("Case A", "Case B", ...), the reason it is on the agenda (the heaviest flags' sentences)
and a time budget. An agenda item is never deleted: removing it records who, when and why.
"""

from __future__ import annotations

import datetime as dt
import string

import polars as pl

from ..access import Scope
from ..analytics.triage import triage
from ..catalog import Catalog
from ..store import Store


class ConferenceError(ValueError):
    """A conference cannot be made or found; the message says why in a sentence."""


def case_label(position: int) -> str:
    """1 -> "Case A", 26 -> "Case Z", 27 -> "Case AA": spreadsheet-style letters."""
    letters, n = "", position
    while n > 0:
        n, rest = divmod(n - 1, 26)
        letters = string.ascii_uppercase[rest] + letters
    return f"Case {letters}"


def group_therapists(store: Store, group: str) -> list[str]:
    return store.query("SELECT therapist_id FROM therapists WHERE supervision_group = $g ORDER BY 1",
                       {"g": group})["therapist_id"].to_list()


def new_conference(store: Store, catalog: Catalog, group: str, *, held_on: dt.date | None = None,
                   cases: int | None = None, created_by: str = "unknown", attendees=()) -> dict:
    """Create a conference for `group` with the `cases` highest-priority flagged cases of
    the group's therapists on its agenda. Returns {"id", "group", "date", "agenda": [...]}."""
    therapists = group_therapists(store, group)
    if not therapists:
        known = store.query("SELECT DISTINCT supervision_group FROM therapists WHERE supervision_group IS NOT NULL "
                            "ORDER BY 1")["supervision_group"].to_list()
        raise ConferenceError(f"No therapist belongs to the supervision group '{group}'"
                              + (f"; the groups are {', '.join(known)}." if known else
                                 "; import a therapists table with a supervision_group column first."))
    settings = catalog.conference
    cases = settings.cases if cases is None else cases
    if cases < 1:
        raise ConferenceError("A conference needs at least one case on its agenda (--cases 1 or more).")
    case_list, flags = triage(store, catalog, Scope.therapists(therapists, group))
    chosen = case_list.filter(pl.col("priority") > 0).head(cases)
    reasons = (flags.filter(pl.col("client_id").is_in(chosen["client_id"].implode()))
               .group_by("client_id", maintain_order=True).agg(pl.col("reason").head(2).str.join("; ")))
    agenda = (chosen.select("client_id").join(reasons, on="client_id", how="left")
              .with_row_index("position", offset=1))
    held_on = held_on or dt.date.today()
    with store.transaction() as cur:
        conference_id = cur.execute("SELECT nextval('conference_ids')").fetchall()[0][0]
        cur.execute("INSERT INTO conferences VALUES (?, ?, ?, ?, now(), ?)",
                    [conference_id, group, held_on, created_by, list(attendees)])
        rows = [(conference_id, int(r["position"]), case_label(int(r["position"])), r["client_id"], r["reason"],
                 settings.minutes_per_case) for r in agenda.iter_rows(named=True)]
        if rows:
            cur.executemany("INSERT INTO agenda_items (conference_id, position, case_label, client_id, reason, "
                            "minutes) VALUES (?, ?, ?, ?, ?, ?)", rows)
    return {"id": conference_id, "group": group, "date": held_on.isoformat(),
            "agenda": [{"case_label": r[2], "client_id": r[3], "reason": r[4], "minutes": r[5]} for r in rows]}


def agenda(store: Store, conference_id: int, include_removed: bool = False) -> pl.DataFrame:
    """The agenda in order: position, case_label, client_id, reason, minutes (and the
    removal record when `include_removed`)."""
    if not store.scalar("SELECT count(*) FROM conferences WHERE conference_id = $id", {"id": conference_id}):
        raise ConferenceError(f"There is no conference {conference_id} in this store.")
    where = "" if include_removed else " AND deleted_at IS NULL"
    return store.query(f"SELECT * EXCLUDE (conference_id) FROM agenda_items WHERE conference_id = $id{where} "
                       "ORDER BY position", {"id": conference_id})


def remove_item(store: Store, conference_id: int, position: int, *, by: str, why: str) -> None:
    """Take a case off the agenda; the item stays in the store with who, when and why."""
    if not why.strip():
        raise ConferenceError("Say why the case is taken off the agenda; the reason is kept with the item.")
    with store.transaction() as cur:
        found = cur.execute("UPDATE agenda_items SET deleted_at = now(), deleted_by = ?, deleted_why = ? "
                            "WHERE conference_id = ? AND position = ? AND deleted_at IS NULL RETURNING position",
                            [by, why.strip(), conference_id, position]).fetchall()
    if not found:
        raise ConferenceError(f"Conference {conference_id} has no case at position {position} on its agenda.")
