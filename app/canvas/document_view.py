"""The image with a label document's boxes over it, and which of them are selected: the
read side of the labelling canvas (:class:`app.canvas.view.Canvas` adds the editing).

The view observes a :class:`~app.labelling.document.LabelDocument` and shows what it holds,
labels (solid) and detections (dashed); it redraws when the document changes and never
owns labels. Every box is ``(x1, y1, x2, y2)`` in original-image pixels, which are also the
scene coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from app.canvas import interaction
from app.canvas.image_view import ImageView
from app.canvas.layers import BoxLayers
from app.labelling.document import LabelDocument
from app.labelling.geometry import Box
from app.session import Session

__all__ = ["DocumentView"]


class DocumentView(ImageView):
    """Image + overlay + highlight (:class:`ImageView`) + the document's detections and labels.

    Signals: ``detection_selected(i)`` with ``i`` an index into the document's current
    detections; ``selection_changed(rows)``; ``document_changed(document)`` when another
    document is shown. Actions put in :attr:`_selection_actions` / :attr:`_detection_actions`
    are enabled only while a label / a detection is selected.
    """

    detection_selected = Signal(int)
    selection_changed = Signal(list)
    document_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None, *, document: LabelDocument | None = None) -> None:
        super().__init__(parent)
        self._layers = BoxLayers(self._scene)
        self._hidden = False
        self._selection_actions: list[QAction] = []
        self._detection_actions: list[QAction] = []
        self._owns_document = document is None
        self._document: LabelDocument = document if document is not None else LabelDocument(parent=self)
        self._connect_document(self._document)
        self._sync_labels([])
        self._sync_detections()

    # ------------------------------------------------------------------ document
    def image_size(self) -> tuple[int, int]:
        """(width, height) of the shown image; the document's when no image is shown."""
        if self._pixmap_item.pixmap().isNull():
            return self._document.image_size
        return super().image_size()

    def document(self) -> LabelDocument:
        return self._document

    def follow(self, session: Session) -> None:
        """Show ``session``'s document from now on (the window calls this once)."""
        session.document_changed.connect(self.set_document)

    def set_document(self, document: LabelDocument | None) -> None:
        """Show ``document`` (None: an empty one), its labels and the detections it holds."""
        self._cancel_drag()
        self._disconnect_document(self._document)
        self._owns_document = document is None
        self._document = document if document is not None else LabelDocument(parent=self)
        if self._owns_document:
            self._document.image_size = self.image_size()
        self._connect_document(self._document)
        self._layers.selected_detection = -1
        self._sync_labels([])
        self._sync_detections()
        self.document_changed.emit(self._document)

    # ------------------------------------------------------------------ what is shown
    def selected_rows(self) -> list[int]:
        """Rows (document label indices) of the selected labels, ascending."""
        return list(self._layers.selection)

    def set_selected_rows(self, rows: Sequence[int]) -> None:
        n = len(self._layers.labels)
        self._set_selection(sorted({r for r in rows if 0 <= r < n}))

    def selected_detection(self) -> int:
        """Index of the clicked detection in the document's detections, or -1."""
        return self._layers.selected_detection

    def select_detection(self, index: int) -> None:
        """Select the detection ``index`` of the document's detections (-1: none), as a
        click on it would."""
        shown = index if index in self._layers.detections else -1
        if shown != self._layers.selected_detection:
            self._select_detection(shown)

    def label_rects(self) -> list[Box]:
        """Boxes (xyxy) as drawn now, one per document label (drag previews included)."""
        return self._layers.label_boxes()

    def label_names(self) -> list[str]:
        """Class names as drawn now, one per document label."""
        return [item.name() for item in self._layers.labels]

    def detection_rects(self) -> dict[int, Box]:
        """Drawn detections: detection index -> box (xyxy)."""
        return self._layers.detection_boxes()

    def caption_rects(self, *, shown_only: bool = True) -> dict[tuple[str, int], Box]:
        """Caption rects as laid out now, xyxy in view pixels relative to the image's
        top-left corner (captions keep their screen size): ``("label", row)`` and
        ``("detection", index)`` keys; with ``shown_only``, only the captions on screen."""
        return self._layers.caption_rects(shown_only=shown_only)

    def boxes_hidden(self) -> bool:
        return self._hidden

    def set_boxes_hidden(self, hidden: bool) -> None:
        """Hide or show every box, labels and detections (hidden boxes cannot be picked)."""
        self._hidden = hidden
        self._layers.set_visible(not hidden)
        if hidden:
            self._cancel_drag()
            self._set_selection([])

    # ------------------------------------------------------------------ document sync
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
        self._layers.selected_detection = -1
        self._sync_detections()

    def _on_class_added(self, _name: str) -> None:
        self._sync_labels(self._layers.selection)

    def _sync_labels(self, select_rows: list[int]) -> None:
        self._layers.show_labels(self._document.entries())
        self.set_selected_rows(select_rows)
        self._layout_captions()

    def _sync_detections(self) -> None:
        self._layers.show_detections(self._document)
        self._layout_captions()

    def _layout_captions(self) -> None:
        self._layers.layout_captions(self.zoom(), self._bounds())

    def _on_zoom(self) -> None:
        self._layout_captions()  # captions keep their screen size: the free spots change

    def _on_image(self, width: int, height: int) -> None:
        self._cancel_drag()
        if self._owns_document and not self._document.image_path:
            self._document.image_size = (width, height)

    def _cancel_drag(self) -> None:
        """End an edit in progress without a trace (the editing subclass has them)."""

    # ------------------------------------------------------------------ selection
    def _set_selection(self, rows: list[int]) -> None:
        changed = self._layers.select_rows(rows)
        for action in self._selection_actions:
            action.setEnabled(bool(rows))
        if changed:
            self.selection_changed.emit(list(rows))

    def _select_detection(self, index: int) -> None:
        self._layers.select_detection(index)
        for action in self._detection_actions:
            action.setEnabled(index >= 0)
        if index >= 0:
            self.detection_selected.emit(index)

    # ------------------------------------------------------------------ geometry
    def _bounds(self) -> tuple[float, float]:
        """(width, height) boxes stay inside: the document's image size, else the image's."""
        w, h = self._document.image_size
        if w <= 0 or h <= 0:
            w, h = self.image_size()
        return float(w), float(h)

    def _targets(self) -> interaction.Targets:
        """What the pointer can hit now, as plain values (:mod:`app.canvas.interaction`)."""
        layers = self._layers
        return interaction.Targets(
            labels=layers.label_boxes(), detections=layers.detection_boxes(), selection=tuple(layers.selection),
            view=self._view_map(), hidden=self._hidden,
        )
