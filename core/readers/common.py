"""What every reader shares: the contract's table names, the raw table a reader hands
on, the sentence-carrying error, header normalisation, and the in-memory DuckDB that
parses files."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath

import duckdb
import polars as pl

from ..contract import TABLES  # the contract's table names, in its order
from ..scratch import create_private, private_dir

TABLE_SUFFIXES = (".csv", ".parquet")

MAX_LINE_BYTES = 4 * 1024 ** 2           # one CSV record; notes are at most 2,000 characters
_CHUNK = 4 * 1024 ** 2  # at most MAX_LINE_BYTES (_check_utf8 relies on it)


class DatasetError(Exception):
    """The whole input cannot be read. str(e) is one or two plain sentences for a
    clinician: what, where (file, sheet), why, what to do. Never file content."""


@dataclass
class RawTable:
    name: str                 # contract table name
    source: str               # what the person sees, e.g. "export.zip: sessions.csv"
    frame: pl.DataFrame       # all columns pl.String (None = empty), plus "_line" (pl.Int64)
    columns: dict[str, str]   # normalised name -> header exactly as written


@dataclass
class RowProblem:
    """A line that could not be split into the header's columns."""
    table: str
    source: str
    line: int
    rule: str                 # too_many_fields, too_few_fields, bad_quoting, unclosed_quote,
    message: str              # line_too_long, invalid_utf8, unreadable_line
    raw: str                  # the line as written; may hold identifying text: never log it


@dataclass
class Dataset:
    tables: dict[str, RawTable] = field(default_factory=dict)
    problems: list[RowProblem] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)


def _table_of(filename: str) -> str | None:
    name = PurePosixPath(filename)
    table = name.stem.strip().lower()
    return table if table in TABLES and name.suffix.lower() in TABLE_SUFFIXES else None


def _claim(found: dict, table: str, item: tuple, shown: str) -> None:
    if table in found:
        raise DatasetError(f"{shown} holds the {table} table twice ({found[table][2]} and "
                           f"{item[2]}); keep one and import again.")
    found[table] = item


def _require_tables(found: dict, shown: str, deeper: list[str] = ()) -> None:
    """`deeper`: the folders a level down that hold tables (beside other entries, or
    several of them), named when the top holds none."""
    if not found and deeper:
        where, which = ((f"the folder {deeper[0]}", "that folder") if len(deeper) == 1 else
                        ("the folders " + ", ".join(deeper[:-1]) + " and " + deeper[-1], "one of them"))
        raise DatasetError(f"{shown} holds its tables one folder down, in {where}, beside other files "
                           f"or folders; import {which} (or a zip of it alone).")
    if not found:
        raise DatasetError(f"{shown} holds no table this software reads; name the files "
                           f"{_table_list()} (.csv or .parquet) and import again.")


def _table_list() -> str:
    return ", ".join(TABLES[:-1]) + " or " + TABLES[-1]

@lru_cache(maxsize=1)
def _engine() -> duckdb.DuckDBPyConnection:
    """The process's in-memory DuckDB for parsing files. Each read takes a cursor of its
    own (its own temporary rejects table, safe across threads): opening a database for
    every file cost more than reading most of them. Text comes out as Arrow string views,
    the layout polars keeps strings in, so handing a table to polars copies nothing."""
    return duckdb.connect(config={"arrow_output_version": "1.4", "produce_arrow_string_view": True})


class _plain_path:
    """DuckDB expands glob characters (* ? [ ]) in a path; hand it a link without them."""

    def __init__(self, path: Path):
        self.path, self.tmp = path, None

    def __enter__(self) -> Path:
        if not re.search(r"[*?\[\]{}]", str(self.path)):
            return self.path
        self.tmp = private_dir("caseconf-import-")
        link = self.tmp.__enter__() / ("table" + self.path.suffix.lower())
        try:
            os.symlink(self.path.resolve(), link)
        except OSError:
            with open(self.path, "rb") as src, create_private(link) as out:
                shutil.copyfileobj(src, out)
        return link

    def __exit__(self, *exc) -> None:
        if self.tmp is not None:
            self.tmp.__exit__(*exc)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'

def _normalise(header: list[str], source: str) -> dict[str, str]:
    """Header names trimmed and lower-cased; a column without a name is called after its
    spreadsheet letter (unnamed_d) so its values are reported, not lost."""
    names: dict[str, str] = {}
    for index, original in enumerate(header):
        name = original.strip().lower() or f"unnamed_{_letter(index).lower()}"
        if name == "_line":
            raise DatasetError(f"{source} has a column named _line, a name this software "
                               "uses for row numbers; rename it and import again.")
        if name in names:
            raise DatasetError(f"{source} has two columns named '{name}'; rename or remove "
                               "one and import again.")
        names[name] = original
    return names


def _letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _raw_table(table: str, source: str, frame: pl.DataFrame, names: dict[str, str],
               lines) -> RawTable:
    """Name the positional columns (c0, c1, ...) after the header, turn empty or
    whitespace-only cells into None and drop rows with no value at all, as a spreadsheet's
    empty rows are. Header names may hold anything ("*", "^x$"), so expressions here use
    the positional names only."""
    if not names:
        return RawTable(table, source, pl.DataFrame(schema={"_line": pl.Int64}), {})
    text = [f"c{i}" for i in range(len(names))]
    # Only a value starting with a space, a control character or a non-ASCII character
    # (U+0085 and up: NBSP, ideographic space, ...) can be blank; comparing first spares a
    # regular expression over millions of ordinary values.
    maybe = (frame.select([((pl.col(c) < "!") | (pl.col(c) >= "\u0085")).any() for c in text])
             .row(0) if frame.height else [False] * len(text))
    frame = frame.with_columns(
        [pl.when(~pl.col(c).str.contains(r"^\s*$")).then(pl.col(c)).alias(c)
         for c, check in zip(text, maybe) if check])
    frame = frame.with_columns(pl.Series("_line", lines, dtype=pl.Int64))
    if frame.height and all(frame[c].null_count() for c in text):
        frame = frame.filter(~pl.all_horizontal(pl.col(text).is_null()))
    frame = frame.rename(dict(zip(text, names)))
    return RawTable(table, source, frame, names)
