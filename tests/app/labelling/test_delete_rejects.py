"""Deleting a label that is an unedited acceptance of the current model's detection rejects
that detection in the same undo step: it does not come back as a suggestion, the sidecar
records the review, and the quality dock counts the image. Deleting a drawn or edited label
is a plain delete. Driven with real key events on the canvas, and in the real window."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.canvas.view import Canvas
from app.labelling.detections import UNKNOWN_ANCHOR
from app.labelling.document import LabelDocument, ProjectClasses
from app.labelling.label_files import sidecar_path
from app.window.main_window import MainWindow
from model.postprocess import Detections
from model.quality import model_fingerprint
from tests.app.canvas.test_canvas import HEIGHT, NO_MOD, WIDTH, ScriptedChooser, click, key, show_canvas, show_detections
from tests.app.docks.test_quality_dock_provenance import detect_labelled, run_model, wait_for

NAMES = ["cat", "dog", "bird"]
CAT = (20.0, 20.0, 80.0, 90.0)
DOG = (200.0, 150.0, 260.0, 230.0)
EMPTY_SPOT = (350.0, 30.0)  # no box here


def found(cat_anchor: int = 17, dog_anchor: int = 4242) -> Detections:
    """The model's cat 0.91 and dog 0.55 (xyxy, original pixels)."""
    return Detections(
        boxes=np.array([CAT, DOG], np.float32),
        scores=np.array([0.91, 0.55], np.float32),
        class_ids=np.array([0, 1], np.int64),
        anchor_ids=np.array([cat_anchor, dog_anchor], np.int64),
        level_ids=np.array([0, 1], np.int64),
    )


@pytest.fixture
def document(tmp_path: Path) -> LabelDocument:
    doc = LabelDocument(ProjectClasses(NAMES))
    doc.load(tmp_path / "photo.png", (WIDTH, HEIGHT), "voc")
    return doc


@pytest.fixture
def canvas(qtbot, document: LabelDocument) -> Canvas:  # noqa: ANN001
    view = show_canvas(qtbot, document, ScriptedChooser())
    show_detections(view, found(), NAMES, model_name="m.onnx", model_id="sha256:m", size=512)
    return view


def delete_label_at(qtbot, canvas: Canvas, x: float, y: float) -> None:  # noqa: ANN001
    """Click the label at (x, y) alone and press Delete."""
    click(qtbot, canvas, *EMPTY_SPOT)
    click(qtbot, canvas, x, y)
    assert len(canvas.selected_rows()) == 1
    key(qtbot, canvas, Qt.Key.Key_Delete, NO_MOD)


def test_deleting_an_accepted_detection_rejects_it_and_one_undo_brings_both_back(qtbot, canvas, document) -> None:  # noqa: ANN001
    assert document.accept_all(document.detections, 0.5, "m.onnx") == 2
    assert canvas.detection_rects() == {}  # both are labels now
    document.undo_stack.clear()

    delete_label_at(qtbot, canvas, 50, 50)
    assert [lab.name for lab in document.labels()] == ["dog"]
    assert canvas.detection_rects() == {}  # the cat detection does not come back as a suggestion
    [rejection] = document.rejected_keys()
    assert (rejection.model_name, rejection.model_id, rejection.anchor_id, rejection.class_id) == ("m.onnx", "sha256:m", 17, 0)
    assert (rejection.size, rejection.box) == (512, CAT)
    assert document.undo_stack.count() == 1 and document.undo_stack.undoText() == "Delete Box"

    document.undo_stack.undo()  # one step: the label is back and nothing is rejected
    assert [lab.name for lab in document.labels()] == ["cat", "dog"]
    assert document.rejected_keys() == frozenset()
    assert canvas.detection_rects() == {}
    document.undo_stack.redo()
    assert [lab.name for lab in document.labels()] == ["dog"] and len(document.rejected_keys()) == 1

    # saved, the review is in the sidecar; at another size (other anchors) the cat stays hidden
    document.save()
    [record] = json.loads(sidecar_path(document.image_path).read_text())["rejected"]
    assert record == {"model_name": "m.onnx", "anchor_id": 17, "class_id": 0, "model_id": "sha256:m", "size": 512, "box": list(CAT)}
    document.load(document.image_path, (WIDTH, HEIGHT), "voc")
    show_detections(canvas, found(cat_anchor=90, dog_anchor=5000), NAMES, model_name="m.onnx", model_id="sha256:m", size=640)
    assert canvas.detection_rects() == {}  # the cat rejected, the dog a label


def test_deleting_several_accepted_labels_is_one_undo_step(qtbot, canvas, document) -> None:  # noqa: ANN001
    document.accept_all(document.detections, 0.5, "m.onnx")
    canvas.set_selected_rows([0, 1])
    key(qtbot, canvas, Qt.Key.Key_Delete, NO_MOD)
    assert document.labels() == [] and canvas.detection_rects() == {}
    assert sorted(k.anchor_id for k in document.rejected_keys()) == [17, 4242]
    document.undo_stack.undo()
    assert len(document.labels()) == 2 and document.rejected_keys() == frozenset()


def test_deleting_a_drawn_label_rejects_nothing(qtbot, canvas, document) -> None:  # noqa: ANN001
    document.add_box(CAT, "cat")  # drawn by hand exactly over the cat detection
    assert sorted(canvas.detection_rects()) == [1]
    delete_label_at(qtbot, canvas, 50, 50)
    assert document.labels() == [] and document.rejected_keys() == frozenset()
    assert sorted(canvas.detection_rects()) == [0, 1]  # the model's cat is a suggestion again


def test_deleting_an_edited_label_rejects_nothing(qtbot, canvas, document) -> None:  # noqa: ANN001
    document.accept_detection(document.detections, 0, "m.onnx")
    click(qtbot, canvas, 50, 50)
    key(qtbot, canvas, Qt.Key.Key_Right, NO_MOD)  # nudged: the user corrected the box
    assert document.provenance(0).edited
    key(qtbot, canvas, Qt.Key.Key_Delete, NO_MOD)
    assert document.labels() == [] and document.rejected_keys() == frozenset()
    assert sorted(canvas.detection_rects()) == [0, 1]


def test_deleting_another_models_acceptance_rejects_nothing(qtbot, canvas, document) -> None:  # noqa: ANN001
    document.accept_detection(document.detections, 0, "m.onnx")
    show_detections(canvas, found(), NAMES, model_name="other.onnx", model_id="sha256:other", size=512)
    delete_label_at(qtbot, canvas, 50, 50)
    assert document.labels() == [] and document.rejected_keys() == frozenset()
    assert sorted(canvas.detection_rects()) == [0, 1]


def test_a_deleted_label_whose_detection_is_not_shown_is_rejected_by_box(qtbot, canvas, document) -> None:  # noqa: ANN001
    document.accept_detection(document.detections, 0, "m.onnx")
    both = found()
    only_dog = Detections(both.boxes[1:], both.scores[1:], both.class_ids[1:], both.anchor_ids[1:], both.level_ids[1:])
    show_detections(canvas, only_dog, NAMES, model_name="m.onnx", model_id="sha256:m", size=512)  # e.g. a higher score threshold
    delete_label_at(qtbot, canvas, 50, 50)
    [rejection] = document.rejected_keys()
    assert (rejection.anchor_id, rejection.class_id, rejection.size, rejection.box) == (UNKNOWN_ANCHOR, 0, 0, CAT)
    show_detections(canvas, found(), NAMES, model_name="m.onnx", model_id="sha256:m", size=512)  # the threshold back down
    assert sorted(canvas.detection_rects()) == [1]


# ----------------------------------------------------------------------------- the window
def test_the_quality_dock_counts_an_image_reviewed_by_deleting(qtbot, make_window, image_folder: Path, tmp_path: Path) -> None:  # noqa: ANN001
    model = run_model(tmp_path, "run1")
    window: MainWindow = make_window(model=model)
    window.nms_panel.score_slider.setValue(50)
    with qtbot.waitSignal(window.quality.labels_loaded, timeout=5000):
        with qtbot.waitSignal(window.controller.output_ready, timeout=5000):
            window.open_paths([image_folder])  # img_0 is shown: cat 0.90 and dog 0.60
    document = window.session.document
    size = window.controller.inference_size
    assert document.detection_size == size

    # "Accept all", then the dog is wrong: deleted
    assert window.annotation.accept_all_detections() == 2
    document.delete_rows([[lab.name for lab in document.labels()].index("dog")])
    assert document.visible_detection_indices() == []
    assert window.annotation.save()
    [record] = json.loads(sidecar_path(image_folder / "img_0.png").read_text())["rejected"]
    assert (record["class_id"], record["size"], record["model_id"]) == (1, size, model_fingerprint(model))

    # the image counts: the cat is the model's own (ignored), the dog it still finds is false
    detect_labelled(qtbot, window)
    wait_for(qtbot, window, num_images=1, reviewed_images=1, rejected_false_positives=1)
    report = window.quality.report()
    assert (report.left_out_images, report.num_labels, report.ignored_labels, report.false_positives) == (0, 0, 1, 1)

    # at another inference size the dog has another anchor: still the rejected detection
    combo = window.nms_panel.size_combo
    with qtbot.waitSignal(window.controller.output_ready, timeout=5000):
        combo.setCurrentIndex(combo.findData(512))
    document = window.session.document
    assert document.detection_size == 512
    assert record["anchor_id"] not in np.asarray(document.detections.anchor_ids).tolist()
    assert document.visible_detection_indices() == []
    detect_labelled(qtbot, window)
    wait_for(qtbot, window, num_images=1, reviewed_images=1, rejected_false_positives=1)
