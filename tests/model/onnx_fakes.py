"""Tiny RetinaNet Studio contract models built with ``onnx.helper`` (no TensorFlow).

The graph honours the ONNX contract (version 2 by default, with the in-graph candidate
selection of model.candidate_graph; ``version=1`` leaves it out) with real, dynamic-shape
computation:

- ``P3``..``P7`` are the input average-pooled by each level's stride, NHWC, F = 3 channels
  (the mean RGB of every cell);
- ``boxes`` [N, A, 4] are the anchors themselves (zero regression deltas), computed in the
  graph from the pyramid's shapes in the contract's order (level, row, column, anchor), so
  they equal ``model.anchors.generate_anchors`` for the same input size;
- ``scores`` [N, A, C]: class ``c`` of anchor ``k`` is
  ``sigmoid(gain_k * (mean_c - sum of the other channel means) / 255 - 4)``, so class
  ``"red"`` fires on pure red cells, ``"green"`` on pure green ones, and black scores 0.018
  (below the 0.05 candidate floor). ``gain_k`` differs a little per anchor of a cell.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from model import contract as C
from model.anchors import cell_anchor_sizes
from model.candidate_graph import TOPK_PER_LEVEL, add_candidate_outputs
from model.config import AnchorConfig, to_dict

CLASS_NAMES = ("red", "green")
ANCHORS = AnchorConfig()
DEFAULT_SIZE = 256
FEATURES = 3
OPSET = 17


def contract_metadata(
    *,
    class_names: Sequence[str] = CLASS_NAMES,
    anchors: AnchorConfig = ANCHORS,
    default_size: int = DEFAULT_SIZE,
    provenance: dict | None = None,
    version: int = C.CONTRACT_VERSION,
) -> dict[str, str]:
    """The contract's ``metadata_props`` for a model with these settings."""
    extra = {C.KEY_CANDIDATES: json.dumps({"topk_per_level": TOPK_PER_LEVEL})} if version >= 2 else {}
    return {
        **extra,
        C.KEY_VERSION: str(version),
        C.KEY_CLASSES: json.dumps(list(class_names)),
        C.KEY_LEVELS: json.dumps([[name, stride] for name, stride in zip(anchors.level_names, anchors.strides)]),
        C.KEY_ANCHORS: json.dumps(to_dict(anchors)),
        C.KEY_DEFAULT_SIZE: str(default_size),
        C.KEY_FEATURES: str(FEATURES),
        C.KEY_PROVENANCE: json.dumps(provenance or {"data": "none", "epochs": 0, "weights": "hand-made test graph"}),
    }


def _const(name: str, value: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name))


def build_contract_model(
    *,
    class_names: Sequence[str] = CLASS_NAMES,
    anchors: AnchorConfig = ANCHORS,
    default_size: int = DEFAULT_SIZE,
    metadata: dict[str, str] | None = None,
    version: int = C.CONTRACT_VERSION,
) -> onnx.ModelProto:
    """A valid contract model (see the module docstring) of contract ``version`` (1 or 2);
    ``metadata`` replaces the contract metadata when given."""
    num_classes = len(class_names)
    k = anchors.anchors_per_cell
    sizes = cell_anchor_sizes(anchors)  # (L, K, 2) anchor (w, h)
    nodes = [
        helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
        _const("half", np.float32(0.5)),
        _const("zero_f", np.float32(0.0)),
        _const("zero_i", np.int64(0)),
        _const("one_i", np.int64(1)),
        _const("zero_1d", np.array([0], np.int64)),
        _const("one_1d", np.array([1], np.int64)),
        _const("idx_h", np.int64(1)),
        _const("idx_w", np.int64(2)),
        _const("col_shape", np.array([1, -1, 1, 1], np.int64)),
        _const("row_shape", np.array([-1, 1, 1, 1], np.int64)),
        _const("boxes_shape", np.array([1, -1, 4], np.int64)),
        _const("scores_shape", np.array([0, -1, num_classes], np.int64)),
    ]
    # class c of anchor k: gain_k * (channel c - other channels) / 255 - 4
    weights = np.zeros((k * num_classes, 3, 1, 1), np.float32)
    for a in range(k):
        gain = (8.0 + 0.1 * a) / 255.0
        for c in range(num_classes):
            weights[a * num_classes + c, :, 0, 0] = -gain
            weights[a * num_classes + c, c % 3, 0, 0] = gain
    bias = np.full(k * num_classes, -4.0, np.float32)
    initializers = [numpy_helper.from_array(weights, "head_w"), numpy_helper.from_array(bias, "head_b")]
    outputs = []
    level_boxes, level_scores = [], []
    for level, (name, stride) in enumerate(zip(anchors.level_names, anchors.strides)):
        p = f"{name}_"
        nodes += [
            helper.make_node("AveragePool", ["nchw"], [p + "pool"], kernel_shape=[stride, stride], strides=[stride, stride], ceil_mode=1),
            helper.make_node("Transpose", [p + "pool"], [name], perm=[0, 2, 3, 1]),
            # scores: (N, K*C, h, w) -> (N, h, w, K*C) -> (N, h*w*K, C)
            helper.make_node("Conv", [p + "pool", "head_w", "head_b"], [p + "logits"]),
            helper.make_node("Sigmoid", [p + "logits"], [p + "prob"]),
            helper.make_node("Transpose", [p + "prob"], [p + "prob_nhwc"], perm=[0, 2, 3, 1]),
            helper.make_node("Reshape", [p + "prob_nhwc", "scores_shape"], [p + "scores"]),
            # anchors: centres ((col + 0.5) * s, (row + 0.5) * s) -/+ half the (w, h) of anchor k
            helper.make_node("Shape", [name], [p + "shape"]),
            helper.make_node("Gather", [p + "shape", "idx_h"], [p + "h"]),
            helper.make_node("Gather", [p + "shape", "idx_w"], [p + "w"]),
            helper.make_node("Range", ["zero_i", p + "h", "one_i"], [p + "rows_i"]),
            helper.make_node("Range", ["zero_i", p + "w", "one_i"], [p + "cols_i"]),
            helper.make_node("Cast", [p + "rows_i"], [p + "rows"], to=TensorProto.FLOAT),
            helper.make_node("Cast", [p + "cols_i"], [p + "cols"], to=TensorProto.FLOAT),
            _const(p + "stride", np.float32(stride)),
            helper.make_node("Add", [p + "rows", "half"], [p + "rows_c"]),
            helper.make_node("Add", [p + "cols", "half"], [p + "cols_c"]),
            helper.make_node("Mul", [p + "rows_c", p + "stride"], [p + "cy_flat"]),
            helper.make_node("Mul", [p + "cols_c", p + "stride"], [p + "cx_flat"]),
            helper.make_node("Reshape", [p + "cy_flat", "row_shape"], [p + "cy"]),  # (h, 1, 1, 1)
            helper.make_node("Reshape", [p + "cx_flat", "col_shape"], [p + "cx"]),  # (1, w, 1, 1)
            helper.make_node("Mul", [p + "cy", "zero_f"], [p + "zero_h"]),
            helper.make_node("Mul", [p + "cx", "zero_f"], [p + "zero_w"]),
            helper.make_node("Add", [p + "cy", p + "zero_w"], [p + "cy_grid"]),  # (h, w, 1, 1)
            helper.make_node("Add", [p + "cx", p + "zero_h"], [p + "cx_grid"]),
            _const(p + "half_w", (sizes[level, :, 0] / 2.0).reshape(1, 1, k, 1).astype(np.float32)),
            _const(p + "half_h", (sizes[level, :, 1] / 2.0).reshape(1, 1, k, 1).astype(np.float32)),
            helper.make_node("Sub", [p + "cx_grid", p + "half_w"], [p + "x1"]),  # (h, w, K, 1)
            helper.make_node("Sub", [p + "cy_grid", p + "half_h"], [p + "y1"]),
            helper.make_node("Add", [p + "cx_grid", p + "half_w"], [p + "x2"]),
            helper.make_node("Add", [p + "cy_grid", p + "half_h"], [p + "y2"]),
            helper.make_node("Concat", [p + "x1", p + "y1", p + "x2", p + "y2"], [p + "anchors"], axis=3),
            helper.make_node("Reshape", [p + "anchors", "boxes_shape"], [p + "boxes"]),
        ]
        level_boxes.append(p + "boxes")
        level_scores.append(p + "scores")
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", f"h{level}", f"w{level}", FEATURES]))
    nodes += [
        helper.make_node("Concat", level_boxes, ["anchor_boxes"], axis=1),  # (1, A, 4)
        # the same boxes for every image of the batch: (N, A, 4)
        helper.make_node("Shape", ["image"], ["image_shape"]),
        helper.make_node("Slice", ["image_shape", "zero_1d", "one_1d"], ["batch_1d"]),
        helper.make_node("Concat", ["batch_1d", "one_1d", "one_1d"], ["box_repeats"], axis=0),
        helper.make_node("Tile", ["anchor_boxes", "box_repeats"], ["boxes"]),
        helper.make_node("Concat", level_scores, ["scores"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "retinanet_studio_test_model",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", "H", "W", 3])],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["N", "A", 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", "A", num_classes]),
            *outputs,
        ],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="retinanet-studio-tests")
    model.ir_version = 8
    helper.set_model_props(model, contract_metadata(class_names=class_names, anchors=anchors, default_size=default_size, version=1))
    if version >= 2:
        add_candidate_outputs(model)
    if metadata is not None:
        del model.metadata_props[:]
        helper.set_model_props(model, metadata)
    return model


def write_contract_model(path: Path, model: onnx.ModelProto | None = None) -> Path:
    """Write ``model`` (default: :func:`build_contract_model`) to ``path``."""
    path.write_bytes((model or build_contract_model()).SerializeToString())
    return path


def set_output_dims(model: onnx.ModelProto, name: str, dims: Sequence[int | str]) -> onnx.ModelProto:
    """``model`` with graph output ``name`` declared with ``dims`` (in place)."""
    for output in model.graph.output:
        if output.name == name:
            output.CopyFrom(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(dims)))
            return model
    raise KeyError(name)


def remove_output(model: onnx.ModelProto, name: str) -> onnx.ModelProto:
    """``model`` without graph output ``name`` (in place)."""
    keep = [o for o in model.graph.output if o.name != name]
    del model.graph.output[:]
    model.graph.output.extend(keep)
    return model


def red_square_image(*, width: int = 300, height: int = 200, box: tuple[int, int, int, int] = (60, 40, 140, 120), color: int = 0) -> np.ndarray:
    """(height, width, 3) uint8 RGB, black with a pure ``color`` channel rectangle at xyxy ``box``."""
    image = np.zeros((height, width, 3), np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2, color] = 255
    return image


def cuda_detector(path: Path, **load_options: object):
    """A Detector on ``path`` really running on CUDA (``Detector.load`` options added), or
    skip the test with the reason choose_providers gives (no driver, no CUDA libraries...)."""
    from model.providers import CUDA, choose_providers
    from model.runtime import Detector

    chosen, notes = choose_providers(["cuda"])
    if CUDA not in chosen:
        pytest.skip(f"CUDAExecutionProvider cannot be used here: {'; '.join(notes) or 'not chosen'}")
    detector = Detector.load(path, providers=["cuda"], **load_options)
    assert detector.providers[0] == CUDA, detector.provider_notes
    return detector
