"""CSV tables, parsed by DuckDB (the 5-million-row import budget allows no Python loop
per row). A line that cannot be split into the header's columns becomes a `RowProblem`
and the other lines still load; rejected lines come from DuckDB's rejects table, whose
`line` counts records the way a spreadsheet counts rows (a quoted line break does not
start a new row)."""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path

import duckdb
import polars as pl

from ..scratch import create_private, private_dir
from .common import (MAX_LINE_BYTES, DatasetError, RawTable, RowProblem, _CHUNK, _engine,
                     _normalise, _plain_path, _raw_table)

# A file where most lines do not fit the header is the wrong file or the wrong separator:
# one sentence helps more than a million row problems.
BAD_LINES_MIN = 100

_HEADER_BYTES = 1024 ** 2
_BOM = codecs.BOM_UTF8
_BLANK_LINES = (b"\n\n", b"\n\r\n", b"\r\r")


def _read_csv(path: Path, table: str, source: str) -> tuple[RawTable, list[RowProblem]]:
    lines, too_long, mixed = _check_utf8(path, source)
    if lines == 0:
        return _raw_table(table, source, pl.DataFrame(), {}, []), []
    delimiter, header = _read_header(path, source)
    names = _normalise(header, source)
    marker = _long_line_marker(delimiter, len(names))
    with private_dir("caseconf-import-") as tmp:
        if too_long:
            path = _drop_long_lines(path, Path(tmp) / "short.csv", marker)
        if mixed:
            # Rows ending in CRLF and in LF in one file (rows added by hand): DuckDB's
            # parser does not always fail on it but may misread it (a row ending in a
            # quoted note and LF ran into the next ones): it reads a copy whose rows all
            # end in LF, each quoted value as written.
            path = _uniform_record_ends(path, Path(tmp) / "uniform.csv")
            lines = _check_utf8(path, source)[0]
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


def _uniform_record_ends(path: Path, target: Path) -> Path:
    """A copy of `path` whose line ends outside double quotes are all LF; a line break
    inside a quoted value stays as written. Quotes are counted as they come (a doubled
    quote inside a value counts twice), with C-speed splits, not a Python loop a byte."""
    quoted, carry = False, b""
    with open(path, "rb") as src, create_private(target) as out:
        while chunk := src.read(_CHUNK):
            chunk = carry + chunk
            carry = b"\r" if chunk.endswith(b"\r") else b""  # its LF may open the next chunk
            chunk = chunk[:-1] if carry else chunk
            parts = chunk.split(b'"')
            for i, part in enumerate(parts):
                quoted = quoted if i == 0 else not quoted
                if not quoted:
                    parts[i] = part.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            out.write(b'"'.join(parts))
        out.write(carry if quoted else carry.replace(b"\r", b"\n"))
    return target


def _check_utf8(path: Path, source: str) -> tuple[int, bool, bool]:
    """Validate the whole file as UTF-8 in chunks (cheap next to parsing). Returns the
    number of text lines up to the last non-blank character (0: an empty file), whether
    a line is longer than MAX_LINE_BYTES, and whether lines end in more than one way
    (CRLF and a bare LF or CR; a line break inside a quoted note counts too, where a
    copy with one kind of line end reads the same), looked for here, where every byte
    passes anyway."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, newlines, lines, newline = 0, 0, 0, b"\n"
    run, too_long = 0, False  # run: bytes since the last line end
    crlf = lf = cr = 0
    last = b""  # the byte before the chunk: a CRLF may be split between two chunks
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
                # Line ends of each kind; the two-byte count only where a CR is (most
                # exports have none: it tripled this pass's time at 10^6 sessions).
                cr_here = chunk.count(b"\r")
                if cr_here or last == b"\r":
                    crlf += chunk.count(b"\r\n") + (last == b"\r" and chunk[:1] == b"\n")
                lf += count if newline == b"\n" else chunk.count(b"\n")
                cr, last = cr + cr_here, chunk[-1:]
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
    kinds = sum(n > 0 for n in (crlf, lf - crlf, cr - crlf))  # CRLF, a bare LF, a bare CR
    return lines, too_long or run > MAX_LINE_BYTES, kinds > 1


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
