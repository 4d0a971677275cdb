"""YOLO txt labels (one ``image.txt`` next to each image) and ``classes.txt``.

Each line is ``class_id cx cy w h`` with the centre and size normalised by the image width
and height (all in [0, 1]); ``class_id`` indexes ``classes.txt`` (one name per line).
Inside the product boxes are xyxy floats in image pixels; conversion happens here only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from model.errors import LabelFormatError, LabelWriteError
from model.imageio import image_size
from model.labels.annotation import ImageLabels, Label, RawRecord, same_labels
from model.labels.atomic import atomic_write_text
from model.labels.base import CLASSES_FILE_NAME, Dataset, PathLike, PerImageFormat, classes_file_for, merged_names

# Normalised values may overshoot [0, 1] by this much (float rounding in other tools); they
# are clipped. Anything further out is an error.
RANGE_TOLERANCE = 1e-3


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise LabelFormatError(path, "file not found") from None
    except UnicodeDecodeError:
        raise LabelFormatError(path, "not UTF-8 text") from None
    except OSError as exc:
        raise LabelFormatError(path, f"cannot read file ({exc.strerror or exc})") from None


# --- classes.txt ------------------------------------------------------------------------------


def read_classes_txt(path: str | os.PathLike[str]) -> list[str]:
    """Class names, one per line, in id order (blank lines at the end are ignored).

    Raises LabelFormatError for a missing file, blank lines between names or duplicates.
    """
    path = Path(path)
    lines = [line.strip() for line in _read_text(path).splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    names: list[str] = []
    for number, name in enumerate(lines, start=1):
        if not name:
            raise LabelFormatError(path, f"line {number}: empty class name")
        if name in names:
            raise LabelFormatError(path, f"line {number}: duplicate class name {name!r}")
        names.append(name)
    return names


def write_classes_txt(path: str | os.PathLike[str], names: Sequence[str]) -> None:
    """Write class names one per line, atomically. Raises LabelWriteError."""
    for name in names:
        if not name.strip() or "\n" in name or "\r" in name:
            raise LabelWriteError(path, f"class name {name!r} cannot be written to classes.txt")
    if len(set(names)) != len(names):
        raise LabelWriteError(path, "class names are not unique")
    atomic_write_text(path, "".join(f"{name}\n" for name in names))


# --- label files ------------------------------------------------------------------------------


def yolo_to_xyxy(
    cx: float, cy: float, w: float, h: float, *, width: int, height: int
) -> tuple[float, float, float, float]:
    """Normalised (cx, cy, w, h) -> xyxy in image pixels, clipped to the image."""
    x1 = min(max((cx - w / 2.0) * width, 0.0), float(width))
    x2 = min(max((cx + w / 2.0) * width, 0.0), float(width))
    y1 = min(max((cy - h / 2.0) * height, 0.0), float(height))
    y2 = min(max((cy + h / 2.0) * height, 0.0), float(height))
    return x1, y1, x2, y2


def xyxy_to_yolo(
    x1: float, y1: float, x2: float, y2: float, *, width: int, height: int
) -> tuple[float, float, float, float]:
    """xyxy in image pixels (clipped to the image first) -> normalised (cx, cy, w, h)."""
    x1, x2 = (min(max(v, 0.0), float(width)) for v in (x1, x2))
    y1, y2 = (min(max(v, 0.0), float(height)) for v in (y1, y2))
    return ((x1 + x2) / 2.0 / width, (y1 + y2) / 2.0 / height, (x2 - x1) / width, (y2 - y1) / height)


def parse_yolo_text(
    text: str, *, txt_path: str | os.PathLike[str], width: int, height: int, class_names: Sequence[str]
) -> list[Label]:
    """Labels (xyxy, image pixels) from the text of a YOLO file; errors name file and line."""
    path = Path(txt_path)
    labels: list[Label] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        columns = line.split()
        if len(columns) != 5:
            raise LabelFormatError(path, f"line {number}: expected 5 columns (class cx cy w h), found {len(columns)}")
        try:
            class_value = float(columns[0])
        except ValueError:
            raise LabelFormatError(path, f"line {number}: class id {columns[0]!r} is not a number") from None
        if not math.isfinite(class_value) or class_value != int(class_value):
            raise LabelFormatError(path, f"line {number}: class id {columns[0]!r} is not an integer")
        class_id = int(class_value)
        if not 0 <= class_id < len(class_names):
            raise LabelFormatError(
                path, f"line {number}: class id {class_id} is out of range (classes.txt has {len(class_names)} names)"
            )
        values: list[float] = []
        for key, column in zip(("cx", "cy", "w", "h"), columns[1:], strict=True):
            try:
                value = float(column)
            except ValueError:
                raise LabelFormatError(path, f"line {number}: {key} {column!r} is not a number") from None
            if not math.isfinite(value):
                raise LabelFormatError(path, f"line {number}: {key} is {column!r}, not a finite number")
            if not -RANGE_TOLERANCE <= value <= 1.0 + RANGE_TOLERANCE:
                raise LabelFormatError(path, f"line {number}: {key} = {value} is outside [0, 1]")
            values.append(min(max(value, 0.0), 1.0))
        cx, cy, w, h = values
        x1, y1, x2, y2 = yolo_to_xyxy(cx, cy, w, h, width=width, height=height)
        labels.append(Label(x1, y1, x2, y2, class_names[class_id], raw=RawRecord("yolo", line)))
    return labels


def read_yolo(
    txt_path: str | os.PathLike[str],
    *,
    width: int,
    height: int,
    class_names: Sequence[str],
    image_path: str | os.PathLike[str] | None = None,
) -> ImageLabels:
    """Read one YOLO txt file for an image of ``width`` x ``height`` pixels.

    Boxes come back xyxy floats in image pixels, clipped to the image. ``image_path`` defaults
    to the txt path with the extension removed. Raises LabelFormatError naming file and line.
    """
    path = Path(txt_path)
    if width <= 0 or height <= 0:
        raise LabelFormatError(path, f"image size {width}x{height} is not usable to de-normalise boxes")
    text = _read_text(path)
    labels = parse_yolo_text(text, txt_path=path, width=width, height=height, class_names=class_names)
    shown = str(image_path) if image_path is not None else str(path.with_suffix(""))
    return ImageLabels(
        image_path=shown, width=int(width), height=int(height), depth=3, labels=labels, source=RawRecord("yolo", text)
    )


def _kept_line(label: Label, *, width: int, height: int, class_names: Sequence[str]) -> str | None:
    """The line ``label`` was read from, when it still says the same (same class at the
    same id, same box): written back as it was, digits and all."""
    raw = label.raw
    if raw is None or raw.fmt != "yolo" or not isinstance(raw.data, str):
        return None
    try:
        (again,) = parse_yolo_text(raw.data, txt_path="", width=width, height=height, class_names=class_names)
    except (LabelFormatError, ValueError):
        return None
    return raw.data if again == label else None


def yolo_text(image_labels: ImageLabels, *, class_names: Sequence[str], txt_path: str | os.PathLike[str] = "") -> str:
    """The YOLO txt content for ``image_labels`` (xyxy boxes in image pixels).

    Raises LabelWriteError(txt_path, ...) for a label whose class is not in ``class_names`` or
    an image without a size.
    """
    if image_labels.width <= 0 or image_labels.height <= 0:
        raise LabelWriteError(
            txt_path, f"image size {image_labels.width}x{image_labels.height} is unknown; YOLO needs it"
        )
    index = {name: i for i, name in enumerate(class_names)}
    width, height = image_labels.width, image_labels.height
    source = image_labels.source
    if source is not None and source.fmt == "yolo" and isinstance(source.data, str) and set(image_labels.names()) <= set(index):
        try:
            before = parse_yolo_text(source.data, txt_path=txt_path, width=width, height=height, class_names=class_names)
        except LabelFormatError:
            before = None
        if before is not None and same_labels(before, image_labels.labels):
            return source.data  # nothing changed: the file as it was, byte for byte
    lines = []
    for label in image_labels.labels:
        if label.name not in index:
            raise LabelWriteError(txt_path, f"class {label.name!r} is not in the class list {list(class_names)}")
        kept = _kept_line(label, width=width, height=height, class_names=class_names)
        if kept is not None:
            lines.append(kept + "\n")
            continue
        cx, cy, w, h = xyxy_to_yolo(*label.box, width=width, height=height)
        lines.append(f"{index[label.name]} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
    return "".join(lines)


def write_yolo(image_labels: ImageLabels, txt_path: str | os.PathLike[str], *, class_names: Sequence[str]) -> None:
    """Write one YOLO txt file atomically (boxes clipped to the image, 6 decimals).

    Class ids index ``class_names`` (write them with :func:`write_classes_txt`). Raises LabelWriteError.
    """
    atomic_write_text(txt_path, yolo_text(image_labels, class_names=class_names, txt_path=txt_path))


# --- the format -------------------------------------------------------------------------------


class YoloFormat(PerImageFormat):
    """YOLO for the registry: ``img.txt`` per image, class ids into ``classes.txt`` (in the
    label folder, beside the images or in the folder above: :func:`classes_file_for`). No
    place for the verified mark. A save grows ``classes.txt`` by new names only: ids never move."""

    name = "yolo"
    title = "YOLO"
    files = ".txt next to each image + classes.txt"
    suffix = ".txt"
    keeps_verified = False
    stores_class_names = True

    def can_read(self, image_path: PathLike, labels_dir: PathLike | None = None) -> bool:
        image = Path(image_path)
        return self.label_path_for(image, labels_dir).is_file() and classes_file_for(image.parent, labels_dir).is_file()

    def class_list(self, images_dir: PathLike, labels_dir: PathLike | None = None) -> list[str]:
        classes_file = classes_file_for(images_dir, labels_dir)
        return read_classes_txt(classes_file) if classes_file.is_file() else []

    def read_file(self, path: Path, *, image_path: PathLike, size: tuple[int, int] | None, class_names: Sequence[str]) -> ImageLabels:
        width, height = size if size is not None else image_size(image_path)
        return read_yolo(path, width=width, height=height, class_names=class_names, image_path=image_path)

    def write_file(self, item: ImageLabels, path: Path, *, class_names: Sequence[str]) -> None:
        write_yolo(item, path, class_names=class_names)

    def write_class_list(self, folder: Path, class_names: Sequence[str]) -> None:
        write_classes_txt(folder / CLASSES_FILE_NAME, class_names)

    def write_image(self, item: ImageLabels, *, labels_dir: PathLike | None = None, class_names: Sequence[str] = ()) -> Path:
        folder = Path(item.image_path).parent
        classes_file = classes_file_for(folder, labels_dir)
        names = self.class_list(folder, labels_dir) or list(class_names)
        grown = merged_names(names, (label.name for label in item.labels))
        if grown != names or not classes_file.is_file():
            write_classes_txt(classes_file, grown)
        return super().write_image(item, labels_dir=labels_dir, class_names=grown)

    def load_class_names(self, folder: Path, images: Sequence[Path], labels_dir: Path | None, dataset: Dataset) -> list[str]:
        classes_path = classes_file_for(folder, labels_dir)
        if classes_path.is_file():
            return read_classes_txt(classes_path)  # unusable names: nothing can load
        if any(self.label_path_for(image, labels_dir).is_file() for image in images):
            raise LabelFormatError(classes_path, "not found: YOLO labels need classes.txt with the class names")
        return []

    def check_target(self, target: Path, item: ImageLabels) -> None:
        if target.name == CLASSES_FILE_NAME:
            raise LabelWriteError(target, f"the labels of {item.image_path} would overwrite classes.txt")


YOLO = YoloFormat()
