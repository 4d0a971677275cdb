"""The ONNX contract (versions 1 and 2): what a ``.onnx`` file must hold for RetinaNet Studio.

- input ``image``: float32 [N, H, W, 3], RGB 0..255, H and W dynamic;
- outputs ``boxes`` [N, A, 4] xyxy input pixels (exports clip them to the input; the runtime clips
  to the image either way), ``scores`` [N, A, C] sigmoid, and one
  [N, h, w, F] activation per pyramid level (names and strides from the metadata);
- version 2 adds the per-level best candidates selected inside the graph (see
  model.candidate_graph): ``candidate_boxes`` [N, K, 4], ``candidate_scores`` [N, K] and
  int64 ``candidate_class_ids`` / ``candidate_anchor_ids`` / ``candidate_level_ids`` [N, K];
  the hot paths fetch only these. Version 1 files still load (candidates found on the host);
- ``metadata_props``: the keys below. Everything here reads the file with ``onnx`` and
  never imports TensorFlow.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

CONTRACT_VERSION = 2  # what exports write
SUPPORTED_VERSIONS = (1, 2)
INPUT_NAME = "image"
BOXES, SCORES = "boxes", "scores"
CANDIDATE_BOXES, CANDIDATE_SCORES = "candidate_boxes", "candidate_scores"
CANDIDATE_CLASS_IDS, CANDIDATE_ANCHOR_IDS, CANDIDATE_LEVEL_IDS = "candidate_class_ids", "candidate_anchor_ids", "candidate_level_ids"
# version 2's candidate outputs, in the order the runtime fetches them
CANDIDATE_OUTPUTS = (CANDIDATE_BOXES, CANDIDATE_SCORES, CANDIDATE_CLASS_IDS, CANDIDATE_ANCHOR_IDS, CANDIDATE_LEVEL_IDS)

# metadata_props keys
KEY_VERSION = "retinanet_studio.contract_version"
KEY_CLASSES = "retinanet_studio.class_names"  # JSON list of strings
KEY_LEVELS = "retinanet_studio.levels"  # JSON list of [name, stride]
KEY_ANCHORS = "retinanet_studio.anchors"  # JSON AnchorConfig fields
KEY_DEFAULT_SIZE = "retinanet_studio.default_size"
KEY_FEATURES = "retinanet_studio.feature_channels"
KEY_MODEL_CONFIG = "retinanet_studio.model_config"  # JSON ModelConfig (for fine-tuning)
KEY_PROVENANCE = "retinanet_studio.provenance"  # JSON: data, epochs, command, measured AP
KEY_CANDIDATES = "retinanet_studio.candidates"  # version 2: JSON {"topk_per_level": 1000}


@dataclass(frozen=True)
class PyramidLevel:
    name: str
    stride: int


@dataclass(frozen=True)
class ModelContract:
    """What a model file declares about itself."""

    path: str
    version: int
    class_names: tuple[str, ...]
    levels: tuple[PyramidLevel, ...]
    anchors_per_cell: int
    default_size: int
    feature_channels: int
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_candidates(self) -> bool:
        """Version 2: the graph selects the candidates (outputs CANDIDATE_OUTPUTS)."""
        return self.version >= 2

    @property
    def provenance(self) -> dict:
        try:
            return json.loads(self.metadata.get(KEY_PROVENANCE, "{}"))
        except json.JSONDecodeError:
            return {}


def _err(path: str | Path, problem: str):
    from model.errors import ModelContractError

    return ModelContractError(path, problem)


def _json(meta: dict[str, str], key: str, path: str):
    if key not in meta:
        raise _err(path, f"metadata key {key!r} is missing (not a RetinaNet Studio model?)")
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError as exc:
        raise _err(path, f"metadata {key!r} is not valid JSON ({exc.msg})") from None


def _all_tensors(graph) -> Iterator:
    """Every TensorProto of ``graph``: initializers, sparse initializers and tensors held in
    node attributes, subgraphs (If / Loop / Scan bodies) included."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices
            for sparse in attr.sparse_tensors:
                yield sparse.values
                yield sparse.indices
            if attr.HasField("g"):
                yield from _all_tensors(attr.g)
            for sub in attr.graphs:
                yield from _all_tensors(sub)


def check_external_data(model_proto, path: str | Path) -> None:
    """Refuse tensors (anywhere in the graph) whose external-data location escapes the
    model's folder: an absolute path, ``..``, or a link that resolves outside it."""
    folder = Path(path).resolve().parent
    for tensor in _all_tensors(model_proto.graph):
        for entry in tensor.external_data:
            if entry.key != "location":
                continue
            target = (folder / entry.value).resolve()
            if os.path.isabs(entry.value) or folder not in target.parents:
                raise _err(path, f"external data {entry.value!r} of tensor {tensor.name!r} points outside the model's folder")


def _dims(value_info) -> list[int | str]:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]


def contract_from_proto(model_proto, path: str | Path) -> ModelContract:
    """Validate an ``onnx.ModelProto`` against the contract; raise ModelContractError."""
    path = str(path)
    meta = {p.key: p.value for p in model_proto.metadata_props}
    version_text = meta.get(KEY_VERSION)
    if version_text is None:
        raise _err(path, "no RetinaNet Studio metadata (contract version missing)")
    if version_text not in {str(v) for v in SUPPORTED_VERSIONS}:
        supported = " or ".join(str(v) for v in SUPPORTED_VERSIONS)
        raise _err(path, f"contract version {version_text} is not supported (expected {supported})")
    version = int(version_text)
    classes = _json(meta, KEY_CLASSES, path)
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise _err(path, "class names must be a non-empty list of strings")
    levels_raw = _json(meta, KEY_LEVELS, path)
    try:
        if not isinstance(levels_raw, list):
            raise TypeError
        levels = tuple(PyramidLevel(str(n), int(s)) for n, s in levels_raw)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a stride of 1e400 (JSON infinity)
        raise _err(path, "pyramid levels must be a list of [name, stride]") from None
    if not levels:
        raise _err(path, "no pyramid levels declared")
    if any(lv.stride <= 0 for lv in levels) or len({lv.name for lv in levels} | {BOXES, SCORES}) != len(levels) + 2:
        raise _err(path, f"pyramid levels must have distinct names and positive strides, found {levels_raw}")
    anchors = _json(meta, KEY_ANCHORS, path)
    try:
        anchors_per_cell = len(anchors["aspect_ratios"]) * len(anchors["scales"])
        default_size = int(meta.get(KEY_DEFAULT_SIZE, "512"))
        features = int(meta.get(KEY_FEATURES, "256"))
    except (KeyError, TypeError, ValueError):
        raise _err(path, "anchor settings / default size / feature channels are malformed") from None
    if anchors_per_cell <= 0 or default_size <= 0 or features <= 0:
        raise _err(path, "anchors per cell, default size and feature channels must be positive")

    graph = model_proto.graph
    inputs = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
        raise _err(path, f"expected one input named {INPUT_NAME!r}, found {[i.name for i in inputs]}")
    in_dims = _dims(inputs[0])
    if len(in_dims) != 4 or in_dims[3] != 3:
        raise _err(path, f"input {INPUT_NAME!r} must be [N, H, W, 3], found {in_dims}")
    if inputs[0].type.tensor_type.elem_type != 1:  # onnx.TensorProto.FLOAT
        raise _err(path, f"input {INPUT_NAME!r} must be float32")
    outputs = {o.name: _dims(o) for o in graph.output}
    expected = [BOXES, SCORES, *(lv.name for lv in levels), *(CANDIDATE_OUTPUTS if version >= 2 else ())]
    missing = [n for n in expected if n not in outputs]
    if missing:
        raise _err(path, f"missing outputs {missing} (has {sorted(outputs)})")
    # a symbolic dimension passes here; the runtime checks the real shapes
    if len(outputs[BOXES]) != 3 or (isinstance(outputs[BOXES][2], int) and outputs[BOXES][2] != 4):
        raise _err(path, f"output 'boxes' must be [N, A, 4], found {outputs[BOXES]}")
    if len(outputs[SCORES]) != 3:
        raise _err(path, f"output 'scores' must be [N, A, C], found {outputs[SCORES]}")
    if isinstance(outputs[SCORES][2], int) and outputs[SCORES][2] != len(classes):
        raise _err(path, f"output 'scores' has {outputs[SCORES][2]} classes but the metadata names {len(classes)}")
    for level in levels:
        if len(outputs[level.name]) != 4:
            raise _err(path, f"pyramid output {level.name!r} must be [N, h, w, F], found {outputs[level.name]}")
    if version >= 2:
        _check_candidate_outputs(graph, outputs, path)
    return ModelContract(
        path=path,
        version=version,
        class_names=tuple(classes),
        levels=levels,
        anchors_per_cell=anchors_per_cell,
        default_size=default_size,
        feature_channels=features,
        metadata=meta,
    )


def _check_candidate_outputs(graph, outputs: dict[str, list[int | str]], path: str) -> None:
    """Version 2's candidate outputs: boxes [N, K, 4] float32, the rest [N, K] (scores
    float32, ids int64)."""
    types = {o.name: o.type.tensor_type.elem_type for o in graph.output}
    dims = outputs[CANDIDATE_BOXES]
    if len(dims) != 3 or (isinstance(dims[2], int) and dims[2] != 4) or types[CANDIDATE_BOXES] != 1:
        raise _err(path, f"output {CANDIDATE_BOXES!r} must be float32 [N, K, 4], found {dims}")
    for name in CANDIDATE_OUTPUTS[1:]:
        want = 1 if name == CANDIDATE_SCORES else 7  # onnx.TensorProto.FLOAT / INT64
        if len(outputs[name]) != 2 or types[name] != want:
            kind = "float32" if want == 1 else "int64"
            raise _err(path, f"output {name!r} must be {kind} [N, K], found {outputs[name]}")


def read_contract(path: str | Path) -> ModelContract:
    """Read and validate ``path``; raise ModelContractError naming the file and problem."""
    import onnx

    path = Path(path)
    if path.is_dir():
        raise _err(path, "is a folder, not an ONNX model file")
    if not path.is_file():
        raise _err(path, "model file not found")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _err(path, f"cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise _err(path, "file is empty (0 bytes)")
    try:
        proto = onnx.load_model_from_string(data)
    except Exception as exc:  # noqa: BLE001 - protobuf raises assorted types on garbage
        raise _err(path, f"not a readable ONNX file, truncated or corrupt ({type(exc).__name__})") from None
    if not proto.graph.node and not proto.graph.output:
        # protobuf accepts many byte strings as an empty message
        raise _err(path, "not an ONNX model (no graph)")
    check_external_data(proto, path)
    return contract_from_proto(proto, path)


def copy_metadata(source: onnx.ModelProto, target: onnx.ModelProto, **provenance_updates: object) -> None:
    """Give ``target`` the contract metadata of ``source``, with provenance updated."""
    meta = {p.key: p.value for p in source.metadata_props}
    prov = json.loads(meta.get(KEY_PROVENANCE, "{}"))
    prov.update(provenance_updates)
    meta[KEY_PROVENANCE] = json.dumps(prov, sort_keys=True)
    del target.metadata_props[:]
    for key, value in meta.items():
        entry = target.metadata_props.add()
        entry.key, entry.value = key, value
