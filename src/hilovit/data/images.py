"""Image files: the suffixes that count as images, and the check every dataset makes when it is opened, so that a
broken or mislabelled file (a text file named ``.png``) is reported with its path before any training starts."""

from __future__ import annotations

import os
import struct
from pathlib import Path

from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

# What PIL raises for unreadable image data: OSError (truncated, bad checksum, missing), SyntaxError (a broken
# header, from verify), struct.error (short header fields), DecompressionBombError (absurd declared size).
_UNREADABLE = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)


class ImageFileError(ValueError):
    """A file that should hold an image but cannot be read as one."""


def open_image(path: str | os.PathLike[str]) -> Image.Image:
    """``PIL.Image.open(path)``, raising PIL's own errors also where ultralytics has replaced ``Image.open`` (its
    wrapper answers a file in no format PIL reads by importing the optional pi-heif, and a missing pi-heif by
    ``ModuleNotFoundError``)."""
    try:
        return Image.open(path)
    except ImportError as error:
        raise UnidentifiedImageError(f"cannot identify image file {os.fspath(path)!r}") from error


def verify_image(path: str | os.PathLike[str]) -> tuple[int, int]:
    """The ``(width, height)`` of the image file at ``path``, after PIL's integrity check (headers and checksums,
    without decoding the pixels: a fraction of a millisecond for a small PNG).

    Raises:
        ImageFileError: the file is missing or is not a readable image; the message names the path.
    """
    try:
        with open_image(path) as image:
            size = image.size
            image.verify()
    except UnidentifiedImageError:
        reason = "its content is in no image format PIL reads"
    except _UNREADABLE as error:
        reason = str(error) or type(error).__name__
    else:
        return size
    raise ImageFileError(f"{path} is not a readable image: {reason} (expected {'/'.join(IMAGE_SUFFIXES)} image data)")


def is_image_file(path: Path) -> bool:
    """Whether ``path`` names an image by its suffix (its content is checked by :func:`verify_image`)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def image_files_in(directory: Path) -> list[Path]:
    """The image files directly inside ``directory`` (by suffix), sorted."""
    return sorted(p for p in directory.iterdir() if is_image_file(p) and p.is_file())
