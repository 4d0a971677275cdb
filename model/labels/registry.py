"""The label formats the product reads and writes, by name.

Each format is one module with one object implementing
:class:`~model.labels.base.LabelFormat`; adding a format is that module plus one entry in
:data:`FORMATS`. Everything that chooses a format (``--format``, the app's Labels menu,
export, fine-tuning, quality) looks it up here or iterates over :data:`FORMATS`, in order:
the first is the default and the order of menus and fallbacks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from model.labels.base import LabelFormat
from model.labels.coco import COCO
from model.labels.voc import VOC
from model.labels.yolo import YOLO

FORMATS: dict[str, LabelFormat] = {
    VOC.name: VOC,
    YOLO.name: YOLO,
    COCO.name: COCO,
}


class UnknownFormatError(ValueError):
    """A label format name that is not registered."""


def get_format(name: str) -> LabelFormat:
    """The format registered as ``name``; raises :class:`UnknownFormatError` (a ValueError)
    naming the known formats."""
    try:
        return FORMATS[name]
    except (KeyError, TypeError):
        raise UnknownFormatError(f"unknown label format {name!r}; choose from {', '.join(FORMATS)}") from None


def format_names() -> tuple[str, ...]:
    """The registered format names, in registry order."""
    return tuple(FORMATS)


@contextmanager
def registered(fmt: LabelFormat) -> Iterator[LabelFormat]:
    """Register ``fmt`` for the duration of a ``with`` block (a plug-in, a test)."""
    if fmt.name in FORMATS:
        raise ValueError(f"a label format named {fmt.name!r} is already registered")
    FORMATS[fmt.name] = fmt
    try:
        yield fmt
    finally:
        FORMATS.pop(fmt.name, None)


__all__ = ["FORMATS", "LabelFormat", "UnknownFormatError", "format_names", "get_format", "registered"]
