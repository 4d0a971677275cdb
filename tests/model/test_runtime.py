"""onnxruntime inference: letterbox, provider choice, a tiny contract model on CPU, boxes in
original-image pixels (xyxy), and the same model on CUDA where a GPU can really be used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model import contract as C
from model.anchors import anchor_levels, generate_anchors
from model.boxes import clip_boxes
from model.letterbox import InputBuffers, fill_canvases, letterbox, letterbox_size, square_canvas
from model.postprocess import select
from model.providers import CPU, CUDA, choose_providers
from model.runtime import Detector, InferenceSizeError
from tests.model.onnx_fakes import ANCHORS, red_square_image


@pytest.mark.parametrize(
    ("image_hw", "size", "resized_hw", "padded_hw"),
    [
        ((200, 300), 256, (171, 256), (256, 256)),  # landscape, downscaled
        ((400, 100), 300, (300, 75), (384, 128)),  # portrait
        ((30, 50), 200, (120, 200), (128, 256)),  # upscaled
        ((640, 640), 640, (640, 640), (640, 640)),  # nothing to do
        ((1, 1000), 512, (1, 512), (128, 512)),  # a 1-pixel line stays 1 pixel
    ],
)
def test_letterbox_keeps_aspect_and_pads_to_multiples_of_128(
    image_hw: tuple[int, int], size: int, resized_hw: tuple[int, int], padded_hw: tuple[int, int]
) -> None:
    image = np.full((*image_hw, 3), 200, np.uint8)
    padded, scale = letterbox(image, size=size)
    assert letterbox_size(image_hw, size=size) == resized_hw
    assert padded.shape == (*padded_hw, 3) and padded.dtype == np.uint8
    assert scale == pytest.approx(size / max(image_hw))
    h, w = resized_hw
    assert np.all(padded[:h, :w] == 200)  # the image, top-left
    assert not padded[h:].any() and not padded[:, w:].any()  # zero padding bottom and right


def test_letterbox_content_lands_where_scale_says() -> None:
    image = red_square_image(width=300, height=200, box=(60, 40, 140, 120))
    padded, scale = letterbox(image, size=600)  # x2
    assert scale == 2.0
    red = np.argwhere(padded[..., 0] > 127)
    np.testing.assert_array_equal(red.min(axis=0), [80, 120])  # (y, x) = (40, 60) * 2
    np.testing.assert_array_equal(red.max(axis=0), [239, 279])
    with pytest.raises(ValueError, match="positive"):
        letterbox(image, size=0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 3), st.sampled_from(["float32", "uint8"])), max_size=60), st.integers(0, 4))
def test_input_buffers_never_lend_an_array_twice_and_keep_at_most_keep(steps, keep: int) -> None:
    """Any sequence of takes and give-backs over a few shapes (``detect`` on the CPU, whose
    canvases change shape from batch to batch; a crash here once stopped ``detect`` halfway)."""
    buffers = InputBuffers(keep=keep)
    lent: list[np.ndarray] = []
    for take, shape_index, dtype in steps:
        if take or not lent:
            shape = (1 + shape_index % 2, 8 * (1 + shape_index), 8, 3)
            array = buffers.take(shape, dtype)
            assert array.shape == shape and array.dtype == np.dtype(dtype)
            assert all(array is not other and not np.shares_memory(array, other) for other in lent)
            lent.append(array)
        else:
            buffers.give_back(lent.pop(shape_index % len(lent)))
        assert sum(len(free) for free in buffers._free.values()) <= keep
        assert all(buffers._free.values())  # no empty lists left behind


def test_input_buffers_lend_back_what_was_given_back_newest_shapes_first() -> None:
    buffers = InputBuffers(keep=2)
    a, b, c = (buffers.take((1, 8 * (i + 1), 8, 3)) for i in range(3))
    for array in (a, b, c):
        buffers.give_back(array)  # a, the oldest, is dropped
    assert buffers.take(b.shape) is b and buffers.take(c.shape) is c
    assert buffers.take(a.shape) is not a
    assert buffers.take((1, 16, 8, 3), np.uint8).dtype == np.uint8  # dtype is part of the key


def test_fill_canvases_puts_each_image_top_left_on_zeros_and_blanks_the_rest() -> None:
    batch = np.full((3, 6, 5, 3), 7.0, np.float32)  # leftovers of an earlier batch
    images = [np.full((4, 5, 3), 200, np.uint8), np.full((6, 2, 3), 100, np.uint8)]
    fill_canvases(batch, images)
    expected = np.zeros_like(batch)
    expected[0, :4, :5], expected[1, :6, :2] = 200, 100
    np.testing.assert_array_equal(batch, expected)
    with pytest.raises(ValueError, match="3 images for a batch of 2"):
        fill_canvases(batch[:2], images + images[:1])


def test_choose_providers_cpu_only_request() -> None:
    assert choose_providers(["cpu"]) == ([CPU], [])
    assert choose_providers([" CPU ", "cpu"]) == ([CPU], [])  # aliases, spaces, no duplicates


def test_choose_providers_falls_back_to_cpu_with_a_note() -> None:
    chosen, notes = choose_providers()
    assert chosen[-1] == CPU
    if CUDA in chosen:
        pytest.skip("CUDA is usable on this machine: nothing to fall back from")
    assert chosen == [CPU]
    assert notes and any(CUDA in note for note in notes)  # a clear notice, no crash


def test_choose_providers_notes_unknown_providers() -> None:
    chosen, notes = choose_providers(["NoSuchExecutionProvider"])
    assert chosen == [CPU]
    assert notes == ["NoSuchExecutionProvider is not in this onnxruntime build"]


def test_detector_loads_and_runs_on_cpu(cpu_detector: Detector, contract_model: Path) -> None:
    assert cpu_detector.providers == [CPU]
    assert cpu_detector.name == contract_model.name
    image = red_square_image(width=300, height=200, box=(60, 40, 140, 120))
    output = cpu_detector.run(image)
    assert output.scale == pytest.approx(256 / 300)
    assert output.image_hw == (200, 300) and output.input_hw == (256, 256)
    assert output.level_shapes == [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)]
    num_anchors = 9 * (32 * 32 + 16 * 16 + 8 * 8 + 4 * 4 + 2 * 2)
    assert output.boxes.shape == (num_anchors, 4) and output.scores.shape == (num_anchors, 2)
    assert output.pyramid["P3"].shape == (32, 32, 3) and output.pyramid["P7"].shape == (2, 2, 3)
    assert set(output.timings_ms) == {"preprocess", "network", "candidates"}
    assert output.level_score_map(0).shape == (32, 32)
    assert output.level_score_map(0, class_id=0).max() > 0.99  # the red square's cells


@pytest.mark.parametrize("size", [256, 512, 100])
def test_boxes_are_mapped_back_to_original_pixels(cpu_detector: Detector, size: int) -> None:
    # the test model outputs its anchors as boxes, in network-input pixels
    image = red_square_image(width=300, height=200, box=(60, 40, 140, 120))
    output = cpu_detector.run(image, size=size)
    anchors = generate_anchors(output.input_hw, ANCHORS)
    new_h, new_w = letterbox_size((200, 300), size=size)
    expected = clip_boxes(anchors * np.float32([300 / new_w, 200 / new_h] * 2), width=300, height=200)
    np.testing.assert_allclose(output.boxes, expected, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(output.boxes[:, 0::2].max(), 300.0)
    # boxes well inside the image: input pixels / scale, to within the short side's rounding
    inside = np.flatnonzero(np.all((expected > 1) & (expected < [299, 199, 299, 199]), axis=1))
    assert inside.size > 0
    np.testing.assert_allclose(output.boxes[inside], anchors[inside] / output.scale, atol=1.5)


def test_detections_land_on_the_object_and_keep_their_anchor(cpu_detector: Detector) -> None:
    image = red_square_image(width=300, height=200, box=(60, 40, 140, 120), color=1)  # green
    output = cpu_detector.run(image)
    dets = select(output.candidates, score_thresh=0.5, iou_thresh=0.5)
    assert len(dets) > 0 and set(dets.class_ids.tolist()) == {1}
    centres = (dets.boxes[:, :2] + dets.boxes[:, 2:]) / 2
    confident = dets.scores > 0.99  # cells entirely inside the square
    assert confident.any()
    assert np.all((centres[confident] >= [59, 39]) & (centres[confident] <= [141, 121]))
    np.testing.assert_array_equal(dets.level_ids, anchor_levels(output.anchor_offsets, dets.anchor_ids))
    for anchor_id, level_id in zip(dets.anchor_ids[:5], dets.level_ids[:5]):
        level, row, col, k = output.anchor_location(anchor_id)
        assert level == level_id and 0 <= k < 9
    assert len(cpu_detector.run(np.zeros((50, 80, 3), np.uint8)).candidates) == 0  # black: below the floor


def test_run_refuses_a_non_rgb_image(cpu_detector: Detector) -> None:
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        cpu_detector.run(np.zeros((32, 32), np.uint8))


@pytest.mark.parametrize(("image_hw", "size"), [((200, 300), 256), ((400, 150), 300), ((60, 700), 448), ((512, 512), 512)])
def test_fixed_canvas_gives_one_input_shape_per_size_and_the_same_detections(cpu_detector: Detector, image_hw, size: int) -> None:
    # what CUDA and TensorRT get by default: every image at ``size`` on one square canvas
    fixed = Detector(cpu_detector.session, cpu_detector.contract, [], fixed_canvas=True)
    assert fixed.fixed_canvas and not cpu_detector.fixed_canvas  # the CPU keeps the smaller pad-to-128 canvas
    height, width = image_hw
    image = red_square_image(width=width, height=height, box=(width // 5, height // 5, width // 2, height // 2))
    out, ref = fixed.run(image, size=size, features=False), cpu_detector.run(image, size=size, features=False)
    assert out.input_hw == square_canvas(size) == fixed.canvas_shape(image_hw, size=size)
    assert ref.input_hw == cpu_detector.canvas_shape(image_hw, size=size)
    # the test model sees pixels through stride-sized cells: the extra zero padding adds only
    # anchors outside the image, whose candidates (black: below the floor) never show
    a = select(out.candidates, score_thresh=0.5, iou_thresh=0.5)
    b = select(ref.candidates, score_thresh=0.5, iou_thresh=0.5)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_square_canvas_rounds_up_to_the_pad_multiple() -> None:
    assert square_canvas(512) == (512, 512) and square_canvas(640) == (640, 640) and square_canvas(600) == (640, 640)
    with pytest.raises(ValueError, match="does not fit"):
        letterbox(np.zeros((10, 20, 3), np.uint8), size=300, canvas=(128, 128))


def test_warm_up_runs_the_hot_path_at_the_default_size(contract_model: Path) -> None:
    calls: list[tuple[tuple[int, ...], list[str]]] = []
    detector = Detector.load(contract_model, providers=["cpu"], fixed_canvas=True)

    class Spy:
        def __getattr__(self, name: str):
            return getattr(detector.session, name)

        def run(self, names, feed):
            calls.append((feed["image"].shape, list(names)))
            return detector.session.run(names, feed)

    spied = Detector(Spy(), detector.contract, [], fixed_canvas=True)
    assert spied.warm_up() > 0 and spied.warm_up(size=300, batch=4) > 0
    side = square_canvas(detector.contract.default_size)[0]
    assert calls == [((1, side, side, 3), list(C.CANDIDATE_OUTPUTS)), ((4, 384, 384, 3), list(C.CANDIDATE_OUTPUTS))]
    with pytest.raises(InferenceSizeError):
        spied.warm_up(size=10)
