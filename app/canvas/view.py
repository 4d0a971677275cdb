"""The image canvas: shows one image with its detections and labels, and edits the labels.

Scene coordinates are original-image pixels (the image sits at the origin), so every box
here is ``(x1, y1, x2, y2)`` in those pixels. The canvas observes a
:class:`~app.labelling.document.LabelDocument`; an edit becomes one undo command on the document's
stack (a mouse drag is one command, pushed on release), and the canvas redraws when the
document changes. Mouse and keys follow LabelImg (see :mod:`app.common.shortcuts`).

Big photos: the image is one QGraphicsPixmapItem drawn straight from its pixmap (Qt clips
to the exposed area, so a 6000x6000 photo pans by scrolling the viewport); bilinear
filtering is switched on only when zoomed out, and nothing rescales the pixmap per paint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QBrush,
    QColor,
    QCursor,
    QImage,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPaintEvent,
    QPen,
    QPixmap,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QMenu,
    QRubberBand,
    QWidget,
)

from app.canvas.captions import Caption, Placement, layout_captions
from app.canvas.class_picker import ClassPicker
from app.canvas.items import (
    HANDLES,
    Box,
    DetectionItem,
    DetectionLayer,
    LabelItem,
    LayerItem,
    ShownDetection,
    box_rect,
    drag_box,
    handle_points,
    resize_box,
    smallest_containing,
    translate_boxes,
)
from app.common import shortcuts
from app.common.colors import class_name_color, rgb_to_qimage
from app.labelling.commands import set_difficult
from app.labelling.document import LabelDocument, ProjectClasses
from model.postprocess import Detections

#: ``chooser(parent, project, initial) -> class name or None``: asks for a class.
ClassChooser = Callable[[QWidget, ProjectClasses, str], "str | None"]

_Z_IMAGE, _Z_OVERLAY, _Z_DETECTIONS, _Z_LABELS, _Z_HIGHLIGHT = 0.0, 1.0, 2.0, 3.0, 4.0
_LABEL_CAPTION_PRIORITY = 2.0  # labels' captions are placed before any detection's (scores <= 1)
_HANDLE_TOLERANCE = 6.0  # viewport px around a handle centre that grab it
_CLICK_SLOP = 3  # viewport px a press may move and still count as a click
_MAX_ZOOM = 64.0
_HANDLE_CURSORS = {
    "tl": Qt.CursorShape.SizeFDiagCursor,
    "br": Qt.CursorShape.SizeFDiagCursor,
    "tr": Qt.CursorShape.SizeBDiagCursor,
    "bl": Qt.CursorShape.SizeBDiagCursor,
    "t": Qt.CursorShape.SizeVerCursor,
    "b": Qt.CursorShape.SizeVerCursor,
    "l": Qt.CursorShape.SizeHorCursor,
    "r": Qt.CursorShape.SizeHorCursor,
}


def _default_chooser(parent: QWidget, project: ProjectClasses, initial: str) -> str | None:
    return ClassPicker.get_class(parent, project, initial=initial)


@dataclass
class _Drag:
    """What the left (or panning) button is doing between press and release."""

    kind: str  # "create" | "move" | "resize" | "rubber" | "pan"
    start_view: QPoint
    start_image: QPointF
    rows: list[int] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)  # xyxy before the drag
    handle: str = ""
    grab_offset: QPointF = field(default_factory=QPointF)  # handle position - press position
    last_view: QPoint = field(default_factory=QPoint)
    moved: bool = False


class Canvas(QGraphicsView):
    """Image + detections (dashed, read-only) + labels (solid, editable) + overlay + highlight.

    Signals: ``mouse_moved(x, y)`` in image pixels (also outside the image);
    ``image_clicked(x, y)`` a left click (no drag) in image pixels;
    ``detection_selected(i)`` with ``i`` an index into the document's current detections;
    ``selection_changed(rows)``; ``zoom_changed(scale)`` (view pixels per image pixel);
    ``class_chosen(name)`` when the class picker gave a class (drawing or relabelling);
    ``document_changed(document)`` when another document is shown;
    ``painted(ms)`` after each repaint of the view, with the time it took.
    """

    mouse_moved = Signal(float, float)
    image_clicked = Signal(float, float)
    detection_selected = Signal(int)
    selection_changed = Signal(list)
    zoom_changed = Signal(float)
    painted = Signal(float)
    #: Space pressed and released without panning (LabelImg: verify the image).
    space_tapped = Signal()
    class_chosen = Signal(str)
    document_changed = Signal(object)

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        document: LabelDocument | None = None,
        class_chooser: ClassChooser | None = None,
    ) -> None:
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
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.viewport().setMouseTracking(True)

        self._pixmap_item = QGraphicsPixmapItem()
        self._pixmap_item.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)  # no mask of 36 Mpx
        self._pixmap_item.setZValue(_Z_IMAGE)
        self._scene.addItem(self._pixmap_item)
        self._overlay_item = QGraphicsPixmapItem()
        self._overlay_item.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)
        self._overlay_item.setTransformationMode(Qt.TransformationMode.FastTransformation)  # crisp cells
        self._overlay_item.setZValue(_Z_OVERLAY)
        self._overlay_item.setVisible(False)
        self._scene.addItem(self._overlay_item)
        self._detections_layer = DetectionLayer(_Z_DETECTIONS)
        self._labels_layer = LayerItem(_Z_LABELS)
        self._scene.addItem(self._detections_layer)
        self._scene.addItem(self._labels_layer)
        self._highlight_item = QGraphicsRectItem()
        pen = QPen(QColor(255, 255, 0), 2.0, Qt.PenStyle.DashDotLine)
        pen.setCosmetic(True)
        self._highlight_item.setPen(pen)
        self._highlight_item.setZValue(_Z_HIGHLIGHT)
        self._highlight_item.setVisible(False)
        self._scene.addItem(self._highlight_item)
        self._preview_item: QGraphicsRectItem | None = None
        self._rubber_band = QRubberBand(QRubberBand.Shape.Rectangle, self.viewport())

        self._label_items: list[LabelItem] = []
        self._detection_items: dict[int, DetectionItem] = {}
        self._detection_scores: dict[int, float] = {}
        self._captions: dict[Hashable, Placement] = {}  # the last caption layout
        self._hover_caption: Hashable | None = None
        self._selection: list[int] = []
        self._selected_detection = -1
        self._drag: _Drag | None = None
        self._creating = False
        self._space_down = False
        self._space_panned = False
        self._hidden = False
        self._fit_mode = True
        self._last_class = ""
        self._model_name = ""
        self._inference_size = 0
        self._owns_document = document is None
        self._class_chooser: ClassChooser = class_chooser or _default_chooser

        self._actions = self._make_actions()
        self._document: LabelDocument = document if document is not None else LabelDocument(parent=self)
        self._connect_document(self._document)
        self._sync_labels([])
        self._sync_detections()

    # ================================================================== public API
    # ------------------------------------------------------------------ image
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
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
        self._cancel_drag()
        self._pixmap_item.setPixmap(pixmap)
        self._scene.setSceneRect(QRectF(0, 0, pixmap.width(), pixmap.height()))
        if self._owns_document and not self._document.image_path:
            self._document.image_size = (pixmap.width(), pixmap.height())
        self.set_overlay(None)
        self.highlight_rect(None)
        self.zoom_fit()

    def image_size(self) -> tuple[int, int]:
        """(width, height) of the shown image; the document's when no image is shown."""
        pixmap = self._pixmap_item.pixmap()
        if not pixmap.isNull():
            return (pixmap.width(), pixmap.height())
        return self._document.image_size

    # ------------------------------------------------------------------ document
    def document(self) -> LabelDocument:
        return self._document

    def set_document(self, document: LabelDocument | None) -> None:
        """Show and edit ``document`` (None: an empty one). The canvas never owns labels.

        Detections set on the canvas carry over to a document that has none yet."""
        self._cancel_drag()
        self._disconnect_document(self._document)
        previous = self._document
        self._owns_document = document is None
        self._document = document if document is not None else LabelDocument(parent=self)
        if self._owns_document:
            self._document.image_size = self.image_size()
        if self._document.detections is None and previous.detections is not None:
            self._document.set_detections(
                previous.detections,
                class_names=previous.detection_class_names,
                model_name=previous.model_name,
                model_id=previous.model_id,
                size=previous.detection_size,
            )
        self._connect_document(self._document)
        self._selected_detection = -1
        self._sync_labels([])
        self._sync_detections()
        self.document_changed.emit(self._document)

    def set_detections(
        self,
        detections: Detections | None,
        class_names: Sequence[str],
        *,
        model_name: str | None = None,
        model_id: str = "",
        size: int | None = None,
    ) -> None:
        """Show ``detections`` (boxes xyxy in original-image pixels; ``class_ids`` index
        ``class_names``): stored on the document of the image, which draws them.
        ``model_name`` defaults to :meth:`set_model_name`'s; ``model_id`` is the model's
        fingerprint. Both are recorded with accepted and rejected detections, and rejections
        hide the detections of their own model only (by fingerprint when both are known).
        ``size``, the inference size they were made at, defaults to
        :meth:`set_inference_size`'s (0: unknown); it is recorded with rejections."""
        name = self._model_name if model_name is None else model_name
        size = self._inference_size if size is None else size
        self._document.set_detections(
            detections, class_names=class_names, model_name=name, model_id=model_id, size=size
        )

    def set_model_name(self, name: str) -> None:
        """Name of the model the next detections come from (e.g. the .onnx file name)."""
        self._model_name = name

    def set_inference_size(self, size: int) -> None:
        """Inference size of the shown detections and of those set next without one (0:
        unknown). The shown detections take it at once: it may come just after them."""
        self._inference_size = max(int(size), 0)
        document = self._document
        if document.detections is not None and document.detection_size != self._inference_size:
            document.set_detections(
                document.detections,
                class_names=document.detection_class_names,
                model_name=document.model_name,
                model_id=document.model_id,
                size=self._inference_size,
            )

    def last_class(self) -> str:
        """The class picked last: the picker preselects it for the next new box."""
        return self._last_class

    def set_last_class(self, name: str) -> None:
        self._last_class = str(name)

    def set_class_chooser(self, chooser: ClassChooser | None) -> None:
        """Replace the class picker popup (``None``: the default :class:`ClassPicker`)."""
        self._class_chooser = chooser or _default_chooser

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
            image = _array_to_qimage(image)
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

    # ------------------------------------------------------------------ editing
    def edit_actions(self) -> list[QAction]:
        """Create / Delete / Duplicate / Relabel / Hide all / Accept / Reject detection, with
        their shortcuts (active while the canvas has focus). Put them in a menu as they are;
        undo/redo actions come from ``document().undo_stack``."""
        return list(self._actions.values())

    def action(self, name: str) -> QAction:
        """One of :meth:`edit_actions` by its :mod:`app.common.shortcuts` name, e.g. "delete"."""
        return self._actions[name]

    def start_create(self) -> None:
        """Next left drag draws a new box (the W key)."""
        self._creating = True
        if self._hidden:
            self.set_boxes_hidden(False)
        self._update_cursor(None)

    def is_creating(self) -> bool:
        return self._creating

    def selected_rows(self) -> list[int]:
        """Rows (document label indices) of the selected labels, ascending."""
        return list(self._selection)

    def set_selected_rows(self, rows: Sequence[int]) -> None:
        n = len(self._label_items)
        self._set_selection(sorted({r for r in rows if 0 <= r < n}))

    def selected_detection(self) -> int:
        """Index of the clicked detection in the document's detections, or -1."""
        return self._selected_detection

    def label_rects(self) -> list[Box]:
        """Boxes (xyxy) as drawn now, one per document label (drag previews included)."""
        return [item.box() for item in self._label_items]

    def label_names(self) -> list[str]:
        """Class names as drawn now, one per document label."""
        return [item.name() for item in self._label_items]

    def detection_rects(self) -> dict[int, Box]:
        """Drawn detections: detection index -> box (xyxy)."""
        return {i: item.box() for i, item in self._detection_items.items()}

    def boxes_hidden(self) -> bool:
        return self._hidden

    def set_boxes_hidden(self, hidden: bool) -> None:
        """Hide or show every box, labels and detections (Ctrl+H)."""
        self._hidden = hidden
        self._labels_layer.setVisible(not hidden)
        self._detections_layer.setVisible(not hidden)
        if hidden:
            self._cancel_drag()
            self._set_selection([])
        self._actions["hide"].setChecked(hidden)

    def delete_selected(self) -> None:
        self._document.delete_rows(self._selection)

    def duplicate_selected(self) -> None:
        self._document.duplicate(self._selection)

    def relabel_selected(self) -> None:
        """Ask for a class (the picker) and give it to the selected labels."""
        if not self._selection:
            return
        current = self._document.entry(self._selection[0]).label.name
        name = self._class_chooser(self, self._document.project, current)
        if name:
            self._last_class = name
            self.class_chosen.emit(name)
            self._document.relabel(self._selection, name)

    def toggle_difficult_selected(self) -> None:
        """Mark the selected labels *difficult* (VOC), or, when all of them already are,
        not difficult; one undo step."""
        rows = self._selection
        if rows:
            difficult = not all(self._document.entry(r).label.difficult for r in rows)
            set_difficult(self._document, rows, difficult)

    def select_detection(self, index: int) -> None:
        """Select the detection ``index`` of the document's detections (-1: none), as a
        click on it would."""
        shown = index if index in self._detection_items else -1
        if shown != self._selected_detection:
            self._select_detection(shown)

    def accept_selected_detection(self) -> None:
        dets = self._document.detections
        if dets is not None and 0 <= self._selected_detection < len(dets):
            self._document.accept_detection(dets, self._selected_detection, self._document.model_name)

    def reject_selected_detection(self) -> None:
        dets = self._document.detections
        if dets is not None and 0 <= self._selected_detection < len(dets):
            self._document.reject_detection(self._selected_detection)

    def nudge_selected(self, dx: float, dy: float) -> None:
        """Move the selected labels by (dx, dy) image pixels, kept inside the image."""
        if not self._selection:
            return
        width, height = self._bounds()
        old = [self._document.entry(r).box for r in self._selection]
        new = translate_boxes(old, dx=dx, dy=dy, width=width, height=height)
        self._document.set_boxes(self._selection, new, text="Nudge Boxes")

    # ================================================================== document sync
    def _connect_document(self, document: LabelDocument) -> None:
        document.labels_changed.connect(self._on_labels_changed)
        document.detections_changed.connect(self._on_detections_changed)
        document.project.class_added.connect(self._on_class_added)

    def _disconnect_document(self, document: LabelDocument) -> None:
        try:
            document.labels_changed.disconnect(self._on_labels_changed)
            document.detections_changed.disconnect(self._on_detections_changed)
            document.project.class_added.disconnect(self._on_class_added)
        except (RuntimeError, TypeError):  # already deleted by its owner
            pass

    def _on_labels_changed(self, rows: list[int]) -> None:
        self._cancel_drag()
        self._sync_labels(rows)
        self._sync_detections()

    def _on_detections_changed(self) -> None:
        self._selected_detection = -1
        self._sync_detections()

    def _on_class_added(self, _name: str) -> None:
        self._sync_labels(self._selection)

    def _color(self, name: str) -> QColor:
        return class_name_color(name)  # from the name: the same in every session

    def _sync_labels(self, select_rows: list[int]) -> None:
        entries = self._document.entries()
        while len(self._label_items) > len(entries):
            item = self._label_items.pop()
            self._scene.removeItem(item)
        for row, entry in enumerate(entries):
            name = entry.label.name
            difficult = bool(entry.label.difficult)
            if row < len(self._label_items):
                self._label_items[row].set_label(box=entry.box, name=name, color=self._color(name), difficult=difficult)
            else:
                item = LabelItem(self._labels_layer, box=entry.box, name=name, color=self._color(name), difficult=difficult)
                self._label_items.append(item)
        self._selection = []
        self.set_selected_rows(select_rows)
        self._layout_captions()

    def _sync_detections(self) -> None:
        """Draw the document's visible detections, reusing the items of the previous ones
        (a slider step changes a few boxes, not all: see :class:`DetectionLayer`)."""
        document = self._document
        dets = document.detections
        indices = document.visible_detection_indices() if dets is not None else []
        shown: list[ShownDetection] = []
        scores: dict[int, float] = {}
        if dets is not None and indices:
            colors: dict[str, QColor] = {}
            rows = zip(
                indices,
                np.asarray(dets.boxes)[indices].tolist(),  # (K, 4) xyxy -> Python floats
                np.asarray(dets.scores)[indices].tolist(),
                np.asarray(dets.anchor_ids)[indices].tolist(),
                np.asarray(dets.class_ids)[indices].tolist(),
                strict=True,
            )
            for i, box, score, anchor_id, class_id in rows:
                scores[i] = score
                name = document.detection_name(i)
                color = colors.get(name)
                if color is None:
                    color = colors[name] = self._color(name)
                shown.append(
                    ShownDetection(index=i, key=(anchor_id, class_id), box=tuple(box), text=f"{name} {score:.2f}", color=color)
                )
        self._detection_items = self._detections_layer.show(shown, selected=self._selected_detection)
        self._detection_scores = scores
        self._layout_captions()

    # ------------------------------------------------------------------ captions
    def caption_rects(self, *, shown_only: bool = True) -> dict[tuple[str, int], Box]:
        """Caption rects as laid out now, xyxy in view pixels relative to the image's
        top-left corner (captions keep their screen size): ``("label", row)`` and
        ``("detection", index)`` keys; with ``shown_only``, only the captions on screen."""
        out: dict[tuple[str, int], Box] = {}
        for key, placement in self._captions.items():
            if not shown_only or self._caption_shown(key, placement):
                out[key] = placement.rect  # type: ignore[index]
        return out

    def _layout_captions(self) -> None:
        """Place every caption (labels first, then detections by score) so that none
        covers another and none is cut at the image edge (:mod:`app.canvas.captions`)."""
        scale = self.zoom()
        width, height = self._bounds()
        if scale <= 0 or width <= 0 or height <= 0:
            self._captions = {}
            return
        captions: list[Caption] = []
        for row, item in enumerate(self._label_items):
            rect = item.tag().boundingRect()
            captions.append(Caption(("label", row), item.box(), rect.width(), rect.height(), _LABEL_CAPTION_PRIORITY))
        for index, item in self._detection_items.items():
            rect = item.tag().boundingRect()
            score = self._detection_scores.get(index, 0.0)
            captions.append(Caption(("detection", index), item.box(), rect.width(), rect.height(), score))
        self._captions = layout_captions(captions, scale=scale, image_size=(width, height))
        for key, placement in self._captions.items():
            tag = self._caption_item(key)
            if tag is not None:
                x1, _y1, _x2, y2 = placement.rect
                tag.setPos(x1 / scale, y2 / scale)  # the tag's anchor is its bottom-left corner
        self._update_caption_visibility()

    def _caption_item(self, key: Hashable) -> Any:
        kind, index = key  # type: ignore[misc]
        if kind == "label":
            return self._label_items[index].tag() if index < len(self._label_items) else None
        item = self._detection_items.get(index)
        return None if item is None else item.tag()

    def _caption_shown(self, key: Hashable, placement: Placement) -> bool:
        if placement.placed or key == self._hover_caption:
            return True
        kind, index = key  # type: ignore[misc]
        return index in self._selection if kind == "label" else index == self._selected_detection

    def _update_caption_visibility(self) -> None:
        for key, placement in self._captions.items():
            tag = self._caption_item(key)
            if tag is not None:
                shown = self._caption_shown(key, placement)
                tag.setVisible(shown)
                tag.setZValue(0.0 if placement.placed else 1.0)  # a caption shown on demand goes on top

    def _set_hover_caption(self, pos: QPoint) -> None:
        p = self._to_image(pos)
        row = self._label_at(p)
        if row is not None:
            key: Hashable | None = ("label", row)
        else:
            detection = self._detection_at(p)
            key = None if detection is None else ("detection", detection)
        if key != self._hover_caption:
            self._hover_caption = key
            self._update_caption_visibility()

    def _set_selection(self, rows: list[int]) -> None:
        for row, item in enumerate(self._label_items):
            item.set_selected(row in rows)
        changed = rows != self._selection
        self._selection = rows
        self._update_caption_visibility()
        has = bool(rows)
        for name in ("delete", "duplicate", "relabel", "difficult"):
            self._actions[name].setEnabled(has)
        if changed:
            self.selection_changed.emit(list(rows))

    def _select_detection(self, index: int) -> None:
        for i, item in self._detection_items.items():
            item.set_selected(i == index)
        self._selected_detection = index
        self._update_caption_visibility()
        self._actions["accept_detection"].setEnabled(index >= 0)
        self._actions["reject_detection"].setEnabled(index >= 0)
        if index >= 0:
            self.detection_selected.emit(index)

    # ================================================================== actions
    def _make_actions(self) -> dict[str, QAction]:
        slots: dict[str, Callable[[], None]] = {
            "create": self.start_create,
            "delete": self.delete_selected,
            "duplicate": self.duplicate_selected,
            "relabel": self.relabel_selected,
            "difficult": self.toggle_difficult_selected,
            "hide": lambda: self.set_boxes_hidden(not self._hidden),
            "accept_detection": self.accept_selected_detection,
            "reject_detection": self.reject_selected_detection,
        }
        actions: dict[str, QAction] = {}
        for spec in shortcuts.EDIT_SHORTCUTS:
            action = QAction(spec.text, self)
            action.setShortcuts(spec.sequences())
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.setToolTip(spec.help)
            action.setStatusTip(spec.help)
            if spec.name == "hide":
                action.setCheckable(True)
                action.setChecked(False)
            action.triggered.connect(slots[spec.name])
            self.addAction(action)
            actions[spec.name] = action
        for name in ("delete", "duplicate", "relabel", "difficult", "accept_detection", "reject_detection"):
            actions[name].setEnabled(False)
        return actions

    # ================================================================== geometry helpers
    def _bounds(self) -> tuple[float, float]:
        w, h = self._document.image_size
        if w <= 0 or h <= 0:
            w, h = self.image_size()
        return float(w), float(h)

    def _to_image(self, pos: QPointF | QPoint) -> QPointF:
        """Viewport position -> image pixels (sub-pixel)."""
        inverse, _ok = self.viewportTransform().inverted()
        return inverse.map(QPointF(pos))

    def _label_at(self, p: QPointF) -> int | None:
        if self._hidden:
            return None
        return smallest_containing(enumerate(item.box() for item in self._label_items), p.x(), p.y())

    def _detection_at(self, p: QPointF) -> int | None:
        if self._hidden:
            return None
        return smallest_containing(((i, it.box()) for i, it in self._detection_items.items()), p.x(), p.y())

    def _handle_at(self, pos: QPoint) -> tuple[int, str] | None:
        """The selected label's handle under viewport position ``pos``: (row, handle)."""
        if self._hidden:
            return None
        best: tuple[float, int, str] | None = None
        for row in self._selection:
            for name, (x, y) in handle_points(self._label_items[row].box()).items():
                v = self.mapFromScene(QPointF(x, y))
                d = max(abs(v.x() - pos.x()), abs(v.y() - pos.y()))
                if d <= _HANDLE_TOLERANCE and (best is None or d < best[0]):
                    best = (d, row, name)
        return None if best is None else (best[1], best[2])

    # ================================================================== zoom internals
    def _set_transform(self, scale: float) -> None:
        self.setTransform(QTransform.fromScale(scale, scale))
        self._after_zoom()

    def _after_zoom(self) -> None:
        scale = self.zoom()
        mode = Qt.TransformationMode.SmoothTransformation if scale < 1.0 else Qt.TransformationMode.FastTransformation
        if self._pixmap_item.transformationMode() != mode:
            self._pixmap_item.setTransformationMode(mode)
        self._layout_captions()  # captions keep their screen size: the free spots change
        self.zoom_changed.emit(scale)

    def _min_zoom(self) -> float:
        rect = self._pixmap_item.boundingRect()
        if rect.isEmpty():
            return 0.01
        view = self.viewport().rect()
        fit = min(view.width() / rect.width(), view.height() / rect.height())
        return max(min(fit * 0.5, 1.0), 1e-3)

    def _zoom_at(self, factor: float, pos: QPoint) -> None:
        """Scale by ``factor`` keeping the image point under viewport ``pos`` in place."""
        scale = min(max(self.zoom() * factor, self._min_zoom()), _MAX_ZOOM)
        anchor = self._to_image(pos)
        self._fit_mode = False
        self._set_transform(scale)
        moved = self.mapFromScene(anchor) - pos
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + moved.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + moved.y())

    # ================================================================== Qt events
    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        if self._fit_mode:
            self.zoom_fit()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt API)
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta:
            self._zoom_at(shortcuts.WHEEL_ZOOM_STEP ** (delta / 120.0), event.position().toPoint())
        event.accept()

    def focusNextPrevChild(self, next: bool) -> bool:  # noqa: N802,A002 (Qt API)
        return False  # Tab / Shift+Tab cycle the selected box instead of moving focus

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        pos = event.position().toPoint()
        p = self._to_image(pos)
        button = event.button()
        if button in (Qt.MouseButton.MiddleButton, Qt.MouseButton.RightButton) or (
            button == Qt.MouseButton.LeftButton and self._space_down
        ):
            self._space_panned = self._space_down
            self._drag = _Drag("pan", pos, p, last_view=pos)
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if button != Qt.MouseButton.LeftButton or self._drag is not None:
            return
        ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        if self._creating:
            self._drag = _Drag("create", pos, p)
            self._preview_item = QGraphicsRectItem()
            pen = QPen(QColor(Qt.GlobalColor.white), 1.5, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            self._preview_item.setPen(pen)
            self._preview_item.setZValue(_Z_HIGHLIGHT)
            self._scene.addItem(self._preview_item)
            return
        handle = None if ctrl else self._handle_at(pos)
        if handle is not None:
            row, name = handle
            hx, hy = handle_points(self._label_items[row].box())[name]
            self._drag = _Drag(
                "resize", pos, p, rows=[row], boxes=[self._label_items[row].box()], handle=name,
                grab_offset=QPointF(hx - p.x(), hy - p.y()),
            )
            return
        row = self._label_at(p)
        if row is not None:
            if ctrl:
                rows = sorted(set(self._selection) ^ {row})
                self._set_selection(rows)
                if row not in rows:
                    return
            elif row not in self._selection:
                self._set_selection([row])
            self._drag = _Drag("move", pos, p, rows=list(self._selection),
                               boxes=[self._label_items[r].box() for r in self._selection])
            return
        detection = self._detection_at(p)
        self._select_detection(-1 if detection is None else detection)
        if not ctrl:
            self._set_selection([])
        self._drag = _Drag("rubber", pos, p, rows=list(self._selection) if ctrl else [])
        self._rubber_band.setGeometry(QRect(pos, QSize()))
        self._rubber_band.show()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        pos = event.position().toPoint()
        p = self._to_image(pos)
        self.mouse_moved.emit(p.x(), p.y())
        drag = self._drag
        if drag is None:
            self._update_cursor(pos)
            self._set_hover_caption(pos)
            return
        if (pos - drag.start_view).manhattanLength() > _CLICK_SLOP:
            drag.moved = True
        width, height = self._bounds()
        if drag.kind == "pan":
            delta = pos - drag.last_view
            drag.last_view = pos
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - delta.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - delta.y())
        elif drag.kind == "create" and self._preview_item is not None:
            start = (drag.start_image.x(), drag.start_image.y())
            box = drag_box(start, (p.x(), p.y()), width=width, height=height)
            self._preview_item.setRect(box_rect(box) if box else QRectF())
        elif drag.kind in ("move", "resize") and not drag.moved:
            return  # a click that jitters by a pixel must not move the box
        elif drag.kind == "move":
            dx = round(p.x() - drag.start_image.x())
            dy = round(p.y() - drag.start_image.y())
            boxes = translate_boxes(drag.boxes, dx=dx, dy=dy, width=width, height=height)
            for row, box in zip(drag.rows, boxes, strict=True):
                self._label_items[row].set_box(box)
        elif drag.kind == "resize":
            box = resize_box(
                drag.boxes[0], handle=drag.handle, x=p.x() + drag.grab_offset.x(), y=p.y() + drag.grab_offset.y(),
                width=width, height=height,
            )
            self._label_items[drag.rows[0]].set_box(box)
        elif drag.kind == "rubber":
            self._rubber_band.setGeometry(QRect(drag.start_view, pos).normalized())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        drag = self._drag
        if drag is None:
            return
        pos = event.position().toPoint()
        if drag.kind == "pan":
            self._drag = None
            self._update_cursor(pos)
            if event.button() == Qt.MouseButton.RightButton and not drag.moved:
                self._context_menu(event.globalPosition().toPoint())
            return
        if event.button() != Qt.MouseButton.LeftButton:
            return
        self._drag = None
        if drag.kind != "create" and not drag.moved:
            self.image_clicked.emit(drag.start_image.x(), drag.start_image.y())
        if drag.kind == "create":
            self._finish_create(drag, self._to_image(pos))
        elif drag.kind in ("move", "resize"):
            rows = drag.rows
            new = [self._label_items[r].box() for r in rows]
            text = "Resize Box" if drag.kind == "resize" else ("Move Box" if len(rows) == 1 else "Move Boxes")
            self._document.set_boxes(rows, new, text=text)  # one command per drag (no-op if unchanged)
            self._sync_labels(self._selection)  # a no-op drag leaves the items where they were
        elif drag.kind == "rubber":
            self._rubber_band.hide()
            if drag.moved:
                band = self.mapToScene(QRect(drag.start_view, pos).normalized()).boundingRect()
                hits = [r for r, item in enumerate(self._label_items) if band.intersects(item.rect())]
                self._set_selection(sorted(set(drag.rows) | set(hits)))
        self._update_cursor(pos)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        if event.button() != Qt.MouseButton.LeftButton or self._creating:
            return
        self._cancel_drag()
        p = self._to_image(event.position().toPoint())
        row = self._label_at(p)
        if row is not None:
            self._set_selection([row])
            self.relabel_selected()
            return
        detection = self._detection_at(p)
        if detection is not None:
            self._select_detection(detection)
            self.accept_selected_detection()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt API)
        key = event.key()
        mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        ctrl = Qt.KeyboardModifier.ControlModifier
        shift = Qt.KeyboardModifier.ShiftModifier
        if key == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space_down = True
                self._space_panned = False
                self._update_cursor(None)
            return
        if key == Qt.Key.Key_Escape:
            if self._drag is not None or self._creating:
                self._cancel_drag()
                self._creating = False
                self._update_cursor(None)
            else:
                self._set_selection([])
                self._select_detection(-1)
            return
        if key in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab) and not mods & ctrl:
            self._cycle(-1 if key == Qt.Key.Key_Backtab or mods & shift else 1)
            return
        arrows = {Qt.Key.Key_Left: (-1, 0), Qt.Key.Key_Right: (1, 0), Qt.Key.Key_Up: (0, -1), Qt.Key.Key_Down: (0, 1)}
        if key in arrows and self._selection and self._drag is None and not mods & ctrl:
            step = 10 if mods & shift else 1
            dx, dy = arrows[key]
            self.nudge_selected(dx * step, dy * step)
            return
        if mods == ctrl and key == Qt.Key.Key_Z:
            self._document.undo_stack.undo()
            return
        if (mods == ctrl | shift and key == Qt.Key.Key_Z) or (mods == ctrl and key == Qt.Key.Key_Y):
            self._document.undo_stack.redo()
            return
        # The edit actions' shortcuts normally fire first; this catches keys that reach the
        # canvas without going through the shortcut map (e.g. its window is not active).
        pressed = QKeySequence(event.keyCombination())
        for action in self._actions.values():
            if action.isEnabled() and any(
                pressed.matches(seq) == QKeySequence.SequenceMatch.ExactMatch for seq in action.shortcuts()
            ):
                action.trigger()
                return
        super().keyPressEvent(event)

    def event(self, event: QEvent) -> bool:
        """Space belongs to the canvas while it has the focus (hold: pan; tap:
        ``space_tapped``), not to a window shortcut on the same key."""
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and isinstance(event, QKeyEvent)
            and event.key() == Qt.Key.Key_Space
            and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        ):
            event.accept()
            return True
        return super().event(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt API)
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            tapped = self._space_down and not self._space_panned
            self._space_down = False
            self._update_cursor(None)
            if tapped:
                self.space_tapped.emit()
            return
        super().keyReleaseEvent(event)

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt API)
        self._space_down = False
        super().leaveEvent(event)

    # ================================================================== interaction internals
    def _finish_create(self, drag: _Drag, end: QPointF) -> None:
        if self._preview_item is not None:
            self._scene.removeItem(self._preview_item)
            self._preview_item = None
        width, height = self._bounds()
        box = drag_box((drag.start_image.x(), drag.start_image.y()), (end.x(), end.y()), width=width, height=height)
        if box is None or not drag.moved:
            return  # a click: stay in create mode
        self._creating = False
        name = self._class_chooser(self, self._document.project, self._last_class)
        if name:
            self._last_class = name
            self.class_chosen.emit(name)
            self._document.add_box(box, name)

    def _cancel_drag(self) -> None:
        drag, self._drag = self._drag, None
        if self._preview_item is not None:
            self._scene.removeItem(self._preview_item)
            self._preview_item = None
        self._rubber_band.hide()
        if drag is not None and drag.kind in ("move", "resize"):
            for row, box in zip(drag.rows, drag.boxes, strict=True):
                if row < len(self._label_items):
                    self._label_items[row].set_box(box)

    def _cycle(self, step: int) -> None:
        n = len(self._label_items)
        if n == 0 or self._hidden:
            return
        if not self._selection:
            row = 0 if step > 0 else n - 1
        else:
            row = ((self._selection[-1] if step > 0 else self._selection[0]) + step) % n
        self._set_selection([row])
        self.ensureVisible(self._label_items[row], 20, 20)

    def _context_menu(self, global_pos: QPoint) -> None:
        menu = QMenu(self)
        menu.addActions(self.edit_actions())
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(global_pos)

    def _update_cursor(self, pos: QPoint | None) -> None:
        if pos is None:
            pos = self.viewport().mapFromGlobal(QCursor.pos())
        if self._drag is not None and self._drag.kind == "pan":
            shape = Qt.CursorShape.ClosedHandCursor
        elif self._space_down:
            shape = Qt.CursorShape.OpenHandCursor
        elif self._creating:
            shape = Qt.CursorShape.CrossCursor
        elif (handle := self._handle_at(pos)) is not None:
            shape = _HANDLE_CURSORS[handle[1]]
        elif self._label_at(self._to_image(pos)) is not None:
            shape = Qt.CursorShape.SizeAllCursor
        else:
            shape = Qt.CursorShape.ArrowCursor
        self.viewport().setCursor(shape)


def _array_to_qimage(image: np.ndarray) -> QImage:
    """(h, w, 3) RGB or (h, w, 4) RGBA uint8 -> an independent QImage."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        h, w = image.shape[:2]
        return QImage(image.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
    return rgb_to_qimage(image)


__all__ = ["Canvas", "ClassChooser", "HANDLES"]
