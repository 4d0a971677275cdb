"""The undo commands act on any EditTarget: a plain fake stands in for the document."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtGui import QUndoCommand, QUndoStack

from app.labelling import commands
from app.labelling.entries import DRAWN, MODEL, DetectionKey, LabelEntry, Provenance
from model.labels import Label


class FakeTarget:
    """The label state of an image, without Qt signals, files or a journal."""

    def __init__(self, entries: Sequence[LabelEntry] = ()) -> None:
        self._entries = list(entries)
        self._rejected: frozenset[DetectionKey] = frozenset()
        self._verified = False
        self.stack = QUndoStack()

    @property
    def verified(self) -> bool:
        return self._verified

    def label_count(self) -> int:
        return len(self._entries)

    def entry(self, row: int) -> LabelEntry:
        return self._entries[row]

    def entries(self) -> list[LabelEntry]:
        return list(self._entries)

    def rejected_keys(self) -> frozenset[DetectionKey]:
        return self._rejected

    def push(self, command: QUndoCommand) -> None:
        self.stack.push(command)

    def raw_insert(self, rows: Sequence[int], entries: Sequence[LabelEntry]) -> None:
        for row, entry in zip(rows, entries, strict=True):
            self._entries.insert(row, entry)

    def raw_remove(self, rows: Sequence[int]) -> None:
        for row in sorted(rows, reverse=True):
            del self._entries[row]

    def raw_replace(self, rows: Sequence[int], entries: Sequence[LabelEntry]) -> None:
        for row, entry in zip(rows, entries, strict=True):
            self._entries[row] = entry

    def raw_set_rejected(self, keys: frozenset[DetectionKey]) -> None:
        self._rejected = frozenset(keys)

    def raw_set_state(self, entries: Sequence[LabelEntry], rejected: frozenset[DetectionKey]) -> None:
        self._entries, self._rejected = list(entries), frozenset(rejected)

    def raw_set_verified(self, verified: bool) -> None:
        self._verified = bool(verified)


def entry(name: str, box: tuple[float, float, float, float] = (0, 0, 10, 10), source: str = DRAWN) -> LabelEntry:
    return LabelEntry(Label(*box, name=name), Provenance(source=source))


def test_delete_rejects_in_the_same_step_and_undo_restores_rows() -> None:
    target = FakeTarget([entry("a"), entry("b", source=MODEL), entry("c")])
    key = DetectionKey("m.onnx", 3, 0)
    target.push(commands.RemoveLabels(target, [2, 0], rejected=[key]))
    assert [e.label.name for e in target.entries()] == ["b"] and target.rejected_keys() == {key}
    target.stack.undo()
    assert [e.label.name for e in target.entries()] == ["a", "b", "c"] and target.rejected_keys() == frozenset()


def test_edits_keep_the_old_entries_for_undo() -> None:
    target = FakeTarget([entry("a"), entry("b")])
    target.push(commands.MoveResizeLabels(target, [1], [(5, 5, 20, 20)]))
    target.push(commands.RelabelLabels(target, [0], "z"))
    assert commands.set_difficult(target, [0, 1, 7], True)
    assert not commands.set_difficult(target, [0, 1], True)  # nothing differs: no command
    assert [(e.label.name, e.box, e.label.difficult) for e in target.entries()] == [("z", (0, 0, 10, 10), True), ("b", (5, 5, 20, 20), True)]
    for _ in range(3):
        target.stack.undo()
    assert target.entries() == [entry("a"), entry("b")]


def test_replace_all_and_verify_undo_as_one_step_each() -> None:
    target = FakeTarget([entry("a")])
    key = DetectionKey("m.onnx", 1, 0)
    target.push(commands.ReplaceAllLabels(target, [entry("x"), entry("y")], [key], verified=True))
    assert [e.label.name for e in target.entries()] == ["x", "y"] and target.verified and target.rejected_keys() == {key}
    target.push(commands.SetVerified(target, False))
    assert not target.verified
    target.stack.undo()
    target.stack.undo()
    assert target.entries() == [entry("a")] and not target.verified and target.rejected_keys() == frozenset()
