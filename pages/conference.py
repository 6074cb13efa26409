"""Conference: prepare and run a supervision group's case conference.

The agenda (pre-filled from the triage, editable and reorderable), the notes and
decisions per case (saved as they change, with author and time, never overwritten),
the follow-up of the previous conference, and the handout.
"""

import datetime as dt

import polars as pl
import streamlit as st

from core import links, web
from core.conference import followup, handout, meetings, notes
from core.conference.meetings import ConferenceError, SameDay

web.ensure_navigation(__file__)  # first: a cold deep link runs this page through app.py; then the guard
cat = web.catalog()
store = web.connection().store
st.title("Conference")
user = web.ask_user()
scope = web.scope()

groups = meetings.groups(store, scope)
if not groups:
    st.info("No supervision groups yet: a conference belongs to a group of therapists. Import a therapists table "
            "with a supervision_group column on the Data page, or load the demo data there.")
    st.page_link(web.page("data"), label="Go to the Data page", icon=":material/upload_file:")
    st.stop()


def attempt(action, *args, success: str | None = None, **kwargs):
    """Run a change; a refused one shows its sentence. True when it was saved."""
    try:
        action(*args, **kwargs)
    except ConferenceError as err:
        st.error(links.as_text(str(err)))  # it may quote what was typed: shown as text
        return False
    if success:
        st.toast(success)
    return True


def need_user() -> bool:
    """Whether the signed-in user may change this group's conferences (its supervisor or an admin)."""
    if not scope.may_edit_group(group):
        st.warning("Only the group's supervisor or an admin can change its conferences.")
        return False
    return True


# ----------------------------------------------------------------------------- which conference
# A link naming no known conference opens none: never another group's or another date's.
every = meetings.conferences(store, scope)
wanted, problem = links.conference_id(st.query_params.get("conference"), set(every["conference_id"].to_list()))
notice = st.empty()
if problem:
    notice.warning(links.as_text(problem))
wanted_group = meetings.conference(store, wanted, scope)["group"] if wanted else None
group = st.selectbox("Supervision group", groups, key="conf_group",
                     index=groups.index(wanted_group) if wanted_group in groups else 0)
existing = meetings.conferences(store, scope, group)


def make_conference(request: dict, another_same_day: bool = False) -> None:
    """Make the conference; open it with a sentence saying so. A second one for the same
    group and date waits for a confirmation (`SameDay`)."""
    try:
        made = meetings.new_conference(store, cat, request["group"], scope=scope, held_on=request["held_on"],
                                       cases=request["cases"], attendees=request["attendees"],
                                       another_same_day=another_same_day)
    except SameDay:
        st.session_state["conf_same_day"] = request
        return
    except ConferenceError as err:
        st.error(links.as_text(str(err)))
        return
    st.session_state.pop("conf_same_day", None)
    n = len(made["agenda"])
    st.session_state["conf_made"] = (
        f"Conference No. {made['id']} of {made['group']} on {made['date']} is made and open below, with "
        + (f"{n} case(s) from the triage on its agenda." if n else
           "an empty agenda: no case of the group has a flag now. Add cases to its agenda below."))
    st.session_state.pop(f"conf_pick_{request['group']}", None)  # the picker shows the new conference
    st.query_params["conference"] = str(made["id"])
    st.rerun()


with st.expander("Make a new conference", expanded=existing.is_empty()):
    with st.form("conf_new_form"):
        held_on = st.date_input("Date of the meeting", value=dt.date.today(), key="conf_new_date")
        cases = st.number_input("Cases on the agenda", min_value=1, max_value=50, value=cat.conference.cases,
                                key="conf_new_cases")
        attendees = st.text_input("Attendees", key="conf_new_attendees", placeholder="sup1, th01, th02",
                                  help="Pseudonymous user ids, separated by commas.")
        make = st.form_submit_button("Make the conference and fill its agenda from the triage")
    if make and need_user():
        make_conference({"group": group, "held_on": held_on, "cases": int(cases),
                         "attendees": [a.strip() for a in attendees.split(",") if a.strip()]})
    pending = st.session_state.get("conf_same_day")
    if pending and pending["group"] == group:
        twins = existing.filter(pl.col("held_on") == pending["held_on"])["conference_id"].to_list()
        st.warning(links.as_text(f"{group} already has a conference on the same date, {pending['held_on']} (No. "
                                 f"{', '.join(map(str, twins))}). Make a second one only if the group meets twice "
                                 "that day; its follow-up compares with the last conference held before that date."))
        again, cancel = st.columns(2)
        if again.button("Make a second conference for this date", key="conf_same_day_again") and need_user():
            make_conference(pending, another_same_day=True)
        if cancel.button("Cancel", key="conf_same_day_cancel"):
            st.session_state.pop("conf_same_day", None)
            st.rerun()

if existing.is_empty():
    st.info(f"No conference for {group} yet: make one above. Its agenda is filled with the group's cases that have "
            "the most pressing flags.")
    st.stop()

ids = existing["conference_id"].to_list()
names = {r["conference_id"]: f"No. {r['conference_id']}, {r['held_on']} · {r['cases']} case(s) · "
                             f"made by {r['created_by']}" for r in existing.iter_rows(named=True)}
conf_id = st.selectbox("Conference", ids, index=None if problem else ids.index(wanted) if wanted in ids else 0,
                       format_func=names.get, key=f"conf_pick_{group}", placeholder="Pick a conference")
if conf_id is None:
    st.stop()
notice.empty()
if made := st.session_state.pop("conf_made", None):
    st.success(made)
st.query_params["conference"] = str(conf_id)
info = meetings.conference(store, conf_id, scope)
items = meetings.agenda(store, conf_id, scope=scope)
st.caption(f"Attendees: {', '.join(info['attendees']) or 'not recorded'}. "
           f"{items.height} case(s), {int(items['minutes'].sum() or 0)} minutes planned.")
st.page_link(web.page("present"), label="Present this conference", icon=":material/co_present:",
             query_params={"conference": str(conf_id)})

section = st.segmented_control("Section", ["Agenda", "Notes and decisions", "Follow-up", "Handout"],
                               default="Agenda", key="conf_section") or "Agenda"
case_names = {r["client_id"]: f"{r['case_label']} ({r['client_id']})" for r in items.iter_rows(named=True)}

# ----------------------------------------------------------------------------- agenda
if section == "Agenda":
    version = st.session_state.setdefault("conf_agenda_version", 0)
    case_list, flags = web.read("group_triage", group)
    candidates = case_list.filter(~pl.col("client_id").is_in(items["client_id"].implode()))
    if case_list.is_empty():
        st.info(f"The agenda is empty, and {group} has no cases in the store to add: import its therapists' "
                "sessions on the Data page first.")
    elif items.is_empty():
        st.info("The agenda is empty: add a case below.")
    else:
        # The editor keeps the agenda as it was when it opened: an edit is saved over that
        # state only, so a change someone made meanwhile is never overwritten unseen.
        editor_key = f"conf_agenda_{conf_id}_{version}"
        table = st.session_state.setdefault(editor_key + "_shown", items.select(
            pl.col("position").alias("order"), "case_label", "client_id", "reason", "minutes"))
        edited = st.data_editor(
            table, key=editor_key, hide_index=True, disabled=["case_label", "client_id"],
            column_config={"order": st.column_config.NumberColumn("Order", min_value=1, step=1, width="small",
                                                                  help="Change a number to move the case."),
                           "case_label": "Case", "client_id": "Client",
                           "reason": st.column_config.TextColumn("Why it is on the agenda", width="large"),
                           "minutes": st.column_config.NumberColumn("Minutes", min_value=1, max_value=240, step=1)})
        if not edited.equals(table) and need_user():
            # Saved or not, the table then shows what is stored; an edit not applied says why.
            try:
                saved = meetings.apply_agenda_edits(store, conf_id, edited, scope=scope, shown=table)
            except ConferenceError as err:
                st.session_state["conf_agenda_refused"] = f"Not applied: {err}"
            else:
                if saved:
                    st.toast("Saved: " + "; ".join(saved))
                else:
                    st.session_state["conf_agenda_refused"] = "Nothing to save: the table holds what is stored."
            st.session_state["conf_agenda_version"] = version + 1
            st.session_state.pop(editor_key + "_shown", None)
            st.rerun()
        if refused := st.session_state.pop("conf_agenda_refused", None):
            st.warning(links.as_text(refused))
        st.caption("Edit a reason or a time budget in the table, or give a case the place it moves to in Order "
                   "(1 puts it first; the others move down); each change is saved at once. Cases are lettered in "
                   "agenda order, as the room sees them.")

    left, right = st.columns(2)
    with left:
        st.subheader("Add a case")
        if case_list.is_empty():
            st.caption(f"{group} has no cases in the store.")
        elif candidates.is_empty():
            st.caption("Every case of the group is on the agenda.")
        else:
            options = candidates["client_id"].to_list()
            priority = dict(zip(candidates["client_id"], candidates["priority"]))
            add_client = st.selectbox("Case", options, key="conf_add_client",
                                      format_func=lambda c: f"{c} (priority {priority[c]:g})")
            suggested = "; ".join(flags.filter(pl.col("client_id") == add_client)["reason"].head(2).to_list())
            # Not cleared on submit: a reason the privacy guard refuses stays to be corrected (its
            # field is keyed by the case, so an added case leaves a fresh one behind).
            with st.form("conf_add_form"):
                reason = st.text_area("Why", value=suggested, key=f"conf_add_reason_{add_client}")
                minutes = st.number_input("Minutes", 1, 240, cat.conference.minutes_per_case, key="conf_add_minutes")
                if st.form_submit_button("Add to the agenda") and need_user():
                    if attempt(meetings.add_item, store, cat, conf_id, add_client, reason, int(minutes),
                               scope=scope, success=f"{add_client} added."):
                        st.rerun()
    with right:
        st.subheader("Take a case off")
        if not items.is_empty():
            # Not cleared on submit: a reason the privacy guard refuses stays to be corrected;
            # once a case is taken off, the next form gets a fresh field (a new key).
            removals = st.session_state.setdefault("conf_removals", 0)
            with st.form("conf_remove_form"):
                off = st.selectbox("Case", items["client_id"].to_list(), format_func=case_names.get,
                                   key="conf_remove_client")
                why = st.text_input("Why (kept with the agenda)", key=f"conf_remove_why_{removals}")
                if st.form_submit_button("Take off the agenda") and need_user():
                    position = int(items.filter(pl.col("client_id") == off)["position"][0])
                    if attempt(meetings.remove_item, store, conf_id, position, scope=scope, why=why,
                               success=f"{case_names[off]} taken off."):
                        st.session_state["conf_removals"] = removals + 1
                        st.rerun()
        removed = meetings.agenda(store, conf_id, include_removed=True, scope=scope).filter(
            pl.col("deleted_at").is_not_null())
        if removed.height:
            st.caption("Taken off the agenda")
            st.dataframe(removed.select("case_label", "client_id", "deleted_by", "deleted_at", "deleted_why"),
                         hide_index=True, column_config={"case_label": "Case", "client_id": "Client",
                                                         "deleted_by": "By", "deleted_at": "When",
                                                         "deleted_why": "Why"})


# ----------------------------------------------------------------------------- notes and decisions
def save_edit(entry: dict, field: str, widget_key: str) -> None:
    """on_change of an entry's field: save a new version at once, over the version shown
    only (`base_version`): one changed meanwhile by someone else is kept, and both texts are
    shown, the typed one still in its box."""
    values = {k: entry[k] for k in ("kind", "text", "owner", "due_on", "status")}
    values[field] = st.session_state[widget_key]
    try:
        notes.save_entry(web.connection().store, entry["conference_id"], entry["client_id"], scope=scope,
                         entry_id=entry["entry_id"], base_version=entry["version"], **values)
    except notes.EditConflict as err:
        st.session_state[f"conf_conflict_{entry['entry_id']}"] = {"theirs": err.theirs["text"], "yours": err.yours}
        st.session_state["conf_note_error"] = str(err)
    except ConferenceError as err:
        st.session_state["conf_note_error"] = str(err)
    else:
        st.session_state.pop(f"conf_conflict_{entry['entry_id']}", None)


def save_new(kind: str, conference_id: int, client_id: str, author, fields: dict[str, str]) -> None:
    """on_click of a new note's or action's Save, written by `author` (the signed-in
    reader's scope): save it and empty the form. A refused one keeps everything typed (the
    sentence marks what was refused), so nothing is lost."""
    values = {field: st.session_state.get(key) for field, key in fields.items()}
    try:
        notes.save_entry(web.connection().store, conference_id, client_id, kind=kind, scope=author, **values)
    except ConferenceError as err:
        st.session_state[f"conf_new_{kind}_error"] = str(err)
        return
    for key in fields.values():
        st.session_state.pop(key, None)
    st.toast("Saved.")


def show_actions(frame: pl.DataFrame, key: str) -> None:
    """Action items with an editable status (saved as a new version). An edit is read
    against the actions as the editor showed them (its rows and versions), never against a
    newer state: a status someone changed meanwhile is not overwritten, a row added
    meanwhile does not shift the edit onto another action, and an edit not applied says so."""
    pending = st.session_state.get(key)
    if not (isinstance(pending, dict) and pending.get("edited_rows")) or key + "_shown" not in st.session_state:
        st.session_state[key + "_shown"] = frame
    shown = st.session_state[key + "_shown"]
    table = shown.select("entry_id", "client_id", "text", "owner", "due_on", "status")
    edited = st.data_editor(table, key=key, hide_index=True, disabled=["entry_id", "client_id", "text", "owner",
                                                                       "due_on"],
                            column_config={"entry_id": None, "client_id": "Client",
                                           "text": st.column_config.TextColumn("Action", width="large"),
                                           "owner": "Owner", "due_on": st.column_config.DateColumn("Due"),
                                           "status": st.column_config.SelectboxColumn("Status",
                                                                                      options=list(notes.STATUSES),
                                                                                      required=True)})
    if refused := st.session_state.pop("conf_actions_refused", None):
        st.error(links.as_text(refused))  # kept over the rerun below: it would only flash
    changed = edited.join(table, on="entry_id", suffix="_before").filter(pl.col("status") != pl.col("status_before"))
    if not changed.height:
        return
    statuses = dict(zip(changed["entry_id"], changed["status"]))
    refused = []
    if not scope.may_edit_group(group):
        refused.append("No status was changed: only the group's supervisor or an admin can change its conferences.")
    else:
        for row in shown.filter(pl.col("entry_id").is_in(changed["entry_id"].implode())).iter_rows(named=True):
            try:
                notes.save_entry(store, row["conference_id"], row["client_id"], kind="action", text=row["text"],
                                 owner=row["owner"], due_on=row["due_on"], status=statuses[row["entry_id"]],
                                 scope=scope, entry_id=row["entry_id"], base_version=row["version"])
            except ConferenceError as err:
                refused.append(f"The status of '{row['text'][:80]}' was not changed: {err}")
    if refused:
        st.session_state["conf_actions_refused"] = " ".join(refused)
    st.session_state.pop(key + "_shown", None)
    st.session_state["conf_actions_v"] = st.session_state.get("conf_actions_v", 0) + 1
    st.rerun()


if section == "Notes and decisions":
    if items.is_empty():
        st.info("Put a case on the agenda first.")
        st.stop()
    client = st.selectbox("Case", items["client_id"].to_list(), format_func=case_names.get, key="conf_notes_case")
    if error := st.session_state.pop("conf_note_error", None):
        st.error(links.as_text(error))
    current = notes.entries(store, conf_id, client, scope=scope)
    said = current.filter(pl.col("kind") == "note")
    st.subheader("Notes")
    if said.is_empty():
        st.caption("No notes on this case yet.")
    for n, entry in enumerate(said.iter_rows(named=True), start=1):
        with st.container(border=True):
            key = f"conf_note_{entry['entry_id']}_{entry['version']}"
            conflict = st.session_state.get(f"conf_conflict_{entry['entry_id']}")
            if conflict:
                st.text("Saved meanwhile by someone else (kept):\n" + conflict["theirs"])
                st.caption("Your text is still in the box below, not saved. Change it and leave the field to save "
                           "it over theirs, or copy what you need.")
            st.text_area(f"Note {entry['entry_id']}", value=conflict["yours"] if conflict else entry["text"], key=key,
                         label_visibility="collapsed", on_change=save_edit, args=(entry, "text", key))
            st.caption(f"Note {n}. Written by {entry['created_by']} at {entry['created_at']:%Y-%m-%d %H:%M}"
                       + (f"; version {entry['version']} by {entry['saved_by']} at {entry['saved_at']:%H:%M}"
                          if entry["version"] > 1 else "") + ". Saved as soon as you leave the field.")
            # A pop-up of its own (keyed by the note): one left open never passes to the next note,
            # and it goes with its note when that is deleted.
            with st.popover(f"Delete note {n}", key=f"conf_del_pop_{entry['entry_id']}"):
                st.text(f"Deletes note {n}: " + (entry["text"] if len(entry["text"]) <= 160
                                                  else entry["text"][:160] + "..."))
                why = st.text_input("Why", key=f"conf_del_why_{entry['entry_id']}")
                if st.button("Delete this note", key=f"conf_del_{entry['entry_id']}") and need_user():
                    if attempt(notes.delete_entry, store, entry["entry_id"], scope=scope, why=why,
                               success=f"Note {n} deleted."):
                        st.rerun()
    with st.form("conf_note_form"):
        st.text_area("New note", key="conf_note_text", placeholder="What the group noticed or suggested.")
        st.form_submit_button("Save the note", on_click=save_new,
                              args=("note", conf_id, client, scope, {"text": "conf_note_text"}))
    if error := st.session_state.pop("conf_new_note_error", None):
        st.error(links.as_text(error))

    st.subheader("Decisions")
    actions = current.filter(pl.col("kind") == "action")
    if actions.is_empty():
        st.caption("No action items on this case yet.")
    else:
        show_actions(actions, f"conf_actions_{conf_id}_{client}_{st.session_state.get('conf_actions_v', 0)}")
    with st.form("conf_action_form"):
        st.text_input("New action item", key="conf_action_text", placeholder="Who does what before next time.")
        c1, c2, c3 = st.columns(3)
        c1.text_input("Owner (user id)", key="conf_action_owner")
        c2.date_input("Due at the conference of", value=info["date"] + dt.timedelta(days=7), key="conf_action_due")
        c3.selectbox("Status", notes.STATUSES, key="conf_action_status")
        st.form_submit_button("Save the action", on_click=save_new, args=(
            "action", conf_id, client, scope, {"text": "conf_action_text", "owner": "conf_action_owner",
                                              "due_on": "conf_action_due", "status": "conf_action_status"}))
    if error := st.session_state.pop("conf_new_action_error", None):
        st.error(links.as_text(error))

    if st.toggle("Show the full history of this conference's notes and decisions", key="conf_history"):
        past = notes.history(store, conf_id, scope=scope).select(
            "entry_id", "version", "client_id", "kind", "text", "owner",
            pl.col("due_on").cast(pl.Date), "status", "saved_by", "saved_at", "deleted", "why")
        # An empty cell is empty, not "None"; a due day is a day, not midnight.
        texts = [c for c, t in past.schema.items() if t == pl.String]
        st.dataframe(past.with_columns(pl.col(texts).fill_null("")), hide_index=True, width="stretch",
                     column_config={"entry_id": st.column_config.NumberColumn("Entry no.", width="small",
                                                                              help="The number an admin purges by."),
                                    "version": st.column_config.NumberColumn("Version", width="small"),
                                    "client_id": "Client", "kind": "Kind",
                                    "text": st.column_config.TextColumn("Text", width="large"), "owner": "Owner",
                                    "due_on": st.column_config.DateColumn("Due", format="YYYY-MM-DD"),
                                    "status": "Status", "saved_by": "Saved by",
                                    "saved_at": st.column_config.DatetimeColumn("Saved at", format="YYYY-MM-DD HH:mm"),
                                    "deleted": "Deleted", "why": "Why deleted"})

# ----------------------------------------------------------------------------- follow-up
if section == "Follow-up":
    follow = followup.follow_up(store, cat, conf_id, scope)
    prev = follow["previous"]
    if prev is None:
        st.info("No conference of the group was held before this one's date (this is its first conference): the "
                "next one will show this one's decisions and what has changed in each case since.")
    else:
        # Named by number and date: it is the last conference held before this one's date,
        # never a second conference of the same day.
        st.subheader(f"Decisions of the conference of {prev['date']} (No. {prev['id']})")
        if follow["actions"].is_empty():
            st.caption("No action items were recorded then.")
        else:
            show_actions(follow["actions"], f"conf_follow_{conf_id}_{st.session_state.get('conf_actions_v', 0)}")
    if follow["still_open"].height:
        st.subheader("Still open from earlier conferences")
        show_actions(follow["still_open"], f"conf_open_{conf_id}_{st.session_state.get('conf_actions_v', 0)}")
    if prev is not None:
        st.subheader(f"What changed in the data since {prev['date']} (No. {prev['id']})")
        changes = follow["changes"]
        shown = changes.filter(pl.col("on_agenda") | pl.col("changed"))
        if not shown.height:
            st.caption("Nothing changed in the group's cases.")
        else:
            # Flags in the catalog's words, never as codes.
            flag_words = [pl.col(c).map_elements(lambda codes: "; ".join(cat.flag_label(f) for f in codes),
                                                 return_dtype=pl.String) for c in ("flags_resolved", "new_flags")]
            st.dataframe(shown.with_columns(flag_words), hide_index=True,
                         width="stretch",
                         column_config={"client_id": "Client", "on_agenda": "On that agenda",
                                        "sessions_then": "Sessions then", "sessions_now": "Sessions now",
                                        "new_sessions": "New sessions", "flags_resolved": "Flags resolved",
                                        "new_flags": "New flags", "changed": None})

# ----------------------------------------------------------------------------- handout
if section == "Handout":
    st.write("One HTML file with the agenda, each case's chart, the notes and decisions and the follow-up; it opens "
             "offline in any browser. The actions come as a CSV file for a spreadsheet.")
    deidentify = st.toggle("De-identify: cases by their labels only, no client or therapist ids", value=True,
                           key="conf_deidentify")
    if st.button("Prepare the handout", key="conf_handout", type="primary"):
        with st.spinner("Writing the handout..."):
            try:
                page, actions = handout.build_handout(store, cat, conf_id, scope=scope, deidentify=deidentify)
            except ConferenceError as err:
                st.error(str(err))
            else:
                st.session_state["conf_handout_files"] = (conf_id, deidentify, page.encode("utf-8"),
                                                          handout.actions_bytes(actions))
    files = st.session_state.get("conf_handout_files")
    if files and files[:2] == (conf_id, deidentify):
        stem = f"conference-{info['group']}-{info['date']}{'-deidentified' if deidentify else ''}"
        c1, c2 = st.columns(2)
        with c1:
            web.download_button(f"Download the handout ({len(files[2]) / 1e6:.1f} MB)", lambda: files[2],
                                f"{stem}.html", "text/html", f"conference {conf_id} handout", key="conf_dl_html",
                                icon=":material/download:")
        with c2:
            web.download_button("Download the actions (CSV)", lambda: files[3], f"{stem}-actions.csv", "text/csv",
                                f"conference {conf_id} actions", key="conf_dl_csv", icon=":material/download:")
