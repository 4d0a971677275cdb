"""Opening images, folders and models, and moving through the open list.

:class:`Navigator` turns what a user opens (File menu, drops, the command line, Open
Recent) into the session's image list and the detection controller's model and image; it
asks ``may_leave`` (the label controller's Save / Discard / Cancel) before the shown image
changes, and remembers what a restart reopens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QWidget

from app.common.settings import RECENT_LIMIT, Settings
from app.docks.image_list import ImageListDock
from app.jobs.detection import DetectionController, InferenceBackend
from app.session import Session

MODEL_SUFFIX = ".onnx"


class Navigator(QObject):
    """Opens and moves; see the module docstring. Dialogs are children of ``parent_widget``."""

    def __init__(
        self,
        session: Session,
        controller: DetectionController,
        image_list: ImageListDock,
        settings: Settings,
        backend: InferenceBackend,
        *,
        may_leave: Callable[[], bool],
        parent_widget: QWidget | None = None,
    ) -> None:
        super().__init__(parent_widget)
        self._session = session
        self._controller = controller
        self._image_list = image_list
        self._settings = settings
        self._backend = backend
        self._may_leave = may_leave
        self._parent_widget = parent_widget
        image_list.image_activated.connect(self.show_path)

    def open_paths(self, paths: Sequence[str | Path]) -> None:
        """Open what a user dropped or named on the command line: image files, folders of
        images, and/or one ``.onnx`` model."""
        images: list[Path] = []
        files: list[Path] = []
        for raw in paths:
            path = Path(raw)
            if path.suffix.lower() == MODEL_SUFFIX and path.is_file():
                self.open_model(path)
            elif path.is_dir():
                path = path.absolute()
                self._settings.last_folder = path
                self._settings.add_recent("folders", path)
                images.extend(self._list_folder(path))
            elif path.suffix.lower() in self._backend.image_extensions:
                images.append(path)  # a missing file gets its message when shown
                files.append(path)
            else:
                problem = "not an image or model file" if path.exists() else "not found"
                self._session.show_message(f"{path}: {problem}", 8000)
        if images:  # what a restart reopens: the folder, or these files
            self._settings.last_images = [p.absolute() for p in files] if len(files) == len(images) else []
            for path in reversed(files[:RECENT_LIMIT]):
                self._settings.add_recent("images", path.absolute())
            self.set_image_paths(images)

    def set_image_paths(self, paths: Sequence[Path], *, current: int = 0) -> None:
        if not self._may_leave_image():
            return
        self._session.set_image_paths(paths)  # the image list shows them, labelling reads their folders
        if paths:
            self.show_row(min(max(current, 0), len(paths) - 1), guard=False)

    def open_model(self, path: str | Path) -> None:
        """Load a model in the background; on failure a dialog says why and the previous
        model stays."""
        self._session.show_message(f"Loading model {Path(path).name}…", 0)
        self._controller.load_model(path)

    def show_row(self, row: int, *, guard: bool = True) -> None:
        """Show the image at ``row`` of the list (after ``may_leave`` unless ``guard`` is off)."""
        model = self._image_list.model
        if not 0 <= row < model.rowCount():
            return
        path = model.path(row)
        if path == self._controller.current_path and self._image_list.current_row() == row:
            return
        if guard and not self._may_leave_image():
            self._image_list.set_current_row(model.row_of(self._controller.current_path or path))
            return
        self._image_list.set_current_row(row)
        self._settings.last_image = path.absolute()
        self._session.set_current_path(path)
        self._controller.open_image(path)

    def show_path(self, path: Path) -> None:
        self.show_row(self._image_list.model.row_of(path))

    def next_image(self) -> None:
        self.show_row(self._image_list.current_row() + 1)

    def previous_image(self) -> None:
        self.show_row(self._image_list.current_row() - 1)

    def detect(self) -> None:
        if self._controller.detector is None:
            self._session.show_message("No model loaded: File › Open Model (.onnx)… (Ctrl+M)", 8000)
            return
        self._controller.detect()

    def ask_images(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in self._backend.image_extensions)
        start = str(self._settings.last_folder or Path.home())
        files, _ = QFileDialog.getOpenFileNames(self._parent_widget, "Open images", start, f"Images ({patterns})")
        if files:
            self._settings.last_folder = Path(files[0]).parent
            self.open_paths(files)

    def ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self._parent_widget, "Open folder", str(self._settings.last_folder or Path.home()))
        if folder:
            self.open_paths([folder])

    def ask_model(self) -> None:
        start = self._settings.last_model.parent if self._settings.last_model else Path.home()
        path, _ = QFileDialog.getOpenFileName(self._parent_widget, "Open model", str(start), "ONNX models (*.onnx)")
        if path:
            self.open_model(path)

    def may_leave_image(self) -> bool:
        """Whether the shown image may be left (nothing shown, or ``may_leave`` agrees)."""
        return self._may_leave_image()

    def _may_leave_image(self) -> bool:
        return self._controller.current_path is None or self._may_leave()

    def _list_folder(self, folder: Path) -> list[Path]:
        try:
            return list(self._backend.list_images(folder))
        except Exception as error:  # noqa: BLE001 - ImageReadError and OS errors alike
            self._session.show_message(str(error), 10000)
            return []


__all__ = ["MODEL_SUFFIX", "Navigator"]
