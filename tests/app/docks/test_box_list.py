"""The Boxes dock (labels and detections of the shown image, selection synced both ways
with the canvas), the undoable *difficult* flag, the zoom in the status bar, and the dark
palette that follows the system."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QPalette
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.docks.box_list import DIFFICULT_COLUMN, BoxList
from app.labelling.document import LabelDocument, ProjectClasses
from model.postprocess import Detections
from tests.app.canvas.test_canvas import HEIGHT, WIDTH, ScriptedChooser, show_canvas, show_detections


@pytest.fixture
def canvas(qtbot, tmp_path: Path):  # noqa: ANN001, ANN201
    document = LabelDocument(ProjectClasses(["cat", "dog"]))
    document.load(tmp_path / "photo.png", (WIDTH, HEIGHT), "voc")
    document.add_box((20, 20, 80, 80), "cat")
    document.add_box((200, 100, 300, 200), "dog")
    document.undo_stack.clear()
    return show_canvas(qtbot, document, ScriptedChooser())


@pytest.fixture
def box_list(qtbot, canvas) -> BoxList:  # noqa: ANN001
    panel = BoxList(canvas)
    qtbot.addWidget(panel)
    panel.show()
    return panel


def _detections() -> Detections:
    return Detections(
        boxes=np.array([[100, 150, 160, 220], [320, 20, 380, 90]], np.float32),
        scores=np.array([0.87, 0.42], np.float32),
        class_ids=np.array([1, 0], np.int64),
        anchor_ids=np.array([3, 99], np.int64),
        level_ids=np.array([0, 2], np.int64),
    )


def _click_center(canvas, box) -> None:  # noqa: ANN001
    x1, y1, x2, y2 = box
    QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=canvas.mapFromScene(QPointF((x1 + x2) / 2, (y1 + y2) / 2)))


def test_the_list_shows_labels_and_detections(box_list: BoxList, canvas) -> None:  # noqa: ANN001
    assert box_list.label_rows() == [("cat", "drawn", False), ("dog", "drawn", False)]
    show_detections(canvas, _detections(), ["cat", "dog"], model_name="m.onnx")
    assert box_list.detection_rows() == [(0, "dog", "0.87"), (1, "cat", "0.42")]
    canvas.document().accept_detection(canvas.document().detections, 0, "m.onnx")
    box_list.flush()
    assert box_list.label_rows()[-1] == ("dog", "0.87", False)  # accepted: its score stays with it
    assert [row[0] for row in box_list.detection_rows()] == [1]


def test_selection_follows_the_canvas_and_the_list(qtbot, box_list: BoxList, canvas) -> None:  # noqa: ANN001
    _click_center(canvas, (200, 100, 300, 200))
    assert canvas.selected_rows() == [1]
    assert [item.data(0, Qt.ItemDataRole.UserRole + 1) for item in box_list.tree.selectedItems()] == [("label", 1)]
    # click a row in the list: the canvas selects that label
    tree = box_list.tree
    rect = tree.visualItemRect(box_list.label_item(0))
    QTest.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert canvas.selected_rows() == [0]
    # a detection row selects the detection on the canvas, and back
    show_detections(canvas, _detections(), ["cat", "dog"], model_name="m.onnx")
    box_list.flush()
    rect = tree.visualItemRect(box_list.detection_item(1))
    QTest.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert canvas.selected_detection() == 1 and canvas.selected_rows() == []
    _click_center(canvas, (100, 150, 160, 220))
    assert canvas.selected_detection() == 0
    assert [item.data(0, Qt.ItemDataRole.UserRole + 1) for item in tree.selectedItems()] == [("detection", 0)]


def test_difficult_toggles_from_the_list_and_the_key_and_undoes(qtbot, box_list: BoxList, canvas) -> None:  # noqa: ANN001
    document = canvas.document()
    tree = box_list.tree
    item = box_list.label_item(1)
    rect = tree.visualRect(tree.indexFromItem(item, DIFFICULT_COLUMN))
    # the check box sits at the left of its cell
    QTest.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(rect.left() + 10, rect.center().y()))
    assert document.entry(1).label.difficult is True
    assert box_list.label_rows()[1] == ("dog", "drawn", True)
    assert canvas.document().is_dirty()
    assert "difficult" in [i.tag().text() for i in canvas._layers.labels][1]  # noqa: SLF001 - the drawn caption
    document.undo_stack.undo()
    assert document.entry(1).label.difficult is False and box_list.label_rows()[1][2] is False
    # Ctrl+Shift+D on the selected boxes: all difficult, then all back
    canvas.set_selected_rows([0, 1])
    canvas.setFocus()
    QTest.keyClick(canvas, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert [e.label.difficult for e in document.entries()] == [True, True]
    assert document.undo_stack.count() == 1  # one step for both (the undone click was dropped)
    QTest.keyClick(canvas, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert [e.label.difficult for e in document.entries()] == [False, False]
    assert document.entry(0).box == (20.0, 20.0, 80.0, 80.0) and document.entry(0).label.name == "cat"


def test_difficult_labels_are_drawn_hatched(canvas) -> None:  # noqa: ANN001
    from app.labelling.commands import set_difficult

    set_difficult(canvas.document(), [0], True)
    items = canvas._layers.labels  # noqa: SLF001 - the drawn items
    assert items[0].brush().style() == Qt.BrushStyle.BDiagPattern
    assert items[1].brush().style() == Qt.BrushStyle.SolidPattern


def test_the_status_bar_shows_the_zoom(make_window, image_folder: Path, qtbot) -> None:  # noqa: ANN001
    window = make_window()
    window.open_folder(image_folder)
    window.show()
    qtbot.waitUntil(lambda: window.status_fields()["zoom"].endswith("%"))
    window.canvas.zoom_actual()
    assert window.status_fields()["zoom"] == "100%"
    window.canvas.set_zoom(2.5)
    assert window.status_fields()["zoom"] == "250%"


def test_a_dark_system_scheme_gets_the_dark_palette() -> None:
    from app.common.theme import ColorSchemeFollower, dark_palette

    app = QApplication.instance()
    before = QPalette(app.palette())
    follower = ColorSchemeFollower(app)
    try:
        follower.apply(dark=True)
        window = app.palette().color(QPalette.ColorRole.Window)
        text = app.palette().color(QPalette.ColorRole.WindowText)
        assert window == dark_palette().color(QPalette.ColorRole.Window)
        assert window.lightness() < 80 < text.lightness()
        assert app.style().name().lower() == "fusion"
    finally:
        follower.apply(dark=False)
    assert app.palette().color(QPalette.ColorRole.Window) == before.color(QPalette.ColorRole.Window)
