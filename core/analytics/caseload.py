"""The caseload list as a page shows it: filters, reasons and outcome colours, over the triage's frames."""

from __future__ import annotations

from typing import Sequence

import polars as pl

COLOUR_ORDER = {"red": 0, "orange": 1, "green": 2, "grey": 3}
COLOUR_WORDS = {"red": "red - not on track", "orange": "orange - behind expected", "green": "green - on track",
                "grey": "grey - no reference"}


def filter_cases(case_list: pl.DataFrame, flags: pl.DataFrame, *, group: str | None = None,
                 therapists: Sequence[str] = (), codes: Sequence[str] = (), only_flagged: bool = False) -> pl.DataFrame:
    """The cases matching every filter given, in priority order."""
    shown = case_list
    if group:
        shown = shown.filter(pl.col("supervision_group") == group)
    if therapists:
        shown = shown.filter(pl.col("therapist_id").is_in(list(therapists)))
    if codes:
        shown = shown.filter(pl.col("client_id").is_in(flags.filter(pl.col("code").is_in(list(codes)))["client_id"]
                                                        .unique().implode()))
    if only_flagged:
        shown = shown.filter(pl.col("priority") > 0)
    return shown


def with_reasons(cases: pl.DataFrame, flags: pl.DataFrame) -> pl.DataFrame:
    """`cases` with a `reasons` column: each flag's sentence, heaviest first, joined by " | "."""
    reasons = (flags.filter(pl.col("client_id").is_in(cases["client_id"].implode()))
               .group_by("client_id", maintain_order=True).agg(pl.col("reason").str.join(" | ").alias("reasons")))
    return cases.join(reasons, on="client_id", how="left").with_columns(pl.col("reasons").fill_null("no flags"))


def outcome_colours(latest: pl.DataFrame) -> pl.DataFrame:
    """The worst latest outcome colour per client (red before orange before green before grey),
    as a word for the list: client_id, outcome."""
    if latest.is_empty():
        return pl.DataFrame(schema={"client_id": pl.String, "outcome": pl.String})
    return (latest.with_columns(order=pl.col("colour").replace_strict(COLOUR_ORDER, default=9))
            .group_by("client_id").agg(pl.col("colour").sort_by("order").first())
            .select("client_id", pl.col("colour").replace_strict(COLOUR_WORDS, default=pl.col("colour"))
                    .alias("outcome")))
