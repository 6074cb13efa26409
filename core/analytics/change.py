"""Reliable change and clinical significance (Jacobson & Truax, 1991).

Every number here is an argument: standard deviations, reliabilities, cutoffs and
which side of a cutoff counts as clinical come from the instrument catalog, never
from this module.

Conventions
-----------
- ``direction`` is +1 when a higher score is better (ORS, SRS) and -1 when a lower
  score is better (PHQ-9, BDI-II, OQ-45).
- A change is *reliable* when ``|last - first| > threshold``, strictly, by default
  (``rule="gt"``): DOMAIN.md defines reliable change as |RC| > 1.96, so a change exactly
  equal to the threshold in points is not reliable. Published point thresholds are
  often stated as "a change of N or more" (ORS 5, PHQ-9 6, OQ-45 14); for those the
  catalog says ``rule = "ge"`` and a change of exactly N counts.
- ``cutoff_clinical`` says which scores are clinical: "ge" (score >= cutoff), "gt"
  (score > cutoff), "le" (score <= cutoff), "lt" (score < cutoff). Sources disagree on
  the boundary (PHQ-9 caseness >= 10 versus IAPT > 9), so it is always explicit.
- Categories: **recovered** = reliable improvement, started clinical and ended
  non-clinical (crossed into the functional range); **improved** = any other reliable
  improvement; **unchanged** = change not reliable; **harmed** = reliable
  deterioration, started non-clinical and ended clinical (crossed into the clinical
  range); **deteriorated** = any other reliable deterioration. Without a cutoff only
  improved / unchanged / deteriorated are possible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import polars as pl

from ..psychometrics import (  # noqa: F401  (the rules live there; re-exported for callers)
    CLINICAL_RULES,
    RC_RULES,
    RC_Z,
    TOLERANCE,
    clinical_words,
    is_clinical,
    is_reliable,
    rc_threshold,
    reliable_change_index,
    reliable_words,
    s_diff,
    standard_error,
)

CATEGORIES = ("recovered", "improved", "unchanged", "deteriorated", "harmed")


class Cutoffs(NamedTuple):
    a: float  # two SDs beyond the clinical mean, towards health
    b: float  # two SDs from the functional mean, towards the clinical side
    c: float  # weighted midpoint between the two distributions


def cutoffs(m_clin: float, sd_clin: float, m_fun: float, sd_fun: float, direction: int) -> Cutoffs:
    """Jacobson & Truax cutoffs a, b and c for a clinical and a functional population."""
    _check_direction(direction)
    if sd_clin + sd_fun <= 0:
        raise ValueError("At least one of the two standard deviations must be above 0 to compute cutoff c.")
    a = m_clin + direction * 2 * sd_clin
    b = m_fun - direction * 2 * sd_fun
    c = (sd_clin * m_fun + sd_fun * m_clin) / (sd_clin + sd_fun)
    return Cutoffs(a, b, c)


def _check_direction(direction: int) -> None:
    if direction not in (1, -1):
        raise ValueError(
            f"direction must be +1 (higher scores are better) or -1 (lower scores are better), got {direction!r}."
        )


@dataclass(frozen=True)
class ChangeClassification:
    category: str
    change: float  # last - first, in points
    reliable: bool
    started_clinical: bool | None  # None when no cutoff was given
    ended_clinical: bool | None
    boundary: str  # how the thresholds were applied, to show next to the category


def classify(
    first: float,
    last: float,
    *,
    direction: int,
    threshold: float,
    cutoff: float | None = None,
    cutoff_clinical: str | None = None,
    rule: str = "gt",
) -> ChangeClassification:
    """Classify the change from the first to the last score of one client. ``rule``
    is "gt" (reliable when |change| > threshold) or "ge" (>= threshold)."""
    _check_direction(direction)
    if not threshold >= 0:
        raise ValueError(f"The reliable change threshold must be a number >= 0 points, got {threshold!r}.")
    if rule not in RC_RULES:
        raise ValueError(f"The reliable change rule must be 'gt' or 'ge', got {rule!r}.")
    change = last - first
    reliable = is_reliable(change, threshold, rule)
    improved = reliable and direction * change > 0
    worsened = reliable and direction * change < 0
    boundary = reliable_words(threshold, rule)
    started = ended = None
    if cutoff is not None:
        if cutoff_clinical is None:
            raise ValueError("A cutoff needs cutoff_clinical ('ge', 'gt', 'le' or 'lt') to say which side is clinical.")
        started = is_clinical(first, cutoff, cutoff_clinical)
        ended = is_clinical(last, cutoff, cutoff_clinical)
        boundary += f"; {clinical_words(cutoff_clinical, cutoff)}"
    if improved:
        category = "recovered" if started is True and ended is False else "improved"
    elif worsened:
        category = "harmed" if started is False and ended is True else "deteriorated"
    else:
        category = "unchanged"
    return ChangeClassification(category, change, reliable, started, ended, boundary)


def clinical_expr(score: pl.Expr) -> pl.Expr:
    """Whether `score` is in the clinical range, by the columns cutoff and cutoff_clinical
    (null when either is null)."""
    rule, cut = pl.col("cutoff_clinical"), pl.col("cutoff")
    return (
        pl.when(rule == "ge").then(score >= cut)
        .when(rule == "gt").then(score > cut)
        .when(rule == "le").then(score <= cut)
        .when(rule == "lt").then(score < cut)
    )


def _reliable_expr(rules: bool) -> pl.Expr:
    size, threshold = (pl.col("last") - pl.col("first")).abs(), pl.col("threshold")
    strict = size > threshold + TOLERANCE
    if not rules:
        return strict
    return pl.when(pl.col("rc_rule") == "ge").then(size >= threshold - TOLERANCE).otherwise(strict)


def category_expr(rules: bool = False) -> pl.Expr:
    """Polars expression for the change category over columns first, last, threshold,
    cutoff, cutoff_clinical, direction (same rules as :func:`classify`), and rc_rule
    ("gt" or "ge") when `rules` is true.

    Null first or last gives a null category; a null cutoff gives no recovered/harmed.
    """
    change = pl.col("last") - pl.col("first")
    reliable = _reliable_expr(rules)
    signed = change * pl.col("direction")
    has_cutoff = pl.col("cutoff").is_not_null()
    started = clinical_expr(pl.col("first"))
    ended = clinical_expr(pl.col("last"))
    return (
        pl.when(pl.col("first").is_null() | pl.col("last").is_null()).then(None)
        .when(reliable & (signed > 0) & has_cutoff & started & ended.not_()).then(pl.lit("recovered"))
        .when(reliable & (signed > 0)).then(pl.lit("improved"))
        .when(reliable & (signed < 0) & has_cutoff & started.not_() & ended).then(pl.lit("harmed"))
        .when(reliable & (signed < 0)).then(pl.lit("deteriorated"))
        .otherwise(pl.lit("unchanged"))
        .alias("category")
    )


_BULK_COLUMNS = ("client_id", "instrument", "first", "last", "threshold", "cutoff", "cutoff_clinical", "direction")


def classify_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``change``, ``reliable`` and ``category`` to a frame with one row per client
    and instrument (columns client_id, instrument, first, last, threshold, cutoff,
    cutoff_clinical, direction; optionally rc_rule, "gt" or "ge", default "gt").
    Vectorised: no Python loop per client."""
    missing = [c for c in _BULK_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"The change table lacks the column(s) {', '.join(missing)}; expected {', '.join(_BULK_COLUMNS)}."
        )
    rules = "rc_rule" in frame.columns
    bad = frame.filter(
        ~pl.col("direction").is_in([1, -1])
        | pl.col("direction").is_null()
        | pl.col("threshold").is_null()
        | (pl.col("threshold") < 0)
        | (pl.col("cutoff").is_not_null() & ~pl.col("cutoff_clinical").is_in(list(CLINICAL_RULES)).fill_null(False))
        | (~pl.col("rc_rule").is_in(list(RC_RULES)).fill_null(False) if rules else pl.lit(False))
    )
    if bad.height:
        rows = ", ".join(f"{r['client_id']}/{r['instrument']}" for r in bad.head(5).iter_rows(named=True))
        raise ValueError(
            f"{bad.height} row(s) of the change table have an invalid direction (+1/-1), threshold (>= 0) or "
            f"cutoff_clinical ('ge', 'gt', 'le', 'lt' when a cutoff is set) or rc_rule ('gt', 'ge'), e.g. {rows}: fix the instrument catalog."
        )
    return frame.with_columns(
        change=pl.col("last") - pl.col("first"),
        reliable=_reliable_expr(rules),
        category=category_expr(rules),
    )
