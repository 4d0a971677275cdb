"""Typed errors raised at the edges (readers, loaders, writers).

Each carries the file it is about and the problem in words, so the CLI can print one line
(``path: problem``) and exit with code 2, and the GUI can show a dialog.
"""

from __future__ import annotations

from pathlib import Path


class StudioError(Exception):
    """Base class: an input the product cannot use, with the file and the problem."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = str(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class ImageReadError(StudioError):
    """An image file is missing, unreadable, or not an image we can use."""


class LabelFormatError(StudioError):
    """A label file (VOC XML, YOLO txt, COCO JSON, classes.txt) is malformed."""


class LabelWriteError(StudioError):
    """A label file could not be written (permissions, disk full...); nothing was lost."""


class DatasetError(StudioError):
    """A dataset folder has nothing usable: no labelled images, or no label files found."""


class ModelContractError(StudioError):
    """An ONNX model is missing, unreadable, or breaks the RetinaNet Studio contract."""
