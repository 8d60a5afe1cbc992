"""PNG plots of measured rows (matplotlib's Agg renderer; no display needed).

* throughput vs FLOPs at one point, one marker per candidate (the paper's Fig. 1 style);
* throughput and peak memory vs resolution, one line per candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hilovit.speed.measure import Row, by_point
from hilovit.speed.report import describe


def _save(figure: Figure, path: str | Path) -> Path:
    FigureCanvasAgg(figure)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return Path(path)


def _measured(rows: Sequence[Row]) -> list[Row]:
    return [row for row in rows if row.images_per_s is not None]


def throughput_vs_flops(rows: Sequence[Row], path: str | Path, title: str = "") -> Path:
    """Scatter of img/s against GMACs per image (analytic where known, else counted), labelled."""
    figure = Figure(figsize=(7, 5))
    axes = figure.add_subplot()
    for row in _measured(rows):
        macs = row.gmacs if row.gmacs is not None else row.counted_gmacs
        axes.scatter(macs, row.images_per_s, s=40)
        axes.annotate(row.label, (macs, row.images_per_s), textcoords="offset points", xytext=(5, 4), fontsize=8)
    axes.set_xlabel("GMACs per image")
    axes.set_ylabel("throughput (img/s)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    return _save(figure, path)


def resolution_curves(rows: Sequence[Row], path: str | Path, title: str = "") -> Path:
    """Throughput and peak memory against the map/image side, one line per candidate."""
    figure = Figure(figsize=(11, 4.5))
    speed, memory = figure.subplots(1, 2)
    labels = list(dict.fromkeys(row.label for row in rows))
    for label in labels:
        points = sorted((row.height, row) for row in _measured(rows) if row.label == label)
        sides = [side for side, _ in points]
        speed.plot(sides, [row.images_per_s for _, row in points], marker="o", label=label)
        memory.plot(sides, [row.peak_mib for _, row in points], marker="o", label=label)
    for axes, what in ((speed, "throughput (img/s)"), (memory, "peak memory (MiB)")):
        axes.set_xlabel("resolution (side)")
        axes.set_ylabel(what)
        axes.set_yscale("log")
        axes.grid(alpha=0.3)
    speed.legend(fontsize=8)
    figure.suptitle(title)
    return _save(figure, path)


def write_plots(rows: Sequence[Row], folder: str | Path, title: str = "") -> list[Path]:
    """Every plot the rows support: throughput vs FLOPs per point, and per (pass, batch) the resolution
    curves when several sizes were measured. Returns the files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for point, group in by_point(rows).items():
        name = f"throughput_vs_flops_{point.mode.replace('+', '_')}_b{point.batch}_{point.height}x{point.width}.png"
        written.append(throughput_vs_flops(group, folder / name, title + describe(point)))
    series: dict[tuple, list[Row]] = {}
    for row in rows:
        series.setdefault((row.mode, row.batch), []).append(row)
    for (mode, batch), group in series.items():
        if len({row.height for row in group}) > 1:
            name = f"resolution_{mode.replace('+', '_')}_b{batch}.png"
            written.append(resolution_curves(group, folder / name, f"{title}{mode}, batch {batch}"))
    return written
