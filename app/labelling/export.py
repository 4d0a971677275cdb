"""File › Export Labelled Set As…: the labelled images of the open list, in another format.

A plain function (no Qt) run off the GUI thread by :class:`app.common.worker.Worker`. It reads
the labels saved in the chosen label format (``model.labels.load_dataset``, folder by
folder), keeps the images that have labels, links (or copies) those images into the target
folder so the result is self-contained, and writes the labels there with
``model.labels.save_dataset`` (atomic writes). Boxes stay xyxy in original-image pixels
until the writers convert them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from model.errors import LabelWriteError, StudioError
from model.labels import ImageLabels, get_format, load_dataset, save_dataset
from model.labels.annotation import RawRecord
from model.labels.dataset import place_images


class ExportCancelled(Exception):
    """The user cancelled the export (files written so far stay valid, each one atomic)."""


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: ``images`` labelled images with ``labels`` boxes in ``fmt``
    into ``folder``; ``skipped`` lists the label files that could not be read."""

    folder: Path
    fmt: str
    images: int
    labels: int
    class_names: list[str]
    skipped: list[StudioError] = field(default_factory=list)


def _by_folder(images: Iterable[Path]) -> dict[Path, list[Path]]:
    groups: dict[Path, list[Path]] = {}
    for image in images:
        image = Path(image).absolute()
        groups.setdefault(image.parent, []).append(image)
    return groups


def _merged_names(first: Sequence[str], *more: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(n for n in first if n))
    seen = set(names)
    for group in more:
        for name in group:
            if name not in seen:
                seen.add(name)
                names.append(name)
    return names


def export_labelled_set(
    images: Sequence[str | os.PathLike[str]],
    *,
    src_fmt: str,
    dst: str | os.PathLike[str],
    dst_fmt: str,
    class_names: Sequence[str] = (),
    copy_images: bool = True,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    label_dirs: Mapping[str, Path] | None = None,
) -> ExportResult:
    """Write the labelled ones of ``images`` (labels read in ``src_fmt``) to ``dst`` in
    ``dst_fmt``. An image counts as labelled when it has a VOC/YOLO label file (even an
    empty one: a reviewed image with no objects) or, for COCO, at least one box.

    The labels of an image folder are read from ``label_dirs[absolute folder]`` when it has
    an entry (File › Change Save Dir…), else next to the images.

    Class ids follow ``class_names`` (the project's classes), then any other class found.
    ``progress(done, total)`` runs over reading then writing; ``cancelled()`` is checked
    per image and raises :class:`ExportCancelled`. Raises LabelWriteError (two images
    with the same file name, an unwritable folder, ...). Unreadable label files do not stop
    the export: they are listed in :attr:`ExportResult.skipped`.
    """
    source = get_format(src_fmt)
    get_format(dst_fmt)
    out = Path(dst).absolute()
    groups = _by_folder(Path(p) for p in images)
    total_in = sum(len(g) for g in groups.values())

    def tick(done: int, total: int) -> None:
        if cancelled is not None and cancelled():
            raise ExportCancelled("export cancelled")
        if progress is not None:
            progress(done, total)

    items: list[ImageLabels] = []
    skipped: list[StudioError] = []
    found_names: list[str] = []
    extras: list[RawRecord] = []  # COCO files read: their info, licenses and category ids
    offset = 0
    for folder, group in groups.items():
        labels_dir = (label_dirs or {}).get(os.path.abspath(folder))
        if source.per_image_files:  # only images with a label file: no image is decoded for nothing
            candidates = [p for p in group if source.label_path_for(p, labels_dir).is_file()]
        else:  # a folder file (COCO) says which images it has
            candidates = group
        base = offset
        if candidates:
            dataset = load_dataset(
                folder,
                src_fmt,
                images=candidates,
                labels_dir=labels_dir,
                find_labels=False,
                progress=lambda d, _t, b=base: tick(b + d, 2 * total_in),
            )
            skipped.extend(dataset.errors)
            found_names.extend(dataset.class_names)
            if dataset.extras is not None:
                extras.append(dataset.extras)
            items.extend(item for item in dataset.items if source.per_image_files or item.labels)
        offset += len(group)
        tick(offset, 2 * total_in)

    names = _merged_names(class_names, found_names, (lab.name for item in items for lab in item.labels))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabelWriteError(out, f"cannot create folder ({exc.strerror or exc})") from None
    if copy_images:
        place_images(items, out)
    count = len(items)
    save_dataset(
        items,
        out,
        dst_fmt,
        class_names=names,
        progress=lambda d, _t: tick(total_in + round(d * total_in / max(count, 1)), 2 * total_in),
        extras=extras[0] if len(extras) == 1 else None,  # one COCO file: carried forward (to COCO only)
    )
    tick(2 * total_in, 2 * total_in)
    return ExportResult(
        folder=out,
        fmt=dst_fmt,
        images=count,
        labels=sum(len(item.labels) for item in items),
        class_names=names,
        skipped=skipped,
    )


__all__ = ["ExportCancelled", "ExportResult", "export_labelled_set"]
