"""A clinic network on one machine: N `streamlit run` app servers behind nginx, over one store.

The benchmark (`python -m core bench serve`) and the integration tests start the same
shape a clinic deploys with `deploy/`: app servers on loopback ports, nginx in front with
the site file rendered from `deploy/nginx/caseconf.conf.in` (sticky routing, websocket
upgrade), one cookie secret. Everything runs in one temporary folder (nginx's
configuration, pid file, logs and temp paths included), binds 127.0.0.1 only, and every
wait is bounded. `Stack.stop` ends what it started, and only that.

The state backend is a parameter: the store path always (its state file and snapshot
folder), and optionally a PostgreSQL DSN, handed to every app server as CASECONF_POSTGRES.

`python -m devtools.stack site` prints the clinic's site file (deploy/nginx/caseconf.conf).
This module does not import Streamlit.
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE_TEMPLATE = ROOT / "deploy" / "nginx" / "caseconf.conf.in"
SITE_FILE = ROOT / "deploy" / "nginx" / "caseconf.conf"
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/bin/nginx")
POSTGRES_ENV = "CASECONF_POSTGRES"
COOKIE_SECRET_ENV = "STREAMLIT_SERVER_COOKIE_SECRET"
FIRST_PORT = 8501          # a clinic's app servers: 8501, 8502, ...
START_TIMEOUT_S = 90.0     # for an app server (or nginx) to answer its health check
STOP_TIMEOUT_S = 10.0      # after SIGTERM, before SIGKILL

# The clinic's site file as shipped: four app servers, TLS with placeholder paths.
CLINIC = {"replicas": 4, "server_name": "caseconf.clinic.example",
          "certificate": "/etc/ssl/certs/caseconf.clinic.example.pem",
          "certificate_key": "/etc/ssl/private/caseconf.clinic.example.key"}


class StackError(Exception):
    """A part of the stack did not start or answer in time; a sentence with its log's tail."""


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    return found or next((p for p in NGINX_CANDIDATES if os.access(p, os.X_OK)), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- nginx's site


def render_site(upstreams: list[str], *, listen: list[str], server_name: str = "_", tls: dict | None = None) -> str:
    """The site file from the template: `upstreams` as host:port, `listen` the listen
    arguments (e.g. ["443 ssl http2"]); with `tls` ({"certificate", "certificate_key"})
    the TLS lines, a Secure routing cookie and a redirect from plain HTTP."""
    servers = "\n".join(f"    server {u} max_fails=1 fail_timeout=10s;" for u in upstreams)
    if tls:
        tls_lines = "\n".join([
            f"    ssl_certificate {tls['certificate']};",
            f"    ssl_certificate_key {tls['certificate_key']};",
            "    ssl_protocols TLSv1.2 TLSv1.3;",
            "    ssl_session_cache shared:caseconf_tls:10m;",
            "    ssl_session_timeout 1d;",
            '    add_header Strict-Transport-Security "max-age=31536000" always;',
            ""])
        redirect = ("\nserver {\n    listen 80;\n    listen [::]:80;\n"
                    f"    server_name {server_name};\n    return 301 https://$host$request_uri;\n}}\n")
    else:
        tls_lines, redirect = "", ""
    text = SITE_TEMPLATE.read_text(encoding="utf-8")
    for name, value in {"UPSTREAM_SERVERS": servers, "LISTEN": "\n".join(f"    listen {a};" for a in listen),
                        "SERVER_NAME": server_name, "TLS": tls_lines, "REDIRECT": redirect,
                        "COOKIE_FLAGS": "; Secure" if tls else ""}.items():
        # Line placeholders replace their whole line (an empty value leaves no blank line).
        text = text.replace(f"@{name}@\n", value + "\n" if value else "") if f"\n@{name}@\n" in text \
            else text.replace(f"@{name}@", value)
    # The header comment names the placeholders; the rendered file says where it came from.
    head, _, body = text.partition("\n\n")
    return ("# caseconf behind nginx: several `streamlit run` app servers, one public origin.\n"
            "# Rendered from caseconf.conf.in (`python -m devtools.stack site`): change the template, then render.\n\n"
            + body.rstrip("\n") + "\n")


def clinic_site(replicas: int = CLINIC["replicas"], server_name: str = CLINIC["server_name"]) -> str:
    """The site file a clinic installs: app servers on 127.0.0.1:8501.., TLS on 443."""
    return render_site([f"127.0.0.1:{FIRST_PORT + i}" for i in range(replicas)], listen=["443 ssl http2",
                       "[::]:443 ssl http2"], server_name=server_name, tls=CLINIC)


def _nginx_main(folder: Path, site: str, buffers: Path) -> str:
    """A whole nginx configuration whose files live in `folder`, its buffer files in `buffers`."""
    user = ""
    if os.geteuid() == 0:  # nginx's workers then drop to an unprivileged user
        nobody = pwd.getpwnam("nobody")
        user = f"user nobody {grp.getgrgid(nobody.pw_gid).gr_name};\n"
    temp = "\n".join(f"    {kind}_temp_path {buffers / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                            "scgi"))
    return (f"daemon off;\n{user}worker_processes 1;\npid {folder / 'nginx.pid'};\n"
            f"error_log {folder / 'error.log'} warn;\n"
            "events {\n    worker_connections 1024;\n}\n"
            "http {\n    default_type application/octet-stream;\n"
            "    types {\n        text/html html;\n        application/javascript js;\n        text/css css;\n    }\n"
            "    log_format caseconf '$remote_addr [$time_local] \"$request\" $status $upstream_addr '\n"
            "                        '$request_time $caseconf_route';\n"
            f"    access_log {folder / 'access.log'} caseconf;\n{temp}\n\n{site}}}\n")


# ----------------------------------------------------------------------------- processes


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """End `proc` and its children (its own process group, started with start_new_session)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT_S)


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return "(no log)"


class AppServer:
    """One `streamlit run app.py` on 127.0.0.1:`port`, in its own process group."""

    def __init__(self, port: int, folder: Path, env: dict[str, str], secrets_file: Path):
        self.port, self.folder, self.env, self.secrets_file = port, folder, env, secrets_file
        self.log = folder / f"app-{port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                 "--server.address", "127.0.0.1", "--server.port", str(self.port),
                 "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
                 "--secrets.files", str(self.secrets_file)],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_healthy(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise StackError(f"The app server on port {self.port} exited:\n{_tail(self.log)}")
            if _healthy(f"http://{self.address}/_stcore/health"):
                return
            time.sleep(0.2)
        raise StackError(f"The app server on port {self.port} did not answer its health check in time:\n"
                         f"{_tail(self.log)}")

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean-up runs."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc)


class Stack:
    """N app servers and nginx in front, over the store at `store` (and `postgres`, when given).

    Use as a context manager, or call `start` and `stop`. `url` is nginx's address."""

    def __init__(self, store: str | os.PathLike, folder: str | os.PathLike, replicas: int = 2, *,
                 postgres: str | None = None, nginx: str | None = None, start_timeout_s: float = START_TIMEOUT_S):
        if replicas < 1:
            raise ValueError("A stack needs at least one app server.")
        self.store, self.folder = Path(store).resolve(), Path(folder).resolve()
        self.replicas, self.postgres, self.start_timeout_s = replicas, postgres, start_timeout_s
        self.nginx_bin = nginx or find_nginx()
        if not self.nginx_bin:
            raise StackError("nginx is not installed (Debian package 'nginx').")
        self.servers: list[AppServer] = []
        self.nginx: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _server_env(self) -> dict[str, str]:
        env = {**os.environ, "CASECONF_DB": str(self.store), "CASECONF_DEMO": "0",
               COOKIE_SECRET_ENV: self._cookie_secret}
        env.pop(POSTGRES_ENV, None)
        if self.postgres:
            env[POSTGRES_ENV] = self.postgres
        return env

    def start(self) -> Stack:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._cookie_secret = secrets.token_hex(32)  # one for every server: a cookie one signs, all accept
        secrets_file = self.folder / "secrets.toml"
        # The secrets file wins over CASECONF_DB, so a developer's .streamlit/secrets.toml
        # (which may name a real store) is replaced by one naming this stack's store.
        secrets_file.write_text(f'[connections.caseconf]\npath = "{self.store.as_posix()}"\ndemo_if_empty = false\n',
                                encoding="utf-8")
        secrets_file.chmod(0o600)
        env = self._server_env()
        try:
            for _ in range(self.replicas):
                server = AppServer(free_port(), self.folder, env, secrets_file)
                server.start()
                self.servers.append(server)
            deadline = time.monotonic() + self.start_timeout_s
            for server in self.servers:
                server.wait_healthy(deadline)
            self._start_nginx(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_nginx(self, deadline: float) -> None:
        self.port = free_port()
        site = render_site([s.address for s in self.servers], listen=[f"127.0.0.1:{self.port}"],
                           server_name="127.0.0.1")
        conf = self.folder / "nginx.conf"
        # nginx's workers (an unprivileged user, when started as root) write the buffer files
        # of large responses: a folder of their own that they can reach whatever `folder`'s
        # parents allow (nginx makes its subfolders and gives them to the workers).
        self._buffers = Path(tempfile.mkdtemp(prefix="caseconf-nginx-"))
        self._buffers.chmod(0o711)
        conf.write_text(_nginx_main(self.folder, site, self._buffers), encoding="utf-8")
        log = self.folder / "nginx.out"
        with log.open("ab") as out:
            self.nginx = subprocess.Popen([self.nginx_bin, "-p", str(self.folder), "-c", str(conf),
                                           "-e", str(self.folder / "error.log")],
                                          stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        while time.monotonic() < deadline:
            if self.nginx.poll() is not None:
                raise StackError(f"nginx exited:\n{_tail(log)}\n{_tail(self.folder / 'error.log')}")
            if _healthy(f"{self.url}/_stcore/health"):
                return
            time.sleep(0.1)
        raise StackError(f"nginx did not answer on port {self.port} in time:\n{_tail(self.folder / 'error.log')}")

    def restart(self, index: int, timeout_s: float | None = None) -> None:
        """Start server `index` again on its port (after `kill` or `stop`) and wait for it."""
        server = self.servers[index]
        server.stop()
        server.start()
        server.wait_healthy(time.monotonic() + (timeout_s or self.start_timeout_s))

    def access_log(self) -> list[str]:
        return _tail(self.folder / "access.log", 10_000_000).splitlines()

    def stop(self) -> None:
        if self.nginx is not None:
            _stop_group(self.nginx, signal.SIGQUIT)  # graceful: open websockets are closed
            self.nginx = None
        if getattr(self, "_buffers", None) is not None:
            shutil.rmtree(self._buffers, ignore_errors=True)
            self._buffers = None
        for server in self.servers:
            server.stop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.stack", description="nginx's site file for a clinic")
    commands = parser.add_subparsers(dest="command", required=True)
    site = commands.add_parser("site", help="print the site file rendered for a clinic (deploy/nginx/caseconf.conf)")
    site.add_argument("--replicas", type=int, default=CLINIC["replicas"], help="app servers on 8501.. (default 4)")
    site.add_argument("--server-name", default=CLINIC["server_name"], help="the public host name")
    args = parser.parse_args(argv)
    sys.stdout.write(clinic_site(args.replicas, args.server_name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
