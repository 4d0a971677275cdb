"""A horizontal colour bar: the colormap from ``low`` to ``high`` with tick values, so a
colour on a pyramid map can be read as a number."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QFontMetrics, QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.common.colors import colorize, rgb_to_qimage

#: Tick marks: fractions of the range that get a value written under them.
TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)


def format_tick(value: float) -> str:
    """Short text for a tick value (4 significant digits, no trailing noise)."""
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"


class ColorBar(QWidget):
    """Paints ``colormap`` over ``[low, high]`` with :data:`TICKS` labelled, and a title
    (e.g. "shared scale, P3–P7") at the left above the bar."""

    BAR_HEIGHT = 10

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._colormap = "viridis"
        self._low = 0.0
        self._high = 1.0
        self._title = ""
        self._gradient: QImage | None = None
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        metrics = QFontMetrics(self.font())
        self.setFixedHeight(metrics.height() * 2 + self.BAR_HEIGHT + 6)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(200, self.height())

    def set_scale(self, low: float, high: float, *, colormap: str, title: str = "") -> None:
        if colormap != self._colormap or self._gradient is None:
            self._colormap = colormap
            ramp = np.arange(256, dtype=np.uint8)[None, :]
            self._gradient = rgb_to_qimage(colorize(ramp, colormap))
        self._low, self._high, self._title = float(low), float(high), title
        self.update()

    def scale(self) -> tuple[float, float]:
        return self._low, self._high

    def title(self) -> str:
        return self._title

    def tick_labels(self) -> list[str]:
        """The values written under the bar, left to right."""
        return [format_tick(self._low + t * (self._high - self._low)) for t in TICKS]

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        metrics = painter.fontMetrics()
        line = metrics.height()
        margin = 4.0
        bar = QRectF(margin, line + 2, max(self.width() - 2 * margin, 1.0), self.BAR_HEIGHT)
        painter.setPen(self.palette().windowText().color())
        painter.drawText(QRectF(margin, 0, bar.width(), line), Qt.AlignmentFlag.AlignLeft, self._title)
        if self._gradient is not None:
            painter.drawImage(bar, self._gradient)
        painter.drawRect(bar)
        for fraction, text in zip(TICKS, self.tick_labels(), strict=True):
            x = bar.left() + fraction * bar.width()
            painter.drawLine(int(x), int(bar.bottom()), int(x), int(bar.bottom() + 2))
            width = metrics.horizontalAdvance(text)
            left = min(max(x - width / 2, 0.0), self.width() - width)
            painter.drawText(QRectF(left, bar.bottom() + 2, width + 1, line), Qt.AlignmentFlag.AlignLeft, text)
        painter.end()


__all__ = ["TICKS", "ColorBar", "format_tick"]
