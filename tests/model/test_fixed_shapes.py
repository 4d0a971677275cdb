"""Fixed-shape sessions (model/fixed_shapes.py): the graph's shape arithmetic folded at load,
one session per canvas shape, the same detections as free shapes, and the bound-buffer runs
a CUDA graph needs, checked here through the CPU provider."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from model import contract as C
from model.fixed_shapes import BoundRun, FixedShapeSessions, free_dimensions, optimised_ops
from model.letterbox import square_canvas
from model.postprocess import select
from model.runtime import Detector
from tests.model.onnx_fakes import red_square_image

SHAPE_OPS = ("Shape", "Size", "Range", "Gather", "Slice")


def test_fixed_dimensions_fold_the_shape_arithmetic(contract_model: Path, cpu_detector: Detector, tmp_path: Path) -> None:
    """Free shapes leave Shape/Gather/Range/... nodes for onnxruntime to run on the host (on
    CUDA: copies inside every run); with the input fixed none of them is left."""
    dims = free_dimensions(cpu_detector.session)
    assert dims[:3] == ["N", "H", "W"] and dims[3] is None
    overrides = FixedShapeSessions(lambda o: None, dims).overrides((1, 256, 256, 3))
    assert overrides == {"N": 1, "H": 256, "W": 256}
    free = optimised_ops(contract_model, ["CPUExecutionProvider"], {}, extended_only=True)
    fixed = optimised_ops(contract_model, ["CPUExecutionProvider"], overrides, extended_only=True)
    assert sum(free[op] for op in SHAPE_OPS) >= 20
    assert sum(fixed[op] for op in SHAPE_OPS) == 0, fixed
    assert fixed["TopK"] == free["TopK"] and sum(fixed.values()) < sum(free.values()) * 0.7


def test_a_fixed_canvas_runs_in_fixed_shape_sessions_with_the_same_detections(contract_model: Path, cpu_detector: Detector) -> None:
    fixed = Detector.load(contract_model, providers=["cpu"], fixed_canvas=True)
    free = Detector.load(contract_model, providers=["cpu"], fixed_canvas=True, fixed_shapes=False)
    assert fixed.fixed_shapes and not free.fixed_shapes and not cpu_detector.fixed_shapes  # the CPU's default: free
    image = red_square_image(width=300, height=200, box=(60, 40, 140, 120), color=1)
    out, ref = fixed.run(image, size=256), free.run(image, size=256)
    np.testing.assert_array_equal(out.candidates.anchor_ids, ref.candidates.anchor_ids)
    np.testing.assert_array_equal(out.candidates.class_ids, ref.candidates.class_ids)
    np.testing.assert_allclose(out.candidates.scores, ref.candidates.scores, atol=1e-6)
    np.testing.assert_allclose(out.candidates.boxes, ref.candidates.boxes, atol=1e-3)
    np.testing.assert_allclose(out.pyramid["P3"], ref.pyramid["P3"], atol=1e-5)
    assert len(select(out.candidates, score_thresh=0.5, iou_thresh=0.5)) > 0
    # one session per input shape: batch 1 and a batch of 3 at 256, and 1 at 320
    fixed.run_prepared([fixed.prepare(image, size=256)] * 3)
    fixed.run(image, size=320, features=False)
    height, width = square_canvas(256)
    assert fixed._fixed is not None
    assert fixed._fixed.shapes == [(1, height, width, 3), (3, height, width, 3), (1, *square_canvas(320), 3)]


def test_sessions_are_made_once_per_shape_and_the_oldest_is_dropped() -> None:
    made: list[dict[str, int]] = []

    def make(overrides: dict[str, int]) -> object:
        time.sleep(0.02)  # a slow load: concurrent callers must wait for it, not make another
        made.append(overrides)
        return object()

    sessions = FixedShapeSessions(make, ["N", "H", "W", None], limit=2)
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(sessions.session_for((1, 64, 64, 3)))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made == [{"N": 1, "H": 64, "W": 64}] and len({id(s) for s in got}) == 1
    sessions.session_for((2, 64, 64, 3))
    sessions.session_for((1, 64, 64, 3))  # used again: now the newest
    sessions.session_for((1, 128, 64, 3))
    assert sessions.shapes == [(1, 64, 64, 3), (1, 128, 64, 3)]
    with pytest.raises(ValueError, match="4 dimensions"):
        sessions.session_for((64, 64, 3))


def test_a_fixed_shape_session_that_cannot_be_made_falls_back_to_free_shapes(cpu_detector: Detector) -> None:
    def broken(overrides: dict[str, int], **_: object) -> object:
        raise RuntimeError("out of device memory\nmore detail")

    detector = Detector(cpu_detector.session, cpu_detector.contract, [], fixed_canvas=True, make_session=broken)
    assert detector.fixed_shapes
    image = red_square_image(width=300, height=200, box=(60, 40, 140, 120))
    out = detector.run(image, size=256, features=False)
    ref = Detector(cpu_detector.session, cpu_detector.contract, [], fixed_canvas=True).run(image, size=256, features=False)
    np.testing.assert_array_equal(out.candidates.scores, ref.candidates.scores)
    assert not detector.fixed_shapes
    assert detector.provider_notes == [f"fixed-shape session for {(1, *square_canvas(256), 3)} failed (out of device memory); running with free shapes"]


def test_bound_buffers_give_each_run_its_own_outputs(contract_model: Path) -> None:
    """``cuda_graph``: the hot path runs through buffers that stay put (on the CPU provider
    here, without the capture): each run's outputs are its own copies, and equal a plain
    run's; the layer viewer's fetch still goes through the plain fixed-shape session."""
    bound = Detector.load(contract_model, providers=["cpu"], fixed_canvas=True, cuda_graph=True)
    plain = Detector.load(contract_model, providers=["cpu"], fixed_canvas=True)
    assert bound.uses_cuda_graph and not plain.uses_cuda_graph
    images = [red_square_image(width=300, height=200, box=box, color=c) for box, c in (((60, 40, 140, 120), 1), ((150, 20, 290, 190), 0))]
    first = bound.run(images[0], size=256, features=False)
    second = bound.run(images[1], size=256, features=False)
    for out, image in zip((first, second), images):
        ref = plain.run(image, size=256, features=False)
        np.testing.assert_array_equal(out.candidates.anchor_ids, ref.candidates.anchor_ids)
        np.testing.assert_array_equal(out.candidates.scores, ref.candidates.scores)
    assert not np.array_equal(first.candidates.anchor_ids, second.candidates.anchor_ids)
    assert list(bound._bound) == [(1, *square_canvas(256), 3)]
    with_features = bound.run(images[0], size=256, features=True)
    assert set(with_features.pyramid) == {lv.name for lv in bound.contract.levels}


def test_bound_run_refuses_another_shape(cpu_detector: Detector) -> None:
    names = list(C.CANDIDATE_OUTPUTS)
    shape = (1, 128, 128, 3)
    probe = cpu_detector.session.run(names, {C.INPUT_NAME: np.zeros(shape, np.float32)})
    runner = BoundRun(cpu_detector.session, C.INPUT_NAME, shape, names, [p.shape for p in probe], [p.dtype for p in probe])
    out = runner(np.zeros(shape, np.float32))
    for got, want in zip(out, probe):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="bound to"):
        runner(np.zeros((1, 128, 256, 3), np.float32))


def test_bound_buffers_that_cannot_be_made_fall_back_to_plain_runs(cpu_detector: Detector, contract_model: Path) -> None:
    """A CUDA graph session that onnxruntime refuses (a node left on the host, say): a note,
    and the fixed-shape session's plain runs from then on."""
    loaded = Detector.load(contract_model, providers=["cpu"], fixed_canvas=True)

    def make(overrides: dict[str, int], *, cuda_graph: bool = False) -> object:
        if cuda_graph:
            raise RuntimeError("This session cannot use the CUDA Graph feature as requested")
        return loaded._make_session(overrides)

    detector = Detector(cpu_detector.session, cpu_detector.contract, [], fixed_canvas=True, make_session=make, cuda_graph=True)
    image = red_square_image(width=300, height=200, box=(60, 40, 140, 120), color=1)
    out = detector.run(image, size=256, features=False)
    ref = loaded.run(image, size=256, features=False)
    np.testing.assert_array_equal(out.candidates.scores, ref.candidates.scores)
    assert not detector.uses_cuda_graph and detector.fixed_shapes
    assert detector.provider_notes == [
        f"CUDA graph for {(1, *square_canvas(256), 3)} failed (This session cannot use the CUDA Graph feature as requested); running without it"
    ]
