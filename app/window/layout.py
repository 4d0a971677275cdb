"""Where the window's docks go and how big they start, and file drops onto the window."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QFrame, QMainWindow, QScrollArea


def scroll_when_small(dock: QDockWidget) -> None:
    """Let ``dock`` shrink below its content's size (its content scrolls), so the window
    fits a 1366x768 laptop screen instead of growing past it."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(dock.widget())
    dock.setWidget(area)


def initial_size(window: QMainWindow) -> tuple[int, int]:
    """1400x900, or the screen's free area when that is smaller (a 1366x768 laptop)."""
    free = window.screen().availableGeometry() if window.screen() is not None else None
    if free is None or free.isEmpty():
        return 1400, 900
    return min(1400, free.width()), min(900, free.height())


def apply_default_layout(
    window: QMainWindow, *, images: QDockWidget, boxes: QDockWidget, detection: QDockWidget, pyramid: QDockWidget
) -> None:
    """First start: side docks wide enough for their controls (and no wider), the
    Detection dock as tall as its controls, the rest to the feature pyramid; the image
    list gets 30% of the left side, Boxes / Quality the rest."""
    side = min(400, max(360, window.width() // 4))
    left = min(320, max(290, window.width() // 5))
    window.resizeDocks([images, detection], [left, side], Qt.Orientation.Horizontal)
    area = detection.widget()
    panel = area.widget()
    content = panel.heightForWidth(area.viewport().width()) if panel.hasHeightForWidth() else -1
    wanted = max(content, panel.sizeHint().height()) + 2 * area.frameWidth()
    area.setMinimumHeight(min(wanted, window.height() // 2))  # resizeDocks alone may give it less
    window.resizeDocks([detection, pyramid], [wanted, max(window.height() - wanted, 1)], Qt.Orientation.Vertical)
    files = max(160, int(window.height() * 0.3))  # the file list scrolls anyway
    window.resizeDocks([images, boxes], [files, max(window.height() - files, 1)], Qt.Orientation.Vertical)
    QTimer.singleShot(0, lambda: area.setMinimumHeight(0))  # then the user may shrink it again


def dropped_paths(event: Any) -> list[Path]:
    """The local files of a drag-and-drop event (none for other drags)."""
    mime = event.mimeData() if hasattr(event, "mimeData") else None
    if mime is None or not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


class FileDrops(QObject):
    """Accepts file drops on the widgets it filters and hands the paths to ``open_paths``
    (other drags go on to the widget: the canvas keeps its own)."""

    def __init__(self, open_paths: Callable[[list[Path]], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._open_paths = open_paths

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        kind = event.type()
        if kind not in (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop):
            return False
        paths = dropped_paths(event)
        if not paths:
            return False
        event.acceptProposedAction()  # type: ignore[attr-defined]
        if kind == QEvent.Type.Drop:
            self._open_paths(paths)
        return True


__all__ = ["FileDrops", "apply_default_layout", "dropped_paths", "initial_size", "scroll_when_small"]
