"""Reliable change and clinical significance (Jacobson & Truax 1991).

Reference numbers are the checks listed in DOMAIN.md ("Reliable change and clinical
significance"): SD 7.5 / r .80 from the CECPfuns tests, SD 10.5 / r .961 from the
suddengains tests (tests/testthat/test-define_crit1_cutoff.R), and the cutoffs a/b/c
for clinical M 32 SD 7 versus functional M 10 SD 7.
"""

import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from core.analytics.change import (
    CATEGORIES,
    category_expr,
    classify,
    classify_frame,
    cutoffs,
    is_clinical,
    rc_threshold,
    reliable_change_index,
    s_diff,
    standard_error,
)


def test_threshold_for_sd_7_5_and_reliability_0_80():
    # CECPfuns getRCIfromSDandAlpha(): SD * sqrt(2) * sqrt(1 - rel) * qnorm(1 - (1 - ci) / 2),
    # i.e. the exact normal quantile; with the rounded 1.96 the same inputs give 9.297096.
    assert rc_threshold(7.5, 0.80, z=norm.ppf(0.975)) == pytest.approx(9.296925, abs=1e-6)
    assert rc_threshold(7.5, 0.80) == pytest.approx(1.96 * 7.5 * math.sqrt(2 * 0.2))


def test_se_sdiff_and_threshold_for_sd_10_5_and_reliability_0_961():
    # suddengains test-define_crit1_cutoff.R: 2.073584, 2.93249, 5.747681
    assert standard_error(10.5, 0.961) == pytest.approx(2.0736, abs=1e-4)
    assert s_diff(10.5, 0.961) == pytest.approx(2.9325, abs=1e-4)
    assert rc_threshold(10.5, 0.961) == pytest.approx(5.7477, abs=1e-4)


def test_sgdata_baseline_sd_with_reliability_0_931():
    # suddengains test-define_crit1_cutoff.R: sd 6.396073, r .931 -> SE 1.680111, S_diff 2.376036, 4.65703
    assert standard_error(6.396073, 0.931) == pytest.approx(1.680111, abs=1e-5)
    assert rc_threshold(6.396073, 0.931) == pytest.approx(4.65703, abs=1e-5)


def test_rc_index_is_change_over_sdiff():
    assert reliable_change_index(30, 20, 10.5, 0.961) == pytest.approx(-10 / s_diff(10.5, 0.961))


def test_invalid_reliability_is_rejected_with_a_sentence():
    with pytest.raises(ValueError, match="between 0 and 1"):
        rc_threshold(10, 2)


def test_cutoffs_lower_is_better():
    a, b, c = cutoffs(32, 7, 10, 7, direction=-1)
    assert (a, b, c) == pytest.approx((18, 24, 21))


def test_cutoffs_higher_is_better_mirror_a_and_b():
    a, b, c = cutoffs(10, 5, 30, 5, direction=+1)
    assert (a, b, c) == pytest.approx((20, 20, 20))


def test_change_equal_to_threshold_is_not_reliable():
    result = classify(20, 14, direction=-1, threshold=6)
    assert not result.reliable and result.category == "unchanged"
    assert "strictly" in result.boundary


def test_change_just_above_threshold_is_reliable():
    assert classify(20, 13.99, direction=-1, threshold=6).category == "improved"


@pytest.mark.parametrize(
    "rule, on_cutoff_is_clinical",
    [("ge", True), ("gt", False), ("le", True), ("lt", False)],
)
def test_score_on_the_cutoff_follows_the_rule(rule, on_cutoff_is_clinical):
    assert is_clinical(10, 10, rule) is on_cutoff_is_clinical


def test_phq9_end_score_on_cutoff_ge_rule_is_not_recovered():
    # caseness >= 10: ending on exactly 10 is still clinical
    assert classify(18, 10, direction=-1, threshold=6, cutoff=10, cutoff_clinical="ge").category == "improved"
    # IAPT "> 9" written as "gt" 9: 9 is not clinical, 10 is
    assert classify(18, 9, direction=-1, threshold=6, cutoff=9, cutoff_clinical="gt").category == "recovered"


@pytest.mark.parametrize(
    "first, last, expected",
    [
        (20, 8, "recovered"),  # reliable drop, clinical -> non-clinical
        (30, 15, "improved"),  # reliable drop, stays clinical
        (20, 17, "unchanged"),
        (14, 22, "deteriorated"),  # reliable rise, already clinical at start
        (8, 16, "harmed"),  # reliable rise, non-clinical -> clinical
        (2, 9, "deteriorated"),  # reliable rise, stays non-clinical
    ],
)
def test_each_category_lower_is_better(first, last, expected):
    result = classify(first, last, direction=-1, threshold=6, cutoff=10, cutoff_clinical="ge")
    assert result.category == expected


def test_each_category_higher_is_better_ors():
    kw = dict(direction=+1, threshold=5, cutoff=25, cutoff_clinical="lt")  # ORS: below 25 is clinical
    assert classify(18, 30, **kw).category == "recovered"
    assert classify(10, 20, **kw).category == "improved"
    assert classify(30, 20, **kw).category == "harmed"
    assert classify(20, 10, **kw).category == "deteriorated"
    assert classify(20, 22, **kw).category == "unchanged"


def test_without_cutoff_only_improved_unchanged_deteriorated():
    assert classify(20, 8, direction=-1, threshold=6).category == "improved"
    assert classify(8, 20, direction=-1, threshold=6).category == "deteriorated"
    assert classify(8, 20, direction=-1, threshold=6).started_clinical is None


def test_cutoff_without_rule_is_rejected():
    with pytest.raises(ValueError, match="cutoff_clinical"):
        classify(20, 8, direction=-1, threshold=6, cutoff=10)


def _frame(rows):
    return pl.DataFrame(
        rows,
        schema={
            "client_id": pl.String,
            "instrument": pl.String,
            "first": pl.Float64,
            "last": pl.Float64,
            "threshold": pl.Float64,
            "cutoff": pl.Float64,
            "cutoff_clinical": pl.String,
            "direction": pl.Int8,
        },
        orient="row",
    )


def test_bulk_classifies_every_row_and_keeps_nulls_null():
    frame = _frame(
        [
            ("a", "PHQ-9", 20, 8, 6, 10, "ge", -1),
            ("b", "PHQ-9", 20, 14, 6, 10, "ge", -1),
            ("c", "ORS", 18, 30, 5, 25, "lt", 1),
            ("d", "ORS", 18, None, 5, 25, "lt", 1),
            ("e", "BDI-II", 30, 10, 5.75, None, None, -1),
        ]
    )
    out = classify_frame(frame)
    assert out["category"].to_list() == ["recovered", "unchanged", "recovered", None, "improved"]


def test_bulk_rejects_an_unknown_boundary_rule_with_the_client_named():
    frame = _frame([("a", "PHQ-9", 20, 8, 6, 10, "=>", -1)])
    with pytest.raises(ValueError, match="a/PHQ-9"):
        classify_frame(frame)


_scores = st.integers(0, 40).map(float)
_row = st.tuples(
    _scores,
    _scores,
    st.sampled_from([0.0, 3.0, 5.0, 5.7477, 6.0, 9.296925]),
    st.one_of(st.none(), st.sampled_from([9.0, 10.0, 14.0, 25.0])),
    st.sampled_from(["ge", "gt", "le", "lt"]),
    st.sampled_from([1, -1]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_row, min_size=1, max_size=40))
def test_bulk_equals_scalar_on_random_rows(rows):
    frame = _frame([(f"c{i}", "X", f, l, t, c, r, d) for i, (f, l, t, c, r, d) in enumerate(rows)])
    bulk = frame.select(category_expr())["category"].to_list()
    scalar = [
        classify(f, l, direction=d, threshold=t, cutoff=c, cutoff_clinical=r if c is not None else None).category
        for f, l, t, c, r, d in rows
    ]
    assert bulk == scalar
    assert set(bulk) <= set(CATEGORIES)


def test_threshold_scales_with_sd():
    assert rc_threshold(20, 0.8) == pytest.approx(2 * rc_threshold(10, 0.8))
    assert rc_threshold(10, 1.0) == 0 and not math.isnan(rc_threshold(0, 0.5))


# --------------------------------------------------------------------------- issue 14: the BDI-II


def test_bdi_ii_reliable_change_is_computed_from_a_sourced_sd_and_reliability(catalog):
    # DOMAIN.md: the BDI-II's reliable change is computed from an SD and a reliability
    # (Jacobson & Truax); Tang & DeRubeis' 7 points are a sudden-gains criterion only.
    rc = catalog.instruments["BDI-II"].reliable_change
    assert rc.sd is not None and rc.reliability is not None and "suddengains" in rc.source
    # Written out by hand: 1.96 x sqrt(2) x SD x sqrt(1 - r); SD 10.5, r .931 -> 7.6451.
    assert rc.threshold == pytest.approx(1.96 * math.sqrt(2) * rc.sd * math.sqrt(1 - rc.reliability))
    assert rc.threshold == pytest.approx(7.6451, abs=1e-4) and rc.rule == "gt"


def test_a_seven_point_bdi_ii_fall_is_no_reliable_change_but_stays_sudden_gain_criterion_1(catalog):
    from core.analytics.outcomes import SuddenGainParams, change_table, sudden_changes
    series = pl.DataFrame({"client_id": ["a"] * 7, "instrument": ["BDI-II"] * 7, "session_number": list(range(1, 8)),
                           "score": [28.0, 29, 28, 21, 20, 21, 21]}, schema_overrides={"session_number": pl.Int32})
    assert change_table(series, catalog)["category"].to_list() == ["unchanged"]  # 7 < 7.65
    gains = sudden_changes(series, catalog, SuddenGainParams.from_catalog(catalog))
    assert gains.select("kind", "pregain_session", "cutoff").rows() == [("gain", 3, 7.0)]
