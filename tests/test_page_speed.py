"""What keeps the pages quick, through Streamlit's AppTest: a case's figures are made once
per store, generation and scope (not on every rerun), and Present makes the next and the
previous slide while the room looks at the current one. Times are the browser
benchmark's (`python -m core bench browser`); these tests check the work is not done
again, which is what the times depend on."""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from core import charts, views, web
from core.conference import presentation
from core.store import close_all
from tests.test_conference_pages import app as signed_app
from tests.test_conference_pages import button, db, make_conference  # noqa: F401  (db: a fixture)
from tests.test_pages import no_errors, open_page

CASE_TABS = ("Alliance", "Outcome", "Themes", "Barriers")
CASE_CHARTS = ("case_figure", "alliance_chart", "outcome_chart", "theme_timeline_chart", "ccrt_chart",
               "barrier_timeline_chart")


def counting(monkeypatch, module, names, calls: list[str] | None = None) -> list[str]:
    """Each call of `module.<name>` for `names` while a page draws (not in a background
    prefetch), in order, as the name (added to `calls`)."""
    calls = [] if calls is None else calls
    for name in names:
        original = getattr(module, name)

        def wrapped(*args, _original=original, _name=name, **kwargs):
            if threading.current_thread().name != "caseconf-prefetch":
                calls.append(_name)
            return _original(*args, **kwargs)
        monkeypatch.setattr(module, name, wrapped)
    return calls


def test_a_case_rerun_builds_none_of_its_figures_again(app, monkeypatch):
    # The overview and the alliance chart took a few tenths of a second each to build, on
    # every rerun of the page (a radio, a tab's widget, the way back from another page).
    built = counting(monkeypatch, charts, CASE_CHARTS)
    web.clear_cache()
    at = open_page(app.run(), "case", client="c015")  # alliance and outcome ratings, themes, barriers
    no_errors(at)
    for tab in CASE_TABS[1:]:  # only the open tab is drawn: open each once
        at.session_state["case_tab"] = tab
        at.run()
        no_errors(at)
    first = sorted(built)
    assert set(first) == set(CASE_CHARTS)
    for tab in CASE_TABS:
        at.session_state["case_tab"] = tab
        at.run()
        no_errors(at)
    assert at.title[0].value == "Case" and sorted(built) == first


def _prefetched() -> None:
    for thread in threading.enumerate():
        if thread.name == "caseconf-prefetch":
            assert not thread.daemon  # a daemon stopped inside a query at exit aborts the process
            thread.join(timeout=120)


def test_present_makes_the_next_slide_while_the_room_sees_this_one(db, monkeypatch):  # noqa: F811
    # Next and previous took a second or two: the case's parts, its overview and the
    # group's views beside it were all made after the click.
    conference_id = make_conference(db, cases=3)
    close_all()
    web.clear_cache()
    at = open_page(signed_app(), "present", conference=str(conference_id))
    no_errors(at)
    assert at.header[0].value == "Case A"
    _prefetched()
    made = counting(monkeypatch, views, ["case_parts", "overview_figure"])
    counting(monkeypatch, presentation, ["group_views"], made)
    at = button(at, "Next").click().run()
    no_errors(at)
    assert at.header[0].value == "Case B" and made == []
    _prefetched()
    at = button(at, "Previous").click().run()
    assert at.header[0].value == "Case A" and made == []
    close_all()


def test_a_slide_reads_the_stores_ids_once_per_snapshot(store, monkeypatch):
    # Every id of the store and the pattern that finds them in free text were made on each
    # slide: about a second at 10^6 sessions, every rerun of Present.
    import polars as pl

    from core.conference.labels import id_labels
    from core.store import upsert

    def publish(*clients):
        rows = pl.DataFrame([(c, 0, "t1", 0, "individual", True) for c in clients], orient="row",
                            schema={"client_id": pl.String, "session_number": pl.Int64, "therapist_id": pl.String,
                                    "days_since_intake": pl.Int64, "modality": pl.String, "attended": pl.Boolean})
        with store.publish() as cur:
            upsert(cur, "sessions", rows, 1)

    publish("c1", "c2")
    items = pl.DataFrame({"client_id": ["c1"], "case_label": ["Case A"]})
    asked: list[str] = []
    original = store.query
    monkeypatch.setattr(store, "query", lambda sql, *a, **k: asked.append(sql) or original(sql, *a, **k))
    said = "c1 and c2 with t1; c3"
    assert id_labels(store, items).sub(said) == "Case A and another case with the therapist of Case A; c3"
    every_id = [sql for sql in asked if "UNION" in sql]
    assert len(every_id) == 1
    assert id_labels(store, items).sub(said) == "Case A and another case with the therapist of Case A; c3"
    assert [sql for sql in asked if "UNION" in sql] == every_id  # not read again
    publish("c3")  # a new snapshot: its ids are read
    assert id_labels(store, items).sub(said) == "Case A and another case with the therapist of Case A; another case"


_ID_CHARS = "ab1._-"


@settings(max_examples=400, deadline=None)
@given(st.sets(st.text(_ID_CHARS, min_size=1, max_size=5), max_size=6),
       st.text(_ID_CHARS + " ,:éß", max_size=40))
def test_ids_in_free_text_are_found_where_a_pattern_of_every_id_finds_them(ids, text):
    """The slide's id finder (a set: a pattern of 44,000 alternatives took 0.7 s to compile
    on each snapshot's first slide at 10^6 sessions) against that pattern, written here:
    each id as a whole word, the longest first, then on from its end."""
    import re

    from core.conference.labels import IdLabels
    labels = IdLabels({}, set(ids), set())
    expected = text
    if ids:
        pattern = re.compile(r"(?<!\w)(" + "|".join(map(re.escape, sorted(ids, key=len, reverse=True)))
                             + r")(?!\w)")
        expected = pattern.sub(lambda m: f"<{m.group(1)}>", text)
    assert labels.finder.sub(lambda found: f"<{found}>", text) == expected
    assert labels.left(text) == sorted(set(re.findall(r"<([^<>]*)>", expected)))
