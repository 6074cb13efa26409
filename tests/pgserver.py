"""A real PostgreSQL server from Debian's packages, on loopback, for the tests that need one.

The cluster itself is devtools.local_postgres (the benchmark starts one the same way):
made and run as the `postgres` user when the tests run as root, in a folder of its own,
every wait bounded, stopped and removed at the end. Tests skip when no PostgreSQL binaries are
installed (`.ci/run` installs them).
"""

from __future__ import annotations

import pytest

from devtools.local_postgres import OWNER, WEB, LocalPostgres, bindir, start_local

PgServer = LocalPostgres
__all__ = ["OWNER", "WEB", "PgServer", "pg_server", "start_server"]


def start_server() -> PgServer:
    if bindir() is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql).")
    return start_local()


@pytest.fixture(scope="session")
def pg_server():
    server = start_server()
    yield server
    server.stop()
