"""What the readers protect: every readable row arrives as text with the row number a
spreadsheet shows, every unreadable line is reported by number, and an unreadable or
unsafe input is refused with a sentence instead of a traceback."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import openpyxl
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import readers
from core.readers import DatasetError, read_dataset


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def rows(dataset, table="sessions", columns=None) -> list[tuple]:
    frame = dataset.tables[table].frame
    return frame.select(columns or frame.columns).rows()


# -- CSV ---------------------------------------------------------------------------------

def test_comma_separated_csv_loads_every_row_as_text(tmp_path):
    path = write(tmp_path / "sessions.csv",
                 "client_id,session_number,attended\nC1,1,true\nC1,2,false\n")
    dataset = read_dataset(path)
    table = dataset.tables["sessions"]
    assert table.name == "sessions" and table.source == "sessions.csv"
    assert rows(dataset) == [("C1", "1", "true", 2), ("C1", "2", "false", 3)]
    assert table.frame.schema == pl.Schema({"client_id": pl.String, "session_number": pl.String,
                                            "attended": pl.String, "_line": pl.Int64})
    assert dataset.problems == [] and dataset.ignored_files == []


def test_semicolon_separated_csv_is_detected_from_the_header(tmp_path):
    path = write(tmp_path / "ratings.csv",
                 "client_id;session_number;score\nC1;1;4,5\nC1;2;\"7;5\"\n")
    dataset = read_dataset(path)
    assert rows(dataset, "ratings") == [("C1", "1", "4,5", 2), ("C1", "2", "7;5", 3)]


def test_utf8_bom_is_not_part_of_the_first_column_name(tmp_path):
    path = tmp_path / "sessions.csv"
    path.write_bytes(b"\xef\xbb\xbfclient_id,note\r\nC1,M\xc3\xbcller\r\n")
    table = read_dataset(path).tables["sessions"]
    assert table.columns == {"client_id": "client_id", "note": "note"}
    assert table.frame.rows() == [("C1", "Müller", 2)]


def test_quoted_separators_and_line_breaks_keep_spreadsheet_line_numbers(tmp_path):
    path = write(tmp_path / "themes.csv",
                 'client_id,session_number,note\n'
                 'C1,1,"first, with a comma"\n'
                 'C1,2,"two\nlines and ""quotes"""\n'
                 'C1,3,"three\r\n\r\nparagraphs"\n'
                 'C1,4,plain\n')
    dataset = read_dataset(path)
    assert rows(dataset, "themes") == [
        ("C1", "1", "first, with a comma", 2),
        ("C1", "2", 'two\nlines and "quotes"', 3),
        ("C1", "3", "three\r\n\r\nparagraphs", 4),
        ("C1", "4", "plain", 5),
    ]


def test_ragged_lines_become_row_problems_and_later_rows_keep_their_line(tmp_path):
    path = write(tmp_path / "sessions.csv",
                 "client_id,session_number,therapist_id,modality\n"
                 "C1,1,T1,individual\n"
                 "C1,2,T1\n"                           # line 3: too few
                 "C1,3,T1,individual,Anna was late\n"  # line 4: too many
                 "C1,4,T1,couple\n"
                 '"C1,5,T1,group\n'                    # line 6: never-closed quote
                 )
    dataset = read_dataset(path)
    assert rows(dataset, columns=["session_number", "_line"]) == [("1", 2), ("4", 5)]
    found = [(p.line, p.rule) for p in dataset.problems]
    assert found == [(3, "too_few_fields"), (4, "too_many_fields"), (6, "unclosed_quote")]
    too_many = dataset.problems[1]
    assert too_many.message == ("Line 4 has 5 fields but the header has 4; check for an "
                                "unquoted comma in a note.")
    assert too_many.raw == "C1,3,T1,individual,Anna was late"
    assert too_many.table == "sessions" and too_many.source == "sessions.csv"


# A line longer than the parser's read buffer (four times the line limit) once came back
# as bad_quoting with the previous line's text (quoted), or vanished (unquoted).
HUGE = "x" * (4 * readers.MAX_LINE_BYTES + 1024)


@pytest.mark.parametrize("note", [HUGE, f'"{HUGE}"', "y" * (readers.MAX_LINE_BYTES + 10)],
                         ids=["unquoted", "quoted", "over the limit only"])
def test_a_too_long_line_is_its_own_rule_with_its_line_and_no_other_lines_text(tmp_path, note):
    path = write(tmp_path / "themes.csv", "client_id,session_number,kind,code,note\n"
                 "c1,1,transference,hostile,PREVIOUS LINE\n"
                 f"c1,2,transference,hostile,{note}\n"
                 "c1,3,transference,hostile,next\n")
    dataset = read_dataset(path)
    assert rows(dataset, "themes", ["note", "_line"]) == [("PREVIOUS LINE", 2), ("next", 4)]
    (problem,) = dataset.problems
    assert (problem.line, problem.rule) == (3, "line_too_long")
    assert "PREVIOUS" not in problem.raw and "Line 3 is longer than" in problem.message


def test_quote_in_the_middle_of_a_value_is_a_row_problem(tmp_path):
    path = write(tmp_path / "sessions.csv", 'client_id,note\nC1,ok\n"C2"x,bad\nC3,ok\n')
    dataset = read_dataset(path)
    assert rows(dataset, columns=["client_id", "_line"]) == [("C1", 2), ("C3", 4)]
    assert [(p.line, p.rule) for p in dataset.problems] == [(3, "bad_quoting")]


def test_empty_lines_are_skipped_but_counted_like_a_spreadsheet(tmp_path):
    path = write(tmp_path / "sessions.csv",
                 "client_id,session_number\r\nC1,1\r\n\r\nC1,2\r\n   \r\nC1\r\nC1,3\r\n\r\n")
    dataset = read_dataset(path)
    assert rows(dataset) == [("C1", "1", 2), ("C1", "2", 4), ("C1", "3", 7)]
    assert [(p.line, p.rule) for p in dataset.problems] == [(6, "too_few_fields")]


def test_mixed_line_ends_are_read_with_their_line_numbers(tmp_path):
    path = write(tmp_path / "sessions.csv", "client_id,session_number\nC1,1\r\nC1\nC1,3\r")
    dataset = read_dataset(path)
    assert rows(dataset) == [("C1", "1", 2), ("C1", "3", 4)]
    assert [(p.line, p.rule) for p in dataset.problems] == [(3, "too_few_fields")]


def test_many_rows_keep_their_line_numbers_around_rejected_lines(tmp_path):
    # Large enough for DuckDB to split the file between threads.
    bad = {10, 77_777, 150_001, 199_998}
    lines = ["client_id,session_number,score"]
    for i in range(200_000):
        if i in bad:
            lines.append(f"C{i},{i}")
        elif i % 50_000 == 3:
            lines.append(f'C{i},{i},"1\n2"')
        else:
            lines.append(f"C{i},{i},{i % 40}")
    path = write(tmp_path / "ratings.csv", "\n".join(lines) + "\n")
    dataset = read_dataset(path)
    frame = dataset.tables["ratings"].frame
    assert frame.height == 200_000 - len(bad)
    assert frame.select((pl.col("session_number").cast(pl.Int64) + 2 == pl.col("_line")).all()).item()
    assert [p.line for p in dataset.problems] == sorted(i + 2 for i in bad)


def test_a_file_where_most_lines_do_not_fit_the_header_is_refused(tmp_path):
    body = "".join(f"C{i}\tT1\t1\n" for i in range(300))
    path = write(tmp_path / "sessions.csv", "client_id,therapist_id,session_number\n" + body)
    with pytest.raises(DatasetError, match="Most lines of sessions.csv"):
        read_dataset(path)


def test_utf16_file_is_refused_with_a_sentence_about_utf8(tmp_path):
    path = write(tmp_path / "sessions.csv", "client_id,session_number\nC1,1\n", "utf-16")
    with pytest.raises(DatasetError) as error:
        read_dataset(path)
    assert "sessions.csv is not UTF-8 text" in str(error.value)
    assert "UTF-16" in str(error.value) and "CSV UTF-8" in str(error.value)


def test_windows_1252_file_is_refused_naming_the_encoding_and_line(tmp_path):
    path = write(tmp_path / "sessions.csv",
                 "client_id,note\nC1,ok\nC2,Gespr\u00e4ch \u20ac\n", "cp1252")
    with pytest.raises(DatasetError) as error:
        read_dataset(path)
    message = str(error.value)
    assert message == ("sessions.csv is not UTF-8 text (it looks like Windows-1252 (Latin-1); "
                       "the first such character is on line 3). Save it as 'CSV UTF-8' and "
                       "import again.")
    assert "Gespr" not in message


def test_header_only_file_gives_a_table_with_no_rows(tmp_path):
    table = read_dataset(write(tmp_path / "sessions.csv", "client_id,session_number\n")
                         ).tables["sessions"]
    assert table.frame.height == 0
    assert table.frame.columns == ["client_id", "session_number", "_line"]


def test_empty_file_gives_a_table_with_no_rows_or_columns(tmp_path):
    table = read_dataset(write(tmp_path / "sessions.csv", "")).tables["sessions"]
    assert table.frame.height == 0 and table.columns == {}
    assert table.frame.schema == pl.Schema({"_line": pl.Int64})


def test_column_names_are_trimmed_and_lowercased_with_originals_kept(tmp_path):
    path = write(tmp_path / "sessions.csv", " Client_ID ;Session_Number;WAI-SR:Bond\nC1;1;5\n")
    table = read_dataset(path).tables["sessions"]
    assert table.columns == {"client_id": " Client_ID ", "session_number": "Session_Number",
                             "wai-sr:bond": "WAI-SR:Bond"}
    assert table.frame.columns == ["client_id", "session_number", "wai-sr:bond", "_line"]


def test_empty_and_blank_cells_become_none_and_other_values_stay_as_written(tmp_path):
    path = write(tmp_path / "sessions.csv",
                 'client_id,therapist_id,note\n C1 ,,"  "\nC2,\u00a0, two  spaces \n')
    assert rows(read_dataset(path)) == [(" C1 ", None, None, 2), ("C2", None, " two  spaces ", 3)]


def test_rows_with_no_value_at_all_are_skipped(tmp_path):
    path = write(tmp_path / "sessions.csv", "client_id,session_number\n,\nC1,1\n , \n")
    assert rows(read_dataset(path)) == [("C1", "1", 3)]


def test_unnamed_columns_are_kept_under_their_letter(tmp_path):
    table = read_dataset(write(tmp_path / "sessions.csv", "client_id,,x\nC1,extra,1\n")
                         ).tables["sessions"]
    assert table.columns == {"client_id": "client_id", "unnamed_b": "", "x": "x"}


def test_column_names_with_pattern_characters_are_taken_literally(tmp_path):
    table = read_dataset(write(tmp_path / "sessions.csv", "client_id,*,^x$\nC1, ,2\n")
                         ).tables["sessions"]
    assert table.frame.columns == ["client_id", "*", "^x$", "_line"]
    assert table.frame.rows() == [("C1", None, "2", 2)]


def test_duplicate_column_names_after_normalising_are_refused(tmp_path):
    path = write(tmp_path / "sessions.csv", "client_id,Client_ID \nC1,C1\n")
    with pytest.raises(DatasetError, match="two columns named 'client_id'"):
        read_dataset(path)


def test_tab_separated_file_is_refused_not_read_as_one_column(tmp_path):
    path = write(tmp_path / "sessions.csv", "client_id\tsession_number\nC1\t1\n")
    with pytest.raises(DatasetError, match="no comma or semicolon"):
        read_dataset(path)


def test_single_column_file_reads_as_one_column(tmp_path):
    table = read_dataset(write(tmp_path / "therapists.csv", "therapist_id\nT1\n\nT2\n")
                         ).tables["therapists"]
    assert table.frame.rows() == [("T1", 2), ("T2", 4)]


def test_path_with_glob_characters_is_read_literally(tmp_path):
    path = write(tmp_path / "export [2024]*" / "sessions.csv", "client_id\nC1\n")
    write(tmp_path / "export 2" / "sessions.csv", "client_id\nOTHER\n")
    assert rows(read_dataset(path)) == [("C1", 2)]


# -- folders, archives, workbooks, parquet -----------------------------------------------

def parquet(path: Path, table: pa.Table) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def test_folder_with_csv_and_parquet_tables(tmp_path):
    folder = tmp_path / "export"
    write(folder / "Sessions.CSV", "client_id,session_number\nC1,1\n")
    parquet(folder / "ratings.parquet", pa.table({"client_id": ["C1"], "score": [4.0]}))
    dataset = read_dataset(folder)
    assert set(dataset.tables) == {"sessions", "ratings"}
    assert dataset.tables["sessions"].source == "Sessions.CSV"
    assert rows(dataset, "ratings") == [("C1", "4", 2)]


def test_folder_holding_one_export_folder_is_read(tmp_path):
    write(tmp_path / "outer" / "export" / "sessions.csv", "client_id\nC1\n")
    dataset = read_dataset(tmp_path / "outer")
    assert dataset.tables["sessions"].source == "export/sessions.csv"


def test_one_table_as_both_csv_and_parquet_is_refused(tmp_path):
    write(tmp_path / "sessions.csv", "client_id\nC1\n")
    parquet(tmp_path / "sessions.parquet", pa.table({"client_id": ["C1"]}))
    with pytest.raises(DatasetError, match="holds the sessions table twice"):
        read_dataset(tmp_path)


def test_unknown_files_are_listed_as_ignored(tmp_path):
    write(tmp_path / "sessions.csv", "client_id\nC1\n")
    write(tmp_path / "notes.txt", "hello")
    write(tmp_path / "old" / "sessions.csv", "client_id\nC1\n")
    write(tmp_path / ".DS_Store", "x")
    assert read_dataset(tmp_path).ignored_files == ["notes.txt", "old/"]


def test_parquet_values_become_text_with_line_numbers(tmp_path):
    table = pa.table({
        "Client_ID": ["C1", "C2", None],
        "session_number": pa.array([1, 2, 3], pa.int32()),
        "score": [12.0, 12.5, None],
        "attended": [True, False, None],
        "session_date": [dt.date(2024, 3, 1), None, dt.date(2024, 3, 3)],
        "note": ["  ", "x", None],
    })
    dataset = read_dataset(parquet(tmp_path / "sessions.parquet", table))
    raw = dataset.tables["sessions"]
    assert raw.columns["client_id"] == "Client_ID"
    assert raw.frame.rows() == [
        ("C1", "1", "12", "true", "2024-03-01", None, 2),
        ("C2", "2", "12.5", "false", None, "x", 3),
        (None, "3", None, None, "2024-03-03", None, 4),
    ]
    assert all(dtype == pl.String for dtype in raw.frame.drop("_line").dtypes)


def test_damaged_parquet_is_refused_with_a_sentence(tmp_path):
    path = write(tmp_path / "sessions.parquet", "PAR1 not really")
    with pytest.raises(DatasetError, match="could not be read as Parquet"):
        read_dataset(path)


def make_zip(path: Path, files: dict[str, bytes | str], **kwargs) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, **kwargs) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def test_zip_export_is_read_with_its_name_in_the_source(tmp_path):
    path = make_zip(tmp_path / "upload.tmp.zip", {
        "sessions.csv": "client_id,session_number\nC1,1\n",
        "ratings.csv": "client_id,session_number,score\nC1,1,7\nC1\n",
        "readme.txt": "hi",
        "inner.zip": b"PK\x05\x06" + bytes(18),
    })
    dataset = read_dataset(path, display_name="export.zip")
    assert dataset.tables["sessions"].source == "export.zip: sessions.csv"
    assert rows(dataset, "ratings") == [("C1", "1", "7", 2)]
    assert [(p.source, p.line) for p in dataset.problems] == [("export.zip: ratings.csv", 3)]
    assert dataset.ignored_files == ["export.zip: readme.txt", "export.zip: inner.zip"]


def test_zip_with_one_top_folder_is_read(tmp_path):
    path = make_zip(tmp_path / "export.zip", {
        "export/sessions.csv": "client_id\nC1\n",
        "__MACOSX/export/._sessions.csv": "junk",
        "export/deeper/ratings.csv": "client_id\nC1\n",
    })
    dataset = read_dataset(path)
    assert dataset.tables["sessions"].source == "export.zip: export/sessions.csv"
    assert dataset.ignored_files == ["export.zip: export/deeper/ratings.csv"]


def test_zip_with_path_traversal_is_refused(tmp_path):
    path = make_zip(tmp_path / "export.zip", {"sessions.csv": "client_id\nC1\n",
                                               "../../evil.csv": "x"})
    with pytest.raises(DatasetError, match="points outside the archive"):
        read_dataset(path)


def test_zip_bomb_is_refused_before_unpacking(tmp_path):
    path = make_zip(tmp_path / "export.zip", {"sessions.csv": "client_id\n" + "0" * 20_000_000})
    with pytest.raises(DatasetError, match=r"looks unsafe \(a file inside is compressed"):
        read_dataset(path)


def test_zip_that_unpacks_beyond_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "MAX_UNCOMPRESSED_BYTES", 1_000)
    path = make_zip(tmp_path / "export.zip", {"sessions.csv": "client_id\n" + "C1\n" * 500})
    with pytest.raises(DatasetError, match="would unpack to more than"):
        read_dataset(path)


def test_zip_with_too_many_entries_is_refused(tmp_path):
    files = {f"f{i}.txt": "" for i in range(readers.MAX_ENTRIES + 1)}
    path = make_zip(tmp_path / "export.zip", {"sessions.csv": "client_id\nC1\n", **files})
    with pytest.raises(DatasetError, match="looks unsafe .*more than 1,000 files"):
        read_dataset(path)


def test_damaged_zip_is_refused_with_a_sentence(tmp_path):
    path = write(tmp_path / "export.zip", "this is not a zip")
    with pytest.raises(DatasetError, match="not a valid zip file"):
        read_dataset(path)


def workbook(path: Path, sheets: dict[str, list[list]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, sheet_rows in sheets.items():
        sheet = book.create_sheet(title)
        for number, values in enumerate(sheet_rows, start=1):
            for column, value in enumerate(values, start=1):
                if value is not None:
                    sheet.cell(row=number, column=column, value=value)
    book.save(path)
    return path


def test_xlsx_cells_are_written_as_the_person_sees_them(tmp_path):
    path = workbook(tmp_path / "clinic.xlsx", {"Sessions": [
        [" Client_ID", "session_number", "session_date", "attended", "score", "note"],
        ["C1", 1, dt.date(2024, 3, 1), True, 12.0, "  "],
        ["C1", 2.0, dt.datetime(2024, 3, 8, 14, 30), False, 0.1 + 0.2, " as typed "],
    ]})
    table = read_dataset(path).tables["sessions"]
    assert table.source == "clinic.xlsx, sheet Sessions"
    assert table.columns["client_id"] == " Client_ID"
    assert table.frame.rows() == [
        ("C1", "1", "2024-03-01", "true", "12", None, 2),
        ("C1", "2", "2024-03-08 14:30:00", "false", "0.3", " as typed ", 3),
    ]


def test_xlsx_empty_rows_are_skipped_but_row_numbers_kept(tmp_path):
    path = workbook(tmp_path / "clinic.xlsx", {"ratings": [
        ["client_id", "score"], ["C1", 3], [], [None, None], ["C2", 4], [],
    ]})
    assert rows(read_dataset(path), "ratings") == [("C1", "3", 2), ("C2", "4", 5)]


def test_xlsx_empty_sheet_gives_a_table_with_no_rows(tmp_path):
    path = workbook(tmp_path / "clinic.xlsx", {"sessions": [["client_id"], ["C1"]],
                                               "events": []})
    table = read_dataset(path).tables["events"]
    assert table.frame.height == 0 and table.columns == {}


def test_xlsx_values_beyond_the_header_are_kept_as_unnamed_columns(tmp_path):
    path = workbook(tmp_path / "clinic.xlsx", {"sessions": [["client_id"], ["C1", None, "x"]]})
    table = read_dataset(path).tables["sessions"]
    assert table.columns == {"client_id": "client_id", "unnamed_b": "", "unnamed_c": ""}
    assert table.frame.rows() == [("C1", None, "x", 2)]


def test_xlsx_unknown_sheets_are_listed_as_ignored(tmp_path):
    path = workbook(tmp_path / "clinic.xlsx", {"sessions": [["client_id"], ["C1"]],
                                               "Pivot": [["x"]]})
    assert read_dataset(path).ignored_files == ["clinic.xlsx, sheet Pivot"]


def test_xlsx_without_a_table_sheet_is_refused(tmp_path):
    path = workbook(tmp_path / "clinic.xlsx", {"Sheet1": [["client_id"], ["C1"]]})
    with pytest.raises(DatasetError, match="no sheet named after a table"):
        read_dataset(path)


def test_xlsx_with_an_entity_declaration_is_refused_unopened(tmp_path):
    good = workbook(tmp_path / "good.xlsx", {"sessions": [["client_id"], ["C1"]]})
    evil = tmp_path / "clinic.xlsx"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(evil, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>' + data
            target.writestr(info, data)
    with pytest.raises(DatasetError, match=r"looks unsafe \(it declares XML entities"):
        read_dataset(evil)


def test_openpyxl_parses_workbooks_with_defusedxml():
    from openpyxl.xml import DEFUSEDXML
    assert DEFUSEDXML


def test_damaged_xlsx_is_refused_with_a_sentence(tmp_path):
    path = write(tmp_path / "clinic.xlsx", "not a workbook")
    with pytest.raises(DatasetError, match="not a valid .xlsx workbook"):
        read_dataset(path)


# -- what is not a dataset ---------------------------------------------------------------

def test_missing_path_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="was not found"):
        read_dataset(tmp_path / "nowhere.zip")


def test_unsupported_file_type_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="not a type this software reads"):
        read_dataset(write(tmp_path / "sessions.json", "{}"))


def test_single_csv_must_be_named_after_a_table(tmp_path):
    with pytest.raises(DatasetError, match="not named after a table"):
        read_dataset(write(tmp_path / "export.csv", "client_id\nC1\n"))


def test_folder_without_any_table_is_a_dataset_error(tmp_path):
    write(tmp_path / "notes.txt", "hello")
    with pytest.raises(DatasetError, match="holds no table"):
        read_dataset(tmp_path)


def test_dataset_error_messages_are_sentences_without_file_content(tmp_path):
    path = write(tmp_path / "sessions.csv", "client_id\tAnna Secret\nC1\tx\n")
    with pytest.raises(DatasetError) as error:
        read_dataset(path)
    assert "Anna" not in str(error.value) and "Traceback" not in str(error.value)
    assert str(error.value).endswith(".")


# -- properties --------------------------------------------------------------------------

@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400))
def test_random_bytes_give_a_dataset_or_a_dataset_error(tmp_path, data):
    path = tmp_path / "sessions.csv"
    path.write_bytes(data)
    try:
        dataset = read_dataset(path)
    except DatasetError as error:
        assert str(error)
    else:
        assert set(dataset.tables) == {"sessions"}


# Printable text plus the characters that make CSV hard; no control characters, whose
# "whitespace-ness" differs between Python and the regular expression engine.
CELL = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"),
                             include_characters=',;"\n\r\t '), max_size=8)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(width=st.integers(1, 4), data=st.data(), delimiter=st.sampled_from([",", ";"]),
       newline=st.sampled_from(["\n", "\r\n"]))
def test_any_well_quoted_csv_round_trips_with_its_line_numbers(tmp_path, width, data,
                                                               delimiter, newline):
    delimiter = delimiter if width > 1 else ","  # one column has no separator to detect
    records = data.draw(st.lists(st.lists(CELL, min_size=width, max_size=width), max_size=12))
    quote_all = data.draw(st.booleans())

    def field(value):
        if quote_all or any(ch in value for ch in (delimiter, '"', "\r", "\n")):
            return '"' + value.replace('"', '""') + '"'
        return value
    header = [f"c{i}" for i in range(width)]
    text = newline.join(delimiter.join(map(field, cells)) for cells in [header] + records)
    path = tmp_path / "events.csv"
    path.write_bytes((text + newline).encode())

    dataset = read_dataset(path)

    def cell(value):
        return None if re.fullmatch(r"\s*", value) else value
    expected = [tuple(cell(v) for v in record) + (number,)
                for number, record in enumerate(records, start=2)
                if any(cell(v) is not None for v in record)]
    assert dataset.problems == []
    assert rows(dataset, "events") == expected


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.lists(CELL, min_size=0, max_size=5), min_size=1, max_size=10),
       delimiter=st.sampled_from([",", ";"]))
def test_any_small_csv_shape_gives_a_dataset_or_a_dataset_error(tmp_path, lines, delimiter):
    path = tmp_path / "barriers.csv"
    path.write_text("\n".join(delimiter.join(cells) for cells in lines), encoding="utf-8")
    try:
        dataset = read_dataset(path)
    except DatasetError as error:
        assert str(error)
    else:
        frame = dataset.tables["barriers"].frame
        assert frame.schema["_line"] == pl.Int64
        lines_seen = frame["_line"].to_list() + [p.line for p in dataset.problems]
        assert len(lines_seen) == len(set(lines_seen)) and all(n >= 2 for n in lines_seen)


# -- scratch folders ---------------------------------------------------------------------

def _age(folder: Path, seconds: float) -> None:
    import os
    import time
    past = time.time() - seconds
    os.utime(folder, (past, past))


def test_an_unpacked_export_is_readable_by_its_owner_only(tmp_path, monkeypatch):
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as archive:
        archive.writestr("sessions.csv", "client_id,session_number\nc1,1\n")
    seen = []
    real = readers._add_tables

    def spy(dataset, tables):
        for _, file, _, _ in tables:
            seen.append((file.parent.stat().st_mode & 0o777, file.stat().st_mode & 0o777))
        return real(dataset, tables)

    monkeypatch.setattr(readers, "_add_tables", spy)
    read_dataset(export)
    assert seen == [(0o700, 0o600)]


def test_scratch_folders_left_by_a_killed_process_are_removed_on_the_next_start(tmp_path):
    import subprocess
    import sys

    from core.importer import cleanup_stale_temp
    held = "import sys, time; from core.scratch import private_dir\n" \
           "with private_dir('caseconf-import-') as d:\n    print(d, flush=True); time.sleep(600)\n"
    env = {**__import__("os").environ, "TMPDIR": str(tmp_path)}
    crashed = subprocess.Popen([sys.executable, "-c", held], stdout=subprocess.PIPE, text=True, env=env,
                               cwd=Path(__file__).resolve().parent.parent)
    living = subprocess.Popen([sys.executable, "-c", held], stdout=subprocess.PIPE, text=True, env=env,
                              cwd=Path(__file__).resolve().parent.parent)
    try:
        dead_dir, live_dir = Path(crashed.stdout.readline().strip()), Path(living.stdout.readline().strip())
        (dead_dir / "sessions.csv").write_text("unscanned notes")
        crashed.kill()
        crashed.wait()
        old_upload = tmp_path / "caseconf-upload-abc"  # from a version without locks
        old_upload.mkdir()
        unrelated = tmp_path / "someone-else"
        unrelated.mkdir()
        for folder in (dead_dir, live_dir, old_upload, unrelated):
            _age(folder, 2 * 3600)
        assert cleanup_stale_temp(tmp_path) == 2
        assert not dead_dir.exists() and not old_upload.exists()
        assert live_dir.exists() and unrelated.exists()
    finally:
        living.kill()
        living.wait()


def test_an_import_starts_by_removing_stale_scratch_folders(tmp_path, monkeypatch):
    from core import scratch
    from core.importer import import_dataset
    from core.store import Store
    monkeypatch.setattr(scratch.tempfile, "gettempdir", lambda: str(tmp_path))
    stale = tmp_path / "caseconf-import-old"
    stale.mkdir()
    _age(stale, 2 * 3600)
    write(tmp_path / "x" / "sessions.csv", "client_id,therapist_id,session_number\nc1,t1,0\n")
    store = Store(tmp_path / "s.duckdb")
    import_dataset(tmp_path / "x", store)
    store.close()
    assert not stale.exists()
