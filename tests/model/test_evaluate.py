"""COCO evaluation through pycocotools: the AP50-only fast path equals the full evaluation;
the ground truth of labelled images (ground_truth) and its rule for degenerate boxes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model.evaluate import Prediction, coco_evaluate, ground_truth
from model.labels import ImageLabels, Label


def _case(seed: int) -> tuple[list, list, list]:
    rng = np.random.default_rng(seed)
    gts, gcs, preds = [], [], []
    for _ in range(30):
        xy = rng.uniform(0, 400, (6, 2))
        boxes = np.c_[xy, xy + rng.uniform(10, 80, (6, 2))].astype(np.float32)
        classes = rng.integers(0, 4, 6)
        found = boxes + rng.normal(0, 5, boxes.shape).astype(np.float32)  # near misses and hits
        spurious = np.c_[rng.uniform(0, 400, (3, 2)), rng.uniform(0, 400, (3, 2)) + 60].astype(np.float32)
        pred_classes = np.r_[np.where(rng.random(6) < 0.8, classes, (classes + 1) % 4), rng.integers(0, 4, 3)]
        preds.append(Prediction(np.r_[found, spurious], rng.uniform(0, 1, 9).astype(np.float32), pred_classes))
        gts.append(boxes)
        gcs.append(classes)
    return gts, gcs, preds


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ap50_only_equals_the_full_evaluation(seed: int) -> None:
    gts, gcs, preds = _case(seed)
    names = ["a", "b", "c", "d"]
    full = coco_evaluate(gts, gcs, preds, class_names=names, image_sizes=[(500, 500)] * len(gts))
    fast = coco_evaluate(gts, gcs, preds, class_names=names, image_sizes=[(500, 500)] * len(gts), ap50_only=True)
    assert 0.0 < full.ap50 < 1.0
    assert fast.ap50 == pytest.approx(full.ap50, abs=1e-12)
    assert fast.per_class_ap50 == pytest.approx(full.per_class_ap50, abs=1e-12)
    assert math.isnan(fast.ap) and math.isnan(fast.ap75)


def test_perfect_detections_score_ap50_one() -> None:
    boxes = np.array([[10, 10, 50, 60], [100, 100, 180, 150]], np.float32)
    classes = np.array([0, 1])
    pred = Prediction(boxes, np.array([0.9, 0.8], np.float32), classes)
    for ap50_only in (False, True):
        result = coco_evaluate([boxes], [classes], [pred], class_names=["a", "b", "c"], ap50_only=ap50_only)
        assert result.ap50 == pytest.approx(1.0)
        assert result.per_class_ap50["a"] == pytest.approx(1.0) and math.isnan(result.per_class_ap50["c"])


# --------------------------------------------------------------------------- ground truth
def _item(labels: list, width: int = 200, height: int = 100) -> ImageLabels:
    return ImageLabels(image_path="scene.png", width=width, height=height, labels=[Label(*box, name) for *box, name in labels])


def test_ground_truth_keeps_known_classes_in_label_order() -> None:
    item = _item([(10, 20, 50, 60, "b"), (0, 0, 5, 5, "zebra"), (30, 10, 90, 40, "a")])
    boxes, class_ids = ground_truth(item, class_names=["a", "b"])
    np.testing.assert_array_equal(boxes, np.array([[10, 20, 50, 60], [30, 10, 90, 40]], np.float32))
    np.testing.assert_array_equal(class_ids, np.array([1, 0]))
    assert boxes.dtype == np.float32 and class_ids.dtype == np.int64


def test_ground_truth_drops_degenerate_boxes_and_clips_the_rest_to_the_image() -> None:
    item = _item(
        [
            (10, 20, 10, 60, "a"),  # zero width
            (10, 20, 50, 20, "a"),  # zero height
            (250, 10, 300, 50, "a"),  # right of the 200 x 100 image
            (-40, -30, -10, -5, "a"),  # above-left of it
            (-40, 10, 0, 50, "a"),  # touches the left edge from outside: no area inside
            (150, 60, 230, 120, "a"),  # reaches past the bottom-right corner: clipped
            (20, 30, 60, 70, "a"),  # inside: unchanged
        ]
    )
    boxes, class_ids = ground_truth(item, class_names=["a"])
    np.testing.assert_array_equal(boxes, np.array([[150, 60, 200, 100], [20, 30, 60, 70]], np.float32))
    np.testing.assert_array_equal(class_ids, np.array([0, 0]))


def test_ground_truth_without_an_image_size_only_drops_zero_size_boxes() -> None:
    item = _item([(10, 20, 10, 60, "a"), (250, 10, 300, 50, "a")], width=0, height=0)
    boxes, _ = ground_truth(item, class_names=["a"])
    np.testing.assert_array_equal(boxes, np.array([[250, 10, 300, 50]], np.float32))


def test_ground_truth_of_an_image_without_labels_is_empty() -> None:
    boxes, class_ids = ground_truth(_item([]), class_names=["a"])
    assert boxes.shape == (0, 4) and class_ids.shape == (0,)


def test_a_zero_area_ground_truth_box_can_never_be_matched() -> None:
    # Why ground_truth drops them: even a detection on exactly the same box is no match.
    box = np.array([[10, 20, 10, 60]], np.float32)
    pred = Prediction(box, np.array([0.9], np.float32), np.array([0]))
    result = coco_evaluate([box], [np.array([0])], [pred], class_names=["a"], image_sizes=[(200, 100)])
    assert result.ap50 == 0.0
