"""File › Recent, and what a restart reopens.

The lists live in :class:`app.common.settings.Settings` (QSettings): recent folders, images and
models, newest first. :class:`RecentMenu` shows them (entries that no longer exist are
left out) with a *Clear Recent* entry; :func:`last_session` says what to reopen at start.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QMenu, QWidget

from app.common.settings import RECENT_KINDS, Settings

KIND_TITLES = {"folders": "Folders", "images": "Images", "models": "Models"}


@dataclass(frozen=True)
class LastSession:
    """What the last session had open: a model (or None), the paths to open (a folder, or
    image files) and the image it showed (or None). Only what still exists."""

    model: Path | None
    paths: tuple[Path, ...]
    image: Path | None


def last_session(settings: Settings) -> LastSession:
    """The model, folder (or images) and shown image of the last session, as far as they
    still exist on disk; missing ones are simply left out."""
    model = settings.last_model
    model = model if model is not None and model.is_file() else None
    folder = settings.last_folder
    images = [p for p in settings.last_images if p.is_file()]
    if images:
        paths: tuple[Path, ...] = tuple(images)
    elif folder is not None and folder.is_dir():
        paths = (folder,)
    else:
        paths = ()
    image = settings.last_image
    image = image if image is not None and paths and image.is_file() else None
    return LastSession(model, paths, image)


class RecentMenu(QMenu):
    """File › Recent: one section per kind (folders, images, models), newest first, and
    *Clear Recent*. Signal ``open_requested(Path)`` when the user picks an entry; the menu
    rebuilds itself each time it opens, so it always shows the current lists."""

    open_requested = Signal(object)

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__("Open &Recent", parent)
        self.setObjectName("RecentMenu")
        self._settings = settings
        self.aboutToShow.connect(self.rebuild)
        self.rebuild()

    def entries(self) -> list[tuple[str, Path]]:
        """(kind, path) of every entry shown, in menu order (existing paths only)."""
        return [(kind, path) for kind in RECENT_KINDS for path in self._settings.recent(kind) if path.exists()]

    def rebuild(self) -> None:
        self.clear()
        entries = self.entries()
        kind_shown = ""
        for kind, path in entries:
            if kind != kind_shown:
                self.addSection(KIND_TITLES[kind])
                kind_shown = kind
            action = self.addAction(_entry_text(path))
            action.setToolTip(str(path))
            action.setStatusTip(str(path))
            action.setData(str(path))
            action.triggered.connect(partial(self.open_requested.emit, path))
        if not entries:
            self.addAction("(nothing yet)").setEnabled(False)
        self.addSeparator()
        clear = self.addAction("&Clear Recent")
        clear.setObjectName("clear_recent")
        clear.setEnabled(bool(entries))
        clear.triggered.connect(self.clear_recent)

    def clear_recent(self) -> None:
        self._settings.clear_recent()
        QTimer.singleShot(0, self.rebuild)  # not now: the Clear action is still emitting


def _entry_text(path: Path) -> str:
    """'name — parent folder' (ampersands escaped so Qt shows them)."""
    text = f"{path.name}  —  {path.parent}" if path.name else str(path)
    return text.replace("&", "&&")


__all__ = ["LastSession", "RecentMenu", "last_session"]
