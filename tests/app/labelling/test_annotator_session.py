"""The label controller on a bare session, with no window: it takes the session, writes to
it and follows it (the window only assembles)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage

from app.common.settings import Settings
from app.labelling.annotator import Annotator
from app.session import ModelInfo, Session
from model.labels import ImageLabels, Label, read_voc, write_voc
from model.postprocess import PostProcessor, extract_candidates
from model.quality import model_fingerprint
from tests.app.fakes import FakeDetector, write_fake_model, write_marker_image


def make(tmp_path: Path) -> tuple[Session, Annotator, Path]:
    folder = tmp_path / "images"
    folder.mkdir()
    image = write_marker_image(folder / "a.png", 10)
    (folder / "classes.txt").write_text("cat\ndog\nbird\nfish\n")
    session = Session(post_processor=PostProcessor(score_thresh=0.5, iou_thresh=0.5))
    return session, Annotator(session, Settings(), journal_root=tmp_path / "journal"), image


def candidates():  # noqa: ANN201
    """A cat (0.9) and a dog (0.4) on the 320x240 image."""
    boxes = np.array([[10, 10, 50, 50], [100, 100, 150, 160]], np.float32)
    scores = np.array([[0.9, 0.0, 0.0], [0.0, 0.4, 0.0]], np.float32)
    return extract_candidates(boxes, scores, topk_per_level=None)


def test_the_session_drives_documents_detections_and_saves(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    session, annotator, image = make(tmp_path)
    write_voc(ImageLabels(str(image), 320, 240, labels=[Label(200, 20, 260, 80, "fish")]), image.with_suffix(".xml"))
    shown, saved, unsaved = [], [], []
    session.document_changed.connect(shown.append)
    session.labels_saved.connect(saved.append)
    session.unsaved_changed.connect(lambda path, dirty: unsaved.append((path, dirty)))

    session.set_image_paths([image])  # the folder's class list is read
    assert annotator.project.names[:4] == ["cat", "dog", "bird", "fish"]
    document = annotator.open_document(image, QImage(320, 240, QImage.Format.Format_RGB888))
    assert shown == [document] and session.document is document and document.labels()[0].name == "fish"
    assert unsaved[-1] == (image, False)

    model = write_fake_model(tmp_path / "m.onnx")
    session.set_model(ModelInfo(model, FakeDetector.load(model).contract))
    session.set_candidates(candidates(), size=512)  # the detections reach the shown document
    assert document.detections is session.detections and len(document.detections) == 1
    assert (document.model_name, document.model_id, document.detection_size) == ("m.onnx", model_fingerprint(model), 512)
    session.set_post_processor(session.post_processor.with_(score_thresh=0.3))  # the slider: the document follows
    assert len(document.detections) == 2

    assert annotator.accept_all_detections() == 2  # at the session's threshold
    assert unsaved[-1] == (image, True)
    assert annotator.save() and saved == [image]
    names = sorted(label.name for label in read_voc(image.with_suffix(".xml")).labels)
    assert names == ["cat", "dog", "fish"]


def test_label_settings_live_in_the_session(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    session, annotator, image = make(tmp_path)
    document = annotator.open_document(image, QImage(320, 240, QImage.Format.Format_RGB888))
    annotator.set_label_format("yolo")
    assert session.label_format == "yolo" == document.fmt == annotator.labels.fmt
    assert annotator.format_actions["yolo"].isChecked()
    session.set_autosave(True)
    assert annotator.labels.autosave and annotator.actions["autosave"].isChecked()
    labels = tmp_path / "labels"
    labels.mkdir()
    session.set_current_path(image)
    assert annotator.change_save_dir(labels)
    assert session.label_dir_for(image.parent) == labels and document.labels_dir == labels
    annotator.close_document()
    assert session.document is None


def test_the_image_list_hears_of_a_save_under_the_path_it_listed(qtbot, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """An image opened by a relative path (a file named on the command line): the saved
    signal carries that path, the one the image list has, not the document's absolute one."""
    session, annotator, image = make(tmp_path)
    monkeypatch.chdir(tmp_path)
    relative = Path("images") / image.name
    saved: list[Path] = []
    session.labels_saved.connect(saved.append)
    document = annotator.open_document(relative, QImage(320, 240, QImage.Format.Format_RGB888))
    assert document.image_path == str(image)  # the document keeps it absolute
    document.add_box((5.0, 5.0, 40.0, 40.0), "cat")
    assert annotator.save()
    assert saved == [relative] and image.with_suffix(".xml").is_file()
