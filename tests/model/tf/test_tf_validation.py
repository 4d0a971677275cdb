"""Training's per-epoch validation (evaluate_tf) and evaluate_detector score a labelled
dataset identically: the same ground truth (model.evaluate.ground_truth), degenerate boxes
included. The network is the same in both: the tiny contract ONNX model, run by the
onnxruntime Detector on one side and standing in for the TF inference function (same
calling convention) on the other -- no TensorFlow is imported."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from tf_helpers import ort_session

from model.evaluate import EvalResult, evaluate_detector
from model.labels import ImageLabels, Label
from model.tf.train import evaluate_tf
from tests.model.onnx_fakes import CLASS_NAMES, red_square_image

WIDTH, HEIGHT, SIZE = 256, 192, 256
# (box xyxy, colour channel): 0 red, 1 green; the last one touches the bottom-right corner
SCENES = [((64, 64, 128, 128), 0), ((40, 30, 140, 90), 1), ((100, 20, 164, 148), 0), ((8, 8, 40, 40), 1), ((200, 120, 256, 192), 0)]
DEGENERATE = [
    Label(50, 50, 50, 80, "red"),  # zero width
    Label(20, 100, 60, 100, "green"),  # zero height
    Label(300, 10, 340, 50, "red"),  # right of the image
    Label(-40, -40, -10, -10, "green"),  # above-left of it
]


class _Eager:
    """An output of the stand-in inference function: indexable, with ``.numpy()``."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __getitem__(self, index: int) -> _Eager:
        return _Eager(self.array[index])

    def numpy(self) -> np.ndarray:
        return self.array


@pytest.fixture(scope="module")
def clean_items(tmp_path_factory: pytest.TempPathFactory) -> list[ImageLabels]:
    folder = tmp_path_factory.mktemp("validation")
    items = []
    for k, (box, color) in enumerate(SCENES):
        path = folder / f"scene{k}.png"
        cv2.imwrite(str(path), red_square_image(width=WIDTH, height=HEIGHT, box=box, color=color)[..., ::-1])
        items.append(ImageLabels(str(path), WIDTH, HEIGHT, labels=[Label(*map(float, box), CLASS_NAMES[color])]))
    return items


def _with_degenerate_boxes(items: list[ImageLabels]) -> list[ImageLabels]:
    dirty = []
    for k, item in enumerate(items):
        labels = list(item.labels)
        if k == len(items) - 1:  # the corner box reaching past the border: clipped back to the clean one
            x1, y1, x2, y2 = labels[0].box
            labels[0] = Label(x1, y1, x2 + 30, y2 + 25, labels[0].name)
        labels += [DEGENERATE[k % len(DEGENERATE)], Label(10, 10, 30, 30, "blue")]  # and a class the model lacks
        dirty.append(ImageLabels(item.image_path, item.width, item.height, labels=labels))
    return dirty


def _both_paths(contract_model: Path, cpu_detector, items: list[ImageLabels]) -> tuple[EvalResult, EvalResult]:  # noqa: ANN001
    session = ort_session(contract_model)

    def detect(batch: np.ndarray) -> tuple[_Eager, ...]:
        return tuple(_Eager(output) for output in session.run(None, {"image": batch}))

    onnx_result = evaluate_detector(cpu_detector, items, size=SIZE)
    tf_result = evaluate_tf(detect, items, list(CLASS_NAMES), size=SIZE)
    return onnx_result, tf_result


def test_both_paths_give_identical_ap(contract_model: Path, cpu_detector, clean_items: list[ImageLabels]) -> None:  # noqa: ANN001
    onnx_result, tf_result = _both_paths(contract_model, cpu_detector, clean_items)
    assert 0.0 < onnx_result.ap50 < 1.0  # a score that a changed ground truth would move
    assert onnx_result.num_labels == len(SCENES)
    assert tf_result == onnx_result


def test_degenerate_boxes_are_dropped_the_same_way_by_both_paths(contract_model: Path, cpu_detector, clean_items: list[ImageLabels]) -> None:  # noqa: ANN001
    clean, _ = _both_paths(contract_model, cpu_detector, clean_items)
    onnx_result, tf_result = _both_paths(contract_model, cpu_detector, _with_degenerate_boxes(clean_items))
    assert onnx_result == clean
    assert tf_result == clean
