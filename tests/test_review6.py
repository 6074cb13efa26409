"""A hostile review of the command line's import: exports no developer here wrote, fed to
`python -m core import PATH --db FILE --json` as a clinic's IT person would, held to the
import's promises (CONTRACT.md): identifying text never reaches the store, the report or
the quarantine; every column is accounted for; bad input gets a sentence, never a
traceback."""

from __future__ import annotations

import json
import re
import zipfile

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import privacy
from core.cli import main
from core.importer import import_dataset
from core.readers import read_dataset
from core.store import close_all
from tests.conftest import SYSTEM, write_csv

PLANTED = ("thistlewood", "margaret", "07700", "900123", "2026-12-06")


def _cli(capsys, *argv) -> tuple[int, dict | str, str]:
    """`python -m core ARGV`, in this process: exit code, what it printed (read as JSON
    with --json), stderr."""
    try:
        code = main(list(argv))
    finally:
        close_all()
    out, err = capsys.readouterr()
    return code, (json.loads(out) if "--json" in argv and out.strip() else out), err


def _store_text(db) -> str:
    """Every row of every table in the state file and its newest snapshot, as text."""
    parts = []
    files = [db, *sorted(db.with_name(db.stem + ".snapshots").glob("*.duckdb"))]
    for path in files:
        con = duckdb.connect(str(path), read_only=True)
        try:
            for (table,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
                parts.append(repr(con.execute(f'SELECT * FROM "{table}"').fetchall()))
        finally:
            con.close()
    return "\n".join(parts).lower()


def _leaks(*texts: str) -> list[str]:
    return [word for word in PLANTED for text in texts if word in text.lower()]


# -- the export's own name is identifying text too

def test_the_name_of_a_zip_export_is_masked_in_the_problems_and_the_quarantine(tmp_path, capsys):
    # An EHR names the export after the client it was pulled for; the batch's file name was
    # masked, but every problem's source (and the quarantine's) quoted it as written.
    export = tmp_path / "Margaret Thistlewood 07700 900123.zip"
    with zipfile.ZipFile(export, "w") as zf:
        zf.writestr("sessions.csv", "client_id,therapist_id,session_number\nc1,t1,0\nc1,t1,x\n")
    db = tmp_path / "clinic.duckdb"
    code, report, err = _cli(capsys, "import", str(export), "--db", str(db), "--json")
    assert code == 1 and report["quarantined"] == {"sessions": 1}
    assert report["problems"][0]["line"] == 3 and report["problems"][0]["source"].endswith("sessions.csv")
    assert _leaks(json.dumps(report), err, _store_text(db)) == []


def test_a_folder_named_after_the_client_is_masked_in_the_text_report(tmp_path, capsys):
    folder = tmp_path / "export"
    write_csv(folder / "Margaret Thistlewood", "sessions", "client_id,therapist_id,session_number\nc1,t1,0\nc1,t1,x\n")
    db = tmp_path / "clinic.duckdb"
    code, out, err = _cli(capsys, "import", str(folder), "--db", str(db))
    assert code == 1 and "sessions.csv, line 3" in out
    assert _leaks(out, err, _store_text(db)) == []


# -- ISO 8601 date-times, as EHRs and pandas write them

@pytest.mark.parametrize("stamp", ["2026-12-06T10:00", "2026-12-06T10:00:00Z", "2026-12-06T10:00:00+01:00",
                                   "2026-12-06T10:00:00.000Z"])
def test_an_iso_date_time_is_a_date_to_the_guard(stamp):
    assert privacy.find_identifiers(f"Phoned her at {stamp}, no answer")
    assert "2026-12-06" not in privacy.mask(f"Phoned her at {stamp}, no answer")
    assert privacy.id_problem(stamp) == "looks like a date"


def test_a_note_holding_an_iso_date_time_is_quarantined_not_stored(tmp_path, store):
    folder = tmp_path / "export"
    write_csv(folder, "sessions", "client_id,therapist_id,session_number\nc1,t1,0\n")
    write_csv(folder, "barriers", "client_id,session_number,category,severity,note\n"
                                  'c1,0,cultural,2,"Phoned her at 2026-12-06T10:00, no answer"\n')
    result = import_dataset(folder, store)
    assert result.quarantined["barriers"] == 1 and result.loaded["barriers"] == 0
    stored = "\n".join(store.query(f"SELECT * FROM {t}", scope=SYSTEM).write_csv()
                       for t in ("barriers", "quarantine"))
    assert "2026-12-06" not in stored and "[date]" in stored


def test_a_session_date_with_a_time_zone_never_reaches_the_report_as_written(tmp_path, capsys):
    folder = tmp_path / "export"
    write_csv(folder, "sessions", "client_id,therapist_id,session_number,session_date,modality\n"
                                  "c1,t1,0,2026-12-06T10:00:00Z,bogus\n")
    db = tmp_path / "clinic.duckdb"
    code, report, err = _cli(capsys, "import", str(folder), "--db", str(db), "--json")
    assert code == 1
    assert _leaks(json.dumps(report), err, _store_text(db)) == []


# -- ids that are a person's name written in one case

@pytest.mark.parametrize("value", ["margaret.thistlewood", "margaret_thistlewood", "margaret-thistlewood",
                                   "thistlewood_margaret", "thistlewood.margaret"])
def test_a_full_name_in_lower_case_is_no_pseudonym(value):
    # The notes' guard reads "margaret thistlewood" as a name (a listed given name and a
    # word that is no English word); the id check took it only with a listed surname.
    assert privacy.id_problem(value) == "looks like a person's name"


@pytest.mark.parametrize("value", ["anna01", "group.north", "th-12", "client_0042", "c1.margaret", "maria.c",
                                   "sg01", "mark.test", "grace.hall", "amy.rose"])
def test_pseudonyms_with_a_given_name_or_english_words_stay_pseudonyms(value):
    assert privacy.id_problem(value) is None


def test_a_name_like_id_in_lower_case_is_not_stored(tmp_path, store):
    folder = tmp_path / "export"
    write_csv(folder, "sessions", "client_id,therapist_id,session_number\nmargaret.thistlewood,t1,0\nc2,t1,0\n")
    result = import_dataset(folder, store)
    assert result.loaded["sessions"] == 1 and result.quarantined["sessions"] == 1
    stored = "\n".join(store.query(f"SELECT * FROM {t}", scope=SYSTEM).write_csv()
                       for t in ("sessions", "quarantine", "batches"))
    assert "thistlewood" not in stored.lower()


# -- a ragged line's ids

def test_an_unclosed_quote_hides_a_name_like_id_on_the_lines_it_swallowed(tmp_path, store):
    # DuckDB rejects the rest of the file as one "line"; its ids follow line breaks, which
    # the ragged line's masking did not split fields on.
    folder = tmp_path / "export"
    write_csv(folder, "sessions", "client_id,therapist_id,session_number\nc1,t1,0\n")
    write_csv(folder, "barriers", "client_id,session_number,category,severity,note\n"
                                  'c1,0,cultural,2,"unclosed note about mood\n'
                                  "Margaret_Thistlewood,0,language,1,fine\n")
    result = import_dataset(folder, store)
    assert result.quarantined["barriers"] == 1
    shown = json.dumps(result.to_json()) + store.query("SELECT * FROM quarantine", scope=SYSTEM).write_csv()
    assert "thistlewood" not in shown.lower() and privacy.HIDDEN_ID in shown


# -- every column accounted for

def test_a_column_whose_name_starts_with_an_underscore_is_reported_as_ignored(tmp_path, store):
    folder = tmp_path / "export"
    write_csv(folder, "sessions", "client_id,therapist_id,session_number,_comments,_source\nc1,t1,0,a,b\n")
    result = import_dataset(folder, store)
    assert result.loaded["sessions"] == 1
    assert {"table": "sessions", "column": "_comments"} in result.ignored
    assert {"table": "sessions", "column": "_source"} in result.ignored


# -- --db naming a file that is not a store

def test_a_db_that_is_a_csv_file_gets_a_sentence_and_is_left_alone(tmp_path, capsys):
    folder = tmp_path / "export"
    write_csv(folder, "sessions", "client_id,therapist_id,session_number\nc1,t1,0\n")
    for name in ("sessions", "notes"):  # DuckDB opens a CSV as a database holding a view of it
        wrong = write_csv(tmp_path / name, name, "client_id,therapist_id,session_number\nc9,t9,0\n")
        before = wrong.read_bytes()
        code, report, err = _cli(capsys, "import", str(folder), "--db", str(wrong), "--json")
        assert code == 2 and "Traceback" not in err and err.startswith("Error: ")
        assert wrong.name in err and "not" in err
        assert wrong.read_bytes() == before


def test_a_db_that_is_another_programs_duckdb_file_gets_a_sentence_and_is_left_alone(tmp_path, capsys):
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE batches (x INTEGER)")
    con.close()
    folder = tmp_path / "export"
    write_csv(folder, "sessions", "client_id,therapist_id,session_number\nc1,t1,0\n")
    code, _, err = _cli(capsys, "import", str(folder), "--db", str(other))
    assert code == 2 and "Traceback" not in err and err.startswith("Error: ") and "other.duckdb" in err
    con = duckdb.connect(str(other), read_only=True)
    try:
        assert con.execute("SELECT table_name FROM information_schema.tables").fetchall() == [("batches",)]
    finally:
        con.close()


# -- a surname written before the given name, as registers and EHR headers write it

@pytest.mark.parametrize("note", ["Saw Thistlewood Margaret today", "Thistlewood, Margaret came late",
                                  "THISTLEWOOD Margaret came late", "saw thistlewood margaret today"])
def test_a_surname_before_a_given_name_is_masked_with_it(note):
    # The given name was found and masked, the surname before it kept: the quarantine and
    # the report showed "Saw Thistlewood [name] today" (and --redact stored it).
    masked = privacy.mask(note)
    assert "[name]" in masked and "thistlewood" not in masked.lower()


def test_a_redacted_note_keeps_no_surname_written_first(tmp_path, store):
    folder = tmp_path / "export"
    write_csv(folder, "sessions", "client_id,therapist_id,session_number\nc1,t1,0\n")
    write_csv(folder, "events", "client_id,session_number,event,note\n"
                                "c1,0,repair,Thistlewood Margaret apologised\n")
    result = import_dataset(folder, store, redact=True)
    assert result.loaded["events"] == 1 and result.redacted == {"events": 1}
    assert "thistlewood" not in store.query("SELECT * FROM events", scope=SYSTEM).write_csv().lower()


# -- the report stays bounded when each value is huge

def test_the_report_is_bounded_when_the_faulty_values_are_long_notes(tmp_path, capsys):
    # Thirty notes of a megabyte each (too long: at most 2,000 characters) printed 20 MB of
    # JSON: the twenty examples of the rule each quoted its whole note.
    folder = tmp_path / "export"
    rows = 30
    write_csv(folder, "sessions", "client_id,therapist_id,session_number\n"
              + "".join(f"c{i},t1,0\n" for i in range(rows)))
    note = "the client spoke about work and felt tired. " * 23_000
    write_csv(folder, "barriers", "client_id,session_number,category,severity,note\n"
              + "".join(f'c{i},0,cultural,2,"{note}"\n' for i in range(rows)))
    db = tmp_path / "clinic.duckdb"
    code, report, _ = _cli(capsys, "import", str(folder), "--db", str(db), "--json")
    assert code == 1 and report["quarantined"]["barriers"] == rows
    assert len(report["problems"]) == 20 and len(json.dumps(report)) < 100_000
    assert all(p["value"].startswith("the client spoke") for p in report["problems"])
    # Nothing is lost: the quarantine keeps each note whole.
    con = duckdb.connect(str(db), read_only=True)
    try:
        raws = con.execute("SELECT raw FROM quarantine").fetchall()
    finally:
        con.close()
    assert len(raws) == rows and all(len(json.loads(r)["note"]) == len(note) for (r,) in raws)


# -- rows appended by hand with other line ends

def test_rows_appended_with_other_line_ends_after_a_quoted_note_all_load_on_their_lines(tmp_path, store):
    # An export written with CRLF, two rows added in an editor that writes LF, each ending
    # in a quoted note: DuckDB's parser did not fail (so the copy with one kind of line end
    # was never read) but misread them: row 3 vanished, row 2 was loaded and also reported
    # as a bad line 3, and rows 4 and 5 came back as one row with client_id 'appended too"\nc'.
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "sessions.csv").write_bytes(b"client_id,therapist_id,session_number\r\nc1,t1,0\r\nc2,t1,0\r\n")
    (folder / "barriers.csv").write_bytes(b"client_id,session_number,category,severity,note\r\n"
                                          b'c1,0,cultural,2,"fine"\r\n'
                                          b'c2,0,other,1,"appended"\n'
                                          b'c2,0,language,2,"appended too"\n'
                                          b"c2,0,boundary,3,x\r\n"
                                          b"c1,0,language,9,y\r\n")
    result = import_dataset(folder, store)
    assert result.loaded["barriers"] == 4 and result.quarantined["barriers"] == 1
    assert [(p.line, p.column, p.rule) for p in result.problems] == [(6, "severity", "between 1 and 3")]
    notes = store.query("SELECT note FROM barriers ORDER BY note", scope=SYSTEM)["note"].to_list()
    assert notes == ["appended", "appended too", "fine", "x"]


CELL = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), include_characters=',"\n\r '),
               max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(width=st.integers(1, 3), data=st.data())
def test_any_csv_whose_rows_end_in_either_way_round_trips_with_its_line_numbers(tmp_path, width, data):
    records = data.draw(st.lists(st.lists(CELL, min_size=width, max_size=width), max_size=10))
    ends = data.draw(st.lists(st.sampled_from(["\n", "\r\n"]), min_size=len(records) + 1,
                              max_size=len(records) + 1))

    def field(value):
        return '"' + value.replace('"', '""') + '"' if any(ch in value for ch in ',"\r\n') else value
    lines = [",".join(f"c{i}" for i in range(width))] + [",".join(map(field, cells)) for cells in records]
    path = tmp_path / "events.csv"
    path.write_bytes("".join(line + end for line, end in zip(lines, ends)).encode())

    dataset = read_dataset(path)

    def cell(value):
        return None if re.fullmatch(r"\s*", value) else value
    expected = [tuple(cell(v) for v in record) + (number,) for number, record in enumerate(records, start=2)
                if any(cell(v) is not None for v in record)]
    frame = dataset.tables["events"].frame
    assert dataset.problems == []
    assert [tuple(row) for row in frame.select(*(f"c{i}" for i in range(width)), "_line").iter_rows()] == expected


# -- dates with a time zone, as pandas and EHRs write them

def test_session_dates_with_a_time_zone_become_days_since_intake(tmp_path, store):
    # A pandas export's datetime64[ns, UTC] column reads back from Parquet as
    # "2026-12-06 10:00:00+00", an EHR writes "2026-12-06T10:00:00Z": every dated session
    # was quarantined as "not a date" (a time without a zone was read).
    import datetime as dt

    import polars as pl
    folder = tmp_path / "export"
    folder.mkdir()
    utc = dt.timezone.utc
    pl.DataFrame({"client_id": ["c1", "c1"], "therapist_id": ["t1", "t1"], "session_number": [0, 1],
                  "session_date": [dt.datetime(2026, 12, 6, 10, tzinfo=utc), dt.datetime(2026, 12, 13, 10, tzinfo=utc)]}
                 ).write_parquet(folder / "sessions.parquet")
    result = import_dataset(folder, store)
    assert result.loaded["sessions"] == 2 and result.quarantined["sessions"] == 0
    write_csv(folder2 := tmp_path / "export2", "sessions", "client_id,therapist_id,session_number,session_date\n"
              "c2,t1,0,2026-12-06T10:00:00Z\nc2,t1,1,2026-12-20T09:30:00+01:00\nc2,t1,2,2026-12-27T09:30:00.000-0500\n")
    result = import_dataset(folder2, store)
    assert result.loaded["sessions"] == 3 and result.quarantined["sessions"] == 0
    days = store.query("SELECT client_id, days_since_intake FROM sessions ORDER BY client_id, session_number",
                       scope=SYSTEM).rows()
    assert days == [("c1", 0), ("c1", 7), ("c2", 0), ("c2", 14), ("c2", 21)]


@pytest.mark.parametrize("value", ["2026-12-06-05", "2026-12-06+01:00", "2026-12-06 UTC", "2026-12-06T10:00:00 Z",
                                   "2026-12-06 +01"])
def test_a_zone_without_a_time_or_a_spaced_zone_is_still_no_date(tmp_path, store, value):
    write_csv(folder := tmp_path / "export", "sessions",
              f"client_id,therapist_id,session_number,session_date\nc1,t1,0,{value}\n")
    result = import_dataset(folder, store)
    assert result.quarantined["sessions"] == 1 and result.problems[0].rule == "type"


# -- file names write words with underscores

def test_identifying_file_names_written_with_underscores_are_masked(tmp_path, capsys):
    # File names join words with "_" (or "-"), which the guard, reading free text, took as
    # one word: a letter beside the tables and the export's own name were shown as written.
    export = tmp_path / "Margaret_Thistlewood_07700900123_2026-12-06.zip"
    with zipfile.ZipFile(export, "w") as zf:
        zf.writestr("sessions.csv", "client_id,therapist_id,session_number\nc1,t1,0\nc1,t1,x\n")
        zf.writestr("Margaret_Thistlewood_letter.pdf", b"%PDF-1.4")
        zf.writestr("Margaret-Thistlewood-referral.docx", b"PK")
    db = tmp_path / "clinic.duckdb"
    code, report, err = _cli(capsys, "import", str(export), "--db", str(db), "--json")
    assert code == 1 and len(report["ignored_files"]) == 2
    assert _leaks(json.dumps(report), err, _store_text(db)) == []


@pytest.mark.parametrize("label", ["export.zip: sessions.csv", "WAI-SR_scores.csv", "clinic_export_v2.zip"])
def test_a_file_name_without_identifying_text_is_shown_as_written(label):
    assert privacy.Masker().name(label) == label


# -- tables one folder down, beside other files

@pytest.mark.parametrize("entries, folders", [
    ({"README.txt": "x", "export_2026/sessions.csv": "client_id,therapist_id,session_number\nc1,t1,0\n"},
     ["export_2026/"]),
    ({"a/sessions.csv": "client_id,therapist_id,session_number\nc1,t1,0\n",
      "b/sessions.csv": "client_id,therapist_id,session_number\nc1,t1,0\n"}, ["a/", "b/"]),
])
def test_a_zip_whose_tables_are_a_folder_down_says_where_they_are(tmp_path, capsys, entries, folders):
    # It said the zip "holds no table ...; name the files sessions, ..." of files so named.
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as zf:
        for name, text in entries.items():
            zf.writestr(name, text)
    code, _, err = _cli(capsys, "import", str(export), "--db", str(tmp_path / "clinic.duckdb"))
    assert code == 2 and "holds no table" not in err and all(folder in err for folder in folders)


def test_a_folder_whose_tables_are_a_folder_down_beside_a_readme_says_where_they_are(tmp_path, capsys):
    write_csv(tmp_path / "chosen" / "export", "sessions", "client_id,therapist_id,session_number\nc1,t1,0\n")
    (tmp_path / "chosen" / "README.txt").write_text("exported by the EHR")
    code, _, err = _cli(capsys, "import", str(tmp_path / "chosen"), "--db", str(tmp_path / "clinic.duckdb"))
    assert code == 2 and "holds no table" not in err and "export/" in err


# -- a value lower-cased before it is checked

@pytest.mark.parametrize("value", ["12 Acacia Avenue", "MARGARET"])
def test_an_attendance_that_is_no_code_is_quoted_as_written_and_masked(tmp_path, store, value):
    # attendance is read case-insensitively: its message quoted the lower-cased text, which
    # the guard reads as ordinary words ("12 acacia avenue", "margaret").
    write_csv(folder := tmp_path / "export", "sessions",
              f"client_id,therapist_id,session_number,attendance\nc1,t1,0,No_Show\nc2,t1,0,{value}\n")
    result = import_dataset(folder, store)
    assert result.loaded["sessions"] == 1 and result.quarantined["sessions"] == 1
    assert store.query("SELECT attendance FROM sessions", scope=SYSTEM)["attendance"].to_list() == ["no_show"]
    shown = json.dumps(result.to_json()) + store.query("SELECT * FROM quarantine", scope=SYSTEM).write_csv()
    assert not {"acacia", "margaret", "thistlewood"} & set(re.findall(r"[a-z]+", shown.lower()))


def test_an_attendance_code_of_the_clinics_catalog_is_read_in_any_case(tmp_path, store):
    """The codes read case-insensitively are the catalog's vocabulary, not a copy of its
    defaults: a clinic's added code ("rescheduled") written "Rescheduled" is that code."""
    from core.catalog import default_catalog
    catalog = default_catalog()
    vocabularies = catalog.vocabularies.model_copy(
        update={"attendance": [*catalog.vocabularies.attendance, "rescheduled"]})
    catalog = catalog.model_copy(update={"vocabularies": vocabularies})
    write_csv(folder := tmp_path / "export", "sessions",
              "client_id,therapist_id,session_number,attendance\nc1,t1,0,Attended\nc1,t1,1,Rescheduled\n")
    result = import_dataset(folder, store, catalog=catalog)
    assert result.loaded["sessions"] == 2 and not result.quarantined.get("sessions")
    assert sorted(store.query("SELECT attendance FROM sessions", scope=SYSTEM)["attendance"].to_list()) == \
        ["attended", "rescheduled"]


# -- known, not fixed here

@pytest.mark.xfail(strict=True, reason="a wide rating's scale and rater come from the lower-cased header and its "
                   "column is masked as free text after a ':', so 'SRS:MARGARET' shows 'margaret' and 'SRS:MARGARET' "
                   "in the report and the quarantine; keeping the header's case needs the scale check made "
                   "case-insensitive first")
def test_a_wide_rating_column_named_after_a_client_is_masked(tmp_path, store):
    write_csv(folder := tmp_path / "export", "sessions", "client_id,therapist_id,session_number,SRS:MARGARET\nc1,t1,0,30\n")
    result = import_dataset(folder, store)
    assert result.quarantined["ratings"] == 1
    shown = json.dumps(result.to_json()) + store.query("SELECT * FROM quarantine", scope=SYSTEM).write_csv()
    assert "margaret" not in shown.lower()


@pytest.mark.parametrize("chunk", [2, 3, 7, 4096])
def test_line_ends_are_told_apart_across_chunk_boundaries(tmp_path, monkeypatch, chunk):
    """The check of line ends counts CRLF only where a CR is (a pass of its own otherwise
    tripled the check's time): a CRLF split between two chunks still counts as one."""
    import core.readers.csvfile as csvfile
    monkeypatch.setattr(csvfile, "_CHUNK", chunk)
    cases = {b"a,b\nc,d\ne,f\n": False, b"a,b\r\nc,d\r\ne,f\r\n": False, b"a,b\rc,d\re,f\r": False,
             b"a,b\r\nc,d\ne,f\r\n": True, b"a,b\nc,d\r\n": True, b"a,b\r\nc,d\r": True, b'a,"x\ny"\r\nc,d\r\n': True}
    for n, (data, mixed) in enumerate(cases.items()):
        path = tmp_path / f"{n}.csv"
        path.write_bytes(data)
        assert csvfile._check_utf8(path, path.name)[2] is mixed, data
