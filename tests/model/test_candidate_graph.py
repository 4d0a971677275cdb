"""Contract v2 (model.candidate_graph): the graph's per-level TopK keeps exactly what the host's
extract_candidates keeps from the same dense outputs; a v2 model's hot path copies only its
candidates; v1 files still load and give the same detections; broken v2 files are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from model import contract as C
from model.candidate_graph import add_candidate_outputs
from model.errors import ModelContractError
from model.postprocess import candidates_from_selection, extract_candidates, select
from model.runtime import Detector
from tests.model.onnx_fakes import build_contract_model, red_square_image, remove_output, write_contract_model

FIELDS = ("boxes", "scores", "class_ids", "anchor_ids", "level_ids")


def _session(model: onnx.ModelProto):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])


def _images(seed: int) -> np.ndarray:
    """A batch of two 256 x 384 images: coloured squares on noise (many equal scores inside
    a square, so ties at the per-level cut are exercised too)."""
    rng = np.random.default_rng(seed)
    batch = rng.integers(0, 60, (2, 256, 384, 3)).astype(np.float32)
    for image in batch:
        for _ in range(4):
            x, y = rng.integers(0, 300), rng.integers(0, 200)
            image[y : y + rng.integers(20, 90), x : x + rng.integers(20, 90), rng.integers(0, 3)] = 255
    return batch


def _offsets(model: onnx.ModelProto, image_hw: tuple[int, int]) -> np.ndarray:
    from model.anchors import anchor_offsets, level_shapes

    contract = C.contract_from_proto(model, "test")
    return anchor_offsets(level_shapes(image_hw, tuple(lv.stride for lv in contract.levels)), contract.anchors_per_cell)


@pytest.mark.parametrize("topk", [1000, 7])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_in_graph_candidates_equal_host_extraction(seed: int, topk: int) -> None:
    model = build_contract_model(version=1)
    add_candidate_outputs(model, topk_per_level=topk)
    images = _images(seed)
    boxes, scores, *selected = _session(model).run(["boxes", "scores", *C.CANDIDATE_OUTPUTS], {"image": images})
    offsets = _offsets(model, images.shape[1:3])
    level_sizes = np.diff(offsets) * 2  # (anchor, class) pairs per level
    assert selected[0].shape == (2, int(np.minimum(level_sizes, topk).sum()), 4)
    for i in range(2):
        for floor in (0.05, 0.02, 0.5):
            host = extract_candidates(boxes[i], scores[i], anchor_offsets=offsets, floor=floor, topk_per_level=topk)
            graph = candidates_from_selection(*(a[i] for a in selected), floor=floor)
            assert len(host) > 0
            for name in FIELDS:
                np.testing.assert_array_equal(getattr(graph, name), getattr(host, name), err_msg=name)


def test_v1_and_v2_models_give_the_same_detections(tmp_path: Path, cpu_detector: Detector) -> None:
    v1 = Detector.load(write_contract_model(tmp_path / "v1.onnx", build_contract_model(version=1)), providers=["cpu"])
    assert v1.contract.version == 1 and not v1.contract.has_candidates
    assert cpu_detector.contract.version == 2 and cpu_detector.contract.has_candidates
    for image, size in [(red_square_image(), 256), (red_square_image(width=90, height=500, box=(10, 100, 60, 200), color=1), 512)]:
        old, new = v1.run(image, size=size, features=False), cpu_detector.run(image, size=size, features=False)
        assert len(new.candidates) > 0
        for name in FIELDS:
            np.testing.assert_array_equal(getattr(new.candidates, name), getattr(old.candidates, name), err_msg=name)
        a = select(old.candidates, score_thresh=0.3, iou_thresh=0.5)
        b = select(new.candidates, score_thresh=0.3, iou_thresh=0.5)
        np.testing.assert_array_equal(a.boxes, b.boxes)
        assert old.level_shapes == new.level_shapes


def test_the_hot_path_copies_only_the_candidates(cpu_detector: Detector) -> None:
    image = red_square_image(width=640, height=480, box=(100, 100, 300, 260))
    lean = cpu_detector.run(image, size=640, features=False)
    dense = cpu_detector.run(image, size=640, features=False, dense=True)
    full = cpu_detector.run(image, size=640)
    num_anchors = int(lean.anchor_offsets[-1])
    assert lean.scores is None and lean.boxes is None and lean.pyramid == {}
    # K <= 5 levels x 1000 pairs, each 4 + 1 floats and 3 int64 ids
    assert lean.fetched_bytes <= 5 * 1000 * (5 * 4 + 3 * 8)
    assert dense.fetched_bytes >= lean.fetched_bytes + num_anchors * (4 + 2) * 4
    assert full.fetched_bytes > dense.fetched_bytes
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(lean.candidates, name), getattr(full.candidates, name))


def test_a_floor_below_the_default_gives_what_the_host_gives(cpu_detector: Detector) -> None:
    image = red_square_image(color=2)
    output = cpu_detector.run(image, floor=0.01, features=False, dense=True)
    host = extract_candidates(output.boxes, output.scores, anchor_offsets=output.anchor_offsets, floor=0.01)
    assert output.candidates.floor == 0.01 and len(output.candidates) == len(host) > 0
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(output.candidates, name), getattr(host, name))


def test_adding_candidates_twice_or_with_no_room_is_refused() -> None:
    with pytest.raises(ValueError, match="already contract version 2"):
        add_candidate_outputs(build_contract_model())
    with pytest.raises(ValueError, match="positive"):
        add_candidate_outputs(build_contract_model(version=1), topk_per_level=0)


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda m: remove_output(m, C.CANDIDATE_SCORES), "missing outputs"),
        (lambda m: _retype_output(m, C.CANDIDATE_ANCHOR_IDS, onnx.TensorProto.FLOAT), "candidate_anchor_ids' must be int64"),
        (lambda m: _retype_output(m, C.CANDIDATE_BOXES, onnx.TensorProto.INT64), "candidate_boxes' must be float32"),
    ],
    ids=["no candidate scores", "float anchor ids", "integer boxes"],
)
def test_broken_v2_models_are_refused_by_name(tmp_path: Path, mutate, words: str) -> None:
    path = write_contract_model(tmp_path / "broken.onnx", mutate(build_contract_model()))
    with pytest.raises(ModelContractError, match=words) as info:
        C.read_contract(path)
    assert str(path) in str(info.value)


def _retype_output(model: onnx.ModelProto, name: str, elem_type: int) -> onnx.ModelProto:
    for output in model.graph.output:
        if output.name == name:
            output.type.tensor_type.elem_type = elem_type
    return model
