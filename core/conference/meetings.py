"""Conferences and their agendas: a supervision group's meeting, pre-filled from the triage.

A conference belongs to a supervision group (the therapists' roster) and a date. Its
agenda lists cases in order, each with a label that hides the client id in presentation
("Case A", "Case B", ...: the letter of its place on the agenda, so the room never sees
"Case B - 3 of 5" after a reorder), the reason it is on the agenda (the heaviest flags' sentences)
and a time budget. An agenda item is never deleted: removing it records who, when and why.
"""

from __future__ import annotations

import datetime as dt
import string

import polars as pl

from .. import audit
from ..access import AccessDenied, Scope
from ..analytics.triage import triage
from ..catalog import Catalog
from ..privacy import find_identifiers, id_problem, mask
from contextlib import contextmanager

from ..store import Store, StoreError


class ConferenceError(ValueError):
    """A conference cannot be made or found; the message says why in a sentence."""


@contextmanager
def writing(store: Store, scope: Scope):
    """A state transaction as `scope`, whose failures (another server's write that won, a
    database that refused) come out as a ConferenceError's sentence."""
    try:
        with store.transaction(scope) as cur:
            yield cur
    except StoreError as err:
        raise ConferenceError(str(err)) from err


class SameDay(ConferenceError):
    """The group already has a conference on that date (`existing`: their ids): a second
    one is made only when asked for, since a repeated click made duplicates whose
    follow-up then compared against each other."""

    def __init__(self, message: str, existing: list[int]):
        super().__init__(message)
        self.existing = existing



def case_label(position: int) -> str:
    """1 -> "Case A", 26 -> "Case Z", 27 -> "Case AA": spreadsheet-style letters."""
    letters, n = "", position
    while n > 0:
        n, rest = divmod(n - 1, 26)
        letters = string.ascii_uppercase[rest] + letters
    return f"Case {letters}"


# The roster (which therapist belongs to which group) is what scopes are made from, so it
# is read as the store's owner; it leaves this module only as a scope.
ROSTER = Scope.system("the supervision groups' roster")


def group_therapists(store: Store, group: str) -> list[str]:
    return store.query("SELECT therapist_id FROM therapists WHERE supervision_group = $g ORDER BY 1",
                       {"g": group}, scope=ROSTER)["therapist_id"].to_list()


def group_scope(store: Store, scope: Scope, group: str) -> Scope:
    """What `scope` may see of a group's conference: the cases of the group's therapists
    (a trainee sees them only as presentation mode shows them)."""
    try:
        return scope.for_group(group, group_therapists(store, group))
    except AccessDenied as err:
        raise ConferenceError(str(err)) from None


def editor(scope: Scope, group: str) -> str:
    """The author of a change to `group`'s conferences: the signed-in supervisor of the
    group or an admin; a ConferenceError for anyone else."""
    try:
        scope.require_editor(group)
    except AccessDenied as err:
        raise ConferenceError(str(err)) from None
    return checked_user(scope.user)


def groups(store: Store, scope: Scope) -> list[str]:
    """The supervision groups whose conferences `scope` may see."""
    known = store.query("SELECT DISTINCT supervision_group FROM therapists WHERE supervision_group IS NOT NULL "
                        "ORDER BY 1", scope=ROSTER)["supervision_group"].to_list()
    return [g for g in known if scope.sees_group(g)]


def checked_group(store: Store, group: str, scope: Scope) -> list[str]:
    """The therapists of `group`; a sentence naming the groups there are when it has none."""
    therapists = group_therapists(store, group) if scope.sees_group(group) else []
    if not therapists:
        known = groups(store, scope)
        raise ConferenceError(f"No therapist belongs to the supervision group '{group}'"
                              + (f"; the groups are {', '.join(known)}." if known else
                                 "; import a therapists table with a supervision_group column first."))
    return therapists


def checked_text(text: str | None, what: str, *, required: bool = True, limit: int = 4000) -> str:
    """Free text typed in a conference (a reason, a note, an action), checked by the privacy
    guard before it is saved: identifying details are refused with the offending spans
    masked, so they never reach the store."""
    text = (text or "").strip()
    if required and not text:
        raise ConferenceError(f"The {what} is empty; write a few words.")
    if len(text) > limit:
        raise ConferenceError(f"The {what} is {len(text)} characters long; keep it under {limit}.")
    findings = find_identifiers(text)
    if findings:
        kinds = ", ".join(sorted({f.kind for f in findings}))
        raise ConferenceError(f"The {what} seems to contain identifying details ({kinds}): \"{mask(text, findings)}\". "
                              "Refer to the case by its id or label and leave names, dates and numbers out.")
    return text


def new_conference(store: Store, catalog: Catalog, group: str, *, scope: Scope, held_on: dt.date | None = None,
                   cases: int | None = None, attendees=(), another_same_day: bool = False) -> dict:
    """Create a conference for `group` with the `cases` highest-priority flagged cases of
    the group's therapists on its agenda; made by `scope`'s user, who must lead the group
    (or be an admin). Returns {"id", "group", "date", "agenda": [...]}.

    Refused (`SameDay`) when the group already has a conference on that date, unless
    `another_same_day`; refused when the group has no cases at all (its agenda could never
    hold one). A group whose cases have no flag gets an empty agenda to add cases to."""
    therapists = checked_group(store, group, scope)
    created_by = editor(scope, group)
    settings = catalog.conference
    cases = settings.cases if cases is None else cases
    if cases < 1:
        raise ConferenceError("A conference needs at least one case on its agenda (--cases 1 or more).")
    held_on = held_on or dt.date.today()
    case_list, flags = triage(store, catalog, group_scope(store, scope, group))
    if case_list.is_empty():
        raise ConferenceError(f"The supervision group '{group}' has no cases yet: no session of its therapists "
                              f"({', '.join(therapists)}) is in the store. Import their sessions first.")
    attendees = [checked_user(a) for a in attendees]
    chosen = case_list.filter(pl.col("priority") > 0).head(cases)
    reasons = (flags.filter(pl.col("client_id").is_in(chosen["client_id"].implode()))
               .group_by("client_id", maintain_order=True).agg(pl.col("reason").head(2).str.join("; ")))
    agenda = (chosen.select("client_id").join(reasons, on="client_id", how="left")
              .with_row_index("position", offset=1))
    with writing(store, scope) as cur:
        existing = [r[0] for r in cur.execute("SELECT conference_id FROM conferences WHERE supervision_group = ? "
                                              "AND held_on = ? ORDER BY 1", [group, held_on]).fetchall()]
        if existing and not another_same_day:
            raise SameDay(f"{group} already has a conference on {held_on} (No. "
                          f"{', '.join(map(str, existing))}). Open it, or confirm that a second conference for the "
                          "same group and date is wanted.", existing)
        conference_id = cur.execute("SELECT nextval('conference_ids')").fetchall()[0][0]
        generation = cur.execute("SELECT coalesce(max(batch_id), 0) FROM batches").fetchall()[0][0]
        cur.execute("INSERT INTO conferences (conference_id, supervision_group, held_on, created_by, created_at, "
                    "attendees, generation) VALUES (?, ?, ?, ?, now(), ?, ?)",
                    [conference_id, group, held_on, created_by, attendees, generation])
        # What the triage showed of every case of the group: the next conference's follow-up
        # compares with it.
        snapshot = case_list.select(pl.lit(conference_id).alias("conference_id"), "client_id", "sessions",
                                    "latest_session", "priority", pl.col("codes").alias("flags"))
        if snapshot.height:
            cur.executemany("INSERT INTO conference_snapshots (conference_id, client_id, sessions, latest_session, "
                            "priority, flags) VALUES (?, ?, ?, ?, ?, ?)", snapshot.rows())
        rows = [(conference_id, int(r["position"]), case_label(int(r["position"])), r["client_id"], r["reason"],
                 settings.minutes_per_case) for r in agenda.iter_rows(named=True)]
        if rows:
            cur.executemany("INSERT INTO agenda_items (conference_id, position, case_label, client_id, reason, "
                            "minutes) VALUES (?, ?, ?, ?, ?, ?)", rows)
        audit.record(store, scope, "conference_new", f"conference {conference_id} of {group}", cur=cur)
    return {"id": conference_id, "group": group, "date": held_on.isoformat(),
            "agenda": [{"case_label": r[2], "client_id": r[3], "reason": r[4], "minutes": r[5]} for r in rows]}


def agenda(store: Store, conference_id: int, include_removed: bool = False, *, scope: Scope) -> pl.DataFrame:
    """The agenda in order: position, case_label, client_id, reason, minutes (and the
    removal record when `include_removed`); only the cases `scope` may see."""
    conference(store, conference_id, scope)  # a sentence when there is none `scope` may see
    where = "" if include_removed else " AND deleted_at IS NULL"
    # Cases on the agenda first, in their places; removed ones keep the place they left.
    return store.query("SELECT position, case_label, client_id, reason, minutes, deleted_at, deleted_by, deleted_why "
                       f"FROM agenda_items WHERE conference_id = $id{where} "
                       "ORDER BY deleted_at NULLS FIRST, position", {"id": conference_id}, scope=scope)


def conference(store: Store, conference_id: int, scope: Scope) -> dict:
    """One conference: id, group, date, created_by, created_at, attendees, generation. One
    that `scope` may not see is answered like one that does not exist."""
    rows = store.query("SELECT conference_id AS id, supervision_group AS \"group\", held_on AS date, created_by, "
                       "created_at, attendees, generation FROM conferences WHERE conference_id = $id",
                       {"id": conference_id}, scope=scope)
    if rows.is_empty():
        raise ConferenceError(f"There is no conference {conference_id} in this store.")
    return rows.row(0, named=True)


def conferences(store: Store, scope: Scope, group: str | None = None) -> pl.DataFrame:
    """Every conference `scope` may see (of `group`), the latest first, with its number of
    cases (counted over the whole agenda: a count names no case)."""
    where = "WHERE supervision_group = $g" if group else ""
    listed = store.query(f"SELECT conference_id, supervision_group, held_on, created_by, attendees FROM conferences "
                         f"{where} ORDER BY held_on DESC, conference_id DESC", {"g": group} if group else None,
                         scope=scope)
    counts = store.query("SELECT conference_id, count(*) FILTER (WHERE deleted_at IS NULL) AS cases FROM agenda_items "
                         "WHERE conference_id = ANY($ids::INTEGER[]) GROUP BY conference_id",
                         {"ids": listed["conference_id"].to_list()}, scope=ROSTER)
    return listed.join(counts, on="conference_id", how="left").with_columns(pl.col("cases").fill_null(0))


def checked_user(user: str | None) -> str:
    """A pseudonymous user id (an author, an owner, an attendee); refuses one that identifies."""
    user = (user or "").strip()
    if not user:
        raise ConferenceError("Say who you are: give your pseudonymous user id (e.g. sup1).")
    problem = id_problem(user)
    if problem:
        raise ConferenceError(f"The user id given {problem}; use a pseudonymous id such as sup1.")
    return user


def _active(cur, conference_id: int, client_id: str):
    return cur.execute("SELECT position FROM agenda_items WHERE conference_id = ? AND client_id = ? "
                       "AND deleted_at IS NULL", [conference_id, client_id]).fetchall()


def editable(store: Store, conference_id: int, scope: Scope) -> tuple[dict, str]:
    """(the conference, the author) for a change by `scope`'s user: a ConferenceError when
    there is no such conference `scope` may see, or `scope` may not change it."""
    info = conference(store, conference_id, scope)
    return info, editor(scope, info["group"])


def add_item(store: Store, catalog: Catalog, conference_id: int, client_id: str, reason: str,
             minutes: int | None = None, *, scope: Scope) -> dict:
    """Put a case of the group on the agenda, last; it gets the letter of that place."""
    info, _ = editable(store, conference_id, scope)
    cases = group_scope(store, scope, info["group"])
    if not store.scalar("SELECT count(*) FROM sessions WHERE client_id = $c", {"c": client_id}, scope=cases):
        raise ConferenceError(f"There is no case {client_id} among the cases of {info['group']}.")
    reason = checked_text(reason, "reason")
    minutes = catalog.conference.minutes_per_case if minutes is None else _checked_minutes(minutes)
    with writing(store, scope) as cur:
        if _active(cur, conference_id, client_id):
            raise ConferenceError(f"Case {client_id} is already on the agenda.")
        _renumber(cur, conference_id)
        last = cur.execute("SELECT count(*) FROM agenda_items WHERE conference_id = ? AND deleted_at IS NULL",
                           [conference_id]).fetchall()[0][0]
        label = case_label(last + 1)
        cur.execute("INSERT INTO agenda_items (conference_id, position, case_label, client_id, reason, minutes) "
                    "VALUES (?, ?, ?, ?, ?, ?)", [conference_id, last + 1, label, client_id, reason, minutes])
    return {"case_label": label, "client_id": client_id, "reason": reason, "minutes": minutes, "position": last + 1}


def _renumber(cur, conference_id: int) -> None:
    """Places 1, 2, 3 ... and the letters of those places for the cases on the agenda, in
    their order: a removed case leaves no gap, a moved one takes its new place's letter.
    A removed item keeps the label it had when it was taken off."""
    # A case is on an agenda once (a removed item has its deleted_at), so the client names the item.
    ids = [r[0] for r in cur.execute("SELECT client_id FROM agenda_items WHERE conference_id = ? "
                                     "AND deleted_at IS NULL ORDER BY position, client_id", [conference_id]).fetchall()]
    if ids:
        cur.executemany("UPDATE agenda_items SET position = ?, case_label = ? WHERE conference_id = ? "
                        "AND client_id = ? AND deleted_at IS NULL",
                        [(n, case_label(n), conference_id, client) for n, client in enumerate(ids, start=1)])


def _checked_minutes(minutes) -> int:
    try:
        minutes = int(minutes)
    except (TypeError, ValueError):
        raise ConferenceError("The time budget is a whole number of minutes.") from None
    if not 1 <= minutes <= 240:
        raise ConferenceError("The time budget of a case is between 1 and 240 minutes.")
    return minutes


def update_item(store: Store, conference_id: int, client_id: str, *, reason: str | None = None,
                minutes: int | None = None, scope: Scope) -> None:
    """Change the reason or the time budget of a case on the agenda."""
    editable(store, conference_id, scope)
    values, sets = [], []
    if reason is not None:
        sets.append("reason = ?")
        values.append(checked_text(reason, "reason"))
    if minutes is not None:
        sets.append("minutes = ?")
        values.append(_checked_minutes(minutes))
    if not sets:
        return
    with writing(store, scope) as cur:
        if not _active(cur, conference_id, client_id):
            raise ConferenceError(f"Case {client_id} is not on the agenda of conference {conference_id}.")
        cur.execute(f"UPDATE agenda_items SET {', '.join(sets)} WHERE conference_id = ? AND client_id = ? "
                    "AND deleted_at IS NULL", [*values, conference_id, client_id])


def reorder(store: Store, conference_id: int, client_ids: list[str], *, scope: Scope) -> None:
    """Put the agenda in the order of `client_ids` (every case on it, once each). Each case
    takes the letter of its new place: the room sees Case A, B, C in agenda order (notes
    and actions are kept by client, so they move with their case)."""
    editable(store, conference_id, scope)
    with writing(store, scope) as cur:
        current = [r[0] for r in cur.execute("SELECT client_id FROM agenda_items WHERE conference_id = ? AND "
                                             "deleted_at IS NULL ORDER BY position", [conference_id]).fetchall()]
        if sorted(current) != sorted(client_ids) or len(set(client_ids)) != len(client_ids):
            raise ConferenceError("The new order must list every case on the agenda once.")
        cur.executemany("UPDATE agenda_items SET position = ? WHERE conference_id = ? AND client_id = ? "
                        "AND deleted_at IS NULL",
                        [(i, conference_id, c) for i, c in enumerate(client_ids, start=1)])
        _renumber(cur, conference_id)


def move_item(store: Store, conference_id: int, client_id: str, step: int, *, scope: Scope) -> None:
    """Move a case `step` places later (negative: earlier) on the agenda."""
    order = agenda(store, conference_id, scope=scope)["client_id"].to_list()
    if client_id not in order:
        raise ConferenceError(f"Case {client_id} is not on the agenda of conference {conference_id}.")
    i = order.index(client_id)
    j = max(0, min(len(order) - 1, i + step))
    order.insert(j, order.pop(i))
    reorder(store, conference_id, order, scope=scope)


def apply_agenda_edits(store: Store, conference_id: int, edited: pl.DataFrame, *, scope: Scope,
                       shown: pl.DataFrame | None = None) -> list[str]:
    """Save what was changed in an edited agenda table (columns client_id, order, reason,
    minutes): new reasons and time budgets, and the new order. An order number is the
    position the case moves to: 1 puts it first and the others move down one place
    (`moved_order`). Returns what was saved, in words; nothing when nothing changed. An
    edit that cannot be applied (an order left empty or beyond the agenda, an empty
    reason) is refused with a sentence before anything is saved.

    With `shown` (the table as the editor showed it), an agenda changed by someone else
    since then is not overwritten: the edit is refused, naming what was typed."""
    editable(store, conference_id, scope)
    before = agenda(store, conference_id, scope=scope)
    if shown is not None:
        _unchanged_since(before, shown, edited)
    merged = before.select("client_id", "position", "reason", "minutes").join(
        edited.select("client_id", pl.col("order").alias("new_order"), pl.col("reason").alias("new_reason"),
                      pl.col("minutes").alias("new_minutes")), on="client_id", how="inner")
    changes = []
    for row in merged.iter_rows(named=True):  # every change is checked before any is saved
        if row["new_minutes"] is None:
            raise ConferenceError(f"The time budget of {row['client_id']} was left empty; give it in minutes.")
        reason = row["new_reason"] if (row["new_reason"] or "").strip() != row["reason"] else None
        minutes = row["new_minutes"] if row["new_minutes"] != row["minutes"] else None
        if reason is not None or minutes is not None:
            changes.append((row["client_id"], None if reason is None else checked_text(reason, "reason"),
                            None if minutes is None else _checked_minutes(minutes)))
    current = merged.sort("position")
    order = moved_order(current["client_id"].to_list(),
                        dict(zip(current["client_id"], current["new_order"])))
    done = []
    for client_id, reason, minutes in changes:
        update_item(store, conference_id, client_id, reason=reason, minutes=minutes, scope=scope)
        done.append(f"{client_id}: " + " and ".join(
            w for w, v in (("reason", reason), ("minutes", minutes)) if v is not None))
    if order != current["client_id"].to_list():
        reorder(store, conference_id, order, scope=scope)
        done.append("the order")
    return done


def _unchanged_since(now: pl.DataFrame, shown: pl.DataFrame, edited: pl.DataFrame) -> None:
    """A ConferenceError when the stored agenda is no longer the one the editor showed."""
    columns = ["client_id", "order", "reason", "minutes"]
    stored = now.select("client_id", pl.col("position").alias("order"), "reason", "minutes").sort("client_id")
    if stored.cast({"order": pl.Int64, "minutes": pl.Int64}).equals(
            shown.select(columns).cast({"order": pl.Int64, "minutes": pl.Int64}).sort("client_id")):
        return
    mine = edited.select(columns).join(shown.select(columns), on="client_id", how="left", suffix="_shown")
    typed = [f"{r['client_id']}: " + ", ".join(f"{c} {r[c]!r}" for c in ("order", "reason", "minutes")
                                                 if r[c] != r[c + "_shown"]) for r in mine.iter_rows(named=True)
             if any(r[c] != r[c + "_shown"] for c in ("order", "reason", "minutes"))]
    raise ConferenceError("The agenda was changed by someone else since you opened it, so your edit was not "
                          "saved; the table now shows their version. Your edit: " + "; ".join(typed) + ".")


def moved_order(order: list[str], wanted: dict[str, int | None]) -> list[str]:
    """The agenda `order` after each case whose number in `wanted` differs from its place
    moves to that place (1 = first), the others keeping their order around it. Several
    moves are applied from the lowest number up. A number left empty, or outside 1 to the
    length of the agenda, is refused."""
    moved = []
    for place, client_id in enumerate(order, start=1):
        to = wanted.get(client_id, place)
        if to is None:
            raise ConferenceError(f"The order number of {client_id} was left empty; give the place it moves to "
                                  f"(1 to {len(order)}).")
        if not 1 <= to <= len(order):
            raise ConferenceError(f"{client_id} cannot move to place {to}: the agenda has {len(order)} case(s). "
                                  f"Give a number from 1 to {len(order)}.")
        if to != place:
            moved.append((int(to), place, client_id))
    staying = [c for c in order if c not in {m[2] for m in moved}]
    for to, _, client_id in sorted(moved):
        staying.insert(to - 1, client_id)
    return staying


def remove_item(store: Store, conference_id: int, position: int, *, scope: Scope, why: str) -> None:
    """Take a case off the agenda; the item stays in the store with who, when and why."""
    _, by = editable(store, conference_id, scope)
    if not why.strip():
        raise ConferenceError("Say why the case is taken off the agenda; the reason is kept with the item.")
    why = checked_text(why, "reason for taking the case off")
    with writing(store, scope) as cur:
        found = cur.execute("UPDATE agenda_items SET deleted_at = now(), deleted_by = ?, deleted_why = ? "
                            "WHERE conference_id = ? AND position = ? AND deleted_at IS NULL RETURNING position",
                            [by, why, conference_id, position]).fetchall()
        _renumber(cur, conference_id)
    if not found:
        raise ConferenceError(f"Conference {conference_id} has no case at position {position} on its agenda.")
