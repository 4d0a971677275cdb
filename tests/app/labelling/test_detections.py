"""ShownDetections: the keys detections are rejected by, which stay hidden, and the labels
accepted ones become (no Qt, no document)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from app.labelling.detections import UNKNOWN_ANCHOR, ShownDetections
from app.labelling.entries import DRAWN, MODEL, DetectionKey, LabelEntry, Provenance
from model.labels import Label
from model.postprocess import Detections

SIZE = (640, 480)
NAMES = ("cat", "dog")


def detections(rows: list[tuple[tuple[float, float, float, float], float, int, int]]) -> Detections:
    """rows of (box xyxy, score, class_id, anchor_id), given in descending score."""
    return Detections(
        boxes=np.array([r[0] for r in rows], np.float32).reshape(-1, 4),
        scores=np.array([r[1] for r in rows], np.float32),
        class_ids=np.array([r[2] for r in rows], np.int64),
        anchor_ids=np.array([r[3] for r in rows], np.int64),
        level_ids=np.zeros(len(rows), np.int64),
    )


DETS = detections([((10, 10, 50, 50), 0.9, 0, 7), ((100, 100, 200, 200), 0.6, 1, 8), ((300, 300, 400, 400), 0.2, 0, 9)])


def shown(dets: Detections | None = DETS, **kw: object) -> ShownDetections:
    return ShownDetections(dets, NAMES, "m.onnx", "fp1", 512, **kw)  # type: ignore[arg-type]


def accepted(box: tuple[float, float, float, float], name: str, *, model: str = "m.onnx", model_id: str = "fp1") -> LabelEntry:
    prov = Provenance(source=MODEL, model_name=model, score=0.9, original_box=box, original_name=name, model_id=model_id)
    return LabelEntry(Label(*box, name=name), prov)


def test_only_the_shown_detections_of_the_shown_model_have_a_fingerprint_and_size() -> None:
    view = shown()
    assert view.key(DETS, 1, "m.onnx") == DetectionKey("m.onnx", 8, 1, "fp1", 512, (100.0, 100.0, 200.0, 200.0))
    assert view.key(DETS, 1, "other.onnx") == DetectionKey("other.onnx", 8, 1, "", 0, (100.0, 100.0, 200.0, 200.0))
    copy = dataclasses.replace(DETS)  # the same numbers, but not the shown detections
    assert (view.model_id_of("m.onnx"), view.size_of(copy, "m.onnx")) == ("fp1", 0)


def test_class_names_fall_back_to_the_project_and_name_unknown_ids() -> None:
    assert shown().class_name(1, ["x"]) == "dog"
    assert ShownDetections(DETS).class_name(0, ["x", "y"]) == "x"
    assert shown().class_name(5, ["x"]) == "class_5"


def test_a_rejection_hides_its_detection_and_labels_hide_theirs() -> None:
    view = shown()
    rejected = {view.key(DETS, 0, "m.onnx")}
    assert view.is_rejected(rejected, 0) and not view.is_rejected(rejected, 1)
    assert view.visible_indices(rejected, np.zeros((0, 4), np.float32)) == [1, 2]
    assert view.visible_indices(set(), np.array([[300, 300, 400, 400]], np.float32)) == [0, 1]
    assert view.visible_indices({DetectionKey("other.onnx", 7, 0)}, np.zeros((0, 4), np.float32)) == [0, 1, 2]
    assert shown(None).visible_indices(set(), np.zeros((0, 4), np.float32)) == []
    with pytest.raises(IndexError):
        shown(None).is_rejected(rejected, 0)


def test_deleting_an_unedited_acceptance_rejects_its_detection() -> None:
    view = shown()
    assert view.rejection_for(accepted((11, 9, 50, 51), "cat"), []) == view.key(DETS, 0, "m.onnx")
    # not shown any more: the original box, with no anchor or size
    gone = accepted((500.123, 10, 600, 90), "dog")
    assert view.rejection_for(gone, []) == DetectionKey("m.onnx", UNKNOWN_ANCHOR, 1, "fp1", 0, (500.12, 10.0, 600.0, 90.0))
    edited = dataclasses.replace(gone, provenance=dataclasses.replace(gone.provenance, edited=True))
    drawn = LabelEntry(Label(10, 10, 50, 50, "cat"), Provenance(source=DRAWN))
    other_model = accepted((10, 10, 50, 50), "cat", model="other.onnx", model_id="fp2")
    unknown_class = accepted((10, 10, 50, 50), "zebra")
    for entry in (edited, drawn, other_model, unknown_class):
        assert view.rejection_for(entry, []) is None
    assert ShownDetections().rejection_for(gone, list(NAMES)) is None  # no model shown


def test_an_accepted_detection_is_rounded_clamped_and_remembers_its_model() -> None:
    dets = detections([((600.4, -3.2, 700.6, 40.5), 0.75, 1, 3)])
    entry = shown(dets).entry(dets, 0, "m.onnx", name="dog", image_size=SIZE)
    assert entry.box == (539.0, 0.0, 640.0, 43.0)  # 101 x 43 px after rounding, shifted inside
    prov = entry.provenance
    assert (prov.source, prov.model_name, prov.model_id, prov.original_name, prov.edited) == (MODEL, "m.onnx", "fp1", "dog", False)
    assert prov.score == pytest.approx(0.75) and prov.original_box == pytest.approx((600.4, -3.2, 700.6, 40.5), abs=1e-4)


def test_accept_all_takes_the_best_of_overlapping_detections_and_names_every_candidate() -> None:
    dets = detections(
        [
            ((10, 10, 50, 50), 0.9, 0, 1),
            ((10, 10, 50, 51), 0.8, 1, 2),  # the same object: taken by the better one
            ((100, 100, 150, 150), 0.7, 1, 3),  # rejected
            ((200, 200, 260, 260), 0.6, 0, 4),  # already a label
            ((300, 300, 350, 350), 0.5, 1, 5),
            ((400, 400, 450, 450), 0.1, 0, 6),  # below the threshold
        ]
    )
    view = shown(dets)
    named: list[int] = []

    def name_of(class_id: int) -> str:
        named.append(class_id)
        return NAMES[class_id]

    rejected = {view.key(dets, 2, "m.onnx")}
    entries = view.to_accept(dets, 0.3, "m.onnx", rejected=rejected, taken=[(200, 200, 260, 260)], image_size=SIZE, name_of=name_of)
    assert [(e.box, e.label.name) for e in entries] == [((10, 10, 50, 50), "cat"), ((300, 300, 350, 350), "dog")]
    assert named == [0, 1, 0, 1]  # every candidate above the threshold and not rejected, best first
