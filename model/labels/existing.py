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
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from model.boxes import iou_matrix
from model.errors import LabelFormatError, LabelWriteError
from model.labels.annotation import ImageLabels, Label
from model.labels.atomic import atomic_write_text
from model.labels.base import Dataset, ImageIndex, LabelFormat, image_key
from model.labels.registry import FORMATS, get_format

EXISTING_MODES = ("skip", "overwrite", "merge")
#: A detection overlapping a label of its class at least this much (IoU) is already labelled.
MERGE_IOU = 0.5
#: ``detect``'s own output (detections with scores), written by this writer though it is no label format.
DETECTIONS_JSON = "json"


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
    """Writes one label set per image into ``out_dir`` in ``fmt`` (a registered label format,
    or ``json``: detect's own detections files, which are not labels) following ``mode``
    (see the module docstring). Thread-safe for one writer thread plus the caller. Call
    :meth:`finish` at the end (a folder-file format such as COCO writes its one file then).

    Raises LabelFormatError at construction when a file it must build on is unreadable (an
    existing ``classes.txt`` or ``annotations.json``), and ValueError for ``merge`` with
    ``json`` (detections files are not labels) or an unknown format."""

    def __init__(self, out_dir: Path, fmt: str, *, class_names: Sequence[str], mode: str = "skip") -> None:
        if mode not in EXISTING_MODES:
            raise ValueError(f"unknown mode {mode!r} for existing label files; choose from {', '.join(EXISTING_MODES)}")
        self.out_dir = out_dir
        self.fmt = fmt
        self.mode = mode
        #: The label format written (None: detect's ``json`` detections files).
        self.format: LabelFormat | None = None if fmt == DETECTIONS_JSON else get_format(fmt)
        if self.format is None and mode == "merge":
            raise ValueError(f"--merge needs a label format ({', '.join(FORMATS)}); json files hold detections")
        self.class_names = list(class_names)
        self.skipped: list[Path] = []
        self.replaced: list[Path] = []
        self.merged = 0  # label files detections were added to (mode merge)
        self._lock = threading.Lock()
        self._classes_written = True
        # a folder file (COCO): what it holds, the entries that replace some of them, the new ones
        self._folder = Dataset()
        self._index = ImageIndex([])
        self._replacing: dict[int, ImageLabels] = {}
        self._adding: dict[str, ImageLabels] = {}
        if self.format is None:
            return
        if self.format.per_image_files:
            names = self.format.class_list(out_dir, out_dir)
            if names:  # existing label files index this list: it keeps its order
                self._classes_written = all(name in names for name in self.class_names)
                self.class_names = names + [name for name in self.class_names if name not in names]
            else:
                self._classes_written = False
        else:
            self._folder = self.format.read_folder(out_dir)
            self._index = ImageIndex(self._folder.items)
            known = self._folder.class_names
            self.class_names = known + [n for n in self.class_names if n not in known]

    def label_path(self, image: Path) -> Path:
        """The file that holds ``image``'s labels in the output folder."""
        if self.format is None:
            return self.out_dir / (image.stem + ".json")
        return self.format.label_path_for(image, self.out_dir)

    def owner_key(self, image: Path) -> str:
        """Two images with the same key would write the same label file: the file's name
        for one file per image, the image itself for a folder file (one entry each)."""
        if self.format is None or self.format.per_image_files:
            return image.stem
        return str(image.resolve())

    def _has_labels(self, image: Path) -> bool:
        if self.format is not None and not self.format.per_image_files:
            return self._index.find(image) is not None
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
        if self.format is None:
            path = self.label_path(image)
            existed = path.is_file()
            atomic_write_text(path, json.dumps(payload, indent=1))
            if existed:
                self.replaced.append(image)
            return
        if not self.format.per_image_files:
            self._write_to_folder_file(image, item)
            return
        path = self.label_path(image)
        existed = path.is_file()
        if existed and self.mode == "merge":
            old = self.format.read_image(image, width=item.width, height=item.height, labels_dir=self.out_dir, class_names=self.class_names)
            if old is None:  # pragma: no cover - the file was there a moment ago
                raise LabelFormatError(path, "disappeared while merging")
            labels, _added = merge_labels(old.labels, item.labels)
            old.labels = labels
            old.image_path = str(image)
            if old.width <= 0 or old.height <= 0:
                old.width, old.height = item.width, item.height
            item = old
        self._write_class_list()
        item.image_path = str(image)
        self.format.write_image(item, labels_dir=self.out_dir, class_names=self.class_names)
        with self._lock:
            if existed:
                if self.mode == "merge":
                    self.merged += 1
                else:
                    self.replaced.append(image)

    def _write_to_folder_file(self, image: Path, item: ImageLabels) -> None:
        with self._lock:
            position = self._index.position(image)
            old = None if position is None else self._folder.items[position]
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
            if position is not None:
                self._replacing[position] = item
            else:
                self._adding[image_key(image)] = item

    def _write_class_list(self) -> None:
        with self._lock:
            if not self._classes_written and self.format is not None:
                self.format.write_class_list(self.out_dir, self.class_names)
                self._classes_written = True

    def finish(self) -> None:
        """A folder-file format (COCO): write its file (``annotations.json``) with the images
        it had (their labels unchanged unless replaced or merged) and the new ones. Raises
        LabelWriteError."""
        if self.format is None or self.format.per_image_files or not (self._replacing or self._adding):
            return
        items = [self._replacing.get(i, item) for i, item in enumerate(self._folder.items)]
        items += list(self._adding.values())
        names = list(self.class_names)
        names += sorted({label.name for item in items for label in item.labels} - set(names))
        self.format.save(items, self.out_dir, class_names=names, extras=self._folder.extras)

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
