"""Data that is not there: every message names the path or name it looked for and how to get the data."""

from __future__ import annotations

import importlib.util

import pytest

from hilovit.data import DatasetNotFoundError, build_dataset
from hilovit.data.scenes import generate_scenes
from hilovit.data.treecrowns import deepforest_data_dir
from hilovit.data.volumes import load_mni152, load_volume
from hilovit.dense.data import split_directories


def test_fashion_mnist_items_name_the_files_and_the_package(tmp_path):
    with pytest.raises(
        DatasetNotFoundError, match=r"nowhere/train-images-idx3-ubyte\.gz .*apt-get install -y dataset-f"
    ):
        generate_scenes(tmp_path, "train", 1, image_size=64, source=tmp_path / "nowhere")


def test_a_missing_directory_is_named(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"dataset directory .*absent does not exist"):
        build_dataset(tmp_path / "absent", "train")


def test_packaged_data_names_the_package_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, package=None: None)
    with pytest.raises(DatasetNotFoundError, match=r"PyPI package deepforest: `pip install --no-deps deepforest`"):
        deepforest_data_dir()
    with pytest.raises(DatasetNotFoundError, match=r"Python package 'nilearn': pip install nilearn"):
        load_mni152()


def test_unknown_names_get_close_matches(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"unknown volume dataset 'nucleii' \(did you mean 'nuclei'\?\)"):
        load_volume("nucleii")
    with pytest.raises(
        DatasetNotFoundError, match=r"unknown dataset 'scnes' \(did you mean 'scenes'\?\); known: .*; or a d"
    ):
        split_directories("scnes", 64)


def test_a_dense_directory_without_annotations_says_what_it_expected(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(
        DatasetNotFoundError, match=r"has no .*train/annotations\.json: expected DIR with train/ and val/"
    ):
        split_directories(str(tmp_path), 64)
