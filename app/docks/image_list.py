"""The file list dock: a lazy list model over image paths with a per-image state.

Opening a folder lists names only (``os.scandir`` through ``model.imageio.list_images``);
nothing is decoded and a row's label-file check runs only when the row is painted, so a
folder of 10,000 images opens in well under a second.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QPointF,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QDockWidget, QLabel, QListView, QVBoxLayout, QWidget

from app.session import Session
from model.labels.registry import FORMATS
from model.labels.voc import voc_file_is_verified


def label_suffixes() -> tuple[str, ...]:
    """Label files looked for next to an image: those of the registered formats with one
    file per image (VOC's .xml, as LabelImg, and YOLO's .txt)."""
    return tuple(fmt.suffix for fmt in FORMATS.values() if fmt.per_image_files)

ModelIndex = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class ImageState:
    has_label: bool  # a label file exists on disk (next to the image or in its label folder)
    unsaved: bool  # the labels have unsaved changes
    detected: bool  # a network output is cached for this image
    verified: bool = False  # LabelImg's review mark (VOC verified="yes", or set and not yet saved)


def has_label_file(image_path: Path, labels_dir: Path | None = None) -> bool:
    """Whether a label file of the image (VOC .xml, YOLO .txt: :func:`label_suffixes`)
    exists, next to it or in ``labels_dir``."""
    folder = os.fspath(labels_dir) if labels_dir is not None else os.fspath(image_path.parent)
    stem = os.path.join(folder, image_path.stem)
    return any(os.path.exists(stem + suffix) for suffix in label_suffixes())


class ImageListModel(QAbstractListModel):
    """Rows are image paths; roles add the per-image state (label on disk, unsaved
    changes, detected)."""

    HasLabelRole = Qt.ItemDataRole.UserRole + 1
    UnsavedRole = Qt.ItemDataRole.UserRole + 2
    DetectedRole = Qt.ItemDataRole.UserRole + 3
    PathRole = Qt.ItemDataRole.UserRole + 4
    VerifiedRole = Qt.ItemDataRole.UserRole + 5

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._paths: list[Path] = []
        self._row_of: dict[Path, int] | None = None  # built on first lookup
        self._has_label: dict[int, bool] = {}  # filled lazily, for painted rows only
        self._verified_on_disk: dict[int, bool] = {}  # filled lazily, for painted rows only
        self._verified: dict[Path, bool] = {}  # set by the shown document (may be unsaved)
        self._label_dirs: dict[str, Path] = {}  # absolute image folder -> its label folder
        self._unsaved: set[Path] = set()
        self._detected: set[Path] = set()
        self._icons: dict[tuple[bool, bool, bool, bool], QIcon] = {}

    # --- content ---------------------------------------------------------------------
    def set_paths(self, paths: Sequence[Path]) -> None:
        self.beginResetModel()
        self._paths = list(paths)
        self._row_of = None
        self._has_label.clear()
        self._verified_on_disk.clear()
        self._verified.clear()
        self._unsaved.clear()
        self._detected.clear()
        self.endResetModel()

    def paths(self) -> list[Path]:
        return list(self._paths)

    def path(self, row: int) -> Path:
        return self._paths[row]

    def row_of(self, path: Path) -> int:
        """Row of ``path`` or -1."""
        if self._row_of is None:
            self._row_of = {p: i for i, p in enumerate(self._paths)}
        return self._row_of.get(Path(path), -1)

    # --- state -----------------------------------------------------------------------
    def state(self, row: int) -> ImageState:
        path = self._paths[row]
        return ImageState(self._label_on_disk(row), path in self._unsaved, path in self._detected, self._is_verified(row))

    def set_label_dirs(self, label_dirs: Mapping[str, Path]) -> None:
        """Where the labels of each image folder are (absolute folder -> label folder;
        absent: next to the images); the rows' label state is looked up again."""
        self._label_dirs = dict(label_dirs)
        self._has_label.clear()
        self._verified_on_disk.clear()
        if self._paths:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._paths) - 1, 0))

    def set_verified(self, path: Path, verified: bool) -> None:
        """The verified mark of ``path`` as its document has it now (saved or not)."""
        path = Path(path)
        if self._verified.get(path) != verified:
            self._verified[path] = verified
            row = self.row_of(path)
            if row >= 0:
                self._emit_row(row)

    def set_unsaved(self, path: Path, unsaved: bool) -> None:
        self._toggle(self._unsaved, Path(path), unsaved)

    def set_detected(self, path: Path, detected: bool = True) -> None:
        self._toggle(self._detected, Path(path), detected)

    def refresh_label_state(self, path: Path) -> None:
        """Re-check the label file of ``path`` (after a save or delete)."""
        row = self.row_of(path)
        if row >= 0:
            self._has_label.pop(row, None)
            self._verified_on_disk.pop(row, None)
            self._emit_row(row)

    def _toggle(self, bucket: set[Path], path: Path, on: bool) -> None:
        if (path in bucket) == on:
            return
        (bucket.add if on else bucket.discard)(path)
        row = self.row_of(path)
        if row >= 0:
            self._emit_row(row)

    def _emit_row(self, row: int) -> None:
        index = self.index(row, 0)
        self.dataChanged.emit(index, index)

    def _labels_dir(self, path: Path) -> Path | None:
        return self._label_dirs.get(os.path.abspath(path.parent)) if self._label_dirs else None

    def _label_on_disk(self, row: int) -> bool:
        value = self._has_label.get(row)
        if value is None:
            path = self._paths[row]
            value = self._has_label[row] = has_label_file(path, self._labels_dir(path))
        return value

    def _is_verified(self, row: int) -> bool:
        path = self._paths[row]
        if path in self._verified:
            return self._verified[path]
        value = self._verified_on_disk.get(row)
        if value is None:
            folder = self._labels_dir(path) or path.parent
            value = self._verified_on_disk[row] = voc_file_is_verified(folder / (path.stem + ".xml"))
        return value

    # --- Qt model --------------------------------------------------------------------
    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._paths)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._paths):
            return None
        row = index.row()
        path = self._paths[row]
        if role == Qt.ItemDataRole.DisplayRole:
            return path.name + (" *" if path in self._unsaved else "")
        if role == Qt.ItemDataRole.DecorationRole:
            state = self.state(row)
            return self._icon(state.has_label, state.unsaved, state.detected, state.verified)
        if role == Qt.ItemDataRole.ToolTipRole:
            state = self.state(row)
            notes = [
                "label file on disk" if state.has_label else "no label file",
                *(["verified"] if state.verified else []),
                *(["unsaved changes"] if state.unsaved else []),
                *(["detected"] if state.detected else []),
            ]
            return f"{path}\n" + ", ".join(notes)
        if role == self.HasLabelRole:
            return self._label_on_disk(row)
        if role == self.UnsavedRole:
            return path in self._unsaved
        if role == self.DetectedRole:
            return path in self._detected
        if role == self.PathRole:
            return str(path)
        if role == self.VerifiedRole:
            return self._is_verified(row)
        return None

    def _icon(self, has_label: bool, unsaved: bool, detected: bool, verified: bool = False) -> QIcon:
        """Three small dots (green = label on disk, orange = unsaved, blue = detected) and a
        check mark when the image is verified."""
        key = (has_label, unsaved, detected, verified)
        icon = self._icons.get(key)
        if icon is None:
            pixmap = QPixmap(42, 10)
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            for slot, (on, colour) in enumerate(((has_label, "#2e9e44"), (unsaved, "#e08a00"), (detected, "#2f6fde"))):
                painter.setPen(QColor(colour))
                painter.setBrush(QColor(colour) if on else Qt.GlobalColor.transparent)
                painter.drawEllipse(1 + slot * 10, 1, 7, 7)
            if verified:
                pen = QPen(QColor("#1b8a3a"), 2.0)
                pen.setCapStyle(Qt.PenCapStyle.RoundCap)
                painter.setPen(pen)
                painter.drawPolyline([QPointF(32, 5), QPointF(35, 8), QPointF(40, 1)])
            painter.end()
            icon = self._icons[key] = QIcon(pixmap)
        return icon


class ImageListDock(QDockWidget):
    """Dock listing the open images; ``image_activated(Path)`` when the user picks one."""

    image_activated = Signal(object)

    def __init__(self, session: Session | None = None, parent: QWidget | None = None) -> None:
        super().__init__("Images", parent)
        self.setObjectName("ImageListDock")
        self._model = ImageListModel(self)
        self._view = QListView()
        self._view.setUniformItemSizes(True)  # constant-time layout for 10,000+ rows
        self._view.setModel(self._model)
        self._view.setSelectionMode(QListView.SelectionMode.SingleSelection)
        self._view.selectionModel().currentChanged.connect(self._on_current_changed)
        self._count = QLabel()
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self._view)
        layout.addWidget(self._count)
        self.setWidget(body)
        self._model.modelReset.connect(self._update_count)
        self._update_count()
        if session is not None:
            self._follow(session)

    def _follow(self, session: Session) -> None:
        """Show ``session``'s image list and the label state of its images."""
        model = self._model
        session.images_opened.connect(self.set_paths)
        session.unsaved_changed.connect(model.set_unsaved)
        session.verified_changed.connect(model.set_verified)
        session.labels_saved.connect(model.refresh_label_state)
        session.label_dirs_changed.connect(model.set_label_dirs)

    @property
    def model(self) -> ImageListModel:
        return self._model

    @property
    def view(self) -> QListView:
        return self._view

    def set_paths(self, paths: Sequence[Path]) -> None:
        self._model.set_paths(paths)

    def current_row(self) -> int:
        index = self._view.currentIndex()
        return index.row() if index.isValid() else -1

    def set_current_row(self, row: int) -> None:
        """Select ``row`` without emitting ``image_activated``."""
        if row == self.current_row():
            return
        self._view.selectionModel().blockSignals(True)
        try:
            if row < 0:
                self._view.selectionModel().clear()
            else:
                index = self._model.index(row, 0)
                self._view.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
                self._view.scrollTo(index)
        finally:
            self._view.selectionModel().blockSignals(False)
        self._view.viewport().update()

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.image_activated.emit(self._model.path(current.row()))

    def _update_count(self) -> None:
        count = self._model.rowCount()
        self._count.setText(f"{count} image{'s' if count != 1 else ''}")
