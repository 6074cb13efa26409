"""Themes: pervasiveness, the CCRT, therapist patterns, trends and triads, on hand-computed cases."""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from core.access import Scope
from core.analytics.themes import (caseload_pervasiveness, ccrt, ccrt_triads, pervasive_codes, pervasiveness,
                                   theme_timeline, theme_trend, therapist_patterns)
from core.store import Store, upsert
from tests.conftest import SYSTEM

SESSION_SCHEMA = {"client_id": pl.String, "session_number": pl.Int64, "therapist_id": pl.String,
                  "days_since_intake": pl.Int64, "modality": pl.String, "attended": pl.Boolean}
THEME_SCHEMA = {"client_id": pl.String, "session_number": pl.Int64, "kind": pl.String, "code": pl.String,
                "rater": pl.String, "intensity": pl.Int64, "note": pl.String}


def fill(store, sessions, themes=()):
    """sessions: (client, session, therapist[, attended]);
    themes: (client, session, kind, code[, intensity[, rater]])."""
    s = [(c, n, t, 7 * n, "individual", rest[0] if rest else True) for c, n, t, *rest in sessions]
    th = [(c, n, k, code, (rest[1] if len(rest) > 1 else "therapist"), (rest[0] if rest else None), None)
          for c, n, k, code, *rest in themes]
    with store.publish() as cur:
        upsert(cur, "sessions", pl.DataFrame(s, schema=SESSION_SCHEMA, orient="row"), 1)
        if th:
            upsert(cur, "themes", pl.DataFrame(th, schema=THEME_SCHEMA, orient="row"), 1)


def one_client_four_coded_sessions(store):
    # c1: six sessions, five attended; transference coded in sessions 1-4, "mistrustful" in 1, 2, 4.
    fill(store, [("c1", n, "t1", n != 6) for n in range(1, 7)],
         [("c1", 1, "transference", "mistrustful", 3), ("c1", 2, "transference", "mistrustful", 2),
          ("c1", 2, "transference", "mistrustful", 4, "supervisor"),
          ("c1", 3, "transference", "idealizing", 1), ("c1", 4, "transference", "mistrustful", 1),
          ("c1", 4, "countertransference", "helpless_inadequate", 2)])


def test_pervasiveness_is_the_share_of_coded_sessions_with_the_code(store, catalog):
    one_client_four_coded_sessions(store)
    p = pervasiveness(store, catalog, kinds=["transference"], scope=SYSTEM)
    row = p.filter(pl.col("code") == "mistrustful").row(0, named=True)
    assert (row["sessions_with_code"], row["sessions_scored"], row["pervasiveness"]) == (3, 4, 0.75)
    assert row["label"] == "Mistrustful" and row["therapist_id"] == "t1"
    # Session 2's two raters are averaged first (3), then sessions: (3 + 3 + 1) / 3.
    assert row["mean_intensity"] == pytest.approx(7 / 3)
    assert (row["first_session"], row["last_session"]) == (1, 4)
    assert p.filter(pl.col("code") == "idealizing")["pervasiveness"][0] == 0.25


def test_pervasiveness_over_attended_sessions_uses_every_attended_session(store, catalog):
    one_client_four_coded_sessions(store)
    p = pervasiveness(store, catalog, kinds=["transference"], denominator="attended", scope=SYSTEM)
    row = p.filter(pl.col("code") == "mistrustful").row(0, named=True)
    assert (row["sessions_scored"], row["pervasiveness"]) == (5, 0.6)


def test_a_coded_session_marked_not_attended_still_counts_in_the_attended_denominator(store, catalog):
    fill(store, [("c1", 1, "t1", True), ("c1", 2, "t1", False), ("c1", 3, "t1", True)],
         [("c1", 2, "transference", "hostile")])
    row = pervasiveness(store, catalog, denominator="attended", scope=SYSTEM).row(0, named=True)
    assert (row["sessions_with_code"], row["sessions_scored"]) == (1, 3)


def test_the_coded_denominator_counts_sessions_coded_for_the_same_kind_only(store, catalog):
    one_client_four_coded_sessions(store)
    ct = pervasiveness(store, catalog, kinds=["countertransference"], scope=SYSTEM)
    assert ct.select("code", "sessions_scored", "pervasiveness").rows() == [("helpless_inadequate", 1, 1.0)]


def test_an_unknown_denominator_or_kind_is_refused_with_a_sentence(store, catalog):
    with pytest.raises(ValueError, match="denominator"):
        pervasiveness(store, catalog, denominator="episodes", scope=SYSTEM)
    with pytest.raises(ValueError, match="theme kind"):
        pervasiveness(store, catalog, kinds=["dreams"], scope=SYSTEM)


def test_a_clients_therapist_is_the_one_with_most_sessions(store, catalog):
    fill(store, [("c1", 1, "t2"), ("c1", 2, "t1"), ("c1", 3, "t1")],
         [("c1", 1, "transference", "hostile")])
    assert pervasiveness(store, catalog, scope=SYSTEM)["therapist_id"].to_list() == ["t1"]


def test_ccrt_picks_the_most_pervasive_code_of_each_component(store, catalog):
    fill(store, [("c1", n, "t1") for n in (1, 2, 3)],
         [("c1", 1, "ccrt_wish", "be_loved_understood"), ("c1", 2, "ccrt_wish", "be_loved_understood"),
          ("c1", 3, "ccrt_wish", "assert_self"),
          ("c1", 1, "ccrt_ro", "rejecting_opposing"), ("c1", 2, "ccrt_ro", "rejecting_opposing"),
          ("c1", 3, "ccrt_ro", "rejecting_opposing"), ("c1", 3, "ccrt_ro", "helpful")])
    row = ccrt(store, catalog, scope=SYSTEM).row(0, named=True)
    assert (row["wish"], row["wish_pervasiveness"], row["wish_tied"]) == ("be_loved_understood", 2 / 3, False)
    assert (row["ro"], row["ro_label"], row["ro_pervasiveness"]) == ("rejecting_opposing",
                                                                     "Rejecting and opposing", 1.0)
    assert row["rs"] is None and row["rs_pervasiveness"] is None


def test_ccrt_ties_go_to_higher_intensity_then_codebook_order(store, catalog):
    fill(store, [("c1", 1, "t1"), ("c1", 2, "t1"), ("c2", 1, "t1"), ("c2", 2, "t1")],
         # c1: two wishes equally pervasive, the later one in the codebook more intense.
         [("c1", 1, "ccrt_wish", "assert_self", 1), ("c1", 2, "ccrt_wish", "be_distant", 3),
          # c2: equal pervasiveness and intensity: codebook order decides (assert_self comes first).
          ("c2", 1, "ccrt_wish", "be_distant", 2), ("c2", 2, "ccrt_wish", "assert_self", 2)])
    picks = ccrt(store, catalog, scope=SYSTEM).select("client_id", "wish", "wish_tied").rows()
    assert picks == [("c1", "be_distant", True), ("c2", "assert_self", True)]


def test_clients_without_ccrt_coding_are_absent_from_the_ccrt(store, catalog):
    fill(store, [("c1", 1, "t1"), ("c2", 1, "t1")],
         [("c1", 1, "ccrt_rs", "helpless"), ("c2", 1, "transference", "hostile")])
    assert ccrt(store, catalog, scope=SYSTEM)["client_id"].to_list() == ["c1"]


def test_a_countertransference_that_recurs_across_a_therapists_cases_is_found(store, catalog):
    ct = "countertransference"
    fill(store, [(c, n, "t1") for c in ("a", "b", "c") for n in (1, 2)] + [("d", 1, "t2"), ("d", 2, "t2")],
         [("a", 1, ct, "helpless_inadequate"), ("b", 2, ct, "helpless_inadequate"),
          ("c", 1, ct, "helpless_inadequate"), ("c", 2, ct, "helpless_inadequate"),
          ("a", 2, ct, "sexualized"),
          ("d", 1, ct, "disengaged"), ("d", 2, ct, "disengaged")])
    p = therapist_patterns(store, catalog, kind=ct, scope=SYSTEM)
    t1 = {r["code"]: r for r in p.filter(pl.col("therapist_id") == "t1").iter_rows(named=True)}
    helpless = t1["helpless_inadequate"]
    assert (helpless["clients_with_code"], helpless["clients_coded"], helpless["share_of_clients"]) == (3, 3, 1.0)
    assert helpless["sessions_with_code"] == 4 and helpless["recurring"]
    # a: 1 of 2 coded sessions, b: 1 of 1, c: 2 of 2 -> (0.5 + 1 + 1) / 3.
    assert helpless["mean_pervasiveness"] == pytest.approx(2.5 / 3)
    assert not t1["sexualized"]["recurring"]
    # One client alone is never a pattern, however pervasive.
    assert not p.filter(pl.col("therapist_id") == "t2")["recurring"][0]


def test_a_countertransference_counts_for_the_therapist_who_held_the_session(store, catalog):
    ct = "countertransference"
    fill(store, [("a", 1, "t1"), ("a", 2, "t2"), ("a", 3, "t2")], [("a", 1, ct, "positive")])
    p = therapist_patterns(store, catalog, kind=ct, scope=SYSTEM)
    assert p.select("therapist_id", "clients_with_code").rows() == [("t1", 1)]


def test_theme_timeline_lists_one_clients_rows_in_session_order(store, catalog):
    one_client_four_coded_sessions(store)
    t = theme_timeline(store, catalog, "c1", scope=SYSTEM)
    assert t.columns == ["session_number", "kind", "code", "label", "intensity", "rater"]
    assert t["session_number"].to_list() == [1, 2, 2, 3, 4, 4]
    assert t.filter(pl.col("session_number") == 4)["kind"].to_list() == ["transference", "countertransference"]


def test_theme_trend_compares_the_first_and_second_half_of_coded_sessions(store, catalog):
    # Mistrustful in 4 of the first 5 coded sessions and 1 of the last 5: 80 % -> 20 %.
    coded = [(n, n in (1, 2, 3, 4, 8)) for n in range(1, 11)]
    fill(store, [("c1", n, "t1") for n in range(1, 11)],
         [("c1", n, "transference", "mistrustful" if hit else "compliant") for n, hit in coded])
    trend = theme_trend(store, catalog, kinds=["transference"], scope=SYSTEM)
    row = trend.filter(pl.col("code") == "mistrustful").row(0, named=True)
    assert (row["sessions_early"], row["sessions_late"]) == (5, 5)
    assert (row["early"], row["late"]) == (0.8, 0.2)
    assert row["change"] == pytest.approx(-0.6)


def test_theme_trend_leaves_the_middle_session_of_an_odd_count_out_and_honours_a_window(store, catalog):
    fill(store, [("c1", n, "t1") for n in range(1, 6)],
         [("c1", n, "transference", "hostile" if n == 3 else "dependent") for n in range(1, 6)])
    halves = theme_trend(store, catalog, scope=SYSTEM)
    assert halves.select("code", "sessions_early", "sessions_late").rows() == [("dependent", 2, 2)]
    windowed = theme_trend(store, catalog, window=1, scope=SYSTEM)
    assert windowed.select("sessions_early", "sessions_late").rows() == [(1, 1)]


def test_ccrt_triads_count_components_that_occur_in_one_session(store, catalog):
    w, o, s = "ccrt_wish", "ccrt_ro", "ccrt_rs"
    fill(store, [("c1", 1, "t1"), ("c1", 2, "t1"), ("c2", 1, "t1")],
         [("c1", 1, w, "be_close_accepting"), ("c1", 1, o, "rejecting_opposing"), ("c1", 1, s, "helpless"),
          ("c1", 2, w, "be_close_accepting"), ("c1", 2, o, "rejecting_opposing"), ("c1", 2, s, "helpless"),
          ("c2", 1, w, "be_close_accepting"), ("c2", 1, o, "rejecting_opposing"), ("c2", 1, s, "helpless"),
          ("c2", 1, s, "anxious_ashamed")])
    t = ccrt_triads(store, catalog, scope=SYSTEM)
    assert t.select("rs", "sessions", "clients").rows() == [("helpless", 3, 2), ("anxious_ashamed", 1, 1)]
    assert t["wish_label"][0] == "To be close and accepting"


def test_a_scope_sees_only_its_therapists_clients(store, catalog):
    fill(store, [("c1", 1, "t1"), ("c2", 1, "t2")],
         [("c1", 1, "ccrt_wish", "assert_self"), ("c2", 1, "ccrt_wish", "be_distant"),
          ("c1", 1, "countertransference", "positive"), ("c2", 1, "countertransference", "positive")])
    only_t1 = Scope.therapists({"t1"})
    assert pervasiveness(store, catalog, scope=only_t1)["client_id"].unique().to_list() == ["c1"]
    assert ccrt(store, catalog, scope=only_t1)["client_id"].to_list() == ["c1"]
    assert therapist_patterns(store, catalog, scope=only_t1)["therapist_id"].to_list() == ["t1"]
    assert theme_timeline(store, catalog, "c2", scope=only_t1).is_empty()
    assert ccrt_triads(store, catalog, scope=only_t1).is_empty()


def test_the_clients_filter_limits_every_analysis(store, catalog):
    fill(store, [("c1", 1, "t1"), ("c2", 1, "t1")],
         [("c1", 1, "transference", "hostile"), ("c2", 1, "transference", "hostile")])
    assert pervasiveness(store, catalog, clients=["c2"], scope=SYSTEM)["client_id"].to_list() == ["c2"]
    assert pervasiveness(store, catalog, clients=["c2"], denominator="attended", scope=SYSTEM)["client_id"].to_list() == ["c2"]
    assert pervasiveness(store, catalog, clients=[], scope=SYSTEM).is_empty()


def test_an_empty_store_gives_empty_frames_with_the_documented_columns(store, catalog):
    expected = {
        "pervasiveness": (pervasiveness(store, catalog, scope=SYSTEM),
                          ["client_id", "therapist_id", "kind", "code", "label", "sessions_with_code",
                           "sessions_scored", "pervasiveness", "mean_intensity", "first_session", "last_session"]),
        "caseload": (caseload_pervasiveness(store, catalog, scope=SYSTEM),
                     ["kind", "code", "label", "clients", "clients_coded", "total", "mean"]),
        "ccrt": (ccrt(store, catalog, scope=SYSTEM),
                 ["client_id", "therapist_id"] + [f"{c}{s}" for c in ("wish", "ro", "rs") for s in
                                                  ("", "_label", "_pervasiveness", "_sessions_scored", "_tied")]),
        "patterns": (therapist_patterns(store, catalog, scope=SYSTEM),
                     ["therapist_id", "kind", "code", "label", "clients_with_code", "clients_coded",
                      "share_of_clients", "sessions_with_code", "mean_pervasiveness", "recurring"]),
        "timeline": (theme_timeline(store, catalog, "c1", scope=SYSTEM),
                     ["session_number", "kind", "code", "label", "intensity", "rater"]),
        "trend": (theme_trend(store, catalog, scope=SYSTEM),
                  ["client_id", "therapist_id", "kind", "code", "label", "sessions_early", "sessions_late",
                   "early", "late", "change"]),
        "triads": (ccrt_triads(store, catalog, scope=SYSTEM),
                   ["wish", "wish_label", "ro", "ro_label", "rs", "rs_label", "sessions", "clients"]),
    }
    for name, (frame, columns) in expected.items():
        assert frame.is_empty(), name
        assert frame.columns == columns, name


def reference_pervasiveness(sessions: list, themes: list, denominator: str) -> pl.DataFrame:
    """The definition written out in polars, one step at a time, to check the SQL against."""
    s = pl.DataFrame(sessions, schema=["client_id", "session_number", "therapist_id", "attended"], orient="row")
    t = pl.DataFrame(themes, schema=["client_id", "session_number", "kind", "code", "intensity", "rater"],
                     orient="row")
    per_session = t.group_by("client_id", "session_number", "kind", "code").agg(pl.col("intensity").mean())
    per_code = per_session.group_by("client_id", "kind", "code").agg(
        pl.len().alias("sessions_with_code"), pl.col("intensity").mean().alias("mean_intensity"))
    coded = per_session.select("client_id", "session_number", "kind").unique()
    if denominator == "coded":
        scored = coded.group_by("client_id", "kind").agg(pl.len().alias("sessions_scored"))
    else:
        held = coded.join(s, on=["client_id", "session_number"]).filter(~pl.col("attended"))
        unattended = held.group_by("client_id", "kind").agg(pl.len().alias("extra"))
        attended = s.group_by("client_id").agg(pl.col("attended").sum().alias("n"))
        scored = (coded.select("client_id", "kind").unique().join(attended, on="client_id")
                  .join(unattended, on=["client_id", "kind"], how="left")
                  .select("client_id", "kind", (pl.col("n") + pl.col("extra").fill_null(0)).alias("sessions_scored")))
    return (per_code.join(scored, on=["client_id", "kind"])
            .with_columns((pl.col("sessions_with_code") / pl.col("sessions_scored")).alias("pervasiveness")))


clinic = st.lists(st.tuples(st.sampled_from(["c1", "c2", "c3"]), st.integers(1, 6), st.booleans()),
                  min_size=1, max_size=15, unique_by=lambda r: r[:2])
codings = st.lists(st.tuples(st.integers(0, 14), st.sampled_from(["transference", "countertransference"]),
                             st.sampled_from(["positive", "hostile", "disengaged"]),
                             st.one_of(st.none(), st.integers(1, 3)), st.sampled_from(["therapist", "supervisor"])),
                   max_size=30)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clinic, codings, st.sampled_from(["coded", "attended"]))
def test_pervasiveness_equals_its_definition_on_random_clinics(catalog, rows, coding, denominator):
    sessions = [(c, n, "t1", attended) for c, n, attended in rows]
    themes = {(rows[i % len(rows)][0], rows[i % len(rows)][1], kind, code, rater): intensity
              for i, kind, code, intensity, rater in coding}  # one row per natural key
    themes = [(*key[:4], intensity, key[4]) for key, intensity in themes.items()]
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "clinic.duckdb")
        fill(store, sessions, [(c, n, k, code, i, r) for c, n, k, code, i, r in themes])
        got = pervasiveness(store, catalog, denominator=denominator, scope=SYSTEM)
        store.close()
    keys = ["client_id", "kind", "code"]
    columns = keys + ["sessions_with_code", "sessions_scored", "pervasiveness", "mean_intensity"]
    if not themes:
        assert got.is_empty()
        return
    expected = reference_pervasiveness(sessions, themes, denominator).select(columns).sort(keys)
    assert_frame_equal(got.select(columns).sort(keys), expected, check_dtypes=False, check_exact=False)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clinic, codings)
def test_the_caseload_pervasiveness_equals_the_mean_over_clients_coded(catalog, rows, coding):
    """The Themes page's per-code summary, aggregated in SQL, against the definition in
    polars: per code, the clients with it, the clients coded for its kind, and the mean
    pervasiveness over those (a coded client without the code counting 0)."""
    sessions = [(c, n, "t1", attended) for c, n, attended in rows]
    themes = {(rows[i % len(rows)][0], rows[i % len(rows)][1], kind, code, rater): intensity
              for i, kind, code, intensity, rater in coding}
    themes = [(*key[:4], intensity, key[4]) for key, intensity in themes.items()]
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "clinic.duckdb")
        fill(store, sessions, themes)
        got = caseload_pervasiveness(store, catalog, scope=SYSTEM)
        store.close()
    if not themes:
        assert got.is_empty()
        return
    per_client = reference_pervasiveness(sessions, themes, "coded")
    coded = per_client.group_by("kind").agg(pl.col("client_id").n_unique().alias("clients_coded"))
    expected = (per_client.group_by("kind", "code").agg(pl.len().alias("clients"), pl.col("pervasiveness").sum()
                                                        .alias("total"))
                .join(coded, on="kind").with_columns((pl.col("total") / pl.col("clients_coded")).alias("mean")))
    columns = ["kind", "code", "clients", "clients_coded", "total", "mean"]
    assert_frame_equal(got.select(columns).sort("kind", "code"), expected.select(columns).sort("kind", "code"),
                       check_dtypes=False, check_exact=False)


def test_a_pervasive_code_reaches_the_share_and_the_sessions_inclusively(store, catalog):
    # c1: four attended sessions, a fifth missed; "hostile" in 2 of them (a half), "disengaged"
    # in 1, three sessions coded for countertransference.
    fill(store, [("c1", n, "t1", n != 5) for n in range(1, 6)],
         [("c1", 1, "countertransference", "hostile"), ("c1", 3, "countertransference", "hostile"),
          ("c1", 2, "countertransference", "disengaged"), ("c1", 2, "transference", "mistrustful")])
    got = pervasive_codes(store, catalog, scope=SYSTEM, kinds=["countertransference"],
                          codes=["hostile", "disengaged"], min_share=0.5, min_sessions=2)
    assert got.select("code", "sessions_with_code", "sessions_scored", "pervasiveness", "sessions_coded",
                      "share_coded", "last_session").rows() == [("hostile", 2, 4, 0.5, 3, 2 / 3, 3)]
    assert pervasive_codes(store, catalog, scope=SYSTEM, kinds=["countertransference"], codes=["hostile"],
                           min_share=0.5, min_sessions=3).is_empty()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clinic, codings, st.sampled_from([0.2, 0.5, 1.0]), st.integers(1, 3))
def test_the_pervasive_codes_are_the_attended_shares_that_pass_with_the_coded_share_beside(catalog, rows, coding,
                                                                                           share, least):
    """The triage's countertransference in one query: exactly the rows of the two
    denominators' frames, joined and filtered as the triage once did in polars."""
    sessions = [(c, n, "t1", attended) for c, n, attended in rows]
    themes = {(rows[i % len(rows)][0], rows[i % len(rows)][1], kind, code, rater): intensity
              for i, kind, code, intensity, rater in coding}
    themes = [(*key[:4], intensity, key[4]) for key, intensity in themes.items()]
    kw = dict(kinds=["countertransference"], codes=["hostile", "disengaged"])
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "clinic.duckdb")
        fill(store, sessions, themes)
        got = pervasive_codes(store, catalog, scope=SYSTEM, min_share=share, min_sessions=least, **kw)
        attended = pervasiveness(store, catalog, scope=SYSTEM, denominator="attended", therapist=False, **kw)
        coded = pervasiveness(store, catalog, scope=SYSTEM, therapist=False, **kw).select(
            "client_id", "code", pl.col("sessions_scored").alias("sessions_coded"),
            pl.col("pervasiveness").alias("share_coded"))
        store.close()
    expected = attended.join(coded, on=["client_id", "code"], how="left").filter(
        (pl.col("pervasiveness") >= share) & (pl.col("sessions_with_code") >= least))
    keys = ["client_id", "code"]
    assert_frame_equal(got.sort(keys), expected.sort(keys), check_exact=True)
