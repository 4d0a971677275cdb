"""model.imageio's one image-size limit (MAX_PIXELS): the same limit and the same message
whichever reader meets the file first (Pillow's header reader, cv2's decoder) and whichever
loading path asks (load_image, image_size, a label dataset scan)."""

from __future__ import annotations

import re
import struct
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import model.imageio as imageio
from model.errors import ImageReadError
from model.imageio import ImageTooLargeError, image_size, list_images, load_image
from model.labels import load_dataset

WIDTH, HEIGHT = 20, 10  # the small real images below: 200 pixels


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` RGB pixels, with almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _pillow_writer(fmt: str, **params: object) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        pixels = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        pixels[:, : WIDTH // 2, 0] = 255
        Image.fromarray(pixels).save(path, format=fmt, **params)

    return write


def _write_hdr(path: Path) -> None:
    """Radiance HDR: cv2 decodes it, Pillow cannot read its header (the fallback path)."""
    ok, encoded = cv2.imencode(".hdr", np.full((HEIGHT, WIDTH, 3), 0.5, np.float32))
    assert ok
    path.write_bytes(encoded.tobytes())


WRITERS: dict[str, Callable[[Path], None]] = {
    "photo.png": _pillow_writer("PNG"),
    "photo.jpg": _pillow_writer("JPEG", quality=95),
    "photo.bmp": _pillow_writer("BMP"),
    "photo.tif": _pillow_writer("TIFF"),
    "photo.webp": _pillow_writer("WEBP", lossless=True),
    "photo.hdr": _write_hdr,
}
PILLOW_READABLE = [name for name in WRITERS if not name.endswith(".hdr")]


def _assert_our_message(error: ImageReadError, path: Path, width: int, height: int) -> None:
    assert isinstance(error, ImageTooLargeError)
    assert error.path == str(path)
    assert error.problem.startswith(f"image is too large: {width} x {height} pixels ")
    assert f"the limit is {imageio.MAX_PIXELS / 1e6:.1f} MP ({imageio.MAX_PIXELS:,} pixels)" in error.problem
    assert not re.search("bomb|exceeds", error.problem, re.IGNORECASE)  # never Pillow's wording


def _no_decoding(*args: object, **kwargs: object) -> None:
    raise AssertionError("the image was handed to the decoder")


# ------------------------------------------------------------------ the real limit, header only
def test_just_over_the_limit_is_refused_with_our_message_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "over.png"
    path.write_bytes(_png_header_only(16385, 16384))
    monkeypatch.setattr(imageio.cv2, "imdecode", _no_decoding)
    for read in (load_image, image_size):
        with pytest.raises(ImageTooLargeError) as info:
            read(path)
        _assert_our_message(info.value, path, 16385, 16384)
    dataset = load_dataset(tmp_path, "voc")
    assert dataset.items == [] and len(dataset.errors) == 1
    _assert_our_message(dataset.errors[0], path, 16385, 16384)


@pytest.mark.parametrize("width, height", [(16384, 16384), (14000, 14000), (10000, 10000)])
def test_sizes_up_to_the_limit_are_read_without_warnings(tmp_path: Path, width: int, height: int) -> None:
    # 14000 x 14000 (196 MP) is over Pillow's own refusal (~179 MP) and 10000 x 10000 over its
    # warning (~89 MP): neither applies, the one limit is MAX_PIXELS.
    path = tmp_path / "big.png"
    path.write_bytes(_png_header_only(width, height))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert image_size(path) == (width, height)


# ------------------------------------------------------------------ a lowered limit, real images
@pytest.mark.parametrize("name", list(WRITERS))
def test_every_format_loads_at_the_limit_and_is_refused_one_pixel_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    path = tmp_path / name
    WRITERS[name](path)
    monkeypatch.setattr(imageio, "MAX_PIXELS", WIDTH * HEIGHT)
    assert load_image(path).shape == (HEIGHT, WIDTH, 3)
    if name in PILLOW_READABLE:
        assert image_size(path) == (WIDTH, HEIGHT)

    monkeypatch.setattr(imageio, "MAX_PIXELS", WIDTH * HEIGHT - 1)
    with pytest.raises(ImageTooLargeError) as info:
        load_image(path)
    _assert_our_message(info.value, path, WIDTH, HEIGHT)
    if name in PILLOW_READABLE:
        with pytest.raises(ImageTooLargeError) as info:
            image_size(path)
        _assert_our_message(info.value, path, WIDTH, HEIGHT)


@pytest.mark.parametrize("name", PILLOW_READABLE)
def test_a_file_pillow_can_read_is_refused_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    path = tmp_path / name
    WRITERS[name](path)
    monkeypatch.setattr(imageio, "MAX_PIXELS", WIDTH * HEIGHT - 1)
    monkeypatch.setattr(imageio.cv2, "imdecode", _no_decoding)
    with pytest.raises(ImageTooLargeError):
        load_image(path)


def test_a_lowered_limit_applies_to_a_dataset_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a.png", "b.jpg"):
        WRITERS[f"photo{Path(name).suffix}"](tmp_path / name)
    monkeypatch.setattr(imageio, "MAX_PIXELS", WIDTH * HEIGHT)
    assert len(load_dataset(tmp_path, "voc").items) == 2
    monkeypatch.setattr(imageio, "MAX_PIXELS", WIDTH * HEIGHT - 1)
    dataset = load_dataset(tmp_path, "yolo")
    assert dataset.items == [] and len(dataset.errors) == 2
    for error, name in zip(dataset.errors, ("a.png", "b.jpg")):
        _assert_our_message(error, tmp_path / name, WIDTH, HEIGHT)


def test_a_header_cv2_refuses_gives_our_message(tmp_path: Path) -> None:
    # Radiance HDR claiming 40000 x 40000: Pillow cannot read it, cv2 refuses the size itself.
    path = tmp_path / "huge.hdr"
    path.write_bytes(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 40000 +X 40000\n" + bytes(64))
    with pytest.raises(ImageTooLargeError) as info:
        load_image(path)
    assert info.value.path == str(path)
    assert info.value.problem.startswith("image is too large: ")
    assert f"the limit is {imageio.MAX_PIXELS / 1e6:.1f} MP" in info.value.problem


# --------------------------------------------------------------------------- natural order
def test_list_images_sorts_in_natural_order(tmp_path: Path) -> None:
    names = ["raccoon-10.jpg", "raccoon-2.jpg", "raccoon-1.jpg", "Raccoon-3.png", "raccoon-100.jpg", "notes.txt"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    listed = [p.name for p in list_images(tmp_path)]
    assert listed == ["raccoon-1.jpg", "raccoon-2.jpg", "Raccoon-3.png", "raccoon-10.jpg", "raccoon-100.jpg"]


def test_natural_key_is_a_total_order_on_mixed_names() -> None:
    from model.imageio import natural_key

    names = ["a10b2", "a10b10", "a2", "A2", "a02", "10", "9", "b", "", "a", "x1y", "x01y"]
    ordered = sorted(names, key=natural_key)
    assert ordered[:3] == ["", "9", "10"]
    assert ordered.index("a2") < ordered.index("a10b2") < ordered.index("a10b10")
    assert sorted(reversed(names), key=natural_key) == ordered  # total: input order does not matter
