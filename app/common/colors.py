"""Colours: per-class box colours, colormaps for pyramid maps, numpy <-> QImage."""

from __future__ import annotations

import colorsys
import hashlib
from functools import lru_cache

import cv2
import numpy as np
from PySide6.QtGui import QColor, QImage

#: Colormaps offered by the layer viewer; ``None`` means plain grey levels.
COLORMAPS: dict[str, int | None] = {
    "viridis": cv2.COLORMAP_VIRIDIS,
    "inferno": cv2.COLORMAP_INFERNO,
    "jet": cv2.COLORMAP_JET,
    "gray": None,
}


def class_color(class_id: int) -> QColor:
    """A well-separated colour for class number ``class_id`` (golden-ratio hue walk)."""
    hue = (0.61803398875 * int(class_id) + 0.1) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return QColor(int(r * 255), int(g * 255), int(b * 255))


def class_name_color(name: str) -> QColor:
    """The colour of class ``name``: derived from the name alone (BLAKE2 digest -> hue,
    saturation, value), so a class keeps its colour across sessions, folders and class
    orders. Python's ``hash()`` is salted per process and would not."""
    return QColor(*_name_rgb(name))


@lru_cache(maxsize=4096)
def _name_rgb(name: str) -> tuple[int, int, int]:
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    hue = int.from_bytes(digest[:4], "big") / 2**32
    saturation = 0.70 + 0.25 * digest[4] / 255.0
    value = 0.85 + 0.13 * digest[5] / 255.0
    r, g, b = colorsys.hsv_to_rgb(hue, saturation, value)
    return round(r * 255), round(g * 255), round(b * 255)


def value_range(values: np.ndarray) -> tuple[float, float]:
    """(min, max) of the finite values of ``values``; (0, 0) when there are none."""
    values = np.asarray(values, dtype=np.float32)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 0.0
    return float(finite.min()), float(finite.max())


def normalize_to_uint8(values: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """(h, w) float -> (h, w) uint8: ``low`` -> 0 and ``high`` -> 255, clipped outside;
    by default min-max stretched over this one map.

    An empty range (constant map) becomes all zeros; NaN/inf are treated as the minimum.
    """
    values = np.asarray(values, dtype=np.float32)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, dtype=np.uint8)
    if low is None or high is None:
        own_low, own_high = value_range(values)
        low = own_low if low is None else low
        high = own_high if high is None else high
    span = float(high) - float(low)
    if span <= 0.0:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = np.where(finite, (values - float(low)) * (255.0 / span), 0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def colorize(values_u8: np.ndarray, colormap: str) -> np.ndarray:
    """(h, w) uint8 -> (h, w, 3) RGB uint8 through one of :data:`COLORMAPS`."""
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colormap {colormap!r}; choose one of {sorted(COLORMAPS)}")
    values_u8 = np.ascontiguousarray(values_u8, dtype=np.uint8)
    code = COLORMAPS[colormap]
    if code is None:
        return np.repeat(values_u8[:, :, None], 3, axis=2)
    bgr = cv2.applyColorMap(values_u8, code)
    return np.ascontiguousarray(bgr[:, :, ::-1])


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """(h, w, 3) uint8 RGB -> an independent QImage (the pixels are copied).

    Safe off the GUI thread: QImage, unlike QPixmap, is not tied to it.
    """
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (h, w, 3) RGB array, got shape {rgb.shape}")
    height, width = rgb.shape[:2]
    image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return image.copy()  # detach from the numpy buffer
