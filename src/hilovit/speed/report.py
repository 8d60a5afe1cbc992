"""Result tables as the benchmarks print them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.table import Table


def results_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
    """A rich table whose first column (the candidate's name) is left-aligned and the figures right-aligned."""
    table = Table(title=title)
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table
