"""The documents of a session: a document per shown image, crash recovery when a folder
opens, and the Save / Discard / Cancel prompt before leaving unsaved labels.

:class:`LabelSession` keeps no label setting of its own: the format, autosave, the label
folder of each image folder and the shown document are the :class:`app.session.Session`'s,
read from there and written there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QImage, QUndoGroup
from PySide6.QtWidgets import QMessageBox, QWidget

from app.labelling.document import LabelDocument, ProjectClasses
from app.labelling.journal import Journal
from app.session import Session
from model.errors import LabelFormatError, LabelWriteError
from model.labels import FORMATS, get_format

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
    """One class list, a journal per image folder, and the shown document, for ``session``
    (a private one, with ``fmt`` and ``autosave``, when none is given).

    ``document_for`` loads an image's labels (a malformed file: an error dialog, and the
    document refuses to save over it), re-applies unsaved edits left by a crash and makes the
    document the session's; ``confirm_leave`` saves (``autosave``) or asks Save / Discard /
    Cancel when dirty; ``offer_recovery`` asks once per folder. ``undo_group`` follows the
    shown document (build Edit › Undo / Redo once from it).
    """

    def __init__(
        self,
        project: ProjectClasses,
        *,
        session: Session | None = None,
        fmt: str = "voc",
        journal_root: str | Path | None = None,
        autosave: bool = False,
        ask: SavePrompt | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.project = project
        self.session = session if session is not None else Session(label_format=fmt, autosave=autosave)
        self._journal_root = journal_root
        self._ask = ask or ask_save_changes
        self._journals: dict[str, Journal] = {}
        #: The format the current document's labels were read from (see format_to_read).
        self.read_format = self.session.label_format
        self.undo_group = QUndoGroup(self)
        self.session.label_format_changed.connect(self._on_format)

    # ------------------------------------------------------------------ the session's settings
    @property
    def fmt(self) -> str:
        """The format Ctrl+S saves in."""
        return self.session.label_format

    @property
    def autosave(self) -> bool:
        return self.session.autosave

    @property
    def label_dirs(self) -> dict[str, Path]:
        """Label folder per absolute image folder; absent: next to the images."""
        return self.session.label_dirs

    @property
    def current(self) -> LabelDocument | None:
        """The shown image's document."""
        return self.session.document

    def label_dir_for(self, image_folder: str | Path) -> Path | None:
        """The label folder of the images in ``image_folder`` (None: next to them)."""
        return self.session.label_dir_for(image_folder)

    def set_label_dir(self, image_folder: str | Path, label_dir: str | Path | None) -> None:
        """Read and save the labels of ``image_folder``'s images in ``label_dir`` (None or the
        image folder itself: next to the images). The shown document saves there from now on."""
        self.session.set_label_dir(image_folder, label_dir)
        current = self.current
        key = os.path.abspath(os.fspath(image_folder))
        if current is not None and os.path.dirname(current.image_path) == key:
            current.labels_dir = self.session.label_dir_for(key)

    def set_format(self, fmt: str) -> None:
        """Save in ``fmt`` from now on; the shown labels stay and go to that format on the
        next save."""
        get_format(fmt)  # an unknown name is refused, naming the known ones
        self.session.set_label_format(fmt)

    def _on_format(self, fmt: str) -> None:
        if self.current is not None:
            self.current.fmt = fmt

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
        size): labels loaded, crash edits re-applied. Becomes the session's document."""
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
        previous = self.current
        self.session.set_document(document)
        if previous is not None:
            previous.deleteLater()
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

    def close_current(self) -> None:
        """Forget the current document (its image could not be shown)."""
        previous = self.current
        if previous is not None:
            self.session.set_document(None)
            previous.deleteLater()

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


__all__ = ["LabelSession", "SavePrompt", "ask_save_changes"]
