"""Caseload: which cases need the conference's time, and why. Choosing a case opens its page."""

import streamlit as st

from core import charts, links, web
from core.analytics.caseload import filter_cases, outcome_colours, with_reasons

PAGE_SIZE = 25  # a page the supervisor reads, not scrolls
BADGE = {"red": "red", "orange": "orange", "green": "green", "grey": "grey"}

web.ensure_navigation(__file__)  # first: a cold deep link runs this page through app.py; then the guard
st.title("Caseload")
cat = web.catalog()
case_list, flags = web.read("triage")
if case_list.is_empty():
    web.stop_without_cases()

groups = sorted(g for g in case_list["supervision_group"].unique().to_list() if g)
therapists = sorted(case_list["therapist_id"].drop_nulls().unique().to_list())
codes = sorted(flags["code"].unique().to_list())
f1, f2, f3 = st.columns(3)
group = f1.selectbox("Supervision group", ["All groups", *groups], key="caseload_group")
chosen_therapists = f2.multiselect("Therapist", therapists, key="caseload_therapists")
chosen_codes = f3.multiselect("Flag", codes, key="caseload_flags", format_func=cat.flag_label,
                              help="Show only cases with at least one of these flags.")
only_flagged = st.toggle("Only cases with a flag", value=True, key="caseload_only_flagged")

shown = filter_cases(case_list, flags, group=None if group == "All groups" else group,
                     therapists=chosen_therapists, codes=chosen_codes, only_flagged=only_flagged)
st.caption(f"{shown.height:,} of {case_list.height:,} cases, highest priority first. Priority = the sum of the "
           "weights of a case's flags (Catalog page). Open a case by its link (or Tab to it and press Enter).")
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
         .select("rank", "client_id", "therapist_id", "supervision_group", "sessions", "priority", "colour", "outcome",
                 "alliance", "rupture_at", "reasons"))
srs = cat.instruments.get("SRS")

# One row a case: its link (Tab reaches it, Enter opens it), the outcome's colour in words,
# the alliance curve and every flag's reason on a line of its own, never cut off.
WIDTHS = [0.3, 1.1, 1.4, 1.5, 5.2]
head = st.columns(WIDTHS)
for col, name in zip(head, ["#", "Case", "Outcome", "Alliance (SRS)", "Why"]):
    col.markdown(f"**{name}**")
for row in table.iter_rows(named=True):
    rank_col, case_col, outcome_col, spark_col, why_col = st.columns(WIDTHS, vertical_alignment="top")
    rank_col.text(str(row["rank"]))
    case_col.page_link(web.page("case"), label=row["client_id"], icon=":material/person:",
                       query_params={"client": row["client_id"]})
    case_col.caption(links.as_text(f"{row['therapist_id'] or 'no therapist'} · {row['supervision_group'] or 'no group'} · "
                                   f"{row['sessions']} sessions · priority {row['priority']:g}"))
    colour = row["colour"] or "grey"
    words = row["outcome"] or "grey: no outcome scores yet"
    outcome_col.badge(colour, color=BADGE.get(colour, "grey"))
    outcome_col.caption(links.as_text(words.split(": ", 1)[-1]))
    spark_col.image(charts.sparkline_svg(row["alliance"] or [], srs, row["rupture_at"] or []), width="stretch",
                    caption=f"{len(row['rupture_at'])} rupture(s) marked" if row["rupture_at"] else None)
    why_col.text("\n".join(row["reasons"].split(" | ")))
