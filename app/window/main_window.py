"""The main window: menus, toolbar, docks and the canvas, wired to the detection controller.

The window owns no detection state itself: :class:`app.jobs.detection.DetectionController` holds
the detector, the current image and its network output; the docks observe signals. The
window holds the current :class:`model.postprocess.PostProcessor`: the Detection dock edits
it, the window runs it on the cached candidates (score filter + NMS, ~1 ms, the only work
done here on the GUI thread besides painting) and hands it on in ``post_processor_changed``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QImage, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QWidget,
)

from app import APP_NAME
from app.common.settings import RECENT_LIMIT, Settings
from app.docks.box_list import BoxList, BoxListDock
from app.docks.image_list import ImageListDock
from app.docks.layer_viewer import LayerViewer, LayerViewerDock
from app.docks.nms_panel import NmsDock, NmsPanel
from app.docks.quality_monitor import QualityMonitor
from app.docks.quality_panel import QualityDock, QualityPanel
from app.jobs.coco_model import CocoModelGetter
from app.jobs.detection import DetectionController, DetectionResult, InferenceBackend, default_backend
from app.jobs.finetune import FineTuner
from app.labelling.annotator import CANVAS_ACTIONS, Annotator
from app.window.diagnostics import DiagnosticsDialog
from app.window.recent import RecentMenu
from model.postprocess import PostProcessor
from model.quality import model_fingerprint

MODEL_SUFFIX = ".onnx"

#: Called before leaving the current image or closing; return False to stay (unsaved labels).
NavigationGuard = Callable[[], bool]
#: Builds the labels document of a freshly shown image: (image path, image) -> LabelDocument.
DocumentFactory = Callable[[Path, QImage], Any]


def _scroll_when_small(dock: QDockWidget) -> None:
    """Let ``dock`` shrink below its content's size (its content scrolls), so the window
    fits a 1366x768 laptop screen instead of growing past it."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(dock.widget())
    dock.setWidget(area)


def _default_canvas() -> QWidget:
    from app.canvas.view import Canvas

    return Canvas()


class MainWindow(QMainWindow):
    """Signal ``images_opened(paths)``: a new image list was set (before its first image
    is shown). Signal ``post_processor_changed(PostProcessor)``: the post-processing
    settings changed (after the shown detections follow them)."""

    images_opened = Signal(list)
    post_processor_changed = Signal(object)  # PostProcessor

    def __init__(
        self,
        *,
        backend: InferenceBackend | None = None,
        settings: Settings | None = None,
        canvas: QWidget | None = None,
        journal_root: str | Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("MainWindow")
        self.setWindowTitle(APP_NAME)
        self._backend = backend or default_backend()
        self._settings = settings or Settings()
        self._controller = DetectionController(self._backend, parent=self)
        self._canvas: Any = canvas if canvas is not None else _default_canvas()
        self._detections: Any = None
        self._post_processor = PostProcessor()  # the one current post-processing; the Detection dock edits it
        self._navigation_guard: NavigationGuard | None = None
        self._document_factory: DocumentFactory | None = None
        self._actions: dict[str, QAction] = {}

        self.setCentralWidget(self._canvas)
        self._image_dock = ImageListDock(self)
        self._nms_dock = NmsDock(self)
        self._layer_dock = LayerViewerDock(self)
        self._quality_dock = QualityDock(self)
        self._box_dock = BoxListDock(self._canvas, self)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self._image_dock)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self._box_dock)
        self.tabifyDockWidget(self._box_dock, self._quality_dock)  # one pane, two tabs: both fit 768 px
        self._box_dock.raise_()
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self._nms_dock)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self._layer_dock)
        for dock in (self._nms_dock, self._layer_dock, self._quality_dock):
            _scroll_when_small(dock)
        self._diagnostics = DiagnosticsDialog(self)

        self._zoom_label = QLabel("")
        self._zoom_label.setToolTip("zoom: screen pixels per image pixel (Ctrl+F fit, Ctrl+1 1:1)")
        self._model_label = QLabel("No model")
        self._providers_label = QLabel("")
        self._latency_label = QLabel("")
        self._busy = QProgressBar()
        self._busy.setRange(0, 0)  # indeterminate
        self._busy.setMaximumWidth(90)
        self._busy.setTextVisible(False)
        self._busy.setVisible(False)
        status = self.statusBar()
        for widget in (self._busy, self._zoom_label, self._latency_label, self._providers_label, self._model_label):
            status.addPermanentWidget(widget)

        self._annotation = Annotator(self, journal_root=journal_root)
        self._quality = QualityMonitor(self, self._quality_dock.panel)
        self._finetuner = FineTuner(self)
        self._coco_getter = CocoModelGetter(self)
        self._build_actions()
        self._connect()
        self._restore_settings()
        self.setAcceptDrops(True)
        self._canvas.viewport().installEventFilter(self)  # drops over the image too

    # ------------------------------------------------------------------ public parts
    @property
    def controller(self) -> DetectionController:
        return self._controller

    @property
    def canvas(self) -> Any:
        return self._canvas

    @property
    def image_list(self) -> ImageListDock:
        return self._image_dock

    @property
    def post_processor(self) -> PostProcessor:
        """The current post-processing settings (what the shown detections were made with)."""
        return self._post_processor

    @property
    def nms_panel(self) -> NmsPanel:
        return self._nms_dock.panel

    @property
    def box_list(self) -> BoxList:
        """The Boxes dock's list: labels and detections of the shown image."""
        return self._box_dock.panel

    @property
    def layer_viewer(self) -> LayerViewer:
        return self._layer_dock.viewer

    @property
    def diagnostics(self) -> DiagnosticsDialog:
        return self._diagnostics

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def annotation(self) -> Annotator:
        """Labelling: the shown image's document, save, formats, recovery, export."""
        return self._annotation

    @property
    def quality(self) -> QualityMonitor:
        """The quality dock's monitor: precision / recall / AP50 vs the saved labels."""
        return self._quality

    @property
    def quality_panel(self) -> QualityPanel:
        return self._quality_dock.panel

    @property
    def finetuner(self) -> FineTuner:
        """Model › Fine-tune on Saved Labels…"""
        return self._finetuner

    @property
    def recent_menu(self) -> RecentMenu:
        """File › Open Recent."""
        return self._recent_menu

    @property
    def coco_getter(self) -> CocoModelGetter:
        """Model › Get a COCO Model…"""
        return self._coco_getter

    def action(self, name: str) -> QAction:
        """Menu/toolbar actions by name: open_images, open_folder, open_model, quit, next,
        previous, zoom_fit, zoom_1to1, zoom_in, zoom_out, detect, auto_detect, about_model,
        finetune, coco_model;
        labelling: save, undo, redo, accept_all, autosave, format_voc|yolo|coco,
        export_voc|yolo|coco, shortcuts; and the canvas's create, delete, duplicate,
        relabel, hide, accept_detection, reject_detection."""
        return self._actions[name]

    def current_path(self) -> Path | None:
        return self._controller.current_path

    def current_detections(self) -> Any:
        """Detections on the canvas now (None when there is no network output)."""
        return self._detections

    def status_fields(self) -> dict[str, str]:
        return {
            "zoom": self._zoom_label.text(),
            "model": self._model_label.text(),
            "providers": self._providers_label.text(),
            "latency": self._latency_label.text(),
            "message": self.statusBar().currentMessage(),
        }

    def is_busy_shown(self) -> bool:
        return not self._busy.isHidden()

    def set_navigation_guard(self, guard: NavigationGuard | None) -> None:
        self._navigation_guard = guard

    def set_document_factory(self, factory: DocumentFactory | None) -> None:
        self._document_factory = factory

    # ------------------------------------------------------------------ opening
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
                self.statusBar().showMessage(f"{path}: {problem}", 8000)
        if images:  # what a restart reopens: the folder, or these files
            self._settings.last_images = [p.absolute() for p in files] if len(files) == len(images) else []
            for path in reversed(files[:RECENT_LIMIT]):
                self._settings.add_recent("images", path.absolute())
            self.set_image_paths(images)

    def open_folder(self, folder: str | Path) -> None:
        self.open_paths([folder])

    def set_image_paths(self, paths: Sequence[Path], *, current: int = 0) -> None:
        if not self._may_leave_image():
            return
        self._image_dock.set_paths(paths)
        self.images_opened.emit(list(paths))
        if paths:
            self.show_row(min(max(current, 0), len(paths) - 1), guard=False)

    def open_model(self, path: str | Path) -> None:
        """Load a model in the background; on failure a dialog says why and the previous
        model stays."""
        self.statusBar().showMessage(f"Loading model {Path(path).name}…")
        self._controller.load_model(path)

    def show_row(self, row: int, *, guard: bool = True) -> None:
        model = self._image_dock.model
        if not 0 <= row < model.rowCount():
            return
        path = model.path(row)
        if path == self._controller.current_path and self._image_dock.current_row() == row:
            return
        if guard and not self._may_leave_image():
            self._image_dock.set_current_row(model.row_of(self._controller.current_path or path))
            return
        self._image_dock.set_current_row(row)
        self._settings.last_image = path.absolute()
        self.setWindowTitle(f"{path.name}[*] — {APP_NAME}")
        self._controller.open_image(path)

    def next_image(self) -> None:
        self.show_row(self._image_dock.current_row() + 1)

    def previous_image(self) -> None:
        self.show_row(self._image_dock.current_row() - 1)

    def detect(self) -> None:
        if self._controller.detector is None:
            self.statusBar().showMessage("No model loaded: File › Open Model (.onnx)… (Ctrl+M)", 8000)
            return
        self._controller.detect()

    # ------------------------------------------------------------------ actions
    def _build_actions(self) -> None:
        def make(name: str, text: str, slot: Callable[..., Any], keys: Any = None, tip: str = "") -> QAction:
            action = QAction(text, self)
            if keys is not None:
                action.setShortcuts(keys if isinstance(keys, list) else [QKeySequence(keys)])
            if tip:
                action.setStatusTip(tip)
            action.triggered.connect(slot)
            self._actions[name] = action
            return action

        make("open_images", "Open &Image(s)…", self._ask_images, QKeySequence.StandardKey.Open)
        make("open_folder", "Open &Folder…", self._ask_folder, "Ctrl+Shift+O")
        make("open_model", "Open &Model (.onnx)…", self._ask_model, "Ctrl+M")
        make("quit", "&Quit", self.close, QKeySequence.StandardKey.Quit)
        make("next", "&Next Image", self.next_image, "D", "Next image (D)")
        make("previous", "&Previous Image", self.previous_image, "A", "Previous image (A)")
        make("zoom_fit", "Zoom to &Fit", lambda: self._canvas.zoom_fit(), "Ctrl+F")
        make("zoom_1to1", "Zoom &1:1", lambda: self._canvas.zoom_actual(), "Ctrl+1")
        make("zoom_in", "Zoom &In", lambda: self._canvas.zoom_in(), QKeySequence.StandardKey.ZoomIn)
        make("zoom_out", "Zoom &Out", lambda: self._canvas.zoom_out(), QKeySequence.StandardKey.ZoomOut)
        make("detect", "&Detect", self.detect, "Ctrl+R", "Run the detector on this image")
        auto = make("auto_detect", "Detect &Automatically on Open", lambda on: self._set_auto_detect(on))
        auto.setCheckable(True)
        make("about_model", "&About Model…", self._show_diagnostics, "Ctrl+I")
        self._actions["finetune"] = self._finetuner.action
        self._actions["coco_model"] = self._coco_getter.action
        labelling = self._annotation.actions
        self._actions.update(labelling)
        edit_actions = list(self._canvas.edit_actions())
        self._actions.update((action_name, self._canvas.action(action_name)) for action_name in CANVAS_ACTIONS)

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        for name in ("open_images", "open_folder", "open_model"):
            file_menu.addAction(self._actions[name])
        self._recent_menu = RecentMenu(self._settings, self)
        self._recent_menu.open_requested.connect(lambda path: self.open_paths([path]))
        file_menu.addMenu(self._recent_menu)
        file_menu.addSeparator()
        file_menu.addAction(self._actions["save"])
        file_menu.addAction(self._actions["change_save_dir"])
        format_menu = file_menu.addMenu("Label &Format")
        format_menu.addActions(list(self._annotation.format_actions.values()))
        file_menu.addAction(labelling["autosave"])
        export_menu = file_menu.addMenu("&Export Labelled Set As")
        export_menu.addActions(list(self._annotation.export_actions.values()))
        file_menu.addSeparator()
        file_menu.addAction(self._actions["quit"])
        edit_menu = menu.addMenu("&Edit")
        edit_menu.addActions([labelling["undo"], labelling["redo"]])
        edit_menu.addSeparator()
        edit_menu.addActions(edit_actions)
        edit_menu.addAction(labelling["accept_all"])
        edit_menu.addAction(labelling["verify"])
        view_menu = menu.addMenu("&View")
        for name in ("next", "previous", None, "zoom_fit", "zoom_1to1", "zoom_in", "zoom_out"):
            view_menu.addSeparator() if name is None else view_menu.addAction(self._actions[name])
        view_menu.addSeparator()
        for dock in (self._image_dock, self._box_dock, self._quality_dock, self._nms_dock, self._layer_dock):
            view_menu.addAction(dock.toggleViewAction())
        detect_menu = menu.addMenu("&Detect")
        detect_menu.addAction(self._actions["detect"])
        detect_menu.addAction(auto)
        menu.addMenu("&Model").addActions([self._actions["coco_model"], self._actions["finetune"]])
        help_menu = menu.addMenu("&Help")
        help_menu.addActions([labelling["shortcuts"], self._actions["about_model"]])

        # short toolbar texts (menus keep the full ones): the whole toolbar fits 1366 px
        short = {
            "open_images": "Open",
            "open_folder": "Folder",
            "open_model": "Model",
            "save": "Save",
            "previous": "Previous",
            "next": "Next",
            "create": "Box",
            "zoom_fit": "Fit",
            "zoom_1to1": "1:1",
            "zoom_in": "Zoom In",
            "zoom_out": "Zoom Out",
            "detect": "Detect",
            "auto_detect": "Auto-detect",
            "about_model": "About Model",
        }
        for name, text in short.items():
            action = self._actions[name]
            if not action.toolTip() or action.toolTip() == action.iconText():
                action.setToolTip(action.text().replace("&", "").rstrip("…"))
            action.setIconText(text)
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("MainToolBar")
        for name in (
            "open_images",
            "open_folder",
            "open_model",
            "save",
            None,
            "previous",
            "next",
            None,
            "create",
            None,
            "zoom_fit",
            "zoom_1to1",
            "zoom_in",
            "zoom_out",
            None,
            "detect",
            "auto_detect",
            "about_model",
        ):
            toolbar.addSeparator() if name is None else toolbar.addAction(self._actions[name])

    def _ask_images(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in self._backend.image_extensions)
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open images", str(self._settings.last_folder or Path.home()), f"Images ({patterns})"
        )
        if files:
            self._settings.last_folder = Path(files[0]).parent
            self.open_paths(files)

    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open folder", str(self._settings.last_folder or Path.home()))
        if folder:
            self.open_paths([folder])

    def _ask_model(self) -> None:
        start = self._settings.last_model.parent if self._settings.last_model else Path.home()
        path, _ = QFileDialog.getOpenFileName(self, "Open model", str(start), "ONNX models (*.onnx)")
        if path:
            self.open_model(path)

    def _show_diagnostics(self) -> None:
        self._diagnostics.show()
        self._diagnostics.raise_()
        self._diagnostics.activateWindow()

    # ------------------------------------------------------------------ wiring
    def _connect(self) -> None:
        c = self._controller
        c.model_loaded.connect(self._on_model_loaded)
        c.model_failed.connect(self._on_model_failed)
        c.image_loaded.connect(self._on_image_loaded)
        c.image_failed.connect(self._on_image_failed)
        c.output_ready.connect(self._on_output_ready)
        c.output_cleared.connect(self._on_output_cleared)
        c.path_detected.connect(lambda path: self._image_dock.model.set_detected(path))
        c.detection_failed.connect(self._on_detection_failed)
        c.busy_changed.connect(self._busy.setVisible)
        self._image_dock.image_activated.connect(self._on_image_activated)
        panel = self.nms_panel
        panel.settings_changed.connect(self._set_post_processor)
        panel.inference_size_changed.connect(self._on_inference_size)
        viewer = self.layer_viewer
        viewer.overlay_changed.connect(lambda image, opacity: self._canvas.set_overlay(image, opacity=opacity))
        viewer.cell_highlighted.connect(lambda rect: self._canvas.highlight_rect(rect))
        self._canvas.detection_selected.connect(self._on_detection_selected)
        self._canvas.zoom_changed.connect(lambda scale: self._zoom_label.setText(f"{scale * 100:.0f}%"))
        self._quality_dock.panel.image_activated.connect(self._on_image_activated)
        self._quality_dock.visibilityChanged.connect(self._quality.set_visible)
        if hasattr(self._canvas, "painted"):  # the paint stage of the diagnostics' timings
            self._canvas.painted.connect(lambda ms: self._diagnostics.update_timings(paint=ms))

    def _on_image_activated(self, path: Path) -> None:
        self.show_row(self._image_dock.model.row_of(path))

    def _on_model_loaded(self, detector: Any) -> None:
        contract = detector.contract
        path = Path(self._controller.model_path or contract.path)
        size = contract.default_size
        if self._settings.last_model == path and self._settings.inference_size:
            size = self._settings.inference_size  # the user's size for this very model
        self._settings.last_model = path
        self._settings.add_recent("models", path.absolute())
        self.nms_panel.set_class_names(contract.class_names)
        self.nms_panel.set_inference_size(size)
        self._controller.set_inference_size(size)
        self.layer_viewer.set_contract(contract)
        self._diagnostics.set_detector(detector)
        self._model_label.setText(f"Model: {path.name}")
        self._model_label.setToolTip(str(path))
        providers = ", ".join(p.removesuffix("ExecutionProvider") for p in detector.providers)
        self._providers_label.setText(f"Providers: {providers}")
        self._providers_label.setToolTip("\n".join(getattr(detector, "provider_notes", []) or []))
        self.statusBar().showMessage(f"Model {path.name} loaded ({len(contract.class_names)} classes)", 5000)

    def _on_model_failed(self, path: str, error: BaseException) -> None:
        text = str(error) if str(error).startswith(str(path)) else f"{path}: {type(error).__name__}: {error}"
        previous = self._controller.model_path
        keep = f"\n\nThe current model ({Path(previous).name}) stays loaded." if previous else ""
        self.statusBar().showMessage("Model not loaded", 5000)
        QMessageBox.critical(self, "Cannot open model", f"{text}{keep}")

    def _on_image_loaded(self, path: Path, image: QImage) -> None:
        self._canvas.set_image(image)
        self.statusBar().showMessage(f"{path.name}  {image.width()}×{image.height()}", 4000)
        if self._document_factory is not None:
            document = self._document_factory(path, image)
            self._canvas.set_document(document)
            document.dirty_changed.connect(partial(self._image_dock.model.set_unsaved, path))
            self._image_dock.model.set_unsaved(path, document.is_dirty())  # recovered edits

    def _on_image_failed(self, path: Path, error: BaseException) -> None:
        self._canvas.set_image(None)
        self.statusBar().showMessage(str(error), 10000)

    def _on_detection_failed(self, path: Path, error: BaseException) -> None:
        self.statusBar().showMessage(f"Detection failed on {path.name}: {error}", 10000)

    def _on_output_ready(self, result: DetectionResult) -> None:
        output = result.output
        self._diagnostics.set_timings(output.timings_ms)
        suffix = " (cached)" if result.cached else ""
        self._latency_label.setText(f"{result.latency_ms:.0f} ms{suffix}")
        self.layer_viewer.set_output(output)
        self._apply_nms()

    def _on_output_cleared(self) -> None:
        self._detections = None
        names = self._class_names()
        self._canvas.set_detections(None, names)
        self.layer_viewer.set_output(None)
        self.nms_panel.set_level_counts([], [])

    def _set_post_processor(self, post_processor: PostProcessor) -> None:
        self._post_processor = post_processor
        self._apply_nms()
        self.post_processor_changed.emit(post_processor)

    def _apply_nms(self) -> None:
        """Re-run the post-processor on the cached candidates and repaint (no network)."""
        output = self._controller.current_output
        if output is None:
            return
        start = time.perf_counter()
        detections = self._post_processor(output.candidates)
        selected = time.perf_counter()
        self._detections = detections
        model_path = self._controller.model_path or ""
        model_id = model_fingerprint(model_path) if model_path else ""  # remembered: read once per model file
        self._canvas.set_detections(detections, self._class_names(), model_name=Path(model_path).name, model_id=model_id)
        levels = self._controller.detector.contract.levels
        counts = np.bincount(np.asarray(detections.level_ids, dtype=np.int64), minlength=len(levels))
        self.nms_panel.set_level_counts([lv.name for lv in levels], counts.tolist())
        self.layer_viewer.clear_highlight()
        self._diagnostics.update_timings(postprocess=(selected - start) * 1000.0)

    def _on_detection_selected(self, index: int) -> None:
        detections = self._detections
        if detections is None or not 0 <= index < len(detections):
            self.layer_viewer.clear_highlight()
            return
        self.layer_viewer.show_anchor(int(detections.anchor_ids[index]))

    def _on_inference_size(self, size: int) -> None:
        self._settings.inference_size = size
        self._controller.set_inference_size(size)

    def _set_auto_detect(self, enabled: bool) -> None:
        self._settings.auto_detect = enabled
        self._controller.set_auto_detect(enabled)

    def _class_names(self) -> tuple[str, ...]:
        detector = self._controller.detector
        return tuple(detector.contract.class_names) if detector is not None else ()

    def _list_folder(self, folder: Path) -> list[Path]:
        try:
            return list(self._backend.list_images(folder))
        except Exception as error:  # noqa: BLE001 - ImageReadError and OS errors alike
            self.statusBar().showMessage(str(error), 10000)
            return []

    def _may_leave_image(self) -> bool:
        return self._navigation_guard is None or self._controller.current_path is None or self._navigation_guard()

    # ------------------------------------------------------------------ settings
    def _restore_settings(self) -> None:
        s = self._settings
        if s.geometry is not None:
            self.restoreGeometry(s.geometry)
        else:  # 1400x900, or the screen's free area when that is smaller (a 1366x768 laptop)
            free = self.screen().availableGeometry() if self.screen() is not None else None
            width, height = (1400, 900) if free is None or free.isEmpty() else (min(1400, free.width()), min(900, free.height()))
            self.resize(width, height)
        self._default_layout_pending = s.window_state is None or not self.restoreState(s.window_state)
        self.nms_panel.set_settings(  # the panel emits it: the window and its listeners take it from there
            PostProcessor.with_max_detections(s.max_detections, score_thresh=s.score_thresh, iou_thresh=s.iou_thresh)
        )
        auto = s.auto_detect
        self._actions["auto_detect"].setChecked(auto)
        self._controller.set_auto_detect(auto)

    def _save_settings(self) -> None:
        s = self._settings
        nms = self._post_processor
        s.score_thresh, s.iou_thresh, s.max_detections = nms.score_thresh, nms.iou_thresh, nms.max_detections
        s.geometry = self.saveGeometry()
        s.window_state = self.saveState()
        s.sync()

    def _apply_default_layout(self) -> None:
        """First start: side docks wide enough for their controls (and no wider), the
        Detection dock as tall as its controls, the rest to the feature pyramid."""
        self._default_layout_pending = False
        side = min(400, max(360, self.width() // 4))
        left = min(320, max(290, self.width() // 5))
        self.resizeDocks([self._image_dock, self._nms_dock], [left, side], Qt.Orientation.Horizontal)
        area = self._nms_dock.widget()
        panel = area.widget()
        content = panel.heightForWidth(area.viewport().width()) if panel.hasHeightForWidth() else -1
        wanted = max(content, panel.sizeHint().height()) + 2 * area.frameWidth()
        area.setMinimumHeight(min(wanted, self.height() // 2))  # resizeDocks alone may give it less
        self.resizeDocks([self._nms_dock, self._layer_dock], [wanted, max(self.height() - wanted, 1)], Qt.Orientation.Vertical)
        files = max(160, int(self.height() * 0.3))  # the file list scrolls anyway; Boxes / Quality get the rest
        self.resizeDocks([self._image_dock, self._box_dock], [files, max(self.height() - files, 1)], Qt.Orientation.Vertical)
        QTimer.singleShot(0, lambda: area.setMinimumHeight(0))  # then the user may shrink it again

    # ------------------------------------------------------------------ events
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        if self._default_layout_pending:
            self._apply_default_layout()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if not self._may_leave_image() or not self._finetuner.confirm_close():
            event.ignore()
            return
        self._save_settings()
        self._diagnostics.close()
        self._finetuner.shutdown()
        self._coco_getter.shutdown()
        self._quality.shutdown()
        self._controller.shutdown()
        event.accept()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if self._dropped_paths(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = self._dropped_paths(event)
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        """File drops over the canvas open files too (the canvas keeps other drags)."""
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove) and self._dropped_paths(event):
            event.acceptProposedAction()  # type: ignore[attr-defined]
            return True
        if kind == QEvent.Type.Drop and self._dropped_paths(event):
            self.dropEvent(event)  # type: ignore[arg-type]
            return True
        return super().eventFilter(watched, event)

    @staticmethod
    def _dropped_paths(event: Any) -> list[Path]:
        mime = event.mimeData() if hasattr(event, "mimeData") else None
        if mime is None or not mime.hasUrls():
            return []
        return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


__all__ = ["MainWindow"]
