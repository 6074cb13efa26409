"""Import an export into the store: read, shape, validate, guard privacy, write atomically.

What an import promises (CONTRACT.md): every row is loaded or quarantined with its
reasons; rows sharing a key inside one import are all quarantined; a stored key is
updated and the history says so; identifying text never reaches the store, the report
or a log; the whole import is one transaction.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import polars as pl

from . import DATA_DIR, privacy, report as reports, validate
from .access import Scope
from .analytics import triage as _kept_triage  # noqa: F401  (each snapshot it publishes keeps the triage)
from .catalog import Catalog, default_catalog
from .contract import IMPORT_ORDER, KEYS, SESSION_TABLES
from .readers import Dataset, DatasetError, RawTable, read_dataset
from .scratch import cleanup_stale_temp, private_dir
from .store import SET_INFO, Store, insert_batch, insert_quarantine, upsert
from .privacy import Masker as _Masker
from .validate import SPECS, empty_problems

ID_COLUMNS = ("client_id", "therapist_id")
WIDE_RATING = re.compile(r"^(?P<instrument>[^:]+)(:(?P<scale>[^:]+))?(:(?P<rater>[^:]+))?$")

Progress = Callable[[float, str], None]
# An import reads the stored sessions of the clients it brings, whoever started it: who may
# import is decided before (an admin on the Data page, the store's owner at the command line).
IMPORTER = Scope.system("import")


class ImportFailed(Exception):
    """Nothing was loaded; str(e) says why in a sentence a clinician can act on.

    The sentence may quote the export (a column name, a file name), so identifying text
    in it is masked here, once for every way an import can fail."""

    def __init__(self, message: str):
        super().__init__(privacy.mask(message))


@dataclass
class Problem:
    table: str
    source: str
    line: int | None
    column: str | None
    value: str | None
    rule: str
    message: str


@dataclass
class ImportResult:
    batch_id: int
    file_name: str
    loaded: dict[str, int]
    quarantined: dict[str, int]
    inserted: dict[str, int]
    updated: dict[str, int]
    redacted: dict[str, int]
    ignored: list[dict[str, str]]
    ignored_files: list[str]
    # The first examples of each kind of problem (report.REPORT_EXAMPLES per table, column
    # and rule); every problem is counted in `problem_counts` and kept in the quarantine.
    problems: list[Problem] = field(default_factory=list)
    problem_counts: list[dict] = field(default_factory=list)  # {"table", "column", "rule", "count"}
    # Wall-clock seconds of each phase (read, check, link, report, write, publish), and
    # "privacy": the seconds spent in the privacy scan of notes, inside "check" (it runs
    # beside the checks of other tables). For the benchmark's breakdown; not in to_json.
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if any(self.quarantined.values()) else 0

    @property
    def problem_total(self) -> int:
        return sum(c["count"] for c in self.problem_counts)

    @property
    def problems_truncated(self) -> int:
        """Problems counted but not listed in `problems`."""
        return self.problem_total - len(self.problems)

    def to_json(self) -> dict:
        """The object `python -m core import --json` prints (CONTRACT.md), plus extras."""
        return {"batch": self.batch_id, "loaded": self.loaded, "quarantined": self.quarantined,
                "ignored": self.ignored, "problems": [asdict(p) for p in self.problems],
                "problem_counts": self.problem_counts, "problems_truncated": self.problems_truncated,
                "inserted": self.inserted, "updated": self.updated, "redacted": self.redacted,
                "ignored_files": self.ignored_files}

    def summary(self) -> str:
        loaded = sum(self.loaded.values())
        quarantined = sum(self.quarantined.values())
        parts = [f"Import {self.batch_id} of {self.file_name}: {loaded} rows loaded "
                 f"({sum(self.inserted.values())} new, {sum(self.updated.values())} updated)"]
        if quarantined:
            # Rows and problems are different counts (a row may break several rules): say which.
            problems = self.problem_total
            parts.append(f"{quarantined} rows quarantined" + (
                f" with {problems} problems" if problems != quarantined else ""))
        if sum(self.redacted.values()):
            parts.append(f"{sum(self.redacted.values())} notes redacted")
        return ", ".join(parts) + "."


# ----------------------------------------------------------------------------- privacy helpers

def _fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- shaping

@dataclass
class _Part:
    """The rows of one contract table from one place (a file, or wide columns of sessions)."""
    table: str
    raw: pl.DataFrame          # strings, `_line`, `_source`, `_origin`
    typed: pl.DataFrame | None = None
    problems: pl.DataFrame | None = None


def _wide_ratings(table: RawTable, catalog: Catalog) -> tuple[list[str], pl.DataFrame | None]:
    """Columns like `SRS` or `WAI-SR:bond:therapist` on sessions become rating rows."""
    by_lower = {key.lower(): key for key in catalog.instruments}
    wide, specs = [], []
    for column in table.frame.columns:
        if column.startswith("_") or column in {c.name for c in SPECS["sessions"]}:
            continue
        match = WIDE_RATING.match(column)
        if match and match["instrument"].strip() in by_lower:
            wide.append(column)
            specs.append((column, by_lower[match["instrument"].strip()],
                          (match["scale"] or "total").strip(), (match["rater"] or "client").strip()))
    if not wide:
        return [], None
    frames = []
    for column, instrument, scale, rater in specs:
        frames.append(table.frame.filter(pl.col(column).is_not_null()).select(
            "client_id" if "client_id" in table.frame.columns else pl.lit(None, pl.String).alias("client_id"),
            "session_number" if "session_number" in table.frame.columns else pl.lit(None, pl.String).alias("session_number"),
            pl.lit(instrument).alias("instrument"), pl.lit(scale).alias("scale"), pl.lit(rater).alias("rater"),
            pl.col(column).alias("score"), "_line",
            pl.lit(table.source, pl.Categorical).alias("_source"),
            pl.lit(table.columns.get(column, column), pl.Categorical).alias("_origin")))
    return wide, pl.concat(frames, how="vertical_relaxed")


def _shape(dataset: Dataset, catalog: Catalog, masker: _Masker) -> tuple[dict[str, pl.DataFrame], list[dict]]:
    """One raw frame per contract table (parts concatenated), with `_row` numbering its rows."""
    if "sessions" not in dataset.tables:
        raise ImportFailed("The export has no sessions table (sessions.csv, sessions.parquet or a sheet "
                           "named 'sessions'); every other table points at a session, so nothing was loaded.")
    ignored: list[dict] = []
    parts: dict[str, list[pl.DataFrame]] = {}
    for name in IMPORT_ORDER:
        # Taken out of the dataset as it is shaped: the shaped frame is a copy (one piece
        # instead of the reader's batches), and at 10^6 sessions holding every table twice
        # costs half a gigabyte.
        table = dataset.tables.pop(name, None)
        if table is None:
            continue
        known = {c.name for c in SPECS[name]}
        missing = [c.name for c in SPECS[name] if c.required and c.name not in table.frame.columns]
        if missing:
            cols = ", ".join(f"'{c}'" for c in missing)
            raise ImportFailed(f"The {name} table ({table.source}) has no {cols} column; it is required "
                               "(see the data contract). Add it and import again; nothing was loaded.")
        wide: list[str] = []
        if name == "sessions":
            wide, ratings = _wide_ratings(table, catalog)
            if ratings is not None:
                parts.setdefault("ratings", []).append(ratings)
        for column in table.frame.columns:  # "_line" is the readers' own; a "_notes" is the export's
            if column != "_line" and column not in known and column not in wide:
                ignored.append({"table": name, "column": masker(table.columns.get(column, column))})
        frame = table.frame.select([c for c in table.frame.columns if c in known] + ["_line"]).with_columns(
            pl.lit(table.source, pl.Categorical).alias("_source"), pl.lit(None, pl.Categorical).alias("_origin"))
        parts.setdefault(name, []).insert(0, frame)
    shaped = {}
    for name, frames in parts.items():
        shaped[name] = pl.concat(frames, how="diagonal_relaxed").with_row_index("_row").with_columns(
            pl.col("_row").cast(pl.Int64))
    return shaped, ignored


def _day_0(typed: pl.DataFrame, failed: pl.Series, stored_first: pl.DataFrame) -> pl.DataFrame:
    """Per dated client: the date and number of its lowest session among the rows that
    pass (`_first_date`, `_first_session`), the lowest valid session number and line among
    the rows that fail (`_failed_first`, `_failed_line`), and its lowest stored session.
    A failing row never lends its date: its session number or date may be the fault."""
    dated = typed.filter(pl.col("session_date").is_not_null()).get_column("client_id").unique()
    clients = typed.filter(pl.col("client_id").is_in(dated.implode()))
    passing = ~pl.col("_row").is_in(failed.implode())
    number = pl.col("session_number")
    first = clients.filter(passing).group_by("client_id").agg(
        pl.col("session_date").sort_by("session_number").first().alias("_first_date"),
        number.min().alias("_first_session"))
    failing = clients.filter(~passing & number.is_between(0, validate.MAX_SESSION_NUMBER)).group_by("client_id").agg(
        number.min().alias("_failed_first"), pl.col("_line").sort_by("session_number").first().alias("_failed_line"))
    return first.join(failing, on="client_id", how="full", coalesce=True).join(
        stored_first, on="client_id", how="left")


def _session_dates(typed: pl.DataFrame, stored_first: pl.DataFrame,
                   failed: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame, pl.Series]:
    """session_date becomes days_since_intake, counted from the date of the client's first
    session; the date is dropped. The first session is the lowest session number of the
    client in this file and in the store: it must be in this file, dated, and free of
    problems (`failed` rows), else a dated session has no day 0 and is quarantined (on a
    first import and a repeated one alike). Returns the frame, the problems and the rows
    whose days were derived (a later rule that fails them says so)."""
    if typed.get_column("session_date").null_count() == typed.height:
        return typed.drop("session_date"), empty_problems(), pl.Series("_row", [], pl.Int64)
    typed = typed.join(_day_0(typed, failed, stored_first), on="client_id", how="left", maintain_order="left")
    first_session = pl.min_horizontal("_first_session", "_stored_first")
    failed_first = pl.col("_failed_first") < first_session.fill_null(validate.MAX_SESSION_NUMBER + 1)
    own = pl.col("session_date").is_not_null() & pl.col("days_since_intake").is_null()
    no_anchor = own & (pl.col("_first_date").is_null() | (first_session < pl.col("_first_session"))
                       | failed_first.fill_null(False))
    typed = typed.with_columns(no_anchor.alias("_no_anchor"), failed_first.fill_null(False).alias("_anchor_failed"),
                               pl.col("_row").is_in(failed.implode()).alias("_failing"))
    typed = typed.with_columns((own & ~pl.col("_no_anchor")).alias("_derived"))
    typed = typed.with_columns(
        pl.when("_derived").then((pl.col("session_date") - pl.col("_first_date")).dt.total_days())
        .otherwise(pl.col("days_since_intake")).cast(pl.Int64).alias("days_since_intake"))
    derived = typed.filter("_derived")
    problems = pl.concat([_no_anchor_problems(typed), _derived_range_problems(derived)])
    return (typed.drop("session_date", "_first_date", "_first_session", "_stored_first", "_failed_first",
                       "_failed_line", "_no_anchor", "_anchor_failed", "_failing", "_derived"),
            problems, derived.get_column("_row"))


def _no_anchor_problems(typed: pl.DataFrame) -> pl.DataFrame:
    first_session = pl.min_horizontal("_first_session", "_stored_first")
    # A failing row is quarantined with its own reasons; the row that failed as the first
    # session would only be told about itself.
    rows = typed.filter(pl.col("_no_anchor") & ~(pl.col("_anchor_failed") & pl.col("_failing")))
    return rows.select(
        "_row", pl.lit("session_date").alias("column"), pl.lit("(date)").alias("value"),
        pl.lit("intake in file").alias("rule"),
        pl.when(pl.col("_anchor_failed")).then(pl.format(
            "session_date is turned into days since intake from the date of the client's first session; the "
            "client's first session ({}, line {}) was quarantined for its own problems. Fix that row and import "
            "the file again.", "_failed_first", "_failed_line"))
        # Without a client id (reported on its own) there is no first session to name.
        .otherwise(pl.coalesce(pl.format(
            "session_date can only be turned into days since intake when the client's first session ({}) is in "
            "the same file with a date; give days_since_intake instead.", first_session),
            pl.lit("session_date can only be turned into days since intake when the row names its client and the "
                   "client's first session is in the same file with a date; give days_since_intake instead."))
        ).alias("message"),
    ).cast(validate.PROBLEM_SCHEMA)


def _derived_range_problems(derived: pl.DataFrame) -> pl.DataFrame:
    """Derived days outside the contract's range: said to be derived, and from what, since
    the file has no days_since_intake column to look at."""
    days = pl.col("days_since_intake")
    return derived.filter(~days.is_between(0, validate.MAX_DAYS)).select(
        "_row", pl.lit("session_date").alias("column"), pl.lit("(date)").alias("value"),
        pl.lit(f"between 0 and {validate.MAX_DAYS}").alias("rule"),
        pl.format(f"days since intake, derived from the session_date column, is {{}}: outside the allowed range "
                  f"(0 to {validate.MAX_DAYS}) counted from the date of the client's first session ({{}}). Check the dates "
                  "of both sessions and import again.", days, "_first_session").alias("message"),
    ).cast(validate.PROBLEM_SCHEMA)


def _id_problems(typed: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
    frames = [empty_problems()]
    for column in columns:
        values = typed.get_column(column).drop_nulls().unique()
        values = values.filter(~values.str.contains(privacy.PLAIN_ID)).to_list()
        reasons = {v: r for v in values if (r := privacy.id_problem(v))}
        if not reasons:
            continue
        frames.append(typed.filter(pl.col(column).is_in(list(reasons))).select(
            "_row", pl.lit(column).alias("column"), pl.lit(privacy.HIDDEN_ID).alias("value"),
            pl.lit("pseudonym").alias("rule"),
            pl.format("{} {}; use a pseudonym, never a real identifier.", pl.lit(column),
                      pl.col(column).replace_strict(reasons, return_dtype=pl.String)).alias("message"),
        ).cast(validate.PROBLEM_SCHEMA))
    return pl.concat(frames)


def _free_text(typed: pl.DataFrame, table: str, redact: bool) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Scan notes; identifying ones are quarantined (masked), or masked and loaded with redact.

    Each distinct note is scanned once, by `privacy.scan_column` alone (it sifts out the
    notes no rule can fire on): sifting every row here first read the column twice, and
    a note repeated on many rows was handed over as often. The findings go back to the
    rows by their text, so only the rows of an identifying note are touched."""
    problems, redacted = [empty_problems()], 0
    for column in validate.FREE_TEXT.get(table, ()):
        hits = privacy.scan_column(typed.get_column(column))
        if not hits:
            continue
        masked = {text: privacy.mask(text, f) for text, f in hits.items()}
        kinds = {text: ", ".join(sorted({x.kind.replace("_", " ") for x in f})) for text, f in hits.items()}
        note = pl.col(column)
        found = note.is_in(list(hits))
        rows = typed.filter(found).select(
            "_row", pl.lit(column).alias("column"),
            note.replace_strict(masked, return_dtype=pl.String).alias("value"),
            pl.lit("identifying text").alias("rule"),
            pl.format("The {} contains identifying details ({}), so it was not stored. Remove them and import "
                      "again, or import with redaction.", pl.lit(column),
                      note.replace_strict(kinds, return_dtype=pl.String)).alias("message"))
        typed = typed.with_columns(note.replace(masked).alias(column))
        if redact:
            redacted += rows.height
            continue
        problems.append(rows.cast(validate.PROBLEM_SCHEMA))
    return typed, pl.concat(problems), redacted


# ----------------------------------------------------------------------------- the import

def import_dataset(path: str | os.PathLike, store: Store, *, catalog: Catalog | None = None,
                   redact: bool = False, imported_by: str | None = None, display_name: str | None = None,
                   progress: Progress | None = None, demo: bool = False) -> ImportResult:
    """Import one export (folder, .zip, .xlsx, or a single table file) into `store`.

    The phases, each a function below: read the export (`_read`, `_shape`), check each
    table (`_check_tables`), link the session tables to sessions (`_link_to_sessions`),
    build the report and the quarantine (`_report`), write one snapshot (`_write`)."""
    catalog = catalog or default_catalog()
    progress = progress or (lambda fraction, text: None)
    # An import that crashed left its unpacked export behind; the next one removes it.
    cleanup_stale_temp()
    path = Path(path)
    masker = _Masker()
    clock = _Clock()
    progress(0.05, "Reading the files")
    dataset, sha256, file_name = _read(path, display_name, masker)
    shaped, ignored = _shape(dataset, catalog, masker)  # takes the tables out of `dataset`
    clock.lap("read")

    progress(0.25, "Checking every row")
    stored_sessions = _stored_sessions(store, shaped["sessions"])
    checked = _check_tables(shaped, stored_sessions, catalog, redact)
    clock.lap("check")

    progress(0.5, "Checking that rows point at sessions")
    _link_to_sessions(store, checked, stored_sessions)
    clock.lap("link")

    progress(0.6, "Preparing the report")
    # Quarantine rows are written to a private scratch folder as each chunk of them is
    # made, and inserted from there when the import closes: nothing lost, nothing held.
    with private_dir("caseconf-import-") as scratch:
        spill = reports.QuarantineFiles(scratch)
        report = _report(dataset, shaped, checked, masker, spill)
        clock.lap("report")
        batch = _Batch(imported_by=_who(imported_by), file_name=file_name, sha256=sha256, redacted=redact,
                       quarantined={k: v for k, v in report.quarantined.items() if v}, ignored=ignored,
                       quarantine_files=spill.files, demo=demo)
        _write(store, report.accepted, batch, progress)
    clock.lap("write")  # the data's inserts; the rest of the publish follows
    clock.seconds["publish"] = clock.seconds["write"] - batch.insert_s
    clock.seconds["write"] = batch.insert_s
    clock.seconds["privacy"] = checked.privacy_s
    progress(1.0, "Done")
    return ImportResult(batch.batch_id, file_name, batch.loaded,
                        {k: v for k, v in report.quarantined.items() if v or k in batch.loaded},
                        batch.inserted, batch.updated, {k: v for k, v in checked.redacted.items() if v}, ignored,
                        [masker.name(f) for f in dataset.ignored_files],
                        [Problem(**row) for row in report.examples.iter_rows(named=True)], report.counts.to_dicts(),
                        {name: round(s, 3) for name, s in clock.seconds.items()})


class _Clock:
    """Wall-clock seconds of the import's phases, each from the end of the one before."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = now - self._last
        self._last = now


# -- read

def _read(path: Path, display_name: str | None, masker: _Masker) -> tuple[Dataset, str, str]:
    """The export's raw tables, the SHA-256 of its bytes and its name as shown (masked).

    The fingerprint hashes the same bytes the readers parse: on a thread of its own
    (hashlib lets go of the GIL), it costs no time beside the reading. So does the
    masking of the name: the first masking loads the privacy rules' word lists and the
    sift's patterns (a second and a half of Python), while DuckDB parses the files without
    the interpreter."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        fingerprint = pool.submit(_fingerprint, path)
        file_name = pool.submit(_first_masking, masker, display_name or path.name)
        try:
            dataset = read_dataset(path, display_name=display_name)
            shown = file_name.result()
            # A source names the export, its folders and files ("<client's name>.zip:
            # sessions.csv"): as identifying as the name of the export itself.
            for table in dataset.tables.values():
                table.source = masker.name(table.source)
            for problem in dataset.problems:
                problem.source = masker.name(problem.source)
            return dataset, fingerprint.result(), shown
        except DatasetError as err:
            raise ImportFailed(str(err)) from None
        except OSError as err:
            raise ImportFailed(f"{file_name.result()} could not be read "
                               f"({err.strerror or 'input/output error'}).") from None


def _first_masking(masker: _Masker, name: str) -> str:
    privacy.prepare_sift()  # builds the patterns of the notes' sift, used in the checks
    return masker.name(name)


# -- check each table

@dataclass
class _Checked:
    """The checked tables: typed rows, their problems (frames to concatenate), the notes
    redacted, and the sessions whose days since intake were derived from their dates."""
    typed: dict[str, pl.DataFrame] = field(default_factory=dict)
    problems: dict[str, list[pl.DataFrame]] = field(default_factory=dict)
    redacted: dict[str, int] = field(default_factory=dict)
    derived: pl.Series = field(default_factory=lambda: pl.Series("_row", [], pl.Int64))
    privacy_s: float = 0.0  # seconds in the privacy scan of notes, summed over the tables

    def bad_rows(self, name: str) -> pl.Series:
        return pl.concat(self.problems[name]).get_column("_row").unique()


def _stored_sessions(store: Store, sessions: pl.DataFrame) -> pl.DataFrame:
    """The stored sessions of this import's clients (none on a first import: then the
    clients of a million sessions need not be collected)."""
    clients = (sessions.get_column("client_id").drop_nulls().unique()
               if "client_id" in sessions.columns and store.scalar("SELECT EXISTS (FROM sessions)", scope=IMPORTER)
               else [])
    return store.query(
        "SELECT client_id, session_number, days_since_intake FROM sessions WHERE client_id IN "
        "(SELECT unnest(?::VARCHAR[]))", [list(clients)], scope=IMPORTER)


def _check_tables(shaped: dict[str, pl.DataFrame], stored_sessions: pl.DataFrame, catalog: Catalog,
                  redact: bool) -> _Checked:
    """Every table checked on its own, two at a time: much of a table's checking is
    single-threaded work (small frames, the privacy scan), so a second table overlaps it."""
    checked = _Checked()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(_check_table, name, raw, stored_sessions, catalog, redact)
                   for name, raw in shaped.items()}
        for name, future in futures.items():  # the tables' order, whichever finished first
            frame, problems, redacted, derived, privacy_s = future.result()
            checked.typed[name], checked.problems[name], checked.redacted[name] = frame, problems, redacted
            checked.privacy_s += privacy_s
            if derived is not None:
                checked.derived = derived
    return checked


def _check_table(name: str, raw: pl.DataFrame, stored_sessions: pl.DataFrame, catalog: Catalog,
                 redact: bool) -> tuple[pl.DataFrame, list[pl.DataFrame], int, pl.Series | None, float]:
    """One table's types, ids, rules, notes, keys and (sessions) dates: the typed frame,
    its problems, the notes redacted, the sessions whose days were derived, and the
    seconds its notes' privacy scan took."""
    problems: list[pl.DataFrame] = []
    frame, type_problems = validate.parse(raw, name, catalog)
    problems.append(type_problems)
    id_problems = _id_problems(frame, tuple(c.name for c in SPECS[name] if c.kind == "id"))
    problems.append(id_problems)
    # A cell that is not of its type is already reported; its rules would only add
    # "is empty" for the null it became. An id that looks like a real identifier is
    # reported as that once, not again as an invalid pseudonym (one row, one line).
    problems.append(validate.check_rules(frame, name, catalog).join(
        pl.concat([type_problems, id_problems]).select("_row", "column"), on=["_row", "column"], how="anti"))
    start = time.perf_counter()
    frame, text_problems, redacted = _free_text(frame, name, redact)
    privacy_s = time.perf_counter() - start
    problems.append(text_problems)
    problems.append(validate.duplicate_keys(frame, KEYS[name], name))
    derived = None
    if name == "sessions":  # last: day 0 is taken from rows that passed every other check
        stored_first = stored_sessions.group_by("client_id").agg(
            pl.col("session_number").min().cast(pl.Int64).alias("_stored_first"))
        frame, date_problems, derived = _session_dates(
            frame, stored_first, pl.concat(problems).get_column("_row").unique())
        problems.append(date_problems)
    return frame, problems, redacted, derived, privacy_s


# -- link to sessions

def _link_to_sessions(store: Store, checked: _Checked, stored_sessions: pl.DataFrame) -> None:
    """Rows of the session tables whose session is neither in this import nor stored, and
    sessions whose days are out of order, join the problems.

    Rows whose session is in this import are set aside first; only the others (none in a
    complete export) are looked up among the stored sessions of their clients. For speed:
    the same rows as checking every row against this import's and the stored sessions
    together, without collecting every client id of millions of rows; and the order of
    the days is checked meanwhile."""
    typed, problems = checked.typed, checked.problems
    sessions_ok = typed["sessions"].filter(~pl.col("_row").is_in(checked.bad_rows("sessions").implode()))
    keys = ["client_id", "session_number"]
    linked = [name for name in SESSION_TABLES if name in typed]
    with ThreadPoolExecutor(max_workers=2) as pool:
        order = pool.submit(validate.days_out_of_order, sessions_ok, stored_sessions.cast(
            {"session_number": pl.Int64, "days_since_intake": pl.Int64}), checked.derived)
        absent = validate.rows_without_session(sessions_ok.select(keys))
        elsewhere = dict(zip(linked, pool.map(absent, [typed[name] for name in linked])))
        out_of_order = order.result()
    problems["sessions"].append(out_of_order)
    if out_of_order.height:  # a session quarantined for its days is no session to point at either
        dropped = sessions_ok.join(out_of_order.select("_row"), on="_row", how="semi").select(keys)
        elsewhere = {name: pl.concat([rows, typed[name].drop_nulls(keys).join(dropped, on=keys, how="semi")])
                     for name, rows in elsewhere.items()}
    stored = _stored_keys(store, elsewhere)
    for name, rows in elsewhere.items():
        problems[name].append(validate.missing_sessions(rows, stored))


# -- report

@dataclass
class _Report:
    accepted: dict[str, pl.DataFrame]   # the rows to write, per table
    quarantined: dict[str, int]         # rows quarantined per table (IMPORT_ORDER, zeros too)
    examples: pl.DataFrame              # the first examples of each kind of problem
    counts: pl.DataFrame                # every problem, counted per table, column and rule


def _report(dataset: Dataset, shaped: dict[str, pl.DataFrame], checked: _Checked, masker: _Masker,
            spill: reports.QuarantineFiles) -> _Report:
    """The accepted rows of each table, and the quarantine (to `spill`) and report of the rest.

    Empties `shaped` and the checked tables as it goes: only the accepted rows are
    written, and the raw strings and typed frames they were filtered from go before the
    store's buffers fill."""
    reader_quarantine, reader_report = reports.row_problems(dataset.problems, masker)
    spill(reader_quarantine)
    found_reports = [reader_report]
    quarantined = {name: sum(1 for p in dataset.problems if p.table == name) for name in IMPORT_ORDER}
    del reader_quarantine
    accepted: dict[str, pl.DataFrame] = {}
    for name in list(checked.typed):
        found = pl.concat(checked.problems.pop(name))
        # Without a problem the typed rows are loaded as they are: a filtered copy of
        # millions of rows would only cost time and memory. Each table's typed and raw
        # rows go as soon as they are used, before the next table's report is built.
        frame = checked.typed.pop(name)
        accepted[name] = frame if found.height == 0 else frame.filter(
            ~pl.col("_row").is_in(found.get_column("_row").unique().implode()))
        del frame
        raw = shaped.pop(name)
        if found.height:
            rows, found_report = reports.table_report(name, raw, found, masker, spill)
            found_reports.append(found_report)
            quarantined[name] += rows
        del raw, found
    examples, counts = reports.merge(found_reports, IMPORT_ORDER)
    shaped.clear()
    return _Report(accepted, quarantined, examples, counts)


# -- write

@dataclass
class _Batch:
    """What the batch row records; `_write` fills in the batch id and the counts."""
    imported_by: str
    file_name: str
    sha256: str
    redacted: bool
    quarantined: dict[str, int]
    ignored: list[dict]
    quarantine_files: list[Path]
    demo: bool
    batch_id: int = 0
    insert_s: float = 0.0  # seconds the data's inserts took (the rest of the publish apart)
    loaded: dict[str, int] = field(default_factory=dict)
    inserted: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)

    def record(self, cur) -> None:
        """The batch and its quarantine, in the state transaction that publishes the data."""
        insert_quarantine(cur, self.batch_id, self.quarantine_files)
        insert_batch(cur, self.batch_id, imported_by=self.imported_by, file_name=self.file_name,
                     sha256=self.sha256, redacted=self.redacted, loaded=self.loaded,
                     quarantined=self.quarantined, inserted=self.inserted, updated=self.updated,
                     ignored=self.ignored)
        if not self.demo:  # real data: the store never again offers the demo sign-in
            cur.execute(SET_INFO, ["demo", "false"])


def _write(store: Store, accepted: dict[str, pl.DataFrame], batch: _Batch, progress: Progress) -> None:
    """The data go into a new snapshot; its batch, quarantine and the switch to it are one
    state transaction (`Store.publish`): readers see all of the import or none of it.
    Empties `accepted`: each table's rows go once written, while the store's buffers fill."""
    batch.batch_id = store.next_batch_id()
    batch.loaded = {name: frame.height for name, frame in accepted.items()}
    with store.publish(after=batch.record) as cur:
        for step, name in enumerate(IMPORT_ORDER):
            if name in accepted:
                progress(0.7 + 0.04 * step, f"Writing {name} to the store")
                start = time.perf_counter()
                batch.inserted[name], batch.updated[name] = upsert(cur, name, accepted.pop(name), batch.batch_id)
                batch.insert_s += time.perf_counter() - start


def _who(imported_by: str | None) -> str:
    if imported_by:
        return imported_by
    try:
        return os.environ.get("CASECONF_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _stored_keys(store: Store, typed: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Stored session keys of the clients the rows of `typed` (session tables) point at."""
    clients = set()
    for name in SESSION_TABLES:
        if name in typed:
            clients.update(typed[name].get_column("client_id").drop_nulls().unique().to_list())
    return store.query("SELECT client_id, session_number::BIGINT AS session_number FROM sessions "
                       "WHERE client_id IN (SELECT unnest(?::VARCHAR[]))", [sorted(clients)], scope=IMPORTER)


def load_demo(store: Store, *, only_if_empty: bool = False) -> ImportResult | None:
    """Load the bundled demo dataset (data/demo) into `store`."""
    if only_if_empty and not store.is_empty():
        return None
    folder = DATA_DIR / "demo"
    empty = store.is_empty()
    result = import_dataset(folder, store, imported_by="demo", display_name="demo dataset", demo=True)
    if empty:  # a store that holds nothing but the demo: its demo users can sign in
        from .identity import add_demo_users
        add_demo_users(store)
    return result
