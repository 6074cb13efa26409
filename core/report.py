"""An import's report: every faulty row kept in the quarantine, a bounded part of it shown.

Every quarantined row is written to the quarantine table with its raw values (identifying
text masked) and all of its reasons: nothing is lost, and the whole list can be
downloaded from there (`quarantine_report`). What is printed (`--json`, the terminal) and
drawn (the Data page) is bounded: the count per table, column and rule, and the first
REPORT_EXAMPLES problems of each. A million faulty rows once printed 232 MB of JSON and
held every problem as a Python object; here they are built column by column, and only
the distinct values that could identify someone are read one at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl

from .privacy import HIDDEN_ID, Masker  # noqa: F401  (the masker lives with the guard)
from .readers import RowProblem
from .scratch import create_private

# Problems shown per table, column and rule; the rest are counted, and kept in the
# quarantine. Enough to see the pattern of a fault; a screen or a log stays readable.
REPORT_EXAMPLES = 20
# Characters of a value an example shows (a note is at most 2,000; a ragged line or a
# note far too long may hold megabytes): twenty examples of a megabyte made 20 MB of JSON.
# The quarantine keeps every value whole.
REPORT_VALUE_CHARS = 200
# Faulty rows made into quarantine rows and report lines at a time (`table_report`).
REPORT_CHUNK_ROWS = 100_000

REPORT_SCHEMA = {"table": pl.String, "source": pl.String, "line": pl.Int64, "column": pl.String,
                 "value": pl.String, "rule": pl.String, "message": pl.String}
QUARANTINE_SCHEMA = {"table_name": pl.String, "source": pl.String, "line": pl.Int64, "raw": pl.String,
                     "problems": pl.String}
ID_COLUMNS = ("client_id", "therapist_id")
WIDE_FIELDS = ("score", "instrument", "scale", "rater")  # a wide rating's fault is its column's
def faulty_rows(table: str, raw: pl.DataFrame, found: pl.DataFrame,
                masker: Masker) -> tuple[pl.DataFrame, tuple[pl.DataFrame, pl.DataFrame]]:
    """The quarantine rows (QUARANTINE_SCHEMA) and the summarized report (`summarize`) of
    one table's rows that have problems. `raw` holds the rows as read (text,
    `_row`, `_line`, `_source`, `_origin`), `found` their problems (validate.PROBLEM_SCHEMA)."""
    faulty = raw.join(found.select("_row").unique(), on="_row", how="semi").sort("_row")
    values = [c for c in faulty.columns if not c.startswith("_")]
    masked = faulty.select("_row", "_line", pl.col("_source").cast(pl.String),
                           *(masker.column(faulty.get_column(c), ids=c in ID_COLUMNS).alias(c) for c in values),
                           masker.column(faulty.get_column("_origin")).alias("_origin"))
    reasons = _reasons(found.unique(), faulty, masked, values, masker)
    del faulty  # the masked copy is all that is kept
    quarantine = _quarantine_rows(table, masked, values, reasons)
    report = reasons.join(masked.select("_row", "_line", "_source"), on="_row").select(
        pl.lit(table).alias("table"), pl.col("_source").alias("source"), pl.col("_line").alias("line"),
        pl.col("_shown_column").alias("column"), "value", "rule", "message")
    return quarantine, summarize(report.cast(REPORT_SCHEMA), (table,))


def _reasons(found: pl.DataFrame, faulty: pl.DataFrame, masked: pl.DataFrame, values: list[str],
             masker: Masker) -> pl.DataFrame:
    """Each problem with its message and value cleaned, the value as written in the file
    (masked) where the problem names one of its columns, and the column a person sees."""
    found = _without_hidden_ids(found, faulty, masked)
    found = found.with_columns(masker.column(found.get_column("message")).alias("message"),
                               masker.column(found.get_column("value")).alias("value"))
    found = pl.concat([_with_written(part, column, masked, values)
                       for (column,), part in found.partition_by("column", as_dict=True).items()])
    if masked.get_column("_origin").null_count() == masked.height:  # no wide ratings: spare a join
        found = found.with_columns(pl.lit(None, pl.String).alias("_origin"))
    else:
        found = found.join(masked.select("_row", "_origin"), on="_row", how="left")
    wide = pl.col("_origin").is_not_null() & pl.col("column").is_in(WIDE_FIELDS)
    return found.select(
        "_row", "column", "rule", "message",
        pl.coalesce("_written", pl.when(pl.col("value") != "").then("value")).alias("value"),
        pl.when(wide).then("_origin").otherwise("column").alias("_shown_column"))


def _with_written(found: pl.DataFrame, column: str | None, masked: pl.DataFrame, values: list[str]) -> pl.DataFrame:
    """`found` (problems of one column) with that column's value as written (masked)."""
    if column not in values:  # a key of several columns, or a rule about the row
        return found.with_columns(pl.lit(None, pl.String).alias("_written"))
    return found.join(masked.select("_row", pl.col(column).alias("_written")), on="_row", how="left")


def _without_hidden_ids(found: pl.DataFrame, faulty: pl.DataFrame, masked: pl.DataFrame) -> pl.DataFrame:
    """An id hidden whole in a row's values is hidden in its messages too (a message may
    quote it, and partial masking could leave a name). Few rows have one: read in Python."""
    ids = [c for c in ID_COLUMNS if c in faulty.columns]
    hidden: dict[int, list[str]] = {}
    for c in ids:
        rows = faulty.select("_row", c).filter((masked.get_column(c) == HIDDEN_ID) & pl.col(c).is_not_null())
        for row, value in rows.iter_rows():
            hidden.setdefault(row, []).append(value)
    if not hidden:
        return found

    def clean(row: int, text: str | None) -> str | None:
        for value in hidden.get(row, ()):
            text = text.replace(value, HIDDEN_ID) if text else text
        return text

    touched = pl.col("_row").is_in(list(hidden))
    mine, others = found.filter(touched), found.filter(~touched)
    rows = mine.get_column("_row").to_list()
    mine = mine.with_columns(
        pl.Series("message", [clean(r, t) for r, t in zip(rows, mine.get_column("message").to_list())], pl.String),
        pl.Series("value", [clean(r, t) for r, t in zip(rows, mine.get_column("value").to_list())], pl.String))
    return pl.concat([others, mine])


def _quarantine_rows(table: str, masked: pl.DataFrame, values: list[str], reasons: pl.DataFrame) -> pl.DataFrame:
    # One JSON encoding of the whole row is fast where one a column is not; an empty cell
    # is kept as null. A wide rating names the column it came from.
    raw = pl.struct(values).struct.json_encode() if values else pl.lit("{}")
    origins = masked.get_column("_origin").drop_nulls().unique().to_list()
    if origins:
        as_json = pl.col("_origin").replace_strict({o: json.dumps(o) for o in origins}, default=None)
        raw = pl.when(pl.col("_origin").is_not_null()).then(
            raw.str.strip_suffix("}") + pl.lit(',"column":') + as_json + pl.lit("}")).otherwise(raw)
    problems = reasons.select("_row", pl.struct("column", "rule", "message", "value").struct.json_encode().alias("_p"))
    # Most faulty rows break one rule: their list of reasons needs no grouping.
    if problems.get_column("_row").n_unique() == problems.height:
        problems = problems.select("_row", (pl.lit("[") + pl.col("_p") + pl.lit("]")).alias("_p"))
    else:
        problems = problems.group_by("_row").agg((pl.lit("[") + pl.col("_p").str.join(",") + pl.lit("]")).alias("_p"))
    return masked.join(problems, on="_row", how="left", maintain_order="left").select(
        pl.lit(table).alias("table_name"), pl.col("_source").alias("source"), pl.col("_line").alias("line"),
        raw.alias("raw"), pl.col("_p").alias("problems"),
    ).cast(QUARANTINE_SCHEMA)


def row_problems(problems: list[RowProblem], masker: Masker) -> tuple[pl.DataFrame, tuple[pl.DataFrame, pl.DataFrame]]:
    """The quarantine rows and the report of the lines the readers could not split (one
    Python object each already, from the readers)."""
    shown = [masker.line(p.raw) for p in problems]
    quarantine = pl.DataFrame({
        "table_name": [p.table for p in problems], "source": [p.source for p in problems],
        "line": [p.line for p in problems], "raw": [json.dumps({"line": s}) for s in shown],
        "problems": [json.dumps([{"column": None, "rule": p.rule, "message": p.message, "value": s}])
                     for p, s in zip(problems, shown)]}, schema=QUARANTINE_SCHEMA)
    report = pl.DataFrame({
        "table": [p.table for p in problems], "source": [p.source for p in problems],
        "line": [p.line for p in problems], "column": [None] * len(problems), "value": shown,
        "rule": [p.rule for p in problems], "message": [p.message for p in problems]}, schema=REPORT_SCHEMA)
    return quarantine, summarize(report, tuple(dict.fromkeys(p.table for p in problems)))


def summarize(report: pl.DataFrame, tables: tuple[str, ...],
              examples: int = REPORT_EXAMPLES) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The first `examples` problems of each table, column and rule (in the tables' and
    the file's order), and the count of each (with where it first occurs, `_source` and
    `_line`, so that counts summarized apart can be put in one order: `merge`)."""
    ordered = report.sort(_place(tables), "source", "line", "column", "rule", "message", "value", nulls_last=False)
    kind = ["table", "column", "rule"]
    counts = ordered.group_by(kind, maintain_order=True).agg(
        pl.len().alias("count"), pl.col("source").first().alias("_source"), pl.col("line").first().alias("_line"))
    shown = ordered.filter(pl.int_range(pl.len()).over(kind) < examples)
    return shown, counts


def combine(parts: list[tuple[pl.DataFrame, pl.DataFrame]],
            tables: tuple[str, ...]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One summary (`summarize`) from those of its parts: tables, the readers' lines, the
    chunks of one table. The first examples of a kind overall are among the first of
    the part that holds them; a kind's counts are added up over the parts."""
    shown, _ = summarize(pl.concat([p[0] for p in parts]), tables)
    counts = (pl.concat([p[1] for p in parts]).sort(_place(tables), "_source", "_line", nulls_last=False)
              .group_by(["table", "column", "rule"], maintain_order=True)
              .agg(pl.col("count").sum(), pl.col("_source").first(), pl.col("_line").first()))
    return shown, counts


def merge(parts: list[tuple[pl.DataFrame, pl.DataFrame]], tables: tuple[str, ...]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One report's examples and counts (table, column, rule, count) from those of its parts."""
    shown, counts = combine(parts, tables)
    value = pl.col("value")
    shown = shown.with_columns(pl.when(value.str.len_chars() > REPORT_VALUE_CHARS)
                               .then(value.str.slice(0, REPORT_VALUE_CHARS) + pl.lit("…")).otherwise(value).alias("value"))
    return shown, counts.drop("_source", "_line")


def table_report(table: str, raw: pl.DataFrame, found: pl.DataFrame, masker: Masker,
                 keep: Callable[[pl.DataFrame], None]) -> tuple[int, tuple[pl.DataFrame, pl.DataFrame]]:
    """`faulty_rows` of one table, REPORT_CHUNK_ROWS faulty rows at a time: each chunk's
    quarantine rows go to `keep` (which writes them out) as soon as they are made, so the
    memory a report needs does not grow with the number of faulty rows. Returns how many
    rows were quarantined and the table's summary (`summarize`)."""
    rows = found.get_column("_row").unique().sort()
    parts = []
    for start in range(0, rows.len(), REPORT_CHUNK_ROWS):
        chunk = rows.slice(start, REPORT_CHUNK_ROWS)
        mine = pl.col("_row").is_between(chunk[0], chunk[-1])
        quarantine, summary = faulty_rows(table, raw.filter(mine), found.filter(mine), masker)
        keep(quarantine)
        parts.append(summary)
        del quarantine
    return rows.len(), combine(parts, (table,))


class QuarantineFiles:
    """Quarantine rows written as they are made to Parquet files in a private scratch
    folder (`scratch.private_dir`), until the import's closing transaction inserts them
    (`store.insert_quarantine`): a million faulty rows are never held in memory at once."""

    def __init__(self, folder: Path):
        self.folder, self.files, self.rows = folder, [], 0

    def __call__(self, rows: pl.DataFrame) -> None:
        if rows.height == 0:
            return
        path = self.folder / f"quarantine-{len(self.files):05d}.parquet"
        with create_private(path) as out:
            rows.cast(QUARANTINE_SCHEMA).write_parquet(out, compression="lz4")
        self.files.append(path)
        self.rows += rows.height


def _place(tables: tuple[str, ...]) -> pl.Expr:
    return pl.col("table").replace_strict({t: i for i, t in enumerate(tables)}, default=len(tables),
                                          return_dtype=pl.Int64)


def quarantine_report(store, scope, batch_id: int) -> pl.DataFrame:
    """Every problem of one import's quarantined rows (REPORT_SCHEMA), in the file's order:
    the full list the bounded report leaves out, for a download."""
    return store.query(
        """SELECT table_name AS "table", source, line,
                  CASE WHEN raw->>'column' IS NOT NULL AND p.column IN ('score', 'instrument', 'scale', 'rater')
                       THEN raw->>'column' ELSE p.column END AS "column",
                  p.value, p.rule, p.message
           FROM quarantine,
                unnest(from_json(problems, '[{"column": "VARCHAR", "rule": "VARCHAR", "message": "VARCHAR",
                                              "value": "VARCHAR"}]')) AS t(p)
           WHERE batch_id = ? ORDER BY table_name, source, line""", [batch_id], scope=scope).cast(REPORT_SCHEMA)
