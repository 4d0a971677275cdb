"""One image's label state as plain values: labels with their provenance, rejected detections,
and the JSON form the sidecar and the crash journal keep them in (no Qt, no files).

Boxes are xyxy in original-image pixels after EXIF orientation. A model is recorded by its
file name and by the fingerprint of its contents (``model_id``,
``model.quality.model_fingerprint``); records written before ``model_id`` was recorded read
it as "".
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from app.labelling.geometry import Box
from model.labels import Label
from model.labels.annotation import RawRecord
from model.quality import UneditedAcceptance, is_same_model

__all__ = [
    "DRAWN",
    "FILE",
    "MODEL",
    "STATE_VERSION",
    "DetectionKey",
    "LabelEntry",
    "Provenance",
    "state_from_json",
    "state_to_json",
    "verified_from_json",
]

#: Provenance sources.
DRAWN = "drawn"  # drawn by hand in the studio
MODEL = "model"  # accepted from a model's detection
FILE = "file"  # found in a label file with no studio record (another tool, or edited outside)

STATE_VERSION = 1


@dataclass(frozen=True)
class Provenance:
    """Where a label came from. ``model_name`` (the model's file name), ``model_id`` (its
    fingerprint, "" when unknown), ``original_box`` (xyxy) and ``score`` are the
    detection's when ``source == MODEL``; ``edited`` says the box or class was changed since."""

    source: str = DRAWN
    model_name: str = ""
    score: float | None = None
    original_box: Box | None = None
    original_name: str = ""
    edited: bool = False
    model_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Provenance:
        box = data.get("original_box")
        return cls(
            source=str(data.get("source", FILE)),
            model_name=str(data.get("model_name", "")),
            score=None if data.get("score") is None else float(data["score"]),
            original_box=None if box is None else tuple(float(v) for v in box),  # type: ignore[arg-type]
            original_name=str(data.get("original_name", "")),
            edited=bool(data.get("edited", False)),
            model_id=str(data.get("model_id", "")),
        )

    def unedited_acceptance(self) -> UneditedAcceptance | None:
        """The model this label is an unedited detection of; None when it was drawn,
        edited, or has no studio record."""
        if self.source != MODEL or self.edited:
            return None
        return UneditedAcceptance(self.model_name, self.model_id)


@dataclass(frozen=True)
class LabelEntry:
    """A label and its provenance. Treat ``label`` as immutable: edits make new entries."""

    label: Label
    provenance: Provenance

    @property
    def box(self) -> Box:
        return (self.label.x1, self.label.y1, self.label.x2, self.label.y2)

    def with_box(self, box: Box) -> LabelEntry:
        """This entry with ``box`` (xyxy); a model-accepted label becomes "edited"."""
        x1, y1, x2, y2 = (float(v) for v in box)
        label = dataclasses.replace(self.label, x1=x1, y1=y1, x2=x2, y2=y2)
        return LabelEntry(label, self._edited(box != self.box))

    def with_name(self, name: str) -> LabelEntry:
        """This entry with class ``name``; a model-accepted label becomes "edited"."""
        return LabelEntry(dataclasses.replace(self.label, name=name), self._edited(name != self.label.name))

    def _edited(self, changed: bool) -> Provenance:
        if changed and self.provenance.source != DRAWN:
            return dataclasses.replace(self.provenance, edited=True)
        return self.provenance

    def to_json(self) -> dict[str, Any]:
        lab = self.label
        return {
            "box": [lab.x1, lab.y1, lab.x2, lab.y2],
            "name": lab.name,
            "difficult": lab.difficult,
            "truncated": lab.truncated,
            "provenance": self.provenance.to_json(),
            **({"raw": {"fmt": lab.raw.fmt, "data": lab.raw.data}} if lab.raw is not None and isinstance(lab.raw.data, str) else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabelEntry:
        x1, y1, x2, y2 = (float(v) for v in data["box"])
        label = Label(
            x1=x1,
            y1=y1,
            x2=x2,
            y2=y2,
            name=str(data["name"]),
            difficult=bool(data.get("difficult", False)),
            truncated=bool(data.get("truncated", False)),
            raw=_raw_from_json(data.get("raw")),
        )
        return cls(label, Provenance.from_json(data.get("provenance") or {}))


def _raw_from_json(data: Any) -> RawRecord | None:
    """What a label file held for a label, as a journal or sidecar recorded it."""
    if isinstance(data, dict) and isinstance(data.get("fmt"), str) and isinstance(data.get("data"), str):
        return RawRecord(data["fmt"], data["data"])
    return None


@dataclass(frozen=True)
class DetectionKey:
    """A detection the user rejected: model, anchor, class, and where it was seen.

    The model is its file name and fingerprint (``model_id``, "" when unknown, as in records
    written before it was recorded). ``size`` is the inference size the detection was made
    at (0: unknown, as in records written before it was recorded) and ``box`` its box (xyxy,
    original-image pixels, rounded to 0.01 px; None: unknown). ``anchor_id`` is
    :data:`app.labelling.detections.UNKNOWN_ANCHOR` when the detection was not shown (see
    :meth:`app.labelling.document.LabelDocument.delete_rows`). Which detections it hides:
    :func:`app.labelling.detections.match_rejections`.
    """

    model_name: str
    anchor_id: int
    class_id: int
    model_id: str = ""
    size: int = 0
    box: Box | None = None

    def is_of(self, model_name: str, model_id: str) -> bool:
        """Whether this detection is of the model ``model_name`` with fingerprint
        ``model_id`` ("" when unknown): ``model.quality.is_same_model``."""
        return is_same_model(self.model_name, self.model_id, model_name=model_name, model_id=model_id)

    def to_json(self) -> dict[str, Any]:
        """The sidecar record; ``size`` and ``box`` only when known, so a record read from an
        older sidecar is written back as it was."""
        data: dict[str, Any] = {
            "model_name": self.model_name,
            "anchor_id": self.anchor_id,
            "class_id": self.class_id,
            "model_id": self.model_id,
        }
        if self.size:
            data["size"] = self.size
        if self.box is not None:
            data["box"] = list(self.box)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DetectionKey:
        box = data.get("box")
        if box is not None:
            box = tuple(float(v) for v in box)
            if len(box) != 4 or not all(math.isfinite(v) for v in box):
                raise ValueError(f"rejected detection box {box} is not 4 finite numbers")
        return cls(
            str(data["model_name"]),
            int(data["anchor_id"]),
            int(data["class_id"]),
            str(data.get("model_id") or ""),
            int(data.get("size") or 0),
            box,  # type: ignore[arg-type]
        )

    def sort_key(self) -> tuple[Any, ...]:
        return (self.model_name, self.model_id, self.size, self.anchor_id, self.class_id, self.box or ())


def state_to_json(entries: Sequence[LabelEntry], rejected: Iterable[DetectionKey], *, verified: bool = False) -> dict[str, Any]:
    """The JSON-ready label state of one image (used by the sidecar and the journal)."""
    return {
        "version": STATE_VERSION,
        "labels": [e.to_json() for e in entries],
        "rejected": [k.to_json() for k in sorted(rejected, key=DetectionKey.sort_key)],
        "verified": bool(verified),
    }


def verified_from_json(data: Any) -> bool | None:
    """The verified mark of a label state (:func:`state_to_json`); None when it has none
    (states written before it was recorded)."""
    value = data.get("verified") if isinstance(data, dict) else None
    return value if isinstance(value, bool) else None


def state_from_json(data: dict[str, Any]) -> tuple[list[LabelEntry], frozenset[DetectionKey]]:
    """Inverse of :func:`state_to_json`; raises ``ValueError``/``KeyError``/``TypeError``
    on a malformed state."""
    if not isinstance(data, dict) or not isinstance(data.get("labels", []), list):
        raise ValueError("not a label state object")
    try:
        entries = [LabelEntry.from_json(d) for d in data.get("labels", [])]
        rejected = frozenset(DetectionKey.from_json(d) for d in data.get("rejected", []))
    except (AttributeError, OverflowError) as exc:  # e.g. a list where an object belongs, a 1e400
        raise ValueError(f"malformed label state ({exc})") from None
    for entry in entries:
        if not all(math.isfinite(v) for v in entry.box):
            raise ValueError(f"label box {entry.box} is not finite")
    return entries, rejected
