"""Reading an export into raw string tables: a folder, a .zip of one, an .xlsx workbook,
or a single NAME.csv / NAME.parquet.

Every value comes back as text (or None for an empty cell) so that validation sees CSV,
Parquet and Excel the same way; typing is the validator's job. Every row keeps `_line`,
the row number a spreadsheet shows (header = 1), because a clinician fixes a file by
row number. A CSV line that cannot be split into the header's columns becomes a
`RowProblem` and the other lines still load; an input that cannot be read at all raises
`DatasetError` with a sentence for the person importing it.

One module per format: `csvfile` (parsed by DuckDB), `xlsx`, `parquet`; `archive` is the
guard every .zip and .xlsx passes before anything is unpacked or parsed; `common` holds
what they share. This module finds the tables in a folder, a zip or a single file and
keeps every public name importable from `core.readers`.
"""

from __future__ import annotations

import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from ..scratch import private_dir
from .archive import (MAX_ENTRIES, MAX_RATIO, MAX_UNCOMPRESSED_BYTES, MAX_WORKBOOK_BYTES,
                      RATIO_MIN_BYTES, XML_PROLOG_BYTES, _extract, _open_archive, _parts)
from .common import (MAX_LINE_BYTES, TABLE_SUFFIXES, TABLES, Dataset, DatasetError, RawTable,
                     RowProblem, _claim, _engine, _require_tables, _table_list, _table_of)
from .csvfile import BAD_LINES_MIN, _read_csv
from .parquet import _read_parquet
from .xlsx import _read_xlsx

__all__ = ["BAD_LINES_MIN", "MAX_ENTRIES", "MAX_LINE_BYTES", "MAX_RATIO", "MAX_UNCOMPRESSED_BYTES",
           "MAX_WORKBOOK_BYTES", "RATIO_MIN_BYTES", "TABLES", "TABLE_SUFFIXES", "XML_PROLOG_BYTES",
           "Dataset", "DatasetError", "RawTable", "RowProblem", "read_dataset"]


def read_dataset(path: str | os.PathLike, *, display_name: str | None = None) -> Dataset:
    """Read a folder, .zip, .xlsx, NAME.csv or NAME.parquet into raw string tables.

    `display_name` is the name the person knows the input by (an upload is saved under a
    temporary name); it is used in every message and `source`."""
    p = Path(path)
    shown = display_name or p.name or str(p)
    try:
        exists = p.exists()
    except OSError:
        exists = False
    if not exists:
        raise DatasetError(f"{display_name or str(path)} was not found. "
                           "Check the name and location and import again.")
    if p.is_dir():
        return _read_folder(p, shown)
    suffix = (Path(display_name).suffix if display_name and Path(display_name).suffix
              else p.suffix).lower()
    if suffix == ".zip":
        return _read_zip(p, shown)
    if suffix == ".xlsx":
        return _read_xlsx(p, shown)
    if suffix in TABLE_SUFFIXES:
        table = Path(shown).stem.strip().lower()
        if table not in TABLES:
            raise DatasetError(f"{shown} is not named after a table; name it {_table_list()} "
                               f"(for example sessions{suffix}) and import again.")
        dataset = Dataset()
        _add_tables(dataset, [(table, p, suffix, shown)])
        return dataset
    if suffix in (".xls", ".xlsm", ".xlsb", ".ods"):
        raise DatasetError(f"{shown} is not an .xlsx workbook; open it in Excel, save it as "
                           "'Excel Workbook (.xlsx)' and import again.")
    raise DatasetError(f"{shown} is not a type this software reads; import a folder, a .zip "
                       "of one, an .xlsx workbook, or a single .csv or .parquet table.")


# -- containers --------------------------------------------------------------------------

def _read_folder(folder: Path, shown: str) -> Dataset:
    entries, prefix = _visible(folder), ""
    if not any(e.is_file() and _table_of(e.name) for e in entries):
        # An export folder inside the chosen folder, as a zip often holds one.
        if len(entries) == 1 and entries[0].is_dir():
            folder, prefix = entries[0], entries[0].name + "/"
            entries = _visible(folder)
    dataset = Dataset()
    found: dict[str, tuple[Path, str, str]] = {}
    for entry in entries:
        label = prefix + entry.name
        table = _table_of(entry.name) if entry.is_file() else None
        if table is None:
            dataset.ignored_files.append(label + ("/" if entry.is_dir() else ""))
            continue
        _claim(found, table, (entry, entry.suffix.lower(), label), shown)
    _require_tables(found, shown, [] if found else sorted(
        prefix + e.name + "/" for e in entries
        if e.is_dir() and any(f.is_file() and _table_of(f.name) for f in _visible(e))))
    _add_tables(dataset, [(table, file, suffix, label) for table, (file, suffix, label) in found.items()])
    return dataset


def _visible(folder: Path) -> list[Path]:
    try:
        return sorted(e for e in folder.iterdir()
                      if not e.name.startswith(".") and e.name != "__MACOSX")
    except OSError:
        raise DatasetError(f"The folder {folder.name} could not be opened; check that you "
                           "may read it and import again.") from None


def _read_zip(path: Path, shown: str) -> Dataset:
    with _open_archive(path, shown, MAX_UNCOMPRESSED_BYTES, workbook=False) as archive:
        files = [i for i in archive.infolist() if not i.is_dir()
                 and not any(part.startswith(".") or part == "__MACOSX" for part in _parts(i))]
        tops = {_parts(i)[0] for i in files}
        nested = len(tops) == 1 and all(len(_parts(i)) > 1 for i in files)
        dataset = Dataset()
        found: dict[str, tuple[zipfile.ZipInfo, str, str]] = {}
        for info in files:
            parts = _parts(info)[1 if nested else 0:]
            table = _table_of(parts[-1]) if len(parts) == 1 else None
            if table is None:
                dataset.ignored_files.append(f"{shown}: {info.filename}")
                continue
            suffix = PurePosixPath(parts[-1]).suffix.lower()
            _claim(found, table, (info, suffix, f"{shown}: {info.filename}"), shown)
        _require_tables(found, shown, sorted({"/".join(_parts(i)[:-1]) + "/" for i in files
                                              if len(_parts(i)) == 2 and _table_of(_parts(i)[-1])}))
        if any(i.flag_bits & 0x1 for i, _, _ in found.values()):
            raise DatasetError(f"{shown} is password-protected; create the zip again without "
                               "a password and import again.")
        with private_dir("caseconf-import-") as tmp:
            unpacked = []
            for table, (info, suffix, label) in found.items():
                target = Path(tmp) / f"{table}{suffix}"
                _extract(archive, info, target, label)
                unpacked.append((table, target, suffix, label))
            _add_tables(dataset, unpacked)
        return dataset


def _add_tables(dataset: Dataset, tables: list[tuple[str, Path, str, str]]) -> None:
    """Read the tables (name, file, suffix, source) two at a time and add them in order.

    DuckDB lets go of the interpreter while it parses, and a small table read alone
    leaves a core idle. When several tables fail, the first one's error is raised, as
    when they are read one after the other."""
    _engine()  # opened here once, not by two threads at the same moment
    with ThreadPoolExecutor(max_workers=2) as pool:
        read = list(pool.map(lambda item: _read_table(*item), tables))
    for (table, *_), (raw, problems) in zip(tables, read):
        dataset.tables[table] = raw
        dataset.problems.extend(problems)


def _read_table(table: str, file: Path, suffix: str, source: str) -> tuple[RawTable, list[RowProblem]]:
    if suffix == ".parquet":
        return _read_parquet(file, table, source), []
    return _read_csv(file, table, source)
