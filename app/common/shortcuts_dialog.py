"""Help › Keyboard Shortcuts: every shortcut of the window, read from its actions.

The table is generated: it walks the menu bar and lists each action that has a shortcut
(so a key added to a menu shows up here by itself), then the canvas keys and mouse
gestures that have no action (:data:`app.common.shortcuts.CANVAS_KEYS`).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QMainWindow,
    QMenu,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.common import shortcuts

#: Dynamic property an action may carry to name itself in the table when its text changes
#: (QUndoGroup's "Undo Move Box").
COMMAND_PROPERTY = "shortcut_command"
CANVAS_SECTION = "On the image"


@dataclass(frozen=True)
class ShortcutRow:
    keys: str  # "Ctrl+Shift+Z, Ctrl+Y"
    command: str  # "Redo"
    section: str  # the menu ("Edit") or CANVAS_SECTION
    help: str = ""


def command_name(action: QAction) -> str:
    """The action's text without mnemonics and trailing dots ("&Open Folder…" -> "Open Folder")."""
    fixed = action.property(COMMAND_PROPERTY)
    text = str(fixed) if fixed else action.text()
    text = text.replace("&&", "\0").replace("&", "").replace("\0", "&")
    return text.removesuffix("…").removesuffix("...").strip()


def key_text(action: QAction) -> str:
    """The action's shortcuts as portable text: "Ctrl+Shift+Z, Ctrl+Y" ("" when none)."""
    keys = (seq.toString(QKeySequence.SequenceFormat.PortableText) for seq in action.shortcuts())
    return ", ".join(k for k in keys if k)


def _walk(menu: QMenu, section: str, seen: set[int], rows: list[ShortcutRow]) -> None:
    for action in menu.actions():
        if action.isSeparator():
            continue
        sub = action.menu()
        if sub is not None:
            _walk(sub, f"{section} › {command_name(action)}", seen, rows)
            continue
        keys = key_text(action)  # a standard key the platform leaves unbound is empty
        if not keys or id(action) in seen:
            continue
        seen.add(id(action))
        rows.append(ShortcutRow(keys, command_name(action), section, action.statusTip()))


def shortcut_rows(window: QMainWindow) -> list[ShortcutRow]:
    """Every action with a shortcut in ``window``'s menus (menu order), then the canvas
    keys that have no action."""
    rows: list[ShortcutRow] = []
    seen: set[int] = set()
    for top in window.menuBar().actions():
        menu = top.menu()
        if menu is not None:
            _walk(menu, command_name(top), seen, rows)
    rows.extend(ShortcutRow(keys, help_text, CANVAS_SECTION) for keys, help_text in shortcuts.CANVAS_KEYS)
    return rows


def shortcuts_markdown(rows: list[ShortcutRow]) -> str:
    """The table as Markdown (for the README)."""
    lines = ["| Keys | Command | Menu |", "|---|---|---|"]
    lines += [f"| {r.keys.replace('|', '&#124;')} | {r.command} | {r.section} |" for r in rows]
    return "\n".join(lines) + "\n"


class ShortcutsDialog(QDialog):
    """A table of :func:`shortcut_rows`, rebuilt each time it is shown."""

    def __init__(self, window: QMainWindow, parent: QWidget | None = None) -> None:
        super().__init__(parent or window)
        self.setWindowTitle("Keyboard Shortcuts")
        self.setObjectName("ShortcutsDialog")
        self._window = window
        self._rows: list[ShortcutRow] = []
        self._table = QTableWidget(0, 3, self)
        self._table.setHorizontalHeaderLabels(["Keys", "Command", "Menu"])
        self._table.verticalHeader().setVisible(False)
        self._table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self._table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self._table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        copy = QPushButton("Copy as Markdown", self)
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.markdown()))
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self._table)
        layout.addWidget(buttons)
        self.resize(640, 560)

    def refresh(self) -> None:
        self._rows = shortcut_rows(self._window)
        self._table.setRowCount(len(self._rows))
        for row, entry in enumerate(self._rows):
            for column, text in enumerate((entry.keys, entry.command, entry.section)):
                item = QTableWidgetItem(text)
                item.setToolTip(entry.help or entry.command)
                if column == 0:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
                self._table.setItem(row, column, item)
        self._table.resizeColumnToContents(0)

    def rows(self) -> list[ShortcutRow]:
        return list(self._rows)

    def markdown(self) -> str:
        return shortcuts_markdown(self._rows)

    def showEvent(self, event) -> None:  # noqa: ANN001, N802 (Qt API)
        self.refresh()
        super().showEvent(event)


__all__ = ["ShortcutRow", "ShortcutsDialog", "command_name", "shortcut_rows", "shortcuts_markdown"]
