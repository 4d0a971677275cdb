"""Score filtering + class-aware NMS: exactly ``tf.image.combined_non_max_suppression``
(clip_boxes=False, pad_per_class=False), checked against TensorFlow itself on random inputs,
plus golden edge cases and properties. Boxes are xyxy pixels; TensorFlow gets y1, x1, y2, x2.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model import postprocess
from model.anchors import anchor_levels, anchor_offsets
from model.boxes import iou_matrix
from model.postprocess import CANDIDATE_FLOOR, Detections, batched_nms, combined_nms, extract_candidates, select


@pytest.fixture(scope="module")
def tf():
    """TensorFlow, imported once for this module (it takes seconds)."""
    return pytest.importorskip("tensorflow")


def tf_combined_nms(tf, boxes: np.ndarray, scores: np.ndarray, **kw: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TensorFlow's answer for one image: boxes (K, 4) xyxy, scores (K,), class ids (K,)."""
    out = tf.image.combined_non_max_suppression(
        boxes[None, :, None, [1, 0, 3, 2]],
        scores[None],
        max_output_size_per_class=kw["max_per_class"],
        max_total_size=kw["max_total"],
        iou_threshold=kw["iou_thresh"],
        score_threshold=kw["score_thresh"],
        pad_per_class=False,
        clip_boxes=False,
    )
    n = int(out.valid_detections[0])
    return out.nmsed_boxes[0, :n].numpy()[:, [1, 0, 3, 2]], out.nmsed_scores[0, :n].numpy(), out.nmsed_classes[0, :n].numpy()


@st.composite
def nms_inputs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """boxes (A, 4) xyxy on a half-pixel grid in [-20, 60] (so IoUs often hit thresholds
    exactly; degenerate and flipped corners included), scores (A, C) all distinct."""
    num_anchors = draw(st.integers(1, 24))
    num_classes = draw(st.integers(1, 4))
    coord = st.integers(-40, 120).map(lambda v: v / 2)
    boxes = np.array(draw(st.lists(st.tuples(coord, coord, coord, coord), min_size=num_anchors, max_size=num_anchors)), np.float32)
    flat = draw(st.lists(st.integers(1, 1000), min_size=num_anchors * num_classes, max_size=num_anchors * num_classes, unique=True))
    scores = (np.array(flat, np.float32) / 1000).reshape(num_anchors, num_classes)
    return boxes, scores


NMS_SETTINGS = {
    # thresholds that coincide with scores (k / 1000) and with grid IoUs (0.5, 0.25...)
    "score_thresh": st.one_of(st.integers(0, 1000).map(lambda v: v / 1000), st.floats(0, 1)),
    "iou_thresh": st.one_of(st.sampled_from([0.0, 0.2, 0.25, 0.3, 1 / 3, 0.4, 0.5, 0.6, 2 / 3, 0.75, 1.0]), st.floats(0, 1)),
    "max_per_class": st.integers(1, 8),
    "max_total": st.integers(1, 16),
}


@settings(max_examples=200, deadline=None)
@given(inputs=nms_inputs(), slack=st.sampled_from([0, postprocess.NMS_PAD_SLACK]), **NMS_SETTINGS)
def test_combined_nms_and_select_equal_tensorflow(
    tf, inputs: tuple[np.ndarray, np.ndarray], slack: int, score_thresh: float, iou_thresh: float, max_per_class: int, max_total: int
) -> None:
    """``slack``: 0 splits the classes over several kernel calls, the default takes them in one."""
    boxes, scores = inputs
    kw = {"score_thresh": score_thresh, "iou_thresh": iou_thresh, "max_per_class": max_per_class, "max_total": max_total}
    tf_boxes, tf_scores, tf_classes = tf_combined_nms(tf, boxes, scores, **kw)
    cached = extract_candidates(boxes, scores, floor=0.0, topk_per_level=None)
    with mock.patch.object(postprocess, "NMS_PAD_SLACK", slack):
        results = (combined_nms(boxes, scores, **kw), select(cached, **kw))
    for ours in results:
        np.testing.assert_array_equal(ours.scores, tf_scores)
        np.testing.assert_array_equal(ours.class_ids, tf_classes.astype(np.int64))
        np.testing.assert_array_equal(ours.boxes, tf_boxes)
        np.testing.assert_array_equal(ours.boxes, boxes[ours.anchor_ids])


# --- golden cases: the exact comparisons ---------------------------------------------


def test_score_equal_to_threshold_is_dropped() -> None:
    boxes = np.array([[0, 0, 1, 1], [5, 5, 6, 6]], np.float32)
    scores = np.array([[0.5], [0.6]], np.float32)
    dets = combined_nms(boxes, scores, score_thresh=0.5, iou_thresh=0.5)
    np.testing.assert_array_equal(dets.scores, np.float32([0.6]))


def test_iou_equal_to_threshold_keeps_both_and_above_suppresses() -> None:
    boxes = np.array([[0, 0, 2, 1], [0, 0, 1, 1]], np.float32)  # IoU exactly 0.5
    scores = np.array([[0.9], [0.8]], np.float32)
    assert len(combined_nms(boxes, scores, score_thresh=0.0, iou_thresh=0.5)) == 2
    assert len(combined_nms(boxes, scores, score_thresh=0.0, iou_thresh=0.49)) == 1


def test_zero_area_boxes_never_suppress() -> None:
    boxes = np.array([[3, 3, 3, 3], [3, 3, 3, 3], [0, 0, 5, 0]], np.float32)
    scores = np.array([[0.9], [0.8], [0.7]], np.float32)
    assert len(combined_nms(boxes, scores, score_thresh=0.0, iou_thresh=0.0)) == 3


def test_classes_never_suppress_each_other_even_with_negative_coordinates() -> None:
    boxes = np.array([[0, 0, 10, 10], [-11, -11, -1, -1], [-11, -11, -1, -1]], np.float32)
    scores = np.array([[0.9, 0.0], [0.0, 0.8], [0.7, 0.0]], np.float32)
    dets = combined_nms(boxes, scores, score_thresh=0.1, iou_thresh=0.5)
    np.testing.assert_array_equal(dets.class_ids, [0, 1, 0])
    np.testing.assert_array_equal(dets.anchor_ids, [0, 1, 2])


def test_suppressed_boxes_do_not_suppress_others() -> None:
    # a chain: 0 suppresses 1, 1 would suppress 2, but 1 is gone so 2 stays (greedy NMS)
    boxes = np.array([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]], np.float32)
    scores = np.array([[0.9], [0.8], [0.7]], np.float32)
    np.testing.assert_array_equal(combined_nms(boxes, scores, score_thresh=0.0, iou_thresh=0.3).anchor_ids, [0, 2])


def test_max_per_class_and_max_total() -> None:
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(6)], np.float32)  # disjoint
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.05, 0.6], [0.04, 0.5], [0.03, 0.4]], np.float32)
    dets = combined_nms(boxes, scores, score_thresh=0.0, iou_thresh=0.5, max_per_class=2, max_total=3)
    np.testing.assert_allclose(dets.scores, [0.9, 0.8, 0.6])
    np.testing.assert_array_equal(dets.class_ids, [0, 0, 1])
    assert len(combined_nms(boxes, scores, score_thresh=0.0, iou_thresh=0.5, max_per_class=0)) == 0


def test_empty_inputs() -> None:
    dets = combined_nms(np.zeros((0, 4), np.float32), np.zeros((0, 3), np.float32), score_thresh=0.1, iou_thresh=0.5)
    assert len(dets) == 0 and dets.boxes.shape == (0, 4)
    assert batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0), iou_thresh=0.5, max_per_class=5, max_total=5).shape == (0,)
    with pytest.raises(ValueError, match="boxes"):
        extract_candidates(np.zeros((3, 4)), np.zeros((4, 2)))


# --- cached candidates ------------------------------------------------------------------


def random_outputs(seed: int, *, shapes: list[tuple[int, int]], anchors_per_cell: int = 3, num_classes: int = 4):
    """Decoded boxes (A, 4) xyxy, scores (A, C) and the level offsets of a small pyramid."""
    rng = np.random.default_rng(seed)
    offsets = anchor_offsets(shapes, anchors_per_cell)
    num_anchors = int(offsets[-1])
    centres = rng.uniform(0, 200, (num_anchors, 2))
    sides = rng.uniform(5, 60, (num_anchors, 2))
    boxes = np.concatenate([centres - sides / 2, centres + sides / 2], axis=1).astype(np.float32)
    scores = rng.uniform(0, 1, (num_anchors, num_classes)).astype(np.float32) ** 3
    return boxes, scores, offsets


def test_candidates_are_sorted_above_the_floor_with_levels() -> None:
    boxes, scores, offsets = random_outputs(0, shapes=[(8, 8), (4, 4), (2, 2)])
    cands = extract_candidates(boxes, scores, anchor_offsets=offsets)
    assert len(cands) == int((scores > CANDIDATE_FLOOR).sum())  # fewer than 1000 per level
    assert np.all(np.diff(cands.scores) <= 0) and np.all(cands.scores > CANDIDATE_FLOOR)
    np.testing.assert_array_equal(cands.scores, scores[cands.anchor_ids, cands.class_ids])
    np.testing.assert_array_equal(cands.boxes, boxes[cands.anchor_ids])
    np.testing.assert_array_equal(cands.level_ids, anchor_levels(offsets, cands.anchor_ids))


def test_topk_per_level_keeps_the_best_of_every_level() -> None:
    boxes, scores, offsets = random_outputs(1, shapes=[(8, 8), (4, 4), (2, 2)])
    cands = extract_candidates(boxes, scores, anchor_offsets=offsets, topk_per_level=10)
    levels = anchor_levels(offsets, np.arange(len(boxes)))
    for level in range(3):
        in_level = scores[levels == level]
        expected = np.sort(in_level[in_level > CANDIDATE_FLOOR])[::-1][:10]
        np.testing.assert_array_equal(cands.scores[cands.level_ids == level], expected)


def test_select_carries_anchor_ids_and_levels_and_filters_classes() -> None:
    boxes, scores, offsets = random_outputs(2, shapes=[(8, 8), (4, 4), (2, 2)])
    cands = extract_candidates(boxes, scores, anchor_offsets=offsets)
    dets = select(cands, score_thresh=0.2, iou_thresh=0.5, max_per_class=50, max_total=80)
    assert isinstance(dets, Detections) and len(dets) > 3
    assert {int(level) for level in dets.level_ids} == {0, 1, 2}
    np.testing.assert_array_equal(dets.boxes, boxes[dets.anchor_ids])
    np.testing.assert_array_equal(dets.scores, scores[dets.anchor_ids, dets.class_ids])
    np.testing.assert_array_equal(dets.level_ids, anchor_levels(offsets, dets.anchor_ids))
    every = select(cands, score_thresh=0.2, iou_thresh=0.5, max_per_class=1000, max_total=1000)
    only = select(cands, score_thresh=0.2, iou_thresh=0.5, max_per_class=1000, max_total=1000, class_ids={1, 3})
    assert len(only) > 0 and set(only.class_ids.tolist()) <= {1, 3}
    keep = np.isin(every.class_ids, [1, 3])
    np.testing.assert_array_equal(only.anchor_ids, every.anchor_ids[keep])  # classes never interact
    assert len(select(cands, score_thresh=0.2, iou_thresh=0.5, class_ids=set())) == 0


def test_select_below_the_floor_acts_as_the_floor() -> None:
    boxes, scores, offsets = random_outputs(3, shapes=[(4, 4)])
    cands = extract_candidates(boxes, scores, floor=0.3)
    low = select(cands, score_thresh=0.0, iou_thresh=0.5)
    at_floor = select(cands, score_thresh=0.3, iou_thresh=0.5)
    np.testing.assert_array_equal(low.anchor_ids, at_floor.anchor_ids)
    assert np.all(low.scores > 0.3)


# --- properties -------------------------------------------------------------------------


@st.composite
def valid_nms_inputs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """boxes (A, 4) xyxy with x2 >= x1, y2 >= y1 (float), scores (A, C) in [0, 1)."""
    seed = draw(st.integers(0, 2**32 - 1))
    num_anchors = draw(st.integers(1, 60))
    num_classes = draw(st.integers(1, 3))
    rng = np.random.default_rng(seed)
    corners = rng.uniform(0, 100, (num_anchors, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(0, 40, (num_anchors, 2))], axis=1).astype(np.float32)
    return boxes, rng.uniform(0, 1, (num_anchors, num_classes)).astype(np.float32)


@settings(max_examples=150, deadline=None)
@given(inputs=valid_nms_inputs(), iou_thresh=st.floats(0, 1), max_per_class=st.integers(1, 20), max_total=st.integers(1, 40))
def test_nms_output_is_a_subset_without_overlapping_same_class_pairs(
    inputs: tuple[np.ndarray, np.ndarray], iou_thresh: float, max_per_class: int, max_total: int
) -> None:
    boxes, scores = inputs
    dets = combined_nms(boxes, scores, score_thresh=0.1, iou_thresh=iou_thresh, max_per_class=max_per_class, max_total=max_total)
    assert len(dets) <= max_total
    assert len(set(zip(dets.anchor_ids.tolist(), dets.class_ids.tolist()))) == len(dets)  # no duplicates
    np.testing.assert_array_equal(dets.boxes, boxes[dets.anchor_ids])  # a subset of the input
    np.testing.assert_array_equal(dets.scores, scores[dets.anchor_ids, dets.class_ids])
    assert np.all(dets.scores > np.float32(0.1)) and np.all(np.diff(dets.scores) <= 0)
    for class_id in np.unique(dets.class_ids):
        same = dets.class_ids == class_id
        assert same.sum() <= max_per_class
        iou = iou_matrix(dets.boxes[same], dets.boxes[same])
        np.fill_diagonal(iou, 0.0)
        assert np.all(iou <= np.float32(iou_thresh) + 1e-6)


@settings(max_examples=150, deadline=None)
@given(
    inputs=valid_nms_inputs(),
    thresholds=st.tuples(st.floats(0.05, 1), st.floats(0.05, 1)).map(sorted),
    iou_thresh=st.floats(0, 1),
    max_total=st.integers(1, 40),
)
def test_raising_score_thresh_only_removes_detections(
    inputs: tuple[np.ndarray, np.ndarray], thresholds: list[float], iou_thresh: float, max_total: int
) -> None:
    boxes, scores = inputs
    low_thresh, high_thresh = thresholds
    cands = extract_candidates(boxes, scores, topk_per_level=None)
    low = select(cands, score_thresh=low_thresh, iou_thresh=iou_thresh, max_per_class=10, max_total=max_total)
    high = select(cands, score_thresh=high_thresh, iou_thresh=iou_thresh, max_per_class=10, max_total=max_total)
    assert len(high) <= len(low)
    # greedy NMS decides a box from higher-scoring boxes only: the survivors are unchanged
    still = low.scores > np.float32(high_thresh)
    np.testing.assert_array_equal(high.anchor_ids, low.anchor_ids[still])
    np.testing.assert_array_equal(high.class_ids, low.class_ids[still])


def clustered_candidates(seed: int, *, num_objects: int = 12, per_object: int = 250, background: int = 800):
    """Thousands of candidates as a busy image gives them: jittered boxes around a dozen
    objects of a few classes, plus scattered background boxes, scores all distinct."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 640, (num_objects, 2))
    sides = rng.uniform(20, 300, (num_objects, 2))
    classes = rng.choice([0, 7, 14, 21], num_objects)
    boxes, class_ids = [], []
    for centre, side, class_id in zip(centres, sides, classes):
        jitter = rng.normal(0, 0.15, (per_object, 4)) * np.tile(side, 2)
        boxes.append(np.concatenate([centre - side / 2, centre + side / 2]) + jitter)
        class_ids.append(np.full(per_object, class_id))
    corners = rng.uniform(0, 600, (background, 2))
    boxes.append(np.concatenate([corners, corners + rng.uniform(4, 80, (background, 2))], axis=1))
    class_ids.append(rng.integers(0, 80, background))
    boxes_all = np.concatenate(boxes).astype(np.float32)
    scores = rng.permutation(np.linspace(0.051, 0.99, len(boxes_all))).astype(np.float32)
    return boxes_all, scores, np.concatenate(class_ids).astype(np.int64)


def greedy_reference(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, *, iou_thresh: float, max_per_class: int, max_total: int) -> np.ndarray:
    """Greedy NMS written out plainly: boxes in score order (ties: lower index first), each
    kept unless a kept box of its class overlaps it by IoU > iou_thresh, TensorFlow's float32
    IoU (min/max-normalised corners, zero-area boxes overlap nothing)."""
    x1, x2 = np.minimum(boxes[:, 0], boxes[:, 2]), np.maximum(boxes[:, 0], boxes[:, 2])
    y1, y2 = np.minimum(boxes[:, 1], boxes[:, 3]), np.maximum(boxes[:, 1], boxes[:, 3])
    area = (y2 - y1) * (x2 - x1)
    kept: list[int] = []
    per_class: dict[int, list[int]] = {}
    for i in np.argsort(-scores, kind="stable"):
        mine = np.array(per_class.setdefault(int(class_ids[i]), []), np.int64)
        if len(mine) >= max_per_class:
            continue
        inter_h = np.maximum(np.minimum(y2[mine], y2[i]) - np.maximum(y1[mine], y1[i]), np.float32(0))
        inter_w = np.maximum(np.minimum(x2[mine], x2[i]) - np.maximum(x1[mine], x1[i]), np.float32(0))
        inter = inter_h * inter_w
        valid = (area[mine] > 0) & (area[i] > 0)
        iou = np.zeros(len(mine), np.float32)
        np.divide(inter, area[mine] + area[i] - inter, out=iou, where=valid)
        if not (iou > np.float32(iou_thresh)).any():
            per_class[int(class_ids[i])].append(int(i))
            kept.append(int(i))
    return np.array(kept[:max_total], np.int64)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("iou_thresh", "max_per_class", "max_total"), [(0.5, 100, 100), (0.3, 5, 300), (0.7, 100, 1000), (0.0, 3, 50)])
def test_batched_nms_keeps_what_plain_greedy_keeps(seed: int, iou_thresh: float, max_per_class: int, max_total: int) -> None:
    """On thousands of clustered candidates: the kernel calls give the plain greedy loop's
    answer, index for index, whether the classes go in one call or are split over several."""
    boxes, scores, class_ids = clustered_candidates(seed)
    kw = {"iou_thresh": iou_thresh, "max_per_class": max_per_class, "max_total": max_total}
    expected = greedy_reference(boxes, scores, class_ids, **kw)
    counts = np.bincount(class_ids)[np.unique(class_ids)]
    assert 0 < len(expected) <= max_total
    for slack, calls in ((10**9, 1), (postprocess.NMS_PAD_SLACK, None), (0, 2)):
        with mock.patch.object(postprocess, "NMS_PAD_SLACK", slack):
            assert calls is None or len(postprocess._slot_groups(counts)) >= calls
            np.testing.assert_array_equal(batched_nms(boxes, scores, class_ids, **kw), expected)


def test_slot_groups_bound_the_padding() -> None:
    """One class of 5,000 boxes and 80 of 10: the small classes are not padded to 5,000."""
    counts = np.array([10] * 40 + [5000] + [10] * 40)
    groups = postprocess._slot_groups(counts)
    assert sorted(np.concatenate(groups).tolist()) == list(range(81))
    padded = sum(len(g) * counts[g].max() for g in groups)
    assert padded <= 2 * counts.sum() + len(groups) * postprocess.NMS_PAD_SLACK
    assert len(groups) == 2 and groups[0][0] == 40 and counts[groups[1]].max() == 10


def test_equal_scores_keep_the_lower_index() -> None:
    """Three identical boxes with one score in a class, the middle one of another class:
    each class keeps its lowest index, whatever order the kernel would visit ties in."""
    boxes = np.tile(np.float32([[0, 0, 10, 10]]), (5, 1))
    scores = np.full(5, 0.5, np.float32)
    class_ids = np.array([1, 0, 1, 0, 1])
    np.testing.assert_array_equal(batched_nms(boxes, scores, class_ids, iou_thresh=0.5, max_per_class=10, max_total=10), [0, 1])
    np.testing.assert_array_equal(batched_nms(boxes[::-1], scores, class_ids[::-1], iou_thresh=0.5, max_per_class=10, max_total=10), [0, 1])


def test_thresholds_outside_the_unit_interval() -> None:
    """IoU never exceeds 1, so thresholds >= 1 suppress nothing; below 0 every box of a class
    but its best is suppressed (0 > -0.1), zero-area boxes included. NaN and -inf scores are
    never kept."""
    boxes = np.float32([[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60], [3, 3, 3, 3], [0, 0, 1, 1]])
    scores = np.float32([0.9, 0.8, 0.7, 0.6, 0.5])
    class_ids = np.array([0, 0, 0, 0, 1])
    kw = {"max_per_class": 10, "max_total": 10}
    np.testing.assert_array_equal(batched_nms(boxes, scores, class_ids, iou_thresh=1.5, **kw), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(batched_nms(boxes, scores, class_ids, iou_thresh=-0.1, **kw), [0, 4])
    bad = np.float32([np.nan, 0.8, -np.inf, 0.6, 0.5])
    np.testing.assert_array_equal(batched_nms(boxes, bad, class_ids, iou_thresh=0.5, **kw), [1, 3, 4])
