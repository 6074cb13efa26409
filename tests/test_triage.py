"""Triage flags and the case summary, on a small clinic imported the way a clinic imports it.

Every flag is planted with known numbers and its sentence is checked word for word: the
sentence is what the supervisor reads, so it is the thing to test.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from core.analytics.outcomes import SuddenGainParams, change_table, outcome_series, sudden_changes
from core.analytics.summary import UnknownClients, case_summaries
from core.analytics.triage import num, triage, triage_flags
from core.catalog import load_catalog
from core.importer import import_dataset
from tests.conftest import SYSTEM, write_csv
from tests.test_cli import run

# a1: SRS 38 38 39 38 38 29 30 31 31 - a drop of 9 at session 6 (sample SD of the five
#     scores before it 0.45, so 2 SD = 0.89 points: the SRS's minimum drop of 4 points
#     applies), never back to 38 within the next 3 ratings; PHQ-9 10 -> 17.
# b2: PHQ-9 8 -> 15 (starts below the cutoff 10, ends above it).
# c3: PHQ-9 10 10 9 9 17 17 18 18 at sessions 1-8: a sudden loss 4 -> 5.
# d4: one unaddressed barrier of high severity at its latest session.
# e5: nothing of note.
SESSIONS = ["client_id,therapist_id,session_number"]
SESSIONS += [f"a1,t1,{n}" for n in range(0, 10)]
SESSIONS += [f"b2,t2,{n}" for n in range(0, 10)]
SESSIONS += [f"c3,t2,{n}" for n in range(0, 9)]
SESSIONS += [f"d4,t3,{n}" for n in range(0, 4)]
SESSIONS += [f"e5,t3,{n}" for n in range(0, 4)]
RATINGS = ["client_id,session_number,instrument,score"]
RATINGS += [f"a1,{n},SRS,{s}" for n, s in zip(range(1, 10), [38, 38, 39, 38, 38, 29, 30, 31, 31])]
RATINGS += ["a1,0,PHQ-9,10", "a1,9,PHQ-9,17", "b2,0,PHQ-9,8", "b2,9,PHQ-9,15"]
RATINGS += [f"c3,{n},PHQ-9,{s}" for n, s in zip(range(1, 9), [10, 10, 9, 9, 17, 17, 18, 18])]
RATINGS += [f"e5,{n},SRS,{s}" for n, s in [(1, 38), (2, 39), (3, 39)]]
THERAPISTS = "therapist_id,supervision_group,level\nt1,g1,trainee\nt2,g1,staff\nt3,g2,trainee\n"
BARRIERS = ("client_id,session_number,category,severity,addressed,note\n"
            "d4,3,language,3,false,The client struggled to follow without an interpreter.\n"
            "d4,1,cultural,1,true,Talked about expectations of therapy.\n")


@pytest.fixture
def clinic(store, catalog, tmp_path):
    folder = tmp_path / "export"
    write_csv(folder, "sessions", "\n".join(SESSIONS) + "\n")
    write_csv(folder, "ratings", "\n".join(RATINGS) + "\n")
    write_csv(folder, "therapists", THERAPISTS)
    write_csv(folder, "barriers", BARRIERS)
    result = import_dataset(folder, store, catalog=catalog)
    assert result.exit_code == 0, result.problems
    return store


def reasons(flags: pl.DataFrame, client: str) -> dict[str, str]:
    return dict(flags.filter(pl.col("client_id") == client).select("code", "reason").iter_rows())


def test_num_writes_numbers_as_people_do():
    out = pl.select(num(pl.lit(pl.Series([38.0, 6.6, 2.524, -5.0, 7.98])))).to_series().to_list()
    assert out == ["38", "6.6", "2.52", "-5", "7.98"]


def test_every_planted_flag_is_found_with_its_numbers(clinic, catalog):
    flags = triage_flags(clinic, catalog, scope=SYSTEM)
    a1 = reasons(flags, "a1")
    assert a1["rupture_not_repaired"] == (
        "SRS fell from 38 to 29 at session 6 (threshold 4 points); not repaired within the next 3 ratings")
    assert a1["alliance_below_cutoff"] == "Latest SRS 31 (session 9) is below the cutoff 36"
    assert a1["deteriorated"] == "PHQ-9 went from 10 (session 0) to 17 (session 9): a reliable deterioration"
    assert reasons(flags, "b2")["harmed"] == (
        "PHQ-9 went from 8 (session 0) to 15 (session 9): a reliable deterioration into the clinical range "
        "(clinical cutoff 10)")
    assert reasons(flags, "c3")["sudden_loss"] == "Sudden loss on PHQ-9 between sessions 4 and 5: 9 to 17 (8 points)"
    assert reasons(flags, "d4") == {"barriers_unaddressed": (
        "1 barrier note(s) left unaddressed in the last 6 sessions (language); highest severity 3")}
    assert reasons(flags, "e5") == {}


def test_every_flag_carries_its_rule_and_its_catalog_weight(clinic, catalog):
    flags = triage_flags(clinic, catalog, scope=SYSTEM)
    assert flags["params"].null_count() == 0
    assert flags.filter(pl.col("code") == "rupture_not_repaired")["params"][0].startswith("drop >= 2 SD")
    for code, weight in flags.select("code", "weight").iter_rows():
        assert weight == catalog.triage.weights[code]


def test_the_case_list_is_ordered_by_priority_and_keeps_unflagged_cases(clinic, catalog):
    case_list, flags = triage(clinic, catalog, scope=SYSTEM)
    # a1 11, c3 7 (deteriorated 10 -> 18 and the sudden loss), b2 5, d4 2, e5 0
    assert case_list["client_id"].to_list() == ["a1", "c3", "b2", "d4", "e5"]
    w = catalog.triage.weights
    a1 = case_list.row(0, named=True)
    assert a1["priority"] == w["rupture_not_repaired"] + w["alliance_below_cutoff"] + w["deteriorated"]
    assert (a1["therapist_id"], a1["supervision_group"], a1["sessions"], a1["latest_session"]) == ("t1", "g1", 10, 9)
    assert a1["codes"][0] in ("rupture_not_repaired", "deteriorated")
    assert case_list.filter(pl.col("client_id") == "e5")["priority"].item() == 0
    assert case_list["rank"].to_list() == [1, 2, 3, 4, 5]


def test_a_clinic_reorders_the_list_by_its_own_weights(clinic, tmp_path):
    overlay = tmp_path / "clinic.toml"
    overlay.write_text("[triage.weights]\nharmed = 20\n", encoding="utf-8")
    case_list, _ = triage(clinic, load_catalog(overlay), scope=SYSTEM)
    assert case_list["client_id"][0] == "b2"


def test_a_change_of_exactly_the_published_points_is_reliable_under_the_ge_rule(catalog):
    series = pl.DataFrame({"client_id": ["x", "x", "y", "y"], "instrument": "PHQ-9", "session_number": [0, 5, 0, 5],
                           "score": [16.0, 10.0, 16.0, 11.0]}, schema_overrides={"session_number": pl.Int32})
    change = change_table(series, catalog)
    assert catalog.instruments["PHQ-9"].reliable_change.rule == "ge"
    assert change.filter(pl.col("client_id") == "x")["category"].item() == "improved"  # 6 points, ">= 6"
    assert change.filter(pl.col("client_id") == "y")["category"].item() == "unchanged"  # 5 points


def test_sudden_gain_options_change_what_is_found(clinic, catalog):
    series = outcome_series(clinic, catalog, scope=SYSTEM)
    assert sudden_changes(series, catalog, SuddenGainParams.from_catalog(catalog)).height == 1
    assert sudden_changes(series, catalog, SuddenGainParams.from_catalog(catalog, cutoff=9)).is_empty()
    assert sudden_changes(series, catalog, SuddenGainParams.from_catalog(catalog, pct=0.95)).is_empty()


def test_the_case_summary_holds_the_contract_keys(clinic, catalog):
    (a1,) = case_summaries(clinic, catalog, ["a1"], scope=SYSTEM)
    assert {"client_id", "therapist_id", "sessions", "flags", "change", "sudden_gains", "sudden_losses", "ruptures",
            "themes", "barriers"} <= set(a1)
    assert a1["change"]["PHQ-9"].items() >= {"first": 10.0, "last": 17.0, "threshold": 6.0,
                                             "category": "deteriorated"}.items()
    (rupture,) = [r for r in a1["ruptures"] if r["session"] == 6]
    assert rupture.items() >= {"instrument": "SRS", "scale": "total", "rater": "client", "drop": 9.0,
                               "repaired_at": None}.items()
    assert {f["code"] for f in a1["flags"]} == {"rupture_not_repaired", "alliance_below_cutoff", "deteriorated"}
    json.dumps(a1)  # JSON-safe


def test_an_unknown_client_is_named_in_a_sentence(clinic, catalog):
    with pytest.raises(UnknownClients, match="nobody"):
        case_summaries(clinic, catalog, ["a1", "nobody"], scope=SYSTEM)


def test_case_command_prints_json_and_text(clinic, tmp_path):
    db = str(clinic.path)
    clinic.close()
    out = run("case", "c3", "--db", db, "--json")
    assert out.returncode == 0, out.stderr
    c3 = json.loads(out.stdout)
    assert c3["client_id"] == "c3"
    assert [(g["instrument"], g["pregain_session"], g["postgain_session"], g["magnitude"])
            for g in c3["sudden_losses"]] == [("PHQ-9", 4, 5, 8.0)]
    both = json.loads(run("case", "a1", "b2", "--db", db, "--json").stdout)
    assert [c["client_id"] for c in both] == ["a1", "b2"]
    strict = json.loads(run("case", "c3", "--db", db, "--json", "--sg-cutoff", "9").stdout)
    assert strict["sudden_losses"] == [] and strict["sudden_gain_params"]["cutoff"] == 9
    text = run("case", "a1", "--db", db)
    assert text.returncode == 0 and "[rupture_not_repaired] SRS fell from 38 to 29" in text.stdout
    unknown = run("case", "zz9", "--db", db)
    assert unknown.returncode == 2 and "zz9" in unknown.stderr and "Traceback" not in unknown.stderr
    bad = run("case", "c3", "--db", db, "--sg-pct", "2")
    assert bad.returncode == 2 and "between 0 and 1" in bad.stderr


def test_the_demo_stories_come_out_of_the_triage(tmp_path, catalog):
    from core.importer import load_demo
    from core.store import Store
    store = Store(tmp_path / "demo.duckdb")
    load_demo(store)
    case_list, flags = triage(store, catalog, scope=SYSTEM)
    unrepaired = set(flags.filter(pl.col("code") == "rupture_not_repaired")["client_id"])
    assert {"c027", "c048", "c015", "c046"} <= unrepaired
    assert not {"c005", "c018", "c043"} & unrepaired  # their ruptures were repaired
    assert "c029" in set(flags.filter(pl.col("code") == "sudden_loss")["client_id"])
    top = set(case_list.head(10)["client_id"])
    assert {"c027", "c015", "c046"} <= top
    store.close()


def test_recent_scores_find_the_same_recent_sudden_changes_as_the_whole_series(tmp_path, catalog):
    from core.analytics.triage import _recent_scores, cases
    from core.store import Store
    from devtools.synth import build_synthetic_store
    build_synthetic_store(tmp_path / "s.duckdb", 20_000)
    store = Store(tmp_path / "s.duckdb")
    latest, series = cases(store, scope=SYSTEM), outcome_series(store, catalog, scope=SYSTEM)
    sg = SuddenGainParams.from_catalog(catalog)
    lookback = catalog.triage.lookback_sessions

    def recent(found):
        return (found.join(latest.select("client_id", "latest_session"), on="client_id")
                .filter(pl.col("postgain_session") > pl.col("latest_session") - lookback)
                .drop("latest_session", "found", "selected")  # counts over what each was given
                .sort("client_id", "instrument", "kind", "pregain_session"))

    whole = recent(sudden_changes(series, catalog, sg))
    assert whole.height > 10
    assert whole.equals(recent(sudden_changes(_recent_scores(series, latest, lookback), catalog, sg)))
    store.close()


def test_the_flags_are_the_same_with_the_whole_outcome_series_and_without(tmp_path, catalog):
    # Without a series, the triage reads the ends of each outcome series with the latest
    # colours and only the recent scores for the sudden changes (faster); with the whole
    # series (as the case summary passes it) the flags must be the same.
    from core.access import Scope
    from core.store import Store, upsert
    from tests.conftest import gappy_clinic
    frames = gappy_clinic(15_000, seed=9, gaps_seed=3, unattended=0.08, dropped=0.1)
    sessions = frames["sessions"]
    store = Store(tmp_path / "s.duckdb")
    with store.publish() as cur:
        for name, frame in frames.items():
            upsert(cur, name, frame, 1)
    some = sessions["client_id"].unique().sort().head(40).to_list()
    scoped = Scope.therapists(sessions["therapist_id"].unique().sort().head(4).to_list())
    for scope, clients in ((SYSTEM, None), (scoped, None), (SYSTEM, some)):
        series = outcome_series(store, catalog, scope, clients)
        without = triage_flags(store, catalog, scope, clients)
        assert set(without["code"]) >= {"harmed", "deteriorated", "no_reliable_change", "not_on_track",
                                        "behind_expected", "sudden_loss"} or clients is not None
        assert without.equals(triage_flags(store, catalog, scope, clients, series=series))
    store.close()


def test_the_narrow_reads_of_the_triage_equal_the_full_reads_filtered(tmp_path, catalog):
    # For speed the triage asks the sources for only what it flags (recent flagged
    # discrepancies, the listed countertransference codes, unsorted recent scores); each
    # must be exactly the full result filtered.
    from core.analytics.ruptures import alliance_discrepancy
    from core.analytics.themes import pervasiveness
    from core.analytics.triage import cases
    from core.store import Store, upsert
    from tests.conftest import gappy_clinic
    frames = gappy_clinic(15_000, seed=5, gaps_seed=2, unattended=0.08, dropped=0.1)
    store = Store(tmp_path / "s.duckdb")
    with store.publish() as cur:
        for name, frame in frames.items():
            upsert(cur, name, frame, 1)
    latest = cases(store, scope=SYSTEM).select("client_id", "latest_session")
    lookback = catalog.triage.lookback_sessions

    full = alliance_discrepancy(store, catalog, scales=["total"], scope=SYSTEM)
    expected = (full.filter(pl.col("flagged")).join(latest, on="client_id")
                .filter(pl.col("session_number") > pl.col("latest_session") - lookback).drop("latest_session"))
    narrow = alliance_discrepancy(store, catalog, scales=["total"], flagged_only=True, recent=lookback, scope=SYSTEM)
    assert 0 < narrow.height < full.height
    assert narrow.equals(expected)

    codes = catalog.triage.countertransference_codes
    keys = ["client_id", "code"]
    every = pervasiveness(store, catalog, kinds=["countertransference"], scope=SYSTEM)
    listed = pervasiveness(store, catalog, kinds=["countertransference"], codes=codes, therapist=False, scope=SYSTEM)
    assert 0 < listed.height < every.height and "therapist_id" not in listed.columns
    assert listed.sort(keys).equals(every.filter(pl.col("code").is_in(codes)).drop("therapist_id").sort(keys))

    ordered = outcome_series(store, catalog, recent=lookback + 3, scope=SYSTEM)
    unordered = outcome_series(store, catalog, recent=lookback + 3, ordered=False, scope=SYSTEM)
    assert ordered.height > 0
    assert unordered.sort("client_id", "instrument", "session_number").equals(ordered)
    store.close()


def test_a_one_point_wai_sr_drop_raises_no_alliance_drop_alert(store, catalog):
    # The PCOMS / OpenFIT drop alert belongs to the SRS (DOMAIN.md): the catalog gives
    # `alert_drop` to the SRS only, so a 1-point fall on the WAI-SR is no case.
    from tests.test_ruptures import add_series
    add_series(store, "w1", {1: 50, 2: 49}, instrument="WAI-SR")
    add_series(store, "s1", {1: 38, 2: 37}, instrument="SRS")
    flags = triage_flags(store, catalog, scope=SYSTEM).filter(pl.col("code") == "alliance_drop")
    assert flags["client_id"].to_list() == ["s1"]


def test_overlapping_sudden_gains_are_one_gain_per_client_as_the_per_person_table(store, catalog):
    # BDI-II 35 35 35 35 25 25 17 17 16: gains at 4->5 (10 points) and 6->7 (8 points),
    # whose windows overlap. suddengains' create_byperson keeps one per client (the
    # catalog's [sudden_gains] multiple = "largest"): the 10-point gain, counted once.
    from tests.test_ruptures import add_series
    add_series(store, "g", dict(enumerate([35, 35, 35, 35, 25, 25, 17, 17, 16], start=1)), instrument="BDI-II")
    flags = triage_flags(store, catalog, scope=SYSTEM).filter(pl.col("code") == "sudden_gain")
    assert flags["reason"].to_list() == [
        "Sudden gain on BDI-II between sessions 4 and 5: 35 to 25 (10 points): what helped?"]
    gains = case_summaries(store, catalog, ["g"], scope=SYSTEM)[0]["sudden_gains"]
    assert [(g["pregain_session"], g["magnitude"], g["found"], g["reversed"]) for g in gains] == [(4, 10, 2, False)]


# ----------------------------------------------------------------------------- risk items and attendance

def _risk_clinic(store, catalog, tmp_path):
    folder = tmp_path / "risk-export"
    # r1: PHQ-9 item 9 answered 2 at session 3 (wide form), otherwise quiet.
    # m2: sessions 4 and 5 missed (attended false), within the lookback.
    # l3: attended up to session 2 (day 14), then three booked sessions missed until day 56.
    write_csv(folder, "sessions", "client_id,therapist_id,session_number,days_since_intake,attended,PHQ-9,PHQ-9:item9\n"
              "r1,t1,0,0,true,12,0\nr1,t1,1,7,true,11,0\nr1,t1,2,14,true,11,1\nr1,t1,3,21,true,10,2\n"
              "m2,t1,0,0,true,,\nm2,t1,1,7,true,,\nm2,t1,2,14,true,,\nm2,t1,3,21,true,,\nm2,t1,4,28,false,,\n"
              "m2,t1,5,35,false,,\n"
              "l3,t1,0,0,true,,\nl3,t1,1,7,true,,\nl3,t1,2,14,true,,\nl3,t1,3,28,false,,\nl3,t1,4,42,false,,\n"
              "l3,t1,5,56,false,,\n")
    write_csv(folder, "ratings", "client_id,session_number,instrument,scale,score\n"
              "m2,1,SRS,total,30\nm2,2,SRS,total,31\nm2,3,SRS,total,30\nm2,1,PHQ-9,item9,4\n")
    write_csv(folder, "therapists", "therapist_id,supervision_group\nt1,g1\n")
    return import_dataset(folder, store, catalog=catalog)


def test_a_risk_item_raises_a_flag_that_sorts_first_with_item_score_and_session(store, catalog, tmp_path):
    result = _risk_clinic(store, catalog, tmp_path)
    # An item answer outside its range (0-3) is quarantined like any score.
    assert result.quarantined.get("ratings") == 1
    cases, flags = triage(store, catalog, scope=SYSTEM)
    assert reasons(flags, "r1")["risk"] == (
        "PHQ-9 item 9 ('Thoughts that you would be better off dead or of hurting yourself in some way') answered 2 "
        "at session 3: assess the risk now (and 1 more)")
    params = flags.filter(pl.col("code") == "risk")["params"][0]
    assert "71.6 %" in params and "Louzon" in params  # the caveat: no flag is no safety
    # r1 has one flag of weight 10; heavier cases would still come after it.
    heavy = catalog.model_copy(update={"triage": catalog.triage.model_copy(update={"weights": {
        **catalog.triage.weights, "risk": 0.5, "lost_contact": 50}})})
    assert triage(store, heavy, scope=SYSTEM)[0]["client_id"][0] == "r1"


def test_missed_sessions_and_lost_contact_are_flagged(store, catalog, tmp_path):
    _risk_clinic(store, catalog, tmp_path)
    flags = triage_flags(store, catalog, scope=SYSTEM)
    assert reasons(flags, "m2")["attendance"] == (
        "2 of the last 6 sessions missed (no-show or late cancellation): session(s) 4, 5")
    assert "lost_contact" not in reasons(flags, "m2")  # 21 days since the last attended session
    assert reasons(flags, "l3")["lost_contact"] == (
        "No attended session for 42 days (last at session 2); 3 booked session(s) since, none attended")
    assert "attendance" in reasons(flags, "l3") and reasons(flags, "r1").keys() == {"risk"}


def test_the_case_summary_gains_attendance_and_risk_items(store, catalog, tmp_path):
    _risk_clinic(store, catalog, tmp_path)
    r1, m2 = case_summaries(store, catalog, ["r1", "m2"], SYSTEM)
    assert r1["flags"][0]["code"] == "risk" and r1["flags"][0]["reason"]
    assert r1["risk_items"][0] == {"instrument": "PHQ-9", "item": "item9", "score": 2.0, "session": 3, "alert": True,
                                   "text": "Thoughts that you would be better off dead or of hurting yourself in "
                                           "some way"}
    assert [r["score"] for r in r1["risk_items"]] == [2.0, 1.0, 0.0, 0.0]
    assert m2["attendance"] == {"attended": 4, "no_show": 2, "cancelled_late": 0, "cancelled": 0}
    assert m2["risk_items"] == []


def test_countertransference_flags_on_the_attended_sessions_and_shows_both_shares(store, catalog, tmp_path):
    folder = tmp_path / "ct-export"
    # k1: 10 attended sessions, 'helpless' coded in 3 of the 4 coded ones (75 % coded, 30 % attended): flagged.
    # k2: 20 attended sessions, coded only 3 times, each with 'helpless' (100 % coded, 15 % attended): not flagged.
    write_csv(folder, "sessions", "client_id,therapist_id,session_number\n"
              + "".join(f"k1,t1,{n}\n" for n in range(1, 11)) + "".join(f"k2,t1,{n}\n" for n in range(1, 21)))
    write_csv(folder, "themes", "client_id,session_number,kind,code\n"
              "k1,2,countertransference,helpless_inadequate\nk1,5,countertransference,helpless_inadequate\n"
              "k1,8,countertransference,helpless_inadequate\nk1,9,countertransference,positive\n"
              "k2,3,countertransference,helpless_inadequate\nk2,11,countertransference,helpless_inadequate\n"
              "k2,19,countertransference,helpless_inadequate\n")
    assert import_dataset(folder, store, catalog=catalog).exit_code == 0
    flags = triage_flags(store, catalog, scope=SYSTEM)
    assert reasons(flags, "k1")["countertransference"] == (
        "Countertransference 'Helpless / inadequate' coded in 3 of 10 attended sessions (30%; 3 of 4 coded "
        "sessions, 75%), last at session 8")
    assert "countertransference" not in reasons(flags, "k2")


def test_a_ccrt_from_fewer_sessions_than_the_minimum_is_tentative(store, catalog, tmp_path):
    folder = tmp_path / "ccrt-export"
    write_csv(folder, "sessions", "client_id,therapist_id,session_number\n" + "".join(f"w1,t1,{n}\n" for n in range(1, 5)))
    write_csv(folder, "themes", "client_id,session_number,kind,code\n" + "".join(
        f"w1,{n},ccrt_wish,be_close_accepting\nw1,{n},ccrt_ro,rejecting_opposing\nw1,{n},ccrt_rs,anxious_ashamed\n"
        for n in range(1, 5)))
    assert import_dataset(folder, store, catalog=catalog).exit_code == 0
    (summary,) = case_summaries(store, catalog, ["w1"], SYSTEM)
    assert summary["ccrt"]["wish"] == "be_close_accepting"
    assert (summary["ccrt"]["sessions"], summary["ccrt"]["tentative"], summary["ccrt"]["min_sessions"]) == (4, True, 10)
    from core import charts
    from core.analytics.themes import ccrt
    fig = charts.ccrt_chart(ccrt(store, catalog, SYSTEM, ["w1"]), min_sessions=catalog.themes.ccrt_min_sessions)
    assert "Tentative: from 4 coded sessions, fewer than 10" in fig.layout.title.text


def test_a_boundary_violation_raises_a_flag_and_a_crossing_does_not(store, catalog, tmp_path):
    folder = tmp_path / "boundary-export"
    write_csv(folder, "sessions", "client_id,therapist_id,session_number\n"
              + "".join(f"{c},t1,{n}\n" for c in ("v1", "x2") for n in range(1, 6)))
    write_csv(folder, "events", "client_id,session_number,event,rater\n"
              "v1,4,boundary_violation,supervisor\nx2,4,boundary_crossing,supervisor\n")
    assert import_dataset(folder, store, catalog=catalog).exit_code == 0
    flags = triage_flags(store, catalog, scope=SYSTEM)
    assert reasons(flags, "v1") == {"boundary": "Boundary violation coded at session 4 by the supervisor"}
    assert reasons(flags, "x2") == {}
    (summary,) = case_summaries(store, catalog, ["x2"], SYSTEM)
    assert [e["event"] for e in summary["coded_events"]] == ["boundary_crossing"]  # on the case's axis


def test_an_attendance_column_counts_by_kind_and_a_timely_cancellation_is_not_missed(store, catalog, tmp_path):
    folder = tmp_path / "attendance-export"
    write_csv(folder, "sessions", "client_id,therapist_id,session_number,attendance\n"
              "p1,t1,0,attended\np1,t1,1,attended\np1,t1,2,cancelled\np1,t1,3,cancelled\np1,t1,4,attended\n"
              "q2,t1,0,attended\nq2,t1,1,no_show\nq2,t1,2,Cancelled_Late\nq2,t1,3,attended\n")
    write_csv(folder, "therapists", "therapist_id,supervision_group\nt1,g1\n")
    assert import_dataset(folder, store, catalog=catalog).exit_code == 0
    stored = store.query("SELECT client_id, session_number, attended, attendance FROM sessions ORDER BY 1, 2",
                         scope=SYSTEM)
    assert stored.filter(pl.col("client_id") == "q2")["attended"].to_list() == [True, False, False, True]
    flags = triage_flags(store, catalog, scope=SYSTEM)
    assert "attendance" not in reasons(flags, "p1")  # cancelled in time: not missed
    assert reasons(flags, "q2")["attendance"].startswith("2 of the last 6 sessions missed")
    p1, q2 = case_summaries(store, catalog, ["p1", "q2"], SYSTEM)
    assert p1["attendance"] == {"attended": 3, "no_show": 0, "cancelled_late": 0, "cancelled": 2}
    assert q2["attendance"] == {"attended": 2, "no_show": 1, "cancelled_late": 1, "cancelled": 0}


def test_attended_and_attendance_must_agree(store, catalog, tmp_path):
    folder = tmp_path / "disagree-export"
    write_csv(folder, "sessions", "client_id,therapist_id,session_number,attended,attendance\n"
              "z1,t1,0,true,attended\nz1,t1,1,true,no_show\nz1,t1,2,false,\nz1,t1,3,false,sometimes\n")
    result = import_dataset(folder, store, catalog=catalog)
    assert result.quarantined.get("sessions") == 2
    rules = {(p.column, p.rule) for p in result.problems}
    assert ("attendance", "attendance agrees") in rules and ("attendance", "vocabulary") in rules
    assert store.query("SELECT attendance FROM sessions WHERE session_number = 2",
                       scope=SYSTEM)["attendance"].to_list() == ["no_show"]
