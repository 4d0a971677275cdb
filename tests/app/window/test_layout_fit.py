"""Docks that fit: at 1366x768 (and 1920x1080) on first start, no dock needs to scroll and
no thumbnail caption or drop-down is cut. Geometry checks, offscreen."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QComboBox, QDockWidget, QLabel, QScrollArea


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)], ids=["1366x768", "1920x1080"])
def test_nothing_is_clipped_on_first_start(make_window, image_folder: Path, fake_model: Path, qtbot, size) -> None:  # noqa: ANN001
    window = make_window(model=fake_model)
    window.resize(*size)
    window.open_folder(image_folder)
    window.show()
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: window.current_detections() is not None, timeout=10_000)
    viewer = window.layer_viewer
    viewer.source_combo.setCurrentIndex(viewer.source_combo.findData("scores"))
    qtbot.wait(50)  # the first-start dock sizes are applied once the window is shown
    assert (window.width(), window.height()) == size
    for dock in window.findChildren(QDockWidget):
        if not dock.isVisible() or dock.objectName() == "ImageListDock":
            continue
        area = dock.widget()
        if isinstance(area, QScrollArea) and not dock.visibleRegion().isEmpty():
            assert area.verticalScrollBar().maximum() == 0, f"{dock.windowTitle()} scrolls vertically at {size}"
            assert area.horizontalScrollBar().maximum() == 0, f"{dock.windowTitle()} scrolls sideways at {size}"
    for level in range(len(viewer.levels())):
        caption = viewer.level_view(level).parentWidget().findChild(QLabel)
        for line in caption.text().splitlines():
            assert caption.fontMetrics().horizontalAdvance(line) <= caption.width(), line
    for combo in viewer.findChildren(QComboBox) + window.nms_panel.findChildren(QComboBox):
        text = combo.currentText()
        room = combo.width() - 28  # the arrow and frame
        assert combo.fontMetrics().horizontalAdvance(text) <= room, f"{text!r} is cut in a {combo.width()} px drop-down"
    assert viewer.overlay_check.visibleRegion().boundingRect().height() == viewer.overlay_check.height()
    # the Quality vs Labels tab shares the Boxes pane: it fits too
    quality = window.findChild(QDockWidget, "QualityDock")
    quality.raise_()
    qtbot.waitUntil(lambda: not quality.visibleRegion().isEmpty())
    area = quality.widget()
    assert isinstance(area, QScrollArea) and area.verticalScrollBar().maximum() == 0


def test_the_first_window_is_no_larger_than_the_screen(qtbot) -> None:  # noqa: ANN001
    from app.window.main_window import MainWindow
    from tests.app.fakes import RecordingCanvas, fake_backend

    window = MainWindow(backend=fake_backend(), canvas=RecordingCanvas())
    qtbot.addWidget(window)
    free = window.screen().availableGeometry()
    assert window.width() <= max(free.width(), 1) and window.height() <= max(free.height(), 1)
    assert (window.width(), window.height()) == (min(1400, free.width()), min(900, free.height()))
