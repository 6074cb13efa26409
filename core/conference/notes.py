"""What a conference says and decides about each case: discussion notes and action items.

Every entry belongs to a case on a conference's agenda. Entries are append-only: each
save is a new version with its author and time, and a deletion is a version that records
who deleted it and why; nothing is overwritten, so the whole history can be shown. An
entry's current state is its latest version. Text passes the privacy guard before it is
saved (`meetings.checked_text`).

An action item has an owner (a pseudonymous user id), the date of the conference it is
due at, and a status.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from .. import audit
from ..access import Scope
from ..store import Store, StoreConflict
from .meetings import ConferenceError, checked_text, checked_user, editable, writing

class EditConflict(ConferenceError):
    """The entry changed since the editor opened it: nothing was saved. Carries both texts,
    so the page can show them side by side and keep what was typed."""

    def __init__(self, entry_id: int, theirs: dict, yours: str):
        self.entry_id, self.theirs, self.yours = entry_id, theirs, yours
        who = theirs.get("saved_by") or "someone"
        super().__init__(f"Entry {entry_id} was changed by {who} since you opened it, so your version was not "
                         "saved. Compare the two texts, then save yours again if it should replace theirs.")


KINDS = ("note", "action")
STATUSES = ("open", "in progress", "done", "dropped")
FINISHED = ("done", "dropped")

_FIELDS = ("client_id", "kind", "text", "owner", "due_on", "status")

# The latest version of every entry, with who wrote it first and when.
_CURRENT = """
    SELECT e.entry_id, e.version, e.conference_id, e.client_id, e.kind, e.text, e.owner, e.due_on, e.status,
           f.saved_by AS created_by, f.saved_at AS created_at, e.saved_by, e.saved_at, e.deleted, e.why
    FROM conference_entries e
    JOIN (SELECT entry_id, min(version) AS first, max(version) AS last FROM conference_entries GROUP BY entry_id) v
      ON v.entry_id = e.entry_id AND v.last = e.version
    JOIN conference_entries f ON f.entry_id = v.entry_id AND f.version = v.first
"""


def _on_agenda(store: Store, conference_id: int, client_id: str, scope: Scope) -> None:
    if not store.scalar("SELECT count(*) FROM agenda_items WHERE conference_id = $id AND client_id = $c "
                        "AND deleted_at IS NULL", {"id": conference_id, "c": client_id}, scope=scope):
        raise ConferenceError(f"Case {client_id} is not on the agenda of conference {conference_id}.")


def _checked(kind: str, text: str, owner: str | None, due_on, status: str | None) -> dict:
    if kind not in KINDS:
        raise ConferenceError(f"An entry is a note or an action, not '{kind}'.")
    values = {"kind": kind, "text": checked_text(text, "note" if kind == "note" else "action"),
              "owner": None, "due_on": None, "status": None}
    if kind == "action":
        values["owner"] = checked_user(owner) if owner else None
        if values["owner"] is None:
            raise ConferenceError("An action needs an owner: the user id of who will do it.")
        if due_on is not None and not isinstance(due_on, dt.date):
            try:
                due_on = dt.date.fromisoformat(str(due_on))
            except ValueError:
                raise ConferenceError("The due date is a date as YYYY-MM-DD.") from None
        values["due_on"] = due_on
        status = status or "open"
        if status not in STATUSES:
            raise ConferenceError(f"The status of an action is one of {', '.join(STATUSES)}; not '{status}'.")
        values["status"] = status
    return values


def save_entry(store: Store, conference_id: int, client_id: str, *, kind: str, text: str, scope: Scope,
               owner: str | None = None, due_on: dt.date | str | None = None, status: str | None = None,
               entry_id: int | None = None, base_version: int | None = None) -> int:
    """Save a new note or action (no `entry_id`) or a new version of one, written by
    `scope`'s user; returns its id. Saving what is already there adds no version. With
    `base_version` (the version the editor showed), a save over a newer version is refused
    with an `EditConflict`: no update is lost."""
    _, by = editable(store, conference_id, scope)
    values = _checked(kind, text, owner, due_on, status)
    _on_agenda(store, conference_id, client_id, scope)
    try:
        return _save(store, conference_id, client_id, scope, by, values, entry_id, base_version)
    except ConferenceError as err:
        # Two edits over the same version at the same moment on two servers: both passed the
        # version check, the database kept the first insert. The second is the same conflict
        # as one that came later, with both texts for the page.
        if entry_id is None or base_version is None or not isinstance(err.__cause__, StoreConflict):
            raise
        with writing(store, scope) as cur:
            theirs = _latest(cur, entry_id)
        raise EditConflict(entry_id, theirs, values["text"]) from None


def _latest(cur, entry_id: int) -> dict:
    """The entry's newest version: its fields, version and who saved it."""
    row = cur.execute(f"SELECT {', '.join(_FIELDS)}, version, saved_by FROM conference_entries "
                      "WHERE entry_id = ? ORDER BY version DESC LIMIT 1", [entry_id]).fetchall()[0]
    return dict(zip((*_FIELDS, "version", "saved_by"), row))


def _save(store: Store, conference_id: int, client_id: str, scope: Scope, by: str, values: dict,
          entry_id: int | None, base_version: int | None) -> int:
    with writing(store, scope) as cur:
        if entry_id is None:
            entry_id = cur.execute("SELECT nextval('entry_ids')").fetchall()[0][0]
            version = 1
        else:
            latest = cur.execute(f"SELECT {', '.join(_FIELDS)}, version, deleted, conference_id "
                                 "FROM conference_entries WHERE entry_id = ? ORDER BY version DESC LIMIT 1",
                                 [entry_id]).fetchall()
            if not latest or latest[0][-1] != conference_id:
                raise ConferenceError(f"There is no entry {entry_id} in conference {conference_id}.")
            *before, version, deleted, _ = latest[0]
            if deleted:
                raise ConferenceError(f"Entry {entry_id} was deleted; write a new one instead.")
            if base_version is not None and version != base_version:
                raise EditConflict(entry_id, _latest(cur, entry_id), values["text"])
            if dict(zip(_FIELDS, before)) == {"client_id": client_id, **values}:
                return entry_id
            version += 1
        cur.execute("INSERT INTO conference_entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), false, NULL)",
                    [entry_id, version, conference_id, client_id, values["kind"], values["text"], values["owner"],
                     values["due_on"], values["status"], by])
        audit.record(store, scope, "note_write", f"conference {conference_id} client {client_id} entry {entry_id} "
                     f"v{version} ({values['kind']})", cur=cur)
    return entry_id


def delete_entry(store: Store, entry_id: int, *, scope: Scope, why: str) -> None:
    """Delete an entry: a last version that records who, when and why; the history stays."""
    why = checked_text(why, "reason for deleting")
    found = store.query("SELECT conference_id FROM conference_entries WHERE entry_id = $e LIMIT 1", {"e": entry_id},
                        scope=scope)
    if found.is_empty():
        raise ConferenceError(f"There is no entry {entry_id} to delete.")
    _, by = editable(store, found["conference_id"][0], scope)
    with writing(store, scope) as cur:
        latest = cur.execute("SELECT entry_id, conference_id, client_id, kind, text, owner, due_on, status, version, "
                             "deleted "
                             "FROM conference_entries WHERE entry_id = ? ORDER BY version DESC LIMIT 1",
                             [entry_id]).fetchall()
        if not latest or latest[0][-1]:
            raise ConferenceError(f"There is no entry {entry_id} to delete.")
        *kept, version, _ = latest[0]
        cur.execute("INSERT INTO conference_entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), true, ?)",
                    [kept[0], version + 1, *kept[1:], by, why])
        audit.record(store, scope, "note_delete", f"entry {entry_id} v{version + 1}", cur=cur)


def entries(store: Store, conference_id: int, client_id: str | None = None, *,
            include_deleted: bool = False, scope: Scope) -> pl.DataFrame:
    """The current notes and actions of a conference (of one case) that `scope` may see,
    oldest first."""
    where = ["conference_id = $id"] + (["client_id = $c"] if client_id else []) + \
        ([] if include_deleted else ["NOT deleted"])
    params = {"id": conference_id, **({"c": client_id} if client_id else {})}
    return store.query(f"SELECT * FROM ({_CURRENT}) AS current WHERE {' AND '.join(where)} ORDER BY created_at, entry_id",
                       params, scope=scope)


def history(store: Store, conference_id: int, entry_id: int | None = None, *, scope: Scope) -> pl.DataFrame:
    """Every version of every entry of a conference (or of one entry) that `scope` may see,
    in the order saved."""
    where = "conference_id = $id" + (" AND entry_id = $e" if entry_id is not None else "")
    params = {"id": conference_id, **({"e": entry_id} if entry_id is not None else {})}
    return store.query(f"SELECT * FROM conference_entries WHERE {where} ORDER BY entry_id, version", params,
                       scope=scope)


def purge_entry(store: Store, entry_id: int, *, scope: Scope, why: str) -> int:
    """Purge an entry's text from every version (an admin's act, for text that should never
    have been saved): the versions stay with their authors and times, their text becomes a
    mark, and a tombstone keeps who purged it, when and why; the state file is rewritten so
    that the text is in none of its bytes either (server mode: PostgreSQL keeps old row
    versions until a VACUUM FULL). Returns how many versions."""
    if not scope.is_admin:
        raise ConferenceError("Only an admin may purge a note's text.")
    why = checked_text(why, "reason for purging")
    with writing(store, scope) as cur:
        purged = cur.execute("UPDATE conference_entries SET text = ? WHERE entry_id = ? RETURNING version",
                             [PURGED, entry_id]).fetchall()
        if not purged:
            raise ConferenceError(f"There is no entry {entry_id} to purge.")
        cur.execute("INSERT INTO purges VALUES (?, ?, now(), ?)", [entry_id, checked_user(scope.user), why])
        audit.record(store, scope, "purge", f"entry {entry_id} ({len(purged)} versions)", cur=cur)
    # An UPDATE leaves the old text in the file's bytes (DuckDB reuses blocks, it does not
    # wipe them): the file is rewritten without it.
    store.rewrite_state()
    return len(purged)


PURGED = "[text purged by an admin]"


def group_actions(store: Store, group: str, scope: Scope) -> pl.DataFrame:
    """The current action items of every conference of `group` that `scope` may see, with
    the conference's date and the case's label on that agenda."""
    return store.query(
        f"""SELECT c.held_on AS conference_date, e.conference_id, a.case_label, e.entry_id, e.version, e.client_id,
                   e.text, e.owner, e.due_on, e.status, e.created_by, e.created_at, e.saved_by, e.saved_at
            FROM ({_CURRENT}) e JOIN conferences c USING (conference_id)
            LEFT JOIN agenda_items a ON a.conference_id = e.conference_id AND a.client_id = e.client_id
                 AND a.deleted_at IS NULL
            WHERE c.supervision_group = $g AND e.kind = 'action' AND NOT e.deleted
            ORDER BY c.held_on, e.conference_id, e.entry_id""", {"g": group}, scope=scope)
