"""A first look at the store: what is loaded and the latest imports. The dashboard comes next."""

import streamlit as st

from core.importer import load_demo
from core.store import batches, open_store
from core.store import counts as store_counts


@st.cache_resource
def _store():
    store = open_store()
    load_demo(store, only_if_empty=True)
    return store


store = _store()
st.title("Case conference")
st.caption("Supervision case-conference tool: alliance, outcome, themes and barriers of each case.")
counts = store_counts(store)
cols = st.columns(4)
for col, (label, value) in zip(cols, counts.items()):
    col.metric(label.capitalize(), f"{value:,}")
st.subheader("Imports")
st.dataframe(batches(store), hide_index=True)
