"""The session: the state the window's parts share, held in one Qt-free evented model.

napari's habit: one model object that the views take, write to and listen to; the window
only assembles. Everything here is plain Python (psygnal signals, no Qt), so it can be
built and driven in a test without a QApplication.

What it holds, and who writes it:

* the open image list and the shown image (the window's navigator, on open and navigation);
* the loaded model (:class:`ModelInfo`: path, contract, fingerprint; the window, when the
  detection controller has loaded one);
* the post-processing (:class:`model.postprocess.PostProcessor`) and the inference size
  (the Detection dock);
* the shown image's network candidates and the detections the post-processor makes of them
  (``set_candidates`` from the window when a network output arrives; the detections are
  recomputed here whenever the candidates or the post-processor change, ~1 ms);
* the labelling settings (format, label folder per image folder, autosave) and the shown
  image's label document (the label controller, :class:`app.labelling.annotator.Annotator`).

Every setter emits its signal only when the value changes. The walk of a slider drag is
one way: Detection dock -> ``set_post_processor`` -> ``detections_changed`` -> the label
controller puts them on the document -> the canvas repaints from the document.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psygnal import Signal

from model.postprocess import Candidates, Detections, PostProcessor
from model.quality import model_fingerprint


@dataclass(frozen=True)
class ModelInfo:
    """The loaded model: its file and its contract (:class:`model.contract.ModelContract`)."""

    path: Path
    contract: Any

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.contract.class_names)

    @property
    def level_names(self) -> tuple[str, ...]:
        return tuple(level.name for level in self.contract.levels)

    @property
    def fingerprint(self) -> str:
        """What identifies the model's weights (read once per file, then remembered)."""
        return model_fingerprint(self.path)


class Session:
    """The shared state of one window (see the module docstring).

    Signals: ``images_opened(list[Path])``; ``current_changed(Path | None)``;
    ``model_changed(ModelInfo)``; ``post_processor_changed(PostProcessor)``;
    ``inference_size_changed(int)``; ``detections_changed(Detections | None)``;
    ``label_format_changed(str)``; ``label_dirs_changed(dict)``;
    ``document_changed(document | None)``; ``unsaved_changed(Path, bool)``,
    ``verified_changed(Path, bool)`` and ``labels_saved(Path)`` for the image list;
    ``message(text, msecs)`` for the status bar; ``open_model_requested(Path)`` when a part
    asks for a model to be loaded (the window loads it).
    """

    images_opened = Signal(list)
    current_changed = Signal(object)
    model_changed = Signal(object)
    post_processor_changed = Signal(object)
    inference_size_changed = Signal(int)
    detections_changed = Signal(object)
    label_format_changed = Signal(str)
    label_dirs_changed = Signal(dict)
    autosave_changed = Signal(bool)
    document_changed = Signal(object)
    unsaved_changed = Signal(object, bool)
    verified_changed = Signal(object, bool)
    labels_saved = Signal(object)
    message = Signal(str, int)
    open_model_requested = Signal(object)

    def __init__(
        self,
        *,
        post_processor: PostProcessor | None = None,
        inference_size: int = 0,
        label_format: str = "voc",
        autosave: bool = False,
    ) -> None:
        self._image_paths: tuple[Path, ...] = ()
        self._current_path: Path | None = None
        self._model: ModelInfo | None = None
        self._post_processor = post_processor or PostProcessor()
        self._inference_size = int(inference_size)
        self._candidates: Candidates | None = None
        self._detection_size = 0
        self._detections: Detections | None = None
        self._label_format = label_format
        self._label_dirs: dict[str, Path] = {}
        self._autosave = bool(autosave)
        self._document: Any = None
        #: Milliseconds the last post-processing took (the diagnostics show it).
        self.last_select_ms = 0.0

    # ------------------------------------------------------------------ images
    @property
    def image_paths(self) -> tuple[Path, ...]:
        return self._image_paths

    def set_image_paths(self, paths: Sequence[Path]) -> None:
        """A new image list (emitted even when equal: opening again re-reads its labels)."""
        self._image_paths = tuple(Path(p) for p in paths)
        self.images_opened.emit(list(self._image_paths))

    @property
    def current_path(self) -> Path | None:
        return self._current_path

    def set_current_path(self, path: Path | None) -> None:
        if path != self._current_path:
            self._current_path = path
            self.current_changed.emit(path)

    def image_folder(self) -> Path | None:
        """The folder of the shown image, else of the first open image."""
        if self._current_path is not None:
            return self._current_path.parent
        return self._image_paths[0].parent if self._image_paths else None

    # ------------------------------------------------------------------ model
    @property
    def model(self) -> ModelInfo | None:
        return self._model

    def set_model(self, model: ModelInfo) -> None:
        self._model = model
        self.model_changed.emit(model)

    def request_model(self, path: str | Path) -> None:
        """Ask for ``path`` to be loaded (whoever loads models listens)."""
        self.open_model_requested.emit(Path(path))

    # ------------------------------------------------------------------ post-processing
    @property
    def post_processor(self) -> PostProcessor:
        """The current post-processing (what the shown detections were made with)."""
        return self._post_processor

    def set_post_processor(self, post_processor: PostProcessor) -> None:
        if post_processor == self._post_processor:
            return
        self._post_processor = post_processor
        self._select()
        self.post_processor_changed.emit(post_processor)

    @property
    def inference_size(self) -> int:
        return self._inference_size

    def set_inference_size(self, size: int) -> None:
        size = int(size)
        if size != self._inference_size:
            self._inference_size = size
            self.inference_size_changed.emit(size)

    # ------------------------------------------------------------------ detections
    @property
    def candidates(self) -> Candidates | None:
        return self._candidates

    @property
    def detection_size(self) -> int:
        """The inference size the shown candidates were made at (0: none shown)."""
        return self._detection_size

    @property
    def detections(self) -> Detections | None:
        """The shown image's detections: the post-processor run on its candidates."""
        return self._detections

    def set_candidates(self, candidates: Candidates | None, *, size: int = 0) -> None:
        """The shown image's network candidates (None: no output), made at inference
        ``size``; the detections follow."""
        self._candidates = candidates
        self._detection_size = int(size) if candidates is not None else 0
        self._select()

    def _select(self) -> None:
        if self._candidates is None:
            if self._detections is not None:
                self._detections = None
                self.detections_changed.emit(None)
            return
        start = time.perf_counter()
        self._detections = self._post_processor(self._candidates)
        self.last_select_ms = (time.perf_counter() - start) * 1000.0
        self.detections_changed.emit(self._detections)

    # ------------------------------------------------------------------ labelling
    @property
    def label_format(self) -> str:
        """The format Ctrl+S saves in (a name of :data:`model.labels.FORMATS`)."""
        return self._label_format

    def set_label_format(self, fmt: str) -> None:
        if fmt != self._label_format:
            self._label_format = fmt
            self.label_format_changed.emit(fmt)

    @property
    def label_dirs(self) -> dict[str, Path]:
        """Label folder per absolute image folder (absent: next to the images)."""
        return dict(self._label_dirs)

    def label_dir_for(self, image_folder: str | Path) -> Path | None:
        return self._label_dirs.get(os.path.abspath(image_folder))

    def set_label_dir(self, image_folder: str | Path, label_dir: str | Path | None) -> None:
        """Labels of ``image_folder`` in ``label_dir``; None or the image folder itself: next
        to the images."""
        key = os.path.abspath(image_folder)
        new = Path(os.path.abspath(label_dir)) if label_dir is not None else None
        if new is not None and str(new) == key:
            new = None
        if self._label_dirs.get(key) == new:
            return
        if new is None:
            self._label_dirs.pop(key, None)
        else:
            self._label_dirs[key] = new
        self.label_dirs_changed.emit(self.label_dirs)

    @property
    def autosave(self) -> bool:
        return self._autosave

    def set_autosave(self, enabled: bool) -> None:
        if bool(enabled) != self._autosave:
            self._autosave = bool(enabled)
            self.autosave_changed.emit(self._autosave)

    @property
    def document(self) -> Any:
        """The shown image's label document (:class:`app.labelling.document.LabelDocument`),
        None when no image is shown."""
        return self._document

    def set_document(self, document: Any) -> None:
        if document is not self._document:
            self._document = document
            self.document_changed.emit(document)

    # ------------------------------------------------------------------ status
    def show_message(self, text: str, msecs: int = 8000) -> None:
        """A line for the status bar."""
        self.message.emit(text, int(msecs))


__all__ = ["ModelInfo", "Session"]
