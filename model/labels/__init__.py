"""Labels: types, Pascal VOC / YOLO / COCO readers and writers, atomic writes, datasets.

Formats are objects (:class:`LabelFormat`) registered by name in
:data:`model.labels.registry.FORMATS`; :func:`get_format` looks one up.

A *label* is a saved, human-approved box (a *detection* comes from the model). Boxes are
xyxy floats in original-image pixels everywhere; formats convert only at the edges. Readers
raise :class:`~model.errors.LabelFormatError` (file + problem) on malformed input; writers
are atomic and raise :class:`~model.errors.LabelWriteError`.
"""

from model.labels.annotation import ImageLabels, Label, clip_label
from model.labels.atomic import atomic_write_bytes, atomic_write_text
from model.labels.base import Dataset, LabelFormat
from model.labels.coco import read_coco, write_coco
from model.labels.dataset import (
    CLASSES_FILE_NAME,
    COCO_FILE_NAME,
    convert_dataset,
    label_path_for,
    load_dataset,
    save_dataset,
)
from model.labels.registry import FORMATS, get_format
from model.labels.voc import read_voc, write_voc
from model.labels.yolo import read_classes_txt, read_yolo, write_classes_txt, write_yolo

__all__ = [
    "CLASSES_FILE_NAME",
    "COCO_FILE_NAME",
    "FORMATS",
    "Dataset",
    "ImageLabels",
    "Label",
    "LabelFormat",
    "atomic_write_bytes",
    "atomic_write_text",
    "clip_label",
    "convert_dataset",
    "get_format",
    "label_path_for",
    "load_dataset",
    "read_classes_txt",
    "read_coco",
    "read_voc",
    "read_yolo",
    "save_dataset",
    "write_classes_txt",
    "write_coco",
    "write_voc",
    "write_yolo",
]
