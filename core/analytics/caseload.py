"""The caseload list as a page shows it: filters, reasons and outcome colours, over the triage's frames."""

from __future__ import annotations

from typing import Sequence

import polars as pl

COLOUR_ORDER = {"red": 0, "orange": 1, "green": 2, "grey": 3}
COLOUR_WORDS = {"red": "red: not on track", "orange": "orange: behind expected", "green": "green: on track",
                "grey": "grey: no comparison yet"}
# Why a colour is grey, in a clinician's words (the method sentences of core.analytics.expected).
GREY_WORDS = (("grey: intake", "grey: only the first score so far"),
              ("grey: no clients", "grey: no other clients to compare with yet"),
              ("grey: beyond", "grey: longer in therapy than the clients to compare with"),
              ("grey", "grey: too few similar clients to compare with"))


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


def grey_words(method: str | None) -> str:
    """Why an outcome is grey, as a clinician would say it."""
    for start, words in GREY_WORDS:
        if (method or "").startswith(start):
            return words
    return COLOUR_WORDS["grey"]


def outcome_colours(latest: pl.DataFrame) -> pl.DataFrame:
    """The worst latest outcome colour per client (red before orange before green before grey),
    with words for the list: client_id, colour, outcome (a grey one says why it is grey)."""
    if latest.is_empty():
        return pl.DataFrame(schema={"client_id": pl.String, "colour": pl.String, "outcome": pl.String})
    method = pl.col("method").cast(pl.String) if "method" in latest.columns else pl.lit(None, pl.String)
    worst = (latest.with_columns(order=pl.col("colour").replace_strict(COLOUR_ORDER, default=9), why=method)
             .sort("order").group_by("client_id", maintain_order=True).first())
    return worst.select("client_id", "colour", pl.struct("colour", "why").map_elements(
        lambda r: grey_words(r["why"]) if r["colour"] == "grey" else COLOUR_WORDS.get(r["colour"], r["colour"]),
        return_dtype=pl.String).alias("outcome"))
