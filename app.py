"""The app's router. Pages draw; `core` knows.

Start with `./dev start` (or `streamlit run app.py`). The store is CASECONF_DB or
data/caseconf.duckdb; an empty store is filled with the bundled demo data on first run.
"""

import streamlit as st

st.set_page_config(page_title="Case conference", layout="wide")

navigation = st.navigation([st.Page("pages/overview.py", title="Overview", default=True)])
navigation.run()
