"""The class picker: type to filter, Enter picks, new names become project classes."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QPointF, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QDialog  # noqa: E402

from app.canvas.class_picker import ClassPicker  # noqa: E402
from app.canvas.view import Canvas  # noqa: E402
from app.labelling.document import LabelDocument, ProjectClasses  # noqa: E402
from model.labels import Label  # noqa: E402


@pytest.fixture
def project() -> ProjectClasses:
    return ProjectClasses(["person", "bicycle", "car", "motorcycle", "cat"])


@pytest.fixture
def picker(qtbot, project: ProjectClasses) -> ClassPicker:  # noqa: ANN001
    dialog = ClassPicker(project)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def type_text(qtbot, picker: ClassPicker, text: str) -> None:  # noqa: ANN001
    qtbot.keyClicks(picker.line_edit(), text)


def test_typing_filters_the_class_list(qtbot, picker: ClassPicker) -> None:  # noqa: ANN001
    assert picker.visible_names() == ["person", "bicycle", "car", "motorcycle", "cat"]
    type_text(qtbot, picker, "cy")
    assert picker.visible_names() == ["bicycle", "motorcycle"]
    assert picker.current_name() == "bicycle"


def test_enter_picks_the_first_match(qtbot, picker: ClassPicker) -> None:  # noqa: ANN001
    type_text(qtbot, picker, "CYC")  # case-insensitive
    qtbot.keyClick(picker.line_edit(), Qt.Key.Key_Down)
    qtbot.keyClick(picker.line_edit(), Qt.Key.Key_Return)
    assert picker.result() == QDialog.DialogCode.Accepted
    assert picker.selected_name() == "motorcycle"


def test_an_exact_name_wins_over_the_highlight(qtbot, picker: ClassPicker) -> None:  # noqa: ANN001
    type_text(qtbot, picker, "Car")  # matches "car" exactly (and "car" only)
    qtbot.keyClick(picker.line_edit(), Qt.Key.Key_Return)
    assert picker.selected_name() == "car"


def test_a_new_name_is_added_to_the_project(qtbot, picker: ClassPicker, project: ProjectClasses) -> None:  # noqa: ANN001
    type_text(qtbot, picker, "traffic light")
    assert picker.visible_names() == []
    with qtbot.waitSignal(project.class_added) as blocker:
        qtbot.keyClick(picker.line_edit(), Qt.Key.Key_Return)
    assert blocker.args == ["traffic light"]
    assert picker.selected_name() == "traffic light"
    assert project.names[-1] == "traffic light"


def test_ctrl_enter_adds_the_typed_text_even_when_it_matches(qtbot, picker, project) -> None:  # noqa: ANN001
    type_text(qtbot, picker, "ca")
    qtbot.keyClick(picker.line_edit(), Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert picker.selected_name() == "ca" and "ca" in project


def test_escape_cancels(qtbot, picker: ClassPicker) -> None:  # noqa: ANN001
    type_text(qtbot, picker, "per")
    qtbot.keyClick(picker.line_edit(), Qt.Key.Key_Escape)
    assert picker.result() == QDialog.DialogCode.Rejected and picker.selected_name() == ""


def test_up_wraps_and_enter_picks(qtbot, picker: ClassPicker) -> None:  # noqa: ANN001
    type_text(qtbot, picker, "c")
    qtbot.keyClick(picker.line_edit(), Qt.Key.Key_Up)  # wraps to the last match
    qtbot.keyClick(picker.line_edit(), Qt.Key.Key_Enter)
    assert picker.selected_name() == "cat"


def test_clicking_a_class_fills_the_field_and_double_click_picks(qtbot, picker: ClassPicker) -> None:  # noqa: ANN001
    view = picker.list_view()
    rect = view.visualRect(view.model().index(2, 0))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert picker.line_edit().text() == "car"
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert picker.selected_name() == "car"


def _answer_next_picker(qtbot, text: str | None) -> None:  # noqa: ANN001
    """Type into the next modal class picker (runs inside its exec() loop)."""

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, ClassPicker):
            QTimer.singleShot(10, answer)
            return
        if text is None:
            qtbot.keyClick(dialog.line_edit(), Qt.Key.Key_Escape)
        else:
            qtbot.keyClicks(dialog.line_edit(), text)
            qtbot.keyClick(dialog.line_edit(), Qt.Key.Key_Return)

    QTimer.singleShot(0, answer)


def test_get_class_shows_the_initial_class(qtbot, project: ProjectClasses) -> None:  # noqa: ANN001
    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, ClassPicker)
        assert dialog.line_edit().text() == "car" and dialog.current_name() == "car"
        qtbot.keyClick(dialog.line_edit(), Qt.Key.Key_Return)

    QTimer.singleShot(0, answer)
    assert ClassPicker.get_class(None, project, initial="car") == "car"


def test_the_canvas_pops_the_picker_after_drawing(qtbot, tmp_path: Path, project: ProjectClasses) -> None:  # noqa: ANN001
    document = LabelDocument(project)
    document.load(tmp_path / "p.png", (200, 150), "voc")
    canvas = Canvas(document=document)  # the real picker
    qtbot.addWidget(canvas)
    canvas.resize(400, 300)
    canvas.set_image(np.zeros((150, 200, 3), np.uint8))
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.zoom_actual()
    canvas.setFocus()
    viewport = canvas.viewport()

    def draw(start: tuple[int, int], end: tuple[int, int]) -> None:
        qtbot.keyClick(viewport, Qt.Key.Key_W)
        qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=canvas.mapFromScene(QPointF(*start)))
        qtbot.mouseMove(viewport, canvas.mapFromScene(QPointF(*end)))
        qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=canvas.mapFromScene(QPointF(*end)))

    _answer_next_picker(qtbot, "moto")
    draw((10, 10), (60, 50))
    assert document.labels() == [Label(10, 10, 60, 50, "motorcycle")]
    _answer_next_picker(qtbot, None)  # Esc: no box
    draw((100, 100), (150, 140))
    assert len(document.labels()) == 1
