"""Where box captions ("circle 0.90") go, so they stay legible: pure geometry, no Qt.

Captions are drawn at a constant screen size, so they are laid out in *view* pixels of the
image at the current zoom: box (x1, y1, x2, y2) in image pixels times ``scale``, with the
image at the origin. Captions are placed in priority order (labels first, then detections
by descending score), each at the first of a few spots around its box that stays inside the
image and overlaps no caption placed before it. A caption that finds no free spot is not
shown (the canvas shows it on hover and selection): a weak detection's caption can never
cover a stronger one's, and no caption is cut at the image edge.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass

Rect = tuple[float, float, float, float]
"""x1, y1, x2, y2 in view pixels relative to the image's top-left corner."""

#: Grid cell (view pixels) of the collision index.
_CELL = 64.0


@dataclass(frozen=True)
class Caption:
    """One caption to place: ``key`` names it, ``box`` is its box (xyxy, image pixels),
    ``width``/``height`` its size in view pixels, ``priority`` its rank (higher first:
    a detection's score; labels above every detection)."""

    key: Hashable
    box: tuple[float, float, float, float]
    width: float
    height: float
    priority: float


@dataclass(frozen=True)
class Placement:
    """Where a caption goes (``rect`` in view pixels relative to the image) and whether it
    is shown: ``placed`` False means it would have collided (shown on hover only)."""

    rect: Rect
    placed: bool


def candidate_rects(caption: Caption, *, scale: float, image_size: tuple[float, float]) -> list[Rect]:
    """The spots tried for ``caption``, best first: above the box's top-left corner (the
    usual place), inside it at the top, below it, inside at the bottom, then the same at
    the right edge. Each is moved inside the image (``image_size`` = (width, height) in
    image pixels)."""
    return list(dict.fromkeys(_candidates(caption, scale, image_size)))


def _candidates(caption: Caption, scale: float, image_size: tuple[float, float]) -> Iterator[Rect]:
    """:func:`candidate_rects`, one at a time (most captions take the first)."""
    x1, y1, x2, y2 = caption.box
    x1, y1, x2, y2 = x1 * scale, y1 * scale, x2 * scale, y2 * scale
    w, h = caption.width, caption.height
    max_x = max(image_size[0] * scale - w, 0.0)
    max_y = max(image_size[1] * scale - h, 0.0)
    for x, y in (
        (x1, y1 - h),  # above, left-aligned
        (x1, y1),  # inside, top-left
        (x1, y2),  # below, left-aligned
        (x1, y2 - h),  # inside, bottom-left
        (x2 - w, y1 - h),  # above, right-aligned
        (x2 - w, y1),  # inside, top-right
        (x2 - w, y2),  # below, right-aligned
    ):
        x = min(max(x, 0.0), max_x)
        y = min(max(y, 0.0), max_y)
        yield (x, y, x + w, y + h)


def overlaps(a: Rect, b: Rect) -> bool:
    """Whether two rects share area (touching edges do not count)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def layout_captions(
    captions: Sequence[Caption], *, scale: float, image_size: tuple[float, float]
) -> dict[Hashable, Placement]:
    """Place ``captions`` (see the module docstring); ties in priority keep input order.
    Every placed rect lies inside the image and overlaps no other placed rect."""
    order = sorted(range(len(captions)), key=lambda i: -captions[i].priority)
    grid: dict[tuple[int, int], list[Rect]] = {}
    result: dict[Hashable, Placement] = {}
    for i in order:
        caption = captions[i]
        first: Rect | None = None
        chosen: Rect | None = None
        for rect in _candidates(caption, scale, image_size):
            first = first or rect
            if not _collides(rect, grid):
                chosen = rect
                break
        if chosen is None:
            result[caption.key] = Placement(first, False)  # type: ignore[arg-type]  # there is always a first
            continue
        for cell in _cells(chosen):
            grid.setdefault(cell, []).append(chosen)
        result[caption.key] = Placement(chosen, True)
    return result


def _cells(rect: Rect) -> Iterable[tuple[int, int]]:
    for gx in range(int(rect[0] // _CELL), int(rect[2] // _CELL) + 1):
        for gy in range(int(rect[1] // _CELL), int(rect[3] // _CELL) + 1):
            yield gx, gy


def _collides(rect: Rect, grid: dict[tuple[int, int], list[Rect]]) -> bool:
    x1, y1, x2, y2 = rect
    for gx in range(int(x1 // _CELL), int(x2 // _CELL) + 1):
        for gy in range(int(y1 // _CELL), int(y2 // _CELL) + 1):
            for ox1, oy1, ox2, oy2 in grid.get((gx, gy), ()):
                if x1 < ox2 and ox1 < x2 and y1 < oy2 and oy1 < y2:
                    return True
    return False


__all__ = ["Caption", "Placement", "Rect", "candidate_rects", "layout_captions", "overlaps"]
