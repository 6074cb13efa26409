"""Excel workbooks (.xlsx): one sheet per table, cells as the person typed them. The
workbook passes the archive guard (size, entries, XML declarations) before openpyxl
opens it."""

from __future__ import annotations

import datetime as dt
import warnings
from decimal import Decimal
from pathlib import Path

import polars as pl

from .archive import MAX_WORKBOOK_BYTES, _open_archive, _refuse_xml_declarations
from .common import TABLES, Dataset, DatasetError, RawTable, _claim, _normalise, _raw_table, _table_list


def _read_xlsx(path: Path, shown: str) -> Dataset:
    from openpyxl import load_workbook
    from openpyxl.xml import DEFUSEDXML

    if not DEFUSEDXML:
        raise DatasetError("Excel workbooks cannot be opened safely on this installation "
                           "(the defusedxml package is missing); ask your administrator to "
                           "install it, or import CSV files instead.")
    with _open_archive(path, shown, MAX_WORKBOOK_BYTES, workbook=True) as archive:
        _refuse_xml_declarations(archive, shown)
    try:
        with warnings.catch_warnings():  # "extension not supported" and the like
            warnings.simplefilter("ignore")
            workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception:  # openpyxl raises many types on a malformed workbook
        raise DatasetError(f"{shown} could not be opened as an .xlsx workbook (it may be "
                           "damaged); open it in Excel, save it again and import "
                           "again.") from None
    try:
        dataset = Dataset()
        found: dict[str, tuple[object, str, str]] = {}
        sheets = {ws.title: ws for ws in workbook.worksheets}
        for title in workbook.sheetnames:
            table = title.strip().lower()
            label = f"{shown}, sheet {title}"
            if table not in TABLES or title not in sheets:
                dataset.ignored_files.append(label)
                continue
            _claim(found, table, (sheets[title], "", label), shown)
        if not found:
            raise DatasetError(f"{shown} has no sheet named after a table; name the sheets "
                               f"{_table_list()} and import again.")
        for table, (sheet, _, label) in found.items():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    dataset.tables[table] = _read_sheet(sheet, table, label)
            except DatasetError:
                raise
            except Exception:
                raise DatasetError(f"{label} could not be read (the workbook may be "
                                   "damaged); open it in Excel, save it again and import "
                                   "again.") from None
        return dataset
    finally:
        workbook.close()


def _read_sheet(sheet, table: str, label: str) -> RawTable:
    sheet.reset_dimensions()  # stored dimensions may be wrong; read what is there
    header: list[str] | None = None
    rows: list[tuple[int, list[str | None]]] = []
    for number, cells in enumerate(sheet.iter_rows(min_row=1, values_only=True), start=1):
        values = [_cell_text(v) for v in cells]
        if not any(v is not None and v.strip() for v in values):
            continue
        if header is None:
            header = [v or "" for v in values]
        else:
            rows.append((number, values))
    if header is None:
        return _raw_table(table, label, pl.DataFrame(), {}, [])
    # Read-only rows are as wide as their last stored cell, even an empty one: keep the
    # columns up to the last header name or value, so a stray value is still reported.
    width = max([len(header)] + [len(v) for _, v in rows])
    header = header + [""] * (width - len(header))
    while width > 0 and not header[width - 1].strip() and all(
            len(v) < width or v[width - 1] is None for _, v in rows):
        width -= 1
    header = header[:width]
    names = _normalise(header, label)
    data = {f"c{i}": [(v[i] if i < len(v) else None) for _, v in rows] for i in range(width)}
    frame = pl.DataFrame(data, schema={f"c{i}": pl.String for i in range(width)})
    return _raw_table(table, label, frame, names,
                      pl.Series([n for n, _ in rows], dtype=pl.Int64))


def _cell_text(value) -> str | None:
    """A cell as the person typed it: 12.0 -> "12", a date -> "2024-03-01"."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        # Excel shows at most 15 significant digits: 0.1 + 0.2 is "0.3" on screen.
        text = repr(float(format(value, ".15g")))
        return format(Decimal(text), "f") if "e" in text else text
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)
