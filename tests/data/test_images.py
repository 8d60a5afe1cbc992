"""The image check every dataset makes when it is opened."""

import pytest
from PIL import Image, UnidentifiedImageError

from hilovit.data.images import ImageFileError, image_files_in, verify_image


def test_verify_gives_the_size_without_decoding(tmp_path):
    Image.new("RGB", (12, 7)).save(tmp_path / "a.png")
    Image.new("L", (5, 9)).save(tmp_path / "b.jpg")
    assert verify_image(tmp_path / "a.png") == (12, 7) and verify_image(tmp_path / "b.jpg") == (5, 9)


def test_unreadable_files_are_named(tmp_path):
    Image.new("RGB", (64, 64), color=(1, 2, 3)).save(tmp_path / "good.png")
    data = (tmp_path / "good.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(ImageFileError, match=r"text\.png is not a readable image: its content is in no image format"):
        verify_image(tmp_path / "text.png")
    with pytest.raises(ImageFileError, match=r"truncated\.png is not a readable image: .*\(expected \.png/\.jpg/"):
        verify_image(tmp_path / "truncated.png")
    with pytest.raises(ImageFileError, match=r"missing\.png is not a readable image: \[Errno 2\]"):
        verify_image(tmp_path / "missing.png")


def test_a_text_file_is_named_also_under_ultralytics_image_open(tmp_path, monkeypatch):
    """ultralytics replaces ``PIL.Image.open`` on import with a wrapper that answers a file in no image format by
    importing pi-heif, an optional package: without it, a ModuleNotFoundError instead of PIL's error."""
    real_open = Image.open

    def ultralytics_like_open(*args, **kwargs):
        try:
            return real_open(*args, **kwargs)
        except UnidentifiedImageError:
            raise ModuleNotFoundError("No module named 'pi_heif'") from None

    monkeypatch.setattr(Image, "open", ultralytics_like_open)
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(ImageFileError, match=r"text\.png is not a readable image: its content is in no image format"):
        verify_image(tmp_path / "text.png")


def test_image_files_in_lists_images_by_suffix(tmp_path):
    for name in ("b.PNG", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "folder.png").mkdir()
    assert [p.name for p in image_files_in(tmp_path)] == ["a.jpg", "b.PNG"]
