"""Sudden gains and losses against the R package suddengains (Wiedemann et al. 2020).

Where each expectation comes from (milanwiedemann/suddengains on GitHub, MIT licence):

- [T-sg]  tests/testthat/test-identify_sg.R: data sets df1/df2 and their expected
          sg_2to3 / sg_3to4 / sg_4to5 flags (sg_crit1_cutoff = 7, columns x_2n..x_n3).
- [T-sl]  tests/testthat/test-identify_sl.R: df2 and expected sl_* flags (cutoff -7).
- [T-bysg] tests/testthat/test-create_bysg.R and test-create_byperson.R: an 18-client
          data set, the expected one-row-per-gain table and the "first"/"largest" picks.
- [T-desc] tests/testthat/test-describe_sg.R: on sgdata (cutoff 7, bdi_s1..bdi_s12),
          24 gains in 15 of 43 clients, 8 clients with more than one, magnitude mean 11,
          SD 3.43.
- [V-bysg] docs/articles/suddengains-tutorial.html (pkgdown article, package 0.4.4,
          built 2020-06-05): the printed `bysg` table of create_bysg(sgdata,
          sg_crit1_cutoff = 7, sg_var_list = bdi_s1..bdi_s12, identify = "sg") and
          the `bysl` table (sg_crit1_cutoff = -7, identify = "sl"), i.e. every gain
          and loss with id, pregain session (sg_session_n), the scores at n and n+1,
          and sg_magnitude. Transcribed into tests/data/sgdata_reference.csv
          (magnitude made positive; package id k is client "sgKK" here).
- [V-ci]  the same article, check_interval() printouts: critical values 2.776 (3+3,
          alpha .05), 4.604 (3+3, alpha .01), 9.925 (2+2, alpha .01), 3.182 (2+3, .05).
- [Oracle] `package_identify` below: a slow, loop-by-loop restatement of
          R/identify_sg.R and R/identify_sl.R (wide columns, col_j from 3 to ncol - 1,
          pre window max(1, col_j - 3):(col_j - 1), post window col_j:min(ncol, col_j + 2)),
          written independently of the vectorised module. It reproduces [V-bysg]
          exactly, and it is the only source for results the package never published
          (sgdata with identify_sg_1to2 = TRUE, random data).
"""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from core.analytics.sudden_gains import (
    critical_value,
    examine_intervals,
    identify_sudden_changes,
    select_one_per_client,
)

SGDATA = Path(__file__).resolve().parents[2] / "shared" / "reference-data" / "sgdata"
REFERENCE = Path(__file__).resolve().parent / "data" / "sgdata_reference.csv"
BDI = dict(cutoff=7, direction=-1)


# --- the oracle: identify_sg / identify_sl as written in R, one cell at a time ----------


@functools.lru_cache(maxsize=None)
def _qt(alpha: float, df: int) -> float:
    return abs(stats.t.ppf(alpha / 2, df))


def package_identify(row, *, decrease, cutoff, pct, alpha=0.05, pct_rule="mirror", fixed_t=None):
    """Flags for one wide row (None = NA), keyed by R's 1-based col_j (post column).

    decrease=True is identify_sg (gains on a lower-is-better measure); False is
    identify_sl with sg_crit1_cutoff = -cutoff. pct_rule "suddengains" uses identify_sl's
    `pre - post <= pct * pre`; "mirror" uses `post - pre >= pct * pre`.
    """
    ncol = len(row)

    def col(k):  # R's 1-based column index
        return row[k - 1]

    flags = {}
    for j in range(3, ncol):  # for (col_j in 3:(ncol - 1))
        crits = []
        pre_x, post_x = col(j - 1), col(j)
        if cutoff is not None:
            if pre_x is None or post_x is None:
                crits.append(None)
            else:
                crits.append(pre_x - post_x >= cutoff if decrease else pre_x - post_x <= -cutoff)
        if pct is not None:
            if pre_x is None or post_x is None:
                crits.append(None)
            elif decrease:
                crits.append(pre_x - post_x >= pct * pre_x)
            elif pct_rule == "suddengains":
                crits.append(pre_x - post_x <= pct * pre_x)
            else:
                crits.append(post_x - pre_x >= pct * pre_x)
        pre = [col(k) for k in range(max(1, j - 3), j) if col(k) is not None]
        post = [col(k) for k in range(j, min(ncol, j + 2) + 1) if col(k) is not None]
        if len(pre) >= 2 and len(post) >= 2:
            m_pre, m_post = sum(pre) / len(pre), sum(post) / len(post)
            sd_pre = math.sqrt(sum((x - m_pre) ** 2 for x in pre) / (len(pre) - 1))
            sd_post = math.sqrt(sum((x - m_post) ** 2 for x in post) / (len(post) - 1))
            t = _qt(alpha, len(pre) + len(post) - 2) if fixed_t is None else fixed_t
            pooled = math.sqrt(((len(pre) - 1) * sd_pre**2 + (len(post) - 1) * sd_post**2) / (len(pre) + len(post) - 2))
            diff = m_pre - m_post if decrease else m_post - m_pre
            crits.append(diff > t * pooled)
        else:
            crits.append(None)
        flags[j] = None if any(c is None for c in crits) else all(crits)
    return flags


def oracle_on_long(ratings, *, cutoff, direction, kind="gain", pct=0.25, alpha=0.05, include_intake=False,
                   pct_rule="mirror", fixed_t=None):
    """Widen like the package (one column per session from the first to the last one seen)
    and run the oracle; returns {(client, pregain_session): flag}."""
    first = 0 if include_intake else 1
    scored = ratings.filter(pl.col("score").is_not_null() & (pl.col("session_number") >= first))
    if scored.height == 0:
        return {}
    last = scored["session_number"].max()
    decrease = (kind == "gain") == (direction == -1)
    out = {}
    for client, part in scored.group_by("client_id"):
        values = dict(zip(part["session_number"], part["score"]))
        row = [values.get(s) for s in range(first, last + 1)]
        for j, flag in package_identify(row, decrease=decrease, cutoff=cutoff, pct=pct, alpha=alpha,
                                        pct_rule=pct_rule, fixed_t=fixed_t).items():
            out[(client[0], first + j - 2)] = flag
    return out


# --- helpers -----------------------------------------------------------------------------


def long(series: dict, first_session: int = 1) -> pl.DataFrame:
    """{client: [scores...]} -> long ratings, sessions numbered from first_session; None = no row."""
    rows = [
        (client, first_session + k, float(x))
        for client, xs in series.items()
        for k, x in enumerate(xs)
        if x is not None
    ]
    return pl.DataFrame(rows, schema={"client_id": pl.String, "session_number": pl.Int64, "score": pl.Float64},
                        orient="row")


def found(frame: pl.DataFrame) -> set:
    return set(frame.select("client_id", "pregain_session").iter_rows())


def flags(frame: pl.DataFrame) -> dict:
    return {(c, n): s for c, n, s in frame.select("client_id", "pregain_session", "sudden").iter_rows()}


def sgdata() -> pl.DataFrame:
    if not (SGDATA / "ratings.csv").exists():
        pytest.skip(f"The sgdata reference ratings are not at {SGDATA} (the repository's parent folder holds shared/).")
    return pl.read_csv(SGDATA / "ratings.csv").select("client_id", "session_number", "score")


def reference(kind: str) -> pl.DataFrame:
    return pl.read_csv(REFERENCE).filter(pl.col("kind") == kind).drop("kind")


KEY = ["client_id", "pregain_session", "postgain_session", "pregain_score", "postgain_score", "magnitude"]


# --- critical values ----------------------------------------------------------------------


@pytest.mark.parametrize("n_pre, n_post, alpha, expected", [
    (3, 3, 0.05, 2.776), (2, 3, 0.05, 3.182), (3, 2, 0.05, 3.182), (2, 2, 0.05, 4.303),  # DOMAIN.md
    (3, 3, 0.01, 4.604), (2, 2, 0.01, 9.925),  # [V-ci]
])
def test_critical_value_is_two_tailed_t(n_pre, n_post, alpha, expected):
    assert critical_value(n_pre, n_post, alpha) == pytest.approx(expected, abs=5e-4)


# --- the package's own unit tests -------------------------------------------------------


def test_domain_example_gain_only_at_4_to_5():
    # [T-sg] "Identify sg works 2", row 3: columns x_2n..x_n3 are sessions 1..6 (the
    # default naming sg_{col-1}to{col}), expected sg_2to3 = 0, sg_3to4 = 0, sg_4to5 = 1.
    out = examine_intervals(long({"3": [35, 37, 34, 34, 24, 21]}), **BDI)
    assert flags(out) == {("3", 2): False, ("3", 3): False, ("3", 4): True}
    gain = identify_sudden_changes(long({"3": [35, 37, 34, 34, 24, 21]}), **BDI).row(0, named=True)
    assert (gain["pregain_session"], gain["postgain_session"], gain["magnitude"]) == (4, 5, 10)
    assert (gain["n_pre"], gain["n_post"]) == (3, 2)
    assert gain["critical_value"] == pytest.approx(3.182, abs=5e-4)


def test_package_identify_sg_works_2():
    # [T-sg] expected rows: (1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 0, 0) for sg_2to3..sg_4to5
    data = {"1": [35, 37, 23, 23, 24, 21], "2": [35, 37, 34, 24, 24, 21],
            "3": [35, 37, 34, 34, 24, 21], "4": [35, 37, 34, 37, 37, 37]}
    got = flags(examine_intervals(long(data), **BDI))
    expected = {"1": (1, 0, 0), "2": (0, 1, 0), "3": (0, 0, 1), "4": (0, 0, 0)}
    assert {k: v for k, v in got.items()} == {
        (c, 2 + i): bool(x) for c, xs in expected.items() for i, x in enumerate(xs)
    }


def test_package_identify_sg_works_1_including_undecided_intervals():
    # [T-sg] df1: expected sg_2to3, sg_3to4, sg_4to5 (None = NA). An interval missing
    # here is one the package gives NA and this module does not list (past the last score).
    na = None
    data = {
        "1": ([28, 19, 23, 12, 13, na], (0, 0, na)),
        "2": ([28, 19, 23, 11, 12, na], (0, 1, na)),
        "3": ([28, 19, na, 12, 13, na], (na, na, na)),
        "4": ([28, 19, 23, 12, 13, na], (0, 0, na)),
        "5": ([28, 19, 23, 12, 14, na], (0, 0, na)),
        "6": ([28, 19, na, 12, 13, na], (na, na, na)),
        "7": ([28, 19, 23, 11, 12, na], (0, 1, na)),
        "8": ([28, 25, 28, 11, 12, na], (0, 1, na)),
        "9": ([28, 26, 28, 11, 12, na], (0, 1, na)),
        "10": ([na, 26, 28, na, 12, 11], (na, na, na)),
    }
    got = flags(examine_intervals(long({c: xs for c, (xs, _) in data.items()}), **BDI))
    for client, (_, expected) in data.items():
        for i, x in enumerate(expected):
            assert got.get((client, 2 + i)) == (None if x is None else bool(x)), (client, 2 + i)


def test_package_identify_sl():
    # [T-sl] df2 with sg_crit1_cutoff = -7: (0, 1, 0), (0, 0, 1), (1, 0, 0), (0, 0, 0)
    data = {"1": [10, 11, 12, 30, 28, 33], "2": [10, 11, 12, 10, 28, 33],
            "3": [10, 11, 30, 30, 28, 33], "4": [35, 37, 34, 23, 24, 21]}
    expected = {"1": (0, 1, 0), "2": (0, 0, 1), "3": (1, 0, 0), "4": (0, 0, 0)}
    for rule in ("mirror", "suddengains"):
        got = flags(examine_intervals(long(data), **BDI, kind="loss", increase_pct_rule=rule))
        assert got == {(c, 2 + i): bool(x) for c, xs in expected.items() for i, x in enumerate(xs)}


BYSG_DATA = {  # [T-bysg] bdi_s1..bdi_s12 of the 18 test clients (bdi_s0 is not in sg_var_list)
    "1": [35, 37, 34, 23, 24, 21, 29, 17, 11, 11, 10, 7],
    "2": [26, None, 26, None, 27, 17, 19, 11, 10, 3, None, 7],
    "3": [35, 38, 35, 37, 36, 37, None, 35, 26, 24, None, 19],
    "4": [31, 30, 32, 22, 22, 20, 21, 19, 24, 33, 30, 28],
    "5": [39, 37, 36, 26, 26, 23, 21, 19, 6, 7, 8, 8],
    "6": [37, None, 23, None, 23, 21, None, None, 19, None, 16, 13],
    "7": [37, None, 23, 21, None, 21, None, None, None, None, None, 20],
    "8": [41, 37] + [None] * 10,
    "9": [35, 34, 32, 23, 24, 22, 21, 17, 14, 10, 13, 11],
    "10": [35, 35, 25, 25, 17, 17, 16, 16, 11, 9, 7, 8],
    "11": [40, None, 36, 37, 36, 37, None, 34, 26, 25, None, 19],
    "12": [38, 38, 31, 23, 21, 22, 24, 25, 30, 31, None, 25],
    "13": [34, 33, 36, 23, 25, 23, 19, 18, 10, 9, 8, 9],
    "14": [39, 37, 23, None, 23, 21, None, None, 21, None, 16, 14],
    "15": [28, 19, 23, 12, 13, None, 13, None, None, None, None, 22],
    "16": [25] + [None] * 10 + [20],
    "17": [41, 37] + [None] * 10,
    "18": [None, 38, 35, 24, None, 22, 17, 16, None, 9, 11, 13],
}


def test_package_create_bysg_example():
    # [T-bysg] id, sg_session_n (pregain) and sg_magnitude of df_bysg_expect
    expected = [("1", 3, 11), ("1", 7, 12), ("3", 8, 9), ("4", 3, 10), ("5", 3, 10), ("5", 8, 13), ("9", 3, 9),
                ("10", 2, 10), ("10", 4, 8), ("12", 3, 8), ("13", 3, 13), ("13", 8, 8), ("14", 2, 14), ("18", 3, 11)]
    out = identify_sudden_changes(long(BYSG_DATA), **BDI)
    assert sorted(out.select("client_id", "pregain_session", "magnitude").iter_rows()) == sorted(
        (c, n, float(m)) for c, n, m in expected
    )


def test_package_create_byperson_first_and_largest():
    # [T-bysg] test-create_byperson.R: multiple_sg_select = "first" and "largest"
    out = identify_sudden_changes(long(BYSG_DATA), **BDI)

    def pick(rule):
        return dict(select_one_per_client(out, rule).select("client_id", "pregain_session").iter_rows())

    first = {"1": 3, "3": 8, "4": 3, "5": 3, "9": 3, "10": 2, "12": 3, "13": 3, "14": 2, "18": 3}
    largest = {**first, "1": 7, "5": 8}
    assert pick("first") == first
    assert pick("largest") == largest
    marked = dict(out.filter("is_largest").select("client_id", "pregain_session").iter_rows())
    assert marked == largest


# --- check_interval() examples printed in the tutorial [V-ci] ----------------------------


def test_check_interval_all_three_criteria():
    # pre (32, 31, 33), post (5, 6, 7): means 32 and 6, SDs 1 -> 26 > 2.776 * 1
    out = identify_sudden_changes(long({"x": [32, 31, 33, 5, 6, 7]}), **BDI)
    row = out.row(0, named=True)
    assert (row["pregain_session"], row["pre_mean"], row["post_mean"], row["pooled_sd"]) == (3, 32, 6, 1)
    assert row["critical_value"] == pytest.approx(2.776, abs=5e-4)
    strict = identify_sudden_changes(long({"x": [32, 31, 33, 5, 6, 7]}), **BDI, alpha=0.01)
    assert strict["critical_value"][0] == pytest.approx(4.604, abs=5e-4)


def test_check_interval_third_criterion_only_with_missing_scores():
    # pre (NA, 31, 33), post (5, NA, 7), criteria 1 and 2 off, alpha .01: 9.925, a gain
    data = long({"x": [None, 31, 33, 5, None, 7]})
    out = examine_intervals(data, cutoff=None, pct=None, direction=-1, alpha=0.01)
    row = out.filter(pl.col("pregain_session") == 3).row(0, named=True)
    assert row["critical_value"] == pytest.approx(9.925, abs=5e-4)
    assert row["sudden"] is True and row["sg_crit1"] is None and row["sg_crit2"] is None


def test_check_interval_loss_with_a_missing_prescore():
    # pre (5, NA, 7), post (16, 12, 14), cutoff -7: loss, critical value 3.182
    out = identify_sudden_changes(long({"x": [5, None, 7, 16, 12, 14]}), **BDI, kind="loss")
    row = out.row(0, named=True)
    assert (row["pregain_session"], row["magnitude"], row["n_pre"], row["n_post"]) == (3, 9, 2, 3)
    assert row["critical_value"] == pytest.approx(3.182, abs=5e-4)


# --- session layout, gaps and missing scores --------------------------------------------


def test_a_gap_is_not_a_shift():
    gap = pl.DataFrame({"client_id": ["a"] * 6, "session_number": [1, 2, 4, 5, 6, 7],
                        "score": [30.0, 31, 20, 19, 21, 20]})
    assert identify_sudden_changes(gap, **BDI).height == 0  # 2->3 and 3->4 lack a score
    closed_up = gap.with_columns(session_number=pl.Series([1, 2, 3, 4, 5, 6]))
    assert found(identify_sudden_changes(closed_up, **BDI)) == {("a", 2)}


def test_a_session_row_without_score_equals_no_row():
    with_null = pl.DataFrame({"client_id": ["a"] * 7, "session_number": list(range(1, 8)),
                              "score": [30.0, 31, None, 20, 19, 21, 20]})
    without = with_null.filter(pl.col("score").is_not_null())
    assert identify_sudden_changes(with_null, **BDI).equals(identify_sudden_changes(without, **BDI))


def test_missing_pregain_or_postgain_score_leaves_the_interval_undecided():
    out = examine_intervals(long({"a": [30, 31, None, 20, 19, 21, 20]}), **BDI)
    assert flags(out)[("a", 2)] is None and flags(out)[("a", 3)] is None


def test_a_missing_score_inside_a_window_is_skipped_not_replaced():
    out = examine_intervals(long({"a": [40, None, 30, 20, 21, None, 19]}), **BDI)
    row = out.filter(pl.col("pregain_session") == 3).row(0, named=True)
    assert (row["n_pre"], row["n_post"], row["pre_mean"], row["post_mean"]) == (2, 2, 35, 20.5)
    assert row["critical_value"] == pytest.approx(4.303, abs=5e-4)  # session 6 is not filled from 7


def test_fewer_than_two_scores_on_a_side_is_undecided():
    out = examine_intervals(long({"a": [None, None, 30, 10, 11, 12]}), **BDI)
    assert flags(out)[("a", 3)] is None


def test_interval_into_the_last_session_is_never_examined():
    out = examine_intervals(long({"a": [30, 31, 30, 31, 10]}), **BDI)
    assert out["postgain_session"].max() == 4


# --- intake / baseline ------------------------------------------------------------------


def test_session_0_is_ignored_by_default():
    base = {"a": [33, 35, 20, 19, 21, 20, 22]}
    changed = {"a": [99, 35, 20, 19, 21, 20, 22]}
    assert examine_intervals(long(base, 0), **BDI).equals(examine_intervals(long(changed, 0), **BDI))
    assert examine_intervals(long(base, 0), **BDI)["pregain_session"].min() == 2


def test_include_intake_examines_1_to_2_with_the_baseline_in_the_window():
    data = long({"a": [38, 35, 20, 19, 21, 20]}, first_session=0)  # sgdata sg22, sessions 0..5
    out = identify_sudden_changes(data, **BDI, include_intake=True)
    row = out.filter(pl.col("pregain_session") == 1).row(0, named=True)
    assert (row["postgain_session"], row["n_pre"], row["pre_mean"]) == (2, 2, 36.5)
    assert identify_sudden_changes(data, **BDI).filter(pl.col("pregain_session") == 1).height == 0


# --- direction, kind and parameters -----------------------------------------------------


def test_higher_is_better_gain_is_an_increase():
    ors = long({"a": [10, 11, 10, 25, 26, 27, 26]})
    assert found(identify_sudden_changes(ors, cutoff=5, direction=+1)) == {("a", 3)}
    assert identify_sudden_changes(ors, cutoff=5, direction=-1).height == 0
    assert found(identify_sudden_changes(ors, cutoff=5, direction=-1, kind="loss")) == {("a", 3)}


def test_losses_mirror_gains():
    up = long({"a": [10, 11, 10, 25, 26, 27, 26]})
    down = long({"a": [40 - x for x in [10, 11, 10, 25, 26, 27, 26]]})
    loss = identify_sudden_changes(up, cutoff=7, direction=-1, kind="loss").row(0, named=True)
    gain = identify_sudden_changes(down, cutoff=7, direction=-1).row(0, named=True)
    for name in ("pregain_session", "magnitude", "pooled_sd", "n_pre", "n_post", "critical_value"):
        assert loss[name] == pytest.approx(gain[name])
    assert loss["magnitude"] > 0


def test_mirror_rule_applies_criterion_2_to_losses_and_the_package_rule_does_not():
    # 40 -> 48 is +8 points but only 20 % of 40: not a loss under the mirror rule;
    # identify_sl's `pre - post <= pct * pre` lets it through.
    data = long({"a": [40, 41, 40, 48, 49, 48, 49]})
    assert identify_sudden_changes(data, **BDI, kind="loss").height == 0
    assert found(identify_sudden_changes(data, **BDI, kind="loss", increase_pct_rule="suddengains")) == {("a", 3)}


def test_parameters_change_results_as_expected():
    data = sgdata()
    gains = identify_sudden_changes(data, **BDI)
    assert identify_sudden_changes(data, cutoff=9, direction=-1).height == gains.filter(pl.col("magnitude") >= 9).height
    stricter_pct = identify_sudden_changes(data, **BDI, pct=0.5)
    assert found(stricter_pct) == found(gains.filter(pl.col("change_pct") >= 0.5))
    assert found(identify_sudden_changes(data, **BDI, alpha=0.01)) < found(gains)
    assert identify_sudden_changes(data, **BDI, pct=None).height >= gains.height
    fixed = identify_sudden_changes(data, **BDI, critical_value=2.776)
    assert set(fixed["critical_value"].to_list()) == {2.776}


def test_invalid_input_is_rejected_with_a_sentence():
    dup = pl.DataFrame({"client_id": ["a", "a"], "session_number": [1, 1], "score": [3.0, 4.0]})
    with pytest.raises(ValueError, match="Client a has 2 scores for session 1"):
        identify_sudden_changes(dup, **BDI)
    two = dup.with_columns(session_number=pl.Series([1, 2]), instrument=pl.Series(["PHQ-9", "GAD-7"]))
    with pytest.raises(ValueError, match="more than one instrument"):
        identify_sudden_changes(two, **BDI)
    with pytest.raises(ValueError, match="whole numbers"):
        identify_sudden_changes(dup.with_columns(pl.col("session_number").cast(pl.Float64)), **BDI)
    with pytest.raises(ValueError, match="positive number of points"):
        identify_sudden_changes(dup, cutoff=-7, direction=-1)
    with pytest.raises(ValueError, match="session 20240512"):
        identify_sudden_changes(dup.with_columns(session_number=pl.Series([1, 20240512])), **BDI)


def test_empty_ratings_give_an_empty_table():
    empty = long({})
    assert identify_sudden_changes(empty, **BDI).height == 0


# --- sgdata: the package's published results -------------------------------------------


def test_sgdata_gains_equal_the_published_bysg_table():
    # [V-bysg] 24 gains; [T-desc] aggregates
    gains = identify_sudden_changes(sgdata(), **BDI)
    assert gains.select(KEY).cast({c: pl.Float64 for c in KEY[3:]}).sort(KEY[:2]).equals(
        reference("gain").cast({c: pl.Float64 for c in KEY[3:]}).sort(KEY[:2])
    )
    per_client = gains.group_by("client_id").len()
    assert (gains.height, per_client.height, per_client.filter(pl.col("len") > 1).height) == (24, 15, 8)
    assert gains["magnitude"].mean() == pytest.approx(11) and round(gains["magnitude"].std(), 2) == 3.43
    assert gains["postgain_session"].min() >= 3 and gains["postgain_session"].max() <= 11


def test_sgdata_losses_equal_the_published_bysl_table():
    # [V-bysg] 3 losses: ids 4, 34, 35; both criterion-2 rules agree here
    for rule in ("mirror", "suddengains"):
        losses = identify_sudden_changes(sgdata(), **BDI, kind="loss", increase_pct_rule=rule)
        assert losses.select(KEY).cast({c: pl.Float64 for c in KEY[3:]}).sort(KEY[:2]).equals(
            reference("loss").cast({c: pl.Float64 for c in KEY[3:]}).sort(KEY[:2])
        )


def test_sgdata_largest_gain_per_client_matches_byperson_largest():
    # [V-bysg] + create_byperson(multiple_sg_select = "largest"): max magnitude, ties earliest
    gains = identify_sudden_changes(sgdata(), **BDI)
    marked = dict(gains.filter("is_largest").select("client_id", "pregain_session").iter_rows())
    assert marked["sg01"] == 7 and marked["sg05"] == 8 and marked["sg43"] == 5 and len(marked) == 15


def test_oracle_reproduces_the_published_tables():
    # The hand-trace of R/identify_sg.R and R/identify_sl.R agrees with [V-bysg], so it can
    # stand in for the package where nothing was published.
    data = sgdata()
    for kind in ("gain", "loss"):
        traced = {k for k, v in oracle_on_long(data, **BDI, kind=kind, pct_rule="suddengains").items() if v}
        published = set(reference(kind).select("client_id", "pregain_session").iter_rows())
        assert traced == published


def test_sgdata_with_intake_matches_the_oracle():
    # Not published: derived with the oracle (identify_sg_1to2 = TRUE, bdi_s0..bdi_s12).
    # Two gains at 1->2 join the 24: sg22 (35 -> 20) and sg35 (36 -> 19).
    data = sgdata()
    out = identify_sudden_changes(data, **BDI, include_intake=True)
    traced = {k for k, v in oracle_on_long(data, **BDI, include_intake=True).items() if v}
    assert found(out) == traced
    assert found(out) - found(identify_sudden_changes(data, **BDI)) == {("sg22", 1), ("sg35", 1)}


# --- vectorised = oracle on random data -------------------------------------------------

_noise = st.lists(st.one_of(st.none(), st.integers(0, 45)), min_size=0, max_size=14)


@st.composite
def _stepped(draw):
    """A plateau, a jump, another plateau, with small noise and holes: where gains live."""
    before, after = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    levels = [draw(st.integers(5, 45))] * before + [draw(st.integers(0, 45))] * after
    return [
        None if draw(st.integers(0, 9)) == 0 else max(0, x + draw(st.integers(-2, 2)))
        for x in levels
    ]


_series = st.one_of(_noise, _stepped())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    clients=st.lists(_series, min_size=1, max_size=5),
    start=st.integers(0, 2),
    cutoff=st.one_of(st.none(), st.integers(1, 12)),
    pct=st.one_of(st.none(), st.sampled_from([0.0, 0.1, 0.25, 0.5])),
    alpha=st.sampled_from([0.05, 0.01, 0.1]),
    include_intake=st.booleans(),
    kind=st.sampled_from(["gain", "loss"]),
    direction=st.sampled_from([1, -1]),
    rule=st.sampled_from(["mirror", "suddengains"]),
)
def test_vectorised_equals_oracle_on_random_series(clients, start, cutoff, pct, alpha, include_intake, kind,
                                                   direction, rule):
    data = long({f"c{i}": xs for i, xs in enumerate(clients)}, first_session=start)
    params = dict(cutoff=cutoff, direction=direction, kind=kind, pct=pct, alpha=alpha, include_intake=include_intake)
    traced = oracle_on_long(data, **params, pct_rule=rule)
    got = flags(examine_intervals(data, **params, increase_pct_rule=rule))
    assert all(traced[k] == v for k, v in got.items())
    assert all(v is None for k, v in traced.items() if k not in got)  # unlisted = NA in the package
    assert found(identify_sudden_changes(data, **params, increase_pct_rule=rule)) == {
        k for k, v in traced.items() if v
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    clients=st.lists(_series, min_size=1, max_size=5),
    starts=st.lists(st.integers(0, 12), min_size=5, max_size=5),
    include_intake=st.booleans(),
    kind=st.sampled_from(["gain", "loss", "both"]),
    direction=st.sampled_from([1, -1]),
)
def test_the_sudden_changes_are_those_of_every_interval_when_series_start_late(clients, starts, include_intake,
                                                                               kind, direction):
    # identify_sudden_changes lays each client's grid from the client's first score (for
    # speed); it must find the sudden intervals of the full grid, whose start is empty.
    data = pl.concat([long({f"c{i}": xs}, first_session=start) for i, (xs, start) in enumerate(zip(clients, starts))])
    params = dict(cutoff=3, direction=direction, kind=kind, pct=0.1, alpha=0.1, include_intake=include_intake)
    every = examine_intervals(data, **params).filter(pl.col("sudden"))
    sudden = identify_sudden_changes(data, **params).drop("n_in_client", "is_largest")
    order = ["kind", "client_id", "pregain_session"]
    assert sudden.sort(order).equals(every.drop("sudden").sort(order))


# --- bulk -------------------------------------------------------------------------------


def test_a_million_sessions_run_in_bulk():
    rng = np.random.default_rng(7)
    n_clients, n_sessions = 40_000, 25
    scores = np.clip(30 + np.cumsum(rng.normal(-0.6, 4, (n_clients, n_sessions)), axis=1), 0, 63).round().ravel()
    data = pl.DataFrame({
        "client_id": np.repeat(np.arange(n_clients), n_sessions).astype(str),
        "session_number": np.tile(np.arange(n_sessions), n_clients),
        "score": np.where(rng.random(scores.size) < 0.1, np.nan, scores),
    }).with_columns(pl.col("score").fill_nan(None))
    started = time.perf_counter()
    gains = identify_sudden_changes(data, **BDI)
    elapsed = time.perf_counter() - started
    print(f"\nsudden gains over {data.height:,} sessions: {elapsed:.2f} s, {gains.height:,} gains")
    # the time is printed, never asserted; what is asserted is that the bulk run finds, for a
    # sample of clients, exactly the gains the cell-by-cell oracle finds for them
    sample = [str(c) for c in rng.choice(n_clients, 300, replace=False)]
    traced = oracle_on_long(data.filter(pl.col("client_id").is_in(sample)), **BDI)
    assert found(gains.filter(pl.col("client_id").is_in(sample))) == {k for k, v in traced.items() if v}
    assert gains.height > 0


def test_both_kinds_on_one_grid_equal_gains_and_losses_found_apart():
    data = sgdata()
    options = dict(cutoff=7, direction=-1, pct=0.25, alpha=0.05)
    apart = pl.concat([identify_sudden_changes(data, kind=k, **options) for k in ("gain", "loss")])
    both = identify_sudden_changes(data, kind="both", **options)
    assert both.height == 27  # the package's 24 gains and 3 losses
    assert both.sort("kind", "client_id", "pregain_session").equals(apart.sort("kind", "client_id", "pregain_session"))


# --- issue 14: one gain per client, and reversals (create_bysg / create_byperson) --------


def test_reversals_equal_the_packages_create_bysg_example():
    # [T-bysg] df_bysg_expect: sg_reversal_value = post + magnitude / 2, and sg_reversal = 1
    # when a score from the session after the postgain session on is strictly above it.
    from core.analytics.sudden_gains import add_reversals
    expected = {("1", 3): (28.5, True), ("1", 7): (23, False), ("3", 8): (30.5, False), ("4", 3): (27, True),
                ("5", 3): (31, False), ("5", 8): (12.5, False), ("9", 3): (27.5, False), ("10", 2): (30, False),
                ("10", 4): (21, False), ("12", 3): (27, True), ("13", 3): (29.5, False), ("13", 8): (14, False),
                ("14", 2): (30, False), ("18", 3): (29.5, False)}
    ratings = long(BYSG_DATA)
    out = add_reversals(identify_sudden_changes(ratings, **BDI), ratings, direction=-1)
    got = {(c, n): (v, r) for c, n, v, r in out.select("client_id", "pregain_session", "reversal_value",
                                                       "reversed").iter_rows()}
    assert got == expected


def test_a_loss_reverses_when_more_than_half_of_it_is_regained():
    # DOMAIN.md: losses mirror gains. A loss 10 -> 20 on a lower-is-better scale has the
    # reversal value 15; a later 14 (strictly below) reverses it, a later 15 does not.
    from core.analytics.sudden_gains import add_reversals
    data = long({"a": [10, 11, 10, 20, 21, 20, 14], "b": [10, 11, 10, 20, 21, 20, 15]})
    out = add_reversals(identify_sudden_changes(data, **BDI, kind="loss"), data, direction=-1)
    assert out.select("client_id", "reversal_value", "reversed").rows() == [("a", 15.0, True), ("b", 15.0, False)]
