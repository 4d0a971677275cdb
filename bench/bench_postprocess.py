"""Post-processing speed: our ``select`` on cached candidates vs TensorFlow's combined NMS.

Run by hand (not part of the tests)::

    python bench/bench_postprocess.py [--repeat 30] [--seed 0]

Builds random-but-realistic cached outputs for a 640x640 input with 80 classes (the
standard P3..P7 anchors: 76,725 anchors x 80 classes): a dozen objects whose nearby anchors
score high with boxes close to the object, on a background of low sigmoid scores, about 5k
(anchor, class) pairs above the 0.05 floor. Then prints, in one run, the median time of
``tf.image.combined_non_max_suppression`` on the full arrays, the one-time
``extract_candidates`` cost, our ``select`` on the cached candidates, and the ratio, for the
slider's floor (0.05) and the default score threshold (0.3). It also checks that ``select``
on all candidates (``topk_per_level=None``) returns what TensorFlow returns.

Host candidate work per network run, contract v1 against v2, on the same outputs:

- v1: the runtime maps the dense boxes to image pixels and ``extract_candidates`` scans all
  anchors x classes;
- v2: the graph's per-level TopK (model.candidate_graph) ran inside onnxruntime; the host
  keeps score > floor, sorts and maps the ~5k candidate boxes (``candidates_from_selection``).
  The in-graph part is timed too (onnxruntime, CPU provider, on a graph holding these
  outputs), since on a CPU it moves from the host into the network call.

Every figure line names the machine (CPU model, cores, ISA from /proc/cpuinfo).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # model/ and bench/ from a checkout

from bench.machine import cpu_description  # noqa: E402
from model.anchors import anchor_offsets, generate_anchors, level_shapes  # noqa: E402
from model.boxes import decode_boxes, iou_matrix  # noqa: E402
from model.config import AnchorConfig  # noqa: E402
from model.letterbox import boxes_to_original  # noqa: E402
from model.postprocess import candidates_from_selection, extract_candidates, select  # noqa: E402

SIZE = 640
NUM_CLASSES = 80


def realistic_outputs(
    rng: np.random.Generator, *, size: int = SIZE, num_classes: int = NUM_CLASSES, num_objects: int = 12
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decoded boxes (A, 4) xyxy, sigmoid scores (A, C) float32 and anchor offsets (L + 1,)
    that look like a trained RetinaNet's on a busy image."""
    config = AnchorConfig()
    anchors = generate_anchors((size, size), config)
    offsets = anchor_offsets(level_shapes((size, size), config.strides), config.anchors_per_cell)
    num_anchors = anchors.shape[0]
    # background: logits around -6.7 -> sigmoid ~0.0012; about 1 in 2,500 above 0.05
    logits = rng.normal(-6.7, 1.1, size=(num_anchors, num_classes)).astype(np.float32)
    deltas = rng.normal(0.0, 1.0, size=(num_anchors, 4)).astype(np.float32)
    # objects: a few classes dominate, as in a real scene
    sides = np.exp(rng.uniform(np.log(24), np.log(400), size=(num_objects, 2)))
    centres = rng.uniform(0, size, size=(num_objects, 2))
    gt = np.concatenate([centres - sides / 2, centres + sides / 2], axis=1).clip(0, size).astype(np.float32)
    gt_classes = rng.choice(6, size=num_objects) * 7  # 6 of the 80 classes
    iou = iou_matrix(anchors, gt)  # (A, G)
    boxes = decode_boxes(deltas, anchors, variance=config.box_variance)
    for g in range(num_objects):
        near = np.flatnonzero(iou[:, g] > 0.25)
        quality = iou[near, g]
        logits[near, gt_classes[g]] = np.maximum(logits[near, gt_classes[g]], -4.0 + 9.0 * quality + rng.normal(0, 0.8, near.size))
        jitter = rng.normal(0.0, 1.0, size=(near.size, 4)) * (1.0 - quality)[:, None] * (sides[g].mean() * 0.15)
        boxes[near] = gt[g] + jitter.astype(np.float32)
    boxes = np.concatenate([np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])], axis=1)
    scores = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    return boxes.astype(np.float32), scores, offsets


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def selection_session(boxes: np.ndarray, scores: np.ndarray, *, candidates: bool, size: int = SIZE):
    """An onnxruntime CPU session fed these dense outputs as inputs (``dense_boxes`` (A, 4),
    ``dense_logits`` (A, C), the scores' logits) that returns ``boxes`` / ``scores``, with contract v2's
    candidate nodes on top when ``candidates``: v2 fetching its candidates against v1
    fetching the dense outputs is what the in-graph selection costs inside the network call."""
    import json

    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from model import contract as C
    from model.candidate_graph import add_candidate_outputs
    from model.config import to_dict

    config = AnchorConfig()
    shapes = level_shapes((size, size), config.strides)
    num_classes = scores.shape[1]
    nodes = [  # the scores come out of a Sigmoid, as in an exported model (and in both graphs)
        helper.make_node("Unsqueeze", ["dense_boxes", "axis0"], [C.BOXES]),
        helper.make_node("Unsqueeze", ["dense_logits", "axis0"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], [C.SCORES]),
    ]
    inits = [numpy_helper.from_array(np.array([0], np.int64), "axis0")]
    outputs = [
        helper.make_tensor_value_info(C.BOXES, TensorProto.FLOAT, [1, None, 4]),
        helper.make_tensor_value_info(C.SCORES, TensorProto.FLOAT, [1, None, num_classes]),
    ]
    for name, (h, w) in zip(config.level_names, shapes):
        inits.append(numpy_helper.from_array(np.array([1, h, w, 1], np.int64), f"{name}_shape"))
        nodes.append(helper.make_node("ConstantOfShape", [f"{name}_shape"], [name]))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, h, w, 1]))
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 1, 3])
    graph = helper.make_graph(nodes, "candidates_bench", [image], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(
        model,
        {
            C.KEY_VERSION: "1",
            C.KEY_CLASSES: json.dumps([f"c{i}" for i in range(num_classes)]),
            C.KEY_LEVELS: json.dumps([[n, s] for n, s in zip(config.level_names, config.strides)]),
            C.KEY_ANCHORS: json.dumps(to_dict(config)),
        },
    )
    if candidates:
        add_candidate_outputs(model)
    del model.graph.input[:]  # the dense outputs come in as inputs (no copy on the CPU)
    model.graph.input.extend(
        [
            helper.make_tensor_value_info("dense_boxes", TensorProto.FLOAT, [None, 4]),
            helper.make_tensor_value_info("dense_logits", TensorProto.FLOAT, [None, num_classes]),
        ]
    )
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])


def interleaved_ms(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """Median ms of each of ``fns``, timed round-robin so machine noise hits all alike."""
    for fn in fns:
        fn()  # warm-up
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, spent in zip(fns, times):
            start = time.perf_counter()
            fn()
            spent.append((time.perf_counter() - start) * 1e3)
    return [statistics.median(t) for t in times]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iou", type=float, default=0.5)
    args = parser.parse_args(argv)

    cpu = cpu_description()
    on = f"[{cpu}]"
    boxes, scores, offsets = realistic_outputs(np.random.default_rng(args.seed))
    print(f"machine: {cpu}")
    print(f"outputs: {boxes.shape[0]:,} anchors x {scores.shape[1]} classes; {(scores > 0.05).sum():,} pairs above 0.05")

    # contract v1 vs v2: the host's candidate work per network run, on the same outputs
    image_hw = (SIZE, SIZE)
    from model import contract as C

    logits = np.log(scores) - np.log1p(-scores)
    feed = {"dense_boxes": boxes, "dense_logits": logits}
    v1_session = selection_session(boxes, scores, candidates=False)
    v2_session = selection_session(boxes, scores, candidates=True)
    graph_out = [a[0] for a in v2_session.run(list(C.CANDIDATE_OUTPUTS), feed)]
    scores = v1_session.run([C.SCORES], feed)[0][0]  # what the graph computed (sigmoid in float32)

    def v1_host() -> object:
        return extract_candidates(boxes_to_original(boxes, image_hw=image_hw, size=SIZE), scores, anchor_offsets=offsets)

    def v2_host() -> object:
        cands = candidates_from_selection(*graph_out)
        return boxes_to_original(cands.boxes, image_hw=image_hw, size=SIZE)

    v1 = v1_host()
    v2 = candidates_from_selection(*graph_out)
    same = all(np.array_equal(getattr(v1, n), getattr(v2, n)) for n in ("scores", "class_ids", "anchor_ids", "level_ids"))
    extract_only_ms = median_ms(lambda: extract_candidates(boxes, scores, anchor_offsets=offsets), args.repeat)
    v1_ms = median_ms(v1_host, args.repeat)
    v2_ms = median_ms(v2_host, args.repeat)
    dense_ms, lean_ms = interleaved_ms(
        [lambda: v1_session.run([C.BOXES, C.SCORES], feed), lambda: v2_session.run(list(C.CANDIDATE_OUTPUTS), feed)], args.repeat
    )
    k = graph_out[1].shape[0]
    print(f"host candidate work, v1 (map {boxes.shape[0]:,} dense boxes + extract_candidates): {v1_ms:.2f} ms {on}")
    print(f"  extract_candidates alone: {extract_only_ms:.2f} ms {on}")
    print(f"host candidate work, v2 (keep > floor, sort, map the boxes of {k:,} in-graph candidates): {v2_ms:.3f} ms {on}")
    print(f"  {v1_ms / v2_ms:.0f}x less than v1; the same {len(v2):,} candidates as v1: {same}")
    print(
        f"onnxruntime CPU provider, same outputs: v1 graph fetching dense boxes + scores {dense_ms:.2f} ms, v2 graph fetching"
        f" its candidates {lean_ms:.2f} ms: the in-graph selection costs {lean_ms - dense_ms:+.2f} ms in the network call {on}"
    )
    dense_bytes = boxes.nbytes + scores.nbytes
    cand_bytes = sum(a.nbytes for a in graph_out)
    print(f"bytes to the host per image: v1 {dense_bytes / 1e6:.1f} MB (dense boxes + scores), v2 {cand_bytes / 1e3:.0f} KB (candidates)")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf_boxes = tf.constant(boxes[None, :, None, :][..., [1, 0, 3, 2]])  # [1, A, 1, 4] y1, x1, y2, x2
    tf_scores = tf.constant(scores[None])

    candidates = extract_candidates(boxes, scores, anchor_offsets=offsets)
    all_candidates = extract_candidates(boxes, scores, anchor_offsets=offsets, topk_per_level=None)

    for score_thresh in (0.05, 0.3):

        def run_tf(score_thresh: float = score_thresh) -> object:
            return tf.image.combined_non_max_suppression(
                tf_boxes, tf_scores, 100, 100, iou_threshold=args.iou, score_threshold=score_thresh, clip_boxes=False
            )

        def run_ours(score_thresh: float = score_thresh) -> object:
            return select(candidates, score_thresh=score_thresh, iou_thresh=args.iou, max_per_class=100, max_total=100)

        tf_ms = median_ms(run_tf, args.repeat)
        ours_ms = median_ms(run_ours, args.repeat)
        out = run_tf()
        n = int(out.valid_detections[0])
        ours_all = select(all_candidates, score_thresh=score_thresh, iou_thresh=args.iou, max_per_class=100, max_total=100)
        same = (
            len(ours_all) == n
            and np.array_equal(ours_all.scores, out.nmsed_scores[0, :n].numpy())
            and np.array_equal(ours_all.class_ids, out.nmsed_classes[0, :n].numpy().astype(np.int64))
            and np.array_equal(ours_all.boxes[:, [1, 0, 3, 2]], out.nmsed_boxes[0, :n].numpy())
        )
        above = int((candidates.scores > score_thresh).sum())
        print(
            f"score > {score_thresh:.2f}, IoU {args.iou}: TF combined NMS {tf_ms:.2f} ms | select {ours_ms:.3f} ms on {above:,} candidates"
            f" | {tf_ms / ours_ms:.1f}x faster | {n} detections, identical to TF (all candidates): {same} {on}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
