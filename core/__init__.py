"""The case-conference tool's logic: everything but drawing.

In this repository the package is `core` (`python -m core ...`, `streamlit run app.py`).
Installed from the distribution `streamlit-caseconf` the same folder is the package
`caseconf`, which a clinic's own Streamlit app mounts under a URL prefix:

    import caseconf
    st.navigation({"Clinic": [...], "Case conference": caseconf.pages(prefix="conference")}).run()

Nothing here imports Streamlit: `pages()` loads `web` (the one Streamlit adapter) only
when a host asks for the pages, so the command line and the tests stay light.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "1.0.0"
# The version of the data contract (CONTRACT.md) this release imports: a file that follows
# it imports on every release that names the same major version.
CONTRACT_VERSION = "1.0"

# Where data/ (catalog, demo data, name lists) and pages/ are: beside this package in the
# repository, inside it once installed (the wheel maps them there, see pyproject.toml).
_HERE = Path(__file__).resolve().parent
HOME = _HERE if (_HERE / "data").is_dir() else _HERE.parent
DATA_DIR = HOME / "data"
PAGES_DIR = HOME / "pages"
INSTALLED = HOME == _HERE


def pages(prefix: str = "conference") -> list:
    """The tool's pages as `st.Page` objects for a host app's `st.navigation`, their URLs
    under `prefix` (/conference-caseload, /conference-case?client=..., ...). Sign-in,
    scope, caching and the store follow the host's secrets.toml (`[connections.caseconf]`,
    `[auth]`), exactly as in the standalone app; the host's own pages are not touched."""
    if not prefix or not prefix.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"The prefix {prefix!r} cannot be part of a URL: use letters, digits, '-' or '_', "
                         "e.g. pages(prefix=\"conference\").")
    from .web import pages as _pages
    return _pages(prefix)
