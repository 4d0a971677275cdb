"""5. Data safety: label writes are atomic (a reader only ever sees the old or the new file),
a failed save keeps the edits (document dirty, journal holding them), and damaged recovery
data (edit journal, provenance sidecar) never stops the app from opening labels.

The kill tests (SIGKILL while saving / editing) live in tests/app and are counted by
reference (see conftest.REFERENCES)."""

from __future__ import annotations

import errno
import json
import math
import os
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.labelling.document import LabelDocument, ProjectClasses
from app.labelling.entries import state_from_json, state_to_json
from app.labelling.journal import Journal
from app.labelling.label_files import sidecar_path
from model.errors import LabelWriteError
from model.labels import ImageLabels, Label, atomic_write_bytes, read_voc, write_voc

FUZZ = settings(
    max_examples=500,
    deadline=10_000,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


# --------------------------------------------------------------------------- atomic writes
def test_readers_only_ever_see_a_whole_file(tmp_path: Path, cases) -> None:  # noqa: ANN001
    path = tmp_path / "labels.xml"
    versions = [b"A" * 20_000 + b"\n", b"B" * 35_000 + b"\n", b"C\n"]
    atomic_write_bytes(path, versions[0])
    done = threading.Event()
    seen: list[bytes] = []
    torn: list[int] = []

    def read_all_the_time() -> None:
        while not done.is_set():
            data = path.read_bytes()
            seen.append(data[:1])
            if data not in versions:
                torn.append(len(data))

    reader = threading.Thread(target=read_all_the_time)
    reader.start()
    try:
        for i in range(100):
            atomic_write_bytes(path, versions[i % 3])
    finally:
        done.set()
        reader.join()
    assert not torn, f"a reader saw {len(torn)} partial files"
    assert len(set(seen)) >= 2, "the reader never overlapped a write"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.xml"]
    cases.add("data", "atomic writes raced by a reader: never torn", 100)


# --------------------------------------------------------------------------- failed saves
def _document(folder: Path, root: Path) -> tuple[LabelDocument, Path]:
    image = folder / "photo.jpg"
    write_voc(ImageLabels(str(image), 640, 480, labels=[Label(1, 1, 9, 9, "cat")]), image.with_suffix(".xml"))
    doc = LabelDocument(ProjectClasses(["cat", "dog"]), journal=Journal(folder, root=root))
    doc.load(image, (640, 480), "voc")
    return doc, image


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS])
def test_failed_save_keeps_the_edits_and_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, cases) -> None:  # noqa: ANN001
    folder, root = tmp_path / "images", tmp_path / "journal"
    folder.mkdir()
    doc, image = _document(folder, root)
    before = image.with_suffix(".xml").read_bytes()
    doc.add_box((20, 20, 200, 100), "dog")

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(LabelWriteError) as info:
        doc.save()
    monkeypatch.undo()
    assert str(image.with_suffix(".xml")) in str(info.value)
    assert image.with_suffix(".xml").read_bytes() == before
    assert doc.is_dirty() and len(doc.labels()) == 2
    assert Journal(folder, root=root).pending()[str(image)] == doc.labels()  # a crash now loses nothing
    doc.save()
    assert not doc.is_dirty() and len(read_voc(image.with_suffix(".xml")).labels) == 2
    assert Journal(folder, root=root).pending() == {}
    cases.add("data", "failed save: edits kept (dirty + journal), old file kept", 1)


def test_a_journal_that_cannot_be_written_does_not_stop_editing(tmp_path: Path, cases) -> None:  # noqa: ANN001
    folder = tmp_path / "images"
    folder.mkdir()
    blocker = tmp_path / "not a folder"
    blocker.write_text("the journal folder cannot be created under a file")
    doc, image = _document(folder, blocker / "journal")
    doc.add_box((20, 20, 200, 100), "dog")
    doc.relabel([1], "cat")
    assert [lab.name for lab in doc.labels()] == ["cat", "cat"]
    doc.save()
    assert len(read_voc(image.with_suffix(".xml")).labels) == 2
    cases.add("data", "journal unwritable: editing and saving go on", 1)


# --------------------------------------------------------------------------- damaged recovery data
finite = st.floats(-1e6, 1e6)
hostile_number = st.one_of(finite, st.integers(-(10**6), 10**6), st.sampled_from([math.nan, math.inf, -math.inf, 10**400, 1e308, True, None, "1", "x", [1]]))
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=4))
json_any = st.recursive(json_scalar, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3), max_leaves=6)
entry = st.fixed_dictionaries(
    {},
    optional={
        "box": st.one_of(st.lists(hostile_number, min_size=4, max_size=4), st.lists(hostile_number, max_size=5), json_any),
        "name": st.one_of(st.sampled_from(["cat", "dog", ""]), json_scalar),
        "difficult": json_scalar,
        "truncated": json_scalar,
        "provenance": st.one_of(
            st.fixed_dictionaries({}, optional={"source": json_scalar, "score": hostile_number, "original_box": json_any, "edited": json_scalar}),
            json_any,
        ),
    },
)
rejected_key = st.one_of(st.fixed_dictionaries({"model_name": json_scalar, "anchor_id": hostile_number, "class_id": hostile_number}), json_any)
label_state = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "version": json_scalar,
            "labels": st.one_of(st.lists(entry, max_size=4), json_any),
            "rejected": st.one_of(st.lists(rejected_key, max_size=3), json_any),
        },
    ),
    json_any,
)


@settings(FUZZ, max_examples=1000)
@given(state=label_state)
def test_damaged_label_states_are_refused_not_crashed_on(state: object, cases) -> None:  # noqa: ANN001
    """state_from_json reads the journal and the sidecar: it must return sane labels or
    raise the ValueError/KeyError/TypeError its callers catch."""
    cases.add("data", "damaged label state (journal/sidecar) fuzz (hypothesis)", 1)
    try:
        entries, rejected = state_from_json(state)  # type: ignore[arg-type]
    except (ValueError, KeyError, TypeError):
        return
    for e in entries:
        assert all(isinstance(v, float) and math.isfinite(v) for v in e.box), e
    assert all(isinstance(k.anchor_id, int) for k in rejected)


def _state_line(image: Path, label: Label) -> bytes:
    doc_state = state_to_json([], [])
    doc_state["labels"] = [{"box": list(label.box), "name": label.name, "difficult": False, "truncated": False, "provenance": {"source": "drawn"}}]
    return json.dumps({"image": str(image), "state": doc_state}).encode() + b"\n"


journal_line = st.one_of(
    st.binary(max_size=60),
    json_any.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda img, state: json.dumps({"image": img, "state": state}, default=str).encode(), json_scalar, label_state),
    st.builds(lambda img, flag: json.dumps({"image": img, "cleared": flag}).encode(), json_scalar, json_scalar),
)
JOURNAL_DIRS: list[Path] = []


@settings(FUZZ, max_examples=300)
@given(lines=st.lists(journal_line, max_size=6), cut=st.integers(0, 40))
def test_a_damaged_journal_still_opens_and_recovers(lines: list[bytes], cut: int, tmp_path_factory: pytest.TempPathFactory, cases) -> None:  # noqa: ANN001
    if not JOURNAL_DIRS:
        JOURNAL_DIRS.append(tmp_path_factory.mktemp("journal-fuzz"))
    folder, root = JOURNAL_DIRS[0] / "images", JOURNAL_DIRS[0] / "root"
    folder.mkdir(exist_ok=True)
    journal = Journal(folder, root=root)
    journal.close()
    image, saved = folder / "kept.jpg", Label(3, 4, 30, 40, "cat")
    good = _state_line(image, saved)
    root.mkdir(exist_ok=True)
    journal.path.write_bytes(b"\n".join(lines) + b"\n" + good + good[: cut % len(good)])
    cases.add("data", "damaged journal file: opens, intact edits recovered (hypothesis)", 1)
    reopened = Journal(folder, root=root)
    pending = reopened.pending()
    assert pending[str(image)] == [saved]
    doc = LabelDocument(ProjectClasses(), journal=reopened)
    doc.load(image, (640, 480), "voc")
    assert doc.recover() and doc.labels() == [saved]
    reopened.clear_all()


SIDECARS = {
    "garbage bytes": b"\x00\xff not json",
    "NaN box": b'{"labels": [{"box": [NaN, 1, 9, 9], "name": "cat"}]}',
    "box of 1e400": b'{"labels": [{"box": [1e400, 1, 9, 9], "name": "cat"}]}',
    "provenance is a list": b'{"labels": [{"box": [1, 1, 9, 9], "name": "cat", "provenance": [1, 2]}]}',
    "score of 10**400": b'{"labels": [{"box": [1, 1, 9, 9], "name": "cat", "provenance": {"score": 1' + b"0" * 400 + b"}}]}",
    "rejected anchor id Infinity": b'{"labels": [], "rejected": [{"model_name": "m", "anchor_id": Infinity, "class_id": 0}]}',
    "labels is a string": b'{"labels": "cat"}',
    "a JSON list": b"[1, 2, 3]",
}


@pytest.mark.parametrize("kind", list(SIDECARS))
def test_a_damaged_provenance_sidecar_never_blocks_the_labels(tmp_path: Path, kind: str, cases) -> None:  # noqa: ANN001
    image = tmp_path / "photo.jpg"
    write_voc(ImageLabels(str(image), 640, 480, labels=[Label(1, 1, 9, 9, "cat")]), image.with_suffix(".xml"))
    sidecar = sidecar_path(image)
    sidecar.parent.mkdir()
    sidecar.write_bytes(SIDECARS[kind])
    doc = LabelDocument(ProjectClasses())
    doc.load(image, (640, 480), "voc")
    assert doc.labels() == [Label(1, 1, 9, 9, "cat")]
    doc.add_box((5, 5, 50, 50), "dog")
    doc.save()  # and saving replaces the damaged sidecar with a good one
    assert json.loads(sidecar.read_text())["labels"][1]["name"] == "dog"
    cases.add("data", "damaged provenance sidecar: labels still open and save", 1)
