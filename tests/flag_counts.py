"""How many demo cases each triage flag raises, at several versions of the code: the figure
for an issue's closing note ("before and after").

    python -m tests.flag_counts [REVISION ...]

Each revision (default: the commit before the clinical fixes of issue 14, the main branch the
last changes started from, and the working tree) is exported with `git archive` into a
temporary folder; its own demo data is loaded into a fresh store there and its own triage
counts the cases per flag code. The working tree is given as "." . One table row per flag
code, one column per revision; a code a version does not know reads "-".
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REVISIONS = ("7cf2d14", "5068a56", ".")

# Runs inside the exported tree, with only the API every compared version has.
COUNT = """
import json, sys
import polars as pl
from pathlib import Path
from core.access import Scope
from core.catalog import default_catalog
from core.importer import load_demo
from core.store import Store
from core.analytics.triage import triage_flags
store = Store(Path(sys.argv[1]))
load_demo(store)
scope = Scope.system("flag counts")
flags = triage_flags(store, default_catalog(), scope)
cases = store.query("SELECT count(DISTINCT client_id) AS n FROM sessions", scope=scope)["n"][0]
per_code = flags.group_by("code").agg(n=pl.col("client_id").n_unique())
out = {"cases": int(cases), "codes": {r[0]: int(r[1]) for r in per_code.iter_rows()},
       "known": list(default_catalog().triage.weights)}
store.close()
print(json.dumps(out))
"""


def counts_at(revision: str) -> dict:
    """{"cases": N, "codes": {code: cases}, "known": [codes]} of the demo at `revision`."""
    with tempfile.TemporaryDirectory(prefix="flag-counts-") as folder:
        tree = Path(folder) / "tree"
        if revision == ".":
            tree = ROOT
        else:
            tree.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], check=True, capture_output=True)
            subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
        done = subprocess.run([sys.executable, "-c", COUNT, str(Path(folder) / "demo.duckdb")], cwd=tree,
                              check=True, capture_output=True, text=True)
        return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: dict[str, dict]) -> str:
    """One row per flag code (every code any version knows), one column per revision."""
    codes = []
    for found in results.values():
        codes += [c for c in found["known"] if c not in codes]
    names = list(results)
    width = max(len(c) for c in [*codes, "flag code"])
    lines = [f"{'flag code':<{width}}  " + "  ".join(f"{n:>9}" for n in names),
             f"{'(demo cases)':<{width}}  " + "  ".join(f"{results[n]['cases']:>9}" for n in names)]
    for code in codes:
        cells = [str(results[n]["codes"].get(code, 0)) if code in results[n]["known"] else "-" for n in names]
        lines.append(f"{code:<{width}}  " + "  ".join(f"{c:>9}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    revisions = argv or list(DEFAULT_REVISIONS)
    results = {("working tree" if r == "." else r): counts_at(r) for r in revisions}
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
