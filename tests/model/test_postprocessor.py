"""The one post-processor (model.postprocess.PostProcessor): the same detections as
``select`` for the same thresholds (property test on random candidates), immutable settings
with ``with_``, clear errors for bad settings, and ``detect``, ``evaluate`` and training
validation all post-process through it. Boxes are xyxy pixels."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.detect import detect_images
from model.evaluate import evaluate_detector
from model.imageio import load_image
from model.labels import load_dataset, save_dataset
from model.labels.annotation import ImageLabels, Label
from model.letterbox import boxes_to_original
from model.postprocess import CANDIDATE_FLOOR, EVALUATION, Candidates, Detections, PostProcessor, extract_candidates, select
from model.runtime import Detector
from tests.model.onnx_fakes import red_square_image
from tests.model.test_postprocess import NMS_SETTINGS, nms_inputs


def assert_same(a: Detections, b: Detections) -> None:
    for field in ("boxes", "scores", "class_ids", "anchor_ids", "level_ids"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


@st.composite
def candidates(draw: st.DrawFn) -> Candidates:
    """Random candidates: random boxes and scores, split over up to three pyramid levels."""
    boxes, scores = draw(nms_inputs())
    cuts = sorted(draw(st.lists(st.integers(0, boxes.shape[0]), max_size=2)))
    offsets = np.array([0, *cuts, boxes.shape[0]], np.int64)
    floor = draw(st.sampled_from([0.0, CANDIDATE_FLOOR]))
    return extract_candidates(boxes, scores, anchor_offsets=offsets, floor=floor, topk_per_level=draw(st.sampled_from([None, 3])))


@settings(max_examples=300, deadline=None)
@given(cands=candidates(), data=st.data(), **NMS_SETTINGS)
def test_the_post_processor_gives_what_select_gives(
    cands: Candidates, data: st.DataObject, score_thresh: float, iou_thresh: float, max_per_class: int, max_total: int
) -> None:
    classes = data.draw(st.one_of(st.none(), st.frozensets(st.integers(0, 4), max_size=4)))
    post_processor = PostProcessor(
        score_thresh=score_thresh, iou_thresh=iou_thresh, max_per_class=max_per_class, max_total=max_total, class_ids=classes
    )
    expected = select(
        cands, score_thresh=score_thresh, iou_thresh=iou_thresh, max_per_class=max_per_class, max_total=max_total, class_ids=classes
    )
    assert_same(post_processor(cands), expected)
    # a copy with changed settings is a post-processor of those settings; the original is unchanged
    looser = post_processor.with_(iou_thresh=1.0, max_detections=50)
    assert_same(looser(cands), select(cands, score_thresh=score_thresh, iou_thresh=1.0, max_per_class=50, max_total=50, class_ids=classes))
    assert_same(post_processor(cands), expected)


def test_settings_are_immutable_values() -> None:
    post_processor = PostProcessor()
    assert (post_processor.score_thresh, post_processor.iou_thresh, post_processor.max_per_class, post_processor.max_total) == (0.3, 0.5, 100, 100)
    assert post_processor.class_ids is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        post_processor.score_thresh = 0.9  # type: ignore[misc]
    changed = post_processor.with_(score_thresh=0.7)
    assert changed.score_thresh == 0.7 and post_processor.score_thresh == 0.3
    assert changed == PostProcessor(score_thresh=0.7) and hash(changed) == hash(PostProcessor(score_thresh=0.7))  # a cache key
    both = post_processor.with_(max_detections=7)
    assert (both.max_per_class, both.max_total, both.max_detections) == (7, 7, 7)
    assert PostProcessor.with_max_detections(9, iou_thresh=0.4) == PostProcessor(iou_thresh=0.4, max_per_class=9, max_total=9)
    assert PostProcessor(class_ids={2, 0}).class_ids == frozenset({0, 2})  # any collection: kept as a frozenset


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"score_thresh": float("nan")}, "score_thresh must be a number"),
        ({"iou_thresh": "0.5"}, "iou_thresh must be a number"),
        ({"max_total": -1}, "max_total must be a whole number >= 0"),
        ({"max_per_class": 2.5}, "max_per_class must be a whole number >= 0"),
        ({"max_per_class": True}, "max_per_class must be a whole number >= 0"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PostProcessor(**changes)
    with pytest.raises(ValueError, match=message):
        PostProcessor().with_(**changes)


# ----------------------------------------------------------------- consumers use it
SHAPES = [(200, 300), (300, 120), (256, 256)]


def _images(folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for i, (h, w) in enumerate(SHAPES):
        path = folder / f"img_{i}.png"
        cv2.imwrite(str(path), red_square_image(width=w, height=h, box=(w // 6, h // 6, w // 2, h // 2), color=i % 2)[..., ::-1])
        paths.append(path)
    return paths


def test_detect_writes_the_post_processors_detections(cpu_detector: Detector, tmp_path: Path) -> None:
    paths = _images(tmp_path / "images")
    outputs = [cpu_detector.run(load_image(path), size=256) for path in paths]
    strict = PostProcessor(score_thresh=0.3, iou_thresh=0.5, max_per_class=20, max_total=20)
    loose = strict.with_(score_thresh=0.0, iou_thresh=0.9, max_detections=60)
    counts = {}
    for name, post_processor in (("strict", strict), ("loose", loose)):
        summary = detect_images(paths, cpu_detector, out_dir=tmp_path / name, fmt="json", nms=post_processor, size=256, batch=2)
        assert not summary.errors
        counts[name] = summary.detections
        assert summary.detections == sum(len(post_processor(output.candidates)) for output in outputs)
    assert counts["loose"] > counts["strict"]  # the settings are the post-processor's: changing it changes detect


def test_evaluate_measures_the_post_processors_detections(cpu_detector: Detector, tmp_path: Path) -> None:
    paths = _images(tmp_path / "images")
    items = [
        ImageLabels(image_path=str(path), width=w, height=h, labels=[Label(w // 6, h // 6, w // 2, h // 2, ("red", "green")[i % 2])])
        for i, (path, (h, w)) in enumerate(zip(paths, SHAPES))
    ]
    save_dataset(items, tmp_path / "images", "voc", class_names=["red", "green"])
    labelled = load_dataset(tmp_path / "images", "voc").items
    default = evaluate_detector(cpu_detector, labelled, size=256)
    assert default == evaluate_detector(cpu_detector, labelled, size=256, post_processor=EVALUATION)
    assert default.ap50 > 0
    only_red = evaluate_detector(cpu_detector, labelled, size=256, post_processor=EVALUATION.with_(class_ids=frozenset({0})))
    assert only_red.per_class_ap50["green"] == 0.0 and only_red.per_class_ap50["red"] == default.per_class_ap50["red"]
    nothing = evaluate_detector(cpu_detector, labelled, size=256, post_processor=EVALUATION.with_(class_ids=frozenset()))
    assert nothing.ap50 == 0.0


class _Tensor:
    """The bit of a TensorFlow eager tensor predict_tf uses: indexing and ``numpy()``."""

    def __init__(self, array: np.ndarray) -> None:
        self._array = array

    def __getitem__(self, index: int) -> _Tensor:
        return _Tensor(self._array[index])

    def numpy(self) -> np.ndarray:
        return self._array


def test_training_validation_post_processes_with_it() -> None:
    from model.tf.train import predict_tf

    rng = np.random.default_rng(0)
    size, num_anchors = 128, 200
    corners = rng.uniform(0, 100, (num_anchors, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(4, 28, (num_anchors, 2))], axis=1).astype(np.float32)
    scores = rng.uniform(0, 1, (num_anchors, 3)).astype(np.float32)

    def detect(batch: np.ndarray) -> tuple[_Tensor, _Tensor]:
        assert batch.shape == (1, size, size, 3)
        return _Tensor(boxes[None]), _Tensor(scores[None])

    image = np.zeros((size, size, 3), np.uint8)  # letterboxed to itself: boxes are only clipped to it
    default = predict_tf(detect, image, size=size)
    assert len(default.scores) == 100 and np.all(default.scores > np.float32(CANDIDATE_FLOOR))  # EVALUATION: top 100 above the floor
    in_image = boxes_to_original(boxes, image_hw=(size, size), size=size)
    expected = EVALUATION(extract_candidates(in_image, scores, floor=EVALUATION.score_thresh))
    np.testing.assert_array_equal(default.scores, expected.scores)
    np.testing.assert_array_equal(default.class_ids, expected.class_ids)
    strict = predict_tf(detect, image, size=size, post_processor=EVALUATION.with_(score_thresh=0.8, class_ids=frozenset({1}), max_detections=5))
    assert 0 < len(strict.scores) <= 5 and set(strict.class_ids.tolist()) == {1} and np.all(strict.scores > np.float32(0.8))
