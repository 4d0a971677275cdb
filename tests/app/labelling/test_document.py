"""LabelDocument: load/save in every format, provenance sidecar, detections, undo, dirty."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from app.labelling.document import LabelDocument, ProjectClasses  # noqa: E402
from app.labelling.entries import DRAWN, FILE, MODEL  # noqa: E402
from app.labelling.label_files import sidecar_path  # noqa: E402
from model.errors import LabelFormatError, LabelWriteError  # noqa: E402
from model.labels import Label, label_path_for, read_classes_txt, read_coco, read_voc, read_yolo  # noqa: E402
from model.postprocess import Detections  # noqa: E402

SIZE = (640, 480)
CLASSES = ["cat", "dog", "bird"]


@pytest.fixture
def project() -> ProjectClasses:
    return ProjectClasses(CLASSES)


def new_document(project: ProjectClasses, image: Path, fmt: str = "voc") -> LabelDocument:
    doc = LabelDocument(project)
    doc.load(image, SIZE, fmt)
    return doc


def detections(rows: list[tuple[tuple[float, float, float, float], float, int, int]]) -> Detections:
    """rows of (box xyxy, score, class_id, anchor_id), given in descending score."""
    return Detections(
        boxes=np.array([r[0] for r in rows], np.float32).reshape(-1, 4),
        scores=np.array([r[1] for r in rows], np.float32),
        class_ids=np.array([r[2] for r in rows], np.int64),
        anchor_ids=np.array([r[3] for r in rows], np.int64),
        level_ids=np.zeros(len(rows), np.int64),
    )


def assert_same_labels(got: list[Label], want: list[Label], *, tol: float = 0.0) -> None:
    assert [(g.name, g.difficult, g.truncated) for g in got] == [(w.name, w.difficult, w.truncated) for w in want]
    for g, w in zip(got, want, strict=True):
        assert g.box == pytest.approx(w.box, abs=tol)


# ----------------------------------------------------------------------------- project classes
def test_project_classes_grow_and_signal(qtbot) -> None:  # noqa: ANN001
    project = ProjectClasses(["cat"])
    with qtbot.waitSignal(project.class_added) as blocker:
        assert project.add(" dog ") == 1
    assert blocker.args == ["dog"]
    assert project.add("cat") == 0 and project.names == ["cat", "dog"]
    assert project.index("zebra") == -1 and "dog" in project and len(project) == 2
    with pytest.raises(ValueError):
        project.add("  ")


# ----------------------------------------------------------------------------- save / reopen
@pytest.mark.parametrize("fmt", ["voc", "yolo", "coco"])
def test_save_then_reopen_gives_the_same_labels(tmp_path: Path, project: ProjectClasses, fmt: str) -> None:
    image = tmp_path / "photo.jpg"
    other = tmp_path / "other.jpg"
    doc = new_document(project, image, fmt)
    doc.add_box((10, 20, 110, 220), "dog")
    doc.add_box((300, 40, 640, 480), "cat")
    doc.add_box((5, 5, 6, 6), "new class")  # a class the model did not know
    doc.accept_detection(detections([((100.4, 100.6, 200.2, 150.0), 0.8, 2, 77)]), 0, "demo.onnx")
    doc.set_boxes([3], [(101.0, 101.0, 201.0, 151.0)])  # edited since accepted
    assert doc.is_dirty()
    path = doc.save()
    assert path == label_path_for(image, fmt) and path.is_file()
    assert not doc.is_dirty()
    # a second image in the same folder must not disturb the first (COCO shares one file)
    doc2 = new_document(project, other, fmt)
    doc2.add_box((1, 1, 50, 50), "bird")
    doc2.save()

    reopened = new_document(ProjectClasses(CLASSES), image, fmt)
    tol = 1e-3 if fmt == "yolo" else 0.0  # YOLO stores normalised numbers with 6 decimals
    assert_same_labels(reopened.labels(), doc.labels(), tol=tol)
    assert not reopened.is_dirty() and reopened.undo_stack.count() == 0
    assert "new class" in reopened.project
    provenance = [reopened.provenance(r) for r in range(4)]
    assert [p.source for p in provenance] == [DRAWN, DRAWN, DRAWN, MODEL]
    assert provenance[3].model_name == "demo.onnx" and provenance[3].score == pytest.approx(0.8)
    assert provenance[3].original_box == pytest.approx((100.4, 100.6, 200.2, 150.0), abs=1e-4)
    assert provenance[3].edited
    other_labels = new_document(ProjectClasses(CLASSES), other, fmt).labels()
    assert_same_labels(other_labels, [Label(1, 1, 50, 50, "bird")], tol=tol)


def test_saved_files_are_plain_voc_yolo_coco(tmp_path: Path, project: ProjectClasses) -> None:
    """Provenance lives in .studio/, so other tools read the label files unchanged."""
    image = tmp_path / "a.png"
    for fmt in ("voc", "yolo", "coco"):
        doc = new_document(project, image, fmt)
        doc.add_box((10, 10, 20, 30), "bird")
        doc.save()
    assert read_voc(tmp_path / "a.xml").labels == [Label(10, 10, 20, 30, "bird")]
    names = read_classes_txt(tmp_path / "classes.txt")
    assert names[:3] == CLASSES
    yolo = read_yolo(tmp_path / "a.txt", width=SIZE[0], height=SIZE[1], class_names=names).labels
    assert_same_labels(yolo, [Label(10, 10, 20, 30, "bird")], tol=1e-3)
    items, coco_names = read_coco(tmp_path / "annotations.json")
    assert [Path(i.image_path).name for i in items] == ["a.png"] and "bird" in coco_names
    side = json.loads(sidecar_path(image).read_text())
    assert side["labels"][0]["provenance"]["source"] == DRAWN
    assert sidecar_path(image).parent.name == ".studio"


def test_labels_from_another_tool_get_file_provenance(tmp_path: Path, project: ProjectClasses) -> None:
    image = tmp_path / "x.jpg"
    doc = new_document(project, image)
    doc.add_box((1, 2, 30, 40), "cat")
    doc.save()
    sidecar_path(image).unlink()
    reopened = new_document(project, image)
    assert reopened.provenance(0).source == FILE


def test_yolo_keeps_existing_class_ids(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("zebra\ncat\n")
    image = tmp_path / "z.jpg"
    (tmp_path / "z.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    doc = new_document(ProjectClasses(["cat", "dog"]), image, "yolo")
    assert [lab.name for lab in doc.labels()] == ["zebra"]
    doc.add_box((0, 0, 10, 10), "dog")
    doc.save()
    assert read_classes_txt(tmp_path / "classes.txt") == ["zebra", "cat", "dog"]  # appended, ids unchanged
    assert (tmp_path / "z.txt").read_text().splitlines()[1].startswith("2 ")


@pytest.mark.parametrize(
    ("fmt", "name", "content"),
    [
        ("voc", "bad.xml", "<annotation><object><name>cat</name><bndbox><xmin>oops"),
        ("yolo", "bad.txt", "0 0.5 0.5\n"),
        ("coco", "annotations.json", "{not json"),
    ],
)
def test_a_malformed_label_file_is_a_clear_error_and_is_never_overwritten(
    tmp_path: Path, project: ProjectClasses, fmt: str, name: str, content: str
) -> None:
    (tmp_path / name).write_text(content)
    doc = LabelDocument(project)
    with pytest.raises(LabelFormatError) as info:
        doc.load(tmp_path / "bad.jpg", SIZE, fmt)
    assert name in str(info.value)
    assert doc.labels() == []
    doc.add_box((1, 1, 5, 5), "cat")
    with pytest.raises(LabelWriteError):
        doc.save()
    assert (tmp_path / name).read_text() == content


def test_a_damaged_sidecar_only_loses_provenance(tmp_path: Path, project: ProjectClasses) -> None:
    image = tmp_path / "s.jpg"
    doc = new_document(project, image)
    doc.add_box((1, 2, 30, 40), "cat")
    doc.save()
    sidecar_path(image).write_text("{torn")
    reopened = new_document(project, image)
    assert reopened.labels() == [Label(1, 2, 30, 40, "cat")]
    assert reopened.provenance(0).source == FILE


# ----------------------------------------------------------------------------- dirty / undo
def test_dirty_follows_the_undo_stack(qtbot, tmp_path: Path, project: ProjectClasses) -> None:  # noqa: ANN001
    doc = new_document(project, tmp_path / "d.jpg")
    seen: list[bool] = []
    doc.dirty_changed.connect(seen.append)
    doc.add_box((1, 1, 9, 9), "cat")
    doc.undo_stack.undo()
    doc.undo_stack.redo()
    doc.save()
    assert seen == [True, False, True, False]
    assert doc.undo_stack.undoLimit() == 0  # unlimited


def test_discard_goes_back_to_the_saved_labels(tmp_path: Path, project: ProjectClasses) -> None:
    doc = new_document(project, tmp_path / "e.jpg")
    doc.add_box((1, 1, 9, 9), "cat")
    doc.save()
    doc.add_box((2, 2, 8, 8), "dog")
    doc.set_boxes([0], [(3, 3, 4, 4)])
    doc.discard()
    assert doc.labels() == [Label(1, 1, 9, 9, "cat")]
    assert not doc.is_dirty() and doc.undo_stack.count() == 0


def test_every_edit_undoes_to_the_exact_previous_state(tmp_path: Path, project: ProjectClasses) -> None:
    doc = new_document(project, tmp_path / "f.jpg")
    states = [doc.labels()]
    doc.add_box((10.0, 10.0, 50.0, 60.0), "cat")
    states.append(doc.labels())
    doc.add_box((100.0, 100.0, 150.0, 160.0), "dog")
    states.append(doc.labels())
    doc.set_boxes([0], [(11.0, 12.0, 49.0, 59.0)], text="Resize Box")
    states.append(doc.labels())
    doc.relabel([1], "bird")
    states.append(doc.labels())
    doc.duplicate([0, 1])
    states.append(doc.labels())
    doc.delete_rows([0, 2])
    states.append(doc.labels())
    for state in reversed(states[:-1]):
        doc.undo_stack.undo()
        assert doc.labels() == state
    for state in states[1:]:
        doc.undo_stack.redo()
        assert doc.labels() == state


# ----------------------------------------------------------------------------- detections
def test_accept_all_takes_every_new_detection_at_or_above_the_threshold(
    tmp_path: Path, project: ProjectClasses
) -> None:
    doc = new_document(project, tmp_path / "g.jpg")
    doc.add_box((0, 0, 100, 100), "dog")  # already labelled (by hand, other class)
    dets = detections(
        [
            ((300, 300, 400, 380), 0.95, 0, 1),  # new -> accepted
            ((0.4, 0.3, 100.2, 99.6), 0.90, 0, 2),  # IoU > 0.9 with the hand label -> skipped
            ((301, 301, 401, 381), 0.85, 1, 3),  # IoU > 0.9 with the first accepted -> skipped
            ((500, 10, 560, 90), 0.60, 2, 4),  # exactly at the threshold -> accepted
            ((200, 200, 250, 260), 0.59, 1, 5),  # below -> skipped
        ]
    )
    stack_before = doc.undo_stack.count()
    assert doc.accept_all(dets, 0.60, "demo.onnx") == 2
    assert doc.undo_stack.count() == stack_before + 1  # one command
    assert doc.labels()[1:] == [Label(300, 300, 400, 380, "cat"), Label(500, 10, 560, 90, "bird")]
    assert [doc.provenance(r).score for r in (1, 2)] == pytest.approx([0.95, 0.60])
    assert doc.accept_all(dets, 0.60, "demo.onnx") == 0  # nothing left to accept
    doc.undo_stack.undo()
    assert doc.labels() == [Label(0, 0, 100, 100, "dog")]


def test_accepted_boxes_are_whole_pixels_inside_the_image(tmp_path: Path, project: ProjectClasses) -> None:
    doc = new_document(project, tmp_path / "h.jpg")
    doc.accept_detection(detections([((-5.3, 10.6, 700.2, 20.4), 0.7, 1, 9)]), 0, "m")
    assert doc.labels() == [Label(0.0, 11.0, 640.0, 20.0, "dog")]
    assert doc.provenance(0).original_box == pytest.approx((-5.3, 10.6, 700.2, 20.4), abs=1e-4)
    assert not doc.provenance(0).edited
    doc.relabel([0], "cat")
    assert doc.provenance(0).edited and doc.provenance(0).original_name == "dog"


def test_rejected_detections_stay_hidden_across_slider_moves(tmp_path: Path, project: ProjectClasses) -> None:
    image = tmp_path / "r.jpg"
    doc = new_document(project, image)
    full = detections([((10, 10, 50, 50), 0.9, 0, 11), ((100, 100, 150, 150), 0.5, 1, 12)])
    doc.set_detections(full, class_names=CLASSES, model_name="m.onnx")
    assert doc.visible_detection_indices() == [0, 1]
    doc.reject_detection(1)
    assert doc.visible_detection_indices() == [0] and doc.is_dirty()
    # the slider moved: new Detections object, same anchor/class -> still rejected
    moved = detections([((100, 100, 150, 150), 0.5, 1, 12)])
    doc.set_detections(moved, class_names=CLASSES, model_name="m.onnx")
    assert doc.visible_detection_indices() == []
    assert doc.accept_all(moved, 0.1, "m.onnx") == 0  # rejected ones are not accepted either
    doc.save()
    reopened = new_document(project, image)
    reopened.set_detections(moved, class_names=CLASSES, model_name="m.onnx")
    assert reopened.visible_detection_indices() == []  # remembered in the sidecar
    reopened.set_detections(moved, class_names=CLASSES, model_name="other.onnx")
    assert reopened.visible_detection_indices() == [0]  # another model's detection
    doc.undo_stack.undo()
    assert doc.visible_detection_indices() == [0]
