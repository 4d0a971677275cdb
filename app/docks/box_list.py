"""The *Boxes* dock: the labels and detections of the shown image, selection synced both
ways with the canvas, and a *difficult* check box per label (one undo step per click).

It observes the canvas (which document is shown, what is selected) and the document
(labels and detections); it owns nothing. Labels list their class, where they came from
(drawn / accepted from a model, with its score) and the *difficult* flag; detections their
class and score, strongest first, as the canvas draws them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QDockWidget, QHeaderView, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from app.common.colors import class_name_color
from app.labelling.commands import set_difficult

#: Item data role holding ("label", row) or ("detection", index).
KEY_ROLE = Qt.ItemDataRole.UserRole + 1
COLUMNS = ("Box", "Score", "Difficult")
DIFFICULT_COLUMN = 2
#: Detection rows are refreshed this long after the last change (a slider drag is many).
REFRESH_DELAY_MS = 80


class BoxList(QWidget):
    """The list itself (see the module docstring); ``canvas`` is an :class:`app.canvas.view.Canvas`."""

    def __init__(self, canvas: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._canvas = canvas
        self._document: Any = None
        self._syncing = False
        self._icons: dict[str, QIcon] = {}
        self._tree = QTreeWidget()
        self._tree.setColumnCount(len(COLUMNS))
        self._tree.setHeaderLabels(list(COLUMNS))
        self._tree.setRootIsDecorated(False)
        self._tree.setUniformRowHeights(True)
        self._tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        header = self._tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        # fixed widths: "resize to contents" re-measures every row on each change (0.1 ms a cell)
        metrics = self._tree.fontMetrics()
        for column, sample in ((1, "0.00 edited"), (2, COLUMNS[2])):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Fixed)
            header.resizeSection(column, metrics.horizontalAdvance(sample) + 24)
        self._labels_root = QTreeWidgetItem(["Labels"])
        self._detections_root = QTreeWidgetItem(["Detections"])
        for root in (self._labels_root, self._detections_root):
            root.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = root.font(0)
            font.setBold(True)
            root.setFont(0, font)
        self._tree.addTopLevelItems([self._labels_root, self._detections_root])
        self._labels_root.setExpanded(True)
        self._detections_root.setExpanded(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self._tree)
        # detections change on every slider step: their rows follow once the slider rests a
        # moment, so dragging a slider pays for the canvas only
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_DELAY_MS)
        self._refresh_timer.timeout.connect(self._rebuild_detections)

        self._tree.itemSelectionChanged.connect(self._on_tree_selection)
        self._tree.itemChanged.connect(self._on_item_changed)
        canvas.document_changed.connect(self._set_document)
        canvas.selection_changed.connect(lambda _rows: self._select_from_canvas())
        canvas.detection_selected.connect(lambda _index: self._select_from_canvas())
        self._set_document(canvas.document())

    # ------------------------------------------------------------------ public (tests, window)
    @property
    def tree(self) -> QTreeWidget:
        return self._tree

    def label_item(self, row: int) -> QTreeWidgetItem:
        return self._labels_root.child(row)

    def detection_item(self, position: int) -> QTreeWidgetItem:
        """The ``position``-th detection row (strongest first)."""
        return self._detections_root.child(position)

    def label_rows(self) -> list[tuple[str, str, bool]]:
        """(class, origin, difficult) of each label row, in document order."""
        return [
            (item.text(0), item.text(1), item.checkState(DIFFICULT_COLUMN) == Qt.CheckState.Checked)
            for item in (self._labels_root.child(i) for i in range(self._labels_root.childCount()))
        ]

    def detection_rows(self) -> list[tuple[int, str, str]]:
        """(detection index, class, score text) of each detection row, strongest first."""
        self.flush()
        return [
            (item.data(0, KEY_ROLE)[1], item.text(0), item.text(1))
            for item in (self._detections_root.child(i) for i in range(self._detections_root.childCount()))
        ]

    def flush(self) -> None:
        """Apply a pending detection refresh now."""
        if self._refresh_timer.isActive():
            self._refresh_timer.stop()
            self._rebuild_detections()

    # ------------------------------------------------------------------ document
    def _set_document(self, document: Any) -> None:
        if self._document is not None:
            try:
                self._document.labels_changed.disconnect(self._on_labels_changed)
                self._document.detections_changed.disconnect(self._schedule_detections)
            except (RuntimeError, TypeError):  # already deleted by its owner
                pass
        self._document = document
        document.labels_changed.connect(self._on_labels_changed)
        document.detections_changed.connect(self._schedule_detections)
        self._rebuild_labels()
        self._rebuild_detections()

    def _on_labels_changed(self, _rows: list[int]) -> None:
        self._rebuild_labels()
        self._schedule_detections()  # accepting a detection hides it

    def _schedule_detections(self) -> None:
        self._refresh_timer.start()

    def _icon(self, name: str) -> QIcon:
        icon = self._icons.get(name)
        if icon is None:
            pixmap = QPixmap(10, 10)
            pixmap.fill(QColor(class_name_color(name)))
            icon = self._icons[name] = QIcon(pixmap)
        return icon

    def _rebuild_labels(self) -> None:
        document = self._document
        with QSignalBlocker(self._tree):
            self._labels_root.takeChildren()
            items = []
            for row, entry in enumerate(document.entries()):
                provenance = entry.provenance
                origin = "drawn"
                if provenance.score is not None:
                    origin = f"{provenance.score:.2f}" + (" edited" if provenance.edited else "")
                elif provenance.source not in ("drawn", ""):
                    origin = str(provenance.source)
                item = QTreeWidgetItem([entry.label.name, origin, ""])
                item.setIcon(0, self._icon(entry.label.name))
                item.setData(0, KEY_ROLE, ("label", row))
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(DIFFICULT_COLUMN, Qt.CheckState.Checked if entry.label.difficult else Qt.CheckState.Unchecked)
                item.setToolTip(0, "x1 {:.0f}, y1 {:.0f}, x2 {:.0f}, y2 {:.0f}".format(*entry.box))
                items.append(item)
            self._labels_root.addChildren(items)
            self._labels_root.setText(0, f"Labels ({len(items)})")
        self._select_from_canvas()

    def _rebuild_detections(self) -> None:
        """Show the document's visible detections. Rows are reused (a slider step changes a
        few detections, not all), so a step costs a few text updates, not a new list."""
        document = self._document
        dets = document.detections
        indices = document.visible_detection_indices() if dets is not None else []
        scores = np.asarray(dets.scores)[indices].tolist() if indices else []
        root = self._detections_root
        self._tree.setUpdatesEnabled(False)  # one repaint for the whole step
        with QSignalBlocker(self._tree):
            surplus = root.childCount() - len(indices)
            if surplus > 0:
                for _ in range(surplus):
                    root.takeChild(root.childCount() - 1)
            elif surplus < 0:
                fresh = []
                for _ in range(-surplus):
                    item = QTreeWidgetItem(["", "", ""])
                    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                    fresh.append(item)
                root.addChildren(fresh)
            for position, (index, score) in enumerate(zip(indices, scores, strict=True)):
                item = root.child(position)
                name = document.detection_name(index)
                if item.text(0) != name:
                    item.setText(0, name)
                    item.setIcon(0, self._icon(name))
                text = f"{score:.2f}"
                if item.text(1) != text:
                    item.setText(1, text)
                key = ("detection", int(index))
                if item.data(0, KEY_ROLE) != key:
                    item.setData(0, KEY_ROLE, key)
            root.setText(0, f"Detections ({len(indices)})")
        self._tree.setUpdatesEnabled(True)
        self._select_from_canvas()

    # ------------------------------------------------------------------ selection sync
    def _select_from_canvas(self) -> None:
        if self._syncing:
            return
        rows = set(self._canvas.selected_rows())
        detection = self._canvas.selected_detection()
        self._syncing = True
        try:
            with QSignalBlocker(self._tree):
                self._tree.clearSelection()
                current = None
                for i in range(self._labels_root.childCount()):
                    item = self._labels_root.child(i)
                    if i in rows:
                        item.setSelected(True)
                        current = current or item
                for i in range(self._detections_root.childCount()):
                    item = self._detections_root.child(i)
                    if item.data(0, KEY_ROLE)[1] == detection:
                        item.setSelected(True)
                        current = current or item
                if current is not None:
                    self._tree.scrollToItem(current)
        finally:
            self._syncing = False

    def _on_tree_selection(self) -> None:
        if self._syncing:
            return
        keys = [item.data(0, KEY_ROLE) for item in self._tree.selectedItems()]
        keys = [k for k in keys if k is not None]
        rows = sorted(k[1] for k in keys if k[0] == "label")
        detections = [k[1] for k in keys if k[0] == "detection"]
        self._syncing = True
        try:
            self._canvas.set_selected_rows(rows)
            self._canvas.select_detection(detections[-1] if detections and not rows else -1)
        finally:
            self._syncing = False

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        key = item.data(0, KEY_ROLE)
        if column != DIFFICULT_COLUMN or key is None or key[0] != "label":
            return
        set_difficult(self._document, [key[1]], item.checkState(DIFFICULT_COLUMN) == Qt.CheckState.Checked)


class BoxListDock(QDockWidget):
    def __init__(self, canvas: Any, parent: QWidget | None = None) -> None:
        super().__init__("Boxes", parent)
        self.setObjectName("BoxListDock")
        self._panel = BoxList(canvas)
        self.setWidget(self._panel)

    @property
    def panel(self) -> BoxList:
        return self._panel


__all__ = ["BoxList", "BoxListDock", "COLUMNS", "KEY_ROLE"]
