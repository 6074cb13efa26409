"""The Conference page in a real browser, where what a person types and clicks lives in
the browser alone (an open pop-up, a form's text, a cell of the agenda table): AppTest
cannot see those, so these tests drive `streamlit run app.py` with Chromium. The server,
the browser and their helpers are tests/test_browser.py's."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.catalog import default_catalog
from core.conference import meetings, notes
from core.store import Store, copy_store
from tests.conftest import as_user
from tests.test_browser import (GRID_ROW_HEIGHT, _grid_header, _grid_rows, _main_text, _observe, _open,  # noqa: F401
                                _problems, _settled, browser, demo_store, pytestmark)


@pytest.fixture
def conference(demo_store, tmp_path) -> tuple[Path, dict]:
    """A copy of the demo store with a conference of group-north (three cases)."""
    path = tmp_path / "store" / "demo.duckdb"
    path.parent.mkdir()
    copy_store(demo_store, path)
    store = Store(path)
    try:
        made = meetings.new_conference(store, default_catalog(), "group-north", cases=3, scope=as_user("sup1"))
    finally:
        store.close()
    return path, made


def _sign_in(page) -> None:
    """The page was opened signed in (the demo admin: `test_browser._goto`); wait for it."""
    _settled(page, "Conference")


def _section(page, name: str) -> None:
    page.locator('[data-testid="stMain"] [data-testid="stButtonGroup"] button', has_text=name).click()
    _settled(page, "Conference")


def test_deleting_a_note_names_it_and_closes_its_pop_up(browser, conference, tmp_path):
    path, made = conference
    client = made["agenda"][0]["client_id"]
    store = Store(path)
    for text in ("The group noticed the rupture was never named.", "Try a repair conversation first."):
        notes.save_entry(store, made["id"], client, kind="note", text=text, scope=as_user("sup1"))
    store.close()
    with _open(browser, path, tmp_path / "server", f"/conference?conference={made['id']}", "Conference") as (page,
                                                                                                          watch):
        _sign_in(page)
        _section(page, "Notes and decisions")
        main = page.locator('[data-testid="stMain"]')
        main.locator('[data-testid="stPopover"] button').first.click()
        body = page.locator('[data-testid="stPopoverBody"]')
        body.wait_for()
        assert "The group noticed the rupture was never named." in body.inner_text()  # it names the note
        body.locator("input").fill("written twice")
        body.locator("input").press("Tab")
        body.get_by_role("button", name="Delete this note").click()
        main.get_by_text("The group noticed the rupture was never named.").wait_for(state="detached")
        _settled(page, "Conference")
        assert page.locator('[data-testid="stPopoverBody"]').count() == 0, "a delete pop-up is still open"
        left = [box.input_value() for box in main.locator('[data-testid="stTextArea"] textarea').all()]
        assert left[:1] == ["Try a repair conversation first."] and "Note 2" not in _main_text(page)
        assert _problems(_observe(page), watch) == []


def test_a_refused_note_keeps_the_typed_text(browser, conference, tmp_path):
    path, made = conference
    typed = "The group thought the rupture was about the move. Her sister Mary Jones phoned on 07700 900123."
    with _open(browser, path, tmp_path / "server", f"/conference?conference={made['id']}", "Conference") as (page,
                                                                                                          watch):
        _sign_in(page)
        _section(page, "Notes and decisions")
        box = page.locator('[data-testid="stMain"] textarea[aria-label="New note"]')
        box.fill(typed)
        page.get_by_role("button", name="Save the note").click()
        page.locator('[data-testid="stAlertContentError"]', has_text="identifying details").wait_for()
        _settled(page, "Conference")
        assert box.input_value() == typed, "the refused paragraph was lost"


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


def test_a_refused_reason_for_adding_a_case_keeps_the_typed_text(browser, conference, tmp_path):
    path, made = conference
    typed = "The therapist asked for time; the mother, Mrs Okafor, phoned on 07700 900123."
    with _open(browser, path, tmp_path / "server", f"/conference?conference={made['id']}", "Conference") as (page,
                                                                                                          watch):
        _sign_in(page)
        box = page.locator('[data-testid="stMain"] textarea[aria-label="Why"]')
        box.fill(typed)
        page.get_by_role("button", name="Add to the agenda").click()
        page.locator('[data-testid="stAlertContentError"]', has_text="identifying details").wait_for()
        _settled(page, "Conference")
        assert box.input_value() == typed, "the refused reason was lost"


def test_a_refused_reason_for_taking_a_case_off_keeps_the_typed_text(browser, conference, tmp_path):
    path, made = conference
    typed = "Seen privately; her husband John Smith phoned on 07700 900123."
    with _open(browser, path, tmp_path / "server", f"/conference?conference={made['id']}", "Conference") as (page,
                                                                                                          watch):
        _sign_in(page)
        box = page.locator('[data-testid="stMain"] input[aria-label="Why (kept with the agenda)"]')
        box.fill(typed)
        page.get_by_role("button", name="Take off the agenda").click()
        page.locator('[data-testid="stAlertContentError"]', has_text="identifying details").wait_for()
        _settled(page, "Conference")
        assert box.input_value() == typed, "the refused reason was lost"
