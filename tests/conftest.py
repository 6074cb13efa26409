"""Shared fixtures: real DuckDB files in temporary folders, never mocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.catalog import default_catalog
from core.store import Store

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
    s.close()
    return path


@pytest.fixture
def app(demo_db, monkeypatch):
    """The app (app.py) through Streamlit's AppTest, on the module's demo store."""
    from streamlit.testing.v1 import AppTest

    from core.store import close_all
    monkeypatch.setenv("CASECONF_DB", str(demo_db))
    monkeypatch.setenv("CASECONF_DEMO", "0")
    yield AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
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
    """A synthetic clinic (`core.synth`) with a share of sessions marked unattended and a
    share of ratings dropped at random: the gaps real series have."""
    import numpy as np
    import polars as pl

    from core.synth import generate_synthetic_frames
    frames = generate_synthetic_frames(sessions, seed=seed)
    rng = np.random.default_rng(gaps_seed)
    frames["sessions"] = frames["sessions"].with_columns(
        attended=pl.when(pl.lit(rng.random(frames["sessions"].height)) < unattended).then(False)
        .otherwise(pl.col("attended")))
    frames["ratings"] = frames["ratings"].filter(pl.lit(rng.random(frames["ratings"].height)) > dropped)
    return frames
