"""Alliance ruptures and repair from scores, coded rupture events, client-therapist discrepancy.

Each test builds a small clinic in a real DuckDB file. The rules under test are in
core/analytics/ruptures.py: a drop from the previous scored session, the SD of the
client's whole series, repair = back to the pre-rupture score within the window
(counted in session numbers).
"""


import numpy as np
import polars as pl
import pytest

from core.access import Scope
from core.analytics.ruptures import (
    RuptureParams,
    alliance_discrepancy,
    coded_events,
    detect_ruptures,
)
from core.store import upsert
from tests.conftest import SYSTEM

SD2 = RuptureParams("sd", 2.0, 4, 3)


def add_series(store, client, scores, *, therapist="t1", instrument="SRS", scale="total", rater="client",
               unattended=()):
    """Sessions with their scores ({session: score}; None = attended, no score) for one client."""
    numbers = sorted(set(scores) | set(unattended))
    sessions = pl.DataFrame({"client_id": client, "session_number": numbers, "therapist_id": therapist,
                             "days_since_intake": [7 * n for n in numbers], "modality": "individual",
                             "attended": [n not in unattended for n in numbers]})
    scored = {n: s for n, s in scores.items() if s is not None}
    ratings = pl.DataFrame({"client_id": client, "session_number": list(scored), "instrument": instrument,
                            "scale": scale, "rater": rater, "score": [float(s) for s in scored.values()]},
                           schema_overrides={"session_number": pl.Int64})
    with store.publish() as cur:
        upsert(cur, "sessions", sessions, 1)
        if ratings.height:
            upsert(cur, "ratings", ratings, 1)


def numbered(*scores, start=1):
    return {start + i: s for i, s in enumerate(scores)}


def add_events(store, rows, therapist="t1"):
    events = pl.DataFrame(rows, schema={"client_id": pl.String, "session_number": pl.Int64, "event": pl.String,
                                        "rater": pl.String, "note": pl.String}, orient="row")
    sessions = events.select("client_id", "session_number").unique().with_columns(
        therapist_id=pl.lit(therapist), days_since_intake=pl.lit(0), modality=pl.lit("individual"),
        attended=pl.lit(True))
    with store.publish() as cur:
        upsert(cur, "sessions", sessions, 1)
        upsert(cur, "events", events, 1)


# --------------------------------------------------------------------------- detection


def test_a_v_shaped_drop_is_found_with_its_repair(store, catalog):
    scores = [38, 39, 38, 30, 34, 39, 38]
    add_series(store, "c1", numbered(*scores))
    found = detect_ruptures(store, catalog, SD2, scope=SYSTEM)
    assert found.height == 1
    row = found.row(0, named=True)
    assert (row["session"], row["previous_session"], row["previous_score"], row["score"]) == (4, 3, 38, 30)
    assert row["drop"] == 8
    # 2 SD of the scores before the drop is 1.15 points: the SRS's minimum drop, 4, decides.
    assert row["threshold_points"] == max(2 * np.std(scores[:3], ddof=1), 4)
    assert row["repaired_at"] == 6  # 39 >= 38, the pre-rupture score; session 5's 34 is not enough
    assert row["repair"] == "repaired"


def test_a_return_exactly_to_the_pre_rupture_score_is_a_repair(store, catalog):
    add_series(store, "c1", numbered(38, 39, 38, 30, 38, 38))
    assert detect_ruptures(store, catalog, SD2, scope=SYSTEM)["repaired_at"].to_list() == [5]


def test_a_drop_without_repair_has_no_repair_session(store, catalog):
    add_series(store, "c1", numbered(38, 39, 38, 30, 31, 32, 33, 34))
    row = detect_ruptures(store, catalog, SD2, scope=SYSTEM).row(0, named=True)
    assert row["session"] == 4
    assert row["repaired_at"] is None
    assert row["repair"] == "not repaired"


def test_a_drop_whose_window_has_not_run_out_is_pending(store, catalog):
    add_series(store, "c1", numbered(38, 39, 38, 39, 38, 30))
    row = detect_ruptures(store, catalog, SD2, scope=SYSTEM).row(0, named=True)
    assert (row["session"], row["repaired_at"], row["repair"]) == (6, None, "pending")


def test_a_series_shorter_than_min_series_is_not_examined(store, catalog):
    add_series(store, "c1", numbered(38, 30, 38))
    assert detect_ruptures(store, catalog, RuptureParams("points", 2, 4, 3), scope=SYSTEM).is_empty()
    assert detect_ruptures(store, catalog, RuptureParams("points", 2, 3, 3), scope=SYSTEM)["session"].to_list() == [2]


def test_a_series_without_variation_is_not_examined(store, catalog):
    add_series(store, "c1", numbered(36, 36, 36, 36, 36))
    assert detect_ruptures(store, catalog, SD2, scope=SYSTEM).is_empty()


def test_a_drop_of_exactly_the_threshold_counts_and_just_below_does_not(store, catalog):
    add_series(store, "exact", numbered(38, 35, 38, 38))
    add_series(store, "below", numbered(38, 35.01, 38, 38))
    found = detect_ruptures(store, catalog, RuptureParams("points", 3, 4, 3), scope=SYSTEM)
    assert found["client_id"].to_list() == ["exact"]


def test_a_decimal_drop_equal_to_the_threshold_counts_despite_binary_rounding(store, catalog):
    # 36.3 - 34.1 is 2.1999999999999993 in floating point.
    add_series(store, "c1", numbered(36.3, 34.1, 36.3, 36.3))
    assert detect_ruptures(store, catalog, RuptureParams("points", 2.2, 4, 3), scope=SYSTEM).height == 1


def test_the_sd_threshold_is_the_sd_of_the_clients_scores_before_the_drop(store, catalog):
    # Same drop of 4 points; the calm client's SD makes it a rupture, the volatile one's not.
    calm, volatile = [38, 38, 37, 33, 37, 38], [38, 30, 38, 34, 30, 38]
    add_series(store, "calm", numbered(*calm))
    add_series(store, "volatile", numbered(*volatile))
    found = detect_ruptures(store, catalog, SD2, scope=SYSTEM)
    assert found.filter(pl.col("session") == 4)["client_id"].to_list() == ["calm"]
    assert 4 < 2 * np.std(volatile[:3], ddof=1)


def test_method_points_flags_a_fixed_drop(store, catalog):
    add_series(store, "c1", numbered(38, 38, 33, 38, 37))
    found = detect_ruptures(store, catalog, RuptureParams("points", 5, 4, 3), scope=SYSTEM)
    assert found.select("session", "drop", "threshold_points", "repaired_at", "method").rows() == \
        [(3, 5.0, 5.0, 4, "points")]


def test_method_cutoff_flags_a_crossing_to_the_concern_side(store, catalog):
    # SRS: clinical = "lt" 36, so 36 itself is not a concern; 35.5 is.
    add_series(store, "c1", numbered(38, 37, 35, 36, 35.5, 38))
    add_series(store, "on_the_line", numbered(38, 36, 38, 36))
    found = detect_ruptures(store, catalog, RuptureParams("cutoff", 1, 4, 3), scope=SYSTEM)
    # Repair is back to the pre-rupture score (37 before session 3), not merely above the cutoff.
    assert found.select("client_id", "session", "repaired_at").rows() == [("c1", 3, 6), ("c1", 5, 6)]
    assert found["threshold_points"].is_null().all()
    assert "below the SRS cutoff 36" in found["params"][0]


def test_method_cutoff_skips_instruments_without_a_cutoff(store, catalog):
    add_series(store, "c1", numbered(50, 50, 20, 50), instrument="WAI-SR")
    assert detect_ruptures(store, catalog, RuptureParams("cutoff", 1, 4, 3), scope=SYSTEM).is_empty()


def test_a_rise_is_the_drop_when_lower_alliance_scores_are_better(store, catalog):
    reverse = {**catalog.instruments, "SRS": catalog.instruments["SRS"].model_copy(update={"direction": "lower"})}
    flipped = catalog.model_copy(update={"instruments": reverse})
    add_series(store, "c1", numbered(10, 10, 16, 12, 10))
    assert detect_ruptures(store, catalog, RuptureParams("points", 5, 4, 3), scope=SYSTEM).is_empty()
    found = detect_ruptures(store, flipped, RuptureParams("points", 5, 4, 3), scope=SYSTEM)
    assert found.select("session", "drop", "repaired_at").rows() == [(3, 6.0, 5)]


def test_each_rater_and_scale_is_its_own_series(store, catalog):
    add_series(store, "c1", numbered(50, 50, 40, 50), instrument="WAI-SR", rater="client")
    add_series(store, "c1", numbered(50, 50, 50, 50), instrument="WAI-SR", rater="therapist")
    add_series(store, "c1", numbered(9, 9, 9, 4), instrument="SRS", scale="relationship")
    found = detect_ruptures(store, catalog, RuptureParams("points", 5, 4, 3), scope=SYSTEM)
    assert found.select("instrument", "scale", "rater", "session").rows() == \
        [("SRS", "relationship", "client", 4), ("WAI-SR", "total", "client", 3)]


def test_the_scope_excludes_other_therapists_clients(store, catalog):
    add_series(store, "mine", numbered(38, 39, 38, 30, 38), therapist="t1")
    add_series(store, "theirs", numbered(38, 39, 38, 30, 38), therapist="t2")
    assert detect_ruptures(store, catalog, SD2, scope=Scope.therapists({"t1"}))["client_id"].to_list() == ["mine"]
    assert detect_ruptures(store, catalog, SD2, scope=SYSTEM)["client_id"].to_list() == ["mine", "theirs"]
    assert detect_ruptures(store, catalog, SD2, clients=["theirs"], scope=SYSTEM)["client_id"].to_list() == ["theirs"]


def test_a_missing_session_is_a_gap_in_the_series_and_the_window_counts_scores(store, catalog):
    # Sessions 4, 6 and 7 were missed. The drop is measured from session 3 (the previous
    # score); the window after the rupture at 5 is the series' next 3 scores, however
    # many sessions were missed between them.
    add_series(store, "back", {1: 38, 2: 39, 3: 38, 5: 30, 8: 38, 9: 38}, unattended=(4, 6, 7))
    add_series(store, "later", {1: 38, 2: 39, 3: 38, 5: 30, 9: 31, 10: 32, 11: 38}, unattended=(4, 6, 7, 8))
    add_series(store, "too_late", {1: 38, 2: 39, 3: 38, 5: 30, 9: 31, 10: 32, 11: 33, 12: 38})
    found = detect_ruptures(store, catalog, SD2, scope=SYSTEM)
    assert found.select("client_id", "session", "previous_session", "repaired_at").rows() == \
        [("back", 5, 3, 8), ("later", 5, 3, 11), ("too_late", 5, 3, None)]


def test_a_score_of_an_unattended_session_is_left_out(store, catalog):
    add_series(store, "c1", numbered(38, 39, 38, 30, 38, 38))
    with store.publish() as cur:
        cur.execute("UPDATE sessions SET attended = false WHERE session_number = 4")
    assert detect_ruptures(store, catalog, RuptureParams("points", 5, 4, 3), scope=SYSTEM).is_empty()


def test_every_finding_carries_its_method_and_parameters(store, catalog):
    add_series(store, "c1", numbered(38, 39, 38, 30, 38))
    params = RuptureParams.from_catalog(catalog)
    row = detect_ruptures(store, catalog, scope=SYSTEM).row(0, named=True)
    assert row["method"] == params.method == "sd"
    assert row["params"] == params.describe(catalog.instruments["SRS"]) == (
        "drop >= 2 SD of the client's scores before it from the previous session and >= SRS's minimum drop; "
        "series of >= 4 scores; repair = back to the pre-rupture level within the next 3 ratings")


def test_parameters_come_from_the_catalogs_ruptures_section(catalog):
    r = catalog.ruptures
    assert RuptureParams.from_catalog(catalog) == RuptureParams(r.method, r.threshold, r.min_series, r.repair_window)


def test_an_unknown_method_is_refused_with_a_sentence():
    with pytest.raises(ValueError, match="must be one of sd, points, cutoff"):
        RuptureParams("mean", 2, 4, 3)


def test_an_empty_store_gives_an_empty_frame_with_the_columns(store, catalog):
    found = detect_ruptures(store, catalog, scope=SYSTEM)
    assert found.is_empty() and "repaired_at" in found.columns


def _naive_ruptures(series: dict, params: RuptureParams, latest: dict, min_drop: float = 4) -> list[tuple]:
    """The rules written out plainly, one client at a time, to check the bulk query against."""
    found = []
    for client, scores in series.items():
        numbers = sorted(scores)
        values = [scores[n] for n in numbers]
        if len(values) < params.min_series:
            continue
        for k in range(max(params.min_series - 1, 2), len(numbers)):
            # The spread of the scores before the drop; at least the SRS's minimum drop.
            needed = max(params.threshold * np.std(values[:k], ddof=1), min_drop)
            drop = values[k - 1] - values[k]
            if drop < needed - 1e-9:
                continue
            window = numbers[k + 1:k + 1 + params.repair_window]  # the next scores, not session numbers
            back = next((n for n in window if scores[n] >= values[k - 1]), None)
            interval = max(int((numbers[-1] - numbers[0]) / (len(numbers) - 1) + 0.5), 1)  # half up, as SQL
            status = ("repaired" if back is not None else
                      "pending" if len(window) < params.repair_window
                      and latest[client] < numbers[k] + params.repair_window * interval else "not repaired")
            found.append((client, numbers[k], numbers[k - 1], back, status))
    return found


def test_the_bulk_query_agrees_with_the_rules_written_out_client_by_client(store, catalog):
    rng = np.random.default_rng(11)
    series, latest, sessions, ratings = {}, {}, [], []
    for i in range(300):
        client = f"c{i:03d}"
        booked = np.sort(rng.choice(np.arange(0, 25), size=rng.integers(2, 16), replace=False))
        scored = booked[rng.random(booked.size) < 0.85]
        series[client] = {int(n): float(np.clip(rng.normal(34, 3) if rng.random() < 0.9 else rng.normal(26, 3), 0, 40))
                          for n in scored}
        latest[client] = int(booked.max())
        sessions += [(client, int(n), "t1", 7 * int(n), "individual", bool(n in scored)) for n in booked]
        ratings += [(client, n, "SRS", "total", "client", v) for n, v in series[client].items()]
    with store.publish() as cur:
        upsert(cur, "sessions", pl.DataFrame(sessions, schema=["client_id", "session_number", "therapist_id",
                                                               "days_since_intake", "modality", "attended"],
                                             orient="row"), 1)
        upsert(cur, "ratings", pl.DataFrame(ratings, schema=["client_id", "session_number", "instrument", "scale",
                                                             "rater", "score"], orient="row"), 1)
    for params in (SD2, RuptureParams("sd", 1.0, 3, 2)):
        found = detect_ruptures(store, catalog, params, scope=SYSTEM)
        expected = _naive_ruptures(series, params, latest)
        assert len(expected) > 20
        assert found.select("client_id", "session", "previous_session", "repaired_at", "repair").rows() == expected


# --------------------------------------------------------------------------- coded events


def test_a_coded_rupture_with_a_repair_within_the_window_is_repaired(store):
    add_events(store, [("c1", 2, "rupture_withdrawal", "observer", None),
                       ("c1", 4, "repair", "observer", "talked about it")])
    found = coded_events(store, params=SD2, scope=SYSTEM)
    assert found.select("session_number", "event", "is_rupture", "repaired_at", "repaired").rows() == \
        [(2, "rupture_withdrawal", True, 4, True), (4, "repair", False, None, None)]


def test_a_repair_in_the_same_session_counts(store):
    add_events(store, [("c1", 3, "rupture_confrontation", "therapist", None), ("c1", 3, "repair", "therapist", None)])
    assert coded_events(store, params=SD2, scope=SYSTEM).filter("is_rupture")["repaired_at"].to_list() == [3]


def test_a_repair_after_the_window_does_not_count(store):
    add_events(store, [("c1", 2, "rupture_withdrawal", "observer", None), ("c1", 6, "repair", "observer", None),
                       ("c2", 2, "repair", "observer", None), ("c2", 3, "rupture_confrontation", "observer", None)])
    ruptures = coded_events(store, params=SD2, scope=SYSTEM).filter("is_rupture")
    assert ruptures.select("client_id", "repaired").rows() == [("c1", False), ("c2", False)]


def test_coded_events_respect_the_scope(store):
    add_events(store, [("c1", 1, "rupture_withdrawal", "observer", None)], therapist="t1")
    add_events(store, [("c2", 1, "rupture_withdrawal", "observer", None)], therapist="t2")
    assert coded_events(store, Scope.therapists({"t2"}), params=SD2)["client_id"].to_list() == ["c2"]


# --------------------------------------------------------------------------- discrepancy


def test_a_client_therapist_discrepancy_of_a_fifth_of_the_range_is_flagged(store, catalog):
    # WAI-SR total 12-60: a fifth of the range is 9.6 points.
    add_series(store, "c1", {1: 40, 2: 45, 3: 40.4}, instrument="WAI-SR", rater="client")
    add_series(store, "c1", {1: 50, 2: 50, 3: 50}, instrument="WAI-SR", rater="therapist")
    found = alliance_discrepancy(store, catalog, scope=SYSTEM)
    assert found.select("session_number", "client_score", "therapist_score", "difference", "flagged").rows() == \
        [(1, 40.0, 50.0, -10.0, True), (2, 45.0, 50.0, -5.0, False), (3, 40.4, 50.0, pytest.approx(-9.6), True)]
    assert found["threshold_points"].unique().to_list() == [pytest.approx(9.6)]
    assert "20% of the scale range" in found["params"][0]


def test_a_session_rated_by_only_one_side_has_no_discrepancy(store, catalog):
    add_series(store, "c1", {1: 40, 2: 45}, instrument="WAI-SR", rater="client")
    add_series(store, "c1", {2: 50}, instrument="WAI-SR", rater="therapist")
    assert alliance_discrepancy(store, catalog, scope=SYSTEM)["session_number"].to_list() == [2]


def test_the_discrepancy_fraction_is_a_parameter(store, catalog):
    add_series(store, "c1", {1: 45}, instrument="WAI-SR", rater="client")
    add_series(store, "c1", {1: 50}, instrument="WAI-SR", rater="therapist")
    assert alliance_discrepancy(store, catalog, discrepancy_fraction=0.1, scope=SYSTEM)["flagged"].to_list() == [True]
    assert alliance_discrepancy(store, catalog, scope=SYSTEM)["flagged"].to_list() == [False]


def test_scales_limit_the_series_looked_at(store, catalog):
    add_series(store, "c1", numbered(38, 38, 39, 38, 38, 39, 38, 26, 27))
    add_series(store, "c1", numbered(9, 9, 10, 9, 9, 10, 9, 5, 6), scale="goals")
    every = detect_ruptures(store, catalog, SD2, scope=SYSTEM)
    assert set(every["scale"]) == {"total", "goals"}
    totals = detect_ruptures(store, catalog, SD2, scales=["total"], scope=SYSTEM)
    assert set(totals["scale"]) == {"total"}
    assert totals.equals(every.filter(pl.col("scale") == "total"))


def test_discrepancy_scales_limit_what_is_compared(store, catalog):
    for rater, total, bond in (("client", 30, 10), ("therapist", 50, 18)):
        add_series(store, "c1", {1: total}, instrument="WAI-SR", rater=rater)
        add_series(store, "c1", {1: bond}, instrument="WAI-SR", scale="bond", rater=rater)
    every = alliance_discrepancy(store, catalog, scope=SYSTEM)
    assert set(every["scale"]) == {"total", "bond"}
    totals = alliance_discrepancy(store, catalog, scales=["total"], scope=SYSTEM)
    assert totals.equals(every.filter(pl.col("scale") == "total"))


def test_recent_keeps_the_late_ruptures_exactly_as_found_on_the_whole_series(store, catalog):
    add_series(store, "c1", numbered(38, 38, 39, 26, 38, 39, 38, 38, 39, 38, 25, 26))
    every = detect_ruptures(store, catalog, SD2, scope=SYSTEM)
    assert every["session"].to_list() == [4, 11]
    late = detect_ruptures(store, catalog, SD2, recent=4, scope=SYSTEM)
    assert late.equals(every.filter(pl.col("session") > 12 - 4))


def _clinic_with_unattended_and_unknown_sessions(store) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A synthetic clinic with unattended sessions that have scores, unknown attendance,
    and scores with no session row: (sessions, ratings) as stored."""
    from devtools.synth import generate_synthetic_frames
    frames = generate_synthetic_frames(3_000, seed=11)
    rng = np.random.default_rng(5)
    sessions = frames["sessions"]
    draw = rng.random(sessions.height)
    sessions = sessions.with_columns(attended=pl.when(pl.lit(draw) < 0.1).then(False)
                                     .when(pl.lit(draw) < 0.15).then(None).otherwise(pl.col("attended")))
    sessions = sessions.filter(pl.lit(rng.random(sessions.height)) > 0.05)
    with store.publish() as cur:
        upsert(cur, "sessions", sessions, 1)
        upsert(cur, "ratings", frames["ratings"], 1)
    return sessions, frames["ratings"]


def test_the_unattended_filter_keeps_the_same_ratings_as_an_anti_join_on_the_session_key(store):
    # NOT_ATTENDED joins on the client and looks the session up in a list (faster); it
    # must leave exactly the ratings that the plain anti-join on (client, session) leaves.
    from core.analytics.sql import NOT_ATTENDED
    sessions, ratings = _clinic_with_unattended_and_unknown_sessions(store)
    plain = ("ANTI JOIN (SELECT client_id, session_number FROM sessions WHERE attended = false) u "
             "ON u.client_id = r.client_id AND u.session_number = r.session_number")
    kept = {}
    for name, clause in (("plain", plain), ("list", NOT_ATTENDED)):
        kept[name] = store.query(f"SELECT r.* FROM ratings r {clause} ORDER BY ALL", scope=SYSTEM)
    assert kept["list"].height < ratings.height
    assert kept["list"].equals(kept["plain"])
    scoped = Scope.therapists(sessions["therapist_id"].unique().sort().head(3).to_list())
    assert store.query(f"SELECT r.* FROM ratings r {NOT_ATTENDED} ORDER BY ALL", scope=scoped).equals(
        store.query(f"SELECT r.* FROM ratings r {plain} ORDER BY ALL", scope=scoped))


def test_the_recent_and_unattended_filter_in_one_join_keeps_the_ratings_both_filters_keep(store):
    # recent_attended_join does recent_join and NOT_ATTENDED in one join on the client
    # (faster); it must leave exactly the ratings the two of them leave, clients whose
    # sessions are all attended, scores with no session row and unknown attendance included.
    from core.analytics.sql import NOT_ATTENDED, recent_attended_join, recent_join
    sessions, ratings = _clinic_with_unattended_and_unknown_sessions(store)
    bind: dict = {}
    both = f"SELECT r.* FROM ratings r {recent_join('r', 4, bind)} {NOT_ATTENDED} ORDER BY ALL"
    one = f"SELECT r.* FROM ratings r {recent_attended_join('r', 4, bind)} ORDER BY ALL"
    scoped = Scope.therapists(sessions["therapist_id"].unique().sort().head(3).to_list())
    for scope in (SYSTEM, scoped):
        kept = store.query(one, bind, scope=scope)
        assert 0 < kept.height < ratings.height
        assert kept.equals(store.query(both, bind, scope=scope))


@pytest.mark.parametrize("params", [SD2, RuptureParams("points", 5, 4, 3), RuptureParams("cutoff", 0, 4, 2)])
def test_recent_finds_what_the_whole_series_finds_in_its_last_sessions(store, catalog, params):
    # With `recent`, the lists hold only each series' last scores (faster); on a clinic with
    # gaps in its series the findings must be those of the whole series in that window.
    from devtools.synth import generate_synthetic_frames
    frames = generate_synthetic_frames(4_000, seed=3)
    ratings = frames["ratings"].filter(pl.lit(np.random.default_rng(2).random(frames["ratings"].height)) > 0.15)
    with store.publish() as cur:
        upsert(cur, "sessions", frames["sessions"], 1)
        upsert(cur, "ratings", ratings, 1)
    every = detect_ruptures(store, catalog, params, scope=SYSTEM)
    last = ratings.group_by("client_id", "instrument", "scale", "rater").agg(last=pl.col("session_number").max())
    assert every.height > 20
    for recent in (1, 3, 6):
        expected = (every.join(last, on=["client_id", "instrument", "scale", "rater"], maintain_order="left")
                    .filter(pl.col("session") > pl.col("last") - recent).drop("last"))
        found = detect_ruptures(store, catalog, params, recent=recent, scope=SYSTEM)
        text = pl.col("params").cast(pl.String)
        assert found.drop("threshold_points").with_columns(text).equals(
            expected.drop("threshold_points").with_columns(text))
        assert ((found["threshold_points"] - expected["threshold_points"]).abs().fill_null(0) < 1e-9).all()


# --------------------------------------------------------------------------- issue 14: reference spread, minimum drop, occasions


def test_a_sustained_step_drop_is_a_rupture(store, catalog):
    # SRS 38 x5 then 30 x7: the SD of the whole series (4.17, 2 SD = 8.3) includes the
    # drop itself, so the fall of 8 was never flagged. The spread before the drop is 0,
    # so the SRS's minimum drop (catalog, 4 points) decides: 8 >= 4.
    for step in (5, 6, 7):
        add_series(store, f"step{step}", numbered(*([38] * step + [30] * (12 - step))))
    found = detect_ruptures(store, catalog, SD2, scope=SYSTEM)
    assert found.select("client_id", "session", "threshold_points", "repair").rows() == [
        (f"step{step}", step + 1, 4.0, "not repaired") for step in (5, 6, 7)]


def test_the_reference_spread_is_the_sd_of_the_scores_before_the_drop(store, catalog):
    scores = [38, 34, 39, 33, 38, 27, 30]
    add_series(store, "c1", numbered(*scores))
    row = detect_ruptures(store, catalog, SD2, scope=SYSTEM).filter(pl.col("session") == 6).row(0, named=True)
    assert row["threshold_points"] == pytest.approx(2 * np.std(scores[:5], ddof=1))  # 5.41 < drop 11


def test_a_one_point_wai_sr_fall_is_no_rupture(store, catalog):
    # A calm WAI-SR series (SD 0.41) made a 1-point fall "2 SD" (demo cases c006, c058).
    add_series(store, "c1", numbered(43, 43, 43, 43, 43, 42), instrument="WAI-SR")
    assert detect_ruptures(store, catalog, SD2, scope=SYSTEM).is_empty()


def test_the_repair_window_counts_the_instruments_rating_occasions(store, catalog):
    # The WAI-SR rated every 4 sessions: back at the next occasion, 4 sessions later.
    add_series(store, "c1", {4: 48, 8: 48, 12: 49, 16: 48, 20: 38, 24: 48},
               instrument="WAI-SR")
    row = detect_ruptures(store, catalog, SD2, scope=SYSTEM).row(0, named=True)
    assert (row["session"], row["repaired_at"], row["repair"]) == (20, 24, "repaired")


def test_a_minimum_drop_below_the_reliable_change_is_refused(tmp_path):
    from core.catalog import CatalogError, load_catalog
    extra = tmp_path / "clinic.toml"
    extra.write_text("[instruments.ORS]\nrupture_min_drop = 2\n")
    with pytest.raises(CatalogError, match="smaller than the reliable change 5"):
        load_catalog(extra)
