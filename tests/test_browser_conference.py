"""The Conference page in a real browser, where what a person types and clicks lives in
the browser alone (an open pop-up, a form's text, a cell of the agenda table): AppTest
cannot see those, so these tests drive `streamlit run app.py` with Chromium. The server,
the browser and their helpers are tests/test_browser.py's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.catalog import default_catalog
from core.conference import meetings
from core.store import Store
from tests.test_browser import (GRID_ROW_HEIGHT, _grid_header, _grid_rows, _observe, _open,  # noqa: F401
                                _problems, _settled, browser, demo_store, pytestmark)


@pytest.fixture
def conference(demo_store, tmp_path) -> tuple[Path, dict]:
    """A copy of the demo store with a conference of group-north (three cases)."""
    path = tmp_path / "store" / "demo.duckdb"
    path.parent.mkdir()
    shutil.copyfile(demo_store, path)
    store = Store(path)
    try:
        made = meetings.new_conference(store, default_catalog(), "group-north", cases=3, created_by="sup1")
    finally:
        store.close()
    return path, made


def _sign_in(page, user: str = "sup1") -> None:
    field = page.locator('[data-testid="stSidebar"] input[aria-label="Your user id"]')
    field.fill(user)
    field.press("Enter")
    _settled(page, "Conference")


def _order_cell(page, row: int):
    """Click the Order cell of an agenda row (0 = the first case): the table is a canvas."""
    table = page.locator('[data-testid="stMain"] [data-testid="stDataFrame"]').first
    box = table.locator('[data-testid="data-grid-canvas"]').bounding_box()
    page.mouse.click(box["x"] + 25, box["y"] + GRID_ROW_HEIGHT * (row + 1.5))
    return table


def _clients_in_order(table) -> list[str]:
    header = _grid_header(table)
    return [r[header.index("Client")] for r in _grid_rows(table)]


def test_an_order_number_is_the_position_the_case_moves_to(browser, conference, tmp_path):
    path, made = conference
    first, second, third = (i["client_id"] for i in made["agenda"])
    with _open(browser, path, tmp_path / "server", f"/conference?conference={made['id']}", "Conference") as (page,
                                                                                                          watch):
        _sign_in(page)
        table = _order_cell(page, 2)
        page.wait_for_timeout(300)  # the grid takes the focus
        page.keyboard.type("1")  # opens the cell's editor with "1"
        page.wait_for_timeout(300)  # an Enter before the editor is up is lost
        page.keyboard.press("Enter")
        for _ in range(100):  # the save reruns the page and the table is drawn anew
            page.wait_for_timeout(200)
            if _clients_in_order(table) != [first, second, third]:
                break
        _settled(page, "Conference")
        assert _clients_in_order(table) == [third, first, second]
        header = _grid_header(table)
        assert [r[header.index("Order")] for r in _grid_rows(table)] == ["1", "2", "3"]
        assert _problems(_observe(page), watch) == []
