"""The one build step pyproject.toml cannot declare.

The page scripts in pages/ are run by Streamlit as scripts, not imported as modules, so
they cannot import their package relatively: they name it, and in this repository it is
`core`. Installed, the package is `caseconf`, and a clinic's app may have a `core` of its
own. So the copies of the page scripts in a built wheel import `caseconf` instead: only
the leading `from core` / `import core` of an import statement changes, and
tests/test_plugin.py checks that no shipped page names `core` any more. The sources stay
as they are, and everything else in the package is copied unchanged.
"""

import re
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PAGES_PACKAGE = "caseconf.pages"
IMPORT_OF_CORE = re.compile(r"^(\s*)(from|import)\s+core(?=[\s.])", re.MULTILINE)


def rename_imports(source: str) -> str:
    return IMPORT_OF_CORE.sub(r"\1\2 caseconf", source)


class BuildPyRenamingPageImports(build_py):
    def build_module(self, module, module_file, package):
        built, copied = super().build_module(module, module_file, package)
        package_name = package if isinstance(package, str) else ".".join(package)
        if package_name == PAGES_PACKAGE:
            path = Path(built)
            path.write_text(rename_imports(path.read_text(encoding="utf-8")), encoding="utf-8")
        return built, copied


setup(cmdclass={"build_py": BuildPyRenamingPageImports})
