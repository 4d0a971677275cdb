"""The real window, driven like a user: open, detect, tune, inspect, switch, fail."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QMessageBox

from app.common.about import DEFAULT_MODEL, SAMPLES_DIR
from app.common.qt_env import APT_INSTALL_COMMAND, XCB_LIBRARIES, drop_cv2_qt_paths, xcb_problem
from app.common.settings import Settings
from app.window.main_window import MainWindow
from tests.app.conftest import MARKERS
from tests.app.fakes import (
    STANDARD_LEVELS,
    RecordingCanvas,
    counting_real_backend,
    fake_backend,
    image_marker,
    write_noise_image,
    write_tiny_contract_model,
)


def open_and_detect(qtbot, window: MainWindow, target) -> None:  # noqa: ANN001
    with qtbot.waitSignal(window.controller.output_ready, timeout=5000):
        window.open_paths([target])
    qtbot.waitUntil(lambda: not window.controller.is_busy(), timeout=5000)


@pytest.fixture
def captured_dialogs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    dialogs: list[tuple[str, str]] = []

    def critical(parent, title, text, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        dialogs.append((title, text))
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "critical", critical)
    return dialogs


def test_open_folder_shows_image_and_detections(qtbot, make_window, image_folder: Path, fake_model: Path) -> None:
    window = make_window(model=fake_model)
    open_and_detect(qtbot, window, image_folder)
    canvas: RecordingCanvas = window.canvas
    assert image_marker(canvas.image) == MARKERS[0]
    detections = window.current_detections()
    assert len(detections) == 4  # planted 7; floor, NMS and score 0.3 leave 4
    assert canvas.detections is detections
    assert np.all(np.diff(detections.scores) <= 0)
    assert window.image_list.model.rowCount() == 3 and window.image_list.current_row() == 0
    status = window.status_fields()
    assert status["model"] == "Model: fake_model.onnx"
    assert status["providers"] == "Providers: CPU"
    assert status["latency"].endswith("ms")
    assert not window.is_busy_shown()
    assert window.nms_panel.level_counts() == {"P3": 1, "P4": 1, "P5": 1, "P6": 0, "P7": 1}
    assert window.image_list.model.state(0).detected
    assert "CUDAExecutionProvider: no NVIDIA driver found" in window.diagnostics.text()
    # the paint stage arrives with the canvas' next repaint, after the boxes changed
    window.show()
    qtbot.waitUntil(lambda: "paint" in window.diagnostics.timings(), timeout=3000)
    assert set(window.diagnostics.timings()) >= {"preprocess", "network", "candidates", "postprocess", "paint"}


def test_score_slider_reruns_only_nms(qtbot, make_window, image_folder: Path, fake_model: Path) -> None:
    window = make_window(model=fake_model)
    open_and_detect(qtbot, window, image_folder)
    runs = window.controller.detector.run_count
    slider = window.nms_panel.score_slider
    counts = []
    for value in range(slider.value() + 1, 101, 3):  # a user dragging the slider up
        before = window.current_detections()
        slider.setValue(value)
        assert window.current_detections() is not before  # post-processed again, every step
        assert window.post_processor.score_thresh == value / 100
        counts.append(len(window.current_detections()))
    assert counts == sorted(counts, reverse=True) and counts[-1] == 0
    assert window.controller.detector.run_count == runs  # no network run
    assert not window.controller.is_busy()  # no worker either
    assert window.canvas.detections is window.current_detections()
    window.nms_panel.iou_slider.setValue(90)  # looser NMS keeps the duplicate
    slider.setValue(0)
    assert len(window.current_detections()) == 7  # every planted detection is above the floor
    assert window.controller.detector.run_count == runs


def test_slider_drags_update_the_drawn_detections_in_place(qtbot, make_window, image_folder: Path, fake_model: Path) -> None:
    from app.canvas.items import DetectionItem

    window = make_window(model=fake_model)
    open_and_detect(qtbot, window, image_folder)
    scene = window.canvas.scene()

    def drawn() -> dict[tuple[float, ...], DetectionItem]:
        return {it.box(): it for it in scene.items() if isinstance(it, DetectionItem) and it.isVisible()}

    panel = window.nms_panel
    panel.iou_slider.setValue(90)
    panel.score_slider.setValue(0)
    best_box = window.canvas.detection_rects()[0]  # the best score
    best_item = drawn()[best_box]
    ever: dict[int, DetectionItem] = {}  # holds them: no id is reused
    for slider in (panel.score_slider, panel.iou_slider, panel.score_slider):
        for value in [*range(0, 96, 5), *range(95, -1, -5)]:  # dragged up and back down
            slider.setValue(value)
            shown = drawn()
            assert len(shown) == len(window.current_detections()) == len(window.canvas.detection_rects())
            assert sorted(shown) == sorted(window.canvas.detection_rects().values())
            if best_box in shown:
                assert shown[best_box] is best_item  # the best detection keeps its item
            ever.update((id(it), it) for it in scene.items() if isinstance(it, DetectionItem))
    assert len(ever) <= 7  # at most one item per planted detection, however many steps


def test_class_filter_and_inference_size(qtbot, make_window, image_folder: Path, fake_model: Path) -> None:
    window = make_window(model=fake_model)
    open_and_detect(qtbot, window, image_folder)
    window.nms_panel.class_list.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert set(window.current_detections().class_ids.tolist()) == {1, 2}
    combo = window.nms_panel.size_combo
    with qtbot.waitSignal(window.controller.output_ready, timeout=5000):
        combo.setCurrentIndex(combo.findData(512))
    assert window.controller.detector.run_sizes[-1] == 512
    assert window.layer_viewer.levels()[0].shape == (48, 64, 4)  # 240x320 -> 384x512 input
    assert set(window.current_detections().class_ids.tolist()) == {1, 2}  # filter kept


def test_layer_viewer_follows_model_and_selection(qtbot, make_window, image_folder: Path, fake_model: Path) -> None:
    window = make_window(model=fake_model)
    open_and_detect(qtbot, window, image_folder)
    output = window.controller.current_output
    levels = window.layer_viewer.levels()
    assert [lv.name for lv in levels] == ["P3", "P4", "P5", "P6", "P7"]
    assert [lv.shape[:2] for lv in levels] == output.level_shapes
    detections = window.current_detections()
    window.canvas.detection_selected.emit(1)  # the class-1 detection planted on P4, cell (1, 1)
    assert detections.level_ids[1] == 1
    assert window.layer_viewer.selected_level() == 1
    assert window.layer_viewer.highlighted_cell() == (1, 1, 1)
    side = 16 / output.scale
    assert window.canvas.highlight == pytest.approx((side, side, 2 * side, 2 * side))
    window.canvas.detection_selected.emit(-1)
    assert window.canvas.highlight is None and window.layer_viewer.highlighted_cell() is None
    window.layer_viewer.overlay_check.setChecked(True)
    overlay, opacity = window.canvas.overlay
    assert overlay is not None and opacity == 0.5


def test_switching_fast_never_shows_stale_detections(qtbot, make_window, image_folder: Path, fake_model: Path) -> None:
    window = make_window(model=fake_model)
    window.controller.detector.delay_s = 0.15
    window.open_folder(image_folder)
    for step in ("next", "next", "previous", "next", "previous", "previous", "next", "next"):
        window.action(step).trigger()
        qtbot.wait(40)
    qtbot.waitUntil(lambda: window.current_detections() is not None and not window.controller.is_busy(), timeout=10_000)
    canvas: RecordingCanvas = window.canvas
    assert image_marker(canvas.image) == MARKERS[2]
    assert canvas.detection_log, "no detections were shown"
    assert all(shown == source for shown, source in canvas.detection_log), canvas.detection_log
    assert canvas.detection_log[-1] == (MARKERS[2], MARKERS[2])


def test_broken_model_shows_dialog_and_keeps_previous(
    qtbot, make_window, image_folder: Path, fake_model: Path, tmp_path: Path, captured_dialogs
) -> None:  # noqa: ANN001
    window = make_window(model=fake_model)
    open_and_detect(qtbot, window, image_folder)
    detector = window.controller.detector
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x00garbage")
    with qtbot.waitSignal(window.controller.model_failed, timeout=5000):
        window.open_model(broken)
    assert len(captured_dialogs) == 1
    title, text = captured_dialogs[0]
    assert title == "Cannot open model"
    assert str(broken) in text and "fake_model.onnx" in text
    assert window.controller.detector is detector
    assert window.status_fields()["model"] == "Model: fake_model.onnx"
    assert window.current_detections() is not None


def test_broken_image_is_a_status_message_not_a_dialog(
    qtbot, make_window, tmp_path: Path, fake_model: Path, captured_dialogs
) -> None:  # noqa: ANN001
    window = make_window(model=fake_model)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with qtbot.waitSignal(window.controller.image_failed, timeout=5000):
        window.open_paths([broken])
    assert "broken.jpg" in window.status_fields()["message"]
    assert captured_dialogs == []
    assert window.current_detections() is None


def test_drop_a_folder_and_navigate(qtbot, make_window, image_folder: Path, fake_model: Path) -> None:
    window = make_window(model=fake_model)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(image_folder))])
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(QPoint(10, 10), *args)
    window.dragEnterEvent(enter)  # Qt delivers drag events only during a real drag
    assert enter.isAccepted()
    with qtbot.waitSignal(window.controller.output_ready, timeout=5000):
        window.dropEvent(QDropEvent(QPointF(10, 10), *args))
    assert window.image_list.model.rowCount() == 3
    with qtbot.waitSignal(window.controller.output_ready, timeout=5000):
        window.action("next").trigger()
    assert image_marker(window.canvas.image) == MARKERS[1]
    assert window.windowTitle().startswith("img_1.png")
    window.action("previous").trigger()
    qtbot.waitUntil(lambda: image_marker(window.canvas.image) == MARKERS[0], timeout=5000)
    window.action("previous").trigger()  # already at the first image: stays
    assert window.image_list.current_row() == 0


def test_manual_detect_mode(qtbot, make_window, image_folder: Path, fake_model: Path) -> None:
    window = make_window(model=fake_model, auto_detect=False)
    with qtbot.waitSignal(window.controller.image_loaded, timeout=5000):
        window.open_folder(image_folder)
    assert window.current_detections() is None and window.controller.detector.run_count == 0
    with qtbot.waitSignal(window.controller.output_ready, timeout=5000):
        window.action("detect").trigger()
    assert len(window.current_detections()) == 4


def test_navigation_guard_can_keep_the_user_on_the_image(qtbot, make_window, image_folder: Path) -> None:
    window = make_window()
    with qtbot.waitSignal(window.controller.image_loaded, timeout=5000):
        window.open_folder(image_folder)
    window.set_navigation_guard(lambda: False)
    window.action("next").trigger()
    assert window.image_list.current_row() == 0
    assert window.current_path() == image_folder / "img_0.png"
    window.set_navigation_guard(None)


def test_settings_persist_between_sessions(qtbot, make_window, image_folder: Path, fake_model: Path) -> None:
    window = make_window(model=fake_model)
    window.nms_panel.score_slider.setValue(55)
    window.open_folder(image_folder)
    window.close()
    settings = Settings()
    assert settings.score_thresh == 0.55
    assert settings.last_model == fake_model
    assert settings.last_folder == image_folder
    again = MainWindow(backend=fake_backend(), canvas=RecordingCanvas())
    qtbot.addWidget(again)
    assert again.nms_panel.settings().score_thresh == 0.55


def test_qt_env_drops_cv2_paths_and_names_missing_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    cv2_dir = Path(cv2.__file__).resolve().parent
    environ = {"QT_QPA_PLATFORM_PLUGIN_PATH": str(cv2_dir / "qt" / "plugins"), "QT_QPA_FONTDIR": "/usr/share/fonts"}
    assert drop_cv2_qt_paths(environ) == ["QT_QPA_PLATFORM_PLUGIN_PATH"]
    assert environ == {"QT_QPA_FONTDIR": "/usr/share/fonts"}
    assert xcb_problem({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}) is None
    assert xcb_problem({"QT_QPA_PLATFORM": "xcb"}) is None  # no display: not our message
    if not sys.platform.startswith("linux"):
        return
    monkeypatch.setattr("app.common.qt_env.missing_xcb_libraries", lambda: ["libxcb-icccm.so.4"])
    line = xcb_problem({"DISPLAY": ":0"})
    assert line is not None and "\n" not in line
    assert "(libxcb-icccm4)" in line and line.endswith(APT_INSTALL_COMMAND)
    assert set(XCB_LIBRARIES.values()) <= set(APT_INSTALL_COMMAND.split())


def test_command_line_opens_paths_and_model(qtbot, image_folder: Path, tmp_path: Path, captured_dialogs) -> None:  # noqa: ANN001
    from app.main import build_parser, open_window

    broken = tmp_path / "nope.onnx"
    broken.write_bytes(b"garbage")
    window = open_window(build_parser().parse_args([str(image_folder), "--model", str(broken)]))
    qtbot.addWidget(window)
    assert window.image_list.model.rowCount() == 3
    qtbot.waitUntil(lambda: bool(captured_dialogs), timeout=5000)
    assert str(broken) in captured_dialogs[0][1]
    assert window.controller.detector is None


def test_main_prints_one_line_when_the_display_cannot_work(monkeypatch, capsys) -> None:  # noqa: ANN001
    from app import main as main_module

    monkeypatch.setattr("app.common.qt_env.prepare_qt_environment", lambda: "RetinaNet Studio: missing libs; install them")
    assert main_module.main([]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "RetinaNet Studio: missing libs; install them"


# ------------------------------------------------------------------ the real runtime
def check_real_model_in_window(qtbot, window: MainWindow, images) -> None:  # noqa: ANN001
    """Shared checks for a real onnxruntime Detector driven through the window."""
    open_and_detect(qtbot, window, images)
    detector = window.controller.detector
    output = window.controller.current_output
    levels = window.layer_viewer.levels()
    assert [(lv.name, lv.stride) for lv in levels] == [(lv.name, lv.stride) for lv in detector.contract.levels]
    assert [lv.shape for lv in levels] == [(*s, detector.contract.feature_channels) for s in output.level_shapes]
    assert window.status_fields()["providers"] == "Providers: " + ", ".join(
        p.removesuffix("ExecutionProvider") for p in detector.providers
    )
    runs = detector.run_count
    assert runs == 1
    counts = []
    for value in (5, 20, 40, 60, 80, 99):
        window.nms_panel.score_slider.setValue(value)
        counts.append(len(window.current_detections()))
    assert counts == sorted(counts, reverse=True)
    assert detector.run_count == runs and window.controller.current_output is output
    assert window.diagnostics.timings()["postprocess"] < 50
    window.nms_panel.score_slider.setValue(5)
    detections = window.current_detections()
    if len(detections):
        window.canvas.detection_selected.emit(0)
        level, row, col, _k = output.anchor_location(int(detections.anchor_ids[0]))
        assert level == detections.level_ids[0]
        assert window.layer_viewer.highlighted_cell() == (level, row, col)
        side = detector.contract.levels[level].stride / output.scale
        assert window.canvas.highlight == pytest.approx((col * side, row * side, (col + 1) * side, (row + 1) * side))


@pytest.mark.parametrize(
    "levels", [STANDARD_LEVELS, (("P2", 4), ("P3", 8), ("P4", 16), ("P5", 32), ("P6", 64))], ids=["P3-P7", "P2-P6"]
)
def test_real_runtime_on_a_tiny_contract_model(qtbot, make_window, tmp_path: Path, levels) -> None:  # noqa: ANN001
    model = write_tiny_contract_model(tmp_path / "tiny.onnx", levels=levels)
    folder = tmp_path / "noise"
    folder.mkdir()
    for seed in range(2):
        write_noise_image(folder / f"noise_{seed}.png", seed=seed)
    window = make_window(backend=counting_real_backend(), model=model)
    check_real_model_in_window(qtbot, window, folder)


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason=f"{DEFAULT_MODEL} is missing (make demo-model builds it)")
def test_demo_model_end_to_end(qtbot, make_window) -> None:  # noqa: ANN001
    window = make_window(backend=counting_real_backend(), model=DEFAULT_MODEL)
    check_real_model_in_window(qtbot, window, SAMPLES_DIR)
    # the bundled model finds the sample images' shapes
    window.nms_panel.score_slider.setValue(30)
    assert len(window.current_detections()) > 0
    assert set(window.controller.detector.contract.class_names) == {"circle", "square", "triangle", "star", "cross"}


def test_signal_emit_does_not_leak_references_to_true() -> None:
    """PySide6 6.12.0 drops a reference to True per Python emit (CPython then aborts);
    importing app installs the fix."""
    from PySide6.QtCore import QObject, Signal

    class Emitter(QObject):
        ping = Signal(int)

    emitter = Emitter()
    before = sys.getrefcount(True)
    for value in range(5000):
        emitter.ping.emit(value)
    assert sys.getrefcount(True) >= before
