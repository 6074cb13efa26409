"""Themes: transference and countertransference across the caseload, per therapist, and CCRT triads."""

import streamlit as st

from core import web

web.ensure_navigation(__file__)  # first: a cold deep link runs this page through app.py; then the guard
cat = web.catalog()
st.title("Themes")
perv = web.read("caseload_pervasiveness")  # one row per code, not per client
if perv.is_empty():
    st.info("No coded themes yet: import a themes table (kind, code, intensity per session) to see transference, "
            "countertransference and CCRT patterns here.")
    st.stop()

kinds = [k for k in cat.vocabularies.theme_kinds if k in set(perv["kind"].unique().to_list())]
kind = st.segmented_control("Codebook", kinds, default=kinds[0], key="themes_kind",
                            format_func=lambda k: cat.codebooks[k].label) or kinds[0]
web.chart(web.figure("pervasiveness", kind=kind), "themes_pervasiveness")
st.caption("Pervasiveness = the share of a client's coded sessions in which the code occurs (Luborsky); the bar is "
           "the mean over the clients coded for this codebook.")

st.subheader("Patterns per therapist")
st.caption("A code that recurs across a therapist's cases says more about the therapist's responses than about any "
           "one client: material for supervision, not a judgement.")
pattern_kind = st.selectbox("Codebook for the therapist patterns", kinds, index=kinds.index("countertransference")
                            if "countertransference" in kinds else 0, key="themes_pattern_kind",
                            format_func=lambda k: cat.codebooks[k].label)
web.chart(web.figure("therapist_patterns", {"kind": pattern_kind}), "themes_patterns")

st.subheader("CCRT triads")
st.caption("Wish -> response of other -> response of self, coded in the same session; the width of a flow is the "
           "number of sessions.")
web.chart(web.figure("ccrt_sankey"), "themes_sankey")
