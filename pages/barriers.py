"""Barriers: communication barriers over time, what is left unaddressed, the notes, and the alliance."""

import streamlit as st

from core import web

PAGE_SIZE = 50
web.ensure_navigation(__file__)  # first: a cold deep link runs this page through app.py; then the guard
cat = web.catalog()
st.title("Barriers")
summary = web.read("barrier_caseload")
if summary.is_empty():
    st.info("No communication barriers recorded yet: import a barriers table (category, severity, addressed, "
            "note per session) to see them here.")
    st.stop()

# One below the other, each the page's full width: in half a page the legends leave the
# plots too little room (the sessions axis about 170 px wide) to read on a projector.
web.chart(web.figure("barriers_over_time"), "barriers_over_time")
web.chart(web.figure("barriers_unaddressed"), "barriers_unaddressed")

st.subheader("Alliance in sessions with a barrier")
alliance = [k for k in cat.instruments_of("alliance")]
instrument = st.selectbox("Alliance instrument", alliance, key="barriers_instrument")
web.chart(web.figure("barrier_effect", {"instrument": instrument}, instrument=instrument), "barriers_effect")

st.subheader("Notes")
codes = cat.codebooks["barrier_categories"].codes
f1, f2 = st.columns([2, 1])


def first_page():
    st.session_state["barriers_page"] = 0


search = f1.text_input("Search the notes", key="barriers_search", placeholder="a word or phrase",
                       on_change=first_page).strip() or None
category = f2.selectbox("Category", [None, *codes], key="barriers_category", on_change=first_page,
                        format_func=lambda c: "All categories" if c is None else codes[c])
page_no = st.session_state.get("barriers_page", 0)
notes = web.read("barrier_notes", search=search, category=category, limit=PAGE_SIZE, offset=page_no * PAGE_SIZE)
total = int(notes["matches"][0]) if notes.height else 0
st.caption(f"{total:,} note(s) match." + (f" Showing {page_no * PAGE_SIZE + 1}-{page_no * PAGE_SIZE + notes.height}."
                                          if total else ""))
if notes.height:
    st.dataframe(notes.drop("matches"), hide_index=True, width="stretch",
                 column_config={"client_id": "Client", "session_number": "Session", "category": "Category",
                                "severity": "Severity", "addressed": "Addressed",
                                "note": st.column_config.TextColumn("Note", width="large")})
    p1, p2 = st.columns(2)
    if page_no > 0 and p1.button("Previous notes"):
        st.session_state["barriers_page"] = page_no - 1
        st.rerun()
    if (page_no + 1) * PAGE_SIZE < total and p2.button("Next notes"):
        st.session_state["barriers_page"] = page_no + 1
        st.rerun()
