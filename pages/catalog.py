"""Catalog: the instruments and codebooks in force, each number with its source."""

import polars as pl
import streamlit as st

from core import web
from core.analytics.change import CLINICAL_RULES

web.ensure_navigation(__file__)  # first: a cold deep link runs this page through app.py; then the guard
st.title("Catalog")
st.caption("The instruments, codebooks and analysis settings in force. A clinic changes them in its own catalog "
           "file (see README), never in code.")
cat = web.catalog()

rows = []
for key, inst in cat.instruments.items():
    rc, cut = inst.reliable_change, inst.cutoff
    rows.append({
        "instrument": key, "name": inst.name, "kind": inst.kind, "better": inst.direction,
        "scales": ", ".join(f"{s} {lo:g}-{hi:g}" for s, (lo, hi) in inst.scales.items()),
        "raters": ", ".join(inst.raters),
        "clinical range": f"score {CLINICAL_RULES[cut.clinical]} {cut.value:g}" if cut else "no cutoff",
        "reliable change": f"change {'>=' if rc.rule == 'ge' else '>'} {rc.threshold:.2f} points" if rc else "none",
        "source": inst.source,
        "cutoff source": cut.source if cut else "",
        "reliable change source": rc.source if rc else "",
    })
# Two wrapped tables, not one grid: the sources are sentences, and a grid of eleven
# columns was cut off at the right of the screen.
instruments = pl.DataFrame(rows)
st.subheader("Instruments")
web.text_table(instruments.select("instrument", "name", "kind", "better", "scales", "raters", "clinical range",
                                  "reliable change"))
st.subheader("Sources of the numbers")
web.text_table(instruments.select("instrument", "source", "cutoff source", "reliable change source"))

st.subheader("Codebooks")
for book in cat.codebooks.values():
    with st.expander(f"{book.label} ({len(book.codes)} codes)"):
        st.text(f"Source: {book.source}")
        web.text_table(pl.DataFrame({"code": list(book.codes), "label": list(book.codes.values())}))

st.subheader("Analysis settings")
sections = {
    "Sudden gains": cat.sudden_gains.model_dump(),
    "Ruptures": cat.ruptures.model_dump(),
    "Not on track": cat.not_on_track.model_dump(),
    "Triage": {k: v for k, v in cat.triage.model_dump().items() if k != "weights"},
    "Triage weights (priority = sum of the weights of a case's flags)": cat.triage.weights,
}
for title, values in sections.items():
    with st.expander(title):
        web.text_table(pl.DataFrame({"setting": list(values), "value": [str(v) for v in values.values()]}))
