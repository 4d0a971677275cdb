"""Test doubles for the app: a deterministic Detector and a canvas that records what it is
told to show.

``FakeDetector`` implements the runtime API (``load``, ``contract``, ``providers``,
``provider_notes``, ``run``) and returns a real :class:`model.runtime.NetworkOutput` built
from synthetic arrays, so the window's real ``model.postprocess.PostProcessor`` runs on its candidates.
Every box's x1 starts at the image's *marker* (the value of pixel (0, 0)), so a test can
tell which image a set of detections came from.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtGui import QImage

from app.canvas.view import Canvas
from app.jobs.detection import InferenceBackend
from model.anchors import anchor_offsets
from model.contract import ModelContract, PyramidLevel
from model.errors import ModelContractError
from model.imageio import IMAGE_EXTENSIONS, list_images, load_image
from model.postprocess import extract_candidates
from model.runtime import NetworkOutput

Box = tuple[float, float, float, float]
FAKE_MAGIC = "FAKE-MODEL"
CLASS_NAMES = ("cat", "dog", "bird")
STANDARD_LEVELS = (("P3", 8), ("P4", 16), ("P5", 32), ("P6", 64), ("P7", 128))
ANCHORS_PER_CELL = 3
FEATURES = 4
DEFAULT_SIZE = 256

# (level, row, col, k, class, score, box relative to the marker m: x1-m, y1, x2-m, y2)
PLANTED = (
    (0, 0, 0, 0, 0, 0.90, (0, 10, 40, 50)),
    (0, 0, 1, 0, 0, 0.70, (2, 12, 42, 52)),  # IoU 0.82 with the first: NMS removes it
    (1, 1, 1, 1, 1, 0.60, (0, 100, 60, 160)),
    (2, 0, 0, 2, 2, 0.45, (0, 200, 30, 230)),
    (-1, 0, 0, 0, 1, 0.35, (100, 10, 150, 60)),
    (1, 0, 0, 0, 0, 0.20, (200, 200, 220, 220)),
    (0, 1, 0, 0, 2, 0.10, (300, 10, 330, 40)),
)


def write_fake_model(path: Path, levels: Sequence[tuple[str, int]] = STANDARD_LEVELS) -> Path:
    spec = ",".join(f"{name}:{stride}" for name, stride in levels)
    path.write_text(f"{FAKE_MAGIC}\n{spec}\n")
    return path


def write_marker_image(path: Path, marker: int, *, height: int = 240, width: int = 320) -> Path:
    """A flat image whose pixels all equal ``marker`` (so RGB/BGR order does not matter)."""
    import cv2

    image = np.full((height, width, 3), marker, dtype=np.uint8)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"cannot write {path}")
    return path


def image_marker(image: QImage) -> int:
    return QImage(image).pixelColor(0, 0).red()


class FakeDetector:
    """Deterministic stand-in for ``model.runtime.Detector``; counts ``run`` calls."""

    load_delay_s = 0.0

    def __init__(self, path: str, levels: Sequence[tuple[str, int]] = STANDARD_LEVELS) -> None:
        self.contract = ModelContract(
            path=str(path),
            version=1,
            class_names=CLASS_NAMES,
            levels=tuple(PyramidLevel(name, stride) for name, stride in levels),
            anchors_per_cell=ANCHORS_PER_CELL,
            default_size=DEFAULT_SIZE,
            feature_channels=FEATURES,
            metadata={"retinanet_studio.provenance": '{"data": "synthetic", "epochs": 0}'},
        )
        self.providers = ["CPUExecutionProvider"]
        self.provider_notes = ["CUDAExecutionProvider: no NVIDIA driver found (fake)"]
        self.delay_s = 0.0
        self.run_sizes: list[int] = []
        self.run_features: list[bool] = []  # each run's ``features``, in order
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path, *, providers: Sequence[str] | None = None) -> FakeDetector:
        time.sleep(cls.load_delay_s)
        try:
            lines = Path(path).read_text().splitlines()
        except (OSError, UnicodeDecodeError):
            raise ModelContractError(path, "not a readable model file") from None
        if not lines or lines[0] != FAKE_MAGIC:
            raise ModelContractError(path, "no RetinaNet Studio metadata (contract version missing)")
        levels = [(item.split(":")[0], int(item.split(":")[1])) for item in lines[1].split(",")]
        return cls(str(path), levels)

    @property
    def run_count(self) -> int:
        with self._lock:
            return len(self.run_sizes)

    def run(self, image: np.ndarray, *, size: int | None = None, features: bool = True) -> NetworkOutput:
        """What Detector.run gives: the dense outputs and the pyramid only with ``features``."""
        size = int(size or self.contract.default_size)
        with self._lock:
            self.run_sizes.append(size)
            self.run_features.append(features)
        if self.delay_s:
            time.sleep(self.delay_s)
        marker = int(image[0, 0, 0])
        height, width = image.shape[:2]
        scale = size / max(height, width)
        input_hw = (
            math.ceil(round(height * scale) / 128) * 128,
            math.ceil(round(width * scale) / 128) * 128,
        )
        strides = [lv.stride for lv in self.contract.levels]
        shapes = [(math.ceil(input_hw[0] / s), math.ceil(input_hw[1] / s)) for s in strides]
        offsets = anchor_offsets(shapes, ANCHORS_PER_CELL)
        num_anchors = int(offsets[-1])
        # boxes: each anchor gets its cell's rect in original pixels
        boxes_per_level = []
        for (h, w), stride in zip(shapes, strides):
            rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
            cell = np.stack([cols, rows, cols + 1, rows + 1], axis=-1).reshape(-1, 1, 4) * (stride / scale)
            boxes_per_level.append(np.repeat(cell, ANCHORS_PER_CELL, axis=1).reshape(-1, 4))
        boxes = np.concatenate(boxes_per_level).astype(np.float32)
        scores = np.full((num_anchors, len(CLASS_NAMES)), 0.01, dtype=np.float32)
        for level, row, col, k, class_id, score, (x1, y1, x2, y2) in PLANTED:
            level = level % len(shapes)
            anchor = int(offsets[level]) + (row * shapes[level][1] + col) * ANCHORS_PER_CELL + k
            boxes[anchor] = (marker + x1, y1, marker + x2, y2)
            scores[anchor, class_id] = score
        pyramid = {}
        for lv, (h, w) in zip(self.contract.levels, shapes):
            ramp = np.arange(h * w * FEATURES, dtype=np.float32).reshape(h, w, FEATURES)
            pyramid[lv.name] = ramp / ramp.size + marker / 255.0
        candidates = extract_candidates(boxes, scores, anchor_offsets=offsets)
        return NetworkOutput(
            boxes=boxes if features else None,
            scores=scores if features else None,
            pyramid=pyramid if features else {},
            level_shapes=shapes,
            anchor_offsets=offsets,
            anchors_per_cell=ANCHORS_PER_CELL,
            scale=scale,
            image_hw=(height, width),
            input_hw=input_hw,
            timings_ms={"preprocess": 0.1, "network": self.delay_s * 1000.0, "candidates": 0.1},
            candidates=candidates,
        )


class CallCounter:
    """Wraps a function and counts calls (thread-safe)."""

    def __init__(self, fn: Any) -> None:
        self._fn = fn
        self._lock = threading.Lock()
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.calls += 1
        return self._fn(*args, **kwargs)


def fake_backend() -> InferenceBackend:
    """Fake detector; the real image loading and folder listing (load_image is a
    :class:`CallCounter`)."""
    return InferenceBackend(
        load_detector=FakeDetector.load,
        load_image=CallCounter(load_image),
        list_images=list_images,
        image_extensions=IMAGE_EXTENSIONS,
    )


# --------------------------------------------------------------------------------------
# Canvas
# --------------------------------------------------------------------------------------
class RecordingCanvas(Canvas):
    """The real canvas plus a log of what it was given to show: images, overlays,
    highlights, and the detections of the documents it shows (they reach it only through
    the document)."""

    def __init__(self) -> None:
        self.image: QImage | None = None
        self.detections: Any = None
        self.overlay: tuple[QImage | None, float] = (None, 0.0)
        self.highlight: Box | None = None
        # (marker of the image on screen, marker the detections came from) per change
        self.detection_log: list[tuple[int | None, int | None]] = []
        super().__init__()

    def set_image(self, image: QImage | None) -> None:
        self.image = image
        super().set_image(image)

    def set_document(self, document: Any) -> None:
        super().set_document(document)
        self.document().detections_changed.connect(self._record_detections)
        self._record_detections()

    def _record_detections(self) -> None:
        detections = self.document().detections
        self.detections = detections
        if detections is not None and len(detections):
            shown = image_marker(self.image) if self.image is not None and not self.image.isNull() else None
            source = round(float(np.min(detections.boxes[:, 0])))
            self.detection_log.append((shown, source))

    def set_overlay(self, image: QImage | None, *, opacity: float = 0.5, **kwargs: Any) -> None:
        self.overlay = (image, opacity)
        super().set_overlay(image, opacity=opacity, **kwargs)

    def highlight_rect(self, rect: Box | None, **kwargs: Any) -> None:
        self.highlight = rect
        super().highlight_rect(rect, **kwargs)


# --------------------------------------------------------------------------------------
# A tiny real ONNX model that satisfies the contract (built with onnx.helper, no TF)
# --------------------------------------------------------------------------------------
def write_tiny_contract_model(
    path: Path,
    *,
    levels: Sequence[tuple[str, int]] = STANDARD_LEVELS,
    class_names: Sequence[str] = CLASS_NAMES,
    features: int = FEATURES,
    default_size: int = DEFAULT_SIZE,
    seed: int = 0,
) -> Path:
    """Write a contract ``.onnx`` (version 2: model.candidate_graph's in-graph candidates on
    top): each level average-pools the image by its stride and applies random 1x1
    convolutions for the features, the class scores (sigmoid) and the boxes. Meaningless
    detections, real shapes: enough to drive the real runtime."""
    import json

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from model import contract as C
    from model.candidate_graph import add_candidate_outputs

    rng = np.random.default_rng(seed)
    num_classes = len(class_names)
    ratios, scales = [1.0], [1.0, 2.0]
    k = len(ratios) * len(scales)
    nodes = [helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2])]
    inits = [
        numpy_helper.from_array(np.array([0, -1, num_classes], np.int64), "scores_shape"),
        numpy_helper.from_array(np.array([0, -1, 4], np.int64), "boxes_shape"),
    ]
    box_parts, score_parts, outputs = [], [], []
    for name, stride in levels:
        pooled = f"{name}_pooled"
        nodes.append(
            helper.make_node(
                "AveragePool", ["nchw"], [pooled], kernel_shape=[stride, stride], strides=[stride, stride], ceil_mode=1
            )
        )
        for kind, channels, scale, bias in (
            ("feat", features, 0.01, 0.0),
            ("cls", k * num_classes, 0.02, -2.5),
            ("box", k * 4, 0.0, 0.0),
        ):
            weight = (rng.normal(size=(channels, 3, 1, 1)) * scale).astype(np.float32)
            b = np.full(channels, bias, np.float32)
            if kind == "box":  # x1, y1 = mean pixel value; x2, y2 = that + 16 * stride
                weight[:, :, 0, 0] = 1.0 / 3.0
                b = np.tile(np.array([0, 0, 16 * stride, 16 * stride], np.float32), k)
            inits += [
                numpy_helper.from_array(weight, f"{name}_{kind}_w"),
                numpy_helper.from_array(b, f"{name}_{kind}_b"),
            ]
            nodes.append(helper.make_node("Conv", [pooled, f"{name}_{kind}_w", f"{name}_{kind}_b"], [f"{name}_{kind}"]))
        nodes.append(helper.make_node("Transpose", [f"{name}_feat"], [name], perm=[0, 2, 3, 1]))
        nodes.append(helper.make_node("Sigmoid", [f"{name}_cls"], [f"{name}_sig"]))
        nodes.append(helper.make_node("Transpose", [f"{name}_sig"], [f"{name}_sig_t"], perm=[0, 2, 3, 1]))
        nodes.append(helper.make_node("Reshape", [f"{name}_sig_t", "scores_shape"], [f"{name}_scores"]))
        nodes.append(helper.make_node("Transpose", [f"{name}_box"], [f"{name}_box_t"], perm=[0, 2, 3, 1]))
        nodes.append(helper.make_node("Reshape", [f"{name}_box_t", "boxes_shape"], [f"{name}_boxes"]))
        box_parts.append(f"{name}_boxes")
        score_parts.append(f"{name}_scores")
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", f"h{name}", f"w{name}", features]))
    nodes.append(helper.make_node("Concat", box_parts, ["boxes"], axis=1))
    nodes.append(helper.make_node("Concat", score_parts, ["scores"], axis=1))
    graph = helper.make_graph(
        nodes,
        "tiny_retinanet",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", "H", "W", 3])],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["N", "A", 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", "A", num_classes]),
            *outputs,
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    metadata = {
        C.KEY_VERSION: "1",
        C.KEY_CLASSES: json.dumps(list(class_names)),
        C.KEY_LEVELS: json.dumps([[n, s] for n, s in levels]),
        C.KEY_ANCHORS: json.dumps({"aspect_ratios": ratios, "scales": scales}),
        C.KEY_DEFAULT_SIZE: str(default_size),
        C.KEY_FEATURES: str(features),
        C.KEY_PROVENANCE: json.dumps({"data": "none (random weights)", "epochs": 0}),
    }
    helper.set_model_props(model, metadata)
    add_candidate_outputs(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


class CountingDetector:
    """Wraps a real Detector and counts its network runs."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.run_count = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def run(self, image: np.ndarray, *, size: int | None = None, features: bool = True) -> Any:
        with self._lock:
            self.run_count += 1
        return self._inner.run(image, size=size, features=features)


def counting_real_backend() -> InferenceBackend:
    """The real backend (onnxruntime Detector), with network runs counted."""
    from app.jobs.detection import default_backend

    real = default_backend()
    return InferenceBackend(
        load_detector=lambda path: CountingDetector(real.load_detector(path)),
        load_image=CallCounter(real.load_image),
        list_images=real.list_images,
        image_extensions=real.image_extensions,
    )


def write_noise_image(path: Path, *, seed: int, height: int = 240, width: int = 320) -> Path:
    import cv2

    image = (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"cannot write {path}")
    return path
