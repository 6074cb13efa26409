"""Present: a conference's cases one at a time, for the projector.

Cases by their labels ("Case A", lettered in agenda order), never their ids; the presenting
therapist hidden unless the group chooses otherwise; group-level figures built from fewer
clients than the catalog's minimum are not shown; next and previous (also the arrow keys);
a large timer against the case's budget that turns colour and can be paused (P).

Projector mode (`?projector=1`, the F key) gives the slide the whole screen: no sidebar,
no header, no selector, and the case's overview sized to fit one 1080p screen.
"""

import time

import polars as pl
import streamlit as st

from core import links, web
from core.conference import meetings
from core.conference import timer as case_timer
from core.conference.meetings import ConferenceError
from core.conference.presentation import slide_texts, slide_title

web.ensure_navigation(__file__)  # first: a cold deep link runs this page through app.py; then the guard
cat = web.catalog()
store = web.connection().store
projector = st.query_params.get("projector") == "1"
# The overview's height in projector mode: a 1080p screen less the slide's top row and its
# reason line.
PROJECTOR_CHART_PX = 880
# Outside projector mode the overview is fitted as on the Case page: drawn at its natural
# height it was 1910 px tall (two screens, its rows far apart) and the theme heatmap's
# labels ran into each other.
SLIDE_CHART_PX = 940
if projector:
    web.projector_mode()
else:
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
if projector and chosen is not None and not problem:
    conf_id = chosen  # the room sees the slide only; the selector is in the normal view
else:
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
hide = cases.deidentified or st.session_state.get("present_hide", True)
if not cases.deidentified and not projector:
    st.sidebar.toggle("Hide the presenting therapist", value=True, key="present_hide",
                      help="The slide and the charts then name no therapist.")
parts = web.read_in(cases, "case_parts", item["client_id"])
therapist = parts["case"]["therapist_id"]
# Free text as the room sees it: client ids as labels, therapist ids as words unless shown.
texts = slide_texts(store, conf_id, item, therapist, scope=cases, hide_therapist=hide)


def set_projector(on: bool) -> None:
    if on:
        st.query_params["projector"] = "1"
    else:
        st.query_params.pop("projector", None)


def toggle_timer(key: str) -> None:
    st.session_state[key] = case_timer.toggled(st.session_state[key], time.time())


def restart_timer(key: str) -> None:
    st.session_state[key] = case_timer.started(time.time())


timer_key = f"present_timer_{conf_id}_{index}"
st.session_state.setdefault(timer_key, case_timer.started(time.time()))
running = st.session_state[timer_key]["paused_at"] is None


@st.fragment(run_every=1 if running else None)
def timer(budget: int, key: str) -> None:
    """Time on this case against its budget, large, in the colour of its phase and in words;
    its own timer per case, kept while the group moves back and forth."""
    shown = case_timer.reading(st.session_state[key], budget, time.time())
    # Numbers and fixed words only: nothing typed by anyone reaches this HTML.
    st.html(f'<div data-testid="presentTimer" data-phase="{shown.phase}" data-paused="{str(shown.paused).lower()}" '
            f'style="line-height:1.05;color:{shown.colour}">'
            f'<div style="font-size:3.4rem;font-weight:700;font-variant-numeric:tabular-nums">{shown.clock}</div>'
            f'<div style="font-size:1.05rem;font-weight:600">{shown.words}</div></div>')


# One row: previous, the case and its place, the timer and its buttons, next.
# The outer columns hold a button with its icon, label and key: at [1.1, 2.6, ...] a laptop
# with the sidebar open cut "Previous" and "Projector" to "Pre..." and "Proj...".
prev_col, case_col, timer_col, pause_col, next_col = st.columns([1.5, 2.0, 1.8, 1.2, 1.5],
                                                                vertical_alignment="center")
prev_col.button("Previous", key="present_prev", disabled=index == 1, on_click=go, args=(index - 1,),
                icon=":material/arrow_back:", width="stretch", shortcut="Left")
with case_col:
    st.header(slide_title(item, hide, therapist), anchor=False)
    st.caption(f"{index} of {items.height} on the agenda")
with timer_col:
    timer(int(item["minutes"]), timer_key)
pause_col.button("Resume" if not running else "Pause", key="present_pause", on_click=toggle_timer,
                 args=(timer_key,), icon=":material/play_arrow:" if not running else ":material/pause:",
                 width="stretch", shortcut="P")
pause_col.button("Restart", key="present_restart", on_click=restart_timer, args=(timer_key,),
                 icon=":material/restart_alt:", width="stretch")
next_col.button("Next", key="present_next", disabled=index == items.height, on_click=go, args=(index + 1,),
                icon=":material/arrow_forward:", width="stretch", shortcut="Right")
if projector:
    next_col.button("Leave", key="present_leave", on_click=set_projector, args=(False,),
                    icon=":material/fullscreen_exit:", width="stretch", shortcut="Esc",
                    help="Leave projector mode (Esc)")
else:
    next_col.button("Projector", key="present_projector", on_click=set_projector, args=(True,),
                    icon=":material/fullscreen:", width="stretch", shortcut="F",
                    help="The slide on the whole screen (F); the browser's own full screen is F11.")
st.text(texts.reason)



def overview_options(row: dict) -> dict:
    return {"title": f"{row['case_label']}: case overview", "height": PROJECTOR_CHART_PX if projector else SLIDE_CHART_PX}


web.chart(web.case_figure_in(cases, "overview", item["client_id"], **overview_options(item)), "present_overview")

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
        web.text_table(actions.select(pl.col("text").alias("Action"), pl.col("owner").alias("Owner"),
                                      pl.col("due_on").cast(pl.String).fill_null("").alias("Due"),
                                      pl.col("status").alias("Status")))
if web.may_open("conference"):
    st.page_link(web.page("conference"), label="Notes and decisions for this case", icon=":material/edit_note:",
                 query_params={"conference": str(conf_id)})
# The cases next and previous on the agenda, made while the room looks at this one, so
# the next click finds them ready.
for other in (index + 1, index - 1):
    if 1 <= other <= items.height:
        row = items.row(other - 1, named=True)
        web.prefetch_slide_in(cases, row["client_id"], info["group"], hide, **overview_options(row))
