"""Calibration: trainees rate the alliance or code the themes of one case blind; the group
then sees how far they agree (ICC or Fleiss' kappa) and where they diverge."""

import polars as pl
import streamlit as st

from core import charts, web
from core.conference import calibration as calib
from core.conference import meetings
from core.conference.meetings import ConferenceError

web.ensure_navigation(__file__)  # first: a cold deep link runs this page through app.py; then the guard
cat = web.catalog()
store = web.connection().store  # these small tables are read directly: an answer shows at once
st.title("Calibration")
st.caption("Each trainee rates the alliance or codes the themes of the same sessions of one case on their own. "
           "Nobody sees the others' answers or the case's own ratings until the agreement is shown; then the group "
           "sees an ICC (scores) or Fleiss' kappa (codes) and the sessions where it diverged most.")
if store.is_empty():
    web.stop_without_cases()


def refused(what: str, reasons: list[str]) -> None:
    """A refusal: a fixed heading, then the core's sentences as plain text (they hold ids)."""
    st.error(what)
    for reason in reasons:
        st.text(reason)


scope = web.scope()
groups = meetings.groups(store, scope)
if not groups:
    st.info("No supervision groups yet: import a therapists table with a supervision_group column on the Data "
            "page to run an exercise with a group.")
    st.stop()
user = web.ask_user()  # the signed-in user: the exercises made and the answers given are theirs
group = st.selectbox("Supervision group", groups, key="calib_group")

KIND_LABELS = {"rating": "Rate the alliance (a score per session)", "coding": "Code the themes (a code per session)"}
listing = calib.exercises(store, scope, group)

# ----------------------------------------------------------------------------- new exercise
if scope.may_edit_group(group):
    with st.expander("New exercise (supervisor)", expanded=listing.is_empty()):
        clients = calib.group_cases(store, group, scope)
        if not clients:
            st.info("No case of this group's therapists is in the store.")
        else:
            client = st.selectbox("Case", clients, key="calib_new_client")
            kind = st.radio("Exercise", calib.KINDS, format_func=KIND_LABELS.get, horizontal=True, key="calib_new_kind")
            subjects = calib.rating_subjects(cat) if kind == "rating" else calib.coding_subjects(cat)
            subject = st.selectbox("Instrument and scale" if kind == "rating" else "Codebook", subjects,
                                   format_func=lambda s: calib.subject_label(cat, kind, s), key=f"calib_new_subject_{kind}")
            numbers = calib.attended_sessions(store, client, meetings.group_scope(store, scope, group))
            chosen = st.multiselect("Sessions to rate (at least 2)", numbers, key=f"calib_new_sessions_{client}")
            if st.button("Create the exercise", key="calib_create"):
                try:
                    new_id = calib.new_exercise(store, cat, group, client, kind, subject, chosen, scope=scope)
                except ConferenceError as err:
                    refused("The exercise was not created.", [str(err)])
                else:
                    st.session_state["calib_exercise"] = new_id
                    st.success(f"Exercise {new_id} is ready: the group answers it below.")
                    listing = calib.exercises(store, scope, group)

# ----------------------------------------------------------------------------- answering, blind
st.subheader("Your answers")
if listing.is_empty():
    st.info("This group has no exercise yet: a supervisor makes one under 'New exercise'.")
    st.stop()
rows = {r["exercise_id"]: r for r in listing.iter_rows(named=True)}
if st.session_state.get("calib_exercise") not in rows:
    st.session_state.pop("calib_exercise", None)
exercise_id = st.selectbox(
    "Exercise", list(rows), key="calib_exercise",
    format_func=lambda i: (f"{i}: " + ("a case of the group, " if scope.role == "trainee"  # ids: never to trainees
                                       else f"case {rows[i]['client_id']}, ") +
                           f"{calib.subject_label(cat, rows[i]['kind'], rows[i]['subject'])}, "
                           f"{len(rows[i]['sessions'])} sessions, made by {rows[i]['created_by']}"))
ex = calib.exercise(store, exercise_id, scope)
rating = ex["kind"] == "rating"
mine = {r["session_number"]: r for r in calib.answers(store, exercise_id, scope, rater=user).iter_rows(named=True)}
st.caption("Only your own answers are shown here. Change an answer and save again: the latest one counts.")
with st.form(key=f"calib_form_{exercise_id}_{user}"):
    given = {}
    if rating:
        low, high = calib.score_range(cat, ex["subject"])
        for number in ex["sessions"]:
            given[number] = st.number_input(
                f"Session {number}", min_value=float(low), max_value=float(high),
                value=mine.get(number, {}).get("score"), step=1.0 if high - low > 10 else 0.1,
                format="%.0f" if high - low > 10 else "%.1f", placeholder=f"{low:g} to {high:g}", key=f"calib_score_{exercise_id}_{user}_{number}")
    else:
        choices = calib.code_choices(cat, ex["subject"])
        keys = list(choices)
        for number in ex["sessions"]:
            # One or several codes a session (agreement is then measured code by code).
            before = [c for c in calib.answer_codes(mine.get(number, {}).get("code")) if c in choices]
            given[number] = st.multiselect(f"Session {number}", keys, default=before, format_func=choices.get,
                                           placeholder="Choose one or more codes",
                                           key=f"calib_code_{exercise_id}_{user}_{number}") or None
    submitted = st.form_submit_button("Save my answers", key="calib_save", type="primary")
if submitted:
    field = "score" if rating else "code"
    stored = (lambda n: mine.get(n, {}).get(field)) if rating else \
        (lambda n: sorted(calib.answer_codes(mine.get(n, {}).get(field))))
    changed = {n: v for n, v in given.items() if v is not None and stored(n) != (v if rating else sorted(v))}
    problems = []
    for number, value in changed.items():
        try:
            calib.save_answer(store, cat, exercise_id, number, scope=scope, **{field: value})
        except ConferenceError as err:
            problems.append(str(err))
    if problems:
        refused("Some answers were not saved.", problems)
    if not any(v is not None for v in given.values()):
        st.warning("Enter an answer for at least one session, then save.")
    else:
        st.success(f"Saved {len(changed) - len(problems)} changed answer(s).")
    mine = {r["session_number"]: r for r in calib.answers(store, exercise_id, scope, rater=user).iter_rows(named=True)}
done, pending = calib.finished_raters(store, exercise_id, scope)
st.caption(f"You have answered {len(mine)} of {len(ex['sessions'])} sessions. {len(done)} rater(s) answered "
           f"every session; {len(pending)} rater(s) are still answering.")

# ----------------------------------------------------------------------------- agreement
st.subheader("Agreement")
if user != ex["created_by"] and user not in done:
    st.info("Answer every session first: the agreement shows the group's answers, and yours would no longer be "
            "blind.")
    st.stop()
if not st.toggle("Show agreement", key="calib_show_agreement"):
    st.stop()
result = calib.agreement(store, exercise_id, scope)
if result["divergence"].is_empty():
    st.info(result["interpretation"])
    st.stop()
c1, c2, c3, c4 = st.columns(4)
interval = result.get("interval")
c1.metric(result["statistic"], "-" if result["value"] is None else f"{result['value']:.2f}",
          None if interval is None else f"{result['level']:.0%} CI {interval[0]:.2f} to {interval[1]:.2f}",
          delta_color="off", delta_arrow="off")
c2.metric("Agreement", result.get("interval_band") or result["band"] or "-",
          None if interval is None else "read from the interval (Koo & Li 2016)", delta_color="off",
          delta_arrow="off")
c3.metric("Raters", len(result["raters"]))
c4.metric("Sessions", result["targets"])
st.caption(result["interpretation"])
if result["left_out"]:
    st.text(f"Not counted, still answering: {', '.join(result['left_out'])}")
st.dataframe(pl.DataFrame({"statistic": list(result["values"]), "value": list(result["values"].values())}),
             hide_index=True, column_config={"statistic": "Statistic",
                                             "value": st.column_config.NumberColumn("Value", format="%.3f")})
if rating and result.get("mean_abs_difference") is not None:
    st.metric("Mean distance from the session's mean", f"{result['mean_abs_difference']:.1f} points",
              help="Absolute agreement in the scale's own points: how far each score lies from the mean of the "
                   "group's scores for that session, on average.")
if rating:
    st.caption("ICC(2,1): two-way random effects, absolute agreement, one rater: would another trainee give the "
               "same score? ICC(3,1) asks only whether the raters rank the sessions alike; the (k) forms are for "
               "the mean of all raters (Shrout & Fleiss 1979).")

if not rating and result.get("per_code") is not None and result["per_code"].height:
    st.markdown("**Agreement per code**")
    st.caption("Each code as given or not given in each session: Fleiss' kappa of that yes/no judgement (empty when "
               "nobody or everybody gave it: nothing to tell apart), the share of rater pairs who agreed on it, "
               "how often it was given and in how many sessions. Least agreement first.")
    st.dataframe(result["per_code"].drop("code"), hide_index=True, width="stretch", key="calib_per_code",
                 column_config={"label": st.column_config.TextColumn("Code"),
                                "kappa": st.column_config.NumberColumn("Kappa", format="%.2f"),
                                "agreement": st.column_config.ProgressColumn("Pairs agreeing", format="%.2f",
                                                                             min_value=0.0, max_value=1.0),
                                "given": "Times given", "sessions": "Sessions"})

st.markdown("**Where the raters diverge**")
low, high = calib.score_range(cat, ex["subject"]) if rating else (0.0, 1.0)
if rating:
    # Bars from the scale's floor made scores of 30, 32 and 34 on a 0-40 scale look alike:
    # the bars start just below the lowest score given, and the caption says so.
    given = result["divergence"]["scores"].explode().drop_nulls()
    floor = max(float(low), float(given.min()) - max(1.0, (float(given.max()) - float(given.min())) / 4)) \
        if given.len() else float(low)
    st.caption("Largest spread first: the sessions to discuss. SD = standard deviation of the raters' scores; the "
               f"chart below shows each rater's score, from {floor:g} (not from zero) to the scale's top {high:g}.")
    config = {"session_number": "Session", "mean": st.column_config.NumberColumn("Mean", format="%.1f"),
              "sd": st.column_config.ProgressColumn("SD", format="%.2f", min_value=0.0,
                                                    max_value=float(high - low) / 2),
              "low": st.column_config.NumberColumn("Lowest", format="%g"),
              "high": st.column_config.NumberColumn("Highest", format="%g"),
              "answers": st.column_config.TextColumn("Answers", width="large"),
              "scores": None}  # drawn below as dots, one a score: bars in a cell looked alike
else:
    st.caption("Lowest agreement first: the sessions to discuss. Agreement = the share of rater pairs who gave the "
               "same code in the session (Fleiss' P_i); with several codes a session, the share of codes two raters "
               "share, averaged over the pairs.")
    config = {"session_number": "Session",
              "agreement": st.column_config.ProgressColumn("Agreement", format="%.2f", min_value=0.0, max_value=1.0),
              "codes": st.column_config.TextColumn("Codes given"),
              "answers": st.column_config.TextColumn("Answers", width="large")}
st.dataframe(result["divergence"], hide_index=True, width="stretch", column_config=config,
             key="calib_divergence")
if rating and result["divergence"].height:
    web.chart(charts.calibration_scores_chart(result["divergence"], floor, float(high)), "calib_scores")

# ----------------------------------------------------------------------------- reveal
if len(done) >= 2 and st.toggle("Reveal the case's own ratings", key="calib_reveal"):
    try:
        own = calib.reveal(store, exercise_id, scope)
    except ConferenceError as err:
        refused("The case's own ratings cannot be shown yet.", [str(err)])
        st.stop()
    group_column = "group_mean" if rating else "group_codes"
    if own.width <= 2:
        st.info("The case has no stored " + ("ratings on this scale" if rating else "codes of this codebook")
                + " for these sessions: there is nothing to compare with.")
    st.caption("The case's own " + ("ratings" if rating else "codes, intensity in brackets,")
               + " in columns named by who rated, next to the group's answers.")
    st.dataframe(own, hide_index=True, width="stretch",
                 column_config={"session_number": "Session",
                                group_column: st.column_config.NumberColumn("Group mean", format="%.1f") if rating
                                else st.column_config.TextColumn("Group's codes")})
