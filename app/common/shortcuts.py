"""Keyboard shortcuts of labelling, in one table (LabelImg's keys where it has them).

The canvas builds its QActions from :data:`EDIT_SHORTCUTS`, the window its labelling
commands from :data:`SAVE` ... :data:`SHOW_SHORTCUTS`; the Help › Keyboard Shortcuts dialog
lists the window's actions themselves (plus :data:`CANVAS_KEYS`, the keys and mouse
gestures that have no action), so the keys are written down exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QKeySequence


@dataclass(frozen=True)
class Shortcut:
    """One editing command: its action name, menu text, keys and a one-line help."""

    name: str
    text: str
    keys: tuple[str, ...]
    help: str

    def sequences(self) -> list[QKeySequence]:
        """The keys as QKeySequence objects (first one is the one menus show)."""
        return [QKeySequence(k) for k in self.keys]


CREATE = Shortcut("create", "Create &Box", ("W",), "W, then drag: draw a new box")
DELETE = Shortcut("delete", "&Delete Boxes", ("Del", "Backspace"), "delete the selected boxes (a detection accepted unedited is also rejected)")
DUPLICATE = Shortcut("duplicate", "D&uplicate Boxes", ("Ctrl+D",), "copy the selected boxes (10 px offset)")
RELABEL = Shortcut("relabel", "&Relabel Boxes...", ("E",), "E or double-click: change the class")
DIFFICULT = Shortcut(
    "difficult", "Mark &Difficult", ("Ctrl+Shift+D",), "mark the selected boxes difficult (VOC), or not"
)
HIDE = Shortcut("hide", "&Hide All Boxes", ("Ctrl+H",), "hide / show every box")
ACCEPT_DETECTION = Shortcut(
    "accept_detection", "&Accept Detection", ("Return", "Enter"), "turn the clicked detection into a label"
)
REJECT_DETECTION = Shortcut(
    "reject_detection", "Re&ject Detection", ("Shift+Del",), "hide the clicked detection for this image"
)

#: Everything :meth:`app.canvas.view.Canvas.edit_actions` returns, in menu order.
EDIT_SHORTCUTS: tuple[Shortcut, ...] = (
    CREATE,
    DELETE,
    DUPLICATE,
    RELABEL,
    DIFFICULT,
    HIDE,
    ACCEPT_DETECTION,
    REJECT_DETECTION,
)

#: Keys the canvas handles itself (no QAction): listed for help texts.
CANVAS_KEYS: tuple[tuple[str, str], ...] = (
    ("Click / Ctrl+Click", "select a box / add to the selection"),
    ("Drag on empty space", "rubber-band select"),
    ("Tab / Shift+Tab", "select the next / previous box"),
    ("Arrows (Shift)", "move the selected boxes by 1 px (10 px)"),
    ("Drag a handle", "resize (8 handles: corners and edges)"),
    ("Double-click a box / a detection", "relabel the box / accept the detection"),
    ("Right click", "the Edit commands as a context menu"),
    ("Wheel", "zoom around the cursor"),
    ("Middle / right drag, Space+drag", "pan"),
    ("Esc", "cancel drawing / clear the selection"),
)

# Window-level commands (app.labelling.annotator builds their QActions; the keys live here too).
SAVE = Shortcut("save", "&Save Labels", ("Ctrl+S",), "save this image's labels in the chosen label format")
UNDO = Shortcut("undo", "&Undo", ("Ctrl+Z",), "undo the last label edit of this image")
REDO = Shortcut("redo", "&Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "redo the last undone label edit")
ACCEPT_ALL = Shortcut(
    "accept_all",
    "Accept All Detections &Above Threshold",
    ("Ctrl+Return", "Ctrl+Enter"),
    "turn every shown detection (score >= the score threshold) into a label",
)
SHOW_SHORTCUTS = Shortcut("shortcuts", "&Keyboard Shortcuts", ("F1",), "list every shortcut")
VERIFY = Shortcut("verify", "&Verify Image", ("Space",), "mark this image verified (reviewed) or not, as LabelImg does; a tap, not a hold (Space+drag pans)")

#: Zoom step per wheel notch (120 eighths of a degree).
WHEEL_ZOOM_STEP = 1.25
