"""The closing-note figure: demo cases per flag code at several versions (tests/flag_counts.py)."""

from tests.flag_counts import counts_at, table


def test_the_table_has_a_row_per_code_any_version_knows_and_a_dash_where_one_does_not():
    old = {"cases": 60, "codes": {"harmed": 1}, "known": ["harmed", "sudden_gain"]}
    new = {"cases": 60, "codes": {"harmed": 2, "risk": 3}, "known": ["harmed", "sudden_gain", "risk"]}
    lines = table({"before": old, "after": new}).splitlines()
    assert lines[0].split() == ["flag", "code", "before", "after"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert rows == {"harmed": ["1", "2"], "sudden_gain": ["0", "0"], "risk": ["-", "3"]}


def test_the_working_tree_counts_every_flag_code_and_each_new_one_in_two_demo_cases():
    found = counts_at(".")
    assert found["cases"] == 60 and set(found["codes"]) <= set(found["known"])
    assert all(0 < n <= found["cases"] for n in found["codes"].values())
    for code in ("risk", "attendance", "lost_contact", "boundary"):  # issue 14: two demo cases or more
        assert found["codes"].get(code, 0) >= 2, code
