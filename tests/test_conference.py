"""Conferences: an agenda pre-filled from the group's triage, soft removal, the command line."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from core.access import Scope
from core.analytics.triage import triage
from core.conference.meetings import ConferenceError, agenda, case_label, new_conference, remove_item
from core.importer import load_demo
from core.store import Store
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
    made = new_conference(demo, catalog, "group-north", held_on=dt.date(2026, 11, 30), cases=4, created_by="sup1")
    therapists = demo.query("SELECT therapist_id FROM therapists WHERE supervision_group = 'group-north'")
    case_list, flags = triage(demo, catalog, Scope.therapists(therapists["therapist_id"].to_list()))
    expected = case_list.filter(pl.col("priority") > 0).head(4)["client_id"].to_list()
    assert [i["client_id"] for i in made["agenda"]] == expected
    assert [i["case_label"] for i in made["agenda"]] == ["Case A", "Case B", "Case C", "Case D"]
    top = flags.filter(pl.col("client_id") == expected[0])["reason"].to_list()
    assert made["agenda"][0]["reason"] == "; ".join(top[:2])
    assert all(i["minutes"] == catalog.conference.minutes_per_case for i in made["agenda"])
    stored = agenda(demo, made["id"])
    assert stored["client_id"].to_list() == expected and stored["position"].to_list() == [1, 2, 3, 4]


def test_removing_a_case_keeps_it_with_who_when_and_why(demo, catalog):
    made = new_conference(demo, catalog, "group-east", cases=3, created_by="sup1")
    remove_item(demo, made["id"], 2, by="sup1", why="discussed last week")
    assert agenda(demo, made["id"])["position"].to_list() == [1, 3]
    everything = agenda(demo, made["id"], include_removed=True)
    removed = everything.filter(pl.col("position") == 2).row(0, named=True)
    assert (removed["deleted_by"], removed["deleted_why"]) == ("sup1", "discussed last week")
    assert removed["deleted_at"] is not None
    with pytest.raises(ConferenceError, match="no case at position 2"):
        remove_item(demo, made["id"], 2, by="sup1", why="again")
    with pytest.raises(ConferenceError, match="Say why"):
        remove_item(demo, made["id"], 1, by="sup1", why=" ")


def test_an_unknown_group_gets_a_sentence_naming_the_groups(demo, catalog):
    with pytest.raises(ConferenceError, match="group-east, group-north, group-south"):
        new_conference(demo, catalog, "nowhere")


def test_conference_new_on_the_command_line(demo):
    db = str(demo.path)
    demo.close()
    out = run("conference", "new", "--group", "group-south", "--date", "2026-12-07", "--cases", "3", "--db", db,
              "--json")
    assert out.returncode == 0, out.stderr
    made = json.loads(out.stdout)
    assert isinstance(made["id"], int) and made["date"] == "2026-12-07"
    assert [set(i) >= {"case_label", "client_id", "reason"} for i in made["agenda"]] == [True] * 3
    plain = run("conference", "new", "--group", "group-south", "--db", db)
    assert plain.returncode == 0 and plain.stdout.strip() == str(made["id"] + 1)
    bad = run("conference", "new", "--group", "nowhere", "--db", db)
    assert bad.returncode == 2 and "nowhere" in bad.stderr and "Traceback" not in bad.stderr
    bad_date = run("conference", "new", "--group", "group-south", "--date", "30.11.2026", "--db", db)
    assert bad_date.returncode == 2 and "YYYY-MM-DD" in bad_date.stderr
