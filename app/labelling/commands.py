"""Undoable edits of one image's labels: one QUndoCommand per user action.

Commands hold full before/after copies of the entries they touch, so undo restores the
exact previous geometry, class and provenance (boxes are xyxy in original-image pixels).
They change the document only through its ``raw_*`` methods, which exist for them: a
command sees the document as an :class:`EditTarget` (what
:class:`app.labelling.document.LabelDocument` provides), so this module sits below it.
A mouse drag is one command, pushed on release.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Protocol

from PySide6.QtGui import QUndoCommand

from app.labelling.entries import DetectionKey, LabelEntry

__all__ = [
    "AcceptDetections",
    "AddLabels",
    "EditTarget",
    "MoveResizeLabels",
    "RejectDetections",
    "RelabelLabels",
    "RemoveLabels",
    "ReplaceAllLabels",
    "ReplaceLabels",
    "SetDifficult",
    "SetVerified",
    "set_difficult",
]


class EditTarget(Protocol):
    """The document as the commands see it: its label state, its undo stack, and the
    ``raw_*`` mutators that exist for the commands (no undo, no dirty tracking)."""

    @property
    def verified(self) -> bool: ...

    def label_count(self) -> int: ...

    def entry(self, row: int) -> LabelEntry: ...

    def entries(self) -> list[LabelEntry]: ...

    def rejected_keys(self) -> frozenset[DetectionKey]: ...

    def push(self, command: QUndoCommand) -> None: ...

    def raw_insert(self, rows: Sequence[int], entries: Sequence[LabelEntry]) -> None: ...

    def raw_remove(self, rows: Sequence[int]) -> None: ...

    def raw_replace(self, rows: Sequence[int], entries: Sequence[LabelEntry]) -> None: ...

    def raw_set_rejected(self, keys: frozenset[DetectionKey]) -> None: ...

    def raw_set_state(self, entries: Sequence[LabelEntry], rejected: frozenset[DetectionKey]) -> None: ...

    def raw_set_verified(self, verified: bool) -> None: ...


class AddLabels(QUndoCommand):
    """Append ``entries`` after the existing labels (draw, duplicate, paste)."""

    def __init__(self, document: EditTarget, entries: Sequence[LabelEntry], *, text: str = "Add Box") -> None:
        super().__init__(text)
        self._document = document
        self._entries = list(entries)
        self._rows: list[int] = []

    def redo(self) -> None:
        start = self._document.label_count()
        self._rows = list(range(start, start + len(self._entries)))
        self._document.raw_insert(self._rows, self._entries)

    def undo(self) -> None:
        self._document.raw_remove(self._rows)


class AcceptDetections(AddLabels):
    """Turn detections into labels (provenance: accepted from a model)."""

    def __init__(self, document: EditTarget, entries: Sequence[LabelEntry], *, text: str | None = None) -> None:
        n = len(entries)
        super().__init__(document, entries, text=text or ("Accept Detection" if n == 1 else f"Accept {n} Detections"))


class RemoveLabels(QUndoCommand):
    """Delete the labels at ``rows`` and reject the detections ``rejected`` (the detections
    some of them were accepted from) in the same step; undo puts the labels back at the
    same rows and un-rejects."""

    def __init__(
        self,
        document: EditTarget,
        rows: Iterable[int],
        *,
        rejected: Iterable[DetectionKey] = (),
        text: str = "Delete Boxes",
    ) -> None:
        super().__init__(text)
        self._document = document
        self._rows = sorted(set(rows))
        self._entries = [document.entry(r) for r in self._rows]
        self._rejected_before = document.rejected_keys()
        self._rejected_after = self._rejected_before | frozenset(rejected)

    def redo(self) -> None:
        # rejected first: the detection goes from "already a label" to "rejected", never shown
        if self._rejected_after != self._rejected_before:
            self._document.raw_set_rejected(self._rejected_after)
        self._document.raw_remove(self._rows)

    def undo(self) -> None:
        self._document.raw_insert(self._rows, self._entries)
        if self._rejected_after != self._rejected_before:
            self._document.raw_set_rejected(self._rejected_before)


class ReplaceLabels(QUndoCommand):
    """Replace the entries at ``rows`` by ``new_entries`` (same count, same rows)."""

    def __init__(
        self, document: EditTarget, rows: Sequence[int], new_entries: Sequence[LabelEntry], *, text: str
    ) -> None:
        super().__init__(text)
        if len(rows) != len(new_entries):
            raise ValueError(f"{len(rows)} rows but {len(new_entries)} entries")
        self._document = document
        self._rows = list(rows)
        self._old = [document.entry(r) for r in self._rows]
        self._new = list(new_entries)

    def redo(self) -> None:
        self._document.raw_replace(self._rows, self._new)

    def undo(self) -> None:
        self._document.raw_replace(self._rows, self._old)


class MoveResizeLabels(ReplaceLabels):
    """Give the labels at ``rows`` new boxes (xyxy): a move, a resize or a nudge."""

    def __init__(
        self,
        document: EditTarget,
        rows: Sequence[int],
        boxes: Sequence[tuple[float, float, float, float]],
        *,
        text: str = "Move Boxes",
    ) -> None:
        entries = [document.entry(r).with_box(b) for r, b in zip(rows, boxes, strict=True)]
        super().__init__(document, rows, entries, text=text)


class RelabelLabels(ReplaceLabels):
    """Give the labels at ``rows`` the class ``name``."""

    def __init__(self, document: EditTarget, rows: Sequence[int], name: str) -> None:
        entries = [document.entry(r).with_name(name) for r in rows]
        super().__init__(document, rows, entries, text=f"Relabel as {name!r}")


class SetDifficult(ReplaceLabels):
    """Set the VOC *difficult* flag of the labels at ``rows`` to ``difficult`` (box, class
    and provenance unchanged: the flag is a judgement about the object, not an edit of the
    detection)."""

    def __init__(self, document: EditTarget, rows: Sequence[int], difficult: bool) -> None:
        entries = [_with_difficult(document.entry(r), difficult) for r in rows]
        n = len(rows)
        what = "Box" if n == 1 else f"{n} Boxes"
        super().__init__(document, rows, entries, text=f"Mark {what} Difficult" if difficult else f"Mark {what} Not Difficult")


def _with_difficult(entry: LabelEntry, difficult: bool) -> LabelEntry:
    return dataclasses.replace(entry, label=dataclasses.replace(entry.label, difficult=bool(difficult)))


def set_difficult(document: EditTarget, rows: Iterable[int], difficult: bool) -> bool:
    """Push one :class:`SetDifficult` for the labels at ``rows`` whose flag differs;
    returns whether anything changed."""
    rows = [r for r in sorted(set(rows)) if 0 <= r < document.label_count() and document.entry(r).label.difficult != difficult]
    if rows:
        document.push(SetDifficult(document, rows, difficult))
    return bool(rows)


class RejectDetections(QUndoCommand):
    """Hide detections (by their stable key) for this image."""

    def __init__(
        self, document: EditTarget, keys: Iterable[DetectionKey], *, text: str = "Reject Detection"
    ) -> None:
        super().__init__(text)
        self._document = document
        self._before = document.rejected_keys()
        self._after = self._before | frozenset(keys)

    def redo(self) -> None:
        self._document.raw_set_rejected(self._after)

    def undo(self) -> None:
        self._document.raw_set_rejected(self._before)


class SetVerified(QUndoCommand):
    """Mark the image verified or not (LabelImg's Space)."""

    def __init__(self, document: EditTarget, verified: bool) -> None:
        super().__init__("Verify Image" if verified else "Unverify Image")
        self._document = document
        self._before = document.verified
        self._after = bool(verified)

    def redo(self) -> None:
        self._document.raw_set_verified(self._after)

    def undo(self) -> None:
        self._document.raw_set_verified(self._before)


class ReplaceAllLabels(QUndoCommand):
    """Replace the whole label state (used to recover unsaved edits from the journal)."""

    def __init__(
        self,
        document: EditTarget,
        entries: Sequence[LabelEntry],
        rejected: Iterable[DetectionKey],
        *,
        verified: bool | None = None,
        text: str = "Recover Unsaved Edits",
    ) -> None:
        super().__init__(text)
        self._document = document
        self._old = (document.entries(), document.rejected_keys())
        self._new = (list(entries), frozenset(rejected))
        self._verified = (document.verified, document.verified if verified is None else bool(verified))

    def redo(self) -> None:
        self._document.raw_set_state(*self._new)
        self._document.raw_set_verified(self._verified[1])

    def undo(self) -> None:
        self._document.raw_set_state(*self._old)
        self._document.raw_set_verified(self._verified[0])
