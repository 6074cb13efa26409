"""A throwaway PostgreSQL cluster on loopback, from the system's own PostgreSQL binaries.

For the tests and for `python -m core bench serve --postgres local`, which start the whole
stack on one machine. Not for a clinic: there PostgreSQL is the system's service.

`initdb` refuses to run as root, so as root the cluster is made and run as the `postgres`
user, in a folder of its own under the system's temporary folder. It listens on 127.0.0.1
only, trusts local logins (nothing else can reach it), every wait is bounded, and `stop`
stops the server and removes its folder.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 60
# Roles of the whole cluster: the one that owns and migrates each database, and the login
# the app uses (granted the app role once a migration has made that role).
OWNER = "caseconf_owner"
WEB = "caseconf_web"


class LocalPostgresError(RuntimeError):
    pass


def bindir() -> Path | None:
    """Where initdb, pg_ctl and postgres are: `pg_config --bindir`, else the newest Debian version."""
    try:
        found = Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10,
                                    check=True).stdout.strip())
        if (found / "initdb").exists():
            return found
    except (OSError, subprocess.SubprocessError):
        pass
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalPostgres:
    root: Path
    port: int
    bin: Path

    @property
    def as_postgres(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def dsn(self, user: str = "postgres", dbname: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *args: str, timeout: float = START_TIMEOUT_S) -> None:
        done = subprocess.run([*self.as_postgres, *args], capture_output=True, text=True, timeout=timeout)
        if done.returncode:
            log = self.root / "server.log"
            raise LocalPostgresError(f"{Path(args[0]).name} failed: {done.stderr.strip()}\n"
                                     + (log.read_text()[-2000:] if log.exists() else ""))

    def start(self) -> LocalPostgres:
        data = self.root / "data"
        self._run(str(self.bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(self.root / "server.log"), "-o", options,
                  "-w", "-t", str(START_TIMEOUT_S), "start", timeout=START_TIMEOUT_S + 10)
        return self

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "-t", "30",
                      "stop", timeout=40)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def superuser(self, sql: str, params=None, dbname: str = "postgres") -> list[tuple]:
        import psycopg
        with psycopg.connect(self.dsn(dbname=dbname), autocommit=True, connect_timeout=10) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def new_database(self) -> str:
        """A fresh, empty database owned by OWNER; its name."""
        name = "caseconf_" + uuid.uuid4().hex[:10]
        self.superuser(f"CREATE DATABASE {name} OWNER {OWNER}")
        return name

    def app_database(self) -> str:
        """A new database migrated to this software's schema; the address the app servers use."""
        from core.pg.schema import APP_ROLE
        from core.pg.state import migrate
        name = self.new_database()
        migrate(self.dsn(OWNER, name))
        self.superuser(f"GRANT {APP_ROLE} TO {WEB}")  # the role exists once a database is migrated
        return self.dsn(WEB, name)

    def __enter__(self) -> LocalPostgres:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_local() -> LocalPostgres:
    """A running cluster with the owner and web roles; raises LocalPostgresError when it cannot be made."""
    found = bindir()
    if found is None:
        raise LocalPostgresError("PostgreSQL is not installed (Debian: apt-get install postgresql).")
    root = Path(tempfile.mkdtemp(prefix="caseconf-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    server = LocalPostgres(root, _free_port(), found)
    try:
        server.start()
        server.superuser(f"CREATE ROLE {OWNER} LOGIN CREATEROLE")
        server.superuser(f"CREATE ROLE {WEB} LOGIN")
    except BaseException:
        server.stop()
        raise
    return server
