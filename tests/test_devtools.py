"""The runtime package and the repository's development tools, kept apart.

core/ is what the app, the command line and an installed plugin run: it imports Streamlit
only in its adapter (core/web.py, which the package's `pages()` loads when a host asks for
the pages), never a browser driver, and never the development tools in devtools/
(benchmarks, the demo and synthetic-clinic generators, the one-machine stack, the
throwaway PostgreSQL) - except the command line's `bench`, which reaches them lazily and
says in a sentence when they are absent, as in an installed package. The wheel's side of
this (no development tool shipped) is checked in tests/test_plugin.py.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

CORE = ROOT / "core"
ADAPTER = CORE / "web.py"
DRAWING = ("streamlit", "playwright", "core.web")
# The modules that moved out of core/: none may come back into the runtime package.
MOVED = ("bench", "bench_serve", "browser_bench", "synth", "demo", "stack", "pg/local")


def _imports(path: Path) -> list[tuple[str, int, str]]:
    """Every module `path` imports (relative imports resolved), with the line and the
    enclosing function ('' at module level)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = list(path.relative_to(ROOT).parent.parts)
    found = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            inside = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = (child.module or "").split(".") if child.level == 0 else (
                    package[:len(package) - child.level + 1] + ((child.module or "").split(".") if child.module else []))
                module = ".".join(p for p in base if p)
                found.append((module, child.lineno, function))
                # `from . import web` imports the module core.web
                found.extend((f"{module}.{alias.name}", child.lineno, function) for alias in child.names)
            visit(child, inside)

    visit(tree, "")
    return found


def _named(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_runtime_package_imports_streamlit_only_in_its_adapter():
    wrong = []
    for path in sorted(CORE.rglob("*.py")):
        if path == ADAPTER:
            continue
        for module, line, function in _imports(path):
            allowed = path == CORE / "__init__.py" and module.startswith("core.web") and function == "pages"
            if _named(module, DRAWING) and not allowed:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "core/ draws only through core/web.py:\n" + "\n".join(wrong)


def test_the_runtime_package_reaches_the_development_tools_only_from_the_bench_command():
    reached = [(path.relative_to(ROOT).as_posix(), module, function)
               for path in sorted(CORE.rglob("*.py")) for module, _, function in _imports(path)
               if _named(module, ("devtools",))]
    assert reached and {(path, function) for path, _, function in reached} == {("core/cli.py", "_cmd_bench")}
    assert not [m for m in MOVED if (CORE / f"{m}.py").exists()], "a development tool is back in core/"


def test_the_command_line_loads_neither_streamlit_nor_the_development_tools_for_its_commands(tmp_path):
    """Parsing every command, and running `demo` and `case`, in a fresh process."""
    db = tmp_path / "s.duckdb"
    code = f"""
import json, sys
from core import cli
parser = cli.build_parser()
for argv in (["import", "x"], ["demo"], ["case", "c1"], ["conference", "new", "--group", "g"], ["users", "list"],
             ["audit"], ["migrate"], ["bench", "pages"], ["bench", "serve"]):
    parser.parse_args(argv)
codes = [cli.main(["demo", "--db", {str(db)!r}]), cli.main(["case", "c001", "--json", "--db", {str(db)!r}])]
print(json.dumps({{"codes": codes, "loaded": sorted(m for m in sys.modules
                   if m.split(".")[0] in ("streamlit", "playwright", "devtools") or m == "core.web")}}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"codes": [0, 0], "loaded": []}


def test_bench_without_the_development_tools_says_where_they_are_in_a_sentence(tmp_path):
    """As from an installed package: the runtime package alone on the path, no devtools."""
    (tmp_path / "core").symlink_to(CORE, target_is_directory=True)
    for what in ("import", "serve"):
        out = subprocess.run([sys.executable, "-m", "core", "bench", what, "--sessions", "10"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120,
                             env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        assert out.returncode == 2, (what, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr
        assert out.stderr.startswith("Error: The benchmarks are development tools of the repository"), out.stderr
        assert "checkout of the repository" in out.stderr


def test_the_page_benchmark_leaves_streamlit_to_its_children():
    """`bench pages` asks a child for the page names: the command line's own process loads
    neither Streamlit nor its adapter (each page's child process does)."""
    code = ("import json, sys; from devtools import bench; names = bench._page_names(); "
            "print(json.dumps([names, sorted(m for m in sys.modules if m.split('.')[0] == 'streamlit' "
            "or m == 'core.web')]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    names, loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert names[0] == "caseload" and "admin" in names and loaded == []


def test_a_synthetic_store_keeps_the_triage_as_an_imports_snapshot_does(tmp_path):
    """The synthetic clinic the benchmarks build was published by a process that had not
    loaded the triage, so its snapshot kept none: the caseload computed the triage of a
    million sessions on each cold open (3.5 s against 0.7 s), and the page benchmark
    measured that instead of what a clinic's import leaves."""
    db = tmp_path / "s.duckdb"
    code = ("import sys; from devtools.synth import build_synthetic_store; "
            "build_synthetic_store(sys.argv[1], 2000)")
    subprocess.run([sys.executable, "-c", code, str(db)], cwd=ROOT, check=True, capture_output=True, timeout=300)
    from core.store import Store
    from tests.conftest import SYSTEM
    store = Store(db)
    try:
        assert store.query("SELECT count(*) AS n FROM triage_info", scope=SYSTEM).item() == 1
    finally:
        store.close()
