"""Files people download and open in a spreadsheet: CSV that cannot run formulas.

A cell that begins with `=`, `+`, `-`, `@`, a tab, a carriage return or a NUL can be
taken for a formula by Excel or LibreOffice (CSV / formula injection, OWASP). Every text
cell that begins so gets a leading apostrophe, which spreadsheets show as plain text.
Numbers stay numbers.
"""

from __future__ import annotations

import polars as pl

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")


def neutralise(text: str | None) -> str | None:
    """The text, made inert for a spreadsheet."""
    if text and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def _inert(column: str) -> pl.Expr:
    col = pl.col(column)
    pattern = "^[" + "".join("\\t" if c == "\t" else "\\r" if c == "\r" else "\\x00" if c == "\0" else "\\" + c
                             for c in FORMULA_STARTS) + "]"
    return pl.when(col.str.contains(pattern)).then(pl.lit("'") + col).otherwise(col).alias(column)


def safe_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text column neutralised; other columns as they are."""
    texts = [name for name, dtype in frame.schema.items() if dtype in (pl.String, pl.Categorical)]
    return frame.with_columns([_inert(name) for name in texts]) if texts else frame


def csv_bytes(frame: pl.DataFrame) -> bytes:
    """UTF-8 CSV with a byte-order mark (so Excel reads accents right), injection-safe."""
    return ("\ufeff" + safe_frame(frame).write_csv()).encode("utf-8")
