"""COCO detection JSON: one file for a whole dataset (``images``, ``annotations``, ``categories``).

Boxes in the file are ``bbox = [x, y, w, h]`` (top-left corner and size, image pixels);
inside the product they are xyxy. Category ids start at 1 in class-list order. Files written
here load in ``pycocotools.coco.COCO`` and evaluate with ``COCOeval``.

New annotations get ``iscrowd`` 0; VOC's difficult/truncated flags travel in an
``attributes`` object (as CVAT does), which pycocotools ignores. On reading, ``iscrowd: 1``
marks the label difficult.

A file that was read is carried forward when it is written again: every key the product
does not edit survives (``info``, ``licenses``, unknown top-level keys; per image, per
annotation and per category: ids, ``iscrowd``, ``area``, ``segmentation``, ``attributes``
and unknown keys). Each :class:`~model.labels.annotation.ImageLabels` and ``Label`` keeps
its JSON object (``source`` / ``raw``), the document the rest (:class:`CocoFile`). A verified
image (LabelImg's review mark) has ``"verified": true`` in its image object.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.errors import ImageReadError, LabelFormatError, LabelWriteError
from model.labels.annotation import ImageLabels, Label, RawRecord
from model.labels.atomic import atomic_write_text
from model.labels.base import Dataset, ImageIndex, PathLike, Progress, merged_names, names_in, unlabelled


def _require(obj: Any, key: str, *, path: Path, where: str) -> Any:
    if not isinstance(obj, dict):
        raise LabelFormatError(path, f"{where} is not an object")
    if key not in obj:
        raise LabelFormatError(path, f"{where} has no {key!r}")
    return obj[key]


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else f"a {len(str(abs(value)))}-digit integer"
    return text if len(text) <= 60 else text[:57] + "..."


def _finite(value: Any, *, path: Path, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LabelFormatError(path, f"{where} is not a number ({_short(value)})")
    try:
        number = float(value)  # an int beyond the float range overflows here
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise LabelFormatError(path, f"{where} is not a finite number ({_short(value)})")
    return number


def _integer_id(value: Any, *, path: Path, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, float) or not math.isfinite(value) or not value.is_integer():
        raise LabelFormatError(path, f"{where} is not an integer id ({_short(value)})")
    return int(value)


def _resolve_image(file_name: str, *, json_dir: Path) -> str:
    candidate = Path(file_name)
    if candidate.is_absolute():
        return str(candidate)
    return str(json_dir / candidate)


@dataclass
class CocoFile:
    """A COCO file as read: ``items`` (file image order, boxes xyxy in image pixels),
    ``class_names`` (category-id order) and ``extras``: the document without its images and
    annotations (categories with their ids, ``info``, ``licenses``, unknown keys) as JSON,
    for :func:`write_coco` to carry forward."""

    items: list[ImageLabels]
    class_names: list[str]
    extras: RawRecord | None = None


def _record(obj: dict[str, Any]) -> RawRecord:
    return RawRecord("coco", json.dumps(obj, allow_nan=False, ensure_ascii=False))


def parse_coco_document(document: Any, *, json_path: str | os.PathLike[str]) -> tuple[list[ImageLabels], list[str]]:
    """Items and class names from a decoded COCO JSON document (see :func:`read_coco`)."""
    parsed = parse_coco_file(document, json_path=json_path)
    return parsed.items, parsed.class_names


def parse_coco_file(document: Any, *, json_path: str | os.PathLike[str]) -> CocoFile:
    """:class:`CocoFile` from a decoded COCO JSON document (see :func:`read_coco`)."""
    path = Path(json_path)
    if not isinstance(document, dict):
        raise LabelFormatError(path, "top level is not a JSON object")
    for key in ("images", "annotations", "categories"):
        if key not in document:
            raise LabelFormatError(path, f"missing key {key!r} (COCO needs images, annotations, categories)")
        if not isinstance(document[key], list):
            raise LabelFormatError(path, f"{key!r} is not a list")

    categories: dict[int, str] = {}
    for i, category in enumerate(document["categories"]):
        where = f"categories[{i}]"
        cat_id = _integer_id(_require(category, "id", path=path, where=where), path=path, where=f"{where}.id")
        name = _require(category, "name", path=path, where=where)
        if not isinstance(name, str) or not name.strip():
            raise LabelFormatError(path, f"{where}.name is not a non-empty string")
        if cat_id in categories:
            raise LabelFormatError(path, f"{where}: duplicate category id {cat_id}")
        if name in categories.values():
            raise LabelFormatError(path, f"{where}: duplicate category name {name!r}")
        categories[cat_id] = name
    class_names = [categories[k] for k in sorted(categories)]

    json_dir = path.parent
    items_by_id: dict[int, ImageLabels] = {}
    for i, image in enumerate(document["images"]):
        where = f"images[{i}]"
        image_id = _integer_id(_require(image, "id", path=path, where=where), path=path, where=f"{where}.id")
        file_name = _require(image, "file_name", path=path, where=where)
        if not isinstance(file_name, str) or not file_name:
            raise LabelFormatError(path, f"{where}.file_name is not a non-empty string")
        width = _finite(_require(image, "width", path=path, where=where), path=path, where=f"{where}.width")
        height = _finite(_require(image, "height", path=path, where=where), path=path, where=f"{where}.height")
        if width <= 0 or height <= 0:
            raise LabelFormatError(path, f"{where} has a non-positive size {width}x{height}")
        if image_id in items_by_id:
            raise LabelFormatError(path, f"{where}: duplicate image id {image_id}")
        items_by_id[image_id] = ImageLabels(
            image_path=_resolve_image(file_name, json_dir=json_dir),
            width=int(width),
            height=int(height),
            labels=[],
            verified=image.get("verified") is True,
            source=_record(image),
        )

    for i, annotation in enumerate(document["annotations"]):
        where = f"annotations[{i}]"
        image_id = _integer_id(
            _require(annotation, "image_id", path=path, where=where), path=path, where=f"{where}.image_id"
        )
        cat_id = _integer_id(
            _require(annotation, "category_id", path=path, where=where), path=path, where=f"{where}.category_id"
        )
        bbox = _require(annotation, "bbox", path=path, where=where)
        if image_id not in items_by_id:
            raise LabelFormatError(path, f"{where} refers to unknown image id {image_id}")
        if cat_id not in categories:
            raise LabelFormatError(path, f"{where} refers to unknown category id {cat_id}")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise LabelFormatError(path, f"{where}.bbox must be [x, y, w, h]")
        x, y, w, h = (_finite(v, path=path, where=f"{where}.bbox[{k}]") for k, v in enumerate(bbox))
        if w < 0 or h < 0:
            raise LabelFormatError(path, f"{where}.bbox has a negative size ({w}, {h})")
        if not (math.isfinite(x + w) and math.isfinite(y + h)):
            raise LabelFormatError(path, f"{where}.bbox reaches beyond the largest number ({x}, {y}, {w}, {h})")
        attributes = annotation.get("attributes") if isinstance(annotation.get("attributes"), dict) else {}
        difficult = bool(annotation.get("iscrowd", 0)) or bool(attributes.get("difficult", False))
        truncated = bool(attributes.get("truncated", False))
        items_by_id[image_id].labels.append(
            Label(x, y, x + w, y + h, categories[cat_id], difficult=difficult, truncated=truncated, raw=_record(annotation))
        )
    extras = {key: value for key, value in document.items() if key not in ("images", "annotations")}
    return CocoFile(list(items_by_id.values()), class_names, _record(extras))


def read_coco(json_path: str | os.PathLike[str]) -> tuple[list[ImageLabels], list[str]]:
    """Read a COCO detection JSON file: ``(items, class_names)`` of :func:`read_coco_file`."""
    parsed = read_coco_file(json_path)
    return parsed.items, parsed.class_names


def read_coco_file(json_path: str | os.PathLike[str]) -> CocoFile:
    """Read a COCO detection JSON file.

    Returns a :class:`CocoFile`: items in the file's image order, boxes xyxy floats in
    image pixels; image paths are ``file_name`` resolved against the JSON file's folder;
    class names in category-id order. Raises LabelFormatError(json_path, problem) for
    unreadable JSON, missing keys, unknown image/category ids or non-finite numbers.
    """
    path = Path(json_path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise LabelFormatError(path, "file not found") from None
    except UnicodeDecodeError:
        raise LabelFormatError(path, "not UTF-8 text") from None
    except OSError as exc:
        raise LabelFormatError(path, f"cannot read file ({exc.strerror or exc})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LabelFormatError(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise LabelFormatError(path, "JSON is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise LabelFormatError(path, f"not valid JSON ({str(exc).split(';')[0]})") from None
    return parse_coco_file(document, json_path=path)


def _file_name(image_path: str, *, json_dir: Path) -> str:
    """``image_path`` relative to the JSON's folder, POSIX separators (read back against it)."""
    image = Path(image_path)
    try:
        return Path(os.path.relpath(image.absolute(), json_dir.absolute())).as_posix()
    except ValueError:  # pragma: no cover - different drives on Windows
        return image.absolute().as_posix()


def _loaded(record: RawRecord | None) -> dict[str, Any] | None:
    """The JSON object a COCO record holds (None for no record or another format's)."""
    if record is None or record.fmt != "coco" or not isinstance(record.data, str):
        return None
    value = json.loads(record.data)
    return value if isinstance(value, dict) else None


def _same_box(bbox: Any, box: tuple[float, float, float, float]) -> bool:
    """Whether the COCO ``bbox`` [x, y, w, h] as read is the xyxy ``box`` a reader made of it."""
    if not isinstance(bbox, list) or len(bbox) != 4:
        return False
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return False
    return (x, y, x + w, y + h) == tuple(box)


def _unique_ids(objects: Sequence[dict[str, Any] | None]) -> list[int]:
    """An id for each object: its own when it has one no earlier object took, else the next
    free one after the largest."""
    taken: set[int] = set()
    own: list[int | None] = []
    for obj in objects:
        value = obj.get("id") if obj is not None else None
        if isinstance(value, int) and not isinstance(value, bool) and value not in taken:
            taken.add(value)
            own.append(value)
        else:
            own.append(None)
    next_id = max(taken, default=0) + 1
    ids = []
    for value in own:
        if value is None:
            value = next_id
            next_id += 1
        ids.append(value)
    return ids


def _annotation(label: Label, *, template: dict[str, Any] | None, image_id: int, category_id: int) -> dict[str, Any]:
    """The COCO annotation of ``label``: ``template`` (the object it was read from) with the
    box, class and flags set where they changed, or a new one."""
    x1, y1, x2, y2 = (round(float(v), 3) for v in label.box)
    w, h = round(x2 - x1, 3), round(y2 - y1, 3)
    if template is None:
        return {
            "image_id": image_id,
            "category_id": category_id,
            "bbox": [x1, y1, w, h],
            "area": round(w * h, 3),
            "iscrowd": 0,
            "segmentation": [[x1, y1, x2, y1, x2, y2, x1, y2]],
            "attributes": {"difficult": bool(label.difficult), "truncated": bool(label.truncated)},
        }
    annotation = dict(template)
    annotation["image_id"] = image_id
    annotation["category_id"] = category_id
    if not _same_box(template.get("bbox"), label.box):
        # a moved box: its old area and outline no longer describe it
        annotation["bbox"] = [x1, y1, w, h]
        annotation["area"] = round(w * h, 3)
        annotation["segmentation"] = [[x1, y1, x2, y1, x2, y2, x1, y2]]
    attributes = template.get("attributes") if isinstance(template.get("attributes"), dict) else {}
    was_difficult = bool(template.get("iscrowd", 0)) or bool(attributes.get("difficult", False))
    was_truncated = bool(attributes.get("truncated", False))
    if was_difficult != label.difficult or was_truncated != label.truncated:
        attributes = {**attributes, "difficult": bool(label.difficult), "truncated": bool(label.truncated)}
        annotation["attributes"] = attributes
        if not label.difficult and template.get("iscrowd"):
            annotation["iscrowd"] = 0
    return annotation


def coco_document(
    items: Sequence[ImageLabels],
    *,
    class_names: Sequence[str],
    json_path: str | os.PathLike[str],
    extras: RawRecord | None = None,
) -> dict[str, Any]:
    """The COCO document for ``items`` (xyxy boxes in image pixels).

    Without ``extras`` (a new file): image ids and annotation ids start at 1 in item order,
    category ids at 1 in ``class_names`` order. With the ``extras`` of a file that was read
    (:class:`CocoFile`), its top-level keys and categories (ids, supercategories, unknown
    keys; also those no label uses) are kept, new classes get the next free ids, and images
    and annotations read from it keep their ids and every key not edited."""
    path = Path(json_path)
    if len(set(class_names)) != len(class_names):
        raise LabelWriteError(path, "class names are not unique")
    template = _loaded(extras) or {}
    categories: list[dict[str, Any]] = []
    category_ids: dict[str, int] = {}
    old_categories = template.get("categories") if isinstance(template.get("categories"), list) else []
    for category in old_categories:
        if isinstance(category, dict) and isinstance(category.get("name"), str) and isinstance(category.get("id"), int):
            if category["name"] not in category_ids and category["id"] not in category_ids.values():
                category_ids[category["name"]] = category["id"]
                categories.append(category)
    next_category = max(category_ids.values(), default=0) + 1
    for name in class_names:
        if name not in category_ids:
            category_ids[name] = next_category
            categories.append({"id": next_category, "name": name, "supercategory": "none"})
            next_category += 1
    image_templates = [_loaded(item.source) for item in items]
    image_ids = _unique_ids(image_templates) if template else list(range(1, len(items) + 1))
    label_templates = [_loaded(label.raw) if template else None for item in items for label in item.labels]
    annotation_ids = _unique_ids(label_templates) if template else list(range(1, len(label_templates) + 1))
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for item, image_id, image_template in zip(items, image_ids, image_templates, strict=True):
        if item.width <= 0 or item.height <= 0:
            raise LabelWriteError(path, f"image size of {item.image_path} is unknown ({item.width}x{item.height})")
        file_name = _file_name(item.image_path, json_dir=path.parent)
        if image_template is not None and template:
            image = dict(image_template)
            old_name = image.get("file_name")
            if not isinstance(old_name, str) or os.path.abspath(_resolve_image(old_name, json_dir=path.parent)) != os.path.abspath(
                item.image_path
            ):
                image["file_name"] = file_name
            image["id"] = image_id
            for key, value in (("width", item.width), ("height", item.height)):
                if image.get(key) != value:
                    image[key] = int(value)
            if item.verified != (image.get("verified") is True):
                image["verified"] = bool(item.verified)
        else:
            image = {"id": image_id, "file_name": file_name, "width": int(item.width), "height": int(item.height)}
            if item.verified:
                image["verified"] = True
        images.append(image)
        for label in item.labels:
            if label.name not in category_ids:
                raise LabelWriteError(path, f"class {label.name!r} of {item.image_path} is not in the class list")
            annotation = _annotation(
                label,
                template=label_templates[len(annotations)],
                image_id=image_id,
                category_id=category_ids[label.name],
            )
            annotation_id = annotation_ids[len(annotations)]
            annotations.append({**annotation, "id": annotation_id} if "id" in annotation else {"id": annotation_id, **annotation})
    document: dict[str, Any] = (
        dict(template) if template else {"info": {"description": "RetinaNet Studio labels", "version": "1.0"}, "licenses": []}
    )
    document["images"] = images
    document["annotations"] = annotations
    document["categories"] = categories
    return document


def write_coco(
    items: Sequence[ImageLabels],
    json_path: str | os.PathLike[str],
    *,
    class_names: Sequence[str],
    extras: RawRecord | None = None,
) -> None:
    """Write ``items`` as one COCO JSON file, atomically; ``extras`` (from :class:`CocoFile`)
    carries forward what a file that was read held besides its boxes (:func:`coco_document`).
    Raises LabelWriteError."""
    document = coco_document(items, class_names=class_names, json_path=json_path, extras=extras)
    atomic_write_text(json_path, json.dumps(document, indent=1, allow_nan=False) + "\n")


# --- the format -------------------------------------------------------------------------------

#: The folder file COCO labels are saved in (a folder with one other ``*.json`` is read too).
COCO_FILE_NAME = "annotations.json"


_COCO_CACHE: dict[tuple[str, int, int], tuple[CocoFile, ImageIndex]] = {}


def _cached(path: Path) -> tuple[CocoFile, ImageIndex]:
    """The parsed file and its image index, remembered while the file is unchanged (one
    folder file serves every image: moving to the next image must not re-parse it, nor
    re-index 10,000 entries)."""
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _COCO_CACHE:
        _COCO_CACHE.clear()
        parsed = read_coco_file(path)
        _COCO_CACHE[key] = (parsed, ImageIndex(parsed.items))
    return _COCO_CACHE[key]


def coco_json_in(folder: Path) -> Path | None:
    """The COCO file of ``folder``: ``annotations.json``, else its only ``*.json`` file."""
    names = names_in(folder)
    if not names:
        return None
    if COCO_FILE_NAME in names:
        return folder / COCO_FILE_NAME
    jsons = sorted(n for n in names if n.lower().endswith(".json"))
    return folder / jsons[0] if len(jsons) == 1 else None


class CocoFormat:
    """COCO for the registry: one ``annotations.json`` per folder (file names relative to
    it). A save of one image rewrites that file with the others' entries untouched."""

    name = "coco"
    title = "COCO"
    files = "annotations.json in each folder"
    suffix = ".json"
    per_image_files = False
    keeps_verified = True
    stores_class_names = True

    def label_path_for(self, image_path: PathLike, labels_dir: PathLike | None = None) -> Path:
        folder = Path(labels_dir) if labels_dir is not None else Path(image_path).parent
        return folder / COCO_FILE_NAME

    def count_label_files(self, images: Sequence[Path], folder: Path | None) -> int:
        folders = {folder} if folder is not None else {image.parent for image in images}
        return sum(1 for f in folders if coco_json_in(f) is not None)

    def can_read(self, image_path: PathLike, labels_dir: PathLike | None = None) -> bool:
        return self.label_path_for(image_path, labels_dir).is_file()

    def class_list(self, images_dir: PathLike, labels_dir: PathLike | None = None) -> list[str]:
        return []

    def read_image(
        self, image_path: PathLike, *, width: int, height: int, labels_dir: PathLike | None = None, class_names: Sequence[str] = ()
    ) -> ImageLabels | None:
        path = self.label_path_for(image_path, labels_dir)
        if not path.is_file():
            return None
        return _cached(path)[1].find(image_path)

    def write_image(self, item: ImageLabels, *, labels_dir: PathLike | None = None, class_names: Sequence[str] = ()) -> Path:
        path = self.label_path_for(item.image_path, labels_dir)
        items: list[ImageLabels] = []
        names: list[str] = []
        extras = None
        position = None
        if path.is_file():
            parsed, index = _cached(path)
            items, names, extras = list(parsed.items), list(parsed.class_names), parsed.extras
            position = index.position(item.image_path)
        if position is None:
            items.append(item)
        else:
            item.source = items[position].source  # the image's id and keys stay
            items[position] = item
        names = merged_names(names, (label.name for it in items for label in it.labels))
        write_coco(items, path, class_names=names, extras=extras)
        _COCO_CACHE.clear()
        return path

    def saved_source(self, path: Path) -> RawRecord | None:
        return None  # re-read from the file on the next save

    def read_folder(self, folder: Path) -> Dataset:
        path = self.label_path_for(folder / "x", folder)
        if not path.is_file():
            return Dataset()
        parsed = read_coco_file(path)
        return Dataset(items=parsed.items, class_names=parsed.class_names, extras=parsed.extras, label_files=1)

    def write_class_list(self, folder: Path, class_names: Sequence[str]) -> None:
        """The categories are written with the file."""

    def load(
        self,
        folder: Path,
        images: Sequence[Path],
        *,
        labels_dir: Path | None = None,
        progress: Progress | None = None,
        source: Path | None = None,
    ) -> Dataset:
        dataset = Dataset()
        json_path = source if source is not None else coco_json_in(labels_dir or folder)
        index = ImageIndex([])
        if json_path is not None:
            try:
                parsed = read_coco_file(json_path)
            except LabelFormatError as exc:
                dataset.errors.append(exc)
                return dataset
            index = ImageIndex(parsed.items)
            dataset.class_names, dataset.extras = parsed.class_names, parsed.extras
        for done, image in enumerate(images, start=1):
            item = index.find(image)
            if item is not None:
                item.image_path = str(image)
                dataset.items.append(item)
                dataset.label_files += 1
            else:
                try:
                    dataset.items.append(unlabelled(image))
                except ImageReadError as exc:
                    dataset.errors.append(exc)
            if progress is not None:
                progress(done, len(images))
        return dataset

    def save(
        self,
        items: Sequence[ImageLabels],
        folder: Path,
        *,
        class_names: Sequence[str],
        progress: Progress | None = None,
        extras: RawRecord | None = None,
    ) -> None:
        write_coco(items, folder / COCO_FILE_NAME, class_names=class_names, extras=extras)
        if progress is not None:
            progress(len(items), len(items))


COCO = CocoFormat()
