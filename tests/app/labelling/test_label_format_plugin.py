"""A label format that exists only in the tests (``tests/model/labels/tsv_format.py``),
registered for a test, opens and saves one image in the app: no app module names formats."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import sys  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "model" / "labels"))
from tsv_format import TSV  # noqa: E402

from app.labelling.document import LabelDocument, ProjectClasses  # noqa: E402
from app.labelling.entries import DRAWN, FILE  # noqa: E402
from app.labelling.label_session import LabelSession  # noqa: E402
from model.labels import LabelFormat  # noqa: E402
from model.labels.registry import registered  # noqa: E402

SIZE = (200, 100)


@pytest.fixture
def tsv() -> Iterator[LabelFormat]:
    with registered(TSV) as fmt:
        yield fmt


def test_a_registered_format_loads_edits_and_saves_one_image(tsv: LabelFormat, tmp_path: Path, qtbot) -> None:  # noqa: ANN001, ARG001
    image = tmp_path / "photo.jpg"
    (tmp_path / "photo.tsv").write_text("# from the field team\ncat\t10\t20\t60\t80\n", encoding="utf-8")
    project = ProjectClasses(["dog"])
    doc = LabelDocument(project)
    doc.load(image, SIZE, "tsv")
    assert doc.label_file() == tmp_path / "photo.tsv"
    assert [(lab.name, *lab.box) for lab in doc.labels()] == [("cat", 10, 20, 60, 80)]
    assert doc.provenance(0).source == FILE and "cat" in project

    doc.add_box((100, 10, 150, 50), "dog")
    assert doc.is_dirty()
    path = doc.save()
    assert path == tmp_path / "photo.tsv" and not doc.is_dirty()
    assert path.read_text(encoding="utf-8") == "# from the field team\ncat\t10\t20\t60\t80\ndog\t100\t10\t150\t50\n"

    reopened = LabelDocument(ProjectClasses())
    reopened.load(image, SIZE, "tsv")
    assert [(lab.name, *lab.box) for lab in reopened.labels()] == [("cat", 10, 20, 60, 80), ("dog", 100, 10, 150, 50)]
    assert [reopened.provenance(r).source for r in range(2)] == [FILE, DRAWN]  # the sidecar still tells drawn boxes apart


def test_the_session_reads_a_registered_format_it_finds_and_saves_in_the_chosen_one(tsv: LabelFormat, tmp_path: Path, qtbot) -> None:  # noqa: ANN001, ARG001
    image = tmp_path / "a.png"
    (tmp_path / "a.tsv").write_text("bird\t1\t2\t3\t4\n", encoding="utf-8")
    session = LabelSession(ProjectClasses(), fmt="voc")
    assert session.format_to_read(image) == "tsv"  # as LabelImg reads whichever file it finds
    session.set_format("tsv")
    assert session.format_to_read(image) == "tsv"
    with pytest.raises(ValueError, match="choose from voc, yolo, coco, tsv"):
        session.set_format("labelme")


def test_yolo_classes_join_the_project_only_for_an_image_with_labels(tmp_path: Path, qtbot) -> None:  # noqa: ANN001, ARG001
    """The class list kept with the labels is read with an image's labels, not before: an
    image with no label file opens empty even beside a broken classes.txt."""
    (tmp_path / "classes.txt").write_text("cat\n\ndog\n", encoding="utf-8")  # blank line between names: unusable
    project = ProjectClasses()
    doc = LabelDocument(project)
    doc.load(tmp_path / "unlabelled.jpg", SIZE, "yolo")
    assert doc.label_count() == 0 and doc.load_error is None and project.names == []
    (tmp_path / "classes.txt").write_text("cat\ndog\nbird\n", encoding="utf-8")
    (tmp_path / "seen.txt").write_text("1 0.5 0.5 0.2 0.2\n", encoding="utf-8")
    doc.load(tmp_path / "seen.jpg", SIZE, "yolo")
    assert [lab.name for lab in doc.labels()] == ["dog"] and project.names == ["cat", "dog", "bird"]
