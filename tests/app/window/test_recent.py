"""File › Open Recent, what a restart reopens, and the class picker's memory."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QApplication

from app.common.settings import Settings
from app.main import build_parser, open_window
from app.window.recent import last_session
from tests.app.fakes import write_marker_image


def _folder(tmp_path: Path, name: str, count: int) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for i in range(count):
        write_marker_image(folder / f"shot-{i + 1}.png", 10 + 20 * i)
    return folder


def test_open_folder_and_model_are_remembered_and_listed_in_recent(make_window, tmp_path: Path, fake_model: Path, qtbot) -> None:  # noqa: ANN001
    first, second = _folder(tmp_path, "first", 2), _folder(tmp_path, "second", 1)
    window = make_window(model=fake_model)
    window.open_folder(first)
    window.open_folder(second)
    menu = window.recent_menu
    menu.rebuild()
    entries = menu.entries()
    assert entries[:2] == [("folders", second), ("folders", first)]  # newest first
    assert ("models", fake_model) in entries
    picked = [a for a in menu.actions() if a.data() == str(first)]
    picked[0].trigger()
    assert window.image_list.model.paths() == [first / "shot-1.png", first / "shot-2.png"]
    clear = [a for a in menu.actions() if a.objectName() == "clear_recent"][0]
    clear.trigger()
    assert menu.entries() == []
    qtbot.waitUntil(lambda: not [a for a in menu.actions() if a.isEnabled() and a.text()])  # nothing to pick or clear


def test_recent_menu_leaves_out_what_is_gone(tmp_path: Path, qtbot) -> None:  # noqa: ANN001
    from app.window.recent import RecentMenu

    settings = Settings()
    kept, gone = _folder(tmp_path, "kept", 1), tmp_path / "gone"
    settings.add_recent("folders", gone)
    settings.add_recent("folders", kept)
    menu = RecentMenu(settings)
    assert menu.entries() == [("folders", kept)]


def test_restart_reopens_the_last_folder_model_and_image(make_window, tmp_path: Path, fake_model: Path, qtbot) -> None:  # noqa: ANN001
    folder = _folder(tmp_path, "set", 3)
    window = make_window(model=fake_model)
    window.open_folder(folder)
    window.show_row(2)
    window.close()
    last = last_session(Settings())
    assert last.model == fake_model.absolute()
    assert last.paths == (folder,)
    assert last.image == folder / "shot-3.png"

    # a new start with no arguments opens that session (not the samples)
    reopened = open_window(build_parser().parse_args([]), make_window())
    assert reopened.image_list.model.paths()[0] == folder / "shot-1.png"
    qtbot.waitUntil(lambda: reopened.current_path() == folder / "shot-3.png", timeout=5000)
    qtbot.waitUntil(lambda: reopened.controller.model_path is not None, timeout=10_000)
    assert Path(reopened.controller.model_path) == fake_model.absolute()


def test_restart_after_the_folder_and_model_are_gone_starts_as_usual(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "temporary", 1)
    settings = Settings()
    settings.last_folder = folder
    settings.last_model = tmp_path / "deleted.onnx"
    settings.last_image = folder / "shot-1.png"
    (folder / "shot-1.png").unlink()
    folder.rmdir()
    last = last_session(settings)
    assert last.model is None and last.paths == () and last.image is None
    assert QApplication.instance() is not None


def test_opening_image_files_is_remembered_and_a_wrong_path_is_named(make_window, tmp_path: Path) -> None:
    folder = _folder(tmp_path, "loose", 2)
    window = make_window()
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image", encoding="utf-8")
    window.open_paths([folder / "shot-2.png", notes])
    assert "notes.txt: not an image or model file" in window.status_fields()["message"]
    assert window.image_list.model.paths() == [folder / "shot-2.png"]
    last = last_session(Settings())
    assert last.paths == (folder / "shot-2.png",)  # a restart reopens these files, not their folder
    window.open_paths([tmp_path / "missing.png.bak"])
    assert "missing.png.bak: not found" in window.status_fields()["message"]
    assert window.recent_menu.entries()[0] == ("images", folder / "shot-2.png")
