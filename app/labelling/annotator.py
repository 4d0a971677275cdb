"""The label controller: a document per shown image, save, formats, label folders,
recovery, export.

:class:`Annotator` takes the :class:`app.session.Session` (never the window) and keeps a
:class:`app.labelling.journal.LabelSession` (the documents and their crash journals):

* every image the window shows gets a :class:`app.labelling.document.LabelDocument` with the
  labels saved for it (in the chosen format, else whichever format has a file), re-applying
  edits that a crash left unsaved; it becomes the session's document, which the canvas edits;
* the session's detections (post-processed network output) are put on the shown document,
  with the model's name, fingerprint and the inference size they were made at;
* leaving an image or closing with unsaved labels asks Save / Discard / Cancel (or saves
  without asking when File › Save Automatically is on);
* when a folder opens, unsaved edits left in its journal by a crash are offered back;
* its actions (File › Save, Change Save Dir…, Label Format, Export Labelled Set As…,
  Edit › Undo / Redo, Verify Image, Accept All Detections Above Threshold, Help › Keyboard
  Shortcuts) are placed in menus by the window; their keys come from :mod:`app.common.shortcuts`;
* the label folder of each image folder: the one chosen with File › Change Save Dir…
  (LabelImg's name; remembered per image folder), else a sibling ``annotations/``,
  ``annots/``, ``Annotations/`` or ``labels/`` folder holding label files named after the
  images when none sits next to them (the status bar says which), else next to the images.

On the GUI thread it only reads or writes the label file of one image; an export runs on a
worker thread (:class:`app.labelling.export_runner.ExportRunner`).
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QActionGroup, QImage
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from app.common import shortcuts
from app.common.settings import Settings
from app.common.shortcuts_dialog import COMMAND_PROPERTY, ShortcutsDialog
from app.labelling.class_list import find_class_lists
from app.labelling.document import LabelDocument, ProjectClasses
from app.labelling.export_runner import ExportRunner
from app.labelling.label_session import LabelSession, SavePrompt
from app.session import Session
from model.errors import LabelFormatError
from model.labels import FORMATS, get_format
from model.labels.layout import find_label_folder
from model.postprocess import Detections

#: Names of the canvas actions that act on labels (app.common.shortcuts.EDIT_SHORTCUTS).
CANVAS_ACTIONS = tuple(spec.name for spec in shortcuts.EDIT_SHORTCUTS)


def label_folders_of(image_folder: Path) -> list[Path]:
    """Where the labels (and a class list) of ``image_folder`` may live: the folder itself,
    and the label folders of the usual layouts beside it (YOLO's ``images/`` <-> ``labels/``,
    VOC datasets' ``annotations/`` or ``annots/``)."""
    folders = [image_folder]
    for name in ("labels", "annotations", "Annotations", "annots"):
        sibling = image_folder.parent / name
        if sibling != image_folder and sibling.is_dir():
            folders.append(sibling)
    return folders


class Annotator(QObject):
    """The label controller of one :class:`Session` (see the module docstring).

    ``settings``: where the label format, autosave, label folders and the last class are
    remembered; ``parent_widget``: the parent of its dialogs; ``journal_root``: where crash
    journals live (default: the app data folder); ``ask``: the Save / Discard / Cancel
    prompt (default :func:`app.labelling.journal.ask_save_changes`).
    Signals ``export_finished(ExportResult)`` and ``export_failed(exception)``.
    """

    export_finished = Signal(object)
    export_failed = Signal(object)

    def __init__(
        self,
        session: Session,
        settings: Settings,
        *,
        parent_widget: QWidget | None = None,
        journal_root: str | Path | None = None,
        ask: SavePrompt | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._settings = settings
        self._parent_widget = parent_widget
        self.project = ProjectClasses(parent=self)
        self.labels = LabelSession(self.project, session=session, journal_root=journal_root, ask=ask, parent=parent_widget)
        self._exporter = ExportRunner(self._status, parent_widget, parent=self)
        self._exporter.finished.connect(self.export_finished)
        self._exporter.failed.connect(self.export_failed)
        self._shortcuts_dialog: ShortcutsDialog | None = None
        self._shown_path: Path | None = None  # the shown document's image, as it was opened
        self.actions: dict[str, QAction] = {}
        self.format_actions: dict[str, QAction] = {}
        self.export_actions: dict[str, QAction] = {}
        self._build_actions()

        session.model_changed.connect(lambda model: self.project.extend(model.class_names))
        session.detections_changed.connect(self._show_detections)
        session.images_opened.connect(self._on_images_opened)
        session.label_format_changed.connect(self._on_label_format)
        session.autosave_changed.connect(self._on_autosave)

    # ------------------------------------------------------------------ public parts
    @property
    def document(self) -> LabelDocument | None:
        """The labels of the shown image (None before the first image)."""
        return self.labels.current

    @property
    def label_format(self) -> str:
        return self._session.label_format

    def set_label_format(self, fmt: str) -> None:
        """Save in ``fmt`` (a name of :data:`model.labels.FORMATS`) from now on (persisted);
        the shown labels stay and are written in that format on the next save."""
        label_format = get_format(fmt)  # an unknown name is refused, naming the known ones
        self._session.set_label_format(fmt)
        self._status(f"Labels are saved as {label_format.title} from now on")

    def set_autosave(self, enabled: bool) -> None:
        self._session.set_autosave(enabled)

    def save(self) -> bool:
        """Save the shown image's labels (Ctrl+S). Returns success."""
        document = self.labels.current
        if document is None:
            self._status("No image to save labels for")
            return False
        if not self.labels.save():
            return False
        if self._shown_path is not None:
            self._session.labels_saved.emit(self._shown_path)
        count = document.label_count()
        self._status(f"Saved {count} label{'s' if count != 1 else ''} to {document.label_file()}")
        return True

    def toggle_verified(self) -> bool:
        """Mark the shown image verified or not (Space; undoable; saved with the labels).
        Returns the new state."""
        document = self.labels.current
        if document is None:
            self._status("No image to verify")
            return False
        document.toggle_verified()
        self._status(f"{Path(document.image_path).name}: {'verified' if document.verified else 'not verified'} (Ctrl+S saves it)")
        return document.verified

    def label_dir(self, image_folder: str | Path) -> Path | None:
        """The label folder of the images in ``image_folder`` (None: next to them)."""
        return self.labels.label_dir_for(image_folder)

    def label_dirs(self) -> dict[str, Path]:
        """Label folder per absolute image folder (absent: next to the images)."""
        return dict(self.labels.label_dirs)

    def change_save_dir(self, label_dir: str | Path | None = None) -> bool:
        """File › Change Save Dir…: read and save the labels of the shown image's folder in
        ``label_dir`` (asked when None; the image folder itself means next to the images),
        remembered for that folder. The shown labels are read again from there unless they
        have unsaved edits (those are saved there). Returns whether a folder was set."""
        folder = self._session.image_folder()
        if folder is None:
            self._status("Open images first: the save folder is chosen per image folder")
            return False
        if label_dir is None:
            start = str(self.labels.label_dir_for(folder) or folder)
            chosen = QFileDialog.getExistingDirectory(self._parent_widget, f"Folder for the labels of {folder.name}/", start)
            if not chosen:
                return False
            label_dir = chosen
        target = Path(label_dir)
        remembered = None if os.path.abspath(target) == os.path.abspath(folder) else target
        self.labels.set_label_dir(folder, remembered)
        self._settings.set_label_dir_for(folder, remembered)
        document = self.labels.current
        path = self._shown_path
        if document is not None and not document.is_dirty() and path is not None:
            try:
                document.load(path, document.image_size, self.labels.format_to_read(path), labels_dir=remembered)
            except LabelFormatError as exc:
                QMessageBox.warning(self._parent_widget, "Cannot read labels", str(exc))
            document.fmt = self.labels.fmt
            self._session.verified_changed.emit(path, document.verified)
        where = f"in {remembered}" if remembered is not None else "next to the images"
        self._status(f"Labels of {folder.name}/ are read from and saved {where}")
        return True

    def confirm_leave(self) -> bool:
        """The window's navigation guard: saves (autosave) or asks Save / Discard / Cancel
        when the shown labels are unsaved. True when it is fine to leave the image."""
        document = self.labels.current
        leave = self.labels.confirm_leave()
        if leave and document is not None and self._shown_path is not None:
            self._session.labels_saved.emit(self._shown_path)  # maybe saved
        return leave

    def accept_all_detections(self) -> int:
        """Turn every shown detection at or above the score threshold into a label (one undo
        step). Returns how many became labels."""
        document = self.labels.current
        if document is None or document.detections is None:
            self._status("No detections to accept: run Detect first")
            return 0
        thresh = self._session.post_processor.score_thresh
        count = document.accept_all(document.detections, thresh, document.model_name)
        self._status(f"Accepted {count} detection{'s' if count != 1 else ''} with score ≥ {thresh:.2f}")
        return count

    def show_shortcuts(self) -> ShortcutsDialog:
        if self._shortcuts_dialog is None:
            self._shortcuts_dialog = ShortcutsDialog(self._parent_widget)
        dialog = self._shortcuts_dialog
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def export_labelled_set(self, fmt: str, folder: str | Path | None = None) -> bool:
        """Write the labelled images of the open list (labels saved in the current format)
        into ``folder`` (asked when None) in ``fmt``, on a worker thread. Returns whether an
        export started; ``export_finished`` / ``export_failed`` tell how it ended."""
        if self._exporter.is_running():
            self._status("An export is already running")
            return False
        paths = self._session.image_paths
        if not paths:
            self._status("No images are open")
            return False
        if not self.confirm_leave():  # unsaved edits: save (or not) first
            return False
        if folder is None:
            start = str(self._settings.last_folder or Path.home())
            chosen = QFileDialog.getExistingDirectory(self._parent_widget, f"Export labelled set as {get_format(fmt).title}", start)
            if not chosen:
                return False
            folder = chosen
        self._exporter.start(
            paths, src_fmt=self.labels.fmt, label_dirs=self.label_dirs(), folder=Path(folder), fmt=fmt, class_names=self.project.names
        )
        return True

    def wait_for_export(self, msecs: int = -1) -> bool:
        return self._exporter.wait(msecs)

    # ------------------------------------------------------------------ the shown image
    def open_document(self, path: Path, image: QImage) -> LabelDocument:
        """The document of the image just shown (``image``: as shown, EXIF applied): its
        saved labels, crash edits re-applied, the session's detections on it. It becomes the
        session's document."""
        path = Path(path)
        document = self.labels.document_for(path, image)
        self._shown_path = path  # as the image list has it (the document keeps it absolute)
        document.dirty_changed.connect(partial(self._session.unsaved_changed.emit, path))
        document.verified_changed.connect(partial(self._session.verified_changed.emit, path))
        self._show_detections(self._session.detections, document)
        self._session.unsaved_changed.emit(path, document.is_dirty())  # recovered edits
        self._session.verified_changed.emit(path, document.verified)
        read, chosen = self.labels.read_format, self.labels.fmt
        if read != chosen and document.label_count():
            self._status(
                f"Labels read from {get_format(read).label_path_for(path, document.labels_dir).name} ({get_format(read).title}); "
                f"Ctrl+S saves them as {get_format(chosen).title}"
            )
        return document

    def close_document(self) -> None:
        """The shown image could not be shown: no document."""
        self.labels.close_current()
        self._shown_path = None

    def _show_detections(self, detections: Detections | None, document: LabelDocument | None = None) -> None:
        """Put the session's detections on ``document`` (default: the shown one), with what
        they are recorded with when accepted or rejected: the model's name and fingerprint
        and the inference size (anchor ids depend on it)."""
        document = document if document is not None else self.labels.current
        if document is None:
            return
        session = self._session
        model = session.model
        document.set_detections(
            detections,
            class_names=model.class_names if model is not None else (),
            model_name=model.name if model is not None else "",
            model_id=model.fingerprint if model is not None and detections is not None else "",
            size=session.detection_size,
        )

    # ------------------------------------------------------------------ settings
    def _on_label_format(self, fmt: str) -> None:
        self._settings.label_format = fmt
        self.format_actions[fmt].setChecked(True)

    def _on_autosave(self, enabled: bool) -> None:
        self._settings.autosave = enabled
        self.actions["autosave"].setChecked(enabled)

    # ------------------------------------------------------------------ actions
    def _build_actions(self) -> None:
        owner = self._parent_widget or self

        def make(spec: shortcuts.Shortcut, slot: Any) -> QAction:
            action = QAction(spec.text, owner)
            action.setShortcuts(spec.sequences())
            action.setStatusTip(spec.help)
            action.setToolTip(spec.help)
            action.triggered.connect(slot)
            self.actions[spec.name] = action
            return action

        make(shortcuts.SAVE, self.save)
        make(shortcuts.ACCEPT_ALL, self.accept_all_detections)
        make(shortcuts.SHOW_SHORTCUTS, self.show_shortcuts)
        make(shortcuts.VERIFY, self.toggle_verified)
        change_dir = QAction("Change Save &Dir…", owner)
        change_dir.setStatusTip("choose the folder the labels of this image folder are read from and saved to (remembered per folder)")
        change_dir.triggered.connect(lambda: self.change_save_dir())
        self.actions["change_save_dir"] = change_dir
        group = self.labels.undo_group
        for spec, create in ((shortcuts.UNDO, group.createUndoAction), (shortcuts.REDO, group.createRedoAction)):
            action = create(owner, spec.text.replace("&", ""))
            action.setShortcuts(spec.sequences())
            action.setStatusTip(spec.help)
            action.setProperty(COMMAND_PROPERTY, spec.text.replace("&", ""))
            self.actions[spec.name] = action

        autosave = QAction("Save &Automatically When Leaving an Image", owner)
        autosave.setCheckable(True)
        autosave.setChecked(self._session.autosave)
        autosave.setStatusTip("save the labels without asking when moving to another image or closing")
        autosave.toggled.connect(self.set_autosave)
        self.actions["autosave"] = autosave

        formats = QActionGroup(self)
        formats.setExclusive(True)
        for fmt, label_format in FORMATS.items():
            action = QAction(f"&{label_format.title} ({label_format.files})", owner)
            action.setCheckable(True)
            action.setChecked(fmt == self._session.label_format)
            action.setStatusTip(f"Ctrl+S saves labels as {label_format.title}")
            action.triggered.connect(partial(self.set_label_format, fmt))
            formats.addAction(action)
            self.format_actions[fmt] = action
            export = QAction(f"{label_format.title}…", owner)
            export.setStatusTip(f"write the labelled images and their labels as {label_format.title} into a folder")
            export.triggered.connect(partial(self.export_labelled_set, fmt))
            self.export_actions[fmt] = export
            self.actions[f"format_{fmt}"] = action
            self.actions[f"export_{fmt}"] = export

    # ------------------------------------------------------------------ opening a list
    def _on_images_opened(self, paths: list[Path]) -> None:
        """Read the class lists of the folders just opened (LabelImg's classes.txt /
        predefined_classes.txt) and offer back the unsaved edits a crash left there."""
        self._load_class_lists(paths)
        self._choose_label_dirs(paths)
        self._offer_recovery(paths)

    def _load_class_lists(self, paths: list[Path]) -> None:
        folders: list[Path] = []
        for parent in dict.fromkeys(p.parent for p in paths):
            folders.extend(label_folders_of(parent))
        found = find_class_lists(folders)
        before = len(self.project)
        self.project.extend(found.names)
        if found.problems:
            self._session.show_message("Class list not read: " + "; ".join(found.problems), 15000)
        elif found.files and len(self.project) > before:
            added = len(self.project) - before
            self._status(f"{added} class{'es' if added != 1 else ''} from {', '.join(str(f) for f in found.files)}")

    def _offer_recovery(self, paths: list[Path]) -> None:
        # One abspath per folder, not per image: a 10,000-image folder opens at once.
        for parent in dict.fromkeys(p.parent for p in paths):
            folder = os.path.abspath(parent)
            if self.labels.offer_recovery(folder, self._parent_widget):
                pending = self.labels.journal_for(folder).pending()  # keyed by absolute path
                for path in paths:
                    if path.parent == parent and os.path.abspath(path) in pending:
                        self._session.unsaved_changed.emit(path, True)

    def _choose_label_dirs(self, paths: list[Path]) -> None:
        """The label folder of each image folder opened: the remembered one (Change Save
        Dir…), else a sibling label folder found when no label file sits next to the
        images; the status bar says so."""
        by_folder: dict[Path, list[Path]] = {}
        for path in paths:
            by_folder.setdefault(path.parent, []).append(path)
        notes = []
        for parent, images in by_folder.items():
            chosen = self._settings.label_dir_for(parent)
            if chosen is not None:
                self.labels.set_label_dir(parent, chosen)
                notes.append(f"Labels of {parent.name}/ are read from and saved in {chosen} (File › Change Save Dir…)")
                continue
            if self.labels.label_dir_for(parent) is not None:
                continue
            found = find_label_folder(images, self.labels.fmt, images_dir=parent)
            if found.how == "found" and found.path is not None:
                self.labels.set_label_dir(parent, found.path)
                notes.append(
                    f"Labels of {parent.name}/ are read from and saved in {found.path} ({found.matches} label files found there; "
                    "File › Change Save Dir… to choose another folder)"
                )
        if notes:
            self._status("; ".join(notes))

    def _status(self, text: str) -> None:
        self._session.show_message(text, 8000)


__all__ = ["Annotator", "CANVAS_ACTIONS", "label_folders_of"]
