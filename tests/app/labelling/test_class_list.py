"""Class lists from classes.txt / predefined_classes.txt, class colours from the name, and
the class picker's memory of the last class."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from app.common.colors import class_name_color
from app.common.settings import Settings
from app.labelling.class_list import find_class_lists, read_class_list


def test_read_class_list_strips_blank_lines_and_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "classes.txt"
    path.write_text("\ufeffraccoon\n\n  dog \nraccoon\ncat\r\n", encoding="utf-8")
    assert read_class_list(path) == ["raccoon", "dog", "cat"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"\xff\xfe\xfa", "not UTF-8"), (b"cat\x00dog", "binary data")],
)
def test_a_broken_class_list_is_named_with_its_problem(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "predefined_classes.txt"
    path.write_bytes(content)
    found = find_class_lists([tmp_path])
    assert found.names == ()
    assert len(found.problems) == 1 and str(path) in found.problems[0] and problem in found.problems[0]


def test_opening_a_folder_feeds_its_class_list_to_the_picker(make_window, tmp_path: Path) -> None:
    from tests.app.fakes import write_marker_image

    images = tmp_path / "images"
    images.mkdir()
    write_marker_image(images / "raccoon-1.png", 30)
    (tmp_path / "labels").mkdir()
    (images / "predefined_classes.txt").write_text("raccoon\nbadger\n", encoding="utf-8")
    (tmp_path / "labels" / "classes.txt").write_text("badger\nfox\n", encoding="utf-8")
    window = make_window()
    window.open_folder(images)
    assert window.annotation.project.names[:3] == ["raccoon", "badger", "fox"]


def test_class_colours_come_from_the_name_and_survive_a_new_process() -> None:
    names = ["raccoon", "kangaroo", "circle", "Ünïcødé 类"]
    here = [class_name_color(n).name() for n in names]
    code = (
        "import sys; from app.common.colors import class_name_color as c; "
        f"print(' '.join(c(n).name() for n in {names!r}))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "12345", "PATH": ""},
        cwd=Path(__file__).resolve().parents[3],
    ).stdout.split()
    assert other == here
    assert len(set(here)) == len(names)
    assert class_name_color("raccoon") == class_name_color("raccoon")


def test_the_picker_preselects_the_class_used_last_even_after_a_restart(make_window, image_folder: Path, qtbot) -> None:  # noqa: ANN001
    window = make_window()
    window.open_folder(image_folder)
    qtbot.waitUntil(lambda: window.annotation.document is not None)
    asked: list[str] = []

    def chooser(_parent, _project, initial: str) -> str:  # noqa: ANN001
        asked.append(initial)
        return "otter"

    canvas = window.canvas
    canvas.set_class_chooser(chooser)
    window.show()
    qtbot.waitExposed(window)
    canvas.start_create()
    viewport = canvas.viewport()
    start = canvas.mapFromScene(5, 5)
    end = canvas.mapFromScene(40, 40)
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    QTest.mouseMove(viewport, QPoint((start.x() + end.x()) // 2, (start.y() + end.y()) // 2))
    QTest.mouseMove(viewport, end)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=end)
    assert asked == [""]
    assert Settings().last_class == "otter"
    window.annotation.document.undo_stack.undo()  # nothing unsaved: no prompt at close

    again = make_window()
    assert again.canvas.last_class() == "otter"
