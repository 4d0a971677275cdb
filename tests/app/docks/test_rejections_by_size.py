"""A rejected detection is the same detection at every inference size: anchor ids depend on
the size (the letterboxed input's pyramid shape), so a rejection records its size and box.
At the size it was made at it hides its anchor; at another size, the detection of its class
whose box overlaps the recorded one most (IoU >= 0.7). Sidecars written before sizes and
boxes were recorded behave as before (by anchor). Every sidecar here is written by
``LabelDocument.save`` and read back by ``LabelDocument.load`` or the quality dock's reader.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.docks.quality_monitor import image_comparison, read_labels_with_provenance
from app.labelling.document import LabelDocument, ProjectClasses
from app.labelling.label_files import sidecar_path
from model.postprocess import Detections
from model.quality import QualityReport, compare, model_fingerprint

NAMES = ["cat", "dog", "bird"]
SIZE = (320, 240)
CAT = (10.0, 10.0, 50.0, 50.0)
DOG = (10.0, 100.0, 70.0, 160.0)
DOG_AT_640 = (12.0, 102.0, 72.0, 161.0)  # the same dog seen at 640: IoU 0.89 with DOG
FAR_DOG = (200.0, 100.0, 260.0, 160.0)  # another dog, elsewhere


def detections(*found: tuple[tuple[float, float, float, float], int, int, float]) -> Detections:
    """Detections from (box xyxy, class id, anchor id, score), sorted by score."""
    found = tuple(sorted(found, key=lambda d: -d[3]))
    return Detections(
        boxes=np.array([d[0] for d in found], np.float32).reshape(-1, 4),
        scores=np.array([d[3] for d in found], np.float32),
        class_ids=np.array([d[1] for d in found], np.int64),
        anchor_ids=np.array([d[2] for d in found], np.int64),
        level_ids=np.zeros(len(found), np.int64),
    )


# what the model finds at 512: cat (anchor 3), dog (anchor 7)
AT_512 = detections((CAT, 0, 3, 0.9), (DOG, 1, 7, 0.6))
# at 640 the pyramid is larger: the cat and the dog have other anchors, and anchor 7 is
# now another dog, elsewhere in the image
AT_640 = detections((CAT, 0, 11, 0.9), (DOG_AT_640, 1, 19, 0.6), (FAR_DOG, 1, 7, 0.55))


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"weights")
    return path


def open_image(image: Path, model: Path, dets: Detections, size: int) -> LabelDocument:
    """``image`` opened by the app, showing ``model``'s ``dets`` made at inference ``size``."""
    document = LabelDocument(ProjectClasses(NAMES))
    document.load(image, SIZE)
    document.set_detections(dets, class_names=NAMES, model_name=model.name, model_id=model_fingerprint(model), size=size)
    return document


def new_image(folder: Path, name: str = "photo.png") -> Path:
    image = folder / name
    cv2.imwrite(str(image), np.zeros((SIZE[1], SIZE[0], 3), np.uint8))
    return image


def dog_rejected_at_512(folder: Path, model: Path) -> Path:
    """An image on which the user rejected the dog at size 512, and saved."""
    image = new_image(folder)
    document = open_image(image, model, AT_512, 512)
    document.reject_detection(1)
    assert document.visible_detection_indices() == [0]
    document.save()
    return image


def visible_boxes(document: LabelDocument) -> list[tuple[float, ...]]:
    dets = document.detections
    return [tuple(float(v) for v in dets.boxes[i]) for i in document.visible_detection_indices()]


def test_the_sidecar_records_the_size_and_box_of_a_rejection(qapp, tmp_path: Path, model: Path) -> None:  # noqa: ANN001
    image = dog_rejected_at_512(tmp_path, model)
    [record] = json.loads(sidecar_path(image).read_text())["rejected"]
    assert record == {
        "model_name": "model.onnx",
        "anchor_id": 7,
        "class_id": 1,
        "model_id": model_fingerprint(model),
        "size": 512,
        "box": list(DOG),
    }


def test_at_another_size_the_rejection_hides_the_same_detection_not_its_anchor(qapp, tmp_path: Path, model: Path) -> None:  # noqa: ANN001
    image = dog_rejected_at_512(tmp_path, model)

    at_640 = open_image(image, model, AT_640, 640)
    # anchor 7 is another dog at 640: shown; the rejected dog (anchor 19 now) is matched by box
    assert visible_boxes(at_640) == [CAT, FAR_DOG]
    assert at_640.accept_all(AT_640, 0.5, model.name) == 2
    assert [lab.name for lab in at_640.labels()] == ["cat", "dog"] and at_640.labels()[1].box == FAR_DOG

    # back at 512 the anchor names the rejected dog again
    assert visible_boxes(open_image(image, model, AT_512, 512)) == [CAT]
    # size unknown: matched by box
    assert visible_boxes(open_image(image, model, AT_640, 0)) == [CAT, FAR_DOG]


def test_a_box_match_hides_one_detection_only(qapp, tmp_path: Path, model: Path) -> None:  # noqa: ANN001
    image = dog_rejected_at_512(tmp_path, model)
    # a loose NMS at 640 keeps two dogs around the rejected one: the closer one is it
    near = (11.0, 101.0, 71.0, 161.0)
    dets = detections((CAT, 0, 11, 0.9), (DOG_AT_640, 1, 19, 0.6), (near, 1, 23, 0.5))
    assert visible_boxes(open_image(image, model, dets, 640)) == [CAT, DOG_AT_640]
    # a detection of another class on the same box is another detection
    dets = detections((CAT, 0, 11, 0.9), (DOG, 2, 19, 0.6))
    assert visible_boxes(open_image(image, model, dets, 640)) == [CAT, DOG]
    # the same anchor at the same size is the rejected detection, whatever the box
    dets = detections((CAT, 0, 3, 0.9), (FAR_DOG, 1, 7, 0.6))
    assert visible_boxes(open_image(image, model, dets, 512)) == [CAT]


def test_rejecting_the_same_detection_at_another_size_records_nothing_new(qapp, tmp_path: Path, model: Path) -> None:  # noqa: ANN001
    image = dog_rejected_at_512(tmp_path, model)
    document = open_image(image, model, AT_640, 640)
    hidden = [i for i in range(len(AT_640)) if document.is_rejected(i)]
    assert hidden == [1]  # the dog at 640
    document.reject_detection(1)  # already hidden: nothing to undo
    assert not document.is_dirty()
    document.reject_detection(2)  # the far dog: a new rejection, recorded at 640
    document.save()
    records = json.loads(sidecar_path(image).read_text())["rejected"]
    assert [(r["anchor_id"], r["size"], r["box"]) for r in records] == [(7, 512, list(DOG)), (7, 640, list(FAR_DOG))]
    assert visible_boxes(open_image(image, model, AT_512, 512)) == [CAT]


def test_an_old_sidecar_rejection_still_hides_by_anchor(qapp, tmp_path: Path, model: Path) -> None:  # noqa: ANN001
    image = dog_rejected_at_512(tmp_path, model)
    state = json.loads(sidecar_path(image).read_text())
    for record in state["rejected"]:
        del record["size"], record["box"]  # as sidecars were written before these were recorded
    sidecar_path(image).write_text(json.dumps(state))

    assert visible_boxes(open_image(image, model, AT_512, 512)) == [CAT]
    assert visible_boxes(open_image(image, model, AT_512, 0)) == [CAT]
    # nothing but the anchor is known: matched by anchor at any size, as before
    assert visible_boxes(open_image(image, model, AT_640, 640)) == [CAT, DOG_AT_640]
    # saved again, the old record is written back as it was
    document = open_image(image, model, AT_512, 512)
    document.add_box((200, 10, 250, 60), "bird")
    document.save()
    assert json.loads(sidecar_path(image).read_text())["rejected"] == [
        {"model_name": "model.onnx", "anchor_id": 7, "class_id": 1, "model_id": model_fingerprint(model)}
    ]


# ----------------------------------------------------------------------------- quality dock
def evaluate(image: Path, model: Path, dets: Detections, size: int) -> tuple[QualityReport, np.ndarray | None]:
    """``model``'s numbers on the saved labels of ``image`` for ``dets`` made at ``size``,
    built as the quality dock builds them, and which detections count as rejected."""
    saved, errors = read_labels_with_provenance([image], "voc")
    assert errors == []
    [(key, labels)] = saved.items()
    who = {"model_name": model.name, "model_id": model_fingerprint(model)}
    comparison, unknown = image_comparison(
        key, labels, dets, NAMES, model_output=labels.model_output(**who), rejected=labels.rejected_by_model(**who), size=size
    )
    assert unknown == 0
    return compare([comparison], class_names=NAMES), comparison.det_is_rejected


def test_the_quality_dock_matches_rejections_across_sizes(qapp, tmp_path: Path, model: Path) -> None:  # noqa: ANN001
    # at 512 the model found a cat, a dog and a far dog; the user accepted the cat and the
    # far dog unedited and rejected the dog
    at_512 = detections((CAT, 0, 3, 0.9), (DOG, 1, 7, 0.6), (FAR_DOG, 1, 9, 0.55))
    image = new_image(tmp_path)
    document = open_image(image, model, at_512, 512)
    document.accept_all(at_512, 0.7, model.name)
    document.accept_detection(at_512, 2, model.name)
    document.reject_detection(1)
    document.save()

    report, rejected = evaluate(image, model, AT_640, 640)
    # the dog (anchor 19 at 640) is the rejected one: a false positive; the far dog, on
    # anchor 7 by chance, is the model's own accepted far dog: an ignored region
    assert rejected.tolist() == [False, True, False]
    assert (report.num_images, report.reviewed_images, report.num_labels) == (1, 1, 0)
    assert (report.false_positives, report.rejected_false_positives, report.ignored_detections) == (1, 1, 2)

    # without the rejected dog, nothing is a false positive (matched by anchor it would be)
    report, rejected = evaluate(image, model, detections((CAT, 0, 11, 0.9), (FAR_DOG, 1, 7, 0.55)), 640)
    assert rejected.tolist() == [False, False]
    assert (report.num_images, report.reviewed_images, report.false_positives, report.ignored_detections) == (1, 1, 0, 2)

    # at 512 the anchor decides
    report, rejected = evaluate(image, model, at_512, 512)
    assert rejected.tolist() == [False, True, False]
    assert (report.false_positives, report.rejected_false_positives) == (1, 1)
