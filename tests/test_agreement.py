"""Agreement statistics of the calibration exercise, against their published examples."""

import polars as pl
import pytest

from core.conference.agreement import fleiss_kappa, icc

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges, and the ICCs of their Table 4.
SHROUT_FLEISS = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
SHROUT_FLEISS_ICC = {"ICC(1,1)": 0.17, "ICC(2,1)": 0.29, "ICC(3,1)": 0.71,
                     "ICC(1,k)": 0.44, "ICC(2,k)": 0.62, "ICC(3,k)": 0.91}

# Fleiss (1971): 10 subjects, 14 raters, 5 categories; kappa = 0.210.
FLEISS = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
          [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]


def long_ratings(table) -> pl.DataFrame:
    return pl.DataFrame([{"target": t, "rater": f"r{j}", "score": float(s)}
                         for t, row in enumerate(table, start=1) for j, s in enumerate(row)])


def long_codes(counts) -> pl.DataFrame:
    rows = []
    for t, row in enumerate(counts, start=1):
        rater = 0
        for category, count in enumerate(row):
            for _ in range(count):
                rows.append({"target": t, "rater": f"r{rater}", "code": f"c{category}"})
                rater += 1
    return pl.DataFrame(rows)


def test_icc_equals_shrout_and_fleiss():
    result = icc(long_ratings(SHROUT_FLEISS))
    assert (result.targets, result.raters, result.left_out) == (6, 4, [])
    for key, expected in SHROUT_FLEISS_ICC.items():
        assert result.values[key] == pytest.approx(expected, abs=0.005), key


def test_icc_shows_where_raters_diverge_and_what_was_left_out():
    ratings = long_ratings(SHROUT_FLEISS).vstack(pl.DataFrame({"target": [7], "rater": ["r0"], "score": [3.0]}))
    result = icc(ratings)
    assert result.left_out == [7] and result.targets == 6
    assert result.divergence["target"][0] == 1  # 9, 2, 5, 8: the widest spread (SD 3.16)
    assert result.divergence["sd"].is_sorted(descending=True)


def test_perfect_agreement_gives_one():
    result = icc(long_ratings([[1, 1, 1], [5, 5, 5], [3, 3, 3]]))
    assert all(v == pytest.approx(1.0) for v in result.values.values())


def test_fleiss_kappa_equals_the_published_example():
    result = fleiss_kappa(long_codes(FLEISS))
    assert result.kappa == pytest.approx(0.210, abs=0.0005)
    assert (result.targets, result.raters) == (10, 14)
    lowest = result.divergence.row(0, named=True)
    assert lowest["target"] == 8 and lowest["agreement"] == pytest.approx(32 / 182)  # 2, 5, 3, 2, 2
    assert result.divergence.filter(pl.col("target") == 1)["agreement"].item() == 1.0


def test_a_rater_who_rated_twice_is_refused_with_a_sentence():
    ratings = long_ratings(SHROUT_FLEISS)
    with pytest.raises(ValueError, match="twice"):
        icc(ratings.vstack(ratings.head(1)))
    with pytest.raises(ValueError, match="at least 2 targets"):
        icc(ratings.filter(pl.col("target") == 1))
