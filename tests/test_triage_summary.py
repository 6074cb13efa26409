"""The triage kept in each snapshot (analytics.triage.summarize): made when an import
publishes, read through the reader's scope, and always the triage the sources give."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from core.access import Scope
from core.analytics import triage as triage_module
from core.analytics.triage import catalog_key, triage, triage_flags
from core.catalog import load_catalog
from core.store import Store, upsert
from tests.conftest import SYSTEM, gappy_clinic, raw


def _same(store, catalog, scope, clients=None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The precomputed triage and the computed one, asserted equal (every column, row and order)."""
    kept_cases, kept_flags = triage(store, catalog, scope, clients)
    made_cases, made_flags = triage(store, catalog, scope, clients, precomputed=False)
    assert_frame_equal(kept_cases, made_cases)
    assert_frame_equal(kept_flags, made_flags)
    assert_frame_equal(triage_flags(store, catalog, scope, clients), made_flags)
    return made_cases, made_flags


def _scopes(store) -> list[Scope]:
    """Everyone, an admin, each group's supervisor and each therapist as a trainee."""
    therapists = store.query("SELECT therapist_id, supervision_group FROM therapists ORDER BY ALL", scope=SYSTEM)
    scopes = [SYSTEM, Scope.admin("admin1")]
    for (group,), rows in therapists.group_by(["supervision_group"], maintain_order=True):
        scopes.append(Scope.supervisor("sup", [group], rows["therapist_id"].to_list()))
        scopes += [Scope.trainee(t, t, [group]) for t in rows["therapist_id"].to_list()[:3]]
    return scopes


@pytest.fixture(scope="module")
def demo(demo_db):
    store = Store(demo_db)
    yield store
    store.close()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A small synthetic clinic with gaps, where some clients changed therapist halfway:
    a trainee who took such a case over sees only part of its sessions."""
    frames = gappy_clinic(6_000, seed=11, gaps_seed=3, unattended=0.08, dropped=0.1)
    sessions = frames["sessions"]
    therapists = frames["therapists"]["therapist_id"].to_list()
    clients = sessions["client_id"].unique().sort().to_list()
    moved = set(clients[::7])
    frames["sessions"] = sessions.with_columns(
        therapist_id=pl.when(pl.col("client_id").is_in(moved) & (pl.col("session_number") % 2 == 1))
        .then(pl.lit(therapists[0])).otherwise(pl.col("therapist_id")))
    store = Store(tmp_path_factory.mktemp("synthetic") / "s.duckdb")
    with store.publish() as cur:
        for name, frame in frames.items():
            upsert(cur, name, frame, 1)
    yield store
    store.close()


def test_a_published_snapshot_holds_the_triage_of_every_client(demo, catalog):
    info = raw(demo, "SELECT catalog_key FROM triage_info", side="data")
    assert info["catalog_key"].to_list() == [catalog_key(catalog)]
    kept = raw(demo, "SELECT client_id FROM triage_cases ORDER BY client_id", side="data")["client_id"]
    clients = raw(demo, "SELECT DISTINCT client_id FROM sessions ORDER BY client_id", side="data")["client_id"]
    assert kept.to_list() == clients.to_list() and kept.len() > 10
    flags = raw(demo, "SELECT count(*) AS n FROM triage_flags", side="data")["n"].item()
    assert flags == triage(demo, catalog, SYSTEM, precomputed=False)[1].height > 0


def test_the_precomputed_triage_is_the_computed_one_on_the_demo_clinic(demo, catalog):
    for scope in _scopes(demo):
        _same(demo, catalog, scope)
    cases, _ = _same(demo, catalog, SYSTEM)
    some = cases["client_id"].to_list()[::3]
    _same(demo, catalog, SYSTEM, some)
    _same(demo, catalog, Scope.trainee("th02", "th02", ["group-north"]), some)


def test_the_precomputed_triage_is_the_computed_one_on_a_synthetic_clinic(synthetic, catalog):
    cases, flags = _same(synthetic, catalog, SYSTEM)
    assert cases.height > 100 and flags["code"].n_unique() >= 8
    for scope in _scopes(synthetic)[:6]:
        _same(synthetic, catalog, scope)


def test_a_client_seen_only_in_part_is_computed_from_the_sources(synthetic, catalog, monkeypatch):
    # The first therapist took over every seventh client's odd sessions: their own view of
    # those clients differs from the clinic's, so those are computed with their scope.
    first = synthetic.query("SELECT min(therapist_id) AS t FROM therapists", scope=SYSTEM)["t"].item()
    scope = Scope.trainee(first, first, ["any"])
    computed = []
    made = triage_module._case_list_and_flags

    def spy(store, catalog, scope, clients, *rest):
        computed.append(clients)
        return made(store, catalog, scope, clients, *rest)
    monkeypatch.setattr(triage_module, "_case_list_and_flags", spy)
    cases, _ = triage(synthetic, catalog, scope)
    assert len(computed) == 1 and 0 < len(computed[0]) < cases.height
    monkeypatch.undo()
    _same(synthetic, catalog, scope)


def test_the_clinic_wide_triage_reads_the_snapshot_and_computes_nothing(demo, catalog, monkeypatch):
    def refused(*args, **kwargs):
        raise AssertionError("computed from the sources")
    expected = triage(demo, catalog, SYSTEM, precomputed=False)
    monkeypatch.setattr(triage_module, "_case_list_and_flags", refused)
    found = triage(demo, catalog, SYSTEM)
    assert_frame_equal(found[0], expected[0])
    assert_frame_equal(found[1], expected[1])


def test_a_trainee_reads_only_their_own_clients_from_the_kept_triage(demo, catalog):
    trainee = Scope.trainee("th02", "th02", ["group-north"])
    own = set(raw(demo, "SELECT DISTINCT client_id FROM sessions WHERE therapist_id = 'th02'", side="data")
              ["client_id"])
    every = set(raw(demo, "SELECT DISTINCT client_id FROM triage_flags", side="data")["client_id"])
    assert own and every - own  # the table holds others' clients
    for table in ("triage_cases", "triage_flags"):
        seen = set(demo.query(f"SELECT client_id FROM {table}", scope=trainee)["client_id"])
        assert seen and seen <= own, table
    cases, flags = triage(demo, catalog, trainee)
    assert set(cases["client_id"]) <= own and set(flags["client_id"]) <= own and flags.height > 0


def test_another_catalog_computes_the_triage_from_the_sources(demo, tmp_path):
    extra = tmp_path / "clinic.toml"
    extra.write_text("[triage.weights]\nbarriers_unaddressed = 9.0\n", encoding="utf-8")
    clinic = load_catalog(extra)
    assert catalog_key(clinic) != raw(demo, "SELECT catalog_key FROM triage_info", side="data").item()
    _same(demo, clinic, SYSTEM)
    _same(demo, clinic, Scope.trainee("th02", "th02", ["group-north"]))


def test_a_snapshot_from_before_the_kept_triage_is_migrated_and_filled(tmp_path, catalog):
    frames = gappy_clinic(400, seed=2, gaps_seed=1, unattended=0.1, dropped=0.1)
    path = tmp_path / "old.duckdb"
    store = Store(path)
    with store.publish() as cur:
        for name, frame in frames.items():
            upsert(cur, name, frame, 1)
    old = store.snapshot_path
    store.close()
    con = duckdb.connect(str(old))
    for table in ("triage_info", "triage_cases", "triage_flags"):
        con.execute(f"DROP TABLE {table}")
    con.execute("UPDATE snapshot_info SET version = 3")
    con.close()
    store = Store(path)
    try:
        assert store.snapshot_path != old
        assert raw(store, "SELECT catalog_key FROM triage_info", side="data").item() == catalog_key(catalog)
        _same(store, catalog, SYSTEM)
    finally:
        store.close()


def test_a_clients_flags_do_not_depend_on_who_else_is_in_scope(demo, catalog):
    # Two findings of one session (or two flags of one weight and session) were ordered by
    # an unstable sort: which came first changed with the other clients in the frame.
    everyone = triage(demo, catalog, SYSTEM)[1]
    for scope in _scopes(demo)[2:]:
        full = raw(demo, "SELECT client_id, count(*) AS n FROM sessions GROUP BY client_id", side="data")
        seen = demo.query("SELECT client_id, count(*) AS n FROM sessions GROUP BY client_id", scope=scope)
        whole = seen.join(full, on=["client_id", "n"])["client_id"]
        flags = triage(demo, catalog, scope)[1]
        assert_frame_equal(flags.filter(pl.col("client_id").is_in(whole.implode())),
                           everyone.filter(pl.col("client_id").is_in(whole.implode())))



def _kept(store) -> int:
    return store.query("SELECT count(*) AS n FROM triage_info", scope=SYSTEM).item()


def test_a_publish_that_does_not_make_the_triage_again_keeps_none(tmp_path, monkeypatch, catalog):
    """A process that had not loaded the triage (the command line's users or audit
    command opening an older store) published a copy still holding the previous data's
    triage, served as current."""
    import core.store as store_module
    frames = gappy_clinic(400, seed=5, gaps_seed=1, unattended=0.05, dropped=0.05)
    store = Store(tmp_path / "s.duckdb")
    with store.publish() as cur:
        for name, frame in frames.items():
            upsert(cur, name, frame, 1)
    assert _kept(store) == 1
    monkeypatch.setattr(store_module, "PUBLISH_STEPS", [])
    with store.publish() as cur:
        cur.execute("DELETE FROM ratings")
    assert _kept(store) == 0
    assert triage_module._precomputed(store, catalog, SYSTEM, None, None) is None
    store.close()


def test_a_triage_that_fails_while_kept_fails_neither_the_publish_nor_the_reads(tmp_path, monkeypatch, catalog):
    def broken(*args, **kwargs):
        raise ValueError("a note's text that must not reach the log")
    frames = gappy_clinic(400, seed=5, gaps_seed=1, unattended=0.05, dropped=0.05)
    store = Store(tmp_path / "s.duckdb")
    monkeypatch.setattr(triage_module, "summarize", broken)
    with store.publish() as cur:
        for name, frame in frames.items():
            upsert(cur, name, frame, 1)
    assert _kept(store) == 0
    assert triage_flags(store, catalog, SYSTEM).height > 0  # computed from the data
    store.close()
