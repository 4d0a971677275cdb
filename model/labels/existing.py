"""Writing batch-detection labels into a folder that may already hold labels.

``retinanet-studio detect --out DIR`` never replaces a label file the user did not ask to
replace. :class:`LabelSetWriter` decides per image, by ``mode``:

* ``skip`` (the default): an image whose label file exists (COCO: whose image is in the
  folder's ``annotations.json``) is not detected at all, and is reported;
* ``overwrite``: its labels are replaced by the detections;
* ``merge``: the detections are added to the labels it has, keeping everything the file
  held (LabelImg's ``verified``, pose, unknown tags and keys); a detection that matches a
  label of its class (IoU >= :data:`MERGE_IOU`) is already labelled and is not added.

YOLO: the folder's ``classes.txt`` keeps its order (existing label files index it); the
model's classes it lacks are appended. Boxes are xyxy in original-image pixels.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from model.boxes import iou_matrix
from model.errors import LabelFormatError, LabelWriteError
from model.labels.annotation import ImageLabels, Label
from model.labels.atomic import atomic_write_text
from model.labels.coco import read_coco_file, write_coco
from model.labels.dataset import CLASSES_FILE_NAME, COCO_FILE_NAME
from model.labels.voc import read_voc, write_voc
from model.labels.yolo import read_classes_txt, read_yolo, write_classes_txt, write_yolo

EXISTING_MODES = ("skip", "overwrite", "merge")
#: A detection overlapping a label of its class at least this much (IoU) is already labelled.
MERGE_IOU = 0.5
_SUFFIX = {"voc": ".xml", "yolo": ".txt", "json": ".json"}


def merge_labels(existing: Sequence[Label], detected: Sequence[Label]) -> tuple[list[Label], int]:
    """``existing`` (untouched, in order) followed by the ``detected`` labels that no
    existing label of their class overlaps at IoU >= MERGE_IOU. Returns (labels, added)."""
    kept = list(existing)
    added = 0
    for label in detected:
        same = [old for old in kept if old.name == label.name]
        if same:
            ious = iou_matrix(np.asarray([label.box], np.float32), np.asarray([old.box for old in same], np.float32))
            if float(ious.max()) >= MERGE_IOU:
                continue
        kept.append(label)
        added += 1
    return kept, added


class LabelSetWriter:
    """Writes one label set per image into ``out_dir`` in ``fmt`` (voc, yolo, coco or json)
    following ``mode`` (see the module docstring). Thread-safe for one writer thread plus
    the caller. Call :meth:`finish` at the end (COCO writes its one file then).

    Raises LabelFormatError at construction when a file it must build on is unreadable (an
    existing ``classes.txt`` or ``annotations.json``), and ValueError for ``merge`` with
    ``json`` (detections files are not labels)."""

    def __init__(self, out_dir: Path, fmt: str, *, class_names: Sequence[str], mode: str = "skip") -> None:
        if mode not in EXISTING_MODES:
            raise ValueError(f"unknown mode {mode!r} for existing label files; choose from {', '.join(EXISTING_MODES)}")
        if mode == "merge" and fmt == "json":
            raise ValueError("--merge needs a label format (voc, yolo or coco); json files hold detections")
        self.out_dir = Path(out_dir)
        self.fmt = fmt
        self.mode = mode
        self.class_names = list(class_names)
        self.skipped: list[Path] = []  # images not detected: their labels exist (mode skip)
        self.replaced: list[Path] = []  # label files replaced (mode overwrite)
        self.merged = 0  # label files detections were added to (mode merge)
        self._lock = threading.Lock()
        self._classes_written = False
        self._coco_existing: dict[str, ImageLabels] = {}
        self._coco_order: list[str] = []
        self._coco_new: dict[str, ImageLabels] = {}
        self._coco_extras = None
        if fmt == "yolo":
            classes_file = self.out_dir / CLASSES_FILE_NAME
            if classes_file.is_file():
                names = read_classes_txt(classes_file)
                self._classes_written = all(name in names for name in self.class_names)
                self.class_names = names + [name for name in self.class_names if name not in names]
        if fmt == "coco":
            json_path = self.out_dir / COCO_FILE_NAME
            if json_path.is_file():
                parsed = read_coco_file(json_path)
                self._coco_extras = parsed.extras
                self.class_names = parsed.class_names + [n for n in self.class_names if n not in parsed.class_names]
                for item in parsed.items:
                    key = self._key(item.image_path)
                    self._coco_existing[key] = item
                    self._coco_order.append(key)

    @staticmethod
    def _key(path: str | os.PathLike[str]) -> str:
        return os.path.normcase(os.path.abspath(path))

    def label_path(self, image: Path) -> Path:
        """The file that holds ``image``'s labels in the output folder."""
        if self.fmt == "coco":
            return self.out_dir / COCO_FILE_NAME
        return self.out_dir / (image.stem + _SUFFIX[self.fmt])

    def _has_labels(self, image: Path) -> bool:
        if self.fmt == "coco":
            return self._key(image) in self._coco_existing or any(
                Path(k).name == image.name for k in self._coco_existing
            )
        return self.label_path(image).is_file()

    def to_detect(self, images: Sequence[Path]) -> list[Path]:
        """The images to run the network on: in mode ``skip``, those without labels (the
        others go to :attr:`skipped`); every image otherwise."""
        if self.mode != "skip":
            return list(images)
        run = []
        for image in images:
            (self.skipped if self._has_labels(image) else run).append(image)
        return run

    def write(self, image: Path, item: ImageLabels, payload: dict[str, Any] | None = None) -> None:
        """Save ``item`` (the detections of ``image`` as labels; ``payload``: the JSON of
        format ``json``) as the mode says. Raises LabelWriteError / LabelFormatError."""
        if self.fmt == "json":
            path = self.label_path(image)
            existed = path.is_file()
            atomic_write_text(path, json.dumps(payload, indent=1))
            if existed:
                self.replaced.append(image)
            return
        if self.fmt == "coco":
            with self._lock:
                key = self._key(image)
                if key not in self._coco_existing:
                    key = next((k for k in self._coco_existing if Path(k).name == image.name), key)
                old = self._coco_existing.get(key)
                if old is not None and self.mode == "merge":
                    labels, _added = merge_labels(old.labels, item.labels)
                    item = ImageLabels(
                        image_path=str(image), width=old.width, height=old.height, depth=old.depth,
                        labels=labels, verified=old.verified, source=old.source,
                    )
                    self.merged += 1
                elif old is not None:
                    item.source, item.verified = old.source, old.verified  # its id and keys stay
                    self.replaced.append(image)
                self._coco_new[key] = item
            return
        path = self.label_path(image)
        existed = path.is_file()
        if existed and self.mode == "merge":
            old = self._read(path, item)
            labels, _added = merge_labels(old.labels, item.labels)
            old.labels = labels
            old.image_path = str(image)
            if old.width <= 0 or old.height <= 0:
                old.width, old.height = item.width, item.height
            item = old
        if self.fmt == "voc":
            write_voc(item, path)
        else:
            self._write_classes()
            write_yolo(item, path, class_names=self.class_names)
        with self._lock:
            if existed:
                if self.mode == "merge":
                    self.merged += 1
                else:
                    self.replaced.append(image)

    def _read(self, path: Path, item: ImageLabels) -> ImageLabels:
        if self.fmt == "voc":
            return read_voc(path)
        return read_yolo(path, width=item.width, height=item.height, class_names=self.class_names, image_path=item.image_path)

    def _write_classes(self) -> None:
        with self._lock:
            if not self._classes_written:
                write_classes_txt(self.out_dir / CLASSES_FILE_NAME, self.class_names)
                self._classes_written = True

    def finish(self) -> None:
        """COCO: write ``annotations.json`` with the images it had (their labels unchanged
        unless replaced or merged) and the new ones. Raises LabelWriteError."""
        if self.fmt != "coco" or not self._coco_new:
            return
        items = [self._coco_new.pop(key, None) or self._coco_existing[key] for key in self._coco_order]
        items += list(self._coco_new.values())
        names = list(self.class_names)
        names += sorted({label.name for item in items for label in item.labels} - set(names))
        write_coco(items, self.out_dir / COCO_FILE_NAME, class_names=names, extras=self._coco_extras)

    def summary(self) -> str:
        """One line about the label files that existed ("" when none did)."""
        parts = []
        if self.skipped:
            n = len(self.skipped)
            parts.append(
                f"skipped {n} image{'s' if n != 1 else ''} whose labels exist in {self.out_dir} "
                "(--overwrite replaces them, --merge adds the detections to them)"
            )
        if self.replaced:
            parts.append(f"replaced the labels of {len(self.replaced)} image{'s' if len(self.replaced) != 1 else ''} (--overwrite)")
        if self.merged:
            parts.append(f"added detections to the labels of {self.merged} image{'s' if self.merged != 1 else ''} (--merge)")
        return "; ".join(parts)


__all__ = ["EXISTING_MODES", "MERGE_IOU", "LabelFormatError", "LabelSetWriter", "LabelWriteError", "merge_labels"]
