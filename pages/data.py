"""Data: import an export, read the row-level report, see the quarantine and the import history."""

from dataclasses import asdict
from pathlib import Path

import polars as pl
import streamlit as st

from core import history, web
from core.export import csv_bytes
from core.importer import ImportFailed, import_dataset, load_demo
from core.report import REPORT_EXAMPLES, REPORT_SCHEMA, quarantine_report
from core.scratch import private_dir, write_private
from core.store import quarantine_rows

PAGE_SIZE = 100
ACCEPTED = ["zip", "xlsx", "csv", "parquet"]
ACCEPTED_WORDS = ", ".join(f".{t}" for t in ACCEPTED[:-1]) + f" or .{ACCEPTED[-1]}"

web.ensure_navigation(__file__)  # first: a cold deep link runs this page through app.py; then the guard
st.title("Data")
st.caption("Import a clinic export: a .zip of CSV or Parquet tables, an .xlsx workbook, or a single CSV/Parquet "
           "table. Every row is loaded or quarantined with its reason; identifying text in notes is never stored.")

conn = web.connection()

with st.form("import", border=True):
    upload = st.file_uploader(f"Export file ({ACCEPTED_WORDS})", type=ACCEPTED,
                              help="The tables and columns are described in the data contract (README).")
    redact = st.checkbox("Mask identifying details in notes and load those rows (instead of quarantining them)")
    submitted = st.form_submit_button("Import", type="primary")

if submitted:
    if upload is None:
        st.warning(f"Choose a file first: the importer takes {ACCEPTED_WORDS} files. A file of another type "
                   "(such as .txt) is not taken: export the tables as CSV or Parquet, or save the workbook as .xlsx.")
    else:
        bar = st.progress(0.0, text="Starting")
        result = None
        with private_dir("caseconf-upload-") as tmp:
            path = write_private(tmp / Path(upload.name).name, upload.getbuffer())
            try:
                result = import_dataset(path, conn.store, catalog=web.catalog(), redact=redact,
                                        imported_by=web.current_user(), display_name=upload.name,
                                        progress=lambda fraction, text: bar.progress(min(fraction, 1.0), text=text))
            except ImportFailed as err:
                bar.empty()
                web.record("import", "", outcome="nothing loaded")
                st.error(f"Nothing was loaded. {err}")
        if result is not None:
            web.record("import", f"batch {result.batch_id}",
                       outcome="ok" if result.exit_code == 0 else "some rows quarantined")
            bar.progress(1.0, text="Done")
            web.clear_cache()
            st.session_state["last_import"] = result
            st.session_state["quarantine_page"] = 0

result = st.session_state.get("last_import")
if result is not None:
    (st.success if result.exit_code == 0 else st.warning)(result.summary())
    if result.problems:
        st.subheader("Validation report")
        # Bounded: the count of each kind of problem and its first examples; the full list
        # comes from the quarantine, built only when it is downloaded.
        report = pl.DataFrame([asdict(p) for p in result.problems], schema=REPORT_SCHEMA).rename({"source": "file"})
        st.caption(f"{result.problem_total:,} problem(s) in {sum(result.quarantined.values()):,} quarantined row(s)"
                   + (f"; the first {REPORT_EXAMPLES} of each kind are listed" if result.problems_truncated else "")
                   + ". Fix these rows in the export and import it again: rows are matched by their keys, so nothing "
                   "is loaded twice.")
        if result.problems_truncated:
            st.dataframe(pl.DataFrame(result.problem_counts), hide_index=True)
        # The sentence right after where the row is, and wide: it is what the person acts on.
        st.dataframe(report, hide_index=True, width="stretch",
                     column_order=["file", "line", "message", "column", "value", "rule", "table"],
                     column_config={"file": st.column_config.TextColumn("file", width="medium"),
                                    "line": st.column_config.NumberColumn("line", width="small"),
                                    "message": st.column_config.TextColumn("message", width="large"),
                                    "table": st.column_config.TextColumn("table", width="small")})
        batch, reader = result.batch_id, web.scope()
        web.download_button("Download the report (CSV)",
                            lambda: csv_bytes(quarantine_report(conn.store, reader, batch)
                                              .rename({"source": "file"})),
                            f"import-{batch}-report.csv", "text/csv", f"batch {batch} report")
    if result.ignored:
        st.info("Ignored columns (not part of the data contract): "
                + ", ".join(f"{i['table']}.{i['column']}" for i in result.ignored))

st.subheader("Quarantine")
current = st.session_state.get("quarantine_page", 0)
quarantined = quarantine_rows(conn.store, web.scope(), limit=PAGE_SIZE + 1, offset=current * PAGE_SIZE)
if quarantined.is_empty():
    st.caption("No quarantined rows.")
else:
    st.caption("Rows that were not loaded, with their raw values (identifying text masked) and the reasons.")
    st.dataframe(quarantined.head(PAGE_SIZE), hide_index=True, width="stretch")
    left, right = st.columns(2)
    if current > 0 and left.button("Previous rows"):
        st.session_state["quarantine_page"] = current - 1
        st.rerun()
    if quarantined.height > PAGE_SIZE and right.button("Next rows"):
        st.session_state["quarantine_page"] = current + 1
        st.rerun()

st.subheader("Import history")
st.dataframe(history.readable(web.read("batches")), hide_index=True, width="stretch")

st.subheader("Demo data")
st.caption("60 invented clients with recognisable stories (ruptures, sudden gains, countertransference patterns). "
           "Loading it twice changes nothing.")
if st.button("Load the demo data"):
    outcome = load_demo(conn.store)
    web.record("demo_load", "" if outcome is None else f"batch {outcome.batch_id}")
    web.clear_cache()
    st.success(outcome.summary() if outcome else "The demo data is already loaded.")
