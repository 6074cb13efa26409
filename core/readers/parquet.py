"""Parquet tables: every column read back as the text a person would have written."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from .common import DatasetError, RawTable, _engine, _normalise, _plain_path, _quote, _raw_table


def _read_parquet(path: Path, table: str, source: str) -> RawTable:
    with _plain_path(path) as plain, _engine().cursor() as con:
        try:
            schema = con.sql("DESCRIBE SELECT * FROM read_parquet($path)",
                             params={"path": str(plain)}).fetchall()
            header = [row[0] for row in schema]
            names = _normalise(header, source)
            select = ", ".join(f"{_as_text(_quote(name), kind)} AS c{i}"
                               for i, (name, kind, *_) in enumerate(schema))
            arrow = con.sql(f"SELECT {select or '1 AS c_'} FROM read_parquet($path)",
                            params={"path": str(plain)}).to_arrow_table()
        except duckdb.Error:
            raise DatasetError(f"{source} could not be read as Parquet (it may be damaged); "
                               "export it again and import again.") from None
    frame = pl.from_arrow(arrow)
    frame = frame.select([f"c{i}" for i in range(len(names))])
    return _raw_table(table, source, frame, names,
                      pl.int_range(2, frame.height + 2, dtype=pl.Int64, eager=True))


def _as_text(column: str, kind: str) -> str:
    # Written as a person would: 12.0 -> "12", a midnight timestamp -> its date.
    if kind in ("DOUBLE", "FLOAT"):
        return (f"CASE WHEN isfinite({column}) AND {column} = trunc({column}) "
                f"AND abs({column}) < 1e15 THEN CAST(CAST({column} AS BIGINT) AS VARCHAR) "
                f"ELSE CAST({column} AS VARCHAR) END")
    if kind.startswith("TIMESTAMP") and "TIME ZONE" not in kind:
        ts = f"CAST({column} AS TIMESTAMP)"
        return (f"CASE WHEN {ts} = date_trunc('day', {ts}) THEN strftime({ts}, '%Y-%m-%d') "
                f"ELSE strftime({ts}, '%Y-%m-%d %H:%M:%S') END")
    return f"CAST({column} AS VARCHAR)"
