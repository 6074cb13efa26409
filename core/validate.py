"""Validation of contract tables: typing, one pandera schema a table, cross-row rules.

Every check produces row-level problems (a rule and a sentence) instead of raising, so
one pass reports every failure (pandera's lazy mode) and the importer can quarantine
exactly the rows at fault. Ranges and codebooks come from the catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

from .catalog import Catalog
from .contract import CONTRACT, SESSION_KEY, Column
from .contract import FREE_TEXT as CONTRACT_FREE_TEXT
from .links import ID_PATTERN  # one rule for an id, in an import and in a link

# pandera imports its polars backend (its checks and, where it is installed, hypothesis)
# inside the first validation; do it here with the other imports, so that the timing of
# an import counts the import's own work.
pa.DataFrameSchema.register_default_backends(pl.DataFrame)

TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")

PROBLEM_SCHEMA = {"_row": pl.Int64, "column": pl.String, "value": pl.String,
                  "rule": pl.String, "message": pl.String}


# A column of the contract (core/contract.py): name, kind, required, default.
Col = Column
KEY_COLS = tuple(c for c in CONTRACT["sessions"].columns if c.name in SESSION_KEY)

SPECS: dict[str, tuple[Col, ...]] = {name: table.columns for name, table in CONTRACT.items()}

# Free-text columns scanned by the privacy guard before anything is stored.
FREE_TEXT = CONTRACT_FREE_TEXT

_TYPE_WORDS = {"int": "a whole number", "number": "a number", "bool": "true or false",
               "date": "a date written YYYY-MM-DD"}


def empty_problems() -> pl.DataFrame:
    return pl.DataFrame(schema=PROBLEM_SCHEMA)


def _parsed(text: pl.Expr, kind: str, lenient: bool) -> pl.Expr:
    """Stripped ``text`` read as ``kind``; null where it is not of that kind.

    ``lenient`` also reads what spreadsheets write for numbers ("12.0" for 12, "3,5" for
    3.5) with a regular expression over every cell; a plain cast reads neither form, so
    the regular expression is needed only in a column where the cast misses a cell.
    """
    if kind == "int":
        if lenient:
            text = text.str.replace(r"^([+-]?\d+)\.0*$", "$1")
        return text.cast(pl.Int64, strict=False)
    if kind == "number":
        if lenient:
            text = text.str.replace(r"^([+-]?\d+),(\d+)$", "$1.$2")
        number = text.cast(pl.Float64, strict=False)
        return pl.when(number.is_finite()).then(number)
    if kind == "bool":
        words = {**dict.fromkeys(TRUE_WORDS, True), **dict.fromkeys(FALSE_WORDS, False)}
        return text.str.to_lowercase().replace_strict(words, default=None, return_dtype=pl.Boolean)
    if kind == "date":
        day = text.str.slice(0, 10)
        return pl.coalesce(
            # a time may follow, with its zone ("10:00:00Z", "10:00:00+00" from a Parquet
            # timestamp with a time zone): the date is the day as written
            pl.when(text.str.contains(r"^\d{4}-\d{2}-\d{2}([ T][0-9:.]*|[ T]\d[0-9:.]*([zZ]|[+-]\d{2}(:?\d{2})?))?$"))
            .then(day.str.to_date("%Y-%m-%d", strict=False)),
            text.str.to_date("%d.%m.%Y", strict=False))
    return pl.when(text != "").then(text)


def parse(raw: pl.DataFrame, table: str, catalog: Catalog) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Cast a table of strings to its contract types (`catalog`: the attendance codes).

    Returns the typed frame (columns of the spec, `_row`, `_line`) and the problems of
    cells that are not of their type. Absent optional columns take their default.
    """
    present = [col for col in SPECS[table] if col.name in raw.columns]
    checked = [col for col in present if col.kind in _TYPE_WORDS]
    # Strip in a step of its own: an eager frame computes an expression again at each
    # use, and the rules read the stripped text more than once. A column with no cell to
    # strip is used as it is: a copy of millions of cells costs more than looking.
    # A padded number, true/false or date is not read by its cast (or is read as it would
    # be stripped): such a column is stripped only when its cast misses a cell, below.
    texts = [col for col in present if col.kind not in _TYPE_WORDS]
    padded = dict(zip((col.name for col in texts), _padded(raw, [col.name for col in texts],
                                                           FREE_TEXT.get(table, ()))))
    both = raw.with_columns((pl.col(col.name).str.strip_chars() if padded.get(col.name) else pl.col(col.name))
                            .alias(f"__{col.name}") for col in present)
    both = both.rechunk()  # a frame concatenated from parts panicked in filter (polars: i < self.len())
    # A text cell that is empty after stripping becomes null; a column without one is kept
    # as it is (at 10^6 sessions a copy of every id and code costs time and memory).
    emptied = dict(zip((col.name for col in texts), both.select(
        (pl.col(f"__{col.name}") == "").any() for col in texts).row(0))) if texts else {}
    both = both.with_columns(_parsed(pl.col(f"__{col.name}"), col.kind, lenient=False).alias(f"__{col.name}")
                             for col in present if emptied.get(col.name, True))

    # Readers turn blank cells into nulls, so a present cell that parses to null is not of its type.
    def missed(c: Col) -> pl.Expr:
        return pl.col(c.name).is_not_null() & pl.col(f"__{c.name}").is_null()

    def misses(cols: list[Col]) -> dict[str, bool]:
        return both.select([missed(c).any().alias(c.name) for c in cols]).row(0, named=True) if cols else {}

    failed = misses(checked)
    # A column with a cell its cast missed is read again stripped, numbers also the
    # lenient way; only the cells still missed then are not of their type.
    again = [c for c in checked if failed[c.name]]
    if again:
        both = both.with_columns(_parsed(pl.col(c.name).str.strip_chars(), c.kind, lenient=True).alias(f"__{c.name}")
                                 for c in again)
        failed.update(misses(again))
    failures = [
        both.filter(missed(c)).select(
            "_row", pl.lit(c.name).alias("column"), pl.col(c.name).alias("value"), pl.lit("type").alias("rule"),
            pl.format("{} '{}' is not {}.", pl.lit(c.name), pl.col(c.name), pl.lit(_TYPE_WORDS[c.kind])).alias("message"))
        for c in checked if failed.get(c.name)]
    exprs = [pl.col("_row"), pl.col("_line")]
    for col in SPECS[table]:
        if col not in present:
            exprs.append(pl.lit(col.default, dtype=_dtype(col.kind)).alias(col.name))
            continue
        value = pl.col(f"__{col.name}")
        if col.default is not None:
            value = value.fill_null(pl.lit(col.default, dtype=_dtype(col.kind)))
        exprs.append(value.alias(col.name))
    typed = both.select(exprs)
    if table == "sessions":
        typed = _attendance(typed, attended_given=any(c.name == "attended" for c in present),
                            codes=catalog.vocabularies.attendance)
    problems = pl.concat([empty_problems(), *(f.cast(PROBLEM_SCHEMA) for f in failures)])
    return typed, problems


def _attendance(typed: pl.DataFrame, attended_given: bool, codes: list[str]) -> pl.DataFrame:
    """`attended` and `attendance` filled from each other (CONTRACT.md extension): without
    `attendance`, attended = false reads as a no-show; without `attended`, it is true only
    for `attended`. Where both are given they are checked to agree (`schema_for`)."""
    kind = pl.col("attendance").str.to_lowercase()
    if attended_given:
        attended = pl.col("attended")
    else:
        attended = pl.when(kind.is_null()).then(pl.lit(True)).otherwise(kind == "attended")
    derived = pl.when(attended.fill_null(True)).then(pl.lit("attended")).otherwise(pl.lit("no_show"))
    # A code written in another case is read as the code; any other text is kept as written,
    # so that its problem quotes (and the guard masks) what the file holds, not its lower case.
    written = pl.when(kind.is_in(codes)).then(kind).otherwise(pl.col("attendance"))
    return typed.with_columns(attended.alias("attended"), pl.coalesce(written, derived).alias("attendance"))


# The characters the regular expressions' \s and strip_chars take for white space (the
# Unicode White_Space property; a test holds this list to both).
WHITESPACE = ("\t", "\n", "\v", "\f", "\r", " ", "\x85", "\xa0", "\u1680", *map(chr, range(0x2000, 0x200B)),
              "\u2028", "\u2029", "\u202f", "\u205f", "\u3000")


def _padded(raw: pl.DataFrame, columns: list[str], free_text: tuple[str, ...]) -> tuple[bool, ...]:
    """Per column: whether a cell starts or ends with white space. Ids, codes and numbers
    seldom hold white space at all, and a search for any of its characters costs half a
    regular expression over every cell; only a column where one turns up is read again
    with the expression. Free text always holds spaces, so it goes straight to it."""
    if not columns:
        return ()
    somewhere = raw.select(pl.lit(True) if name in free_text else pl.col(name).str.contains_any(WHITESPACE).any()
                           for name in columns).row(0)
    maybe = [name for name, found in zip(columns, somewhere) if found]
    padded = dict(zip(maybe, raw.select(pl.col(name).str.contains(r"^\s|\s$").any() for name in maybe).row(0))
                  if maybe else ())
    return tuple(bool(padded.get(name)) for name in columns)


def _dtype(kind: str):
    return {"int": pl.Int64, "number": pl.Float64, "bool": pl.Boolean, "date": pl.Date}.get(kind, pl.String)


# ----------------------------------------------------------------------------- schemas

def _check(expr: pl.Expr, name: str) -> pa.Check:
    return pa.Check(lambda data: data.lazyframe.select(expr), name=name)


def _in(column: str, values) -> pa.Check:
    return _check(pl.col(column).is_in(list(values)), "vocabulary")


def _between(column: str, low: int, high: int) -> pa.Check:
    return _check(pl.col(column).is_between(low, high), f"between {low} and {high}")


MAX_SESSION_NUMBER = 100_000
MAX_DAYS = 36_500  # days_since_intake: a hundred years

# Columns `parse` always fills (from other columns), though the contract makes them optional.
_FILLED = {("sessions", "attendance")}


def _checks(table: str, catalog: Catalog) -> dict[str, list[pa.Check]]:
    """The rules of one table's columns, from the catalog; the columns themselves (their
    types and whether they may be empty) come from the contract."""
    voc = catalog.vocabularies
    limit = catalog.privacy.max_note_chars
    note = [_check(pl.col("note").str.len_chars() <= limit, f"at most {limit} characters")]
    ids = {"client_id": [_check(pl.col("client_id").str.contains(ID_PATTERN), "pseudonym")],
           "session_number": [_between("session_number", 0, MAX_SESSION_NUMBER)]}
    if table == "sessions":
        return {**ids, "therapist_id": [_check(pl.col("therapist_id").str.contains(ID_PATTERN), "pseudonym")],
                "days_since_intake": [_between("days_since_intake", 0, MAX_DAYS)],
                "modality": [_in("modality", voc.modality)],
                "attendance": [_in("attendance", voc.attendance), _check(
                    pl.col("attendance").is_null() | ~pl.col("attendance").is_in(voc.attendance)
                    | (pl.col("attended") == (pl.col("attendance") == "attended")), "attendance agrees")]}
    if table == "ratings":
        return {**ids, "instrument": [_in("instrument", catalog.instruments)],
                "scale": [_check(pl.col("_scale_known") | pl.col("_min").is_not_null()
                                 | pl.col("_instrument_unknown"), "scale")],
                "rater": [_check(pl.col("_rater_ok") | pl.col("_instrument_unknown"), "rater")],
                "score": [_check(pl.col("_min").is_null() | pl.col("score").is_between(pl.col("_min"), pl.col("_max")),
                                 "range")]}
    if table == "themes":
        return {**ids, "kind": [_in("kind", voc.theme_kinds)],
                "code": [_check(pl.col("_code_ok") | pl.col("_kind_unknown"), "codebook")],
                "intensity": [_between("intensity", 1, 5)], "rater": [_in("rater", voc.coding_raters)], "note": note}
    if table == "barriers":
        return {**ids, "category": [_in("category", catalog.codebooks["barrier_categories"].codes)],
                "severity": [_between("severity", 1, 3)], "note": note}
    if table == "events":
        return {**ids, "event": [_in("event", catalog.codebooks["events"].codes)],
                "rater": [_in("rater", voc.coding_raters)], "note": note}
    if table == "therapists":
        return {"therapist_id": [_check(pl.col("therapist_id").str.contains(ID_PATTERN), "pseudonym")],
                "supervision_group": [_check(pl.col("supervision_group").str.len_chars() <= 64,
                                             "at most 64 characters")],
                "level": [_in("level", voc.therapist_levels)]}
    raise KeyError(table)


def schema_for(table: str, catalog: Catalog) -> pa.DataFrameSchema:
    """The pandera schema of one contract table: its stored columns, their types and
    whether they may be empty from the contract, their rules from the catalog. A column
    with a default (or filled by `parse`) is never empty once parsed."""
    checks = _checks(table, catalog)
    cols = {c.name: pa.Column(_dtype(c.kind), checks.get(c.name, []),
                              nullable=not (c.required or c.default is not None or (table, c.name) in _FILLED))
            for c in CONTRACT[table].columns if c.stored}
    return pa.DataFrameSchema(cols, strict=False, name=table)


def _place(column: str, values: pl.Enum) -> pl.Expr:
    """The row's place (0, 1, ...) among the `values` of an Enum, null for any other value:
    a cast to the Enum, the cheapest look-up of a text value among known ones."""
    return pl.col(column).cast(values, strict=False).to_physical().cast(pl.Int64)


def _numbered(column: str, values) -> tuple[list[str], pl.Expr]:
    """`values` in order, and the expression giving the row's place among them (null for
    any other value)."""
    ordered = sorted(set(values))
    return ordered, _place(column, pl.Enum(ordered)).alias(f"_n_{column}")


def _pair_lookup(first: str, second: str, numbers: dict[str, list[str]], table: dict[tuple[str, str], object],
                 dtype) -> pl.Expr:
    """table[(the row's `first`, the row's `second`)], null where the pair is not in the
    table, from the columns' places (`_numbered`): every pair of places has a slot in a
    short list, and each row picks its slot, with no join (on two text columns of
    millions of rows half a second) and no hash look-up."""
    width = len(numbers[second]) or 1
    slots: list[object] = [None] * ((len(numbers[first]) or 1) * width)
    place = {column: {x: i for i, x in enumerate(values)} for column, values in numbers.items()}
    for (x, y), value in table.items():
        slots[place[first][x] * width + place[second][y]] = value
    return pl.lit(pl.Series(slots, dtype=dtype)).gather(pl.col(f"_n_{first}") * width + pl.col(f"_n_{second}"))


def _with_pair_facts(typed: pl.DataFrame, columns: list[tuple[str, Iterable[str]]],
                     facts: Callable[[dict[str, list[str]]], dict[str, pl.Expr]]) -> pl.DataFrame:
    """`typed` with the columns made by `facts(numbers)`, where `numbers[column]` lists
    the values that column may take: each text column is looked up once."""
    found = {}
    exprs = []
    for column, values in columns:
        found[column], expr = _numbered(column, values)
        exprs.append(expr)
    return typed.with_columns(exprs).with_columns(**facts(found)).drop(f"_n_{c}" for c, _ in columns)


def _unknown(column: str) -> pl.Expr:
    """Whether the row's value is not among those `_numbered` listed (null when empty)."""
    return pl.when(pl.col(column).is_not_null()).then(pl.col(f"_n_{column}").is_null())


def _helper_columns(typed: pl.DataFrame, table: str, catalog: Catalog) -> pl.DataFrame:
    """Per-row facts from the catalog that row-wise checks need (a scale's range...)."""
    if table == "ratings":
        ranges = {(key, scale): bounds for key, ins in catalog.instruments.items()
                  for scale, bounds in ins.scales.items()}
        raters = {(key, r): True for key, ins in catalog.instruments.items() for r in ins.raters}
        numbered = [("instrument", catalog.instruments), ("scale", [s for _, s in ranges]),
                    ("rater", [r for _, r in raters])]
        return _with_pair_facts(typed, numbered, lambda n: dict(
            _min=_pair_lookup("instrument", "scale", n, {k: float(lo) for k, (lo, _) in ranges.items()}, pl.Float64),
            _max=_pair_lookup("instrument", "scale", n, {k: float(hi) for k, (_, hi) in ranges.items()}, pl.Float64),
            _rater_ok=_pair_lookup("instrument", "rater", n, raters, pl.Boolean).fill_null(False),
            _instrument_unknown=_unknown("instrument"),
            _scale_known=pl.col("scale").is_null()))
    if table == "themes":
        kinds = catalog.vocabularies.theme_kinds
        codes = {(kind, code): True for kind in kinds for code in catalog.codebooks[kind].codes}
        return _with_pair_facts(typed, [("kind", kinds), ("code", [c for _, c in codes])], lambda n: dict(
            _code_ok=_pair_lookup("kind", "code", n, codes, pl.Boolean).fill_null(False),
            _kind_unknown=_unknown("kind")))
    return typed


def _message(table: str, column: str, check: str, value: str | None, row: dict, catalog: Catalog) -> str:
    shown = "" if value is None else str(value)
    if check == "not_nullable":
        return f"{column} is empty; it is required."
    if check == "pseudonym":
        return (f"{column} '{shown}' is not a valid pseudonym: use 1 to 64 letters, digits, '_', '-' or '.', "
                "with no spaces.")
    if check.startswith("between"):
        return f"{column} {shown} is outside the allowed range ({check[len('between '):]})."
    if check.startswith("at most"):
        return f"{column} is too long: {check}."
    if check == "vocabulary":
        allowed = {
            "modality": catalog.vocabularies.modality, "rater": (catalog.vocabularies.coding_raters),
            "attendance": catalog.vocabularies.attendance,
            "kind": catalog.vocabularies.theme_kinds, "level": catalog.vocabularies.therapist_levels,
            "instrument": list(catalog.instruments),
            "category": list(catalog.codebooks["barrier_categories"].codes),
            "event": list(catalog.codebooks["events"].codes),
        }.get(column, [])
        what = "the catalog" if column == "instrument" else "the allowed values"
        return f"{column} '{shown}' is not in {what} ({', '.join(allowed)})."
    if check == "scale":
        ins = catalog.instruments[row["instrument"]]
        named = [name for name in ins.scales if not (ins.items and name.startswith("item"))]
        items = [f"item1-item{ins.items.count}"] if ins.items else []
        return f"scale '{shown}' is not a scale of {ins.key} ({', '.join(named + items)})."
    if check == "rater":
        ins = catalog.instruments[row["instrument"]]
        return f"rater '{shown}' does not rate {ins.key} (its raters: {', '.join(ins.raters)})."
    if check == "range":
        low, high = catalog.instruments[row["instrument"]].scales[row["scale"]]
        return (f"score {shown} is outside the {row['instrument']} {row['scale']} range "
                f"{low:g} to {high:g}.")
    if check == "attendance agrees":
        return (f"attendance '{shown}' disagrees with the row's attended: attended is true only for 'attended' "
                "(a no-show or a cancellation is attended = false); correct one of them.")
    if check == "codebook":
        codes = catalog.codebooks[row["kind"]].codes
        return f"code '{shown}' is not in the {row['kind']} codebook ({', '.join(codes)})."
    return f"{column} '{shown}' breaks the rule {check}."


def check_rules(typed: pl.DataFrame, table: str, catalog: Catalog) -> pl.DataFrame:
    """Run the table's pandera schema lazily; every failure becomes a problem row."""
    frame = _helper_columns(typed, table, catalog)
    try:
        schema_for(table, catalog).validate(frame, lazy=True)
        return empty_problems()
    except SchemaErrors as err:
        failures = err.failure_cases.filter(pl.col("index").is_not_null())
    if failures.height == 0:
        return empty_problems()
    context_cols = [c for c in ("instrument", "scale", "kind") if c in frame.columns]
    context = frame.select("_row", *context_cols).with_row_index("index").with_columns(pl.col("index").cast(pl.Int64))
    failures = failures.with_columns(pl.col("index").cast(pl.Int64)).join(context, on="index", how="left")
    # A sentence is written once for each distinct failure (value and its context), not
    # once a row: a million faulty rows hold few distinct faults.
    keys = ["column", "check", "failure_case", *context_cols]
    distinct = failures.select(keys).unique()
    distinct = distinct.with_columns(pl.Series("message", [
        _message(table, rec["column"], rec["check"], rec["failure_case"], rec, catalog)
        for rec in distinct.iter_rows(named=True)], dtype=pl.String))
    return failures.join(distinct, on=keys, how="left", nulls_equal=True).select(
        "_row", "column", pl.col("failure_case").alias("value"), pl.col("check").alias("rule"), "message",
    ).cast(PROBLEM_SCHEMA)


# ----------------------------------------------------------------------------- cross-row rules

def duplicate_keys(typed: pl.DataFrame, keys: tuple[str, ...], table: str) -> pl.DataFrame:
    """Rows sharing a key inside one import: all of them, since none can be preferred."""
    complete = typed.drop_nulls(list(keys))
    # Rows that share a key share its hash. Sorting the hashes finds the repeated ones in
    # little memory, where grouping millions of rows by string keys is slow and memory-hungry;
    # only the rows with a repeated hash are then grouped by their keys.
    # (DataFrame.hash_rows: a fifth of the time of hashing a struct of the key columns.)
    hashes = complete.select(list(keys)).hash_rows()
    ordered = hashes.sort()
    repeated = ordered.filter(ordered == ordered.shift(1))
    if repeated.is_empty():
        return empty_problems()
    dup = complete.filter(hashes.is_in(repeated.implode())).filter(pl.len().over(list(keys)) > 1)
    if dup.height == 0:
        return empty_problems()
    lines = dup.group_by(list(keys)).agg(pl.col("_line").sort().alias("_lines"))
    dup = dup.join(lines, on=list(keys), how="left")
    return dup.select(
        "_row", pl.lit(", ".join(keys)).alias("column"),
        pl.concat_str([pl.col(k).cast(pl.String) for k in keys], separator=" / ").alias("value"),
        pl.lit("unique key").alias("rule"),
        pl.format("Rows {} of {} share the key ({}); none was loaded because the software cannot "
                  "know which is right. Keep one and import again.",
                  pl.col("_lines").cast(pl.List(pl.String)).list.join(", "), pl.lit(table),
                  pl.lit(", ".join(keys))).alias("message"),
    ).cast(PROBLEM_SCHEMA)


SESSION_BITS = MAX_SESSION_NUMBER.bit_length()  # every valid session number is below 2^SESSION_BITS


def not_among_sessions(rows: pl.DataFrame, sessions: pl.DataFrame) -> pl.DataFrame:
    """The rows of `rows` with a client and a session number whose session is not in
    `sessions` (validated rows: client_id, session_number): the anti-join on the two
    columns."""
    return rows_without_session(sessions)(rows)


def rows_without_session(sessions: pl.DataFrame) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """`not_among_sessions` against one set of sessions for many tables: the sessions'
    side is prepared once. Each key is made one whole number (the client's place among
    the sessions' clients, then the session number), so that millions of rows are
    compared as numbers, not as text: at 10^6 sessions a fifth of the time of a join and
    far less memory."""
    keys = ["client_id", "session_number"]
    clients = pl.Enum(sessions.get_column("client_id").unique().sort())

    def key(frame: pl.DataFrame) -> pl.Series:
        number = pl.col("session_number")
        return frame.select(
            pl.when(number.is_between(0, (1 << SESSION_BITS) - 1))
            .then(_place("client_id", clients) * (1 << SESSION_BITS) + number)).to_series()

    known = key(sessions).implode()

    def absent(rows: pl.DataFrame) -> pl.DataFrame:
        rows = rows.drop_nulls(keys)
        return rows.filter(~key(rows).is_in(known).fill_null(False))

    return absent


def missing_sessions(typed: pl.DataFrame, known: pl.DataFrame) -> pl.DataFrame:
    """Rows that point at a session neither in this import nor in the store."""
    return not_among_sessions(typed, known).select(
        "_row", pl.lit("client_id, session_number").alias("column"),
        pl.format("{} / {}", "client_id", "session_number").alias("value"),
        pl.lit("session exists").alias("rule"),
        pl.format("There is no session {} of client {} in this import or in the store; add the "
                  "session row (or correct the ids) and import again.",
                  "session_number", "client_id").alias("message"),
    ).cast(PROBLEM_SCHEMA)


def _any_decrease(rows: pl.DataFrame) -> bool:
    """Whether days_since_intake falls from a session to the client's next one. Exports
    usually list each client's sessions in order; when they are (a check in one pass)
    the rows are compared as they come, else after sorting."""
    same = pl.col("client_id") == pl.col("client_id").shift(1)
    in_order = rows.select(((pl.col("client_id") > pl.col("client_id").shift(1))
                            | (same & (pl.col("session_number") > pl.col("session_number").shift(1))))
                           .fill_null(True).all()).item()
    ordered = rows if in_order else rows.sort("client_id", "session_number")
    return ordered.select((same & (pl.col("days_since_intake") < pl.col("days_since_intake").shift(1)))
                          .fill_null(False).any()).item()


def days_out_of_order(sessions: pl.DataFrame, stored: pl.DataFrame, derived: pl.Series | None = None) -> pl.DataFrame:
    """Sessions whose days_since_intake is earlier than that of a lower session number, or
    later than that of a higher stored session number.

    `sessions` are this import's accepted rows; `stored` the store's rows of the same
    clients (client_id, session_number, days_since_intake). Import rows win over stored
    rows with the same key; only import rows are reported. `derived` rows had their days
    from session_date: their problem names that column, which the file has.
    """
    mine = sessions.select("client_id", "session_number", "days_since_intake", "_row")
    others = stored.join(mine, on=["client_id", "session_number"], how="anti").with_columns(
        pl.lit(None, dtype=pl.Int64).alias("_row"))
    both = pl.concat([mine, others.select(mine.columns)], how="vertical_relaxed").drop_nulls("days_since_intake")
    if others.is_empty() and not _any_decrease(both):
        # No stored session to compare with, and the days never fall from one session to
        # the next: nothing can be out of order, and the windows below need not run.
        return empty_problems()
    stored_days = pl.when(pl.col("_row").is_null()).then(pl.col("days_since_intake"))
    both = both.sort("client_id", "session_number").with_columns(
        pl.col("days_since_intake").cum_max().shift(1).over("client_id").alias("_before"),
        # The earliest stored day among later sessions: an imported session must not come
        # after it either (a later imported session is checked by its own `_before`).
        stored_days.reverse().cum_min().forward_fill().reverse().shift(-1).over("client_id").alias("_after"))
    earlier = pl.col("days_since_intake") < pl.col("_before")
    later = pl.col("days_since_intake") > pl.col("_after")
    bad = both.filter(pl.col("_row").is_not_null() & (earlier | later).fill_null(False))
    if derived is None:
        derived = pl.Series("_row", [], pl.Int64)
    from_date = pl.col("_row").is_in(derived.implode())
    days = pl.col("days_since_intake")
    return bad.select(
        "_row", pl.when(from_date).then(pl.lit("session_date")).otherwise(pl.lit("days_since_intake")).alias("column"),
        pl.when(from_date).then(pl.lit("(date)")).otherwise(days.cast(pl.String)).alias("value"),
        pl.lit("non-decreasing").alias("rule"),
        pl.concat_str(
            pl.when(from_date)
            .then(pl.format("days since intake, derived from the session_date column, is {} for session {}; that ",
                            days, "session_number"))
            .otherwise(pl.format("days_since_intake {} of session {} ", days, "session_number")),
            pl.when(earlier.fill_null(False))
            .then(pl.format("is earlier than an earlier session's ({}); ", "_before"))
            .otherwise(pl.format("is later than a later stored session's ({}); ", "_after")),
            pl.lit("days must not decrease as session numbers rise.")).alias("message"),
    ).cast(PROBLEM_SCHEMA)
