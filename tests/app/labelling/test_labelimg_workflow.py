"""LabelImg's workflow in the real window: saving keeps what LabelImg wrote (verified, pose,
occluded, unknown tags, folder/path), Space verifies an image (undoable, marked in the file
list), and labels live in a folder of their own (found beside the images, or chosen with
File › Change Save Dir…, remembered per image folder)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QFileDialog

from app.common.settings import Settings
from app.window.main_window import MainWindow
from model.labels import read_voc
from tests.app.labelling.test_annotation import CTRL, LEFT, NO_MOD, SHIFT, Chooser, chooser, dialogs, doc, draw, open_window  # noqa: F401

LABELIMG_XML = """<annotation verified="yes">
\t<folder>raccoons</folder>
\t<filename>img_0.png</filename>
\t<path>C:\\Users\\me\\raccoons\\img_0.png</path>
\t<source>
\t\t<database>Unknown</database>
\t</source>
\t<size>
\t\t<width>{w}</width>
\t\t<height>{h}</height>
\t\t<depth>3</depth>
\t</size>
\t<segmented>0</segmented>
\t<object>
\t\t<name>raccoon</name>
\t\t<pose>Left</pose>
\t\t<truncated>1</truncated>
\t\t<difficult>0</difficult>
\t\t<occluded>1</occluded>
\t\t<bndbox>
\t\t\t<xmin>200</xmin>
\t\t\t<ymin>150</ymin>
\t\t\t<xmax>280</xmax>
\t\t\t<ymax>230</ymax>
\t\t</bndbox>
\t</object>
\t<weather>rain</weather>
</annotation>
"""


def _labelimg_file(image: Path, xml: Path) -> str:
    from PySide6.QtGui import QImage

    size = QImage(str(image)).size()
    text = LABELIMG_XML.format(w=size.width(), h=size.height())
    xml.parent.mkdir(parents=True, exist_ok=True)
    xml.write_text(text, encoding="utf-8")
    return text


def _save(qtbot, window: MainWindow) -> None:  # noqa: ANN001
    qtbot.keyClick(window.canvas.viewport(), Qt.Key.Key_S, CTRL)


def test_saving_keeps_what_labelimg_wrote(qtbot, open_window: Callable[..., MainWindow], image_folder: Path, chooser: Chooser) -> None:  # noqa: ANN001, F811
    xml = image_folder / "img_0.xml"
    original = _labelimg_file(image_folder / "img_0.png", xml)
    window = open_window(image_folder)
    assert doc(window).verified and [lb.name for lb in doc(window).labels()] == ["raccoon"]
    _save(qtbot, window)  # nothing edited: the file stays byte for byte
    assert xml.read_text(encoding="utf-8") == original
    draw(qtbot, window, chooser, (20, 20, 60, 60), "cat")
    _save(qtbot, window)
    text = xml.read_text(encoding="utf-8")
    for kept in ('<annotation verified="yes">', "<pose>Left</pose>", "<occluded>1</occluded>", "<weather>rain</weather>",
                 "<folder>raccoons</folder>", "<path>C:\\Users\\me\\raccoons\\img_0.png</path>", "<truncated>1</truncated>"):
        assert kept in text
    assert text.startswith(original.split("\t</object>")[0])  # the LabelImg object untouched, the new one after it
    assert [lb.name for lb in read_voc(xml).labels] == ["raccoon", "cat"]


def test_space_verifies_undoably_and_the_file_list_shows_it(qtbot, open_window: Callable[..., MainWindow], image_folder: Path) -> None:  # noqa: ANN001, F811
    window = open_window(image_folder)
    model = window.image_list.model
    assert not doc(window).verified and not model.state(0).verified
    qtbot.keyClick(window.canvas.viewport(), Qt.Key.Key_Space)
    assert doc(window).verified and model.state(0).verified and model.state(0).unsaved
    assert "verified" in model.data(model.index(0, 0), Qt.ItemDataRole.ToolTipRole)
    qtbot.keyClick(window.canvas.viewport(), Qt.Key.Key_Z, CTRL)
    assert not doc(window).verified and not model.state(0).verified
    qtbot.keyClick(window.canvas.viewport(), Qt.Key.Key_Z, CTRL | SHIFT)
    assert doc(window).verified
    _save(qtbot, window)
    xml = image_folder / "img_0.xml"
    assert xml.read_text().startswith('<annotation verified="yes">') and read_voc(xml).verified
    # a fresh window on the folder: the mark comes from the file
    window.close()
    again = open_window(image_folder)
    assert again.image_list.model.state(0).verified and doc(again).verified
    assert not again.image_list.model.state(1).verified
    # the shortcut also works from the file list (the window's Verify Image action)
    again.image_list.view.setFocus()
    qtbot.keyClick(again.image_list.view, Qt.Key.Key_Space)
    assert not doc(again).verified


def test_space_held_while_dragging_pans_and_does_not_verify(qtbot, open_window: Callable[..., MainWindow], image_folder: Path) -> None:  # noqa: ANN001, F811
    window = open_window(image_folder)
    viewport = window.canvas.viewport()
    qtbot.keyPress(viewport, Qt.Key.Key_Space)
    start = window.canvas.mapFromScene(QPointF(100, 100))
    qtbot.mousePress(viewport, LEFT, NO_MOD, start)
    qtbot.mouseMove(viewport, start + QPoint(30, 20))
    qtbot.mouseRelease(viewport, LEFT, NO_MOD, start + QPoint(30, 20))
    qtbot.keyRelease(viewport, Qt.Key.Key_Space)
    assert not doc(window).verified and doc(window).labels() == []
    qtbot.keyClick(viewport, Qt.Key.Key_Space)  # a tap after the pan verifies
    assert doc(window).verified


def test_labels_in_a_sibling_annotations_folder_are_found_and_saved_there(
    qtbot, open_window: Callable[..., MainWindow], image_folder: Path, chooser: Chooser  # noqa: ANN001, F811
) -> None:
    annotations = image_folder.parent / "annotations"
    original = _labelimg_file(image_folder / "img_0.png", annotations / "img_0.xml")
    window = open_window(image_folder)
    assert [lb.name for lb in doc(window).labels()] == ["raccoon"] and doc(window).verified
    assert window.annotation.label_dir(image_folder) == annotations
    assert window.image_list.model.state(0).has_label and not window.image_list.model.state(1).has_label
    draw(qtbot, window, chooser, (20, 20, 60, 60), "cat")
    _save(qtbot, window)
    assert not (image_folder / "img_0.xml").exists()
    assert [lb.name for lb in read_voc(annotations / "img_0.xml").labels] == ["raccoon", "cat"]
    assert (annotations / "img_0.xml").read_text().startswith(original.split("\t</object>")[0])


def test_change_save_dir_is_remembered_per_image_folder(
    qtbot, open_window: Callable[..., MainWindow], image_folder: Path, chooser: Chooser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001, F811
) -> None:
    window = open_window(image_folder)
    labels = tmp_path / "my labels"
    labels.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(labels))
    window.action("change_save_dir").trigger()
    assert window.annotation.label_dir(image_folder) == labels
    assert "my labels" in window.statusBar().currentMessage()
    draw(qtbot, window, chooser, (20, 20, 60, 60), "cat")
    _save(qtbot, window)
    assert (labels / "img_0.xml").is_file() and not (image_folder / "img_0.xml").exists()
    assert Settings().label_dir_for(image_folder) == labels
    window.close()
    again = open_window(image_folder)  # a later session reads them from there
    assert again.annotation.label_dir(image_folder) == labels
    assert [lb.name for lb in doc(again).labels()] == ["cat"]
    # choosing the image folder itself goes back to LabelImg's default: next to the images
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(image_folder))
    again.action("change_save_dir").trigger()
    assert again.annotation.label_dir(image_folder) is None and Settings().label_dir_for(image_folder) is None
    assert doc(again).labels() == []  # nothing next to the images yet


@pytest.mark.parametrize("fmt", ["voc", "yolo", "coco"])
def test_verified_survives_save_and_reload_in_every_format(qtbot, tmp_path: Path, fmt: str) -> None:  # noqa: ANN001
    from app.labelling.document import LabelDocument, ProjectClasses

    image = tmp_path / "a.png"
    image.write_bytes(b"")  # the document needs only the path and the size
    labels = tmp_path / "labels"
    document = LabelDocument(ProjectClasses(["cat"]))
    document.load(image, (100, 80), fmt, labels_dir=labels)
    document.add_box((10, 10, 40, 40), "cat")
    document.set_verified(True)
    assert document.is_dirty()
    path = document.save()
    assert path.parent == labels and not document.is_dirty()
    reloaded = LabelDocument(ProjectClasses())
    reloaded.load(image, (100, 80), fmt, labels_dir=labels)
    assert reloaded.verified and [lb.name for lb in reloaded.labels()] == ["cat"]
    reloaded.undo_stack.undo()  # nothing to undo after a load
    reloaded.toggle_verified()
    reloaded.discard()  # back to the saved state
    assert reloaded.verified
