"""app.labelling.label_files: the label file through its format and the provenance sidecar,
without a document (no Qt)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.labelling.entries import DRAWN, FILE, MODEL, DetectionKey, LabelEntry, Provenance
from app.labelling.label_files import SavedLabels, read_labels, saved_provenance, sidecar_path, write_labels, write_sidecar
from model.errors import LabelWriteError
from model.labels import ImageLabels, Label, get_format

SIZE = (640, 480)
ENTRIES = [
    LabelEntry(Label(10, 20, 110, 220, "dog"), Provenance()),
    LabelEntry(Label(300, 40, 400, 80, "cat"), Provenance(source=MODEL, model_name="m.onnx", score=0.8, original_box=(300, 40, 400, 80))),
]
REJECTED = frozenset({DetectionKey("m.onnx", 5, 1, "fp", 512, (1.0, 2.0, 3.0, 4.0))})


def write(image: Path, fmt: str, *, previous: ImageLabels | None = None, labels_dir: Path | None = None) -> tuple[Path, SavedLabels]:
    return write_labels(
        str(image),
        ENTRIES,
        REJECTED,
        fmt=fmt,
        size=SIZE,
        depth=3,
        verified=True,
        labels_dir=labels_dir,
        class_names=["cat", "dog"],
        previous=previous,
    )


def read(image: Path, fmt: str, labels_dir: Path | None = None) -> tuple[SavedLabels, list[str]]:
    return read_labels(get_format(fmt), str(image), size=SIZE, labels_dir=labels_dir, class_names=["cat", "dog"])


@pytest.mark.parametrize("fmt", ["voc", "yolo", "coco"])
def test_what_is_written_reads_back_with_its_provenance(tmp_path: Path, fmt: str) -> None:
    image = tmp_path / "a.jpg"
    path, written = write(image, fmt)
    assert path == get_format(fmt).label_path_for(image) and path.is_file()
    assert written.entries == ENTRIES and written.rejected == REJECTED and written.verified
    assert written.file is not None and [lab.name for lab in written.file.labels] == ["dog", "cat"]

    saved, class_list = read(image, fmt)
    assert [e.provenance.source for e in saved.entries] == [DRAWN, MODEL]
    assert [e.label.name for e in saved.entries] == ["dog", "cat"]
    assert saved.rejected == REJECTED and saved.verified  # YOLO keeps no mark: the sidecar has it
    assert class_list == (["cat", "dog"] if fmt == "yolo" else [])
    assert saved.file is not None and saved.file.depth in (0, 3)


def test_no_label_file_reads_as_nothing_even_with_a_sidecar(tmp_path: Path) -> None:
    image = tmp_path / "b.jpg"
    write_sidecar(str(image), ENTRIES, REJECTED, verified=True)
    saved, class_list = read(image, "voc")
    assert saved.file is None and saved.entries == [] and not saved.verified and class_list == []
    assert saved.rejected == REJECTED  # the rejections stay with the image


def test_sidecar_records_match_labels_within_half_a_pixel(tmp_path: Path) -> None:
    image = tmp_path / "c.jpg"
    write_sidecar(str(image), ENTRIES, frozenset(), verified=False)
    side = json.loads(sidecar_path(image).read_text())
    assert side["image"] == "c.jpg" and side["verified"] is False
    read_back = [Label(10.4, 20, 110, 219.6, "dog"), Label(302, 40, 400, 80, "cat"), Label(300, 40, 400, 80, "bird")]
    assert [p.source for p in saved_provenance(image, read_back)] == [DRAWN, FILE, FILE]


def test_a_damaged_sidecar_leaves_file_provenance(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    image = tmp_path / "d.jpg"
    get_format("voc").write_image(ImageLabels(str(image), *SIZE, 3, labels=[Label(1, 1, 9, 9, "cat")]))
    sidecar_path(image).parent.mkdir()
    sidecar_path(image).write_text('{"labels": [{"box": "nonsense"}]}')
    saved, _ = read(image, "voc")
    assert [(e.label.name, e.provenance.source) for e in saved.entries] == [("cat", FILE)]
    assert "ignoring unreadable provenance file" in caplog.text


def test_a_save_carries_forward_what_the_file_held(tmp_path: Path) -> None:
    image = tmp_path / "e.jpg"
    write(image, "voc")
    xml = (tmp_path / "e.xml").read_text().replace("<annotation", '<annotation custom="kept"', 1)
    (tmp_path / "e.xml").write_text(xml)
    saved, _ = read(image, "voc")
    write(image, "voc", previous=saved.file)
    assert 'custom="kept"' in (tmp_path / "e.xml").read_text()


def test_an_unwritable_label_folder_is_a_write_error(tmp_path: Path) -> None:
    blocker = tmp_path / "labels"
    blocker.write_text("a file where the label folder belongs")
    with pytest.raises(LabelWriteError):
        write(tmp_path / "f.jpg", "voc", labels_dir=blocker)
    assert not sidecar_path(tmp_path / "f.jpg").exists()
