"""Communication barriers: counts, unaddressed shares, the alliance effect and the notes list, by hand."""

from __future__ import annotations

import polars as pl
import pytest

from core.access import Scope
from core.analytics.barriers import barrier_alliance_effect, barrier_caseload, barrier_notes, barrier_summary
from core.catalog import load_catalog
from core.store import upsert
from tests.conftest import SYSTEM

SESSION_SCHEMA = {"client_id": pl.String, "session_number": pl.Int64, "therapist_id": pl.String,
                  "days_since_intake": pl.Int64, "modality": pl.String, "attended": pl.Boolean}
BARRIER_SCHEMA = {"client_id": pl.String, "session_number": pl.Int64, "category": pl.String,
                  "severity": pl.Int64, "addressed": pl.Boolean, "note": pl.String}
RATING_SCHEMA = {"client_id": pl.String, "session_number": pl.Int64, "instrument": pl.String,
                 "scale": pl.String, "rater": pl.String, "score": pl.Float64}


def fill(store, sessions, barriers=(), srs=()):
    """sessions: (client, session, therapist); barriers: (client, session, category, severity, addressed[, note]);
    srs: (client, session, score) as SRS totals rated by the client."""
    s = [(c, n, t, 7 * n, "individual", True) for c, n, t in sessions]
    b = [(c, n, cat, sev, addr, rest[0] if rest else "note") for c, n, cat, sev, addr, *rest in barriers]
    r = [(c, n, "SRS", "total", "client", float(x)) for c, n, x in srs]
    with store.publish() as cur:
        if s:
            upsert(cur, "sessions", pl.DataFrame(s, schema=SESSION_SCHEMA, orient="row"), 1)
        if b:
            upsert(cur, "barriers", pl.DataFrame(b, schema=BARRIER_SCHEMA, orient="row"), 1)
        if r:
            upsert(cur, "ratings", pl.DataFrame(r, schema=RATING_SCHEMA, orient="row"), 1)


def two_clients_with_barriers(store):
    fill(store, [("c1", n, "t1") for n in range(1, 5)] + [("c2", 1, "t2")],
         [("c1", 1, "language", 2, True), ("c1", 2, "language", 3, False), ("c1", 4, "language", 1, False),
          ("c1", 3, "cultural", 2, None), ("c2", 1, "language", 1, True)])


def test_barrier_counts_and_unaddressed_share_per_client(store, catalog):
    two_clients_with_barriers(store)
    s = barrier_summary(store, catalog, scope=SYSTEM)
    lang = s.filter((pl.col("client_id") == "c1") & (pl.col("category") == "language")).row(0, named=True)
    assert (lang["count"], lang["unaddressed"], lang["share_unaddressed"]) == (3, 2, 2 / 3)
    assert (lang["mean_severity"], lang["max_severity"], lang["last_session"]) == (2.0, 3, 4)
    assert lang["label"] == "Language (interpreter needed)" and lang["therapist_id"] == "t1"
    # An unknown `addressed` is not counted as unaddressed.
    cultural = s.filter(pl.col("category") == "cultural").row(0, named=True)
    assert (cultural["count"], cultural["unaddressed"]) == (1, 0)


def test_barrier_caseload_counts_clients_and_barriers_per_category(store, catalog):
    two_clients_with_barriers(store)
    c = barrier_caseload(store, catalog, scope=SYSTEM)
    assert c["category"].to_list() == ["cultural", "language"]  # codebook order
    lang = c.filter(pl.col("category") == "language").row(0, named=True)
    assert (lang["clients"], lang["share_of_clients"], lang["count"], lang["unaddressed"]) == (2, 1.0, 4, 2)
    assert lang["share_unaddressed"] == 0.5 and lang["mean_severity"] == pytest.approx(7 / 4)


def alliance_example(store):
    # c1 SRS 30, 32, 28, 29, 35 with barriers in sessions 3 and 4.
    #   changes: s2 +2 (none), s3 -4 (barrier), s4 +1 (barrier), s5 +6 (none)
    #   with: (-4 + 1) / 2 = -1.5, without: (2 + 6) / 2 = 4.0, difference -5.5
    # c2 SRS 36, 34, 33 with a barrier in session 2 only.
    #   with: -2 (n 1); without: -1 (n 1); difference -1
    fill(store, [("c1", n, "t1") for n in range(1, 6)] + [("c2", n, "t1") for n in range(1, 4)],
         [("c1", 3, "language", 2, False), ("c1", 4, "cultural", 1, True), ("c1", 4, "language", 1, True),
          ("c2", 2, "boundary", 3, False)],
         [("c1", 1, 30), ("c1", 2, 32), ("c1", 3, 28), ("c1", 4, 29), ("c1", 5, 35),
          ("c2", 1, 36), ("c2", 2, 34), ("c2", 3, 33)])


def test_alliance_change_with_and_without_a_barrier_per_client(store, catalog):
    alliance_example(store)
    effect = barrier_alliance_effect(store, catalog, scope=SYSTEM)
    c1 = effect.per_client.filter(pl.col("client_id") == "c1").row(0, named=True)
    assert (c1["n_with"], c1["n_without"]) == (2, 2)  # two barrier rows in session 4 count once
    assert (c1["mean_change_with"], c1["mean_change_without"], c1["difference"]) == (-1.5, 4.0, -5.5)
    c2 = effect.per_client.filter(pl.col("client_id") == "c2").row(0, named=True)
    assert (c2["mean_change_with"], c2["mean_change_without"], c2["difference"]) == (-2.0, -1.0, -1.0)


def test_alliance_change_with_and_without_a_barrier_over_the_scope(store, catalog):
    alliance_example(store)
    overall = barrier_alliance_effect(store, catalog, scope=SYSTEM).overall.row(0, named=True)
    # Pooled: with (-4, 1, -2) mean -5/3; without (2, 6, -1) mean 7/3.
    assert (overall["n_with"], overall["n_without"], overall["clients"], overall["clients_with_both"]) == (3, 3, 2, 2)
    assert overall["mean_change_with"] == pytest.approx(-5 / 3)
    assert overall["difference"] == pytest.approx(-4.0)
    assert overall["mean_within_client_difference"] == pytest.approx((-5.5 - 1.0) / 2)
    var_with, var_without = (49 + 64 + 1) / 9 / 2, (1 + 121 + 100) / 9 / 2
    assert overall["welch_t"] == pytest.approx(-4.0 / ((var_with + var_without) / 3) ** 0.5)


def test_a_barrier_category_can_be_examined_alone(store, catalog):
    alliance_example(store)
    c1 = barrier_alliance_effect(store, catalog, category="cultural", scope=SYSTEM).per_client.row(0, named=True)
    assert (c1["n_with"], c1["mean_change_with"], c1["n_without"]) == (1, 1.0, 3)


def test_a_lower_is_better_alliance_instrument_counts_a_fall_as_improvement(store, tmp_path):
    extra = tmp_path / "clinic.toml"
    extra.write_text('[instruments.SRS]\ndirection = "lower"\n', encoding="utf-8")
    flipped = load_catalog(extra)
    alliance_example(store)
    c1 = barrier_alliance_effect(store, flipped, scope=SYSTEM).per_client.row(0, named=True)
    assert (c1["mean_change_with"], c1["mean_change_without"]) == (1.5, -4.0)


def test_an_unknown_instrument_scale_rater_or_category_is_refused_with_a_sentence(store, catalog):
    with pytest.raises(ValueError, match="not an alliance instrument"):
        barrier_alliance_effect(store, catalog, instrument="PHQ-9", scope=SYSTEM)
    with pytest.raises(ValueError, match="no scale"):
        barrier_alliance_effect(store, catalog, scale="bond", scope=SYSTEM)
    with pytest.raises(ValueError, match="not rated by"):
        barrier_alliance_effect(store, catalog, rater="observer", scope=SYSTEM)
    with pytest.raises(ValueError, match="not a barrier category"):
        barrier_alliance_effect(store, catalog, category="weather", scope=SYSTEM)


def test_search_in_notes_takes_percent_and_underscore_literally(store):
    fill(store, [("c1", n, "t1") for n in range(1, 5)],
         [("c1", 1, "language", 1, True, "Interpreter missed 50% of the session"),
          ("c1", 2, "language", 1, True, "interpreter missed 500 words"),
          ("c1", 3, "cultural", 1, True, "used the word snake_case"),
          ("c1", 4, "cultural", 1, True, "snakeXcase")])
    assert barrier_notes(store, search="50%", scope=SYSTEM)["session_number"].to_list() == [1]
    assert barrier_notes(store, search="E_C", scope=SYSTEM)["session_number"].to_list() == [3]
    assert barrier_notes(store, search="INTERPRETER", scope=SYSTEM)["session_number"].to_list() == [1, 2]
    assert barrier_notes(store, search="x' OR '1'='1", scope=SYSTEM).is_empty()


def test_barrier_notes_are_paged_and_filtered_by_category(store):
    fill(store, [("c1", n, "t1") for n in range(1, 6)],
         [("c1", n, "language" if n % 2 else "cultural", 1, True, f"note {n}") for n in range(1, 6)])
    page = barrier_notes(store, category="language", limit=2, offset=1, scope=SYSTEM)
    assert page["session_number"].to_list() == [3, 5]
    assert page["matches"].to_list() == [3, 3]
    assert page.columns == ["client_id", "session_number", "category", "severity", "addressed", "note", "matches"]


def test_a_scope_excludes_other_therapists_clients(store, catalog):
    two_clients_with_barriers(store)
    fill(store, [], srs=[("c1", 1, 30), ("c1", 2, 31), ("c2", 1, 30)])
    only_t2 = Scope.therapists({"t2"})
    assert barrier_summary(store, catalog, scope=only_t2)["client_id"].to_list() == ["c2"]
    assert barrier_caseload(store, catalog, scope=only_t2)["count"].to_list() == [1]
    assert barrier_notes(store, scope=only_t2)["client_id"].to_list() == ["c2"]
    assert barrier_alliance_effect(store, catalog, scope=only_t2).per_client.is_empty()


def test_an_empty_store_gives_empty_frames_with_the_documented_columns(store, catalog):
    assert barrier_summary(store, catalog, scope=SYSTEM).columns == [
        "client_id", "therapist_id", "category", "label", "count", "unaddressed", "share_unaddressed",
        "mean_severity", "max_severity", "last_session"]
    assert barrier_caseload(store, catalog, scope=SYSTEM).columns == [
        "category", "label", "clients", "share_of_clients", "count", "unaddressed", "share_unaddressed",
        "mean_severity", "max_severity"]
    effect = barrier_alliance_effect(store, catalog, scope=SYSTEM)
    assert effect.per_client.is_empty()
    assert effect.per_client.columns == ["client_id", "therapist_id", "n_with", "n_without", "mean_change_with",
                                         "mean_change_without", "difference"]
    assert effect.overall.row(0, named=True)["n_with"] == 0
    assert barrier_notes(store, search="x", scope=SYSTEM).is_empty()
