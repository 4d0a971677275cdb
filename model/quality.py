"""How well the model agrees with the saved labels, at given post-processing settings.

Qt-free and TensorFlow-free: the app's quality panel calls :func:`compare` every time a
slider moves, on detections that ``model.postprocess.select`` made from cached candidates.

* precision and recall at the current thresholds come from matching detections to labels
  the way COCO does (greedy by score; a detection takes the unmatched label of its class
  with the highest IoU, if that IoU is >= ``match_iou``), vectorised over all images;
* AP50 comes from pycocotools (:func:`model.evaluate.coco_evaluate`), never a hand-written mAP;
* per image, false positives + false negatives say where model and labels disagree most.

A *label* is a saved, human-approved box; a *detection* comes from the model. Boxes are
xyxy in original-image pixels everywhere in this module. VOC ``difficult`` flags are not
treated specially, as in ``coco_evaluate``.

Only human-verified labels are evidence. A label that is the evaluated model's own
detection, accepted and saved without an edit (``ImageComparison.label_is_model_output``;
the app tells from the provenance sidecar, :func:`is_model_output`), agrees with the model
by construction, so:

* an image whose labels are *all* such labels is left out altogether (no precision, recall,
  AP50 or disagreement from it); :attr:`QualityReport.left_out_images` and
  ``left_out_labels`` count them. An image with no labels at all (an empty label file: a
  reviewed image without objects) is evidence and counts;
* in an image that also has verified labels (drawn, edited, from another model, or from a
  file with no studio record) the model's own labels are *ignored regions*, as COCO treats
  ignored ground truth: they are not false negatives, and a detection that matches no
  verified label but matches one of them (same class, IoU >= ``match_iou``) is neither a
  true nor a false positive. The image's verified labels and its other detections count
  as usual (the user looked at it). ``ignored_labels`` / ``ignored_detections`` count them.

A rejection is evidence too. An image on which the user rejected at least one of this
model's detections (the sidecar's ``rejected`` list; ``ImageComparison.reviewed``) was
reviewed: its unedited acceptances were kept while the user was turning others down. So:

* such an image is never left out, even when all its labels are the model's own (or it has
  none); :attr:`QualityReport.reviewed_images` counts those that are counted only for this;
* its own labels stay ignored regions (they are still the model's output and cannot show it
  wrong), and its other detections count as in any counted image;
* a detection the user rejected that the model still produces at the current settings
  (``ImageComparison.det_is_rejected``: the same detection, of the same class, at the same
  anchor when the inference size is the one it was rejected at, else at the same place;
  the app matches them) is never absorbed by an ignored region: unless it matches a
  verified label it is a false positive (:attr:`QualityReport.rejected_false_positives`).

Deleting a label that is the model's own unedited detection rejects that detection (the app
records it with the delete), so it counts as above. A deleted drawn or edited label, or a
box drawn and deleted again, leaves no record: it is no evidence.

Whether the image is left out is decided on all the labels given, before the class filter.
"Same model" means the same file contents (:func:`model_fingerprint`), whatever the file is
called; a label or rejection whose record carries no fingerprint (saved before it was
recorded) is judged by the model's file name (:func:`is_same_model`).
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.errors import StudioError
from model.labels.annotation import ImageLabels
from model.postprocess import Detections

#: IoU at which a detection matches a label (the "50" of AP50).
MATCH_IOU = 0.5
#: COCOeval's default: at most this many detections per image count towards AP.
COCO_MAX_DETS = 100
#: Hex digits of the model file's SHA-256 kept in a fingerprint (64 bits).
FINGERPRINT_DIGITS = 16


@dataclass(frozen=True)
class UneditedAcceptance:
    """A label that is a model's detection accepted unedited: that model's file name and
    :func:`model_fingerprint` ("" where the record has none)."""

    model_name: str
    model_id: str = ""


def is_same_model(recorded_name: str, recorded_id: str, *, model_name: str, model_id: str) -> bool:
    """Whether a record of the model file ``recorded_name`` with fingerprint ``recorded_id``
    ("" where the record has none) is of the model named ``model_name`` with fingerprint
    ``model_id`` ("" when unknown): the fingerprints are compared when both are known, the
    file names otherwise."""
    if recorded_id and model_id:
        return recorded_id == model_id
    return recorded_name == model_name


def is_model_output(acceptance: UneditedAcceptance | None, *, model_name: str, model_id: str) -> bool:
    """Whether a label accepted unedited as ``acceptance`` (None: drawn, edited, or with no
    record) is the output of the model named ``model_name`` with fingerprint ``model_id``
    (:func:`is_same_model`)."""
    if acceptance is None:
        return False
    return is_same_model(acceptance.model_name, acceptance.model_id, model_name=model_name, model_id=model_id)


_FINGERPRINTS: dict[tuple[str, int, int], str] = {}
_FINGERPRINT_LOCK = threading.Lock()


def model_fingerprint(path: str | os.PathLike[str]) -> str:
    """``"sha256:"`` + the first ``FINGERPRINT_DIGITS`` hex digits of the SHA-256 of the
    model file: which model it is, whatever the file is called (training and fine-tuning
    both write ``model.onnx``). "" when the file cannot be read.

    Remembered per (path, size, modification time): only a new or changed file is read
    (about 0.3 s for a 140 MB model); a caller that asks while another thread reads the
    same file waits for that result. Weights kept in external data files are not read.
    """
    try:
        stat = os.stat(path)
    except OSError:
        return ""
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    with _FINGERPRINT_LOCK:
        fingerprint = _FINGERPRINTS.get(key)
        if fingerprint is None:
            digest = hashlib.sha256()
            try:
                with open(path, "rb") as file:
                    while chunk := file.read(1 << 20):
                        digest.update(chunk)
            except OSError:
                return ""
            fingerprint = _FINGERPRINTS[key] = f"sha256:{digest.hexdigest()[:FINGERPRINT_DIGITS]}"
    return fingerprint


@dataclass(frozen=True)
class ImageComparison:
    """One image's labels and detections.

    ``key`` names the image (its path); label_boxes (G, 4) float32 xyxy, label_class_ids
    (G,) int64; det_boxes (K, 4) float32 xyxy, det_scores (K,) float32, det_class_ids (K,)
    int64; ``image_size`` is (width, height) when known. ``label_is_model_output`` (G,)
    bool marks the labels that are the evaluated model's own detections accepted unedited
    (None: none are). ``reviewed`` says the user rejected at least one of this model's
    detections on the image (at any settings); ``det_is_rejected`` (K,) bool marks the
    detections given that the user rejected (None: none is). See the module docstring.
    """

    key: str
    label_boxes: np.ndarray
    label_class_ids: np.ndarray
    det_boxes: np.ndarray
    det_scores: np.ndarray
    det_class_ids: np.ndarray
    image_size: tuple[int, int] | None = None
    label_is_model_output: np.ndarray | None = None
    reviewed: bool = False
    det_is_rejected: np.ndarray | None = None


@dataclass(frozen=True)
class ImageAgreement:
    """Matching counts of one image at IoU ``MATCH_IOU``."""

    key: str
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def disagreement(self) -> int:
        """False positives + false negatives."""
        return self.false_positives + self.false_negatives


@dataclass(frozen=True)
class QualityReport:
    """Model vs labels over ``num_images`` images.

    ``precision`` is NaN without detections, ``recall`` and ``ap50`` are NaN without
    labels (``ap50`` also when it was not asked for). ``images`` lists every counted
    image, the worst (most false positives + false negatives) first.

    Counts cover verified labels and counted detections only. ``left_out_images`` (with
    their ``left_out_labels``) had nothing but the model's own unedited detections as
    labels; ``ignored_labels`` are such labels in counted images, and
    ``ignored_detections`` the detections that matched them. ``reviewed_images`` had
    nothing but such labels too and count because the user rejected detections of the
    model there; ``rejected_false_positives`` are detections the user rejected that the
    model still produces, counted as false positives (module docstring).
    """

    num_images: int
    num_labels: int
    num_detections: int
    true_positives: int
    false_positives: int
    false_negatives: int
    precision: float
    recall: float
    ap50: float
    per_class_ap50: dict[str, float] = field(default_factory=dict)
    images: tuple[ImageAgreement, ...] = ()
    left_out_images: int = 0
    left_out_labels: int = 0
    ignored_labels: int = 0
    ignored_detections: int = 0
    reviewed_images: int = 0
    rejected_false_positives: int = 0

    def disagreements(self, limit: int | None = None) -> list[ImageAgreement]:
        """Images with at least one false positive or false negative, worst first."""
        worst = [image for image in self.images if image.disagreement > 0]
        return worst if limit is None else worst[:limit]


def _ranges(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, counts) of consecutive groups of the given sizes."""
    starts = np.zeros(counts.size, np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts, counts


def match_detections(
    det_image_ids: np.ndarray,
    det_boxes: np.ndarray,
    det_scores: np.ndarray,
    det_class_ids: np.ndarray,
    label_image_ids: np.ndarray,
    label_boxes: np.ndarray,
    label_class_ids: np.ndarray,
    *,
    num_images: int,
    iou_thresh: float = MATCH_IOU,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy COCO-style matching of detections to labels over many images at once.

    Detections: image ids (K,) in [0, num_images), boxes (K, 4) xyxy, scores (K,), class ids
    (K,). Labels: image ids (G,), boxes (G, 4) xyxy, class ids (G,). In score order
    (descending; ties keep input order), a detection matches the not yet matched label of
    the same image and class with the highest IoU, when that IoU is >= ``iou_thresh``.

    Returns (det_matched (K,) bool, label_matched (G,) bool). Vectorised: every
    (detection, label) pair of the same image is built in one go; only detections that
    compete for a label are resolved one by one.
    """
    det_image_ids = np.asarray(det_image_ids, np.int64).reshape(-1)
    label_image_ids = np.asarray(label_image_ids, np.int64).reshape(-1)
    num_dets, num_labels = det_image_ids.size, label_image_ids.size
    det_matched = np.zeros(num_dets, bool)
    label_matched = np.zeros(num_labels, bool)
    if num_dets == 0 or num_labels == 0:
        return det_matched, label_matched
    det_boxes = np.asarray(det_boxes, np.float32).reshape(num_dets, 4)
    label_boxes = np.asarray(label_boxes, np.float32).reshape(num_labels, 4)
    det_class_ids = np.asarray(det_class_ids, np.int64).reshape(num_dets)
    label_class_ids = np.asarray(label_class_ids, np.int64).reshape(num_labels)

    # labels grouped by image: label_order[label_start[i] : label_start[i] + label_count[i]]
    label_order = np.argsort(label_image_ids, kind="stable")
    label_count = np.bincount(label_image_ids, minlength=num_images)
    label_start, _ = _ranges(label_count)
    # every (detection, label of its image) pair: (P,) indices
    pairs_per_det = label_count[det_image_ids]
    pair_det = np.repeat(np.arange(num_dets), pairs_per_det)
    det_first_pair, _ = _ranges(pairs_per_det)
    position = np.arange(pair_det.size) - det_first_pair[pair_det]
    pair_label = label_order[label_start[det_image_ids[pair_det]] + position]
    same_class = det_class_ids[pair_det] == label_class_ids[pair_label]
    pair_det, pair_label = pair_det[same_class], pair_label[same_class]
    # IoU of each pair (xyxy); an empty union overlaps nothing
    a, b = det_boxes[pair_det], label_boxes[pair_label]
    inter_w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0.0, None)
    inter_h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0.0, None)
    inter = inter_w * inter_h
    area_a = np.clip(a[:, 2] - a[:, 0], 0.0, None) * np.clip(a[:, 3] - a[:, 1], 0.0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0.0, None) * np.clip(b[:, 3] - b[:, 1], 0.0, None)
    union = area_a + area_b - inter
    iou = np.zeros(inter.size, np.float32)
    np.divide(inter, union, out=iou, where=union > 0)
    good = iou >= np.float32(iou_thresh)
    pair_det, pair_label, iou = pair_det[good], pair_label[good], iou[good]
    if pair_det.size == 0:
        return det_matched, label_matched

    # Pairs with a detection and a label that appear in no other pair cannot compete.
    det_pairs = np.bincount(pair_det, minlength=num_dets)
    label_pairs = np.bincount(pair_label, minlength=num_labels)
    alone = (det_pairs[pair_det] == 1) & (label_pairs[pair_label] == 1)
    det_matched[pair_det[alone]] = True
    label_matched[pair_label[alone]] = True
    rest = ~alone
    if rest.any():
        # by detection score (ties: input order), then IoU descending: the first free
        # label of each detection is its greedy match
        rank = np.empty(num_dets, np.int64)
        rank[np.argsort(-np.asarray(det_scores, np.float32).reshape(num_dets), kind="stable")] = np.arange(num_dets)
        r_det, r_label, r_iou = pair_det[rest], pair_label[rest], iou[rest]
        order = np.lexsort((-r_iou, rank[r_det]))
        for det, label in zip(r_det[order].tolist(), r_label[order].tolist(), strict=True):
            if not det_matched[det] and not label_matched[label]:
                det_matched[det] = True
                label_matched[label] = True
    return det_matched, label_matched


def _concat(arrays: Sequence[np.ndarray], shape: tuple[int, ...], dtype: type) -> np.ndarray:
    if not arrays:
        return np.zeros(shape, dtype)
    return np.concatenate([np.asarray(a, dtype).reshape(-1, *shape[1:]) for a in arrays])


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


def _own_labels(image: ImageComparison) -> np.ndarray | None:
    """(G,) bool: which labels of ``image`` are the model's own unedited detections (None: none)."""
    if image.label_is_model_output is None:
        return None
    own = np.asarray(image.label_is_model_output, bool).reshape(np.asarray(image.label_class_ids).size)
    return own if own.any() else None


def _rejected_detections(image: ImageComparison) -> np.ndarray:
    """(K,) bool: which detections of ``image`` the user rejected."""
    num_dets = np.asarray(image.det_class_ids).size
    if image.det_is_rejected is None:
        return np.zeros(num_dets, bool)
    return np.asarray(image.det_is_rejected, bool).reshape(num_dets)


def compare(
    images: Sequence[ImageComparison],
    *,
    class_names: Sequence[str],
    class_ids: Collection[int] | None = None,
    match_iou: float = MATCH_IOU,
    with_ap: bool = True,
) -> QualityReport:
    """Precision, recall (at ``match_iou``) and AP50 of the detections against the verified
    labels of ``images``; per-image counts, worst first.

    Images whose labels are all the model's own unedited detections are left out unless
    the user rejected some of its detections there; such labels in counted images are
    ignored regions, and rejected detections are never ignored (module docstring). ``class_ids`` (indices
    into ``class_names``), when given, restricts labels and detections to those classes
    (the NMS panel's class filter). AP50 is pycocotools' (at most ``COCO_MAX_DETS``
    detections per image count); ``with_ap=False`` skips it (NaN).
    """
    keep_classes = None if class_ids is None else np.fromiter(class_ids, np.int64)

    def restrict(ids: np.ndarray) -> np.ndarray | slice:
        return slice(None) if keep_classes is None else np.isin(np.asarray(ids, np.int64).reshape(-1), keep_classes)

    owns = [_own_labels(im) for im in images]
    rejections = [_rejected_detections(im) for im in images]
    only_own = [own is not None and bool(own.all()) for own in owns]
    reviewed = [im.reviewed or bool(rej.any()) for im, rej in zip(images, rejections)]
    left_out = [only and not rev for only, rev in zip(only_own, reviewed)]
    left_out_labels = sum(own.size for own, out in zip(owns, left_out) if out)  # type: ignore[union-attr]
    reviewed_images = sum(only and rev for only, rev in zip(only_own, reviewed))
    images = [im for im, out in zip(images, left_out) if not out]
    owns = [own for own, out in zip(owns, left_out) if not out]
    rejections = [rej for rej, out in zip(rejections, left_out) if not out]

    label_masks = [restrict(im.label_class_ids) for im in images]
    det_masks = [restrict(im.det_class_ids) for im in images]
    owns = [None if own is None else own[m] for own, m in zip(owns, label_masks)]
    all_label_boxes = [np.asarray(im.label_boxes, np.float32).reshape(-1, 4)[m] for im, m in zip(images, label_masks)]
    all_label_ids = [np.asarray(im.label_class_ids, np.int64).reshape(-1)[m] for im, m in zip(images, label_masks)]
    label_boxes = [b if own is None else b[~own] for b, own in zip(all_label_boxes, owns)]  # verified labels
    label_ids = [i if own is None else i[~own] for i, own in zip(all_label_ids, owns)]
    det_boxes = [np.asarray(im.det_boxes, np.float32).reshape(-1, 4)[m] for im, m in zip(images, det_masks)]
    det_scores = [np.asarray(im.det_scores, np.float32).reshape(-1)[m] for im, m in zip(images, det_masks)]
    det_ids = [np.asarray(im.det_class_ids, np.int64).reshape(-1)[m] for im, m in zip(images, det_masks)]
    det_rejected = _concat([rej[m] for rej, m in zip(rejections, det_masks)], (0,), bool)

    num_images = len(images)
    label_counts = np.array([b.shape[0] for b in label_boxes], np.int64)
    own_counts = np.array([0 if own is None else int(own.sum()) for own in owns], np.int64)
    det_counts = np.array([b.shape[0] for b in det_boxes], np.int64)
    det_image = np.repeat(np.arange(num_images), det_counts)
    all_det_boxes = _concat(det_boxes, (0, 4), np.float32)
    all_det_scores = _concat(det_scores, (0,), np.float32)
    all_det_ids = _concat(det_ids, (0,), np.int64)
    det_matched, label_matched = match_detections(
        det_image,
        all_det_boxes,
        all_det_scores,
        all_det_ids,
        np.repeat(np.arange(num_images), label_counts),
        _concat(label_boxes, (0, 4), np.float32),
        _concat(label_ids, (0,), np.int64),
        num_images=num_images,
        iou_thresh=match_iou,
    )
    # Then the detections left over, but those the user rejected, meet the model's own
    # labels: a match is ignored.
    det_ignored = np.zeros(det_matched.size, bool)
    rest = np.flatnonzero(~det_matched & ~det_rejected)
    if own_counts.sum() and rest.size:
        hit, _ = match_detections(
            det_image[rest],
            all_det_boxes[rest],
            all_det_scores[rest],
            all_det_ids[rest],
            np.repeat(np.arange(num_images), own_counts),
            _concat([b[o] for b, o in zip(all_label_boxes, owns) if o is not None], (0, 4), np.float32),
            _concat([i[o] for i, o in zip(all_label_ids, owns) if o is not None], (0,), np.int64),
            num_images=num_images,
            iou_thresh=match_iou,
        )
        det_ignored[rest[hit]] = True
    label_image = np.repeat(np.arange(num_images), label_counts)
    tp_per_image = np.bincount(det_image[det_matched], minlength=num_images)
    ignored_per_image = np.bincount(det_image[det_ignored], minlength=num_images)
    found_per_image = np.bincount(label_image[label_matched], minlength=num_images)
    agreements = [
        ImageAgreement(
            key=im.key,
            true_positives=int(tp),
            false_positives=int(dets - tp - ignored),
            false_negatives=int(labels - found),
        )
        for im, tp, ignored, found, dets, labels in zip(
            images, tp_per_image, ignored_per_image, found_per_image, det_counts, label_counts
        )
    ]
    agreements.sort(key=lambda a: (-a.disagreement, -a.false_negatives, a.key))

    num_ignored = int(det_ignored.sum())
    tp, num_labels, num_dets = int(det_matched.sum()), int(label_counts.sum()), int(det_counts.sum()) - num_ignored
    ap50, per_class = math.nan, {}
    if with_ap and num_labels:
        from model.evaluate import Prediction, coco_evaluate

        kept = np.split(~det_ignored, np.cumsum(det_counts)[:-1]) if num_images else []
        result = coco_evaluate(
            label_boxes,
            label_ids,
            [Prediction(b[k], s[k], c[k]) for b, s, c, k in zip(det_boxes, det_scores, det_ids, kept)],
            class_names=class_names,
            image_sizes=[im.image_size or (10_000, 10_000) for im in images],
            ap50_only=True,
        )
        ap50 = result.ap50
        per_class = {
            name: value
            for k, (name, value) in enumerate(result.per_class_ap50.items())
            if keep_classes is None or k in keep_classes
        }
    return QualityReport(
        num_images=num_images,
        num_labels=num_labels,
        num_detections=num_dets,
        true_positives=tp,
        false_positives=num_dets - tp,
        false_negatives=num_labels - int(label_matched.sum()),
        precision=_ratio(tp, num_dets),
        recall=_ratio(int(label_matched.sum()), num_labels),
        ap50=ap50,
        per_class_ap50=per_class,
        images=tuple(agreements),
        left_out_images=sum(left_out),
        left_out_labels=left_out_labels,
        ignored_labels=int(own_counts.sum()),
        ignored_detections=num_ignored,
        reviewed_images=reviewed_images,
        rejected_false_positives=int(np.count_nonzero(det_rejected & ~det_matched)),
    )


def keep_above(detections: Detections, score_thresh: float) -> Detections:
    """The detections scoring above ``score_thresh`` (they are sorted by score).

    Greedy NMS visits boxes by score and the caps keep the best, so
    ``keep_above(select(c, score_thresh=low, ...), high)`` equals
    ``select(c, score_thresh=high, ...)`` for the same IoU threshold, caps and class
    filter: the score slider needs no new NMS, only this cut.
    """
    count = int(np.count_nonzero(detections.scores > np.float32(score_thresh)))
    if count == len(detections):
        return detections
    return Detections(
        boxes=detections.boxes[:count],
        scores=detections.scores[:count],
        class_ids=detections.class_ids[:count],
        anchor_ids=detections.anchor_ids[:count],
        level_ids=detections.level_ids[:count],
    )


class ReadCancelled(Exception):
    """:func:`read_saved_labels` was cancelled."""


def read_saved_labels(
    images: Sequence[str | os.PathLike[str]],
    fmt: str,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    label_dirs: Mapping[str, Path] | None = None,
) -> tuple[list[ImageLabels], list[StudioError]]:
    """The saved labels of those ``images`` that have some in format ``fmt`` -> (items,
    unreadable files). Each item's ``image_path`` is ``str()`` of the path given. The labels
    of an image folder are in ``label_dirs[absolute folder]`` when it has an entry, else
    next to the images.

    An image counts as labelled when it has a VOC/YOLO label file (even an empty one: a
    reviewed image with no objects) or, for COCO, at least one box — the same rule as
    File › Export Labelled Set. Folder by folder; ``progress(done, total)`` per image;
    ``cancelled()`` is checked per image and raises :class:`ReadCancelled`.
    """
    from model.labels import load_dataset
    from model.labels.registry import get_format

    label_format = get_format(fmt)

    groups: dict[Path, list[Path]] = {}
    for image in images:
        groups.setdefault(Path(image).parent, []).append(Path(image))
    total = sum(len(group) for group in groups.values())
    items: list[ImageLabels] = []
    errors: list[StudioError] = []
    offset = 0

    def tick(done: int) -> None:
        if cancelled is not None and cancelled():
            raise ReadCancelled("reading labels cancelled")
        if progress is not None:
            progress(done, total)

    for folder, group in groups.items():
        labels_dir = (label_dirs or {}).get(os.path.abspath(folder))
        # one file per image: only images with one (no image is decoded for nothing); a folder file names its images
        candidates = [p for p in group if label_format.label_path_for(p, labels_dir).is_file()] if label_format.per_image_files else group
        if candidates:
            base = offset
            dataset = load_dataset(
                folder, fmt, images=candidates, labels_dir=labels_dir, find_labels=False, progress=lambda d, _t, b=base: tick(b + d)
            )
            errors.extend(dataset.errors)
            items.extend(item for item in dataset.items if label_format.per_image_files or item.labels)
        offset += len(group)
        tick(offset)
    return items, errors


def label_class_ids(names: Sequence[str], class_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Class ids (into ``class_names``) of labels named ``names`` -> (ids (N,) int64,
    known (N,) bool); a label whose class the model does not know gets id -1."""
    index = {name: i for i, name in enumerate(class_names)}
    ids = np.array([index.get(name, -1) for name in names], np.int64)
    return ids, ids >= 0


__all__ = [
    "COCO_MAX_DETS",
    "FINGERPRINT_DIGITS",
    "MATCH_IOU",
    "ImageAgreement",
    "ImageComparison",
    "QualityReport",
    "ReadCancelled",
    "UneditedAcceptance",
    "compare",
    "is_model_output",
    "is_same_model",
    "keep_above",
    "label_class_ids",
    "match_detections",
    "model_fingerprint",
    "read_saved_labels",
]
