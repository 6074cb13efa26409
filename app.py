"""The app's router: `st.navigation` over the pages `core.web.pages()` lists, with the
app's own menu in the sidebar (`core.web.navigation_menu`), drawn once the person is
signed in (`core.web.sign_in`: the sign-in screen stops here otherwise). Pages draw;
`core` knows.

Start with `./dev start` (or `streamlit run app.py`). The store is CASECONF_DB or
data/caseconf.duckdb; an empty store is filled with the bundled demo data on first run.
"""

import streamlit as st

from core import web
from core.scratch import withhold_from_others

withhold_from_others()  # the store and its snapshots are not for the machine's other users
st.set_page_config(page_title="Case conference", layout="wide")
current = st.navigation(web.pages(), position="hidden")
web.navigation_menu()
current.run()
