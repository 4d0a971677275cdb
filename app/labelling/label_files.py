"""One image's labels on disk: the label file, through its format, and the studio's sidecar (no Qt).

* The labels themselves, in the chosen format, through its format object
  (:func:`model.labels.get_format`: the document holds state, the format reads and writes):
  VOC ``image.xml`` / YOLO ``image.txt`` (+ ``classes.txt``) next to the image, COCO in the
  folder-level ``annotations.json`` (``model.labels.label_path_for``), or in a label folder
  of their own (File › Change Save Dir…). A save carries forward what the file held besides
  boxes, names and flags (LabelImg's ``verified``, pose, occluded, unknown tags; COCO keys
  and ids): only the edits change. The image's *verified* mark (LabelImg's review flag, VOC
  ``verified="yes"``) is saved in the label file (VOC, COCO) and the sidecar.
* Provenance (drawn / accepted from model M with score s and original box / edited since)
  and rejected detections in a sidecar ``<folder>/.studio/<image file name>.json``, written
  atomically too. A hidden folder keeps VOC/YOLO/COCO folders clean for training tools.
  The quality dock reads it (:func:`saved_provenance_and_rejections`) to tell a label that
  is the evaluated model's own detection, accepted unedited, from verified ones.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.labelling.entries import FILE, DetectionKey, LabelEntry, Provenance, state_from_json, state_to_json, verified_from_json
from model.errors import LabelWriteError
from model.labels import ImageLabels, Label, LabelFormat, atomic_write_text, get_format

__all__ = [
    "SIDECAR_DIR",
    "SavedLabels",
    "read_labels",
    "saved_provenance",
    "saved_provenance_and_rejections",
    "sidecar_path",
    "write_labels",
    "write_sidecar",
]

log = logging.getLogger(__name__)

SIDECAR_DIR = ".studio"
#: Tolerance (px) when matching a sidecar record to a label read back from a file.
_MATCH_TOLERANCE = 0.51


def sidecar_path(image_path: str | Path) -> Path:
    """``<folder>/.studio/<image file name>.json``: provenance and rejected detections."""
    image_path = Path(image_path)
    return image_path.parent / SIDECAR_DIR / f"{image_path.name}.json"


@dataclass(frozen=True)
class SavedLabels:
    """What an image's files hold, as last read (:func:`read_labels`) or written
    (:func:`write_labels`): what a discard goes back to."""

    file: ImageLabels | None = None
    """What the label file holds (carried forward by the next write); None: no file for the image."""
    entries: list[LabelEntry] = field(default_factory=list)
    """The file's labels, each with its sidecar provenance (``FILE`` where there is no record)."""
    rejected: frozenset[DetectionKey] = frozenset()
    verified: bool = False
    """As read: from the file when its format keeps the mark (VOC, COCO), else from the sidecar."""


def read_labels(
    label_format: LabelFormat,
    image_path: str,
    *,
    size: tuple[int, int],
    labels_dir: Path | None,
    class_names: Sequence[str],
) -> tuple[SavedLabels, list[str]]:
    """The labels of ``image_path`` (``size``: width, height after EXIF orientation) in
    ``label_format``, in ``labels_dir`` (None: next to the image), paired with the sidecar;
    and the class list kept with them (YOLO's ``classes.txt``; [] when none or no file).
    ``class_names``: the classes known when the format keeps none of its own. Raises
    :class:`model.errors.LabelFormatError` naming the file when the label file is malformed."""
    width, height = size
    file = label_format.read_image(image_path, width=width, height=height, labels_dir=labels_dir, class_names=class_names)
    class_list = list(label_format.class_list(Path(image_path).parent, labels_dir)) if file is not None else []
    labels = list(file.labels) if file is not None else []
    sidecar = _read_sidecar_json(image_path)
    entries, rejected = _attach_provenance(labels, _state_or_empty(sidecar, image_path))
    if not label_format.keeps_verified or file is None:
        verified = bool(verified_from_json(sidecar)) and file is not None
    else:
        verified = file.verified
    return SavedLabels(file, entries, rejected, verified), class_list


def write_labels(
    image_path: str,
    entries: Sequence[LabelEntry],
    rejected: frozenset[DetectionKey],
    *,
    fmt: str,
    size: tuple[int, int],
    depth: int,
    verified: bool,
    labels_dir: Path | None,
    class_names: Sequence[str],
    previous: ImageLabels | None,
) -> tuple[Path, SavedLabels]:
    """Write the labels of ``entries`` atomically in format ``fmt`` (carrying forward what
    ``previous``, the file as read or last written, held), then the sidecar. Returns the
    label file and what the files now hold.

    Raises :class:`LabelWriteError` when a file cannot be written: the old files stay whole."""
    width, height = size
    labels = [e.label for e in entries]
    try:
        if labels_dir is not None:
            labels_dir.mkdir(parents=True, exist_ok=True)
        label_format = get_format(fmt)
        source = previous.source if previous is not None else None
        item = ImageLabels(image_path, width, height, depth, labels=list(labels), verified=verified, source=source)
        path = label_format.write_image(item, labels_dir=labels_dir, class_names=class_names)
        write_sidecar(image_path, entries, rejected, verified=verified)
    except LabelWriteError:
        raise
    except OSError as exc:
        raise LabelWriteError(image_path, f"cannot save labels: {exc}") from exc
    written = ImageLabels(image_path, width, height, depth, labels=list(labels), verified=verified, source=label_format.saved_source(path))
    return path, SavedLabels(written, list(entries), rejected, verified)


def write_sidecar(image_path: str, entries: Sequence[LabelEntry], rejected: Iterable[DetectionKey], *, verified: bool) -> None:
    """Write ``image_path``'s sidecar atomically: provenance, rejected detections, verified mark."""
    sidecar = sidecar_path(image_path)
    sidecar.parent.mkdir(exist_ok=True)
    state = {"image": Path(image_path).name, **state_to_json(entries, rejected, verified=verified)}
    atomic_write_text(sidecar, json.dumps(state, indent=1))


def _read_sidecar_json(image_path: str) -> Any:
    """The decoded sidecar of ``image_path`` (None when there is none or it is unreadable)."""
    path = sidecar_path(image_path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("%s: ignoring unreadable provenance file (%s)", path, exc)
        return None


def _state_or_empty(data: Any, image_path: str) -> tuple[list[LabelEntry], frozenset[DetectionKey]]:
    if data is None:
        return [], frozenset()
    try:
        return state_from_json(data)
    except (ValueError, KeyError, TypeError) as exc:
        # Provenance is a convenience: a damaged sidecar must not stop the labels opening.
        log.warning("%s: ignoring unreadable provenance file (%s)", sidecar_path(image_path), exc)
        return [], frozenset()


def _read_sidecar(image_path: str) -> tuple[list[LabelEntry], frozenset[DetectionKey]]:
    return _state_or_empty(_read_sidecar_json(image_path), image_path)


def saved_provenance(image_path: str | Path, labels: Sequence[Label]) -> list[Provenance]:
    """The provenance of each of ``labels`` (read from ``image_path``'s label file) from its
    sidecar, as :meth:`app.labelling.document.LabelDocument.load` pairs them; ``FILE`` where there is no record.
    Plain file reading (no Qt): label readers call it off the GUI thread."""
    return saved_provenance_and_rejections(image_path, labels)[0]


def saved_provenance_and_rejections(
    image_path: str | Path, labels: Sequence[Label]
) -> tuple[list[Provenance], frozenset[DetectionKey]]:
    """:func:`saved_provenance` and the detections rejected on ``image_path``, from one
    reading of its sidecar (no Qt)."""
    entries, rejected = _attach_provenance(labels, _read_sidecar(os.path.abspath(os.fspath(image_path))))
    return [entry.provenance for entry in entries], rejected


def _match_key(label: Label) -> tuple[str, int, int, int, int]:
    return (label.name, *(int(round(v)) for v in label.box))  # type: ignore[return-value]


def _attach_provenance(
    labels: Sequence[Label], sidecar: tuple[list[LabelEntry], frozenset[DetectionKey]]
) -> tuple[list[LabelEntry], frozenset[DetectionKey]]:
    """Pair each label read from a file with its sidecar record (same class, box within
    half a pixel: VOC rounds); labels with no record get ``Provenance(source=FILE)``."""
    records, rejected = sidecar
    by_key: dict[tuple[str, int, int, int, int], list[LabelEntry]] = {}
    for rec in records:  # a dict, not a scan: 1,500 labels must not cost 2 million comparisons
        by_key.setdefault(_match_key(rec.label), []).append(rec)
    entries = []
    for label in labels:
        prov = Provenance(source=FILE)
        candidates = by_key.get(_match_key(label), [])
        for k, rec in enumerate(candidates):
            if all(abs(a - b) <= _MATCH_TOLERANCE for a, b in zip(rec.box, label.box, strict=True)):
                prov = candidates.pop(k).provenance
                break
        entries.append(LabelEntry(label, prov))
    return entries, rejected
