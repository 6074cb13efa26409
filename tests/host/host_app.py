"""A host app that mounts the case-conference pages under its own URL prefix (the plugin)."""

import streamlit as st

from core import web


def home():
    st.title("Clinic intranet")
    st.text("Other tools of the clinic live here.")


st.navigation({"Clinic": [st.Page(home, title="Home", url_path="home", default=True)],
               "Case conference": web.pages(prefix="conference")}).run()
