"""The wheel is complete: built from the sources, installed into a fresh folder and run from outside the checkout,
the commands find everything they read (recipes, YAMLs) inside the package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the installed wheel (``pip install --no-deps --target``); the sources are copied first,
    so the build leaves nothing in the checkout."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    run = dict(check=True, capture_output=True, text=True)
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(work / "dist"), str(source)], **run)
    (wheel,) = (work / "dist").glob("hilovit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"hilovit/configs/litv2_nano_fmnist.yaml", "hilovit/yolo/cfg/yolo11-hilo.yaml"} <= names
    subprocess.run([*pip, "install", "--no-deps", "--target", str(work / "site"), str(wheel)], **run)
    return work / "site"


def hilovit(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m hilovit ARGS`` with only the installed wheel (not the checkout) importable as hilovit."""
    env = {**os.environ, "PYTHONPATH": str(installed), "OMP_NUM_THREADS": "1", "HILOVIT_TRACEBACK": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "hilovit", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_the_installed_package_is_the_one_imported(installed: Path, tmp_path: Path) -> None:
    code = "import hilovit; print(hilovit.__file__)"
    env = {**os.environ, "PYTHONPATH": str(installed)}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert Path(done.stdout.strip()).is_relative_to(installed), done.stdout


def test_demo_help(installed: Path, tmp_path: Path) -> None:
    assert "usage: hilovit demo" in hilovit(installed, tmp_path, "demo", "--help").stdout


@pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="needs the Debian Fashion-MNIST package")
def test_train_with_the_bundled_recipe(installed: Path, tmp_path: Path) -> None:
    tiny = ["model_kwargs={patch_size: 2, embed_dim: 16, depths: [1, 1, 1, 1]}", "train_subset=64", "test_subset=32"]
    args = ["train", "litv2_nano_fmnist", *tiny, "batch_size=16", "--max-steps", "2", "--output", "run"]
    hilovit(installed, tmp_path, *args)
    assert (tmp_path / "run" / "model.safetensors").is_file()


@pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="needs the Debian Fashion-MNIST package")
def test_video_train_with_the_bundled_recipe(installed: Path, tmp_path: Path) -> None:
    tiny = ["train_subset=16", "test_subset=8", "batch_size=8", "throughput_batch=2"]
    hilovit(installed, tmp_path, "video", "train", *tiny, "--max-steps", "2", "--output", "run")
    assert (tmp_path / "run" / "last.pt").is_file()
