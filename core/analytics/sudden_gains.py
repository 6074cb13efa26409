"""Sudden gains and sudden losses (Tang & DeRubeis, 1999), for all clients at once.

The reference implementation is the R package **suddengains** (Wiedemann, Thew, Stott
& Ehlers 2020, PLOS ONE, MIT licence); the rules below restate its ``identify_sg`` /
``identify_sl`` in this project's long format. On its example data ``sgdata`` the
results equal the package's published output (see tests/test_sudden_gains.py).

How sessions map to the package's columns
-----------------------------------------
The package works on a wide table whose columns are the measurement points in order
(``sg_var_list``). Here each client's series is laid out on a dense grid of session
numbers, so a session without a score is a gap, never a shift of the series
(sessions 1, 2, 4 means session 3 is missing):

- ``include_intake=False`` (the package's ``identify_sg_1to2 = FALSE``): the grid
  starts at session 1 and scores of earlier sessions (session 0 = baseline/intake) are
  not used at all, not even inside the windows. The first interval examined is 2->3.
- ``include_intake=True`` (``identify_sg_1to2 = TRUE`` with the baseline as first
  column): the grid starts at session 0, the first interval examined is 1->2, and the
  baseline score can enter the pregain window of the intervals 1->2 and 2->3.
- The interval into a client's last scored session is never examined (its postgain
  window would hold a single score).

For pregain session N and postgain session N+1 (lower is better, a gain):

1. ``x_N - x_{N+1} >= cutoff`` (points);
2. ``x_N - x_{N+1} >= pct * x_N``;
3. ``mean(pre) - mean(post) > t * pooled SD``, where pre = the scores present among
   sessions N-2, N-1, N (never before the grid's first session) and post = those among
   N+1, N+2, N+3 (never after the client's last session). Missing scores are skipped,
   the window is not extended. t = ``|qt(alpha/2, n_pre + n_post - 2)|``; pooled SD =
   ``sqrt(((n_pre-1) sd_pre^2 + (n_post-1) sd_post^2) / (n_pre + n_post - 2))``.
   With fewer than 2 scores on either side the interval is undecided.

A missing pregain or postgain score leaves the interval undecided (the package's NA),
as does criterion 3 without 2 scores per side. Every gain of a client is reported; the
largest is marked (``is_largest``, ties go to the earliest, as in the package's
``multiple_sg_select = "largest"``); :func:`select_one_per_client` applies the
package's other choices ("first", "last", "smallest").

Direction and kind
------------------
A gain is an improvement: a decrease when lower is better (``direction=-1``), an
increase when higher is better (``direction=+1``); a loss is the opposite. ``magnitude``
is always reported as a positive number of points in the direction sought (the package
reports ``pre - post``, which is negative for its losses), and ``change_pct`` is
``magnitude / pregain_score``.

Criterion 2 for increases: the package's ``identify_sl`` (and ``check_interval(identify
= "sl")``) writes it as ``pre - post <= pct * pre``, which every loss that passes
criterion 1 with non-negative scores satisfies, so the package in effect does not apply
criterion 2 to losses. DOMAIN.md asks for the mirror image, ``post - pre >= pct * pre``,
and that is the default (``increase_pct_rule="mirror"``);
``increase_pct_rule="suddengains"`` reproduces the package's formula. On ``sgdata`` both
give the same three losses.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl

PAD = 3  # empty cells between clients, so window shifts of up to 3 never cross into another client
MAX_SESSION_NUMBER = 10_000  # the grid is dense per client; a larger number is a data error, not a therapy
INPUT_COLUMNS = ("client_id", "session_number", "score")


def critical_value(n_pre: int, n_post: int, alpha: float = 0.05) -> float:
    """Two-tailed critical t for criterion 3: |qt(alpha/2, n_pre + n_post - 2)|."""
    df = n_pre + n_post - 2
    if df < 1:
        raise ValueError(f"Criterion 3 needs at least 3 scores in all (here {n_pre} + {n_post}).")
    _check_alpha(alpha)
    return float(abs(_t_quantile(alpha / 2, df)))


def _t_quantile(p, df):
    """Student's t quantile (R's qt): scipy's `stdtrit`, the function `scipy.stats.t.ppf`
    evaluates, imported here on first use: `scipy.stats` costs a second at start-up, and
    every page would pay it."""
    from scipy.special import stdtrit
    return stdtrit(df, p)


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha!r}.")


def _validate(ratings: pl.DataFrame, cutoff, pct, alpha, direction, kind, increase_pct_rule) -> None:
    missing = [c for c in INPUT_COLUMNS if c not in ratings.columns]
    if missing:
        raise ValueError(
            f"The ratings lack the column(s) {', '.join(missing)}; sudden gains need client_id, session_number, score."
        )
    if "instrument" in ratings.columns and ratings["instrument"].n_unique() > 1:
        raise ValueError(
            "The ratings hold more than one instrument "
            f"({', '.join(map(str, ratings['instrument'].unique().sort().to_list()[:5]))}): "
            "sudden gains are computed on one measure at a time, filter the ratings first."
        )
    if not ratings.schema["session_number"].is_integer():
        raise ValueError(
            f"session_number must be whole numbers, got the type {ratings.schema['session_number']}."
        )
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 (higher is better) or -1 (lower is better), got {direction!r}.")
    if kind not in ("gain", "loss"):
        raise ValueError(f"kind must be 'gain' or 'loss', got {kind!r}.")
    if cutoff is not None and not cutoff > 0:
        raise ValueError(f"The criterion 1 cutoff is a positive number of points (or None to skip it), got {cutoff!r}.")
    if pct is not None and not 0 <= pct <= 1:
        raise ValueError(f"The criterion 2 share must lie between 0 and 1 (0.25 = 25 %), got {pct!r}.")
    _check_alpha(alpha)
    if increase_pct_rule not in ("mirror", "suddengains"):
        raise ValueError(f"increase_pct_rule must be 'mirror' or 'suddengains', got {increase_pct_rule!r}.")


def _grid(ratings: pl.DataFrame, first_session: int, trim: bool = False):
    """Lay every client's scores on a dense session grid, clients one after another,
    separated by PAD empty cells. Returns the flat array and per-client layout (`begin`:
    the session number of each client's first grid cell).

    `trim` starts each client's grid at the client's first score instead of at
    `first_session`: the cells left out are empty, and an interval whose pregain window
    lies there has at most one pregain score, so it is never a sudden change. For speed
    when only the sudden changes are wanted (a series cut to its recent scores has a long
    empty start)."""
    scored = (
        ratings.select(INPUT_COLUMNS)
        .filter(pl.col("score").is_not_null() & (pl.col("session_number") >= first_session))
        .sort("client_id", "session_number")
    )
    client_no = scored["client_id"].rle_id().to_numpy()
    sessions = scored["session_number"].to_numpy().astype(np.int64)
    # Sorted, a session scored twice lies next to itself: found in one pass over the arrays
    # (hashing every (client, session) pair cost as much as the rest of the grid).
    if np.any((client_no[1:] == client_no[:-1]) & (sessions[1:] == sessions[:-1])):
        dup = scored.filter(pl.struct("client_id", "session_number").is_duplicated())
        row = dup.row(0, named=True)
        raise ValueError(
            f"Client {row['client_id']} has {dup.filter(pl.col('client_id') == row['client_id']).height} scores "
            f"for session {row['session_number']}: keep one score per client and session "
            "before looking for sudden gains."
        )
    scores = scored["score"].cast(pl.Float64).to_numpy()
    if scores.size and not np.isfinite(scores).all():
        raise ValueError("Some scores are NaN or infinite: store a missing score as a missing value (null).")
    if sessions.size and sessions.max() > MAX_SESSION_NUMBER:
        row = scored.row(int(sessions.argmax()), named=True)
        raise ValueError(
            f"Client {row['client_id']} has a score at session {row['session_number']}; session numbers above "
            f"{MAX_SESSION_NUMBER} look like a data error (a date or an id in the session column?)."
        )
    n_clients = int(client_no[-1]) + 1 if client_no.size else 0
    starts = np.flatnonzero(np.r_[True, client_no[1:] != client_no[:-1]]) if client_no.size else np.array([], int)
    last = np.maximum.reduceat(sessions, starts) if n_clients else np.array([], np.int64)
    if trim and n_clients:
        begin = sessions[starts]  # sorted by session within each client
    else:
        begin = np.full(n_clients, first_session, np.int64)
    span = last - begin + 1  # grid length per client
    block = span + PAD
    base = PAD + np.cumsum(block) - block  # flat index of each client's first grid session
    flat = np.full(PAD + int(block.sum()), np.nan)
    flat[base[client_no] + sessions - begin[client_no]] = scores
    client_ids = scored["client_id"].gather(starts)
    return flat, base, span, begin, client_ids


def _null_where(flag: pl.Expr, column: str) -> pl.Expr:
    return pl.when(flag).then(None).otherwise(pl.col(column)).alias(column)


KINDS = ("gain", "loss")


def examine_intervals(
    ratings: pl.DataFrame,
    *,
    cutoff: float | None,
    direction: int,
    kind: Literal["gain", "loss", "both"] = "gain",
    pct: float | None = 0.25,
    alpha: float = 0.05,
    include_intake: bool = False,
    critical_value: float | None = None,
    increase_pct_rule: Literal["mirror", "suddengains"] = "mirror",
    only_sudden: bool = False,
) -> pl.DataFrame:
    """Every session-to-session interval the package would examine, with each criterion.

    ``cutoff=None`` or ``pct=None`` switches criterion 1 or 2 off (the package's NULL);
    ``critical_value`` fixes t for every interval (the package's ``sg_crit3_adjust =
    FALSE``). ``sudden`` is null where the package gives NA (undecided). See the module
    docstring for the session mapping. ``kind="both"`` examines gains and losses on one
    grid (rows for gains first, then losses; the ``kind`` column tells them apart).
    """
    kinds = KINDS if kind == "both" else (kind,)
    for k in kinds:
        _validate(ratings, cutoff, pct, alpha, direction, k, increase_pct_rule)
    first_session = 0 if include_intake else 1
    windows = _windows(*_grid(ratings, first_session, trim=only_sudden), alpha, critical_value)
    parts = [_decide(windows, k, cutoff=cutoff, direction=direction, pct=pct,
                     increase_pct_rule=increase_pct_rule, only_sudden=only_sudden) for k in kinds]
    return parts[0] if len(parts) == 1 else pl.concat(parts)


def _windows(flat, base, span, begin, client_ids, alpha, critical_value) -> dict:
    """The pregain and postgain windows of every interval and criterion 3's statistics:
    the same for gains and losses."""
    # Pregain grid positions 1 .. span-3 (0-based): the package's columns 2 .. ncol-2.
    n_int = np.maximum(span - 3, 0)
    owner = np.repeat(np.arange(span.size), n_int)
    pos = np.arange(n_int.sum()) - np.repeat(np.cumsum(n_int) - n_int, n_int) + 1
    at = base[owner] + pos

    pre = flat[at[None, :] + np.array([-2, -1, 0])[:, None]]
    post = flat[at[None, :] + np.array([1, 2, 3])[:, None]]
    n_pre = (~np.isnan(pre)).sum(axis=0)
    n_post = (~np.isnan(post)).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        pre_mean = np.nansum(pre, axis=0) / n_pre
        post_mean = np.nansum(post, axis=0) / n_post
        ss = np.nansum((pre - pre_mean) ** 2, axis=0) + np.nansum((post - post_mean) ** 2, axis=0)
        dof = n_pre + n_post - 2
        pooled_sd = np.sqrt(ss / dof)
    decided3 = (n_pre >= 2) & (n_post >= 2)
    if critical_value is None:
        table = np.full(7, np.nan)
        table[2:5] = np.abs(_t_quantile(alpha / 2, np.arange(2, 5)))
        t_crit = table[np.where(decided3, dof, 0)]
    else:
        t_crit = np.where(decided3, float(critical_value), np.nan)
    return {"owner": owner, "pos": pos, "begin": begin, "client_ids": client_ids, "pre_score": pre[2], "post_score": post[0],
            "n_pre": n_pre, "n_post": n_post, "pre_mean": pre_mean, "post_mean": post_mean,
            "pooled_sd": pooled_sd, "decided3": decided3, "t_crit": t_crit}


def _decide(w: dict, kind: str, *, cutoff, direction, pct, increase_pct_rule,
            only_sudden) -> pl.DataFrame:
    """Criteria 1 to 3 for one kind (gain or loss) over the windows of `_windows`."""
    pre_score, post_score, t_crit, decided3 = w["pre_score"], w["post_score"], w["t_crit"], w["decided3"]
    # +1 when the change sought is a decrease (gain on lower-is-better, loss on higher-is-better).
    sign = 1.0 if (kind == "gain") == (direction == -1) else -1.0
    change = sign * (pre_score - post_score)
    scores_present = ~np.isnan(pre_score) & ~np.isnan(post_score)
    with np.errstate(invalid="ignore"):
        crit1 = change >= cutoff if cutoff is not None else np.ones_like(change, bool)
        if pct is None:
            crit2 = np.ones_like(change, bool)
        elif sign < 0 and increase_pct_rule == "suddengains":
            crit2 = change >= -pct * pre_score
        else:
            crit2 = change >= pct * pre_score
        crit3 = sign * (w["pre_mean"] - w["post_mean"]) > t_crit * w["pooled_sd"]
    applied12 = cutoff is not None or pct is not None
    decided = decided3 & (scores_present | (not applied12))
    sudden = decided & crit1 & crit2 & crit3

    keep = sudden if only_sudden else np.ones_like(sudden)
    pregain = w["pos"] + w["begin"][w["owner"]]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(pre_score != 0, change / pre_score, np.nan)
    n_rows = int(keep.sum())
    unknown = ~scores_present[keep]
    out = pl.DataFrame(
        {
            "client_id": w["client_ids"].gather(w["owner"][keep]),
            "kind": pl.Series([kind] * n_rows, dtype=pl.String),
            "pregain_session": pregain[keep],
            "postgain_session": pregain[keep] + 1,
            "pregain_score": pre_score[keep],
            "postgain_score": post_score[keep],
            "magnitude": change[keep],
            "change_pct": share[keep],
            "pre_mean": w["pre_mean"][keep],
            "post_mean": w["post_mean"][keep],
            "pooled_sd": w["pooled_sd"][keep],
            "n_pre": w["n_pre"][keep].astype(np.int8),
            "n_post": w["n_post"][keep].astype(np.int8),
            "critical_value": t_crit[keep],
            "sg_crit1": np.where(unknown, False, crit1[keep]) if cutoff is not None else np.zeros(n_rows, bool),
            "sg_crit2": np.where(unknown, False, crit2[keep]) if pct is not None else np.zeros(n_rows, bool),
            "sg_crit3": crit3[keep],
            "sudden": sudden[keep],
            "_unknown": unknown,
            "_undecided3": ~decided3[keep],
            "_undecided": ~decided[keep],
        }
    )
    # Null where the package has NA: a criterion switched off, or not enough scores to decide.
    return out.with_columns(
        pl.col(pl.Float64).fill_nan(None),
        _null_where(pl.col("_unknown") | (cutoff is None), "sg_crit1"),
        _null_where(pl.col("_unknown") | (pct is None), "sg_crit2"),
        _null_where(pl.col("_undecided3"), "sg_crit3"),
        _null_where(pl.col("_undecided"), "sudden"),
    ).drop("_unknown", "_undecided3", "_undecided")


def identify_sudden_changes(
    ratings: pl.DataFrame,
    *,
    cutoff: float | None,
    direction: int,
    kind: Literal["gain", "loss", "both"] = "gain",
    pct: float | None = 0.25,
    alpha: float = 0.05,
    include_intake: bool = False,
    critical_value: float | None = None,
    increase_pct_rule: Literal["mirror", "suddengains"] = "mirror",
) -> pl.DataFrame:
    """One row per sudden gain (``kind="gain"``) or sudden loss (``kind="loss"``) in a
    long table ``client_id, session_number, score`` of one instrument, all clients at
    once; ``kind="both"`` finds both on one grid. Adds ``n_in_client`` (the package's
    ``sg_freq_byperson``) and ``is_largest``, per client and kind.
    """
    found = examine_intervals(
        ratings,
        cutoff=cutoff,
        direction=direction,
        kind=kind,
        pct=pct,
        alpha=alpha,
        include_intake=include_intake,
        critical_value=critical_value,
        increase_pct_rule=increase_pct_rule,
        only_sudden=True,
    ).drop("sudden")
    by_client = ["client_id", "kind"]
    largest = pl.col("magnitude") == pl.col("magnitude").max().over(by_client)
    return found.with_columns(
        n_in_client=pl.len().over(by_client).cast(pl.Int32),
        is_largest=largest
        & (pl.col("pregain_session") == pl.col("pregain_session").filter(largest).min().over(by_client)),
    )


def select_one_per_client(
    changes: pl.DataFrame, rule: Literal["first", "last", "smallest", "largest"] = "largest"
) -> pl.DataFrame:
    """Keep one gain (or loss) per client, as the package's ``multiple_sg_select``:
    the first or last by pregain session, or the smallest or largest magnitude (ties go
    to the earliest). Magnitude is positive here, so "largest" is the biggest change for
    losses too (the package compares its negative loss magnitudes, so its "largest" loss
    is the one nearest zero)."""
    order = {
        "first": [("pregain_session", False)],
        "last": [("pregain_session", True)],
        "smallest": [("magnitude", False), ("pregain_session", False)],
        "largest": [("magnitude", True), ("pregain_session", False)],
    }
    if rule not in order:
        raise ValueError(f"rule must be 'first', 'last', 'smallest' or 'largest', got {rule!r}.")
    cols, desc = zip(*order[rule])
    return changes.sort(list(cols), descending=list(desc)).group_by("client_id", maintain_order=True).first().sort(
        "client_id"
    )


def add_reversals(changes: pl.DataFrame, ratings: pl.DataFrame, *, direction: int) -> pl.DataFrame:
    """Add ``reversal_value`` and ``reversed`` to sudden gains or losses (a ``kind``
    column, or all gains), as the package's ``create_bysg``: reversal value = postgain
    score + magnitude / 2 towards the pregain score, and a change is reversed when any
    score from the session after the postgain session on lies strictly beyond it (more
    than half the change lost). Losses mirror gains (DOMAIN.md, "Sudden-gain
    reversals"). ``ratings``: the client_id, session_number, score the changes came from.
    """
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 (higher is better) or -1 (lower is better), got {direction!r}.")
    kind = pl.col("kind") if "kind" in changes.columns else pl.lit("gain")
    # +1 when the change was a decrease (a gain where lower is better, a loss where higher is).
    sign = pl.when((kind == "gain") == (direction == -1)).then(1.0).otherwise(-1.0)
    marked = changes.with_row_index("_row").with_columns(
        reversal_value=pl.col("postgain_score") + sign * pl.col("magnitude") / 2, _sign=sign)
    later = (marked.select("_row", "client_id", "postgain_session", "reversal_value", "_sign")
             .join(ratings.select("client_id", "session_number", "score").filter(pl.col("score").is_not_null()),
                   on="client_id")
             .filter(pl.col("session_number") > pl.col("postgain_session"))
             .group_by("_row")
             .agg(reversed=(pl.col("_sign") * (pl.col("score") - pl.col("reversal_value")) > 0).any()))
    return (marked.join(later, on="_row", how="left")
            .with_columns(pl.col("reversed").fill_null(False))
            .sort("_row").drop("_row", "_sign"))
