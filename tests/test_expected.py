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
    with store.transaction() as cur:
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
    # Peers' improvements at session 1: 0, 0.5, ..., 19.5 -> 25th percentile 4.875,
    # 10th 1.95 (numpy). The three clients are outside the reference (another therapist).
    add_outcomes(store, peers(40, "PHQ-9", 24, 0.5) + [
        ("green", "t2", "PHQ-9", {0: 24, 1: 19}),    # improved 5 >= 4.875
        ("orange", "t2", "PHQ-9", {0: 24, 1: 21}),   # improved 3: below the 25th, above the 10th
        ("red", "t2", "PHQ-9", {0: 24, 1: 30})])     # worse by 6
    found = track_colours(store, catalog, Scope.therapists({"t2"}), reference_scope=Scope.therapists({"peer"}))
    at_1 = found.filter(pl.col("session_number") == 1)
    assert dict(at_1.select("client_id", "colour").rows()) == {"green": "green", "orange": "orange", "red": "red"}
    assert at_1["lower"].to_list() == [pytest.approx(-np.percentile(0.5 * np.arange(40), 25))] * 3
    assert set(found["client_id"]) == {"green", "orange", "red"}


def test_at_the_lower_percentile_is_green_and_at_the_floor_is_orange(store, catalog):
    # Peers' improvements 0..39 at session 1: 25th percentile 9.75, 10th 3.9.
    add_outcomes(store, peers(40, "ORS", 0, 1, sign=1) + [
        ("at_lower", "t2", "ORS", {0: 0, 1: 9.75}), ("at_floor", "t2", "ORS", {0: 0, 1: 3.9})])
    found = track_colours(store, catalog, Scope.therapists({"t2"}), reference_scope=Scope.therapists({"peer"}))
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
    assert row["method"].startswith("grey: fewer than 20 clients")


def test_the_reference_is_the_whole_clinic_and_the_scope_only_chooses_whose_colours(store, catalog):
    add_outcomes(store, peers(40, "PHQ-9", 24, 0.5, therapist="t1") + [("mine", "t2", "PHQ-9", {0: 24, 1: 20})])
    mine = track_colours(store, catalog, Scope.therapists({"t2"}))
    assert mine["client_id"].unique().to_list() == ["mine"]
    whole = expected_bands(store, catalog, scope=SYSTEM).filter((pl.col("band") == "severe") & (pl.col("session_number") == 1))
    assert mine.filter(pl.col("session_number") == 1)["expected"].to_list() == whole["expected"].to_list()
    assert whole["n"].to_list() == [41]


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
    assert again is not first and again[1].equals(expected_bands(store, catalog, scope=SYSTEM))
    store.close()


def test_the_latest_colours_equal_the_last_rows_of_the_whole_track(store, catalog):
    # latest_colour takes the last score in the same pass as the intake (faster); on a
    # clinic with gaps, unattended sessions and a scope it must equal the whole track's
    # last row per client and instrument.
    from tests.conftest import gappy_clinic
    frames = gappy_clinic(6_000, seed=4, gaps_seed=8, unattended=0.1, dropped=0.2)
    sessions, ratings = frames["sessions"], frames["ratings"]
    with store.transaction() as cur:
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
