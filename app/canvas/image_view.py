"""A zoomable, pannable view of one image with an overlay and a highlight, the base of the
labelling canvas (:class:`app.canvas.view.Canvas` adds the boxes and the editing).

Scene coordinates are original-image pixels (the image sits at the origin). Big photos: the
image is one QGraphicsPixmapItem drawn straight from its pixmap (Qt clips to the exposed
area, so a 6000x6000 photo pans by scrolling the viewport); bilinear filtering is switched
on only when zoomed out, and nothing rescales the pixmap per paint.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPaintEvent, QPen, QPixmap, QResizeEvent, QTransform, QWheelEvent
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsRectItem, QGraphicsScene, QGraphicsView, QWidget

from app.canvas import interaction
from app.canvas.items import Z_HIGHLIGHT, Z_IMAGE, Z_OVERLAY, box_rect
from app.common import shortcuts
from app.common.colors import rgb_to_qimage
from app.labelling.geometry import Box

__all__ = ["ImageView", "array_to_qimage"]


class ImageView(QGraphicsView):
    """Shows an image (fitted, or zoomed around the cursor by the wheel) with an optional
    overlay stretched over it and a highlighted rect.

    Signals: ``zoom_changed(scale)`` (view pixels per image pixel); ``painted(ms)`` after each
    repaint of the view, with the time it took. Subclasses hear of a new image through
    :meth:`_on_image` and of a new zoom through :meth:`_on_zoom`.
    """

    zoom_changed = Signal(float)
    painted = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self.setBackgroundBrush(QBrush(QColor(48, 48, 48)))
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing, True)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setDragMode(QGraphicsView.DragMode.NoDrag)

        self._pixmap_item = QGraphicsPixmapItem()
        self._pixmap_item.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)  # no mask of 36 Mpx
        self._pixmap_item.setZValue(Z_IMAGE)
        self._scene.addItem(self._pixmap_item)
        self._overlay_item = QGraphicsPixmapItem()
        self._overlay_item.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)
        self._overlay_item.setTransformationMode(Qt.TransformationMode.FastTransformation)  # crisp cells
        self._overlay_item.setZValue(Z_OVERLAY)
        self._overlay_item.setVisible(False)
        self._scene.addItem(self._overlay_item)
        self._highlight_item = QGraphicsRectItem()
        pen = QPen(QColor(255, 255, 0), 2.0, Qt.PenStyle.DashDotLine)
        pen.setCosmetic(True)
        self._highlight_item.setPen(pen)
        self._highlight_item.setZValue(Z_HIGHLIGHT)
        self._highlight_item.setVisible(False)
        self._scene.addItem(self._highlight_item)
        self._fit_mode = True

    # ------------------------------------------------------------------ image
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt API)
        start = time.perf_counter()
        super().paintEvent(event)
        self.painted.emit((time.perf_counter() - start) * 1000.0)

    def set_image(self, image: np.ndarray | QImage | QPixmap | None) -> None:
        """Show ``image``: (H, W, 3) uint8 RGB array (EXIF already applied), QImage or
        QPixmap; None or a null QImage clears. Clears the overlay and highlight, and fits
        the image in the view."""
        if image is None or (isinstance(image, (QImage, QPixmap)) and image.isNull()):
            pixmap = QPixmap()
        elif isinstance(image, QPixmap):
            pixmap = image
        elif isinstance(image, QImage):
            pixmap = QPixmap.fromImage(image)
        else:
            pixmap = QPixmap.fromImage(rgb_to_qimage(np.asarray(image)))
        self._pixmap_item.setPixmap(pixmap)
        self._scene.setSceneRect(QRectF(0, 0, pixmap.width(), pixmap.height()))
        self._on_image(pixmap.width(), pixmap.height())
        self.set_overlay(None)
        self.highlight_rect(None)
        self.zoom_fit()

    def image_size(self) -> tuple[int, int]:
        """(width, height) of the shown image; (0, 0) when none is shown."""
        pixmap = self._pixmap_item.pixmap()
        return (pixmap.width(), pixmap.height())

    def _on_image(self, width: int, height: int) -> None:
        """A new image of ``width`` x ``height`` pixels is shown (before it is fitted)."""

    # ------------------------------------------------------------------ overlay / highlight
    def set_overlay(
        self,
        image: np.ndarray | QImage | None,
        opacity: float = 0.5,
        *,
        rect: Box | None = None,
    ) -> None:
        """Draw ``image`` ((h, w, 3) RGB or (h, w, 4) RGBA uint8, or a QImage) over the photo,
        stretched over ``rect`` (xyxy image pixels; default the whole image), pixels kept
        blocky (one feature-map cell = one block). None removes it."""
        if image is None or (isinstance(image, QImage) and image.isNull()):
            self._overlay_item.setVisible(False)
            self._overlay_item.setPixmap(QPixmap())
            return
        if isinstance(image, np.ndarray):
            image = array_to_qimage(image)
        pixmap = QPixmap.fromImage(image)
        if rect is None:
            width, height = self.image_size()
            rect = (0.0, 0.0, float(width), float(height))
        self._overlay_item.setPixmap(pixmap)
        sx = (rect[2] - rect[0]) / max(pixmap.width(), 1)
        sy = (rect[3] - rect[1]) / max(pixmap.height(), 1)
        self._overlay_item.setTransform(QTransform.fromScale(sx, sy))
        self._overlay_item.setPos(rect[0], rect[1])
        self._overlay_item.setOpacity(opacity)
        self._overlay_item.setVisible(True)

    def highlight_rect(self, rect: QRectF | Box | None, *, ensure_visible: bool = False) -> None:
        """Outline ``rect`` (QRectF or xyxy, image pixels), e.g. a pyramid cell; None hides."""
        if rect is None:
            self._highlight_item.setVisible(False)
            return
        self._highlight_item.setRect(QRectF(rect) if isinstance(rect, QRectF) else box_rect(rect))
        self._highlight_item.setVisible(True)
        if ensure_visible:
            self.ensureVisible(self._highlight_item, 40, 40)

    # ------------------------------------------------------------------ zoom
    def zoom(self) -> float:
        """View pixels per image pixel."""
        return float(self.transform().m11())

    def zoom_fit(self) -> None:
        """Fit the whole image in the view (kept while the window resizes)."""
        rect = self._pixmap_item.boundingRect()
        if rect.isEmpty():
            self._set_transform(1.0)
        else:
            self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
            self._after_zoom()
        self._fit_mode = True

    def zoom_actual(self) -> None:
        """1:1 — one image pixel per screen pixel, keeping the view centre."""
        center = self.mapToScene(self.viewport().rect().center())
        self._set_transform(1.0)
        self.centerOn(center)

    def zoom_in(self) -> None:
        self.zoom_by(shortcuts.WHEEL_ZOOM_STEP)

    def zoom_out(self) -> None:
        self.zoom_by(1.0 / shortcuts.WHEEL_ZOOM_STEP)

    def zoom_by(self, factor: float) -> None:
        """Zoom by ``factor`` around the view centre."""
        self._zoom_at(factor, self.viewport().rect().center())

    def set_zoom(self, scale: float) -> None:
        """Zoom to ``scale`` view pixels per image pixel around the view centre."""
        self._zoom_at(scale / max(self.zoom(), 1e-9), self.viewport().rect().center())

    def _on_zoom(self) -> None:
        """The zoom changed (before ``zoom_changed`` is emitted)."""

    def _set_transform(self, scale: float) -> None:
        self.setTransform(QTransform.fromScale(scale, scale))
        self._after_zoom()

    def _after_zoom(self) -> None:
        scale = self.zoom()
        mode = Qt.TransformationMode.SmoothTransformation if scale < 1.0 else Qt.TransformationMode.FastTransformation
        if self._pixmap_item.transformationMode() != mode:
            self._pixmap_item.setTransformationMode(mode)
        self._on_zoom()
        self.zoom_changed.emit(scale)

    def _zoom_at(self, factor: float, pos: QPoint) -> None:
        """Scale by ``factor`` keeping the image point under viewport ``pos`` in place."""
        rect = self._pixmap_item.boundingRect()
        view = self.viewport().rect()
        lowest = interaction.min_zoom((rect.width(), rect.height()), (view.width(), view.height()))
        scale = interaction.zoom_clamped(self.zoom() * factor, lowest=lowest)
        anchor = self._to_image(pos)
        self._fit_mode = False
        self._set_transform(scale)
        moved = self.mapFromScene(anchor) - pos
        self._scroll_by(moved.x(), moved.y())

    def _scroll_by(self, dx: int, dy: int) -> None:
        """Scroll the view by (dx, dy) viewport pixels."""
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + dx)
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + dy)

    # ------------------------------------------------------------------ mapping
    def _to_image(self, pos: QPointF | QPoint) -> QPointF:
        """Viewport position -> image pixels (sub-pixel)."""
        inverse, _ok = self.viewportTransform().inverted()
        return inverse.map(QPointF(pos))

    def _image_point(self, pos: QPoint) -> interaction.Point:
        """Viewport position -> image pixels as a plain ``(x, y)``."""
        p = self._to_image(pos)
        return (p.x(), p.y())

    def _view_map(self) -> interaction.ViewMap:
        """Image pixels -> viewport pixels as a plain value (the view only scales and scrolls)."""
        transform = self.viewportTransform()
        return interaction.ViewMap(zoom=transform.m11(), dx=transform.dx(), dy=transform.dy())

    # ------------------------------------------------------------------ Qt events
    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        if self._fit_mode:
            self.zoom_fit()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt API)
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta:
            self._zoom_at(interaction.wheel_factor(delta, shortcuts.WHEEL_ZOOM_STEP), event.position().toPoint())
        event.accept()


def array_to_qimage(image: np.ndarray) -> QImage:
    """(h, w, 3) RGB or (h, w, 4) RGBA uint8 -> an independent QImage."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        h, w = image.shape[:2]
        return QImage(image.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
    return rgb_to_qimage(image)
