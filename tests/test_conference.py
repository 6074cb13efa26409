"""Conferences: an agenda pre-filled from the group's triage, soft removal, the command line."""

from __future__ import annotations

import datetime as dt
import json
import re

import polars as pl
import pytest

from core.access import Scope
from core.analytics.triage import triage
from core.conference.followup import follow_up
from core.conference.handout import HandoutError, write_handout
from core.conference.meetings import (ConferenceError, add_item, agenda, apply_agenda_edits, case_label, conference,
                                      group_scope, move_item, moved_order, new_conference, remove_item, reorder,
                                      update_item)
from core.conference.notes import delete_entry, entries, history, save_entry
from core import charts
from core.conference.presentation import PRESENTER, group_views, slide_title, small_cell
from core.importer import import_dataset, load_demo
from core.store import Store
from tests.conftest import SYSTEM, as_user, write_csv
from tests.test_cli import run


@pytest.fixture
def demo(tmp_path):
    store = Store(tmp_path / "demo.duckdb")
    load_demo(store)
    yield store
    store.close()


@pytest.mark.parametrize("position, label", [(1, "Case A"), (2, "Case B"), (26, "Case Z"), (27, "Case AA"),
                                             (52, "Case AZ"), (53, "Case BA")])
def test_case_labels_hide_the_client_id(position, label):
    assert case_label(position) == label


def test_the_agenda_is_the_groups_highest_priority_cases(demo, catalog):
    made = new_conference(demo, catalog, "group-north", held_on=dt.date(2026, 11, 30), cases=4, scope=as_user("sup1"))
    therapists = demo.query("SELECT therapist_id FROM therapists WHERE supervision_group = 'group-north'", scope=SYSTEM)
    case_list, flags = triage(demo, catalog, Scope.therapists(therapists["therapist_id"].to_list()))
    expected = case_list.filter(pl.col("priority") > 0).head(4)["client_id"].to_list()
    assert [i["client_id"] for i in made["agenda"]] == expected
    assert [i["case_label"] for i in made["agenda"]] == ["Case A", "Case B", "Case C", "Case D"]
    top = flags.filter(pl.col("client_id") == expected[0])["reason"].to_list()
    assert made["agenda"][0]["reason"] == "; ".join(top[:2])
    assert all(i["minutes"] == catalog.conference.minutes_per_case for i in made["agenda"])
    stored = agenda(demo, made["id"], scope=SYSTEM)
    assert stored["client_id"].to_list() == expected and stored["position"].to_list() == [1, 2, 3, 4]


def test_removing_a_case_keeps_it_with_who_when_and_why(demo, catalog):
    made = new_conference(demo, catalog, "group-east", cases=3, scope=as_user("sup1"))
    first, second, third = (i["client_id"] for i in made["agenda"])
    remove_item(demo, made["id"], 2, why="discussed last week", scope=as_user("sup1"))
    # The cases left close up: places 1 and 2, lettered A and B, as the room will see them.
    left = agenda(demo, made["id"], scope=SYSTEM)
    assert left.select("position", "case_label", "client_id").rows() == [(1, "Case A", first), (2, "Case B", third)]
    everything = agenda(demo, made["id"], include_removed=True, scope=SYSTEM)
    removed = everything.filter(pl.col("deleted_at").is_not_null()).row(0, named=True)
    assert (removed["client_id"], removed["case_label"]) == (second, "Case B")  # the label it had when taken off
    assert (removed["deleted_by"], removed["deleted_why"]) == ("sup1", "discussed last week")
    assert removed["deleted_at"] is not None
    with pytest.raises(ConferenceError, match="no case at position 3"):
        remove_item(demo, made["id"], 3, why="again", scope=as_user("sup1"))
    with pytest.raises(ConferenceError, match="Say why"):
        remove_item(demo, made["id"], 1, why=" ", scope=as_user("sup1"))


def test_an_unknown_group_gets_a_sentence_naming_the_groups(demo, catalog):
    with pytest.raises(ConferenceError, match="group-east, group-north, group-south"):
        new_conference(demo, catalog, "nowhere", scope=SYSTEM)


def test_conference_new_on_the_command_line(demo):
    db = str(demo.path)
    demo.close()
    out = run("conference", "new", "--group", "group-south", "--date", "2026-12-07", "--cases", "3", "--db", db,
              "--json")
    assert out.returncode == 0, out.stderr
    made = json.loads(out.stdout)
    assert isinstance(made["id"], int) and made["date"] == "2026-12-07"
    assert [set(i) >= {"case_label", "client_id", "reason"} for i in made["agenda"]] == [True] * 3
    plain = run("conference", "new", "--group", "group-south", "--db", db, "--attendees", "sup1, th05,th06")
    assert plain.returncode == 0 and plain.stdout.strip() == str(made["id"] + 1)
    store = Store(db)
    assert conference(store, made["id"] + 1, scope=SYSTEM)["attendees"] == ["sup1", "th05", "th06"]
    store.close()
    named = run("conference", "new", "--group", "group-south", "--db", db, "--attendees", "mary.jones@clinic.org")
    assert named.returncode == 2 and "pseudonymous" in named.stderr and "mary" not in named.stderr
    bad = run("conference", "new", "--group", "nowhere", "--db", db)
    assert bad.returncode == 2 and "nowhere" in bad.stderr and "Traceback" not in bad.stderr
    bad_date = run("conference", "new", "--group", "group-south", "--date", "30.11.2026", "--db", db)
    assert bad_date.returncode == 2 and "YYYY-MM-DD" in bad_date.stderr


# ----------------------------------------------------------------------------- agenda editing

def test_the_agenda_can_be_added_to_reordered_and_edited_and_letters_follow_the_places(demo, catalog):
    made = new_conference(demo, catalog, "group-north", cases=3, scope=as_user("sup1"))
    first, second, third = (i["client_id"] for i in made["agenda"])
    extra = next(c for c in demo.query("SELECT DISTINCT s.client_id FROM sessions s JOIN therapists t USING "
                                       "(therapist_id) WHERE t.supervision_group = 'group-north' ORDER BY 1", scope=SYSTEM)
                 ["client_id"] if c not in (first, second, third))
    added = add_item(demo, catalog, made["id"], extra, "The group asked to hear how the ending went.", minutes=10, scope=SYSTEM)
    assert (added["case_label"], added["position"], added["minutes"]) == ("Case D", 4, 10)
    move_item(demo, made["id"], extra, -3, scope=SYSTEM)
    order = agenda(demo, made["id"], scope=SYSTEM)
    assert order["client_id"].to_list() == [extra, first, second, third]
    # Lettered in agenda order: the case moved first is Case A now, never "Case D - 1 of 4".
    assert order["case_label"].to_list() == ["Case A", "Case B", "Case C", "Case D"]
    update_item(demo, made["id"], first, reason="Rupture at session 10, still unrepaired.", minutes=20, scope=SYSTEM)
    row = agenda(demo, made["id"], scope=SYSTEM).filter(pl.col("client_id") == first).row(0, named=True)
    assert (row["reason"], row["minutes"]) == ("Rupture at session 10, still unrepaired.", 20)
    remove_item(demo, made["id"], 2, why="seen last week", scope=as_user("sup1"))  # position 2 is now `first`
    readded = add_item(demo, catalog, made["id"], first, "Back on: the therapist asked for time.", scope=SYSTEM)
    assert (readded["case_label"], readded["position"]) == ("Case D", 4)  # last of four again
    with pytest.raises(ConferenceError, match="already on the agenda"):
        add_item(demo, catalog, made["id"], extra, "twice", scope=SYSTEM)
    with pytest.raises(ConferenceError, match="among the cases of group-north"):
        add_item(demo, catalog, made["id"], "c999", "unknown", scope=SYSTEM)
    with pytest.raises(ConferenceError, match="every case on the agenda once"):
        reorder(demo, made["id"], [extra, extra, second, third, first], scope=SYSTEM)
    with pytest.raises(ConferenceError, match="between 1 and 240"):
        update_item(demo, made["id"], second, minutes=0, scope=SYSTEM)


def test_free_text_with_identifying_details_is_refused_masked_before_it_is_stored(demo, catalog):
    made = new_conference(demo, catalog, "group-east", cases=1, scope=as_user("sup1"))
    client = made["agenda"][0]["client_id"]
    with pytest.raises(ConferenceError, match="identifying details") as err:
        update_item(demo, made["id"], client, reason="Mother called from 07700 900123 about Mrs Okafor", scope=SYSTEM)
    assert "07700" not in str(err.value) and "Okafor" not in str(err.value)
    with pytest.raises(ConferenceError, match="identifying details"):
        save_entry(demo, made["id"], client, kind="note", text="Seen by Dr Smith on 3 March 2026", scope=as_user("sup1"))
    with pytest.raises(ConferenceError, match="pseudonymous"):
        save_entry(demo, made["id"], client, kind="note", text="fine", scope=as_user("mary.jones@clinic.org"))
    stored = demo.query("SELECT reason FROM agenda_items UNION ALL SELECT text FROM conference_entries", scope=SYSTEM)
    assert not any("Okafor" in t or "Smith" in t for t in stored.to_series().to_list())


# ----------------------------------------------------------------------------- notes and decisions

def test_notes_and_actions_keep_every_version_with_author_and_time(demo, catalog):
    made = new_conference(demo, catalog, "group-south", cases=2, scope=as_user("sup1"))
    client = made["agenda"][0]["client_id"]
    note = save_entry(demo, made["id"], client, kind="note", text="Alliance dipped after the missed session.",
                      scope=as_user("sup1"))
    assert save_entry(demo, made["id"], client, kind="note", text="Alliance dipped after the missed session.",
                      entry_id=note, scope=as_user("th05")) == note  # nothing changed: no new version
    save_entry(demo, made["id"], client, kind="note", text="Alliance dipped after the missed session; repair "
               "attempted at session 9.", entry_id=note, scope=as_user("th05"))
    action = save_entry(demo, made["id"], client, kind="action", text="Ask the client about the rupture.",
                        owner="th05", due_on="2026-12-07", scope=as_user("sup1"))
    save_entry(demo, made["id"], client, kind="action", text="Ask the client about the rupture.", owner="th05",
               due_on="2026-12-07", status="done", entry_id=action, scope=as_user("th05"))
    current = entries(demo, made["id"], client, scope=SYSTEM)
    assert current["entry_id"].to_list() == [note, action]
    row = current.row(0, named=True)
    assert (row["version"], row["created_by"], row["saved_by"]) == (2, "sup1", "th05")
    assert row["text"].endswith("repair attempted at session 9.")
    assert current.row(1, named=True)["status"] == "done"
    assert current.row(1, named=True)["due_on"] == dt.date(2026, 12, 7)
    everything = history(demo, made["id"], scope=SYSTEM)
    assert everything.group_by("entry_id").len().sort("entry_id")["len"].to_list() == [2, 2]
    assert everything["saved_at"].null_count() == 0
    with pytest.raises(ConferenceError, match="needs an owner"):
        save_entry(demo, made["id"], client, kind="action", text="Someone should call.", scope=as_user("sup1"))
    with pytest.raises(ConferenceError, match="status of an action"):
        save_entry(demo, made["id"], client, kind="action", text="x", owner="th05", status="maybe", scope=as_user("sup1"))
    with pytest.raises(ConferenceError, match="not on the agenda"):
        save_entry(demo, made["id"], "c999", kind="note", text="x", scope=as_user("sup1"))


def test_deleting_an_entry_is_a_soft_delete_with_who_when_and_why(demo, catalog):
    made = new_conference(demo, catalog, "group-south", cases=1, scope=as_user("sup1"))
    client = made["agenda"][0]["client_id"]
    note = save_entry(demo, made["id"], client, kind="note", text="Written on the wrong case.", scope=as_user("sup1"))
    delete_entry(demo, note, why="wrong case", scope=as_user("sup1"))
    assert entries(demo, made["id"], scope=SYSTEM).is_empty()
    gone = entries(demo, made["id"], include_deleted=True, scope=SYSTEM).row(0, named=True)
    assert (gone["deleted"], gone["saved_by"], gone["why"], gone["text"]) == (True, "sup1", "wrong case",
                                                                             "Written on the wrong case.")
    assert history(demo, made["id"], note, scope=SYSTEM)["version"].to_list() == [1, 2]
    with pytest.raises(ConferenceError, match="was deleted"):
        save_entry(demo, made["id"], client, kind="note", text="again", entry_id=note, scope=as_user("sup1"))
    with pytest.raises(ConferenceError, match="no entry"):
        delete_entry(demo, note, why="twice", scope=as_user("sup1"))
    with pytest.raises(ConferenceError, match="empty"):
        delete_entry(demo, 999, why=" ", scope=as_user("sup1"))


# ----------------------------------------------------------------------------- follow-up

def test_the_next_conference_shows_the_decisions_and_what_changed_since(store, catalog, tmp_path):
    from tests.test_triage import RATINGS, SESSIONS, THERAPISTS
    folder = tmp_path / "export"
    write_csv(folder, "sessions", "\n".join(SESSIONS) + "\n")
    write_csv(folder, "ratings", "\n".join(RATINGS) + "\n")
    write_csv(folder, "therapists", THERAPISTS)
    import_dataset(folder, store)
    before, _ = triage(store, catalog, group_scope(store, SYSTEM, "g1"))
    first = new_conference(store, catalog, "g1", held_on=dt.date(2026, 11, 23), cases=3, scope=as_user("sup1"))
    labels = {i["client_id"]: i["case_label"] for i in first["agenda"]}
    done = save_entry(store, first["id"], "b2", kind="action", text="Review the medication question.",
                      owner="t2", due_on="2026-11-30", status="done", scope=as_user("sup1"))
    still = save_entry(store, first["id"], "a1", kind="action", text="Talk about the rupture.", owner="t1",
                       scope=as_user("sup1"))
    # A week later: b2 has two more sessions and its PHQ-9 came down to 5.
    later = tmp_path / "later"
    write_csv(later, "sessions", "client_id,therapist_id,session_number\nb2,t2,10\nb2,t2,11\n")
    write_csv(later, "ratings", "client_id,session_number,instrument,score\nb2,11,PHQ-9,5\n")
    import_dataset(later, store)
    after, _ = triage(store, catalog, group_scope(store, SYSTEM, "g1"))
    second = new_conference(store, catalog, "g1", held_on=dt.date(2026, 11, 30), cases=3, scope=as_user("sup1"))
    follow = follow_up(store, catalog, second["id"], scope=SYSTEM)
    assert follow["previous"]["id"] == first["id"]
    assert sorted(follow["actions"]["entry_id"].to_list()) == sorted([done, still])
    assert set(follow["actions"]["case_label"].to_list()) == {labels["a1"], labels["b2"]}
    changes = {r["client_id"]: r for r in follow["changes"].iter_rows(named=True)}
    codes = {c: set(before.filter(pl.col("client_id") == c)["codes"][0]) for c in ("a1", "b2", "c3")}
    now = {c: set(after.filter(pl.col("client_id") == c)["codes"][0]) for c in ("a1", "b2", "c3")}
    assert (changes["b2"]["sessions_then"], changes["b2"]["sessions_now"], changes["b2"]["new_sessions"]) == (10, 12, 2)
    assert set(changes["b2"]["flags_resolved"]) == codes["b2"] - now["b2"] != set()
    assert set(changes["b2"]["new_flags"]) == now["b2"] - codes["b2"]
    assert changes["a1"]["changed"] is False and changes["a1"]["new_sessions"] == 0
    assert follow_up(store, catalog, first["id"], scope=SYSTEM)["previous"] is None
    # At the third conference, the action left open at the first is still listed.
    third = new_conference(store, catalog, "g1", held_on=dt.date(2026, 12, 7), cases=1, scope=as_user("sup1"))
    assert follow_up(store, catalog, third["id"], scope=SYSTEM)["still_open"]["entry_id"].to_list() == [still]


# ----------------------------------------------------------------------------- presentation

@pytest.mark.parametrize("clients, suppressed", [(0, True), (1, True), (10, True), (11, False), (40, False)])
def test_a_group_figure_from_fewer_than_11_clients_is_suppressed(clients, suppressed, catalog):
    assert catalog.conference.min_group_clients == 11
    assert small_cell(clients, catalog.conference.min_group_clients) is suppressed


def test_slides_suppress_small_group_figures_and_can_hide_the_therapist(demo, catalog):
    therapist, own = demo.query(
        "SELECT therapist_id, count(DISTINCT client_id) AS n FROM themes JOIN sessions USING (client_id, "
        "session_number) JOIN therapists USING (therapist_id) WHERE kind = 'countertransference' AND "
        "supervision_group = 'group-north' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1", scope=SYSTEM).row(0)
    assert 0 < own < 11  # a handful of cases per therapist in the demo
    views = {v.title: v for v in group_views(demo, catalog, "group-north", therapist, hide_therapist=True, scope=SYSTEM)}
    pattern = views["The therapist's countertransference across their cases"]
    assert pattern.figure is None and f"built from {pattern.clients} client(s), fewer than 11" in pattern.note
    group = views["The group's transference themes"]
    # Enough clients for the group figure, but each code is a small cell: a sentence, not an empty frame.
    assert group.clients >= 11 and group.figure is None and group.note.startswith("Not shown: every code")
    big = group_views(demo, catalog.model_copy(update={"conference": catalog.conference.model_copy(
        update={"min_group_clients": 1})}), "group-north", therapist, hide_therapist=True, scope=SYSTEM)
    shown = big[0].figure
    assert shown is not None and therapist not in shown.to_json() and PRESENTER in shown.to_json()
    item = {"case_label": "Case B", "client_id": "c015"}
    assert slide_title(item, True, therapist) == "Case B"
    assert slide_title(item, False, therapist) == f"Case B, presented by {therapist}"


def test_a_slides_group_figure_with_nothing_left_to_draw_is_a_sentence_not_an_empty_frame(demo, catalog):
    """Seen wrong: "Built from 14 clients." over an empty 240 px frame whose only text was
    "Not shown: every code is present or absent in 1 to 10 of the clients": every code of the
    group's transference themes was a small cell. Such a view says why, as a suppressed one does."""
    seen = []
    for group in ("group-north", "group-south", "group-east"):
        for view in group_views(demo, catalog, group, None, scope=SYSTEM):
            seen.append(view.figure is None)
            if view.figure is not None:
                assert len(view.figure.data) > 0, f"{group}: {view.title} is an empty frame"
                assert charts.empty_message(view.figure) is None
            else:
                assert view.note.startswith("Not shown") or view.note.startswith("No "), view.note
    assert any(seen) and not all(seen)


def _shown_counts(figure) -> list[tuple[int, int]]:
    """Every "k of N" or "k/N" a figure's texts show."""
    texts = " ".join(str(t) for trace in figure.data for key in ("text", "hovertext")
                     for t in (getattr(trace, key, None) or []) if t is not None)
    texts += " " + " ".join(str(t) for trace in figure.data for row in (getattr(trace, "text", None) or [])
                            if isinstance(row, (list, tuple)) for t in row)
    return [(int(k), int(n)) for k, n in re.findall(r"(\d+)(?: of |/)(\d+)", texts)]


def test_no_group_figure_of_a_slide_shows_a_small_cell_or_a_marker_per_client(demo, catalog):
    therapist = demo.query(
        "SELECT therapist_id FROM themes JOIN sessions USING (client_id, session_number) JOIN therapists "
        "USING (therapist_id) WHERE kind = 'countertransference' AND supervision_group = 'group-north' "
        "GROUP BY 1 ORDER BY count(DISTINCT client_id) DESC, 1 LIMIT 1", scope=SYSTEM).item()
    lenient = catalog.model_copy(update={"conference": catalog.conference.model_copy(update={"min_group_clients": 1})})
    views = {v.title: v for v in group_views(demo, lenient, "group-north", therapist, hide_therapist=True,
                                             scope=SYSTEM)}
    themes = views["The group's transference themes"]
    assert themes.clients == 14
    # In the demo each transference code occurs with 1 to 6 of the group's 14 clients: no
    # figure (no count of 1 to 10 among the clients with the code or without it), a sentence.
    assert themes.figure is None and "Not shown" in themes.note and "1 to 10" in themes.note
    pattern = views["The therapist's countertransference across their cases"].figure
    for k, n in _shown_counts(pattern):
        assert not 1 <= k <= 10 and not 1 <= n - k <= 10, (k, n)
    barrier = views["Barriers and the alliance across the group"].figure
    assert not [t for t in barrier.data if t.type in ("scatter", "histogram")]  # no marker per client


# ----------------------------------------------------------------------------- handout

def test_the_handout_is_one_offline_html_file_and_a_safe_actions_csv(demo, catalog, tmp_path):
    made = new_conference(demo, catalog, "group-north", cases=2, attendees=["sup1", "th02"], scope=as_user("sup1"))
    client = made["agenda"][0]["client_id"]
    other = made["agenda"][1]["client_id"]
    save_entry(demo, made["id"], client, kind="note", text=f"Compare with {other}: <b>same</b> pattern?", scope=as_user("sup1"))
    save_entry(demo, made["id"], client, kind="action", text="=HYPERLINK(\"x\") -- check the rupture", owner="th02",
               due_on="2026-12-07", scope=as_user("sup1"))
    out = write_handout(demo, catalog, made["id"], tmp_path / "h.html", tmp_path / "a.csv", scope=SYSTEM)
    page = (tmp_path / "h.html").read_text(encoding="utf-8")
    assert out["files"][str(tmp_path / "h.html")] == len(page.encode("utf-8"))
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", page, flags=re.S)
    assert "<script src" not in page and len(scripts[0]) > 3_000_000  # plotly.js is inside the file
    assert "Plotly.newPlot" in " ".join(scripts[1:]) and "cdn.plot.ly" not in " ".join(scripts[1:])
    assert page.count("plotly-graph-div") == 2 and "Case A" in page and client in page
    assert "&lt;b&gt;same&lt;/b&gt;" in page and "<b>same</b>" not in page  # a note is text, never HTML
    csv = (tmp_path / "a.csv").read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in csv and client in csv


def test_a_deidentified_handout_names_cases_by_label_only(demo, catalog, tmp_path):
    made = new_conference(demo, catalog, "group-north", cases=2, attendees=["sup1", "th02"], scope=as_user("sup1"))
    client, other = (i["client_id"] for i in made["agenda"])
    save_entry(demo, made["id"], client, kind="note", text=f"Compare with {other} and with c001; th02 agrees.",
               scope=as_user("sup1"))
    save_entry(demo, made["id"], client, kind="action", text="Check the rupture.", owner="th02", scope=as_user("sup1"))
    write_handout(demo, catalog, made["id"], tmp_path / "h.html", tmp_path / "a.csv", deidentify=True, scope=SYSTEM)
    page = (tmp_path / "h.html").read_text(encoding="utf-8")
    text = re.sub(r"<script.*?</script>", " ", page, flags=re.S)
    charts = " ".join(re.findall(r"Plotly\.newPlot\((.*?)\)\s*}", page, flags=re.S))
    ids = demo.query("SELECT client_id AS id FROM sessions UNION SELECT therapist_id FROM therapists", scope=SYSTEM)["id"]
    for found in ids.to_list():
        assert not re.search(rf"(?<![\w-]){re.escape(found)}(?![\w-])", text), found
        assert f'"{found}"' not in charts and f" {found}" not in charts, found
    assert "Compare with Case B and with another case; a therapist agrees." in text
    csv = (tmp_path / "a.csv").read_text(encoding="utf-8-sig")
    assert "client_id" not in csv.splitlines()[0] and "th02" not in csv


def test_a_deidentified_handout_labels_ids_in_texts_and_keeps_owners_as_user_ids(demo, catalog, tmp_path):
    from core.identity import add_user
    made = new_conference(demo, catalog, "group-north", cases=2, scope=as_user("sup1"))
    client, other = (i["client_id"] for i in made["agenda"])
    therapist = demo.scalar("SELECT any_value(therapist_id) FROM sessions WHERE client_id = $c", {"c": client},
                            scope=SYSTEM)
    add_user(demo, "oidc-subject-7", "trainee", name="trainee7", therapist_id=therapist, groups=["group-north"])
    save_entry(demo, made["id"], client, kind="action", text=f"Discuss {client} with {therapist}", owner=therapist,
               scope=as_user("sup1"))
    save_entry(demo, made["id"], other, kind="action", text="Bring the scores.", owner="sup1", scope=as_user("sup1"))
    write_handout(demo, catalog, made["id"], tmp_path / "h.html", tmp_path / "a.csv", deidentify=True, scope=SYSTEM)
    page = (tmp_path / "h.html").read_text(encoding="utf-8")
    assert "Discuss Case A with the therapist of Case A" in page
    csv = (tmp_path / "a.csv").read_text(encoding="utf-8-sig")
    # The owner is a pseudonymous user id: the therapist's own user, not "a therapist".
    assert "Case A,Discuss Case A with the therapist of Case A,trainee7" in csv
    assert "Case B,Bring the scores.,sup1" in csv and "a therapist" not in csv
    assert therapist not in csv and client not in csv


def test_the_privacy_guard_stops_a_handout_before_anything_is_written(demo, catalog, tmp_path):
    made = new_conference(demo, catalog, "group-east", cases=1, scope=as_user("sup1"))
    client = made["agenda"][0]["client_id"]
    with demo.transaction(Scope.system("a direct edit")) as cur:  # text that slipped past the guard (an old version, a direct edit)
        cur.execute("INSERT INTO conference_entries VALUES (99, 1, ?, ?, 'note', 'Call Mrs Okafor on 07700 900123',"
                    " NULL, NULL, NULL, 'sup1', now(), false, NULL)", [made["id"], client])
    with pytest.raises(HandoutError, match="privacy guard") as err:
        write_handout(demo, catalog, made["id"], tmp_path / "out" / "h.html", tmp_path / "out" / "a.csv", scope=SYSTEM)
    assert "Okafor" not in str(err.value) and "07700" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_conference_export_on_the_command_line(demo, catalog, tmp_path):
    made = new_conference(demo, catalog, "group-south", cases=2, scope=as_user("sup1"))
    db = str(demo.path)
    demo.close()
    html_file, csv_file = tmp_path / "handout.html", tmp_path / "actions.csv"
    out = run("conference", "export", str(made["id"]), "--html", str(html_file), "--actions-csv", str(csv_file),
              "--deidentify", "--db", db)
    assert out.returncode == 0, out.stderr
    assert html_file.stat().st_size > 1_000_000 and csv_file.exists()  # plotly.js is embedded
    assert "handout.html" in out.stdout and "bytes" in out.stdout
    bad = run("conference", "export", "999", "--html", str(tmp_path / "x.html"), "--db", db)
    assert bad.returncode == 2 and "no conference 999" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "x.html").exists()


def test_an_edited_agenda_table_saves_its_reasons_minutes_and_order(demo, catalog):
    made = new_conference(demo, catalog, "group-north", cases=3, scope=as_user("sup1"))
    table = agenda(demo, made["id"], scope=SYSTEM).select(pl.col("position").alias("order"), "case_label", "client_id", "reason",
                                            "minutes")
    assert apply_agenda_edits(demo, made["id"], table, scope=SYSTEM) == []  # nothing changed, nothing saved
    first, second, third = table["client_id"]
    edited = table.with_columns(
        order=pl.Series([3, 1, 2]),
        reason=pl.when(pl.col("client_id") == second).then(pl.lit("Asked for by the therapist."))
        .otherwise(pl.col("reason")),
        minutes=pl.when(pl.col("client_id") == third).then(20).otherwise(pl.col("minutes")))
    saved = apply_agenda_edits(demo, made["id"], edited, scope=SYSTEM)
    assert saved == [f"{second}: reason", f"{third}: minutes", "the order"]
    now = agenda(demo, made["id"], scope=SYSTEM)
    assert now["client_id"].to_list() == [second, third, first]
    assert now["case_label"].to_list() == ["Case A", "Case B", "Case C"]
    assert now.filter(pl.col("client_id") == second)["reason"][0] == "Asked for by the therapist."
    assert now.filter(pl.col("client_id") == third)["minutes"][0] == 20
    with pytest.raises(ConferenceError, match="identifying"):
        apply_agenda_edits(demo, made["id"], edited.with_columns(reason=pl.lit("Call 07700 900123")), scope=SYSTEM)


@pytest.mark.parametrize("wanted, order", [
    ({"c": 1}, ["c", "a", "b", "d"]),            # to the first place: the others move down
    ({"c": 1, "a": 1}, ["c", "a", "b", "d"]),    # two 1s: the case given 1 goes first, not "1, 1"
    ({"a": 3}, ["b", "c", "a", "d"]),
    ({"a": 4, "b": 1}, ["b", "c", "d", "a"]),
    ({}, ["a", "b", "c", "d"]),
])
def test_an_order_number_is_the_place_a_case_moves_to(wanted, order):
    assert moved_order(["a", "b", "c", "d"], {"a": 1, "b": 2, "c": 3, "d": 4} | wanted) == order


@pytest.mark.parametrize("number, why", [(None, "left empty"), (5, "has 4 case"), (0, "from 1 to 4")])
def test_an_order_number_that_cannot_be_applied_says_so(number, why):
    with pytest.raises(ConferenceError, match=why):
        moved_order(["a", "b", "c", "d"], {"b": number})
