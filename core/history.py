"""The import history as a person reads it: when, who, which file, and what each import
did in words ("sessions 120, ratings 340"), not the stored JSON counts and checksums."""

from __future__ import annotations

import json

import polars as pl


def _counts(text: str | None) -> str:
    """'{"sessions": 120, "ratings": 0}' -> 'sessions 120'; nothing -> 'none'."""
    try:
        counts = json.loads(text) if text else {}
    except ValueError:
        return text or "none"
    if not isinstance(counts, dict):
        return str(counts)
    shown = [f"{table} {int(n):,}" for table, n in counts.items() if n]
    return ", ".join(shown) or "none"


def readable(batches: pl.DataFrame) -> pl.DataFrame:
    """`core.store.batches` as the Data page shows it: Import, When (to the minute, UTC),
    By, File, Loaded, Quarantined, New, Updated."""
    counts = {column: pl.col(column).map_elements(_counts, return_dtype=pl.String)
              for column in ("loaded", "quarantined", "inserted", "updated") if column in batches.columns}
    return batches.select(
        pl.col("batch").alias("Import"),
        pl.col("imported_at").dt.strftime("%Y-%m-%d %H:%M UTC").alias("When"),
        pl.col("imported_by").fill_null("unknown").alias("By"),
        pl.col("file_name").fill_null("").alias("File"),
        *[expr.alias(name) for expr, name in zip(counts.values(), ("Loaded", "Quarantined", "New", "Updated"))])
