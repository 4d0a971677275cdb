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
from collections.abc import Sequence
from pathlib import Path

from model.errors import LabelFormatError, LabelWriteError
from model.imageio import list_images
from model.labels.annotation import ImageLabels, RawRecord
from model.labels.base import CLASSES_FILE_NAME, Dataset, Progress, classes_file_for
from model.labels.coco import COCO_FILE_NAME
from model.labels.layout import LabelFolder, count_label_files, explain_no_labels, find_label_folder, images_folder_of
from model.labels.registry import FORMATS, get_format


def label_path_for(image_path: str | os.PathLike[str], fmt: str, labels_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the ``fmt`` labels of ``image_path`` live: VOC ``img.xml`` / YOLO ``img.txt`` next
    to the image (LabelImg), COCO the folder's ``annotations.json``; in ``labels_dir`` instead
    of the image's folder when given. Raises ValueError for an unknown format."""
    return get_format(fmt).label_path_for(image_path, labels_dir)


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
    label_format = get_format(fmt)
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
    source = Path(coco_json) if coco_json is not None else None
    dataset = label_format.load(root, image_paths, labels_dir=where, progress=progress, source=source)
    dataset.images_dir, dataset.labels_dir = root, where
    dataset.labels_note = chosen.describe(root)
    if not dataset.label_files and not (source is not None and not label_format.per_image_files):
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
    label_format = get_format(fmt)
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabelWriteError(out, f"cannot create folder ({exc.strerror or exc})") from None
    label_format.save(items, out, class_names=class_names, progress=progress, extras=extras)


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
    get_format(src_fmt)
    get_format(dst_fmt)
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
        extras=dataset.extras,  # only a format that keeps extras (COCO) reads and writes them
    )
    return dataset


__all__ = [
    "CLASSES_FILE_NAME",
    "COCO_FILE_NAME",
    "FORMATS",
    "Dataset",
    "Progress",
    "classes_file_for",
    "convert_dataset",
    "label_path_for",
    "load_dataset",
    "place_images",
    "save_dataset",
]
