"""Image files in, RGB uint8 arrays out — the same pixels the user sees.

EXIF orientation is applied everywhere (cv2 does it on decode; the header reader does it
for sizes), grayscale / RGBA / palette / 16-bit / CMYK are converted to 8-bit RGB, and
images too large to handle safely are refused with a message before decoding.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np

from model.errors import ImageReadError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

# The one limit on image size, whichever reader meets the file (Pillow's header reader, cv2's
# decoder) and whichever path asks (load_image, image_size): 16k x 16k. A decoded RGB image
# of this size is 768 MB; anything larger is refused before decoding rather than risking
# running out of memory. (A format only cv2 reads, e.g. Radiance HDR, has no header reader
# here: its size is checked once decoded, and cv2's own limit, 1 GP, bounds that decode.)
# Pillow's decompression-bomb check (a warning over ~89 MP, a refusal over ~179 MP, in its
# own words) is switched off where this module imports Pillow -- the product reads images
# with Pillow nowhere else -- because the size Pillow reads from the header is checked
# against this limit before anything is decoded.
MAX_PIXELS = 16384 * 16384

# EXIF orientations 5..8 swap width and height.
_TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}


def is_image_path(path: str | os.PathLike) -> bool:
    return os.fspath(path).lower().endswith(IMAGE_EXTENSIONS)


_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[list[str | int], str]:
    """Sort key for the natural order of file names: runs of digits compare as numbers
    (``raccoon-2`` before ``raccoon-10``), the rest case-insensitively; ties are broken by
    the exact name, so the order is total. (Digits always sit at odd positions of the
    split, so compared items are of the same type.)"""
    parts: list[str | int] = _DIGITS.split(name.casefold())  # type: ignore[assignment]
    parts[1::2] = map(int, parts[1::2])  # type: ignore[arg-type]
    return parts, name


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder``, in natural order of their names
    (:func:`natural_key`: ``img2`` before ``img10``). Listing only: nothing is opened or
    decoded, so a folder of 10,000 images lists in milliseconds."""
    folder = Path(folder)
    try:
        with os.scandir(folder) as entries:
            names = sorted((e.name for e in entries if is_image_path(e.name) and e.is_file()), key=natural_key)
    except OSError as exc:
        raise ImageReadError(folder, f"cannot list folder ({exc.strerror or exc})") from None
    return [folder / name for name in names]


class ImageTooLargeError(ImageReadError):
    """The image has more pixels than MAX_PIXELS (refused before decoding where a header
    reader knows the size)."""


def _too_large(path: Path, width: int | None = None, height: int | None = None) -> ImageTooLargeError:
    """The one message for an image over the limit: the file, its size (when known) and MAX_PIXELS."""
    limit = f"the limit is {MAX_PIXELS / 1e6:.1f} MP ({MAX_PIXELS:,} pixels)"
    if width is None or height is None:
        return ImageTooLargeError(path, f"image is too large: the decoder refuses the size its header declares; {limit}")
    return ImageTooLargeError(path, f"image is too large: {width} x {height} pixels ({width * height / 1e6:.1f} MP); {limit}")


def _check_size(path: Path, width: int, height: int) -> None:
    """Raise ImageTooLargeError when ``width`` x ``height`` is over MAX_PIXELS."""
    if width * height > MAX_PIXELS:
        raise _too_large(path, width, height)


def _pillow_image():  # noqa: ANN202 - the PIL.Image module, imported on first use
    """PIL.Image with its decompression-bomb check off: MAX_PIXELS is applied instead (see there)."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    return Image


def _exif_orientation(im) -> int:  # noqa: ANN001 - a PIL image
    """EXIF orientation (1..8) of an open PIL image; 1 when absent or unreadable (a damaged
    EXIF block must not make the whole image unreadable)."""
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - Pillow raises assorted types on damaged EXIF
        return 1
    return value if isinstance(value, int) else 1


def _read_header(path: Path, *, orientation: bool) -> tuple[int, int, int]:
    """(stored width, stored height, EXIF orientation or 1) with Pillow, decoding no pixels
    (except that a PNG is read to its end to find an eXIf chunk placed after the pixels,
    which happens only once the size has passed the limit).

    Raises ImageTooLargeError when the size is over MAX_PIXELS, and ImageReadError for
    anything else it cannot read."""
    Image = _pillow_image()  # noqa: N806 - the module
    try:
        with Image.open(path) as im:
            width, height = im.size
            if im.format == "TIFF":
                # Pillow already swaps a TIFF's size for its orientation tag: start from the stored size
                width, height = im.tag_v2.get(256, width), im.tag_v2.get(257, height)
            _check_size(path, width, height)
            value = _exif_orientation(im) if orientation else 1
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's plugins raise assorted types on garbage
        raise ImageReadError(path, f"not a readable image ({exc.__class__.__name__})") from None
    return width, height, value


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) as displayed (EXIF orientation applied), from the header only.

    Raises ImageReadError (ImageTooLargeError for sizes too large to decode safely)."""
    path = Path(path)
    width, height, orientation = _read_header(path, orientation=True)
    if orientation in _TRANSPOSING_ORIENTATIONS:
        width, height = height, width
    return width, height


def load_image(path: str | Path) -> np.ndarray:
    """Decode ``path`` to an (H, W, 3) uint8 RGB array with EXIF orientation applied.

    Raises ImageReadError naming the file and the problem (missing, empty, not an image,
    truncated, too large).
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except IsADirectoryError:
        raise ImageReadError(path, "is a folder, not an image") from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot read file ({exc.strerror or exc})") from None
    if data.size == 0:
        raise ImageReadError(path, "file is empty (0 bytes)")
    try:
        _read_header(path, orientation=False)  # raises ImageTooLargeError before decoding
    except ImageTooLargeError:
        raise
    except ImageReadError:
        pass  # let cv2 try: it reads a few formats Pillow does not (the size is checked after)
    # IMREAD_COLOR: 8-bit BGR whatever the source (gray, alpha, palette, 16-bit, CMYK),
    # with EXIF orientation applied.
    try:
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error as exc:  # e.g. a header cv2 reads but Pillow does not
        reason = (str(exc).strip().splitlines() or ["?"])[-1][:200]
        if "validateInputImageSize" in reason:  # over cv2's own size limits (1 GP by default)
            raise _too_large(path) from None
        raise ImageReadError(path, f"cannot decode it ({reason})") from None
    if bgr is None:
        raise ImageReadError(path, "not an image or the file is corrupt/truncated")
    _check_size(path, bgr.shape[1], bgr.shape[0])  # a format only cv2 reads: known once decoded
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
