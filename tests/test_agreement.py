"""Agreement statistics of the calibration exercise, against their published examples."""

import numpy as np
import polars as pl
import pytest

from core.conference.agreement import code_agreement, fleiss_kappa, icc

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


def test_icc_intervals_equal_the_published_examples():
    # Stata's icc on the same Shrout & Fleiss judges data (webuse judges): one-way random,
    # individual ICC .1657418, 95 % CI -.1329323 to .7225601 (stata.com, "Intraclass
    # correlation coefficients"); two-way random, absolute agreement, individual .2897638,
    # 95 % CI .0187865 to .7610844 (Stata manual [R] icc). Both use McGraw & Wong (1996).
    result = icc(long_ratings(SHROUT_FLEISS))
    assert result.values["ICC(1,1)"] == pytest.approx(0.1657418, abs=1e-7)
    assert result.intervals["ICC(1,1)"] == pytest.approx((-0.1329323, 0.7225601), abs=1e-7)
    assert result.values["ICC(2,1)"] == pytest.approx(0.2897638, abs=1e-7)
    assert result.intervals["ICC(2,1)"] == pytest.approx((0.0187865, 0.7610844), abs=1e-7)
    assert result.level == 0.95


def test_the_agreement_interval_equals_an_independent_computation():
    """The mean squares from statsmodels' two-way ANOVA, then DOMAIN.md's formula with
    scipy's F quantiles, on a table unlike Shrout & Fleiss' (5 raters, 9 targets)."""
    import numpy as np
    from scipy import stats
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    rng = np.random.default_rng(7)
    truth = rng.normal(30, 6, size=9)
    table = np.round(truth[:, None] + rng.normal([0, 1, -2, 0.5, 3], 2.5, size=(9, 5)))
    frame = long_ratings(table.tolist())
    fit = anova_lm(ols("score ~ C(target) + C(rater)", data=frame.to_pandas()).fit())
    msr, msc, mse = fit["mean_sq"].iloc[0], fit["mean_sq"].iloc[1], fit["mean_sq"].iloc[2]
    n, k = table.shape
    rho = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    a, b = k * rho / (n * (1 - rho)), 1 + k * rho * (n - 1) / (n * (1 - rho))
    v = (a * msc + b * mse) ** 2 / ((a * msc) ** 2 / (k - 1) + (b * mse) ** 2 / ((n - 1) * (k - 1)))
    fl, fu = stats.f.isf(0.025, n - 1, v), stats.f.isf(0.025, v, n - 1)
    lower = n * (msr - fl * mse) / (fl * (k * msc + (k * n - k - n) * mse) + n * msr)
    upper = n * (fu * msr - mse) / (k * msc + (k * n - k - n) * mse + n * fu * msr)
    result = icc(frame)
    assert result.values["ICC(2,1)"] == pytest.approx(rho)
    assert result.intervals["ICC(2,1)"] == pytest.approx((lower, upper))
    assert lower < rho < upper
    deviations = np.abs(table - table.mean(axis=1, keepdims=True))
    assert result.mean_abs_difference == pytest.approx(deviations.mean())
    assert icc(frame, level=0.9).intervals["ICC(2,1)"][0] > lower  # a narrower interval at 90 %


# ----------------------------------------------------------------------------- several codes a target

def with_code_lists(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(codes=pl.concat_list("code")).drop("code")


def test_code_agreement_with_one_code_each_is_fleiss_published_kappa():
    """Pooled over the codes, one code each: Fleiss' kappa .210 and mean P_i .378 of the
    published example; each code's kappa is Fleiss' category-specific kappa."""
    from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_kappa
    result = code_agreement(with_code_lists(long_codes(FLEISS)))
    assert result.pooled == pytest.approx(0.210, abs=0.0005)
    assert result.pooled == pytest.approx(fleiss_kappa(long_codes(FLEISS)).kappa)
    assert result.observed == pytest.approx(0.378, abs=0.0005)
    x = np.array(FLEISS, dtype=float)
    n, k = x.shape[0], 14
    per_code = {r["code"]: r for r in result.per_code.iter_rows(named=True)}
    for j in range(5):
        p = x[:, j].sum() / (n * k)
        by_hand = 1 - (x[:, j] * (k - x[:, j])).sum() / (n * k * (k - 1) * p * (1 - p))  # Fleiss 1971, kappa_j
        binary = statsmodels_kappa(np.column_stack([x[:, j], k - x[:, j]]), method="fleiss")
        assert per_code[f"c{j}"]["kappa"] == pytest.approx(by_hand) == pytest.approx(binary)
        assert per_code[f"c{j}"]["given"] == x[:, j].sum()
    lowest = result.divergence.row(0, named=True)
    assert lowest["target"] == 8 and lowest["agreement"] == pytest.approx(32 / 182)  # as Fleiss' P_i


def test_code_agreement_with_several_codes_a_target_is_computed_code_by_code():
    # 3 coders, 4 sessions; a coder may give several codes to a session.
    answers = {1: (["a", "b"], ["a"], ["a", "b"]), 2: (["b"], ["b"], ["c"]),
               3: (["a", "c"], ["a", "c"], ["a", "c"]), 4: (["c"], ["b", "c"], ["b"])}
    frame = pl.DataFrame([{"target": t, "rater": f"r{j}", "codes": codes}
                          for t, row in answers.items() for j, codes in enumerate(row)])
    result = code_agreement(frame)
    from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_kappa
    kappas, weights = {}, {}
    for code in "abc":
        given = np.array([sum(code in c for c in answers[t]) for t in sorted(answers)], dtype=float)
        kappas[code] = statsmodels_kappa(np.column_stack([given, 3 - given]), method="fleiss")
        p = given.sum() / 12
        weights[code] = p * (1 - p)
    # By hand (Fleiss' kappa_j): a given by all or none in every session, 1; b given by 2 of 3
    # in three sessions, 1 - 6 / (4 * 3 * 2 * .25) = 0; c: 1 - 4 / 6 = 1/3. Pooled, each p_j = .5: 4/9.
    assert dict(result.per_code.select("code", "kappa").rows()) == pytest.approx({"a": 1.0, "b": 0.0, "c": 1 / 3})
    assert result.pooled == pytest.approx(4 / 9)
    for code in "abc":
        assert result.per_code.filter(pl.col("code") == code)["kappa"].item() == pytest.approx(kappas[code])
    pooled = sum(weights[c] * kappas[c] for c in "abc") / sum(weights.values())
    assert result.pooled == pytest.approx(pooled)
    # Session 1: {a,b}, {a}, {a,b}: Jaccard 1/2, 1, 1/2 over the three pairs.
    jaccard = {1: (0.5 + 1 + 0.5) / 3, 2: (1 + 0 + 0) / 3, 3: 1.0, 4: (0.5 + 0 + 0.5) / 3}
    assert dict(result.divergence.select("target", "agreement").rows()) == pytest.approx(jaccard)
    assert result.observed == pytest.approx(sum(jaccard.values()) / 4)
    assert result.divergence["target"].to_list() == [2, 4, 1, 3]  # lowest first, ties by session
