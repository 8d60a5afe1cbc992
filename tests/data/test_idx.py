import numpy as np
import pytest

from hilovit.data import IdxFormatError, read_idx, write_idx


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_idx_round_trip_raw_and_gzip(tmp_path, name):
    array = np.random.default_rng(0).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    back = read_idx(write_idx(array, tmp_path / name))
    assert back.dtype == np.uint8 and np.array_equal(back, array)


def test_bad_magic_is_rejected(tmp_path):
    path = tmp_path / "x-idx1-ubyte"
    path.write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(IdxFormatError, match="not an IDX file"):
        read_idx(path)


def test_truncated_file_is_rejected(tmp_path):
    path = write_idx(np.zeros((4, 3, 3), np.uint8), tmp_path / "x-idx3-ubyte")
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(IdxFormatError, match="expected"):
        read_idx(path)
