"""What every label format shares: the :class:`LabelFormat` interface, the loaded
:class:`Dataset`, and :class:`PerImageFormat`, the base of formats that keep one label file
per image (VOC, YOLO).

A format is one module holding one object that implements :class:`LabelFormat`, plus one
entry in :mod:`model.labels.registry`. Boxes are xyxy floats in original-image pixels on
this side of the interface; each format converts at its own edge.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from model.errors import ImageReadError, LabelFormatError, LabelWriteError, StudioError
from model.imageio import image_size
from model.labels.annotation import ImageLabels, RawRecord

#: YOLO's class list (LabelImg keeps one beside VOC files too, for the class order).
CLASSES_FILE_NAME = "classes.txt"

Progress = Callable[[int, int], None]
PathLike = str | os.PathLike[str]


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


@runtime_checkable
class LabelFormat(Protocol):
    """One label file format. Implementations are stateless singletons registered by
    :attr:`name` in :data:`model.labels.registry.FORMATS`."""

    #: Registry key and ``--format`` value ("voc").
    name: str
    #: Shown to the user ("Pascal VOC").
    title: str
    #: Where its files go, in a few words (".xml next to each image").
    files: str
    #: Suffix of its label files (".xml").
    suffix: str
    #: One label file per image (False: one file holds a whole folder, as COCO's JSON).
    per_image_files: bool
    #: The file has a place for LabelImg's *verified* mark.
    keeps_verified: bool
    #: The files name the classes themselves (YOLO's classes.txt, COCO's categories).
    stores_class_names: bool

    def label_path_for(self, image_path: PathLike, labels_dir: PathLike | None = None) -> Path:
        """Where the labels of ``image_path`` live (in ``labels_dir``, else beside the image)."""
        ...

    def count_label_files(self, images: Sequence[Path], folder: Path | None) -> int:
        """How many of ``images`` have a label file in ``folder`` (None: next to each image);
        a folder-file format counts its folders that have a file. Lists folders only."""
        ...

    def can_read(self, image_path: PathLike, labels_dir: PathLike | None = None) -> bool:
        """Whether ``image_path`` has labels in this format that can be read as they are."""
        ...

    def class_list(self, images_dir: PathLike, labels_dir: PathLike | None = None) -> list[str]:
        """The class list kept beside the label files (YOLO's classes.txt); [] when none."""
        ...

    def read_image(
        self, image_path: PathLike, *, width: int, height: int, labels_dir: PathLike | None = None, class_names: Sequence[str] = ()
    ) -> ImageLabels | None:
        """What the file holds for ``image_path`` (labels, verified mark, what a save carries
        forward); None when there is no file or it does not name the image. ``class_names``:
        the classes known when the format keeps none of its own. Raises LabelFormatError."""
        ...

    def write_image(self, item: ImageLabels, *, labels_dir: PathLike | None = None, class_names: Sequence[str] = ()) -> Path:
        """Write ``item``'s labels atomically, carrying forward what the file held; returns
        the label file. Raises LabelWriteError."""
        ...

    def saved_source(self, path: Path) -> RawRecord | None:
        """What a write just put in ``path``, for the next write to carry forward."""
        ...

    def read_folder(self, folder: Path) -> Dataset:
        """What a folder file (COCO's JSON) in ``folder`` holds, for every image it names:
        items in file order, class names, extras. Formats with one file per image return an
        empty Dataset: their files are read per image. Raises LabelFormatError."""
        ...

    def write_class_list(self, folder: Path, class_names: Sequence[str]) -> None:
        """Write the class list kept beside the label files of ``folder`` (YOLO's
        classes.txt); nothing for formats that keep none there."""
        ...

    def load(
        self,
        folder: Path,
        images: Sequence[Path],
        *,
        labels_dir: Path | None = None,
        progress: Progress | None = None,
        source: Path | None = None,
    ) -> Dataset:
        """The labels of ``images`` (one item each, unless its file is malformed: then the
        error goes to ``Dataset.errors``). ``source``: a label file to read instead of the
        folder's (COCO's JSON elsewhere)."""
        ...

    def save(
        self,
        items: Sequence[ImageLabels],
        folder: Path,
        *,
        class_names: Sequence[str],
        progress: Progress | None = None,
        extras: RawRecord | None = None,
    ) -> None:
        """Write ``items``' labels into ``folder`` (which exists). Raises LabelWriteError."""
        ...


def image_key(path: PathLike) -> str:
    """The key two spellings of one image path share (absolute, case-folded where the file
    system folds case)."""
    return os.path.normcase(os.path.abspath(path))


class ImageIndex:
    """The entries of a label file that names many images (COCO's JSON), looked up by image
    path with the one rule the product uses everywhere (the app's load and save, dataset
    loads, batch detection):

    1. the entry whose image path (COCO: ``file_name`` resolved against the JSON's folder)
       is that path;
    2. else the first entry with the same base name (a file moved away from its images, or
       written on another machine).
    """

    def __init__(self, items: Sequence[ImageLabels]) -> None:
        self.items = list(items)
        self._by_key: dict[str, int] = {}
        self._by_name: dict[str, int] = {}
        for position, item in enumerate(self.items):
            self._by_key.setdefault(image_key(item.image_path), position)
            self._by_name.setdefault(Path(item.image_path).name, position)

    def position(self, image_path: PathLike) -> int | None:
        """Where the entry of ``image_path`` is in :attr:`items` (None: it has none)."""
        found = self._by_key.get(image_key(image_path))
        return found if found is not None else self._by_name.get(Path(image_path).name)

    def find(self, image_path: PathLike) -> ImageLabels | None:
        """The entry of ``image_path`` (None when the file has none)."""
        position = self.position(image_path)
        return None if position is None else self.items[position]


def names_in(folder: Path) -> set[str] | None:
    """File names in ``folder`` (None when it is not a readable folder)."""
    try:
        with os.scandir(folder) as entries:
            return {entry.name for entry in entries if entry.is_file()}
    except OSError:
        return None


def classes_file_for(images_dir: PathLike, labels_dir: PathLike | None = None) -> Path:
    """The ``classes.txt`` of the labels: in the label folder, else beside the images,
    else in the folder above both (a dataset root); the label folder's path when none exists."""
    images = Path(images_dir)
    labels = Path(labels_dir) if labels_dir is not None else images
    for folder in dict.fromkeys((labels, images, labels.parent)):
        if (folder / CLASSES_FILE_NAME).is_file():
            return folder / CLASSES_FILE_NAME
    return labels / CLASSES_FILE_NAME


def ordered_names(preferred: Sequence[str], items: Iterable[ImageLabels]) -> list[str]:
    """``preferred`` first, then any other name used by a label, sorted."""
    names = list(preferred)
    extra = sorted({label.name for item in items for label in item.labels} - set(names))
    return names + extra


def merged_names(names: Sequence[str], more: Iterable[str]) -> list[str]:
    """``names`` followed by the new names of ``more``, first-seen order (ids never move)."""
    merged = list(names)
    seen = set(merged)
    for name in more:
        if name not in seen:
            seen.add(name)
            merged.append(name)
    return merged


def unlabelled(image: Path) -> ImageLabels:
    """An image with no label file: its size, no labels."""
    width, height = image_size(image)
    return ImageLabels(image_path=str(image), width=width, height=height, depth=3, labels=[])


class PerImageFormat:
    """Base of a format with one label file per image, named after it (``img.xml`` beside
    ``img.jpg``, or in a label folder). A subclass sets the attributes of
    :class:`LabelFormat` and implements :meth:`read_file` and :meth:`write_file`."""

    name = ""
    title = ""
    files = ""
    suffix = ""
    per_image_files = True
    keeps_verified = False
    stores_class_names = False

    # ---------------------------------------------------------------- one file
    def read_file(self, path: Path, *, image_path: PathLike, size: tuple[int, int] | None, class_names: Sequence[str]) -> ImageLabels:
        """Read the label file ``path`` of ``image_path`` (``size``: the image's, None when
        unknown). Raises LabelFormatError (ImageReadError when the size is needed)."""
        raise NotImplementedError

    def write_file(self, item: ImageLabels, path: Path, *, class_names: Sequence[str]) -> None:
        """Write ``item`` to ``path`` atomically, carrying forward ``item.source``."""
        raise NotImplementedError

    def write_class_list(self, folder: Path, class_names: Sequence[str]) -> None:
        """Write the class list a save of a whole folder keeps beside its files (none here)."""

    # ---------------------------------------------------------------- LabelFormat
    def label_path_for(self, image_path: PathLike, labels_dir: PathLike | None = None) -> Path:
        image = Path(image_path)
        folder = Path(labels_dir) if labels_dir is not None else image.parent
        return folder / image.with_suffix(self.suffix).name

    def count_label_files(self, images: Sequence[Path], folder: Path | None) -> int:
        listings: dict[Path, set[str] | None] = {}
        count = 0
        for image in images:
            where = folder if folder is not None else image.parent
            if where not in listings:
                listings[where] = names_in(where)
            names = listings[where]
            if names is not None and image.stem + self.suffix in names:
                count += 1
        return count

    def can_read(self, image_path: PathLike, labels_dir: PathLike | None = None) -> bool:
        return self.label_path_for(image_path, labels_dir).is_file()

    def class_list(self, images_dir: PathLike, labels_dir: PathLike | None = None) -> list[str]:
        return []

    def read_image(
        self, image_path: PathLike, *, width: int, height: int, labels_dir: PathLike | None = None, class_names: Sequence[str] = ()
    ) -> ImageLabels | None:
        path = self.label_path_for(image_path, labels_dir)
        if not path.is_file():
            return None
        names = self.class_list(Path(image_path).parent, labels_dir) or list(class_names)
        return self.read_file(path, image_path=image_path, size=(width, height), class_names=names)

    def write_image(self, item: ImageLabels, *, labels_dir: PathLike | None = None, class_names: Sequence[str] = ()) -> Path:
        path = self.label_path_for(item.image_path, labels_dir)
        self.write_file(item, path, class_names=class_names)
        return path

    def saved_source(self, path: Path) -> RawRecord | None:
        try:
            return RawRecord(self.name, path.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError):
            return None

    def read_folder(self, folder: Path) -> Dataset:
        return Dataset()  # one file per image: read per image

    def load_class_names(self, folder: Path, images: Sequence[Path], labels_dir: Path | None, dataset: Dataset) -> list[str]:
        """The class list the files are read against, before any is read (none here)."""
        return []

    def load(
        self,
        folder: Path,
        images: Sequence[Path],
        *,
        labels_dir: Path | None = None,
        progress: Progress | None = None,
        source: Path | None = None,
    ) -> Dataset:
        dataset = Dataset()
        names = self.load_class_names(folder, images, labels_dir, dataset)
        for done, image in enumerate(images, start=1):
            path = self.label_path_for(image, labels_dir)
            try:
                if path.is_file():
                    dataset.label_files += 1
                    item = self.read_file(path, image_path=image, size=None, class_names=names)
                    item.image_path = str(image)
                    if item.width <= 0 or item.height <= 0:
                        item.width, item.height = image_size(image)
                else:
                    item = unlabelled(image)
                dataset.items.append(item)
            except (LabelFormatError, ImageReadError) as exc:
                dataset.errors.append(exc)
            if progress is not None:
                progress(done, len(images))
        dataset.class_names = ordered_names(names, dataset.items)
        return dataset

    def check_target(self, target: Path, item: ImageLabels) -> None:
        """Refuse a label file a folder save must not write (none here)."""

    def save(
        self,
        items: Sequence[ImageLabels],
        folder: Path,
        *,
        class_names: Sequence[str],
        progress: Progress | None = None,
        extras: RawRecord | None = None,
    ) -> None:
        owners: dict[Path, str] = {}
        for item in items:
            target = self.label_path_for(item.image_path, folder)
            if target in owners:
                raise LabelWriteError(target, f"two images share this label file: {owners[target]} and {item.image_path}")
            self.check_target(target, item)
            owners[target] = item.image_path
        self.write_class_list(folder, class_names)
        for done, (target, item) in enumerate(zip(owners, items, strict=True), start=1):
            self.write_file(item, target, class_names=class_names)
            if progress is not None:
                progress(done, len(items))


__all__ = [
    "CLASSES_FILE_NAME",
    "Dataset",
    "ImageIndex",
    "LabelFormat",
    "PerImageFormat",
    "Progress",
    "classes_file_for",
    "image_key",
    "merged_names",
    "names_in",
    "ordered_names",
    "unlabelled",
]
