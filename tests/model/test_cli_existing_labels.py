"""Label files that exist, and label folders apart from the images, on the command line:
``detect`` never replaces a label file unless asked (``--overwrite`` / ``--merge``),
``evaluate`` / ``convert`` read ``images/`` + ``annotations/`` layouts (``--labels`` or found),
say why when nothing matches, and ``evaluate`` counts labels of classes the model lacks."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from model.cli import main
from model.labels import read_coco, read_voc, read_yolo
from tests.model.onnx_fakes import red_square_image

# (file name, xyxy box of the square, colour channel: 0 red, 1 green); the fake model finds them
IMAGES = (("a.png", (60, 40, 140, 120), 0), ("b.jpg", (150, 60, 250, 160), 0), ("c.png", (20, 20, 100, 100), 1))

HAND_XML = b"""<annotation verified="yes">
\t<folder>photos</folder>
\t<filename>a.png</filename>
\t<path>C:\\Users\\me\\photos\\a.png</path>
\t<source>
\t\t<database>Unknown</database>
\t</source>
\t<size>
\t\t<width>300</width>
\t\t<height>200</height>
\t\t<depth>3</depth>
\t</size>
\t<segmented>0</segmented>
\t<object>
\t\t<name>cat</name>
\t\t<pose>Left</pose>
\t\t<truncated>0</truncated>
\t\t<difficult>1</difficult>
\t\t<occluded>1</occluded>
\t\t<bndbox>
\t\t\t<xmin>200</xmin>
\t\t\t<ymin>120</ymin>
\t\t\t<xmax>280</xmax>
\t\t\t<ymax>190</ymax>
\t\t</bndbox>
\t</object>
</annotation>
"""


def _write_images(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, box, color in IMAGES:
        rgb = red_square_image(width=300, height=200, box=box, color=color)
        assert cv2.imwrite(str(folder / name), rgb[..., ::-1])
    return folder


def _detect(folder: Path, model: Path, *extra: str) -> int:
    return main(["detect", str(folder), "--model", str(model), "--score", "0.5", *extra])


def test_detect_skips_images_whose_labels_exist_and_says_so(contract_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _write_images(tmp_path / "photos")
    (folder / "a.xml").write_bytes(HAND_XML)
    assert _detect(folder, contract_model, "--out", str(folder)) == 0
    captured = capsys.readouterr()
    assert (folder / "a.xml").read_bytes() == HAND_XML  # the hand-made labels, byte for byte
    assert f"skipped 1 image whose labels exist in {folder} (--overwrite replaces them, --merge adds the detections to them)" in captured.out
    assert f"skipped {folder / 'a.png'}" in captured.err
    assert "2 images" in captured.out  # b and c were detected
    assert {lb.name for lb in read_voc(folder / "b.xml").labels} == {"red"}


def test_detect_overwrite_replaces_and_merge_keeps_everything(contract_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _write_images(tmp_path / "photos")
    (folder / "a.xml").write_bytes(HAND_XML)
    assert _detect(folder, contract_model, "--labels", str(folder), "--merge") == 0  # --labels: --out's other name
    assert "added detections to the labels of 1 image (--merge)" in capsys.readouterr().out
    merged = read_voc(folder / "a.xml")
    assert merged.verified
    assert [(lb.name, lb.difficult) for lb in merged.labels[:2]] == [("cat", True), ("red", False)]
    assert {lb.name for lb in merged.labels[1:]} == {"red"}
    count = len(merged.labels)
    text = (folder / "a.xml").read_text()
    for kept in ("<pose>Left</pose>", "<occluded>1</occluded>", "<path>C:\\Users\\me\\photos\\a.png</path>", "<folder>photos</folder>"):
        assert kept in text
    # a second merge finds the detection already labelled: nothing is added twice
    assert _detect(folder, contract_model, "--out", str(folder), "--merge") == 0
    assert len(read_voc(folder / "a.xml").labels) == count
    capsys.readouterr()
    assert _detect(folder, contract_model, "--out", str(folder), "--overwrite") == 0
    assert "replaced the labels of 3 images (--overwrite)" in capsys.readouterr().out
    assert {lb.name for lb in read_voc(folder / "a.xml").labels} == {"red"}


def test_detect_yolo_keeps_the_order_of_an_existing_classes_txt(contract_model: Path, tmp_path: Path) -> None:
    folder = _write_images(tmp_path / "photos")
    out = tmp_path / "labels"
    out.mkdir()
    (out / "classes.txt").write_text("green\nblue\n")
    (out / "a.txt").write_text("1 0.9 0.9 0.1 0.1\n")  # a hand-made "blue" box
    assert _detect(folder, contract_model, "--out", str(out), "--format", "yolo", "--merge") == 0
    assert (out / "classes.txt").read_text() == "green\nblue\nred\n"  # ids of existing files still mean the same
    names = ["green", "blue", "red"]
    a = read_yolo(out / "a.txt", width=300, height=200, class_names=names)
    assert a.labels[0].name == "blue" and {lb.name for lb in a.labels[1:]} == {"red"}
    assert (out / "a.txt").read_text().splitlines()[0] == "1 0.9 0.9 0.1 0.1"  # the hand line as it was
    assert {lb.name for lb in read_yolo(out / "c.txt", width=300, height=200, class_names=names).labels} == {"green"}


def test_detect_coco_keeps_the_images_and_keys_a_file_has(contract_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _write_images(tmp_path / "photos")
    out = tmp_path / "coco"
    out.mkdir()
    document = {
        "info": {"description": "hand-made", "year": 2024},
        "licenses": [{"id": 3, "name": "CC-BY"}],
        "images": [{"id": 7, "file_name": str(folder / "a.png"), "width": 300, "height": 200, "license": 3}],
        "annotations": [
            {"id": 40, "image_id": 7, "category_id": 9, "bbox": [200, 120, 80, 70], "area": 1234.5, "iscrowd": 0,
             "segmentation": [[200, 120, 280, 120, 240, 190]], "reviewer": "ann"}
        ],
        "categories": [{"id": 9, "name": "cat", "supercategory": "animal"}],
    }
    (out / "annotations.json").write_text(json.dumps(document))
    assert _detect(folder, contract_model, "--out", str(out), "--format", "coco") == 0
    assert "skipped 1 image" in capsys.readouterr().out
    written = json.loads((out / "annotations.json").read_text())
    assert written["info"] == document["info"] and written["licenses"] == document["licenses"]
    assert written["images"][0] == document["images"][0]
    assert written["annotations"][0] == document["annotations"][0]
    assert written["categories"][0] == document["categories"][0]
    assert [c["name"] for c in written["categories"]] == ["cat", "red", "green"]
    items, _names = read_coco(out / "annotations.json")
    assert [Path(item.image_path).name for item in items] == ["a.png", "b.jpg", "c.png"]
    assert [lb.name for lb in items[0].labels] == ["cat"]


def test_detect_merge_with_json_is_refused(contract_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _write_images(tmp_path / "photos")
    assert _detect(folder, contract_model, "--out", str(tmp_path / "o"), "--format", "json", "--merge") == 2
    assert "json files hold detections" in capsys.readouterr().err


# --------------------------------------------------------------------------- label folders
def _separate_layout(root: Path, *, labels_name: str = "annotations") -> tuple[Path, Path]:
    images = _write_images(root / "images")
    labels = root / labels_name
    labels.mkdir()
    for name, box, color in IMAGES:
        x1, y1, x2, y2 = box
        cls = ("red", "green")[color] if name != "c.png" else "dog"  # the model knows no dog
        (labels / (Path(name).stem + ".xml")).write_text(
            f"<annotation><filename>{name}</filename><size><width>300</width><height>200</height><depth>3</depth></size>"
            f"<object><name>{cls}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
            "</annotation>"
        )
    return images, labels


@pytest.mark.parametrize("labels_name", ["annotations", "annots", "Annotations"])
def test_evaluate_finds_a_sibling_annotations_folder_and_counts_unknown_classes(
    labels_name: str, contract_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images, _labels = _separate_layout(tmp_path / "set", labels_name=labels_name)
    assert main(["evaluate", "--model", str(contract_model), "--data", str(images)]) == 0
    captured = capsys.readouterr()
    assert f"labels from ../{labels_name} (found beside the images; pass --labels to choose another folder): 3 label files" in captured.err
    assert "images 3  labels 2" in captured.out
    assert "1 label of classes the model does not know are left out: dog (1)" in captured.out


def test_evaluate_and_convert_take_labels_and_a_dataset_root(contract_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "set"
    images, labels = _separate_layout(root, labels_name="my-boxes")  # not a name that is looked for
    assert main(["evaluate", "--model", str(contract_model), "--data", str(images)]) == 2
    err = capsys.readouterr().err
    assert f"no labelled images (voc): 3 images in {images}, 0 .xml label files next to them" in err
    assert main(["evaluate", "--model", str(contract_model), "--data", str(root), "--labels", str(labels)]) == 0
    assert "images 3  labels 2" in capsys.readouterr().out
    out = tmp_path / "yolo"
    assert main(["convert", str(root), "--from", "voc", "--to", "yolo", "--out", str(out), "--labels", str(labels)]) == 0
    assert "converted 3 images, 3 labels, 2 classes" in capsys.readouterr().out
    assert (out / "classes.txt").read_text() == "dog\nred\n"


def test_convert_says_why_nothing_matched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, labels = _separate_layout(tmp_path / "set", labels_name="boxes")
    for xml in labels.glob("*.xml"):
        xml.rename(labels / f"other-{xml.name}")
    (tmp_path / "set" / "annotations").mkdir()
    for xml in labels.glob("*.xml"):
        xml.rename(tmp_path / "set" / "annotations" / xml.name)
    assert main(["convert", str(images), "--from", "voc", "--to", "coco", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"nothing to convert: 3 images in {images}, 0 .xml label files next to them; " in err
    assert "found 3 .xml in ../annotations, none named after an image (e.g. other-a.xml)" in err


def test_convert_reads_yolo_images_labels_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    images = _write_images(root / "images" / "train")
    labels = root / "labels" / "train"
    labels.mkdir(parents=True)
    (root / "labels" / "classes.txt").write_text("red\ngreen\n")
    (labels / "a.txt").write_text("0 0.333333 0.4 0.266667 0.4\n")
    (labels / "c.txt").write_text("1 0.2 0.3 0.266667 0.4\n")
    out = tmp_path / "voc"
    assert main(["convert", str(images), "--from", "yolo", "--to", "voc", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "labels from ../../labels/train (found beside the images" in captured.err
    assert "converted 3 images, 2 labels, 2 classes" in captured.out
    assert [lb.name for lb in read_voc(out / "c.xml").labels] == ["green"]
