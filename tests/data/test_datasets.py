import numpy as np
import pytest
from PIL import Image

from hilovit.data import DatasetNotFoundError, build_dataset, build_transform, dataset_mean_std, datasets, write_idx


def _idx_tree(root, n=12, size=8):
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        write_idx(rng.integers(0, 256, size=(n, size, size), dtype=np.uint8), root / f"{prefix}-images-idx3-ubyte.gz")
        write_idx(np.arange(n) % 3, root / f"{prefix}-labels-idx1-ubyte")
    return root


def test_idx_directory_is_found_gzip_or_raw(tmp_path):
    dataset = build_dataset(_idx_tree(tmp_path), "test")
    image, label = dataset[4]
    assert len(dataset) == 12 and dataset.channels == 1 and dataset.classes == ("0", "1", "2")
    assert isinstance(image, Image.Image) and image.size == (8, 8) and label == 1


def test_image_folder_tree_is_found(tmp_path):
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            Image.new("RGB", (10, 10), color=(255, 0, 0)).save(tmp_path / split / cls / "a.png")
    dataset = build_dataset(tmp_path, "test")
    assert dataset.classes == ["cat", "dog"] and dataset.channels == 3 and len(dataset) == 2


def test_transforms_give_normalised_tensors(tmp_path):
    dataset = build_dataset(_idx_tree(tmp_path), "train")
    mean, std = dataset_mean_std(dataset)
    dataset.transform = build_transform(train=True, img_size=8, mean=mean, std=std, scale=(0.5, 1.0))
    assert dataset[0][0].shape == (1, 8, 8)
    dataset.transform = build_transform(train=False, img_size=8, mean=mean, std=std)
    tensors = np.stack([dataset[i][0].numpy() for i in range(len(dataset))])
    assert abs(tensors.mean()) < 1e-5 and abs(tensors.std() - 1) < 1e-2


def test_missing_default_names_package_and_option(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "FASHION_MNIST_ROOT", tmp_path / "absent")
    with pytest.raises(DatasetNotFoundError, match=r"apt-get install -y dataset-fashion-mnist.*--data"):
        build_dataset(None, "train")


def test_directory_without_a_split_says_what_it_expected(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"t10k-images-idx3-ubyte.*val/ or test/"):
        build_dataset(tmp_path, "test")


def _image_folder(root, classes_per_split):
    for split, classes in classes_per_split.items():
        for cls in classes:
            (root / split / cls).mkdir(parents=True)
            Image.new("RGB", (10, 10)).save(root / split / cls / "a.png")
    return root


def test_validation_classes_must_be_the_training_classes(tmp_path):
    root = _image_folder(tmp_path, {"train": ("cat", "dog", "horse"), "val": ("cat", "dog", "zebra")})
    assert build_dataset(root, "train").classes == ["cat", "dog", "horse"]
    with pytest.raises(ValueError, match=r"only in val/: 'zebra'; only in train/: 'horse'\); expected the same class"):
        build_dataset(root, "test")


def test_a_missing_validation_class_is_refused_too(tmp_path):
    root = _image_folder(tmp_path, {"train": ("cat", "dog"), "test": ("dog",)})
    with pytest.raises(
        ValueError, match=r"class folders of .*test differ from those of .*train \(only in train/: 'cat'\)"
    ):
        build_dataset(root, "test")


def test_a_text_file_named_png_is_reported_when_the_dataset_opens(tmp_path):
    root = _image_folder(tmp_path, {"train": ("cat", "dog")})
    (root / "train" / "dog" / "b.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"train/dog/b\.png is not a readable image: its content is in no image"):
        build_dataset(root, "train")
