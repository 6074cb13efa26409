"""Caseload: which cases need the conference's time, and why. Choosing a case opens its page."""

import streamlit as st

from core import web
from core.analytics.caseload import filter_cases, outcome_colours, with_reasons

PAGE_SIZE = 50

web.ensure_navigation(__file__)  # first: a cold deep link runs this page through app.py; then the guard
st.title("Caseload")
case_list, flags = web.read("triage")
if case_list.is_empty():
    web.stop_without_cases()

groups = sorted(g for g in case_list["supervision_group"].unique().to_list() if g)
therapists = sorted(case_list["therapist_id"].drop_nulls().unique().to_list())
codes = sorted(flags["code"].unique().to_list())
f1, f2, f3 = st.columns(3)
group = f1.selectbox("Supervision group", ["All groups", *groups], key="caseload_group")
chosen_therapists = f2.multiselect("Therapist", therapists, key="caseload_therapists")
chosen_codes = f3.multiselect("Flag", codes, key="caseload_flags",
                              help="Show only cases with at least one of these flags.")
only_flagged = st.toggle("Only cases with a flag", value=True, key="caseload_only_flagged")

shown = filter_cases(case_list, flags, group=None if group == "All groups" else group,
                     therapists=chosen_therapists, codes=chosen_codes, only_flagged=only_flagged)
st.caption(f"{shown.height:,} of {case_list.height:,} cases, highest priority first. Priority = the sum of the "
           "weights of a case's flags (Catalog page). Select a row to open the case.")
if shown.is_empty():
    st.info("No case matches these filters. Clear a filter to see more.")
    st.stop()

pages = max(1, -(-shown.height // PAGE_SIZE))
page_no = st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, step=1,
                          key="caseload_page") if pages > 1 else 1
visible = shown.slice((page_no - 1) * PAGE_SIZE, PAGE_SIZE)
ids = tuple(visible["client_id"].to_list())
table = with_reasons(visible, flags)
spark = web.read("sparklines", ids)
colours = outcome_colours(web.read("track", clients=ids, latest_only=True))
table = (table.join(spark, on="client_id", how="left").join(colours, on="client_id", how="left")
         .select("rank", "client_id", "therapist_id", "supervision_group", "sessions", "priority", "outcome",
                 "alliance", "reasons"))
event = st.dataframe(
    table, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row", key="caseload_table",
    column_config={
        "rank": st.column_config.NumberColumn("#", width="small"),
        "client_id": "Client", "therapist_id": "Therapist", "supervision_group": "Group",
        "sessions": st.column_config.NumberColumn("Sessions", help="Attended sessions"),
        "priority": st.column_config.NumberColumn("Priority", format="%g"),
        "outcome": st.column_config.TextColumn("Outcome", help="Latest outcome colour against similar clients "
                                               "(green on track, orange behind, red not on track, grey no band)"),
        "alliance": st.column_config.LineChartColumn("Alliance (SRS)", y_min=0, y_max=40),
        "reasons": st.column_config.TextColumn("Why", width="large"),
    })
rows = event.selection.rows if event is not None else []
if rows:
    web.open_case(table["client_id"][rows[0]])

with st.expander("Reasons in full for the cases on this page"):
    for row in table.select("rank", "client_id", "reasons").iter_rows(named=True):
        st.text(f"{row['rank']}. {row['client_id']}: {row['reasons'].replace(' | ', chr(10) + '    ')}")
