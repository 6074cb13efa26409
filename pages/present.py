"""Present: a conference's cases one at a time, for the projector.

Cases by their labels ("Case A"), never their ids; the presenting therapist hidden unless
the group chooses otherwise; group-level figures built from fewer clients than the
catalog's minimum are not shown; next and previous; a timer against the case's budget.
"""

import time

import streamlit as st

from core import links, views, web
from core.conference import meetings
from core.conference.meetings import ConferenceError
from core.conference.presentation import slide_texts, slide_title

web.ensure_navigation(__file__)  # first: a cold deep link runs this page through app.py; then the guard
cat = web.catalog()
store = web.connection().store
st.title("Present")

scope = web.scope()
every = meetings.conferences(store, scope)
if every.is_empty():
    st.info("No conference to present yet: make one on the Conference page.")
    st.page_link(web.page("conference"), label="Go to the Conference page", icon=":material/event_note:")
    st.stop()

wanted = st.query_params.get("conference")
ids = every["conference_id"].to_list()
names = {r["conference_id"]: f"No. {r['conference_id']}, {r['supervision_group']}, {r['held_on']} ({r['cases']} cases)"
         for r in every.iter_rows(named=True)}
# A link naming no known conference presents none: never another one in its place.
chosen, problem = links.conference_id(wanted, set(ids))
conf_id = st.selectbox("Conference", ids, index=None if problem else ids.index(chosen) if chosen else 0,
                       format_func=names.get, key="present_conference", placeholder="Pick a conference")
if conf_id is None:
    st.warning(links.as_text(problem or "Pick a conference to present."))
    st.stop()
if str(conf_id) != wanted:
    st.query_params["conference"] = str(conf_id)
    st.query_params["item"] = "1"
info = meetings.conference(store, conf_id, scope)
# The group's cases as this reader may see them in the room: a trainee sees them by label.
cases = meetings.group_scope(store, scope, info["group"])
items = meetings.agenda(store, conf_id, scope=cases)
if items.is_empty():
    st.info("This conference has no case on its agenda: add one on the Conference page.")
    st.stop()


def go(to: int) -> None:
    st.query_params["item"] = str(to)


index, problem = links.agenda_place(st.query_params.get("item"), items.height)
if problem:
    st.warning(links.as_text(problem))
    st.button("Start at the first case", key="present_first", on_click=go, args=(1,))
    st.stop()

item = items.row(index - 1, named=True)
hide = cases.deidentified or st.sidebar.toggle("Hide the presenting therapist", value=True, key="present_hide",
                                              help="The slide and the charts then name no therapist.")
prev_col, where_col, next_col = st.columns([1, 3, 1], vertical_alignment="center")
prev_col.button("Previous", key="present_prev", disabled=index == 1, on_click=go, args=(index - 1,),
                icon=":material/arrow_back:", width="stretch")
where_col.markdown(f"**{item['case_label']}** · {index} of {items.height}", text_alignment="center")
next_col.button("Next", key="present_next", disabled=index == items.height, on_click=go, args=(index + 1,),
                icon=":material/arrow_forward:", width="stretch")

parts = web.read_in(cases, "case_parts", item["client_id"])
therapist = parts["case"]["therapist_id"]
st.header(slide_title(item, hide, therapist))
# Free text as the room sees it: client ids as labels, therapist ids as words unless shown.
texts = slide_texts(store, conf_id, item, therapist, scope=cases, hide_therapist=hide)
st.text(texts.reason)


@st.fragment(run_every=1)
def timer(budget: int, key: str) -> None:
    """Time on this case against its budget; restarts when the case changes."""
    start = st.session_state.setdefault(key, time.time())
    elapsed = int(time.time() - start)
    left = budget * 60 - elapsed
    clock = f"{elapsed // 60:02d}:{elapsed % 60:02d}"
    if left >= 0:
        st.metric("Time on this case", clock, f"{left // 60}:{left % 60:02d} left of {budget} min",
                  delta_color="off", delta_arrow="off")
    else:
        st.metric("Time on this case", clock, f"{-left // 60}:{-left % 60:02d} over the {budget} min",
                  delta_color="inverse", delta_arrow="off")


timer_col, restart_col = st.columns([4, 1], vertical_alignment="bottom")
timer_key = f"present_timer_{conf_id}_{index}"
with timer_col:
    timer(int(item["minutes"]), timer_key)
if restart_col.button("Restart the timer", key="present_restart"):
    st.session_state[timer_key] = time.time()
    st.rerun()

web.chart(views.overview_figure(parts, cat, title=f"{item['case_label']}: case overview"), "present_overview")

st.subheader("Context from several cases")
try:
    context = web.read("group_views", info["group"], therapist, hide_therapist=hide)
except ConferenceError as err:
    st.error(str(err))
    context = []
for n, view in enumerate(context):
    st.markdown(f"**{view.title}**")
    if view.figure is None:
        st.info(view.note)
    else:
        st.caption(view.note + f" Built from {view.clients} clients.")
        web.chart(view.figure, f"present_group_{n}")

if texts.notes or texts.actions.height:
    st.subheader("Noted so far")
    for text in texts.notes:
        st.text(text)
    actions = texts.actions
    if actions.height:
        st.dataframe(actions, hide_index=True, width="stretch",
                     column_config={"text": st.column_config.TextColumn("Action", width="large"), "owner": "Owner",
                                    "due_on": "Due", "status": "Status"})
if web.may_open("conference"):
    st.page_link(web.page("conference"), label="Notes and decisions for this case", icon=":material/edit_note:",
                 query_params={"conference": str(conf_id)})
