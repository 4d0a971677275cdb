"""app.labelling.export.export_labelled_set on its own: which images go, names, cancel, collisions."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.labelling.export import ExportCancelled, export_labelled_set
from model.errors import LabelWriteError
from model.labels import ImageLabels, Label, load_dataset, write_classes_txt, write_voc, write_yolo
from tests.app.fakes import write_marker_image


def labelled(folder: Path, name: str, *labels: Label, fmt: str = "voc") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    image = write_marker_image(folder / name, 30)
    item = ImageLabels(image_path=str(image), width=320, height=240, depth=3, labels=list(labels))
    if fmt == "voc":
        write_voc(item, image.with_suffix(".xml"))
    else:
        write_yolo(item, image.with_suffix(".txt"), class_names=["cat", "dog"])
        write_classes_txt(folder / "classes.txt", ["cat", "dog"])
    return image


def test_only_labelled_images_from_every_folder_are_exported(tmp_path: Path) -> None:
    a = labelled(tmp_path / "one", "a.png", Label(1, 2, 30, 40, "dog"))
    b = labelled(tmp_path / "two", "b.png")  # reviewed, no objects: an empty label file
    c = write_marker_image(tmp_path / "two" / "c.png", 90)  # never labelled
    seen: list[tuple[int, int]] = []
    result = export_labelled_set(
        [a, b, c],
        src_fmt="voc",
        dst=tmp_path / "out",
        dst_fmt="yolo",
        class_names=["cat"],
        progress=lambda done, total: seen.append((done, total)),
    )
    assert (result.images, result.labels, result.class_names) == (2, 1, ["cat", "dog"])
    assert seen[-1][0] == seen[-1][1] and [d for d, _ in seen] == sorted(d for d, _ in seen)
    out = load_dataset(tmp_path / "out", "yolo")
    by_name = {Path(i.image_path).name: i.labels for i in out.items}
    assert sorted(by_name) == ["a.png", "b.png"] and by_name["b.png"] == []
    (dog,) = by_name["a.png"]
    assert dog.name == "dog" and dog.box == pytest.approx((1, 2, 30, 40), abs=0.01)  # YOLO: 6 decimals
    assert not (tmp_path / "out" / "c.png").exists()


def test_yolo_source_and_unreadable_files_are_reported_not_fatal(tmp_path: Path) -> None:
    good = labelled(tmp_path / "src", "good.png", Label(10, 10, 50, 50, "cat"), fmt="yolo")
    bad = labelled(tmp_path / "src", "bad.png", Label(10, 10, 50, 50, "cat"), fmt="yolo")
    bad.with_suffix(".txt").write_text("7 0.5 0.5 0.1 0.1\n")  # class 7 does not exist
    result = export_labelled_set([good, bad], src_fmt="yolo", dst=tmp_path / "out", dst_fmt="coco")
    assert result.images == 1 and len(result.skipped) == 1 and "bad.txt" in str(result.skipped[0])
    (item,) = load_dataset(tmp_path / "out", "coco").items
    assert Path(item.image_path).name == "good.png" and item.labels[0].name == "cat"


def test_two_images_with_one_name_refuse_and_cancel_stops(tmp_path: Path) -> None:
    one = labelled(tmp_path / "one", "same.png", Label(1, 1, 9, 9, "cat"))
    two = labelled(tmp_path / "two", "same.png", Label(2, 2, 9, 9, "cat"))
    with pytest.raises(LabelWriteError, match="two images have this name"):
        export_labelled_set([one, two], src_fmt="voc", dst=tmp_path / "out", dst_fmt="voc")
    with pytest.raises(ExportCancelled):
        export_labelled_set([one], src_fmt="voc", dst=tmp_path / "out2", dst_fmt="voc", cancelled=lambda: True)
    assert not (tmp_path / "out2" / "same.xml").exists()


def test_export_reads_a_label_folder_and_keeps_what_the_files_held(tmp_path: Path) -> None:
    import json

    images = tmp_path / "images"
    a = labelled(images, "a.png", Label(1, 2, 30, 40, "dog"))
    (tmp_path / "annots").mkdir()
    xml = a.with_suffix(".xml").rename(tmp_path / "annots" / "a.xml")
    xml.write_text(xml.read_text().replace("<annotation>", '<annotation verified="yes">').replace("Unspecified", "Left"))
    result = export_labelled_set([a], src_fmt="voc", dst=tmp_path / "coco", dst_fmt="coco", label_dirs={str(images): tmp_path / "annots"})
    assert (result.images, result.labels) == (1, 1)
    document = json.loads((tmp_path / "coco" / "annotations.json").read_text())
    document["info"] = {"description": "mine"}
    document["categories"][0]["id"] = 12
    document["annotations"][0]["category_id"] = 12
    (tmp_path / "coco" / "annotations.json").write_text(json.dumps(document))
    export_labelled_set([tmp_path / "coco" / "a.png"], src_fmt="coco", dst=tmp_path / "coco2", dst_fmt="coco")
    again = json.loads((tmp_path / "coco2" / "annotations.json").read_text())
    assert again["info"] == {"description": "mine"} and again["categories"][0]["id"] == 12
    assert again["images"][0]["verified"] is True  # LabelImg's mark travels into COCO
    export_labelled_set([a], src_fmt="voc", dst=tmp_path / "voc", dst_fmt="voc", label_dirs={str(images): tmp_path / "annots"})
    assert (tmp_path / "voc" / "a.xml").read_bytes() == xml.read_bytes()
