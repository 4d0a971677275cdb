"""Crash recovery: the append-only edit journal, alone, with a document, and after kills."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import random  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtGui import QImage  # noqa: E402

import app.labelling.journal as journal_module  # noqa: E402
from app.labelling.document import LabelDocument, ProjectClasses  # noqa: E402
from app.labelling.entries import state_to_json  # noqa: E402
from app.labelling.journal import Journal  # noqa: E402
from app.labelling.label_session import LabelSession  # noqa: E402
from model.labels import Label  # noqa: E402


def state_of(*labels: Label) -> dict:
    doc = LabelDocument(ProjectClasses())
    for lab in labels:
        doc.add_box(lab.box, lab.name)
    return state_to_json(doc.entries(), [])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "images"
    path.mkdir()
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "journal-root"


def test_records_are_pending_until_cleared(folder: Path, root: Path) -> None:
    journal = Journal(folder, root=root)
    a, b = folder / "a.jpg", folder / "b.jpg"
    journal.record(a, state_of(Label(1, 2, 3, 4, "cat")))
    journal.record(a, state_of(Label(1, 2, 3, 5, "cat")))
    journal.record(b, state_of(Label(5, 5, 9, 9, "dog")))
    reopened = Journal(folder, root=root)  # "the next start"
    assert reopened.pending() == {str(a): [Label(1, 2, 3, 5, "cat")], str(b): [Label(5, 5, 9, 9, "dog")]}
    reopened.clear(a)
    assert list(Journal(folder, root=root).pending()) == [str(b)]
    reopened.clear(b)
    assert not journal.path.exists()  # nothing pending: no file left behind
    assert Journal(folder, root=root).pending() == {}


def test_one_journal_per_folder(tmp_path: Path, root: Path) -> None:
    one, two = Journal(tmp_path / "one", root=root), Journal(tmp_path / "two", root=root)
    assert one.path != two.path and one.path.parent == root


def test_a_torn_last_line_is_skipped_and_appending_goes_on(folder: Path, root: Path) -> None:
    journal = Journal(folder, root=root)
    image = folder / "t.jpg"
    journal.record(image, state_of(Label(1, 1, 2, 2, "cat")))
    journal.close()
    with open(journal.path, "ab") as f:  # a kill in the middle of the next append
        f.write(b'{"image": "' + str(image).encode() + b'", "state": {"labels": [{"box": [1, 1')
    after_crash = Journal(folder, root=root)
    assert after_crash.pending() == {str(image): [Label(1, 1, 2, 2, "cat")]}
    after_crash.record(image, state_of(Label(7, 7, 8, 8, "dog")))
    assert Journal(folder, root=root).pending() == {str(image): [Label(7, 7, 8, 8, "dog")]}


def test_the_journal_compacts_itself(folder: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal_module, "COMPACT_BYTES", 2000)
    journal = Journal(folder, root=root)
    keep = folder / "keep.jpg"
    journal.record(keep, state_of(Label(0, 0, 1, 1, "cat")))
    for i in range(60):
        journal.record(folder / "busy.jpg", state_of(Label(i, 0, i + 1, 1, "dog")))
    assert journal.path.stat().st_size < 4000  # superseded states were dropped
    assert Journal(folder, root=root).pending() == {
        str(keep): [Label(0, 0, 1, 1, "cat")],
        str(folder / "busy.jpg"): [Label(59, 0, 60, 1, "dog")],
    }


# ----------------------------------------------------------------------------- with a document
def test_document_edits_are_journaled_and_cleared_on_save(folder: Path, root: Path) -> None:
    journal = Journal(folder, root=root)
    image = folder / "d.jpg"
    doc = LabelDocument(ProjectClasses(["cat"]), journal=journal)
    doc.load(image, (100, 100), "voc")
    doc.add_box((1, 1, 10, 10), "cat")
    assert journal.pending() == {str(image): [Label(1, 1, 10, 10, "cat")]}
    doc.undo_stack.undo()  # back to the file's content: nothing to recover
    assert journal.pending() == {}
    doc.undo_stack.redo()
    doc.save()
    assert journal.pending() == {}
    doc.set_boxes([0], [(2, 2, 10, 10)])
    doc.discard()
    assert journal.pending() == {} and doc.labels() == [Label(1, 1, 10, 10, "cat")]


def test_recover_applies_the_unsaved_edits_as_one_undoable_step(folder: Path, root: Path) -> None:
    image = folder / "r.jpg"
    first = LabelDocument(ProjectClasses(["cat", "dog"]), journal=Journal(folder, root=root))
    first.load(image, (100, 100), "voc")
    first.add_box((1, 1, 10, 10), "cat")
    first.save()
    first.add_box((20, 20, 40, 40), "dog")
    first.relabel([0], "dog")
    # ... the process dies here; the next start:
    journal = Journal(folder, root=root)
    assert list(journal.pending()) == [str(image)]
    second = LabelDocument(ProjectClasses(), journal=journal)
    second.load(image, (100, 100), "voc")
    assert second.labels() == [Label(1, 1, 10, 10, "cat")]  # the saved file
    assert second.recover()
    assert second.labels() == first.labels() and second.is_dirty()
    assert [second.provenance(r) for r in range(2)] == [first.provenance(r) for r in range(2)]
    second.undo_stack.undo()
    assert second.labels() == [Label(1, 1, 10, 10, "cat")]
    assert not second.recover() or second.labels() == first.labels()


def test_recovery_after_killing_an_editing_process(folder: Path, root: Path) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("the kill test forks its workers (POSIX only)")
    from tests.app.kill_child import Zygote, generation_labels

    rng = random.Random(7)
    image = folder / "edited.jpg"
    previous: list[Label] | None = None
    completed = []
    zygote = Zygote()
    try:
        for kill in range(12):
            pid = zygote.spawn("edit", image, str(root))
            if kill % 2:  # half the kills land after a journaled edit, however loaded the machine
                zygote.wait_reported(1)
            time.sleep(rng.uniform(0.0, 0.15))
            done = zygote.kill(pid)
            completed.append(done)
            pending = Journal(folder, root=root).pending().get(str(image))
            candidates = [generation_labels(g) for g in (done, done + 1) if g > 0]
            if done == 0:
                candidates.append(previous)  # killed before its first edit was journaled
            assert pending in candidates, f"kill {kill} after generation {done}"
            previous = pending
    finally:
        zygote.close()
    assert max(completed) > 0, completed  # some kills landed after journaled edits
    doc = LabelDocument(ProjectClasses(), journal=Journal(folder, root=root))
    doc.load(image, (4000, 3000), "voc")
    assert doc.recover() == (previous is not None)
    assert doc.labels() == (previous or [])


# ----------------------------------------------------------------------------- the session
def test_session_guards_navigation_and_recovers_on_show(folder: Path, root: Path) -> None:
    answers: list[str] = []
    session = LabelSession(ProjectClasses(["cat"]), journal_root=root, ask=lambda parent, doc: answers.pop(0))
    image = QImage(120, 80, QImage.Format.Format_RGB888)
    a, b = folder / "a.png", folder / "b.png"
    doc = session.document_for(a, image)
    assert doc.image_size == (120, 80) and session.current is doc
    assert session.confirm_leave()  # clean: nothing to ask
    doc.add_box((1, 1, 20, 20), "cat")
    answers[:] = ["cancel"]
    assert not session.confirm_leave() and doc.is_dirty()
    answers[:] = ["save"]
    assert session.confirm_leave() and not doc.is_dirty()
    assert (folder / "a.xml").is_file()
    doc = session.document_for(b, image)
    doc.add_box((5, 5, 9, 9), "cat")
    answers[:] = ["discard"]
    assert session.confirm_leave() and doc.labels() == []
    doc.add_box((6, 6, 9, 9), "cat")  # ...and the app dies here
    again = LabelSession(ProjectClasses(), journal_root=root, autosave=True)
    recovered = again.document_for(b, image)
    assert recovered.labels() == [Label(6, 6, 9, 9, "cat")] and recovered.is_dirty()
    assert again.confirm_leave()  # autosave: saved without asking
    assert (folder / "b.xml").is_file() and Journal(folder, root=root).pending() == {}
