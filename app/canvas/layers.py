"""The boxes the canvas draws: label items, detection items, their captions and which of
them are selected.

:class:`BoxLayers` keeps the scene in step with a document (labels solid and editable,
detections dashed and read-only) and places the captions so that none covers another
(:mod:`app.canvas.captions`). It only draws: the view (:mod:`app.canvas.view`) decides what
the pointer and keys do and emits the signals.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsScene

from app.canvas.captions import Caption, Placement, layout_captions
from app.canvas.items import Z_DETECTIONS, Z_LABELS, DetectionItem, DetectionLayer, LabelItem, LayerItem, ShownDetection
from app.common.colors import class_name_color
from app.labelling.document import LabelDocument, LabelEntry
from app.labelling.geometry import Box

__all__ = ["BoxLayers"]

_LABEL_CAPTION_PRIORITY = 2.0  # labels' captions are placed before any detection's (scores <= 1)


class BoxLayers:
    """The label and detection items on ``scene``, the selected rows and detection, the
    caption layout and the caption the pointer hovers."""

    def __init__(self, scene: QGraphicsScene) -> None:
        self.detections_layer = DetectionLayer(Z_DETECTIONS)
        self.labels_layer = LayerItem(Z_LABELS)
        scene.addItem(self.detections_layer)
        scene.addItem(self.labels_layer)
        self._scene = scene
        self.labels: list[LabelItem] = []
        self.detections: dict[int, DetectionItem] = {}
        self.selection: list[int] = []
        self.selected_detection = -1
        self._scores: dict[int, float] = {}
        self._captions: dict[Hashable, Placement] = {}  # the last caption layout
        self._hover: Hashable | None = None

    # ------------------------------------------------------------------ what is drawn
    def label_boxes(self) -> list[Box]:
        """Label boxes (xyxy) as drawn now, by document row (drag previews included)."""
        return [item.box() for item in self.labels]

    def detection_boxes(self) -> dict[int, Box]:
        """Drawn detections: detection index -> box (xyxy)."""
        return {i: item.box() for i, item in self.detections.items()}

    def set_visible(self, visible: bool) -> None:
        self.labels_layer.setVisible(visible)
        self.detections_layer.setVisible(visible)

    def show_labels(self, entries: Sequence[LabelEntry]) -> None:
        """Draw ``entries`` (one item per document row, reused in place); the selection is
        forgotten (the caller selects again)."""
        while len(self.labels) > len(entries):
            item = self.labels.pop()
            self._scene.removeItem(item)
        for row, entry in enumerate(entries):
            name = entry.label.name
            difficult = bool(entry.label.difficult)
            color = class_name_color(name)  # from the name: the same in every session
            if row < len(self.labels):
                self.labels[row].set_label(box=entry.box, name=name, color=color, difficult=difficult)
            else:
                self.labels.append(LabelItem(self.labels_layer, box=entry.box, name=name, color=color, difficult=difficult))
        self.selection = []

    def show_detections(self, document: LabelDocument) -> None:
        """Draw the document's visible detections, reusing the items of the previous ones
        (a slider step changes a few boxes, not all: see :class:`DetectionLayer`)."""
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
                    color = colors[name] = class_name_color(name)
                shown.append(
                    ShownDetection(index=i, key=(anchor_id, class_id), box=tuple(box), text=f"{name} {score:.2f}", color=color)
                )
        self.detections = self.detections_layer.show(shown, selected=self.selected_detection)
        self._scores = scores

    # ------------------------------------------------------------------ selection
    def select_rows(self, rows: list[int]) -> bool:
        """Mark ``rows`` selected (handles, bolder outline); whether the selection changed."""
        for row, item in enumerate(self.labels):
            item.set_selected(row in rows)
        changed = rows != self.selection
        self.selection = rows
        self.update_caption_visibility()
        return changed

    def select_detection(self, index: int) -> None:
        """Mark detection ``index`` selected (-1: none)."""
        for i, item in self.detections.items():
            item.set_selected(i == index)
        self.selected_detection = index
        self.update_caption_visibility()

    # ------------------------------------------------------------------ captions
    def caption_rects(self, *, shown_only: bool = True) -> dict[tuple[str, int], Box]:
        """Caption rects as laid out now, xyxy in view pixels relative to the image's
        top-left corner: ``("label", row)`` and ``("detection", index)`` keys; with
        ``shown_only``, only the captions on screen."""
        out: dict[tuple[str, int], Box] = {}
        for key, placement in self._captions.items():
            if not shown_only or self._caption_shown(key, placement):
                out[key] = placement.rect  # type: ignore[index]
        return out

    def layout_captions(self, scale: float, bounds: tuple[float, float]) -> None:
        """Place every caption (labels first, then detections by score) so that none
        covers another and none is cut at the image edge, at zoom ``scale`` on an image of
        ``bounds`` (width, height) pixels."""
        width, height = bounds
        if scale <= 0 or width <= 0 or height <= 0:
            self._captions = {}
            return
        captions: list[Caption] = []
        for row, item in enumerate(self.labels):
            rect = item.tag().boundingRect()
            captions.append(Caption(("label", row), item.box(), rect.width(), rect.height(), _LABEL_CAPTION_PRIORITY))
        for index, item in self.detections.items():
            rect = item.tag().boundingRect()
            score = self._scores.get(index, 0.0)
            captions.append(Caption(("detection", index), item.box(), rect.width(), rect.height(), score))
        self._captions = layout_captions(captions, scale=scale, image_size=(width, height))
        for key, placement in self._captions.items():
            tag = self._caption_item(key)
            if tag is not None:
                x1, _y1, _x2, y2 = placement.rect
                tag.setPos(x1 / scale, y2 / scale)  # the tag's anchor is its bottom-left corner
        self.update_caption_visibility()

    def set_hover(self, key: Hashable | None) -> None:
        """The caption under the pointer (``None``: none) is shown even when it did not fit."""
        if key != self._hover:
            self._hover = key
            self.update_caption_visibility()

    def update_caption_visibility(self) -> None:
        for key, placement in self._captions.items():
            tag = self._caption_item(key)
            if tag is not None:
                tag.setVisible(self._caption_shown(key, placement))
                tag.setZValue(0.0 if placement.placed else 1.0)  # a caption shown on demand goes on top

    def _caption_item(self, key: Hashable) -> Any:
        kind, index = key  # type: ignore[misc]
        if kind == "label":
            return self.labels[index].tag() if index < len(self.labels) else None
        item = self.detections.get(index)
        return None if item is None else item.tag()

    def _caption_shown(self, key: Hashable, placement: Placement) -> bool:
        if placement.placed or key == self._hover:
            return True
        kind, index = key  # type: ignore[misc]
        return index in self.selection if kind == "label" else index == self.selected_detection
