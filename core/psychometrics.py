"""The psychometric rules in one place: reliable change (Jacobson & Truax 1991) and the
boundary rules that say which side of a cutoff or threshold a score falls on, with the
words and symbols the pages print for them.

The catalog (which computes an instrument's threshold from its SD and reliability and
checks a risk item's answer) and the analytics (which classify change, detect ruptures and
raise flags) both import these rules from here, so a boundary is applied and worded the
same way everywhere. Every number is an argument: SDs, reliabilities, cutoffs and rules
come from the catalog, never from this module.

Conventions
-----------
- A change is *reliable* when ``|change| > threshold`` (``rule="gt"``, Jacobson & Truax:
  |RC| > 1.96) or ``|change| >= threshold`` (``rule="ge"``, for thresholds published as
  "a change of N or more").
- A boundary rule ("ge", "gt", "le", "lt") says which scores are on the named side of a
  value: "ge" = score >= value, and so on. Sources disagree on boundaries (PHQ-9 caseness
  >= 10 versus IAPT > 9), so the rule is always explicit.
"""

from __future__ import annotations

import math

# Two-tailed 5 % criterion as written by Jacobson & Truax (1991) and used by suddengains'
# define_crit1_cutoff(). CECPfuns uses the exact normal quantile qnorm(0.975) = 1.959964...,
# which is why its threshold for SD 7.5, r .80 is 9.296925 rather than 9.297096.
RC_Z = 1.96

# Scores are stored as decimals (36.3 - 34.1 = 2.1999999999999993 in binary floating
# point): a change counts as equal to the threshold within this tolerance.
TOLERANCE = 1e-9
RC_RULES = ("gt", "ge")

# Boundary rules: their symbols (also valid SQL) and their words.
BOUNDARY_RULES = ("ge", "gt", "le", "lt")
CLINICAL_RULES = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
RULE_WORDS = {"ge": "at or above", "gt": "above", "le": "at or below", "lt": "below"}


def _check_sd_reliability(sd: float, reliability: float) -> None:
    if not (sd >= 0 and math.isfinite(sd)):
        raise ValueError(f"The standard deviation must be a finite number >= 0, got {sd!r}.")
    if not 0 <= reliability <= 1:
        raise ValueError(
            f"The reliability must lie between 0 and 1, got {reliability!r}: "
            "check the instrument's reliability coefficient in the catalog."
        )


def standard_error(sd: float, reliability: float) -> float:
    """Standard error of measurement: SE = SD * sqrt(1 - r)."""
    _check_sd_reliability(sd, reliability)
    return sd * math.sqrt(1 - reliability)


def s_diff(sd: float, reliability: float) -> float:
    """Standard error of the difference of two scores: S_diff = sqrt(2 * SE^2)."""
    return math.sqrt(2 * standard_error(sd, reliability) ** 2)


def rc_threshold(sd: float, reliability: float, z: float = RC_Z) -> float:
    """Reliable change threshold in points: z * S_diff, z = 1.96 by default (a change
    must exceed it). Pass ``z=scipy.stats.norm.ppf(0.975)`` to match CECPfuns."""
    return z * s_diff(sd, reliability)


def reliable_change_index(first: float, last: float, sd: float, reliability: float) -> float:
    """RC = (last - first) / S_diff; reliable when |RC| > 1.96."""
    return (last - first) / s_diff(sd, reliability)


def is_reliable(change: float, threshold: float, rule: str = "gt") -> bool:
    """Whether a change of `change` points is reliable against `threshold` under `rule`
    ("gt": strictly above, "ge": at or above), within TOLERANCE of the threshold."""
    if rule not in RC_RULES:
        raise ValueError(f"The reliable change rule must be 'gt' or 'ge', got {rule!r}.")
    size = abs(change)
    return size > threshold + TOLERANCE if rule == "gt" else size >= threshold - TOLERANCE


def reliable_words(threshold: float, rule: str = "gt") -> str:
    """The reliable-change boundary as the pages print it."""
    return (f"reliable when |change| > {threshold:g} points (strictly)" if rule == "gt"
            else f"reliable when |change| >= {threshold:g} points")


def compare(score: float, rule: str, value: float) -> bool:
    """Apply a boundary rule ("ge", "gt", "le", "lt"): is `score` on the rule's side of `value`?"""
    if rule == "ge":
        return score >= value
    if rule == "gt":
        return score > value
    if rule == "le":
        return score <= value
    if rule == "lt":
        return score < value
    raise ValueError(f"A boundary rule is one of 'ge', 'gt', 'le', 'lt', got {rule!r}.")


def is_clinical(score: float, cutoff: float, cutoff_clinical: str) -> bool:
    """Whether a score lies in the clinical range under the given boundary rule."""
    if cutoff_clinical not in BOUNDARY_RULES:
        raise ValueError(
            f"cutoff_clinical must be one of 'ge', 'gt', 'le', 'lt' (which scores are clinical), "
            f"got {cutoff_clinical!r}.")
    return compare(score, cutoff_clinical, cutoff)


def clinical_words(rule: str, value: float) -> str:
    """ "clinical when score >= 10" """
    return f"clinical when score {CLINICAL_RULES[rule]} {value:g}"


def total_from_items(item_sum: float, answered: int, items: int, max_missing: int) -> float | None:
    """The total of an instrument from its answered items, each missing answer replaced by
    the mean of the answered ones (the CARE measure's rule, Mercer et al. 2004): the sum of
    `answered` answers (`item_sum`) scaled to `items`. None (not scored) when more than
    `max_missing` of the `items` are missing or none is answered."""
    if not 0 <= answered <= items:
        raise ValueError(f"{answered} answered items of {items}: a session cannot answer more items than exist.")
    if answered == 0 or items - answered > max_missing:
        return None
    return item_sum * items / answered
