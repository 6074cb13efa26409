"""Property tests of the whole importer: what an import promises (CONTRACT.md).

Hypothesis builds small exports (folders of CSV files: sessions, plus some of ratings,
themes, barriers, events and therapists) that mix valid rows with every kind of faulty
row: wrong types, out-of-range scores, unknown instruments and codes, keys shared inside
the file, rows pointing at missing sessions, days going backwards, notes holding e-mail
addresses, phone numbers or names, ragged lines, a semicolon separator, a BOM, wide
rating columns (`SRS`, `WAI-SR:bond:therapist`) and session dates. Each export is
imported into a fresh store, often on top of an earlier import, and the promises are
checked against what the generator knows about every row it wrote:

1. an import either fails whole (`ImportFailed`, the store untouched) or returns a result;
2. every row is accounted for: loaded or quarantined, and the store shows exactly that;
3. importing the same folder again changes no data row and writes no history;
4. identifying text planted in the export never reaches the store or the report;
5. a failure half-way through the writes leaves the store exactly as before;
6. after any import the store still keeps the contract's rules.

Bugs these properties found are pinned at the end as tests with the smallest export that
showed them (a polars panic, a days-order gap, an unmasked id in a ragged line, session
dates counted from the earliest date).
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import core.importer as importer
from core.catalog import default_catalog
from core.importer import IMPORT_ORDER, ImportFailed, ImportResult, import_dataset
from core.store import KEYS, Store
from tests.conftest import SYSTEM, raw

CATALOG = default_catalog()
SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

CLIENTS = ("c1", "c2", "c3")
THERAPISTS = ("t1", "t2")

# Identifying text planted in free text, and what of it must never be stored or reported
# (compared case-insensitively).
PLANTED = {
    "zora.quist@example.org": ("zora.quist", "example.org"),
    "+44 20 7946 0958": ("7946 0958",),
    "(555) 123-4567": ("123-4567",),
    "Mrs Okafor": ("okafor",),
    "Dr. Kowalski": ("kowalski",),
    "Maria Gonzalez": ("gonzalez",),
    "221B Baker Street": ("baker street",),
    "MRN 8812734": ("8812734",),
}
# Identifying text used as a client or therapist id (refused, and hidden whole).
PLANTED_IDS = {
    "zora.quist@example.org": ("zora.quist", "example.org"),
    "John.Smith": ("john.smith",),
    "Maria_Gonzalez": ("gonzalez",),
}
CLEAN_NOTES = ("Client went quiet", "talked about work; stayed with it", 'said "fine" twice, then laughed',
               "felt slow,\nthen warmer", "noticed irritation", "Session 4 felt different", "PHQ-9 of 14 today")
TRUE_WORDS, FALSE_WORDS = ("true", "yes", "1"), ("false", "no", "0")
FIRST_DATE = date(2023, 1, 2)
# An id that was once stored unmasked when it sat in a ragged line (a test at the end).
RAGGED_ID = "Maria_Gonzalez"

# Wide rating columns on sessions: header -> (instrument, scale, rater, header is valid).
WIDE = {
    "SRS": ("SRS", "total", "client", True),
    "WAI-SR:bond:therapist": ("WAI-SR", "bond", "therapist", True),
    "phq-9": ("PHQ-9", "total", "client", True),
    "SRS:Relationship": ("SRS", "relationship", "client", True),
    "ORS:total:client": ("ORS", "total", "client", True),
    "SRS:bogus": ("SRS", "total", "client", False),             # no such scale
    "GAD-7:total:therapist": ("GAD-7", "total", "therapist", False),  # GAD-7 is not rated by therapists
}
RATING_KINDS = [(key, scale, rater) for key, ins in CATALOG.instruments.items()
                for scale in ins.scales for rater in ins.raters]
THEME_CODES = [(kind, code) for kind in CATALOG.vocabularies.theme_kinds for code in CATALOG.codebooks[kind].codes]
BARRIER_CODES = list(CATALOG.codebooks["barrier_categories"].codes)
EVENT_CODES = list(CATALOG.codebooks["events"].codes)
CODING_RATERS = list(CATALOG.vocabularies.coding_raters)

REQUIRED = {"sessions": ("client_id", "therapist_id", "session_number"),
            "ratings": ("client_id", "session_number", "instrument", "score"),
            "themes": ("client_id", "session_number", "kind", "code"),
            "barriers": ("client_id", "session_number", "category", "severity", "note"),
            "events": ("client_id", "session_number", "event"),
            "therapists": ("therapist_id",)}
OPTIONAL = {"sessions": ("days_since_intake", "session_date", "modality", "attended"),
            "ratings": ("scale", "rater"),
            "themes": ("intensity", "rater", "note"),
            "barriers": ("addressed",),
            "events": ("rater", "note"),
            "therapists": ("supervision_group", "level")}
DEFAULTS = {"sessions": {"modality": "individual", "attended": True},
            "ratings": {"scale": "total", "rater": "client"},
            "themes": {"rater": "therapist"}, "barriers": {"addressed": False},
            "events": {"rater": "therapist"}, "therapists": {}}
NOTES = {"themes": "note", "barriers": "note", "events": "note", "therapists": "supervision_group"}


# ----------------------------------------------------------------------------- the model

@dataclass
class Line:
    """One record of a CSV file and what the generator knows about it."""
    cells: dict[str, str | None]                 # header as written -> text (None = empty cell)
    bad: set[str] = field(default_factory=set)   # headers holding a value the contract refuses
    secret: bool = False                         # the note holds planted identifying text
    ragged: int = 0                              # +1: one field too many; -1: one too few


@dataclass
class CsvFile:
    table: str
    header: list[str]              # as written
    roles: dict[str, str]          # header -> contract column, "wide", "ignored" or "duplicate"
    lines: list[Line]
    delimiter: str = ","
    bom: bool = False
    newline: str = "\n"
    blank_before: frozenset[int] = frozenset()   # an empty line is written before these records

    @property
    def name(self) -> str:
        return f"{self.table}.csv"

    def render(self) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, delimiter=self.delimiter, lineterminator=self.newline)
        writer.writerow(self.header)
        for i, line in enumerate(self.lines):
            if i in self.blank_before:
                out.write(self.newline)
            values = [line.cells.get(h) for h in self.header]
            if line.ragged > 0:
                values.append("extra")
            elif line.ragged < 0:
                values = values[:-1]
                if all(_blank(v) for v in values):
                    values[0] = "x"      # a line of empty fields would be an empty row, not a ragged one
            writer.writerow(["" if v is None else v for v in values])
        return (("\ufeff" if self.bom else "") + out.getvalue()).encode("utf-8")

    def line_number(self, index: int) -> int:
        """The row a spreadsheet shows for record `index` (header = 1, empty lines count)."""
        return 2 + index + sum(1 for b in self.blank_before if b <= index)


@dataclass
class Export:
    files: dict[str, CsvFile]
    broken: str | None = None      # why the import must fail whole, if it must
    empty_sessions: bool = False   # sessions.csv is a file of zero bytes

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for f in self.files.values():
            (folder / f.name).write_bytes(f.render())
        if self.empty_sessions:
            (folder / "sessions.csv").write_bytes(b"")
        return folder

    def forbidden(self) -> set[str]:
        """Text that identifies someone and must never be stored or reported (lower case)."""
        out: set[str] = set()
        for f in self.files.values():
            for header in f.header:
                for planted, parts in PLANTED.items():
                    if planted in header:
                        out.update(parts)
            for line in f.lines:
                for header, value in line.cells.items():
                    if value is None:
                        continue
                    for planted, parts in {**PLANTED, **PLANTED_IDS}.items():
                        if planted in value:
                            out.update(parts)
                    if f.roles.get(header) == "session_date" and header not in line.bad:
                        out.add(value.strip().lower())     # an absolute date is never stored
        return out


@dataclass
class Expected:
    """One input row as the contract counts it, with the generator's knowledge."""
    table: str
    source: str
    line: int
    origin: str | None             # the wide column a rating came from (lower case)
    ragged: bool
    bad: bool                      # holds a value the contract refuses
    secret: bool                   # its note holds identifying text
    cells: dict[str, str | None]   # contract column -> text

    @property
    def id(self) -> tuple:
        return self.table, self.source, self.line, self.origin


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def expected_rows(export: Export) -> list[Expected]:
    """Every row the export holds, as the contract counts rows (empty rows are no rows)."""
    rows = []
    for f in export.files.values():
        contract = [h for h in f.header if f.roles[h] not in ("wide", "ignored", "duplicate")]
        for i, line in enumerate(f.lines):
            number = f.line_number(i)
            if line.ragged:
                rows.append(Expected(f.table, f.name, number, None, True, True, line.secret, {}))
                continue
            if all(_blank(line.cells.get(h)) for h in f.header):
                continue
            cells = {f.roles[h]: line.cells.get(h) for h in contract}
            bad = any(h in line.bad for h in contract)
            rows.append(Expected(f.table, f.name, number, None, False, bad, line.secret, cells))
            for h in f.header:
                if f.roles[h] != "wide" or _blank(line.cells.get(h)):
                    continue
                instrument, scale, rater, valid = WIDE[h]
                key_bad = any(k in line.bad for k in contract if f.roles[k] in ("client_id", "session_number"))
                rows.append(Expected(
                    "ratings", f.name, number, h.lower(), False, key_bad or not valid or h in line.bad, False,
                    {"client_id": cells.get("client_id"), "session_number": cells.get("session_number"),
                     "instrument": instrument, "scale": scale, "rater": rater, "score": line.cells[h]}))
    return rows


def _text(value):
    return None if _blank(value) else value.strip()


def _parse(table: str, column: str, value: str | None):
    """A valid cell as the contract reads it (defaults for empty cells)."""
    text = _text(value)
    if text is None:
        return DEFAULTS[table].get(column)
    if column in ("session_number", "days_since_intake", "intensity", "severity"):
        return int(float(text))
    if column == "score":
        return float(text.replace(",", "."))
    if column in ("attended", "addressed"):
        return text.lower() in TRUE_WORDS
    return text


def key_of(row: Expected) -> tuple:
    return tuple(_parse(row.table, k, row.cells.get(k)) for k in KEYS[row.table])


def values_of(row: Expected) -> dict:
    """The stored values a loaded row must have (those the generator can predict)."""
    out = {}
    for column in {"sessions": ("therapist_id", "modality", "attended"), "ratings": ("score",),
                   "themes": ("intensity", "note"), "barriers": ("severity", "addressed", "note"),
                   "events": ("note",), "therapists": ("supervision_group", "level")}[row.table]:
        if column == "note" or column == "supervision_group":
            if row.secret:
                continue      # with redaction the stored note is masked
        out[column] = _parse(row.table, column, row.cells.get(column))
    if row.table == "sessions" and not _blank(row.cells.get("days_since_intake")):
        out["days_since_intake"] = _parse("sessions", "days_since_intake", row.cells["days_since_intake"])
    return out


# ----------------------------------------------------------------------------- strategies

def _one_in(draw, n: int) -> bool:
    """True one time in n; shrinks to False."""
    return draw(st.integers(0, n - 1)) == n - 1


def _cell(draw, valid, bad, rate: int = 5) -> tuple[str | None, bool]:
    if _one_in(draw, rate):
        return draw(bad), True
    return draw(valid), False


IDS_BAD = st.sampled_from((None, "bad id", "c" * 65, *PLANTED_IDS))
SESSION_NUMBERS = st.one_of(st.integers(0, 4).map(str), st.just("2.0"))
SESSION_NUMBERS_BAD = st.sampled_from((None, "x", "-1", "1.5"))


def _note(draw, required: bool) -> tuple[str | None, bool, bool]:
    """(text, bad, holds identifying text)."""
    kind = draw(st.integers(0, 5))
    if kind <= 2:
        return draw(st.sampled_from(CLEAN_NOTES)), False, False
    if kind == 3:
        secret = draw(st.sampled_from(list(PLANTED)))
        text = draw(st.sampled_from(CLEAN_NOTES))
        return draw(st.sampled_from((f"{text} {secret}", f"{secret}, {text}.", secret))), False, True
    if kind == 4:
        return None, required, False
    return "x" * (CATALOG.privacy.max_note_chars + 1), True, False


def _score(draw, instrument: str, scale: str) -> tuple[str | None, bool]:
    low, high = CATALOG.instruments[instrument].scales.get(scale, (0, 10))
    low, high = int(low), int(high)
    if _one_in(draw, 5):
        return draw(st.sampled_from((str(high + 1), str(low - 1), "n/a"))), True
    value = draw(st.integers(low, high))
    if value < high and draw(st.booleans()):
        return draw(st.sampled_from((f"{value}.5", f"{value},5"))), False
    return str(value), False


@st.composite
def _line(draw, table: str, header: list[str], roles: dict[str, str]) -> Line:
    cells, bad, secret = {}, set(), False

    def put(h, value_bad):
        cells[h], is_bad = value_bad
        if is_bad:
            bad.add(h)

    by_role = {r: h for h, r in roles.items()}
    for h in sorted(header, key=lambda h: roles[h] != "session_number"):   # session_number first
        role = roles[h]
        if role == "client_id":
            put(h, _cell(draw, st.sampled_from((*CLIENTS, " c2 ")), IDS_BAD))
        elif role == "therapist_id":
            put(h, _cell(draw, st.sampled_from(THERAPISTS + (("t3",) if table == "therapists" else ())), IDS_BAD))
        elif role == "session_number":
            put(h, _cell(draw, SESSION_NUMBERS, SESSION_NUMBERS_BAD))
        elif role == "days_since_intake":
            # Mostly about a week a session, so that days go backwards only now and then.
            number = _text(cells.get(by_role["session_number"]))
            weekly = (st.integers(-9, 9).map(lambda noise: str(max(0, 7 * int(float(number)) + noise)))
                      if number and number.replace(".0", "").isdigit() else st.integers(0, 40).map(str))
            put(h, _cell(draw, st.one_of(st.none(), weekly), st.sampled_from(("-3", "soon"))))
        elif role == "session_date":
            day = st.integers(0, 60).map(lambda d: FIRST_DATE + timedelta(days=d))
            valid = st.one_of(st.none(), day.map(date.isoformat), day.map(lambda d: d.strftime("%d.%m.%Y")))
            put(h, _cell(draw, valid, st.sampled_from(("2023-13-45", "yesterday"))))
        elif role == "modality":
            put(h, _cell(draw, st.sampled_from((None, *CATALOG.vocabularies.modality)), st.just("solo")))
        elif role in ("attended", "addressed"):
            put(h, _cell(draw, st.sampled_from((None, *TRUE_WORDS, *FALSE_WORDS, "TRUE")), st.just("maybe")))
        elif role == "wide":
            instrument, scale, _, _ = WIDE[h]
            if draw(st.integers(0, 3)) == 0:
                cells[h] = None
            else:
                put(h, _score(draw, instrument, scale))
        elif role == "ignored":
            cells[h] = draw(st.sampled_from((None, "see file", *PLANTED)))
        elif role == "duplicate":
            cells[h] = "1"
    if table == "ratings":
        instrument, scale, rater = draw(st.sampled_from(RATING_KINDS))
        broken = draw(st.integers(0, 7))
        if broken == 5:
            instrument = draw(st.sampled_from(("XYZ", None)))
        elif broken == 6:
            scale = "bogus"
        elif broken == 7:
            rater = next(r for r in CATALOG.vocabularies.rating_raters if r not in CATALOG.instruments[instrument].raters)
        # An absent column or an empty cell means the default (total, client).
        if "scale" not in by_role:
            scale = "total"
        elif scale == "total" and draw(st.booleans()):
            scale = None
        if "rater" not in by_role:
            rater = "client"
        elif rater == "client" and draw(st.booleans()):
            rater = None
        for role, value in (("instrument", instrument), ("scale", scale), ("rater", rater)):
            if role in by_role:
                cells[by_role[role]] = value
        scale, rater = scale or "total", rater or "client"
        known = CATALOG.instruments.get(instrument)
        if known is None or scale not in known.scales or rater not in known.raters:
            bad.add(by_role["instrument"])
            instrument, scale = "SRS", "total"
        put(by_role["score"], _score(draw, instrument, scale))
    elif table == "themes":
        kind, code = draw(st.sampled_from(THEME_CODES))
        broken = draw(st.integers(0, 7))
        if broken >= 6:
            (kind, code) = ("feelings", code) if broken == 6 else (kind, draw(st.sampled_from(("not_a_code", None))))
            bad.add(by_role["kind"])
        cells[by_role["kind"]], cells[by_role["code"]] = kind, code
        if "intensity" in by_role:
            put(by_role["intensity"], _cell(draw, st.sampled_from((None, "1", "2", "3", "4", "5")),
                                            st.sampled_from(("0", "6", "high"))))
    elif table == "barriers":
        put(by_role["category"], _cell(draw, st.sampled_from(BARRIER_CODES), st.sampled_from(("weather", None))))
        put(by_role["severity"], _cell(draw, st.sampled_from(("1", "2", "3")), st.sampled_from(("0", "4", "x", None))))
    elif table == "events":
        put(by_role["event"], _cell(draw, st.sampled_from(EVENT_CODES), st.sampled_from(("rupture", None))))
    elif table == "therapists" and "level" in by_role:
        put(by_role["level"], _cell(draw, st.sampled_from((None, *CATALOG.vocabularies.therapist_levels)),
                                    st.just("senior")))
    if table in ("themes", "events") and "rater" in by_role:
        put(by_role["rater"], _cell(draw, st.sampled_from((None, *CODING_RATERS)), st.just("client")))
    if table in NOTES and NOTES[table] in by_role:
        h = by_role[NOTES[table]]
        if table == "therapists":
            kind = draw(st.integers(0, 4))
            value, is_bad, secret = ((draw(st.sampled_from((None, "g1", "g2"))), False, False) if kind <= 2
                                     else (draw(st.sampled_from(list(PLANTED))), False, True) if kind == 3
                                     else ("g" * 65, True, False))
        else:
            value, is_bad, secret = _note(draw, required=table == "barriers")
        cells[h] = value
        if is_bad:
            bad.add(h)
    width = len(header)
    ragged = draw(st.sampled_from((0, 0, 0, 0, 0, 0, 1, -1))) if width else 0
    if ragged < 0 and width < 2:
        ragged = 0
    return Line(cells, bad, secret, ragged)


def _spelling(draw, name: str) -> str:
    """Column names are matched case-insensitively after trimming."""
    return draw(st.sampled_from((name, name.upper(), f" {name} ")))


@st.composite
def csv_files(draw, table: str, max_rows: int = 5) -> CsvFile:
    columns = list(REQUIRED[table]) + [c for c in OPTIONAL[table] if draw(st.booleans())]
    header = [_spelling(draw, c) for c in columns]
    roles = dict(zip(header, columns))
    if table == "sessions":
        for wide in draw(st.lists(st.sampled_from(list(WIDE)), unique=True, max_size=3)):
            header.append(wide)
            roles[wide] = "wide"
    if _one_in(draw, 4):
        ignored = draw(st.sampled_from(("comment", "XYZ", "zora.quist@example.org")))
        header.append(ignored)
        roles[ignored] = "ignored"
    header = draw(st.permutations(header))
    lines = draw(st.lists(_line(table, header, roles), max_size=max_rows + (2 if table == "sessions" else 0)))
    # One column and no separator in the header: the reader takes it for a comma file.
    delimiter = "," if len(header) < 2 else draw(st.sampled_from((",", ";")))
    blank = frozenset(draw(st.sets(st.integers(0, max(len(lines) - 1, 0)), max_size=1))) if lines else frozenset()
    return CsvFile(table, list(header), roles, lines, delimiter, draw(st.booleans()),
                   draw(st.sampled_from(("\n", "\r\n"))), blank)


@st.composite
def exports(draw, may_fail: bool = True, max_rows: int = 5) -> Export:
    files = {"sessions": draw(csv_files("sessions", max_rows))}
    for table in IMPORT_ORDER:
        if table != "sessions" and draw(st.integers(0, 2)) == 0:
            files[table] = draw(csv_files(table, max_rows))
    export = Export(files)
    if may_fail:
        broken = draw(st.sampled_from((None, None, None, None, None, "no sessions table",
                                       "a required column missing", "two columns of one name",
                                       "an empty sessions file")))
        export.broken = broken
        if broken == "no sessions table":
            del files["sessions"]
        elif broken == "an empty sessions file":
            del files["sessions"]
            export.empty_sessions = True
        elif broken == "a required column missing":
            f = files[draw(st.sampled_from(sorted(files)))]
            column = draw(st.sampled_from(REQUIRED[f.table]))
            gone = next(h for h in f.header if f.roles[h] == column)
            f.header.remove(gone)
            if f.table == "therapists" or len(f.header) < 2:
                f.delimiter = ","
        elif broken == "two columns of one name":
            f = files[draw(st.sampled_from(sorted(files)))]
            twin = " " + f.header[0].strip().upper() + " "
            f.header.append(twin)
            f.roles[twin] = "duplicate"
            for line in f.lines:
                line.cells[twin] = "1"
    return export


# ----------------------------------------------------------------------------- store helpers

@contextmanager
def fresh_store():
    with tempfile.TemporaryDirectory(prefix="import-property-") as tmp:
        store = Store(Path(tmp) / "clinic.duckdb")
        try:
            yield store, Path(tmp)
        finally:
            store.close()


def table_names(store: Store) -> list[str]:
    """Every table of both files of the store: the state and the current data snapshot."""
    sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    return sorted(name for side in ("state", "data") for name in raw(store, sql, side).get_column("table_name"))


def snapshot(store: Store) -> dict[str, list[tuple]]:
    """Every row of every table of the store."""
    return {t: store.query(f"SELECT * FROM {t} ORDER BY ALL", scope=SYSTEM).rows() for t in table_names(store)}


def key_getter(store: Store, table: str):
    """The natural key of a snapshot row of `table`."""
    columns = store.query(f"SELECT * FROM {table} LIMIT 0", scope=SYSTEM).columns
    positions = [columns.index(k) for k in KEYS[table]]
    return lambda row: tuple(row[i] for i in positions)


def store_text(store: Store) -> str:
    """Everything the store holds, each value cast to text, lower-cased."""
    return "\n".join(str(store.query(f"SELECT * FROM {t}", scope=SYSTEM).rows()) for t in table_names(store)).lower()


def by_key(store: Store, table: str) -> dict[tuple, dict]:
    rows = store.query(f"SELECT * FROM {table}", scope=SYSTEM).rows(named=True)
    return {tuple(r[k] for k in KEYS[table]): r for r in rows}


def run_import(export: Export, store: Store, tmp: Path, name: str = "export", **kwargs) -> ImportResult:
    folder = tmp / name
    if not folder.exists():
        export.write(folder)
    try:
        return import_dataset(folder, store, catalog=CATALOG, imported_by="tester", **kwargs)
    except BaseException as err:
        if type(err).__name__ != "PanicException":
            raise
        # A panic inside polars is a BaseException: make it a failure Hypothesis can shrink.
        raise AssertionError(f"the importer crashed: {err}") from None


def load_base(base: Export | None, store: Store, tmp: Path, redact: bool) -> None:
    """An earlier import the export lands on top of."""
    if base is not None:
        run_import(base, store, tmp, "earlier", redact=redact)


BASES = st.one_of(st.none(), exports(may_fail=False, max_rows=4))


# ----------------------------------------------------------------------------- 1. whole or nothing

@SETTINGS
@given(base=BASES, export=exports(), redact=st.booleans())
def test_an_import_fails_whole_and_untouched_or_returns_a_result(base, export, redact):
    with fresh_store() as (store, tmp):
        load_base(base, store, tmp, redact)
        before = snapshot(store)
        try:
            result = run_import(export, store, tmp, redact=redact)
        except ImportFailed as failure:
            assert export.broken, f"a well-formed export failed whole: {failure}"
            assert str(failure).strip()
            assert snapshot(store) == before, "the store changed although the import failed"
            return
        assert export.broken is None, f"an export with {export.broken} was imported"
        assert isinstance(result, ImportResult)
        assert store.query("SELECT batch_id FROM batches WHERE batch_id = ?", [result.batch_id], scope=SYSTEM).height == 1


# ----------------------------------------------------------------------------- 2. every row accounted for

def check_every_row_is_accounted_for(export: Export, result: ImportResult, before: dict, store: Store,
                                     redact: bool) -> None:
    rows = expected_rows(export)
    after = snapshot(store)
    for table in IMPORT_ORDER:
        given_rows = sum(1 for r in rows if r.table == table)
        assert result.loaded.get(table, 0) + result.quarantined.get(table, 0) == given_rows, table

    # The quarantine gained exactly this batch's quarantined rows; older ones are untouched.
    batch = result.batch_id
    quarantine = store.query("SELECT table_name, source, line, raw FROM quarantine WHERE batch_id = ?",
                             [batch], scope=SYSTEM).rows(named=True)
    assert [r for r in after["quarantine"] if r[0] != batch] == before["quarantine"]
    for table in IMPORT_ORDER:
        assert sum(1 for q in quarantine if q["table_name"] == table) == result.quarantined.get(table, 0), table
    quarantined_ids = []
    for q in quarantine:
        raw = json.loads(q["raw"])
        wide = q["table_name"] == "ratings" and "column" in raw
        quarantined_ids.append((q["table_name"], q["source"], q["line"],
                                raw["column"].strip().lower() if wide else None))
    assert len(set(quarantined_ids)) == len(quarantined_ids), "a row was quarantined twice"
    known = {r.id: r for r in rows}
    assert set(quarantined_ids) <= set(known), "the quarantine holds a row the export does not have"

    # Whatever was not quarantined was loaded, and only rows the contract accepts.
    loaded = [r for r in rows if r.id not in set(quarantined_ids)]
    for table in IMPORT_ORDER:
        assert sum(1 for r in loaded if r.table == table) == result.loaded.get(table, 0), table
    stored = {t: by_key(store, t) for t in KEYS}
    for row in loaded:
        assert not row.ragged, f"a ragged line was loaded: {row.id}"
        assert not row.bad, f"a row breaking the contract was loaded: {row.id} {row.cells}"
        assert redact or not row.secret, f"a note with identifying text was loaded: {row.id}"
        stored_row = stored[row.table].get(key_of(row))
        assert stored_row is not None, f"loaded row {row.id} is not in the store under {key_of(row)}"
        for column, value in values_of(row).items():
            assert stored_row[column] == value, (row.id, column, stored_row[column], value)

    # Rows the import did not load are exactly as before; new keys are exactly the inserted rows.
    loaded_keys = {t: {key_of(r) for r in loaded if r.table == t} for t in KEYS}
    for table in KEYS:
        key = key_getter(store, table)
        untouched_before = [r for r in before[table] if key(r) not in loaded_keys[table]]
        untouched_after = [r for r in after[table] if key(r) not in loaded_keys[table]]
        assert untouched_after == untouched_before, table
        assert len(after[table]) == len(before[table]) + result.inserted.get(table, 0), table
    # The history gained one row per update, for this batch, and lost none.
    assert [r for r in after["history"] if r[0] != batch] == before["history"]
    assert len(after["history"]) - len(before["history"]) == sum(result.updated.values())
    assert len(after["batches"]) == len(before["batches"]) + 1


@SETTINGS
@given(base=BASES, export=exports(may_fail=False), redact=st.booleans())
def test_every_row_is_loaded_or_quarantined_and_the_store_shows_which(base, export, redact):
    with fresh_store() as (store, tmp):
        load_base(base, store, tmp, redact)
        before = snapshot(store)
        result = run_import(export, store, tmp, redact=redact)
        check_every_row_is_accounted_for(export, result, before, store, redact)


# ----------------------------------------------------------------------------- 3. idempotence

@settings(SETTINGS, max_examples=20)
@given(base=BASES, export=exports(may_fail=False), redact=st.booleans())
def test_importing_the_same_folder_again_changes_nothing(base, export, redact):
    with fresh_store() as (store, tmp):
        load_base(base, store, tmp, redact)
        first = run_import(export, store, tmp, redact=redact)
        before = snapshot(store)
        again = run_import(export, store, tmp, redact=redact)
        after = snapshot(store)
        for table in KEYS:
            assert after[table] == before[table], f"{table} changed on the second import"
        assert after["history"] == before["history"], "the second import wrote history"
        assert again.inserted == {t: 0 for t in first.inserted}
        assert again.updated == {t: 0 for t in first.updated}
        assert (again.loaded, again.quarantined) == (first.loaded, first.quarantined)
        # The reasons of one row may come in any order.
        assert sorted(map(repr, again.problems)) == sorted(map(repr, first.problems))
        # Each import is recorded (CONTRACT: "a record of each import"), with its quarantine.
        assert len(after["batches"]) == len(before["batches"]) + 1
        assert again.batch_id > first.batch_id

        def quarantine_of(batch):
            return sorted((table, source, line, raw, sorted(json.dumps(p, sort_keys=True) for p in json.loads(problems)))
                          for b, table, source, line, raw, problems in after["quarantine"] if b == batch)
        assert quarantine_of(again.batch_id) == quarantine_of(first.batch_id)
        assert [r for r in after["quarantine"] if r[0] != again.batch_id] == before["quarantine"]


# ----------------------------------------------------------------------------- 4. privacy

@settings(SETTINGS, max_examples=30)
@given(base=BASES, export=exports(), redact=st.booleans())
def test_identifying_text_never_reaches_the_store_or_the_report(base, export, redact):
    forbidden = export.forbidden() | (base.forbidden() if base else set())
    with fresh_store() as (store, tmp):
        load_base(base, store, tmp, redact)
        try:
            result = run_import(export, store, tmp, redact=redact)
            report = (json.dumps(result.to_json(), ensure_ascii=False) + result.summary()).lower()
        except ImportFailed as failure:
            report = str(failure).lower()
        text = store_text(store)
        leaked = sorted(s for s in forbidden if s in text)
        assert not leaked, f"identifying text in the store: {leaked}"
        leaked = sorted(s for s in forbidden if s in report)
        assert not leaked, f"identifying text in the report: {leaked}"


# ----------------------------------------------------------------------------- 5. atomic writes

class Crash(Exception):
    """The disk filled up, the process was killed: anything that stops the writes."""


@settings(SETTINGS, max_examples=20)
@given(base=BASES, export=exports(may_fail=False), redact=st.booleans(), data=st.data())
def test_a_crash_during_the_writes_leaves_the_store_as_before(base, export, redact, data):
    tables = set(export.files) | ({"ratings"} if any(r == "wide" for r in export.files["sessions"].roles.values())
                                  else set())
    # Crash on the k-th table write, before or after it ran; or at the very end, after
    # every table and the quarantine were written (while the batch is recorded).
    crash_at = data.draw(st.integers(1, len(tables) + 1), label="crash at write")
    after_write = data.draw(st.booleans(), label="after the write")
    real_upsert, real_who = importer.upsert, importer._who
    calls = []

    def failing_upsert(cur, table, rows, batch_id):
        calls.append(table)
        if len(calls) == crash_at and not after_write:
            raise Crash(f"before writing {table}")
        out = real_upsert(cur, table, rows, batch_id)
        if len(calls) == crash_at:
            raise Crash(f"after writing {table}")
        return out

    def failing_who(imported_by):
        raise Crash("while recording the batch")

    with fresh_store() as (store, tmp):
        load_base(base, store, tmp, redact)
        before = snapshot(store)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(importer, "upsert", failing_upsert)
            if crash_at > len(tables):
                patch.setattr(importer, "_who", failing_who)
            with pytest.raises(Crash):
                run_import(export, store, tmp, redact=redact)
        assert snapshot(store) == before, f"the store changed although the import crashed ({calls})"
        # The store is still usable, and the import goes through once the fault is gone.
        assert importer.upsert is real_upsert and importer._who is real_who
        result = run_import(export, store, tmp, redact=redact)
        check_every_row_is_accounted_for(export, result, before, store, redact)


# ----------------------------------------------------------------------------- 6. store rules


def check_store_rules(store: Store) -> None:
    """What the contract says of stored data holds of the whole store."""
    for table, keys in KEYS.items():
        dups = store.scalar(f"SELECT count(*) FROM (SELECT {', '.join(keys)} FROM {table} "
                            f"GROUP BY ALL HAVING count(*) > 1)", scope=SYSTEM)
        assert dups == 0, f"{table} holds a key twice"
    for table in ("ratings", "themes", "barriers", "events"):
        orphans = store.scalar(f"SELECT count(*) FROM {table} t ANTI JOIN sessions s "
                               "USING (client_id, session_number)", scope=SYSTEM)
        assert orphans == 0, f"{table} points at a session the store does not have"
    backwards = store.query(
        "SELECT client_id, session_number, days_since_intake, max(days_since_intake) OVER ("
        "  PARTITION BY client_id ORDER BY session_number ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
        ") AS before FROM sessions QUALIFY days_since_intake < before", scope=SYSTEM).rows()
    assert not backwards, f"days_since_intake decreases as session numbers rise: {backwards}"
    assert store.scalar("SELECT count(*) FROM sessions WHERE days_since_intake < 0", scope=SYSTEM) == 0


def _plain(table: str, header: list[str], *rows: list[str | None]) -> CsvFile:
    return CsvFile(table, header, {h: h for h in header}, [Line(dict(zip(header, r))) for r in rows])


SESSION_HEADER = ["client_id", "therapist_id", "session_number", "days_since_intake"]


@settings(SETTINGS, max_examples=25)
@example(base=Export({"sessions": _plain("sessions", SESSION_HEADER, ["c1", "t1", "0", "0"],
                                         ["c1", "t1", "2", "3"])}),
         export=Export({"sessions": _plain("sessions", SESSION_HEADER, ["c1", "t1", "1", "10"])}),
         redact=False)
@given(base=BASES, export=exports(may_fail=False), redact=st.booleans())
def test_the_store_keeps_the_contract_rules_after_any_import(base, export, redact):
    with fresh_store() as (store, tmp):
        load_base(base, store, tmp, redact)
        check_store_rules(store)
        run_import(export, store, tmp, redact=redact)
        check_store_rules(store)


# ----------------------------------------------------------------------------- bugs found, kept as tests

def test_wide_ratings_on_a_row_with_a_bad_session_number_import(tmp_path, store):
    export = Export({"sessions": _plain("sessions", ["client_id", "therapist_id", "session_number", "SRS", "ORS",
                                                    "PHQ-9"], ["c1", "t1", "0", "1", None, None],
                                        ["c1", "t1", "x", None, "1", "1"])})
    try:
        result = import_dataset(export.write(tmp_path / "export"), store, catalog=CATALOG)
    except BaseException as err:   # a polars panic is not an Exception
        raise AssertionError(f"the importer crashed: {err!r}") from None
    assert result.loaded == {"sessions": 1, "ratings": 1}
    assert result.quarantined == {"sessions": 1, "ratings": 2}


def test_an_identifying_id_in_a_ragged_line_is_masked(tmp_path, store):
    header = ["client_id", "therapist_id", "session_number"]
    export = Export({"sessions": CsvFile("sessions", header, {h: h for h in header},
                                         [Line(dict(zip(header, ["c1", "t1", "0"]))),
                                          Line(dict(zip(header, ["c2", RAGGED_ID, "0"])), ragged=1)])})
    result = import_dataset(export.write(tmp_path / "export"), store, catalog=CATALOG)
    assert result.quarantined == {"sessions": 1}
    assert "gonzalez" not in json.dumps(result.to_json()).lower()
    assert "gonzalez" not in store_text(store)


def test_session_dates_count_from_the_clients_first_session(tmp_path, store):
    header = ["client_id", "therapist_id", "session_number", "session_date"]
    export = Export({"sessions": _plain("sessions", header, ["c1", "t1", "0", "2023-01-10"],
                                        ["c1", "t1", "1", "2023-01-05"], ["c1", "t1", "2", "2023-01-17"])})
    result = import_dataset(export.write(tmp_path / "export"), store, catalog=CATALOG)
    assert result.quarantined == {"sessions": 1}       # session 1 is dated before the intake
    days = dict(store.query("SELECT session_number, days_since_intake FROM sessions", scope=SYSTEM).rows())
    assert days == {0: 0, 2: 7}
