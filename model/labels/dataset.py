"""Datasets on disk: a folder of images plus their labels in one of :data:`FORMATS`.

Layouts (LabelImg's for VOC and YOLO):
    voc   folder/img.jpg + folder/img.xml
    yolo  folder/img.jpg + folder/img.txt + folder/classes.txt
    coco  folder/img.jpg + folder/annotations.json (file_name relative to the JSON's folder)
The label files may also live in a folder of their own (``labels_dir``: ``annotations/``
beside ``images/``, VOC's ``Annotations/``, YOLO's ``labels/``); when none is given and no
label file sits next to the images, such a folder is found (:mod:`model.labels.layout`),
and :attr:`Dataset.labels_note` says which was used.

Boxes are xyxy floats in original-image pixels throughout. A malformed label file does not
stop a load: its error goes to :attr:`Dataset.errors` (with the file and the problem), its
image is left out, and every valid file still loads.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from model.errors import ImageReadError, LabelFormatError, LabelWriteError, StudioError
from model.imageio import image_size, list_images
from model.labels.annotation import ImageLabels, RawRecord
from model.labels.coco import read_coco_file, write_coco
from model.labels.layout import LabelFolder, count_label_files, explain_no_labels, find_label_folder, images_folder_of
from model.labels.voc import read_voc, write_voc
from model.labels.yolo import read_classes_txt, read_yolo, write_classes_txt, write_yolo

FORMATS: tuple[str, ...] = ("voc", "yolo", "coco")
CLASSES_FILE_NAME = "classes.txt"
COCO_FILE_NAME = "annotations.json"

Progress = Callable[[int, int], None]


@dataclass
class Dataset:
    """Loaded labels: ``items`` (one per usable image), ``class_names`` (id order) and the
    per-file ``errors`` met while loading (LabelFormatError, or ImageReadError for an image
    whose size could not be read)."""

    items: list[ImageLabels] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    errors: list[StudioError] = field(default_factory=list)
    #: The folder of the images, and of their labels (None: next to the images).
    images_dir: Path | None = None
    labels_dir: Path | None = None
    #: How many images had a label file (an empty one counts: a reviewed image with no box).
    label_files: int = 0
    #: One line: where the labels were read from ("labels next to the images", ...).
    labels_note: str = ""
    #: Why no image had a label file ("" when some had), with what to pass instead.
    missing_note: str = ""
    #: COCO: what the file held besides images and annotations (carried forward on save).
    extras: RawRecord | None = None


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown label format {fmt!r}; choose from {', '.join(FORMATS)}")


def label_path_for(image_path: str | os.PathLike[str], fmt: str, labels_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the labels of ``image_path`` live: VOC ``img.xml`` / YOLO ``img.txt`` next to the
    image (LabelImg), COCO the folder's ``annotations.json``; in ``labels_dir`` instead of
    the image's folder when given."""
    _check_format(fmt)
    image = Path(image_path)
    folder = Path(labels_dir) if labels_dir is not None else image.parent
    if fmt == "voc":
        return folder / image.with_suffix(".xml").name
    if fmt == "yolo":
        return folder / image.with_suffix(".txt").name
    return folder / COCO_FILE_NAME


def classes_file_for(images_dir: str | os.PathLike[str], labels_dir: str | os.PathLike[str] | None = None) -> Path:
    """The ``classes.txt`` of YOLO labels: in the label folder, else beside the images,
    else in the folder above both (a dataset root); the label folder's path when none exists."""
    images = Path(images_dir)
    labels = Path(labels_dir) if labels_dir is not None else images
    for folder in dict.fromkeys((labels, images, labels.parent)):
        if (folder / CLASSES_FILE_NAME).is_file():
            return folder / CLASSES_FILE_NAME
    return labels / CLASSES_FILE_NAME


def _ordered_names(preferred: Sequence[str], items: Iterable[ImageLabels]) -> list[str]:
    """``preferred`` first, then any other name used by a label, sorted."""
    names = list(preferred)
    extra = sorted({label.name for item in items for label in item.labels} - set(names))
    return names + extra


def _unlabelled(image: Path) -> ImageLabels:
    width, height = image_size(image)
    return ImageLabels(image_path=str(image), width=width, height=height, depth=3, labels=[])


def _load_voc(folder: Path, images: list[Path], progress: Progress | None, labels_dir: Path | None) -> Dataset:
    dataset = Dataset()
    for done, image in enumerate(images, start=1):
        xml_path = label_path_for(image, "voc", labels_dir)
        try:
            if xml_path.is_file():
                dataset.label_files += 1
                item = read_voc(xml_path)
                item.image_path = str(image)
                if item.width <= 0 or item.height <= 0:
                    item.width, item.height = image_size(image)
            else:
                item = _unlabelled(image)
            dataset.items.append(item)
        except (LabelFormatError, ImageReadError) as exc:
            dataset.errors.append(exc)
        if progress is not None:
            progress(done, len(images))
    preferred: list[str] = []
    classes_path = classes_file_for(folder, labels_dir)
    if classes_path.is_file():
        try:
            preferred = read_classes_txt(classes_path)
        except LabelFormatError as exc:
            dataset.errors.append(exc)
    dataset.class_names = _ordered_names(preferred, dataset.items)
    return dataset


def _load_yolo(folder: Path, images: list[Path], progress: Progress | None, labels_dir: Path | None) -> Dataset:
    dataset = Dataset()
    classes_path = classes_file_for(folder, labels_dir)
    has_labels = any(label_path_for(image, "yolo", labels_dir).is_file() for image in images)
    if classes_path.is_file():
        dataset.class_names = read_classes_txt(classes_path)  # unusable names: nothing can load
    elif has_labels:
        raise LabelFormatError(classes_path, "not found: YOLO labels need classes.txt with the class names")
    for done, image in enumerate(images, start=1):
        txt_path = label_path_for(image, "yolo", labels_dir)
        try:
            if txt_path.is_file():
                dataset.label_files += 1
                width, height = image_size(image)
                item = read_yolo(
                    txt_path, width=width, height=height, class_names=dataset.class_names, image_path=image
                )
            else:
                item = _unlabelled(image)
            dataset.items.append(item)
        except (LabelFormatError, ImageReadError) as exc:
            dataset.errors.append(exc)
        if progress is not None:
            progress(done, len(images))
    return dataset


def _coco_json_path(folder: Path) -> Path | None:
    path = folder / COCO_FILE_NAME
    if path.is_file():
        return path
    candidates = sorted(p for p in folder.glob("*.json") if p.is_file())
    return candidates[0] if len(candidates) == 1 else None


def _load_coco(
    folder: Path, images: list[Path], progress: Progress | None, json_path: Path | None, labels_dir: Path | None
) -> Dataset:
    dataset = Dataset()
    json_path = json_path if json_path is not None else _coco_json_path(labels_dir or folder)
    by_path: dict[str, ImageLabels] = {}
    if json_path is not None:
        try:
            parsed = read_coco_file(json_path)
        except LabelFormatError as exc:
            dataset.errors.append(exc)
            return dataset
        items, dataset.class_names, dataset.extras = parsed.items, parsed.class_names, parsed.extras
        for item in items:
            path = Path(item.image_path)
            if not path.exists() and (folder / path.name).exists():
                path = folder / path.name
            item.image_path = str(path)
            by_path[os.path.normcase(os.path.abspath(path))] = item
    for done, image in enumerate(images, start=1):
        key = os.path.normcase(os.path.abspath(image))
        item = by_path.get(key)
        if item is not None:
            item.image_path = str(image)
            dataset.items.append(item)
            dataset.label_files += 1
        else:
            try:
                dataset.items.append(_unlabelled(image))
            except ImageReadError as exc:
                dataset.errors.append(exc)
        if progress is not None:
            progress(done, len(images))
    return dataset


def load_dataset(
    folder: str | os.PathLike[str],
    fmt: str,
    *,
    images: Sequence[str | os.PathLike[str]] | None = None,
    coco_json: str | os.PathLike[str] | None = None,
    labels_dir: str | os.PathLike[str] | None = None,
    find_labels: bool = True,
    progress: Progress | None = None,
) -> Dataset:
    """Load the images of ``folder`` (or just ``images``) with their labels in ``fmt``.

    Every image gets an item (empty ``labels`` when it has no label file) unless its label
    file is malformed or its size unreadable: then the error goes to ``Dataset.errors``.
    Boxes are xyxy in image pixels. Raises LabelFormatError only when nothing can be
    interpreted (YOLO labels without a usable classes.txt); ImageReadError if the folder
    cannot be listed.

    Labels are read from ``labels_dir`` when given; else next to the images, or, when no
    label file is there and ``find_labels`` is set, from the sibling label folder found by
    :func:`model.labels.layout.find_label_folder`. A ``folder`` with no images but an
    ``images/`` (or ``JPEGImages/``) sub-folder means that sub-folder. The dataset says
    which folders were used (``images_dir``, ``labels_dir``, ``labels_note``) and, when no
    image had a label file, why (``missing_note``).

    COCO: the JSON is ``coco_json`` if given, else ``annotations.json`` in the label folder,
    else its only ``*.json``; only images of ``folder`` (or ``images``) are returned, matched
    by ``file_name`` resolved against the JSON's folder (or by base name inside ``folder``).
    """
    _check_format(fmt)
    root = Path(folder)
    if images is not None:
        image_paths = [Path(p) for p in images]
    else:
        image_paths = list_images(root)
        inner = images_folder_of(root, image_paths)
        if inner != root:
            root, image_paths = inner, list_images(inner)
    if labels_dir is not None or find_labels:
        chosen = find_label_folder(image_paths, fmt, images_dir=root, labels=labels_dir)
    else:
        chosen = LabelFolder(None, "next to the images", count_label_files(image_paths, fmt, None))
    where = chosen.path
    if fmt == "voc":
        dataset = _load_voc(root, image_paths, progress, where)
    elif fmt == "yolo":
        dataset = _load_yolo(root, image_paths, progress, where)
    else:
        dataset = _load_coco(root, image_paths, progress, Path(coco_json) if coco_json is not None else None, where)
    dataset.images_dir, dataset.labels_dir = root, where
    dataset.labels_note = chosen.describe(root)
    if not dataset.label_files and not (fmt == "coco" and coco_json is not None):
        dataset.missing_note = explain_no_labels(image_paths, fmt, images_dir=root, labels=where)
    return dataset


def save_dataset(
    items: Sequence[ImageLabels],
    folder: str | os.PathLike[str],
    fmt: str,
    *,
    class_names: Sequence[str],
    progress: Progress | None = None,
    extras: RawRecord | None = None,
) -> None:
    """Write labels for ``items`` into ``folder`` in ``fmt`` (files named after each image's
    stem; COCO: ``folder/annotations.json``). Every write is atomic. Images are not copied.
    What each item's files held besides boxes, names and flags is carried forward when the
    format is the one it was read from (COCO: with the document's ``extras`` too).

    Raises LabelWriteError (a class missing from ``class_names``, two images sharing a label
    file, or an I/O failure).
    """
    _check_format(fmt)
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabelWriteError(out, f"cannot create folder ({exc.strerror or exc})") from None
    if fmt == "coco":
        write_coco(items, out / COCO_FILE_NAME, class_names=class_names, extras=extras)
        if progress is not None:
            progress(len(items), len(items))
        return
    suffix = ".xml" if fmt == "voc" else ".txt"
    owners: dict[Path, str] = {}
    for item in items:
        target = out / (Path(item.image_path).stem + suffix)
        if target in owners:
            raise LabelWriteError(target, f"two images share this label file: {owners[target]} and {item.image_path}")
        if fmt == "yolo" and target.name == CLASSES_FILE_NAME:
            raise LabelWriteError(target, f"the labels of {item.image_path} would overwrite classes.txt")
        owners[target] = item.image_path
    if fmt == "yolo":
        write_classes_txt(out / CLASSES_FILE_NAME, class_names)
    for done, (target, item) in enumerate(zip(owners, items, strict=True), start=1):
        if fmt == "voc":
            write_voc(item, target)
        else:
            write_yolo(item, target, class_names=class_names)
        if progress is not None:
            progress(done, len(items))


def _place_image(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target`` (copy when linking is impossible)."""
    if target.exists() and os.path.samefile(source, target):
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def place_images(items: Sequence[ImageLabels], folder: Path) -> None:
    """Hard-link (or copy) the image of every item into ``folder`` and point the item at
    it, so labels written there sit next to their images. Raises LabelWriteError when two
    images share a file name or an image cannot be placed."""
    owners: dict[str, str] = {}
    for item in items:
        source = Path(item.image_path)
        target = folder / source.name
        if owners.get(target.name, item.image_path) != item.image_path:
            raise LabelWriteError(target, f"two images have this name: {owners[target.name]} and {item.image_path}")
        owners[target.name] = item.image_path
        try:
            _place_image(source, target)
        except OSError as exc:
            raise LabelWriteError(target, f"cannot copy the image ({exc.strerror or exc})") from None
        item.image_path = str(target)


def convert_dataset(
    src: str | os.PathLike[str],
    *,
    src_fmt: str,
    dst: str | os.PathLike[str],
    dst_fmt: str,
    copy_images: bool = True,
    labels_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Convert the dataset in ``src`` (``src_fmt``, labels in ``labels_dir`` or found as
    :func:`load_dataset` does) to ``dst`` (``dst_fmt``).

    When ``dst`` is another folder and ``copy_images`` is set, images are hard-linked (or
    copied) into it so the result is self-contained (labels next to their images). Returns the
    converted dataset; its ``errors`` list the source files that were skipped. ``progress``
    sees (done, total) over loading then writing (total = 2 x images).
    """
    _check_format(src_fmt)
    _check_format(dst_fmt)
    src_dir, dst_dir = Path(src).absolute(), Path(dst).absolute()
    dataset = load_dataset(
        src_dir, src_fmt, labels_dir=labels_dir, progress=(lambda d, t: progress(d, 2 * t)) if progress else None
    )
    if not dataset.label_files and not dataset.errors and dataset.missing_note:
        raise LabelFormatError(dataset.images_dir or src_dir, f"nothing to convert: {dataset.missing_note}")
    total = len(dataset.items)
    try:
        dst_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabelWriteError(dst_dir, f"cannot create folder ({exc.strerror or exc})") from None
    if copy_images and dst_dir != src_dir:
        place_images(dataset.items, dst_dir)
    save_dataset(
        dataset.items,
        dst_dir,
        dst_fmt,
        class_names=dataset.class_names,
        progress=(lambda d, t: progress(total + d, 2 * total)) if progress else None,
        extras=dataset.extras if dst_fmt == "coco" else None,
    )
    return dataset
