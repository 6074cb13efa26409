"""The process beside the alliance (issue 14): whether a session's scores were discussed with
the client (`sessions.feedback_discussed`, the contract's extension) and an optional empathy
instrument (the CARE measure), each in the catalog, the store, the case summary and on the
case's session axis."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from core import views
from core.analytics.summary import case_summaries, summary_text
from core.importer import import_dataset, load_demo
from core.store import SCHEMA_VERSION, SNAPSHOT_MIGRATIONS, Store, upsert
from tests.conftest import SYSTEM, write_csv


def panel_titles(fig) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def traces_named(fig, name: str) -> list:
    # A legend entry longer than a line breaks at a word (<br>).
    return [t for t in fig.data if (t.name or "").replace("<br>", " ") == name]


# ----------------------------------------------------------------------------- feedback

def test_feedback_discussed_imports_as_true_false_or_not_recorded(store, catalog, tmp_path):
    folder = tmp_path / "feedback-export"
    write_csv(folder, "sessions", "client_id,therapist_id,session_number,attended,feedback_discussed\n"
              "f1,t1,0,true,yes\nf1,t1,1,true,no\nf1,t1,2,true,\nf1,t1,3,false,\nf1,t1,4,true,maybe\n")
    result = import_dataset(folder, store, catalog=catalog)
    assert result.quarantined.get("sessions") == 1
    (problem,) = [p for p in result.problems if p.column == "feedback_discussed"]
    assert problem.line == 6 and "maybe" in problem.message and "true or false" in problem.message
    stored = store.query("SELECT session_number, feedback_discussed FROM sessions ORDER BY 1", scope=SYSTEM)
    assert stored.rows() == [(0, True), (1, False), (2, None), (3, None)]
    assert not result.ignored  # a contract column, not an unknown one


def test_a_file_without_feedback_imports_as_before(store, catalog, tmp_path):
    folder = tmp_path / "plain-export"
    write_csv(folder, "sessions", "client_id,therapist_id,session_number\np1,t1,0\np1,t1,1\n")
    assert import_dataset(folder, store, catalog=catalog).exit_code == 0
    (summary,) = case_summaries(store, catalog, ["p1"], SYSTEM)
    assert summary["feedback"] == {"discussed": 0, "not_discussed": 0, "not_recorded": 2}
    parts = views.case_parts(store, catalog, "p1", SYSTEM)
    assert not any(t.startswith("Feedback") for t in panel_titles(views.overview_figure(parts, catalog)))


def test_data_imported_before_the_feedback_column_read_it_as_not_recorded(tmp_path):
    """A snapshot of the schema before sessions.feedback_discussed is migrated on a copy."""
    path = tmp_path / "old.duckdb"
    store = Store(path)
    rows = pl.DataFrame([("c1", 0, "t1", 0, "individual", True)], orient="row",
                        schema={"client_id": pl.String, "session_number": pl.Int64, "therapist_id": pl.String,
                                "days_since_intake": pl.Int64, "modality": pl.String, "attended": pl.Boolean})
    with store.publish() as cur:
        upsert(cur, "sessions", rows, 1)
    old = store.snapshot_path
    store.close()
    # The version before the migration that adds the column (later ones were appended since).
    before = next(i for i, steps in enumerate(SNAPSHOT_MIGRATIONS) if any("feedback_discussed" in s for s in steps))
    con = duckdb.connect(str(old))
    con.execute("ALTER TABLE sessions DROP COLUMN feedback_discussed")
    con.execute("UPDATE snapshot_info SET version = ?", [before])
    con.close()
    store = Store(path)
    assert store.version() == SCHEMA_VERSION and store.snapshot_path != old
    assert store.query("SELECT client_id, feedback_discussed FROM sessions", scope=SYSTEM).rows() == [("c1", None)]
    store.close()


def test_feedback_is_counted_and_drawn_on_the_case_axis(store, catalog, tmp_path):
    folder = tmp_path / "feedback-case"
    write_csv(folder, "sessions", "client_id,therapist_id,session_number,attended,feedback_discussed\n"
              "f2,t1,0,true,true\nf2,t1,1,true,false\nf2,t1,2,false,\nf2,t1,3,true,false\nf2,t1,4,true,\n")
    write_csv(folder, "ratings", "client_id,session_number,instrument,score\n"
              + "".join(f"f2,{s},SRS,{v}\n" for s, v in ((0, 35), (1, 36), (3, 37), (4, 38))))
    assert import_dataset(folder, store, catalog=catalog).exit_code == 0
    (summary,) = case_summaries(store, catalog, ["f2"], SYSTEM)
    assert summary["feedback"] == {"discussed": 1, "not_discussed": 2, "not_recorded": 1}
    assert "scores discussed with the client in 1 of 4 attended sessions (1 not recorded)" in summary_text(summary)
    fig = views.overview_figure(views.case_parts(store, catalog, "f2", SYSTEM), catalog)
    assert "Feedback: scores discussed with the client (1 attended not recorded)" in panel_titles(fig)
    (yes,) = traces_named(fig, "Scores discussed with the client")
    (no,) = traces_named(fig, "Scores not discussed")
    assert list(yes.x) == [0] and list(no.x) == [1, 3]
    # On the overview's one session axis: every row's x axis is the shared one.
    (srs,) = [t for t in fig.data if t.type == "scatter" and t.y is not None and 35 in list(t.y)]
    assert shared_axis(fig, yes.xaxis) == shared_axis(fig, srs.xaxis)


def shared_axis(fig, axis: str) -> str:
    """The x axis a row's axis follows (make_subplots(shared_xaxes=True) sets `matches`)."""
    return fig.layout["xaxis" + axis[1:]].matches or axis


# ----------------------------------------------------------------------------- empathy

def test_the_care_measure_is_an_optional_empathy_instrument_with_its_source(catalog):
    care = catalog.instruments["CARE"]
    assert care.kind == "empathy" and care.direction == "higher" and care.raters == ["client"]
    assert care.scales["total"] == (10.0, 50.0)  # 10 items, 1-5 (Mercer et al. 2004)
    assert "Mercer et al. 2004" in care.source and "licence terms unconfirmed" in care.source
    assert care.cutoff is None and care.reliable_change is None and care.alert_drop is None
    # Not an alliance or outcome instrument: no flag, no calibration subject.
    assert "CARE" not in catalog.instruments_of("alliance") and "CARE" not in catalog.instruments_of("outcome")


def test_empathy_ratings_import_within_range_and_show_on_the_case_axis(store, catalog, tmp_path):
    folder = tmp_path / "empathy-export"
    write_csv(folder, "sessions", "client_id,therapist_id,session_number\n"
              + "".join(f"e1,t1,{s}\n" for s in range(5)))
    write_csv(folder, "ratings", "client_id,session_number,instrument,score\n"
              "e1,1,CARE,31\ne1,3,CARE,44\ne1,4,CARE,51\ne1,2,CARE,9\n")
    result = import_dataset(folder, store, catalog=catalog)
    assert result.quarantined.get("ratings") == 2  # 51 and 9: outside 10-50
    (summary,) = case_summaries(store, catalog, ["e1"], SYSTEM)
    assert summary["empathy"] == [{"instrument": "CARE", "session": 1, "score": 31.0, "items_answered": None},
                                  {"instrument": "CARE", "session": 3, "score": 44.0, "items_answered": None}]
    assert summary["flags"] == [] and "CARE" not in summary["change"]
    fig = views.overview_figure(views.case_parts(store, catalog, "e1", SYSTEM), catalog)
    assert "Empathy rated by the client" in panel_titles(fig)
    (line,) = traces_named(fig, "CARE empathy (client)")
    assert list(line.x) == [1, 3] and list(line.y) == [31.0, 44.0]


# ----------------------------------------------------------------------------- the demo

@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("demo-process") / "demo.duckdb")
    load_demo(store)
    yield store
    store.close()


def test_the_demo_shows_feedback_and_empathy_in_two_cases_or_more(demo_store, catalog):
    seldom = demo_store.query("SELECT client_id FROM sessions WHERE feedback_discussed = false GROUP BY 1 "
                              "HAVING count(*) >= 3 ORDER BY 1", scope=SYSTEM)["client_id"].to_list()
    assert len(seldom) >= 2
    unrecorded = demo_store.query("SELECT client_id FROM sessions GROUP BY 1 HAVING bool_and(feedback_discussed "
                                  "IS NULL)", scope=SYSTEM)["client_id"].to_list()
    assert len(unrecorded) >= 2
    empathic = demo_store.query("SELECT DISTINCT client_id FROM ratings WHERE instrument = 'CARE' ORDER BY 1",
                                scope=SYSTEM)["client_id"].to_list()
    assert len(empathic) >= 2
    both = sorted(set(seldom) & set(empathic))
    assert both
    fig = views.overview_figure(views.case_parts(demo_store, catalog, both[0], SYSTEM), catalog)
    assert {"Feedback: scores discussed with the client", "Empathy rated by the client"} <= set(panel_titles(fig))
