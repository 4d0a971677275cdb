"""The image canvas: shows one image with its detections and labels, and edits the labels.

Scene coordinates are original-image pixels (the image sits at the origin), so every box
here is ``(x1, y1, x2, y2)`` in those pixels. The canvas shows what its
:class:`~app.labelling.document.LabelDocument` holds (:class:`~app.canvas.document_view.DocumentView`);
an edit becomes one undo command on the document's stack (a mouse drag is one command, pushed
on release), and the canvas redraws when the document changes. Mouse and keys follow
LabelImg (see :mod:`app.common.shortcuts`); what they do is decided by the pure functions of
:mod:`app.canvas.interaction`: this module turns Qt events into their arguments and applies
their answers.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QCursor, QKeyEvent, QKeySequence, QMouseEvent, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QMenu, QRubberBand, QWidget

from app.canvas import interaction
from app.canvas.actions import DETECTION_ACTIONS, SELECTION_ACTIONS, make_edit_actions
from app.canvas.class_picker import ClassPicker
from app.canvas.document_view import DocumentView
from app.canvas.items import Z_HIGHLIGHT, box_rect, rect_box
from app.labelling.commands import set_difficult
from app.labelling.document import LabelDocument, ProjectClasses
from app.labelling.geometry import Box, translate_boxes

__all__ = ["Canvas", "ClassChooser"]

#: ``chooser(parent, project, initial) -> class name or None``: asks for a class.
ClassChooser = Callable[[QWidget, ProjectClasses, str], "str | None"]

_BUTTONS = {Qt.MouseButton.LeftButton: "left", Qt.MouseButton.MiddleButton: "middle", Qt.MouseButton.RightButton: "right"}
_KEYS = {
    Qt.Key.Key_Escape: "escape", Qt.Key.Key_Tab: "tab", Qt.Key.Key_Backtab: "backtab", Qt.Key.Key_Left: "left",
    Qt.Key.Key_Right: "right", Qt.Key.Key_Up: "up", Qt.Key.Key_Down: "down", Qt.Key.Key_Z: "z", Qt.Key.Key_Y: "y",
}
_MODIFIERS = (
    (Qt.KeyboardModifier.ControlModifier, "ctrl"), (Qt.KeyboardModifier.ShiftModifier, "shift"),
    (Qt.KeyboardModifier.AltModifier, "alt"), (Qt.KeyboardModifier.MetaModifier, "meta"),
    (Qt.KeyboardModifier.GroupSwitchModifier, "group_switch"),
)
_CURSORS = {
    "pan_active": Qt.CursorShape.ClosedHandCursor,
    "pan_ready": Qt.CursorShape.OpenHandCursor,
    "create": Qt.CursorShape.CrossCursor,
    "resize_fdiag": Qt.CursorShape.SizeFDiagCursor,
    "resize_bdiag": Qt.CursorShape.SizeBDiagCursor,
    "resize_vertical": Qt.CursorShape.SizeVerCursor,
    "resize_horizontal": Qt.CursorShape.SizeHorCursor,
    "move": Qt.CursorShape.SizeAllCursor,
    "arrow": Qt.CursorShape.ArrowCursor,
}


def _default_chooser(parent: QWidget, project: ProjectClasses, initial: str) -> str | None:
    return ClassPicker.get_class(parent, project, initial=initial)


def _modifier_names(modifiers: Qt.KeyboardModifier) -> frozenset[str]:
    """Qt modifiers (the keypad flag ignored) -> the names :mod:`.interaction` uses."""
    return frozenset(name for flag, name in _MODIFIERS if modifiers & flag)


class Canvas(DocumentView):
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
    #: Space pressed and released without panning (LabelImg: verify the image).
    space_tapped = Signal()
    class_chosen = Signal(str)

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        document: LabelDocument | None = None,
        class_chooser: ClassChooser | None = None,
    ) -> None:
        super().__init__(parent, document=document)
        self._drag: interaction.Drag | None = None
        self._preview_item: QGraphicsRectItem | None = None
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.viewport().setMouseTracking(True)
        self._rubber_band = QRubberBand(QRubberBand.Shape.Rectangle, self.viewport())
        self._creating = False
        self._space_down = False
        self._space_panned = False
        self._last_class = ""
        self._class_chooser: ClassChooser = class_chooser or _default_chooser
        self._actions = make_edit_actions(self, {
            "create": self.start_create,
            "delete": self.delete_selected,
            "duplicate": self.duplicate_selected,
            "relabel": self.relabel_selected,
            "difficult": self.toggle_difficult_selected,
            "hide": lambda: self.set_boxes_hidden(not self._hidden),
            "accept_detection": self.accept_selected_detection,
            "reject_detection": self.reject_selected_detection,
        })
        self._selection_actions = [self._actions[name] for name in SELECTION_ACTIONS]
        self._detection_actions = [self._actions[name] for name in DETECTION_ACTIONS]

    # ================================================================== public API
    def last_class(self) -> str:
        """The class picked last: the picker preselects it for the next new box."""
        return self._last_class

    def set_last_class(self, name: str) -> None:
        self._last_class = str(name)

    def set_class_chooser(self, chooser: ClassChooser | None) -> None:
        """Replace the class picker popup (``None``: the default :class:`ClassPicker`)."""
        self._class_chooser = chooser or _default_chooser

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

    def set_boxes_hidden(self, hidden: bool) -> None:
        """Hide or show every box, labels and detections (Ctrl+H)."""
        super().set_boxes_hidden(hidden)
        self._actions["hide"].setChecked(hidden)

    def delete_selected(self) -> None:
        self._document.delete_rows(self._layers.selection)

    def duplicate_selected(self) -> None:
        self._document.duplicate(self._layers.selection)

    def relabel_selected(self) -> None:
        """Ask for a class (the picker) and give it to the selected labels."""
        if not self._layers.selection:
            return
        name = self._choose_class(self._document.entry(self._layers.selection[0]).label.name)
        if name:
            self._document.relabel(self._layers.selection, name)

    def toggle_difficult_selected(self) -> None:
        """Mark the selected labels *difficult* (VOC), or, when all of them already are,
        not difficult; one undo step."""
        rows = self._layers.selection
        if rows:
            difficult = not all(self._document.entry(r).label.difficult for r in rows)
            set_difficult(self._document, rows, difficult)

    def accept_selected_detection(self) -> None:
        dets, index = self._document.detections, self._layers.selected_detection
        if dets is not None and 0 <= index < len(dets):
            self._document.accept_detection(dets, index, self._document.model_name)

    def reject_selected_detection(self) -> None:
        dets, index = self._document.detections, self._layers.selected_detection
        if dets is not None and 0 <= index < len(dets):
            self._document.reject_detection(index)

    def nudge_selected(self, dx: float, dy: float) -> None:
        """Move the selected labels by (dx, dy) image pixels, kept inside the image."""
        rows = self._layers.selection
        if not rows:
            return
        width, height = self._bounds()
        old = [self._document.entry(r).box for r in rows]
        new = translate_boxes(old, dx=dx, dy=dy, width=width, height=height)
        self._document.set_boxes(rows, new, text="Nudge Boxes")

    # ================================================================== Qt events
    def focusNextPrevChild(self, next: bool) -> bool:  # noqa: N802,A002 (Qt API)
        return False  # Tab / Shift+Tab cycle the selected box instead of moving focus

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        pos = event.position().toPoint()
        press = interaction.press(
            self._targets(), button=_BUTTONS.get(event.button(), ""), point=self._image_point(pos), pos=(pos.x(), pos.y()),
            ctrl=bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier), space_down=self._space_down,
            creating=self._creating, dragging=self._drag is not None,
        )
        if press.detection is not None:
            self._select_detection(press.detection)
        if press.selection is not None:
            self._set_selection(press.selection)
        if press.drag is None:
            return
        self._drag = press.drag
        if press.drag.kind == interaction.PAN:
            self._space_panned = self._space_down
            self.viewport().setCursor(_CURSORS["pan_active"])
        elif press.drag.kind == interaction.CREATE:
            self._preview_item = QGraphicsRectItem()
            pen = QPen(QColor(Qt.GlobalColor.white), 1.5, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            self._preview_item.setPen(pen)
            self._preview_item.setZValue(Z_HIGHLIGHT)
            self._scene.addItem(self._preview_item)
        elif press.drag.kind == interaction.RUBBER:
            self._rubber_band.setGeometry(QRect(pos, QSize()))
            self._rubber_band.show()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        pos = event.position().toPoint()
        point = self._image_point(pos)
        self.mouse_moved.emit(*point)
        if self._drag is None:
            targets = self._targets()
            self._update_cursor(pos, targets)
            self._layers.set_hover(interaction.caption_key_at(targets, point))
            return
        step = interaction.drag_step(self._drag, point=point, pos=(pos.x(), pos.y()), bounds=self._bounds())
        self._drag = step.drag
        if step.drag.kind == interaction.PAN:
            self._scroll_by(-step.scroll[0], -step.scroll[1])
        elif step.drag.kind == interaction.CREATE and self._preview_item is not None:
            self._preview_item.setRect(box_rect(step.preview) if step.preview else QRectF())
        elif step.band is not None:
            self._rubber_band.setGeometry(QRect(QPoint(*step.band[0]), QPoint(*step.band[1])).normalized())
        for row, box in step.boxes:
            self._layers.labels[row].set_box(box)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        drag = self._drag
        if drag is None:
            return
        pos = event.position().toPoint()
        done = interaction.release(drag, button=_BUTTONS.get(event.button(), ""), point=self._image_point(pos), bounds=self._bounds())
        if not done.ended:
            return
        self._drag = None
        if done.kind == interaction.PAN:
            self._update_cursor(pos)
            if done.context_menu:
                self._context_menu(event.globalPosition().toPoint())
            return
        if done.click is not None:
            self.image_clicked.emit(*done.click)
        if done.kind == interaction.CREATE:
            self._finish_create(done.new_box)
        elif done.kind in (interaction.MOVE, interaction.RESIZE):
            new = [self._layers.labels[r].box() for r in done.rows]
            self._document.set_boxes(done.rows, new, text=done.text)  # one command per drag (no-op if unchanged)
            self._sync_labels(self._layers.selection)  # a no-op drag leaves the items where they were
        elif done.kind == interaction.RUBBER:
            self._rubber_band.hide()
            if done.select_band:
                band = rect_box(self.mapToScene(QRect(QPoint(*drag.start_view), pos).normalized()).boundingRect())
                self._set_selection(interaction.band_selection(drag.rows, self._layers.label_boxes(), band))
        self._update_cursor(pos)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        if event.button() != Qt.MouseButton.LeftButton or self._creating:
            return
        self._cancel_drag()
        targets, point = self._targets(), self._image_point(event.position().toPoint())
        row = interaction.label_at(targets, point)
        if row is not None:
            self._set_selection([row])
            self.relabel_selected()
            return
        detection = interaction.detection_at(targets, point)
        if detection is not None:
            self._select_detection(detection)
            self.accept_selected_detection()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt API)
        if event.key() == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space_down = True
                self._space_panned = False
                self._update_cursor(None)
            return
        command = interaction.key_command(
            _KEYS.get(event.key(), ""), _modifier_names(event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier),
            busy=self._drag is not None or self._creating, dragging=self._drag is not None,
            has_selection=bool(self._layers.selection),
        )
        if command is not None:
            self._run_key_command(command)
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
    def _run_key_command(self, command: interaction.KeyCommand) -> None:
        if command.name == "cancel":
            self._cancel_drag()
            self._creating = False
            self._update_cursor(None)
        elif command.name == "clear":
            self._set_selection([])
            self._select_detection(-1)
        elif command.name == "cycle":
            self._cycle(command.step)
        elif command.name == "nudge":
            self.nudge_selected(*command.delta)
        elif command.name == "undo":
            self._document.undo_stack.undo()
        elif command.name == "redo":
            self._document.undo_stack.redo()

    def _choose_class(self, initial: str) -> str | None:
        """Ask the class picker; a class given becomes the last class."""
        name = self._class_chooser(self, self._document.project, initial)
        if name:
            self._last_class = name
            self.class_chosen.emit(name)
        return name

    def _finish_create(self, box: Box | None) -> None:
        if self._preview_item is not None:
            self._scene.removeItem(self._preview_item)
            self._preview_item = None
        if box is None:
            return  # a click: stay in create mode
        self._creating = False
        name = self._choose_class(self._last_class)
        if name:
            self._document.add_box(box, name)

    def _cancel_drag(self) -> None:
        drag, self._drag = self._drag, None
        if self._preview_item is not None:
            self._scene.removeItem(self._preview_item)
            self._preview_item = None
        self._rubber_band.hide()
        if drag is not None and drag.kind in (interaction.MOVE, interaction.RESIZE):
            labels = self._layers.labels
            for row, box in zip(drag.rows, drag.boxes, strict=True):
                if row < len(labels):
                    labels[row].set_box(box)

    def _cycle(self, step: int) -> None:
        row = None if self._hidden else interaction.cycle_row(self._layers.selection, len(self._layers.labels), step)
        if row is not None:
            self._set_selection([row])
            self.ensureVisible(self._layers.labels[row], 20, 20)

    def _context_menu(self, global_pos: QPoint) -> None:
        menu = QMenu(self)
        menu.addActions(self.edit_actions())
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(global_pos)

    def _update_cursor(self, pos: QPoint | None, targets: interaction.Targets | None = None) -> None:
        if pos is None:
            pos = self.viewport().mapFromGlobal(QCursor.pos())
        if targets is None:
            targets = self._targets()
        handle = interaction.handle_at(targets, (pos.x(), pos.y()))
        role = interaction.cursor_role(
            panning=self._drag is not None and self._drag.kind == interaction.PAN, space_down=self._space_down,
            creating=self._creating, handle=None if handle is None else handle[1],
            over_label=interaction.label_at(targets, self._image_point(pos)) is not None,
        )
        self.viewport().setCursor(_CURSORS[role])
