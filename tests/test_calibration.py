"""The calibration exercise: the rules of an exercise and its answers, the agreement through
the store against `agreement` on the same numbers (and so against the published examples
of tests/test_agreement.py), blind until revealed, and the page as a group uses it."""

from __future__ import annotations

import warnings

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from core.conference import calibration as calib
from core.conference.agreement import fleiss_kappa, icc
from core.conference.meetings import ConferenceError
from core.importer import load_demo
from core.identity import add_user
from core.store import Store
from tests.conftest import SYSTEM, ROOT, as_user, signed_in
from tests.test_agreement import SHROUT_FLEISS, SHROUT_FLEISS_ICC
from tests.test_pages import no_errors

APP = str(ROOT / "app.py")

# Three coders, four sessions of transference codes; by hand: P_i = 1/3, 1, 1/3, 1/3, so
# P = 0.5; categories dependent 5/12, hostile 4/12, none 3/12, P_e = 50/144; kappa = 11/47.
CODES = [["dependent", "dependent", "hostile"], ["none", "none", "none"],
         ["hostile", "dependent", "hostile"], ["dependent", "hostile", "dependent"]]


@pytest.fixture
def demo(store):
    load_demo(store)
    return store


def rating_exercise(store, catalog, sessions=(1, 2, 3, 4, 5, 6)) -> int:
    return calib.new_exercise(store, catalog, "group-north", "c001", "rating", "SRS:total", list(sessions), scope=as_user("sup1"))


def fill(store, catalog, exercise_id, table, field="score"):
    """Rows are sessions 1.., columns raters tr0..: one answer each."""
    for session, row in enumerate(table, start=1):
        for j, value in enumerate(row):
            calib.save_answer(store, catalog, exercise_id, session, scope=as_user(f"tr{j}"), **{field: value})


# ----------------------------------------------------------------------------- the rules

@pytest.mark.parametrize("args, sentence", [
    (("group-west", "c001", "rating", "SRS:total", [1, 2]), "No therapist belongs to the supervision group "
                                                             "'group-west'; the groups are group-east"),
    (("group-south", "c001", "rating", "SRS:total", [1, 2]), "Case 'c001' is not seen by a therapist of group-south"),
    (("group-north", "c999", "rating", "SRS:total", [1, 2]), "There is no case 'c999' in this store."),
    (("group-north", "c001", "ratings", "SRS:total", [1, 2]), "An exercise is a 'rating'"),
    (("group-north", "c001", "rating", "ORS:total", [1, 2]), "'ORS' is not an alliance instrument"),
    (("group-north", "c001", "rating", "SRS:bond", [1, 2]), "SRS has no scale 'bond'"),
    (("group-north", "c001", "coding", "events", [1, 2]), "'events' is not a theme codebook"),
    (("group-north", "c001", "rating", "SRS:total", [3, 3]), "at least 2 sessions"),
    (("group-north", "c001", "rating", "SRS:total", [1, 40, 41]), "Case 'c001' has no attended sessions 40, 41; "
                                                                   "its sessions are 0-17."),
])
def test_a_bad_exercise_is_refused_with_one_sentence(demo, catalog, args, sentence):
    with pytest.raises(ConferenceError) as err:
        calib.new_exercise(demo, catalog, *args, scope=as_user("sup1"))
    assert sentence in str(err.value) and str(err.value).endswith(".")
    assert demo.scalar("SELECT count(*) FROM calibration_exercises", scope=SYSTEM) == 0


def test_an_exercise_is_stored_with_its_sessions_in_order(demo, catalog):
    first = calib.new_exercise(demo, catalog, "group-north", "c001", "rating", "WAI-SR", [5, 3, 4, 3], scope=as_user("sup1"))
    second = calib.new_exercise(demo, catalog, "group-north", "c002", "coding", "transference", [1, 2], scope=as_user("sup1"))
    assert second == first + 1
    ex = calib.exercise(demo, first, scope=SYSTEM)
    assert (ex["subject"], ex["sessions"], ex["created_by"]) == ("WAI-SR:total", [3, 4, 5], "sup1")
    listing = calib.exercises(demo, SYSTEM, "group-north")
    assert listing["exercise_id"].to_list() == [second, first]
    assert calib.exercises(demo, SYSTEM, "group-east").is_empty()


@pytest.mark.parametrize("answer, sentence", [
    ({"session_number": 9, "score": 30}, "Session 9 is not part of exercise"),
    ({"session_number": 1, "score": 41}, "SRS total scores lie between 0 and 40; 41 is outside."),
    ({"session_number": 1, "score": None}, "Give a score for session 1."),
    ({"session_number": 1, "code": "hostile"}, "asks for a score, not a code."),
    ({"session_number": 1, "score": 30, "rater": "mary.jones"}, "looks like a person's name"),
    ({"session_number": 1, "score": 30, "rater": " "}, "give your pseudonymous user id"),
])
def test_a_bad_answer_is_refused_with_one_sentence(demo, catalog, answer, sentence):
    exercise_id = rating_exercise(demo, catalog)
    answer = {"rater": "tr1", **answer}
    rater = answer.pop("rater")
    with pytest.raises(ConferenceError, match=sentence.replace("(", r"\(")):
        calib.save_answer(demo, catalog, exercise_id, **answer, scope=as_user(rater))
    with pytest.raises(ConferenceError, match="There is no calibration exercise 99"):
        calib.save_answer(demo, catalog, 99, 1, score=3, scope=as_user("tr1"))


def test_a_code_must_come_from_the_codebook(demo, catalog):
    exercise_id = calib.new_exercise(demo, catalog, "group-north", "c001", "coding", "transference", [1, 2], scope=as_user("sup1"))
    with pytest.raises(ConferenceError, match="'sad' is not a code of the transference codebook"):
        calib.save_answer(demo, catalog, exercise_id, 1, code="sad", scope=as_user("tr1"))
    with pytest.raises(ConferenceError, match="asks for a code, not a score"):
        calib.save_answer(demo, catalog, exercise_id, 1, score=3, scope=as_user("tr1"))
    calib.save_answer(demo, catalog, exercise_id, 1, code=calib.NO_CODE, scope=as_user("tr1"))  # none of the codes applies
    assert calib.answers(demo, exercise_id, scope=SYSTEM)["code"].to_list() == ["none"]


def test_a_rater_can_change_an_answer_and_the_latest_counts(demo, catalog):
    exercise_id = rating_exercise(demo, catalog)
    calib.save_answer(demo, catalog, exercise_id, 1, score=30, scope=as_user("tr1"))
    calib.save_answer(demo, catalog, exercise_id, 2, score=31, scope=as_user("tr1"))
    first_saved = calib.answers(demo, exercise_id, scope=SYSTEM)["saved_at"][0]
    calib.save_answer(demo, catalog, exercise_id, 1, score=24.5, scope=as_user("tr1"))
    calib.save_answer(demo, catalog, exercise_id, 1, score=33, scope=as_user("tr2"))
    mine = calib.answers(demo, exercise_id, rater="tr1", scope=SYSTEM)
    assert mine.select("session_number", "score").rows() == [(1, 24.5), (2, 31.0)]
    assert mine["saved_at"][0] >= first_saved
    assert calib.answers(demo, exercise_id, scope=SYSTEM).height == 3
    assert calib.exercises(demo, scope=SYSTEM)["raters"].to_list() == [2]


# ----------------------------------------------------------------------------- agreement

def test_the_icc_through_the_store_is_the_published_one(demo, catalog):
    exercise_id = rating_exercise(demo, catalog)
    fill(demo, catalog, exercise_id, SHROUT_FLEISS)
    result = calib.agreement(demo, exercise_id, scope=SYSTEM)
    direct = icc(pl.DataFrame([{"target": t, "rater": f"tr{j}", "score": float(s)}
                               for t, row in enumerate(SHROUT_FLEISS, start=1) for j, s in enumerate(row)]))
    assert result["values"] == pytest.approx(direct.values)
    for key, expected in SHROUT_FLEISS_ICC.items():
        assert result["values"][key] == pytest.approx(expected, abs=0.005), key
    assert result["statistic"] == "ICC(2,1)" and result["value"] == pytest.approx(0.29, abs=0.005)
    assert result["band"] == "poor" and "Koo & Li 2016" in result["interpretation"]
    assert (result["raters"], result["targets"], result["left_out"]) == (["tr0", "tr1", "tr2", "tr3"], 6, [])
    top = result["divergence"].row(0, named=True)  # 9, 2, 5, 8: the widest spread
    assert (top["session_number"], top["sd"], top["low"], top["high"]) == (1, pytest.approx(3.162, abs=0.001), 2, 9)
    assert top["answers"] == "tr0: 9; tr1: 2; tr2: 5; tr3: 8"


def test_fleiss_kappa_through_the_store_equals_the_module(demo, catalog):
    exercise_id = calib.new_exercise(demo, catalog, "group-north", "c001", "coding", "transference",
                                     [1, 2, 3, 4], scope=as_user("sup1"))
    fill(demo, catalog, exercise_id, CODES, field="code")
    result = calib.agreement(demo, exercise_id, scope=SYSTEM)
    direct = fleiss_kappa(pl.DataFrame([{"target": t, "rater": f"tr{j}", "code": c}
                                        for t, row in enumerate(CODES, start=1) for j, c in enumerate(row)]))
    assert result["value"] == pytest.approx(direct.kappa) == pytest.approx(11 / 47)
    assert result["values"]["Observed agreement"] == pytest.approx(0.5)
    assert result["statistic"] == "Fleiss' kappa" and result["band"] == "fair"
    assert "Landis & Koch 1977" in result["interpretation"]
    assert result["divergence"]["session_number"].to_list() == [1, 3, 4, 2]  # lowest agreement first
    assert result["divergence"].row(3, named=True)["codes"] == "none: 3"


def test_bands_follow_their_sources():
    assert [calib.band(v, calib.ICC_BANDS) for v in (-0.1, 0.49, 0.5, 0.74, 0.75, 0.9, 0.95)] == \
        ["poor", "poor", "moderate", "moderate", "good", "excellent", "excellent"]
    assert [calib.band(round(v, 2), calib.KAPPA_BANDS) for v in (-0.05, 0.0, 0.2, 0.21, 0.4, 0.41, 0.6, 0.61,
                                                                0.8, 0.81, 1.0)] == \
        ["poor", "slight", "slight", "fair", "fair", "moderate", "moderate", "substantial", "substantial",
         "almost perfect", "almost perfect"]


def test_too_few_raters_gives_a_sentence_and_a_rater_still_answering_is_left_out(demo, catalog):
    exercise_id = rating_exercise(demo, catalog, sessions=(1, 2, 3))
    result = calib.agreement(demo, exercise_id, scope=SYSTEM)
    assert result["value"] is None
    assert result["interpretation"] == ("The agreement needs at least 2 raters who answered all 3 sessions; "
                                        "no raters have so far.")
    for session in (1, 2, 3):
        calib.save_answer(demo, catalog, exercise_id, session, score=30 + session, scope=as_user("tr1"))
    calib.save_answer(demo, catalog, exercise_id, 1, score=28, scope=as_user("tr2"))
    result = calib.agreement(demo, exercise_id, scope=SYSTEM)
    assert result["value"] is None and result["left_out"] == ["tr2"]
    assert result["interpretation"] == ("The agreement needs at least 2 raters who answered all 3 sessions; "
                                        "1 rater has so far; 1 more has started.")
    for session in (2, 3):
        calib.save_answer(demo, catalog, exercise_id, session, score=27 + session, scope=as_user("tr2"))
    calib.save_answer(demo, catalog, exercise_id, 1, score=20, scope=as_user("tr3"))  # still answering: not counted
    result = calib.agreement(demo, exercise_id, scope=SYSTEM)
    assert result["raters"] == ["tr1", "tr2"] and result["left_out"] == ["tr3"]
    assert result["value"] == pytest.approx(icc(pl.DataFrame({
        "target": [1, 2, 3] * 2, "rater": ["tr1"] * 3 + ["tr2"] * 3,
        "score": [31.0, 32, 33, 28, 29, 30]})).values["ICC(2,1)"])


def test_identical_answers_give_a_sentence_not_a_number(demo, catalog):
    coding = calib.new_exercise(demo, catalog, "group-north", "c001", "coding", "transference", [1, 2], scope=as_user("sup1"))
    fill(demo, catalog, coding, [["hostile", "hostile"], ["hostile", "hostile"]], field="code")
    rating = rating_exercise(demo, catalog, sessions=(1, 2))
    fill(demo, catalog, rating, [[30, 30], [30, 30]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0 / 0 is a sentence, not a RuntimeWarning
        results = [calib.agreement(demo, coding, scope=SYSTEM), calib.agreement(demo, rating, scope=SYSTEM)]
    for result in results:
        assert result["value"] is None and result["band"] is None
        assert "cannot be computed" in result["interpretation"]
        assert result["divergence"].height == 2


# ----------------------------------------------------------------------------- blind, then revealed

def test_the_case_own_ratings_stay_hidden_until_the_group_has_answered(demo, catalog):
    exercise_id = rating_exercise(demo, catalog, sessions=(1, 2, 3))
    stored = demo.query("SELECT session_number, score FROM ratings WHERE client_id = 'c001' AND instrument = 'SRS' "
                        "AND scale = 'total' AND rater = 'client' AND session_number IN (1, 2, 3) ORDER BY 1", scope=SYSTEM)
    assert stored.height == 3
    fill(demo, catalog, exercise_id, [[30], [31], [32]])
    with pytest.raises(ConferenceError, match="stay hidden until at least 2 raters have answered every session"):
        calib.reveal(demo, exercise_id, scope=SYSTEM)
    listing = calib.exercises(demo, scope=SYSTEM)
    assert "score" not in listing.columns and "code" not in listing.columns  # the listing never shows answers
    fill(demo, catalog, exercise_id, [[30, 34], [31, 35], [32, 36]])
    own = calib.reveal(demo, exercise_id, scope=SYSTEM)
    assert own["session_number"].to_list() == [1, 2, 3]
    assert own["client"].to_list() == stored["score"].to_list()
    assert own["group_mean"].to_list() == [32.0, 33.0, 34.0]


def test_reveal_of_a_coding_exercise_shows_the_stored_codes(demo, catalog):
    client, sessions = demo.query(
        "SELECT client_id, list(DISTINCT session_number ORDER BY session_number) AS s FROM themes t "
        "JOIN sessions USING (client_id, session_number) JOIN therapists USING (therapist_id) "
        "WHERE kind = 'transference' AND supervision_group = 'group-north' GROUP BY 1 ORDER BY 1 LIMIT 1", scope=SYSTEM).row(0)
    exercise_id = calib.new_exercise(demo, catalog, "group-north", client, "coding", "transference",
                                     sessions[:2], scope=as_user("sup1"))
    fill(demo, catalog, exercise_id, [["hostile", "hostile"], ["none", "dependent"]], field="code")
    own = calib.reveal(demo, exercise_id, scope=SYSTEM)
    assert own["group_codes"].to_list() == ["hostile: 2", "dependent: 1, none: 1"]
    stored = demo.query("SELECT code FROM themes WHERE client_id = $c AND kind = 'transference' "
                        "AND session_number = $s", {"c": client, "s": sessions[0]}, scope=SYSTEM)["code"].to_list()
    assert all(code in own.row(0, named=True)["therapist"] for code in stored)


# ----------------------------------------------------------------------------- the page



@pytest.fixture
def raters(demo_db):
    """Two more trainees of group-north (th03, th04), who rate as tr1 and tr2."""
    store = Store(demo_db)
    for name, therapist in (("tr1", "th03"), ("tr2", "th04")):
        add_user(store, name, "trainee", therapist_id=therapist, groups=["group-north"])
    store.close()


def open_page(at: AppTest, user: str = "admin1") -> AppTest:
    signed_in(at, user)
    at.run()
    at.switch_page("pages/calibration.py")
    return at.run()


def signed_in_as(at: AppTest, user: str) -> AppTest:
    """The same page, now with `user` signed in (their answers are saved under their id)."""
    signed_in(at, user)
    return at.run()


def test_a_trainee_answers_blind_and_cannot_make_an_exercise_or_answer_for_another(app, raters):
    at = open_page(app, "sup1")
    at.selectbox(key="calib_group").set_value("group-north").run()
    at.selectbox(key="calib_new_client").set_value("c001").run()
    at.multiselect(key="calib_new_sessions_c001").set_value([2, 3]).run()
    at.button(key="calib_create").click().run()
    at = signed_in_as(at, "tr1")
    no_errors(at)
    assert "calib_create" not in [b.key for b in at.button]  # only a supervisor or an admin makes exercises
    assert not at.text_input  # no field to type who is answering: the signed-in trainee answers
    assert all("c001" not in o for o in at.selectbox(key="calib_exercise").options)  # no case id for a trainee


def test_a_group_rates_blind_and_then_sees_the_icc(app, raters):
    at = open_page(app, "sup1")
    no_errors(at)
    at.selectbox(key="calib_group").set_value("group-north").run()
    at.selectbox(key="calib_new_client").set_value("c001").run()
    at.multiselect(key="calib_new_sessions_c001").set_value([2, 3, 4]).run()
    at.button(key="calib_create").click().run()
    no_errors(at)
    assert any("is ready" in s.value for s in at.success)
    exercise_id = at.selectbox(key="calib_exercise").value
    scores = {"tr1": [20, 30, 25], "tr2": [22, 34, 24]}
    for rater, values in scores.items():
        at = signed_in_as(at, rater)
        no_errors(at)
        assert all(n.value is None for n in at.number_input)  # blind: nobody's answers, not the case's
        assert not at.dataframe and not at.toggle
        assert any("Answer every session first" in i.value for i in at.info)
        for number, value in zip((2, 3, 4), values):
            at.number_input(key=f"calib_score_{exercise_id}_{rater}_{number}").set_value(value)
        at.button(key="calib_save").click().run()
        no_errors(at)
        assert any("Saved 3 changed answer(s)." in s.value for s in at.success)
    at = signed_in_as(at, "sup1")
    at.toggle(key="calib_show_agreement").set_value(True).run()
    no_errors(at)
    metric = {m.label: m.value for m in at.metric}
    expected = icc(pl.DataFrame({"target": [2, 3, 4] * 2, "rater": ["tr1"] * 3 + ["tr2"] * 3,
                                 "score": [20.0, 30, 25, 22, 34, 24]})).values["ICC(2,1)"]
    assert metric["ICC(2,1)"] == f"{expected:.2f}" and metric["Raters"] == "2"
    assert any("Koo & Li 2016" in c.value for c in at.caption)
    divergence = at.dataframe[1].value
    assert list(divergence["session_number"]) == [3, 2, 4]  # 30 vs 34 the widest spread, then 20 vs 22
    assert "client" not in divergence.columns
    # Each score is a dot on a scale from just below the lowest score given (20), not
    # from the scale's 0, so 30 and 34 stand apart.
    import json
    (scores,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if "rater's score" in c.proto.spec]
    low, high = scores["layout"]["xaxis"]["range"]
    assert 15 <= low < 20 and 40 <= high < 41
    at.toggle(key="calib_reveal").set_value(True).run()
    no_errors(at)
    own = at.dataframe[-1].value
    assert list(own["session_number"]) == [2, 3, 4] and list(own["group_mean"]) == [21.0, 32.0, 24.5]
    assert list(own["client"]) == [34.0, 34.0, 34.0]  # c001's own SRS totals, shown only now


def test_a_refused_answer_shows_the_reason_as_text(app):
    at = open_page(app, "admin1")
    at.selectbox(key="calib_group").set_value("group-east").run()
    at.radio(key="calib_new_kind").set_value("coding").run()
    at.button(key="calib_create").click().run()  # no sessions chosen
    assert not at.exception
    assert [e.value for e in at.error] == ["The exercise was not created."]
    assert any("at least 2 sessions" in t.value for t in at.text)


def test_the_icc_comes_with_its_interval_and_the_band_read_from_it(demo, catalog):
    exercise_id = rating_exercise(demo, catalog)
    fill(demo, catalog, exercise_id, SHROUT_FLEISS)
    result = calib.agreement(demo, exercise_id, scope=SYSTEM)
    assert result["interval"] == pytest.approx((0.0187865, 0.7610844), abs=1e-6) and result["level"] == 0.95
    # Koo & Li read the band from the interval: .02 to .76 spans poor, moderate and good.
    assert result["interval_band"] == "poor to good"
    assert result["mean_abs_difference"] == pytest.approx(1.9583333)
    assert "95% confidence interval 0.02 to 0.76" in result["interpretation"]
    assert calib.interval_band(0.83, 0.97, catalog.calibration) == "good to excellent"  # Koo & Li's example
    assert calib.interval_band(0.91, 0.97, catalog.calibration) == "excellent"


# ----------------------------------------------------------------------------- several codes a session

def test_a_coder_may_give_several_codes_and_agreement_is_per_code(demo, catalog):
    exercise_id = calib.new_exercise(demo, catalog, "group-north", "c001", "coding", "transference",
                                     [1, 2, 3, 4], scope=as_user("sup1"))
    answers = {1: (["mistrustful", "hostile"], ["mistrustful"], ["hostile", "mistrustful"]),
               2: (["hostile"], ["hostile"], ["withdrawn"]),
               3: (["mistrustful", "withdrawn"],) * 3,
               4: (["withdrawn"], ["hostile", "withdrawn"], ["hostile"])}
    for session, row in answers.items():
        for j, codes in enumerate(row):
            calib.save_answer(demo, catalog, exercise_id, session, code=codes, scope=as_user(f"tr{j}"))
    stored = calib.answers(demo, exercise_id, scope=SYSTEM)
    assert stored.filter(pl.col("rater") == "tr0", pl.col("session_number") == 1)["code"].item() == "hostile|mistrustful"
    result = calib.agreement(demo, exercise_id, scope=SYSTEM)
    assert result["statistic"] == calib.POOLED_KAPPA and "De Vries et al. 2008" in result["interpretation"]
    # mistrustful: given by all or none in every session; hostile by 2 of 3 in three sessions;
    # withdrawn: Fleiss' kappa_j = 1 - 4 / (4 * 3 * 2 * .25) = 1/3; pooled (each p_j = .5): 4/9.
    per_code = {r["code"]: r for r in result["per_code"].iter_rows(named=True)}
    assert per_code["mistrustful"]["kappa"] == pytest.approx(1.0) and per_code["hostile"]["kappa"] == pytest.approx(0.0)
    assert per_code["withdrawn"]["kappa"] == pytest.approx(1 / 3)
    assert per_code["mistrustful"]["label"] == "Mistrustful" and per_code["hostile"]["given"] == 6
    assert result["value"] == pytest.approx(4 / 9) and result["band"] == "moderate"
    assert result["divergence"]["session_number"].to_list() == [2, 4, 1, 3]
    assert result["divergence"].row(2, named=True)["answers"] == "tr0: hostile + mistrustful; tr1: mistrustful; " \
                                                                 "tr2: hostile + mistrustful"
    own = calib.reveal(demo, exercise_id, scope=SYSTEM)
    assert own.filter(pl.col("session_number") == 3)["group_codes"].item() == "mistrustful: 3, withdrawn: 3"


def test_one_code_each_keeps_fleiss_kappa_and_gains_the_table_per_code(demo, catalog):
    exercise_id = calib.new_exercise(demo, catalog, "group-north", "c001", "coding", "transference",
                                     [1, 2, 3, 4], scope=as_user("sup1"))
    fill(demo, catalog, exercise_id, CODES, field="code")
    result = calib.agreement(demo, exercise_id, scope=SYSTEM)
    assert result["statistic"] == "Fleiss' kappa" and result["value"] == pytest.approx(11 / 47)
    weights = {r["code"]: r for r in result["per_code"].iter_rows(named=True)}
    assert set(weights) == {"dependent", "hostile", "none"} and weights["none"]["kappa"] == pytest.approx(1.0)


def test_none_of_these_codes_stands_alone(demo, catalog):
    exercise_id = calib.new_exercise(demo, catalog, "group-north", "c001", "coding", "transference", [1, 2],
                                     scope=as_user("sup1"))
    with pytest.raises(ConferenceError, match="cannot go with other codes"):
        calib.save_answer(demo, catalog, exercise_id, 1, code=[calib.NO_CODE, "hostile"], scope=as_user("tr1"))
    with pytest.raises(ConferenceError, match="'sad' is not a code"):
        calib.save_answer(demo, catalog, exercise_id, 1, code=["hostile", "sad"], scope=as_user("tr1"))
    assert calib.answers(demo, exercise_id, scope=SYSTEM).is_empty()


def test_a_group_codes_several_codes_a_session_on_the_page_and_sees_the_agreement_per_code(app, raters):
    at = open_page(app, "sup1")
    at.selectbox(key="calib_group").set_value("group-north").run()
    at.selectbox(key="calib_new_client").set_value("c001").run()
    at.radio(key="calib_new_kind").set_value("coding").run()
    at.multiselect(key="calib_new_sessions_c001").set_value([2, 3]).run()
    at.button(key="calib_create").click().run()
    no_errors(at)
    exercise_id = at.selectbox(key="calib_exercise").value
    codes = {"tr1": (["hostile", "mistrustful"], ["withdrawn"]), "tr2": (["mistrustful"], ["withdrawn"])}
    for rater, given in codes.items():
        at = signed_in_as(at, rater)
        for number, value in zip((2, 3), given):
            at.multiselect(key=f"calib_code_{exercise_id}_{rater}_{number}").set_value(value)
        at.button(key="calib_save").click().run()
        no_errors(at)
        assert any("Saved 2 changed answer(s)." in s.value for s in at.success)
    at = signed_in_as(at, "tr1")  # their own answers come back as they gave them
    assert at.multiselect(key=f"calib_code_{exercise_id}_tr1_2").value == ["hostile", "mistrustful"]
    at = signed_in_as(at, "sup1")
    at.toggle(key="calib_show_agreement").set_value(True).run()
    no_errors(at)
    assert calib.POOLED_KAPPA in {m.label for m in at.metric}
    (per_code,) = [d.value for d in at.dataframe if "label" in d.value.columns]
    assert set(per_code["label"]) == {"Hostile", "Mistrustful", "Withdrawn"}
