"""Score filtering + class-aware NMS on cached network outputs.

Semantics are exactly those of ``tf.image.combined_non_max_suppression`` with
``clip_boxes=False`` and ``pad_per_class=False`` for one image:

- per class, candidates with score ``> score_thresh`` (strict, in float32);
- greedy NMS in score order: a candidate is suppressed by an already kept box of its class
  when their IoU is ``> iou_thresh`` (strict: IoU == iou_thresh keeps both). IoU is computed
  in float32 the way TensorFlow does: corners are min/max-normalised and a box with zero
  area overlaps nothing;
- at most ``max_per_class`` kept boxes per class, then the best ``max_total`` over all
  classes, sorted by score (descending).

The expensive part — touching all anchors x classes — happens once per network run
(:func:`extract_candidates`); :func:`select` then works on the small candidate set and is
cheap enough to follow a slider. Boxes are x1, y1, x2, y2 everywhere in this module.

:class:`PostProcessor` is the one post-processing object of the product (torchvision's
``score_thresh`` / ``nms_thresh`` / ``detections_per_img``, keras-hub's
``prediction_decoder``): its thresholds are its state, calling it on candidates gives
detections. The app's sliders, its quality dock, ``detect``, ``evaluate`` and training
validation all post-process through one.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np

from model.anchors import anchor_levels

# Candidates below this score are never shown: the score slider's lower bound
# (torchvision's RetinaNet uses the same 0.05 floor).
CANDIDATE_FLOOR = 0.05
# At most this many candidates per pyramid level (torchvision's topk_candidates).
TOPK_PER_LEVEL = 1000
#: batched_nms pads the classes of one kernel call to the largest; a call takes classes while
#: the padding stays under twice their boxes plus this many.
NMS_PAD_SLACK = 4096


@dataclass(frozen=True)
class Detections:
    """K detections sorted by score, descending.

    boxes (K, 4) float32 xyxy in original-image pixels; scores (K,) float32; class_ids,
    anchor_ids, level_ids (K,) int64.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    anchor_ids: np.ndarray
    level_ids: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), *(np.zeros(0, np.int64) for _ in range(3))
        )


@dataclass(frozen=True)
class Candidates:
    """(anchor, class) pairs above the floor, sorted by score descending; M of them.

    boxes (M, 4) float32 xyxy, scores (M,) float32, class_ids / anchor_ids / level_ids (M,)
    int64; ``floor`` is the score they were extracted above (``select`` cannot go lower).
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    anchor_ids: np.ndarray
    level_ids: np.ndarray
    floor: float

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def extract_candidates(
    boxes: np.ndarray,
    scores: np.ndarray,
    *,
    anchor_offsets: np.ndarray | None = None,
    floor: float = CANDIDATE_FLOOR,
    topk_per_level: int | None = TOPK_PER_LEVEL,
) -> Candidates:
    """Candidates from one image's outputs: boxes (A, 4) xyxy, scores (A, C).

    Keeps (anchor, class) pairs with score > ``floor``; with ``anchor_offsets`` (the
    (L + 1,) level starts) and ``topk_per_level``, only the best ``topk_per_level`` of each
    level (None keeps all, which is what the combined-NMS equivalence needs).
    """
    boxes = np.asarray(boxes, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float32)
    if scores.ndim != 2 or boxes.shape != (scores.shape[0], 4):
        raise ValueError(f"expected boxes (A, 4) and scores (A, C), got {boxes.shape} and {scores.shape}")
    anchor_ids, class_ids = np.nonzero(scores > np.float32(floor))
    cand_scores = scores[anchor_ids, class_ids]
    offsets = anchor_offsets if anchor_offsets is not None else np.array([0, scores.shape[0]], np.int64)
    level_ids = anchor_levels(offsets, anchor_ids)
    if topk_per_level is not None:
        keep = []
        for level in range(len(offsets) - 1):
            idx = np.flatnonzero(level_ids == level)
            if idx.size > topk_per_level:
                # the best topk_per_level; equal scores: lower (anchor, class) first, the order
                # nonzero gives and ONNX TopK's tie rule (the graph of contract v2 does the same)
                idx = idx[np.argsort(-cand_scores[idx], kind="stable")[:topk_per_level]]
            keep.append(idx)
        sel = np.concatenate(keep) if keep else np.zeros(0, np.int64)
        anchor_ids, class_ids, cand_scores, level_ids = anchor_ids[sel], class_ids[sel], cand_scores[sel], level_ids[sel]
    # score descending; equal scores keep (anchor, class) order
    order = np.lexsort((class_ids, anchor_ids, -cand_scores))
    return Candidates(
        boxes=boxes[anchor_ids[order]],
        scores=cand_scores[order],
        class_ids=class_ids[order].astype(np.int64),
        anchor_ids=anchor_ids[order].astype(np.int64),
        level_ids=level_ids[order].astype(np.int64),
        floor=float(floor),
    )


def candidates_from_selection(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    anchor_ids: np.ndarray,
    level_ids: np.ndarray,
    *,
    floor: float = CANDIDATE_FLOOR,
) -> Candidates:
    """Candidates from one image's in-graph selection (contract v2; see
    model.candidate_graph): boxes (K, 4) xyxy, scores (K,), class / anchor / level ids (K,),
    each level's best pairs. Keeps score > ``floor`` and sorts like :func:`extract_candidates`
    (score descending, equal scores by anchor then class), so both give the same Candidates
    for the same network outputs. Costs O(K), not O(A x C)."""
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    keep = np.flatnonzero(scores > np.float32(floor))
    anchors = np.asarray(anchor_ids, dtype=np.int64).reshape(-1)[keep]
    classes = np.asarray(class_ids, dtype=np.int64).reshape(-1)[keep]
    order = keep[np.lexsort((classes, anchors, -scores[keep]))]
    return Candidates(
        boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4)[order],
        scores=scores[order],
        class_ids=np.asarray(class_ids, dtype=np.int64).reshape(-1)[order],
        anchor_ids=np.asarray(anchor_ids, dtype=np.int64).reshape(-1)[order],
        level_ids=np.asarray(level_ids, dtype=np.int64).reshape(-1)[order],
        floor=float(floor),
    )


def batched_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    *,
    iou_thresh: float,
    max_per_class: int,
    max_total: int,
) -> np.ndarray:
    """Greedy class-aware NMS: indices of the kept boxes, best score first.

    boxes (N, 4) xyxy, scores (N,), class_ids (N,) non-negative ints. Within a class, boxes
    are visited by score (equal scores: lower index first); a box is kept unless a kept box
    of its class has IoU > ``iou_thresh`` with it, and a class stops after
    ``max_per_class`` kept boxes. At most ``max_total`` indices are returned. Boxes scoring
    NaN or -inf are never kept (TensorFlow's default ``score_threshold`` of -inf).

    The greedy passes run in onnxruntime's ``NonMaxSuppression`` kernel (:func:`_nms_session`),
    one batch entry per class. Its IoU is TensorFlow's float32 arithmetic term for term, so
    the result is TensorFlow's to the bit. It is handed each box's rank in the order above
    rather than its score, which pins the order of equal scores (the kernel's own order for
    ties is unspecified).
    """
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    n = scores.shape[0]
    if n == 0 or max_per_class <= 0 or max_total <= 0:
        return np.zeros(0, np.int64)
    boxes = np.asarray(boxes, dtype=np.float32).reshape(n, 4)
    class_ids = np.asarray(class_ids, dtype=np.int64).reshape(n)
    by_score = np.argsort(-scores, kind="stable")
    by_score = by_score[scores[by_score] > -np.inf]
    by_class = class_ids[by_score]
    if by_class.size and 0 <= by_class.min() and by_class.max() < 1 << 16:
        by_class = by_class.astype(np.uint16)  # a radix sort: 2-3x faster
    order = by_score[np.argsort(by_class, kind="stable")]  # by class, by score inside
    if order.size == 0:
        return np.zeros(0, np.int64)
    cls = class_ids[order]
    is_first = np.empty(order.size, bool)
    is_first[0] = True
    np.not_equal(cls[1:], cls[:-1], out=is_first[1:])
    starts = np.flatnonzero(is_first)
    thresh = float(iou_thresh)
    if thresh < 0:  # every IoU, 0 included, is above it: each class keeps its best box
        kept = order[starts]
    else:
        counts = np.diff(np.append(starts, order.size))
        kept = np.concatenate(
            [
                # a class's boxes after its first max_total kept can never make the cut
                _nms_slots(boxes, order, starts[group], counts[group], 1.0 if math.isnan(thresh) else min(thresh, 1.0), min(max_per_class, max_total))
                for group in _slot_groups(counts)
            ]
        )
    rank = np.empty(n, np.int64)
    rank[by_score] = np.arange(by_score.size)
    kept = kept[np.argsort(rank[kept], kind="stable")]
    return kept[:max_total].astype(np.int64)


def _slot_groups(counts: np.ndarray) -> list[np.ndarray]:
    """Classes (their box counts) grouped for one kernel call each, so that padding every
    class of a group to its largest stays within about twice the boxes (plus a slack)."""
    if counts.size * int(counts.max()) <= 2 * int(counts.sum()) + NMS_PAD_SLACK:
        return [np.arange(counts.size)]
    by_size = np.argsort(-counts, kind="stable")
    sizes = counts[by_size]
    groups = []
    i = 0
    while i < sizes.size:
        rest = sizes[i:]
        fits = np.arange(1, rest.size + 1) * rest[0] <= 2 * np.cumsum(rest) + NMS_PAD_SLACK
        j = i + (int(np.argmin(fits)) if not fits.all() else rest.size)
        groups.append(by_size[i:j])
        i = j
    return groups


def _nms_slots(
    boxes: np.ndarray, order: np.ndarray, starts: np.ndarray, counts: np.ndarray, iou_thresh: float, max_per_class: int
) -> np.ndarray:
    """One ``NonMaxSuppression`` call on the classes whose boxes are ``order[start:start +
    count]`` (best first): each class one batch entry, padded to the largest. Returns the
    kept indices into ``boxes``."""
    width = int(counts.max())
    if width >= 1 << 24:  # ranks must be exact in float32
        raise ValueError(f"batched_nms: {width:,} boxes of one class is more than it can rank (at most {(1 << 24) - 1:,})")
    slots = np.repeat(np.arange(counts.size), counts)
    pos = np.arange(slots.size) - np.repeat(np.cumsum(counts) - counts, counts)
    members = order[np.repeat(starts, counts) + pos]
    flat = slots * width + pos
    padded = np.empty((counts.size * width, 4), np.float32)  # padding is never read: it ranks 0
    padded[flat] = boxes[members]
    ranks = np.zeros(counts.size * width, np.float32)  # padding: 0, below the threshold
    ranks[flat] = width - pos
    (selected,) = _nms_session().run(
        None,
        {
            "boxes": padded.reshape(counts.size, width, 4),
            "scores": ranks.reshape(counts.size, 1, width),
            "max_output_boxes_per_class": np.array([max_per_class], np.int64),
            "iou_threshold": np.array([iou_thresh], np.float32),
            "score_threshold": np.zeros(1, np.float32),
        },
    )
    return members[(np.cumsum(counts) - counts)[selected[:, 0]] + selected[:, 2]]


@functools.cache
def _nms_session() -> Any:
    """An onnxruntime session holding one ``NonMaxSuppression`` node (CPU, one thread)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    inputs = [
        ("boxes", TensorProto.FLOAT, ["slots", "boxes", 4]),
        ("scores", TensorProto.FLOAT, ["slots", 1, "boxes"]),
        ("max_output_boxes_per_class", TensorProto.INT64, [1]),
        ("iou_threshold", TensorProto.FLOAT, [1]),
        ("score_threshold", TensorProto.FLOAT, [1]),
    ]
    graph = helper.make_graph(
        [helper.make_node("NonMaxSuppression", [name for name, _, _ in inputs], ["selected"])],
        "batched_nms",
        [helper.make_tensor_value_info(*spec) for spec in inputs],
        [helper.make_tensor_value_info("selected", TensorProto.INT64, ["kept", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=7)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def select(
    candidates: Candidates,
    *,
    score_thresh: float,
    iou_thresh: float,
    max_per_class: int = 100,
    max_total: int = 100,
    class_ids: Collection[int] | None = None,
) -> Detections:
    """Score threshold + class-aware NMS on ``candidates`` -> Detections (cheap).

    Keeps candidates with score > ``score_thresh`` (of ``class_ids`` only, when given), then
    :func:`batched_nms`. ``score_thresh`` below ``candidates.floor`` acts as the floor.
    """
    mask = candidates.scores > np.float32(score_thresh)
    if class_ids is not None:
        mask &= np.isin(candidates.class_ids, np.fromiter(class_ids, np.int64))
    idx = np.flatnonzero(mask)
    kept = idx[
        batched_nms(
            candidates.boxes[idx],
            candidates.scores[idx],
            candidates.class_ids[idx],
            iou_thresh=iou_thresh,
            max_per_class=max_per_class,
            max_total=max_total,
        )
    ]
    if kept.size == 0:
        return Detections.empty()
    return Detections(
        boxes=candidates.boxes[kept],
        scores=candidates.scores[kept],
        class_ids=candidates.class_ids[kept],
        anchor_ids=candidates.anchor_ids[kept],
        level_ids=candidates.level_ids[kept],
    )


@dataclass(frozen=True)
class PostProcessor:
    """Score threshold + class-aware NMS with its settings as state: candidates -> Detections.

    ``score_thresh``: keep scores > it (below the candidates' floor acts as the floor);
    ``iou_thresh``: suppress a box whose IoU with a kept box of its class is > it;
    ``max_per_class`` / ``max_total``: caps per class and over all classes; ``class_ids``:
    only these classes (None: every class). Semantics of :func:`select` (and of
    ``tf.image.combined_non_max_suppression``). Immutable and hashable: a changed setting is
    a new object (:meth:`with_`), so it can be handed around and used as a cache key.
    """

    score_thresh: float = 0.3
    iou_thresh: float = 0.5
    max_per_class: int = 100
    max_total: int = 100
    class_ids: frozenset[int] | None = None

    def __post_init__(self) -> None:
        for name in ("score_thresh", "iou_thresh"):
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.floating, np.integer)) or isinstance(value, bool) or math.isnan(value):
                raise ValueError(f"PostProcessor: {name} must be a number, got {value!r}")
        for name in ("max_per_class", "max_total"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"PostProcessor: {name} must be a whole number >= 0, got {value!r}")
        if self.class_ids is not None and not isinstance(self.class_ids, frozenset):
            object.__setattr__(self, "class_ids", frozenset(int(c) for c in self.class_ids))

    @classmethod
    def with_max_detections(cls, max_detections: int, **settings: Any) -> PostProcessor:
        """One cap for both ``max_per_class`` and ``max_total`` (the app's *Max detections*)."""
        return cls(max_per_class=max_detections, max_total=max_detections, **settings)

    @property
    def max_detections(self) -> int:
        """The overall cap (``max_total``): what the app shows as *Max detections*."""
        return self.max_total

    def with_(self, **changes: Any) -> PostProcessor:
        """A copy with ``changes`` (field names); ``max_detections=n`` sets both caps."""
        if "max_detections" in changes:
            n = changes.pop("max_detections")
            changes.setdefault("max_per_class", n)
            changes.setdefault("max_total", n)
        return dataclasses.replace(self, **changes)

    def __call__(self, candidates: Candidates) -> Detections:
        """Detections of one image's ``candidates`` at these settings (sorted by score)."""
        return select(
            candidates,
            score_thresh=self.score_thresh,
            iou_thresh=self.iou_thresh,
            max_per_class=self.max_per_class,
            max_total=self.max_total,
            class_ids=self.class_ids,
        )


#: The settings AP is measured at, by ``evaluate`` and by training's validation alike:
#: everything above the candidate floor (COCO's protocol), at most 100 detections per image.
EVALUATION = PostProcessor(score_thresh=CANDIDATE_FLOOR, iou_thresh=0.5, max_per_class=100, max_total=100)


def combined_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    *,
    score_thresh: float,
    iou_thresh: float,
    max_per_class: int = 100,
    max_total: int = 100,
) -> Detections:
    """One-shot equivalent of ``tf.image.combined_non_max_suppression`` for one image:
    boxes (A, 4) xyxy, scores (A, C) -> Detections (anchor ids index the A boxes)."""
    candidates = extract_candidates(boxes, scores, floor=score_thresh, topk_per_level=None)
    return select(candidates, score_thresh=score_thresh, iou_thresh=iou_thresh, max_per_class=max_per_class, max_total=max_total)
