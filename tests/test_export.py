"""Downloaded CSV files cannot run formulas in a spreadsheet."""

import io

import polars as pl
import pytest

from core.export import csv_bytes, neutralise, safe_frame


@pytest.mark.parametrize("text", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", "\0x", "=HYPERLINK(\"http://x\")"])
def test_a_cell_that_could_be_a_formula_is_made_text(text):
    assert neutralise(text) == "'" + text
    assert safe_frame(pl.DataFrame({"note": [text]}))["note"][0] == "'" + text


@pytest.mark.parametrize("text", ["plain", "Client said 1+1", "", None, "a=b"])
def test_ordinary_text_is_left_alone(text):
    assert neutralise(text) == text
    assert safe_frame(pl.DataFrame({"note": [text]}, schema={"note": pl.String}))["note"][0] == text


def test_numbers_stay_numbers_and_the_file_reads_back():
    frame = pl.DataFrame({"line": [2, -3], "message": ["=danger", "fine"]})
    data = csv_bytes(frame)
    assert data.startswith("\ufeff".encode("utf-8"))
    back = pl.read_csv(io.BytesIO(data[3:]))
    assert back["line"].to_list() == [2, -3]
    assert back["message"].to_list() == ["'=danger", "fine"]
