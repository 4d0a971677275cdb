"""Anchor generation and anchor-index bookkeeping (numpy; the TensorFlow graph mirrors it).

Anchor order is the contract's: level-major (first stride first), then row, column, then
the anchors of one cell (aspect ratio major, scale minor).
"""

from __future__ import annotations

import math

import numpy as np

from model.config import AnchorConfig


def level_shapes(image_hw: tuple[int, int], strides: tuple[int, ...]) -> list[tuple[int, int]]:
    """Feature-map (h, w) of every level for a network input of ``image_hw``:
    ceil(H / stride), ceil(W / stride) ('same' padding at every stride-2 step)."""
    height, width = image_hw
    return [(math.ceil(height / s), math.ceil(width / s)) for s in strides]


def cell_anchor_sizes(config: AnchorConfig) -> np.ndarray:
    """(L, K, 2) anchor (w, h) per level and per anchor of a cell; K = ratios x scales,
    ratio major, scale minor.

    For area ``a`` and ratio ``r`` (width / height, the convention of the Keras RetinaNet
    example this network follows): h = sqrt(a / r), w = a / h (so w / h = r and w * h = a),
    each times the scale. Trained weights depend on this order: do not change it.

    With ``config.integer_sizes`` (torchvision's and keras-hub's AnchorGenerator), the side
    ``s = int(sqrt(area) * scale)`` is truncated first, then w = s / sqrt(1 / ratio) and
    h = s * sqrt(1 / ratio) in float32, each half-extent rounded to a whole pixel.
    """
    if config.integer_sizes:
        return _integer_cell_anchor_sizes(config)
    per_level = []
    for area in config.areas:
        dims = []
        for ratio in config.aspect_ratios:
            height = math.sqrt(area / ratio)
            width = area / height
            for scale in config.scales:
                dims.append((width * scale, height * scale))
        per_level.append(dims)
    return np.asarray(per_level, dtype=np.float32)


def _integer_cell_anchor_sizes(config: AnchorConfig) -> np.ndarray:
    per_level = []
    for area in config.areas:
        sides = np.asarray([int(math.sqrt(area) * scale) for scale in config.scales], np.float32)
        h_ratios = np.sqrt(np.asarray([1.0 / r for r in config.aspect_ratios], np.float32))  # h / w, as torchvision states ratios
        w_ratios = np.float32(1.0) / h_ratios
        half_w = np.round((w_ratios[:, None] * sides[None, :]).reshape(-1) / np.float32(2.0))
        half_h = np.round((h_ratios[:, None] * sides[None, :]).reshape(-1) / np.float32(2.0))
        per_level.append(np.stack([2 * half_w, 2 * half_h], axis=-1))
    return np.asarray(per_level, dtype=np.float32)


def generate_anchors(image_hw: tuple[int, int], config: AnchorConfig) -> np.ndarray:
    """(A, 4) xyxy anchors in network-input pixels for an input of ``image_hw``.

    Cell (row, col) of a level with stride s is centred at ((col + o) s, (row + o) s), o =
    ``config.centre_offset`` (0.5, or 0 for torchvision-style presets).
    A = sum over levels of h * w * K.
    """
    sizes = cell_anchor_sizes(config)
    offset = config.centre_offset
    chunks = []
    for level, ((h, w), stride) in enumerate(zip(level_shapes(image_hw, config.strides), config.strides)):
        cx = (np.arange(w, dtype=np.float32) + offset) * stride
        cy = (np.arange(h, dtype=np.float32) + offset) * stride
        centres = np.stack(np.meshgrid(cx, cy), axis=-1)  # (h, w, 2) as (cx, cy)
        centres = np.broadcast_to(centres[:, :, None, :], (h, w, sizes.shape[1], 2))
        half = np.broadcast_to(sizes[level][None, None] / 2.0, centres.shape)
        chunks.append(np.concatenate([centres - half, centres + half], axis=-1).reshape(-1, 4))
    return np.concatenate(chunks, axis=0).astype(np.float32)


def anchor_offsets(shapes: list[tuple[int, int]], anchors_per_cell: int) -> np.ndarray:
    """(L + 1,) start index of each level's anchors; the last entry is A."""
    counts = [h * w * anchors_per_cell for h, w in shapes]
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def anchor_location(
    anchor_id: int, shapes: list[tuple[int, int]], anchors_per_cell: int
) -> tuple[int, int, int, int]:
    """Where anchor ``anchor_id`` lives: (level index, row, col, anchor within the cell)."""
    offsets = anchor_offsets(shapes, anchors_per_cell)
    if not 0 <= anchor_id < offsets[-1]:
        raise IndexError(f"anchor {anchor_id} out of range 0..{offsets[-1] - 1}")
    level = int(np.searchsorted(offsets, anchor_id, side="right") - 1)
    local = int(anchor_id - offsets[level])
    cell, k = divmod(local, anchors_per_cell)
    row, col = divmod(cell, shapes[level][1])
    return level, row, col, k


def anchor_levels(offsets: np.ndarray, anchor_ids: np.ndarray) -> np.ndarray:
    """(K,) level index of each anchor id, given :func:`anchor_offsets`."""
    return (np.searchsorted(offsets, np.asarray(anchor_ids), side="right") - 1).astype(np.int64)
