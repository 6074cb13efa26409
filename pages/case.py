"""Case: everything about one case on one session axis, then each part in detail."""

import polars as pl
import streamlit as st

from core import charts, links, views, web

CASE_CHART_PX = 940
web.ensure_navigation(__file__)  # first: a cold deep link runs this page through app.py; then the guard
cat = web.catalog()
ids = web.read("client_ids")
st.title("Case")
if not ids:
    web.stop_without_cases()

# A link naming no known case opens none: never another case in its place.
wanted = st.query_params.get("client")
known = set(ids)
problem = links.client_problem(wanted, known)
if len(ids) <= 5000:
    client = st.selectbox("Case", ids, index=None if problem else ids.index(wanted) if wanted else 0,
                          key="case_client", placeholder="Pick a case")
else:
    client = st.text_input("Client id", value="" if problem else wanted or ids[0], key="case_client_text").strip()
    problem = links.client_problem(client, known) if client else problem
if not client or problem:
    st.warning(links.as_text(problem or "Pick a case, or open one from the Caseload page."))
    st.stop()
st.query_params["client"] = client
web.record_view(client)

parts = web.read("case_parts", client)
case = parts["case"]
c1, c2, c3, c4 = st.columns(4)
c1.metric("Therapist", case["therapist_id"] or "-")
c2.metric("Group", case["supervision_group"] or "-")
c3.metric("Sessions attended", case["sessions"])
c4.metric("Priority", f"{case['priority']:g}")
if case["flags"]:
    # A static table wraps the sentences (a data grid would cut them off); a case has a
    # handful of flags. Cells are shown as text.
    web.text_table(pl.DataFrame(case["flags"]).select(pl.col("code").map_elements(cat.flag_label, return_dtype=pl.String)
                                                      .alias("Flag"), pl.col("reason").alias("Why"),
                                                      pl.col("params").alias("Rule used")))
else:
    st.caption("No flags for this case.")
feedback = case.get("feedback") or {}
if feedback.get("discussed") or feedback.get("not_discussed"):
    attended = sum(feedback.values())
    st.caption(f"Scores discussed with the client in {feedback['discussed']} of {attended} attended sessions"
               + (f" ({feedback['not_recorded']} not recorded)" if feedback["not_recorded"] else "")
               + ": the feedback part of PCOMS, on the overview's session axis.")

ruptures, track, barrier_rows = parts["ruptures"], parts["track"], parts["barriers"]
alliance_keys = views.instruments_in(parts, cat, "alliance")
outcome_keys = views.instruments_in(parts, cat, "outcome")
# The overview on one 1080p screen (less the browser's and the app's top bars), its rows
# sized so no label runs into another; each part in full in the tabs below.
web.chart(web.case_figure("overview", client, height=CASE_CHART_PX), "case_overview")

# Only the open tab is drawn (a click on another reruns the page, whose overview is cached):
# a case's first screen made and sent four tabs' charts nobody had opened yet. A closed
# tab's instrument choice is kept: Streamlit forgets the state of a widget not drawn.
for choice in ("case_alliance", "case_outcome"):
    if choice in st.session_state:
        st.session_state[choice] = st.session_state[choice]
alliance_tab, outcome_tab, themes_tab, barriers_tab = st.tabs(["Alliance", "Outcome", "Themes", "Barriers"],
                                                              key="case_tab", on_change="rerun")
with alliance_tab:
    if alliance_tab.open:
        if not alliance_keys:
            st.info("No alliance ratings for this client: add SRS or WAI-SR columns to the export to see ruptures "
                    "and repairs.")
        else:
            key = st.radio("Alliance instrument", alliance_keys, horizontal=True, key="case_alliance")
            web.chart(web.case_figure("alliance", client, key), "case_alliance_chart")
            rule = ruptures.filter(pl.col("instrument") == key)["params"].cast(pl.String)
            st.caption(f"Rupture rule: {rule[0]}" if rule.len() else "No ruptures detected with the catalog's rule.")
with outcome_tab:
    if outcome_tab.open:
        if not outcome_keys:
            st.info("No outcome scores for this client: add ORS, PHQ-9, GAD-7 or another outcome column to the "
                    "export.")
        else:
            key = st.radio("Outcome instrument", outcome_keys, horizontal=True, key="case_outcome")
            scores = track.filter(pl.col("instrument") == key)
            web.chart(web.case_figure("outcome", client, key), "case_outcome_chart")
            change = case["change"].get(key)
            if change:
                st.text(f"{key}: {change['first']:g} at session {change['first_session']} -> {change['last']:g} at "
                        f"session {change['last_session']}: {change['category']} (reliable change "
                        f"{'>=' if change['rule'] == 'ge' else '>'} {change['threshold']:g} points).")
            if scores.height:
                st.caption(f"Expected band: {scores['method'].cast(pl.String).to_list()[-1]}")
with themes_tab:
    if themes_tab.open:
        web.chart(web.case_figure("theme_timeline", client), "case_theme_timeline")
        web.chart(web.case_figure("ccrt", client), "case_ccrt")
with barriers_tab:
    if barriers_tab.open:
        web.chart(web.case_figure("barrier_timeline", client), "case_barriers")
        if barrier_rows.height:
            # A static table, as text: the data grid draws its cells on a canvas at 0.875 of the
            # theme's text size, which no style rule reaches.
            severity = {level: f"{level} ({word})" for level, word in charts.SEVERITY_WORDS.items()}
            web.text_table(barrier_rows.sort("session_number").select(
                pl.col("session_number").alias("Session"),
                pl.col("category").map_elements(lambda c: cat.code_label("barrier_categories", c),
                                                return_dtype=pl.String).alias("Category"),
                pl.col("severity").replace_strict(severity, default="not given",
                                                  return_dtype=pl.String).alias("Severity"),
                pl.col("addressed").replace_strict({True: "yes", False: "no"}, default="not recorded",
                                                   return_dtype=pl.String).alias("Addressed"),
                pl.col("note").fill_null("").alias("Note")))
