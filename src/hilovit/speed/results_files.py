"""Results as files: JSON (environment, settings and rows) and CSV (one line per row)."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hilovit.speed.breakdown import PointBreakdown
from hilovit.speed.measure import Row

ROW_FIELDS = tuple(field.name for field in dataclasses.fields(Row))


@dataclass(frozen=True)
class Report:
    """A finished benchmark: its rows, the environment they were measured in, the settings used and, when
    asked for, where each candidate's time went (one breakdown per point)."""

    rows: list[Row]
    environment: dict[str, object]
    settings: dict[str, object]
    breakdowns: list[PointBreakdown] = field(default_factory=list)


def write_json(path: str | Path, report: Report) -> None:
    """``{"environment": ..., "settings": ..., "rows": [{field: value}, ...], "breakdowns": [...]}``."""
    document = {
        "environment": report.environment,
        "settings": report.settings,
        "rows": [dataclasses.asdict(row) for row in report.rows],
        "breakdowns": [dataclasses.asdict(breakdown) for breakdown in report.breakdowns],
    }
    Path(path).write_text(json.dumps(document, indent=2, default=str) + "\n")


def write_csv(path: str | Path, rows: Sequence[Row]) -> None:
    """A header of the row fields, then one line per row (empty cells where a figure is missing)."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=ROW_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if value is None else value for key, value in dataclasses.asdict(row).items()})
