"""The catalog facts the row checks read (a scale's range, a rater of an instrument, a
code of a kind) are looked up without joins for speed; here they must equal the joins
that define them, on every mix of known, unknown and empty values."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from core.catalog import default_catalog
from core.validate import WHITESPACE, _helper_columns, _padded

CATALOG = default_catalog()
INSTRUMENTS = [*CATALOG.instruments, "XYZ", None]
SCALES = sorted({s for i in CATALOG.instruments.values() for s in i.scales}) + ["nope", None]
RATERS = sorted({r for i in CATALOG.instruments.values() for r in i.raters}) + ["observer", None]
KINDS = [*CATALOG.vocabularies.theme_kinds, "dream", None]
CODES = sorted({c for k in CATALOG.vocabularies.theme_kinds for c in CATALOG.codebooks[k].codes}) + ["other", None]


def by_joins_ratings(frame: pl.DataFrame) -> pl.DataFrame:
    scales = pl.DataFrame([(k, s, float(lo), float(hi)) for k, i in CATALOG.instruments.items()
                           for s, (lo, hi) in i.scales.items()],
                          schema=["instrument", "scale", "_min", "_max"], orient="row")
    raters = pl.DataFrame([(k, r, True) for k, i in CATALOG.instruments.items() for r in i.raters],
                          schema=["instrument", "rater", "_rater_ok"], orient="row")
    return (frame.join(scales, on=["instrument", "scale"], how="left", maintain_order="left")
            .join(raters, on=["instrument", "rater"], how="left", maintain_order="left")
            .with_columns(_rater_ok=pl.col("_rater_ok").fill_null(False),
                          _instrument_unknown=~pl.col("instrument").is_in(list(CATALOG.instruments)),
                          _scale_known=pl.col("scale").is_null()))


def by_joins_themes(frame: pl.DataFrame) -> pl.DataFrame:
    kinds = CATALOG.vocabularies.theme_kinds
    codes = pl.DataFrame([(k, c, True) for k in kinds for c in CATALOG.codebooks[k].codes],
                         schema=["kind", "code", "_code_ok"], orient="row")
    return (frame.join(codes, on=["kind", "code"], how="left", maintain_order="left")
            .with_columns(_code_ok=pl.col("_code_ok").fill_null(False), _kind_unknown=~pl.col("kind").is_in(kinds)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(INSTRUMENTS), st.sampled_from(SCALES), st.sampled_from(RATERS)),
                min_size=1, max_size=40))
def test_rating_facts_equal_the_joins_that_define_them(rows):
    frame = pl.DataFrame(rows, schema={"instrument": pl.String, "scale": pl.String, "rater": pl.String},
                         orient="row")
    assert _helper_columns(frame, "ratings", CATALOG).equals(by_joins_ratings(frame))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(KINDS), st.sampled_from(CODES)), min_size=1, max_size=40))
def test_theme_facts_equal_the_joins_that_define_them(rows):
    frame = pl.DataFrame(rows, schema={"kind": pl.String, "code": pl.String}, orient="row")
    assert _helper_columns(frame, "themes", CATALOG).equals(by_joins_themes(frame))


def test_a_known_range_and_an_unknown_pair_are_looked_up():
    frame = pl.DataFrame({"instrument": ["SRS", "SRS", "PHQ-9"], "scale": ["total", "bond", "total"],
                          "rater": ["client", "client", "therapist"]})
    facts = _helper_columns(frame, "ratings", CATALOG)
    assert facts["_min"].to_list() == [0.0, None, 0.0]
    assert facts["_max"].to_list() == [40.0, None, 27.0]
    assert facts["_rater_ok"].to_list() == [True, True, False]


def out_of_order_by_definition(rows, stored) -> set[int]:
    """Row numbers whose day is earlier than a lower session's, or later than a higher
    stored session's (import rows replace stored rows with the same key), client by client."""
    mine = {(c, n): (d, r) for r, (c, n, d) in enumerate(rows)}
    merged = {key: (d, None) for key, d in stored.items() if key not in mine}
    merged.update(mine)
    bad = set()
    for (client, number), (day, row) in merged.items():
        if row is None or day is None:
            continue
        for (c, n), (d, r) in merged.items():
            if c != client or d is None:
                continue
            if n < number and d > day or n > number and r is None and d < day:
                bad.add(row)
    return bad


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 6),
                          st.one_of(st.none(), st.integers(0, 30))),
                max_size=14, unique_by=lambda t: (t[0], t[1])),
       st.dictionaries(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 6)), st.integers(0, 30),
                       max_size=6),
       st.booleans())
def test_days_out_of_order_follow_their_definition(rows, stored, ordered):
    from core.validate import days_out_of_order
    if ordered:
        rows = sorted(rows, key=lambda t: (t[0], t[1]))
    sessions = pl.DataFrame(rows, schema={"client_id": pl.String, "session_number": pl.Int64,
                                          "days_since_intake": pl.Int64}, orient="row").with_row_index("_row")
    sessions = sessions.with_columns(pl.col("_row").cast(pl.Int64))
    stored_frame = pl.DataFrame([(c, n, d) for (c, n), d in stored.items()],
                                schema={"client_id": pl.String, "session_number": pl.Int64,
                                        "days_since_intake": pl.Int64}, orient="row")
    found = days_out_of_order(sessions, stored_frame)
    assert set(found["_row"].to_list()) == out_of_order_by_definition(rows, stored)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])),
                          st.one_of(st.none(), st.integers(-3, 8), st.just(1 << 21), st.just(-(1 << 40)))),
                max_size=30),
       st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 6)), max_size=12,
                unique=True))
def test_rows_without_a_session_are_the_anti_join(rows, sessions):
    from core.validate import not_among_sessions
    schema = {"client_id": pl.String, "session_number": pl.Int64}
    frame = pl.DataFrame(rows, schema=schema, orient="row").with_row_index("_row")
    known = pl.DataFrame(sessions, schema=schema, orient="row")
    expected = frame.drop_nulls(["client_id", "session_number"]).join(known, on=["client_id", "session_number"],
                                                                      how="anti")
    assert not_among_sessions(frame, known).sort("_row").equals(expected.sort("_row"))


def test_the_white_space_list_is_what_the_expressions_take_for_white_space():
    chars = pl.Series([chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000])
    frame = pl.DataFrame({"c": chars}).with_columns(
        regex=pl.col("c").str.contains(r"^\s$"), stripped=pl.col("c").str.strip_chars() == "")
    assert set(frame.filter("regex")["c"]) == set(WHITESPACE)
    assert set(frame.filter("stripped")["c"]) == set(WHITESPACE)


CELLS = st.one_of(st.none(), st.text(alphabet=st.sampled_from(["a", "7", "-", "é", *WHITESPACE]), max_size=5))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(CELLS, CELLS, CELLS), max_size=12))
def test_padded_columns_are_those_with_a_cell_starting_or_ending_with_white_space(rows):
    frame = pl.DataFrame(rows, schema={"a": pl.String, "b": pl.String, "note": pl.String}, orient="row")
    expected = tuple(frame.select(pl.col(c).str.contains(r"^\s|\s$").any() for c in frame.columns).row(0))
    assert _padded(frame, frame.columns, ("note",)) == expected
    assert _padded(frame, ["b", "a"], ()) == expected[1::-1]


PADDING = st.text(alphabet=st.sampled_from(WHITESPACE), max_size=2)
SESSION_CELLS = {
    "client_id": st.sampled_from(["c1", "c-2", "", "x y"]),
    "session_number": st.sampled_from(["0", "3", "12.0", "2.", "-1", "3,5", "x", "1e3"]),
    "therapist_id": st.sampled_from(["t1", "T_2"]),
    "days_since_intake": st.sampled_from(["0", "14", "7.00", "inf", "NaN", "abc"]),
    "session_date": st.sampled_from(["2024-03-01", "01.03.2024", "2024-3-1", "2024-03-01T10:00", "soon"]),
    "modality": st.sampled_from(["individual", "group", "Zoom call"]),
    "attended": st.sampled_from(["yes", "No", "TRUE", "0", "maybe"]),
}


@settings(max_examples=120, deadline=None)
@given(st.lists(st.fixed_dictionaries({name: st.tuples(PADDING, cell, PADDING) for name, cell in SESSION_CELLS.items()}),
                min_size=1, max_size=8))
def test_a_padded_cell_reads_as_the_cell_without_its_padding(rows):
    """Cells are trimmed before they are read, whatever their kind: a value with white
    space around it gives the value and the problems it gives without."""
    from core.validate import parse

    def frame(pad: bool) -> pl.DataFrame:
        cells = [{name: ((a + v + b) if pad else v) or None for name, (a, v, b) in row.items()} for row in rows]
        return pl.DataFrame(cells, schema=dict.fromkeys(SESSION_CELLS, pl.String)).with_row_index("_row").with_columns(
            pl.col("_row").cast(pl.Int64), _line=pl.col("_row") + 2)

    plain_typed, plain_problems = parse(frame(False), "sessions", default_catalog())
    typed, problems = parse(frame(True), "sessions", default_catalog())
    assert typed.equals(plain_typed)
    assert problems.select("_row", "column", "rule").equals(plain_problems.select("_row", "column", "rule"))
