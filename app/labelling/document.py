"""One image's labels as an observable document: the model the canvas draws.

:class:`LabelDocument` holds the labels of one image (``model.labels.Label``, boxes xyxy in
original-image pixels after EXIF orientation) with the provenance of each, the current
detections of that image and the ones the user rejected, and a QUndoStack through which
every edit goes. Views observe its signals; no widget owns labels.

Files:

* the labels themselves, in the chosen format, through its format object
  (:func:`model.labels.get_format`: the document holds state, the format reads and writes):
  VOC ``image.xml`` / YOLO ``image.txt`` (+ ``classes.txt``) next to the image, COCO in the
  folder-level ``annotations.json`` (``model.labels.label_path_for``), or in a label folder
  of their own (:attr:`LabelDocument.labels_dir`, File › Change Save Dir…). A save carries
  forward what the file held besides boxes, names and flags (LabelImg's ``verified``, pose,
  occluded, unknown tags; COCO keys and ids): only the edits change;
* the image's *verified* mark (LabelImg's review flag, VOC ``verified="yes"``): toggled
  through the undo stack like any edit, saved in the label file (VOC, COCO) and the sidecar;
* provenance (drawn / accepted from model M with score s and original box / edited since)
  and rejected detections in a sidecar ``<folder>/.studio/<image file name>.json``, written
  atomically too. A hidden folder keeps VOC/YOLO/COCO folders clean for training tools.
  A model is recorded by its file name and by the fingerprint of its contents
  (``model_id``, ``model.quality.model_fingerprint``: training and fine-tuning both write
  ``model.onnx``), so the quality dock can tell a label that is the evaluated model's own
  detection, accepted unedited, from verified ones. A rejected detection is recorded with
  both too, and hides the detections of that model only (fingerprints compared when both
  sides have one, file names otherwise: ``model.quality.is_same_model``). Sidecars written
  before ``model_id`` was recorded read it as "".

A rejection also records the inference size and the detection's box, and hides only the
same detection (:func:`match_rejections`): anchor ids depend on the size (and the image's
aspect), so after a size change an anchor id names another place in the image. Deleting a
label that is an unedited acceptance of the current model's detection rejects that
detection in the same undo step (:meth:`LabelDocument.delete_rows`): the review says "this
detection is wrong", and the detection must not come back as a suggestion.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import logging
import math
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from app.labelling import commands
from app.labelling.geometry import clamp_box, translate_boxes
from model.boxes import iou_matrix
from model.errors import LabelFormatError, LabelWriteError
from model.labels import ImageLabels, Label, atomic_write_text, get_format
from model.labels.annotation import RawRecord
from model.quality import UneditedAcceptance, is_same_model

if TYPE_CHECKING:
    from app.labelling.journal import Journal
    from model.postprocess import Detections

log = logging.getLogger(__name__)


def _guard_emit_refcount_bug() -> bool:
    """Work around a PySide6 6.12.0 bug on CPython < 3.12: ``SignalInstance.emit()`` returns
    ``True`` without taking a reference, so every emit from Python drops one reference to
    the ``True`` singleton and, after a few hundred emits (mouse moves, edits), CPython
    aborts with "Fatal Python error: bool_dealloc". When a probe emit shows the leak, the
    singletons' reference counts are raised far out of reach (what CPython 3.12 does by
    making them immortal). Returns whether the work-around was applied. Idempotent.
    """
    if sys.version_info >= (3, 12):
        return False

    class _Probe(QObject):
        ping = Signal()

    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(8):
        probe.ping.emit()
    leaked = before - sys.getrefcount(True)
    if leaked <= 0:
        return False
    for singleton in (True, False):
        refcount = ctypes.c_ssize_t.from_address(id(singleton))  # ob_refcnt, first field
        refcount.value += (1 << 40) + leaked
    log.debug("PySide6 emit() refcount leak detected: True/False pinned")
    return True


PYSIDE_EMIT_GUARD = _guard_emit_refcount_bug()

Box = tuple[float, float, float, float]
"""x1, y1, x2, y2 in original-image pixels."""

#: Provenance sources.
DRAWN = "drawn"  # drawn by hand in the studio
MODEL = "model"  # accepted from a model's detection
FILE = "file"  # found in a label file with no studio record (another tool, or edited outside)

SIDECAR_DIR = ".studio"
STATE_VERSION = 1
#: IoU above which a detection counts as "already a label".
ALREADY_LABELLED_IOU = 0.9
#: Tolerance (px) when matching a sidecar record to a label read back from a file.
_MATCH_TOLERANCE = 0.51
#: Box IoU from which a detection of another (or unknown) inference size is the detection a
#: rejection recorded (:func:`match_rejections`).
SAME_DETECTION_IOU = 0.7
#: ``DetectionKey.anchor_id`` of a rejection recorded when its detection was not shown
#: (a deleted label whose detection the model does not produce at the current settings).
UNKNOWN_ANCHOR = -1


# --------------------------------------------------------------------------- plain data
@dataclass(frozen=True)
class Provenance:
    """Where a label came from. ``model_name`` (the model's file name), ``model_id`` (its
    fingerprint, "" when unknown), ``original_box`` (xyxy) and ``score`` are the
    detection's when ``source == MODEL``; ``edited`` says the box or class was changed since."""

    source: str = DRAWN
    model_name: str = ""
    score: float | None = None
    original_box: Box | None = None
    original_name: str = ""
    edited: bool = False
    model_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Provenance:
        box = data.get("original_box")
        return cls(
            source=str(data.get("source", FILE)),
            model_name=str(data.get("model_name", "")),
            score=None if data.get("score") is None else float(data["score"]),
            original_box=None if box is None else tuple(float(v) for v in box),  # type: ignore[arg-type]
            original_name=str(data.get("original_name", "")),
            edited=bool(data.get("edited", False)),
            model_id=str(data.get("model_id", "")),
        )

    def unedited_acceptance(self) -> UneditedAcceptance | None:
        """The model this label is an unedited detection of; None when it was drawn,
        edited, or has no studio record."""
        if self.source != MODEL or self.edited:
            return None
        return UneditedAcceptance(self.model_name, self.model_id)


@dataclass(frozen=True)
class LabelEntry:
    """A label and its provenance. Treat ``label`` as immutable: edits make new entries."""

    label: Label
    provenance: Provenance

    @property
    def box(self) -> Box:
        return (self.label.x1, self.label.y1, self.label.x2, self.label.y2)

    def with_box(self, box: Box) -> LabelEntry:
        """This entry with ``box`` (xyxy); a model-accepted label becomes "edited"."""
        x1, y1, x2, y2 = (float(v) for v in box)
        label = dataclasses.replace(self.label, x1=x1, y1=y1, x2=x2, y2=y2)
        return LabelEntry(label, self._edited(box != self.box))

    def with_name(self, name: str) -> LabelEntry:
        """This entry with class ``name``; a model-accepted label becomes "edited"."""
        return LabelEntry(dataclasses.replace(self.label, name=name), self._edited(name != self.label.name))

    def _edited(self, changed: bool) -> Provenance:
        if changed and self.provenance.source != DRAWN:
            return dataclasses.replace(self.provenance, edited=True)
        return self.provenance

    def to_json(self) -> dict[str, Any]:
        lab = self.label
        return {
            "box": [lab.x1, lab.y1, lab.x2, lab.y2],
            "name": lab.name,
            "difficult": lab.difficult,
            "truncated": lab.truncated,
            "provenance": self.provenance.to_json(),
            **({"raw": {"fmt": lab.raw.fmt, "data": lab.raw.data}} if lab.raw is not None and isinstance(lab.raw.data, str) else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabelEntry:
        x1, y1, x2, y2 = (float(v) for v in data["box"])
        label = Label(
            x1=x1,
            y1=y1,
            x2=x2,
            y2=y2,
            name=str(data["name"]),
            difficult=bool(data.get("difficult", False)),
            truncated=bool(data.get("truncated", False)),
            raw=_raw_from_json(data.get("raw")),
        )
        return cls(label, Provenance.from_json(data.get("provenance") or {}))


def _raw_from_json(data: Any) -> RawRecord | None:
    """What a label file held for a label, as a journal or sidecar recorded it."""
    if isinstance(data, dict) and isinstance(data.get("fmt"), str) and isinstance(data.get("data"), str):
        return RawRecord(data["fmt"], data["data"])
    return None


@dataclass(frozen=True)
class DetectionKey:
    """A detection the user rejected: model, anchor, class, and where it was seen.

    The model is its file name and fingerprint (``model_id``, "" when unknown, as in records
    written before it was recorded). ``size`` is the inference size the detection was made
    at (0: unknown, as in records written before it was recorded) and ``box`` its box (xyxy,
    original-image pixels, rounded to 0.01 px; None: unknown). ``anchor_id`` is
    :data:`UNKNOWN_ANCHOR` when the detection was not shown (see
    :meth:`LabelDocument.delete_rows`). Which detections it hides: :func:`match_rejections`.
    """

    model_name: str
    anchor_id: int
    class_id: int
    model_id: str = ""
    size: int = 0
    box: Box | None = None

    def is_of(self, model_name: str, model_id: str) -> bool:
        """Whether this detection is of the model ``model_name`` with fingerprint
        ``model_id`` ("" when unknown): ``model.quality.is_same_model``."""
        return is_same_model(self.model_name, self.model_id, model_name=model_name, model_id=model_id)

    def to_json(self) -> dict[str, Any]:
        """The sidecar record; ``size`` and ``box`` only when known, so a record read from an
        older sidecar is written back as it was."""
        data: dict[str, Any] = {
            "model_name": self.model_name,
            "anchor_id": self.anchor_id,
            "class_id": self.class_id,
            "model_id": self.model_id,
        }
        if self.size:
            data["size"] = self.size
        if self.box is not None:
            data["box"] = list(self.box)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DetectionKey:
        box = data.get("box")
        if box is not None:
            box = tuple(float(v) for v in box)
            if len(box) != 4 or not all(math.isfinite(v) for v in box):
                raise ValueError(f"rejected detection box {box} is not 4 finite numbers")
        return cls(
            str(data["model_name"]),
            int(data["anchor_id"]),
            int(data["class_id"]),
            str(data.get("model_id") or ""),
            int(data.get("size") or 0),
            box,  # type: ignore[arg-type]
        )

    def sort_key(self) -> tuple[Any, ...]:
        return (self.model_name, self.model_id, self.size, self.anchor_id, self.class_id, self.box or ())


def rejections_of(rejected: Iterable[DetectionKey], *, model_name: str, model_id: str) -> frozenset[DetectionKey]:
    """The keys in ``rejected`` that are of the model ``model_name`` with fingerprint
    ``model_id`` (:meth:`DetectionKey.is_of`)."""
    return frozenset(k for k in rejected if k.is_of(model_name, model_id))


def match_rejections(rejected: Iterable[DetectionKey], detections: Detections, *, size: int) -> np.ndarray:
    """(K,) bool: which of ``detections`` (boxes xyxy in original-image pixels, made at
    inference size ``size``, 0 when unknown) a rejection in ``rejected`` hides. The keys
    must be of the detections' model already (:func:`rejections_of`).

    A rejection hides only the same detection, of its class:

    * recorded at the same inference size: the detection of its anchor (the network's
      output is the same, so the anchor id names the same detection);
    * recorded at another size, or either size unknown, with its box: the detection of its
      class whose box overlaps the recorded one most, if that IoU is >= SAME_DETECTION_IOU
      (0.7). One detection per rejection: a neighbour kept by a loose NMS stays shown;
    * recorded with neither size nor box (sidecars written before they were): the detection
      of its anchor, as before;
    * recorded at another known size without a box: none (its anchor id means nothing here).
    """
    num_dets = len(detections)
    hidden = np.zeros(num_dets, bool)
    if num_dets == 0:
        return hidden
    class_ids = np.asarray(detections.class_ids).tolist()
    by_anchor: set[tuple[int, int]] = set()
    by_box: list[DetectionKey] = []
    for key in rejected:
        if (key.size > 0 and key.size == size) or (key.box is None and not (key.size and size)):
            by_anchor.add((key.anchor_id, key.class_id))
        elif key.box is not None:
            by_box.append(key)
    if by_anchor:  # (anchor, class) pairs as Python ints, like DetectionKey's
        pairs = zip(np.asarray(detections.anchor_ids).tolist(), class_ids, strict=True)
        hidden |= np.fromiter((pair in by_anchor for pair in pairs), bool, count=num_dets)
    if by_box:
        det_class_ids = np.asarray(class_ids, np.int64)
        ious = iou_matrix(np.asarray([k.box for k in by_box], np.float32), np.asarray(detections.boxes, np.float32))
        ious[np.asarray([k.class_id for k in by_box], np.int64)[:, None] != det_class_ids[None, :]] = -1.0
        best = ious.argmax(axis=1)  # detections are sorted by score: ties go to the higher score
        found = ious[np.arange(len(by_box)), best] >= SAME_DETECTION_IOU
        hidden[best[found]] = True
    return hidden


def state_to_json(entries: Sequence[LabelEntry], rejected: Iterable[DetectionKey], *, verified: bool = False) -> dict[str, Any]:
    """The JSON-ready label state of one image (used by the sidecar and the journal)."""
    return {
        "version": STATE_VERSION,
        "labels": [e.to_json() for e in entries],
        "rejected": [k.to_json() for k in sorted(rejected, key=DetectionKey.sort_key)],
        "verified": bool(verified),
    }


def verified_from_json(data: Any) -> bool | None:
    """The verified mark of a label state (:func:`state_to_json`); None when it has none
    (states written before it was recorded)."""
    value = data.get("verified") if isinstance(data, dict) else None
    return value if isinstance(value, bool) else None


def state_from_json(data: dict[str, Any]) -> tuple[list[LabelEntry], frozenset[DetectionKey]]:
    """Inverse of :func:`state_to_json`; raises ``ValueError``/``KeyError``/``TypeError``
    on a malformed state."""
    if not isinstance(data, dict) or not isinstance(data.get("labels", []), list):
        raise ValueError("not a label state object")
    try:
        entries = [LabelEntry.from_json(d) for d in data.get("labels", [])]
        rejected = frozenset(DetectionKey.from_json(d) for d in data.get("rejected", []))
    except (AttributeError, OverflowError) as exc:  # e.g. a list where an object belongs, a 1e400
        raise ValueError(f"malformed label state ({exc})") from None
    for entry in entries:
        if not all(math.isfinite(v) for v in entry.box):
            raise ValueError(f"label box {entry.box} is not finite")
    return entries, rejected


def sidecar_path(image_path: str | Path) -> Path:
    """``<folder>/.studio/<image file name>.json``: provenance and rejected detections."""
    image_path = Path(image_path)
    return image_path.parent / SIDECAR_DIR / f"{image_path.name}.json"


# --------------------------------------------------------------------------- project classes
class ProjectClasses(QObject):
    """The project's class list (order = class index = colour). Grows, never reorders.

    Seed it from the model's class names; the class picker and loaded label files add to it.
    """

    class_added = Signal(str)

    def __init__(self, names: Iterable[str] = (), parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._names: list[str] = []
        self._index: dict[str, int] = {}
        self.extend(names)

    @property
    def names(self) -> list[str]:
        """A copy of the class names, in index order."""
        return list(self._names)

    def add(self, name: str) -> int:
        """Add ``name`` (stripped) if new; returns its index. Emits ``class_added`` once."""
        name = name.strip()
        if not name:
            raise ValueError("a class name cannot be empty")
        if name in self._index:
            return self._index[name]
        self._index[name] = len(self._names)
        self._names.append(name)
        self.class_added.emit(name)
        return self._index[name]

    def extend(self, names: Iterable[str]) -> None:
        for name in names:
            if name.strip():
                self.add(name)

    def index(self, name: str) -> int:
        """Index of ``name``, or -1 when it is not a project class."""
        return self._index.get(name, -1)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __len__(self) -> int:
        return len(self._names)


# --------------------------------------------------------------------------- the document
class LabelDocument(QObject):
    """The labels of one image, their provenance, its detections, and the undo stack.

    Boxes are xyxy in original-image pixels. Every edit is a command on :attr:`undo_stack`
    (the document is dirty while the stack is not clean). Signals:

    * ``changed()`` — anything shown changed (labels, detections, rejections);
    * ``labels_changed(rows)`` — labels changed; ``rows`` are the labels the edit touched
      (a view may select them; empty after deletes and loads);
    * ``detections_changed()`` — detections or the rejected set changed;
    * ``dirty_changed(bool)``;
    * ``verified_changed(bool)`` — the image's verified mark changed.
    """

    changed = Signal()
    labels_changed = Signal(list)
    detections_changed = Signal()
    dirty_changed = Signal(bool)
    verified_changed = Signal(bool)

    def __init__(
        self,
        project: ProjectClasses | None = None,
        *,
        journal: Journal | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.project = project if project is not None else ProjectClasses(parent=self)
        self.journal = journal
        self.undo_stack = QUndoStack(self)  # undo limit 0 = unlimited
        self.image_path = ""
        self.image_size: tuple[int, int] = (0, 0)
        self.depth = 3
        self.fmt = "voc"
        #: Folder of the label files (None: next to the image, LabelImg's default).
        self.labels_dir: Path | None = None
        self._entries: list[LabelEntry] = []
        self._rejected: frozenset[DetectionKey] = frozenset()
        self._verified = False
        self._file: ImageLabels | None = None  # what the label file held (carried forward on save)
        self._saved: tuple[list[LabelEntry], frozenset[DetectionKey]] = ([], frozenset())
        self._saved_verified = False
        self._detections: Detections | None = None
        self._detection_class_names: list[str] = []
        self._model_name = ""
        self._model_id = ""
        self._detection_size = 0
        self._loading = False
        self.load_error: LabelFormatError | None = None
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)
        self.undo_stack.indexChanged.connect(self._sync_journal)

    # ------------------------------------------------------------------ reading state
    def label_count(self) -> int:
        return len(self._entries)

    def entry(self, row: int) -> LabelEntry:
        return self._entries[row]

    def entries(self) -> list[LabelEntry]:
        return list(self._entries)

    def labels(self) -> list[Label]:
        """Copies of the labels, in order (xyxy boxes in original-image pixels)."""
        return [dataclasses.replace(e.label) for e in self._entries]

    def boxes(self) -> np.ndarray:
        """(N, 4) float32 xyxy label boxes."""
        return np.asarray([e.box for e in self._entries], dtype=np.float32).reshape(-1, 4)

    def provenance(self, row: int) -> Provenance:
        return self._entries[row].provenance

    def rejected_keys(self) -> frozenset[DetectionKey]:
        return self._rejected

    def is_dirty(self) -> bool:
        return not self.undo_stack.isClean()

    def label_file(self) -> Path:
        """Where :meth:`save` writes (and :meth:`load` read) this image's labels."""
        return get_format(self.fmt).label_path_for(self.image_path, self.labels_dir)

    @property
    def verified(self) -> bool:
        """LabelImg's review mark of this image (VOC ``<annotation verified="yes">``)."""
        return self._verified

    def set_verified(self, verified: bool) -> None:
        """Mark the image verified (reviewed) or not, as an undoable edit (LabelImg: Space)."""
        if bool(verified) != self._verified:
            self.push(commands.SetVerified(self, bool(verified)))

    def toggle_verified(self) -> None:
        self.set_verified(not self._verified)

    # ------------------------------------------------------------------ load / save
    def load(
        self, image_path: str | Path, image_size: tuple[int, int], fmt: str = "voc", *, labels_dir: str | Path | None = None
    ) -> None:
        """Show ``image_path`` (size ``(width, height)`` after EXIF orientation) with the
        labels found for it in format ``fmt`` (none when there is no file yet), in
        ``labels_dir`` (None: next to the image). The verified mark comes from the file
        (VOC, COCO) or the sidecar (YOLO has no place for it).

        Raises :class:`LabelFormatError` naming the file and the problem when the label
        file is malformed: the document then holds no labels, keeps the error in
        :attr:`load_error` and refuses to save over that file. The undo stack is cleared.
        """
        label_format = get_format(fmt)
        width, height = (int(v) for v in image_size)
        if width <= 0 or height <= 0:
            raise ValueError(f"image size must be positive, got {image_size}")
        self._loading = True
        try:
            self.image_path = os.path.abspath(os.fspath(image_path))
            self.image_size = (width, height)
            self.fmt = fmt
            self.labels_dir = Path(labels_dir) if labels_dir is not None else None
            self._detections = None
            self.load_error = None
            self._file = None
            self._saved = ([], frozenset())
            self._saved_verified = False
            self.raw_set_state([], frozenset())
            self.raw_set_verified(False)
            self.undo_stack.clear()
            try:
                self._file = label_format.read_image(
                    self.image_path, width=width, height=height, labels_dir=self.labels_dir, class_names=self.project.names
                )
                if self._file is not None:  # the class list kept with the labels (YOLO's classes.txt)
                    self.project.extend(label_format.class_list(Path(self.image_path).parent, self.labels_dir))
            except LabelFormatError as exc:
                self.load_error = exc
                raise
            labels = list(self._file.labels) if self._file is not None else []
            if self._file is not None and self._file.depth > 0:
                self.depth = self._file.depth
            self.project.extend(lab.name for lab in labels)
            sidecar = _read_sidecar_json(self.image_path)
            entries, rejected = _attach_provenance(labels, _state_or_empty(sidecar, self.image_path))
            if not label_format.keeps_verified or self._file is None:
                verified = bool(verified_from_json(sidecar)) and self._file is not None
            else:
                verified = self._file.verified
            self._saved = (entries, rejected)
            self._saved_verified = verified
            self.raw_set_state(entries, rejected)
            self.raw_set_verified(verified)
        finally:
            self._loading = False

    def save(self) -> Path:
        """Write the labels atomically in :attr:`fmt` (plus the provenance sidecar) and mark
        the undo stack clean; clears this image's journal. Returns the label file.

        Raises :class:`LabelWriteError` when the file cannot be written (nothing is lost:
        the old file stays whole and the document stays dirty)."""
        if not self.image_path:
            raise LabelWriteError(None, "no image is open")
        if self.load_error is not None:
            raise LabelWriteError(
                self.label_file(),
                f"not saved: the existing file could not be read ({self.load_error.problem}); fix or remove it first",
            )
        width, height = self.image_size
        labels = [e.label for e in self._entries]
        self.project.extend(lab.name for lab in labels)
        try:
            if self.labels_dir is not None:
                self.labels_dir.mkdir(parents=True, exist_ok=True)
            label_format = get_format(self.fmt)
            item = ImageLabels(
                self.image_path,
                width,
                height,
                self.depth,
                labels=list(labels),
                verified=self._verified,
                source=self._file.source if self._file is not None else None,
            )
            path = label_format.write_image(item, labels_dir=self.labels_dir, class_names=self.project.names)
            sidecar = sidecar_path(self.image_path)
            sidecar.parent.mkdir(exist_ok=True)
            state = {"image": Path(self.image_path).name, **state_to_json(self._entries, self._rejected, verified=self._verified)}
            atomic_write_text(sidecar, json.dumps(state, indent=1))
        except LabelWriteError:
            raise
        except OSError as exc:
            raise LabelWriteError(self.image_path, f"cannot save labels: {exc}") from exc
        self._file = ImageLabels(
            self.image_path, width, height, self.depth, labels=list(labels), verified=self._verified, source=label_format.saved_source(path)
        )
        self._saved = (list(self._entries), self._rejected)
        self._saved_verified = self._verified
        self.undo_stack.setClean()
        if self.journal is not None:
            self.journal.clear(self.image_path)
        return path

    def discard(self) -> None:
        """Drop unsaved edits: back to the last loaded/saved labels, empty undo history,
        and this image's journal entry cleared."""
        self._loading = True
        try:
            self.raw_set_state(*self._saved)
            self.raw_set_verified(self._saved_verified)
            self.undo_stack.clear()
        finally:
            self._loading = False
        if self.journal is not None and self.image_path:
            self.journal.clear(self.image_path)

    def recover(self) -> bool:
        """Apply unsaved edits of this image found in the journal (after a crash), as one
        undoable command; the document becomes dirty. Returns whether anything changed."""
        if self.journal is None or not self.image_path:
            return False
        state = self.journal.pending_state(self.image_path)
        if state is None:
            return False
        try:
            entries, rejected = state_from_json(state)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable journal state for %s: %s", self.image_path, exc)
            return False
        recorded = verified_from_json(state)
        verified = self._verified if recorded is None else recorded
        if entries == self._entries and rejected == self._rejected and verified == self._verified:
            return False
        self.project.extend(e.label.name for e in entries)
        self.undo_stack.push(commands.ReplaceAllLabels(self, entries, rejected, verified=verified))
        return True

    def state(self) -> dict[str, Any]:
        """JSON-ready snapshot of labels, provenance, rejected detections and the verified mark."""
        return state_to_json(self._entries, self._rejected, verified=self._verified)

    # ------------------------------------------------------------------ edits (undoable)
    def push(self, command: QUndoCommand) -> None:
        """Run ``command`` and put it on the undo stack."""
        self.undo_stack.push(command)

    def add_box(self, box: Box, name: str, *, text: str = "Add Box") -> None:
        """Add a hand-drawn label ``box`` (xyxy) of class ``name``."""
        self.project.add(name)
        label = Label(x1=float(box[0]), y1=float(box[1]), x2=float(box[2]), y2=float(box[3]), name=name)
        self.push(commands.AddLabels(self, [LabelEntry(label, Provenance())], text=text))

    def delete_rows(self, rows: Iterable[int]) -> None:
        """Delete the labels at ``rows``, as one command. A label that is an unedited
        acceptance of the current model's detection was reviewed and found wrong: its
        detection is rejected in the same step (:meth:`rejection_for`), so it does not come
        back as a suggestion and the quality dock counts the image as reviewed. Deleting a
        drawn or edited label rejects nothing."""
        rows = sorted(set(rows))
        if rows:
            keys = [key for key in (self.rejection_for(r) for r in rows) if key is not None]
            text = "Delete Box" if len(rows) == 1 else "Delete Boxes"
            self.push(commands.RemoveLabels(self, rows, rejected=keys, text=text))

    def set_boxes(self, rows: Sequence[int], boxes: Sequence[Box], *, text: str = "Move Boxes") -> None:
        """Give the labels at ``rows`` new ``boxes`` (xyxy), as one command (no-op if equal)."""
        pairs = [(r, tuple(float(v) for v in b)) for r, b in zip(rows, boxes, strict=True)]
        pairs = [(r, b) for r, b in pairs if b != self._entries[r].box]
        if pairs:
            self.push(commands.MoveResizeLabels(self, [r for r, _ in pairs], [b for _, b in pairs], text=text))

    def relabel(self, rows: Iterable[int], name: str) -> None:
        rows = [r for r in sorted(set(rows)) if self._entries[r].label.name != name]
        if rows:
            self.project.add(name)
            self.push(commands.RelabelLabels(self, rows, name))

    def duplicate(self, rows: Iterable[int], *, offset: float = 10.0) -> None:
        """Copy the labels at ``rows``, shifted by ``offset`` px right and down (kept inside
        the image); the copies count as drawn."""
        rows = sorted(set(rows))
        if not rows:
            return
        width, height = self.image_size
        boxes = translate_boxes([self._entries[r].box for r in rows], dx=offset, dy=offset, width=width, height=height)
        copies = [
            LabelEntry(dataclasses.replace(self._entries[r].label), Provenance()).with_box(b)
            for r, b in zip(rows, boxes, strict=True)
        ]
        self.push(commands.AddLabels(self, copies, text="Duplicate Box" if len(rows) == 1 else "Duplicate Boxes"))

    # ------------------------------------------------------------------ detections
    @property
    def detections(self) -> Detections | None:
        return self._detections

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def model_id(self) -> str:
        """Fingerprint of the model the detections come from ("" when not given)."""
        return self._model_id

    @property
    def detection_size(self) -> int:
        """Inference size the current detections were made at (0: not given)."""
        return self._detection_size

    @property
    def detection_class_names(self) -> list[str]:
        return list(self._detection_class_names)

    def set_detections(
        self,
        detections: Detections | None,
        *,
        class_names: Sequence[str],
        model_name: str,
        model_id: str = "",
        size: int = 0,
    ) -> None:
        """Show ``detections`` (boxes xyxy in original-image pixels; ``class_ids`` index
        ``class_names``) from model ``model_name`` (file name) with fingerprint ``model_id``
        (``model.quality.model_fingerprint``), made at inference size ``size`` (0: unknown;
        rejections are then matched by box, :func:`match_rejections`). The model is recorded
        with accepted detections, model and size with rejected ones. Not an edit: no undo,
        not dirty."""
        self._detections = detections
        self._detection_class_names = list(class_names)
        self._model_name = model_name
        self._model_id = model_id
        self._detection_size = max(int(size), 0)
        self.detections_changed.emit()
        self.changed.emit()

    def detection_name(self, i: int) -> str:
        """Class name of detection ``i`` of the current detections."""
        assert self._detections is not None
        return self._class_name(int(self._detections.class_ids[i]))

    def detection_key(self, detections: Detections, i: int, model_name: str) -> DetectionKey:
        """The key of detection ``i`` of ``detections`` from model ``model_name``: its anchor,
        class and box, with the current model's fingerprint and inference size when these
        are the current detections of the current model."""
        box = tuple(round(float(v), 2) for v in detections.boxes[i])
        return DetectionKey(
            model_name,
            int(detections.anchor_ids[i]),
            int(detections.class_ids[i]),
            self._model_id_of(model_name),
            self._size_of(detections, model_name),
            box,  # type: ignore[arg-type]
        )

    def is_rejected(self, i: int) -> bool:
        """Whether a rejection on this image hides detection ``i`` of the current detections
        (same model and class, and the same detection: :func:`match_rejections`)."""
        if self._detections is None:
            raise IndexError("no detections are shown")
        hidden = self._rejected_mask(self._detections, self._model_name)
        return hidden is not None and bool(hidden[i])

    def rejection_for(self, row: int) -> DetectionKey | None:
        """The detection to reject when the label at ``row`` is deleted: when the label is
        an unedited acceptance of a detection of the current model, that detection (the
        shown one of its class whose box overlaps its original box most, IoU >=
        SAME_DETECTION_IOU; when none is shown, the original box with no anchor or size);
        None for a drawn, edited or file label, another model's, or with no model shown."""
        provenance = self._entries[row].provenance
        if provenance.unedited_acceptance() is None or not self._model_name:
            return None
        if not is_same_model(
            provenance.model_name, provenance.model_id, model_name=self._model_name, model_id=self._model_id
        ):
            return None
        names = self._detection_class_names or self.project.names
        name = provenance.original_name or self._entries[row].label.name
        if name not in names:
            return None
        class_id = names.index(name)
        box = provenance.original_box or self._entries[row].box
        dets = self._detections
        if dets is not None and len(dets):
            ious = iou_matrix(np.asarray([box], np.float32), np.asarray(dets.boxes, np.float32))[0]
            ious[np.asarray(dets.class_ids) != class_id] = -1.0
            best = int(ious.argmax())
            if ious[best] >= SAME_DETECTION_IOU:
                return self.detection_key(dets, best, self._model_name)
        rounded = tuple(round(float(v), 2) for v in box)
        return DetectionKey(self._model_name, UNKNOWN_ANCHOR, class_id, self._model_id, 0, rounded)  # type: ignore[arg-type]

    def visible_detection_indices(self) -> list[int]:
        """Indices of the current detections to draw: not rejected, and not already a label
        (IoU > 0.9 with a label of any class: a relabelled detection stays hidden)."""
        dets = self._detections
        if dets is None or len(dets) == 0:
            return []
        hidden = self._rejected_mask(dets, self._model_name)
        if hidden is not None:
            keep = np.flatnonzero(~hidden).tolist()
        else:  # runs on every slider step: no matching when nothing of this model is rejected
            keep = list(range(len(dets)))
        if not keep or not self._entries:
            return keep
        det_boxes = np.round(np.asarray(dets.boxes, dtype=np.float32)[keep])
        labelled = iou_matrix(det_boxes, self.boxes()).max(axis=1) > ALREADY_LABELLED_IOU
        return [i for i, done in zip(keep, labelled, strict=True) if not done]

    def accept_detection(self, detections: Detections, i: int, model_name: str) -> None:
        """Turn detection ``i`` into a label (box rounded to whole pixels, clamped to the
        image; provenance records the model, score and original box). Undoable."""
        self.push(commands.AcceptDetections(self, [self._entry_from_detection(detections, i, model_name)]))

    def accept_all(self, detections: Detections, score_thresh: float, model_name: str) -> int:
        """Accept every detection with score >= ``score_thresh`` that is not rejected and not
        already a label (IoU > 0.9 with any label, or with a higher-scoring detection
        accepted in the same call), as ONE undo command. Returns how many were accepted."""
        order = np.argsort(-np.asarray(detections.scores, dtype=np.float32), kind="stable")
        taken = [e.box for e in self._entries]
        hidden = self._rejected_mask(detections, model_name)
        accepted: list[LabelEntry] = []
        for i in order:
            i = int(i)
            if float(detections.scores[i]) < score_thresh:
                break
            if hidden is not None and hidden[i]:
                continue
            entry = self._entry_from_detection(detections, i, model_name)
            if taken and float(iou_matrix(np.asarray([entry.box]), np.asarray(taken)).max()) > ALREADY_LABELLED_IOU:
                continue
            taken.append(entry.box)
            accepted.append(entry)
        if accepted:
            self.push(commands.AcceptDetections(self, accepted))
        return len(accepted)

    def reject_detection(self, i: int) -> None:
        """Hide detection ``i`` of the current detections for this image (saved in the
        sidecar; undoable)."""
        if self._detections is None:
            raise IndexError("no detections are shown")
        if not self.is_rejected(i):
            self.push(commands.RejectDetections(self, [self.detection_key(self._detections, i, self._model_name)]))

    def _model_id_of(self, model_name: str) -> str:
        """The fingerprint of model ``model_name``: the current model's, "" for another."""
        return self._model_id if model_name == self._model_name else ""

    def _size_of(self, detections: Detections, model_name: str) -> int:
        """The inference size of ``detections`` of model ``model_name``: known for the
        current detections only (0: unknown)."""
        return self._detection_size if detections is self._detections and model_name == self._model_name else 0

    def _rejected_mask(self, detections: Detections, model_name: str) -> np.ndarray | None:
        """(K,) bool: the ``detections`` of model ``model_name`` that a rejection hides
        (None: no rejection of that model here)."""
        keys = rejections_of(self._rejected, model_name=model_name, model_id=self._model_id_of(model_name))
        if not keys:
            return None
        return match_rejections(keys, detections, size=self._size_of(detections, model_name))

    def _class_name(self, class_id: int) -> str:
        names = self._detection_class_names or self.project.names
        return names[class_id] if 0 <= class_id < len(names) else f"class_{class_id}"

    def _entry_from_detection(self, detections: Detections, i: int, model_name: str) -> LabelEntry:
        raw = tuple(float(v) for v in detections.boxes[i])
        width, height = self.image_size
        box = clamp_box(tuple(float(round(v)) for v in raw), width=width, height=height)  # type: ignore[arg-type]
        name = self._class_name(int(detections.class_ids[i]))
        self.project.add(name)
        label = Label(x1=box[0], y1=box[1], x2=box[2], y2=box[3], name=name)
        prov = Provenance(
            source=MODEL,
            model_name=model_name,
            score=float(detections.scores[i]),
            original_box=raw,  # type: ignore[arg-type]
            original_name=name,
            model_id=self._model_id_of(model_name),
        )
        return LabelEntry(label, prov)

    # ------------------------------------------------------------------ raw mutation
    # Used by app.labelling.commands only: everything else edits through commands so it is undoable.
    def raw_insert(self, rows: Sequence[int], entries: Sequence[LabelEntry]) -> None:
        """Insert ``entries`` so that they end up at ``rows`` (ascending)."""
        for row, entry in zip(rows, entries, strict=True):
            self._entries.insert(row, entry)
        self._emit_labels(list(rows))

    def raw_remove(self, rows: Sequence[int]) -> None:
        for row in sorted(rows, reverse=True):
            del self._entries[row]
        self._emit_labels([])

    def raw_replace(self, rows: Sequence[int], entries: Sequence[LabelEntry]) -> None:
        for row, entry in zip(rows, entries, strict=True):
            self._entries[row] = entry
        self._emit_labels(list(rows))

    def raw_set_rejected(self, keys: frozenset[DetectionKey]) -> None:
        self._rejected = frozenset(keys)
        self.detections_changed.emit()
        self.changed.emit()

    def raw_set_state(self, entries: Sequence[LabelEntry], rejected: frozenset[DetectionKey]) -> None:
        self._entries = list(entries)
        self._rejected = frozenset(rejected)
        self.detections_changed.emit()
        self._emit_labels([])

    def raw_set_verified(self, verified: bool) -> None:
        if bool(verified) != self._verified:
            self._verified = bool(verified)
            self.verified_changed.emit(self._verified)
            self.changed.emit()

    def _emit_labels(self, rows: list[int]) -> None:
        self.labels_changed.emit(rows)
        self.changed.emit()

    def _on_clean_changed(self, clean: bool) -> None:
        self.dirty_changed.emit(not clean)

    def _sync_journal(self, _index: int) -> None:
        if self._loading or self.journal is None or not self.image_path:
            return
        if self.undo_stack.isClean():
            self.journal.clear(self.image_path)
        else:
            self.journal.record(self.image_path, self.state())


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
    sidecar, as :meth:`LabelDocument.load` pairs them; ``FILE`` where there is no record.
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


__all__ = [
    "ALREADY_LABELLED_IOU",
    "DRAWN",
    "FILE",
    "MODEL",
    "SAME_DETECTION_IOU",
    "UNKNOWN_ANCHOR",
    "DetectionKey",
    "LabelDocument",
    "LabelEntry",
    "LabelFormatError",
    "ProjectClasses",
    "Provenance",
    "match_rejections",
    "rejections_of",
    "saved_provenance",
    "saved_provenance_and_rejections",
    "sidecar_path",
    "state_from_json",
    "state_to_json",
    "verified_from_json",
]
