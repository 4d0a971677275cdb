"""Where a dataset's label files are: next to the images, or in a folder of their own.

People keep datasets in a few layouts:

    LabelImg            photos/img.jpg + photos/img.xml
    separate folder     raccoon/images/img.jpg + raccoon/annotations/img.xml (or annots/)
    VOC devkit          VOC2012/JPEGImages/img.jpg + VOC2012/Annotations/img.xml
    YOLO (ultralytics)  data/images/train/img.jpg + data/labels/train/img.txt

:func:`find_label_folder` picks the folder: the one the user named, else next to the
images when any label file is there, else the sibling folder (from :data:`LABEL_FOLDER_NAMES`)
holding most label files named after the images. :func:`explain_no_labels` says why nothing
matched, naming the folder to pass when one holds label files under other names or in
another format. Listing only: no label file is opened.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from model.labels.base import names_in
from model.labels.registry import FORMATS, get_format

#: Folder names that hold label files beside (or inside) an image folder.
LABEL_FOLDER_NAMES = ("annotations", "Annotations", "annots", "labels", "Labels", "xml")
#: Folder names that hold the images of a dataset (their label folder is a sibling).
IMAGE_FOLDER_NAMES = ("images", "Images", "JPEGImages", "imgs", "img")


@dataclass(frozen=True)
class LabelFolder:
    """Where labels are read from and written to: ``path`` (None: next to each image), how
    it was chosen (``"given"``, ``"next to the images"`` or ``"found"``) and how many of the
    images have a label file there (COCO: 1 when the folder has a JSON file)."""

    path: Path | None
    how: str
    matches: int

    def describe(self, images_dir: Path | None = None) -> str:
        """One line for the user: where the labels come from."""
        if self.path is None:
            return "labels next to the images"
        shown = _relative(self.path, images_dir) if images_dir is not None else str(self.path)
        if self.how == "found":
            return f"labels from {shown} (found beside the images; pass --labels to choose another folder)"
        return f"labels from {shown}"


def _relative(path: Path, start: Path) -> str:
    try:
        return os.path.relpath(path, start)
    except ValueError:  # pragma: no cover - another drive on Windows
        return str(path)


def candidate_label_folders(images_dir: str | os.PathLike[str]) -> list[Path]:
    """Existing folders that may hold the labels of the images in ``images_dir``, most
    likely first: the image folder's name swapped for a label folder's anywhere up its path
    (``images/train`` -> ``labels/train``, ``JPEGImages`` -> ``Annotations``), then label
    folders beside it, then inside it."""
    folder = Path(os.path.abspath(images_dir))
    parts = folder.parts
    found: list[Path] = []
    for i in range(len(parts) - 1, 0, -1):
        if parts[i] in IMAGE_FOLDER_NAMES:
            found += [Path(*parts[:i], name, *parts[i + 1 :]) for name in LABEL_FOLDER_NAMES]
            break
    found += [folder.parent / name for name in LABEL_FOLDER_NAMES]
    found += [folder / name for name in LABEL_FOLDER_NAMES]
    unique: list[Path] = []
    for path in found:
        if path != folder and path not in unique and path.is_dir():
            unique.append(path)
    return unique


def count_label_files(images: Sequence[Path], fmt: str, folder: Path | None) -> int:
    """How many of ``images`` have a ``fmt`` label file in ``folder`` (None: next to each
    image). COCO: 1 when the folder has ``annotations.json`` or exactly one JSON file."""
    return get_format(fmt).count_label_files(images, folder)


def find_label_folder(
    images: Sequence[Path], fmt: str, *, images_dir: str | os.PathLike[str] | None = None, labels: str | os.PathLike[str] | None = None
) -> LabelFolder:
    """Where the ``fmt`` labels of ``images`` (in ``images_dir``, default the first image's
    folder) are: ``labels`` when given; next to the images when any label file is there;
    else the candidate folder (:func:`candidate_label_folders`) with the most label files
    named after the images; else next to the images, with no match."""
    if labels is not None:
        path = Path(labels)
        return LabelFolder(path, "given", count_label_files(images, fmt, path))
    beside = count_label_files(images, fmt, None)
    if beside or not images:
        return LabelFolder(None, "next to the images", beside)
    folder = Path(images_dir) if images_dir is not None else images[0].parent
    best: LabelFolder | None = None
    for candidate in candidate_label_folders(folder):
        matches = count_label_files(images, fmt, candidate)
        if matches and (best is None or matches > best.matches):
            best = LabelFolder(candidate, "found", matches)
    return best or LabelFolder(None, "next to the images", 0)


def explain_no_labels(images: Sequence[Path], fmt: str, *, images_dir: Path, labels: Path | None) -> str:
    """Why none of ``images`` has a ``fmt`` label file, with what to do, e.g. ``"200 images,
    0 .xml label files next to them; found 200 .xml in ../annotations, none named after an
    image"`` or ``"... found 164 .txt next to them: pass --format yolo"``."""
    label_format = get_format(fmt)
    suffix = label_format.suffix
    where = "next to them" if labels is None else f"in {labels}"
    kind = f"{suffix} label files" if label_format.per_image_files else label_format.label_path_for("x").name + f" (or one {suffix} file)"
    head = f"{len(images)} image{'s' if len(images) != 1 else ''} in {images_dir}, 0 {kind} {where}"
    if not images:
        sub = [p for p in (images_dir / name for name in IMAGE_FOLDER_NAMES) if p.is_dir()]
        hint = f"; the images may be in {sub[0]}" if sub else ""
        return f"no images in {images_dir} (extensions: jpg, png, bmp, tif, webp){hint}"
    hints: list[str] = []
    for other in FORMATS:
        if other != fmt and count_label_files(images, other, labels):
            hints.append(f"found {other} labels {where}: pass --format {other}")
    folders = ([labels] if labels is not None else []) + candidate_label_folders(images_dir)
    for folder in folders:
        names = names_in(folder) or set()
        same = sorted(n for n in names if n.lower().endswith(suffix))
        if not same:
            continue
        shown = _relative(folder, images_dir)
        matching = count_label_files(images, fmt, folder)
        if matching:
            hints.append(f"found {matching} {suffix} named after the images in {shown}: pass --labels {shown}")
        else:
            hints.append(f"found {len(same)} {suffix} in {shown}, none named after an image (e.g. {same[0]})")
        break
    return head + ("; " + "; ".join(hints) if hints else "")


def images_folder_of(folder: str | os.PathLike[str], listed: Sequence[Path]) -> Path:
    """``folder`` itself when it has images (``listed``), else its image sub-folder
    (``images/``, ``JPEGImages/``...) when one exists: a dataset root names its images."""
    path = Path(folder)
    if listed:
        return path
    for name in IMAGE_FOLDER_NAMES:
        if (path / name).is_dir():
            return path / name
    return path
