"""What the product does not edit survives a save: LabelImg's ``verified``, pose, occluded,
unknown tags, comments, folder/path (VOC); unknown keys and ids (COCO); line digits and
classes.txt order (YOLO)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np

from model.labels import ImageLabels, Label, convert_dataset, load_dataset, read_coco, read_voc, write_voc
from model.labels.coco import read_coco_file, write_coco
from model.labels.existing import MERGE_IOU, merge_labels
from model.labels.voc import voc_xml_bytes
from model.labels.yolo import read_yolo, write_yolo

RACCOON = """<?xml version="1.0" encoding="utf-8"?>
<!-- LabelImg -->
<annotation verified="yes">
\t<folder>images</folder>
\t<filename>raccoon-1.jpg</filename>
\t<path>/Users/dat/Downloads/raccoon/images/raccoon-1.jpg</path>
\t<source>
\t\t<database>Unknown</database>
\t</source>
\t<size>
\t\t<width>650</width>
\t\t<height>417</height>
\t\t<depth>3</depth>
\t</size>
\t<segmented>0</segmented>
\t<object>
\t\t<name>raccoon</name>
\t\t<pose>Left</pose>
\t\t<truncated>0</truncated>
\t\t<difficult>0</difficult>
\t\t<occluded>1</occluded>
\t\t<bndbox>
\t\t\t<xmin>81</xmin>
\t\t\t<ymin>88</ymin>
\t\t\t<xmax>522.5</xmax>
\t\t\t<ymax>408</ymax>
\t\t</bndbox>
\t</object>
\t<weather>rain — été</weather>
</annotation>
"""


def test_voc_unedited_save_is_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "raccoon-1.xml"
    path.write_text(RACCOON, encoding="utf-8")
    item = read_voc(path)
    assert item.verified and item.labels[0].box == (81.0, 88.0, 522.5, 408.0)
    write_voc(item, path)
    assert path.read_text(encoding="utf-8") == RACCOON


def test_voc_edits_change_only_what_was_edited(tmp_path: Path) -> None:
    path = tmp_path / "raccoon-1.xml"
    path.write_text(RACCOON, encoding="utf-8")
    item = read_voc(path)
    moved = dataclasses.replace(item.labels[0], x1=90.0, difficult=True)
    write_voc(dataclasses.replace(item, labels=[moved, Label(1, 2, 30, 40, "dog")]), path)
    text = path.read_text(encoding="utf-8")
    expected = (
        RACCOON.replace("<xmin>81</xmin>", "<xmin>90</xmin>")
        .replace("<difficult>0</difficult>", "<difficult>1</difficult>")
        .replace("\t</object>\n", "\t</object>\n\t<object>\n\t\t<name>dog</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
                 "\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>1</xmin>\n\t\t\t<ymin>2</ymin>\n\t\t\t<xmax>30</xmax>\n"
                 "\t\t\t<ymax>40</ymax>\n\t\t</bndbox>\n\t</object>\n", 1)
    )
    assert text == expected  # <xmax>522.5</xmax>, pose, occluded, comment, path: all as they were


def test_voc_verified_is_read_written_and_cleared(tmp_path: Path) -> None:
    path = tmp_path / "a.xml"
    fresh = ImageLabels(str(tmp_path / "a.jpg"), 10, 10, labels=[Label(1, 1, 5, 5, "cat")], verified=True)
    write_voc(fresh, path)
    assert b'<annotation verified="yes">' in path.read_bytes()
    item = read_voc(path)
    assert item.verified
    write_voc(dataclasses.replace(item, verified=False), path)
    assert path.read_bytes().startswith(b"<annotation>\n") and not read_voc(path).verified


def test_voc_to_coco_to_voc_keeps_boxes_and_a_coco_file_keeps_its_keys(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    cv2.imwrite(str(src / "raccoon-1.jpg"), np.zeros((417, 650, 3), np.uint8))
    (src / "raccoon-1.xml").write_text(RACCOON, encoding="utf-8")
    convert_dataset(src, src_fmt="voc", dst=tmp_path / "coco", dst_fmt="coco")
    document = json.loads((tmp_path / "coco" / "annotations.json").read_text())
    document["info"]["note"] = "kept"
    document["licenses"] = [{"id": 1, "name": "CC0"}]
    document["categories"][0]["id"] = 17
    document["categories"][0]["supercategory"] = "animal"
    document["annotations"][0].update(category_id=17, iscrowd=0, reviewer="ann", segmentation=[[81, 88, 522.5, 88, 300, 408]])
    document["images"][0]["license"] = 1
    (tmp_path / "coco" / "annotations.json").write_text(json.dumps(document))
    convert_dataset(tmp_path / "coco", src_fmt="coco", dst=tmp_path / "coco2", dst_fmt="coco")
    again = json.loads((tmp_path / "coco2" / "annotations.json").read_text())
    assert again["info"] == document["info"] and again["licenses"] == document["licenses"]
    assert again["categories"] == document["categories"] and again["annotations"] == document["annotations"]
    assert again["images"][0]["license"] == 1
    items, names = read_coco(tmp_path / "coco2" / "annotations.json")
    assert names == ["raccoon"] and items[0].labels[0].box == (81.0, 88.0, 522.5, 408.0)


def test_coco_new_class_gets_the_next_free_id_and_a_moved_box_a_new_outline(tmp_path: Path) -> None:
    json_path = tmp_path / "annotations.json"
    json_path.write_text(json.dumps({
        "images": [{"id": 5, "file_name": "a.jpg", "width": 100, "height": 80}],
        "annotations": [{"id": 9, "image_id": 5, "category_id": 40, "bbox": [10, 10, 20, 20], "area": 300.0, "iscrowd": 1,
                         "segmentation": [[10, 10, 30, 10, 20, 30]]}],
        "categories": [{"id": 40, "name": "cat"}],
    }))
    parsed = read_coco_file(json_path)
    (item,) = parsed.items
    assert item.labels[0].difficult  # iscrowd 1
    moved = dataclasses.replace(item.labels[0], x2=40.0)
    write_coco([dataclasses.replace(item, labels=[moved, Label(0, 0, 5, 5, "dog")])], json_path, class_names=["cat", "dog"], extras=parsed.extras)
    written = json.loads(json_path.read_text())
    assert written["categories"] == [{"id": 40, "name": "cat"}, {"id": 41, "name": "dog", "supercategory": "none"}]
    first, second = written["annotations"]
    assert first["id"] == 9 and first["iscrowd"] == 1 and first["bbox"] == [10.0, 10.0, 30.0, 20.0]
    assert first["area"] == 600.0 and first["segmentation"] == [[10.0, 10.0, 40.0, 10.0, 40.0, 30.0, 10.0, 30.0]]
    assert second["id"] == 10 and second["category_id"] == 41


def test_yolo_keeps_lines_and_classes_order(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), np.zeros((80, 100, 3), np.uint8))
    (src / "classes.txt").write_text("zebra\nant\nmoose\n")
    text = "2 0.5 0.5 0.123456789 0.2\r\n0\t0.25 0.25 0.1 0.1\r\n"
    (src / "a.txt").write_bytes(text.encode())
    dataset = load_dataset(src, "yolo")
    assert dataset.class_names == ["zebra", "ant", "moose"]
    (item,) = dataset.items
    write_yolo(item, src / "a.txt", class_names=dataset.class_names)
    assert (src / "a.txt").read_bytes() == text.encode()  # unedited: the same bytes
    item.labels[1] = dataclasses.replace(item.labels[1], x1=0.0)
    write_yolo(item, src / "a.txt", class_names=dataset.class_names)
    lines = (src / "a.txt").read_text().splitlines()
    assert lines[0] == "2 0.5 0.5 0.123456789 0.2"  # the other line, digits and all
    assert [lb.name for lb in read_yolo(src / "a.txt", width=100, height=80, class_names=dataset.class_names).labels] == ["moose", "zebra"]
    convert_dataset(src, src_fmt="yolo", dst=tmp_path / "out", dst_fmt="yolo")
    assert (tmp_path / "out" / "classes.txt").read_text() == "zebra\nant\nmoose\n"


def test_fresh_voc_document_has_labelimg_layout() -> None:
    item = ImageLabels("/data/photos/a.jpg", 10, 20, labels=[Label(1.4, 2.6, 5, 6, "cat")])
    assert voc_xml_bytes(item).decode().startswith("<annotation>\n\t<folder>photos</folder>\n\t<filename>a.jpg</filename>")


def test_merge_keeps_existing_labels_and_adds_only_new_detections() -> None:
    hand = Label(0, 0, 10, 10, "cat", difficult=True)
    same = Label(0, 0, 10, 11, "cat")  # IoU 0.91 with the hand box: already labelled
    other_class = Label(0, 0, 10, 10, "dog")
    apart = Label(50, 50, 60, 60, "cat")
    labels, added = merge_labels([hand], [same, other_class, apart])
    assert labels == [hand, other_class, apart] and added == 2
    assert MERGE_IOU == 0.5


def test_a_tampered_object_record_is_not_trusted() -> None:
    from model.labels.annotation import RawRecord

    bomb = '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]><object><name>&a;</name></object>'
    label = Label(1, 2, 3, 4, "cat", raw=RawRecord("voc", bomb))
    text = voc_xml_bytes(ImageLabels("/d/a.jpg", 10, 10, labels=[label])).decode()
    assert "<name>cat</name>" in text and "ENTITY" not in text and "aaaa" not in text
