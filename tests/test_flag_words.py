"""Flag codes and barrier categories appear on the pages and in the handout as the catalog's
words, never as codes (issue 14: charts a projector can carry)."""

from __future__ import annotations

import datetime as dt
import re

import polars as pl

from core.analytics.triage import triage
from core.catalog import FLAG_CODES
from core.conference.handout import build_handout
from core.conference.meetings import group_scope, new_conference
from core.importer import import_dataset
from tests.conftest import SYSTEM, as_user, write_csv
from tests.test_pages import no_errors, open_page


def test_every_flag_code_has_words_in_the_catalog(catalog):
    words = {code: catalog.flag_label(code) for code in FLAG_CODES}
    assert all(w != code and "_" not in w and w[0].isupper() for code, w in words.items()), words
    assert len(set(words.values())) == len(words)  # no two flags read alike
    assert words["lost_contact"] == "Lost contact" and words["risk"] == "Risk item answered"
    assert catalog.code_label("barrier_categories", "language") == "Language (interpreter needed)"


def unescape(cell: str) -> str:
    """st.table's cells are Markdown-escaped (web.text_table): back to the text shown."""
    return re.sub(r"\\(.)", r"\1", cell)


def test_the_case_page_names_flags_and_barrier_categories_in_words(app, catalog):
    at = open_page(app.run(), "case", client="c035")  # the cultural barrier, left unaddressed
    no_errors(at)
    shown = {unescape(c) for c in at.table[0].value["Flag"]}
    assert shown and not shown & set(FLAG_CODES)
    assert shown <= {catalog.flag_label(c) for c in FLAG_CODES}
    # The barrier notes: a static table (text, Markdown-escaped) under the Barriers tab.
    at.session_state["case_tab"] = "Barriers"
    at.run()
    no_errors(at)
    categories = {unescape(c) for c in at.table[-1].value["Category"]}
    assert "Cultural misunderstanding" in categories and "cultural" not in categories


def test_the_caseload_flag_filter_offers_words(app, catalog):
    at = app.run()
    no_errors(at)
    options = at.multiselect(key="caseload_flags").options
    assert catalog.flag_label("alliance_below_cutoff") in options
    assert not set(options) & set(FLAG_CODES)


def test_the_handout_names_resolved_and_new_flags_in_words(store, catalog, tmp_path):
    from tests.test_triage import RATINGS, SESSIONS, THERAPISTS
    folder = tmp_path / "export"
    write_csv(folder, "sessions", "\n".join(SESSIONS) + "\n")
    write_csv(folder, "ratings", "\n".join(RATINGS) + "\n")
    write_csv(folder, "therapists", THERAPISTS)
    import_dataset(folder, store)
    before, _ = triage(store, catalog, group_scope(store, SYSTEM, "g1"))
    new_conference(store, catalog, "g1", held_on=dt.date(2026, 11, 23), cases=3, scope=as_user("sup1"))
    later = tmp_path / "later"
    write_csv(later, "sessions", "client_id,therapist_id,session_number\nb2,t2,10\nb2,t2,11\n")
    write_csv(later, "ratings", "client_id,session_number,instrument,score\nb2,11,PHQ-9,5\n")
    import_dataset(later, store)
    after, _ = triage(store, catalog, group_scope(store, SYSTEM, "g1"))
    second = new_conference(store, catalog, "g1", held_on=dt.date(2026, 11, 30), cases=3, scope=as_user("sup1"))
    resolved = (set(before.filter(pl.col("client_id") == "b2")["codes"][0])
                - set(after.filter(pl.col("client_id") == "b2")["codes"][0]))
    assert resolved
    html, _ = build_handout(store, catalog, second["id"], scope=SYSTEM)
    changed = html[html.index("What changed in the data"):]
    changed = changed[:changed.index("</table>")]
    for code in resolved:
        assert catalog.flag_label(code) in changed
        assert code not in changed
