"""Every page as a person uses it, through Streamlit's AppTest: it renders without an
exception, says what to do when data is missing, and its main widgets change what is shown."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.importer import import_dataset
from core.store import Store, close_all
from core.identity import add_user
from tests.conftest import ROOT, signed_in

APP = str(ROOT / "app.py")
PAGES = ["caseload", "case", "conference", "present", "calibration", "themes", "barriers", "data", "catalog"]


def admin_app() -> AppTest:
    """The app signed in as an admin (a user of the store under test)."""
    at = AppTest.from_file(APP, default_timeout=120)
    signed_in(at, "admin1")
    return at.run()


def open_page(at: AppTest, name: str, **query) -> AppTest:
    for key, value in query.items():
        at.query_params[key] = value
    at.switch_page(f"pages/{name}.py")
    return at.run()


def caption_text(at: AppTest) -> str:
    return " ".join(c.value for c in at.caption)


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("name", PAGES)
def test_every_page_renders_without_an_exception(app, name):
    at = app.run()
    at = open_page(at, name)
    no_errors(at)
    assert at.title[0].value == name.capitalize()


def caseload_rows(at) -> list[str]:
    """The cases the caseload lists, in order: each row's link to its case."""
    return [e.proto.label for e in at.main.get("page_link") if e.proto.label.startswith("c")]


def test_the_caseload_lists_cases_by_priority_and_the_filters_narrow_it(app):
    at = app.run()
    no_errors(at)
    ranks = [int(t.value) for t in at.text if t.value.isdigit()]
    assert caseload_rows(at) and ranks == sorted(ranks)
    everything = caption_text(at)
    at.selectbox(key="caseload_group").set_value("group-north").run()
    no_errors(at)
    assert caption_text(at) != everything
    at.multiselect(key="caseload_flags").set_value(["rupture_not_repaired"]).run()
    assert set(caseload_rows(at)) == {"c015", "c027"}  # group-north's unrepaired ruptures
    # Every reason in full, one line per flag, as text (never Markdown).
    whys = [t.value for t in at.text if not t.value.isdigit()]
    assert len(whys) == 2 and all("fell from" in why for why in whys)
    assert all("\n" in why and " | " not in why for why in whys)


def test_the_case_page_draws_only_the_open_tab(app):
    """A case's first screen made and sent every tab's charts (six figures) before anyone
    opened a tab; now the overview and the open tab's, and a click on a tab draws its own."""
    at = open_page(app.run(), "case", client="c015")
    no_errors(at)
    assert len(at.get("plotly_chart")) == 2 and at.radio(key="case_alliance")
    at.session_state["case_tab"] = "Themes"
    at.run()
    no_errors(at)
    assert len(at.get("plotly_chart")) == 3  # the overview, the theme timeline and the CCRT
    assert not [r for r in at.radio if r.key == "case_alliance"]


def test_a_closed_tabs_instrument_choice_is_kept(app):
    at = open_page(app.run(), "case", client="c027")
    at.radio(key="case_alliance").set_value("WAI-SR").run()
    for tab in ("Themes", "Alliance"):
        at.session_state["case_tab"] = tab
        at.run()
        no_errors(at)
    assert at.radio(key="case_alliance").value == "WAI-SR"


def test_a_case_opens_from_its_link_and_shows_its_flags_and_charts(app):
    at = open_page(app.run(), "case", client="c015")
    no_errors(at)
    assert at.selectbox(key="case_client").value == "c015"
    flags = at.table[0].value
    assert "Alliance rupture\\, not repaired" in set(flags["Flag"])  # the catalog's words, escaped for st.table
    assert len(at.get("plotly_chart")) == 2  # the overview and the open tab's (Alliance) chart
    before = at.get("plotly_chart")[1].proto.spec
    at.radio(key="case_alliance").set_value("WAI-SR").run()
    no_errors(at)
    assert at.get("plotly_chart")[1].proto.spec != before


def test_a_client_with_one_session_and_no_ratings_gets_sentences_not_errors(tmp_path, monkeypatch):
    from tests.conftest import write_csv
    store = Store(tmp_path / "one.duckdb")
    write_csv(tmp_path / "x", "sessions", "client_id,therapist_id,session_number\nsolo,t1,0\n")
    import_dataset(tmp_path / "x", store)
    add_user(store, "admin1", "admin")
    store.close()
    monkeypatch.setenv("CASECONF_DB", str(tmp_path / "one.duckdb"))
    monkeypatch.setenv("CASECONF_DEMO", "0")
    at = open_page(admin_app(), "case", client="solo")
    no_errors(at)
    infos = [i.value for i in at.info]
    at.session_state["case_tab"] = "Outcome"  # only the open tab is drawn
    at.run()
    no_errors(at)
    infos = " ".join(infos + [i.value for i in at.info])
    assert "No alliance ratings" in infos and "No outcome scores" in infos
    close_all()


@pytest.mark.parametrize("name", ["caseload", "case", "themes", "barriers"])
def test_an_empty_store_says_what_to_do(tmp_path, monkeypatch, name):
    monkeypatch.setenv("CASECONF_DB", str(tmp_path / "empty.duckdb"))
    monkeypatch.setenv("CASECONF_DEMO", "0")
    store = Store(tmp_path / "empty.duckdb")
    add_user(store, "admin1", "admin")
    store.close()
    at = open_page(admin_app(), name)
    no_errors(at)
    assert any("import" in i.value.lower() for i in at.info)
    close_all()


def test_themes_widgets_change_the_charts(app):
    at = open_page(app.run(), "themes")
    no_errors(at)
    before = at.get("plotly_chart")[1].proto.spec
    at.selectbox(key="themes_pattern_kind").set_value("transference").run()
    no_errors(at)
    assert at.get("plotly_chart")[1].proto.spec != before


def test_barrier_notes_search_narrows_the_list(app):
    at = open_page(app.run(), "barriers")
    no_errors(at)
    notes_before = at.dataframe[0].value
    at.text_input(key="barriers_search").set_value("interpreter").run()
    no_errors(at)
    notes = at.dataframe[0].value
    assert 0 < len(notes) < len(notes_before)
    assert all("interpreter" in n.lower() for n in notes["note"])


def test_data_page_shows_the_quarantine_and_the_history(app):
    at = open_page(app.run(), "data")
    no_errors(at)
    frames = [d.value for d in at.dataframe]
    quarantine = next(f for f in frames if "problems" in f.columns)
    assert len(quarantine) == 16  # the messy example's planted problems (data/examples/README.md)
    assert quarantine["file"].str.startswith("messy_export.zip").all()
    history = next(f for f in frames if "File" in f.columns)
    assert list(history["File"]) == ["messy_export.zip", "demo dataset"]


def test_catalog_page_lists_every_instrument_with_its_source(app):
    at = open_page(app.run(), "catalog")
    # Wrapped static tables (a grid of every column was cut off at the right), shown as text.
    instruments, sources = at.table[0].value, at.table[1].value
    assert {"SRS", "WAI\\-SR", "ORS", "PHQ\\-9", "BDI\\-II"} <= set(instruments["instrument"])
    assert "source" not in instruments.columns and sources["source"].str.len().min() > 0


def test_a_host_app_mounts_the_pages_under_its_prefix(demo_db, monkeypatch):
    monkeypatch.setenv("CASECONF_DB", str(demo_db))
    monkeypatch.setenv("CASECONF_DEMO", "0")
    at = AppTest.from_file(str(ROOT / "tests" / "host" / "host_app.py"), default_timeout=120)
    signed_in(at, "admin1")  # the host's [auth] and the same sign-in as the standalone app
    at.run()
    no_errors(at)
    assert at.title[0].value == "Clinic intranet"
    at.switch_page(str(ROOT / "pages" / "caseload.py")).run()
    no_errors(at)
    assert at.title[0].value == "Caseload"
    close_all()


def test_data_page_draws_a_bounded_report_and_offers_the_whole_one(tmp_path, monkeypatch):
    from core.report import REPORT_EXAMPLES
    many = REPORT_EXAMPLES + 30
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "sessions.csv").write_text("client_id,therapist_id,session_number\n"
                                         + "".join(f"c{i},t1,x\n" for i in range(many)) + "c0,t1,0\n")
    db = tmp_path / "s.duckdb"
    store = Store(db)
    result = import_dataset(folder, store)
    add_user(store, "admin1", "admin")
    store.close()
    monkeypatch.setenv("CASECONF_DB", str(db))
    monkeypatch.setenv("CASECONF_DEMO", "0")
    at = AppTest.from_file(APP, default_timeout=120)
    signed_in(at, "admin1")
    at.session_state["last_import"] = result
    try:
        at = open_page(at.run(), "data")
        no_errors(at)
        report = next(d.value for d in at.dataframe if "message" in d.value.columns)
        assert len(report) == REPORT_EXAMPLES
        assert f"{many} problem(s) in {many} quarantined row(s)" in caption_text(at)
        assert [b.label for b in at.get("download_button")] == ["Download the report (CSV)"]
    finally:
        close_all()


def test_the_data_page_names_the_accepted_types_and_reads_its_history_in_words(app):
    at = open_page(app.run(), "data")
    no_errors(at)
    uploader = at.get("file_uploader")[0]
    assert ".zip, .xlsx, .csv or .parquet" in uploader.proto.label
    history = at.dataframe[-1].value
    assert list(history.columns) == ["Import", "When", "By", "File", "Loaded", "Quarantined", "New", "Updated"]
    demo = history[history["File"] == "demo dataset"].iloc[0]
    assert demo["By"] == "demo" and "sessions 1,050" in demo["Loaded"] and "{" not in demo["Loaded"]
    assert demo["When"].endswith(" UTC") and ":00:00" not in demo["When"]


def test_every_chart_of_a_case_puts_a_session_where_its_overview_does(app):
    """The detail tabs drew their own session axis: c027's WAI-SR (rated from session 3 on)
    ran from 2.4 to 11.6 under an overview from -0.6 to 12.6, so session 10 sat elsewhere."""
    import json
    at = open_page(app.run(), "case", client="c027")
    at.radio(key="case_alliance").set_value("WAI-SR").run()
    no_errors(at)
    ranges = {}
    for tab in ("Alliance", "Outcome", "Themes", "Barriers"):  # only the open tab is drawn
        at.session_state["case_tab"] = tab
        at.run()
        no_errors(at)
        for chart in at.get("plotly_chart"):
            layout = json.loads(chart.proto.spec)["layout"]
            title = layout.get("title", {}).get("text", "")
            ranges[title] = {tuple(v["range"]) for k, v in layout.items() if k.startswith("xaxis") and v.get("range")}
    overview = [r for title, r in ranges.items() if title.startswith("Case overview")]
    assert len(overview) == 1 and len(overview[0]) == 1, ranges
    details = {t: r for t, r in ranges.items()
               if t.startswith(("Alliance:", "Outcome:", "Themes over the sessions", "Communication barriers"))}
    assert len(details) == 4, list(ranges)
    assert all(r == overview[0] for r in details.values()), ranges
