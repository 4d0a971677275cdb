"""5. Data safety: read -> write -> read keeps everything the product did not edit.

Seeded generators write files the way LabelImg, CVAT and hand-editing leave them (comments,
declarations, odd indentation, ``verified``, pose/occluded/unknown tags, unicode and
escaped text; COCO ``info``/``licenses``/unknown keys, sparse category ids, ``iscrowd``,
``segmentation``; YOLO lines with any precision and spacing). For each file:

* written back unedited, the file is the same (VOC and YOLO byte for byte, COCO the same
  JSON value);
* written back after random edits (move, rename, flag, delete, add a box, toggle
  ``verified``), everything not edited is as it was: the other objects' elements, the
  document's other elements, attributes and comments, the COCO keys and ids.

Case counts: VOC 2,000 files (each checked unedited and edited), COCO 2,000 documents
(each unedited and edited), YOLO 2,000 files (each unedited and edited) plus 200
``classes.txt`` orders through ``convert``: 6,200 generated files, 12,200 round trips;
about 4 s per format on the 2-core build machine.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

from model.labels import ImageLabels, Label, convert_dataset, read_classes_txt
from model.labels.annotation import RawRecord
from model.labels.coco import coco_document, parse_coco_file
from model.labels.voc import parse_voc_bytes, voc_xml_bytes
from model.labels.yolo import parse_yolo_text, read_yolo, yolo_text

FILES_PER_FORMAT = 2000
WORDS = ("dog", "cat", "traffic light", "Ünïcode", "a&b<c>", "\"quoted\"", "raccoon", "kangaroo", "日本")
POSES = ("Unspecified", "Left", "Right", "Frontal", "Rear")


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# =========================================================================== VOC
def _voc_file(rng: random.Random) -> bytes:
    """A VOC document as LabelImg, CVAT or a person may have left it."""
    nl, ind = rng.choice((("\n", "\t"), ("\n", "  "), ("\r\n", "    "), ("", "")))

    def line(level: int, text: str) -> str:
        return f"{nl}{ind * level}{text}" if nl or ind else text

    width, height = rng.randint(1, 5000), rng.randint(1, 5000)
    parts: list[str] = []
    if rng.random() < 0.5:
        parts.append(rng.choice(('<?xml version="1.0" ?>', "<?xml version='1.0' encoding='utf-8'?>")) + "\n")
    if rng.random() < 0.2:
        parts.append("<!-- exported by hand -->\n")
    attrs = ""
    if rng.random() < 0.5:
        attrs += f' verified="{rng.choice(("yes", "no"))}"'
    if rng.random() < 0.2:
        attrs += ' tool="CVAT 2.1"'
    parts.append(f"<annotation{attrs}>")
    top: list[str] = []
    if rng.random() < 0.8:
        top.append(f"<folder>{_esc(rng.choice(WORDS))}</folder>")
    top.append(f"<filename>img {rng.randint(0, 999)}.jpg</filename>")
    if rng.random() < 0.7:
        top.append(f"<path>{_esc(rng.choice(('C:/Users/me/', '/home/x/', '../')))}img.jpg</path>")
    if rng.random() < 0.7:
        top.append(f"<source>{line(2, '<database>' + _esc(rng.choice(WORDS)) + '</database>')}{line(1, '</source>')}")
    if rng.random() < 0.9:
        size = "".join(line(2, f"<{k}>{v}</{k}>") for k, v in (("width", width), ("height", height), ("depth", rng.choice((1, 3)))))
        top.append(f"<size>{size}{line(1, '</size>')}")
    if rng.random() < 0.6:
        top.append("<segmented>0</segmented>")
    if rng.random() < 0.3:
        top.append(f'<weather kind="{_esc(rng.choice(WORDS)).replace(chr(34), "&quot;")}">{_esc(rng.choice(WORDS))}</weather>')
    if rng.random() < 0.15:
        top.append("<!-- reviewed -->")
    for _ in range(rng.randint(0, 6)):
        x1, x2 = sorted(rng.uniform(0, width) for _ in range(2))
        y1, y2 = sorted(rng.uniform(0, height) for _ in range(2))
        if rng.random() < 0.7:
            x1, y1, x2, y2 = (round(v) for v in (x1, y1, x2, y2))
        fields = [f"<name>{_esc(rng.choice(WORDS))}</name>"]
        if rng.random() < 0.8:
            fields.append(f"<pose>{rng.choice(POSES)}</pose>")
        for tag in ("truncated", "difficult", "occluded"):
            if rng.random() < 0.7:
                fields.append(f"<{tag}>{rng.choice(('0', '1'))}</{tag}>")
        if rng.random() < 0.2:
            fields.append(f"<attributes><attribute><name>color</name><value>{_esc(rng.choice(WORDS))}</value></attribute></attributes>")
        box = "".join(line(3, f"<{k}>{v}</{k}>") for k, v in zip(("xmin", "ymin", "xmax", "ymax"), (x1, y1, x2, y2), strict=True))
        fields.insert(rng.randint(1, len(fields)), f"<bndbox>{box}{line(2, '</bndbox>')}")
        top.append("<object>" + "".join(line(2, f) for f in fields) + line(1, "</object>"))
    rng.shuffle(top) if rng.random() < 0.1 else None
    parts.append("".join(line(1, t) for t in top) + (nl if nl else ""))
    parts.append("</annotation>" + rng.choice(("\n", "", "\n\n")))
    return "".join(parts).encode("utf-8")


def _tree(data: bytes) -> ET.Element:
    return ET.fromstring(data, parser=ET.XMLParser(target=ET.TreeBuilder(insert_comments=True)))


def _object_without_edits(obj: ET.Element) -> str:
    """An <object> with what the product edits (name, box, flags) taken out, whitespace-free."""
    obj = copy.deepcopy(obj)
    for tag in ("name", "bndbox", "difficult", "truncated"):
        for child in obj.findall(tag):
            obj.remove(child)
    for element in obj.iter():
        element.text = (element.text or "").strip()
        element.tail = ""
    return ET.tostring(obj, encoding="unicode")


def _document_without_edits(root: ET.Element) -> str:
    """The document without its objects, ``verified`` and ``<size>`` (the image's size, which
    a save fills in when the file lacks it), whitespace-free."""
    root = copy.deepcopy(root)
    root.attrib.pop("verified", None)
    for child in root.findall("object") + root.findall("size"):
        root.remove(child)
    for element in root.iter():
        element.text = (element.text or "").strip()
        element.tail = ""
    return ET.tostring(root, encoding="unicode")


def _edit(rng: random.Random, labels: list[Label], *, width: int, height: int) -> tuple[list[Label], set[int]]:
    """Random edits as the app makes them; returns the labels and which of them (by index
    in the result) were edited or new."""
    labels = list(labels)
    edited: set[int] = set()
    for _ in range(rng.randint(1, 3)):
        action = rng.choice(("move", "rename", "flag", "delete", "add"))
        if action == "add" or not labels:
            x1, y1 = rng.randint(0, max(width - 1, 0)), rng.randint(0, max(height - 1, 0))
            labels.append(Label(float(x1), float(y1), float(min(x1 + 5, width)), float(min(y1 + 5, height)), rng.choice(WORDS)))
            edited.add(len(labels) - 1)
            continue
        k = rng.randrange(len(labels))
        if action == "delete":
            del labels[k]
            edited = {i - (i > k) for i in edited if i != k}
            continue
        if action == "move":
            labels[k] = dataclasses.replace(labels[k], x1=float(round(labels[k].x1)), x2=float(round(labels[k].x2)) + 1.0)
        elif action == "rename":
            labels[k] = dataclasses.replace(labels[k], name=rng.choice(WORDS) + " x")
        else:
            labels[k] = dataclasses.replace(labels[k], difficult=not labels[k].difficult, truncated=rng.random() < 0.5)
        edited.add(k)
    return labels, edited


def test_voc_round_trip_keeps_everything_not_edited(cases) -> None:  # noqa: ANN001
    """2,000 generated VOC files: unedited -> the same bytes; edited -> only the edits change."""
    rng = random.Random(13)
    path = Path("/data/set/img.xml")
    for n in range(FILES_PER_FORMAT):
        data = _voc_file(rng)
        item = parse_voc_bytes(data, xml_path=path)
        assert voc_xml_bytes(item) == data, (n, data)
        width, height = item.width or 100, item.height or 100
        labels, edited = _edit(rng, item.labels, width=width, height=height)
        verified = not item.verified if rng.random() < 0.3 else item.verified
        changed = dataclasses.replace(item, labels=labels, verified=verified)
        again = parse_voc_bytes(voc_xml_bytes(changed), xml_path=path)
        assert again.verified == verified
        assert (again.width, again.height, again.depth) == (item.width, item.height, item.depth)
        assert [(lb.name, lb.difficult, lb.truncated) for lb in again.labels] == [(lb.name, lb.difficult, lb.truncated) for lb in labels]
        for k, (new, old) in enumerate(zip(again.labels, labels, strict=True)):
            tol = 0.5 if k in edited else 0.0  # an edited box is written in whole pixels, as LabelImg does
            assert all(abs(a - b) <= tol for a, b in zip(new.box, old.box, strict=True)), (n, k, new, old)
            if old.raw is not None:
                if k not in edited:
                    assert new.raw == old.raw, (n, k)  # the element as it was
                assert _object_without_edits(ET.fromstring(new.raw.data)) == _object_without_edits(ET.fromstring(old.raw.data))
        assert _document_without_edits(_tree(voc_xml_bytes(changed))) == _document_without_edits(_tree(data)), n
    cases.add("data", "VOC read -> write -> read, unedited and edited (generated files)", 2 * FILES_PER_FORMAT)


# =========================================================================== COCO
def _coco_document(rng: random.Random) -> dict:
    category_ids = rng.sample(range(1, 200), rng.randint(1, 5))
    names = rng.sample(WORDS, len(category_ids))
    categories = []
    for cid, name in zip(category_ids, names, strict=True):
        category = {"id": cid, "name": name}
        if rng.random() < 0.7:
            category["supercategory"] = rng.choice(("animal", "none", ""))
        if rng.random() < 0.2:
            category["keypoints"] = ["nose"]
        categories.append(category)
    images, annotations = [], []
    image_ids = rng.sample(range(1, 10_000), rng.randint(0, 6))
    for k, iid in enumerate(image_ids):
        width, height = rng.randint(1, 4000), rng.randint(1, 4000)
        image = {"id": iid, "file_name": f"img_{k}.jpg", "width": width, "height": height}
        for key, value in (("license", 1), ("date_captured", "2024-01-01"), ("flickr_url", "http://x"), ("verified", rng.random() < 0.5)):
            if rng.random() < 0.3:
                image[key] = value
        images.append(image)
    annotation_ids = rng.sample(range(1, 100_000), rng.randint(0, 12) if images else 0)
    for aid in annotation_ids:
        image = rng.choice(images)
        x, y = rng.uniform(0, image["width"]), rng.uniform(0, image["height"])
        w, h = rng.uniform(0, image["width"] - x), rng.uniform(0, image["height"] - y)
        if rng.random() < 0.5:
            x, y, w, h = (round(v, 2) for v in (x, y, w, h))
        annotation = {"id": aid, "image_id": image["id"], "category_id": rng.choice(category_ids), "bbox": [x, y, w, h]}
        if rng.random() < 0.8:
            annotation["area"] = round(w * h * rng.uniform(0.5, 1.0), 2)
        if rng.random() < 0.8:
            annotation["iscrowd"] = rng.choice((0, 0, 0, 1))
        if rng.random() < 0.6:
            annotation["segmentation"] = [[x, y, x + w, y, x + w / 2, y + h]]
        if rng.random() < 0.3:
            annotation["attributes"] = {"occluded": rng.random() < 0.5, "difficult": rng.random() < 0.3}
        if rng.random() < 0.2:
            annotation["score"] = 0.9
        annotations.append(annotation)
    rng.shuffle(annotations)
    document: dict = {"images": images, "annotations": annotations, "categories": categories}
    if rng.random() < 0.7:
        document["info"] = {"description": rng.choice(WORDS), "year": 2024, "contributor": "me"}
    if rng.random() < 0.7:
        document["licenses"] = [{"id": 1, "name": "CC-BY", "url": "http://x"}]
    if rng.random() < 0.2:
        document["type"] = "instances"
    return document


def _by_id(objects: list[dict]) -> dict[int, dict]:
    return {obj["id"]: obj for obj in objects}


def test_coco_round_trip_keeps_unknown_keys_and_ids(cases) -> None:  # noqa: ANN001
    """2,000 generated COCO documents: unedited -> the same JSON value (annotations grouped
    by image); edited -> only the edited annotations' box/class/flags keys change."""
    rng = random.Random(13)
    json_path = Path("/data/set/annotations.json")
    for n in range(FILES_PER_FORMAT):
        document = json.loads(json.dumps(_coco_document(rng)))
        parsed = parse_coco_file(document, json_path=json_path)
        written = coco_document(parsed.items, class_names=parsed.class_names, json_path=json_path, extras=parsed.extras)
        assert {k: v for k, v in written.items() if k != "annotations"} == {k: v for k, v in document.items() if k != "annotations"}, n
        assert _by_id(written["annotations"]) == _by_id(document["annotations"]), n
        # edits on one image: the others, and every key not edited, stay
        if not parsed.items:
            continue
        item = rng.choice(parsed.items)
        labels, edited = _edit(rng, item.labels, width=item.width, height=item.height)
        names = list(parsed.class_names) + sorted({lb.name for lb in labels} - set(parsed.class_names))
        item_index = parsed.items.index(item)
        items = [*parsed.items[:item_index], dataclasses.replace(item, labels=labels), *parsed.items[item_index + 1 :]]
        written = coco_document(items, class_names=names, json_path=json_path, extras=parsed.extras)
        assert all(written[key] == value for key, value in document.items() if key not in ("annotations", "categories")), n
        assert written["categories"][: len(document["categories"])] == document["categories"]  # ids kept; new ones after
        assert written["images"] == document["images"]
        again = parse_coco_file(json.loads(json.dumps(written)), json_path=json_path)
        assert again.items[item_index].labels == [dataclasses.replace(lb) for lb in _rounded(labels, edited)], n
        before = _by_id(document["annotations"])
        for k, label in enumerate(labels):
            if label.raw is None or k in edited:
                continue
            annotation = json.loads(label.raw.data)
            assert _by_id(written["annotations"])[annotation["id"]] == before[annotation["id"]], n
        untouched = [a for a in document["annotations"] if a["image_id"] != item_id(item)]
        assert all(_by_id(written["annotations"])[a["id"]] == a for a in untouched), n
    cases.add("data", "COCO read -> write -> read, unedited and edited (generated documents)", 2 * FILES_PER_FORMAT)


def item_id(item) -> int:  # noqa: ANN001
    return json.loads(item.source.data)["id"]


def _rounded(labels: list[Label], edited: set[int]) -> list[Label]:
    """What a COCO file holds of ``labels``: a moved or new box rounded to 0.001 px."""
    out = []
    for k, label in enumerate(labels):
        moved = label.raw is None
        if not moved and k in edited:
            x, y, w, h = json.loads(label.raw.data)["bbox"]
            moved = (float(x), float(y), x + w, y + h) != label.box
        if moved:
            x1, y1, x2, y2 = (round(v, 3) for v in label.box)
            w, h = round(x2 - x1, 3), round(y2 - y1, 3)
            label = dataclasses.replace(label, x1=x1, y1=y1, x2=x1 + w, y2=y1 + h)
        out.append(label)
    return out


# =========================================================================== YOLO
def _yolo_file(rng: random.Random, num_classes: int) -> str:
    lines = []
    for _ in range(rng.randint(0, 8)):
        cx, cy = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9)
        w, h = rng.uniform(0, 2 * min(cx, 1 - cx)), rng.uniform(0, 2 * min(cy, 1 - cy))
        digits = rng.choice((2, 4, 6, 8, 17))
        sep = rng.choice((" ", "  ", "\t"))
        lines.append(sep.join([str(rng.randrange(num_classes))] + [f"{v:.{digits}f}" for v in (cx, cy, w, h)]))
        if rng.random() < 0.1:
            lines.append("")
    end = rng.choice(("\n", "\r\n"))
    return end.join(lines) + (end if lines and rng.random() < 0.8 else "")


def test_yolo_round_trip_keeps_lines_and_classes_order(cases, tmp_path: Path) -> None:  # noqa: ANN001
    """2,000 generated YOLO files: unedited -> the same bytes; edited -> the other lines as
    they were. 200 shuffled classes.txt orders survive ``convert`` yolo -> yolo."""
    rng = random.Random(13)
    txt = Path("/data/set/img.txt")
    for n in range(FILES_PER_FORMAT):
        names = rng.sample(WORDS, rng.randint(1, len(WORDS)))
        width, height = rng.randint(1, 4000), rng.randint(1, 4000)
        text = _yolo_file(rng, len(names))
        labels = parse_yolo_text(text, txt_path=txt, width=width, height=height, class_names=names)
        item = ImageLabels(str(txt.with_suffix(".jpg")), width, height, labels=labels, source=RawRecord("yolo", text))
        assert yolo_text(item, class_names=names) == text, n
        edited_labels, edited = _edit(rng, labels, width=width, height=height)
        names2 = names + sorted({lb.name for lb in edited_labels} - set(names))
        out = yolo_text(dataclasses.replace(item, labels=edited_labels), class_names=names2)
        out_lines = out.splitlines()
        for k, label in enumerate(edited_labels):
            if k not in edited and label.raw is not None:
                assert out_lines[k] == label.raw.data, n  # an unedited line, digits and spacing as they were
        again = parse_yolo_text(out, txt_path=txt, width=width, height=height, class_names=names2)
        assert [lb.name for lb in again] == [lb.name for lb in edited_labels]
    cases.add("data", "YOLO read -> write -> read, unedited and edited (generated files)", 2 * FILES_PER_FORMAT)

    for n in range(200):
        src, dst = tmp_path / f"src{n}", tmp_path / f"dst{n}"
        src.mkdir()
        names = rng.sample(WORDS, rng.randint(2, len(WORDS)))
        (src / "classes.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
        cv2.imwrite(str(src / "a.png"), np.zeros((8, 10, 3), np.uint8))
        (src / "a.txt").write_text(f"{len(names) - 1} 0.5 0.5 0.2 0.2\n")
        convert_dataset(src, src_fmt="yolo", dst=dst, dst_fmt="yolo")
        assert read_classes_txt(dst / "classes.txt") == names, n
        assert read_yolo(dst / "a.txt", width=10, height=8, class_names=names).labels[0].name == names[-1]
        assert (dst / "a.txt").read_text() == (src / "a.txt").read_text()
    cases.add("data", "YOLO classes.txt order through convert", 200)
