"""5. Data safety: batch detection never replaces a label file nobody asked it to replace.

A folder of 24 images whose label files already exist (generated LabelImg/CVAT-style VOC
files with ``verified``, pose, occluded and unknown tags; YOLO files with their own
``classes.txt`` order; a COCO file with its own keys and ids; detection JSON files) goes
through ``detect_images`` in each mode:

* ``skip`` (the default): every existing file is byte for byte what it was, and every
  skipped image is reported;
* ``merge``: every existing label comes back first, with what its file held, and only the
  detections are new;
* ``overwrite``: only then are the files replaced.

Case counts: 24 images x 4 formats x 3 modes = 288 existing label files checked.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import cv2
import pytest

from model.detect import detect_images
from model.labels import read_coco, read_voc, read_yolo
from model.labels.voc import parse_voc_bytes
from model.postprocess import PostProcessor
from tests.model.onnx_fakes import red_square_image, write_contract_model
from tests.reliability.test_reliability_round_trip import _document_without_edits, _tree, _voc_file

IMAGES = 24
NMS = PostProcessor(score_thresh=0.5, iou_thresh=0.5, max_per_class=20, max_total=20)


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from model.runtime import Detector

    return Detector.load(write_contract_model(tmp_path_factory.mktemp("model") / "tiny.onnx"), providers=["cpu"])


def _images(folder: Path, rng: random.Random) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(IMAGES):
        x, y = rng.randint(0, 150), rng.randint(0, 80)
        rgb = red_square_image(width=300, height=200, box=(x, y, x + 80, y + 80), color=k % 2)
        path = folder / f"img_{k:02d}.png"
        cv2.imwrite(str(path), rgb[..., ::-1])
        paths.append(path)
    return paths


def _existing(out: Path, fmt: str, images: list[Path], rng: random.Random) -> dict[Path, bytes]:
    """Label files for every image, as another tool left them; returns their bytes."""
    out.mkdir(parents=True, exist_ok=True)
    files: dict[Path, bytes] = {}
    if fmt == "voc":
        for image in images:
            data = _voc_file(rng)
            while not parse_voc_bytes(data, xml_path=out / "x.xml").labels:
                data = _voc_file(rng)
            files[out / f"{image.stem}.xml"] = data
    elif fmt == "yolo":
        files[out / "classes.txt"] = b"green\nzebra\n"  # not the model's order, and a class it lacks
        for image in images:
            files[out / f"{image.stem}.txt"] = f"1 {rng.uniform(0.3, 0.7):.7f} 0.5 0.1 0.1\n".encode()
    elif fmt == "coco":
        document = {
            "info": {"description": "hand-made"},
            "licenses": [{"id": 1, "name": "CC0"}],
            "images": [{"id": 100 + k, "file_name": str(image), "width": 300, "height": 200, "site": "A"} for k, image in enumerate(images)],
            "annotations": [
                {"id": 500 + k, "image_id": 100 + k, "category_id": 7, "bbox": [1, 1, 5, 5], "area": 25, "iscrowd": 0, "note": "hand"}
                for k in range(len(images))
            ],
            "categories": [{"id": 7, "name": "zebra", "supercategory": "animal"}],
        }
        files[out / "annotations.json"] = json.dumps(document).encode()
    else:
        for image in images:
            files[out / f"{image.stem}.json"] = json.dumps({"image": str(image), "detections": [], "mine": True}).encode()
    for path, data in files.items():
        path.write_bytes(data)
    return files


@pytest.mark.parametrize("fmt", ["voc", "yolo", "coco", "json"])
def test_detect_keeps_existing_labels_unless_asked(fmt: str, detector, tmp_path: Path, cases) -> None:  # noqa: ANN001
    rng = random.Random(fmt)
    images = _images(tmp_path / "images", rng)
    out = tmp_path / "labels"

    files = _existing(out, fmt, images, rng)
    summary = detect_images(images, detector, out_dir=out, fmt=fmt, nms=NMS)
    assert {p: p.read_bytes() for p in files} == files  # byte for byte
    assert summary.skipped == images and summary.images == 0
    assert f"skipped {IMAGES} images whose labels exist in {out}" in summary.existing_note
    cases.add("data", "detect: existing label files skipped, byte for byte (default)", IMAGES)

    if fmt != "json":
        summary = detect_images(images, detector, out_dir=out, fmt=fmt, nms=NMS, existing="merge")
        assert summary.images == IMAGES and not summary.errors
        for image in images:
            if fmt == "voc":
                before = parse_voc_bytes(files[out / f"{image.stem}.xml"], xml_path=out / "x.xml")
                after = read_voc(out / f"{image.stem}.xml")
                assert after.verified == before.verified
                assert [lb.raw for lb in after.labels[: len(before.labels)]] == [lb.raw for lb in before.labels]
                assert _document_without_edits(_tree((out / f"{image.stem}.xml").read_bytes())) == _document_without_edits(
                    _tree(files[out / f"{image.stem}.xml"])
                )
                added = after.labels[len(before.labels) :]
            elif fmt == "yolo":
                names = (out / "classes.txt").read_text().split()
                assert names[:2] == ["green", "zebra"]
                after = read_yolo(out / f"{image.stem}.txt", width=300, height=200, class_names=names)
                assert (out / f"{image.stem}.txt").read_text().splitlines()[0] == files[out / f"{image.stem}.txt"].decode().strip()
                added = after.labels[1:]
            else:
                items, _names = read_coco(out / "annotations.json")
                after = next(item for item in items if Path(item.image_path).name == image.name)
                assert json.loads(after.labels[0].raw.data)["note"] == "hand"
                added = after.labels[1:]
            assert added and {lb.name for lb in added} <= {"red", "green"}
        if fmt == "coco":
            written = json.loads((out / "annotations.json").read_text())
            assert written["info"] == {"description": "hand-made"} and written["licenses"] == [{"id": 1, "name": "CC0"}]
            assert [image["id"] for image in written["images"]] == list(range(100, 100 + IMAGES))
            assert all(image["site"] == "A" for image in written["images"])
        cases.add("data", "detect --merge: existing labels and what their files held kept", IMAGES)

    summary = detect_images(images, detector, out_dir=out, fmt=fmt, nms=NMS, existing="overwrite")
    assert summary.images == IMAGES and f"replaced the labels of {IMAGES} images" in summary.existing_note
    cases.add("data", "detect --overwrite: replaced only when asked", IMAGES)
