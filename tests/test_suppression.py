"""Small cells (CMS cell size suppression policy): no count of 1-10 is shown, nor one
from which it can be derived; checked by linear algebra, independently of the rule."""

import numpy as np
import pytest
from scipy.linalg import null_space

from core.analytics.suppression import count_words, share_hidden, suppressed


def derivable(table, hidden, row_totals=True, column_totals=False) -> list[tuple[int, int]]:
    """The hidden cells whose value follows from the shown ones: each published line says
    its last entry is the sum of the others; a hidden cell is determined when every
    solution of the hidden unknowns gives it the same value (its null-space column is 0)."""
    values = np.asarray(table, dtype=float)
    cells = [tuple(c) for c in np.argwhere(hidden)]
    rows, cols = values.shape
    lines = []
    if row_totals:
        lines += [[(i, j) for j in range(cols)] for i in range(rows)]
    if column_totals:
        lines += [[(i, j) for i in range(rows)] for j in range(cols)]
    matrix = np.zeros((len(lines), len(cells)))
    for r, line in enumerate(lines):
        for cell in line:
            if cell in cells:
                matrix[r, cells.index(cell)] = -1.0 if cell == line[-1] else 1.0
    free = null_space(matrix) if len(lines) else np.eye(len(cells))
    return [cell for k, cell in enumerate(cells) if np.allclose(free[k], 0)]


def test_a_code_with_13_of_14_clients_hides_its_count():
    # "1 of 14" and "13 of 14" both single one client out; "0 of 14" and "14 of 14" do not.
    from core.catalog import SuppressionSettings
    rule = SuppressionSettings()
    assert [share_hidden(k, 14, rule) for k in (0, 1, 10, 11, 13, 14)] == [False, True, True, True, True, False]
    assert [share_hidden(k, 30, rule) for k in (11, 19, 20, 21)] == [False, False, True, True]
    assert share_hidden(8, 8, rule)  # a total of 1-10 is itself a small cell


def test_complementary_suppression_leaves_no_hidden_cell_derivable(catalog):
    rule = catalog.suppression
    rng = np.random.default_rng(3)
    for _ in range(200):
        counts = rng.choice([0, 0, 2, 5, 9, 12, 15, 25, 40], size=(rng.integers(2, 5), rng.integers(2, 5)))
        table = np.vstack([np.column_stack([counts, counts.sum(axis=1)]),
                           np.append(counts.sum(axis=0), counts.sum())])
        hidden = suppressed(table, rule, row_totals=True, column_totals=True)
        small = (table >= 1) & (table <= 10)
        assert not (small & ~hidden).any()  # every small cell is hidden
        assert not [c for c in derivable(table, hidden, True, True) if small[c]]  # and none can be worked out


def test_a_single_small_cell_in_a_row_takes_the_smallest_other_with_it(catalog):
    hidden = suppressed([[20, 5, 30, 55]], catalog.suppression)
    assert hidden.tolist() == [[True, True, False, False]]
    assert derivable(np.array([[20, 5, 30, 55]]), hidden) == []
    hidden = suppressed([[20, 5, 30, 55], [15, 25, 40, 80], [35, 30, 70, 135]], catalog.suppression,
                        column_totals=True)
    assert hidden.sum() == 4 and derivable(np.array([[20, 5, 30, 55], [15, 25, 40, 80], [35, 30, 70, 135]]),
                                           hidden, True, True) == []
    assert suppressed([12, 0, 12], catalog.suppression).tolist() == [False, False, False]


def test_a_count_of_cases_is_words_when_small(catalog):
    assert count_words(3, catalog.suppression, "other case") == "fewer than 11 other cases"
    assert count_words(12, catalog.suppression, "other case") == "12 other cases"
    assert count_words(0, catalog.suppression, "other case") == "0 other cases"
