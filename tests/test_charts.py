"""Charts: polars frames in, Plotly figures out, checked by their traces.

The demo dataset is loaded once into a real DuckDB file; the analytics produce the frames
a page would pass, and each test compares what a chart draws with those frames. Small
hand-made frames cover what the demo does not (hostile notes, huge series).
"""

import subprocess
import sys

import numpy as np
import plotly.io as pio
import polars as pl
import pytest

from core import charts
from core.analytics import barriers, expected, ruptures, sudden_gains, themes
from core.charts import MAX_POINTS, OKABE_ITO
from core.importer import load_demo
from core.store import Store

from .conftest import ROOT
from tests.conftest import SYSTEM

HOSTILE = "<b>x</b>"
ESCAPED = "&lt;b&gt;x&lt;/b&gt;"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("charts") / "demo.duckdb")
    load_demo(store)
    yield store
    store.close()


def client_ratings(store, client):
    return store.query("SELECT client_id, session_number, instrument, scale, rater, score FROM ratings "
                       "WHERE client_id = $c ORDER BY session_number", {"c": client}, scope=SYSTEM)


def trace(fig, name):
    found = [t for t in fig.data if (t.name or "").replace("<br>", " ") == name]  # a legend entry breaks long names
    assert found, f"no trace named {name!r}; traces: {[t.name for t in fig.data]}"
    return found[0]


def message(fig):
    assert not fig.data, "an empty figure draws no trace"
    return fig.layout.annotations[0].text.replace("<br>", " ")


def hover_texts(fig):
    out = []
    for t in fig.data:
        texts = t.hovertext if t.hovertext is not None else ()
        for text in texts:
            out += list(text) if isinstance(text, (list, tuple)) else [text]
    return [t for t in out if t]


# --------------------------------------------------------------------------- theme and helpers

def test_template_is_large_white_and_okabe_ito():
    layout = pio.templates[charts.TEMPLATE].layout
    assert layout.font.size >= 16 and layout.title.font.size > layout.font.size
    assert layout.plot_bgcolor == "white" and layout.paper_bgcolor == "white"
    assert set(layout.colorway) == set(OKABE_ITO.values())
    assert layout.xaxis.showgrid and layout.yaxis.gridcolor.startswith("#e")


def test_charts_module_does_not_import_streamlit():
    code = "import sys, core.charts; print('streamlit' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_hover_note_escapes_markup():
    assert charts.hover_note(HOSTILE) == ESCAPED
    assert charts.hover_note('<a href="x">link</a> & more') == '&lt;a href="x"&gt;link&lt;/a&gt; &amp; more'
    assert charts.hover_note(None) == ""


def test_hover_note_truncates_long_notes_at_a_word():
    note = "word " * 400
    text = charts.hover_note(note, limit=100)
    assert text.endswith("…")
    assert len(text.replace("<br>", " ")) <= 101
    assert "wor…" not in text


def test_empty_figure_shows_the_sentence():
    fig = charts.empty_figure("No alliance ratings for this client yet: import ratings with an SRS column")
    assert "No alliance ratings for this client yet" in message(fig)
    assert fig.layout.xaxis.visible is False and fig.layout.yaxis.visible is False


EMPTY_CASES = {
    "alliance": (lambda c: charts.alliance_chart(pl.DataFrame(), instrument=c.instruments["SRS"]),
                 "No SRS ratings for this client yet"),
    "alliance, no instrument": (lambda c: charts.alliance_chart(pl.DataFrame()),
                                "No alliance ratings for this client yet: import ratings with an SRS or WAI-SR column"),
    "outcome": (lambda c: charts.outcome_chart(pl.DataFrame(), instrument=c.instruments["ORS"]), "No ORS scores"),
    "theme timeline": (lambda c: charts.theme_timeline_chart(pl.DataFrame()), "No transference"),
    "ccrt": (lambda c: charts.ccrt_chart(pl.DataFrame()), "No CCRT coding"),
    "pervasiveness": (lambda c: charts.pervasiveness_chart(pl.DataFrame()), "No coded themes"),
    "therapist patterns": (lambda c: charts.therapist_pattern_chart(pl.DataFrame()), "across therapists"),
    "sankey": (lambda c: charts.ccrt_sankey(pl.DataFrame()), "no CCRT flow"),
    "barrier timeline": (lambda c: charts.barrier_timeline_chart(pl.DataFrame()), "No communication barriers"),
    "barriers over time": (lambda c: charts.barrier_categories_over_time(pl.DataFrame()), "No communication"),
    "unaddressed": (lambda c: charts.barrier_unaddressed_chart(pl.DataFrame()), "none can be unaddressed"),
    "barrier alliance": (lambda c: charts.barrier_alliance_chart(
        pl.DataFrame(schema={"client_id": pl.String, "n_with": pl.Int64})), "nothing to compare"),
    "sparkline": (lambda c: charts.sparkline(pl.DataFrame(schema={"session_number": pl.Int32, "score": pl.Float64})),
                  "no scores"),
    "case": (lambda c: charts.case_figure(), "Nothing recorded for this case yet"),
}


@pytest.mark.parametrize("case", list(EMPTY_CASES))
def test_empty_input_gives_a_sentence_instead_of_empty_axes(case, catalog):
    build, expected_text = EMPTY_CASES[case]
    assert expected_text in message(build(catalog))


# --------------------------------------------------------------------------- alliance

@pytest.fixture(scope="module")
def srs_case(demo, catalog):
    client = "c005"
    frames = dict(ratings=client_ratings(demo, client),
                  ruptures=ruptures.detect_ruptures(demo, catalog, clients=[client], scope=SYSTEM),
                  events=ruptures.coded_events(demo, clients=[client], catalog=catalog, scope=SYSTEM),
                  discrepancy=ruptures.alliance_discrepancy(demo, catalog, clients=[client], scope=SYSTEM))
    return frames, charts.alliance_chart(**frames, instrument=catalog.instruments["SRS"], catalog=catalog)


def test_alliance_total_line_follows_the_client_scores(srs_case):
    frames, fig = srs_case
    srs = frames["ratings"].filter((pl.col("instrument") == "SRS") & (pl.col("scale") == "total"))
    line = trace(fig, "Client: total")
    assert list(line.x) == srs["session_number"].to_list()
    assert list(line.y) == srs["score"].to_list()
    assert line.line.width > trace(fig, "Client: relationship").line.width


def test_alliance_cutoff_line_sits_at_the_catalog_value(srs_case, catalog):
    _, fig = srs_case
    value = catalog.instruments["SRS"].cutoff.value
    cutoff = trace(fig, f"SRS cutoff {value:g}")
    assert list(cutoff.y) == [value, value] and cutoff.line.dash == "dash"


def test_alliance_axes_name_the_scale_and_share_the_session_axis(srs_case):
    _, fig = srs_case
    assert fig.layout.yaxis.title.text == "SRS score (0-40)"
    assert fig.layout.yaxis2.title.text == "Subscale score (0-10)"
    axes = [k for k in fig.layout if k.startswith("xaxis")]
    bottom = max(axes, key=lambda k: int(k[5:] or 1))
    assert fig.layout[bottom].title.text == "Session number"
    assert all(fig.layout[k].matches == "x" + bottom[5:] for k in axes if k != bottom)


def test_alliance_marks_each_detected_rupture_with_its_repair(srs_case):
    frames, fig = srs_case
    found = frames["ruptures"].filter(pl.col("instrument") == "SRS")
    marks = [t for t in fig.data if t.name == "Rupture (score drop)"]
    assert sorted(x for t in marks for x in t.x) == sorted(found["session"].to_list())
    repaired = found.filter(pl.col("repaired_at").is_not_null())
    texts = [h for t in marks for h in t.hovertext]
    for row in repaired.iter_rows(named=True):
        assert any(f"Rupture</b> at session {row['session']}" in h and f"Repaired at session {row['repaired_at']}"
                   in h for h in texts)
    assert sum(len(t.x) for t in fig.data if t.name == "Repair (score back)") == repaired.height
    # One legend entry in each row's own legend (the totals' row and the subscales').
    rows = [t.legend for t in marks]
    assert sorted(t.legend for t in marks if t.showlegend) == sorted(set(rows))


def test_alliance_draws_coded_events_as_distinct_markers(srs_case):
    frames, fig = srs_case
    events = frames["events"]
    withdrawal = trace(fig, "Coded: Withdrawal rupture")
    repair = trace(fig, "Coded: Repair")
    assert list(withdrawal.x) == events.filter(pl.col("event") == "rupture_withdrawal")["session_number"].to_list()
    assert list(repair.x) == events.filter(pl.col("event") == "repair")["session_number"].to_list()
    assert withdrawal.marker.symbol != repair.marker.symbol


def test_alliance_discrepancy_bars_show_client_minus_therapist(demo, catalog):
    client = "c005"
    discrepancy = ruptures.alliance_discrepancy(demo, catalog, clients=[client], scope=SYSTEM)
    fig = charts.alliance_chart(client_ratings(demo, client), discrepancy=discrepancy,
                                instrument=catalog.instruments["WAI-SR"])
    total = discrepancy.filter(pl.col("scale") == "total")
    bars = trace(fig, "Client − therapist")
    assert bars.type == "bar"
    assert list(bars.x) == total["session_number"].to_list()
    assert list(bars.y) == total["difference"].to_list()
    flagged = [c == OKABE_ITO["vermillion"] for c in bars.marker.color]
    assert flagged == total["flagged"].to_list()
    limit = total["threshold_points"][0]
    assert trace(fig, f"Flag at ±{limit:g} points").y == (limit, limit, None, -limit, -limit)
    assert trace(fig, "Therapist: total").line.color == OKABE_ITO["orange"]


def test_alliance_hover_escapes_and_shortens_event_notes(catalog):
    ratings = pl.DataFrame({"session_number": [1, 2, 3], "instrument": "SRS", "scale": "total",
                            "rater": "client", "score": [36.0, 30.0, 37.0]})
    events = pl.DataFrame({"session_number": [2, 3], "event": ["rupture_confrontation", "repair"],
                           "rater": "therapist", "note": [HOSTILE, "long " * 300], "repaired_at": [3, None]})
    fig = charts.alliance_chart(ratings, events=events, instrument=catalog.instruments["SRS"], catalog=catalog)
    rupture = trace(fig, "Coded: Confrontation rupture").hovertext[0]
    assert ESCAPED in rupture and HOSTILE not in rupture
    assert "Coded repair at session 3" in rupture
    repair = trace(fig, "Coded: Repair").hovertext[0]
    assert repair.count("long") < 60 and "…" in repair


# --------------------------------------------------------------------------- outcome

@pytest.fixture(scope="module")
def ors_case(demo, catalog):
    ors = catalog.instruments["ORS"]
    every = demo.query("SELECT client_id, session_number, score FROM ratings "
                       "WHERE instrument = 'ORS' AND scale = 'total' AND rater = 'client'", scope=SYSTEM)
    options = dict(cutoff=ors.reliable_change.threshold, direction=ors.sign)
    gains = sudden_gains.identify_sudden_changes(every, kind="gain", **options)
    losses = sudden_gains.identify_sudden_changes(every, kind="loss", **options)
    client = gains.filter(pl.col("n_in_client") > 1)["client_id"][0]
    track = expected.track_colours(demo, catalog, clients=[client], scope=SYSTEM).filter(pl.col("instrument") == "ORS")
    fig = charts.outcome_chart(track, instrument=ors, sudden_gains=gains, sudden_losses=losses)
    return track, gains.filter(pl.col("client_id") == client), fig


def test_outcome_line_follows_the_scores(ors_case):
    track, _, fig = ors_case
    line = trace(fig, "ORS score")
    assert list(line.x) == track["session_number"].to_list()
    assert list(line.y) == track["score"].to_list()
    assert fig.layout.yaxis.title.text == "ORS score (0-40), higher is better"


def test_outcome_cutoff_and_reliable_change_band_come_from_the_catalog(ors_case, catalog):
    track, _, fig = ors_case
    ors = catalog.instruments["ORS"]
    assert list(trace(fig, f"Clinical cutoff {ors.cutoff.value:g}").y) == [ors.cutoff.value] * 2
    points = ors.reliable_change.threshold
    band = trace(fig, f"Within ±{points:g}: no reliable change")
    first = track["score"][0]
    assert band.fill == "toself" and min(band.y) == first - points and max(band.y) == first + points


def test_outcome_highlights_each_sudden_gain_from_pregain_to_postgain(ors_case):
    _, gains, fig = ors_case
    segment = trace(fig, "Sudden gain")
    expected_x = [x for r in gains.sort("pregain_session").iter_rows(named=True)
                  for x in (r["pregain_session"], r["postgain_session"], None)]
    expected_y = [y for r in gains.sort("pregain_session").iter_rows(named=True)
                  for y in (r["pregain_score"], r["postgain_score"], None)]
    assert list(segment.x) == expected_x and list(segment.y) == expected_y
    assert not [t for t in fig.data if t.name == "Sudden loss"]


def test_outcome_takes_sudden_gain_scores_from_the_series_when_rows_lack_them(catalog):
    scores = pl.DataFrame({"session_number": [1, 2, 3, 4, 5], "score": [20.0, 19.0, 10.0, 9.0, 9.0]})
    gains = pl.DataFrame({"instrument": ["PHQ-9"], "pregain_session": [2], "postgain_session": [3],
                          "magnitude": [9.0]})  # the shape of the case summary's JSON
    fig = charts.outcome_chart(scores, instrument=catalog.instruments["PHQ-9"], sudden_gains=gains)
    segment = trace(fig, "Sudden gain")
    assert list(segment.x) == [2, 3, None] and list(segment.y) == [19.0, 10.0, None]
    assert "19 → 10: 9 points" in segment.hovertext[0]


def test_outcome_marks_sessions_in_their_track_colour(ors_case):
    track, _, fig = ors_case
    for colour, (hue, _symbol, name) in charts.TRACK_STYLE.items():
        sessions = track.filter(pl.col("colour") == colour)["session_number"].to_list()
        drawn = [t for t in fig.data if (t.name or "").replace("<br>", " ") == name]
        assert (list(drawn[0].x) if drawn else []) == sessions
        if drawn:
            assert drawn[0].marker.color == hue


def test_outcome_expected_band_is_drawn_from_intake_plus_change(catalog):
    scores = pl.DataFrame({"session_number": [0, 1, 2, 3], "score": [10.0, 12.0, 15.0, 18.0]})
    band = pl.DataFrame({"session_number": [1, 2, 3], "expected": [2.0, 4.0, 6.0], "lower": [1.0, 2.0, 3.0],
                         "upper": [4.0, 7.0, 9.0]})
    fig = charts.outcome_chart(scores, band, instrument=catalog.instruments["ORS"])
    fill = trace(fig, "Expected band")
    assert fill.fill == "toself"
    assert list(fill.x) == [1, 2, 3, 3, 2, 1, 1, None]
    assert list(fill.y) == [11.0, 12.0, 13.0, 19.0, 17.0, 14.0, 11.0, None]
    assert list(trace(fig, "Expected (similar clients)").y) == [12.0, 14.0, 16.0]


# --------------------------------------------------------------------------- themes

@pytest.fixture(scope="module")
def timeline(demo, catalog):
    return themes.theme_timeline(demo, catalog, "c045", scope=SYSTEM)


def test_theme_heatmap_has_a_cell_per_code_and_session(timeline, catalog):
    fig = charts.theme_timeline_chart(timeline, catalog)
    (heatmap,) = fig.data
    assert heatmap.type == "heatmap"
    codes = timeline.select("kind", "code").unique().height
    first, last = timeline["session_number"].min(), timeline["session_number"].max()
    assert len(heatmap.y) == codes and len(heatmap.z) == codes
    assert list(heatmap.x) == list(range(first, last + 1))
    kinds = [label.split(":")[0] for label in heatmap.y]
    assert kinds.index("Transference") < kinds.index("Countertransference") < kinds.index("W") < kinds.index("RS")


def test_theme_heatmap_cell_is_the_mean_intensity_over_raters(catalog):
    timeline = pl.DataFrame({"session_number": [1, 1, 3], "kind": "transference",
                             "code": ["mistrustful", "mistrustful", "hostile"], "label": ["Mistrustful",
                                                                                         "Mistrustful", "Hostile"],
                             "intensity": [2, 5, None], "rater": ["therapist", "supervisor", "therapist"]})
    (heatmap,) = charts.theme_timeline_chart(timeline, catalog).data
    rows = {label: z for label, z in zip(heatmap.y, heatmap.z)}
    assert list(rows["Transference: Mistrustful"]) == [3.5, None, None]
    assert list(rows["Transference: Hostile"]) == [None, None, 0.0]  # coded without an intensity
    assert "supervisor, therapist" in heatmap.hovertext[[*heatmap.y].index("Transference: Mistrustful")][0]


def test_ccrt_chart_shows_the_clients_pervasiveness_per_component(demo, catalog):
    ccrt = themes.ccrt(demo, catalog, clients=["c045"], scope=SYSTEM)
    (bars,) = charts.ccrt_chart(ccrt).data
    row = ccrt.row(0, named=True)
    assert list(bars.y) == ["Wish (W)", "Response of other (RO)", "Response of self (RS)"]
    assert list(bars.x) == [100 * row[f"{c}_pervasiveness"] for c in ("wish", "ro", "rs")]
    assert bars.text[0].startswith(row["wish_label"])


def test_ccrt_chart_with_pervasiveness_highlights_the_ccrt_category(demo, catalog):
    ccrt = themes.ccrt(demo, catalog, clients=["c045"], scope=SYSTEM)
    perv = themes.pervasiveness(demo, catalog, clients=["c045"], scope=SYSTEM)
    fig = charts.ccrt_chart(ccrt, perv)
    assert [t.type for t in fig.data] == ["bar"] * 3
    wish = fig.data[0]
    top = perv.filter(pl.col("kind") == "ccrt_wish").sort("pervasiveness", descending=True)
    assert wish.y[0] == top["label"][0] and wish.marker.color[0] == OKABE_ITO["blue"]
    assert len(wish.y) == top.height


def test_pervasiveness_chart_averages_over_clients_coded_for_the_kind(demo, catalog):
    fig = charts.pervasiveness_chart(themes.caseload_pervasiveness(demo, catalog, scope=SYSTEM), catalog,
                                     kind="countertransference")
    (bars,) = fig.data
    # Recomputed here from the per-client rows, in polars.
    frame = themes.pervasiveness(demo, catalog, scope=SYSTEM)
    ct = frame.filter(pl.col("kind") == "countertransference")
    coded = ct["client_id"].n_unique()
    positive = ct.filter(pl.col("code") == "positive")
    i = list(bars.y).index("Countertransference: Positive")
    assert bars.x[i] == pytest.approx(100 * positive["pervasiveness"].sum() / coded)
    assert bars.text[i].endswith(f"({positive.height} of {coded} clients)")


def test_therapist_heatmap_cells_are_shares_and_bold_when_recurring(demo, catalog):
    frame = themes.therapist_patterns(demo, catalog, scope=SYSTEM)
    (heatmap,) = charts.therapist_pattern_chart(frame, catalog).data
    row = frame.filter(pl.col("recurring")).row(0, named=True)
    i, j = list(heatmap.y).index(row["therapist_id"]), list(heatmap.x).index(row["label"])
    assert heatmap.z[i][j] == pytest.approx(100 * row["share_of_clients"])
    assert heatmap.text[i][j] == f"<b>{row['clients_with_code']}/{row['clients_coded']}</b>"


def test_ccrt_sankey_flows_add_up_to_the_triads(demo, catalog):
    triads = themes.ccrt_triads(demo, catalog, scope=SYSTEM)
    (sankey,) = charts.ccrt_sankey(triads, max_triads=len(triads)).data
    assert sankey.type == "sankey"
    n_nodes = sum(triads[c].n_unique() for c in ("wish", "ro", "rs"))
    assert len(sankey.node.label) == n_nodes
    assert sum(sankey.link.value) == 2 * triads["sessions"].sum()  # each triad flows wish->RO and RO->RS
    few = charts.ccrt_sankey(triads, max_triads=5)
    assert sum(few.data[0].link.value) == 2 * triads.sort("sessions", descending=True)["sessions"].head(5).sum()
    assert "5 most frequent" in few.layout.title.text


# --------------------------------------------------------------------------- barriers

def test_barrier_timeline_places_each_barrier_and_escapes_its_note(catalog):
    frame = pl.DataFrame({"client_id": "c1", "session_number": [2, 5, 5], "category": ["cultural", "language",
                                                                                        "cultural"],
                          "severity": [1, 3, 2], "addressed": [True, False, False],
                          "note": [HOSTILE, "Interpreter was late", None]})
    fig = charts.barrier_timeline_chart(frame, catalog)
    addressed, missed = trace(fig, "Addressed"), trace(fig, "Not addressed")
    # A row's label breaks at a word past 20 characters (charts.base.row_label).
    assert list(addressed.x) == [2] and list(addressed.y) == ["Cultural<br>misunderstanding"]
    assert list(missed.x) == [5, 5] and list(missed.marker.size) == [23, 17]
    assert ESCAPED in addressed.hovertext[0] and HOSTILE not in addressed.hovertext[0]
    assert addressed.marker.symbol != missed.marker.symbol


def test_barrier_categories_over_time_stack_to_the_barrier_count(demo, catalog):
    rows = demo.query("SELECT session_number, category FROM barriers", scope=SYSTEM)
    fig = charts.barrier_categories_over_time(rows, catalog)
    assert fig.layout.barmode == "stack"
    assert sum(sum(t.y) for t in fig.data) == rows.height
    blocks = charts.barrier_categories_over_time(rows, catalog, bin_size=5)
    assert sum(sum(t.y) for t in blocks.data) == rows.height
    assert blocks.layout.xaxis.title.text == "Session number (blocks of 5)"


def test_barrier_unaddressed_chart_splits_each_category(demo, catalog):
    caseload = barriers.barrier_caseload(demo, catalog, scope=SYSTEM)
    fig = charts.barrier_unaddressed_chart(caseload)
    assert list(trace(fig, "Not addressed").x) == caseload["unaddressed"].to_list()
    assert list(trace(fig, "Addressed").x) == (caseload["count"] - caseload["unaddressed"]).to_list()
    per_client = charts.barrier_unaddressed_chart(barriers.barrier_summary(demo, catalog, scope=SYSTEM))
    assert sum(trace(per_client, "Not addressed").x) == caseload["unaddressed"].sum()


def test_barrier_alliance_chart_compares_sessions_with_and_without(demo, catalog):
    effect = barriers.barrier_alliance_effect(demo, catalog, scope=SYSTEM)
    fig = charts.barrier_alliance_chart(effect, catalog.instruments["SRS"])
    bars = fig.data[0]
    worse, better = trace(fig, "Worse with a barrier"), trace(fig, "Same or better with a barrier")
    overall = effect.overall.row(0, named=True)
    assert list(bars.y) == [overall["mean_change_with"], overall["mean_change_without"]]
    differences = [*worse.y, *better.y]
    assert len(differences) == overall["clients_with_both"] and differences == sorted(differences)
    assert max(worse.y) < 0 <= min(better.y)
    assert "SRS points" in fig.layout.yaxis.title.text


# --------------------------------------------------------------------------- caseload list and case page

def test_sparkline_is_a_bare_line_of_the_scores(demo, catalog):
    series = client_ratings(demo, "c005").filter((pl.col("instrument") == "SRS") & (pl.col("scale") == "total"))
    fig = charts.sparkline(series.select("session_number", "score"), catalog.instruments["SRS"])
    assert fig.layout.height <= 80 and fig.layout.showlegend is False
    assert fig.layout.xaxis.visible is False and fig.layout.yaxis.visible is False
    assert list(trace(fig, "score").y) == series["score"].to_list()
    assert list(fig.layout.yaxis.range) == [0, 40]


def test_case_figure_stacks_every_row_on_one_session_axis(demo, catalog):
    client = "c045"
    fig = charts.case_figure(
        ratings=client_ratings(demo, client), alliance=catalog.instruments["SRS"],
        ruptures=ruptures.detect_ruptures(demo, catalog, clients=[client], scope=SYSTEM),
        events=ruptures.coded_events(demo, clients=[client], catalog=catalog, scope=SYSTEM),
        scores=expected.track_colours(demo, catalog, clients=[client], scope=SYSTEM).filter(pl.col("instrument") == "PHQ-9"),
        outcome=catalog.instruments["PHQ-9"], timeline=themes.theme_timeline(demo, catalog, client, scope=SYSTEM),
        barriers=barriers.barrier_notes(demo, clients=[client], scope=SYSTEM), catalog=catalog)
    assert {t.type for t in fig.data} == {"scatter", "heatmap"}
    assert [a.text for a in fig.layout.annotations][:3] == ["Alliance (total)", "Coded ruptures and repairs",
                                                            "Outcome"]
    axes = sorted({t.xaxis for t in fig.data}, key=lambda a: int(a[1:] or 1))
    assert len(axes) == 5  # alliance, events, outcome, themes, barriers
    bottom = axes[-1]
    assert all(fig.layout["xaxis" + a[1:]].matches == bottom for a in axes[:-1])
    assert fig.layout["xaxis" + bottom[1:]].title.text == "Session number"
    assert fig.layout.template.layout.font.size == charts.BASE_FONT


@pytest.mark.parametrize("height, width", [(880, 1860), (940, 1400)])  # Present's projector mode, the Case page
def test_a_fitted_overview_gives_every_label_its_own_room(demo, catalog, height, width):
    """The case with the most coded themes of the demo (c045, 19 codes), fitted to one 1080p
    screen: each label of a row of categories has at least a line of its type to itself
    (before, the heatmap's rows were shrunk with the rest and its two-line labels ran into
    each other), no two rows (and their titles) overlap, and no session -1 is on the axis."""
    from core import views
    parts = views.case_parts(demo, catalog, "c045", SYSTEM)
    fig = charts.fit_height(views.overview_figure(parts, catalog), height)
    assert fig.layout.height == height
    plot_px = height - fig.layout.margin.t - fig.layout.margin.b
    tick_px = fig.layout.template.layout.yaxis.tickfont.size
    rows = []
    for name in [k for k in fig.layout.to_plotly_json() if k.startswith("yaxis")]:
        axis = fig.layout[name]
        ref = "y" + name[5:]
        heatmap = [t for t in fig.data if t.type == "heatmap" and t.yaxis == ref]
        labels = list(heatmap[0].y) if heatmap else list(axis.categoryarray or []) if axis.type == "category" else []
        low, high = axis.domain
        rows.append((high, low))
        lines = sum(str(label).count("<br>") + 1 for label in labels)
        if lines:
            assert (high - low) * plot_px / lines >= 1.2 * tick_px, (name, labels, (high - low) * plot_px)
    rows.sort(reverse=True)
    for (_, low), (high, _) in zip(rows, rows[1:]):
        assert (low - high) * plot_px >= 24, "two rows touch: the lower row's title has no room"
    assert all(0 <= low < high <= 1 for high, low in rows)
    titles = [a.text for a in fig.layout.annotations]
    assert any("most coded of 19 codes" in text for text in titles), titles
    (low_end, _high_end), = {tuple(fig.layout[k].range) for k in fig.layout.to_plotly_json() if k.startswith("xaxis")}
    assert -1 < low_end < 0


# --------------------------------------------------------------------------- the points cap

def test_limit_points_keeps_the_extremes_within_the_limit():
    n = 250_000
    frame = pl.DataFrame({"session_number": np.arange(n), "score": 30 + np.sin(np.arange(n) / 500)})
    frame = frame.with_columns(pl.when(pl.col("session_number") == 123_457).then(2.0).otherwise(pl.col("score"))
                               .alias("score"))
    thin = charts.limit_points(frame, 1_000)
    assert thin.height <= 1_000
    assert thin["score"].min() == 2.0 and thin["score"].max() == frame["score"].max()
    assert thin["session_number"].is_sorted()
    assert charts.limit_points(frame.head(10), 1_000).equals(frame.head(10))


def test_point_count_and_the_final_guard_hold_the_cap():
    import plotly.graph_objects as go
    n = 150_000
    fig = go.Figure([go.Scatter(x=list(range(n)), y=list(range(n)), hovertext=["a"] * n,
                                marker=dict(size=[5] * n))])
    assert charts.point_count(fig) == n
    charts._finish(fig)
    assert charts.point_count(fig) <= MAX_POINTS
    assert len(fig.data[0].hovertext) == len(fig.data[0].x) == len(fig.data[0].marker.size)


def test_no_chart_draws_more_than_the_cap(catalog):
    n = 60_000
    sessions = np.arange(n)
    ratings = pl.concat([pl.DataFrame({"session_number": sessions, "instrument": "WAI-SR", "scale": scale,
                                       "rater": rater, "score": 40 + 10 * np.sin(sessions / 50.0)})
                         for scale in ("total", "task", "bond") for rater in ("client", "therapist")])
    alliance = charts.alliance_chart(ratings, instrument=catalog.instruments["WAI-SR"])
    assert charts.point_count(alliance) <= MAX_POINTS
    outcome = charts.outcome_chart(pl.DataFrame({"session_number": np.arange(250_000), "score": 20.0}),
                                   instrument=catalog.instruments["ORS"])
    assert charts.point_count(outcome) <= MAX_POINTS
    codes = [("transference", c) for c in catalog.theme_codes("transference")]
    timeline = pl.DataFrame({"session_number": np.repeat(np.arange(20_000), len(codes)),
                             "kind": [k for k, _ in codes] * 20_000, "code": [c for _, c in codes] * 20_000,
                             "intensity": 3})
    heatmap = charts.theme_timeline_chart(timeline, catalog)
    assert charts.point_count(heatmap) <= MAX_POINTS
    assert "Sessions 0-" in heatmap.data[0].hovertext[0][0]
    big = pl.DataFrame({"session_number": np.arange(200_000), "category": "cultural", "severity": 2,
                        "addressed": True, "note": "n"})
    assert charts.point_count(charts.barrier_timeline_chart(big, catalog)) <= MAX_POINTS


def test_barrier_alliance_chart_shows_a_distribution_for_a_large_caseload():
    n = charts.PER_CLIENT_MARKERS + 1
    per_client = pl.DataFrame({"client_id": [f"c{i}" for i in range(n)], "therapist_id": "t1", "n_with": 2,
                               "n_without": 5, "mean_change_with": -1.0, "mean_change_without": 0.5,
                               "difference": [float(i % 7 - 3) for i in range(n)]})
    fig = charts.barrier_alliance_chart(per_client)
    (histogram,) = [t for t in fig.data if t.type == "histogram"]
    assert sorted(histogram.x) == sorted(per_client["difference"].to_list())
    assert not [t for t in fig.data if t.type == "scatter"]


def test_a_group_pervasiveness_chart_leaves_out_the_codes_of_small_cells(catalog):
    # 30 clients coded: code a with 15 (shown), b with 3 (small), c with 25 (5 lack it: small), d with 30.
    rows = [{"kind": "transference", "code": code, "label": code.upper(), "clients": n, "clients_coded": 30,
             "total": 0.5 * n, "mean": 0.5 * n / 30}
            for code, n in (("hostile", 15), ("compliant", 3), ("dependent", 25), ("withdrawn", 30))]
    frame = pl.DataFrame(rows)
    open_chart = charts.pervasiveness_chart(frame, catalog, kind="transference")
    assert "3 of 30" in str(open_chart.data[0].text)  # the caseload page, for the reader's own cases
    fig = charts.pervasiveness_chart(frame, catalog, kind="transference", suppression=catalog.suppression)
    assert [t.split("(")[1] for t in fig.data[0].text] == ["30 of 30 clients)", "15 of 30 clients)"]
    assert "2 code(s) not shown" in fig.layout.title.text


def test_a_caseload_sparkline_marks_the_cutoff_and_ruptures_and_shows_a_reliable_change(catalog):
    import re as _re
    srs = catalog.instruments["SRS"]
    svg = charts.sparkline_svg([35, 36, 36, 30, 33], srs, rupture_at=[3])
    assert 'data-mark="cutoff"' in svg and svg.count('data-mark="rupture"') == 1 and 'data-mark="latest"' in svg
    # Scaled to the client's scores (30-36), not the scale's 0-40: the fall of 6 points
    # spans most of the height.
    ys = [float(y) for y in _re.findall(r"[\d.]+,([\d.]+)", _re.search(r'points="([^"]+)"', svg).group(1))]
    assert max(ys) - min(ys) > 0.6 * 52
    # A flat curve stays flat: a change within the reliable change fills at most half the height.
    flat = charts.sparkline_svg([36, 37, 36, 37], srs)
    ys = [float(y) for y in _re.findall(r"[\d.]+,([\d.]+)", _re.search(r'points="([^"]+)"', flat).group(1))]
    assert max(ys) - min(ys) <= 0.5 * 52


def test_a_grey_outcome_says_why_in_a_clinicians_words():
    from core.analytics.caseload import outcome_colours
    latest = pl.DataFrame({"client_id": ["a", "b", "c"], "colour": ["grey", "grey", "red"],
                           "method": ["grey: intake, fewer than two scores",
                                      "grey: no clients with two or more scores on this instrument in the reference",
                                      "quantile regression"]})
    words = dict(outcome_colours(latest).select("client_id", "outcome").iter_rows())
    assert words == {"a": "grey: only the first score so far", "b": "grey: no other clients to compare with yet",
                     "c": "red: not on track"}


# --------------------------------------------------------------------------- read at a glance (issue 15)

def test_pervasiveness_labels_state_their_bars_value_so_they_run_in_the_bars_order(demo, catalog):
    frame = themes.caseload_pervasiveness(demo, catalog, scope=SYSTEM)
    (bars,) = charts.pervasiveness_chart(frame, catalog, kind="transference").data
    order = sorted(range(len(bars.x)), key=lambda i: -bars.x[i])
    assert order == list(range(len(bars.x)))  # the longest bar first
    shown = [int(text.split(" %")[0]) for text in bars.text]
    assert shown == [round(x) for x in bars.x]  # each label leads with its own bar's value
    assert shown == sorted(shown, reverse=True)
    assert all("clients)" in text for text in bars.text)


def test_a_therapist_without_a_code_gets_0_percent_not_a_blank_cell(catalog):
    frame = pl.DataFrame({"therapist_id": ["th01", "th01", "th02"], "kind": "countertransference",
                          "code": ["protective", "bored", "protective"], "label": ["Protective", "Bored", "Protective"],
                          "clients_with_code": [2, 1, 3], "clients_coded": [4, 4, 5],
                          "share_of_clients": [0.5, 0.25, 0.6], "sessions_with_code": [5, 1, 7],
                          "mean_pervasiveness": [0.3, 0.1, 0.4], "recurring": [True, False, True]})
    (heatmap,) = charts.therapist_pattern_chart(frame, catalog).data
    i, j = list(heatmap.y).index("th02"), list(heatmap.x).index("Bored")
    assert heatmap.z[i][j] == 0 and heatmap.text[i][j] == "0/5"  # coded, and none has it
    assert not [z for row in heatmap.z for z in row if z is None]  # no blank cell left to guess at


def test_the_barrier_comparison_labels_each_bar_and_says_which_fared_better(demo, catalog):
    effect = barriers.barrier_alliance_effect(demo, catalog, scope=SYSTEM)
    fig = charts.barrier_alliance_chart(effect, catalog.instruments["SRS"])
    bars = fig.data[0]
    assert not (bars.marker.pattern and bars.marker.pattern.shape), "a hatched bar reads as the worse one"
    with_, without = bars.y
    assert bars.text[0].startswith(f"{with_:+.2f} points") and bars.text[1].startswith(f"{without:+.2f} points")
    fared = "better" if with_ > without else "worse" if with_ < without else "the same"
    assert f"With a barrier the alliance fared {fared}" in fig.layout.title.text
    assert "up = better" in fig.layout.yaxis.title.text
    top = max(with_, without, 0)
    assert fig.layout.yaxis.range[1] > top  # room above the taller bar for its label


def test_calibration_scores_are_dots_that_stand_apart(catalog):
    divergence = pl.DataFrame({"session_number": [3, 2], "mean": [32.0, 21.0], "sd": [2.8, 1.4],
                               "low": [30.0, 20.0], "high": [34.0, 22.0], "answers": ["tr1: 30; tr2: 34", "tr1: 20; tr2: 22"],
                               "scores": [[30.0, 34.0], [20.0, 22.0]]})
    fig = charts.calibration_scores_chart(divergence, 15.0, 40.0)
    dots = trace(fig, "A rater's score")
    assert list(zip(dots.y, dots.x, dots.text)) == [("Session 3", 30.0, "30"), ("Session 3", 34.0, "34"),
                                                    ("Session 2", 20.0, "20"), ("Session 2", 22.0, "22")]
    assert fig.layout.xaxis.range[0] == 15.0  # not from zero: 30 and 34 are far apart
    same = divergence.with_columns(scores=pl.Series([[31.0, 31.0], [20.0, 22.0]]))
    assert "31 ×2" in trace(charts.calibration_scores_chart(same, 15.0, 40.0), "A rater's score").text


# --------------------------------------------------------------------------- issue: charts a projector can carry

def _overview_axis_titles(fig):
    return [fig.layout[k].title.text for k in fig.layout.to_plotly_json() if k.startswith("yaxis")]


@pytest.mark.parametrize("client, kind, wanted", [
    ("c027", "alliance", ["SRS", "WAI-SR"]),   # a rupture on SRS, another still open on WAI-SR
    ("c051", "outcome", ["PHQ-9", "GAD-7"]),   # in the catalog's order: PHQ-9's risk item, a reliable deterioration on GAD-7
])
def test_the_overview_draws_the_instrument_behind_each_flag(demo, catalog, client, kind, wanted):
    """Before, the overview drew the case's first instrument of each kind only: c027's open
    WAI-SR rupture and c051's PHQ-9 (its risk item) were flagged and nowhere on the chart."""
    from core import views
    parts = views.case_parts(demo, catalog, client, SYSTEM)
    on = {f["instrument"] for f in parts["case"]["flags"] if f.get("instrument")}
    assert set(wanted) <= on, parts["case"]["flags"]
    assert views.overview_instruments(parts, catalog, kind) == wanted
    titles = " | ".join(t or "" for t in _overview_axis_titles(views.overview_figure(parts, catalog)))
    for key in wanted:
        assert f"{key} score" in titles, titles


def test_a_case_without_flags_on_an_instrument_shows_its_first_one(demo, catalog):
    from core import views
    parts = views.case_parts(demo, catalog, "c001", SYSTEM)
    present = views.instruments_in(parts, catalog, "alliance")
    flagged = {f.get("instrument") for f in parts["case"]["flags"]} & set(present)
    assert views.overview_instruments(parts, catalog, "alliance") == (sorted(flagged, key=present.index)
                                                                       or present[:1])


def test_a_rupture_marker_uses_no_colour_an_outcome_or_a_barrier_uses(demo, catalog):
    """A detected or coded rupture was vermillion, the colour of a red (below the lower band)
    score on the outcome row and of an unaddressed barrier."""
    from core import views
    parts = views.case_parts(demo, catalog, "c027", SYSTEM)
    fig = views.overview_figure(parts, catalog)
    rupture_names = ("Rupture (score drop)", "Coded: Withdrawal rupture")
    ruptures = {t.marker.color for t in fig.data if t.name in rupture_names}
    assert ruptures == {charts.RUPTURE_COLOUR}
    others = {colour for colour, _symbol, _words in charts.TRACK_STYLE.values()}
    others |= {t.marker.color for t in fig.data if t.type == "scatter" and t.name not in rupture_names
               and isinstance(t.marker.color, str)}
    others |= {t.line.color for t in fig.data if t.type == "scatter" and t.name not in rupture_names
               and t.line is not None and isinstance(t.line.color, str)}
    assert charts.RUPTURE_COLOUR not in others


@pytest.mark.parametrize("kind", ["alliance", "outcome"])
def test_a_score_axis_never_stretches_a_change_smaller_than_a_meaningful_one_over_its_height(catalog, kind):
    """SRS 34, 35, 34, 35 drew a 1-point wobble over the whole height (autorange 34-35);
    the axis now spans at least twice the instrument's reliable change (SRS has none: the
    catalog's smallest rupture drop, 4 points), inside the scale's range."""
    sessions = [1, 2, 3, 4]
    if kind == "alliance":
        instrument = catalog.instruments["SRS"]
        ratings = pl.DataFrame({"session_number": sessions, "instrument": ["SRS"] * 4, "scale": ["total"] * 4,
                                "rater": ["client"] * 4, "score": [34.0, 35.0, 34.0, 35.0]})
        fig = charts.alliance_chart(ratings, instrument=instrument)
        change = instrument.rupture_min_drop
    else:
        instrument = catalog.instruments["PHQ-9"]
        scores = pl.DataFrame({"session_number": sessions, "score": [3.0, 2.0, 3.0, 2.0]})
        fig = charts.outcome_chart(scores, instrument=instrument, rc_threshold=None, cutoff=None)
        change = instrument.reliable_change.threshold
    low, high = fig.layout.yaxis.range
    assert high - low >= 2 * change
    s_low, s_high = instrument.scales["total"]
    assert low >= s_low - 0.1 * (high - low) and high <= s_high + 0.1 * (high - low)
    drawn = [34.0, 35.0] if kind == "alliance" else [2.0, 3.0]
    assert low < min(drawn) and max(drawn) < high


def test_a_score_axis_keeps_a_wide_range_as_drawn(catalog):
    from core.charts.base import score_range
    assert score_range([5.0, 30.0], (0.0, 40.0), 5.0) == pytest.approx([5.0 - 1.5, 30.0 + 1.5])
    assert score_range([39.0, 40.0], (0.0, 40.0), 4.0)[1] <= 40.0 + 0.6
    assert score_range([1.0], None, None) is None


@pytest.mark.parametrize("height", [None, 880])
def test_each_row_of_the_overview_has_its_own_legend_beside_it(demo, catalog, height):
    """One legend for every row sat above the first row, far from most marks (a barrier's
    diamond was explained eight rows up). Now each row's entries are in a legend of its own,
    placed at the row's top to its right; a second row of one kind (two outcome
    instruments) repeats none of the first one's entries."""
    from core import views
    parts = views.case_parts(demo, catalog, "c051", SYSTEM)
    fig = views.overview_figure(parts, catalog)
    if height:
        fig = charts.fit_height(fig, height)
    layout = fig.layout.to_plotly_json()
    rows = {}
    for t in fig.data:
        if t.type == "heatmap" or t.showlegend is False:
            continue
        row = int((t.yaxis or "y")[1:] or 1)
        assert t.legend == ("legend" if row == 1 else f"legend{row}"), (t.name, t.legend, t.yaxis)
        rows.setdefault(row, []).append(t.name)
    assert len(rows) >= 5
    for row in rows:
        key = "legend" if row == 1 else f"legend{row}"
        axis = layout["yaxis" if row == 1 else f"yaxis{row}"]
        assert layout[key]["x"] > 1 and layout[key]["y"] == pytest.approx(axis["domain"][1]), key
    outcome_rows = [names for names in rows.values() if any(n.endswith(" score") and n[:-6] in ("PHQ-9", "GAD-7")
                                                            for n in names)]
    assert len(outcome_rows) == 2
    assert not set(outcome_rows[0]) & set(outcome_rows[1]), outcome_rows


def test_an_and_n_more_flag_draws_every_instrument_of_its_findings(catalog):
    """A flag is one per code: "GAD-7 went from 9 to 15 ... (and 1 more)" named only GAD-7,
    so a reliable deterioration on PHQ-9 behind "(and 1 more)" was on no row."""
    from core import views
    from core.analytics.triage import _flags
    found = pl.DataFrame({"client_id": ["c1", "c1"], "instrument": ["GAD-7", "PHQ-9"], "session": [12, 12],
                          "text": ["GAD-7 went up", "PHQ-9 went up"]})
    (flag,) = _flags(found, "deteriorated", pl.col("text"), pl.col("session"), "rule").to_dicts()
    assert flag["reason"].endswith("(and 1 more)") and flag["instrument"] == "GAD-7"
    assert flag["instruments"] == ["GAD-7", "PHQ-9"]
    ratings = pl.DataFrame({"session_number": [0, 0, 0], "instrument": ["ORS", "PHQ-9", "GAD-7"],
                            "scale": ["total"] * 3, "rater": ["client"] * 3, "score": [20.0, 12.0, 9.0]})
    parts = {"ratings": ratings, "case": {"flags": [flag]}}
    assert views.overview_instruments(parts, catalog, "outcome") == ["PHQ-9", "GAD-7"]


def test_a_session_axis_of_more_than_twelve_ticks_labels_every_other_one():
    from core.charts.base import SESSION_LABELS, _ticks_for
    assert SESSION_LABELS == 12
    assert _ticks_for(11)["ticklabelstep"] == 1   # sessions 0-11: twelve labels
    assert _ticks_for(12)["ticklabelstep"] == 2   # 0-12: thirteen ticks, every other labelled
    assert _ticks_for(30) == dict(tick0=0, dtick=2, ticklabelstep=2)  # sixteen ticks of two sessions
    assert _ticks_for(22)["ticklabelstep"] == 1   # twelve ticks of two sessions


@pytest.mark.parametrize("height", [940, 880])  # the Case page and Present, projector mode
@pytest.mark.parametrize("client", ["c015", "c045", "c051"])
def test_the_overviews_legends_and_row_labels_leave_the_plot_its_width(demo, catalog, client, height):
    """On a 1400 px laptop the Case page's overview left its plot 381 px of 911 for c051: a
    right margin of 292 px for legends sized for 16 px type while a fitted overview draws
    them at 12 to 15 px, and a left one of 238 px set by a barrier row's "Language
    (interpreter needed)" on one line. The right margin now follows the legends' type as
    drawn, and a barrier row's label breaks into lines of at most 20 characters."""
    from core import views
    from core.charts.base import LEGEND_CHAR_PX, LEGEND_ENTRY_PX
    parts = views.case_parts(demo, catalog, client, SYSTEM)
    fig = charts.fit_height(views.overview_figure(parts, catalog), height)
    font = fig.layout.legend.font.size
    shown = [t.name for t in fig.data if t.showlegend is not False and t.type != "heatmap" and t.name]
    longest = max(len(line) for name in shown for line in name.split("<br>"))
    if font < charts.BASE_FONT - 1:
        assert fig.layout.margin.r <= LEGEND_ENTRY_PX + LEGEND_CHAR_PX * font / (charts.BASE_FONT - 1) * longest + 25, \
            (fig.layout.margin.r, font, longest)
    barrier_rows = [t for t in fig.data if t.name in ("Addressed", "Not addressed", "Addressed: not recorded")]
    assert barrier_rows or client == "c015"
    assert all(len(line) <= 20 for t in barrier_rows for label in t.y for line in label.split("<br>")), barrier_rows


TITLE_CHAR_PX = 11  # a character of a chart's title (22 px Arial), about


def _lines(text: str) -> list[str]:
    """A Plotly text's lines, its tags (<sup>, <b>) left out."""
    import re
    return [re.sub(r"<[^>]+>", "", line) for line in text.split("<br>")]


@pytest.mark.parametrize("scale", ["total", "relationship"])
def test_the_barrier_alliance_charts_score_title_fits_beside_its_plot(demo, catalog, scale):
    """The pooled panel's y title, "Mean change from the session before (SRS points; up =
    better)", was one line of 62 characters (about 590 px) beside a plot 320 px high: it ran
    over the chart's title and subtitle and was cut at the figure's bottom edge."""
    from core.charts.case import AXIS_TITLE_CHAR_PX
    effect = barriers.barrier_alliance_effect(demo, catalog, scope=SYSTEM)
    fig = charts.barrier_alliance_chart(effect, catalog.instruments["SRS"], scale=scale)
    margin, default = fig.layout.margin, fig.layout.template.layout.margin
    plot_px = fig.layout.height - (margin.t or default.t) - (margin.b or default.b)
    title = fig.layout.yaxis.title.text
    assert "SRS" in title and "up = better" in title
    assert all(len(line) * AXIS_TITLE_CHAR_PX <= plot_px for line in _lines(title)), (title, plot_px)
    assert len(_lines(title)) <= 3


def test_the_ccrt_sankeys_title_fits_a_laptops_chart(demo, catalog):
    """"CCRT: wish → response of other → response of self (the 40 most frequent of 75
    combinations)" was one line of 91 characters: on a 1400 px laptop (a chart about 900 px
    wide) it ran past the right edge, cut after "combination"."""
    triads = themes.ccrt_triads(demo, catalog, scope=SYSTEM)
    fig = charts.ccrt_sankey(triads)
    title = fig.layout.title.text
    assert "most frequent of" in title
    assert all(len(line) * TITLE_CHAR_PX <= 880 for line in _lines(title)), _lines(title)


def test_the_pervasiveness_axis_names_no_share_above_100_percent(demo, catalog):
    """The axis ran on to 135 to leave room for the labels beside the bars, and Plotly
    ticked it at "120 %", a share of coded sessions no code can have."""
    frame = themes.caseload_pervasiveness(demo, catalog, scope=SYSTEM)
    fig = charts.pervasiveness_chart(frame, catalog, kind="transference")
    axis = fig.layout.xaxis
    low, high = axis.range
    assert high > 100  # the labels keep their room
    assert axis.tickvals is not None and max(axis.tickvals) == 100 and min(axis.tickvals) == 0
