"""Agreement in a calibration exercise: trainees rate the alliance or code the themes of one
case blind, and the group sees how far they agree and where they diverge.

- Ratings (numbers): intraclass correlations after Shrout & Fleiss (1979) from the two-way
  ANOVA of a targets x raters table: ICC(1,1), ICC(2,1), ICC(3,1) for one rater and
  ICC(1,k), ICC(2,k), ICC(3,k) for the mean of k raters. ICC(2,1) (two-way random,
  absolute agreement) answers "would another trainee give the same score", the usual
  question of a calibration exercise.
- Codes (categories): Fleiss' kappa (1971) over targets x categories counts, computed by
  statsmodels; each target's own agreement P_i says where the group diverged.

A target is what is rated: a session, or a session and scale. Only targets every rater
rated enter the statistics (the formulas need a complete table); the others are listed.

Confidence intervals follow McGraw & Wong (1996) as the R package irr computes them
(`icc(..., model = "twoway", type = "agreement")`): for ICC(2,1), absolute agreement, an F
distribution with Satterthwaite's approximate denominator degrees of freedom; for ICC(1,1)
the exact F interval. Sessions of one case vary little, so beside the ICC an absolute
figure says how far apart the scores are: the mean absolute difference of each score from
its session's mean.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl
from scipy.stats import f as f_dist
from statsmodels.stats.inter_rater import fleiss_kappa as _fleiss_kappa


class IccResult(NamedTuple):
    values: dict[str, float]      # "ICC(1,1)" ... "ICC(3,k)"
    targets: int
    raters: int
    left_out: list               # targets not rated by every rater
    divergence: pl.DataFrame     # target, mean, sd, low, high: largest spread first
    intervals: dict[str, tuple[float, float]] = {}  # "ICC(2,1)", "ICC(1,1)": (lower, upper)
    level: float = 0.95
    mean_abs_difference: float = float("nan")  # mean |score - the session's mean|, in points


def agreement_interval(bms: float, jms: float, ems: float, n: int, k: int, level: float = 0.95
                       ) -> tuple[float, float]:
    """The `level` confidence interval of ICC(2,1) = ICC(A,1), two-way random, absolute
    agreement, one rater: McGraw & Wong (1996), Table 7, as irr::icc computes it. bms, jms,
    ems: the mean squares of targets, raters and the residual; n targets, k raters."""
    alpha = (1 - level) / 2
    rho = (bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n)
    a = k * rho / (n * (1 - rho))
    b = 1 + k * rho * (n - 1) / (n * (1 - rho))
    v = (a * jms + b * ems) ** 2 / ((a * jms) ** 2 / (k - 1) + (b * ems) ** 2 / ((n - 1) * (k - 1)))
    fl = f_dist.ppf(1 - alpha, n - 1, v)
    fu = f_dist.ppf(1 - alpha, v, n - 1)
    lower = n * (bms - fl * ems) / (fl * (k * jms + (k * n - k - n) * ems) + n * bms)
    upper = n * (fu * bms - ems) / (k * jms + (k * n - k - n) * ems + n * fu * bms)
    return float(lower), float(upper)


def oneway_interval(bms: float, wms: float, n: int, k: int, level: float = 0.95) -> tuple[float, float]:
    """The `level` confidence interval of ICC(1,1), one-way random (McGraw & Wong 1996)."""
    alpha = (1 - level) / 2
    f_obs = bms / wms
    fl = f_obs / f_dist.ppf(1 - alpha, n - 1, n * (k - 1))
    fu = f_obs * f_dist.ppf(1 - alpha, n * (k - 1), n - 1)
    return float((fl - 1) / (fl + k - 1)), float((fu - 1) / (fu + k - 1))


def _complete(frame: pl.DataFrame, value: str) -> tuple[pl.DataFrame, list]:
    raters = frame["rater"].n_unique()
    per_target = frame.group_by("target").agg(pl.col("rater").n_unique().alias("n"))
    full = per_target.filter(pl.col("n") == raters)["target"]
    left_out = sorted(per_target.filter(pl.col("n") < raters)["target"].to_list())
    return frame.filter(pl.col("target").is_in(full.implode())).drop_nulls(value), left_out


def icc(ratings: pl.DataFrame, level: float = 0.95) -> IccResult:
    """ICCs of a long table target, rater, score (one score per target and rater), with
    `level` confidence intervals of ICC(2,1) and ICC(1,1)."""
    if ratings.select(pl.struct("target", "rater").is_duplicated().any()).item():
        raise ValueError("A rater scored a target twice: keep one score per target and rater.")
    complete, left_out = _complete(ratings, "score")
    table = complete.pivot(on="rater", index="target", values="score").sort("target")
    x = table.drop("target").to_numpy().astype(float)
    n, k = x.shape
    if n < 2 or k < 2:
        raise ValueError(f"An ICC needs at least 2 targets rated by at least 2 raters each; got {n} target(s) "
                         f"and {k} rater(s) with complete ratings.")
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_total = ((x - grand) ** 2).sum()
    bms = ss_rows / (n - 1)                                # between targets
    wms = (ss_total - ss_rows) / (n * (k - 1))              # within targets
    jms = ss_cols / (k - 1)                                 # between raters
    ems = (ss_total - ss_rows - ss_cols) / ((n - 1) * (k - 1))  # residual
    values = {
        "ICC(1,1)": (bms - wms) / (bms + (k - 1) * wms),
        "ICC(2,1)": (bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n),
        "ICC(3,1)": (bms - ems) / (bms + (k - 1) * ems),
        "ICC(1,k)": (bms - wms) / bms,
        "ICC(2,k)": (bms - ems) / (bms + (jms - ems) / n),
        "ICC(3,k)": (bms - ems) / bms,
    }
    divergence = (complete.group_by("target").agg(mean=pl.col("score").mean(), sd=pl.col("score").std(),
                                                  low=pl.col("score").min(), high=pl.col("score").max())
                  .sort(["sd", "target"], descending=[True, False]))
    with np.errstate(divide="ignore", invalid="ignore"):
        intervals = {"ICC(2,1)": agreement_interval(bms, jms, ems, n, k, level),
                     "ICC(1,1)": oneway_interval(bms, wms, n, k, level)}
    mean_abs = float(np.abs(x - x.mean(axis=1, keepdims=True)).mean())
    return IccResult({key: float(v) for key, v in values.items()}, n, k, left_out, divergence, intervals, level,
                     mean_abs)


class KappaResult(NamedTuple):
    kappa: float
    targets: int
    raters: int
    left_out: list
    divergence: pl.DataFrame     # target, agreement (P_i, 0-1), codes (code: count): lowest agreement first


def fleiss_kappa(codes: pl.DataFrame) -> KappaResult:
    """Fleiss' kappa of a long table target, rater, code (one code per target and rater)."""
    if codes.select(pl.struct("target", "rater").is_duplicated().any()).item():
        raise ValueError("A rater coded a target twice: keep one code per target and rater.")
    complete, left_out = _complete(codes, "code")
    counts = complete.pivot(on="code", index="target", values="rater", aggregate_function="len").fill_null(0)
    counts = counts.sort("target")
    x = counts.drop("target").to_numpy().astype(float)
    n = x.shape[0]
    k = int(x[0].sum()) if n else 0
    if n < 2 or k < 2:
        raise ValueError(f"Fleiss' kappa needs at least 2 targets coded by at least 2 raters each; got {n} "
                         f"target(s) and {k} rater(s) with complete codes.")
    agreement = (np.square(x).sum(axis=1) - k) / (k * (k - 1))
    names = counts.drop("target").columns
    divergence = pl.DataFrame({
        "target": counts["target"], "agreement": agreement,
        "codes": [", ".join(f"{names[j]}: {int(c)}" for j, c in enumerate(row) if c) for row in x],
    }).sort(["agreement", "target"])
    return KappaResult(float(_fleiss_kappa(x, method="fleiss")), n, k, left_out, divergence)


class CodeAgreement(NamedTuple):
    pooled: float                # Fleiss' kappa pooled over the codes (one code each: Fleiss' kappa itself)
    observed: float              # mean pairwise Jaccard agreement over targets
    targets: int
    raters: int
    left_out: list
    per_code: pl.DataFrame       # code, kappa, agreement, given, targets: least agreement first
    divergence: pl.DataFrame     # target, agreement (mean pairwise Jaccard, 0-1), codes: lowest first


def code_agreement(codes: pl.DataFrame) -> CodeAgreement:
    """Agreement of a long table target, rater, codes (a list of codes: a coder may give
    several codes to a target), code by code.

    Each code is a yes/no judgement per target: its kappa is Fleiss' (1971) kappa over the
    two categories given / not given, which equals Fleiss' category-specific kappa
    kappa_j = 1 - sum_i x_ij (k - x_ij) / (n k (k - 1) p_j q_j). The pooled kappa (De Vries et
    al. 2008) is sum_j p_j q_j kappa_j / sum_j p_j q_j; with one code per coder and target it
    is Fleiss' overall kappa (Fleiss 1971 shows the overall kappa is this weighted mean). A
    target's agreement is the mean over rater pairs of |A and B| / |A or B| (Jaccard), which
    with one code each is Fleiss' P_i."""
    if codes.select(pl.struct("target", "rater").is_duplicated().any()).item():
        raise ValueError("A rater coded a target twice: keep one answer (a list of codes) per target and rater.")
    complete, left_out = _complete(codes.filter(pl.col("codes").list.len() > 0), "codes")
    table = complete.sort("target", "rater")
    targets = sorted(table["target"].unique().to_list())
    raters = sorted(table["rater"].unique().to_list())
    n, k = len(targets), len(raters)
    if n < 2 or k < 2:
        raise ValueError(f"Agreement needs at least 2 targets coded by at least 2 raters each; got {n} target(s) "
                         f"and {k} rater(s) with complete codes.")
    sets = {(r["target"], r["rater"]): set(r["codes"]) for r in table.iter_rows(named=True)}
    used = sorted({c for s in sets.values() for c in s})
    # x[i, j]: how many raters gave code j to target i.
    x = np.array([[sum(code in sets[(t, r)] for r in raters) for code in used] for t in targets], dtype=float)
    p = x.sum(axis=0) / (n * k)
    pq = p * (1 - p)
    disagreement = (x * (k - x)).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappas = 1 - disagreement / (n * k * (k - 1) * pq)
        pooled = float(1 - disagreement.sum() / (n * k * (k - 1) * pq.sum()))
    agreement = 1 - (2 * x * (k - x) / (k * (k - 1))).mean(axis=0)  # share of agreeing rater pairs, per code
    per_code = pl.DataFrame({"code": used, "kappa": kappas, "agreement": agreement,
                             "given": x.sum(axis=0).astype(int), "targets": (x > 0).sum(axis=0).astype(int)},
                            schema={"code": pl.String, "kappa": pl.Float64, "agreement": pl.Float64,
                                    "given": pl.Int64, "targets": pl.Int64}
                            ).sort(["kappa", "code"], nulls_last=True).with_columns(pl.col("kappa").fill_nan(None))
    pairs = [(a, b) for i, a in enumerate(raters) for b in raters[i + 1:]]

    def jaccard(a: set, b: set) -> float:
        return len(a & b) / len(a | b) if a | b else 1.0

    per_target = [float(np.mean([jaccard(sets[(t, a)], sets[(t, b)]) for a, b in pairs])) for t in targets]
    divergence = pl.DataFrame({
        "target": targets, "agreement": per_target,
        "codes": [", ".join(f"{used[j]}: {int(c)}" for j, c in enumerate(row) if c) for row in x],
    }).sort(["agreement", "target"])
    return CodeAgreement(pooled, float(np.mean(per_target)), n, k, left_out, per_code, divergence)
