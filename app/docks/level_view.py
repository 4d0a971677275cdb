"""One pyramid level's map as a widget: scaled to fit (nearest neighbour), the highlighted
cell outlined, the cell under the mouse reported."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget


class LevelImageView(QWidget):
    """Paints one level map scaled to fit (nearest-neighbour), outlines a highlighted cell
    and reports the cell under the mouse."""

    hovered = Signal(int, int)  # row, col; (-1, -1) when the mouse leaves the map
    clicked = Signal()

    def __init__(self, minimum: int = 64, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setMinimumSize(minimum, minimum)
        self._image: QImage | None = None
        self._cell: tuple[int, int] | None = None
        self._selected = False

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(self.minimumWidth(), self.minimumHeight())

    def set_image(self, image: QImage | None) -> None:
        self._image = image
        self.update()

    def set_highlight(self, cell: tuple[int, int] | None) -> None:
        self._cell = cell
        self.update()

    def set_selected(self, selected: bool) -> None:
        self._selected = selected
        self.update()

    def map_rect(self) -> QRectF:
        """Where the map is drawn inside the widget (aspect kept, centred)."""
        if self._image is None or self._image.isNull():
            return QRectF()
        w, h = self._image.width(), self._image.height()
        side = min(self.width() / w, self.height() / h)
        return QRectF((self.width() - w * side) / 2, (self.height() - h * side) / 2, w * side, h * side)

    def cell_at(self, pos: QPointF) -> tuple[int, int] | None:
        rect = self.map_rect()
        if rect.isEmpty() or not rect.contains(pos) or self._image is None:
            return None
        col = int((pos.x() - rect.left()) / rect.width() * self._image.width())
        row = int((pos.y() - rect.top()) / rect.height() * self._image.height())
        return min(row, self._image.height() - 1), min(col, self._image.width() - 1)

    def cell_center(self, row: int, col: int) -> QPointF:
        """Widget position of the centre of cell (row, col) (for tests and tooltips)."""
        rect = self.map_rect()
        assert self._image is not None
        return QPointF(
            rect.left() + (col + 0.5) * rect.width() / self._image.width(),
            rect.top() + (row + 0.5) * rect.height() / self._image.height(),
        )

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().window())
        rect = self.map_rect()
        if self._image is not None and not rect.isEmpty():
            painter.drawImage(rect, self._image)  # default: nearest-neighbour
            if self._cell is not None:
                row, col = self._cell
                cw = rect.width() / self._image.width()
                ch = rect.height() / self._image.height()
                painter.setPen(QPen(QColor("#ff2d55"), 2))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRect(QRectF(rect.left() + col * cw, rect.top() + row * ch, cw, ch).adjusted(-1, -1, 1, 1))
        if self._selected:
            painter.setPen(QPen(self.palette().highlight().color(), 3))
            painter.drawRect(self.rect().adjusted(1, 1, -2, -2))
        painter.end()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        cell = self.cell_at(event.position())
        self.hovered.emit(*(cell if cell is not None else (-1, -1)))

    def leaveEvent(self, _event: Any) -> None:  # noqa: N802
        self.hovered.emit(-1, -1)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()


__all__ = ["LevelImageView"]
