"""Scene items of the labelling canvas (the box geometry they edit with is
:mod:`app.labelling.geometry`).

Every box here is ``(x1, y1, x2, y2)`` in original-image pixels (after EXIF orientation),
which are also the scene coordinates of the canvas (the image sits at the scene origin).
Labels (human-approved, editable) are drawn solid with a translucent fill and a name tag;
detections (model output, read-only) dashed with no fill and a "class 0.87" tag.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsRectItem,
    QStyleOptionGraphicsItem,
    QWidget,
)

from app.labelling.geometry import Box, handle_points

__all__ = [
    "Z_DETECTIONS",
    "Z_HIGHLIGHT",
    "Z_IMAGE",
    "Z_LABELS",
    "Z_OVERLAY",
    "box_rect",
    "rect_box",
    "LayerItem",
    "TagItem",
    "HandleItem",
    "LabelItem",
    "DetectionItem",
    "DetectionLayer",
    "ShownDetection",
]

#: Stacking of the canvas's scene, bottom to top: photo, overlay, detections, labels, highlight.
Z_IMAGE, Z_OVERLAY, Z_DETECTIONS, Z_LABELS, Z_HIGHLIGHT = 0.0, 1.0, 2.0, 3.0, 4.0


def box_rect(box: Box) -> QRectF:
    """xyxy -> QRectF."""
    return QRectF(QPointF(box[0], box[1]), QPointF(box[2], box[3])).normalized()


def rect_box(rect: QRectF) -> Box:
    """QRectF -> xyxy."""
    return (rect.left(), rect.top(), rect.right(), rect.bottom())


# --------------------------------------------------------------------------- items
class LayerItem(QGraphicsItem):
    """An invisible parent that groups one layer's items (hide/show, z-order)."""

    def __init__(self, z: float) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, True)
        self.setZValue(z)

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        return QRectF()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        pass


class TagItem(QGraphicsItem):
    """A small text tag (class name, score) drawn at constant screen size above its anchor."""

    _FONT: QFont | None = None
    _METRICS: QFontMetricsF | None = None

    def __init__(self, parent: QGraphicsItem, *, text: str, fill: QColor, text_color: QColor) -> None:
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self._text = ""
        self._fill = fill
        self._text_color = text_color
        self._rect = QRectF()
        self.set_text(text)

    @classmethod
    def font(cls) -> QFont:
        if cls._FONT is None:
            cls._FONT = QFont()
            cls._FONT.setPointSizeF(8.5)
        return cls._FONT

    @classmethod
    def metrics(cls) -> QFontMetricsF:
        if cls._METRICS is None:
            cls._METRICS = QFontMetricsF(cls.font())
        return cls._METRICS

    def set_text(self, text: str) -> None:
        if text == self._text and not self._rect.isNull():
            return
        self.prepareGeometryChange()
        self._text = text
        metrics = self.metrics()
        w = metrics.horizontalAdvance(text) + 6.0
        h = metrics.height() + 2.0
        self._rect = QRectF(0.0, -h, w, h)  # sits on top of the anchor point
        self.update()

    def text(self) -> str:
        return self._text

    def set_colors(self, *, fill: QColor, text_color: QColor) -> None:
        if fill == self._fill and text_color == self._text_color:
            return
        self._fill, self._text_color = QColor(fill), QColor(text_color)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.fillRect(self._rect, self._fill)
        painter.setFont(self.font())
        painter.setPen(self._text_color)
        painter.drawText(self._rect.adjusted(3.0, 0.0, -3.0, 0.0), Qt.AlignmentFlag.AlignVCenter, self._text)


class HandleItem(QGraphicsRectItem):
    """One resize handle: an 8x8 screen-pixel square, whatever the zoom."""

    SIZE = 8.0

    def __init__(self, parent: QGraphicsItem, color: QColor) -> None:
        half = self.SIZE / 2.0
        super().__init__(-half, -half, self.SIZE, self.SIZE, parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        pen = QPen(color, 1.0)
        pen.setCosmetic(True)
        self.setPen(pen)
        self.setBrush(QBrush(Qt.GlobalColor.white))


def _cosmetic_pen(color: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(color, width, style)
    pen.setCosmetic(True)
    pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
    return pen


def _readable_text_color(fill: QColor) -> QColor:
    luma = 0.299 * fill.redF() + 0.587 * fill.greenF() + 0.114 * fill.blueF()
    return QColor(Qt.GlobalColor.black) if luma > 0.6 else QColor(Qt.GlobalColor.white)


class LabelItem(QGraphicsRectItem):
    """A label box: solid outline and translucent fill in the class colour, a name tag, and
    8 handles while selected. It only draws; the canvas does the editing and the document
    holds the label."""

    FILL_ALPHA = 48

    def __init__(self, parent: QGraphicsItem, *, box: Box, name: str, color: QColor, difficult: bool = False) -> None:
        super().__init__(box_rect(box), parent)
        self._name = ""
        self._color = QColor(color)
        self._selected = False
        self._difficult = difficult
        self._styled = False
        self._handles: dict[str, HandleItem] = {}
        self._tag = TagItem(self, text=name, fill=color, text_color=_readable_text_color(color))
        self.set_label(box=box, name=name, color=color, difficult=difficult)

    def set_label(self, *, box: Box, name: str, color: QColor, difficult: bool = False) -> None:
        """Show ``box`` (xyxy) with class ``name`` in ``color``; a *difficult* label gets a
        hatched fill and "· difficult" in its tag. What did not change is left alone (no
        tag re-layout, no restyle)."""
        self._name = name
        self._tag.set_text(f"{name} · difficult" if difficult else name)
        if color != self._color or difficult != self._difficult or not self._styled:
            self._color = QColor(color)
            self._difficult = difficult
            self._tag.set_colors(fill=self._color, text_color=_readable_text_color(self._color))
            self._apply_style()
        self.set_box(box)

    def set_box(self, box: Box) -> None:
        """Move the outline (during a drag preview or after the document changed)."""
        self.setRect(box_rect(box))
        self._tag.setPos(box[0], box[1])
        for name, (x, y) in handle_points(box).items():
            if name in self._handles:
                self._handles[name].setPos(x, y)

    def box(self) -> Box:
        return rect_box(self.rect())

    def tag(self) -> TagItem:
        """The name tag (the canvas places it: :mod:`app.canvas.captions`)."""
        return self._tag

    def name(self) -> str:
        return self._name

    def is_difficult(self) -> bool:
        return self._difficult

    def is_selected(self) -> bool:
        return self._selected

    def set_selected(self, selected: bool) -> None:
        if selected == self._selected:
            return
        self._selected = selected
        if selected:
            for name, (x, y) in handle_points(self.box()).items():
                handle = HandleItem(self, self._color)
                handle.setPos(x, y)
                self._handles[name] = handle
        else:
            for handle in self._handles.values():
                handle.setParentItem(None)
                if handle.scene() is not None:
                    handle.scene().removeItem(handle)
            self._handles.clear()
        self._apply_style()

    def _apply_style(self) -> None:
        self._styled = True
        self.setPen(_cosmetic_pen(self._color, 3.0 if self._selected else 2.0))
        fill = QColor(self._color)
        if self._difficult:  # hatched: told apart at a glance, in any colour
            fill.setAlpha(200 if self._selected else 150)
            self.setBrush(QBrush(fill, Qt.BrushStyle.BDiagPattern))
            return
        fill.setAlpha(self.FILL_ALPHA * 2 if self._selected else self.FILL_ALPHA)
        self.setBrush(QBrush(fill))


_DETECTION_TAG_FILL = QColor(0, 0, 0, 170)


def _pastel(color: QColor) -> QColor:
    return QColor.fromHsv(color.hsvHue(), min(color.hsvSaturation(), 110), 255)


class DetectionItem(QGraphicsRectItem):
    """A detection: dashed outline in the class colour, no fill, a "class 0.87" tag.
    Read-only: it turns into a label only when accepted."""

    def __init__(self, parent: QGraphicsItem, *, box: Box, text: str, color: QColor) -> None:
        super().__init__(box_rect(box), parent)
        self._box = tuple(box)
        self._color = QColor(color)
        self._selected = False
        self.setBrush(Qt.BrushStyle.NoBrush)
        self._tag = TagItem(self, text=text, fill=_DETECTION_TAG_FILL, text_color=_pastel(self._color))
        self._tag.setPos(box[0], box[1])
        self._apply_style()

    def set_detection(self, *, box: Box, text: str, color: QColor) -> None:
        """Show ``box`` (xyxy) with ``text`` in ``color``, as if newly made; only what
        changed is touched (no tag re-layout for the same text, no restyle for the same
        colour), so reusing the item of an unchanged detection costs nothing."""
        if box != self._box:
            self._box = tuple(box)
            self.setRect(box_rect(box))
            self._tag.setPos(box[0], box[1])
        self._tag.set_text(text)
        if color != self._color:
            self._color = QColor(color)
            self._tag.set_colors(fill=_DETECTION_TAG_FILL, text_color=_pastel(self._color))
            self._apply_style()

    def text(self) -> str:
        return self._tag.text()

    def tag(self) -> TagItem:
        """The "class 0.87" tag (the canvas places it: :mod:`app.canvas.captions`)."""
        return self._tag

    def box(self) -> Box:
        return rect_box(self.rect())

    def set_selected(self, selected: bool) -> None:
        if selected == self._selected:
            return
        self._selected = selected
        self._apply_style()

    def _apply_style(self) -> None:
        self.setPen(_cosmetic_pen(self._color, 2.5 if self._selected else 1.5, Qt.PenStyle.DashLine))


@dataclass(frozen=True)
class ShownDetection:
    """One detection to draw: ``index`` into the current detections, ``key`` its identity
    across slider steps (e.g. anchor and class: the same candidate has the same box and
    score whatever the thresholds), ``box`` xyxy in image pixels, the tag ``text`` and the
    class ``color``."""

    index: int
    key: Hashable
    box: Box
    text: str
    color: QColor


class DetectionLayer(LayerItem):
    """The detections layer: one :class:`DetectionItem` per shown detection, kept from one
    :meth:`show` to the next.

    A slider step shows a set that mostly overlaps the previous one, so items are matched
    by :attr:`ShownDetection.key`: an item whose detection stays is left untouched, a new
    detection takes a spare item (updated in place) or, when there is none, a new one;
    items no longer needed are hidden and kept as spares (up to :attr:`MAX_SPARE`), still
    showing their old detection, so dragging back costs nothing either. Stacking follows
    the order given to :meth:`show` (later on top, as if created in that order)."""

    MAX_SPARE = 256

    def __init__(self, z: float) -> None:
        super().__init__(z)
        self._live: dict[Hashable, DetectionItem] = {}  # shown, by the key each shows
        self._spare: OrderedDict[Hashable, DetectionItem] = OrderedDict()  # hidden, oldest first

    def show(self, detections: Sequence[ShownDetection], *, selected: int = -1) -> dict[int, DetectionItem]:
        """Draw exactly ``detections`` (bottom to top), the one whose index is ``selected``
        selected; returns detection index -> its item."""
        previous = self._live
        live: dict[Hashable, DetectionItem | None] = {}
        missing: list[tuple[Hashable, ShownDetection]] = []
        for spec in detections:
            key = spec.key if spec.key not in live else (spec.index, spec.key)  # a repeated key
            item = previous.pop(key, None)
            if item is None and (item := self._spare.pop(key, None)) is not None:
                item.setVisible(True)
            if item is None:
                missing.append((key, spec))
            else:
                item.set_detection(box=spec.box, text=spec.text, color=spec.color)
            live[key] = item
        dropped = set(previous)  # shown until now, not any more: still visible
        self._spare.update(previous)  # the newest spares: dragging back wants them
        for key, spec in missing:
            if self._spare:
                old_key, item = self._spare.popitem(last=False)  # the oldest spare
                if old_key not in dropped:
                    item.setVisible(True)
                item.set_detection(box=spec.box, text=spec.text, color=spec.color)
            else:
                item = DetectionItem(self, box=spec.box, text=spec.text, color=spec.color)
            live[key] = item
        for key in dropped:
            if key in self._spare:
                self._spare[key].setVisible(False)
        while len(self._spare) > self.MAX_SPARE:
            _key, item = self._spare.popitem(last=False)
            scene = item.scene()
            if scene is not None:
                scene.removeItem(item)
        order = [item for item in live.values() if item is not None]
        _restack(order)
        shown = {}
        for spec, item in zip(detections, order, strict=True):
            item.set_selected(spec.index == selected)
            shown[spec.index] = item
        self._live = live  # type: ignore[assignment]  # every value is set by now
        return shown


def _restack(items: Sequence[QGraphicsItem]) -> None:
    """Give ``items`` strictly increasing z values (bottom to top) while changing as few as
    possible: the longest run of items already in order keeps its values, the others get
    values in between (all renumbered 0..n-1 when the gaps run out)."""
    n = len(items)
    if n == 0:
        return
    zs = [item.zValue() for item in items]
    keep = _longest_increasing(zs)
    new = list(zs)
    anchors = [-1, *keep, n]
    ok = True
    for left, right in zip(anchors, anchors[1:]):
        count = right - left - 1
        if count == 0:
            continue
        lo = zs[left] if left >= 0 else None
        hi = zs[right] if right < n else None
        if hi is None:  # above the last kept value (there is one: n > 0)
            values = [lo + 1.0 + j for j in range(count)]  # type: ignore[operator]
        elif lo is None:
            values = [hi - count + j for j in range(count)]
        else:
            step = (hi - lo) / (count + 1)
            values = [lo + step * (j + 1) for j in range(count)]
        bounded = [v for v in (lo, *values, hi) if v is not None]
        if any(b <= a for a, b in zip(bounded, bounded[1:])):
            ok = False  # no room left between two kept values
            break
        new[left + 1 : right] = values
    if not ok:
        new = [float(j) for j in range(n)]
    for item, old, z in zip(items, zs, new, strict=True):
        if z != old:
            item.setZValue(z)


def _longest_increasing(values: Sequence[float]) -> list[int]:
    """Positions of a longest strictly increasing subsequence of ``values``."""
    tails: list[float] = []  # smallest tail value of an increasing run of each length
    tail_at: list[int] = []
    before = [-1] * len(values)
    for i, v in enumerate(values):
        k = bisect_left(tails, v)
        if k == len(tails):
            tails.append(v)
            tail_at.append(i)
        else:
            tails[k] = v
            tail_at[k] = i
        before[i] = tail_at[k - 1] if k > 0 else -1
    out: list[int] = []
    i = tail_at[-1] if tail_at else -1
    while i >= 0:
        out.append(i)
        i = before[i]
    return out[::-1]

