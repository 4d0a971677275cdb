"""int8 export: a static QDQ model calibrated on real images keeps the contract, runs in
onnxruntime, and stays close to the fp32 model it came from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from model import contract as C
from model.imageio import list_images, load_image
from model.postprocess import extract_candidates
from model.runtime import Detector


def test_int8_export_keeps_the_contract_and_tracks_fp32(tiny_onnx: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    from model.tf.export import quantize_int8

    images = [load_image(p) for p in list_images(tiny_dataset)[:8]]
    int8_path = tmp_path / "tiny.int8.onnx"
    quantize_int8(tiny_onnx, int8_path, images, size=128)

    contract = C.read_contract(int8_path)
    assert contract.class_names == C.read_contract(tiny_onnx).class_names
    provenance = json.loads(contract.metadata[C.KEY_PROVENANCE])
    assert provenance["quantization"] == "int8 static QDQ, 8 calibration images"
    import onnx

    graph = onnx.load(str(int8_path)).graph
    ops = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # contract v2's candidate selection is left unquantized: it reads fp32 scores and boxes
    assert contract.has_candidates
    dequantized = {out for node in graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    selection = [n for n in graph.node if n.name.startswith("candidates/")]
    assert {"TopK", "GatherND", "ReduceMax"} <= {n.op_type for n in selection}
    assert not any(name in dequantized for n in selection for name in n.input)

    fp32, int8 = Detector.load(tiny_onnx, providers=["cpu"]), Detector.load(int8_path, providers=["cpu"])
    for image in images[:3]:
        a, b = fp32.run(image, size=128), int8.run(image, size=128)
        lean = int8.run(image, size=128, features=False)  # in-graph candidates = host extraction
        np.testing.assert_array_equal(lean.candidates.scores, extract_candidates(b.boxes, b.scores, anchor_offsets=b.anchor_offsets).scores)
        assert a.scores.shape == b.scores.shape and a.boxes.shape == b.boxes.shape
        # int8 activations: scores within a few hundredths (99th percentile), boxes within a
        # few pixels
        score_diff = np.abs(a.scores - b.scores)
        assert float(np.percentile(score_diff, 99)) < 0.02 and float(score_diff.max()) < 0.15
        assert float(np.median(np.abs(a.boxes - b.boxes))) < 2.0
