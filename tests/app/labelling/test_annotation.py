"""Labelling in the real window, driven like a user: mouse drags on the canvas, LabelImg's
keys, menu actions; labels checked through the shown document and the files on disk.

Dialogs are answered by monkeypatching QMessageBox / QFileDialog; the class picker is the
canvas's public chooser hook. Image coordinates map to the canvas viewport with
``canvas.mapFromScene`` (scene = image pixels).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from app.common.settings import Settings
from app.common.shortcuts_dialog import ShortcutsDialog, command_name, key_text
from app.labelling.document import LabelDocument
from app.labelling.entries import MODEL
from app.window.main_window import MainWindow
from model.labels import Label, label_path_for, load_dataset

LEFT = Qt.MouseButton.LeftButton
NO_MOD = Qt.KeyboardModifier.NoModifier
CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier
YES, SAVE, DISCARD, CANCEL = (
    QMessageBox.StandardButton.Yes,
    QMessageBox.StandardButton.Save,
    QMessageBox.StandardButton.Discard,
    QMessageBox.StandardButton.Cancel,
)
# The fake model's detections on img_0 (marker 10) at the default score threshold 0.3:
CAT_90 = Label(10, 10, 50, 50, "cat")
DOG_60 = Label(10, 100, 70, 160, "dog")
BIRD_45 = Label(10, 200, 40, 230, "bird")
DOG_35 = Label(110, 10, 160, 60, "dog")
Box = tuple[float, float, float, float]


class Chooser:
    """Stands in for the class picker popup: answers in order."""

    def __init__(self) -> None:
        self.answers: list[str] = []

    def __call__(self, parent, project, initial):  # noqa: ANN001, ANN204
        name = self.answers.pop(0) if self.answers else initial or "cat"
        project.add(name)
        return name


class Dialogs:
    """QMessageBox.question answered from a queue (Discard when empty); every question is
    recorded as (title, text)."""

    def __init__(self) -> None:
        self.answers: list[QMessageBox.StandardButton] = []
        self.asked: list[tuple[str, str]] = []

    def question(self, parent, title, text, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
        self.asked.append((title, text))
        return self.answers.pop(0) if self.answers else DISCARD


@pytest.fixture
def dialogs(monkeypatch: pytest.MonkeyPatch) -> Dialogs:
    scripted = Dialogs()
    monkeypatch.setattr(QMessageBox, "question", scripted.question)
    for kind in ("warning", "critical", "information"):
        monkeypatch.setattr(
            QMessageBox, kind, lambda parent, title, text, *a, k=kind, **kw: scripted.asked.append((title, text))
        )
    return scripted


@pytest.fixture
def chooser() -> Chooser:
    return Chooser()


@pytest.fixture
def open_window(qtbot, make_window, fake_model: Path, chooser: Chooser, dialogs: Dialogs) -> Callable[..., MainWindow]:  # noqa: ANN001
    """Factory: a shown, active window on the fake model with ``folder`` open and the first
    image's detections on screen."""

    def make(folder: Path) -> MainWindow:
        window = make_window(model=fake_model)
        window.canvas.set_class_chooser(chooser)
        window.show()
        qtbot.waitExposed(window)
        window.activateWindow()
        with qtbot.waitSignal(window.controller.output_ready, timeout=5000):
            window.open_folder(folder)
        qtbot.waitUntil(lambda: not window.controller.is_busy(), timeout=5000)
        window.canvas.setFocus()
        return window

    return make


@pytest.fixture
def window(open_window, image_folder: Path) -> MainWindow:  # noqa: ANN001
    return open_window(image_folder)


# ----------------------------------------------------------------------------- helpers
def vp(window: MainWindow, x: float, y: float):  # noqa: ANN201
    return window.canvas.mapFromScene(QPointF(x, y))


def drag(qtbot, window: MainWindow, start: tuple[float, float], end: tuple[float, float]) -> None:  # noqa: ANN001
    viewport = window.canvas.viewport()
    qtbot.mousePress(viewport, LEFT, NO_MOD, vp(window, *start))
    for k in (1, 2, 3):
        qtbot.mouseMove(viewport, vp(window, *(a + (b - a) * k / 3 for a, b in zip(start, end))))
    qtbot.mouseRelease(viewport, LEFT, NO_MOD, vp(window, *end))


def click(qtbot, window: MainWindow, x: float, y: float) -> None:  # noqa: ANN001
    qtbot.mouseClick(window.canvas.viewport(), LEFT, NO_MOD, vp(window, x, y))


def key(qtbot, window: MainWindow, k: Qt.Key, modifier=NO_MOD, *, widget=None) -> None:  # noqa: ANN001
    qtbot.keyClick(widget or window.canvas.viewport(), k, modifier)


def doc(window: MainWindow) -> LabelDocument:
    document = window.annotation.document
    assert document is not None
    return document


def boxes(window: MainWindow) -> list[Box]:
    return [lab.box for lab in doc(window).labels()]


def draw(qtbot, window: MainWindow, chooser: Chooser, box: Box, name: str) -> None:  # noqa: ANN001
    """W, drag a box, pick ``name``."""
    chooser.answers.append(name)
    key(qtbot, window, Qt.Key.Key_W)
    drag(qtbot, window, box[:2], box[2:])


def undo_redo_restores(qtbot, window: MainWindow, before: list[Box], after: list[Box]) -> None:  # noqa: ANN001
    """Ctrl+Z gives back exactly ``before`` (document and drawing), Ctrl+Shift+Z ``after``."""
    assert boxes(window) == after and window.canvas.label_rects() == after
    key(qtbot, window, Qt.Key.Key_Z, CTRL)
    assert boxes(window) == before and window.canvas.label_rects() == before
    key(qtbot, window, Qt.Key.Key_Z, CTRL | SHIFT)
    assert boxes(window) == after and window.canvas.label_rects() == after


def go(qtbot, window: MainWindow, k: Qt.Key) -> None:  # noqa: ANN001
    """D / A and wait until that image's labels are on the canvas."""
    row = window.image_list.current_row()
    key(qtbot, window, k)
    if window.image_list.current_row() != row:
        qtbot.waitUntil(lambda: Path(doc(window).image_path).name == window.current_path().name, timeout=5000)
        qtbot.waitUntil(lambda: doc(window).detections is not None, timeout=5000)


def same_labels(a: list[Label], b: list[Label], tol: float = 0.0) -> bool:
    return len(a) == len(b) and all(
        x.name == y.name and all(abs(u - v) <= tol for u, v in zip(x.box, y.box)) for x, y in zip(a, b)
    )


# ----------------------------------------------------------------------------- editing
def test_draw_move_resize_relabel_duplicate_delete_each_undo_exactly(qtbot, window: MainWindow, chooser) -> None:  # noqa: ANN001
    assert doc(window).labels() == [] and not window.isWindowModified()
    draw(qtbot, window, chooser, (180, 80, 260, 150), "cat")
    drawn = [(180.0, 80.0, 260.0, 150.0)]
    undo_redo_restores(qtbot, window, [], drawn)
    assert window.image_list.model.state(0).unsaved and window.isWindowModified()

    drag(qtbot, window, (220, 115), (240, 125))  # move by (20, 10)
    moved = [(200.0, 90.0, 280.0, 160.0)]
    undo_redo_restores(qtbot, window, drawn, moved)

    drag(qtbot, window, (280, 160), (300, 200))  # the bottom-right handle of the selected box
    resized = [(200.0, 90.0, 300.0, 200.0)]
    undo_redo_restores(qtbot, window, moved, resized)

    chooser.answers.append("dog")
    key(qtbot, window, Qt.Key.Key_E)
    assert [lab.name for lab in doc(window).labels()] == ["dog"]
    key(qtbot, window, Qt.Key.Key_Z, CTRL)
    assert doc(window).labels() == [Label(*resized[0], "cat")]
    key(qtbot, window, Qt.Key.Key_Z, CTRL | SHIFT)
    assert doc(window).labels() == [Label(*resized[0], "dog")]

    key(qtbot, window, Qt.Key.Key_D, CTRL)  # duplicate: a copy 10 px right and down, kept inside
    duplicated = [*resized, (210.0, 100.0, 310.0, 210.0)]
    undo_redo_restores(qtbot, window, resized, duplicated)

    click(qtbot, window, 205, 95)  # only the original contains this point
    key(qtbot, window, Qt.Key.Key_Delete)
    undo_redo_restores(qtbot, window, duplicated, duplicated[1:])

    key(qtbot, window, Qt.Key.Key_H, CTRL)  # hide all boxes, then show them again
    assert window.canvas.boxes_hidden()
    key(qtbot, window, Qt.Key.Key_H, CTRL)
    assert not window.canvas.boxes_hidden()


def test_undo_history_is_not_capped(qtbot, window: MainWindow, chooser) -> None:  # noqa: ANN001
    draw(qtbot, window, chooser, (100, 100, 120, 130), "cat")
    start = boxes(window)
    for _ in range(60):  # 60 one-pixel nudges, each its own undo step
        key(qtbot, window, Qt.Key.Key_Right)
    assert boxes(window) == [(160.0, 100.0, 180.0, 130.0)]
    for _ in range(60):
        key(qtbot, window, Qt.Key.Key_Z, CTRL)
    assert boxes(window) == start
    key(qtbot, window, Qt.Key.Key_Z, CTRL)
    assert boxes(window) == [] and not window.isWindowModified()


def test_edit_keys_work_while_the_file_list_has_focus(qtbot, window: MainWindow, chooser) -> None:  # noqa: ANN001
    files = window.image_list.view
    files.setFocus()
    chooser.answers.append("bird")
    key(qtbot, window, Qt.Key.Key_W, widget=files)
    drag(qtbot, window, (200, 20), (240, 70))
    assert doc(window).labels() == [Label(200, 20, 240, 70, "bird")]
    spin = window.nms_panel.score_spin  # typing in a number field stays typing
    spin.setFocus()
    spin.lineEdit().selectAll()
    key(qtbot, window, Qt.Key.Key_Backspace, widget=spin)
    key(qtbot, window, Qt.Key.Key_D, widget=spin)
    assert doc(window).labels() == [Label(200, 20, 240, 70, "bird")] and window.image_list.current_row() == 0
    files.setFocus()
    key(qtbot, window, Qt.Key.Key_Z, CTRL, widget=files)
    assert doc(window).labels() == []


# ----------------------------------------------------------------------------- detections
def test_accept_one_reject_one_then_accept_all_above_the_threshold(qtbot, window: MainWindow) -> None:  # noqa: ANN001
    shown = window.canvas.detection_rects()
    assert sorted(shown.values()) == sorted(lab.box for lab in (CAT_90, DOG_60, BIRD_45, DOG_35))

    click(qtbot, window, 135, 35)  # the 0.35 dog detection
    key(qtbot, window, Qt.Key.Key_Return)
    assert doc(window).labels() == [DOG_35]
    assert doc(window).provenance(0).source == MODEL and doc(window).provenance(0).score == pytest.approx(0.35)
    assert DOG_35.box not in window.canvas.detection_rects().values()  # a label now, not a detection

    click(qtbot, window, 25, 215)  # the bird detection: reject it
    key(qtbot, window, Qt.Key.Key_Delete, SHIFT)
    assert BIRD_45.box not in window.canvas.detection_rects().values()
    assert doc(window).labels() == [DOG_35]

    window.nms_panel.score_slider.setValue(50)  # only the 0.9 cat and the 0.6 dog stay shown
    key(qtbot, window, Qt.Key.Key_Return, CTRL)
    assert doc(window).labels() == [DOG_35, CAT_90, DOG_60]
    key(qtbot, window, Qt.Key.Key_Z, CTRL)  # one undo step for the whole batch
    assert doc(window).labels() == [DOG_35]

    window.nms_panel.score_slider.setValue(30)  # the rejected bird stays out, the dog is labelled
    key(qtbot, window, Qt.Key.Key_Return, CTRL)
    assert doc(window).labels() == [DOG_35, CAT_90, DOG_60]
    assert window.canvas.detection_rects() == {}
    # nothing is selected after accepting: a stray Delete cannot throw the batch away
    assert window.canvas.selected_rows() == []
    key(qtbot, window, Qt.Key.Key_Delete)
    assert doc(window).labels() == [DOG_35, CAT_90, DOG_60]


# ----------------------------------------------------------------------------- saving
@pytest.mark.parametrize("fmt", ["voc", "yolo", "coco"])
def test_save_then_reopen_gives_the_same_labels(  # noqa: ANN001
    qtbot, open_window, image_folder: Path, chooser, dialogs: Dialogs, fmt: str
) -> None:
    window = open_window(image_folder)
    window.action(f"format_{fmt}").trigger()  # File › Label Format
    draw(qtbot, window, chooser, (180, 80, 260, 150), "cat")
    draw(qtbot, window, chooser, (200, 160, 290, 230), "giraffe")  # a class the model does not know
    click(qtbot, window, 135, 35)
    key(qtbot, window, Qt.Key.Key_Return)  # plus an accepted detection
    labels = doc(window).labels()
    assert len(labels) == 3
    key(qtbot, window, Qt.Key.Key_S, CTRL)
    assert label_path_for(image_folder / "img_0.png", fmt).is_file()
    assert not window.isWindowModified() and not window.image_list.model.state(0).unsaved
    tol = 0.01 if fmt == "yolo" else 0.0  # YOLO keeps 6 decimals of normalised coordinates

    go(qtbot, window, Qt.Key.Key_D)
    assert doc(window).labels() == []
    go(qtbot, window, Qt.Key.Key_A)
    assert same_labels(doc(window).labels(), labels, tol)
    assert [doc(window).provenance(r).source for r in range(3)] == ["drawn", "drawn", MODEL]
    assert dialogs.asked == []  # nothing unsaved: never asked

    window.close()
    assert Settings().label_format == fmt
    again = open_window(image_folder)  # the next session: the format and the labels come back
    assert again.annotation.label_format == fmt and again.action(f"format_{fmt}").isChecked()
    assert same_labels(doc(again).labels(), labels, tol)
    assert not again.isWindowModified()


def test_labels_in_another_format_are_read_and_saved_in_the_chosen_one(
    qtbot, open_window, image_folder: Path, chooser
) -> None:  # noqa: ANN001
    window = open_window(image_folder)
    draw(qtbot, window, chooser, (180, 80, 260, 150), "cat")
    key(qtbot, window, Qt.Key.Key_S, CTRL)
    assert (image_folder / "img_0.xml").is_file()
    window.action("format_yolo").trigger()
    go(qtbot, window, Qt.Key.Key_D)
    go(qtbot, window, Qt.Key.Key_A)
    assert doc(window).labels() == [Label(180, 80, 260, 150, "cat")]  # from the VOC file
    assert "Ctrl+S saves them as YOLO" in window.statusBar().currentMessage()
    key(qtbot, window, Qt.Key.Key_S, CTRL)
    assert (image_folder / "img_0.txt").read_text() == "0 0.687500 0.479167 0.250000 0.291667\n"
    assert (image_folder / "classes.txt").read_text().split() == ["cat", "dog", "bird"]  # the model's classes


# ----------------------------------------------------------------------------- unsaved changes
def test_leaving_unsaved_labels_asks_save_discard_cancel(
    qtbot, window: MainWindow, image_folder: Path, chooser, dialogs: Dialogs
) -> None:  # noqa: ANN001
    draw(qtbot, window, chooser, (180, 80, 260, 150), "cat")
    dialogs.answers = [CANCEL]
    key(qtbot, window, Qt.Key.Key_D)
    assert dialogs.asked[-1][0] == "Unsaved labels" and "img_0.png" in dialogs.asked[-1][1]
    assert window.image_list.current_row() == 0 and len(doc(window).labels()) == 1
    assert window.image_list.model.state(0).unsaved

    dialogs.answers = [DISCARD]
    go(qtbot, window, Qt.Key.Key_D)
    assert window.image_list.current_row() == 1
    assert not (image_folder / "img_0.xml").exists() and not window.image_list.model.state(0).unsaved

    draw(qtbot, window, chooser, (10, 10, 60, 60), "dog")
    dialogs.answers = [SAVE]
    go(qtbot, window, Qt.Key.Key_A)
    assert (image_folder / "img_1.xml").is_file() and window.image_list.current_row() == 0
    assert doc(window).labels() == []  # img_0's edits were discarded
    assert window.image_list.model.state(1).has_label

    draw(qtbot, window, chooser, (100, 100, 150, 150), "cat")
    asked = len(dialogs.asked)
    dialogs.answers = [CANCEL]
    window.close()
    assert window.isVisible() and len(dialogs.asked) == asked + 1  # Cancel keeps the window open
    dialogs.answers = [DISCARD]
    window.close()
    assert not window.isVisible() and not (image_folder / "img_0.xml").exists()


def test_autosave_on_navigation_is_a_persisted_option(
    qtbot, window: MainWindow, image_folder: Path, chooser, dialogs: Dialogs
) -> None:  # noqa: ANN001
    autosave = window.action("autosave")
    assert not autosave.isChecked()
    autosave.trigger()  # File › Save Automatically When Leaving an Image
    assert Settings().autosave
    draw(qtbot, window, chooser, (180, 80, 260, 150), "cat")
    go(qtbot, window, Qt.Key.Key_D)
    assert dialogs.asked == [] and (image_folder / "img_0.xml").is_file()
    assert window.image_list.current_row() == 1


# ----------------------------------------------------------------------------- crash recovery
def test_unsaved_edits_come_back_after_a_crash(
    qtbot, open_window, image_folder: Path, chooser, dialogs: Dialogs, isolated_journal: Path
) -> None:  # noqa: ANN001
    crashed = open_window(image_folder)
    draw(qtbot, crashed, chooser, (180, 80, 260, 150), "cat")
    drag(qtbot, crashed, (220, 115), (230, 125))  # and a move: the journal keeps the last state
    lost = doc(crashed).labels()
    assert lost == [Label(190, 90, 270, 160, "cat")] and any(isolated_journal.iterdir())
    crashed.set_navigation_guard(None)  # the process dies: no prompt, no save, no cleanup
    crashed.close()
    assert not (image_folder / "img_0.xml").exists()

    dialogs.answers = [YES]
    window = open_window(image_folder)  # the next start
    assert dialogs.asked[0][0] == "Recover unsaved labels"
    assert doc(window).labels() == lost and window.isWindowModified()
    assert window.image_list.model.state(0).unsaved
    key(qtbot, window, Qt.Key.Key_Z, CTRL)  # the recovery is one undo step
    assert doc(window).labels() == []
    key(qtbot, window, Qt.Key.Key_Z, CTRL | SHIFT)
    key(qtbot, window, Qt.Key.Key_S, CTRL)
    assert (image_folder / "img_0.xml").is_file() and not any(isolated_journal.iterdir())

    asked = len(dialogs.asked)
    open_window(image_folder)  # nothing pending any more: no question
    assert len(dialogs.asked) == asked


def test_declining_recovery_drops_the_edits(
    qtbot, open_window, image_folder: Path, chooser, dialogs: Dialogs
) -> None:  # noqa: ANN001
    crashed = open_window(image_folder)
    draw(qtbot, crashed, chooser, (180, 80, 260, 150), "cat")
    crashed.set_navigation_guard(None)
    crashed.close()
    dialogs.answers = [DISCARD]
    window = open_window(image_folder)
    assert dialogs.asked[0][0] == "Recover unsaved labels"
    assert doc(window).labels() == [] and not window.isWindowModified()


# ----------------------------------------------------------------------------- help and export
def test_shortcuts_dialog_lists_every_shortcut_of_the_window(qtbot, window: MainWindow) -> None:  # noqa: ANN001
    key(qtbot, window, Qt.Key.Key_F1)
    dialog = window.findChild(ShortcutsDialog)
    assert dialog is not None and dialog.isVisible()
    rows = {(r.keys, r.command) for r in dialog.rows()}
    menu_actions = []
    pending = [a.menu() for a in window.menuBar().actions()]
    while pending:
        for action in pending.pop().actions():
            if action.menu() is not None:
                pending.append(action.menu())
            elif key_text(action):
                menu_actions.append(action)
    assert {(key_text(a), command_name(a)) for a in menu_actions} <= rows
    for expected in [
        ("Ctrl+S", "Save Labels"),
        ("W", "Create Box"),
        ("D", "Next Image"),
        ("A", "Previous Image"),
        ("Del, Backspace", "Delete Boxes"),
        ("Ctrl+Z", "Undo"),
        ("Ctrl+Shift+Z, Ctrl+Y", "Redo"),
        ("Ctrl+D", "Duplicate Boxes"),
        ("Ctrl+H", "Hide All Boxes"),
        ("Return, Enter", "Accept Detection"),
        ("Ctrl+Return, Ctrl+Enter", "Accept All Detections Above Threshold"),
        ("Shift+Del", "Reject Detection"),
    ]:
        assert expected in rows
    keys = [seq.toString() for a in menu_actions for seq in a.shortcuts()]
    assert len(keys) == len(set(keys)), "two actions share a key: Qt would run neither"
    assert "| Ctrl+S | Save Labels | File |" in dialog.markdown()


@pytest.mark.parametrize("fmt", ["yolo", "coco", "voc"])
def test_export_labelled_set(  # noqa: ANN001
    qtbot, window: MainWindow, image_folder: Path, tmp_path: Path, chooser, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    draw(qtbot, window, chooser, (180, 80, 260, 150), "cat")
    key(qtbot, window, Qt.Key.Key_S, CTRL)
    first = doc(window).labels()
    go(qtbot, window, Qt.Key.Key_D)
    click(qtbot, window, 85, 130)  # img_1's 0.6 dog detection (marker 60)
    key(qtbot, window, Qt.Key.Key_Return)
    second = doc(window).labels()
    assert second == [Label(60, 100, 120, 160, "dog")]
    key(qtbot, window, Qt.Key.Key_S, CTRL)
    target = tmp_path / f"export_{fmt}"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(target))
    with qtbot.waitSignal(window.annotation.export_finished, timeout=10_000) as finished:
        window.action(f"export_{fmt}").trigger()  # File › Export Labelled Set As › ...
    result = finished.args[0]
    assert (result.images, result.labels, result.fmt) == (2, 2, fmt)
    exported = load_dataset(target, fmt)
    by_name = {Path(item.image_path).name: item.labels for item in exported.items}
    tol = 0.01 if fmt == "yolo" else 0.0
    assert same_labels(by_name["img_0.png"], first, tol) and same_labels(by_name["img_1.png"], second, tol)
    assert by_name.get("img_2.png", []) == []  # not labelled: not exported
    assert not (target / "img_2.png").exists() and (target / "img_0.png").is_file()
    assert exported.errors == []
    assert str(target) in window.statusBar().currentMessage()


def test_an_unreadable_image_leaves_nothing_to_edit(qtbot, open_window, image_folder: Path) -> None:  # noqa: ANN001
    (image_folder / "img_1.png").write_bytes(b"not a png")
    window = open_window(image_folder)
    with qtbot.waitSignal(window.controller.image_failed, timeout=5000):
        key(qtbot, window, Qt.Key.Key_D)
    assert window.annotation.document is None and window.canvas.document().labels() == []
    key(qtbot, window, Qt.Key.Key_S, CTRL)  # nothing to save, nothing written, no crash
    assert not (image_folder / "img_1.xml").exists()


@pytest.fixture(autouse=True)
def _no_modal_leftovers() -> Iterator[None]:
    yield
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, ShortcutsDialog):
            widget.close()
