"""Detector.run through onnxruntime's IOBinding (opt-in; it works on CPU too) and with
``features=False`` (no pyramid, level shapes from the strides; a v2 model then fetches only
its candidates): both give exactly what the plain path gives. The bundled demo model checks
the level-shape rule on a real network."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from model.anchors import level_shapes
from model.providers import CPU
from model.runtime import Detector, NetworkOutput
from tests.model.onnx_fakes import red_square_image

DEMO_MODEL = Path(__file__).resolve().parents[2] / "resources" / "demo_model.onnx"

# (image height, width), inference size: landscape, portrait, upscaled, a thin strip
IMAGES_AND_SIZES = [((200, 300), 256), ((400, 150), 300), ((30, 50), 200), ((60, 700), 448)]


@pytest.fixture(scope="module")
def bound_detector(contract_model: Path) -> Detector:
    return Detector.load(contract_model, providers=["cpu"], io_binding=True)


@pytest.fixture(scope="module")
def demo_detector() -> Detector:
    return Detector.load(DEMO_MODEL, providers=["cpu"])


def _image(image_hw: tuple[int, int], color: int = 0) -> np.ndarray:
    height, width = image_hw
    return red_square_image(width=width, height=height, box=(width // 5, height // 5, width // 2, height // 2), color=color)


def _assert_same_detections(a: NetworkOutput, b: NetworkOutput) -> None:
    if a.scores is not None and b.scores is not None:  # dense outputs, when both fetched them
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.scores, b.scores)
    assert a.level_shapes == b.level_shapes
    np.testing.assert_array_equal(a.anchor_offsets, b.anchor_offsets)
    assert (a.input_hw, a.image_hw, a.scale) == (b.input_hw, b.image_hw, b.scale)
    for name in ("boxes", "scores", "class_ids", "anchor_ids", "level_ids"):
        np.testing.assert_array_equal(getattr(a.candidates, name), getattr(b.candidates, name))


def test_io_binding_is_used_only_when_asked_for(cpu_detector: Detector, bound_detector: Detector) -> None:
    assert cpu_detector.providers == [CPU] and not cpu_detector.uses_io_binding
    assert bound_detector.providers == [CPU] and bound_detector.uses_io_binding


@pytest.mark.parametrize(("image_hw", "size"), IMAGES_AND_SIZES)
def test_bound_path_equals_plain_path(cpu_detector: Detector, bound_detector: Detector, image_hw, size: int) -> None:
    image = _image(image_hw, color=1)
    plain, bound = cpu_detector.run(image, size=size), bound_detector.run(image, size=size)
    _assert_same_detections(plain, bound)
    assert len(bound.candidates) > 0
    assert list(bound.pyramid) == list(plain.pyramid) == ["P3", "P4", "P5", "P6", "P7"]
    for name, level in plain.pyramid.items():
        np.testing.assert_array_equal(bound.pyramid[name], level)


class _NoPlainRun:
    """An onnxruntime session whose plain ``run`` must not be called."""

    def __init__(self, session) -> None:
        self._session = session

    def run(self, *args, **kwargs):
        raise AssertionError("session.run called although IOBinding is on")

    def __getattr__(self, name: str):
        return getattr(self._session, name)


def test_bound_path_never_calls_plain_run(cpu_detector: Detector) -> None:
    detector = Detector(_NoPlainRun(cpu_detector.session), cpu_detector.contract, [], io_binding=True)
    image = _image((200, 300))
    _assert_same_detections(detector.run(image), cpu_detector.run(image))
    _assert_same_detections(detector.run(image, features=False), cpu_detector.run(image))


def test_one_binding_serves_changing_sizes_and_output_sets(cpu_detector: Detector, bound_detector: Detector) -> None:
    # the reused binding must forget the previous run's outputs and shapes
    for (image_hw, size), features in zip(IMAGES_AND_SIZES * 2, [True, False, False, True, True, False, True, False]):
        image = _image(image_hw)
        output = bound_detector.run(image, size=size, features=features)
        _assert_same_detections(output, cpu_detector.run(image, size=size))
        assert len(output.pyramid) == (5 if features else 0)


def test_bound_detector_shared_by_two_threads_gives_each_its_own_result(cpu_detector: Detector, bound_detector: Detector) -> None:
    jobs = [(IMAGES_AND_SIZES[i % len(IMAGES_AND_SIZES)], i % 2) for i in range(8)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        outputs = list(pool.map(lambda job: bound_detector.run(_image(job[0][0], job[1]), size=job[0][1]), jobs))
    for ((image_hw, size), color), output in zip(jobs, outputs):
        _assert_same_detections(output, cpu_detector.run(_image(image_hw, color), size=size))


@pytest.mark.parametrize("io_binding", [False, True], ids=["plain", "bound"])
@pytest.mark.parametrize(("image_hw", "size"), IMAGES_AND_SIZES)
def test_features_off_gives_the_same_detections_and_no_pyramid(contract_model: Path, cpu_detector: Detector, io_binding: bool, image_hw, size: int) -> None:
    detector = Detector.load(contract_model, providers=["cpu"], io_binding=io_binding)
    image = _image(image_hw)
    full, lean = cpu_detector.run(image, size=size), detector.run(image, size=size, features=False)
    _assert_same_detections(full, lean)
    assert lean.pyramid == {} and lean.scores is None and lean.boxes is None  # the hot path: candidates only
    assert set(lean.timings_ms) == {"preprocess", "network", "candidates"}
    with pytest.raises(ValueError, match="dense=True"):
        lean.level_score_map(0)
    scored = detector.run(image, size=size, features=False, dense=True)  # score maps without the pyramid
    assert scored.pyramid == {}
    _assert_same_detections(full, scored)
    np.testing.assert_array_equal(scored.level_score_map(0), full.level_score_map(0))
    last = int(lean.anchor_offsets[-1]) - 1
    assert lean.anchor_location(last) == full.anchor_location(last)


@pytest.mark.parametrize(("image_hw", "size"), [*IMAGES_AND_SIZES, ((480, 640), 512), ((1000, 90), 640)])
def test_features_off_level_shapes_match_the_demo_network(demo_detector: Detector, image_hw, size: int) -> None:
    image = _image(image_hw)
    full, lean = demo_detector.run(image, size=size), demo_detector.run(image, size=size, features=False, dense=True)
    strides = tuple(lv.stride for lv in demo_detector.contract.levels)
    assert [full.pyramid[lv.name].shape[:2] for lv in demo_detector.contract.levels] == full.level_shapes
    assert lean.level_shapes == full.level_shapes == level_shapes(full.input_hw, strides)
    assert lean.pyramid == {}
    np.testing.assert_array_equal(lean.boxes, full.boxes)
    np.testing.assert_array_equal(lean.scores, full.scores)


@pytest.mark.parametrize("input_hw", [(200, 300), (130, 260), (300, 170), (64, 96)])
def test_demo_network_levels_are_ceil_of_input_over_stride(demo_detector: Detector, input_hw: tuple[int, int]) -> None:
    # the rule holds for any input, not only the runtime's multiples of 128
    names = [lv.name for lv in demo_detector.contract.levels]
    levels = demo_detector.session.run(names, {"image": np.zeros((1, *input_hw, 3), np.float32)})
    strides = tuple(lv.stride for lv in demo_detector.contract.levels)
    assert [tuple(level.shape[1:3]) for level in levels] == level_shapes(input_hw, strides)
