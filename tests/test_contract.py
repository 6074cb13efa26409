"""core/contract.py and CONTRACT.md name the same tables and columns, and the store,
validation, readers, importer and access take their table lists from the contract."""

from __future__ import annotations

import re

import pytest

from core import access, contract, importer, readers, store, validate
from core.catalog import default_catalog
from tests.conftest import SHARED


def _documented() -> dict[str, set[str]]:
    """Table -> columns, from CONTRACT.md's tables and its extensions."""
    text = (SHARED / "CONTRACT.md").read_text(encoding="utf-8")
    found: dict[str, set[str]] = {}
    for section in re.split(r"^(?=##)", text, flags=re.M):
        if not section.startswith("### "):
            continue
        table = section.split()[1]
        for row in re.findall(r"^\| ([a-z_, ]+) \|", section, flags=re.M):
            if row.strip() != "column":
                found.setdefault(table, set()).update(c.strip() for c in row.split(","))
    for table, column in re.findall(r"^- `([a-z_]+)\.([a-z_]+)` - optional", text, flags=re.M):
        found.setdefault(table, set()).add(column)
    return found


def test_the_contract_module_names_what_contract_md_names():
    documented = _documented()
    assert set(documented) == set(contract.TABLES)
    for name, table in contract.CONTRACT.items():
        assert {c.name for c in table.columns} == documented[name], name


@pytest.mark.parametrize("name", contract.TABLES)
def test_every_table_list_is_the_contracts(name):
    table = contract.CONTRACT[name]
    assert store.KEYS[name] == table.key
    assert list(store.COLUMNS[name]) == [c.name for c in table.columns if c.stored]
    assert validate.SPECS[name] == table.columns
    assert validate.FREE_TEXT.get(name, ()) == table.free_text
    assert set(validate.schema_for(name, default_catalog()).columns) == set(store.COLUMNS[name])
    assert name in readers.TABLES and name in importer.IMPORT_ORDER
    assert (name in access.SESSION_TABLES) == (name in importer.SESSION_TABLES) == table.points_at_session


def test_absolute_dates_are_read_but_never_stored():
    assert "session_date" in {c.name for c in validate.SPECS["sessions"]}
    assert all("session_date" not in columns for columns in store.COLUMNS.values())


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown kind"):
        contract.Column("x", "decimal")
