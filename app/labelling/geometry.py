"""Box geometry of label editing, without Qt: clamping to the image, moving several boxes
at once, resizing by a handle and drawing by a drag.

Every box is ``(x1, y1, x2, y2)`` in original-image pixels (after EXIF orientation). The
document uses it for edits from any source; the canvas for mouse and keyboard edits.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["Box", "HANDLES", "MIN_SIZE", "clamp_box", "drag_box", "handle_points", "resize_box", "translate_boxes"]

Box = tuple[float, float, float, float]
"""x1, y1, x2, y2 in original-image pixels."""

#: Handle names: corners and edge midpoints, clockwise from the top-left corner.
HANDLES: tuple[str, ...] = ("tl", "t", "tr", "r", "br", "b", "bl", "l")

#: Smallest box side, in image pixels.
MIN_SIZE = 1.0


def clamp_box(box: Box, *, width: float, height: float) -> Box:
    """Shift ``box`` (xyxy) inside the image ``[0, width] x [0, height]``, keeping its size
    when it fits and shrinking it to the image otherwise; at least :data:`MIN_SIZE` wide/high."""
    x1, y1, x2, y2 = box
    x1, x2 = _clamp_span(min(x1, x2), max(x1, x2), limit=width)
    y1, y2 = _clamp_span(min(y1, y2), max(y1, y2), limit=height)
    return (x1, y1, x2, y2)


def _clamp_span(lo: float, hi: float, *, limit: float) -> tuple[float, float]:
    size = max(hi - lo, MIN_SIZE)
    if size >= limit:
        return 0.0, float(limit)
    lo = min(max(lo, 0.0), limit - size)
    return float(lo), float(lo + size)


def translate_boxes(
    boxes: Sequence[Box], *, dx: float, dy: float, width: float, height: float
) -> list[Box]:
    """Move every box (xyxy) by the same ``(dx, dy)``, limited so all of them stay inside
    the image; boxes that already stick out are clamped one by one instead."""
    if not boxes:
        return []
    lo_x = max(-b[0] for b in boxes)
    hi_x = min(width - b[2] for b in boxes)
    lo_y = max(-b[1] for b in boxes)
    hi_y = min(height - b[3] for b in boxes)
    if lo_x <= hi_x and lo_y <= hi_y:
        dx = min(max(dx, lo_x), hi_x)
        dy = min(max(dy, lo_y), hi_y)
        return [(b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy) for b in boxes]
    return [
        clamp_box((b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy), width=width, height=height)
        for b in boxes
    ]


def resize_box(box: Box, *, handle: str, x: float, y: float, width: float, height: float) -> Box:
    """``box`` (xyxy) with the edges that ``handle`` (one of :data:`HANDLES`) owns moved to
    ``(x, y)`` (rounded to whole pixels), kept inside the image and at least 1 px; the
    opposite edges do not move (no flipping)."""
    x1, y1, x2, y2 = box
    if "l" in handle:
        x1 = min(max(round(x), 0.0), x2 - MIN_SIZE)
    if "r" in handle:
        x2 = max(min(round(x), width), x1 + MIN_SIZE)
    if handle.startswith("t"):
        y1 = min(max(round(y), 0.0), y2 - MIN_SIZE)
    if handle.startswith("b"):
        y2 = max(min(round(y), height), y1 + MIN_SIZE)
    return (float(x1), float(y1), float(x2), float(y2))


def drag_box(
    start: tuple[float, float], end: tuple[float, float], *, width: float, height: float
) -> Box | None:
    """The box (xyxy, whole pixels, inside the image) spanned by dragging from ``start`` to
    ``end``; ``None`` when it is thinner than 1 px."""
    xs = sorted((min(max(round(start[0]), 0), width), min(max(round(end[0]), 0), width)))
    ys = sorted((min(max(round(start[1]), 0), height), min(max(round(end[1]), 0), height)))
    if xs[1] - xs[0] < MIN_SIZE or ys[1] - ys[0] < MIN_SIZE:
        return None
    return (float(xs[0]), float(ys[0]), float(xs[1]), float(ys[1]))


def handle_points(box: Box) -> dict[str, tuple[float, float]]:
    """Scene position of each of the 8 handles of ``box`` (xyxy)."""
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    return {
        "tl": (x1, y1),
        "t": (cx, y1),
        "tr": (x2, y1),
        "r": (x2, cy),
        "br": (x2, y2),
        "b": (cx, y2),
        "bl": (x1, y2),
        "l": (x1, cy),
    }
