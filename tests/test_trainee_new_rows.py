"""What a trainee must not see of other trainees' clients, for the rows issue 14 added:
whether scores were discussed (`feedback_discussed`), empathy (CARE) ratings, risk items,
attendance and boundary events. Each is read through the core functions with the trainee's
scope (th02 of group-north) and through the pages with `at.user`; each check first shows that
the admin does see those rows, so a test fails if the data, not the guard, is missing."""

from __future__ import annotations

import polars as pl
import pytest

from core import identity, views
from core.analytics import attendance as attendance_mod
from core.analytics import process, ruptures
from core.analytics.summary import UnknownClients, case_summaries
from core.analytics.triage import triage_flags
from core.importer import load_demo
from core.store import Store, close_all
from tests.conftest import SYSTEM, add_test_users
from tests.test_pages_roles import everything_shown, open_as

TRAINEE = "th02"


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):
    path = tmp_path_factory.mktemp("trainee-new-rows") / "clinic.duckdb"
    store = Store(path)
    load_demo(store)
    add_test_users(store)
    yield store
    store.close()


def scope_of(store, subject: str):
    return identity.scope_for(store, identity.find_user(store, subject, ""))


@pytest.fixture(scope="module")
def caseloads(clinic) -> dict[str, set[str]]:
    """The trainee's own clients, and every other trainee's (the demo roster's level)."""
    rows = clinic.query("SELECT DISTINCT s.client_id, s.therapist_id FROM sessions s JOIN therapists t "
                        "USING (therapist_id) WHERE t.level = 'trainee'", scope=SYSTEM)
    mine = {c for c, t in rows.iter_rows() if t == TRAINEE}
    others = {c for c, t in rows.iter_rows() if t != TRAINEE}
    assert mine and others and not mine & others
    return {"mine": mine, "others": others}


# Each new kind of row, as the core reads it: (store, catalog, scope, clients) -> the rows' client ids.
READS = {
    "feedback_discussed": lambda s, cat, sc, cl: process.feedback_sessions(s, sc, cl)
    .filter(pl.col("feedback_discussed").is_not_null()),
    "empathy": lambda s, cat, sc, cl: process.empathy_ratings(s, cat, sc, cl, scored_only=False),
    "risk_items": lambda s, cat, sc, cl: attendance_mod.risk_answers(s, cat, sc, cl),
    "attendance": lambda s, cat, sc, cl: attendance_mod.attendance(s, sc, cl)
    .filter((pl.col("no_show") + pl.col("cancelled_late") + pl.col("cancelled")) > 0),
    "boundary_events": lambda s, cat, sc, cl: ruptures.coded_events(s, sc, cl, catalog=cat)
    .filter(pl.col("event").str.starts_with("boundary_")),
    "new_flags": lambda s, cat, sc, cl: triage_flags(s, cat, sc, cl)
    .filter(pl.col("code").is_in(["risk", "attendance", "lost_contact", "boundary"])),
}


def _clients(frame: pl.DataFrame) -> set[str]:
    return set(frame["client_id"].to_list())


@pytest.mark.parametrize("kind", sorted(READS))
def test_a_trainee_reads_none_of_another_trainees_new_rows(clinic, catalog, caseloads, kind):
    read = READS[kind]
    theirs = _clients(read(clinic, catalog, scope_of(clinic, "admin1"), None)) & caseloads["others"]
    assert theirs, f"the demo has no {kind} rows of another trainee's clients: nothing would be tested"
    seen = _clients(read(clinic, catalog, scope_of(clinic, TRAINEE), None))
    assert seen <= caseloads["mine"], sorted(seen - caseloads["mine"])
    # Asking for those clients by id does not reach around the scope either.
    assert not _clients(read(clinic, catalog, scope_of(clinic, TRAINEE), sorted(theirs)))


def test_a_trainee_gets_no_summary_of_another_trainees_case(clinic, catalog):
    admin = scope_of(clinic, "admin1")
    (summary,) = case_summaries(clinic, catalog, ["c051"], admin)  # th03's, a trainee of the same group
    assert any(r["alert"] for r in summary["risk_items"]) and summary["feedback"]["discussed"]
    (empathic,) = case_summaries(clinic, catalog, ["c015"], admin)
    assert empathic["empathy"] and sum(empathic["attendance"][k] for k in ("no_show", "cancelled_late")) > 0
    for client in ("c051", "c015", "c003"):
        with pytest.raises(UnknownClients):
            case_summaries(clinic, catalog, [client], scope_of(clinic, TRAINEE))
        with pytest.raises(UnknownClients):
            views.case_parts(clinic, catalog, client, scope_of(clinic, TRAINEE))


# ----------------------------------------------------------------------------- the pages

# Another trainee's case and what of the new rows its Case page shows the admin.
OTHER_CASES = {
    "c015": ["Empathy rated by the client", "Scores discussed with the client"],  # th03
    "c051": ["Risk item answered"],                                               # th03
    "c003": ["Boundary crossing"],                                                # th03
    "c033": ["Missed sessions"],                                                  # th09
}


@pytest.mark.parametrize("client", sorted(OTHER_CASES))
def test_the_case_page_shows_the_admin_and_not_the_trainee_another_trainees_new_rows(demo_db, monkeypatch,
                                                                                    client):
    admin = open_as(demo_db, monkeypatch, "admin1", "case", client=client)
    close_all()
    assert not admin.exception and not admin.warning
    shown = everything_shown(admin)
    missing = [marker for marker in OTHER_CASES[client] if marker not in shown]
    assert not missing, missing
    trainee = open_as(demo_db, monkeypatch, TRAINEE, "case", client=client)
    close_all()
    assert not trainee.exception
    assert any(client in w.value for w in trainee.warning) and not trainee.get("plotly_chart")
    shown = everything_shown(trainee)
    assert not [marker for marker in OTHER_CASES[client] if marker in shown]


def test_the_caseload_offers_a_trainee_no_flag_only_other_cases_raise(demo_db, monkeypatch):
    """The demo's risk answers are all in other therapists' cases: the admin can filter the
    caseload by "Risk item answered", the trainee is not even offered it."""
    admin = open_as(demo_db, monkeypatch, "admin1", "caseload")
    close_all()
    assert "Risk item answered" in admin.multiselect(key="caseload_flags").options
    trainee = open_as(demo_db, monkeypatch, TRAINEE, "caseload")
    close_all()
    assert not trainee.exception
    assert "Risk item answered" not in trainee.multiselect(key="caseload_flags").options
    assert "Risk item answered" not in everything_shown(trainee)
