"""Small cells: which counts of a group-level figure may be shown.

The rule is the CMS cell size suppression policy (catalog `[suppression]`): no count of 1
to 10 is shown (0 may be), and no count from which such a value can be derived from other
cells or totals. The first part is primary suppression; the second needs complementary
suppression: a line (a row or a column with its total) that hides exactly one cell gives
that cell away as the total minus the others, and several lines together can give a cell
away too. So while any hidden cell can be worked out from the shown ones (linear algebra
over the published sums), the smallest shown count of one of its lines is hidden as well.

A table is given as counts with their totals: each row of ``table`` ends with its total
when ``row_totals``, and a last row of column totals when ``column_totals``. A figure of
"k of N clients" per code is one row [k, N - k, N]: the clients without the code are a
cell too, so "13 of 14" hides the 13 (the one client without the code is a small cell).
"""

from __future__ import annotations

import numpy as np

from ..catalog import SuppressionSettings


def _lines(shape: tuple[int, int], row_totals: bool, column_totals: bool) -> list[list[tuple[int, int]]]:
    """The cells of each line whose sum is published, its total last."""
    rows, cols = shape
    lines = []
    if row_totals:
        lines += [[(i, j) for j in range(cols)] for i in range(rows)]
    if column_totals:
        lines += [[(i, j) for i in range(rows)] for j in range(cols)]
    return lines


def _determined(hidden: np.ndarray, lines) -> list[tuple[int, int]]:
    """The hidden cells whose value follows from the shown ones. Each published line says
    that its hidden cells add up to a known number (its total minus its shown cells, or
    the reverse); a hidden cell is determined when its unit vector lies in the row space of
    those equations, i.e. dropping its column lowers the rank."""
    cells = [tuple(int(v) for v in c) for c in np.argwhere(hidden)]
    if not cells:
        return []
    index = {cell: k for k, cell in enumerate(cells)}
    rows = []
    for line in lines:
        row = np.zeros(len(cells))
        for cell in line:
            if cell in index:
                row[index[cell]] = -1.0 if cell == line[-1] else 1.0
        if row.any():
            rows.append(row)
    if not rows:
        return []
    matrix = np.array(rows)
    rank = np.linalg.matrix_rank(matrix)
    return [cell for k, cell in enumerate(cells)
            if np.linalg.matrix_rank(np.delete(matrix, k, axis=1)) < rank]


def suppressed(table, rule: SuppressionSettings, *, row_totals: bool = True,
               column_totals: bool = False) -> np.ndarray:
    """A boolean mask of `table`'s cells (totals included) that must not be shown."""
    values = np.asarray(table, dtype=float)
    if values.ndim == 1:
        values = values[None, :]
    small = (values >= rule.min_cell) & (values <= rule.max_cell)
    hidden = small.copy()
    lines = _lines(values.shape, row_totals, column_totals)
    while True:
        determined = _determined(hidden, lines)
        # Only a small cell must not be worked out; a hidden complement may (it is no small cell).
        if not any(small[cell] for cell in determined):
            break
        # The complement: a shown count (a cell before a total) on the lines through the cells
        # that can be worked out, the one on most such lines first (it closes a rectangle),
        # then the smallest, so the least is lost.
        through = [line for line in lines if any(cell in line for cell in determined)]
        votes: dict[tuple[int, int], int] = {}
        for line in through:
            for cell in line:
                if not hidden[cell] and cell != line[-1]:
                    votes[cell] = votes.get(cell, 0) + 1
        if not votes:  # no count left on those lines: hide their totals too
            before = hidden.sum()
            for line in through:
                for cell in line:
                    hidden[cell] = True
            if hidden.sum() == before:
                break
            continue
        hidden[min(votes, key=lambda c: (-votes[c], values[c] == 0, values[c], c))] = True
    return hidden if np.asarray(table).ndim > 1 else hidden[0]


def share_hidden(with_code: int, total: int, rule: SuppressionSettings) -> bool:
    """Whether "`with_code` of `total` clients" must not be shown: the clients with the
    code, those without it, or the total is a small cell (or derivable from one)."""
    return bool(suppressed([with_code, total - with_code, total], rule)[0])


def count_words(count: int, rule: SuppressionSettings, noun: str = "case") -> str:
    """"3 other cases", or "fewer than 11 other cases" when the count is a small cell."""
    if rule.min_cell <= count <= rule.max_cell:
        return f"fewer than {rule.max_cell + 1} {noun}s"
    return f"{count} {noun}{'' if count == 1 else 's'}"
