"""Image <-> network-input geometry: the letterbox every contract model's input goes through.

An image is resized so that its longest side is the inference size (aspect kept), then put
at the top left of a canvas of zeros: the letterboxed size padded to a multiple of
:data:`PAD_MULTIPLE` (the CPU's choice), or one square canvas per inference size
(:func:`square_canvas`, the GPU's). Boxes come back through :func:`boxes_to_original`.
Training, export and the runtime share these functions, so they all see the same pixels.
The canvases of a network call are written straight into its input batch
(:func:`fill_canvases`), whose arrays :class:`InputBuffers` lends out again and again.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence

import cv2
import numpy as np

from model.boxes import clip_boxes

PAD_MULTIPLE = 128


def letterbox_size(image_hw: tuple[int, int], *, size: int) -> tuple[int, int]:
    """(height, width) of an ``image_hw`` image resized so that its longest side is ``size``,
    aspect kept (each side rounded, at least 1)."""
    height, width = image_hw
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def boxes_to_original(boxes: np.ndarray, *, image_hw: tuple[int, int], size: int) -> np.ndarray:
    """(A, 4) xyxy boxes in letterboxed network-input pixels -> original-image pixels, per
    axis (the short side was rounded to whole pixels), clipped to the image."""
    height, width = image_hw
    new_h, new_w = letterbox_size((height, width), size=size)
    factors = np.array([width / new_w, height / new_h] * 2, dtype=np.float32)
    return clip_boxes(boxes * factors, width=width, height=height)


def square_canvas(size: int, *, multiple: int = PAD_MULTIPLE) -> tuple[int, int]:
    """The fixed (height, width) canvas for inference size ``size``: ``size`` rounded up to
    a multiple of ``multiple``, square, so that every image at that size has one shape."""
    side = math.ceil(size / multiple) * multiple
    return side, side


def resize_for_size(image: np.ndarray, *, size: int) -> tuple[np.ndarray, float]:
    """An (H, W, 3) image resized so that its longest side is ``size`` (aspect kept; area
    interpolation down, linear up; the image itself when it already has that size), and the
    scale (see :func:`letterbox`)."""
    if size <= 0:
        raise ValueError(f"inference size must be positive, got {size}")
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_h, new_w = letterbox_size((height, width), size=size)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interp) if (new_w, new_h) != (width, height) else image
    return resized, scale


def letterbox(
    image: np.ndarray, *, size: int, multiple: int = PAD_MULTIPLE, canvas: tuple[int, int] | None = None
) -> tuple[np.ndarray, float]:
    """Resize an (H, W, 3) image so the longest side is ``size`` (aspect kept), then pad
    bottom/right with zeros to a multiple of ``multiple``, or onto ``canvas`` (height, width)
    when given (see :func:`square_canvas`). Returns (padded uint8 image, scale) where
    network-input pixel ~= original pixel * scale (exactly so along the longest side; the
    other side is rounded to whole pixels, see :func:`letterbox_size`)."""
    resized, scale = resize_for_size(image, size=size)
    new_h, new_w = resized.shape[:2]
    if canvas is None:
        pad_h, pad_w = (math.ceil(new_h / multiple) * multiple, math.ceil(new_w / multiple) * multiple)
    else:
        pad_h, pad_w = canvas
        if pad_h < new_h or pad_w < new_w:
            raise ValueError(f"a {new_w}x{new_h} image does not fit on a {pad_w}x{pad_h} canvas")
    padded = np.empty((1, pad_h, pad_w, 3), dtype=np.uint8)
    fill_canvases(padded, [resized])
    return padded[0], scale


def fill_canvases(batch: np.ndarray, images: Sequence[np.ndarray]) -> None:
    """Write each resized (h, w, 3) uint8 image at the top left of its canvas in the
    (N, H, W, 3) ``batch`` (any dtype; values cast), zeros around it, and blank canvases
    after the last image (a short batch filled up to N)."""
    if len(images) > len(batch):
        raise ValueError(f"{len(images)} images for a batch of {len(batch)}")
    for i, image in enumerate(images):
        new_h, new_w = image.shape[:2]
        batch[i, :new_h, :new_w] = image
        batch[i, new_h:] = 0
        batch[i, :new_h, new_w:] = 0
    batch[len(images) :] = 0


class InputBuffers:
    """Input batches lent out and given back, so that a batch of the same shape is reused
    rather than allocated: a fresh 39 MB batch (8 x 640 x 640 x 3 float32) pays its page
    faults on every call (2-core EPYC: 4.6 vs 1.7 ms to fill a batch of 8).

    An array lent out is the borrower's alone until it is given back, so one thread can fill
    the next batch while another runs the network on this one. Thread-safe; keeps at most
    ``keep`` arrays not lent out (the oldest shapes go first); an array never given back is
    simply freed with its last reference."""

    def __init__(self, keep: int = 4) -> None:
        self.keep = keep
        self._free: OrderedDict[tuple, list[np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, shape: tuple[int, ...], dtype: np.dtype | type = np.float32) -> np.ndarray:
        """An array of ``shape`` and ``dtype``, contents undefined."""
        key = (tuple(int(d) for d in shape), np.dtype(dtype).str)
        with self._lock:
            free = self._free.get(key)
            if free:
                array = free.pop()
                if not free:
                    del self._free[key]
                return array
        return np.empty(key[0], key[1])

    def give_back(self, array: np.ndarray) -> None:
        """Make ``array`` (from :meth:`take`, no longer used) available to the next :meth:`take`."""
        key = (array.shape, array.dtype.str)
        with self._lock:
            self._free.setdefault(key, []).append(array)
            self._free.move_to_end(key)
            while sum(len(arrays) for arrays in self._free.values()) > self.keep:
                oldest = next(iter(self._free))  # no list here is empty: take drops emptied ones
                self._free[oldest].pop(0)
                if not self._free[oldest]:
                    del self._free[oldest]
