"""The shipped deployment files agree with each other: a clinic that copies them gets app
servers, scheduled jobs and the command line on one store, in folders the units may write."""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
SECRETS_EXAMPLE = ROOT / ".streamlit" / "secrets.toml.example"
ENV_EXAMPLE = DEPLOY / "caseconf.env.example"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
STORE_SETTINGS = {"path": "CASECONF_DB", "postgres": "CASECONF_POSTGRES", "snapshots": "CASECONF_SNAPSHOTS"}


def _environment(text: str, *, commented: bool) -> dict[str, str]:
    """KEY=value lines of an environment file (with `commented`, also the `#KEY=value` ones
    a clinic is told to switch on)."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if commented and line.startswith("#") and "=" in line and " " not in line.split("=", 1)[0]:
            line = line[1:]
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def _write_paths(unit: Path) -> list[Path]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(unit.read_text(encoding="utf-8"))
    return [Path(p) for p in parser["Service"].get("ReadWritePaths", "").split()]


def test_the_secrets_example_names_no_store_of_its_own_so_app_servers_and_jobs_share_one():
    """Seen wrong: the example set `path = "/srv/caseconf/caseconf.duckdb"` while the
    environment file sets CASECONF_DB=/srv/caseconf/data/caseconf.duckdb. The app servers read
    the secrets file first, the scheduled jobs and the command line only the environment: two
    stores, and the app servers' one outside the folder the units may write."""
    store = tomllib.loads(SECRETS_EXAMPLE.read_text(encoding="utf-8"))["connections"]["caseconf"]
    environment = _environment(ENV_EXAMPLE.read_text(encoding="utf-8"), commented=True)
    for key, variable in STORE_SETTINGS.items():
        assert key not in store or store[key] == environment.get(variable), \
            f"secrets.toml.example sets {key} = {store[key]!r}, the environment file {variable}={environment.get(variable)!r}"


def test_every_store_path_the_examples_name_lies_where_every_unit_may_write():
    """The store, its snapshot folder beside it and server mode's snapshot folder are written
    by the app servers (the Data page's import) and by the scheduled jobs."""
    environment = _environment(ENV_EXAMPLE.read_text(encoding="utf-8"), commented=True)
    secrets_text = "\n".join(line.lstrip("# ") if line.startswith("# path") or line.startswith("# snapshots") else line
                             for line in SECRETS_EXAMPLE.read_text(encoding="utf-8").splitlines())
    store = tomllib.loads(secrets_text)["connections"]["caseconf"]
    paths = [Path(environment["CASECONF_DB"]), Path(environment["CASECONF_SNAPSHOTS"]),
             Path(store["path"]), Path(store["snapshots"])]
    assert UNITS, "no systemd units shipped"
    for unit in UNITS:
        writable = _write_paths(unit)
        assert writable, f"{unit.name} names no ReadWritePaths"
        for path in paths:
            assert any(path.is_relative_to(folder) for folder in writable), \
                f"{path} (from the examples) is outside {unit.name}'s ReadWritePaths {[str(w) for w in writable]}"
        assert "EnvironmentFile=/etc/caseconf/caseconf.env" in unit.read_text(encoding="utf-8"), \
            f"{unit.name} does not read the environment file that names the store"
