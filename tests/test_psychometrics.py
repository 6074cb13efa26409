"""The psychometric rules live in one module that the catalog and the analytics both
import: reliable change (Jacobson & Truax 1991) and the boundary rules with their words."""

import ast
import math
from pathlib import Path

import pytest
from scipy.stats import norm

from core import psychometrics as pm

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_the_catalog_takes_its_rules_from_the_psychometrics_module_not_from_the_analytics():
    modules = imported_modules(ROOT / "core" / "catalog.py")
    assert ".psychometrics" in modules
    assert not any("analytics" in m for m in modules), modules


def test_analytics_and_catalog_apply_the_same_rules():
    from core import catalog
    from core.analytics import change, ruptures
    assert change.rc_threshold is pm.rc_threshold and change.is_clinical is pm.is_clinical
    assert catalog.compare is pm.compare
    assert ruptures.WORDS is pm.RULE_WORDS and ruptures.SQL_RULES is pm.CLINICAL_RULES
    # No other module defines them (at module level).
    for path in (ROOT / "core").rglob("*.py"):
        if path.name == "psychometrics.py":
            continue
        defined = {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)}
        assert not defined & {"rc_threshold", "s_diff", "standard_error", "compare", "is_clinical"}, path


def test_reliable_change_matches_jacobson_truax_and_cecpfuns():
    # SD 7.5, r .80: S_diff = sqrt(2) * 7.5 * sqrt(.2); 1.96 * S_diff = 9.297096 (Jacobson &
    # Truax's z), 9.296925 with CECPfuns' exact qnorm(.975).
    assert pm.s_diff(7.5, 0.8) == pytest.approx(math.sqrt(2) * 7.5 * math.sqrt(0.2))
    assert pm.rc_threshold(7.5, 0.8) == pytest.approx(9.297096, abs=1e-6)
    assert pm.rc_threshold(7.5, 0.8, z=norm.ppf(0.975)) == pytest.approx(9.296925, abs=1e-6)
    assert pm.reliable_change_index(20, 30, 7.5, 0.8) == pytest.approx(10 / pm.s_diff(7.5, 0.8))


@pytest.mark.parametrize("change, rule, reliable", [
    (5.0, "gt", False), (5.0 + 1e-12, "gt", False), (5.01, "gt", True),
    (5.0, "ge", True), (5.0 - 1e-12, "ge", True), (4.99, "ge", False), (-6, "gt", True),
])
def test_a_change_on_the_threshold_is_reliable_only_under_ge(change, rule, reliable):
    assert pm.is_reliable(change, 5.0, rule) is reliable


def test_boundary_rules_and_their_words():
    assert [pm.compare(10, r, 10) for r in ("ge", "gt", "le", "lt")] == [True, False, True, False]
    assert pm.clinical_words("ge", 10) == "clinical when score >= 10"
    assert pm.RULE_WORDS["lt"] == "below"
    assert pm.reliable_words(6, "ge") == "reliable when |change| >= 6 points"
    with pytest.raises(ValueError, match="boundary rule"):
        pm.compare(10, "eq", 10)
