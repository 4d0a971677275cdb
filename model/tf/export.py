"""Export a Keras RetinaNet to a self-describing ONNX file (the contract in model.contract).

tf2onnx's ``from_keras`` is fragile with Keras 3, so the model is wrapped in a
``tf.function`` with an input signature and converted with ``from_function`` (opset 17).
The converted graph (contract version 1's outputs) then gets the in-graph candidate
selection of model.candidate_graph, which makes it version 2; fp16 and int8 copies start
from that file and keep those nodes in fp32.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import onnx

from model import contract as C
from model.candidate_graph import add_candidate_outputs
from model.config import ModelConfig, to_dict
from model.contract import copy_metadata
from model.labels.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

OPSET = 17


def _rename_outputs(proto: onnx.ModelProto, names: tuple[str, ...]) -> None:
    """Give the graph outputs the contract's names (tf2onnx names them Identity:0...)."""
    graph = proto.graph
    if len(graph.output) != len(names):
        raise RuntimeError(f"expected {len(names)} outputs, graph has {len(graph.output)}")
    for out, new in zip(graph.output, names):
        old = out.name
        for node in graph.node:
            for i, name in enumerate(node.output):
                if name == old:
                    node.output[i] = new
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = new
        out.name = new


def contract_metadata(config: ModelConfig, provenance: dict) -> dict[str, str]:
    """metadata_props for ``config`` (see model.contract), as for the converted graph
    before :func:`model.candidate_graph.add_candidate_outputs` (which makes it version 2)."""
    anchors = config.anchors
    return {
        C.KEY_VERSION: "1",
        C.KEY_CLASSES: json.dumps(list(config.class_names)),
        C.KEY_LEVELS: json.dumps([[n, s] for n, s in zip(anchors.level_names, anchors.strides)]),
        C.KEY_ANCHORS: json.dumps(to_dict(anchors)),
        C.KEY_DEFAULT_SIZE: str(config.default_size),
        C.KEY_FEATURES: str(config.pyramid_channels),
        C.KEY_MODEL_CONFIG: config.to_json(),
        C.KEY_PROVENANCE: json.dumps(provenance, sort_keys=True),
    }


def export_onnx(model, config: ModelConfig, out_path: str | Path, *, provenance: dict | None = None) -> onnx.ModelProto:
    """Convert ``model`` (from build_retinanet) to ONNX at ``out_path`` and return the proto."""
    import tf2onnx

    from model.tf.network import OUTPUT_ORDER, make_inference_function

    started = time.perf_counter()
    detect = make_inference_function(model, config)
    proto, _ = tf2onnx.convert.from_function(detect, input_signature=detect.input_signature, opset=OPSET)
    level_names = config.anchors.level_names
    _rename_outputs(proto, ("boxes", "scores", *level_names) if level_names != OUTPUT_ORDER[2:] else OUTPUT_ORDER)
    del proto.metadata_props[:]
    for key, value in contract_metadata(config, provenance or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "retinanet-studio"
    add_candidate_outputs(proto)
    C.contract_from_proto(proto, out_path)  # never write a file that breaks the contract
    atomic_write_bytes(Path(out_path), proto.SerializeToString())
    log.info("exported %s in %.1f s", out_path, time.perf_counter() - started)
    return proto


def quantize_int8(fp32_path: str | Path, out_path: str | Path, calibration_images: list[np.ndarray], *, size: int) -> None:
    """Static QDQ int8 quantisation with onnxruntime.quantization, calibrated on real images
    (RGB uint8 arrays, letterboxed to ``size`` like the runtime does)."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    from model.letterbox import PAD_MULTIPLE, letterbox

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._items = iter(calibration_images)

        def get_next(self):
            image = next(self._items, None)
            if image is None:
                return None
            padded, _ = letterbox(image, size=size)
            # one square shape for every image (the calibrators stack their outputs)
            side = -(-size // PAD_MULTIPLE) * PAD_MULTIPLE
            square = np.zeros((side, side, 3), np.float32)
            square[: padded.shape[0], : padded.shape[1]] = padded
            return {C.INPUT_NAME: square[None]}

    proto = onnx.load(str(fp32_path), load_external_data=False)
    # Convolutions only (weights int8 per channel, activations uint8, MinMax calibration:
    # histogram methods keep every activation of every calibration image in memory, which
    # a ResNet50 at 512 px does not survive in 24 GB); residual Adds, ReLUs, Resize, the heads' last convolutions (box
    # deltas, class logits), box decoding and the sigmoid stay fp32. Measured on the demo
    # model (unseen seed, 300 images): this keeps AP50 at fp32's (0.915 vs 0.914), where
    # also quantising Add/Relu/Concat/Resize lost 1.6-2.1 points of AP50 and 16 of AP.
    #
    # Weights use 7 bits (reduce_range): x86 CPUs without VNNI (AVX2, AVX-512 before Cascade
    # Lake / Zen 4) multiply uint8 activations by int8 weights with vpmaddubsw, which adds two
    # products in int16 and saturates once 2 x 255 x |w| > 32767, i.e. for |w| > 64. Measured
    # on the test suite's tiny model: 99th percentile |fp32 - int8| score 0.150 on an AVX2 EPYC
    # (emulated Zen 2), 0.015 with VNNI; with 7-bit weights 0.019 on both, bit-identical, since
    # every product is then exact. The demo model keeps its AP50 (0.916 vs fp32 0.914).
    head_outputs = [n.name for n in proto.graph.node if n.op_type == "Conv" and "_head_out" in n.name]
    quantize_static(
        str(fp32_path),
        str(out_path),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        op_types_to_quantize=["Conv"],
        nodes_to_exclude=head_outputs,
        calibrate_method=CalibrationMethod.MinMax,
    )
    quantized = onnx.load(str(out_path))
    copy_metadata(proto, quantized, quantization=f"int8 static QDQ, {len(calibration_images)} calibration images")
    atomic_write_bytes(Path(out_path), quantized.SerializeToString())
