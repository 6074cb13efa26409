"""Not on track: the clinic's own expected change from intake, and each session's colour.

The percentile rule is checked against numpy on the same data; the colour rules
(core/analytics/expected.py) on clinics built so the percentiles are known by hand.
"""


import numpy as np
import polars as pl
import pytest

from core.access import Scope
from core.analytics.expected import (
    POOLED,
    expected_bands,
    expected_model,
    latest_colour,
    severity_bands,
    track_colours,
)
from core.store import Store, upsert
from tests.conftest import SYSTEM

CATALOG_PHQ_BANDS = [(0, "minimal"), (5, "mild"), (10, "moderate"), (15, "moderately severe"), (20, "severe")]


def add_outcomes(store, series):
    """series: (client_id, therapist_id, instrument, {session: score}) tuples, loaded in one go."""
    sessions, ratings = [], []
    for client, therapist, instrument, scores in series:
        for number, score in scores.items():
            sessions.append((client, number, therapist, 7 * number, "individual", True))
            ratings.append((client, number, instrument, "total", "client", float(score)))
    sessions = pl.DataFrame(sessions, schema=["client_id", "session_number", "therapist_id", "days_since_intake",
                                              "modality", "attended"], orient="row").unique(["client_id",
                                                                                             "session_number"])
    ratings = pl.DataFrame(ratings, schema=["client_id", "session_number", "instrument", "scale", "rater", "score"],
                           orient="row")
    with store.publish() as cur:
        upsert(cur, "sessions", sessions, 1)
        upsert(cur, "ratings", ratings, 1)


def peers(n, instrument, intake, improvement_step, therapist="peer", sign=-1, prefix="p"):
    """n clients with the same intake whose improvement at session 1 is 0, step, 2*step, ..."""
    return [(f"{prefix}{i:03d}", therapist, instrument, {0: intake, 1: intake + sign * improvement_step * i})
            for i in range(n)]


# --------------------------------------------------------------------------- the reference


def test_percentiles_equal_numpys_on_the_same_data(store, catalog):
    rng = np.random.default_rng(3)
    n, sessions = 300, 6
    intake = rng.integers(3, 27, size=n)
    slope = rng.normal(1.2, 1.0, size=n)
    series = []
    for i in range(n):
        scores = {s: int(np.clip(round(intake[i] - slope[i] * s + rng.normal(0, 2)), 0, 27))
                  for s in range(1, sessions)}
        series.append((f"c{i:03d}", "t1", "PHQ-9", {0: int(intake[i]), **scores}))
    add_outcomes(store, series)

    bands = expected_bands(store, catalog, scope=SYSTEM).filter(pl.col("basis") == "band")
    assert bands.height > 10
    edges = [e for e, _ in CATALOG_PHQ_BANDS]
    names = [b for _, b in CATALOG_PHQ_BANDS]
    for row in bands.iter_rows(named=True):
        changes = [scores[row["session_number"]] - scores[0] for _, _, _, scores in series
                   if names[np.searchsorted(edges, scores[0], side="right") - 1] == row["band"]]
        improvement = -np.array(changes, dtype=float)  # lower is better on the PHQ-9
        assert row["n"] == len(changes)
        assert row["expected"] == pytest.approx(-np.percentile(improvement, 50))
        assert row["lower"] == pytest.approx(-np.percentile(improvement, 25))
        assert row["floor"] == pytest.approx(-np.percentile(improvement, 10))


def test_the_method_says_how_each_band_was_made(store, catalog):
    add_outcomes(store, peers(40, "PHQ-9", 24, 0.5))
    row = expected_bands(store, catalog, scope=SYSTEM).filter(pl.col("band") == "severe").row(0, named=True)
    assert row["basis"] == "band"
    assert row["method"] == ("median, 25th and 10th percentiles of change from intake among 40 clients with "
                             "severe intake PHQ-9 (>= 20) at session 1")


def test_a_thin_cell_falls_back_to_the_pooled_bands_and_then_to_grey(store, catalog):
    moderate = [(f"m{i:02d}", "t1", "PHQ-9", {0: 12, 1: 11, 2: 10, **({3: 9} if i < 8 else {})}) for i in range(30)]
    severe = [(f"s{i:02d}", "t1", "PHQ-9", {0: 22, 1: 20, 2: 18}) for i in range(5)]
    add_outcomes(store, moderate + severe)
    bands = expected_bands(store, catalog, min_sample=20, scope=SYSTEM)
    cell = {(r["band"], r["session_number"]): r for r in bands.iter_rows(named=True)}
    assert (cell["moderate", 2]["basis"], cell["moderate", 2]["n"]) == ("band", 30)
    assert (cell["severe", 2]["basis"], cell["severe", 2]["n"]) == ("pooled", 35)
    assert cell["severe", 2]["expected"] == cell[POOLED, 2]["expected"]
    assert cell["severe", 2]["method"].startswith("pooled: all intake bands;")
    assert "only 5 with severe intake PHQ-9" in cell["severe", 2]["method"]
    assert (cell["moderate", 3]["basis"], cell["moderate", 3]["n"]) == ("grey", 8)
    assert cell["moderate", 3]["expected"] is None
    assert cell["moderate", 3]["method"].startswith("grey: fewer than 20 clients")
    assert cell[POOLED, 3]["basis"] == "grey"


def test_instruments_without_catalog_bands_get_intake_tertiles(store, catalog):
    intakes = list(range(10, 40))
    add_outcomes(store, [(f"c{i:02d}", "t1", "ORS", {0: v, 1: v + 2}) for i, v in enumerate(intakes)])
    ors = severity_bands(store, catalog, scope=SYSTEM).filter(pl.col("instrument") == "ORS")
    q1, q2 = np.quantile(intakes, [1 / 3, 2 / 3])
    assert ors["band"].to_list() == ["lowest-third", "middle-third", "highest-third"]
    assert ors["band_from"].to_list()[1:] == [pytest.approx(q1), pytest.approx(q2)]
    assert ors["basis"].unique().to_list() == ["tertiles"]
    phq = severity_bands(store, catalog, scope=SYSTEM).filter(pl.col("instrument") == "PHQ-9")
    assert phq.select("band_from", "band").rows() == [(float(e), b) for e, b in CATALOG_PHQ_BANDS]


def test_percentiles_are_a_parameter(store, catalog):
    add_outcomes(store, peers(40, "PHQ-9", 24, 0.5))
    row = expected_bands(store, catalog, percentiles=(0.3, 0.05), scope=SYSTEM).filter(pl.col("band") == "severe").row(0, named=True)
    improvement = 0.5 * np.arange(40)
    assert row["lower"] == pytest.approx(-np.percentile(improvement, 30))
    assert row["floor"] == pytest.approx(-np.percentile(improvement, 5))
    assert "30th and 5th percentiles" in row["method"]


# --------------------------------------------------------------------------- colours


def test_a_client_far_worse_than_peers_is_red_an_average_one_green(store, catalog):
    # Peers' improvements at session 1: 0, 0.5, ..., 19.5. The clients are outside the
    # reference (another therapist); their band is the fitted quantiles (an intercept-only
    # quantile regression here: one intake, one session), so the sample's order statistics.
    improvement = 0.5 * np.arange(40)
    add_outcomes(store, peers(40, "PHQ-9", 24, 0.5) + [
        ("green", "t2", "PHQ-9", {0: 24, 1: 14}),    # improved 10
        ("orange", "t2", "PHQ-9", {0: 24, 1: 21}),   # improved 3: below the 25th, above the 10th
        ("red", "t2", "PHQ-9", {0: 24, 1: 30})])     # worse by 6
    found = track_colours(store, catalog, Scope.therapists({"t2"}), reference_scope=Scope.therapists({"peer"}))
    at_1 = found.filter(pl.col("session_number") == 1)
    assert dict(at_1.select("client_id", "colour").rows()) == {"green": "green", "orange": "orange", "red": "red"}
    # Within one step of numpy's interpolated percentile (an order statistic of 40 or 39 peers).
    assert abs(-at_1["lower"][0] - np.percentile(improvement, 25)) <= 0.5 + 1e-6
    assert abs(-at_1["floor"][0] - np.percentile(improvement, 10)) <= 0.5 + 1e-6
    assert set(found["client_id"]) == {"green", "orange", "red"}


def test_at_the_lower_percentile_is_green_and_at_the_floor_is_orange(store, catalog):
    add_outcomes(store, peers(40, "ORS", 0, 1, sign=1) + [("probe", "t2", "ORS", {0: 0, 1: 5})])
    scope, ref = Scope.therapists({"t2"}), Scope.therapists({"peer"})
    band = track_colours(store, catalog, scope, reference_scope=ref).filter(pl.col("session_number") == 1)
    lower, floor = band["lower"][0], band["floor"][0]
    add_outcomes(store, [("at_lower", "t2", "ORS", {0: 0, 1: lower}), ("at_floor", "t2", "ORS", {0: 0, 1: floor})])
    found = track_colours(store, catalog, scope, reference_scope=ref, clients=["at_lower", "at_floor"])
    assert dict(found.filter(pl.col("session_number") == 1).select("client_id", "colour").rows()) == \
        {"at_lower": "green", "at_floor": "orange"}


def test_direction_is_respected_for_the_ors_and_the_phq9(store, catalog):
    add_outcomes(store, peers(40, "ORS", 15, 0.5, sign=1, prefix="o") + peers(40, "PHQ-9", 12, 0.25, prefix="q") + [
        ("ors_up", "t2", "ORS", {0: 15, 1: 30}), ("ors_down", "t2", "ORS", {0: 15, 1: 10}),
        ("phq_up", "t2", "PHQ-9", {0: 12, 1: 17}), ("phq_down", "t2", "PHQ-9", {0: 12, 1: 4})])
    found = track_colours(store, catalog, Scope.therapists({"t2"}), reference_scope=Scope.therapists({"peer"}))
    assert dict(found.filter(pl.col("session_number") == 1).select("client_id", "colour").rows()) == \
        {"ors_up": "green", "ors_down": "red", "phq_up": "red", "phq_down": "green"}


def test_the_intake_session_is_grey(store, catalog):
    add_outcomes(store, peers(40, "PHQ-9", 24, 0.5))
    found = track_colours(store, catalog, scope=SYSTEM).filter(pl.col("session_number") == 0)
    assert found["colour"].unique().to_list() == ["grey"]
    assert found["method"].cast(pl.String).unique().to_list() == ["grey: intake, fewer than two scores"]


def test_a_session_without_enough_peers_is_grey(store, catalog):
    add_outcomes(store, peers(40, "PHQ-9", 24, 0.5) + [("late", "t1", "PHQ-9", {0: 24, 1: 20, 9: 10})])
    row = track_colours(store, catalog, clients=["late"], scope=SYSTEM).filter(pl.col("session_number") == 9).row(0, named=True)
    assert row["colour"] == "grey"
    assert row["method"].startswith("grey: beyond 1 sessions after the first score, fewer than 20 clients")


def test_the_reference_is_the_whole_clinic_and_the_scope_only_chooses_whose_colours(store, catalog):
    add_outcomes(store, peers(60, "PHQ-9", 24, 0.5, therapist="t1") + [("mine", "t2", "PHQ-9", {0: 24, 1: 20})])
    mine = track_colours(store, catalog, Scope.therapists({"t2"}))
    assert mine["client_id"].unique().to_list() == ["mine"]
    row = mine.filter(pl.col("session_number") == 1).row(0, named=True)
    # 61 clients: cross-fitted in 2 folds, the band from the half without the client.
    # About the peers' median improvement (a median of half of them, by a hash).
    assert np.percentile(0.5 * np.arange(60), 30) <= -row["expected"] <= np.percentile(0.5 * np.arange(60), 70)
    assert "other clients of the clinic with PHQ-9" in row["method"] and "cross-fitted in 2 folds" in row["method"]


def test_the_latest_colour_is_each_clients_colour_at_the_latest_session(store, catalog):
    add_outcomes(store, peers(40, "PHQ-9", 24, 0.5) + [("c", "t1", "PHQ-9", {0: 24, 1: 20, 2: 30})])
    track = track_colours(store, catalog, clients=["c"], scope=SYSTEM)
    latest = latest_colour(store, catalog, clients=["c"], scope=SYSTEM)
    assert latest.select("client_id", "instrument", "session_number").rows() == [("c", "PHQ-9", 2)]
    assert latest["colour"].to_list() == track.filter(pl.col("session_number") == 2)["colour"].to_list()


def test_an_empty_store_gives_empty_frames(store, catalog):
    assert expected_bands(store, catalog, scope=SYSTEM).is_empty()
    assert track_colours(store, catalog, scope=SYSTEM).is_empty()


def test_wrong_percentiles_are_refused_with_a_sentence(store, catalog):
    with pytest.raises(ValueError, match="0 < floor < lower < 0.5"):
        expected_bands(store, catalog, percentiles=(0.1, 0.25), scope=SYSTEM)


def test_the_reference_is_made_once_per_import(tmp_path, catalog):
    from core.analytics.expected import reference
    from core.importer import import_dataset, load_demo
    from tests.conftest import ROOT
    store = Store(tmp_path / "ref.duckdb")
    load_demo(store)
    first = reference(store, catalog, SYSTEM)
    assert reference(store, catalog, SYSTEM) is first
    import_dataset(ROOT / "data" / "examples" / "messy_export.zip", store, catalog=catalog)
    again = reference(store, catalog, SYSTEM)
    assert again is not first and again[1][0].equals(expected_model(store, catalog, scope=SYSTEM)[0])
    store.close()


def test_the_latest_colours_equal_the_last_rows_of_the_whole_track(store, catalog):
    # latest_colour takes the last score in the same pass as the intake (faster); on a
    # clinic with gaps, unattended sessions and a scope it must equal the whole track's
    # last row per client and instrument.
    from tests.conftest import gappy_clinic
    frames = gappy_clinic(6_000, seed=4, gaps_seed=8, unattended=0.1, dropped=0.2)
    sessions, ratings = frames["sessions"], frames["ratings"]
    with store.publish() as cur:
        upsert(cur, "sessions", sessions, 1)
        upsert(cur, "ratings", ratings, 1)
    scoped = Scope.therapists(sessions["therapist_id"].unique().sort().head(2).to_list())
    for scope in (SYSTEM, scoped):
        track = track_colours(store, catalog, scope)
        last = (track.filter(pl.col("session_number") == pl.col("session_number").max().over("client_id", "instrument"))
                .with_columns(pl.col("method").cast(pl.String)))
        latest = latest_colour(store, catalog, scope).with_columns(pl.col("method").cast(pl.String))
        assert latest.height > 50 and set(latest["colour"]) >= {"green", "orange", "red", "grey"}
        assert latest.equals(last)


# --------------------------------------------------------------------------- issue 14: own baseline, severity, leave-one-out


def _improving_peers(n=30, therapist="peer"):
    """ORS peers with intakes 14-24 at session 1, improving 0.9-1.5 points a session (+- 1)."""
    return [(f"p{i:03d}", therapist, "ORS",
             {s: 14 + (i % 11) + (0.9 + 0.1 * (i % 7)) * (s - 1) + ((i * 7 + s * 3) % 5 - 2) * 0.5
              for s in range(1, 11)})
            for i in range(n)]


def test_a_late_first_score_is_compared_at_the_same_sessions_since_that_baseline(store, catalog):
    # First score at session 6: ORS 20, 23, 25 at sessions 6-8 is a recovery (5 points,
    # across the cutoff 25). Peers had improved about 8 points by session 8 from *their*
    # first score at session 1, but only about 2.4 two sessions after it: the client is
    # ahead of them, not behind.
    add_outcomes(store, _improving_peers() + [("late", "t2", "ORS", {6: 20, 7: 23, 8: 25})])
    latest = latest_colour(store, catalog, clients=["late"], scope=SYSTEM).row(0, named=True)
    assert latest["colour"] == "green"
    assert latest["expected"] == pytest.approx(2.4, abs=1)
    from core.analytics.triage import triage_flags
    codes = set(triage_flags(store, catalog, clients=["late"], scope=SYSTEM)["code"])
    assert not codes & {"behind_expected", "not_on_track"}


def test_a_client_is_left_out_of_their_own_reference(store, catalog):
    # The band of a client in the reference equals the band made without them.
    add_outcomes(store, _improving_peers(30, "t1") + [("x", "t2", "ORS", {1: 20, 2: 5, 3: 2, 4: 1, 5: 0})])
    with_x = track_colours(store, catalog, clients=["x"], scope=SYSTEM)
    without_x = track_colours(store, catalog, clients=["x"], reference_scope=Scope.therapists({"t1"}), scope=SYSTEM)
    columns = ["session_number", "expected", "lower", "floor", "colour"]
    assert with_x.select(columns).equals(without_x.select(columns))
    assert with_x["lower"].null_count() == 0
    assert with_x.filter(pl.col("session_number") == 5)["colour"].to_list() == ["red"]


def test_the_band_says_how_it_was_made_and_from_how_many_clients(store, catalog):
    add_outcomes(store, _improving_peers())
    row = track_colours(store, catalog, clients=["p000"], scope=SYSTEM).filter(pl.col("session_number") == 3).row(0, named=True)
    assert row["method"].startswith("median, 25th and 10th percentiles of change from the client's own first score "
                                    "among 29 other clients of the clinic with ORS: quantile regression")


def _flagged_share_by_intake_third(store, catalog) -> dict[str, float]:
    track = track_colours(store, catalog, scope=SYSTEM).filter(pl.col("colour") != "grey")
    sign = pl.col("instrument").replace_strict({k: i.sign for k, i in catalog.instruments.items()},
                                               return_dtype=pl.Int32)
    severity = (track.group_by("client_id", "instrument").agg(pl.col("intake").first())
                .with_columns(r=(-sign * pl.col("intake")).rank("average").over("instrument")
                              / pl.len().over("instrument"))
                .with_columns(third=pl.when(pl.col("r") <= 1 / 3).then(pl.lit("mildest"))
                              .when(pl.col("r") <= 2 / 3).then(pl.lit("middle")).otherwise(pl.lit("most severe"))))
    shares = (track.join(severity.select("client_id", "instrument", "third"), on=["client_id", "instrument"])
              .group_by("third").agg(pl.col("colour").is_in(["orange", "red"]).mean()))
    return dict(shares.iter_rows())


def test_on_the_demo_the_share_flagged_no_longer_follows_intake_severity(demo_db, catalog):
    # Before (percentile cells by session number, every cell pooled on the demo): orange or
    # red for 40 % of the mildest third of intakes, 18 % of the middle, 9 % of the most
    # severe (ORS and PHQ-9 sessions of the demo and the example export).
    store = Store(demo_db)
    shares = _flagged_share_by_intake_third(store, catalog)
    store.close()
    print("flagged share by intake third, before: mildest 0.40, middle 0.18, most severe 0.09; after:",
          {k: round(v, 3) for k, v in sorted(shares.items())})
    assert max(shares.values()) - min(shares.values()) < 0.15


def _random_clinic(n, seed, prefix="c"):
    rng = np.random.default_rng(seed)
    series = []
    for i in range(n):
        intake = int(rng.integers(5, 27))
        scores = {s: int(np.clip(round(intake - rng.normal(1.0, 1.0) * s + rng.normal(0, 2)), 0, 27))
                  for s in range(1, int(rng.integers(2, 7)))}
        series.append((f"{prefix}{i:03d}", f"t{i % 3}", "PHQ-9", {0: intake, **scores}))
    return series


def test_a_reader_takes_the_reference_the_snapshot_keeps_without_fitting_it(store, catalog, monkeypatch):
    # The fit (statsmodels' QuantReg, its import included) took seconds of a fresh server's
    # first case; the publish makes it from the same data, so a reader reads it back.
    from core.analytics import expected
    add_outcomes(store, _random_clinic(80, seed=5))
    made = (severity_bands(store, catalog, scope=SYSTEM), expected_model(store, catalog, scope=SYSTEM))
    expected._REFERENCES.clear()  # as in a freshly started process

    def refused(*args, **kwargs):
        raise AssertionError("the reference was fitted again although the snapshot keeps it")
    monkeypatch.setattr(expected, "expected_model", refused)
    monkeypatch.setattr(expected, "severity_bands", refused)
    severity, (model, loo) = expected.reference(store, catalog, SYSTEM)
    assert severity.equals(made[0]) and model.equals(made[1][0]) and loo.equals(made[1][1])
    assert set(model["n"]) and model["n"].min() > 20
    # Other settings than those it was made with: not the kept one (here: fitted, refused).
    with pytest.raises(AssertionError, match="fitted again"):
        expected.reference(store, catalog, SYSTEM, min_sample=30)
    # A scope that does not see every client makes its own.
    with pytest.raises(AssertionError, match="fitted again"):
        expected.reference(store, catalog, Scope.therapists({"t1"}))
    # No other reader sees the kept tables' rows.
    for table in ("reference_info", "reference_severity", "reference_model", "reference_loo"):
        assert store.query(f"SELECT * FROM {table}", scope=Scope.therapists({"t1"})).is_empty()


def test_each_publish_keeps_the_reference_of_its_own_data(store, catalog):
    # The snapshot being published starts as a copy of the last one, reference included:
    # made from that copy, the kept reference was the old data's (80 clients where the
    # data held 84). It is made afresh from the new data.
    from core.analytics import expected
    add_outcomes(store, _random_clinic(80, seed=5))
    add_outcomes(store, _random_clinic(4, seed=6, prefix="new"))
    # Two folds: each fit leaves out the other fold's clients, so the fits' sizes add up to the clients.
    assert store.scalar("SELECT sum(n) FROM reference_model", scope=SYSTEM) == 84
    expected._REFERENCES.clear()
    severity, (model, loo) = expected.reference(store, catalog, SYSTEM)
    assert model.equals(expected_model(store, catalog, scope=SYSTEM)[0])
    assert severity.equals(severity_bands(store, catalog, scope=SYSTEM))
