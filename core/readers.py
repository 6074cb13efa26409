"""Reading an export into raw string tables: a folder, a .zip of one, an .xlsx workbook,
or a single NAME.csv / NAME.parquet.

Every value comes back as text (or None for an empty cell) so that validation sees CSV,
Parquet and Excel the same way; typing is the validator's job. Every row keeps `_line`,
the row number a spreadsheet shows (header = 1), because a clinician fixes a file by
row number. A CSV line that cannot be split into the header's columns becomes a
`RowProblem` and the other lines still load; an input that cannot be read at all raises
`DatasetError` with a sentence for the person importing it.

CSV is parsed by DuckDB (the 5-million-row import budget allows no Python loop per row);
rejected lines come from its rejects table, whose `line` counts records the way a
spreadsheet counts rows (a quoted line break does not start a new row).

Archives are inspected before anything is unpacked or parsed: an export is a handful of
tables, so many entries, a huge unpacked size, an extreme compression ratio or an XML
DOCTYPE/ENTITY declaration mean a malicious or broken file, not a clinic's data.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import os
import re
import shutil
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path, PurePosixPath

import duckdb
import polars as pl

from .scratch import create_private, private_dir

TABLES = ("sessions", "ratings", "themes", "barriers", "events", "therapists")
TABLE_SUFFIXES = (".csv", ".parquet")

# Limits a clinic may change. A 5-million-row export unpacks to about 200 MB of CSV;
# zip bombs aim at gigabytes to terabytes.
MAX_ENTRIES = 1_000                      # files inside a .zip or .xlsx
MAX_UNCOMPRESSED_BYTES = 1024 ** 3       # a .zip export, unpacked
MAX_WORKBOOK_BYTES = 200 * 1024 ** 2     # an .xlsx, unpacked (openpyxl holds strings in memory)
MAX_RATIO = 100                          # unpacked : packed, for an entry ...
RATIO_MIN_BYTES = 1024 ** 2              # ... larger than this
XML_PROLOG_BYTES = 16 * 1024             # where a DOCTYPE or ENTITY would have to appear
MAX_LINE_BYTES = 4 * 1024 ** 2           # one CSV record; notes are at most 2,000 characters
# A file where most lines do not fit the header is the wrong file or the wrong separator:
# one sentence helps more than a million row problems.
BAD_LINES_MIN = 100

_CHUNK = 4 * 1024 ** 2  # at most MAX_LINE_BYTES (_check_utf8 relies on it)
_HEADER_BYTES = 1024 ** 2
_BOM = codecs.BOM_UTF8
_BLANK_LINES = (b"\n\n", b"\n\r\n", b"\r\r")
# Parts of a workbook openpyxl never parses as XML.
_BINARY_PARTS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".emf", ".wmf",
                 ".svg", ".bin")


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
    _require_tables(found, shown)
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
        _require_tables(found, shown)
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


def _parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    return PurePosixPath(info.filename.replace("\\", "/")).parts


def _open_archive(path: Path, shown: str, max_bytes: int, workbook: bool) -> zipfile.ZipFile:
    """Open a zip container after checking it is small and plain enough to unpack."""
    try:
        archive = zipfile.ZipFile(path)
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        if workbook:
            raise DatasetError(f"{shown} is not a valid .xlsx workbook (it may be damaged, "
                               "password-protected or an old .xls file); open it in Excel, "
                               "save it as .xlsx and import again.") from None
        raise DatasetError(f"{shown} is not a valid zip file (it may be damaged or "
                           "incomplete); create it again and import again.") from None
    try:
        reason = _archive_risk(infos, max_bytes)
        if reason:
            raise DatasetError(f"{shown} looks unsafe ({reason}) and was not opened. Export "
                               "the data again, or ask your administrator about the limit.")
        for info in infos:
            name = info.filename.replace("\\", "/")
            if (name.startswith("/") or re.match(r"^[A-Za-z]:", name)
                    or ".." in PurePosixPath(name).parts):
                raise DatasetError(f"{shown} was not opened because a file inside it points "
                                   "outside the archive (a name with '..' or an absolute "
                                   "path); create the zip again from the export folder.")
    except BaseException:
        archive.close()
        raise
    return archive


def _archive_risk(infos: list[zipfile.ZipInfo], max_bytes: int) -> str | None:
    if len(infos) > MAX_ENTRIES:
        return f"it holds more than {MAX_ENTRIES:,} files, like a zip bomb"
    if sum(i.file_size for i in infos) > max_bytes:
        return f"it would unpack to more than {max_bytes // 1024 ** 2:,} MB, like a zip bomb"
    for info in infos:
        packed = max(info.compress_size, 1)
        if info.file_size > RATIO_MIN_BYTES and info.file_size > MAX_RATIO * packed:
            return f"a file inside is compressed more than {MAX_RATIO} to 1, like a zip bomb"
    return None


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, label: str) -> None:
    written = 0
    try:
        with archive.open(info) as src, create_private(target) as out:
            while chunk := src.read(1024 ** 2):
                written += len(chunk)
                if written > info.file_size:  # the directory lied about the size
                    raise DatasetError(f"{label} looks unsafe (it is larger than the zip "
                                       "says) and was not opened.")
                out.write(chunk)
    except DatasetError:
        raise
    except Exception:  # zlib, bz2 and lzma each raise their own error on damaged data
        raise DatasetError(f"{label} could not be unpacked (the zip is damaged or uses an "
                           "unusual compression); create the zip again and import "
                           "again.") from None


def _table_of(filename: str) -> str | None:
    name = PurePosixPath(filename)
    table = name.stem.strip().lower()
    return table if table in TABLES and name.suffix.lower() in TABLE_SUFFIXES else None


def _claim(found: dict, table: str, item: tuple, shown: str) -> None:
    if table in found:
        raise DatasetError(f"{shown} holds the {table} table twice ({found[table][2]} and "
                           f"{item[2]}); keep one and import again.")
    found[table] = item


def _require_tables(found: dict, shown: str) -> None:
    if not found:
        raise DatasetError(f"{shown} holds no table this software reads; name the files "
                           f"{_table_list()} (.csv or .parquet) and import again.")


def _table_list() -> str:
    return ", ".join(TABLES[:-1]) + " or " + TABLES[-1]


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


# -- CSV ---------------------------------------------------------------------------------

def _read_csv(path: Path, table: str, source: str) -> tuple[RawTable, list[RowProblem]]:
    lines, too_long = _check_utf8(path, source)
    if lines == 0:
        return _raw_table(table, source, pl.DataFrame(), {}, []), []
    delimiter, header = _read_header(path, source)
    names = _normalise(header, source)
    marker = _long_line_marker(delimiter, len(names))
    with private_dir("caseconf-import-") as tmp:
        if too_long:
            path = _drop_long_lines(path, Path(tmp) / "short.csv", marker)
        arrow, rejects, skipped = _parse_any_line_ends(path, Path(tmp), delimiter, len(names),
                                                       lines, source)
    good = arrow.num_rows
    problems = []
    sep = "comma" if delimiter == "," else "semicolon"
    for line, errors in rejects.items():
        raw = errors[0][1].strip("\r\n")
        if raw == marker:  # the line itself is gone: report its number, not text
            errors, raw = [("LINE SIZE OVER MAXIMUM", "", "")], ""
            problems.append(_row_problem(table, source, line, errors, raw, delimiter,
                                         len(names), sep))
        elif raw.strip():  # a line of spaces is an empty row, as in a spreadsheet
            problems.append(_row_problem(table, source, line, errors, raw, delimiter,
                                         len(names), sep))
    if len(problems) >= BAD_LINES_MIN and len(problems) > good:
        raise DatasetError(
            f"Most lines of {source} ({len(problems):,} of {len(problems) + good:,}) do not "
            f"have the header's {len(names)} columns, so it was not imported; check that "
            "every line uses the header's separator (comma or semicolon) and import again.")
    return _raw_table(table, source, pl.from_arrow(arrow), names,
                      _line_numbers(good, skipped)), problems


def _parse_any_line_ends(path: Path, tmp: Path, delimiter: str, width: int, lines: int,
                         source: str):
    try:
        return _parse_csv(path, delimiter, width, lines)
    except duckdb.Error:
        pass
    # DuckDB's strict parser stops at mixed line ends (CRLF and LF in one file, as after
    # a hand edit): read a copy with one kind of line end.
    uniform = _uniform_line_ends(path, tmp / "table.csv")
    try:
        return _parse_csv(uniform, delimiter, width, _check_utf8(uniform, source)[0])
    except duckdb.Error:
        raise DatasetError(f"{source} could not be read as a CSV table; check that it is "
                           "comma- or semicolon-separated text and import again.") from None


def _long_line_marker(delimiter: str, width: int) -> str:
    """What stands in for a line too long to parse: one field more than the header, so the
    parser always rejects it, under its own line number."""
    return delimiter.join(["caseconf:line-too-long"] * (width + 1))


def _drop_long_lines(path: Path, target: Path, marker: str) -> Path:
    """A copy of `path` with each line longer than MAX_LINE_BYTES replaced by `marker`.

    DuckDB reads through a buffer of 4 * MAX_LINE_BYTES; a longer line is not rejected
    but misread: quoted, it came back as a quoting error carrying the previous line's
    text; unquoted, it vanished and shifted the row numbers after it. (A quoted record
    whose line breaks keep each line short is left to DuckDB's own limit.)"""
    with open(path, "rb") as src, create_private(target) as out:
        head = src.read(_CHUNK)
        newline = b"\n" if b"\n" in head or b"\r" not in head else b"\r"
        stand_in = marker.encode() + newline
        line, dropping, chunk = b"", False, head
        while chunk:
            *complete, rest = chunk.split(newline)
            for piece in complete:
                long = dropping or len(line) + len(piece) > MAX_LINE_BYTES
                out.write(stand_in if long else line + piece + newline)
                line, dropping = b"", False
            dropping = dropping or len(line) + len(rest) > MAX_LINE_BYTES
            line = b"" if dropping else line + rest
            chunk = src.read(_CHUNK)
        out.write(stand_in if dropping else line)
    return target


def _parse_csv(path: Path, delimiter: str, width: int, lines: int):
    """DuckDB's rows, its rejected lines, and every row number that loaded nothing."""
    arrow, rejects = _duckdb_csv(path, delimiter, width)
    skipped = set(rejects)
    # DuckDB skips an empty line without loading or rejecting it, yet counts it as a row
    # (so does a spreadsheet). When header + loaded + rejected rows fall short of the
    # text lines, there are empty lines or quoted line breaks: find the empty ones.
    if width > 1 and 1 + arrow.num_rows + len(rejects) < lines and _may_have_blank_lines(path):
        skipped.update(_blank_lines(path, delimiter))
    return arrow, rejects, skipped


def _uniform_line_ends(path: Path, target: Path) -> Path:
    carry = b""
    with open(path, "rb") as src, create_private(target) as out:
        while chunk := src.read(_CHUNK):
            chunk = carry + chunk
            carry = b"\r" if chunk.endswith(b"\r") else b""
            chunk = chunk[:-1] if carry else chunk
            out.write(chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
        out.write(b"\n" if carry else b"")
    return target


def _check_utf8(path: Path, source: str) -> tuple[int, bool]:
    """Validate the whole file as UTF-8 in chunks (cheap next to parsing). Returns the
    number of text lines up to the last non-blank character (0: an empty file), and
    whether a line is longer than MAX_LINE_BYTES (looked for here, where every byte
    passes anyway)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, newlines, lines, newline = 0, 0, 0, b"\n"
    run, too_long = 0, False  # run: bytes since the last line end
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                if offset == 0:
                    _refuse_other_encodings(chunk, source)
                    if b"\n" not in chunk and b"\r" in chunk:
                        newline = b"\r"  # classic Mac line ends
                if b"\x00" in chunk:
                    raise DatasetError(_not_utf8(source, "it contains binary data"))
                if not (chunk.isascii() and not decoder.getstate()[0]):
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError as e:
                        line = newlines + chunk.count(newline, 0, max(e.start, 0)) + 1
                        raise DatasetError(_not_utf8(
                            source, f"it looks like {_guess(chunk)}; the first such "
                                    f"character is on line {line}")) from None
                content = chunk.removeprefix(_BOM) if offset == 0 else chunk
                count = chunk.count(newline)
                # A chunk is no longer than the limit, so only a line running across
                # chunk ends can exceed it.
                if count:
                    too_long = too_long or run + chunk.find(newline) > MAX_LINE_BYTES
                    run = len(chunk) - chunk.rfind(newline) - 1
                else:
                    run += len(chunk)
                if content.strip():
                    trailing = chunk[len(chunk.rstrip()):]
                    lines = newlines + count - trailing.count(newline) + 1
                newlines += count
                offset += len(chunk)
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise DatasetError(_not_utf8(source, "it ends in the middle of a character")
                                   ) from None
    except OSError:
        raise DatasetError(f"{source} could not be opened; check that the file may be read "
                           "and import again.") from None
    return lines, too_long or run > MAX_LINE_BYTES


def _may_have_blank_lines(path: Path) -> bool:
    tail = b""
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            window = tail + chunk
            if any(blank in window for blank in _BLANK_LINES):
                return True
            tail = chunk[-2:]
    return False


def _refuse_other_encodings(head: bytes, source: str) -> None:
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise DatasetError(_not_utf8(source, "it is UTF-32 text"))
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DatasetError(_not_utf8(source, "it is UTF-16 text, as Excel's 'Unicode Text' "
                                     "writes"))
    sample = head[:4096]
    if len(sample) >= 4 and sample.count(b"\x00") * 3 > len(sample):
        raise DatasetError(_not_utf8(source, "it looks like UTF-16"))
    if head.startswith(b"PK\x03\x04"):
        raise DatasetError(f"{source} is a zip or Excel file renamed to .csv; import the "
                           "workbook or zip itself, or save the sheet as 'CSV UTF-8'.")


def _guess(chunk: bytes) -> str:
    try:
        chunk.decode("cp1252")
        return "Windows-1252 (Latin-1)"
    except UnicodeDecodeError:
        return "another encoding"


def _not_utf8(source: str, why: str) -> str:
    return (f"{source} is not UTF-8 text ({why}). Save it as 'CSV UTF-8' and import again.")


def _read_header(path: Path, source: str) -> tuple[str, list[str]]:
    with open(path, "rb") as f:
        head = f.read(_HEADER_BYTES)
        more = bool(f.read(1))
    text = codecs.getincrementaldecoder("utf-8")().decode(head.removeprefix(_BOM))
    end = min((i for i in (text.find("\n"), text.find("\r")) if i >= 0), default=-1)
    if end < 0 and more:
        raise DatasetError(f"The first line of {source} is longer than "
                           f"{_HEADER_BYTES // 1024 ** 2} MB; is it really a CSV table?")
    first = text if end < 0 else text[:end]
    if not first.strip():
        raise DatasetError(f"The first line of {source} is empty; put the column names on "
                           "the first line and import again.")
    rest = re.split(r"[\r\n]", text[end + 1:].lstrip("\r\n"), maxsplit=1)[0] if end >= 0 else ""
    delimiter = _pick_delimiter(first, rest, source)
    try:
        header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except (csv.Error, StopIteration):
        raise DatasetError(f"The first line of {source} could not be read as column names; "
                           "check its quotes and import again.") from None
    return delimiter, header


def _pick_delimiter(first: str, second: str, source: str) -> str:
    commas, semis = _count_unquoted(first, ","), _count_unquoted(first, ";")
    if commas == semis == 0:
        # One column has no separator; several names joined by tabs, bars or spaces
        # ("client_id session_number") are a file that would load as one column.
        names = r"[\w.:\-]+"
        tabbed = [t.strip() for t in re.split(r"[\t|]", first) if t.strip()]
        spaced = first.split()
        if ((len(tabbed) > 1 and all(re.fullmatch(names + r"( " + names + ")*", t)
                                     for t in tabbed))
                or (len(spaced) > 1 and all(re.fullmatch(names, t) for t in spaced)
                    and any("_" in t for t in spaced))):
            raise DatasetError(f"The first line of {source} has no comma or semicolon "
                               "between the column names; save the table as 'CSV UTF-8' "
                               "(comma separated) and import again.")
        return ","
    if commas != semis:
        return "," if commas > semis else ";"
    # A tie: trust the separator the first data line repeats as often.
    if _count_unquoted(second, ",") == commas != _count_unquoted(second, ";"):
        return ","
    if _count_unquoted(second, ";") == semis != _count_unquoted(second, ","):
        return ";"
    raise DatasetError(f"The first line of {source} has as many commas as semicolons, so its "
                       "separator is unclear; save it as 'CSV UTF-8' and import again.")


def _count_unquoted(line: str, sep: str) -> int:
    count, quoted = 0, False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            count += 1
    return count


@lru_cache(maxsize=1)
def _engine() -> duckdb.DuckDBPyConnection:
    """The process's in-memory DuckDB for parsing files. Each read takes a cursor of its
    own (its own temporary rejects table, safe across threads): opening a database for
    every file cost more than reading most of them. Text comes out as Arrow string views,
    the layout polars keeps strings in, so handing a table to polars copies nothing."""
    return duckdb.connect(config={"arrow_output_version": "1.4", "produce_arrow_string_view": True})


def _duckdb_csv(path: Path, delimiter: str, width: int):
    """All columns as text, positional names (c0, c1, ...), ragged lines to the rejects
    table instead of an error. Returns the Arrow table and {line: [(type, raw, msg)]}."""
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width)) + "}"
    sql = (f"SELECT * FROM read_csv($path, delim=$delim, quote='\"', escape='\"', "
           f"header=true, auto_detect=false, columns={columns}, strict_mode=true, "
           f"encoding='utf-8', max_line_size={MAX_LINE_BYTES}, "
           f"buffer_size={4 * MAX_LINE_BYTES}, store_rejects=true, "
           f"rejects_table='rejects', rejects_scan='rejects_scan')")
    with _plain_path(path) as plain, _engine().cursor() as con:
        arrow = con.sql(sql, params={"path": str(plain), "delim": delimiter}).to_arrow_table()
        rows = con.sql("SELECT line, error_type::VARCHAR, csv_line, error_message "
                       "FROM rejects ORDER BY line").fetchall()
    rejects: dict[int, list[tuple[str, str, str]]] = {}
    for line, kind, raw, message in rows:
        rejects.setdefault(int(line), []).append((kind or "", raw or "", message or ""))
    return arrow, rejects


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


def _blank_lines(path: Path, delimiter: str) -> list[int]:
    """Row numbers of empty lines outside quotes. Only called when the file has an empty
    line somewhere (rare), because it parses in Python."""
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))
    blank = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        try:
            for number, record in enumerate(csv.reader(f, delimiter=delimiter), start=1):
                if not record:
                    blank.append(number)
        except csv.Error:
            pass  # an unclosed quote: DuckDB rejects the rest of the file as one line
    return blank


_MESSAGES = {
    "too_many_fields": "Line {line} has {found} fields but the header has {width}; check "
                       "for an unquoted {sep} in a note.",
    "too_few_fields": "Line {line} has {found} fields but the header has {width}; check for "
                      "a missing {sep} or a line break inside an unquoted note.",
    "bad_quoting": "Line {line} has a double quote in the wrong place; a value with quotes "
                   "must be fully enclosed in double quotes, with each quote inside written "
                   "twice.",
    "unclosed_quote": "Line {line} opens a double quote that is never closed, so this line "
                      "and any after it could not be read; close the quote and import "
                      "again.",
    "line_too_long": "Line {line} is longer than {mb} MB and was not read; check for a "
                     "missing closing quote.",
    "invalid_utf8": "Line {line} is not valid UTF-8 text.",
    "unreadable_line": "Line {line} could not be read as CSV.",
}


def _row_problem(table, source, line, errors, raw, delimiter, width, sep) -> RowProblem:
    kinds = {kind for kind, _, _ in errors}
    # A line over the limit is that first: its quotes or fields were never read whole.
    if "LINE SIZE OVER MAXIMUM" in kinds:
        rule = "line_too_long"
    elif "UNQUOTED VALUE" in kinds:
        rule = "unclosed_quote" if raw.count('"') % 2 else "bad_quoting"
    elif "TOO MANY COLUMNS" in kinds:
        rule = "too_many_fields"
    elif "MISSING COLUMNS" in kinds:
        rule = "too_few_fields"
    elif "INVALID ENCODING" in kinds:
        rule = "invalid_utf8"
    else:
        rule = "unreadable_line"
    found = _field_count(raw, delimiter, errors)
    message = _MESSAGES[rule].format(line=line, found=found, width=width, sep=sep,
                                     mb=MAX_LINE_BYTES // 1024 ** 2)
    return RowProblem(table, source, line, rule, message, raw)


def _field_count(raw: str, delimiter: str, errors) -> int | str:
    try:
        return len(next(csv.reader(io.StringIO(raw, newline=""), delimiter=delimiter)))
    except (csv.Error, StopIteration):
        counts = [int(m) for _, _, msg in errors for m in re.findall(r"Found: (\d+)", msg)]
        return max(counts) if counts else "a different number of"


def _line_numbers(rows: int, skipped: set[int]) -> pl.Series:
    """Spreadsheet row of each loaded row: the k-th loaded row is the k-th row number
    from 2 up that is not a rejected or empty line."""
    base = pl.int_range(2, rows + 2, dtype=pl.Int64, eager=True)
    if not skipped:
        return base
    ordered = sorted(skipped)
    # A skipped line s, the j-th skipped one, pushes every row whose base is >= s - j.
    shifts = pl.Series([s - j for j, s in enumerate(ordered)], dtype=pl.Int64)
    return base + shifts.search_sorted(base, side="right").cast(pl.Int64)


# -- Parquet -----------------------------------------------------------------------------

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


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- Excel -------------------------------------------------------------------------------

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


def _refuse_xml_declarations(archive: zipfile.ZipFile, shown: str) -> None:
    """Excel never writes a DOCTYPE; one in a workbook is an entity-expansion attack."""
    unsafe = DatasetError(f"{shown} looks unsafe (it declares XML entities or a DOCTYPE, "
                          "which Excel never writes) and was not opened. Open it in Excel, "
                          "save it as a new .xlsx and import again.")
    for info in archive.infolist():
        if info.is_dir() or info.filename.lower().endswith(_BINARY_PARTS):
            continue
        try:
            with archive.open(info) as part:
                head = part.read(XML_PROLOG_BYTES)
        except Exception:
            raise DatasetError(f"{shown} is not a valid .xlsx workbook (it may be damaged); "
                               "open it in Excel, save it again and import again.") from None
        # Dropping NUL bytes makes UTF-16 XML searchable as ASCII.
        text = head.replace(b"\x00", b"").upper()
        if b"<!DOCTYPE" in text or b"<!ENTITY" in text:
            raise unsafe
        prolog = re.sub(rb"<!--.*?-->", b"", text, flags=re.S)
        if (prolog.lstrip(b"\xef\xbb\xbf\xff\xfe \t\r\n").startswith(b"<")
                and not re.search(rb"<[A-Z_]", prolog) and info.file_size > len(head)):
            raise unsafe  # a prolog this long can hide a declaration past the window


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


# -- shared ------------------------------------------------------------------------------

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
