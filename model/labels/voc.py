"""Pascal VOC XML in LabelImg's layout, one file per image (``image.xml`` next to the image).

Boxes in the file are ``xmin ymin xmax ymax`` in image pixels; they are written as integers
(rounded to the nearest pixel, as LabelImg writes them) and read as floats, so files with
sub-pixel coordinates load unchanged. Inside the product boxes are xyxy floats.

XML is parsed with defusedxml: entity declarations (billion laughs), external entities and
external DTDs are refused with :class:`~model.errors.LabelFormatError`.
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from model.errors import LabelFormatError
from model.labels.annotation import ImageLabels, Label, RawRecord, same_labels
from model.labels.atomic import atomic_write_bytes
from model.labels.base import Dataset, PathLike, PerImageFormat, classes_file_for
from model.labels.yolo import read_classes_txt

_BOX_KEYS = ("xmin", "ymin", "xmax", "ymax")
_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no", ""}


# --- writing ----------------------------------------------------------------------------------

INDENT = "\t"  # LabelImg's indentation, used for elements the file did not have


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def _flag_text(on: bool) -> str:
    return "1" if on else "0"


def _new_object(label: Label) -> ET.Element:
    """A LabelImg ``<object>`` for a box the file did not have (indented one level deep)."""
    obj = ET.Element("object")
    _sub(obj, "name", label.name)
    _sub(obj, "pose", "Unspecified")
    _sub(obj, "truncated", _flag_text(label.truncated))
    _sub(obj, "difficult", _flag_text(label.difficult))
    bndbox = _sub(obj, "bndbox")
    for key, value in zip(_BOX_KEYS, label.box, strict=True):
        _sub(bndbox, key, str(round(value)))
    ET.indent(obj, space=INDENT, level=1)
    return obj


def voc_xml_bytes(image_labels: ImageLabels) -> bytes:
    """The VOC XML document for ``image_labels`` (xyxy boxes in image pixels).

    A new file (no :attr:`~ImageLabels.source`) gets LabelImg's layout (UTF-8, tab-indented,
    no declaration): folder, filename, path, source/database, size, segmented, then per
    label object/name, pose, truncated, difficult, bndbox/xmin..ymax; ``verified="yes"`` on
    ``<annotation>`` when :attr:`~ImageLabels.verified`.

    A file that was read (``source`` is its bytes) is carried forward: when nothing it
    holds changed, its exact bytes; otherwise the same document with only the boxes, names,
    flags, size and ``verified`` changed -- comments, unknown elements and attributes,
    folder/filename/path/source, per-object pose/occluded/unknown tags, element order and
    indentation stay as they were (:func:`_carry_forward`).
    """
    source = image_labels.source
    if source is not None and source.fmt == "voc" and isinstance(source.data, bytes):
        return _carry_forward(image_labels, source.data)
    return _fresh_document(image_labels)


def _fresh_document(image_labels: ImageLabels) -> bytes:
    image_path = Path(image_labels.image_path)
    root = ET.Element("annotation")
    if image_labels.verified:
        root.set("verified", "yes")
    _sub(root, "folder", image_path.parent.name)
    _sub(root, "filename", image_path.name)
    _sub(root, "path", str(image_path))
    source = _sub(root, "source")
    _sub(source, "database", "Unknown")
    size = _sub(root, "size")
    _sub(size, "width", str(int(image_labels.width)))
    _sub(size, "height", str(int(image_labels.height)))
    _sub(size, "depth", str(int(image_labels.depth)))
    _sub(root, "segmented", "0")
    for label in image_labels.labels:
        root.append(_new_object(label))
    ET.indent(root, space=INDENT)
    return ET.tostring(root, encoding="utf-8", xml_declaration=False) + b"\n"


def _same_number(text: str | None, value: float) -> bool:
    try:
        return text is not None and float(text) == value
    except ValueError:
        return False


def _set_child_text(parent: ET.Element, tag: str, text: str, *, create: bool = True) -> None:
    element = parent.find(tag)
    if element is None:
        if not create:
            return
        element = ET.SubElement(parent, tag)
    element.text = text


def _object_for(label: Label) -> ET.Element:
    """The ``<object>`` of ``label``: its element as read (``label.raw``) with the name,
    box and flags set where they differ, or a new LabelImg object."""
    raw = label.raw
    if raw is None or raw.fmt != "voc" or not isinstance(raw.data, str):
        return _new_object(label)
    try:  # the product's own serialisation of a parsed element; a journal may have been tampered with
        obj = _parse_tree(raw.data.encode("utf-8"), path=Path("object"))
    except LabelFormatError:
        return _new_object(label)
    if obj.tag != "object":
        return _new_object(label)
    if _text(obj, "name") != label.name:
        _set_child_text(obj, "name", label.name)
    bndbox = obj.find("bndbox")
    if bndbox is None:
        bndbox = ET.SubElement(obj, "bndbox")
    for key, value in zip(_BOX_KEYS, label.box, strict=True):
        if not _same_number(_text(bndbox, key), value):
            _set_child_text(bndbox, key, str(round(value)))
    for tag, on in (("truncated", label.truncated), ("difficult", label.difficult)):
        element = obj.find(tag)
        current = element is not None and (element.text or "").strip().lower() in _TRUE
        if current != on:
            _set_child_text(obj, tag, _flag_text(on))
    return obj


def _replace_objects(root: ET.Element, new_objects: list[ET.Element]) -> None:
    """Put ``new_objects`` where ``root``'s ``<object>`` children were (after the last child
    when there were none), with the indentation the file used between its elements."""
    children = list(root)
    old_objects = [child for child in children if child.tag == "object"]
    if old_objects:
        position = children.index(old_objects[0])
        between = children[position - 1].tail if position > 0 else root.text
        last_tail = old_objects[-1].tail
        followed = children[-1].tag != "object" or children.index(old_objects[-1]) != len(children) - 1
        for obj in old_objects:
            root.remove(obj)
        if not new_objects and position > 0 and not followed:
            root[position - 1].tail = last_tail
    else:
        if not new_objects:
            return
        position = len(children)
        between = children[-2].tail if len(children) > 1 else (root.text or "\n" + INDENT)
        if children:
            last_tail = children[-1].tail
            children[-1].tail = between
        else:
            last_tail = "\n"
            root.text = between
    for k, obj in enumerate(new_objects):
        obj.tail = between if k < len(new_objects) - 1 else last_tail
        root.insert(position + k, obj)


_ROOT_START = re.compile(rb"<annotation[\s/>]")
_ROOT_END = re.compile(rb"</annotation\s*>")
_DECLARED_ENCODING = re.compile(rb"""^(?:\xef\xbb\xbf)?<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _carry_forward(image_labels: ImageLabels, data: bytes) -> bytes:
    """``data`` (a VOC file as read) with ``image_labels``' boxes, names, flags, size and
    verified mark; the exact bytes when none of them changed."""
    path = Path(image_labels.image_path).with_suffix(".xml")
    root = _parse_tree(data, path=path)
    before = _image_labels(root, data, path=path)
    unchanged = (
        before.verified == image_labels.verified
        and (before.width, before.height, before.depth) == (image_labels.width, image_labels.height, image_labels.depth)
        and same_labels(before.labels, image_labels.labels)
    )
    if unchanged:
        return data
    if before.verified != image_labels.verified:
        if image_labels.verified:
            root.set("verified", "yes")
        else:
            root.attrib.pop("verified", None)
    if (before.width, before.height, before.depth) != (image_labels.width, image_labels.height, image_labels.depth):
        size = root.find("size")
        if size is None:  # where LabelImg puts it: after folder/filename/path/source
            size = ET.Element("size")
            children = list(root)
            after = [i for i, child in enumerate(children) if child.tag in ("folder", "filename", "path", "source")]
            position = after[-1] + 1 if after else 0
            size.tail = children[position - 1].tail if position > 0 else root.text
            root.insert(position, size)
        for tag, value in (("width", image_labels.width), ("height", image_labels.height), ("depth", image_labels.depth)):
            if not _same_number(_text(size, tag), float(value)):
                _set_child_text(size, tag, str(int(value)))
    _replace_objects(root, [_object_for(label) for label in image_labels.labels])
    start = _ROOT_START.search(data)
    ends = list(_ROOT_END.finditer(data))
    prolog = data[: start.start()] if start else b""
    epilogue = data[ends[-1].end() :] if ends else b"\n"
    declared = _DECLARED_ENCODING.match(prolog)
    encoding = declared.group(1).decode("ascii") if declared else "utf-8"
    body = ET.tostring(root, encoding="unicode")
    try:
        encoded = body.encode(encoding, errors="xmlcharrefreplace")
    except LookupError:
        encoded = body.encode("utf-8")
    return prolog + encoded + epilogue


def write_voc(image_labels: ImageLabels, xml_path: str | os.PathLike[str]) -> None:
    """Write ``image_labels`` (xyxy boxes, image pixels) as VOC XML, atomically: LabelImg's
    layout for a new file, the file as it was read with only the edits changed otherwise
    (:func:`voc_xml_bytes`).

    Raises LabelWriteError; the old file survives a failed write.
    """
    atomic_write_bytes(xml_path, voc_xml_bytes(image_labels))


# --- reading ----------------------------------------------------------------------------------


def _text(parent: ET.Element, tag: str) -> str | None:
    element = parent.find(tag)
    if element is None or element.text is None:
        return None
    return element.text.strip()


def _number(text: str | None, *, path: Path, what: str) -> float:
    if text is None:
        raise LabelFormatError(path, f"{what} is missing")
    try:
        value = float(text)
    except ValueError:
        raise LabelFormatError(path, f"{what} is not a number ({text!r})") from None
    if not math.isfinite(value):
        raise LabelFormatError(path, f"{what} is not a finite number ({text!r})")
    return value


def _flag(text: str | None, *, path: Path, what: str) -> bool:
    if text is None:
        return False
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise LabelFormatError(path, f"{what} must be 0 or 1, not {text!r}")


def _image_path_for(xml_path: Path, root: ET.Element) -> str:
    """Where the image of this XML is: ``filename`` next to the XML, else ``path``, else
    the XML's own name with the image's extension unknown (``xml_path`` minus ``.xml``)."""
    filename = _text(root, "filename")
    stored_path = _text(root, "path")
    if filename:
        candidate = xml_path.parent / filename
        try:
            exists = candidate.exists()
        except (OSError, ValueError):  # a name too long for the file system, say
            exists = False
        if exists or not stored_path:
            return str(candidate)
    if stored_path:
        return stored_path
    return str(xml_path.with_suffix(""))


def _parse_tree(data: bytes, *, path: Path) -> ET.Element:
    """The root element of VOC XML ``data``, comments and processing instructions kept (a
    writer carries them forward); unsafe XML raises LabelFormatError."""
    try:
        parser = DefusedXMLParser(
            target=ET.TreeBuilder(insert_comments=True, insert_pis=True),
            forbid_dtd=False,
            forbid_entities=True,
            forbid_external=True,
        )
        parser.feed(data)
        return parser.close()
    except DefusedXmlException as exc:
        raise LabelFormatError(
            path, f"refused unsafe XML ({exc.__class__.__name__}: entities/external references are not allowed)"
        ) from None
    except ET.ParseError as exc:
        raise LabelFormatError(path, f"not well-formed XML ({exc})") from None
    except (ValueError, LookupError) as exc:  # UnicodeError is a ValueError; an unknown encoding a LookupError
        raise LabelFormatError(path, f"not readable XML ({exc})") from None


def _object_record(obj: ET.Element) -> RawRecord:
    """``obj`` as read (without the whitespace after it), for the writer to start from."""
    tail, obj.tail = obj.tail, None
    try:
        return RawRecord("voc", ET.tostring(obj, encoding="unicode"))
    finally:
        obj.tail = tail


def parse_voc_bytes(data: bytes, *, xml_path: str | os.PathLike[str]) -> ImageLabels:
    """Parse VOC XML ``data`` (read from ``xml_path``, used for messages and the image path).

    Width/height are 0 when the file has no usable ``size`` element (some tools omit it);
    callers that know the image fill them in. ``verified`` is LabelImg's
    ``<annotation verified="yes">``; the result keeps ``data`` and each object's element as
    read (:attr:`ImageLabels.source`, :attr:`Label.raw`) so that :func:`write_voc` changes
    nothing else.
    """
    path = Path(xml_path)
    return _image_labels(_parse_tree(data, path=path), data, path=path)


def _image_labels(root: ET.Element, data: bytes, *, path: Path) -> ImageLabels:
    """:func:`parse_voc_bytes` of the parsed ``root`` of ``data``."""
    if root.tag != "annotation":
        raise LabelFormatError(path, f"root element is <{root.tag}>, expected <annotation> (Pascal VOC)")

    width = height = 0
    depth = 3
    size = root.find("size")
    if size is not None:
        width = int(_number(_text(size, "width") or "0", path=path, what="size/width"))
        height = int(_number(_text(size, "height") or "0", path=path, what="size/height"))
        depth_text = _text(size, "depth")
        if depth_text:
            depth = int(_number(depth_text, path=path, what="size/depth"))
    if width < 0 or height < 0:
        raise LabelFormatError(path, f"negative image size {width}x{height}")

    labels: list[Label] = []
    for index, obj in enumerate(root.findall("object"), start=1):
        where = f"object {index}"
        name = _text(obj, "name")
        if not name:
            raise LabelFormatError(path, f"{where} has no <name>")
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise LabelFormatError(path, f"{where} ({name}) has no <bndbox>")
        x1, y1, x2, y2 = (
            _number(_text(bndbox, key), path=path, what=f"{where} ({name}) bndbox/{key}") for key in _BOX_KEYS
        )
        if x2 < x1 or y2 < y1:
            raise LabelFormatError(path, f"{where} ({name}) has xmax < xmin or ymax < ymin ({x1}, {y1}, {x2}, {y2})")
        labels.append(
            Label(
                x1,
                y1,
                x2,
                y2,
                name,
                difficult=_flag(_text(obj, "difficult"), path=path, what=f"{where} difficult"),
                truncated=_flag(_text(obj, "truncated"), path=path, what=f"{where} truncated"),
                raw=_object_record(obj),
            )
        )
    verified = (root.get("verified") or "").strip().lower() in _TRUE
    return ImageLabels(
        image_path=_image_path_for(path, root),
        width=width,
        height=height,
        depth=depth,
        labels=labels,
        verified=verified,
        source=RawRecord("voc", bytes(data)),
    )


def read_voc(xml_path: str | os.PathLike[str]) -> ImageLabels:
    """Read one Pascal VOC XML file; boxes come back xyxy floats in image pixels.

    Raises LabelFormatError(xml_path, problem) for a missing/unreadable file, unsafe or
    malformed XML, or bad values. Width/height are 0 if the file has no ``size``.
    """
    path = Path(xml_path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LabelFormatError(path, "file not found") from None
    except OSError as exc:
        raise LabelFormatError(path, f"cannot read file ({exc.strerror or exc})") from None
    return parse_voc_bytes(data, xml_path=path)


_VERIFIED_ATTRIBUTE = re.compile(rb"""<annotation\b[^>]*?\bverified\s*=\s*["']\s*(yes|true|1)\s*["']""", re.IGNORECASE)


def voc_file_is_verified(xml_path: str | os.PathLike[str]) -> bool:
    """Whether the VOC file at ``xml_path`` carries LabelImg's ``verified="yes"``: a look at
    its first 4 KB, for file lists (no parsing; False when it cannot be read)."""
    try:
        with open(xml_path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return _VERIFIED_ATTRIBUTE.search(head) is not None


# --- the format -------------------------------------------------------------------------------


class VocFormat(PerImageFormat):
    """Pascal VOC for the registry: ``img.xml`` per image; keeps LabelImg's verified mark.
    A ``classes.txt`` beside the files (LabelImg writes one) gives the class order on load."""

    name = "voc"
    title = "Pascal VOC"
    files = ".xml next to each image"
    suffix = ".xml"
    keeps_verified = True
    stores_class_names = False

    def read_file(self, path: Path, *, image_path: PathLike, size: tuple[int, int] | None, class_names: Sequence[str]) -> ImageLabels:
        return read_voc(path)

    def write_file(self, item: ImageLabels, path: Path, *, class_names: Sequence[str]) -> None:
        write_voc(item, path)

    def saved_source(self, path: Path) -> RawRecord | None:
        try:
            return RawRecord("voc", path.read_bytes())
        except OSError:
            return None

    def load_class_names(self, folder: Path, images: Sequence[Path], labels_dir: Path | None, dataset: Dataset) -> list[str]:
        classes_path = classes_file_for(folder, labels_dir)
        if classes_path.is_file():
            try:
                return read_classes_txt(classes_path)
            except LabelFormatError as exc:
                dataset.errors.append(exc)
        return []


VOC = VocFormat()
