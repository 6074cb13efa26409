"""A host app that mounts the case-conference pages under its own URL prefix (the plugin),
through the package's public function (`caseconf.pages` once installed)."""

import streamlit as st

import core


def home():
    st.title("Clinic intranet")
    st.text("Other tools of the clinic live here.")


st.navigation({"Clinic": [st.Page(home, title="Home", url_path="home", default=True)],
               "Case conference": core.pages(prefix="conference")}).run()
