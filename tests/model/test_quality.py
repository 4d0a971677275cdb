"""model.quality: matching detections to labels, precision / recall / AP50, disagreement order."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.boxes import iou_matrix
from model.evaluate import Prediction, coco_evaluate
from model.labels import ImageLabels, Label, write_voc
from model.quality import (
    ImageComparison,
    ReadCancelled,
    UneditedAcceptance,
    compare,
    is_model_output,
    is_same_model,
    label_class_ids,
    match_detections,
    model_fingerprint,
    read_saved_labels,
)

NAMES = ("cat", "dog", "bird")


def image(key: str, labels: list[tuple], dets: list[tuple]) -> ImageComparison:
    """labels: (x1, y1, x2, y2, class); dets: (x1, y1, x2, y2, class, score)."""
    lab = np.array(labels, np.float32).reshape(-1, 5)
    det = np.array(dets, np.float32).reshape(-1, 6)
    return ImageComparison(
        key=key,
        label_boxes=lab[:, :4],
        label_class_ids=lab[:, 4].astype(np.int64),
        det_boxes=det[:, :4],
        det_scores=det[:, 5],
        det_class_ids=det[:, 4].astype(np.int64),
    )


def reference_match(dets: list[tuple], labels: list[tuple], iou_thresh: float = 0.5) -> tuple[list[bool], list[bool]]:
    """COCO's greedy matching written as plainly as possible (one image)."""
    order = sorted(range(len(dets)), key=lambda i: -dets[i][5])  # stable: ties keep input order
    det_matched, label_matched = [False] * len(dets), [False] * len(labels)
    ious = iou_matrix(np.array([d[:4] for d in dets], np.float32), np.array([g[:4] for g in labels], np.float32))
    for d in order:
        best, best_iou = -1, -1.0
        for g, lab in enumerate(labels):
            if label_matched[g] or lab[4] != dets[d][4]:
                continue
            if ious[d, g] >= iou_thresh and ious[d, g] > best_iou:
                best, best_iou = g, ious[d, g]
        if best >= 0:
            det_matched[d] = label_matched[best] = True
    return det_matched, label_matched


def test_two_labels_three_detections() -> None:
    report = compare(
        [image("a", [(10, 10, 50, 50, 0), (10, 100, 70, 160, 1)],
               [(10, 10, 50, 50, 0, 0.9), (11, 101, 70, 160, 1, 0.6), (10, 200, 40, 230, 2, 0.45)])],
        class_names=NAMES,
    )
    assert report.precision == pytest.approx(2 / 3)
    assert report.recall == 1.0
    assert (report.true_positives, report.false_positives, report.false_negatives) == (2, 1, 0)
    assert (report.num_images, report.num_labels, report.num_detections) == (1, 2, 3)
    assert report.ap50 == pytest.approx(1.0)  # the false positive is of a class without labels
    assert math.isnan(report.per_class_ap50["bird"])


def test_ap50_is_pycocotools_and_drops_when_a_false_positive_outranks_a_match() -> None:
    images = [
        image("a", [(0, 0, 10, 10, 0), (20, 20, 30, 30, 0)],
              [(50, 50, 60, 60, 0, 0.9), (0, 0, 10, 10, 0, 0.8), (20, 20, 30, 30, 0, 0.7)]),
        image("b", [(0, 0, 10, 10, 1)], [(0, 0, 10, 10, 1, 0.5)]),
    ]
    report = compare(images, class_names=NAMES)
    expected = coco_evaluate(
        [im.label_boxes for im in images],
        [im.label_class_ids for im in images],
        [Prediction(im.det_boxes, im.det_scores, im.det_class_ids) for im in images],
        class_names=NAMES,
    )
    assert report.ap50 == pytest.approx(expected.ap50)
    assert 0.0 < report.ap50 < 1.0
    assert report.precision == pytest.approx(3 / 4) and report.recall == 1.0


def test_greedy_by_score_the_best_detection_takes_the_label() -> None:
    labels = [(0, 0, 10, 10, 0)]
    dets = [(0, 0, 10, 9, 0, 0.6), (0, 0, 10, 10, 0, 0.9)]  # the better box also scores higher
    det_matched, label_matched = match_detections(
        [0, 0], [d[:4] for d in dets], [d[5] for d in dets], [d[4] for d in dets],
        [0], [labels[0][:4]], [0], num_images=1,
    )
    assert det_matched.tolist() == [False, True] and label_matched.tolist() == [True]


def test_a_detection_takes_its_highest_iou_free_label() -> None:
    # A (0.9) overlaps L1 at 0.67 and L2 at 0.82; B (0.8) overlaps only L2 (L1 at 0.43).
    labels = [(0, 0, 10, 10, 0), (3, 0, 13, 10, 0)]
    dets = [(2, 0, 12, 10, 0, 0.9), (4, 0, 14, 10, 0, 0.8)]
    report = compare([image("x", labels, dets)], class_names=NAMES, with_ap=False)
    assert reference_match(dets, labels) == ([True, False], [False, True])
    assert (report.true_positives, report.false_positives, report.false_negatives) == (1, 1, 1)
    assert math.isnan(report.ap50)


def test_match_needs_the_same_class_and_iou_at_least_one_half() -> None:
    half = (0, 0, 10, 10, 0)  # IoU with (0, 0, 20, 10) is exactly 0.5
    report = compare(
        [image("x", [(0, 0, 20, 10, 0), (0, 20, 10, 30, 1)], [(*half[:4], 0, 0.9), (0, 20, 10, 30, 2, 0.8)])],
        class_names=NAMES,
        with_ap=False,
    )
    assert (report.true_positives, report.false_positives, report.false_negatives) == (1, 1, 1)


def test_class_filter_restricts_labels_and_detections() -> None:
    im = image("x", [(0, 0, 10, 10, 0), (0, 20, 10, 30, 1)], [(0, 0, 10, 10, 0, 0.9), (50, 50, 60, 60, 2, 0.5)])
    report = compare([im], class_names=NAMES, class_ids={0})
    assert (report.num_labels, report.num_detections, report.precision, report.recall) == (1, 1, 1.0, 1.0)
    assert set(report.per_class_ap50) == {"cat"}


def test_images_are_listed_worst_first() -> None:
    good = image("good", [(0, 0, 10, 10, 0)], [(0, 0, 10, 10, 0, 0.9)])
    two_fp = image("two_fp", [], [(0, 0, 10, 10, 0, 0.9), (20, 0, 30, 10, 0, 0.8)])
    missed = image("missed", [(0, 0, 10, 10, 0), (20, 0, 30, 10, 1), (40, 0, 50, 10, 1)], [])
    one_each = image("one_each", [(0, 0, 10, 10, 0)], [(0, 0, 10, 10, 1, 0.9)])
    report = compare([good, two_fp, missed, one_each], class_names=NAMES, with_ap=False)
    assert [a.key for a in report.images] == ["missed", "one_each", "two_fp", "good"]
    assert [a.disagreement for a in report.images] == [3, 2, 2, 0]
    assert [a.key for a in report.disagreements()] == ["missed", "one_each", "two_fp"]
    assert [a.key for a in report.disagreements(limit=1)] == ["missed"]


def test_no_detections_no_labels() -> None:
    report = compare([image("x", [(0, 0, 10, 10, 0)], [])], class_names=NAMES)
    assert math.isnan(report.precision) and report.recall == 0.0 and report.ap50 == 0.0
    empty = compare([], class_names=NAMES)
    assert empty.num_images == 0 and math.isnan(empty.precision) and math.isnan(empty.recall)
    assert math.isnan(empty.ap50)


box = st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(1, 25), st.integers(1, 25)).map(
    lambda b: (b[0], b[1], b[0] + b[2], b[1] + b[3])
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(st.tuples(box, st.integers(0, 1)), max_size=6), min_size=1, max_size=4),
    st.lists(st.lists(st.tuples(box, st.integers(0, 1), st.sampled_from([0.3, 0.5, 0.7, 0.9])), max_size=8), min_size=1, max_size=4),
)
def test_vectorised_matching_equals_the_plain_greedy_loop(labels_per_image, dets_per_image) -> None:  # noqa: ANN001
    n = min(len(labels_per_image), len(dets_per_image))
    images, expected_tp, expected_found = [], 0, 0
    for i in range(n):
        labels = [(*b, c) for b, c in labels_per_image[i]]
        dets = [(*b, c, s) for b, c, s in dets_per_image[i]]
        images.append(image(str(i), labels, dets))
        det_matched, label_matched = reference_match(dets, labels)
        expected_tp += sum(det_matched)
        expected_found += sum(label_matched)
    report = compare(images, class_names=NAMES, with_ap=False)
    assert report.true_positives == expected_tp
    assert report.num_labels - report.false_negatives == expected_found


def test_label_class_ids_marks_unknown_classes() -> None:
    ids, known = label_class_ids(["dog", "zebra", "cat"], NAMES)
    assert ids.tolist() == [1, -1, 0] and known.tolist() == [True, False, True]


def test_read_saved_labels_takes_only_labelled_images(tmp_path: Path) -> None:
    import cv2

    paths = []
    for i in range(3):
        path = tmp_path / f"im{i}.png"
        cv2.imwrite(str(path), np.zeros((20, 30, 3), np.uint8))
        paths.append(path)
    write_voc(ImageLabels(str(paths[0]), 30, 20, labels=[Label(1, 2, 10, 12, "cat")]), paths[0].with_suffix(".xml"))
    write_voc(ImageLabels(str(paths[2]), 30, 20, labels=[]), paths[2].with_suffix(".xml"))  # reviewed, empty
    seen = []
    items, errors = read_saved_labels(paths, "voc", progress=lambda d, t: seen.append((d, t)))
    assert [item.image_path for item in items] == [str(paths[0]), str(paths[2])]
    assert [lab.box for lab in items[0].labels] == [(1, 2, 10, 12)] and items[1].labels == []
    assert errors == [] and seen[-1] == (3, 3)
    with pytest.raises(ReadCancelled):
        read_saved_labels(paths, "voc", cancelled=lambda: True)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.3, 0.5, 0.7]), st.integers(1, 12), st.sampled_from([None, {0}, {1, 2}]))
def test_cutting_a_low_threshold_selection_equals_selecting_at_the_high_one(seed, iou, cap, classes) -> None:  # noqa: ANN001
    from model.postprocess import extract_candidates, select
    from model.quality import keep_above

    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 50, (40, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (40, 2))], axis=1).astype(np.float32)
    scores = rng.choice(np.linspace(0.05, 0.95, 10), (40, 3)).astype(np.float32)  # ties included
    candidates = extract_candidates(boxes, scores)
    low = select(candidates, score_thresh=0.0, iou_thresh=iou, max_per_class=cap, max_total=cap, class_ids=classes)
    for high in (0.1, 0.35, 0.6, 0.9):
        expected = select(candidates, score_thresh=high, iou_thresh=iou, max_per_class=cap, max_total=cap, class_ids=classes)
        cut = keep_above(low, high)
        assert cut.anchor_ids.tolist() == expected.anchor_ids.tolist()
        assert cut.class_ids.tolist() == expected.class_ids.tolist()


# --------------------------------------------------------------------------- the model's own labels
def with_own(im: ImageComparison, own: list[bool]) -> ImageComparison:
    """``im`` with ``own`` marking the labels that are the model's unedited detections."""
    return dataclasses.replace(im, label_is_model_output=np.array(own, bool))


def counts(report) -> tuple[int, ...]:  # noqa: ANN001
    return (report.num_images, report.num_labels, report.num_detections, report.true_positives, report.false_positives, report.false_negatives)


def test_an_image_of_only_the_models_own_labels_is_left_out() -> None:
    verified = image("verified", [(0, 0, 10, 10, 0)], [(0, 0, 10, 10, 0, 0.9), (50, 50, 60, 60, 1, 0.8)])
    accepted = image("accepted", [(0, 0, 10, 10, 0), (20, 0, 30, 10, 1)], [(0, 0, 10, 10, 0, 0.9), (20, 0, 30, 10, 1, 0.7)])
    alone = compare([verified], class_names=NAMES)
    report = compare([verified, with_own(accepted, [True, True])], class_names=NAMES)
    assert counts(report) == counts(alone) == (1, 1, 2, 1, 1, 0)
    assert report.ap50 == pytest.approx(alone.ap50)
    assert (report.left_out_images, report.left_out_labels) == (1, 2)
    assert (report.ignored_labels, report.ignored_detections) == (0, 0)
    assert [a.key for a in report.images] == ["verified"]
    # unmarked, the same labels count (and agree with the model perfectly)
    assert counts(compare([verified, accepted], class_names=NAMES, with_ap=False)) == (2, 3, 4, 3, 1, 0)


def test_in_a_mixed_image_the_models_own_labels_are_ignored_regions() -> None:
    # cat 0 own and found; dog 1 own and not found; cat 2 drawn and found; bird 3 drawn, missed
    labels = [(0, 0, 10, 10, 0), (20, 0, 30, 10, 1), (40, 0, 50, 10, 0), (60, 0, 70, 10, 2)]
    dets = [(0, 0, 10, 10, 0, 0.9), (40, 0, 50, 10, 0, 0.8), (80, 80, 90, 90, 1, 0.7)]
    report = compare([with_own(image("mixed", labels, dets), [True, True, False, False])], class_names=NAMES)
    # the detection on the own cat is neither matched nor false; the other two count
    assert counts(report) == (1, 2, 2, 1, 1, 1)
    assert (report.ignored_labels, report.ignored_detections, report.left_out_images) == (2, 1, 0)
    assert report.precision == 0.5 and report.recall == 0.5
    assert report.images[0].disagreement == 2
    expected = coco_evaluate(
        [np.array([labels[2][:4], labels[3][:4]], np.float32)],
        [np.array([0, 2])],
        [Prediction(np.array([dets[1][:4], dets[2][:4]], np.float32), np.array([0.8, 0.7], np.float32), np.array([0, 1]))],
        class_names=NAMES,
    )
    assert report.ap50 == pytest.approx(expected.ap50)


def test_a_detection_prefers_a_verified_label_to_an_own_one() -> None:
    # the own label overlaps the detection better, but the verified one is free: a match
    labels = [(0, 0, 10, 10, 0), (1, 0, 11, 10, 0)]
    report = compare([with_own(image("x", labels, [(0, 0, 10, 10, 0, 0.9)]), [True, False])], class_names=NAMES, with_ap=False)
    assert counts(report) == (1, 1, 1, 1, 0, 0) and report.ignored_detections == 0


def test_an_empty_label_file_counts_and_the_left_out_rule_ignores_the_class_filter() -> None:
    empty = image("empty", [], [(0, 0, 10, 10, 0, 0.9)])  # reviewed: no objects
    mixed = with_own(image("mixed", [(0, 0, 10, 10, 0), (20, 0, 30, 10, 1)], [(0, 0, 10, 10, 0, 0.9)]), [True, False])
    report = compare([empty, mixed], class_names=NAMES, class_ids={0}, with_ap=False)
    # the cats only: the empty image's detection is false, the own cat is ignored
    assert counts(report) == (2, 0, 1, 0, 1, 0)
    assert (report.left_out_images, report.ignored_labels, report.ignored_detections) == (0, 1, 1)


def test_is_model_output_compares_fingerprints_or_else_names() -> None:
    this = {"model_name": "model.onnx", "model_id": "sha256:aaaa"}
    assert is_model_output(UneditedAcceptance("model.onnx", "sha256:aaaa"), **this)
    assert not is_model_output(UneditedAcceptance("model.onnx", "sha256:bbbb"), **this)  # same name, other model
    assert is_model_output(UneditedAcceptance("renamed.onnx", "sha256:aaaa"), **this)  # same model, renamed
    assert is_model_output(UneditedAcceptance("model.onnx"), **this)  # an old record: the name decides
    assert not is_model_output(UneditedAcceptance("other.onnx"), **this)
    assert not is_model_output(None, **this)  # drawn, edited or no record


def test_is_same_model_compares_fingerprints_when_both_are_known() -> None:
    this = {"model_name": "model.onnx", "model_id": "sha256:aaaa"}
    assert is_same_model("model.onnx", "sha256:aaaa", **this)
    assert not is_same_model("model.onnx", "sha256:bbbb", **this)
    assert is_same_model("renamed.onnx", "sha256:aaaa", **this)
    assert is_same_model("model.onnx", "", **this) and not is_same_model("other.onnx", "", **this)
    assert is_same_model("model.onnx", "sha256:bbbb", model_name="model.onnx", model_id="")  # fingerprint unknown


# --------------------------------------------------------------------------- rejected detections
def with_rejected(im: ImageComparison, rejected: list[bool] | None, *, reviewed: bool = False) -> ImageComparison:
    """``im`` with ``rejected`` marking the detections the user rejected."""
    mask = None if rejected is None else np.array(rejected, bool)
    return dataclasses.replace(im, det_is_rejected=mask, reviewed=reviewed)


def test_an_image_with_a_rejection_counts_and_the_rejected_detection_is_false() -> None:
    # the user accepted the cat and the dog unedited and rejected a second, overlapping cat
    labels = [(0, 0, 10, 10, 0), (20, 0, 30, 10, 1)]
    dets = [(0, 0, 10, 10, 0, 0.9), (20, 0, 30, 10, 1, 0.8), (1, 0, 11, 10, 0, 0.7)]
    accepted = with_own(image("reviewed", labels, dets), [True, True])
    report = compare([accepted], class_names=NAMES)
    assert report.num_images == 0 and report.left_out_images == 1  # without the rejection: left out

    report = compare([with_rejected(accepted, [False, False, True])], class_names=NAMES)
    # the accepted labels stay ignored regions; the rejected cat is a false positive
    assert counts(report) == (1, 0, 1, 0, 1, 0)
    assert (report.left_out_images, report.reviewed_images, report.rejected_false_positives) == (0, 1, 1)
    assert (report.ignored_labels, report.ignored_detections) == (2, 2)
    assert report.precision == 0.0 and math.isnan(report.recall) and math.isnan(report.ap50)
    assert report.images[0].false_positives == 1


def test_a_rejected_detection_is_never_an_ignored_match_even_when_it_scores_higher() -> None:
    # the user rejected the higher-scoring of two cats on one accepted cat
    labels = [(0, 0, 10, 10, 0)]
    dets = [(1, 0, 11, 10, 0, 0.9), (0, 0, 10, 10, 0, 0.8)]
    im = with_rejected(with_own(image("x", labels, dets), [True]), [True, False])
    report = compare([im], class_names=NAMES, with_ap=False)
    assert counts(report) == (1, 0, 1, 0, 1, 0) and report.ignored_detections == 1


def test_a_rejected_detection_that_matches_a_verified_label_is_found() -> None:
    # rejected (a poor box, say), then the object drawn by hand: IoU >= 0.5 still matches
    im = with_rejected(image("x", [(0, 0, 10, 10, 0)], [(0, 0, 10, 12, 0, 0.9)]), [True])
    report = compare([im], class_names=NAMES, with_ap=False)
    assert counts(report) == (1, 1, 1, 1, 0, 0)
    assert (report.rejected_false_positives, report.reviewed_images) == (0, 0)  # it had a verified label


def test_a_rejection_no_longer_produced_still_marks_the_image_reviewed() -> None:
    # at these settings the rejected detection is gone; the user still reviewed the image
    accepted = with_own(image("x", [(0, 0, 10, 10, 0)], [(0, 0, 10, 10, 0, 0.9)]), [True])
    report = compare([with_rejected(accepted, None, reviewed=True)], class_names=NAMES, with_ap=False)
    assert counts(report) == (1, 0, 0, 0, 0, 0)
    assert (report.left_out_images, report.reviewed_images, report.ignored_labels, report.ignored_detections) == (0, 1, 1, 1)


def test_the_class_filter_applies_to_rejected_detections() -> None:
    labels = [(0, 0, 10, 10, 0)]
    dets = [(0, 0, 10, 10, 0, 0.9), (50, 50, 60, 60, 1, 0.8)]  # the dog was rejected
    im = with_rejected(with_own(image("x", labels, dets), [True]), [False, True])
    cats = compare([im], class_names=NAMES, class_ids={0}, with_ap=False)
    assert counts(cats) == (1, 0, 0, 0, 0, 0) and cats.rejected_false_positives == 0  # reviewed all the same
    dogs = compare([im], class_names=NAMES, class_ids={1}, with_ap=False)
    assert counts(dogs) == (1, 0, 1, 0, 1, 0) and dogs.rejected_false_positives == 1


def test_model_fingerprint_follows_the_contents_not_the_name(tmp_path: Path) -> None:
    a, b, c = (tmp_path / d / "model.onnx" for d in ("a", "b", "c"))
    for path, contents in ((a, b"weights one"), (b, b"weights two"), (c, b"weights one")):
        path.parent.mkdir()
        path.write_bytes(contents)
    assert model_fingerprint(a) == model_fingerprint(c) != model_fingerprint(b)
    assert model_fingerprint(a).startswith("sha256:") and len(model_fingerprint(a)) == len("sha256:") + 16
    before = model_fingerprint(a)
    a.write_bytes(b"weights three, retrained")  # rewritten in place: read again
    assert model_fingerprint(a) not in ("", before)
    assert model_fingerprint(tmp_path / "missing.onnx") == ""
