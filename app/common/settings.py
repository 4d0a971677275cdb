"""Persistent user settings (QSettings, INI format, user scope).

Tests isolate it with ``QSettings.setPath(IniFormat, UserScope, tmp_dir)`` or by passing
their own ``QSettings`` object.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from app.common.about import APP_NAME, ORGANIZATION
from model.labels.registry import FORMATS, format_names

#: Kinds of File › Recent lists and how many entries each keeps.
RECENT_KINDS = ("folders", "images", "models")
RECENT_LIMIT = 10


class Settings:
    """Typed accessors over one QSettings store."""

    def __init__(self, store: QSettings | None = None) -> None:
        self._store = store or QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APP_NAME)

    @property
    def store(self) -> QSettings:
        return self._store

    def sync(self) -> None:
        self._store.sync()

    # --- helpers -------------------------------------------------------------------
    def _get(self, key: str, default: object, kind: type) -> object:
        value = self._store.value(key, default)
        if value is None:
            return default
        try:
            if kind is bool and isinstance(value, str):
                return value.lower() in ("1", "true", "yes")
            return kind(value)
        except (TypeError, ValueError):
            return default

    def _list(self, key: str) -> list[str]:
        """A list of strings (QSettings' INI store gives a str for one item, None for none)."""
        value = self._store.value(key, [])
        if value is None or value == "":
            return []
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value if v]

    def _path(self, key: str) -> Path | None:
        value = self._store.value(key, "")
        return Path(str(value)) if value else None

    # --- values --------------------------------------------------------------------
    @property
    def last_folder(self) -> Path | None:
        return self._path("paths/last_folder")

    @last_folder.setter
    def last_folder(self, folder: Path | None) -> None:
        self._store.setValue("paths/last_folder", str(folder) if folder else "")

    @property
    def last_model(self) -> Path | None:
        return self._path("paths/last_model")

    @last_model.setter
    def last_model(self, path: Path | None) -> None:
        self._store.setValue("paths/last_model", str(path) if path else "")

    @property
    def last_images(self) -> list[Path]:
        """The images opened last when they were files, not a folder (empty otherwise)."""
        return [Path(p) for p in self._list("paths/last_images")]

    @last_images.setter
    def last_images(self, paths: list[Path]) -> None:
        self._store.setValue("paths/last_images", [str(p) for p in paths])

    @property
    def last_image(self) -> Path | None:
        """The image shown last (reopened with its folder)."""
        return self._path("paths/last_image")

    @last_image.setter
    def last_image(self, path: Path | None) -> None:
        self._store.setValue("paths/last_image", str(path) if path else "")

    @property
    def last_class(self) -> str:
        """The class picked last in the class picker (preselected next time)."""
        return str(self._get("labels/last_class", "", str))

    @last_class.setter
    def last_class(self, name: str) -> None:
        self._store.setValue("labels/last_class", str(name))

    def recent(self, kind: str) -> list[Path]:
        """Recently opened ``kind`` ("folders", "images" or "models"), newest first."""
        return [Path(p) for p in self._list(f"recent/{kind}")]

    def add_recent(self, kind: str, path: Path, *, limit: int = RECENT_LIMIT) -> None:
        """Put ``path`` first in the ``kind`` list (no duplicates, at most ``limit``)."""
        text = str(path)
        items = [text, *(p for p in self._list(f"recent/{kind}") if p != text)][:limit]
        self._store.setValue(f"recent/{kind}", items)

    def clear_recent(self) -> None:
        for kind in RECENT_KINDS:
            self._store.remove(f"recent/{kind}")

    @property
    def score_thresh(self) -> float:
        return float(self._get("nms/score_thresh", 0.3, float))  # type: ignore[arg-type]

    @score_thresh.setter
    def score_thresh(self, value: float) -> None:
        self._store.setValue("nms/score_thresh", float(value))

    @property
    def iou_thresh(self) -> float:
        return float(self._get("nms/iou_thresh", 0.5, float))  # type: ignore[arg-type]

    @iou_thresh.setter
    def iou_thresh(self, value: float) -> None:
        self._store.setValue("nms/iou_thresh", float(value))

    @property
    def max_detections(self) -> int:
        return int(self._get("nms/max_detections", 100, int))  # type: ignore[arg-type]

    @max_detections.setter
    def max_detections(self, value: int) -> None:
        self._store.setValue("nms/max_detections", int(value))

    @property
    def inference_size(self) -> int | None:
        value = int(self._get("inference/size", 0, int))  # type: ignore[arg-type]
        return value or None

    @inference_size.setter
    def inference_size(self, value: int | None) -> None:
        self._store.setValue("inference/size", int(value or 0))

    @property
    def auto_detect(self) -> bool:
        return bool(self._get("inference/auto_detect", True, bool))

    @auto_detect.setter
    def auto_detect(self, value: bool) -> None:
        self._store.setValue("inference/auto_detect", bool(value))

    @property
    def label_format(self) -> str:
        """Format Ctrl+S writes: a registered format's name ("voc", the default, next to the
        image; "yolo"; "coco")."""
        default = format_names()[0]
        value = str(self._get("labels/format", default, str))
        return value if value in FORMATS else default

    @label_format.setter
    def label_format(self, value: str) -> None:
        self._store.setValue("labels/format", str(value))

    def label_dir_for(self, image_folder: str | os.PathLike[str]) -> Path | None:
        """The label folder chosen for the images of ``image_folder`` (File › Change Save
        Dir…); None: none chosen (next to the images, or a sibling folder found)."""
        chosen = self._label_dirs().get(os.path.abspath(image_folder))
        return Path(chosen) if chosen else None

    def set_label_dir_for(self, image_folder: str | os.PathLike[str], label_dir: str | os.PathLike[str] | None) -> None:
        """Remember ``label_dir`` for ``image_folder`` (None forgets it)."""
        dirs = self._label_dirs()
        key = os.path.abspath(image_folder)
        if label_dir is None:
            dirs.pop(key, None)
        else:
            dirs[key] = os.path.abspath(label_dir)
        self._store.setValue("labels/label_dirs", json.dumps(dirs))

    def _label_dirs(self) -> dict[str, str]:
        try:
            value = json.loads(str(self._store.value("labels/label_dirs", "{}") or "{}"))
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    @property
    def autosave(self) -> bool:
        """Save the labels without asking when leaving an image (off by default)."""
        return bool(self._get("labels/autosave", False, bool))

    @autosave.setter
    def autosave(self, value: bool) -> None:
        self._store.setValue("labels/autosave", bool(value))

    @property
    def geometry(self) -> QByteArray | None:
        value = self._store.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self._store.setValue("window/geometry", value)

    @property
    def window_state(self) -> QByteArray | None:
        value = self._store.value("window/state")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    @window_state.setter
    def window_state(self, value: QByteArray) -> None:
        self._store.setValue("window/state", value)
