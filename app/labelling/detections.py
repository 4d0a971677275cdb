"""The detections shown on one image against its labels and rejections (no Qt).

A rejection records the model, the inference size and the detection's box, and hides only
the same detection (:func:`match_rejections`): anchor ids depend on the size (and the
image's aspect), so after a size change an anchor id names another place in the image. A
rejection hides the detections of its model only (fingerprints compared when both sides
have one, file names otherwise: ``model.quality.is_same_model``).

:class:`ShownDetections` is what the document knows of the detections it shows (the model,
its class names and the inference size): the keys it rejects them by, which of them stay
hidden, and the label an accepted one becomes. Boxes are xyxy in original-image pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from app.labelling.entries import MODEL, DetectionKey, LabelEntry, Provenance
from app.labelling.geometry import Box, clamp_box
from model.boxes import iou_matrix
from model.labels import Label
from model.quality import is_same_model

if TYPE_CHECKING:
    from model.postprocess import Detections

__all__ = [
    "ALREADY_LABELLED_IOU",
    "SAME_DETECTION_IOU",
    "UNKNOWN_ANCHOR",
    "ShownDetections",
    "match_rejections",
    "rejections_of",
]

#: IoU above which a detection counts as "already a label".
ALREADY_LABELLED_IOU = 0.9
#: Box IoU from which a detection of another (or unknown) inference size is the detection a
#: rejection recorded (:func:`match_rejections`).
SAME_DETECTION_IOU = 0.7
#: ``DetectionKey.anchor_id`` of a rejection recorded when its detection was not shown
#: (a deleted label whose detection the model does not produce at the current settings).
UNKNOWN_ANCHOR = -1


def rejections_of(rejected: Iterable[DetectionKey], *, model_name: str, model_id: str) -> frozenset[DetectionKey]:
    """The keys in ``rejected`` that are of the model ``model_name`` with fingerprint
    ``model_id`` (:meth:`DetectionKey.is_of`)."""
    return frozenset(k for k in rejected if k.is_of(model_name, model_id))


def match_rejections(rejected: Iterable[DetectionKey], detections: Detections, *, size: int) -> np.ndarray:
    """(K,) bool: which of ``detections`` (boxes xyxy in original-image pixels, made at
    inference size ``size``, 0 when unknown) a rejection in ``rejected`` hides. The keys
    must be of the detections' model already (:func:`rejections_of`).

    A rejection hides only the same detection, of its class:

    * recorded at the same inference size: the detection of its anchor (the network's
      output is the same, so the anchor id names the same detection);
    * recorded at another size, or either size unknown, with its box: the detection of its
      class whose box overlaps the recorded one most, if that IoU is >= SAME_DETECTION_IOU
      (0.7). One detection per rejection: a neighbour kept by a loose NMS stays shown;
    * recorded with neither size nor box (sidecars written before they were): the detection
      of its anchor, as before;
    * recorded at another known size without a box: none (its anchor id means nothing here).
    """
    num_dets = len(detections)
    hidden = np.zeros(num_dets, bool)
    if num_dets == 0:
        return hidden
    class_ids = np.asarray(detections.class_ids).tolist()
    by_anchor: set[tuple[int, int]] = set()
    by_box: list[DetectionKey] = []
    for key in rejected:
        if (key.size > 0 and key.size == size) or (key.box is None and not (key.size and size)):
            by_anchor.add((key.anchor_id, key.class_id))
        elif key.box is not None:
            by_box.append(key)
    if by_anchor:  # (anchor, class) pairs as Python ints, like DetectionKey's
        pairs = zip(np.asarray(detections.anchor_ids).tolist(), class_ids, strict=True)
        hidden |= np.fromiter((pair in by_anchor for pair in pairs), bool, count=num_dets)
    if by_box:
        det_class_ids = np.asarray(class_ids, np.int64)
        ious = iou_matrix(np.asarray([k.box for k in by_box], np.float32), np.asarray(detections.boxes, np.float32))
        ious[np.asarray([k.class_id for k in by_box], np.int64)[:, None] != det_class_ids[None, :]] = -1.0
        best = ious.argmax(axis=1)  # detections are sorted by score: ties go to the higher score
        found = ious[np.arange(len(by_box)), best] >= SAME_DETECTION_IOU
        hidden[best[found]] = True
    return hidden


@dataclass(frozen=True, eq=False)
class ShownDetections:
    """The detections shown on an image (None: none) from model ``model_name`` (file name)
    with fingerprint ``model_id`` ("" when not given), made at inference size ``size`` (0:
    not given); their ``class_ids`` index ``class_names`` (empty: the project's classes).

    A value the document replaces when other detections are shown. Detections passed to a
    method may be another model's: only the shown ones of the shown model have a known
    fingerprint and size.
    """

    detections: Detections | None = None
    class_names: tuple[str, ...] = ()
    model_name: str = ""
    model_id: str = ""
    size: int = 0

    def model_id_of(self, model_name: str) -> str:
        """The fingerprint of model ``model_name``: the shown model's, "" for another."""
        return self.model_id if model_name == self.model_name else ""

    def size_of(self, detections: Detections, model_name: str) -> int:
        """The inference size of ``detections`` of model ``model_name``: known for the shown
        detections only (0: unknown)."""
        return self.size if detections is self.detections and model_name == self.model_name else 0

    def class_name(self, class_id: int, project_names: Sequence[str]) -> str:
        """The name of class ``class_id`` (``project_names`` when the detections came with none)."""
        names = self.class_names or project_names
        return names[class_id] if 0 <= class_id < len(names) else f"class_{class_id}"

    def key(self, detections: Detections, i: int, model_name: str) -> DetectionKey:
        """The key of detection ``i`` of ``detections`` from model ``model_name``: its anchor,
        class and box (rounded to 0.01 px), with the fingerprint and inference size when
        these are the shown detections of the shown model."""
        box = tuple(round(float(v), 2) for v in detections.boxes[i])
        return DetectionKey(
            model_name,
            int(detections.anchor_ids[i]),
            int(detections.class_ids[i]),
            self.model_id_of(model_name),
            self.size_of(detections, model_name),
            box,  # type: ignore[arg-type]
        )

    def hidden(self, rejected: Iterable[DetectionKey], detections: Detections, model_name: str) -> np.ndarray | None:
        """(K,) bool: the ``detections`` of model ``model_name`` that a rejection in
        ``rejected`` hides (None: no rejection of that model)."""
        keys = rejections_of(rejected, model_name=model_name, model_id=self.model_id_of(model_name))
        if not keys:
            return None
        return match_rejections(keys, detections, size=self.size_of(detections, model_name))

    def is_rejected(self, rejected: Iterable[DetectionKey], i: int) -> bool:
        """Whether a rejection in ``rejected`` hides detection ``i`` of the shown detections
        (same model and class, and the same detection: :func:`match_rejections`)."""
        if self.detections is None:
            raise IndexError("no detections are shown")
        hidden = self.hidden(rejected, self.detections, self.model_name)
        return hidden is not None and bool(hidden[i])

    def visible_indices(self, rejected: Iterable[DetectionKey], label_boxes: np.ndarray) -> list[int]:
        """Indices of the shown detections to draw: not rejected, and not already a label
        (IoU > ALREADY_LABELLED_IOU with one of ``label_boxes`` (N, 4), of any class: a
        relabelled detection stays hidden)."""
        dets = self.detections
        if dets is None or len(dets) == 0:
            return []
        hidden = self.hidden(rejected, dets, self.model_name)
        if hidden is not None:
            keep = np.flatnonzero(~hidden).tolist()
        else:  # runs on every slider step: no matching when nothing of this model is rejected
            keep = list(range(len(dets)))
        if not keep or len(label_boxes) == 0:
            return keep
        det_boxes = np.round(np.asarray(dets.boxes, dtype=np.float32)[keep])
        labelled = iou_matrix(det_boxes, label_boxes).max(axis=1) > ALREADY_LABELLED_IOU
        return [i for i, done in zip(keep, labelled, strict=True) if not done]

    def rejection_for(self, entry: LabelEntry, project_names: Sequence[str]) -> DetectionKey | None:
        """The detection to reject when the label ``entry`` is deleted: when it is an
        unedited acceptance of a detection of the shown model, that detection (the shown one
        of its class whose box overlaps its original box most, IoU >= SAME_DETECTION_IOU;
        when none is shown, the original box with no anchor or size); None for a drawn,
        edited or file label, another model's, or with no model shown."""
        provenance = entry.provenance
        if provenance.unedited_acceptance() is None or not self.model_name:
            return None
        if not is_same_model(provenance.model_name, provenance.model_id, model_name=self.model_name, model_id=self.model_id):
            return None
        names = self.class_names or project_names
        name = provenance.original_name or entry.label.name
        if name not in names:
            return None
        class_id = names.index(name)
        box = provenance.original_box or entry.box
        dets = self.detections
        if dets is not None and len(dets):
            ious = iou_matrix(np.asarray([box], np.float32), np.asarray(dets.boxes, np.float32))[0]
            ious[np.asarray(dets.class_ids) != class_id] = -1.0
            best = int(ious.argmax())
            if ious[best] >= SAME_DETECTION_IOU:
                return self.key(dets, best, self.model_name)
        rounded = tuple(round(float(v), 2) for v in box)
        return DetectionKey(self.model_name, UNKNOWN_ANCHOR, class_id, self.model_id, 0, rounded)  # type: ignore[arg-type]

    def to_accept(
        self,
        detections: Detections,
        score_thresh: float,
        model_name: str,
        *,
        rejected: Iterable[DetectionKey],
        taken: Sequence[Box],
        image_size: tuple[int, int],
        name_of: Callable[[int], str],
    ) -> list[LabelEntry]:
        """The labels "accept all" makes of ``detections`` of model ``model_name``, highest
        score first: every detection with score >= ``score_thresh`` that a rejection in
        ``rejected`` does not hide and that is not already a label (IoU >
        ALREADY_LABELLED_IOU with a box in ``taken``, or with a higher-scoring detection
        taken before it). ``name_of(class_id)`` names the class of each candidate in turn
        (the document adds it to the project)."""
        order = np.argsort(-np.asarray(detections.scores, dtype=np.float32), kind="stable")
        taken = list(taken)
        hidden = self.hidden(rejected, detections, model_name)
        accepted: list[LabelEntry] = []
        for i in order:
            i = int(i)
            if float(detections.scores[i]) < score_thresh:
                break
            if hidden is not None and hidden[i]:
                continue
            entry = self.entry(detections, i, model_name, name=name_of(int(detections.class_ids[i])), image_size=image_size)
            if taken and float(iou_matrix(np.asarray([entry.box]), np.asarray(taken)).max()) > ALREADY_LABELLED_IOU:
                continue
            taken.append(entry.box)
            accepted.append(entry)
        return accepted

    def entry(self, detections: Detections, i: int, model_name: str, *, name: str, image_size: tuple[int, int]) -> LabelEntry:
        """Detection ``i`` of ``detections`` as a label of class ``name``: box rounded to
        whole pixels and clamped to the image (``image_size`` is width, height); provenance
        records the model, score and original box."""
        raw = tuple(float(v) for v in detections.boxes[i])
        width, height = image_size
        box: Box = clamp_box(tuple(float(round(v)) for v in raw), width=width, height=height)  # type: ignore[arg-type]
        label = Label(x1=box[0], y1=box[1], x2=box[2], y2=box[3], name=name)
        prov = Provenance(
            source=MODEL,
            model_name=model_name,
            score=float(detections.scores[i]),
            original_box=raw,  # type: ignore[arg-type]
            original_name=name,
            model_id=self.model_id_of(model_name),
        )
        return LabelEntry(label, prov)
