"""One image's labels as an observable document: the model the canvas draws.

:class:`LabelDocument` holds the labels of one image (``model.labels.Label``, boxes xyxy in
original-image pixels after EXIF orientation) with the provenance of each, the current
detections of that image and the ones the user rejected, and a QUndoStack through which
every edit goes. Views observe its signals; no widget owns labels.

Around it, in modules below it: the plain values it holds (:mod:`app.labelling.entries`),
the undo commands that edit it (:mod:`app.labelling.commands`), the detections it shows
against its labels and rejections (:mod:`app.labelling.detections`), and its files, the
label file in the chosen format and the provenance sidecar (:mod:`app.labelling.label_files`).
The crash journal (:mod:`app.labelling.journal`) sits above it: the document records its
unsaved states in any :class:`EditJournal`.

The image's *verified* mark (LabelImg's review flag) is toggled through the undo stack like
any edit. Deleting a label that is an unedited acceptance of the current model's detection
rejects that detection in the same undo step (:meth:`LabelDocument.delete_rows`): the
review says "this detection is wrong", and the detection must not come back as a suggestion.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from app.labelling import commands, label_files
from app.labelling.detections import ShownDetections
from app.labelling.entries import DetectionKey, LabelEntry, Provenance, state_from_json, state_to_json, verified_from_json
from app.labelling.geometry import Box, translate_boxes
from app.labelling.label_files import SavedLabels
from model.errors import LabelFormatError, LabelWriteError
from model.labels import Label, get_format

if TYPE_CHECKING:
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


class EditJournal(Protocol):
    """Where a document records its unsaved states for crash recovery
    (:class:`app.labelling.journal.Journal`)."""

    def record(self, image_path: str | Path, state: dict[str, Any]) -> None: ...

    def clear(self, image_path: str | Path) -> None: ...

    def pending_state(self, image_path: str | Path) -> dict[str, Any] | None: ...


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

    def __init__(self, project: ProjectClasses | None = None, *, journal: EditJournal | None = None, parent: QObject | None = None) -> None:
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
        self._saved = SavedLabels()  # what the files held when last read or written
        self._shown = ShownDetections()
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
            self._shown = dataclasses.replace(self._shown, detections=None)
            self.load_error = None
            self._saved = SavedLabels()
            self._show_saved()
            self.undo_stack.clear()
            try:
                self._saved, class_list = label_files.read_labels(
                    label_format, self.image_path, size=self.image_size, labels_dir=self.labels_dir, class_names=self.project.names
                )
            except LabelFormatError as exc:
                self.load_error = exc
                raise
            self.project.extend(class_list)  # the class list kept with the labels (YOLO's classes.txt)
            if self._saved.file is not None and self._saved.file.depth > 0:
                self.depth = self._saved.file.depth
            self.project.extend(e.label.name for e in self._saved.entries)
            self._show_saved()
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
        self.project.extend(e.label.name for e in self._entries)
        path, self._saved = label_files.write_labels(
            self.image_path,
            self._entries,
            self._rejected,
            fmt=self.fmt,
            size=self.image_size,
            depth=self.depth,
            verified=self._verified,
            labels_dir=self.labels_dir,
            class_names=self.project.names,
            previous=self._saved.file,
        )
        self.undo_stack.setClean()
        if self.journal is not None:
            self.journal.clear(self.image_path)
        return path

    def discard(self) -> None:
        """Drop unsaved edits: back to the last loaded/saved labels, empty undo history,
        and this image's journal entry cleared."""
        self._loading = True
        try:
            self._show_saved()
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

    def _show_saved(self) -> None:
        """Show what the files held when last read or written (no undo)."""
        self.raw_set_state(self._saved.entries, self._saved.rejected)
        self.raw_set_verified(self._saved.verified)

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
        return self._shown.detections

    @property
    def model_name(self) -> str:
        return self._shown.model_name

    @property
    def model_id(self) -> str:
        """Fingerprint of the model the detections come from ("" when not given)."""
        return self._shown.model_id

    @property
    def detection_size(self) -> int:
        """Inference size the current detections were made at (0: not given)."""
        return self._shown.size

    @property
    def detection_class_names(self) -> list[str]:
        return list(self._shown.class_names)

    def set_detections(
        self, detections: Detections | None, *, class_names: Sequence[str], model_name: str, model_id: str = "", size: int = 0
    ) -> None:
        """Show ``detections`` (boxes xyxy in original-image pixels; ``class_ids`` index
        ``class_names``) from model ``model_name`` (file name) with fingerprint ``model_id``
        (``model.quality.model_fingerprint``), made at inference size ``size`` (0: unknown;
        rejections are then matched by box, :func:`app.labelling.detections.match_rejections`).
        The model is recorded with accepted detections, model and size with rejected ones.
        Not an edit: no undo, not dirty."""
        self._shown = ShownDetections(detections, tuple(class_names), model_name, model_id, max(int(size), 0))
        self.detections_changed.emit()
        self.changed.emit()

    def detection_name(self, i: int) -> str:
        """Class name of detection ``i`` of the current detections."""
        assert self._shown.detections is not None
        return self._shown.class_name(int(self._shown.detections.class_ids[i]), self.project.names)

    def detection_key(self, detections: Detections, i: int, model_name: str) -> DetectionKey:
        """The key of detection ``i`` of ``detections`` from model ``model_name``: its anchor,
        class and box, with the current model's fingerprint and inference size when these
        are the current detections of the current model."""
        return self._shown.key(detections, i, model_name)

    def is_rejected(self, i: int) -> bool:
        """Whether a rejection on this image hides detection ``i`` of the current detections
        (same model and class, and the same detection: :func:`app.labelling.detections.match_rejections`)."""
        return self._shown.is_rejected(self._rejected, i)

    def rejection_for(self, row: int) -> DetectionKey | None:
        """The detection to reject when the label at ``row`` is deleted (an unedited
        acceptance of a detection of the current model):
        :meth:`app.labelling.detections.ShownDetections.rejection_for`."""
        return self._shown.rejection_for(self._entries[row], self.project.names)

    def visible_detection_indices(self) -> list[int]:
        """Indices of the current detections to draw: not rejected, and not already a label
        (IoU > 0.9 with a label of any class: a relabelled detection stays hidden)."""
        return self._shown.visible_indices(self._rejected, self.boxes())

    def accept_detection(self, detections: Detections, i: int, model_name: str) -> None:
        """Turn detection ``i`` into a label (box rounded to whole pixels, clamped to the
        image; provenance records the model, score and original box). Undoable."""
        name = self._project_class(int(detections.class_ids[i]))
        entry = self._shown.entry(detections, i, model_name, name=name, image_size=self.image_size)
        self.push(commands.AcceptDetections(self, [entry]))

    def accept_all(self, detections: Detections, score_thresh: float, model_name: str) -> int:
        """Accept every detection with score >= ``score_thresh`` that is not rejected and not
        already a label (IoU > 0.9 with any label, or with a higher-scoring detection
        accepted in the same call), as ONE undo command. Returns how many were accepted."""
        taken = [e.box for e in self._entries]
        accepted = self._shown.to_accept(
            detections, score_thresh, model_name, rejected=self._rejected, taken=taken, image_size=self.image_size, name_of=self._project_class
        )
        if accepted:
            self.push(commands.AcceptDetections(self, accepted))
        return len(accepted)

    def reject_detection(self, i: int) -> None:
        """Hide detection ``i`` of the current detections for this image (saved in the
        sidecar; undoable)."""
        shown = self._shown
        if shown.detections is None:
            raise IndexError("no detections are shown")
        if not self.is_rejected(i):
            self.push(commands.RejectDetections(self, [shown.key(shown.detections, i, shown.model_name)]))

    def _project_class(self, class_id: int) -> str:
        """The name of detection class ``class_id``, added to the project (an accepted detection's class)."""
        name = self._shown.class_name(class_id, self.project.names)
        self.project.add(name)
        return name

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


__all__ = ["PYSIDE_EMIT_GUARD", "EditJournal", "LabelDocument", "ProjectClasses"]
