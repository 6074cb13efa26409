"""Every page as each role sees it (AppTest with `at.user`): what it shows, and above all
what it must not show; the sign-in screens; sign-out that a copied cookie cannot undo."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from core.conference import meetings
from core.store import Store, close_all
from tests.conftest import ROOT, SYSTEM, as_user, signed_in
from tests.test_pages import PAGES

APP = str(ROOT / "app.py")
ALL_PAGES = [*PAGES, "admin"]
REFUSED = {"admin1": set(), "sup1": {"data", "admin"}, "th02": {"conference", "data", "admin"}}


@pytest.fixture(scope="module")
def with_conferences(demo_db):
    """A conference of group-north (the supervisor's and the trainee's group) and one of group-south."""
    from core.catalog import default_catalog
    store = Store(demo_db)
    for group in ("group-north", "group-south"):
        meetings.new_conference(store, default_catalog(), group, cases=3, scope=as_user("admin1"))
    store.close()
    return demo_db


def everything_shown(at: AppTest) -> str:
    """Every text a person can read on the page, the tables' cells and the charts' data included."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "text", "info", "warning", "error",
                 "success", "metric"):
        for element in getattr(at, kind):
            parts.append(str(getattr(element, "value", "")))
            parts.append(str(getattr(element, "label", "")))
    for frame in list(at.dataframe) + list(at.table):
        parts.append(frame.value.to_csv())
    for box in list(at.selectbox) + list(at.multiselect):
        parts.extend(str(o) for o in box.options)  # as shown: already formatted
    for chart in at.get("plotly_chart"):
        parts.append(chart.proto.spec)
    return "\n".join(parts)


def clients_of(db, therapists=None) -> set[str]:
    store = Store(db)
    try:
        rows = store.query("SELECT DISTINCT client_id, therapist_id FROM sessions", scope=SYSTEM)
    finally:
        store.close()
    return {c for c, t in rows.iter_rows() if therapists is None or t in therapists}


def open_as(db, monkeypatch, user: str, page: str | None, **query) -> AppTest:
    """`page` as `user` sees it; None: the app's first screen (app.py with its menu; a
    page switched to in AppTest runs without the router's sidebar)."""
    monkeypatch.setenv("CASECONF_DB", str(db))
    monkeypatch.setenv("CASECONF_DEMO", "0")
    at = AppTest.from_file(APP, default_timeout=120)
    signed_in(at, user)
    at.run()
    if page is None:
        return at
    for key, value in query.items():
        at.query_params[key] = value
    at.switch_page(f"pages/{page}.py")
    return at.run()


@pytest.mark.parametrize("user", ["admin1", "sup1", "th02"])
@pytest.mark.parametrize("page", ALL_PAGES)
def test_each_role_sees_only_its_cases_on_every_page(with_conferences, monkeypatch, user, page):
    db = with_conferences
    at = open_as(db, monkeypatch, user, page)
    close_all()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    if page in REFUSED[user]:
        assert errors == ["This page is not open to your role. Ask your admin if you need it."]
        return
    assert not errors, errors
    shown = everything_shown(at)
    if user == "admin1":
        return
    allowed = {"sup1": meetings.group_therapists(Store(db), "group-north"), "th02": ["th02"]}[user]
    close_all()
    others = clients_of(db) - clients_of(db, set(allowed))
    leaked = {c for c in others if re.search(rf"\b{re.escape(c)}\b", shown)}
    assert not leaked, sorted(leaked)[:5]
    if user == "th02":  # a trainee sees no peer's therapist id either
        peers = set(meetings.group_therapists(Store(db), "group-north")) - {"th02"}
        close_all()
        assert not {t for t in peers if re.search(rf"\b{t}\b", shown)}, page


def test_the_menu_shows_only_the_pages_a_role_may_open(with_conferences, monkeypatch):
    for user, refused in REFUSED.items():
        at = open_as(with_conferences, monkeypatch, user, None)
        links = {e.proto.label for e in at.sidebar.children.values() if e.type == "page_link"}
        assert links == {p.capitalize() for p in ALL_PAGES if p not in refused}, user
        assert any(f"Signed in as {user}" in c.value for c in at.sidebar.caption)
        close_all()


def test_a_trainee_presents_a_group_conference_by_labels_only(with_conferences, monkeypatch):
    at = open_as(with_conferences, monkeypatch, "th02", "present")
    close_all()
    assert not at.exception and not at.error
    assert re.search(r"Case [A-Z]", everything_shown(at))
    assert not at.sidebar.toggle  # the presenting therapist stays hidden: no switch to show them
    assert "group-south" not in " ".join(at.selectbox(key="present_conference").options)


def test_a_bookmark_to_another_case_shows_nothing_of_it(with_conferences, monkeypatch):
    other = sorted(clients_of(with_conferences) - clients_of(with_conferences, {"th02"}))[0]
    at = open_as(with_conferences, monkeypatch, "th02", "case", client=other)
    close_all()
    assert not at.exception
    assert any(other in w.value for w in at.warning)  # the link's own id is named, as a warning
    shown = everything_shown(at).replace(at.warning[0].value, "")
    assert other not in shown and not at.get("plotly_chart")  # and nothing of that case is shown


def test_an_unknown_subject_is_asked_to_see_the_admin(demo_db, monkeypatch):
    at = open_as(demo_db, monkeypatch, "stranger-7", "caseload")
    close_all()
    assert any("Ask your admin to add you" in w.value for w in at.warning)
    assert any("stranger-7" in t.value for t in at.text)
    assert not at.dataframe and not at.sidebar.get("page_link")


def test_a_real_store_without_sign_in_shows_one_sentence(demo_db, monkeypatch):
    monkeypatch.setenv("CASECONF_DB", str(demo_db))
    at = AppTest.from_file(APP, default_timeout=120).run()
    close_all()
    assert [w.value for w in at.warning] == [
        "Sign-in is not configured. Admin: add an [auth] section to .streamlit/secrets.toml (see "
        "secrets.toml.example) and add users with 'python -m core users add'."]
    assert not at.button and not at.dataframe


def test_the_demo_store_offers_one_demo_sign_in_per_role(tmp_path, monkeypatch):
    from core.importer import load_demo
    db = tmp_path / "demo.duckdb"
    store = Store(db)
    load_demo(store)
    store.close()
    monkeypatch.setenv("CASECONF_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=120).run()
    labels = [b.label for b in at.button]
    assert len(labels) == 3 and all(f"demo {role}" in " ".join(labels) for role in ("admin", "supervisor", "trainee"))
    at.button(key="demo_trainee").click().run()
    assert any("Signed in as demo-trainee (trainee)" in c.value for c in at.sidebar.caption)
    close_all()
    # Real data makes it a real store: the demo sign-in is gone for good.
    from core.importer import import_dataset
    store = Store(db)
    import_dataset(ROOT / "data" / "examples" / "messy_export.zip", store)
    store.close()
    at = AppTest.from_file(APP, default_timeout=120).run()
    close_all()
    assert not at.button


def test_after_sign_out_the_same_cookie_is_refused(demo_db, monkeypatch):
    at = open_as(demo_db, monkeypatch, "sup1", None)
    claims = dict(at.user)
    at.sidebar.button(key="caseconf_sign_out").click().run()
    close_all()
    # A copy of the cookie taken before sign-out: the same claims in a new browser session.
    again = AppTest.from_file(APP, default_timeout=120)
    signed_in(again, "sup1")
    again.user = claims
    again.run()
    close_all()
    assert any("This sign-in has ended" in w.value for w in again.warning)
    assert not again.dataframe
