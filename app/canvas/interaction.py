"""What the canvas's mouse and keys do, as pure functions on plain values (no Qt).

The view (:mod:`app.canvas.view`) turns each Qt event into plain values (points as float
tuples, buttons, keys and modifiers as names), asks these functions what happens, and
applies the answer (moves scene items, pushes one undo command, emits signals). Keeping the
decisions here lets them be tested without a window, as labelme keeps its canvas logic out
of its widget.

Image points are ``(x, y)`` in original-image pixels (the scene coordinates of the canvas);
view positions are whole viewport pixels. A drag lives from press to release:

* **create** — a left press while drawing (W): the drag spans the new box;
* **resize** — a left press on a handle of a selected label (not with Ctrl);
* **move** — a left press on a label (Ctrl+click toggles it in the selection);
* **rubber** — a left press on empty space (Shift or not): a rubber band adds the labels
  it touches (to the selection kept by Ctrl, or to none);
* **pan** — a middle or right press, or a left one while Space is held.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from app.labelling.geometry import Box, drag_box, handle_points, resize_box, translate_boxes

__all__ = [
    "CLICK_SLOP",
    "CREATE",
    "HANDLE_ROLES",
    "HANDLE_TOLERANCE",
    "MAX_ZOOM",
    "MOVE",
    "PAN",
    "RESIZE",
    "RUBBER",
    "Drag",
    "DragStep",
    "KeyCommand",
    "Point",
    "Press",
    "Release",
    "Targets",
    "ViewMap",
    "ViewPos",
    "band_selection",
    "boxes_intersect",
    "caption_key_at",
    "cursor_role",
    "cycle_row",
    "detection_at",
    "drag_step",
    "handle_at",
    "key_command",
    "label_at",
    "min_zoom",
    "nudge_delta",
    "press",
    "release",
    "rubber_band_rows",
    "smallest_containing",
    "wheel_factor",
    "zoom_clamped",
]

Point = tuple[float, float]
"""x, y in image pixels (sub-pixel)."""

ViewPos = tuple[int, int]
"""x, y in whole viewport pixels."""

#: Viewport pixels around a handle centre that grab it.
HANDLE_TOLERANCE = 6.0
#: Viewport pixels (Manhattan) a press may move and still count as a click.
CLICK_SLOP = 3
#: Largest zoom, view pixels per image pixel.
MAX_ZOOM = 64.0

CREATE, MOVE, RESIZE, RUBBER, PAN = "create", "move", "resize", "rubber", "pan"

#: Cursor role of each handle: the diagonal, vertical or horizontal double arrow.
HANDLE_ROLES: dict[str, str] = {
    "tl": "resize_fdiag",
    "br": "resize_fdiag",
    "tr": "resize_bdiag",
    "bl": "resize_bdiag",
    "t": "resize_vertical",
    "b": "resize_vertical",
    "l": "resize_horizontal",
    "r": "resize_horizontal",
}

_ARROWS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}


# --------------------------------------------------------------------------- hit-testing
@dataclass(frozen=True)
class ViewMap:
    """Image pixels -> viewport pixels: the canvas only scales (``zoom``, the same along x
    and y) and scrolls (``dx``, ``dy``: where the image origin is in the viewport)."""

    zoom: float = 1.0
    dx: float = 0.0
    dy: float = 0.0

    def to_view(self, x: float, y: float) -> ViewPos:
        """The viewport pixel of image point ``(x, y)``, rounded as Qt rounds it."""
        return (_qround(x * self.zoom + self.dx), _qround(y * self.zoom + self.dy))


def _qround(v: float) -> int:
    """Round half away from zero (``qRound``; Python's :func:`round` rounds half to even)."""
    return int(v + 0.5) if v >= 0.0 else int(v - 0.5)


@dataclass(frozen=True)
class Targets:
    """What the pointer can hit now: the drawn label boxes (by document row), the drawn
    detection boxes (by detection index), the selected rows, the view mapping, and whether
    every box is hidden (then nothing is hit)."""

    labels: Sequence[Box] = ()
    detections: Mapping[int, Box] = field(default_factory=dict)
    selection: Sequence[int] = ()
    view: ViewMap = field(default_factory=ViewMap)
    hidden: bool = False


def smallest_containing(boxes: Iterable[tuple[int, Box]], x: float, y: float) -> int | None:
    """Among ``(key, box)`` pairs (xyxy), the key of the smallest box containing ``(x, y)``
    (nested boxes stay reachable); ``None`` when no box contains it."""
    best: tuple[float, int] | None = None
    for key, (x1, y1, x2, y2) in boxes:
        if x1 <= x <= x2 and y1 <= y <= y2:
            area = (x2 - x1) * (y2 - y1)
            if best is None or area < best[0]:
                best = (area, key)
    return None if best is None else best[1]


def label_at(targets: Targets, point: Point) -> int | None:
    """Row of the label under image ``point`` (the smallest one containing it)."""
    if targets.hidden:
        return None
    return smallest_containing(enumerate(targets.labels), point[0], point[1])


def detection_at(targets: Targets, point: Point) -> int | None:
    """Index of the detection under image ``point`` (the smallest one containing it)."""
    if targets.hidden:
        return None
    return smallest_containing(targets.detections.items(), point[0], point[1])


def handle_at(targets: Targets, pos: ViewPos, *, tolerance: float = HANDLE_TOLERANCE) -> tuple[int, str] | None:
    """The selected label's handle under viewport ``pos``: ``(row, handle)``, the nearest
    within ``tolerance`` viewport pixels (handles keep their screen size at any zoom)."""
    if targets.hidden:
        return None
    best: tuple[float, int, str] | None = None
    for row in targets.selection:
        for name, (x, y) in handle_points(targets.labels[row]).items():
            vx, vy = targets.view.to_view(x, y)
            d = max(abs(vx - pos[0]), abs(vy - pos[1]))
            if d <= tolerance and (best is None or d < best[0]):
                best = (d, row, name)
    return None if best is None else (best[1], best[2])


def caption_key_at(targets: Targets, point: Point) -> tuple[str, int] | None:
    """The caption to show while the pointer hovers ``point``: ``("label", row)`` of the
    label under it, else ``("detection", index)``, else ``None``."""
    row = label_at(targets, point)
    if row is not None:
        return ("label", row)
    detection = detection_at(targets, point)
    return None if detection is None else ("detection", detection)


def boxes_intersect(a: Box, b: Box) -> bool:
    """Whether two boxes (xyxy, normalised) share area, as ``QRectF.intersects``: touching
    edges do not count and an empty box intersects nothing."""
    if a[0] == a[2] or a[1] == a[3] or b[0] == b[2] or b[1] == b[3]:
        return False
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def rubber_band_rows(labels: Sequence[Box], band: Box) -> list[int]:
    """Rows of the labels the rubber ``band`` (xyxy image pixels) touches."""
    return [row for row, box in enumerate(labels) if boxes_intersect(band, box)]


def cursor_role(
    *, panning: bool, space_down: bool, creating: bool, handle: str | None, over_label: bool
) -> str:
    """The pointer's role: ``"pan_active"`` while panning, ``"pan_ready"`` while Space is
    held, ``"create"`` while drawing, the handle's role (:data:`HANDLE_ROLES`) over a handle,
    ``"move"`` over a label, else ``"arrow"``; the view maps roles to cursor shapes."""
    if panning:
        return "pan_active"
    if space_down:
        return "pan_ready"
    if creating:
        return "create"
    if handle is not None:
        return HANDLE_ROLES[handle]
    if over_label:
        return "move"
    return "arrow"


# --------------------------------------------------------------------------- drags
@dataclass(frozen=True)
class Drag:
    """What the pressed button is doing between press and release: ``kind`` (one of
    :data:`CREATE`, :data:`MOVE`, :data:`RESIZE`, :data:`RUBBER`, :data:`PAN`), where it
    started (viewport and image), the dragged ``rows`` and their ``boxes`` before the drag,
    the resize ``handle`` with ``grab_offset`` (handle position - press position, so the
    handle does not jump to the pointer), the last viewport position (panning), and whether
    it has ``moved`` past :data:`CLICK_SLOP` (until then it is a click)."""

    kind: str
    start_view: ViewPos
    start_image: Point
    rows: tuple[int, ...] = ()
    boxes: tuple[Box, ...] = ()
    handle: str = ""
    grab_offset: Point = (0.0, 0.0)
    last_view: ViewPos = (0, 0)
    moved: bool = False


@dataclass(frozen=True)
class Press:
    """What a press does: select ``detection`` first (-1: none; ``None``: leave it), then
    select ``selection`` (``None``: leave it), then start ``drag`` (``None``: no new drag)."""

    drag: Drag | None
    selection: list[int] | None = None
    detection: int | None = None


def press(
    targets: Targets,
    *,
    button: str,
    point: Point,
    pos: ViewPos,
    ctrl: bool = False,
    space_down: bool = False,
    creating: bool = False,
    dragging: bool = False,
) -> Press:
    """What pressing ``button`` (``"left"``, ``"middle"``, ``"right"``, other names do
    nothing) at image ``point`` / viewport ``pos`` starts (see the module docstring). A
    handle beats a label body, a label beats a detection; a drag in progress blocks a new
    left press, not a pan."""
    if button in ("middle", "right") or (button == "left" and space_down):
        return Press(Drag(PAN, pos, point, last_view=pos))
    if button != "left" or dragging:
        return Press(None)
    if creating:
        return Press(Drag(CREATE, pos, point))
    handle = None if ctrl else handle_at(targets, pos)
    if handle is not None:
        row, name = handle
        box = targets.labels[row]
        hx, hy = handle_points(box)[name]
        offset = (hx - point[0], hy - point[1])
        return Press(Drag(RESIZE, pos, point, rows=(row,), boxes=(box,), handle=name, grab_offset=offset))
    row = label_at(targets, point)
    if row is not None:
        selection: list[int] | None = None
        rows = list(targets.selection)
        if ctrl:
            rows = selection = sorted(set(rows) ^ {row})
            if row not in rows:
                return Press(None, selection=selection)  # Ctrl+click took it out: nothing to drag
        elif row not in rows:
            rows = selection = [row]
        return Press(Drag(MOVE, pos, point, rows=tuple(rows), boxes=tuple(targets.labels[r] for r in rows)), selection=selection)
    detection = detection_at(targets, point)
    kept = tuple(targets.selection) if ctrl else ()
    return Press(
        Drag(RUBBER, pos, point, rows=kept),
        selection=None if ctrl else [],
        detection=-1 if detection is None else detection,
    )


@dataclass(frozen=True)
class DragStep:
    """What a pointer move does during ``drag`` (the drag as it is now): ``scroll`` the view
    by this many viewport pixels (pan), draw the new box ``preview`` (create; ``None``: too
    thin yet), draw these ``boxes`` (move / resize: ``(row, box)`` pairs; empty while the
    press is still a click), or show the rubber ``band`` between two viewport positions."""

    drag: Drag
    scroll: tuple[int, int] = (0, 0)
    preview: Box | None = None
    boxes: tuple[tuple[int, Box], ...] = ()
    band: tuple[ViewPos, ViewPos] | None = None


def drag_step(drag: Drag, *, point: Point, pos: ViewPos, bounds: tuple[float, float]) -> DragStep:
    """The pointer moved to image ``point`` / viewport ``pos`` during ``drag``; ``bounds`` is
    the image (width, height) boxes stay inside. Moving and resizing wait until the press
    has moved past :data:`CLICK_SLOP`: a click that jitters by a pixel must not move a box."""
    if not drag.moved and abs(pos[0] - drag.start_view[0]) + abs(pos[1] - drag.start_view[1]) > CLICK_SLOP:
        drag = replace(drag, moved=True)
    width, height = bounds
    if drag.kind == PAN:
        scroll = (pos[0] - drag.last_view[0], pos[1] - drag.last_view[1])
        return DragStep(replace(drag, last_view=pos), scroll=scroll)
    if drag.kind == CREATE:
        return DragStep(drag, preview=drag_box(drag.start_image, point, width=width, height=height))
    if drag.kind in (MOVE, RESIZE) and not drag.moved:
        return DragStep(drag)
    if drag.kind == MOVE:
        dx = round(point[0] - drag.start_image[0])
        dy = round(point[1] - drag.start_image[1])
        boxes = translate_boxes(drag.boxes, dx=dx, dy=dy, width=width, height=height)
        return DragStep(drag, boxes=tuple(zip(drag.rows, boxes, strict=True)))
    if drag.kind == RESIZE:
        x, y = point[0] + drag.grab_offset[0], point[1] + drag.grab_offset[1]
        box = resize_box(drag.boxes[0], handle=drag.handle, x=x, y=y, width=width, height=height)
        return DragStep(drag, boxes=((drag.rows[0], box),))
    return DragStep(drag, band=(drag.start_view, pos))  # RUBBER


@dataclass(frozen=True)
class Release:
    """What a release does: ``ended`` the drag (else it goes on: another button came up),
    emit a ``click`` at this image point, open the ``context_menu`` (a right click), ask the
    class of ``new_box`` and add it (create; ``None``: a click, drawing goes on), commit the
    drawn boxes of ``rows`` as one undo step named ``text`` (move / resize), or select what
    the rubber band touches (``select_band``, see :func:`band_selection`)."""

    ended: bool
    kind: str = ""
    click: Point | None = None
    context_menu: bool = False
    new_box: Box | None = None
    rows: tuple[int, ...] = ()
    text: str = ""
    select_band: bool = False


def release(drag: Drag, *, button: str, point: Point, bounds: tuple[float, float]) -> Release:
    """``button`` came up at image ``point`` during ``drag`` (``bounds``: the image's width
    and height). A press that never moved past :data:`CLICK_SLOP` is a click."""
    if drag.kind == PAN:
        return Release(True, PAN, context_menu=button == "right" and not drag.moved)
    if button != "left":
        return Release(False, drag.kind)
    if drag.kind == CREATE:
        width, height = bounds
        box = drag_box(drag.start_image, point, width=width, height=height)
        return Release(True, CREATE, new_box=box if drag.moved else None)
    click = None if drag.moved else drag.start_image
    if drag.kind in (MOVE, RESIZE):
        text = "Resize Box" if drag.kind == RESIZE else ("Move Box" if len(drag.rows) == 1 else "Move Boxes")
        return Release(True, drag.kind, click=click, rows=drag.rows, text=text)
    return Release(True, RUBBER, click=click, select_band=drag.moved)


def band_selection(kept: Iterable[int], labels: Sequence[Box], band: Box) -> list[int]:
    """The selection after a rubber band ``band`` (xyxy image pixels): the ``kept`` rows
    (Ctrl held) and the rows of the ``labels`` the band touches."""
    return sorted(set(kept) | set(rubber_band_rows(labels, band)))


# --------------------------------------------------------------------------- keys
@dataclass(frozen=True)
class KeyCommand:
    """What a key does: ``name`` is ``"cancel"`` (stop drawing or dragging), ``"clear"``
    (select nothing), ``"cycle"`` (select the label ``step`` rows on), ``"nudge"`` (move the
    selection by ``delta`` pixels), ``"undo"`` or ``"redo"``."""

    name: str
    step: int = 0
    delta: tuple[int, int] = (0, 0)


def nudge_delta(arrow: str, *, shift: bool = False) -> tuple[int, int]:
    """Pixels an arrow key (``"left"``, ``"right"``, ``"up"``, ``"down"``) moves the selected
    boxes by: 1, or 10 with Shift."""
    step = 10 if shift else 1
    dx, dy = _ARROWS[arrow]
    return (dx * step, dy * step)


def key_command(
    key: str, modifiers: frozenset[str] = frozenset(), *, busy: bool = False, dragging: bool = False, has_selection: bool = False
) -> KeyCommand | None:
    """The command of ``key`` (a lower-case name: ``"escape"``, ``"tab"``, ``"backtab"``,
    arrows, letters) with ``modifiers`` (``"ctrl"``, ``"shift"``, ``"alt"``, ``"meta"``);
    ``busy``: drawing or dragging. ``None``: not the canvas's own key."""
    ctrl = "ctrl" in modifiers
    if key == "escape":
        return KeyCommand("cancel" if busy else "clear")
    if key in ("tab", "backtab") and not ctrl:
        return KeyCommand("cycle", step=-1 if key == "backtab" or "shift" in modifiers else 1)
    if key in _ARROWS and has_selection and not dragging and not ctrl:
        return KeyCommand("nudge", delta=nudge_delta(key, shift="shift" in modifiers))
    if modifiers == {"ctrl"} and key == "z":
        return KeyCommand("undo")
    if (modifiers == {"ctrl", "shift"} and key == "z") or (modifiers == {"ctrl"} and key == "y"):
        return KeyCommand("redo")
    return None


def cycle_row(selection: Sequence[int], count: int, step: int) -> int | None:
    """The row Tab (``step`` 1) or Shift+Tab (-1) selects among ``count`` labels: the one
    after the last selected / before the first, wrapping; the first / last when none is
    selected; ``None`` when there are no labels."""
    if count == 0:
        return None
    if not selection:
        return 0 if step > 0 else count - 1
    return ((selection[-1] if step > 0 else selection[0]) + step) % count


# --------------------------------------------------------------------------- zoom
def wheel_factor(delta: int, step: float) -> float:
    """Zoom factor of a wheel turn of ``delta`` eighths of a degree (120 per notch), ``step``
    per notch."""
    return step ** (delta / 120.0)


def min_zoom(image_size: tuple[float, float], view_size: tuple[float, float]) -> float:
    """Smallest zoom: half of the zoom that fits the image in the view (at most 1:1), and
    0.01 with no image."""
    width, height = image_size
    if width <= 0 or height <= 0:
        return 0.01
    fit = min(view_size[0] / width, view_size[1] / height)
    return max(min(fit * 0.5, 1.0), 1e-3)


def zoom_clamped(scale: float, *, lowest: float, highest: float = MAX_ZOOM) -> float:
    """``scale`` limited to ``[lowest, highest]``."""
    return min(max(scale, lowest), highest)
