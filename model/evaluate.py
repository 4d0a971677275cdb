"""COCO-style evaluation with pycocotools (no hand-written mAP).

Ground truth and predictions are built as in-memory COCO objects; boxes are xyxy in
original-image pixels and converted to COCO's xywh at this edge. The ground truth of
labelled images comes from :func:`ground_truth` alone, whichever path evaluates (the
onnxruntime ``evaluate_detector`` or the per-epoch validation of training).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from model.boxes import xyxy_to_xywh

if TYPE_CHECKING:
    from model.labels import ImageLabels
    from model.postprocess import PostProcessor


@dataclass(frozen=True)
class Prediction:
    """Detections of one image: boxes (K, 4) xyxy, scores (K,), class_ids (K,)."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray


@dataclass(frozen=True)
class EvalResult:
    ap: float
    ap50: float
    ap75: float
    per_class_ap50: dict[str, float]
    num_images: int
    num_labels: int

    def format(self) -> str:
        lines = [f"images {self.num_images}  labels {self.num_labels}", f"AP {self.ap:.3f}  AP50 {self.ap50:.3f}  AP75 {self.ap75:.3f}"]
        lines += [f"  AP50 {name:<16} {value:.3f}" for name, value in self.per_class_ap50.items()]
        return "\n".join(lines)


def ground_truth(item: ImageLabels, *, class_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The labels of ``item`` that COCO evaluation counts: boxes (G, 4) float32 xyxy in
    original-image pixels, clipped to the image (``item.width`` x ``item.height``; not
    clipped when the size is unknown, 0), and class ids (G,) int64 indexing ``class_names``,
    in label order. Left out: labels of a class not in ``class_names``, and degenerate boxes
    (no area left once clipped: zero width or height, or entirely outside the image)."""
    # Why degenerate boxes are dropped: pycocotools gives a zero-area ground-truth box an
    # IoU of 0 with every detection (and detections are clipped to the image), so it can
    # never be matched at any IoU threshold; kept, it only counts as a miss at every recall
    # level and lowers AP for something that is not an object in the picture. COCO's own
    # annotations all have positive area inside their image. Marking it ignored (iscrowd)
    # would give the same AP, since no detection can overlap it, so it is simply dropped
    # (and not counted in EvalResult.num_labels). A box that only reaches past the border is
    # clipped, to be compared with detections that are clipped the same way.
    index = {name: i for i, name in enumerate(class_names)}
    known = [label for label in item.labels if label.name in index]
    boxes = np.array([label.box for label in known], np.float32).reshape(-1, 4)
    class_ids = np.array([index[label.name] for label in known], np.int64)
    if item.width > 0 and item.height > 0:
        boxes = np.clip(boxes, 0.0, np.array([item.width, item.height] * 2, np.float32))
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[keep], class_ids[keep]


def coco_evaluate(
    gt_boxes: Sequence[np.ndarray],
    gt_class_ids: Sequence[np.ndarray],
    predictions: Sequence[Prediction],
    *,
    class_names: Sequence[str],
    image_sizes: Sequence[tuple[int, int]] | None = None,
    ap50_only: bool = False,
) -> EvalResult:
    """AP / AP50 / AP75 and per-class AP50 over images; per image: gt boxes (G, 4) xyxy,
    gt class ids (G,), and a Prediction; ``image_sizes`` are (width, height). Classes without
    ground truth get AP50 NaN. The ground truth is used as given: build it from labels with
    :func:`ground_truth`.

    ``ap50_only``: evaluate at IoU 0.5, all areas, 100 detections only (the same AP50, about
    4x faster: no other IoU thresholds or area ranges); AP and AP75 are then NaN."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    for image_id, (boxes, classes, pred) in enumerate(zip(gt_boxes, gt_class_ids, predictions), start=1):
        w, h = image_sizes[image_id - 1] if image_sizes else (10_000, 10_000)
        images.append({"id": image_id, "width": int(w), "height": int(h)})
        for box, cls in zip(xyxy_to_xywh(np.asarray(boxes, np.float32).reshape(-1, 4)), classes):
            annotations.append(
                {"id": len(annotations) + 1, "image_id": image_id, "category_id": int(cls) + 1,
                 "bbox": [float(v) for v in box], "area": float(box[2] * box[3]), "iscrowd": 0}
            )
        for box, score, cls in zip(xyxy_to_xywh(np.asarray(pred.boxes, np.float32).reshape(-1, 4)), pred.scores, pred.class_ids):
            results.append({"image_id": image_id, "category_id": int(cls) + 1, "bbox": [float(v) for v in box], "score": float(score)})
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(class_names)]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations, "categories": categories}
        gt.createIndex()
        if not results:
            labelled = {a["category_id"] - 1 for a in annotations}
            per_class = {n: 0.0 if k in labelled else float("nan") for k, n in enumerate(class_names)}
            return EvalResult(0.0, 0.0, 0.0, per_class, len(images), len(annotations))
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        if ap50_only:
            ev.params.iouThrs = np.array([0.5])
            ev.params.areaRng, ev.params.areaRngLbl = ev.params.areaRng[:1], ev.params.areaRngLbl[:1]
            ev.params.maxDets = [100]
        ev.evaluate()
        ev.accumulate()
        if not ap50_only:
            ev.summarize()
    precision = ev.eval["precision"]  # (T iou, R recall, K class, A area, M maxdets)
    per_class = {}
    for k, name in enumerate(class_names):
        p = precision[0, :, k, 0, -1]
        per_class[name] = float(np.mean(p[p > -1])) if (p > -1).any() else float("nan")
    if ap50_only:
        p = precision[0, :, :, 0, -1]
        ap50 = float(np.mean(p[p > -1])) if (p > -1).any() else 0.0
        return EvalResult(float("nan"), ap50, float("nan"), per_class, len(images), len(annotations))
    stats = [max(float(s), 0.0) for s in ev.stats[:3]]
    return EvalResult(stats[0], stats[1], stats[2], per_class, len(images), len(annotations))


def evaluate_detector(
    detector,
    items: Sequence,
    *,
    size: int | None = None,
    post_processor: PostProcessor | None = None,
    progress=None,
    batch: int | None = None,
) -> EvalResult:
    """COCO AP of an onnxruntime ``Detector`` (model.runtime) on labelled ``items``
    (ImageLabels); the ground truth is :func:`ground_truth` of each item (classes the model
    does not know and degenerate boxes are left out). Images are decoded and letterboxed on
    worker threads, ``batch`` per network call (default :func:`model.pipeline.default_batch`);
    only the candidates are fetched (AP needs no pyramid and no dense outputs).
    ``post_processor``: the detections' settings (default :data:`model.postprocess.EVALUATION`,
    the same as training's validation)."""
    from concurrent.futures import ThreadPoolExecutor

    from model.imageio import load_image
    from model.pipeline import DECODE_WORKERS, default_batch, one_ahead, pad_batch_to, prepared_batches, warm_up_for_batches
    from model.postprocess import EVALUATION

    post_processor = post_processor or EVALUATION

    class_names = list(detector.contract.class_names)
    batch = batch or default_batch(detector)
    gts, gcs, preds, sizes = [], [], [], []
    done = 0
    jobs = [(item, item.image_path) for item in items]
    warm_up_for_batches(detector, batch=batch, size=size)
    with ThreadPoolExecutor(max_workers=DECODE_WORKERS, thread_name_prefix="evaluate-decode") as pool:
        groups = prepared_batches(jobs, detector, load_image=load_image, pool=pool, batch=batch, size=size)
        # decoded and filled into the network's input here, while the network runs the group before
        filled = ((group, detector.fill([future.result() for _, future in group], pad_batch_to=pad_batch_to(detector, batch))) for group in groups)

        for (group, _), ran in one_ahead(filled, lambda item: detector.run_network(item[1])):
            for (item, _), output in zip(group, detector.outputs(ran)):
                boxes, class_ids = ground_truth(item, class_names=class_names)
                gts.append(boxes)
                gcs.append(class_ids)
                dets = post_processor(output.candidates)
                preds.append(Prediction(dets.boxes, dets.scores, dets.class_ids))
                sizes.append((item.width, item.height))
            done += len(group)
            if progress is not None:
                progress(done, len(items))
    return coco_evaluate(gts, gcs, preds, class_names=class_names, image_sizes=sizes)
