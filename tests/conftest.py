"""Shared fixtures: real DuckDB files in temporary folders, never mocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.catalog import default_catalog
from core.store import Store
from devtools.bench import signed_in  # noqa: F401  (an AppTest signed in through the OIDC sign-in)

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(tmp_path / "clinic.duckdb")
    yield s
    s.close()


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    """A store with the demo data and the messy example export, shared by a module's tests."""
    from core.importer import import_dataset, load_demo
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    s = Store(path)
    load_demo(s)
    import_dataset(ROOT / "data" / "examples" / "messy_export.zip", s)
    add_test_users(s)
    s.close()
    return path


# One user per role (their subjects are their display ids): the admin sees everything, the
# supervisor leads group-north, the trainee is th02 of group-north.
TEST_USERS = {"admin1": ("admin", None, ()), "sup1": ("supervisor", None, ("group-north",)),
              "th02": ("trainee", "th02", ("group-north",))}


def add_test_users(store) -> None:
    from core.identity import add_user
    for subject, (role, therapist, groups) in TEST_USERS.items():
        add_user(store, subject, role, therapist_id=therapist, groups=groups)


@pytest.fixture
def app(demo_db, monkeypatch):
    """The app (app.py) through Streamlit's AppTest, on the module's demo store."""
    from streamlit.testing.v1 import AppTest

    from core.store import close_all
    monkeypatch.setenv("CASECONF_DB", str(demo_db))
    monkeypatch.setenv("CASECONF_DEMO", "0")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    signed_in(at, "admin1")
    yield at
    close_all()


@pytest.fixture(scope="session")
def catalog():
    return default_catalog()


def write_csv(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.csv"
    path.write_text(text, encoding="utf-8")
    return path


def gappy_clinic(sessions: int, *, seed: int, gaps_seed: int, unattended: float, dropped: float) -> dict:
    """A synthetic clinic (`devtools.synth`) with a share of sessions marked unattended and a
    share of ratings dropped at random: the gaps real series have."""
    import numpy as np
    import polars as pl

    from devtools.synth import generate_synthetic_frames
    frames = generate_synthetic_frames(sessions, seed=seed)
    rng = np.random.default_rng(gaps_seed)
    frames["sessions"] = frames["sessions"].with_columns(
        attended=pl.when(pl.lit(rng.random(frames["sessions"].height)) < unattended).then(False)
        .otherwise(pl.col("attended")))
    frames["ratings"] = frames["ratings"].filter(pl.lit(rng.random(frames["ratings"].height)) > dropped)
    return frames


# The tests read as the store's owner unless a test is about a narrower reader.
from core.access import Scope  # noqa: E402

SYSTEM = Scope.system("tests", user="tester")


def as_user(user: str) -> Scope:
    """The store's owner acting as `user` (the author of what the test writes)."""
    return Scope.system("tests", user=user)


def raw(store, sql: str, side: str = "state"):
    """A read of one of the store's files as it is (its information_schema, its tables),
    around the scoper on purpose: what the file holds, not what a reader may see.
    `side`: "state" (what people write) or "data" (the current snapshot)."""
    with (store.state_cursor() if side == "state" else store.snapshot_cursor()) as cur:
        return cur.sql(sql).pl()
