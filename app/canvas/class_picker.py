"""The class picker: a small popup to choose (or add) a box's class as you type.

Typing filters the project's class list (case-insensitive, substring). Enter picks: the
class typed exactly, else the highlighted match (the first one unless you moved with
Up/Down or clicked), else — nothing matches — the typed text as a NEW class, which is added
to the project. Ctrl+Enter always takes the typed text. Esc cancels.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, QObject, QSortFilterProxyModel, QStringListModel, Qt
from PySide6.QtGui import QCursor, QKeyEvent
from PySide6.QtWidgets import QDialog, QLabel, QLineEdit, QListView, QVBoxLayout, QWidget

from app.labelling.document import ProjectClasses


class ClassPicker(QDialog):
    """Pick a class of ``project`` (see the module docstring for the keys).

    After ``exec()`` returns Accepted, :meth:`selected_name` is the class; a new name has
    already been added to ``project``.
    """

    def __init__(
        self,
        project: ProjectClasses,
        *,
        initial: str = "",
        title: str = "Class",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Dialog)
        self.setWindowTitle(title)
        self._project = project
        self._selected = ""

        self._model = QStringListModel(project.names, self)
        self._proxy = QSortFilterProxyModel(self)
        self._proxy.setSourceModel(self._model)
        self._proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

        self._edit = QLineEdit(self)
        self._edit.setPlaceholderText("type to filter or add a class")
        self._edit.setClearButtonEnabled(True)
        self._list = QListView(self)
        self._list.setModel(self._proxy)
        self._list.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self._list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._hint = QLabel(self)
        self._hint.setStyleSheet("color: gray")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self._edit)
        layout.addWidget(self._list)
        layout.addWidget(self._hint)

        self._edit.textEdited.connect(self._filter)
        self._edit.installEventFilter(self)
        self._list.clicked.connect(self._on_clicked)
        self._list.doubleClicked.connect(lambda _i: self._pick(self._current_name()))
        self._project.class_added.connect(self._on_class_added)

        self._edit.setText(initial)
        self._edit.selectAll()
        self._filter("")  # show every class, highlight the initial one
        if initial:
            self._select_name(initial)
        self.resize(260, 300)

    # ------------------------------------------------------------------ public
    @classmethod
    def get_class(
        cls, parent: QWidget | None, project: ProjectClasses, *, initial: str = "", title: str = "Class"
    ) -> str | None:
        """Show the picker at the mouse cursor and wait; the chosen class, or None (Esc)."""
        picker = cls(project, initial=initial, title=title, parent=parent)
        picker.move(QCursor.pos())
        try:
            ok = picker.exec() == QDialog.DialogCode.Accepted
            return picker.selected_name() if ok else None
        finally:
            picker.deleteLater()

    def selected_name(self) -> str:
        return self._selected

    def line_edit(self) -> QLineEdit:
        """The text field (tests type into it)."""
        return self._edit

    def list_view(self) -> QListView:
        """The filtered class list."""
        return self._list

    def visible_names(self) -> list[str]:
        """The classes the filter currently shows, in order."""
        return [self._proxy.index(r, 0).data() for r in range(self._proxy.rowCount())]

    def current_name(self) -> str:
        """The highlighted class ('' when none)."""
        return self._current_name()

    # ------------------------------------------------------------------ behaviour
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        if watched is self._edit and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            key = event.key()
            if key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
                self._step(-1 if key == Qt.Key.Key_Up else 1)
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                force_new = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
                self._pick(self._edit.text().strip() if force_new else self._resolve())
                return True
        return super().eventFilter(watched, event)

    def _resolve(self) -> str:
        text = self._edit.text().strip()
        for name in self._project.names:
            if name.casefold() == text.casefold():
                return name
        return self._current_name() or text

    def _pick(self, name: str) -> None:
        name = name.strip()
        if not name:
            return
        self._project.add(name)
        self._selected = name
        self.accept()

    def _filter(self, text: str) -> None:
        self._proxy.setFilterFixedString(text.strip())
        if self._proxy.rowCount():
            self._list.setCurrentIndex(self._proxy.index(0, 0))
            self._hint.setText("Enter: pick  Ctrl+Enter: add as typed")
        else:
            self._list.setCurrentIndex(QModelIndex())
            self._hint.setText(f"Enter: add new class {text.strip()!r}" if text.strip() else "")

    def _select_name(self, name: str) -> None:
        for row in range(self._proxy.rowCount()):
            if self._proxy.index(row, 0).data() == name:
                self._list.setCurrentIndex(self._proxy.index(row, 0))
                return

    def _step(self, delta: int) -> None:
        count = self._proxy.rowCount()
        if not count:
            return
        row = self._list.currentIndex().row()
        row = 0 if row < 0 else (row + delta) % count
        self._list.setCurrentIndex(self._proxy.index(row, 0))

    def _current_name(self) -> str:
        index = self._list.currentIndex()
        return index.data() if index.isValid() else ""

    def _on_clicked(self, index: QModelIndex) -> None:
        self._edit.setText(index.data())
        self._list.setCurrentIndex(index)

    def _on_class_added(self, _name: str) -> None:
        self._model.setStringList(self._project.names)
