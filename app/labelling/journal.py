"""Crash recovery: an append-only journal of unsaved label edits, one file per image folder.

Every undo-stack change of a dirty document appends one JSON line holding that image's full
label state (labels, provenance, rejected detections), then flushes and fsyncs. Saving or
discarding an image appends a "cleared" line (or, when nothing stays pending, removes the
file). On the next start :meth:`Journal.pending` lists the images with unsaved edits, so the
app can offer to recover them (:meth:`app.labelling.document.LabelDocument.recover`).

A kill can tear the last line: unreadable lines are skipped, and the next append starts on
a fresh line. Boxes in the states are xyxy in original-image pixels.

Lines: ``{"image": path, "state": {...}}`` or ``{"image": path, "cleared": true}``.

:class:`LabelSession` is the window-level glue built on it: a document per shown image,
recovery on open, and the Save / Discard / Cancel prompt before leaving unsaved labels.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QStandardPaths, Signal
from PySide6.QtGui import QImage, QUndoGroup
from PySide6.QtWidgets import QMessageBox, QWidget

from app.labelling.document import LabelDocument, ProjectClasses
from app.labelling.entries import state_from_json
from model.errors import LabelFormatError, LabelWriteError
from model.labels import FORMATS, Label, atomic_write_bytes, get_format

log = logging.getLogger(__name__)

#: Rewrite the journal with only the pending states once it holds this many superseded bytes.
COMPACT_BYTES = 8 * 1024 * 1024


def default_journal_root() -> Path:
    """``<AppLocalDataLocation>/journal`` (e.g. ~/.local/share/RetinaNetStudio/<app>/journal)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    if not base:
        base = str(Path.home() / ".local" / "share" / "retinanet-studio")
    return Path(base) / "journal"


class Journal:
    """The edit journal of one image folder.

    ``root`` is where journals live (default :func:`default_journal_root`; tests pass a temp
    folder); the file is ``root/<hash of the folder path>.jsonl``. One Journal object serves
    every document of the folder. Write failures are logged, never raised: the journal is a
    safety net and must not stop editing.
    """

    def __init__(self, folder: str | Path, *, root: str | Path | None = None) -> None:
        self.folder = os.path.abspath(os.fspath(folder))
        root = Path(root) if root is not None else default_journal_root()
        digest = hashlib.sha1(self.folder.encode("utf-8")).hexdigest()[:16]
        self.path = root / f"{digest}.jsonl"
        self._pending: dict[str, dict[str, Any]] = {}
        self._live_bytes: dict[str, int] = {}  # image -> size of its latest state line
        self._file_bytes = 0
        self._fd: int | None = None
        self._read()

    # ------------------------------------------------------------------ queries
    def pending(self) -> dict[str, list[Label]]:
        """Images with unsaved edits -> their labels at the last recorded edit."""
        result: dict[str, list[Label]] = {}
        for image, state in self._pending.items():
            try:
                entries, _rejected = state_from_json(state)
            except (ValueError, KeyError, TypeError):
                continue
            result[image] = [e.label for e in entries]
        return result

    def pending_state(self, image_path: str | Path) -> dict[str, Any] | None:
        """The full last recorded state of ``image_path`` (see app.labelling.entries.state_to_json),
        or None when it has no unsaved edits."""
        return self._pending.get(os.path.abspath(os.fspath(image_path)))

    # ------------------------------------------------------------------ writes
    def record(self, image_path: str | Path, state: dict[str, Any]) -> None:
        """Append ``state`` as the latest unsaved state of ``image_path`` (fsynced)."""
        image = os.path.abspath(os.fspath(image_path))
        self._pending[image] = state
        self._live_bytes[image] = self._append({"image": image, "state": state})
        if self._file_bytes - sum(self._live_bytes.values()) > COMPACT_BYTES:
            self._compact()

    def clear(self, image_path: str | Path) -> None:
        """Forget ``image_path``'s unsaved state (it was saved or discarded)."""
        image = os.path.abspath(os.fspath(image_path))
        if self._pending.pop(image, None) is None:
            return
        self._live_bytes.pop(image, None)
        if self._pending:
            self._append({"image": image, "cleared": True})
        else:
            self._remove_file()

    def clear_all(self) -> None:
        """Forget everything (the user declined recovery)."""
        self._pending.clear()
        self._live_bytes.clear()
        self._remove_file()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:  # pragma: no cover - best effort
        with contextlib.suppress(OSError):
            self.close()

    # ------------------------------------------------------------------ internals
    def _read(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("%s: cannot read the edit journal (%s)", self.path, exc)
            return
        self._file_bytes = len(data)
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                image = str(record["image"])
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a kill
            if record.get("cleared"):
                self._pending.pop(image, None)
                self._live_bytes.pop(image, None)
            elif isinstance(record.get("state"), dict):
                self._pending[image] = record["state"]
                self._live_bytes[image] = len(line) + 1

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            size = os.fstat(fd).st_size
            if size:
                with open(self.path, "rb") as f:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":
                        os.write(fd, b"\n")  # a torn last line: start ours on a new one
            self._fd = fd
        return self._fd

    def _append(self, record: dict[str, Any]) -> int:
        """Append one line (one write() call, O_APPEND), fsync; returns its size."""
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")
        try:
            fd = self._open()
            os.write(fd, line)
            os.fsync(fd)
            self._file_bytes += len(line)
        except OSError as exc:
            log.warning("%s: cannot append to the edit journal (%s)", self.path, exc)
        return len(line)

    def _compact(self) -> None:
        lines = {
            image: json.dumps({"image": image, "state": state}, separators=(",", ":")) + "\n"
            for image, state in self._pending.items()
        }
        data = "".join(lines.values()).encode("utf-8")
        try:
            self.close()
            atomic_write_bytes(self.path, data)
            self._file_bytes = len(data)
            self._live_bytes = {i: len(line.encode("utf-8")) for i, line in lines.items()}
        except OSError as exc:
            log.warning("%s: cannot compact the edit journal (%s)", self.path, exc)

    def _remove_file(self) -> None:
        self.close()
        self._file_bytes = 0
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("%s: cannot remove the edit journal (%s)", self.path, exc)


# --------------------------------------------------------------------------- the session
#: ``ask(parent, document) -> "save" | "discard" | "cancel"`` before leaving a dirty image.
SavePrompt = Callable[[QWidget | None, LabelDocument], str]


def ask_save_changes(parent: QWidget | None, document: LabelDocument) -> str:
    """Save / Discard / Cancel dialog for the unsaved labels of ``document``."""
    buttons = QMessageBox.StandardButton
    answer = QMessageBox.question(
        parent,
        "Unsaved labels",
        f"Save the label changes of {Path(document.image_path).name}?",
        buttons.Save | buttons.Discard | buttons.Cancel,
        buttons.Save,
    )
    return {buttons.Save: "save", buttons.Discard: "discard"}.get(answer, "cancel")


class LabelSession(QObject):
    """Window-level glue: one class list, a journal per image folder, the shown document.

    Wire it into the main window::

        session = LabelSession(project, fmt="voc", parent=window)
        window.set_document_factory(session.document_for)   # (path, QImage) -> LabelDocument
        window.set_navigation_guard(session.confirm_leave)  # False: stay on this image
        session.offer_recovery(folder, window)               # once, when a folder opens
        undo = session.undo_group.createUndoAction(window)   # Edit menu, follows the image
        redo = session.undo_group.createRedoAction(window)

    ``document_for`` loads the image's labels (a malformed file: an error dialog, and the
    document refuses to save over it) and re-applies unsaved edits left by a crash;
    ``confirm_leave`` saves (``autosave``) or asks Save / Discard / Cancel when dirty.
    """

    document_changed = Signal(object)  # the new current LabelDocument

    def __init__(
        self,
        project: ProjectClasses,
        *,
        fmt: str = "voc",
        journal_root: str | Path | None = None,
        autosave: bool = False,
        ask: SavePrompt | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.project = project
        self.fmt = fmt
        self.autosave = autosave
        self._journal_root = journal_root
        self._ask = ask or ask_save_changes
        self._journals: dict[str, Journal] = {}
        self.current: LabelDocument | None = None
        #: The format the current document's labels were read from (see format_to_read).
        self.read_format = fmt
        #: Label folder per image folder (absolute paths); absent: next to the images.
        self.label_dirs: dict[str, Path] = {}
        #: Holds the shown document's undo stack: build Edit › Undo/Redo once from it.
        self.undo_group = QUndoGroup(self)

    def _parent_widget(self) -> QWidget | None:
        parent = self.parent()
        return parent if isinstance(parent, QWidget) else None

    def journal_for(self, folder: str | Path) -> Journal:
        key = os.path.abspath(os.fspath(folder))
        if key not in self._journals:
            self._journals[key] = Journal(key, root=self._journal_root)
        return self._journals[key]

    def offer_recovery(self, folder: str | Path, parent: QWidget | None = None) -> int:
        """If the last session left unsaved edits in ``folder``, ask whether to keep them
        (they come back as each image is shown) or drop them. Returns how many were kept."""
        journal = self.journal_for(folder)
        pending = journal.pending()
        if not pending:
            return 0
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            parent or self._parent_widget(),
            "Recover unsaved labels",
            f"{len(pending)} image(s) in {Path(folder).name} have label edits that were never saved "
            "(the app did not close normally). Recover them?",
            buttons.Yes | buttons.Discard,
            buttons.Yes,
        )
        if answer == buttons.Yes:
            return len(pending)
        journal.clear_all()
        return 0

    def document_for(self, image_path: str | Path, image: QImage) -> LabelDocument:
        """The document of ``image_path`` shown as ``image`` (its size is the EXIF-applied
        size): labels loaded, crash edits re-applied. Becomes :attr:`current`."""
        path = Path(image_path)
        document = LabelDocument(self.project, journal=self.journal_for(path.parent), parent=self)
        self.read_format = self.format_to_read(path)
        try:
            document.load(path, (image.width(), image.height()), self.read_format, labels_dir=self.label_dir_for(path.parent))
        except LabelFormatError as exc:
            QMessageBox.warning(self._parent_widget(), "Cannot read labels", str(exc))
        document.fmt = self.fmt  # saved in the chosen format, wherever the labels came from
        document.recover()
        self.undo_group.addStack(document.undo_stack)
        self.undo_group.setActiveStack(document.undo_stack)
        if self.current is not None:
            self.current.deleteLater()
        self.current = document
        self.document_changed.emit(document)
        return document

    def format_to_read(self, image_path: str | Path) -> str:
        """The format to read ``image_path``'s labels from: the chosen one (:attr:`fmt`)
        when it has a file for the image, else another format that has one (as LabelImg
        reads whichever file it finds; YOLO only with a ``classes.txt``, COCO last)."""
        path = Path(image_path)
        labels_dir = self.label_dir_for(path.parent)
        if get_format(self.fmt).label_path_for(path, labels_dir).is_file():
            return self.fmt
        for name, other in FORMATS.items():  # registry order: VOC, YOLO, COCO
            if name != self.fmt and other.can_read(path, labels_dir):
                return name
        return self.fmt

    def label_dir_for(self, image_folder: str | Path) -> Path | None:
        """The label folder of the images in ``image_folder`` (None: next to them)."""
        return self.label_dirs.get(os.path.abspath(os.fspath(image_folder)))

    def set_label_dir(self, image_folder: str | Path, label_dir: str | Path | None) -> None:
        """Read and save the labels of ``image_folder``'s images in ``label_dir`` (None:
        next to the images). The shown document saves there from now on."""
        key = os.path.abspath(os.fspath(image_folder))
        if label_dir is None or os.path.abspath(os.fspath(label_dir)) == key:
            self.label_dirs.pop(key, None)
        else:
            self.label_dirs[key] = Path(os.path.abspath(os.fspath(label_dir)))
        current = self.current
        if current is not None and os.path.dirname(current.image_path) == key:
            current.labels_dir = self.label_dirs.get(key)

    def set_format(self, fmt: str) -> None:
        """Save in ``fmt`` from now on; the shown labels stay and go to that format on the
        next save."""
        get_format(fmt)  # an unknown name is refused, naming the known ones
        self.fmt = fmt
        if self.current is not None:
            self.current.fmt = fmt

    def close_current(self) -> None:
        """Forget the current document (its image could not be shown)."""
        if self.current is not None:
            self.current.deleteLater()
            self.current = None
            self.document_changed.emit(None)

    def save(self) -> bool:
        """Save the current document; an error becomes a dialog. Returns success."""
        if self.current is None:
            return True
        try:
            self.current.save()
        except LabelWriteError as exc:
            QMessageBox.critical(self._parent_widget(), "Labels not saved", str(exc))
            return False
        return True

    def confirm_leave(self) -> bool:
        """Navigation guard: True when it is fine to leave the current image."""
        document = self.current
        if document is None or not document.is_dirty():
            return True
        choice = "save" if self.autosave else self._ask(self._parent_widget(), document)
        if choice == "save":
            return self.save()
        if choice == "discard":
            document.discard()
            return True
        return False
