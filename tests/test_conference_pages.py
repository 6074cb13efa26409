"""The case-conference workflow as a supervisor runs it, through Streamlit's AppTest:
make a conference, take notes and decisions, present it case by case, export the handout."""

from __future__ import annotations

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from core.catalog import default_catalog
from core.conference import meetings, notes
from core.importer import load_demo
from core.store import Store, close_all
from core.identity import add_user
from tests.conftest import ROOT, SYSTEM, add_test_users, as_user, signed_in
from tests.test_pages import no_errors, open_page

APP = str(ROOT / "app.py")


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "demo.duckdb"
    store = Store(path)
    load_demo(store)
    add_test_users(store)
    add_user(store, "sup1", "supervisor", groups=["group-east", "group-north", "group-south"])  # leads them all
    store.close()
    monkeypatch.setenv("CASECONF_DB", str(path))
    monkeypatch.setenv("CASECONF_DEMO", "0")
    yield path
    close_all()


def app(user: str = "sup1") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    signed_in(at, user)
    return at.run()


def sign_in(at: AppTest, user: str = "sup1") -> AppTest:
    """The page with `user` signed in (the author of every change made on it)."""
    signed_in(at, user)
    return at.run()


def button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, [b.label for b in at.button]
    return found[0]


def stored(db, sql: str, params=None) -> pl.DataFrame:
    close_all()  # the app's connection holds the file
    store = Store(db)
    try:
        return store.query(sql, params, scope=SYSTEM)
    finally:
        store.close()


def make_conference(db, group="group-north", cases=3, held_on=None) -> int:
    close_all()
    store = Store(db)
    made = meetings.new_conference(store, default_catalog(), group, cases=cases, attendees=["sup1", "th01"],
                                   held_on=held_on, scope=as_user("sup1"))
    store.close()
    return made["id"]


def test_a_supervisor_makes_a_conference_from_the_triage(db):
    at = open_page(app(), "conference")
    no_errors(at)
    assert "No conference for group-east yet" in at.info[0].value
    at = sign_in(at)
    at.selectbox(key="conf_group").select("group-north").run()
    at.text_input(key="conf_new_attendees").input("sup1, th01, th02")
    at = button(at, "Make the conference and fill its agenda from the triage").click().run()
    no_errors(at)
    conference_id = int(at.query_params["conference"][0] if isinstance(at.query_params["conference"], list)
                        else at.query_params["conference"])
    made = stored(db, "SELECT supervision_group, attendees, created_by FROM conferences WHERE conference_id = $i",
                  {"i": conference_id}).row(0, named=True)
    assert made == {"supervision_group": "group-north", "attendees": ["sup1", "th01", "th02"], "created_by": "sup1"}
    assert any("5 case(s), 75 minutes planned" in c.value for c in at.caption)


def test_the_author_is_the_signed_in_user_and_no_id_can_be_typed(db):
    at = open_page(app("admin1"), "conference")
    assert not at.sidebar.text_input  # nobody types who they are
    at.selectbox(key="conf_group").select("group-south").run()
    at = button(at, "Make the conference and fill its agenda from the triage").click().run()
    no_errors(at)
    assert stored(db, "SELECT created_by FROM conferences")["created_by"].to_list() == ["admin1"]


def test_a_supervisor_sees_and_changes_only_the_groups_they_lead(demo_db, monkeypatch):
    monkeypatch.setenv("CASECONF_DB", str(demo_db))
    at = open_page(app("sup1"), "conference")  # sup1 of the shared demo store leads group-north only
    close_all()
    assert at.selectbox(key="conf_group").options == ["group-north"]


def test_cases_are_added_and_taken_off_the_agenda_with_a_reason(db):
    conference_id = make_conference(db)
    at = sign_in(open_page(app(), "conference", conference=str(conference_id)))
    no_errors(at)
    client = at.selectbox(key="conf_add_client").value
    at.text_area(key=f"conf_add_reason_{client}").input("The therapist asked for the group's view.")
    at = button(at, "Add to the agenda").click().run()
    no_errors(at)
    at.text_input(key="conf_remove_why_0").input("discussed in individual supervision")
    at = button(at, "Take off the agenda").click().run()
    no_errors(at)
    items = stored(db, "SELECT client_id, case_label, reason, deleted_by, deleted_why FROM agenda_items "
                       "WHERE conference_id = $i ORDER BY case_label", {"i": conference_id})
    added = items.filter(pl.col("client_id") == client)
    assert added["reason"].to_list() == ["The therapist asked for the group's view."]
    assert added["case_label"].to_list() == ["Case C"]  # fourth, then third once Case A is off
    removed = items.filter(pl.col("deleted_by").is_not_null()).row(0, named=True)
    assert (removed["case_label"], removed["deleted_by"], removed["deleted_why"]) == (
        "Case A", "sup1", "discussed in individual supervision")


def test_notes_and_actions_are_saved_with_author_edited_into_versions_and_refused_when_identifying(db):
    conference_id = make_conference(db)
    at = sign_in(open_page(app(), "conference", conference=str(conference_id)))
    at = at.segmented_control(key="conf_section").set_value("Notes and decisions").run()
    no_errors(at)
    client = at.selectbox(key="conf_notes_case").value
    at.text_area(key="conf_note_text").input("The group noticed the rupture was never named.")
    at = button(at, "Save the note").click().run()
    no_errors(at)
    at.text_input(key="conf_action_text").input("Name the rupture in the next session.")
    at.text_input(key="conf_action_owner").input("th01")
    at = button(at, "Save the action").click().run()
    no_errors(at)
    entry = stored(db, "SELECT entry_id FROM conference_entries WHERE kind = 'note'")["entry_id"][0]
    at = at.text_area(key=f"conf_note_{entry}_1").input("The group noticed the rupture was never named aloud.").run()
    no_errors(at)
    at.text_area(key="conf_note_text").input("Her sister Mary Jones phoned on 07700 900123.")
    at = button(at, "Save the note").click().run()
    assert any("identifying details" in e.value for e in at.error)
    assert not any("07700" in e.value or "Jones" in e.value for e in at.error)
    rows = stored(db, "SELECT entry_id, version, client_id, kind, text, owner, status, saved_by FROM "
                      "conference_entries ORDER BY entry_id, version")
    assert rows.select("kind", "version", "saved_by").rows() == [("note", 1, "sup1"), ("note", 2, "sup1"),
                                                                 ("action", 1, "sup1")]
    assert rows["text"][1] == "The group noticed the rupture was never named aloud."
    assert set(rows["client_id"]) == {client} and rows["owner"][2] == "th01" and rows["status"][2] == "open"
    at = at.toggle(key="conf_history").set_value(True).run()
    no_errors(at)
    assert at.dataframe[-1].value.shape[0] == 3


def test_the_follow_up_shows_the_previous_decisions(db):
    import datetime as dt
    first = make_conference(db, held_on=dt.date.today() - dt.timedelta(days=7))
    close_all()
    store = Store(db)
    client = meetings.agenda(store, first, scope=SYSTEM)["client_id"][0]
    notes.save_entry(store, first, client, kind="action", text="Bring the rupture to individual supervision.",
                     owner="th01", scope=as_user("sup1"))
    store.close()
    second = make_conference(db)
    at = sign_in(open_page(app(), "conference", conference=str(second)))
    at = at.segmented_control(key="conf_section").set_value("Follow-up").run()
    no_errors(at)
    assert any(s.value.startswith("Decisions of the conference of") for s in at.subheader), (
        [i.value for i in at.info], [s.value for s in at.subheader], dict(at.query_params))
    assert any("What changed in the data since" in s.value for s in at.subheader)
    first_at = sign_in(open_page(app(), "conference", conference=str(first)))
    first_at = first_at.segmented_control(key="conf_section").set_value("Follow-up").run()
    assert "first conference" in first_at.info[0].value


def test_the_handout_is_prepared_for_download(db):
    conference_id = make_conference(db, cases=2)
    at = sign_in(open_page(app(), "conference", conference=str(conference_id)))
    at = at.segmented_control(key="conf_section").set_value("Handout").run()
    at = button(at, "Prepare the handout").click().run()
    no_errors(at)
    files = at.session_state["conf_handout_files"]
    assert files[0] == conference_id and files[1] is True  # de-identified by default
    page = files[2].decode("utf-8")
    assert "Case A" in page and page.count("plotly-graph-div") == 2
    assert files[3].decode("utf-8-sig").startswith("case,action,owner")


def test_presentation_mode_shows_one_case_at_a_time_by_label(db):
    conference_id = make_conference(db, cases=3)
    close_all()
    store = Store(db)
    items = meetings.agenda(store, conference_id, scope=SYSTEM)
    therapist = store.scalar("SELECT any_value(therapist_id) FROM sessions WHERE client_id = $c",
                             {"c": items["client_id"][0]}, scope=SYSTEM)
    store.close()
    at = open_page(app(), "present", conference=str(conference_id))
    no_errors(at)
    assert at.header[0].value == "Case A"  # the therapist is hidden by default
    assert "left of" in timer_html(at)
    text = " ".join([h.value for h in at.header] + [t.value for t in at.text] + [m.value for m in at.markdown])
    assert not any(c in text for c in items["client_id"].to_list()) and therapist not in text
    assert any("fewer than 11" in i.value for i in at.info)  # one therapist's cases: suppressed
    at = button(at, "Next").click().run()
    assert at.header[0].value == "Case B" and at.query_params["item"] in ("2", ["2"])
    at = button(at, "Next").click().run()
    assert at.header[0].value == "Case C" and button(at, "Next").disabled
    at = button(at, "Previous").click().run()
    assert at.header[0].value == "Case B"
    at = at.sidebar.toggle(key="present_hide").set_value(False).run()
    assert at.header[0].value.startswith("Case B, presented by th")
    no_errors(at)


def test_pages_of_the_conference_say_what_to_do_on_an_empty_store(tmp_path, monkeypatch):
    monkeypatch.setenv("CASECONF_DB", str(tmp_path / "empty.duckdb"))
    monkeypatch.setenv("CASECONF_DEMO", "0")
    store = Store(tmp_path / "empty.duckdb")
    add_user(store, "admin1", "admin")
    store.close()
    try:
        at = open_page(app("admin1"), "conference")
        no_errors(at)
        assert "No supervision groups yet" in at.info[0].value
        at = open_page(app("admin1"), "present")
        no_errors(at)
        assert "No conference to present yet" in at.info[0].value
    finally:
        close_all()


# ----------------------------------------------------------------------------- never substitute silently

def markdown_free(text: str) -> str:
    """`text` as a Markdown source that shows it literally: every ASCII punctuation mark escaped."""
    import re
    return re.sub(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""", r"\\\1", text)


def query(at: AppTest, name: str) -> str | None:
    value = at.query_params.get(name)
    return value[0] if isinstance(value, list) else value


def warnings(at: AppTest) -> str:
    return " ".join(w.value for w in at.warning)


@pytest.mark.parametrize("client", ["nope", "**c001**"])
def test_a_link_to_an_unknown_client_names_it_and_opens_no_other_case(db, client):
    at = open_page(app(), "case", client=client)
    assert not at.exception, [e.value for e in at.exception]
    assert markdown_free(client) in warnings(at)  # named, as text
    assert query(at, "client") == client  # the address is not rewritten to another case
    assert not at.metric and not at.get("plotly_chart") and not at.table


@pytest.mark.parametrize("page", ["present", "conference"])
@pytest.mark.parametrize("wanted", ["999", "abc", "1_*x*"])
def test_a_link_to_an_unknown_conference_names_it_and_shows_no_other(db, page, wanted):
    make_conference(db, group="group-east")  # conference 1, of the group the page opens first
    at = open_page(app(), page, conference=wanted)
    assert not at.exception, [e.value for e in at.exception]
    assert markdown_free(wanted) in warnings(at)
    assert query(at, "conference") == wanted
    assert not at.header and not at.get("plotly_chart") and not at.get("arrow_data_frame")
    assert not any("case(s)" in c.value for c in at.caption)  # no agenda of another conference


@pytest.mark.parametrize("item", ["9", "0", "two"])
def test_a_link_to_a_place_beyond_the_agenda_presents_no_other_case(db, item):
    conference_id = make_conference(db, cases=3)
    at = open_page(app(), "present", conference=str(conference_id), item=item)
    assert not at.exception, [e.value for e in at.exception]
    assert markdown_free(f"'{item}'") in warnings(at)
    assert not at.header and not at.get("plotly_chart")
    at = button(at, "Start at the first case").click().run()
    assert at.header[0].value == "Case A" and not at.warning


def test_a_new_conference_is_opened_and_confirmed(db):
    first = make_conference(db)
    at = sign_in(open_page(app(), "conference", conference=str(first)))
    at.selectbox(key="conf_group").select("group-north")
    at.date_input(key="conf_new_date").set_value(__import__("datetime").date.today()
                                                 + __import__("datetime").timedelta(days=7))
    at = button(at, "Make the conference and fill its agenda from the triage").click().run()
    no_errors(at)
    made = stored(db, "SELECT max(conference_id) AS id FROM conferences")["id"][0]
    assert made != first
    assert query(at, "conference") == str(made)
    assert at.selectbox(key="conf_pick_group-north").value == made
    assert any(f"No. {made}" in s.value for s in at.success), [s.value for s in at.success]


def test_a_second_conference_for_the_same_group_and_date_needs_a_confirmation(db):
    first = make_conference(db)  # today
    at = sign_in(open_page(app(), "conference", conference=str(first)))
    at = button(at, "Make the conference and fill its agenda from the triage").click().run()
    assert stored(db, "SELECT count(*) AS n FROM conferences")["n"][0] == 1
    assert markdown_free(f"(No. {first})") in warnings(at) and "same date" in warnings(at)
    at = button(at, "Make a second conference for this date").click().run()
    no_errors(at)
    assert stored(db, "SELECT count(*) AS n FROM conferences")["n"][0] == 2
    assert query(at, "conference") != str(first)


def test_the_follow_up_of_a_duplicate_compares_with_the_last_conference_held_before_it(db):
    import datetime as dt
    close_all()
    store = Store(db)
    cat = default_catalog()
    made = [meetings.new_conference(store, cat, "group-north", held_on=day, cases=2, scope=as_user("sup1"),
                                    another_same_day=True)  # two duplicates of the 30th, as repeated clicks made
            for day in (dt.date(2026, 11, 23), dt.date(2026, 11, 30), dt.date(2026, 11, 30), dt.date(2026, 11, 30))]
    for conf, text in ((made[0], "Ask about the rupture."), (made[1], "Bring the recording.")):
        notes.save_entry(store, conf["id"], conf["agenda"][0]["client_id"], kind="action", text=text, owner="th01",
                         scope=as_user("sup1"))
    store.close()
    at = sign_in(open_page(app(), "conference", conference=str(made[3]["id"])))
    at = at.segmented_control(key="conf_section").set_value("Follow-up").run()
    no_errors(at)
    headings = [s.value for s in at.subheader]
    assert any(f"No. {made[0]['id']}" in h and "2026-11-23" in h for h in headings), headings
    listed = " ".join(" ".join(map(str, d.value["text"])) for d in at.dataframe if "text" in d.value.columns)
    assert "Ask about the rupture." in listed and "Bring the recording." in listed


def test_a_group_without_cases_gets_no_conference_and_one_clear_sentence(db):
    close_all()
    store = Store(db)
    with store.publish() as cur:  # a new therapist whose cases are not imported yet
        cur.execute("INSERT INTO therapists (therapist_id, supervision_group, batch_id) VALUES ('th99', 'group-new', 1)")
    store.close()
    at = open_page(app("admin1"), "conference")  # an admin: sup1 does not lead group-new
    at.selectbox(key="conf_group").select("group-new").run()
    at = button(at, "Make the conference and fill its agenda from the triage").click().run()
    assert not at.exception
    assert stored(db, "SELECT count(*) AS n FROM conferences")["n"][0] == 0
    said = " ".join(m.value for m in [*at.error, *at.warning, *at.info, *at.caption])
    assert "no cases" in said
    assert not ("The agenda is empty" in said and "Every case of the group is on the agenda" in said)


def test_a_note_changed_by_someone_else_meanwhile_is_not_overwritten_and_nothing_typed_is_lost(db):
    conference_id = make_conference(db)
    close_all()
    store = Store(db)
    client = meetings.agenda(store, conference_id, scope=SYSTEM)["client_id"][0]
    entry = notes.save_entry(store, conference_id, client, kind="note", text="The first words.", scope=as_user("sup1"))
    store.close()
    mine = sign_in(open_page(app(), "conference", conference=str(conference_id)))
    mine = mine.segmented_control(key="conf_section").set_value("Notes and decisions").run()
    # Meanwhile an admin, on another screen, saves a new version of the same note.
    close_all()
    store = Store(db)
    notes.save_entry(store, conference_id, client, kind="note", text="The admin's words.", entry_id=entry,
                     base_version=1, scope=as_user("admin1"))
    store.close()
    close_all()
    mine = mine.text_area(key=f"conf_note_{entry}_1").input("My words, typed over the first.").run()
    assert any("was changed by admin1 since you opened it" in e.value for e in mine.error)
    assert any("The admin's words." in t.value for t in mine.text)  # theirs, shown
    assert mine.text_area(key=f"conf_note_{entry}_2").value == "My words, typed over the first."  # mine, kept
    assert stored(db, "SELECT text FROM conference_entries WHERE entry_id = $e ORDER BY version",
                  {"e": entry})["text"].to_list() == ["The first words.", "The admin's words."]


def test_presentation_mode_names_no_id_in_reasons_notes_or_actions(db):
    conference_id = make_conference(db, cases=2)
    close_all()
    store = Store(db)
    items = meetings.agenda(store, conference_id, scope=SYSTEM)
    first, second = items["client_id"].to_list()
    therapist = store.scalar("SELECT any_value(therapist_id) FROM sessions WHERE client_id = $c", {"c": first},
                             scope=SYSTEM)
    other = store.scalar("SELECT min(therapist_id) FROM therapists WHERE therapist_id <> $t", {"t": therapist},
                         scope=SYSTEM)
    # Ids are pseudonyms: the privacy guard lets them through, so the slide must label them.
    meetings.apply_agenda_edits(store, conference_id, items.select(
        pl.col("position").alias("order"), "case_label", "client_id",
        pl.when(pl.col("client_id") == first).then(pl.lit(f"Discuss {first} with {therapist}; compare {second}"))
        .otherwise(pl.col("reason")).alias("reason"), "minutes"), scope=as_user("sup1"))
    notes.save_entry(store, conference_id, first, kind="note", text=f"Discuss {first} with {therapist} and {other}.",
                     scope=as_user("sup1"))
    notes.save_entry(store, conference_id, first, kind="action", text=f"{therapist} to ask {first} about {second}",
                     owner="sup1", scope=as_user("sup1"))
    store.close()
    at = open_page(app(), "present", conference=str(conference_id))
    no_errors(at)
    shown = " ".join([t.value for t in at.text] + [str(d.value.to_dict()) for d in [*at.dataframe, *at.table]])
    for found in (first, second, therapist, other):
        assert found not in shown, found
    assert "Discuss Case A with the presenting therapist; compare Case B" in shown
    assert "Discuss Case A with the presenting therapist and a therapist." in shown
    assert "the presenting therapist to ask Case A about Case B" in shown and "sup1" in shown  # the owner stays


def timer_html(at: AppTest) -> str:
    """The Present page's timer (an HTML block of numbers and fixed words)."""
    found = [e.proto.body for e in at.get("html") if "presentTimer" in e.proto.body]
    assert found, "no timer on the page"
    return found[0]


def test_present_letters_the_cases_in_agenda_order_after_a_reorder(db):
    conference_id = make_conference(db, cases=3)
    close_all()
    store = Store(db)
    first, second, third = meetings.agenda(store, conference_id, scope=SYSTEM)["client_id"].to_list()
    meetings.reorder(store, conference_id, [third, first, second], scope=SYSTEM)
    store.close()
    at = open_page(app(), "present", conference=str(conference_id), item="3")
    no_errors(at)
    # The third case on the agenda is Case C, whatever letter it had before the reorder.
    assert at.header[0].value == "Case C"
    assert any("3 of 3" in c.value for c in at.caption)


def test_the_present_timer_pauses_and_runs_on(db):
    conference_id = make_conference(db, cases=2)
    at = open_page(app(), "present", conference=str(conference_id))
    assert 'data-paused="false"' in timer_html(at) and 'data-phase="on time"' in timer_html(at)
    at = button(at, "Pause").click().run()
    paused = timer_html(at)
    assert 'data-paused="true"' in paused and "(paused)" in paused
    import time
    time.sleep(1.5)
    at = at.run()
    assert timer_html(at) == paused, "a paused timer moved on"
    at = button(at, "Resume").click().run()
    assert 'data-paused="false"' in timer_html(at)
    no_errors(at)


def test_projector_mode_shows_the_slide_alone_with_keys_for_next_and_previous(db):
    conference_id = make_conference(db, cases=2)
    at = open_page(app(), "present", conference=str(conference_id), projector="1")
    no_errors(at)
    assert not at.title and not at.selectbox, "projector mode shows no page title and no selector"
    assert not [t for t in at.sidebar.toggle], "projector mode draws nothing in the sidebar"
    assert at.header[0].value == "Case A"
    keys = {b.label: b.proto.shortcut for b in at.button}
    assert (keys["Next"], keys["Previous"], keys["Pause"], keys["Leave"]) == ("right", "left", "p", "escape")
    at = button(at, "Next").click().run()
    assert at.header[0].value == "Case B" and at.query_params["projector"] in ("1", ["1"])
    at = button(at, "Leave").click().run()
    assert at.title[0].value == "Present" and "projector" not in at.query_params


def test_the_notes_history_shows_empty_cells_empty_and_due_days_as_days(db):
    import datetime as dt
    conference_id = make_conference(db, cases=1)
    close_all()
    store = Store(db)
    client = meetings.agenda(store, conference_id, scope=SYSTEM)["client_id"][0]
    notes.save_entry(store, conference_id, client, kind="note", text="The group noticed a pattern.", scope=as_user("sup1"))
    notes.save_entry(store, conference_id, client, kind="action", text="Try a repair conversation.", owner="th01",
                     due_on=dt.date(2026, 1, 8), status="open", scope=as_user("sup1"))
    store.close()
    at = sign_in(open_page(app(), "conference", conference=str(conference_id)))
    at = at.segmented_control(key="conf_section").set_value("Notes and decisions").run()
    at = at.toggle(key="conf_history").set_value(True).run()
    no_errors(at)
    past = at.dataframe[-1].value
    import json
    shown = json.loads(at.dataframe[-1].proto.columns)
    # A due day is shown as a day, not "2026-01-08 00:00:00"; no raw column names.
    assert (shown["due_on"]["type_config"]["format"], shown["entry_id"]["label"]) == ("YYYY-MM-DD", "Entry no.")
    note = past[past["kind"] == "note"].iloc[0]
    assert note["owner"] == "" and note["status"] == "" and note["why"] == ""  # empty, not "None"


def test_a_refused_status_edit_in_the_follow_up_says_it_was_not_changed(db):
    import datetime as dt
    first = make_conference(db, held_on=dt.date.today() - dt.timedelta(days=7))
    close_all()
    store = Store(db)
    client = meetings.agenda(store, first, scope=SYSTEM)["client_id"][0]
    entry = notes.save_entry(store, first, client, kind="action", text="Bring the recording.", owner="th01",
                             scope=as_user("sup1"))
    store.close()
    second = make_conference(db)
    at = sign_in(open_page(app(), "conference", conference=str(second)))
    at = at.segmented_control(key="conf_section").set_value("Follow-up").run()
    no_errors(at)
    # Meanwhile an admin, on another screen, marks the action done.
    close_all()
    store = Store(db)
    notes.save_entry(store, first, client, kind="action", text="Bring the recording.", owner="th01", status="done",
                     entry_id=entry, base_version=1, scope=as_user("admin1"))
    store.close()
    close_all()
    # The supervisor, whose table still shows "open", sets it to "dropped": not applied.
    at.session_state[f"conf_follow_{second}_0"] = {"edited_rows": {0: {"status": "dropped"}}, "added_rows": [],
                                                    "deleted_rows": []}
    at = at.run()
    assert not at.exception, [e.value for e in at.exception]
    said = " ".join(e.value for e in at.error)
    assert "was not changed" in said and "admin1" in said, said
    shown = [d for d in at.data_editor if "status" in d.value.columns]
    assert [d.value["status"].to_list() for d in shown] == [["done"]], "the table shows what is stored"
    assert stored(db, "SELECT status FROM conference_entries WHERE entry_id = $e ORDER BY version",
                  {"e": entry})["status"].to_list() == ["open", "done"]


def test_an_admin_purges_a_note_on_the_admin_page_and_it_leaves_the_stores_file(db):
    """The Admin page's purge: the text goes from every version and from the file's bytes,
    and the page says so (and that earlier backups still hold it)."""
    store = Store(db)
    made = meetings.new_conference(store, default_catalog(), "group-north", cases=2, scope=as_user("sup1"))
    client = made["agenda"][0]["client_id"]
    notes.save_entry(store, made["id"], client, kind="note", text="ZQX-PAGE-MARK the affair with her employer",
                     scope=as_user("sup1"))
    entry_id = notes.entries(store, made["id"], client, scope=SYSTEM)["entry_id"][0]
    store.close()
    close_all()
    at = open_page(app("admin1"), "admin")
    at.number_input(key="admin_purge_entry").set_value(int(entry_id))
    at.text_input(key="admin_purge_why").set_value("said too much")
    at = button(at, "Purge the text").click().run()
    no_errors(at)
    assert any("Purged the text of 1 version(s)" in s.value for s in at.success)
    assert any("rewritten without the text" in i.value for i in at.info)
    close_all()
    assert b"ZQX-PAGE-MARK" not in db.read_bytes()
    assert stored(db, "SELECT text FROM conference_entries WHERE entry_id = $e", {"e": int(entry_id)})["text"].to_list() \
        == [notes.PURGED]
