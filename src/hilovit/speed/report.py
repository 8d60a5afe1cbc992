"""Result tables as the benchmarks print them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.table import Table

from hilovit.speed.measure import Point, Row, by_point


def results_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
    """A rich table whose first column (the candidate's name) is left-aligned and the figures right-aligned."""
    table = Table(title=title)
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def describe(point: Point) -> str:
    return f"{point.mode}, batch {point.batch}, {point.height}x{point.width}"


def _figure(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def point_tables(rows: Sequence[Row], baseline_label: str, what: str = "") -> list[Table]:
    """One table per sweep point (pass, batch, size), rows in measured order, ratios to the baseline."""
    columns = ("", "params (M)", "GMACs", "counted", "img/s", "p50 ms", "p90 ms", "spread", "peak MiB", "ratio")
    tables = []
    for point, group in by_point(rows).items():
        title = f"{what}{describe(point)}; ratio = img/s over {baseline_label}"
        cells = (
            (
                row.label,
                f"{row.params / 1e6:.2f}",
                _figure(row.gmacs, ".3f"),
                _figure(row.counted_gmacs, ".3f"),
                _figure(row.images_per_s, ".1f") if row.error is None else row.error,
                _figure(row.latency_p50_ms, ".1f"),
                _figure(row.latency_p90_ms, ".1f"),
                _figure(row.spread, ".0%"),
                _figure(row.peak_mib, ".1f"),
                _figure(row.ratio, ".2f") + ("x" if row.ratio is not None else ""),
            )
            for row in group
        )
        tables.append(results_table(title, columns, cells))
    return tables


def fastest_lines(rows: list[Row]) -> list[str]:
    """Per point: which candidate was fastest, and by how much over the runner-up."""
    lines = []
    for point, group in by_point(rows).items():
        ranked = sorted((row for row in group if row.images_per_s is not None), key=lambda row: -row.images_per_s)
        if not ranked:
            continue
        line = f"{describe(point)}: fastest {ranked[0].label}"
        if len(ranked) > 1:
            line += f" ({ranked[0].images_per_s / ranked[1].images_per_s:.2f}x {ranked[1].label})"
        lines.append(line)
    return lines
