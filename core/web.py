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
import dataclasses
import hashlib
import importlib
import secrets
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import polars as pl
import streamlit as st
from streamlit.connections import BaseConnection

from . import PAGES_DIR, charts, views
from . import audit, identity, links
from .access import AccessDenied, Scope
from .analytics import barriers as barrier_analytics
from .analytics import expected, ruptures, themes, triage
from .catalog import Catalog, default_catalog
from .conference import meetings, presentation
from .store import Store, batches, default_path, open_store

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
        # Unpacked uploads a crashed server left behind (unscanned notes among them) go first.
        from .scratch import cleanup_stale_temp
        cleanup_stale_temp()
        # Server mode: `postgres` (the shared state) and `snapshots` (the shared data folder).
        store = open_store(settings.get("path") or default_path(), postgres=settings.get("postgres"),
                           snapshots=settings.get("snapshots"))
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

    def generation(self) -> str:
        """The data's generation (the current snapshot's name): read again from the store
        on every rerun, so an import made by the command line or another server shows at
        this session's next rerun, and no cached read outlives the data it came from."""
        return self.store.generation()

    def query(self, sql: str, params=None, *, scope: Scope) -> pl.DataFrame:
        return self.store.query(sql, params, scope)


def connection() -> CaseStoreConnection:
    # The path is part of the key, so a process serving two stores keeps two connections.
    return st.connection("caseconf", type=CaseStoreConnection, path=str(default_path()))


def catalog() -> Catalog:
    return default_catalog()


def settings() -> dict:
    """The server's `[connections.caseconf]` settings (secrets.toml)."""
    try:
        return connection()._secrets.to_dict()
    except Exception:  # no secrets file at all
        return {}


# ----------------------------------------------------------------------------- sign-in
# Who is at the keyboard comes from the server only: Streamlit's OIDC sign-in (`st.login`,
# configured by the standard [auth] section of secrets.toml), or a trusted header set by
# the clinic's reverse proxy (`[connections.caseconf] trusted_header`, off by default), or
# on the demo store alone, a demo sign-in. The identity is looked up in the store and its
# scope resolved again on every rerun, so a changed role or group counts at once.

PAGE_ROLES = {  # who may open which page (every read on it is scoped besides)
    "caseload": identity.ROLES, "case": identity.ROLES, "conference": ("admin", "supervisor"),
    "present": identity.ROLES, "calibration": identity.ROLES, "themes": identity.ROLES,
    "barriers": identity.ROLES, "data": ("admin",), "catalog": identity.ROLES, "admin": ("admin",),
}
_SIGNED = "caseconf_signed_in"      # session_state: the SignedIn of this browser session
_DEMO = "caseconf_demo_subject"     # session_state: the demo user chosen with a demo button
DEFAULT_MAX_AGE_HOURS = 12


@dataclass(frozen=True)
class SignedIn:
    identity: identity.Identity
    scope: Scope
    session_key: str

    @property
    def session_id(self) -> str:
        return self.session_key[:16]


def _auth_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file
        return False


def _claimed() -> tuple[str, str, str] | None:
    """(subject, issuer, session key) of whoever the server says is here, or None."""
    header = settings().get("trusted_header")
    if header:
        subject = st.context.headers.get(header)
        if subject:
            key = st.session_state.setdefault("caseconf_proxy_key", "proxy-" + secrets.token_hex(16))
            return subject.strip(), "", key
        return None
    if _auth_configured():
        if not st.user.is_logged_in:
            return None
        claims = st.user.to_dict()
        subject, issuer = str(claims.get("sub") or ""), str(claims.get("iss") or "")
        # The identity cookie carries these claims: the same cookie gives the same key.
        key = hashlib.sha256("|".join(str(claims.get(k) or "") for k in ("sub", "iss", "iat", "nonce", "exp"))
                             .encode()).hexdigest()
        return (subject, issuer, key) if subject else None
    subject = st.session_state.get(_DEMO)
    # A demo sign-in is made only on the demo store; one made there goes on after the demo
    # admin imports real data (they would lock themselves out), until they sign out.
    if subject and (_SIGNED in st.session_state or identity.demo_users(connection().store)):
        return subject, identity.DEMO_ISSUER, st.session_state.setdefault("caseconf_demo_key",
                                                                          "demo-" + secrets.token_hex(16))
    return None


def _with_claims(found: identity.Identity) -> identity.Identity:
    """Roles and groups from the provider's claims, when the server names those claims."""
    conf = settings()
    role_claim, groups_claim = conf.get("role_claim"), conf.get("groups_claim")
    if not (role_claim or groups_claim) or not _auth_configured() or not st.user.is_logged_in:
        return found
    role = str(st.user.get(role_claim) or found.role) if role_claim else found.role
    role = role if role in identity.ROLES else found.role
    groups = st.user.get(groups_claim) if groups_claim else None
    if isinstance(groups, str):
        groups = [g for g in groups.replace(",", " ").split() if g]
    groups = frozenset(g for g in (groups or ()) if identity.PSEUDONYM.fullmatch(str(g))) if groups is not None \
        else found.groups
    leads = groups if role == "supervisor" else frozenset()
    return dataclasses.replace(found, role=role, leads=leads, member_of=groups - leads)


def _signed_in() -> SignedIn | None:
    return st.session_state.get(_SIGNED)


def sign_in() -> SignedIn:
    """The signed-in user for this rerun, or the sign-in screen and the end of the script."""
    store = connection().store
    claimed = _claimed()
    if claimed is None:
        st.session_state.pop(_SIGNED, None)
        _sign_in_screen(store)
        st.stop()
    subject, issuer, key = claimed
    found = identity.find_user(store, subject, issuer)
    if found is None:
        st.session_state.pop(_SIGNED, None)
        audit.record(store, Scope("none", "unknown"), "denied", "sign-in of an unknown subject",
                     outcome="refused", session_id=key[:16])
        st.title("Case conference")
        st.warning("You are signed in, but not yet a user of this case-conference tool. Ask your admin to add you.")
        st.text(f"Your subject: {subject}")
        _sign_out_button(key)
        st.stop()
    found = _with_claims(found)
    max_age = float(settings().get("max_session_hours", DEFAULT_MAX_AGE_HOURS)) * 3600
    state = identity.session_state(store, key, found, max_age)
    signed = SignedIn(found, identity.scope_for(store, found), key)
    if state in ("ended", "expired"):
        st.session_state.pop(_SIGNED, None)
        st.session_state.pop(_DEMO, None)
        audit.record(store, signed.scope, "denied", f"a {state} sign-in session", outcome="refused",
                     session_id=signed.session_id)
        st.title("Case conference")
        st.warning("This sign-in has ended (signed out, or older than the server allows). Sign in again.")
        if _auth_configured() and st.button("Sign in", type="primary", key="caseconf_sign_in_again"):
            st.logout()
        st.stop()
    if state == "new":
        audit.record(store, signed.scope, "sign_in", "", session_id=signed.session_id)
    st.session_state[_SIGNED] = signed
    return signed


def _sign_in_screen(store) -> None:
    st.title("Case conference")
    if settings().get("trusted_header"):
        st.warning("The server expects the clinic's sign-in in front of it, and it did not say who you are. "
                   "Open the tool through the clinic's address.")
        return
    if _auth_configured():
        st.write("Sign in with the clinic's account to see your cases.")
        if st.button("Sign in", type="primary", key="caseconf_sign_in"):
            st.login()
        return
    demo = identity.demo_users(store)
    if demo:
        st.info("Demo store: invented data. Choose a demo user to see the tool as that role sees it.")
        for user in demo:
            about = {"admin": "sees everything, imports data, manages users",
                     "supervisor": f"leads {', '.join(sorted(user.leads))}",
                     "trainee": f"therapist {user.therapist_id} of {', '.join(sorted(user.member_of))}"}[user.role]
            if st.button(f"Sign in as the demo {user.role} ({user.display_id}): {about}", key=f"demo_{user.role}"):
                st.session_state[_DEMO] = user.subject
                st.rerun()
        return
    st.warning("Sign-in is not configured. Admin: add an [auth] section to .streamlit/secrets.toml (see "
               f"secrets.toml.example) and add users with 'python -m {__package__} users add'.")


def _sign_out_button(key: str) -> None:
    # A callback: it runs before the next rerun draws anything under the old identity.
    st.sidebar.button("Sign out", key="caseconf_sign_out", icon=":material/logout:", on_click=sign_out, args=(key,))


def sign_out(key: str | None = None) -> None:
    """End the server's record of this sign-in (a copied cookie is refused from now on)."""
    signed = _signed_in()
    store = connection().store
    key = key or (signed.session_key if signed else None)
    if key:
        identity.end_session(store, key)
    if signed:
        audit.record(store, signed.scope, "sign_out", "", session_id=signed.session_id)
    for name in (_SIGNED, _DEMO, "caseconf_demo_key", "caseconf_viewed"):
        st.session_state.pop(name, None)
    if _auth_configured() and st.user.is_logged_in:
        st.logout()


def user_panel(signed: SignedIn) -> None:
    """Who is signed in, with which role and scope, and the sign-out button (sidebar)."""
    st.sidebar.caption(f"Signed in as {signed.identity.display_id} ({signed.identity.role}): {signed.scope.label}.")
    _sign_out_button(signed.session_key)


def may_open(name: str) -> bool:
    signed = _signed_in()
    return signed is not None and signed.identity.role in PAGE_ROLES.get(name, ())


def current_user() -> str | None:
    """The signed-in person's pseudonymous display id: the author of what they write."""
    found = _signed_in()
    return found.identity.display_id if found else None


def ask_user() -> str | None:
    """The author of a change: always the signed-in user, never a typed id."""
    return current_user()


def scope() -> Scope:
    """The reader's scope, resolved on the server for this rerun from the signed-in
    identity and the stored memberships (`signin.require`). Nobody signed in: nothing."""
    found = _signed_in()
    if found is None:
        raise AccessDenied("Nobody is signed in.")
    return found.scope


def record(action: str, target: str = "", outcome: str = "ok") -> None:
    """An audit entry for the signed-in user's act (`audit.record`)."""
    found = _signed_in()
    if found is not None:
        audit.record(connection().store, found.scope, action, target, outcome=outcome, session_id=found.session_id)


def record_view(client_id: str) -> None:
    """Audit a case view once per change of the viewed case, not on every rerun."""
    if st.session_state.get("caseconf_viewed") != client_id:
        st.session_state["caseconf_viewed"] = client_id
        record("view_case", client_id)


def download_button(label: str, make: Callable[[], bytes], file_name: str, mime: str, target: str,
                    key: str | None = None, **kwargs) -> None:
    """A download whose click is audited: the bytes are made (and the download recorded)
    only when the person clicks, never when the page is drawn."""
    found = _signed_in()
    store = connection().store

    def data() -> bytes:
        payload = make()
        if found is not None:
            audit.record(store, found.scope, "download", f"{target} ({file_name})", session_id=found.session_id)
        return payload

    st.download_button(label, data, file_name=file_name, mime=mime, key=key, on_click="ignore", **kwargs)


# ----------------------------------------------------------------------------- cached reads
# Each entry takes (store, catalog, scope, *args, **kwargs). Only what a page draws leaves
# these functions: aggregates, one client's series, or one page of a long list.

def _triage(store, cat, sc):
    return triage.triage(store, cat, sc)


def _sparklines(store, cat, sc, client_ids: tuple[str, ...], instrument: str = "SRS"):
    """The client-rated alliance totals of a page of clients, as one list per client
    (`alliance`, `sessions`), with the places in that list where a rupture was found
    (`rupture_at`)."""
    series = store.query("SELECT client_id, list(score ORDER BY session_number) AS alliance, "
                         "list(session_number ORDER BY session_number) AS sessions FROM ratings "
                         "WHERE instrument = $i AND scale = 'total' AND rater = 'client' "
                         "AND client_id IN (SELECT unnest($c::VARCHAR[])) GROUP BY client_id",
                         {"i": instrument, "c": list(client_ids)}, scope=sc)
    found = ruptures.detect_ruptures(store, cat, scope=sc, clients=list(client_ids), scales=["total"])
    found = found.filter((pl.col("instrument") == instrument) & (pl.col("rater") == "client"))
    at = found.group_by("client_id").agg(pl.col("session").alias("ruptures"))
    return (series.join(at, on="client_id", how="left")
            .with_columns(rupture_at=pl.struct("sessions", "ruptures").map_elements(
                lambda r: [i for i, s in enumerate(r["sessions"]) if s in (r["ruptures"] or [])],
                return_dtype=pl.List(pl.Int64)))
            .drop("ruptures"))


READS: dict[str, Callable] = {
    "triage": _triage,
    "case_parts": lambda store, cat, sc, client_id: views.case_parts(store, cat, client_id, sc),
    "client_ids": lambda store, cat, sc: store.query("SELECT DISTINCT client_id FROM sessions ORDER BY 1",
                                                     scope=sc)["client_id"].to_list(),
    "sparklines": _sparklines,
    "discrepancy": lambda store, cat, sc, **kw: ruptures.alliance_discrepancy(store, cat, sc, **kw),
    "track": lambda store, cat, sc, **kw: expected.track_colours(store, cat, sc, **kw),
    "pervasiveness": lambda store, cat, sc, **kw: themes.pervasiveness(store, cat, sc, **kw),
    "caseload_pervasiveness": lambda store, cat, sc, **kw: themes.caseload_pervasiveness(store, cat, sc, **kw),
    "ccrt": lambda store, cat, sc, **kw: themes.ccrt(store, cat, sc, **kw),
    "therapist_patterns": lambda store, cat, sc, **kw: themes.therapist_patterns(store, cat, sc, **kw),
    "ccrt_triads": lambda store, cat, sc, **kw: themes.ccrt_triads(store, cat, sc, **kw),
    "barrier_caseload": lambda store, cat, sc: barrier_analytics.barrier_caseload(store, cat, sc),
    "barrier_effect": lambda store, cat, sc, **kw: barrier_analytics.barrier_alliance_effect(store, cat, sc, **kw),
    "barrier_notes": lambda store, cat, sc, **kw: barrier_analytics.barrier_notes(store, sc, **kw),
    "barrier_by_session": lambda store, cat, sc: barrier_analytics.barrier_by_session(store, sc),
    "batches": lambda store, cat, sc, limit=50: batches(store, sc, limit),
    "group_triage": lambda store, cat, sc, group: triage.triage(store, cat, meetings.group_scope(store, sc, group)),
    "group_views": lambda store, cat, sc, group, therapist_id, hide_therapist=True: presentation.group_views(
        store, cat, group, therapist_id, scope=sc, hide_therapist=hide_therapist),
}


# What a freshly started server's first page would otherwise wait for is started in the
# background when it draws its first screen (the sign-in screen, or the first page), so
# it is ready, or under way, by the time someone opens a page:
# - the modules the pages load on first use (pandas, for Streamlit's first table, and the
#   scipy functions of the sudden gains): about 1.5 s of a first case on a busy 2-core
#   machine, loaded once per process;
# - the clinic's expected-change reference (`expected.reference`), once per store and
#   generation: read from the snapshot, which keeps it, or fitted when it holds none for
#   the catalog's settings (Present's first open once took 17-19 s, most of it this fit
#   and the import of statsmodels). A read that misses the cache waits for it rather than
#   making it a second time alongside.
FIRST_USE_MODULES = ("pandas", "pyarrow.compute", "scipy.special")
_IMPORTED: list[bool] = []
_WARMING: dict[tuple[str, str], Future] = {}
_WARMING_LOCK = threading.Lock()


def _warm_reference(store: Store, cat: Catalog) -> None:
    min_sample, percentiles = expected._settings(cat, None, None)
    expected.reference(store, cat, expected.CLINIC, min_sample, percentiles)


def warm_up() -> None:
    """Start loading the pages' first-use modules (once per process) and the clinic's
    reference (once per store and generation) in the background."""
    conn = connection()
    key = (str(conn.store.path), conn.generation())
    with _WARMING_LOCK:
        if key in _WARMING:
            return
        future: Future = Future()
        _WARMING[key] = future
    store, cat = conn.store, catalog()

    def run() -> None:
        try:
            _warm_reference(store, cat)
        except BaseException as err:  # the page's own read then makes it, and reports any error
            future.set_exception(err)
        else:
            future.set_result(None)
        if not _IMPORTED:  # after the reference, which the reads wait for; an import waits by itself
            _IMPORTED.append(True)
            for module in FIRST_USE_MODULES:
                try:
                    importlib.import_module(module)
                except ImportError:
                    pass

    # Not a daemon, as the prefetch below: a daemon thread stopped at the interpreter's exit
    # inside DuckDB (its query hands rows back to Python) aborts the process ("terminate
    # called ... exception not rethrown"); the exit waits for the warm-up instead.
    threading.Thread(target=run, name="caseconf-warm-up", daemon=False).start()


def _await_warm_up(path: str, generation: str) -> None:
    future = _WARMING.get((path, generation))
    if future is not None:
        try:
            future.result(timeout=120)
        except BaseException:
            pass


@st.cache_data(show_spinner=False, max_entries=512, ttl=3600)
def _cached(name: str, path: str, generation: str, scope_key: tuple, args: tuple, kwargs: tuple):
    _await_warm_up(path, generation)
    store = getattr(_background, "store", None) or connection().store
    return READS[name](store, catalog(), Scope.from_key(scope_key), *args, **dict(kwargs))


def _cache_key() -> tuple[str, str, tuple]:
    """What every cached read depends on: the store file, its generation, the reader's
    whole scope (role, user, therapists, clients, groups), so no reader is ever served
    another's cached rows."""
    conn = connection()
    return str(conn.store.path), conn.generation(), scope().key()


def read(name: str, *args, **kwargs):
    """The result of READS[name] for the current store, generation and scope (cached)."""
    return _cached(name, *_cache_key(), args, tuple(sorted(kwargs.items())))


def read_in(sc: Scope, name: str, *args, **kwargs):
    """`read` in a scope derived from the reader's on the server (a group's conference as
    `meetings.group_scope` makes it), never one from the browser."""
    path, generation, _ = _cache_key()
    return _cached(name, path, generation, sc.key(), args, tuple(sorted(kwargs.items())))


# What a person will likely open next, made in the background so their click finds it
# cached: Present's next and previous cases (a case's parts and overview took most of a
# slide change).
_PREFETCHED: set[tuple] = set()
_PREFETCH_LOCK = threading.Lock()
_background = threading.local()  # .store: the store a background read uses


def _in_background(key: tuple, make: Callable[[], Any]) -> None:
    """Run `make` (a cached read) in a background thread, once per `key`. A read of the
    same cache key meanwhile waits for it rather than making it twice; errors are left to
    the page's own read, which reports them."""
    from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx
    with _PREFETCH_LOCK:
        if key in _PREFETCHED:
            return
        if len(_PREFETCHED) >= 1024:
            _PREFETCHED.clear()
        _PREFETCHED.add(key)
    store = connection().store  # this rerun's: the thread never looks the store up again

    def run() -> None:
        _background.store = store
        try:
            if not store.closed:
                make()
        except BaseException:
            with _PREFETCH_LOCK:
                _PREFETCHED.discard(key)

    # Not a daemon (a thread made by the script's thread would inherit its daemon flag): the
    # process waits for it at exit rather than stopping it inside a DuckDB query, which
    # aborts the process ("terminate called ... exception not rethrown").
    thread = threading.Thread(target=run, name="caseconf-prefetch", daemon=False)
    add_script_run_ctx(thread, get_script_run_ctx())
    thread.start()


def _overview(parts: dict, read, cat: Catalog, client_id: str, title: str | None = None, height: int | None = None):
    fig = views.overview_figure(parts, cat, title=title)
    return fig if height is None else charts.fit_height(fig, height)


# One case's figures, each made from its cached parts (and reads) by
# (parts, read, catalog, client_id, *args, **kwargs); `read(name, ...)` is `read_in` in the
# same scope. Building a Plotly figure cost more than reading its data (a few tenths of
# a second for the overview and the alliance chart) on every rerun of a case or a slide.
CASE_FIGURES: dict[str, Callable] = {
    "overview": _overview,
    "alliance": lambda parts, read, cat, client_id, instrument: charts.alliance_chart(
        parts["ratings"], parts["ruptures"].filter(pl.col("instrument") == instrument), parts["events"],
        read("discrepancy", clients=(client_id,)).filter(pl.col("instrument") == instrument),
        cat.instruments[instrument], cat),
    "outcome": lambda parts, read, cat, client_id, instrument: charts.outcome_chart(
        parts["track"].filter(pl.col("instrument") == instrument), instrument=cat.instruments[instrument],
        sudden_gains=views.sudden(parts, "sudden_gains", instrument),
        sudden_losses=views.sudden(parts, "sudden_losses", instrument)),
    "theme_timeline": lambda parts, read, cat, client_id: charts.theme_timeline_chart(parts["timeline"], cat),
    "ccrt": lambda parts, read, cat, client_id: charts.ccrt_chart(
        read("ccrt", clients=(client_id,)), read("pervasiveness", clients=(client_id,)),
        min_sessions=cat.themes.ccrt_min_sessions),
    "barrier_timeline": lambda parts, read, cat, client_id: charts.barrier_timeline_chart(parts["barriers"], cat),
}


@st.cache_resource(show_spinner=False, max_entries=128, ttl=3600)
def _case_figure(name: str, path: str, generation: str, scope_key: tuple, client_id: str, args: tuple,
                 kwargs: tuple):
    def read(read_name: str, *a, **kw):
        return _cached(read_name, path, generation, scope_key, a, tuple(sorted(kw.items())))
    parts = read("case_parts", client_id)
    fig = CASE_FIGURES[name](parts, read, catalog(), client_id, *args, **dict(kwargs))
    # The detail charts over sessions put each session where the case's overview does.
    return views.on_case_axis(parts, fig) if name in ON_THE_SESSION_AXIS else fig


ON_THE_SESSION_AXIS = frozenset({"alliance", "outcome", "theme_timeline", "barrier_timeline"})


def case_figure_in(sc: Scope, name: str, client_id: str, *args, **kwargs):
    """CASE_FIGURES[name] of one case in a scope derived from the reader's on the server
    (as `read_in`), made once per store, generation, scope and arguments. The figure is
    shared between reruns and sessions of that scope: draw it, never change it."""
    path, generation, _ = _cache_key()
    return _case_figure(name, path, generation, sc.key(), client_id, args, tuple(sorted(kwargs.items())))


def case_figure(name: str, client_id: str, *args, **kwargs):
    """`case_figure_in` in the reader's own scope."""
    return case_figure_in(scope(), name, client_id, *args, **kwargs)


def prefetch_slide_in(sc: Scope, client_id: str, group: str, hide_therapist: bool, **overview) -> None:
    """Make a Present slide's reads in the background, for the case the room will likely
    see next: the case's parts and overview in `sc` (the group's cases as the reader may
    see them; `overview` as for `case_figure_in`), and the group's views beside it in the
    reader's own scope, as the slide reads them."""
    path, generation, own = _cache_key()
    options = tuple(sorted(overview.items()))
    key = ("slide", path, generation, sc.key(), own, client_id, group, hide_therapist, options)

    def make() -> None:
        _case_figure("overview", path, generation, sc.key(), client_id, (), options)
        therapist = _cached("case_parts", path, generation, sc.key(), (client_id,), ())["case"]["therapist_id"]
        _cached("group_views", path, generation, own, (group, therapist), (("hide_therapist", hide_therapist),))
    _in_background(key, make)


# Figures drawn from one cached read over the whole caseload: building a Plotly figure of
# a large caseload costs more than reading it, so the figure is cached too.
FIGURES: dict[str, tuple[str, Callable]] = {
    "pervasiveness": ("caseload_pervasiveness", lambda data, cat, kind: charts.pervasiveness_chart(data, cat, kind=kind)),
    "therapist_patterns": ("therapist_patterns", lambda data, cat: charts.therapist_pattern_chart(data, cat)),
    "ccrt_sankey": ("ccrt_triads", lambda data, cat: charts.ccrt_sankey(data)),
    "barrier_effect": ("barrier_effect",
                       lambda data, cat, instrument: charts.barrier_alliance_chart(data, cat.instruments[instrument])),
    "barriers_over_time": ("barrier_by_session", lambda data, cat: charts.barrier_categories_over_time(data, cat)),
    "barriers_unaddressed": ("barrier_caseload", lambda data, cat: charts.barrier_unaddressed_chart(data)),
}


@st.cache_data(show_spinner=False, max_entries=128, ttl=3600)
def _figure(name: str, path: str, generation: str, scope_key: tuple, read_kwargs: tuple, chart_kwargs: tuple):
    read_name, build = FIGURES[name]
    return build(_cached(read_name, path, generation, scope_key, (), read_kwargs), catalog(), **dict(chart_kwargs))


def figure(name: str, read_kwargs: dict | None = None, **chart_kwargs):
    """FIGURES[name] for the current store, generation and scope (cached)."""
    return _figure(name, *_cache_key(), tuple(sorted((read_kwargs or {}).items())),
                   tuple(sorted(chart_kwargs.items())))


def clear_cache() -> None:
    """After an import: drop every cached read and figure at once (the new generation
    would miss them anyway)."""
    _cached.clear()
    _figure.clear()
    _case_figure.clear()




def text_table(frame: pl.DataFrame) -> None:
    """A small static table whose cells wrap, shown as text: `st.table` reads Markdown in
    its cells, so every ASCII punctuation mark in a text cell is backslash-escaped (GitHub
    Markdown shows an escaped mark as itself): no emphasis, link, HTML, LaTeX or
    Streamlit directive can come out of a cell."""
    texts = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    st.table(frame.with_columns(pl.col(texts).str.replace_all(links.MARKDOWN_PUNCTUATION.pattern, r"\$1")) if texts else frame,
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
    ("admin", "Admin", ":material/admin_panel_settings:"),
)
_registry: dict[str, st.Page] = {}
_hosted: list[str] = []  # the URL prefix, when a host app mounts the pages


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
    _hosted[:] = [prefix] if prefix else []
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
    app_style()
    warm_up()
    signed = sign_in()
    for name, title, icon in PAGES:
        if may_open(name):
            st.sidebar.page_link(page(name), label=title, icon=icon)
    user_panel(signed)


def ensure_navigation(page_file: str | None = None) -> SignedIn:
    """Called first by every page: make sure the page runs inside the app's `st.navigation`.

    With a `pages/` folder next to the entry script, a freshly started server runs in
    Streamlit's legacy pages-folder mode until some script calls `st.navigation`: a deep
    link as its first request (/caseload after a restart) runs pages/caseload.py on its
    own, without app.py (no page config, the file names as navigation, and `page()` knows
    no page, so opening a case fails). Calling `st.navigation` ends that mode for the whole
    server; the rerun then goes through app.py to the same page, as its URL path equals
    its file name. Once any session has run app.py (or a host app), this does nothing.

    Then the page's guard: the signed-in user (or the sign-in screen), and a page their
    role may not open ends here with a sentence and an audit entry."""
    if not _registry:
        st.navigation(pages(), position="hidden")
        st.rerun()
    warm_up()  # in a host app, which draws no menu of ours
    signed = sign_in()
    if _hosted:  # in a host app the host's menu lists the pages; who is signed in goes below it
        user_panel(signed)
    name = Path(page_file).stem if page_file else None
    if name and not may_open(name):
        record("denied", f"page {name}", outcome="refused")
        st.error("This page is not open to your role. Ask your admin if you need it.")
        st.stop()
    return signed


def page(name: str) -> st.Page:
    """The page object called `name` ("case", ...), for st.switch_page and st.page_link."""
    return _registry[name]


def stop_without_cases() -> None:
    """No case in the reader's scope: say what to do (an admin: the Data page) and end the page here."""
    if may_open("data"):
        st.info("No cases yet. Import an export on the Data page, or load the demo data there.")
        st.page_link(page("data"), label="Go to the Data page", icon=":material/upload_file:")
    else:
        st.info("No case of yours is in the store yet. Your admin imports the clinic's data and sets which cases "
                "you see.")
    st.stop()


def open_case(client_id: str) -> None:
    st.switch_page(page("case"), query_params={"client": client_id})


# ----------------------------------------------------------------------------- styling
# Streamlit's own elements, restyled where the theme cannot reach (no user text in here).

PROJECTOR_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"] { display: none !important; }
[data-testid="stMainBlockContainer"] { padding: 0.6rem 1.5rem 0.5rem !important; max-width: 100% !important; }
[data-testid="stAppViewContainer"] > [data-testid="stMain"] { margin-left: 0 !important; }
</style>"""


APP_CSS = """<style>
/* The theme's text size (baseFontSize) everywhere: Streamlit draws captions, widget labels
   and table cells at 0.875 of it, too small on a projector. */
[data-testid="stCaptionContainer"], [data-testid="stWidgetLabel"] p, [data-testid="stTable"] td,
[data-testid="stTable"] th, [data-testid="stText"], [data-testid="stMarkdownContainer"] p,
[data-testid^="stBaseButton"] kbd { font-size: 1rem !important; }
/* The data grid (st.dataframe, st.data_editor) draws its cells on a canvas at that same
   0.875, which no style rule reaches: a read-only table is therefore a `text_table`. */
/* A link or button reached by the keyboard is outlined, unlike the current page's link,
   which only has a tinted background. */
a:focus-visible, button:focus-visible, [data-testid="stPageLink-NavLink"]:focus-visible {
  outline: 3px solid #0072B2 !important; outline-offset: 2px !important; }
/* The page's width for its charts: the wide layout's side margins (5rem each) took 170 px
   of a 1400 px laptop's 1080 beside the sidebar, and the case overview's plot was left
   with a third of the screen between its row labels and its legends. */
[data-testid="stMainBlockContainer"] { padding-left: 1.5rem !important; padding-right: 1.5rem !important; }
</style>"""


def app_style() -> None:
    """The app's few style rules (text size, keyboard focus), drawn once a run by the menu."""
    st.html(APP_CSS)


def projector_mode() -> None:
    """The whole screen for the slide: no sidebar, no header, no toolbar, narrow margins."""
    st.html(PROJECTOR_CSS)
