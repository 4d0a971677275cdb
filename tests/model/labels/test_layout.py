"""Label folders apart from the images: candidates, choice, and the "why nothing matched" line."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from model.labels import label_path_for, load_dataset
from model.labels.layout import candidate_label_folders, explain_no_labels, find_label_folder


def _images(folder: Path, names: tuple[str, ...] = ("a.jpg", "b.jpg")) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        cv2.imwrite(str(folder / name), np.zeros((20, 30, 3), np.uint8))
    return [folder / name for name in names]


def _xml(path: Path, name: str = "cat") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><object><name>{name}</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>")


def test_label_path_for_a_separate_folder(tmp_path: Path) -> None:
    image = tmp_path / "images" / "a.b.jpg"
    assert label_path_for(image, "voc") == tmp_path / "images" / "a.b.xml"
    assert label_path_for(image, "voc", tmp_path / "annots") == tmp_path / "annots" / "a.b.xml"
    assert label_path_for(image, "yolo", tmp_path / "labels") == tmp_path / "labels" / "a.b.txt"
    assert label_path_for(image, "coco", tmp_path / "ann") == tmp_path / "ann" / "annotations.json"


def test_candidates_follow_the_common_layouts(tmp_path: Path) -> None:
    for folder in ("data/images/train", "data/labels/train", "data/annotations", "VOC/JPEGImages", "VOC/Annotations"):
        (tmp_path / folder).mkdir(parents=True)
    assert candidate_label_folders(tmp_path / "data/images/train")[:1] == [tmp_path / "data/labels/train"]
    assert candidate_label_folders(tmp_path / "VOC/JPEGImages") == [tmp_path / "VOC/Annotations"]


def test_labels_next_to_the_images_win_over_a_sibling_folder(tmp_path: Path) -> None:
    images = _images(tmp_path / "images")
    _xml(tmp_path / "annotations" / "a.xml")
    _xml(tmp_path / "annotations" / "b.xml")
    found = find_label_folder(images, "voc", images_dir=tmp_path / "images")
    assert (found.path, found.how, found.matches) == (tmp_path / "annotations", "found", 2)
    _xml(tmp_path / "images" / "a.xml")
    beside = find_label_folder(images, "voc", images_dir=tmp_path / "images")
    assert (beside.path, beside.matches) == (None, 1)


@pytest.mark.parametrize("fmt", ["voc", "yolo"])
def test_load_dataset_reads_a_found_or_given_label_folder(fmt: str, tmp_path: Path) -> None:
    _images(tmp_path / "kangaroo" / "images")
    labels = tmp_path / "kangaroo" / ("annots" if fmt == "voc" else "labels")
    if fmt == "voc":
        _xml(labels / "a.xml", "kangaroo")
    else:
        labels.mkdir()
        (labels / "classes.txt").write_text("kangaroo\n")
        (labels / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    for folder in (tmp_path / "kangaroo", tmp_path / "kangaroo" / "images"):  # a dataset root names its images/
        dataset = load_dataset(folder, fmt)
        assert dataset.images_dir == tmp_path / "kangaroo" / "images" and dataset.labels_dir == labels
        assert dataset.label_files == 1 and [lb.name for lb in dataset.items[0].labels] == ["kangaroo"]
        assert dataset.labels_note.startswith(f"labels from ../{labels.name} (found beside the images")
    given = load_dataset(tmp_path / "kangaroo" / "images", fmt, labels_dir=labels)
    assert given.labels_note == f"labels from ../{labels.name}" and given.label_files == 1
    alone = load_dataset(tmp_path / "kangaroo" / "images", fmt, find_labels=False)
    assert alone.label_files == 0 and alone.labels_dir is None


def test_explain_names_the_folder_or_format_to_pass(tmp_path: Path) -> None:
    images = _images(tmp_path / "images")
    _xml(tmp_path / "annotations" / "a.xml")
    note = explain_no_labels(images, "voc", images_dir=tmp_path / "images", labels=None)
    assert note == (
        f"2 images in {tmp_path / 'images'}, 0 .xml label files next to them; "
        "found 1 .xml named after the images in ../annotations: pass --labels ../annotations"
    )
    (tmp_path / "images" / "b.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    note = explain_no_labels(images, "voc", images_dir=tmp_path / "images", labels=None)
    assert "found yolo labels next to them: pass --format yolo" in note
    assert explain_no_labels([], "voc", images_dir=tmp_path, labels=None).startswith(f"no images in {tmp_path} ")
