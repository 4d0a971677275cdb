"""A tiny label format that exists only in the tests: one ``image.tsv`` per image, a line
``name<TAB>x1<TAB>y1<TAB>x2<TAB>y2`` per box (xyxy image pixels). Lines starting with ``#``
are the file's own notes: a save keeps them, at the top.

It proves that a label format is one module plus one registry entry: registered with
:func:`model.labels.registry.registered`, it loads, converts and saves through the public
paths (``load_dataset``, ``convert_dataset``, the app's ``LabelDocument``) with no other
product module touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from model.errors import LabelFormatError
from model.imageio import image_size
from model.labels.annotation import ImageLabels, Label, RawRecord
from model.labels.atomic import atomic_write_text
from model.labels.base import PathLike, PerImageFormat


class TsvFormat(PerImageFormat):
    name = "tsv"
    title = "TSV"
    files = ".tsv next to each image"
    suffix = ".tsv"

    def read_file(self, path: Path, *, image_path: PathLike, size: tuple[int, int] | None, class_names: Sequence[str]) -> ImageLabels:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LabelFormatError(path, f"cannot read file ({exc})") from None
        labels = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) != 5:
                raise LabelFormatError(path, f"line {number}: expected name and 4 numbers separated by tabs, got {len(fields)} fields")
            try:
                x1, y1, x2, y2 = (float(v) for v in fields[1:])
            except ValueError:
                raise LabelFormatError(path, f"line {number}: a coordinate is not a number") from None
            labels.append(Label(x1, y1, x2, y2, fields[0]))
        width, height = size if size is not None else image_size(image_path)
        return ImageLabels(str(image_path), width, height, 3, labels=labels, source=RawRecord(self.name, text))

    def write_file(self, item: ImageLabels, path: Path, *, class_names: Sequence[str]) -> None:
        notes = []
        if item.source is not None and item.source.fmt == self.name and isinstance(item.source.data, str):
            notes = [line + "\n" for line in item.source.data.splitlines() if line.startswith("#")]
        rows = [f"{label.name}\t{label.x1:g}\t{label.y1:g}\t{label.x2:g}\t{label.y2:g}\n" for label in item.labels]
        atomic_write_text(path, "".join(notes + rows))


TSV = TsvFormat()
