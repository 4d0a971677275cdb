"""The image list: lazy listing of huge folders and per-image state."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from app.docks.image_list import ImageListDock, ImageListModel
from tests.app.fakes import fake_backend


def test_ten_thousand_images_open_without_decoding(qtbot, make_window, tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    for index in range(10_000):
        (folder / f"img_{index:05d}.jpg").touch()
    (folder / "notes.txt").touch()
    backend = fake_backend()
    window = make_window(backend=backend)
    window.show()
    window.open_folder(folder)
    qtbot.wait(1)  # let the view lay out and paint once
    model = window.image_list.model
    assert model.rowCount() == 10_000
    assert model.path(0).name == "img_00000.jpg" and model.path(9_999).name == "img_09999.jpg"
    # only the first image is decoded (it is empty: the status bar says so, no dialog)
    qtbot.waitUntil(lambda: "empty" in window.status_fields()["message"], timeout=3000)
    assert backend.load_image.calls == 1
    # moving to the last image decodes that one image only (timings: bench/bench_folder.py)
    window.show_row(9_999)
    assert window.image_list.current_row() == 9_999
    qtbot.waitUntil(lambda: backend.load_image.calls == 2, timeout=3000)


def test_state_roles(qtbot, tmp_path: Path) -> None:
    paths = [tmp_path / f"{name}.jpg" for name in ("a", "b", "c")]
    (tmp_path / "b.xml").write_text("<annotation/>")
    (tmp_path / "c.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    dock = ImageListDock()
    qtbot.addWidget(dock)
    model = dock.model
    dock.set_paths(paths)
    assert [model.state(row).has_label for row in range(3)] == [False, True, True]
    with qtbot.waitSignal(model.dataChanged):
        model.set_unsaved(paths[0], True)
    model.set_detected(paths[2])
    index = model.index(0, 0)
    assert model.data(index, ImageListModel.UnsavedRole) is True
    assert model.data(index, Qt.ItemDataRole.DisplayRole) == "a.jpg *"
    assert model.data(model.index(2, 0), ImageListModel.DetectedRole) is True
    assert "label file on disk" in model.data(model.index(1, 0), Qt.ItemDataRole.ToolTipRole)
    assert not model.data(index, Qt.ItemDataRole.DecorationRole).isNull()
    (tmp_path / "a.xml").write_text("<annotation/>")
    model.refresh_label_state(paths[0])
    assert model.state(0).has_label


def test_picking_a_row_activates_it_but_programmatic_selection_does_not(qtbot, tmp_path: Path) -> None:
    paths = [tmp_path / f"{i}.png" for i in range(3)]
    dock = ImageListDock()
    qtbot.addWidget(dock)
    dock.set_paths(paths)
    with qtbot.assertNotEmitted(dock.image_activated):
        dock.set_current_row(1)
    assert dock.current_row() == 1
    with qtbot.waitSignal(dock.image_activated) as blocker:
        dock.view.setCurrentIndex(dock.model.index(2, 0))
    assert blocker.args == [paths[2]]
