"""The plugin as a clinic gets it: a wheel, a fresh venv, its own Streamlit app.

1. The wheel built from this repository holds the package `caseconf` (core/), its page
   scripts (importing `caseconf`, never `core`), the catalog, the demo data and the name
   lists, and nothing else: no store, no tests.
2. Installed into a fresh venv outside the repository, its metadata names the version,
   the data contract's version and the pinned ranges of requirements.txt, and
   `python -m caseconf` is the command line of `python -m core`.
3. The README's host app (its own home page, the plugin's pages under /conference-...),
   with a module of its own called `core`, runs with `streamlit run` from a temporary
   folder; Chromium opens the host's page and every plugin page by its deep link as the
   first request of a freshly started server (cold), signs in with the demo sign-in and
   finds each page drawn without an error; the host's page, menu and session state are
   its own, and nothing of this repository is on the server's sys.path.

Building and installing take minutes (the dependencies come from the package index, or
pip's cache), so one wheel and one venv serve the whole module. Nothing here is skipped:
without Chromium, Playwright or the package index the tests fail with a sentence.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

import core
from core.web import PAGES as APP_PAGES
from tests.conftest import ROOT
from tests.test_devtools import MOVED as MOVED_TOOLS

try:  # the browser helpers of the standalone app's tests (they skip without Playwright; these fail)
    from tests.test_browser import (CHROMIUM, CHROMIUM_ARGS, Server, _free_port, _new_page, _observe, _problems,
                                    _settled)
    from playwright import sync_api
    BROWSER_MISSING = None if CHROMIUM.exists() else (
        f"The plugin's browser test needs Chromium at {CHROMIUM} (Debian package 'chromium'; `./dev test` installs it).")
except pytest.skip.Exception as missing:  # playwright is not installed
    BROWSER_MISSING = f"The plugin's browser test needs the playwright package (requirements-dev.txt): {missing}"

PREFIX = "conference"
ARTIFACTS = ROOT / "tests" / "artifacts"
INSTALL_TIMEOUT = 900  # s: the dependencies from the package index, on a slow line
CLINIC = "Clinic intranet"  # the host's own title (the README's example)

# Each plugin page: its deep link under the prefix and the title it shows.
PLUGIN_LINKS = {name: (f"/{PREFIX}-{name}" + ("?client=c015" if name == "case" else ""), title)
                for name, title, _ in APP_PAGES}

# What the test adds to the README's host app, on its home page: the host's own `core`
# module, a session-state counter of its own, and where everything was imported from.
HOST_PROBE = '''
    import json, sys
    import core  # the clinic's own module of that name
    st.session_state["clinic_visits"] = st.session_state.get("clinic_visits", 0) + 1
    st.text(f"Home visits in this session: {st.session_state['clinic_visits']}")
    st.code(json.dumps({"sys_path": sys.path, "caseconf": caseconf.__file__, "core": core.__file__,
                        "clinic": core.CLINIC}), language="json")
'''
HOST_CORE = '"""The clinic\'s own module called core: the plugin must never shadow it."""\nCLINIC = "intranet"\n'


def _run(command: list, what: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CASECONF_DB", "CASECONF_CATALOG")}
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=timeout,
                            env=kwargs.pop("env", env), **kwargs)
    if result.returncode != 0:
        pytest.fail(f"{what} failed (exit {result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result


def _readme_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Use it inside your own Streamlit app")
    end = text.find("\n## ", start + 3)
    return text[start:end if end > 0 else None]


def _readme_block(language: str, containing: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", _readme_section(), re.DOTALL)
    found = [b for b in blocks if containing in b]
    assert found, f"README's plugin section has no {language} block with {containing!r}"
    return found[0]


# ----------------------------------------------------------------------------- build and install


@pytest.fixture(scope="module")
def record():
    """What rendered, for the closing note: tests/artifacts/plugin.json."""
    notes = {"urls": []}
    yield notes
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "plugin.json").write_text(json.dumps(notes, indent=2), encoding="utf-8")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory, record) -> Path:
    """The wheel, built from a copy of this repository's files as they are (a store file in
    data/ among them, when there is one): never from a stale build folder."""
    source = tmp_path_factory.mktemp("source") / "caseconf"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "artifacts", ".hypothesis", ".pytest_cache"))
    (source / "data" / "caseconf.duckdb").write_bytes(b"a clinic's store: never shipped")
    out = tmp_path_factory.mktemp("dist")
    started = time.monotonic()
    _run([sys.executable, "-m", "pip", "wheel", source, "--no-deps", "--disable-pip-version-check", "-q", "-w", out],
         "building the wheel (pip wheel . --no-deps)", cwd=out)
    built = sorted(out.glob("*.whl"))
    assert len(built) == 1, f"pip wheel made {built}"
    record.update(wheel=built[0].name, wheel_bytes=built[0].stat().st_size,
                  build_seconds=round(time.monotonic() - started, 1))
    return built[0]


@pytest.fixture(scope="module")
def python(wheel, tmp_path_factory, record) -> Path:
    """A fresh venv outside the repository with the wheel and its dependencies installed."""
    venv = tmp_path_factory.mktemp("venv")
    assert not venv.resolve().is_relative_to(ROOT)
    _run([sys.executable, "-m", "venv", venv], "creating a fresh venv")
    python = venv / "bin" / "python"
    started = time.monotonic()
    _run([python, "-m", "pip", "install", "--no-compile", "--disable-pip-version-check", "-q", wheel],
         "installing the wheel and its dependencies into a fresh venv (is the package index reachable?)",
         timeout=INSTALL_TIMEOUT, cwd=venv)
    record["install_seconds"] = round(time.monotonic() - started, 1)
    return python


@pytest.fixture(scope="module")
def host(python, tmp_path_factory) -> Path:
    """The README's host app in a temporary folder, with its settings and a demo store
    made by the installed command line."""
    folder = tmp_path_factory.mktemp("clinic-intranet")
    app = _readme_block("python", "caseconf.pages(")
    anchor = f'    st.title("{CLINIC}")\n'
    assert anchor in app, "the README's host app has no home page titled 'Clinic intranet'"
    (folder / "streamlit_app.py").write_text(app.replace(anchor, anchor + HOST_PROBE), encoding="utf-8")
    (folder / "core.py").write_text(HOST_CORE, encoding="utf-8")
    settings = folder / ".streamlit"
    settings.mkdir()
    (settings / "config.toml").write_text(_readme_block("toml", "[browser]"), encoding="utf-8")
    store = folder / "caseconf.duckdb"
    (settings / "secrets.toml").write_text(f'[connections.caseconf]\npath = "{store.as_posix()}"\n'
                                           "demo_if_empty = false\n", encoding="utf-8")
    _run([python, "-m", "caseconf", "demo", "--db", store], "python -m caseconf demo", cwd=folder)
    return folder


# ----------------------------------------------------------------------------- 1. the wheel


def test_the_wheel_holds_the_package_its_pages_and_data_and_nothing_else(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    modules = {f"caseconf/{p.relative_to(ROOT / 'core').as_posix()}" for p in (ROOT / "core").rglob("*.py")}
    assert modules <= set(names), f"modules of core/ missing from the wheel: {sorted(modules - set(names))}"
    pages = {f"caseconf/pages/{name}.py" for name, _, _ in APP_PAGES}
    assert pages <= set(names)
    data = {"caseconf/data/catalog.toml", "caseconf/data/names/given_names.txt", "caseconf/data/names/surnames.txt",
            *(f"caseconf/data/demo/{t}.csv" for t in ("sessions", "ratings", "themes", "barriers", "events",
                                                       "therapists"))}
    assert data <= set(names)
    assert not [n for n in names if n.endswith((".duckdb", ".wal")) or n.startswith(("tests/", "core/", "pages/",
                                                                                        "data/"))]
    assert not [n for n in names if "/tests/" in n or "examples" in n]
    # The development tools (devtools/: benchmarks, generators, the one-machine stack, the
    # throwaway PostgreSQL) are not the package's, nor are they shipped under its name.
    tools = {f"caseconf/{m}.py" for m in MOVED_TOOLS}
    tools |= {f"caseconf/{p.name}" for p in (ROOT / "devtools").glob("*.py") if p.name != "__init__.py"}
    assert not [n for n in names if n.startswith("devtools/") or n in tools]
    top = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top).decode().split() == ["caseconf"]


def test_the_shipped_page_scripts_import_caseconf_never_core(wheel):
    archive = zipfile.ZipFile(wheel)
    for name, _, _ in APP_PAGES:
        text = archive.read(f"caseconf/pages/{name}.py").decode()
        assert not re.search(r"^\s*(from|import)\s+core\b", text, re.MULTILINE), name
        assert re.search(r"^from caseconf import .*\bweb\b", text, re.MULTILINE), name
        # Only the imports changed: the rest of the page is this repository's own.
        source = (ROOT / "pages" / f"{name}.py").read_text(encoding="utf-8")
        assert re.sub(r"^(\s*)(from|import) core\b", r"\1\2 caseconf", source, flags=re.MULTILINE) == text, name


# ----------------------------------------------------------------------------- 2. installed


def test_the_metadata_names_the_version_the_data_contract_and_the_pinned_ranges(python, tmp_path):
    probe = ("import json, importlib.metadata as m, caseconf; d = m.metadata('streamlit-caseconf'); "
             "print(json.dumps({'version': m.version('streamlit-caseconf'), 'code': caseconf.__version__, "
             "'contract': caseconf.CONTRACT_VERSION, 'summary': d['Summary'], 'keywords': d['Keywords'], "
             "'requires': m.requires('streamlit-caseconf')}))")
    found = json.loads(_run([python, "-c", probe], "reading the installed metadata", cwd=tmp_path).stdout)
    assert found["version"] == found["code"] == core.__version__
    assert found["contract"] == core.CONTRACT_VERSION
    assert f"data contract {core.CONTRACT_VERSION}" in found["summary"]
    assert f"caseconf-contract-{core.CONTRACT_VERSION}" in found["keywords"].split(",")
    from packaging.requirements import Requirement
    pinned = {str(Requirement(line)) for line in (ROOT / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    assert {str(Requirement(r)) for r in found["requires"]} == pinned
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## {re.escape(core.__version__)} .*data contract {re.escape(core.CONTRACT_VERSION)}$",
                     changelog, re.MULTILINE), "CHANGELOG.md has no entry for this version and its data contract"


def test_python_m_caseconf_is_the_command_line_of_python_m_core(python, tmp_path):
    installed = _run([python, "-m", "caseconf", "--help"], "python -m caseconf --help", cwd=tmp_path).stdout
    here = _run([sys.executable, "-m", "core", "--help"], "python -m core --help", cwd=ROOT).stdout
    assert " ".join(installed.split()) == " ".join(here.replace("python -m core", "python -m caseconf").split())
    where = json.loads(_run([python, "-c", "import caseconf, json, sys; print(json.dumps([caseconf.__file__, sys.path]))"],
                            "importing caseconf", cwd=tmp_path).stdout)
    assert Path(where[0]).is_relative_to(python.parent.parent)
    assert not [p for p in where[1] if p and Path(p).resolve().is_relative_to(ROOT)]


# ----------------------------------------------------------------------------- 3. in a host app


class HostServer(Server):
    """`streamlit run streamlit_app.py` in the host's folder, with the fresh venv's Python
    and nothing of this repository in its environment."""

    def __init__(self, python: Path, folder: Path, name: str):
        self.store = folder / "caseconf.duckdb"
        self.port = _free_port()
        self.log = folder / f"server-{name}.log"
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CASECONF_DB", "CASECONF_CATALOG")}
        env["CASECONF_DEMO"] = "0"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(python), "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
                 "--server.port", str(self.port), "--server.fileWatcherType", "none"],
                cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise


@pytest.fixture(scope="module")
def browser():
    if BROWSER_MISSING:
        pytest.fail(BROWSER_MISSING)
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _signed_in_at(page, url: str) -> None:
    """Open `url`; on the plugin's sign-in screen choose the demo admin (the page then
    opens at the same address)."""
    page.goto(url)
    demo = page.locator('[data-testid="stMain"] button', has_text="Sign in as the demo admin")
    signed = page.locator('[data-testid="stSidebar"]', has_text="Signed in as")
    demo.or_(signed).first.wait_for()
    if demo.count():
        demo.click()
        signed.wait_for()


def _home_probe(page) -> dict:
    return json.loads(page.locator('[data-testid="stMain"] [data-testid="stCode"] code').first.inner_text())


@pytest.fixture(scope="module")
def cold(browser, python, host, record):
    """`cold(name)`: open the host's home page ("home") or a plugin page by its deep link as
    the first request of a freshly started server, once per page."""
    visits: dict[str, dict | str] = {}

    def visit(name: str) -> dict:
        if name not in visits:
            link, title = ("/", CLINIC) if name == "home" else PLUGIN_LINKS[name]
            server = HostServer(python, host, name)
            context, page, watch = _new_page(browser, server)
            try:
                if name == "home":
                    page.goto(server.url(link))
                else:
                    _signed_in_at(page, server.url(link))
                _settled(page, title)
                seen = _observe(page)
                seen["problems"] = _problems(seen, watch)
                if name == "home":
                    seen["probe"] = _home_probe(page)
                visits[name] = seen
                record["urls"].append(seen["url"].replace(f":{server.port}", ":PORT"))
            except Exception as error:
                visits[name] = f"{type(error).__name__}: {error}\n--- server log ---\n{server.log_text()}"
            finally:
                context.close()
                server.stop()
        if isinstance(visits[name], str):
            pytest.fail(f"opening {name} of the host app on a cold server failed: {visits[name]}")
        return visits[name]

    return visit


NAV = ["Home", *(title for _, title, _ in APP_PAGES)]


def test_the_host_home_page_renders_with_its_own_core_and_nothing_of_this_repository_on_sys_path(cold, python):
    seen = cold("home")
    assert seen["problems"] == []
    assert seen["titles"] == [CLINIC]
    assert seen["nav"] == NAV  # the host's page, then the plugin's under its section
    probe = seen["probe"]
    assert Path(probe["caseconf"]).is_relative_to(python.parent.parent)
    assert probe["clinic"] == "intranet" and Path(probe["core"]).name == "core.py"
    assert not [p for p in probe["sys_path"] if p and Path(p).resolve().is_relative_to(ROOT)], probe["sys_path"]


@pytest.mark.parametrize("name", [name for name, _, _ in APP_PAGES])
def test_every_plugin_page_renders_from_a_cold_deep_link_under_the_prefix(cold, name):
    link, title = PLUGIN_LINKS[name]
    seen = cold(name)
    assert seen["problems"] == []
    assert seen["titles"] == [title]
    assert seen["url"].endswith(link)  # the deep link stays where it was, under the prefix
    assert seen["nav"] == NAV
    assert all(chart["drawn"] for chart in seen["charts"])


def test_the_host_keeps_its_page_and_session_state_while_the_plugin_is_used(browser, python, host):
    server = HostServer(python, host, "session")
    context, page, watch = _new_page(browser, server)
    try:
        page.goto(server.url("/"))
        _settled(page, CLINIC)
        page.locator('[data-testid="stMain"]', has_text="Home visits in this session: 1").wait_for()
        page.locator('[data-testid="stSidebarNavLink"]', has_text="Caseload").click()
        page.locator('[data-testid="stMain"] button', has_text="Sign in as the demo admin").click()
        _settled(page, "Caseload")
        assert page.url.endswith(f"/{PREFIX}-caseload")
        page.locator('[data-testid="stSidebar"] button', has_text="Sign out").click()
        page.locator('[data-testid="stMain"] button', has_text="Sign in as the demo admin").wait_for()
        page.locator('[data-testid="stSidebarNavLink"]', has_text="Home").click()
        _settled(page, CLINIC)
        # The same browser session: the host's own key survived the plugin, its sign-in and sign-out.
        page.locator('[data-testid="stMain"]', has_text="Home visits in this session: 2").wait_for()
        assert _problems(_observe(page), watch) == []
    except Exception as error:
        pytest.fail(f"{type(error).__name__}: {error}\n--- server log ---\n{server.log_text()}")
    finally:
        context.close()
        server.stop()


def test_pages_asks_for_a_prefix_that_can_be_part_of_a_url():
    for wrong in ("", "case conference", "conf/erence"):
        with pytest.raises(ValueError, match="cannot be part of a URL"):
            core.pages(prefix=wrong)


def test_page_scripts_import_the_package_only_in_forms_the_build_can_rename():
    """`from core... import x` becomes `from caseconf... import x` in the wheel; a bare
    `import core.x` would leave `core.x.f()` calls naming a module the host may not have."""
    for path in sorted((ROOT / "pages").glob("*.py")):
        bare = re.findall(r"^\s*import\s+core\b.*$", path.read_text(encoding="utf-8"), re.MULTILINE)
        assert not bare, f"{path.name}: {bare}"


def test_page_scripts_draw_nothing_through_streamlits_magic():
    """A host app may leave `runner.magicEnabled` on: then a bare expression in a page (a
    variable, a conditional expression) would be drawn. Calls and docstrings are not."""
    import ast
    for path in sorted((ROOT / "pages").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Expr) and not isinstance(node.value, (ast.Call, ast.Await, ast.Yield)):
                assert isinstance(node.value, ast.Constant) and isinstance(node.value.value, str), \
                    f"{path.name}:{node.lineno}: {ast.unparse(node)[:80]}"
