"""The label-format registry: lookup, the common interface, the one COCO image lookup rule,
and a format that lives only in the tests (``tsv_format.py``) working end to end."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from tsv_format import TSV

from model.errors import LabelFormatError
from model.labels import FORMATS, ImageLabels, Label, LabelFormat, convert_dataset, get_format, label_path_for, load_dataset, save_dataset
from model.labels.base import ImageIndex
from model.labels.cli import add_convert_arguments, cli_convert
from model.labels.coco import COCO_FILE_NAME, write_coco
from model.labels.existing import LabelSetWriter
from model.labels.registry import UnknownFormatError, registered
from model.labels.voc import write_voc


def _boxes(labels: list[Label]) -> list[tuple[str, float, float, float, float]]:
    return [(label.name, *label.box) for label in labels]


def _image(path: Path, width: int = 64, height: int = 48) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.zeros((height, width, 3), np.uint8))
    return path


@pytest.fixture
def tsv() -> Iterator[LabelFormat]:
    with registered(TSV) as fmt:
        yield fmt


def test_registry_lists_the_formats_in_order_and_each_implements_the_interface() -> None:
    assert list(FORMATS) == ["voc", "yolo", "coco"]
    for name, fmt in FORMATS.items():
        assert isinstance(fmt, LabelFormat) and fmt.name == name and get_format(name) is fmt
        assert fmt.suffix.startswith(".") and fmt.title


def test_an_unknown_format_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(UnknownFormatError, match=r"unknown label format 'labelme'; choose from voc, yolo, coco"):
        get_format("labelme")
    with pytest.raises(ValueError, match="unknown label format"):
        load_dataset(".", "labelme")


def test_registering_lasts_for_the_block_and_refuses_a_taken_name() -> None:
    with registered(TSV):
        assert get_format("tsv") is TSV and list(FORMATS)[-1] == "tsv"
        with pytest.raises(ValueError, match="already registered"):
            with registered(TSV):
                pass
    assert "tsv" not in FORMATS


def test_one_coco_lookup_rule_everywhere(tmp_path: Path) -> None:
    """Exact path first, then the first entry with the same base name: the app's document,
    dataset loads and batch detection's writer agree on which entry is an image's."""
    images = tmp_path / "images"
    a = _image(images / "a.jpg")
    b = _image(images / "b.jpg")
    moved = tmp_path / "elsewhere"
    entries = [
        ImageLabels(str(tmp_path / "old" / "b.jpg"), 64, 48, 3, labels=[Label(1, 1, 5, 5, "by name")]),
        ImageLabels(str(a), 64, 48, 3, labels=[Label(2, 2, 9, 9, "exact")]),
        ImageLabels(str(tmp_path / "other" / "a.jpg"), 64, 48, 3, labels=[Label(3, 3, 7, 7, "same name, later")]),
    ]
    index = ImageIndex(entries)
    assert index.find(a) is entries[1] and index.find(str(images / "." / "a.jpg")) is entries[1]
    assert index.find(b) is entries[0]
    assert index.find(images / "c.jpg") is None
    moved.mkdir()
    write_coco(entries, moved / COCO_FILE_NAME, class_names=["by name", "exact", "same name, later"])
    coco = get_format("coco")
    assert [lab.name for lab in coco.read_image(a, width=64, height=48, labels_dir=moved).labels] == ["exact"]
    assert [lab.name for lab in coco.read_image(b, width=64, height=48, labels_dir=moved).labels] == ["by name"]
    dataset = load_dataset(images, "coco", labels_dir=moved)
    assert {Path(item.image_path).name: [lab.name for lab in item.labels] for item in dataset.items} == {"a.jpg": ["exact"], "b.jpg": ["by name"]}
    writer = LabelSetWriter(moved, "coco", class_names=["x"], mode="skip")
    assert writer.to_detect([a, b, images / "c.jpg"]) == [images / "c.jpg"]


def test_a_test_only_format_loads_saves_and_converts_through_the_public_paths(tsv: LabelFormat, tmp_path: Path) -> None:
    src = tmp_path / "src"
    one = _image(src / "one.png", 80, 60)
    _image(src / "two.png", 50, 40)
    _image(src / "three.png", 30, 30)
    (src / "one.tsv").write_text("# reviewed by ana\ncat\t1\t2\t30\t40\ndog\t10\t10\t20\t20\n", encoding="utf-8")
    (src / "two.tsv").write_text("", encoding="utf-8")
    assert label_path_for(one, "tsv") == src / "one.tsv"

    dataset = load_dataset(src, "tsv")
    assert dataset.label_files == 2 and not dataset.errors and dataset.class_names == ["cat", "dog"]
    by_name = {Path(item.image_path).name: item for item in dataset.items}
    assert set(by_name) == {"one.png", "two.png", "three.png"}
    assert (by_name["one.png"].width, by_name["one.png"].height) == (80, 60)
    assert _boxes(by_name["one.png"].labels) == [("cat", 1, 2, 30, 40), ("dog", 10, 10, 20, 20)]
    assert by_name["three.png"].labels == []

    # tsv -> voc -> tsv: every box back, in a format the product already had
    voc_dir = tmp_path / "voc"
    convert_dataset(src, src_fmt="tsv", dst=voc_dir, dst_fmt="voc")
    back_dir = tmp_path / "back"
    back = convert_dataset(voc_dir, src_fmt="voc", dst=back_dir, dst_fmt="tsv")
    assert not back.errors
    again = {Path(item.image_path).name: item for item in load_dataset(back_dir, "tsv").items}
    assert _boxes(again["one.png"].labels) == _boxes(by_name["one.png"].labels)
    assert (back_dir / "three.tsv").read_text(encoding="utf-8") == ""

    # a save carries forward the file's notes; the CLI offers the format
    item = by_name["one.png"]
    item.labels = item.labels[:1]
    save_dataset([item], src, "tsv", class_names=["cat"])
    assert (src / "one.tsv").read_text(encoding="utf-8") == "# reviewed by ana\ncat\t1\t2\t30\t40\n"
    parser = argparse.ArgumentParser()
    add_convert_arguments(parser)
    out = tmp_path / "coco"
    assert cli_convert(parser.parse_args([str(src), "--from", "tsv", "--to", "coco", "--out", str(out)])) == 0
    coco = json.loads((out / COCO_FILE_NAME).read_text(encoding="utf-8"))
    assert len(coco["annotations"]) == 1 and [c["name"] for c in coco["categories"]] == ["cat"]


def test_a_test_only_format_reports_a_bad_file_and_keeps_loading(tsv: LabelFormat, tmp_path: Path) -> None:
    good = _image(tmp_path / "good.png")
    _image(tmp_path / "bad.png")
    (tmp_path / "good.tsv").write_text("cat\t1\t1\t5\t5\n", encoding="utf-8")
    (tmp_path / "bad.tsv").write_text("cat\t1\tone\t5\t5\n", encoding="utf-8")
    dataset = load_dataset(tmp_path, "tsv")
    assert [item.image_path for item in dataset.items] == [str(good)]
    assert len(dataset.errors) == 1 and isinstance(dataset.errors[0], LabelFormatError)
    assert "bad.tsv" in str(dataset.errors[0]) and "line 1" in str(dataset.errors[0])


def test_missing_labels_hint_names_a_registered_format(tsv: LabelFormat, tmp_path: Path) -> None:
    image = _image(tmp_path / "a.png")
    write_voc(ImageLabels(str(image), 64, 48, 3, labels=[Label(1, 1, 9, 9, "cat")]), tmp_path / "a.xml")
    dataset = load_dataset(tmp_path, "tsv")
    assert dataset.label_files == 0 and "pass --format voc" in dataset.missing_note


# ----------------------------------------------------------------------------- one image (the app's save and open)
@pytest.mark.parametrize("name", ["voc", "yolo", "coco"])
def test_write_then_read_one_image_in_each_format(tmp_path: Path, name: str) -> None:
    fmt = get_format(name)
    image = tmp_path / "photo.jpg"
    other = tmp_path / "other.jpg"
    labels_dir = tmp_path / "labels"
    labels_dir.mkdir()
    assert fmt.read_image(image, width=640, height=480, labels_dir=labels_dir) is None  # no file yet
    first = ImageLabels(str(image), 640, 480, 3, labels=[Label(10, 20, 110, 220, "dog")], verified=True)
    path = fmt.write_image(first, labels_dir=labels_dir, class_names=["cat", "dog"])
    assert path == fmt.label_path_for(image, labels_dir) and path.parent == labels_dir
    fmt.write_image(ImageLabels(str(other), 640, 480, 3, labels=[Label(1, 1, 50, 50, "bird")]), labels_dir=labels_dir, class_names=["cat", "dog"])
    back = fmt.read_image(image, width=640, height=480, labels_dir=labels_dir, class_names=["cat", "dog"])
    assert back is not None
    tol = 1e-3 if name == "yolo" else 0.0
    assert [lab.name for lab in back.labels] == ["dog"] and np.allclose(back.labels[0].box, (10, 20, 110, 220), atol=tol)
    assert back.verified == fmt.keeps_verified
    if fmt.stores_class_names and fmt.per_image_files:  # YOLO: ids never move, new names are appended
        assert fmt.class_list(tmp_path, labels_dir) == ["cat", "dog", "bird"]
    again = fmt.read_image(other, width=640, height=480, labels_dir=labels_dir, class_names=["cat", "dog"])
    assert again is not None and [lab.name for lab in again.labels] == ["bird"]


def test_a_coco_save_of_one_image_keeps_the_other_entries_and_its_own_id(tmp_path: Path) -> None:
    coco = get_format("coco")
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    document = {
        "info": {"description": "from CVAT"},
        "images": [{"id": 7, "file_name": "a.jpg", "width": 64, "height": 48, "license": 3}, {"id": 9, "file_name": "b.jpg", "width": 64, "height": 48}],
        "annotations": [{"id": 1, "image_id": 9, "category_id": 1, "bbox": [1, 1, 4, 4], "iscrowd": 0, "area": 16}],
        "categories": [{"id": 1, "name": "cat", "supercategory": "animal"}],
    }
    (tmp_path / COCO_FILE_NAME).write_text(json.dumps(document), encoding="utf-8")
    item = coco.read_image(a, width=64, height=48)
    assert item is not None and item.labels == []
    item.labels = [Label(2, 2, 10, 10, "dog")]
    coco.write_image(item)
    saved = json.loads((tmp_path / COCO_FILE_NAME).read_text(encoding="utf-8"))
    assert saved["info"] == {"description": "from CVAT"}
    assert [(im["id"], im["file_name"], im.get("license")) for im in saved["images"]] == [(7, "a.jpg", 3), (9, "b.jpg", None)]
    assert saved["categories"][0] == {"id": 1, "name": "cat", "supercategory": "animal"}
    by_image = {ann["image_id"]: ann for ann in saved["annotations"]}
    assert by_image[9]["bbox"] == [1, 1, 4, 4] and by_image[7]["bbox"] == [2, 2, 8, 8]
    assert [lab.name for lab in coco.read_image(b, width=64, height=48).labels] == ["cat"]
