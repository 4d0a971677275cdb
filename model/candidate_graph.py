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

Per level, the pair TopK does not scan all A_l x C pairs: a ReduceMax over classes and a
TopK over anchors first keep the best k anchors (by their best class), which must hold every
best-k pair, and the pair TopK runs over those k x C (bench/bench_postprocess.py on a 2-core
AMD EPYC, 640 px, 80 classes: the whole selection adds 4.9-6.4 ms to the onnxruntime call,
against 9.0 ms with one TopK over all 6.1 M pairs of a level).

Written with ``onnx.helper`` (no TensorFlow): the exporter, the fp16 and int8 copies (which
start from an exported file) and the test models all get the same nodes. Ops: Shape, Gather,
Slice, ReduceMax, TopK, GatherND, GatherElements, Reshape, Div, Mul, Sub, Add, Min, Concat,
Unsqueeze, Cast (opset 13..17: ReduceMax takes ``axes`` as an attribute); the shape arithmetic
stays on the host side of onnxruntime, the rest runs on CUDA (TopK on float32 only).
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
    # (N, A, C) -> (N, A): every anchor's best class score, the one pass over all pairs
    nodes.append(helper.make_node("ReduceMax", [C.SCORES], [p + "anchor_best"], axes=[2], keepdims=0, name=p + "anchor_best"))
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
            # Only anchors among the best k by their best class can hold a best-k pair (each
            # better anchor holds a pair at least as good, ties going to the lower anchor), so
            # the pair TopK runs over k x C pairs instead of A_l x C (4.6 M at P3, 640 px).
            helper.make_node("Slice", [p + "anchor_best", offset, q + "end", p + "one_i"], [q + "anchor_best"], name=q + "anchor_best"),
            helper.make_node("Min", [q + "count", p + "topk"], [q + "k_anchors"], name=q + "k_anchors"),
            helper.make_node(
                "TopK", [q + "anchor_best", q + "k_anchors"], [q + "best_values", q + "best_local"], axis=-1, largest=1, sorted=1, name=q + "topk_anchors"
            ),
            # in anchor order, so that equal scores keep ONNX TopK's lower-index-first rule
            # meaning lower anchor, then lower class, as on the host. Sorted as float32 (exact
            # below 2^24 anchors per level; 4096 px gives 2.4 M at P3): a float TopK runs on
            # every provider.
            helper.make_node("Cast", [q + "best_local"], [q + "best_local_f"], to=TensorProto.FLOAT, name=q + "best_local_f"),
            helper.make_node(
                "TopK", [q + "best_local_f", q + "k_anchors"], [q + "kept_local_f", q + "unused"], axis=-1, largest=0, sorted=1, name=q + "sort_anchors"
            ),
            helper.make_node("Cast", [q + "kept_local_f"], [q + "kept_local"], to=TensorProto.INT64, name=q + "kept_local"),
            helper.make_node("Add", [q + "kept_local", offset], [q + "kept_anchors"], name=q + "kept_anchors"),
            helper.make_node("Unsqueeze", [q + "kept_anchors", p + "minus_one"], [q + "kept_index"], name=q + "kept_index"),
            helper.make_node("GatherND", [C.SCORES, q + "kept_index"], [q + "kept_scores"], batch_dims=1, name=q + "kept_scores"),
            # (N, k_a, C) -> (N, k_a * C): anchor-major, class-minor
            helper.make_node("Reshape", [q + "kept_scores", p + "flat_shape"], [q + "flat"], name=q + "flat"),
            helper.make_node("Mul", [q + "count", p + "num_classes_1d"], [q + "pairs"], name=q + "pairs"),
            helper.make_node("Min", [q + "pairs", p + "topk"], [q + "k"], name=q + "k"),
            helper.make_node("TopK", [q + "flat", q + "k"], [q + "top_scores", q + "pair_ids"], axis=-1, largest=1, sorted=1, name=q + "topk"),
            # pair id -> (kept anchor, class); anchor ids count from the first level
            helper.make_node("Div", [q + "pair_ids", p + "num_classes"], [q + "kept_slot"], name=q + "kept_slot"),
            helper.make_node("Mul", [q + "kept_slot", p + "num_classes"], [q + "pair_base"], name=q + "pair_base"),
            helper.make_node("Sub", [q + "pair_ids", q + "pair_base"], [q + "class_ids"], name=q + "class_ids"),
            helper.make_node("GatherElements", [q + "kept_anchors", q + "kept_slot"], [q + "anchor_ids"], axis=1, name=q + "anchor_ids"),
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
