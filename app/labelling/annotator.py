"""Labelling in the main window: a document per shown image, save, formats, recovery, export.

:class:`Annotator` wires a :class:`app.labelling.journal.LabelSession` into a :class:`MainWindow`:

* every image the window shows gets a :class:`app.labelling.document.LabelDocument` with the labels
  saved for it (in the chosen format, else whichever format has a file), re-applying edits
  that a crash left unsaved; the canvas edits that document;
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
worker thread.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QThreadPool, Signal
from PySide6.QtGui import QAction, QActionGroup, QImage
from PySide6.QtWidgets import QFileDialog, QMessageBox, QProgressDialog

from app.common import shortcuts
from app.common.shortcuts_dialog import COMMAND_PROPERTY, ShortcutsDialog
from app.common.worker import Worker
from app.labelling.class_list import find_class_lists
from app.labelling.document import LabelDocument, ProjectClasses
from app.labelling.export import ExportCancelled, ExportResult, export_labelled_set
from app.labelling.journal import LabelSession, SavePrompt
from model.errors import LabelFormatError
from model.labels import FORMATS, get_format
from model.labels.layout import find_label_folder

if TYPE_CHECKING:
    from app.window.main_window import MainWindow

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
    """The labelling side of ``window`` (see the module docstring).

    ``journal_root``: where crash journals live (default: the app data folder); ``ask``:
    the Save / Discard / Cancel prompt (default :func:`app.labelling.journal.ask_save_changes`).
    Signals ``export_finished(ExportResult)`` and ``export_failed(exception)``.
    """

    export_finished = Signal(object)
    export_failed = Signal(object)

    def __init__(
        self,
        window: MainWindow,
        *,
        journal_root: str | Path | None = None,
        ask: SavePrompt | None = None,
    ) -> None:
        super().__init__(window)
        self._window = window
        settings = window.settings
        self.project = ProjectClasses(parent=self)
        self.session = LabelSession(
            self.project,
            fmt=settings.label_format,
            autosave=settings.autosave,
            journal_root=journal_root,
            ask=ask,
            parent=window,
        )
        self._current_path: Path | None = None
        self._export_pool = QThreadPool(self)
        self._export_pool.setMaxThreadCount(1)
        self._export_worker: Worker | None = None
        self._progress: QProgressDialog | None = None
        self._shortcuts_dialog: ShortcutsDialog | None = None
        self.actions: dict[str, QAction] = {}
        self.format_actions: dict[str, QAction] = {}
        self.export_actions: dict[str, QAction] = {}
        self._build_actions()

        canvas = window.canvas
        for name in CANVAS_ACTIONS:  # LabelImg's keys work wherever the focus is in the window
            canvas.action(name).setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        window.set_document_factory(self._document_for)
        window.set_navigation_guard(self.confirm_leave)
        controller = window.controller
        controller.model_loaded.connect(lambda detector: self.project.extend(detector.contract.class_names))
        controller.image_failed.connect(self._on_image_failed)
        # the canvas records the inference size with rejected detections (anchor ids depend on it)
        controller.output_ready.connect(lambda result: canvas.set_inference_size(result.key[1]))
        controller.output_cleared.connect(lambda: canvas.set_inference_size(0))
        window.images_opened.connect(self._on_images_opened)
        if hasattr(canvas, "space_tapped"):  # Space on the canvas: a tap verifies, a hold pans
            canvas.space_tapped.connect(self.actions["verify"].trigger)
        if hasattr(canvas, "set_last_class"):  # the picker preselects the class used last, across sessions
            canvas.set_last_class(settings.last_class)
            canvas.class_chosen.connect(self._remember_class)

    # ------------------------------------------------------------------ public parts
    @property
    def document(self) -> LabelDocument | None:
        """The labels of the shown image (None before the first image)."""
        return self.session.current

    @property
    def label_format(self) -> str:
        return self.session.fmt

    def set_label_format(self, fmt: str) -> None:
        """Save in ``fmt`` ("voc", "yolo" or "coco") from now on (persisted); the shown
        labels stay and are written in that format on the next save."""
        label_format = get_format(fmt)
        self.session.set_format(fmt)
        self._window.settings.label_format = fmt
        self.format_actions[fmt].setChecked(True)
        self._status(f"Labels are saved as {label_format.title} from now on")

    def set_autosave(self, enabled: bool) -> None:
        self.session.autosave = enabled
        self._window.settings.autosave = enabled
        self.actions["autosave"].setChecked(enabled)

    def save(self) -> bool:
        """Save the shown image's labels (Ctrl+S). Returns success."""
        document = self.session.current
        if document is None:
            self._status("No image to save labels for")
            return False
        if not self.session.save():
            return False
        if self._current_path is not None:
            self._window.image_list.model.refresh_label_state(self._current_path)
        count = document.label_count()
        self._status(f"Saved {count} label{'s' if count != 1 else ''} to {document.label_file()}")
        return True

    def toggle_verified(self) -> bool:
        """Mark the shown image verified or not (Space; undoable; saved with the labels).
        Returns the new state."""
        document = self.session.current
        if document is None:
            self._status("No image to verify")
            return False
        document.toggle_verified()
        self._status(f"{Path(document.image_path).name}: {'verified' if document.verified else 'not verified'} (Ctrl+S saves it)")
        return document.verified

    def label_dir(self, image_folder: str | Path) -> Path | None:
        """The label folder of the images in ``image_folder`` (None: next to them)."""
        return self.session.label_dir_for(image_folder)

    def label_dirs(self) -> dict[str, Path]:
        """Label folder per absolute image folder (absent: next to the images)."""
        return dict(self.session.label_dirs)

    def change_save_dir(self, label_dir: str | Path | None = None) -> bool:
        """File › Change Save Dir…: read and save the labels of the shown image's folder in
        ``label_dir`` (asked when None; the image folder itself means next to the images),
        remembered for that folder. The shown labels are read again from there unless they
        have unsaved edits (those are saved there). Returns whether a folder was set."""
        window = self._window
        folder = self._image_folder()
        if folder is None:
            self._status("Open images first: the save folder is chosen per image folder")
            return False
        if label_dir is None:
            start = str(self.session.label_dir_for(folder) or folder)
            chosen = QFileDialog.getExistingDirectory(window, f"Folder for the labels of {folder.name}/", start)
            if not chosen:
                return False
            label_dir = chosen
        target = Path(label_dir)
        remembered = None if os.path.abspath(target) == os.path.abspath(folder) else target
        self.session.set_label_dir(folder, remembered)
        window.settings.set_label_dir_for(folder, remembered)
        self._sync_label_dirs()
        document = self.session.current
        if document is not None and not document.is_dirty() and self._current_path is not None:
            try:
                document.load(
                    self._current_path, document.image_size, self.session.format_to_read(self._current_path), labels_dir=remembered
                )
            except LabelFormatError as exc:
                QMessageBox.warning(window, "Cannot read labels", str(exc))
            document.fmt = self.session.fmt
            window.image_list.model.set_verified(self._current_path, document.verified)
        where = f"in {remembered}" if remembered is not None else "next to the images"
        self._status(f"Labels of {folder.name}/ are read from and saved {where}")
        return True

    def _image_folder(self) -> Path | None:
        if self._current_path is not None:
            return self._current_path.parent
        paths = self._window.image_list.model.paths()
        return paths[0].parent if paths else None

    def _sync_label_dirs(self) -> None:
        self._window.image_list.model.set_label_dirs({k: v for k, v in self.session.label_dirs.items()})

    def confirm_leave(self) -> bool:
        """The window's navigation guard: saves (autosave) or asks Save / Discard / Cancel
        when the shown labels are unsaved. True when it is fine to leave the image."""
        leave = self.session.confirm_leave()
        if leave and self._current_path is not None:
            self._window.image_list.model.refresh_label_state(self._current_path)  # maybe saved
        return leave

    def accept_all_detections(self) -> int:
        """Turn every shown detection at or above the score threshold into a label (one undo
        step). Returns how many became labels."""
        document = self.session.current
        if document is None or document.detections is None:
            self._status("No detections to accept: run Detect first")
            return 0
        thresh = self._window.post_processor.score_thresh
        count = document.accept_all(document.detections, thresh, document.model_name)
        # An edit selects the rows it touched; here that would be every accepted box, and
        # the next Delete would throw the whole review away. Review starts from nothing.
        self._window.canvas.set_selected_rows([])
        self._status(f"Accepted {count} detection{'s' if count != 1 else ''} with score ≥ {thresh:.2f}")
        return count

    def show_shortcuts(self) -> ShortcutsDialog:
        if self._shortcuts_dialog is None:
            self._shortcuts_dialog = ShortcutsDialog(self._window)
        dialog = self._shortcuts_dialog
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def export_labelled_set(self, fmt: str, folder: str | Path | None = None) -> bool:
        """Write the labelled images of the open list (labels saved in the current format)
        into ``folder`` (asked when None) in ``fmt``, on a worker thread. Returns whether an
        export started; ``export_finished`` / ``export_failed`` tell how it ended."""
        window = self._window
        if self._export_worker is not None:
            self._status("An export is already running")
            return False
        paths = window.image_list.model.paths()
        if not paths:
            self._status("No images are open")
            return False
        if not self.confirm_leave():  # unsaved edits: save (or not) first
            return False
        if folder is None:
            start = str(window.settings.last_folder or Path.home())
            chosen = QFileDialog.getExistingDirectory(window, f"Export labelled set as {get_format(fmt).title}", start)
            if not chosen:
                return False
            folder = chosen
        worker = Worker(
            export_labelled_set,
            paths,
            src_fmt=self.session.fmt,
            label_dirs=self.label_dirs(),
            dst=Path(folder),
            dst_fmt=fmt,
            class_names=self.project.names,
            long_job=True,
        )
        progress = QProgressDialog(f"Exporting labels as {get_format(fmt).title}…", "Cancel", 0, 100, window)
        progress.setWindowTitle("Export labelled set")
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.setMinimumDuration(400)
        progress.setAutoClose(False)
        progress.setAutoReset(False)
        progress.canceled.connect(worker.cancel)
        worker.signals.progress.connect(lambda done, total: progress.setValue(int(100 * done / max(total, 1))))
        worker.signals.finished.connect(self._on_export_finished)
        worker.signals.errored.connect(self._on_export_failed)
        self._export_worker, self._progress = worker, progress
        self._status(f"Exporting {len(paths)} images as {get_format(fmt).title} to {folder}…")
        self._export_pool.start(worker)
        return True

    def wait_for_export(self, msecs: int = -1) -> bool:
        return self._export_pool.waitForDone(msecs)

    # ------------------------------------------------------------------ actions
    def _build_actions(self) -> None:
        window = self._window

        def make(spec: shortcuts.Shortcut, slot: Any) -> QAction:
            action = QAction(spec.text, window)
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
        change_dir = QAction("Change Save &Dir…", window)
        change_dir.setStatusTip("choose the folder the labels of this image folder are read from and saved to (remembered per folder)")
        change_dir.triggered.connect(lambda: self.change_save_dir())
        self.actions["change_save_dir"] = change_dir
        group = self.session.undo_group
        for spec, create in ((shortcuts.UNDO, group.createUndoAction), (shortcuts.REDO, group.createRedoAction)):
            action = create(window, spec.text.replace("&", ""))
            action.setShortcuts(spec.sequences())
            action.setStatusTip(spec.help)
            action.setProperty(COMMAND_PROPERTY, spec.text.replace("&", ""))
            self.actions[spec.name] = action

        autosave = QAction("Save &Automatically When Leaving an Image", window)
        autosave.setCheckable(True)
        autosave.setChecked(self.session.autosave)
        autosave.setStatusTip("save the labels without asking when moving to another image or closing")
        autosave.toggled.connect(self.set_autosave)
        self.actions["autosave"] = autosave

        formats = QActionGroup(self)
        formats.setExclusive(True)
        for fmt in FORMATS:
            action = QAction(f"&{get_format(fmt).title} ({get_format(fmt).files})", window)
            action.setCheckable(True)
            action.setChecked(fmt == self.session.fmt)
            action.setStatusTip(f"Ctrl+S saves labels as {get_format(fmt).title}")
            action.triggered.connect(partial(self.set_label_format, fmt))
            formats.addAction(action)
            self.format_actions[fmt] = action
            export = QAction(f"{get_format(fmt).title}…", window)
            export.setStatusTip(f"write the labelled images and their labels as {get_format(fmt).title} into a folder")
            export.triggered.connect(partial(self._ask_export, fmt))
            self.export_actions[fmt] = export
        for fmt, action in self.format_actions.items():
            self.actions[f"format_{fmt}"] = action
        for fmt, action in self.export_actions.items():
            self.actions[f"export_{fmt}"] = action

    def _ask_export(self, fmt: str) -> None:
        self.export_labelled_set(fmt)

    # ------------------------------------------------------------------ window events
    def _document_for(self, path: Path, image: QImage) -> LabelDocument:
        window = self._window
        document = self.session.document_for(path, image)
        self._current_path = Path(path)
        window.setWindowModified(document.is_dirty())
        document.dirty_changed.connect(window.setWindowModified)
        model = window.image_list.model
        model.set_verified(Path(path), document.verified)
        document.verified_changed.connect(partial(model.set_verified, Path(path)))
        read, chosen = self.session.read_format, self.session.fmt
        if read != chosen and document.label_count():
            self._status(
                f"Labels read from {get_format(read).label_path_for(path, document.labels_dir).name} ({get_format(read).title}); "
                f"Ctrl+S saves them as {get_format(chosen).title}"
            )
        return document

    def _on_image_failed(self, _path: Path, _error: BaseException) -> None:
        self.session.close_current()
        self._current_path = None
        self._window.canvas.set_document(None)
        self._window.setWindowModified(False)

    def _remember_class(self, name: str) -> None:
        self._window.settings.last_class = name

    def _on_images_opened(self, paths: list[Path]) -> None:
        """Read the class lists of the folders just opened (LabelImg's classes.txt /
        predefined_classes.txt) and offer back the unsaved edits a crash left there."""
        self._load_class_lists(paths)
        self._offer_recovery(paths)

    def _load_class_lists(self, paths: list[Path]) -> None:
        folders: list[Path] = []
        for parent in dict.fromkeys(p.parent for p in paths):
            folders.extend(label_folders_of(parent))
        found = find_class_lists(folders)
        before = len(self.project)
        self.project.extend(found.names)
        if found.problems:
            self._window.statusBar().showMessage("Class list not read: " + "; ".join(found.problems), 15000)
        elif found.files and len(self.project) > before:
            added = len(self.project) - before
            self._status(f"{added} class{'es' if added != 1 else ''} from {', '.join(str(f) for f in found.files)}")

    def _offer_recovery(self, paths: list[Path]) -> None:
        model = self._window.image_list.model
        self._choose_label_dirs(paths)
        # One abspath per folder, not per image: a 10,000-image folder opens at once.
        for parent in dict.fromkeys(p.parent for p in paths):
            folder = os.path.abspath(parent)
            if self.session.offer_recovery(folder, self._window):
                pending = self.session.journal_for(folder).pending()  # keyed by absolute path
                for path in paths:
                    if path.parent == parent and os.path.abspath(path) in pending:
                        model.set_unsaved(path, True)

    def _choose_label_dirs(self, paths: list[Path]) -> None:
        """The label folder of each image folder opened: the remembered one (Change Save
        Dir…), else a sibling label folder found when no label file sits next to the
        images; the status bar says so."""
        by_folder: dict[Path, list[Path]] = {}
        for path in paths:
            by_folder.setdefault(path.parent, []).append(path)
        notes = []
        for parent, images in by_folder.items():
            chosen = self._window.settings.label_dir_for(parent)
            if chosen is not None:
                self.session.set_label_dir(parent, chosen)
                notes.append(f"Labels of {parent.name}/ are read from and saved in {chosen} (File › Change Save Dir…)")
                continue
            if self.session.label_dir_for(parent) is not None:
                continue
            found = find_label_folder(images, self.session.fmt, images_dir=parent)
            if found.how == "found" and found.path is not None:
                self.session.set_label_dir(parent, found.path)
                notes.append(
                    f"Labels of {parent.name}/ are read from and saved in {found.path} ({found.matches} label files found there; "
                    "File › Change Save Dir… to choose another folder)"
                )
        self._sync_label_dirs()
        if notes:
            self._status("; ".join(notes))

    def _on_export_finished(self, result: ExportResult) -> None:
        self._end_export()
        text = (
            f"Exported {result.images} labelled image{'s' if result.images != 1 else ''} "
            f"({result.labels} boxes) as {get_format(result.fmt).title} to {result.folder}"
        )
        self._status(text)
        if result.skipped:
            lines = "\n".join(str(e) for e in result.skipped[:10])
            more = f"\n… and {len(result.skipped) - 10} more" if len(result.skipped) > 10 else ""
            QMessageBox.warning(self._window, "Some labels were skipped", f"{text}.\n\nSkipped:\n{lines}{more}")
        self.export_finished.emit(result)

    def _on_export_failed(self, error: BaseException) -> None:
        self._end_export()
        if isinstance(error, ExportCancelled):
            self._status("Export cancelled")
        else:
            QMessageBox.critical(self._window, "Export failed", str(error))
        self.export_failed.emit(error)

    def _end_export(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress.deleteLater()
        self._export_worker, self._progress = None, None

    def _status(self, text: str) -> None:
        self._window.statusBar().showMessage(text, 8000)


__all__ = ["Annotator"]
