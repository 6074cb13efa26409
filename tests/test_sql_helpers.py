"""The SQL pieces the analytics share (client filter, bound tables, the missed-session
anti-join, "within the last N sessions", the main therapist, the codebooks) live in one
module, `core.analytics.sql`, not lent by `ruptures` and `themes` to the rest."""

import ast
from pathlib import Path

ANALYTICS = Path(__file__).resolve().parents[1] / "core" / "analytics"
SHARED = {"client_filter", "client_clause", "bound_table", "NOT_ATTENDED", "recent_join", "recent_attended_join",
          "MAIN_THERAPIST_CTE", "CODEBOOK_CTE", "codebook_rows"}


def _defined(tree: ast.Module) -> set[str]:
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    names |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    return names


def test_the_shared_sql_pieces_are_defined_in_the_sql_module_only():
    from core.analytics import sql
    assert SHARED <= set(dir(sql))
    for path in ANALYTICS.glob("*.py"):
        if path.name != "sql.py":
            assert not SHARED & _defined(ast.parse(path.read_text())), path.name


def test_the_analytics_import_them_from_the_sql_module():
    for path in ANALYTICS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in ("ruptures", "themes"):
                lent = SHARED & {a.name for a in node.names}
                assert not lent, f"{path.name} imports {sorted(lent)} from {node.module}"
