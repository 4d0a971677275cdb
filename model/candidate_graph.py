"""Candidate selection inside the graph: turns a version-1 contract graph into version 2.

The nodes added here read the graph's dense ``scores`` [N, A, C] and ``boxes`` [N, A, 4] and
the pyramid outputs' shapes (for each level's anchor count), and return, per image, the best
``topk_per_level`` (anchor, class) pairs of every level:

    candidate_boxes [N, K, 4] float32 xyxy input pixels   candidate_scores [N, K] float32
    candidate_class_ids / candidate_anchor_ids / candidate_level_ids [N, K] int64

K = sum over levels of k_l = min(topk_per_level, A_l * C), level-major, each level's block
sorted by score (ties: lower anchor, then lower class first, ONNX TopK's rule). No floor is
applied in the graph: the runtime keeps ``score > floor``. The best k of a level restricted
to ``score > floor`` is exactly the best min(k, count above the floor) of those above it, so
this is what :func:`model.postprocess.extract_candidates` keeps from the dense outputs, for
any floor. About 5,000 candidates at 640 px (five levels) cost ~220 KB per image against
~26 MB of dense ``scores`` + ``boxes`` for 80 classes.

Written with ``onnx.helper`` (no TensorFlow): the exporter, the fp16 and int8 copies (which
start from an exported file) and the test models all get the same nodes. Ops: Shape, Gather,
Slice, Reshape, TopK, Div, Mul, Sub, Add, Concat, Unsqueeze, GatherND (opset >= 12); the
shape arithmetic stays on the host side of onnxruntime, TopK and GatherND run on CUDA.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from model import contract as C

TOPK_PER_LEVEL = 1000
_PREFIX = "candidates/"


def _const(name: str, value: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name), name=name)


def add_candidate_outputs(proto: onnx.ModelProto, *, topk_per_level: int = TOPK_PER_LEVEL) -> onnx.ModelProto:
    """Add the version-2 candidate outputs to the version-1 contract model ``proto`` (in
    place) and mark it version 2; returns ``proto``. Raises ModelContractError when
    ``proto`` is not a valid version-1 model, ValueError for a non-positive ``topk_per_level``."""
    if topk_per_level <= 0:
        raise ValueError(f"topk_per_level must be positive, got {topk_per_level}")
    contract = C.contract_from_proto(proto, "<graph being exported>")
    if contract.version != 1:
        raise ValueError(f"the graph is already contract version {contract.version}")
    p = _PREFIX
    num_classes, per_cell = contract.num_classes, contract.anchors_per_cell
    nodes = [
        _const(p + "one_i", np.array([1], np.int64)),
        _const(p + "two_i", np.array([2], np.int64)),
        _const(p + "anchors_per_cell", np.array([per_cell], np.int64)),
        _const(p + "num_classes_1d", np.array([num_classes], np.int64)),
        _const(p + "num_classes", np.array(num_classes, np.int64)),
        _const(p + "topk", np.array([topk_per_level], np.int64)),
        _const(p + "flat_shape", np.array([0, -1], np.int64)),
        _const(p + "zero_1d", np.array([0], np.int64)),
        _const(p + "zero", np.array(0, np.int64)),
    ]
    offset = p + "zero_1d"
    parts: dict[str, list[str]] = {"scores": [], "class_ids": [], "anchor_ids": [], "level_ids": []}
    for index, level in enumerate(contract.levels):
        q = f"{p}{level.name}/"
        nodes += [
            # anchors of this level: h * w * anchors_per_cell, from its pyramid output's shape
            helper.make_node("Shape", [level.name], [q + "shape"], name=q + "shape"),
            helper.make_node("Gather", [q + "shape", p + "one_i"], [q + "h"], axis=0, name=q + "h"),
            helper.make_node("Gather", [q + "shape", p + "two_i"], [q + "w"], axis=0, name=q + "w"),
            helper.make_node("Mul", [q + "h", q + "w"], [q + "cells"], name=q + "cells"),
            helper.make_node("Mul", [q + "cells", p + "anchors_per_cell"], [q + "count"], name=q + "count"),
            helper.make_node("Add", [offset, q + "count"], [q + "end"], name=q + "end"),
            # (N, A, C) -> this level's (N, A_l, C) -> (N, A_l * C): anchor-major, class-minor
            helper.make_node("Slice", [C.SCORES, offset, q + "end", p + "one_i"], [q + "scores"], name=q + "slice"),
            helper.make_node("Reshape", [q + "scores", p + "flat_shape"], [q + "flat"], name=q + "flat"),
            helper.make_node("Mul", [q + "count", p + "num_classes_1d"], [q + "pairs"], name=q + "pairs"),
            helper.make_node("Min", [q + "pairs", p + "topk"], [q + "k"], name=q + "k"),
            helper.make_node("TopK", [q + "flat", q + "k"], [q + "top_scores", q + "pair_ids"], axis=-1, largest=1, sorted=1, name=q + "topk"),
            # pair id -> (anchor within the level, class); anchor ids count from the first level
            helper.make_node("Div", [q + "pair_ids", p + "num_classes"], [q + "local_anchor"], name=q + "local_anchor"),
            helper.make_node("Mul", [q + "local_anchor", p + "num_classes"], [q + "pair_base"], name=q + "pair_base"),
            helper.make_node("Sub", [q + "pair_ids", q + "pair_base"], [q + "class_ids"], name=q + "class_ids"),
            helper.make_node("Add", [q + "local_anchor", offset], [q + "anchor_ids"], name=q + "anchor_ids"),
            _const(q + "index", np.array(index, np.int64)),
            helper.make_node("Mul", [q + "pair_ids", p + "zero"], [q + "zeros"], name=q + "zeros"),
            helper.make_node("Add", [q + "zeros", q + "index"], [q + "level_ids"], name=q + "level_ids"),
        ]
        parts["scores"].append(q + "top_scores")
        parts["class_ids"].append(q + "class_ids")
        parts["anchor_ids"].append(q + "anchor_ids")
        parts["level_ids"].append(q + "level_ids")
        offset = q + "end"
    names = {
        "scores": C.CANDIDATE_SCORES,
        "class_ids": C.CANDIDATE_CLASS_IDS,
        "anchor_ids": C.CANDIDATE_ANCHOR_IDS,
        "level_ids": C.CANDIDATE_LEVEL_IDS,
    }
    for key, out in names.items():
        nodes.append(helper.make_node("Concat", parts[key], [out], axis=1, name=p + key))
    nodes += [
        helper.make_node("Unsqueeze", [C.CANDIDATE_ANCHOR_IDS, p + "minus_one"], [p + "gather_ids"], name=p + "gather_ids"),
        helper.make_node("GatherND", [C.BOXES, p + "gather_ids"], [C.CANDIDATE_BOXES], batch_dims=1, name=p + "boxes"),
    ]
    nodes.insert(0, _const(p + "minus_one", np.array([-1], np.int64)))
    proto.graph.node.extend(nodes)
    proto.graph.output.extend(
        [
            helper.make_tensor_value_info(C.CANDIDATE_BOXES, TensorProto.FLOAT, ["N", "K", 4]),
            helper.make_tensor_value_info(C.CANDIDATE_SCORES, TensorProto.FLOAT, ["N", "K"]),
            helper.make_tensor_value_info(C.CANDIDATE_CLASS_IDS, TensorProto.INT64, ["N", "K"]),
            helper.make_tensor_value_info(C.CANDIDATE_ANCHOR_IDS, TensorProto.INT64, ["N", "K"]),
            helper.make_tensor_value_info(C.CANDIDATE_LEVEL_IDS, TensorProto.INT64, ["N", "K"]),
        ]
    )
    meta = {e.key: e for e in proto.metadata_props}
    meta[C.KEY_VERSION].value = "2"
    entry = meta.get(C.KEY_CANDIDATES) or proto.metadata_props.add()
    entry.key, entry.value = C.KEY_CANDIDATES, json.dumps({"topk_per_level": topk_per_level})
    C.contract_from_proto(proto, "<graph being exported>")  # the result must be a valid version 2
    return proto
