"""Label types: a *label* is a saved, human-approved box (a *detection* comes from the model).

Canonical box format everywhere in the product: ``x1, y1, x2, y2`` (xyxy) in original-image
pixels, after EXIF orientation, with ``x2 >= x1`` and ``y2 >= y1``. Formats (VOC, YOLO, COCO)
convert only at the edges.

What the product does not edit travels with the labels so that a writer can carry it
forward (LabelImg's ``verified``, VOC ``pose``/``occluded``/unknown tags, COCO ``iscrowd``,
``segmentation`` and unknown keys): each :class:`Label` and :class:`ImageLabels` read from a
file keeps a :class:`RawRecord` of what the file held, and the writer of the same format
starts from it, changing only boxes, names and flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class RawRecord:
    """What a label file held for one object or one image, verbatim: ``fmt`` is the format
    that wrote it ("voc", "yolo" or "coco") and ``data`` its text (a VOC ``<object>``
    element, a YOLO line, a COCO annotation or image object as JSON) or, for a whole VOC
    file, its bytes. Only the writer of the same format reads it; others ignore it."""

    fmt: str
    data: str | bytes


@dataclass
class Label:
    """One box, xyxy in original-image pixels, with its class name and VOC flags.

    ``raw`` is what the file it was read from held for this box (None for a new box): the
    writer of that format keeps everything in it that is not the box, name or flags
    (pose, occluded, unknown elements or keys, ids). It takes no part in ``==``: two labels
    are equal when their boxes, names and flags are (:func:`same_labels` compares it too)."""

    x1: float
    y1: float
    x2: float
    y2: float
    name: str
    difficult: bool = False
    truncated: bool = False
    raw: RawRecord | None = field(default=None, compare=False, repr=False)

    @property
    def box(self) -> tuple[float, float, float, float]:
        """The box as an ``(x1, y1, x2, y2)`` tuple in original-image pixels."""
        return (self.x1, self.y1, self.x2, self.y2)

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1


@dataclass
class ImageLabels:
    """All labels of one image; ``width``/``height`` are the displayed (EXIF-applied) size.

    ``verified`` is LabelImg's per-image review mark (VOC ``<annotation verified="yes">``).
    ``source`` is what the file held for the image (None for a new file): the whole VOC
    file, or the COCO image object; the writer of that format carries it forward."""

    image_path: str
    width: int
    height: int
    depth: int = 3
    labels: list[Label] = field(default_factory=list)
    verified: bool = False
    source: RawRecord | None = field(default=None, compare=False, repr=False)

    def boxes(self) -> np.ndarray:
        """(N, 4) float32 xyxy boxes in original-image pixels, in label order."""
        if not self.labels:
            return np.zeros((0, 4), dtype=np.float32)
        return np.array([lb.box for lb in self.labels], dtype=np.float32)

    def names(self) -> list[str]:
        """Class names of the N labels, in label order."""
        return [lb.name for lb in self.labels]


def clip_label(label: Label, *, width: int, height: int) -> Label:
    """A copy of ``label`` with its xyxy box clipped to ``[0, width] x [0, height]``."""
    x1 = min(max(label.x1, 0.0), float(width))
    x2 = min(max(label.x2, 0.0), float(width))
    y1 = min(max(label.y1, 0.0), float(height))
    y2 = min(max(label.y2, 0.0), float(height))
    return Label(x1, y1, x2, y2, label.name, difficult=label.difficult, truncated=label.truncated, raw=label.raw)


def same_labels(a: list[Label], b: list[Label]) -> bool:
    """Whether ``a`` and ``b`` are the same labels in the same order, what each file held
    for them (:attr:`Label.raw`) included."""
    return len(a) == len(b) and all(x == y and x.raw == y.raw for x, y in zip(a, b))
