"""The labelling canvas, driven with real mouse and key events on its viewport.

Image coordinates map to the viewport with ``canvas.mapFromScene`` (scene = image pixels).
Every edit is checked through the document (the model) and the canvas's drawn boxes, and
undo/redo must restore the exact previous geometry.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QImage, QWheelEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.canvas.items import DetectionItem  # noqa: E402
from app.canvas.view import Canvas  # noqa: E402
from app.labelling.document import LabelDocument, ProjectClasses  # noqa: E402
from app.labelling.entries import DRAWN, MODEL  # noqa: E402
from model.labels import Label  # noqa: E402
from model.postprocess import Detections  # noqa: E402

WIDTH, HEIGHT = 400, 300
BOX_A = (50.0, 60.0, 150.0, 140.0)
BOX_B = (220.0, 100.0, 300.0, 200.0)
LEFT = Qt.MouseButton.LeftButton
NO_MOD = Qt.KeyboardModifier.NoModifier
CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


class ScriptedChooser:
    """Stands in for the class picker: answers from a list, records what it was asked."""

    def __init__(self, *answers: str | None) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, parent, project, initial):  # noqa: ANN001, ANN204
        self.asked.append(initial)
        answer = self.answers.pop(0) if self.answers else None
        if answer:
            project.add(answer)
        return answer


@pytest.fixture
def project() -> ProjectClasses:
    return ProjectClasses(["cat", "dog", "bird"])


@pytest.fixture
def document(tmp_path: Path, project: ProjectClasses) -> LabelDocument:
    doc = LabelDocument(project)
    doc.load(tmp_path / "photo.png", (WIDTH, HEIGHT), "voc")
    return doc


@pytest.fixture
def chooser() -> ScriptedChooser:
    return ScriptedChooser()


def show_canvas(qtbot, document: LabelDocument, chooser: ScriptedChooser) -> Canvas:  # noqa: ANN001
    """A shown, focused Canvas on a grey WIDTH x HEIGHT image at 1:1 (image = widget pixels)."""
    view = Canvas(document=document, class_chooser=chooser)
    qtbot.addWidget(view)
    view.resize(640, 480)
    view.set_image(np.full((HEIGHT, WIDTH, 3), 90, np.uint8))
    view.show()
    qtbot.waitExposed(view)
    view.zoom_actual()
    view.activateWindow()
    view.setFocus()
    return view


@pytest.fixture
def canvas(qtbot, document: LabelDocument, chooser: ScriptedChooser) -> Canvas:  # noqa: ANN001
    return show_canvas(qtbot, document, chooser)


def two_boxes(document: LabelDocument) -> None:
    """Start from two saved-looking labels (clean undo stack)."""
    document.add_box(BOX_A, "dog")
    document.add_box(BOX_B, "cat")
    document.undo_stack.clear()


def vp(canvas: Canvas, x: float, y: float) -> QPoint:
    return canvas.mapFromScene(QPointF(x, y))


def drag(qtbot, canvas: Canvas, start, end, *, button=LEFT, modifier=NO_MOD, steps: int = 3) -> None:  # noqa: ANN001
    """Press at image point ``start``, move in a few steps, release at ``end``."""
    viewport = canvas.viewport()
    qtbot.mousePress(viewport, button, modifier, vp(canvas, *start))
    for k in range(1, steps + 1):
        x = start[0] + (end[0] - start[0]) * k / steps
        y = start[1] + (end[1] - start[1]) * k / steps
        qtbot.mouseMove(viewport, vp(canvas, x, y))
    qtbot.mouseRelease(viewport, button, modifier, vp(canvas, *end))


def click(qtbot, canvas: Canvas, x: float, y: float, modifier=NO_MOD) -> None:  # noqa: ANN001
    qtbot.mouseClick(canvas.viewport(), LEFT, modifier, vp(canvas, x, y))


def key(qtbot, canvas: Canvas, k: Qt.Key, modifier=NO_MOD) -> None:  # noqa: ANN001
    qtbot.keyClick(canvas.viewport(), k, modifier)


def show_detections(
    canvas: Canvas, detections: Detections | None, class_names: list[str], *, model_name: str = "", model_id: str = "", size: int = 0
) -> None:
    """Put ``detections`` on the document the canvas shows (the canvas draws what it holds)."""
    canvas.document().set_detections(detections, class_names=class_names, model_name=model_name, model_id=model_id, size=size)


def boxes(document: LabelDocument) -> list[tuple[float, float, float, float]]:
    return [lab.box for lab in document.labels()]


def assert_undo_redo(document: LabelDocument, canvas: Canvas, before: list, after: list) -> None:
    """Undo gives back exactly ``before``, redo exactly ``after`` (document and drawing)."""
    assert boxes(document) == after and canvas.label_rects() == after
    document.undo_stack.undo()
    assert boxes(document) == before and canvas.label_rects() == before
    document.undo_stack.redo()
    assert boxes(document) == after and canvas.label_rects() == after


# ----------------------------------------------------------------------------- mapping
def test_scene_coordinates_are_image_pixels(qtbot, canvas: Canvas) -> None:  # noqa: ANN001
    moved = []
    canvas.mouse_moved.connect(lambda x, y: moved.append((round(x), round(y))))
    qtbot.mouseMove(canvas.viewport(), vp(canvas, 123, 45))
    assert moved[-1] == (123, 45)
    assert canvas.zoom() == pytest.approx(1.0)


# ----------------------------------------------------------------------------- create
def test_w_then_drag_draws_a_box_and_picks_its_class(qtbot, canvas, document, chooser) -> None:  # noqa: ANN001
    chooser.answers = ["dog"]
    key(qtbot, canvas, Qt.Key.Key_W)
    assert canvas.is_creating()
    drag(qtbot, canvas, (50, 60), (150, 140))
    assert document.labels() == [Label(50.0, 60.0, 150.0, 140.0, "dog")]
    assert document.provenance(0).source == DRAWN
    assert canvas.label_rects() == [BOX_A] and canvas.label_names() == ["dog"]
    assert canvas.selected_rows() == [0]
    assert not canvas.is_creating()
    assert document.undo_stack.count() == 1 and document.is_dirty()
    assert_undo_redo(document, canvas, [], [BOX_A])


def test_drawing_backwards_and_past_the_edge_is_clamped(qtbot, canvas, document, chooser) -> None:  # noqa: ANN001
    chooser.answers = ["cat"]
    key(qtbot, canvas, Qt.Key.Key_W)
    drag(qtbot, canvas, (380, 250), (WIDTH + 30, HEIGHT + 30))  # ends outside the image
    drag_end = boxes(document)
    assert drag_end == [(380.0, 250.0, float(WIDTH), float(HEIGHT))]


def test_escape_in_the_picker_cancels_the_new_box(qtbot, canvas, document, chooser) -> None:  # noqa: ANN001
    chooser.answers = [None]
    key(qtbot, canvas, Qt.Key.Key_W)
    drag(qtbot, canvas, (50, 60), (150, 140))
    assert chooser.asked == [""]
    assert document.labels() == [] and canvas.label_rects() == []
    assert document.undo_stack.count() == 0


def test_escape_while_dragging_cancels_drawing(qtbot, canvas, document, chooser) -> None:  # noqa: ANN001
    key(qtbot, canvas, Qt.Key.Key_W)
    viewport = canvas.viewport()
    qtbot.mousePress(viewport, LEFT, NO_MOD, vp(canvas, 50, 60))
    qtbot.mouseMove(viewport, vp(canvas, 120, 120))
    key(qtbot, canvas, Qt.Key.Key_Escape)
    qtbot.mouseRelease(viewport, LEFT, NO_MOD, vp(canvas, 120, 120))
    assert chooser.asked == [] and document.labels() == []
    assert not canvas.is_creating()


def test_the_picker_suggests_the_last_class(qtbot, canvas, document, chooser) -> None:  # noqa: ANN001
    chooser.answers = ["bird", "bird"]
    for start, end in (((10, 10), (40, 40)), ((60, 10), (90, 40))):
        key(qtbot, canvas, Qt.Key.Key_W)
        drag(qtbot, canvas, start, end)
    assert chooser.asked == ["", "bird"]
    assert [lab.name for lab in document.labels()] == ["bird", "bird"]


# ----------------------------------------------------------------------------- select
def test_click_selects_and_tab_cycles(qtbot, canvas, document) -> None:  # noqa: ANN001
    two_boxes(document)
    click(qtbot, canvas, 100, 100)
    assert canvas.selected_rows() == [0]
    key(qtbot, canvas, Qt.Key.Key_Tab)
    assert canvas.selected_rows() == [1]
    key(qtbot, canvas, Qt.Key.Key_Tab)
    assert canvas.selected_rows() == [0]
    key(qtbot, canvas, Qt.Key.Key_Tab, SHIFT)
    assert canvas.selected_rows() == [1]
    click(qtbot, canvas, 10, 280)  # empty space
    assert canvas.selected_rows() == []


def test_ctrl_click_and_rubber_band_select_several(qtbot, canvas, document) -> None:  # noqa: ANN001
    two_boxes(document)
    click(qtbot, canvas, 100, 100)
    click(qtbot, canvas, 250, 150, CTRL)
    assert canvas.selected_rows() == [0, 1]
    click(qtbot, canvas, 10, 10)
    drag(qtbot, canvas, (20, 20), (240, 120))  # touches both boxes
    assert canvas.selected_rows() == [0, 1]
    key(qtbot, canvas, Qt.Key.Key_Delete)
    assert document.labels() == []
    assert document.undo_stack.count() == 1  # one command for the whole selection
    assert_undo_redo(document, canvas, [BOX_A, BOX_B], [])


# ----------------------------------------------------------------------------- move / resize
def test_drag_moves_a_box_as_one_undoable_command(qtbot, canvas, document) -> None:  # noqa: ANN001
    two_boxes(document)
    drag(qtbot, canvas, (70, 80), (100, 95), steps=5)
    moved = (80.0, 75.0, 180.0, 155.0)
    assert document.undo_stack.count() == 1
    assert_undo_redo(document, canvas, [BOX_A, BOX_B], [moved, BOX_B])


def test_a_click_that_jitters_does_not_move_the_box(qtbot, canvas, document) -> None:  # noqa: ANN001
    two_boxes(document)
    drag(qtbot, canvas, (70, 80), (71, 81), steps=1)
    assert boxes(document) == [BOX_A, BOX_B] and document.undo_stack.count() == 0
    assert canvas.selected_rows() == [0]


def test_moving_several_boxes_keeps_them_inside_the_image(qtbot, canvas, document) -> None:  # noqa: ANN001
    two_boxes(document)
    click(qtbot, canvas, 100, 100)
    click(qtbot, canvas, 250, 150, CTRL)
    drag(qtbot, canvas, (100, 100), (300, 120))  # would push box B 100 px past the right edge
    # dx is limited so that B touches the right edge; both move by the same amount
    assert boxes(document) == [(150.0, 80.0, 250.0, 160.0), (320.0, 120.0, 400.0, 220.0)]
    assert_undo_redo(document, canvas, [BOX_A, BOX_B], boxes(document))


@pytest.mark.parametrize(
    ("handle_point", "target", "expected"),
    [
        ((150, 140), (170, 175), (50.0, 60.0, 170.0, 175.0)),  # bottom-right corner
        ((50, 60), (20, 30), (20.0, 30.0, 150.0, 140.0)),  # top-left corner
        ((50, 100), (30, 130), (30.0, 60.0, 150.0, 140.0)),  # left edge: only x moves
        ((100, 140), (90, 180), (50.0, 60.0, 150.0, 180.0)),  # bottom edge: only y moves
        ((150, 100), (500, 100), (50.0, 60.0, 400.0, 140.0)),  # right edge, clamped to the image
        ((50, 100), (260, 100), (149.0, 60.0, 150.0, 140.0)),  # past the other edge: 1 px minimum
    ],
)
def test_handles_resize(qtbot, canvas, document, handle_point, target, expected) -> None:  # noqa: ANN001
    two_boxes(document)
    click(qtbot, canvas, 100, 100)  # select: handles appear
    drag(qtbot, canvas, handle_point, target)
    assert document.undo_stack.count() == 1
    assert_undo_redo(document, canvas, [BOX_A, BOX_B], [expected, BOX_B])


def test_arrow_keys_nudge_by_one_and_shift_by_ten(qtbot, canvas, document) -> None:  # noqa: ANN001
    two_boxes(document)
    click(qtbot, canvas, 100, 100)
    key(qtbot, canvas, Qt.Key.Key_Right)
    after_right = (51.0, 60.0, 151.0, 140.0)
    assert_undo_redo(document, canvas, [BOX_A, BOX_B], [after_right, BOX_B])
    key(qtbot, canvas, Qt.Key.Key_Down, SHIFT)
    after_down = (51.0, 70.0, 151.0, 150.0)
    assert_undo_redo(document, canvas, [after_right, BOX_B], [after_down, BOX_B])
    key(qtbot, canvas, Qt.Key.Key_Up)
    key(qtbot, canvas, Qt.Key.Key_Left, SHIFT)
    assert boxes(document)[0] == (41.0, 69.0, 141.0, 149.0)
    for _ in range(6):  # far past the left edge: stops at x = 0
        key(qtbot, canvas, Qt.Key.Key_Left, SHIFT)
    assert boxes(document)[0] == (0.0, 69.0, 100.0, 149.0)


# ----------------------------------------------------------------------------- class, delete, duplicate
def test_e_relabels_the_selection(qtbot, canvas, document, chooser) -> None:  # noqa: ANN001
    two_boxes(document)
    chooser.answers = ["bird"]
    click(qtbot, canvas, 100, 100)
    key(qtbot, canvas, Qt.Key.Key_E)
    assert chooser.asked == ["dog"]  # the picker opens on the current class
    assert [lab.name for lab in document.labels()] == ["bird", "cat"]
    assert canvas.label_names() == ["bird", "cat"]
    document.undo_stack.undo()
    assert [lab.name for lab in document.labels()] == ["dog", "cat"]
    assert boxes(document) == [BOX_A, BOX_B]


def test_double_click_relabels(qtbot, canvas, document, chooser) -> None:  # noqa: ANN001
    two_boxes(document)
    chooser.answers = ["a brand new class"]
    qtbot.mouseDClick(canvas.viewport(), LEFT, NO_MOD, vp(canvas, 250, 150))
    assert [lab.name for lab in document.labels()] == ["dog", "a brand new class"]
    assert "a brand new class" in document.project
    assert boxes(document) == [BOX_A, BOX_B]


def test_delete_and_undo_restore_the_same_row(qtbot, canvas, document) -> None:  # noqa: ANN001
    two_boxes(document)
    click(qtbot, canvas, 100, 100)
    key(qtbot, canvas, Qt.Key.Key_Delete)
    assert boxes(document) == [BOX_B]
    document.undo_stack.undo()
    assert document.labels() == [Label(*BOX_A, "dog"), Label(*BOX_B, "cat")]
    assert canvas.label_rects() == [BOX_A, BOX_B]


def test_ctrl_d_duplicates_with_an_offset(qtbot, canvas, document) -> None:  # noqa: ANN001
    two_boxes(document)
    click(qtbot, canvas, 100, 100)
    key(qtbot, canvas, Qt.Key.Key_D, CTRL)
    copy = (60.0, 70.0, 160.0, 150.0)
    assert document.labels()[2] == Label(*copy, "dog")
    assert canvas.selected_rows() == [2]  # the copy is selected, ready to move
    assert_undo_redo(document, canvas, [BOX_A, BOX_B], [BOX_A, BOX_B, copy])


def test_undo_redo_keys(qtbot, canvas, document) -> None:  # noqa: ANN001
    two_boxes(document)
    click(qtbot, canvas, 100, 100)
    key(qtbot, canvas, Qt.Key.Key_Right)
    moved = [(51.0, 60.0, 151.0, 140.0), BOX_B]
    key(qtbot, canvas, Qt.Key.Key_Z, CTRL)
    assert boxes(document) == [BOX_A, BOX_B]
    key(qtbot, canvas, Qt.Key.Key_Z, CTRL | SHIFT)
    assert boxes(document) == moved
    key(qtbot, canvas, Qt.Key.Key_Z, CTRL)
    key(qtbot, canvas, Qt.Key.Key_Y, CTRL)
    assert boxes(document) == moved
    assert canvas.label_rects() == moved


def test_ctrl_h_hides_every_box(qtbot, canvas, document) -> None:  # noqa: ANN001
    two_boxes(document)
    click(qtbot, canvas, 100, 100)
    key(qtbot, canvas, Qt.Key.Key_H, CTRL)
    assert canvas.boxes_hidden() and canvas.selected_rows() == []
    click(qtbot, canvas, 100, 100)  # hidden boxes cannot be picked
    assert canvas.selected_rows() == []
    key(qtbot, canvas, Qt.Key.Key_H, CTRL)
    assert not canvas.boxes_hidden()
    assert canvas.action("hide").isChecked() is False


def test_edit_actions_are_listed_for_menus(canvas) -> None:  # noqa: ANN001
    names = {a.text().replace("&", "") for a in canvas.edit_actions()}
    assert {"Create Box", "Delete Boxes", "Duplicate Boxes", "Relabel Boxes...", "Hide All Boxes"} <= names
    assert canvas.action("delete").shortcut().toString() == "Del"


def test_views_follow_the_document(qtbot, canvas, document) -> None:  # noqa: ANN001
    """The canvas observes the document: edits made elsewhere show up, no widget owns labels."""
    document.add_box((5, 5, 25, 25), "cat")
    assert canvas.label_rects() == [(5.0, 5.0, 25.0, 25.0)]
    other = LabelDocument(document.project)
    other.add_box((1, 2, 3, 4), "dog")
    canvas.set_document(other)
    assert canvas.label_rects() == [(1.0, 2.0, 3.0, 4.0)]


# ----------------------------------------------------------------------------- detections
def make_detections() -> Detections:
    return Detections(
        boxes=np.array([[20.2, 20.7, 80.0, 90.0], [200.0, 150.0, 260.0, 230.0]], np.float32),
        scores=np.array([0.91, 0.55], np.float32),
        class_ids=np.array([0, 1], np.int64),
        anchor_ids=np.array([17, 4242], np.int64),
        level_ids=np.array([0, 1], np.int64),
    )


def test_detections_are_drawn_and_clicking_one_selects_it(qtbot, canvas, document) -> None:  # noqa: ANN001
    show_detections(canvas, make_detections(), ["cat", "dog", "bird"], model_name="m.onnx")
    assert sorted(canvas.detection_rects()) == [0, 1]
    with qtbot.waitSignal(canvas.detection_selected) as blocker:
        click(qtbot, canvas, 230, 200)
    assert blocker.args == [1]
    assert canvas.selected_detection() == 1
    assert document.labels() == []  # detections are not labels


def test_double_click_accepts_and_shift_del_rejects_a_detection(qtbot, canvas, document) -> None:  # noqa: ANN001
    show_detections(canvas, make_detections(), ["cat", "dog", "bird"], model_name="m.onnx")
    qtbot.mouseDClick(canvas.viewport(), LEFT, NO_MOD, vp(canvas, 50, 50))
    assert document.labels() == [Label(20.0, 21.0, 80.0, 90.0, "cat")]
    assert document.provenance(0).source == MODEL
    assert sorted(canvas.detection_rects()) == [1]  # now a label: no longer drawn as a detection
    click(qtbot, canvas, 230, 200)
    key(qtbot, canvas, Qt.Key.Key_Delete, SHIFT)
    assert canvas.detection_rects() == {}
    document.undo_stack.undo()
    assert sorted(canvas.detection_rects()) == [1]


def _drawn_detections(canvas: Canvas) -> dict[tuple[float, ...], DetectionItem]:
    """The detection items the scene draws now, by box (xyxy)."""
    items = [it for it in canvas.scene().items() if isinstance(it, DetectionItem) and it.isVisible()]
    return {it.box(): it for it in items}


def _sweep_detections(step: int) -> Detections:
    """What a threshold step shows: detections 0..9 (anchor = index, box and score fixed per
    anchor), a sliding window of 5 of them, best score first."""
    ids = np.arange(step, step + 5)
    x = (ids * 37 % 300).astype(np.float32)
    return Detections(
        boxes=np.stack([x, x / 2, x + 60, x / 2 + 50], axis=1).astype(np.float32),
        scores=(0.95 - ids * 0.05).astype(np.float32),
        class_ids=ids % 3,
        anchor_ids=ids,
        level_ids=ids % 5,
    )


def test_a_threshold_step_reuses_the_items_of_the_detections_that_stay(qtbot, canvas, document) -> None:  # noqa: ANN001
    names = ["cat", "dog", "bird"]
    show_detections(canvas, _sweep_detections(0), names, model_name="m.onnx")
    first = _drawn_detections(canvas)
    assert len(first) == 5
    show_detections(canvas, _sweep_detections(1), names, model_name="m.onnx")  # 4 stay, 1 goes, 1 comes
    second = _drawn_detections(canvas)
    assert len(second) == 5
    stayed = set(first) & set(second)
    assert len(stayed) == 4 and all(second[box] is first[box] for box in stayed)  # the same scene items
    assert sorted(canvas.detection_rects()) == [0, 1, 2, 3, 4]
    assert {it.text() for it in second.values()} == {
        f"{names[i % 3]} {0.95 - i * 0.05:.2f}" for i in range(1, 6)
    }
    all_items = {id(it): it for it in canvas.scene().items() if isinstance(it, DetectionItem)}  # holds them
    for step in [*range(2, 6), *range(4, -1, -1)] * 3:  # a slider dragged to and fro
        show_detections(canvas, _sweep_detections(step), names, model_name="m.onnx")
        assert len(_drawn_detections(canvas)) == 5
        all_items.update((id(it), it) for it in canvas.scene().items() if isinstance(it, DetectionItem))
    assert len(all_items) <= 10  # one item per detection ever shown, not one per step
    # clicking still selects the detection under the cursor, by its index in the new set
    *_, x2, y2 = canvas.detection_rects()[4]
    with qtbot.waitSignal(canvas.detection_selected) as blocker:
        click(qtbot, canvas, x2 - 2, y2 - 2)
    assert blocker.args == [4]
    show_detections(canvas, None, names, model_name="m.onnx")
    assert canvas.detection_rects() == {} and _drawn_detections(canvas) == {}


def test_reused_detection_items_draw_exactly_like_new_ones(qtbot, canvas, project, tmp_path: Path) -> None:  # noqa: ANN001
    names = ["cat", "dog", "bird"]
    for step in (0, 3, 1, 4, 2):
        show_detections(canvas, _sweep_detections(step), names, model_name="m.onnx")
    corner = canvas.detection_rects()[2][2:]
    click(qtbot, canvas, *corner)  # a selected one is drawn thicker
    fresh_document = LabelDocument(project)
    fresh_document.load(tmp_path / "photo.png", (WIDTH, HEIGHT), "voc")
    fresh = Canvas(document=fresh_document)
    qtbot.addWidget(fresh)
    fresh.resize(canvas.size())
    fresh.set_image(np.full((HEIGHT, WIDTH, 3), 90, np.uint8))
    fresh.show()
    qtbot.waitExposed(fresh)
    fresh.zoom_actual()
    show_detections(fresh, _sweep_detections(2), names, model_name="m.onnx")
    click(qtbot, fresh, *corner)
    assert fresh.selected_detection() == canvas.selected_detection() == 2
    assert canvas.viewport().grab().toImage() == fresh.viewport().grab().toImage()


# ----------------------------------------------------------------------------- view
def _wheel(canvas: Canvas, at: QPoint, delta: int) -> None:
    event = QWheelEvent(
        QPointF(at), QPointF(canvas.viewport().mapToGlobal(at)), QPoint(), QPoint(0, delta),
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False,
    )
    QApplication.sendEvent(canvas.viewport(), event)


def test_wheel_zooms_around_the_cursor(qtbot, canvas) -> None:  # noqa: ANN001
    canvas.zoom_by(2.0)
    at = vp(canvas, 180, 140)
    _wheel(canvas, at, 120 * 2)
    assert canvas.zoom() == pytest.approx(2.0 * 1.25**2)
    under = canvas.mapToScene(at)  # the image point under the cursor stays under it
    assert abs(under.x() - 180) <= 0.5 and abs(under.y() - 140) <= 0.5
    _wheel(canvas, at, -120 * 2)
    assert canvas.zoom() == pytest.approx(2.0)


def test_middle_and_space_drag_pan(qtbot, canvas) -> None:  # noqa: ANN001
    canvas.zoom_by(4.0)
    bar = canvas.horizontalScrollBar()
    before = bar.value()
    viewport = canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.MiddleButton, NO_MOD, QPoint(300, 200))
    qtbot.mouseMove(viewport, QPoint(250, 200))
    qtbot.mouseRelease(viewport, Qt.MouseButton.MiddleButton, NO_MOD, QPoint(250, 200))
    assert bar.value() == before + 50
    qtbot.keyPress(viewport, Qt.Key.Key_Space)
    qtbot.mousePress(viewport, LEFT, NO_MOD, QPoint(300, 200))
    qtbot.mouseMove(viewport, QPoint(320, 200))
    qtbot.mouseRelease(viewport, LEFT, NO_MOD, QPoint(320, 200))
    qtbot.keyRelease(viewport, Qt.Key.Key_Space)
    assert bar.value() == before + 30


def test_fit_and_one_to_one(canvas) -> None:  # noqa: ANN001
    canvas.zoom_fit()
    assert canvas.zoom() > 1.0  # 400x300 fills a 640x480 view
    canvas.zoom_actual()
    assert canvas.zoom() == pytest.approx(1.0)


def test_overlay_and_highlight(canvas) -> None:  # noqa: ANN001
    from PySide6.QtCore import QRectF

    canvas.set_overlay(np.zeros((30, 40, 3), np.uint8), 0.4)
    canvas.highlight_rect(QRectF(8, 8, 16, 16))
    image = canvas.grab().toImage()
    assert not image.isNull()
    canvas.set_overlay(None, 0.4)
    canvas.highlight_rect(None)


def test_a_6000_pixel_photo_zooms_and_pans_quickly(qtbot, canvas) -> None:  # noqa: ANN001
    big = QImage(6000, 6000, QImage.Format.Format_RGB888)
    big.fill(Qt.GlobalColor.darkGreen)
    canvas.set_image(big)
    viewport = canvas.viewport()
    timings = []
    for action in (canvas.zoom_fit, lambda: canvas.zoom_by(8.0), lambda: canvas.horizontalScrollBar().setValue(9000),
                   canvas.zoom_actual, canvas.zoom_fit):
        action()
        start = time.perf_counter()
        viewport.repaint()
        timings.append(time.perf_counter() - start)
    assert max(timings) < 0.25, timings
