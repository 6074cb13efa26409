"""The one place `core` meets Streamlit: the store as an `st.connection`, cached reads, and the pages.

Everything else in `core` is plain Python; the page scripts in `pages/` only draw what
the functions here return.

- `connection()`: the DuckDB store as a custom `st.connection` (`CaseStoreConnection`),
  one per process and database file (cached by Streamlit, and `open_store` keeps one
  DuckDB connection per file); every query takes its own cursor.
- `read(name, ...)`: every page's data goes through one `st.cache_data` function keyed
  by the database file, the store's *generation* (the latest import's batch number),
  the reader's scope and the arguments. An import makes a new generation, so nothing
  stale is ever shown; `clear_cache()` also frees the old entries at once.
- `pages(prefix)`: the pages as `st.Page` objects, for this app's `st.navigation` and for
  a host app that mounts the tool under its own URL prefix (the plugin).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import polars as pl
import streamlit as st
from streamlit.connections import BaseConnection

from . import charts, views
from .access import EVERYTHING, Scope
from .analytics import barriers as barrier_analytics
from .analytics import expected, ruptures, themes, triage
from .catalog import Catalog, default_catalog
from .conference import meetings, presentation
from .store import Store, batches, default_path, open_store

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"
DEMO_ENV = "CASECONF_DEMO"


class CaseStoreConnection(BaseConnection[Store]):
    """The case-conference store (a DuckDB file) as a Streamlit connection.

    The file: `[connections.caseconf] path = "..."` in secrets.toml, else CASECONF_DB,
    else data/caseconf.duckdb. On first use an empty
    store gets the bundled demo data when `demo_if_empty` is true (the default, so
    `streamlit run app.py` shows something; a clinic sets it false in secrets.toml or
    CASECONF_DEMO=0).
    """

    def _connect(self, **kwargs: Any) -> Store:
        settings = {**kwargs, **self._secrets.to_dict()}  # the server's secrets.toml wins
        store = open_store(settings.get("path") or default_path())
        demo = settings.get("demo_if_empty", os.environ.get(DEMO_ENV, "1") not in ("0", "false", "no"))
        if demo:
            from .importer import load_demo
            load_demo(store, only_if_empty=True)
        return store

    @property
    def store(self) -> Store:
        if self._instance.closed:  # closed under us (a test, a maintenance script): open it again
            self.reset()
        return self._instance

    def generation(self) -> int:
        """The latest import's batch number: changes whenever the data does."""
        return int(self.store.scalar("SELECT coalesce(max(batch_id), 0) FROM batches") or 0)

    def query(self, sql: str, params=None, scope: Scope = EVERYTHING) -> pl.DataFrame:
        return self.store.query(sql, params, scope)


def connection() -> CaseStoreConnection:
    # The path is part of the key, so a process serving two stores keeps two connections.
    return st.connection("caseconf", type=CaseStoreConnection, path=str(default_path()))


def catalog() -> Catalog:
    return default_catalog()


USER_KEY = "caseconf_user"


def current_user() -> str | None:
    """The pseudonymous id of the person at the keyboard, for the author of a note.

    With a login configured on the server (`st.login`), the claim named by
    `[connections.caseconf] user_claim` (default "sub"); otherwise the id the person gives
    in the sidebar for this browser session (`ask_user`). None until one is known."""
    try:
        if st.user.is_logged_in:
            claim = connection()._secrets.to_dict().get("user_claim", "sub")
            return str(st.user.get(claim) or st.user.get("sub"))
    except Exception:  # no auth configured on this server
        pass
    return st.session_state.get(USER_KEY) or None


def ask_user() -> str | None:
    """A sidebar field for the person's pseudonymous user id when the server has no login;
    refuses an id that looks like a name, an e-mail address or a number that identifies
    (`meetings.checked_user`, the check every saved author passes)."""
    user = current_user()
    if user and USER_KEY not in st.session_state:
        return user  # from the login
    typed = st.sidebar.text_input("Your user id", key="caseconf_user_input",
                                  value=st.session_state.get(USER_KEY, ""),
                                  help="Pseudonymous (e.g. sup1, th-07): it is saved with your notes and decisions.")
    if not typed.strip():
        return None
    try:
        typed = meetings.checked_user(typed)
    except meetings.ConferenceError as err:
        st.sidebar.error(str(err))
        st.session_state.pop(USER_KEY, None)
        return None
    st.session_state[USER_KEY] = typed
    return typed


def scope() -> Scope:
    """The reader's scope. Access control decides it; until then every case is visible."""
    return st.session_state.get("caseconf_scope", EVERYTHING)


# ----------------------------------------------------------------------------- cached reads
# Each entry takes (store, catalog, scope, *args, **kwargs). Only what a page draws leaves
# these functions: aggregates, one client's series, or one page of a long list.

def _triage(store, cat, sc):
    return triage.triage(store, cat, sc)


def _sparklines(store, cat, sc, client_ids: tuple[str, ...], instrument: str = "SRS"):
    """The client-rated alliance totals of a page of clients, as one list per client."""
    return store.query("SELECT client_id, list(score ORDER BY session_number) AS alliance FROM ratings "
                       "WHERE instrument = $i AND scale = 'total' AND rater = 'client' "
                       "AND client_id IN (SELECT unnest($c::VARCHAR[])) GROUP BY client_id",
                       {"i": instrument, "c": list(client_ids)}, scope=sc)


READS: dict[str, Callable] = {
    "triage": _triage,
    "case_parts": lambda store, cat, sc, client_id: views.case_parts(store, cat, client_id, sc),
    "client_ids": lambda store, cat, sc: store.query("SELECT DISTINCT client_id FROM sessions ORDER BY 1",
                                                     scope=sc)["client_id"].to_list(),
    "sparklines": _sparklines,
    "discrepancy": lambda store, cat, sc, **kw: ruptures.alliance_discrepancy(store, cat, sc, **kw),
    "track": lambda store, cat, sc, **kw: expected.track_colours(store, cat, sc, **kw),
    "pervasiveness": lambda store, cat, sc, **kw: themes.pervasiveness(store, cat, sc, **kw),
    "ccrt": lambda store, cat, sc, **kw: themes.ccrt(store, cat, sc, **kw),
    "therapist_patterns": lambda store, cat, sc, **kw: themes.therapist_patterns(store, cat, sc, **kw),
    "ccrt_triads": lambda store, cat, sc, **kw: themes.ccrt_triads(store, cat, sc, **kw),
    "barrier_caseload": lambda store, cat, sc: barrier_analytics.barrier_caseload(store, cat, sc),
    "barrier_effect": lambda store, cat, sc, **kw: barrier_analytics.barrier_alliance_effect(store, cat, sc, **kw),
    "barrier_notes": lambda store, cat, sc, **kw: barrier_analytics.barrier_notes(store, sc, **kw),
    "barrier_by_session": lambda store, cat, sc: barrier_analytics.barrier_by_session(store, sc),
    "batches": lambda store, cat, sc, limit=50: batches(store, limit),
    "group_triage": lambda store, cat, sc, group: triage.triage(store, cat, meetings.group_scope(store, group)),
    "group_views": lambda store, cat, sc, group, therapist_id, hide_therapist=True: presentation.group_views(
        store, cat, group, therapist_id, hide_therapist=hide_therapist),
}


@st.cache_data(show_spinner=False, max_entries=512, ttl=3600)
def _cached(name: str, path: str, generation: int, therapist_ids: tuple[str, ...] | None, args: tuple,
            kwargs: tuple):
    sc = EVERYTHING if therapist_ids is None else Scope.therapists(therapist_ids)
    return READS[name](open_store(path), catalog(), sc, *args, **dict(kwargs))


def _cache_key() -> tuple[str, int, tuple[str, ...] | None]:
    """What every cached read depends on: the store file, its generation, the reader's scope."""
    conn = connection()
    sc = scope()
    return str(conn.store.path), conn.generation(), None if sc.is_everything else tuple(sorted(sc.therapist_ids))


def read(name: str, *args, **kwargs):
    """The result of READS[name] for the current store, generation and scope (cached)."""
    return _cached(name, *_cache_key(), args, tuple(sorted(kwargs.items())))


# Figures drawn from one cached read over the whole caseload: building a Plotly figure of
# a large caseload costs more than reading it, so the figure is cached too.
FIGURES: dict[str, tuple[str, Callable]] = {
    "pervasiveness": ("pervasiveness", lambda data, cat, kind: charts.pervasiveness_chart(data, cat, kind=kind)),
    "therapist_patterns": ("therapist_patterns", lambda data, cat: charts.therapist_pattern_chart(data, cat)),
    "ccrt_sankey": ("ccrt_triads", lambda data, cat: charts.ccrt_sankey(data)),
    "barrier_effect": ("barrier_effect",
                       lambda data, cat, instrument: charts.barrier_alliance_chart(data, cat.instruments[instrument])),
    "barriers_over_time": ("barrier_by_session", lambda data, cat: charts.barrier_categories_over_time(data, cat)),
    "barriers_unaddressed": ("barrier_caseload", lambda data, cat: charts.barrier_unaddressed_chart(data)),
}


@st.cache_data(show_spinner=False, max_entries=128, ttl=3600)
def _figure(name: str, path: str, generation: int, therapist_ids, read_kwargs: tuple, chart_kwargs: tuple):
    read_name, build = FIGURES[name]
    return build(_cached(read_name, path, generation, therapist_ids, (), read_kwargs), catalog(), **dict(chart_kwargs))


def figure(name: str, read_kwargs: dict | None = None, **chart_kwargs):
    """FIGURES[name] for the current store, generation and scope (cached)."""
    return _figure(name, *_cache_key(), tuple(sorted((read_kwargs or {}).items())),
                   tuple(sorted(chart_kwargs.items())))


def clear_cache() -> None:
    """After an import: drop every cached read and figure at once (the new generation
    would miss them anyway)."""
    _cached.clear()
    _figure.clear()


_MARKDOWN_PUNCTUATION = r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])"""


def text_table(frame: pl.DataFrame) -> None:
    """A small static table whose cells wrap, shown as text: `st.table` reads Markdown in
    its cells, so every ASCII punctuation mark in a text cell is backslash-escaped (GitHub
    Markdown shows an escaped mark as itself): no emphasis, link, HTML, LaTeX or
    Streamlit directive can come out of a cell."""
    texts = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    st.table(frame.with_columns(pl.col(texts).str.replace_all(_MARKDOWN_PUNCTUATION, r"\$1")) if texts else frame,
             hide_index=True)


def chart(figure, key: str) -> None:
    """Draw a figure from `core.charts` with its own theme (Streamlit's would replace the
    projector-sized fonts and the colour-blind-safe palette), full width, no Plotly logo."""
    st.plotly_chart(figure, theme=None, width="stretch", key=key,
                    config={"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]})


# ----------------------------------------------------------------------------- pages

PAGES = (  # name (= file stem = URL path), title, icon
    ("caseload", "Caseload", ":material/groups:"),
    ("case", "Case", ":material/person:"),
    ("conference", "Conference", ":material/event_note:"),
    ("present", "Present", ":material/co_present:"),
    ("calibration", "Calibration", ":material/balance:"),
    ("themes", "Themes", ":material/psychology:"),
    ("barriers", "Barriers", ":material/forum:"),
    ("data", "Data", ":material/upload_file:"),
    ("catalog", "Catalog", ":material/menu_book:"),
)
_registry: dict[str, st.Page] = {}


def pages(prefix: str = "") -> list[st.Page]:
    """The tool's pages for `st.navigation`. A host app passes a `prefix` (e.g.
    "conference") so the URLs become /conference-caseload, /conference-case, ...

    Without a prefix each URL path equals its file name in `pages/`: with a `pages/`
    folder next to the entry script, a freshly started server answers a deep link in
    Streamlit's legacy pages-folder mode, which finds a page by its file name only (a page
    whose URL differs from its file name gets "Page not found", Streamlit issue 9992; see
    `ensure_navigation`). Streamlit serves the default page at "/" only, so /caseload
    would be "Page not found" too: the default page is a hidden one that opens Caseload."""
    made = []
    for name, title, icon in PAGES:
        url = f"{prefix}-{name}" if prefix else name
        page = st.Page(PAGES_DIR / f"{name}.py", title=title, icon=icon, url_path=url)
        _registry[name] = page
        made.append(page)
    if not prefix:  # a host app has its own default page
        made.append(st.Page(_home, title=PAGES[0][1], icon=PAGES[0][2], url_path="home", default=True,
                            visibility="hidden"))
    return made


def _home() -> None:
    """The root URL: open the first page at its own URL (/caseload), which a bookmark keeps."""
    st.switch_page(page(PAGES[0][0]))


def navigation_menu() -> None:
    """The app's page menu, drawn at the top of the sidebar by app.py. The app's
    `st.navigation` is hidden and draws this menu instead: with a `pages/` folder next to
    app.py, Streamlit would otherwise show a menu of file names for a moment when a deep
    link is a freshly started server's first request (see `ensure_navigation`), and the
    setting that hides that menu (`client.showSidebarNavigation`) hides st.navigation's
    own menu too."""
    for name, title, icon in PAGES:
        st.sidebar.page_link(page(name), label=title, icon=icon)


def ensure_navigation() -> None:
    """Called first by every page: make sure the page runs inside the app's `st.navigation`.

    With a `pages/` folder next to the entry script, a freshly started server runs in
    Streamlit's legacy pages-folder mode until some script calls `st.navigation`: a deep
    link as its first request (/caseload after a restart) runs pages/caseload.py on its
    own, without app.py (no page config, the file names as navigation, and `page()` knows
    no page, so opening a case fails). Calling `st.navigation` ends that mode for the whole
    server; the rerun then goes through app.py to the same page, as its URL path equals
    its file name. Once any session has run app.py (or a host app), this does nothing."""
    if not _registry:
        st.navigation(pages(), position="hidden")
        st.rerun()


def page(name: str) -> st.Page:
    """The page object called `name` ("case", ...), for st.switch_page and st.page_link."""
    return _registry[name]


def stop_without_cases() -> None:
    """On an empty store: say what to do, link to the Data page, and end the page here."""
    st.info("No cases yet. Import an export on the Data page, or load the demo data there.")
    st.page_link(page("data"), label="Go to the Data page", icon=":material/upload_file:")
    st.stop()


def open_case(client_id: str) -> None:
    st.switch_page(page("case"), query_params={"client": client_id})
