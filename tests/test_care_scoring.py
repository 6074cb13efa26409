"""The CARE measure's total from its items (Mercer et al. 2004, DOMAIN.md): ten items of 1-5;
up to 2 missing answers are replaced by the mean of the answered ones, more than 2: not
scored. "Does not apply" arrives as an item left out, so it counts as missing (DOMAIN.md
names no rule for it: a catalog setting that says so). The expected totals below are worked
out by hand, not by the code under test."""

from __future__ import annotations

import pytest

from core import psychometrics as pm
from core.analytics.process import empathy_ratings
from core.analytics.summary import case_summaries, summary_text
from core.catalog import CatalogError, load_catalog
from core.importer import import_dataset
from tests.conftest import SYSTEM, write_csv

# Session -> the answers to items 1..10 (None: missing or "does not apply").
ANSWERS = {
    1: [4, 4, 5, 3, 4, 5, 4, 4, 3, 5],            # all ten: 41
    2: [4, 4, None, 3, 4, 5, None, 4, 3, 5],      # 8 answered, sum 32, mean 4: 32 + 2 x 4 = 40
    3: [5, 5, 5, 5, 4, 4, 4, 4, 3, None],         # 9 answered, sum 39: 39 + 39/9 = 43.3333
    4: [5, None, 5, None, 5, None, 5, 5, 5, 5],   # 3 missing: not scored
    5: [5] * 10,                                  # items add up to 50, but the given total 30 stands
}
HAND_TOTALS = {1: 41.0, 2: 40.0, 3: 43.3333, 5: 30.0}


def _long_rows(client: str = "k1") -> str:
    rows = [f"{client},{s},CARE,item{i},client,{a}\n" for s, answers in ANSWERS.items()
            for i, a in enumerate(answers, 1) if a is not None]
    return "".join(rows) + f"{client},5,CARE,total,client,30\n"


@pytest.fixture
def care_store(store, catalog, tmp_path):
    folder = tmp_path / "care-items"
    write_csv(folder, "sessions", "client_id,therapist_id,session_number\n"
              + "".join(f"k1,t1,{s}\n" for s in range(6)))
    write_csv(folder, "ratings", "client_id,session_number,instrument,scale,rater,score\n" + _long_rows())
    result = import_dataset(folder, store, catalog=catalog)
    assert result.exit_code == 0, result.problems
    return store


def test_the_catalog_holds_the_care_item_rule_with_its_source(catalog):
    care = catalog.instruments["CARE"]
    assert care.items.count == 10 and care.items.range == (1.0, 5.0)
    assert {f"item{i}" for i in range(1, 11)} <= set(care.scales)
    rule = care.total_from_items
    assert rule.max_missing == 2 and "Mercer et al. 2004" in rule.source
    # "Does not apply" is not in DOMAIN.md: the setting says it is unconfirmed.
    assert rule.does_not_apply == "missing" and "unconfirmed" in rule.does_not_apply_source


def test_the_rule_by_hand():
    assert pm.total_from_items(41, 10, 10, 2) == 41
    assert pm.total_from_items(32, 8, 10, 2) == 40
    assert pm.total_from_items(39, 9, 10, 2) == pytest.approx(43.3333333)
    assert pm.total_from_items(40, 7, 10, 2) is None
    assert pm.total_from_items(0, 0, 10, 10) is None


def test_care_items_form_the_total_on_the_case_summary(care_store, catalog):
    (summary,) = case_summaries(care_store, catalog, ["k1"], SYSTEM)
    assert {e["session"]: e["score"] for e in summary["empathy"]} == HAND_TOTALS
    assert {e["session"]: e["items_answered"] for e in summary["empathy"]} == {1: 10, 2: 8, 3: 9, 5: None}
    assert summary["empathy_not_scored"] == [{"instrument": "CARE", "session": 4, "items_answered": 7, "items": 10}]
    text = summary_text(summary)
    assert "CARE 40 at session 2 (from 8 answered items)" in text
    assert "CARE at session 4 not scored: 7 of 10 items answered" in text


def test_an_unscored_session_stays_off_the_chart_frame(care_store, catalog):
    scored = empathy_ratings(care_store, catalog, SYSTEM, ["k1"])
    assert scored["session_number"].to_list() == [1, 2, 3, 5]
    every = empathy_ratings(care_store, catalog, SYSTEM, ["k1"], scored_only=False)
    assert every.filter(every["session_number"] == 4)["score"].to_list() == [None]


def test_empty_cells_of_the_wide_form_are_missing_answers(store, catalog, tmp_path):
    """A "does not apply" left empty in a wide export (CARE:item3 ...) is a missing answer."""
    folder = tmp_path / "care-wide"
    header = ",".join(f"CARE:item{i}" for i in range(1, 11))
    cells = lambda answers: ",".join("" if a is None else str(a) for a in answers)  # noqa: E731
    write_csv(folder, "sessions", f"client_id,therapist_id,session_number,{header}\n"
              f"w1,t1,1,{cells(ANSWERS[2])}\nw1,t1,2,{cells(ANSWERS[4])}\n")
    assert import_dataset(folder, store, catalog=catalog).exit_code == 0
    (summary,) = case_summaries(store, catalog, ["w1"], SYSTEM)
    assert [(e["session"], e["score"]) for e in summary["empathy"]] == [(1, 40.0)]
    assert [e["session"] for e in summary["empathy_not_scored"]] == [2]


def test_a_clinic_can_allow_fewer_missing_answers(catalog, tmp_path, store):
    extra = tmp_path / "clinic.toml"
    extra.write_text("[instruments.CARE.total_from_items]\nmax_missing = 1\n"
                     "source = \"Clinic rule: at most one missing answer\"\n")
    strict = load_catalog(extra)
    folder = tmp_path / "care-strict"
    write_csv(folder, "sessions", "client_id,therapist_id,session_number\nk1,t1,2\nk1,t1,3\n")
    write_csv(folder, "ratings", "client_id,session_number,instrument,scale,rater,score\n"
              + "".join(r for r in _long_rows().splitlines(keepends=True) if r.split(",")[1] in {"2", "3"}))
    assert import_dataset(folder, store, catalog=strict).exit_code == 0
    (summary,) = case_summaries(store, strict, ["k1"], SYSTEM)
    assert [(e["session"], e["score"]) for e in summary["empathy"]] == [(3, 43.3333)]
    assert [e["session"] for e in summary["empathy_not_scored"]] == [2]


def test_a_rule_that_leaves_no_answer_is_refused(tmp_path):
    extra = tmp_path / "clinic.toml"
    extra.write_text("[instruments.CARE.total_from_items]\nmax_missing = 10\nsource = \"x\"\n")
    with pytest.raises(CatalogError, match="max_missing 10 leaves no answered item"):
        load_catalog(extra)
