"""fp16 copies of contract models (model.fp16): the contract and fp32 inputs/outputs are
kept, the network body runs in fp16, box decoding stays fp32, and the detections on the
bundled demo model and sample images are the fp32 model's. No TensorFlow here."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

from model import contract as C
from model.boxes import iou_matrix
from model.errors import ModelContractError
from model.fp16 import PRECISION, convert_fp16, network_body, to_fp16
from model.imageio import list_images, load_image
from model.postprocess import select
from model.runtime import Detector

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "resources" / "demo_model.onnx"
SAMPLES = ROOT / "resources" / "samples"
FLOAT, FLOAT16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16


@pytest.fixture(scope="module")
def demo_fp16(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fp16") / "demo.fp16.onnx"
    convert_fp16(DEMO, path)
    return path


def _tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    graph = onnx.shape_inference.infer_shapes(model).graph
    types = {t.name: t.data_type for t in graph.initializer}
    types.update({i.name: i.type.tensor_type.elem_type for i in (*graph.input, *graph.value_info, *graph.output)})
    return types


def test_fp16_copy_keeps_the_contract(demo_fp16: Path) -> None:
    fp32, fp16 = C.read_contract(DEMO), C.read_contract(demo_fp16)
    assert fp16.class_names == fp32.class_names
    assert [(lv.name, lv.stride) for lv in fp16.levels] == [(lv.name, lv.stride) for lv in fp32.levels]
    assert fp16.default_size == fp32.default_size and fp16.anchors_per_cell == fp32.anchors_per_cell
    provenance = json.loads(fp16.metadata[C.KEY_PROVENANCE])
    assert provenance["precision"] == PRECISION
    assert provenance["test_ap50"] == json.loads(fp32.metadata[C.KEY_PROVENANCE])["test_ap50"]  # the rest is kept

    model = onnx.load(str(demo_fp16))
    onnx.checker.check_model(model)
    graph = model.graph
    assert [(i.name, i.type.tensor_type.elem_type) for i in graph.input] == [("image", FLOAT)]
    ids = {C.CANDIDATE_CLASS_IDS, C.CANDIDATE_ANCHOR_IDS, C.CANDIDATE_LEVEL_IDS}
    assert {o.type.tensor_type.elem_type for o in graph.output if o.name not in ids} == {FLOAT}
    assert fp16.has_candidates
    names = [n.name for n in graph.node]
    assert len(names) == len(set(names))
    assert demo_fp16.stat().st_size < 0.55 * DEMO.stat().st_size  # the weights are half size


def test_body_runs_in_fp16_and_decoding_in_fp32(demo_fp16: Path) -> None:
    model = onnx.load(str(demo_fp16))
    types = _tensor_types(model)
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert convs and all(types[n.input[1]] == FLOAT16 and types[n.output[0]] == FLOAT16 for n in convs)
    ops = {n.op_type: n for n in model.graph.node}
    assert types[ops["Exp"].output[0]] == FLOAT  # box sizes: exp(delta) * anchor, in fp32
    assert types[ops["Sigmoid"].output[0]] == FLOAT
    # contract v2's candidate selection reads the fp32 scores and boxes and stays fp32
    selection = [n for n in model.graph.node if n.name.startswith("candidates/") and n.op_type != "Constant"]
    assert {"TopK", "GatherND", "ReduceMax"} <= {n.op_type for n in selection}
    assert all(FLOAT16 not in (types[n.input[0]], types[n.output[0]]) for n in selection)
    assert all(types[n.input[0]] == FLOAT for n in selection if n.op_type in ("GatherND", "ReduceMax"))
    # the input pixels are not rounded to fp16 before preprocessing
    image_consumers = [n for n in model.graph.node if "image" in n.input]
    assert image_consumers and all(n.op_type != "Cast" for n in image_consumers)


def test_network_body_is_between_convolutions() -> None:
    graph = onnx.load(str(DEMO)).graph
    body = network_body(graph)
    ops = Counter(n.op_type for n in graph.node if n.name in body)
    assert ops["Conv"] == sum(n.op_type == "Conv" for n in graph.node)
    assert ops["Relu"] > 0 and ops["Resize"] == 2  # the FPN's top-down upsampling
    assert not {"Exp", "Sigmoid", "Range"} & set(ops)


def test_fp16_detections_match_fp32_on_the_samples(demo_fp16: Path) -> None:
    fp32, fp16 = Detector.load(DEMO, providers=["cpu"]), Detector.load(demo_fp16, providers=["cpu"])
    images = [load_image(p) for p in list_images(SAMPLES)]
    assert len(images) >= 4
    total = 0
    for image in images:
        a, b = fp32.run(image), fp16.run(image)
        assert b.scores.dtype == np.float32 and b.boxes.dtype == np.float32
        assert float(np.abs(a.scores - b.scores).max()) < 5e-3
        assert float(np.abs(a.boxes - b.boxes).max()) < 1.0  # px, image coordinates
        for name in a.pyramid:
            scale = float(np.abs(a.pyramid[name]).max())
            # fp16 keeps ~3 significant digits; errors grow with depth (P7: 0.5% here)
            assert float(np.abs(a.pyramid[name] - b.pyramid[name]).max()) <= 1e-2 * scale
        da = select(a.candidates, score_thresh=0.5, iou_thresh=0.5)
        db = select(b.candidates, score_thresh=0.5, iou_thresh=0.5)
        # a detection sitting exactly on the threshold could flip; none does on the samples
        assert len(da) == len(db)
        assert np.array_equal(np.sort(da.class_ids), np.sort(db.class_ids))
        if len(da):
            assert float(iou_matrix(da.boxes, db.boxes).max(axis=1).min()) > 0.98
        total += len(da)
    assert total >= len(images)  # the comparison is about real detections


def test_fp16_on_the_cpu_says_it_is_slower_there(demo_fp16: Path) -> None:
    assert any("fp16 model on the CPU" in note for note in Detector.load(demo_fp16, providers=["cpu"]).provider_notes)
    assert not any("fp16" in note for note in Detector.load(DEMO, providers=["cpu"]).provider_notes)


def test_inspect_shows_the_precision_and_the_cpu_note(demo_fp16: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from model.cli import main

    assert main(["inspect", str(demo_fp16), "--providers", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert f'"precision": "{PRECISION}"' in printed
    assert "note: fp16 model on the CPU" in printed


def test_converting_twice_gives_the_same_model(demo_fp16: Path) -> None:
    again = to_fp16(onnx.load(str(DEMO)))
    assert again.SerializeToString(deterministic=True) == onnx.load(str(demo_fp16)).SerializeToString(deterministic=True)


def test_a_file_that_is_not_a_contract_model_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "notes.onnx"
    bad.write_text("not a model")
    with pytest.raises(ModelContractError, match="notes.onnx"):
        convert_fp16(bad, tmp_path / "out.onnx")
    with pytest.raises(ModelContractError, match="missing.onnx"):
        convert_fp16(tmp_path / "missing.onnx", tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()
