"""Admin: who may sign in and what they see, the audit log, and purging text that should
never have been saved. Open to admins only (the guard in `web.ensure_navigation`)."""

import datetime as dt

import polars as pl
import streamlit as st

from core import audit, identity, web
from core.conference import notes
from core.conference.meetings import ConferenceError
from core.export import csv_bytes

web.ensure_navigation(__file__)  # first: a cold deep link runs this page through app.py; then the guard
st.title("Admin")
store = web.connection().store
scope = web.scope()
users_tab, audit_tab, purge_tab = st.tabs(["Users", "Audit log", "Purge a note"])

with users_tab:
    st.caption("A user is the identity provider's subject, shown everywhere by a pseudonymous display id. A "
               "supervisor sees the cases of the therapists in the groups they lead; a trainee their own cases, and "
               "their groups' conferences as presentation mode shows them; an admin everything.")
    listed = identity.list_users(store, scope)
    st.dataframe(listed.with_columns(pl.col("groups").list.join(", ")), hide_index=True, width="stretch",
                 column_config={"display_id": "Display id", "role": "Role", "therapist_id": "Therapist",
                                "groups": "Groups", "subject": "Subject", "issuer": "Issuer",
                                "created_at": "Added", "created_by": "Added by"})
    with st.form("admin_add_user", clear_on_submit=False):
        st.markdown("**Add a user, or change a user's role and groups**")
        c1, c2, c3 = st.columns(3)
        subject = c1.text_input("Subject (the provider's id for them)", key="admin_subject")
        name = c2.text_input("Display id (a pseudonym)", key="admin_name")
        role = c3.selectbox("Role", identity.ROLES, key="admin_role")
        c4, c5, c6 = st.columns(3)
        therapist = c4.text_input("Therapist id (a trainee)", key="admin_therapist")
        groups = c5.text_input("Groups (led or belonged to), separated by commas", key="admin_groups")
        issuer = c6.text_input("Issuer (empty: any trusted provider)", key="admin_issuer")
        if st.form_submit_button("Save the user", type="primary"):
            try:
                saved = identity.add_user(store, subject, role, issuer=issuer, name=name or None,
                                          therapist_id=therapist.strip() or None,
                                          groups=[g.strip() for g in groups.split(",") if g.strip()],
                                          by=scope.user)
            except identity.UserError as err:
                st.error("The user was not saved.")
                st.text(str(err))
            else:
                web.record("user_change", f"add {saved.display_id} as {saved.role}")
                st.success(f"Saved {saved.display_id} ({saved.role}).")
                st.rerun()
    if listed.height:
        with st.form("admin_remove_user"):
            gone = st.selectbox("Remove a user", listed["display_id"].to_list(), key="admin_remove")
            if st.form_submit_button("Remove the user"):
                row = listed.filter(pl.col("display_id") == gone).row(0, named=True)
                identity.remove_user(store, row["subject"], row["issuer"])
                web.record("user_change", f"remove {gone}")
                st.rerun()

with audit_tab:
    intact, sentence = audit.verify(store, scope)
    (st.success if intact else st.error)(sentence)
    c1, c2, c3 = st.columns(3)
    since = c1.date_input("Since", value=dt.date.today() - dt.timedelta(days=30), key="admin_audit_since")
    who = c2.text_input("User", key="admin_audit_user")
    action = c3.selectbox("Action", ["(any)", *audit.ACTIONS], key="admin_audit_action")
    found = audit.entries(store, scope, since=since, user=who.strip() or None,
                          action=None if action == "(any)" else action)
    st.caption(f"{found.height:,} {'entry' if found.height == 1 else 'entries'}, oldest first; times in UTC. The log is append-only: this page cannot "
               "change or delete an entry.")
    st.dataframe(found.tail(1000), hide_index=True, width="stretch")
    web.download_button("Download these entries (CSV)", lambda: csv_bytes(found), "audit-log.csv", "text/csv",
                        "audit log")

with purge_tab:
    st.caption("For text that should never have been saved: the note's or decision's text is removed from every "
               "version. Who wrote each version and when stays, and the purge itself is kept with who, when and why.")
    with st.form("admin_purge"):
        entry_id = st.number_input("Entry number (shown in a conference's history)", min_value=1, step=1,
                                   key="admin_purge_entry")
        why = st.text_input("Why", key="admin_purge_why")
        if st.form_submit_button("Purge the text"):
            try:
                count = notes.purge_entry(store, int(entry_id), scope=scope, why=why)
            except ConferenceError as err:
                st.error("Nothing was purged.")
                st.text(str(err))
            else:
                st.success(f"Purged the text of {count} version(s) of entry {int(entry_id)}.")
                if store.server_mode:
                    st.warning("PostgreSQL keeps the old row versions on disk until its administrator runs "
                               "VACUUM FULL on the conference entries; backups made before now still hold the text.")
                else:
                    st.info("The store's file was rewritten without the text; backups made before now still hold it.")
