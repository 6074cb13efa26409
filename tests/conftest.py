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


@pytest.fixture(scope="session")
def catalog():
    return default_catalog()


def write_csv(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.csv"
    path.write_text(text, encoding="utf-8")
    return path
