"""Run the installed timm's own model test suite (``tests/test_models.py``) against hilovit's timm models.

timm states its model conventions as that suite; its source distribution ships it. This script fetches the sdist
of the installed timm version (``pip download --no-binary :all:``, cached), copies its ``tests/`` and
``pyproject.toml`` (not its sources: the installed timm is the one tested) into a work folder, adds a
``conftest.py`` line that imports hilovit (which registers ``litv2_*``), and runs::

    pytest tests/test_models.py -k "litv2 or hilo3d"

twice: stock, and with ``litv2`` added to ``FEAT_INTER_FILTERS`` (the forward_intermediates / pruning tests).
It prints each run's pytest summary line and the outcome counts per test function; the exit status is non-zero
when any test failed.

    python benchmarks/timm_suite.py [--work DIR] [--select EXPR] [--variant stock|feat-inter|both]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

import timm

SELECT = "litv2 or hilo3d"
PRELUDE = "import hilovit  # noqa: F401  registers hilovit's models with timm\n"
FEAT_INTER = "FEAT_INTER_FILTERS = ["
WORK = Path(tempfile.gettempdir()) / "hilovit-timm-suite"


def fetch_tests(work: Path) -> Path:
    """The installed timm version's ``tests/`` and ``pyproject.toml`` under ``work/timm-<version>``."""
    version = timm.__version__
    root = work / f"timm-{version}"
    if (root / "tests" / "test_models.py").exists():
        return root
    sdist = work / "sdist"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", f"timm=={version}", "--no-deps", "--no-binary", ":all:",
         "--quiet", "-d", str(sdist)],
        check=True,
    )  # fmt: skip
    archive = next(sdist.glob(f"timm-{version}.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    shutil.rmtree(root / "timm")  # test the installed timm, not the sdist's copy of its sources
    conftest = root / "tests" / "conftest.py"
    conftest.write_text(PRELUDE + conftest.read_text())
    return root


def variant_tests(root: Path, variant: str) -> Path:
    """The suite file of ``variant``: stock, or a copy with ``litv2`` in ``FEAT_INTER_FILTERS``."""
    stock = root / "tests" / "test_models.py"
    if variant == "stock":
        return stock
    text = stock.read_text()
    if FEAT_INTER not in text:
        raise SystemExit(f"{stock} has no {FEAT_INTER!r}: this timm version names its filters differently")
    patched = root / "tests" / "test_models_feat_inter.py"
    patched.write_text(text.replace(FEAT_INTER, FEAT_INTER + "'litv2', ", 1))
    return patched


def run(root: Path, tests: Path, select: str) -> tuple[int, str, dict[str, Counter]]:
    """pytest's exit status, summary line and per-test-function outcome counts."""
    report = root / f"{tests.stem}.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(tests.relative_to(root)), "-k", select, "-q", "-p", "no:cacheprovider",
         f"--junitxml={report}"],
        cwd=root, capture_output=True, text=True,
    )  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    summary = lines[-1] if lines else proc.stderr.strip()
    counts: dict[str, Counter] = defaultdict(Counter)
    if report.exists():
        for case in ET.parse(report).iter("testcase"):
            outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
            counts[case.get("name", "").split("[")[0]][outcome] += 1
    if proc.returncode not in (0, 5):  # 5: nothing selected
        failed = [line for line in proc.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
        print("\n".join(failed), file=sys.stderr)
    return proc.returncode, summary, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=WORK, help=f"download and work folder (default {WORK})")
    parser.add_argument("--select", default=SELECT, help=f"pytest -k expression (default {SELECT!r})")
    parser.add_argument("--variant", choices=("stock", "feat-inter", "both"), default="both")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    root = fetch_tests(args.work.resolve())
    status = 0
    for variant in ("stock", "feat-inter") if args.variant == "both" else (args.variant,):
        code, summary, counts = run(root, variant_tests(root, variant), args.select)
        print(f"timm {timm.__version__} tests/test_models.py, {variant}: {summary}")
        for name, outcomes in sorted(counts.items()):
            print(f"  {name}: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items())))
        status = status or (code if code not in (0, 5) else 0)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
