"""The main window: it assembles the session, the views and the jobs, and owns nothing else.

:class:`app.session.Session` holds the state the parts share (images, model,
post-processing, inference size, detections, label settings, the shown document); the
docks, the canvas, the label controller, the quality monitor, fine-tuning and the COCO
getter take the session, not this window. The window wires the detection controller
(:class:`app.jobs.detection.DetectionController`: models, images, network runs off the GUI
thread) to the session, keeps navigation and the status bar, and lays out menus and docks.

The slider walk: the Detection dock writes a post-processor to the session, which re-runs it
on the cached candidates (~1 ms) and emits the detections; the label controller puts them on
the shown document and the canvas repaints from the document.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QImage, QKeySequence, QShowEvent
from PySide6.QtWidgets import QMainWindow, QMessageBox, QWidget

from app.common.about import APP_NAME
from app.common.settings import Settings
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
from app.session import ModelInfo, Session
from app.window.diagnostics import DiagnosticsDialog
from app.window.layout import FileDrops, apply_default_layout, initial_size, scroll_when_small
from app.window.menus import build_menus
from app.window.navigation import Navigator
from app.window.recent import RecentMenu
from app.window.status import StatusBar
from model.postprocess import PostProcessor

#: Called before leaving the current image or closing; return False to stay (unsaved labels).
NavigationGuard = Callable[[], bool]


def _default_canvas() -> QWidget:
    from app.canvas.view import Canvas

    return Canvas()


class MainWindow(QMainWindow):
    """The window of one :class:`Session` (built from ``settings`` when not given)."""

    def __init__(
        self,
        *,
        session: Session | None = None,
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
        s = self._settings = settings or Settings()
        self._session = session or Session(
            post_processor=PostProcessor.with_max_detections(s.max_detections, score_thresh=s.score_thresh, iou_thresh=s.iou_thresh),
            label_format=s.label_format,
            autosave=s.autosave,
        )
        session = self._session
        self._controller = DetectionController(self._backend, parent=self)
        self._canvas: Any = canvas if canvas is not None else _default_canvas()
        self.setCentralWidget(self._canvas)

        self._image_dock = ImageListDock(session, self)
        self._nms_dock = NmsDock(session, self)
        self._layer_dock = LayerViewerDock(session, self)
        self._quality_dock = QualityDock(self)
        self._box_dock = BoxListDock(self._canvas, self)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self._image_dock)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self._box_dock)
        self.tabifyDockWidget(self._box_dock, self._quality_dock)  # one pane, two tabs: both fit 768 px
        self._box_dock.raise_()
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self._nms_dock)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self._layer_dock)
        for dock in (self._nms_dock, self._layer_dock, self._quality_dock):
            scroll_when_small(dock)
        self._diagnostics = DiagnosticsDialog(self)
        self._status_bar = StatusBar(self)
        self.setStatusBar(self._status_bar)

        self._annotation = Annotator(session, s, parent_widget=self, journal_root=journal_root, parent=self)
        self._navigation_guard: NavigationGuard | None = self._annotation.confirm_leave
        self._quality = QualityMonitor(session, self._controller, self._quality_dock.panel, parent=self)
        self._finetuner = FineTuner(session, confirm_leave=self._annotation.confirm_leave, parent_widget=self, parent=self)
        self._coco_getter = CocoModelGetter(session, parent_widget=self, parent=self)
        self._recent_menu = RecentMenu(s, self)
        self._navigator = Navigator(
            session, self._controller, self._image_dock, s, self._backend, may_leave=self._confirm_leave, parent_widget=self
        )
        self._actions: dict[str, QAction] = {}
        self._build_actions()
        self._connect()
        self._restore_settings()
        self.setAcceptDrops(True)
        self._drops = FileDrops(self.open_paths, self)
        self._canvas.viewport().installEventFilter(self._drops)  # drops over the image too

    # ------------------------------------------------------------------ public parts
    @property
    def session(self) -> Session:
        """The state the window's parts share."""
        return self._session

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
        """The current post-processing settings (the session's)."""
        return self._session.post_processor

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
        return self._session.detections

    def status_fields(self) -> dict[str, str]:
        return self._status_bar.fields()

    def is_busy_shown(self) -> bool:
        return self._status_bar.is_busy_shown()

    def set_navigation_guard(self, guard: NavigationGuard | None) -> None:
        """Replace the check made before leaving an image (default: the label controller's
        Save / Discard / Cancel)."""
        self._navigation_guard = guard

    # ------------------------------------------------------------------ opening (the navigator's)
    def open_paths(self, paths: Sequence[str | Path]) -> None:
        """Open image files, folders of images and/or one ``.onnx`` model."""
        self._navigator.open_paths(paths)

    def open_folder(self, folder: str | Path) -> None:
        self._navigator.open_paths([folder])

    def set_image_paths(self, paths: Sequence[Path], *, current: int = 0) -> None:
        self._navigator.set_image_paths(paths, current=current)

    def open_model(self, path: str | Path) -> None:
        self._navigator.open_model(path)

    def show_row(self, row: int, *, guard: bool = True) -> None:
        self._navigator.show_row(row, guard=guard)

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

        canvas = self._canvas
        nav = self._navigator
        make("open_images", "Open &Image(s)…", nav.ask_images, QKeySequence.StandardKey.Open)
        make("open_folder", "Open &Folder…", nav.ask_folder, "Ctrl+Shift+O")
        make("open_model", "Open &Model (.onnx)…", nav.ask_model, "Ctrl+M")
        make("quit", "&Quit", self.close, QKeySequence.StandardKey.Quit)
        make("next", "&Next Image", nav.next_image, "D", "Next image (D)")
        make("previous", "&Previous Image", nav.previous_image, "A", "Previous image (A)")
        make("zoom_fit", "Zoom to &Fit", lambda: canvas.zoom_fit(), "Ctrl+F")
        make("zoom_1to1", "Zoom &1:1", lambda: canvas.zoom_actual(), "Ctrl+1")
        make("zoom_in", "Zoom &In", lambda: canvas.zoom_in(), QKeySequence.StandardKey.ZoomIn)
        make("zoom_out", "Zoom &Out", lambda: canvas.zoom_out(), QKeySequence.StandardKey.ZoomOut)
        make("detect", "&Detect", nav.detect, "Ctrl+R", "Run the detector on this image")
        make("auto_detect", "Detect &Automatically on Open", lambda on: self._set_auto_detect(on)).setCheckable(True)
        make("about_model", "&About Model…", self._show_diagnostics, "Ctrl+I")
        self._actions["finetune"] = self._finetuner.action
        self._actions["coco_model"] = self._coco_getter.action
        labelling = self._annotation
        self._actions.update(labelling.actions)
        for name in CANVAS_ACTIONS:  # LabelImg's keys work wherever the focus is in the window
            canvas.action(name).setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            self._actions[name] = canvas.action(name)
        build_menus(
            self,
            self._actions,
            recent=self._recent_menu,
            format_actions=list(labelling.format_actions.values()),
            export_actions=list(labelling.export_actions.values()),
            edit_actions=list(canvas.edit_actions()),
            docks=[self._image_dock, self._box_dock, self._quality_dock, self._nms_dock, self._layer_dock],
        )

    def _show_diagnostics(self) -> None:
        self._diagnostics.show()
        self._diagnostics.raise_()
        self._diagnostics.activateWindow()

    # ------------------------------------------------------------------ wiring
    def _connect(self) -> None:
        c, session, canvas = self._controller, self._session, self._canvas
        c.model_loaded.connect(self._on_model_loaded)
        c.model_failed.connect(self._on_model_failed)
        c.image_loaded.connect(self._on_image_loaded)
        c.image_failed.connect(self._on_image_failed)
        c.output_ready.connect(self._on_output_ready)
        c.features_ready.connect(self._on_features_ready)
        c.output_cleared.connect(self._on_output_cleared)
        c.path_detected.connect(lambda path: self._image_dock.model.set_detected(path))
        c.detection_failed.connect(lambda path, error: self._status(f"Detection failed on {path.name}: {error}", 10000))
        c.busy_changed.connect(self._status_bar.set_busy)
        session.inference_size_changed.connect(self._on_inference_size)
        session.detections_changed.connect(lambda _d: self._diagnostics.update_timings(postprocess=session.last_select_ms))
        canvas.follow(session)  # it shows the session's document
        session.document_changed.connect(self._on_document)
        session.unsaved_changed.connect(self._on_unsaved)
        session.message.connect(self._status)
        session.open_model_requested.connect(self.open_model)
        self._recent_menu.open_requested.connect(lambda path: self.open_paths([path]))
        self._quality_dock.panel.image_activated.connect(self._navigator.show_path)
        session.current_changed.connect(lambda path: self.setWindowTitle(f"{path.name}[*] — {APP_NAME}" if path else APP_NAME))
        self._quality_dock.visibilityChanged.connect(self._quality.set_visible)
        viewer = self.layer_viewer
        viewer.overlay_changed.connect(lambda image, opacity: canvas.set_overlay(image, opacity=opacity))
        viewer.cell_highlighted.connect(lambda rect: canvas.highlight_rect(rect))
        canvas.detection_selected.connect(self._on_detection_selected)
        canvas.zoom_changed.connect(self._status_bar.show_zoom)
        # Accepting all selects every accepted box; the next Delete would throw the whole
        # review away. Review starts from nothing.
        self._actions["accept_all"].triggered.connect(lambda: canvas.set_selected_rows([]))
        if hasattr(canvas, "space_tapped"):  # Space on the canvas: a tap verifies, a hold pans
            canvas.space_tapped.connect(self._actions["verify"].trigger)
        if hasattr(canvas, "set_last_class"):  # the picker preselects the class used last, across sessions
            canvas.set_last_class(self._settings.last_class)
            canvas.class_chosen.connect(lambda name: setattr(self._settings, "last_class", name))
        if hasattr(canvas, "painted"):  # the paint stage of the diagnostics' timings
            canvas.painted.connect(lambda ms: self._diagnostics.update_timings(paint=ms))

    def _status(self, text: str, msecs: int = 8000) -> None:
        self.statusBar().showMessage(text, msecs)

    def _on_model_loaded(self, detector: Any) -> None:
        contract = detector.contract
        path = Path(self._controller.model_path or contract.path)
        size = contract.default_size
        if self._settings.last_model == path and self._settings.inference_size:
            size = self._settings.inference_size  # the user's size for this very model
        self._settings.last_model = path
        self._settings.add_recent("models", path.absolute())
        self._session.set_model(ModelInfo(path, contract))
        self._session.set_inference_size(size)
        self._controller.set_inference_size(size)
        self._diagnostics.set_detector(detector)
        self._status_bar.show_model(path, detector.providers, getattr(detector, "provider_notes", []) or [])
        self._status(f"Model {path.name} loaded ({len(contract.class_names)} classes)", 5000)

    def _on_model_failed(self, path: str, error: BaseException) -> None:
        text = str(error) if str(error).startswith(str(path)) else f"{path}: {type(error).__name__}: {error}"
        previous = self._controller.model_path
        keep = f"\n\nThe current model ({Path(previous).name}) stays loaded." if previous else ""
        self._status("Model not loaded", 5000)
        QMessageBox.critical(self, "Cannot open model", f"{text}{keep}")

    def _on_image_loaded(self, path: Path, image: QImage) -> None:
        self._canvas.set_image(image)
        self._status(f"{path.name}  {image.width()}×{image.height()}", 4000)
        self._annotation.open_document(path, image)

    def _on_image_failed(self, path: Path, error: BaseException) -> None:
        self._canvas.set_image(None)
        self._annotation.close_document()
        self._status(str(error), 10000)

    def _on_document(self, document: Any) -> None:
        self.setWindowModified(document is not None and document.is_dirty())

    def _on_unsaved(self, path: Path, unsaved: bool) -> None:
        if path == self._session.current_path:
            self.setWindowModified(unsaved)

    def _on_output_ready(self, result: DetectionResult) -> None:
        output = result.output
        self._diagnostics.set_timings(output.timings_ms)
        self._status_bar.show_latency(result.latency_ms, cached=result.cached)
        self.layer_viewer.set_output(output)
        self._session.set_candidates(output.candidates, size=result.key[1])

    def _on_features_ready(self, result: DetectionResult) -> None:
        """The shown output again, with its pyramid (it came from a batch run without it);
        the candidates, and so the boxes and the selection, stay as they are."""
        self._diagnostics.set_timings(result.output.timings_ms)
        self.layer_viewer.set_output(result.output, same_image=True)

    def _on_output_cleared(self) -> None:
        self.layer_viewer.set_output(None)
        self._session.set_candidates(None)

    def _on_detection_selected(self, index: int) -> None:
        detections = self._session.detections
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

    def _confirm_leave(self) -> bool:
        return self._navigation_guard is None or self._navigation_guard()

    # ------------------------------------------------------------------ settings
    def _restore_settings(self) -> None:
        s = self._settings
        if s.geometry is not None:
            self.restoreGeometry(s.geometry)
        else:
            self.resize(*initial_size(self))
        self._default_layout_pending = s.window_state is None or not self.restoreState(s.window_state)
        self._actions["auto_detect"].setChecked(s.auto_detect)
        self._controller.set_auto_detect(s.auto_detect)

    def _save_settings(self) -> None:
        s = self._settings
        nms = self._session.post_processor
        s.score_thresh, s.iou_thresh, s.max_detections = nms.score_thresh, nms.iou_thresh, nms.max_detections
        s.geometry = self.saveGeometry()
        s.window_state = self.saveState()
        s.sync()

    # ------------------------------------------------------------------ events
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        if self._default_layout_pending:
            self._default_layout_pending = False
            apply_default_layout(self, images=self._image_dock, boxes=self._box_dock, detection=self._nms_dock, pyramid=self._layer_dock)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if not self._navigator.may_leave_image() or not self._finetuner.confirm_close():
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
        self._drops.eventFilter(self, event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        self._drops.eventFilter(self, event)


__all__ = ["MainWindow"]
