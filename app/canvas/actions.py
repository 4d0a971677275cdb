"""The canvas's edit commands as QActions, built from :data:`app.common.shortcuts.EDIT_SHORTCUTS`
(the keys are written down once, there)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from app.common import shortcuts

__all__ = ["SELECTION_ACTIONS", "DETECTION_ACTIONS", "make_edit_actions"]

#: Actions that need a selected label / a selected detection (disabled without one).
SELECTION_ACTIONS: tuple[str, ...] = ("delete", "duplicate", "relabel", "difficult")
DETECTION_ACTIONS: tuple[str, ...] = ("accept_detection", "reject_detection")


def make_edit_actions(widget: QWidget, slots: Mapping[str, Callable[[], None]]) -> dict[str, QAction]:
    """One QAction per edit shortcut, by name, added to ``widget`` (its keys work while the
    widget has the focus) and triggering ``slots[name]``; "hide" is checkable, and the
    actions that need a selection start disabled."""
    actions: dict[str, QAction] = {}
    for spec in shortcuts.EDIT_SHORTCUTS:
        action = QAction(spec.text, widget)
        action.setShortcuts(spec.sequences())
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.setToolTip(spec.help)
        action.setStatusTip(spec.help)
        if spec.name == "hide":
            action.setCheckable(True)
            action.setChecked(False)
        action.triggered.connect(slots[spec.name])
        widget.addAction(action)
        actions[spec.name] = action
    for name in (*SELECTION_ACTIONS, *DETECTION_ACTIONS):
        actions[name].setEnabled(False)
    return actions
