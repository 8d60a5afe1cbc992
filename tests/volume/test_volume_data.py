"""The volume and video datasets on the real package data: labels, region split, crops, determinism, errors."""

import numpy as np
import pytest
import torch

from hilovit.data import DatasetNotFoundError
from hilovit.data.moving_fmnist import MOTIONS, MovingFashionMNIST
from hilovit.data.volumes import RandomCrops, WholeVolume, load_mni152, load_nuclei, load_volume, split_by_region


@pytest.fixture(scope="module")
def mni152():
    return load_mni152()


def test_mni152_tissue_labels_and_split_by_slab(mni152):
    assert mni152.image.shape == (99, 117, 95) and mni152.image.min() >= 0 and mni152.image.max() <= 1
    assert set(np.unique(mni152.labels)) == {0, 1, 2} and mni152.classes[1:] == ("grey matter", "white matter")
    train, val = split_by_region(mni152, 0.25)
    assert train.image.shape == (99, 88, 95) and val.image.shape == (99, 29, 95)
    np.testing.assert_array_equal(np.concatenate([train.labels, val.labels], axis=1), mni152.labels)


def test_random_crops_are_seeded_flipped_windows_of_the_volume(mni152):
    crops = RandomCrops(mni152, (8, 12, 10), length=5, flip=0.0)
    torch.manual_seed(0)
    image, labels = crops[0]
    assert image.shape == (1, 8, 12, 10) and labels.shape == (8, 12, 10) and labels.dtype == torch.int64
    torch.manual_seed(0)
    assert torch.equal(crops[0][0], image)
    torch.manual_seed(0)
    d, h, w = (int(torch.randint(n - c + 1, ())) for n, c in zip(mni152.image.shape, (8, 12, 10), strict=True))
    assert torch.equal(image[0], torch.from_numpy(mni152.image[d : d + 8, h : h + 12, w : w + 10]))
    image, labels = WholeVolume(mni152)[0]
    assert image.shape == (1, 99, 117, 95) and labels.shape == (99, 117, 95)
    with pytest.raises(ValueError, match="crop must be three sides within the volume"):
        RandomCrops(mni152, (100, 8, 8), length=1)


def test_nuclei_foreground_from_the_napari_sample_data():
    nuclei = load_nuclei()
    assert nuclei.image.shape == (60, 256, 256) and nuclei.classes == ("background", "nucleus")
    assert 0.1 < nuclei.labels.mean() < 0.3
    with pytest.raises(DatasetNotFoundError, match="unknown volume dataset 'brats'"):
        load_volume("brats")


def test_moving_fashion_mnist_clips_move_in_their_labelled_direction():
    data = MovingFashionMNIST("test", clips=18, frames=4, size=24, object_size=12, speeds=(2,))
    assert len(data) == 18 and data.classes == tuple(MOTIONS)
    for index in range(9):
        clip, label = data[index]
        assert clip.shape == (1, 4, 24, 24) and label == index
        mass = clip[0].sum(dim=(1, 2), keepdim=True)
        rows = (clip[0] * torch.arange(24.0)[:, None]).sum(dim=(1, 2)) / mass.flatten()
        columns = (clip[0] * torch.arange(24.0)).sum(dim=(1, 2)) / mass.flatten()
        d_row, d_column = MOTIONS[data.classes[label]]
        torch.testing.assert_close(rows.diff(), torch.full((3,), 2.0 * d_row))
        torch.testing.assert_close(columns.diff(), torch.full((3,), 2.0 * d_column))
    assert torch.equal(
        data[5][0], MovingFashionMNIST("test", clips=18, frames=4, size=24, object_size=12, speeds=(2,))[5][0]
    )
    with pytest.raises(ValueError, match="needs frames of at least 26 px, got size=24"):
        MovingFashionMNIST("test", frames=8, size=24, object_size=12, speeds=(2,))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"frames": 0}, "frames must be an integer >= 1, got 0"),
        ({"speeds": [-1]}, r"speeds must be a non-empty list, each an integer >= 1, got \[-1\]"),
        ({"speeds": []}, r"speeds must be a non-empty list, each an integer >= 1, got \[\]"),
        ({"object_size": 40}, r"object_size must be an integer in \[1, 32\], got 40"),
        ({"size": "32"}, "size must be an integer >= 1, got '32'"),
    ],
)
def test_moving_fashion_mnist_names_the_bad_option(options, message):
    with pytest.raises(ValueError, match=message):
        MovingFashionMNIST("test", **options)


def test_random_crops_need_three_integer_sides(mni152):
    with pytest.raises(ValueError, match=r"crop must be three sides within the volume .*, got 5"):
        RandomCrops(mni152, 5, 4)
