"""Export to ONNX: the exported graph computes what TensorFlow computes (onnxruntime vs the
tf.function, same weights, same inputs), carries the contract's metadata, and keeps the
contract's level-major anchor order."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tf_helpers import TINY_CLASSES, ort_session

from model import contract as C
from model.anchors import anchor_offsets, generate_anchors, level_shapes
from model.boxes import clip_boxes, decode_boxes
from model.config import AnchorConfig, ModelConfig, from_dict

# The bound, literally. Boxes are clipped to the input in the graph; before that,
# P7 anchors on these small inputs reached ~900 px, where one float32 step is 6.1e-5 px and
# the two runtimes (oneDNN vs MLAS convolutions, exp) differed by up to 1.22e-4 px.
BOX_TOL = 1e-4
SCORE_TOL = 1e-4

# (N, H, W): a padded runtime size, and sizes that are not multiples of 128
PARITY_INPUTS = [(1, 128, 256), (2, 200, 328), (1, 130, 390)]


def _images(batch: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (batch, height, width, 3)).astype(np.float32)


def _compare(model, config, onnx_path, shape) -> dict[str, float]:
    """Max abs difference per output between the tf.function and onnxruntime."""
    from model.tf.network import make_inference_function

    images = _images(*shape)
    tf_out = [np.asarray(t) for t in make_inference_function(model, config)(images)]
    session = ort_session(onnx_path)
    names = ["boxes", "scores", *config.anchors.level_names]
    ort_out = session.run(names, {"image": images})
    diffs = {}
    for name, a, b in zip(names, tf_out, ort_out):
        assert a.shape == b.shape, name
        diffs[name] = float(np.abs(a - b).max())
        diffs[f"{name}_relative"] = diffs[name] / max(float(np.abs(a).max()), 1e-12)
    return diffs


def _report(label: str, shape, diffs: dict[str, float], level_names) -> None:
    print(
        f"\n{label} TF vs onnxruntime {'x'.join(map(str, shape))}: max |diff| boxes {diffs['boxes']:.3g} px, scores {diffs['scores']:.3g}, "
        f"P3..P7 {max(diffs[n] for n in level_names):.3g} (relative {max(diffs[n + '_relative'] for n in level_names):.3g})"
    )


@pytest.mark.parametrize("shape", PARITY_INPUTS, ids=lambda s: "x".join(map(str, s)))
def test_tiny_export_matches_tensorflow(tiny_model, tiny_config, tiny_onnx, shape, record_property) -> None:
    diffs = _compare(tiny_model, tiny_config, tiny_onnx, shape)
    _report("tiny", shape, diffs, tiny_config.anchors.level_names)
    record_property("max_abs_diff", json.dumps(diffs))
    assert diffs["boxes"] <= BOX_TOL
    assert diffs["scores"] <= SCORE_TOL
    assert max(diffs[n] for n in tiny_config.anchors.level_names) <= 1e-4


def test_tiny_export_outputs_are_not_trivial(tiny_model, tiny_config) -> None:
    """Parity is only worth something if the outputs vary: the perturbed test weights give
    scores that differ between anchors and boxes that differ from the anchors."""
    from model.tf.network import make_inference_function

    boxes, scores, *_ = (np.asarray(t) for t in make_inference_function(tiny_model, tiny_config)(_images(1, 128, 256)))
    anchors = generate_anchors((128, 256), tiny_config.anchors)
    assert scores.std() > 0.1
    assert np.abs(boxes[0] - anchors).max() > 10.0


def test_exported_metadata_follows_the_contract(tiny_onnx, tiny_config) -> None:
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(tiny_onnx), load_external_data=False).metadata_props}
    assert meta[C.KEY_VERSION] == str(C.CONTRACT_VERSION) == "2"
    assert json.loads(meta[C.KEY_CANDIDATES]) == {"topk_per_level": 1000}
    assert json.loads(meta[C.KEY_CLASSES]) == list(TINY_CLASSES)
    assert json.loads(meta[C.KEY_LEVELS]) == [["P3", 8], ["P4", 16], ["P5", 32], ["P6", 64], ["P7", 128]]
    assert from_dict(AnchorConfig, json.loads(meta[C.KEY_ANCHORS])) == tiny_config.anchors
    assert meta[C.KEY_DEFAULT_SIZE] == "128"
    assert meta[C.KEY_FEATURES] == "64"
    assert ModelConfig.from_json(meta[C.KEY_MODEL_CONFIG]) == tiny_config
    assert json.loads(meta[C.KEY_PROVENANCE]) == {"data": "none (test)", "epochs": 0}


def test_read_contract_accepts_the_export(tiny_onnx) -> None:
    contract = C.read_contract(tiny_onnx)
    assert contract.version == 2 and contract.has_candidates
    assert contract.class_names == TINY_CLASSES
    assert [(lv.name, lv.stride) for lv in contract.levels] == [("P3", 8), ("P4", 16), ("P5", 32), ("P6", 64), ("P7", 128)]
    assert contract.anchors_per_cell == 9
    assert contract.feature_channels == 64
    assert contract.default_size == 128


def test_exported_graph_has_the_contract_inputs_and_outputs(tiny_onnx) -> None:
    import onnx

    graph = onnx.load(str(tiny_onnx)).graph
    assert [i.name for i in graph.input] == ["image"]
    assert [o.name for o in graph.output] == ["boxes", "scores", "P3", "P4", "P5", "P6", "P7", *C.CANDIDATE_OUTPUTS]
    assert C.contract_from_proto(onnx.load(str(tiny_onnx)), tiny_onnx).num_classes == 3
    # no deprecated Resize modes (onnxruntime warns about tf_half_pixel_for_nn)
    modes = [a.s.decode() for n in graph.node if n.op_type == "Resize" for a in n.attribute if a.name == "coordinate_transformation_mode"]
    assert modes and "tf_half_pixel_for_nn" not in modes


def test_exported_boxes_are_level_major_decoded_anchors(tiny_model, tiny_config, tiny_onnx) -> None:
    """onnxruntime's boxes equal numpy's decoding of the Keras model's raw deltas against
    numpy's anchors (level-major, then row, column, anchor): the exported anchor order is
    the contract's."""
    images = _images(1, 200, 328, seed=3)
    deltas = np.asarray(tiny_model(images, training=False)[0])[0]
    anchors = generate_anchors((200, 328), tiny_config.anchors)
    expected = clip_boxes(decode_boxes(deltas, anchors, variance=tiny_config.anchors.box_variance), width=328, height=200)
    boxes = ort_session(tiny_onnx).run(["boxes"], {"image": images})[0][0]
    np.testing.assert_allclose(boxes, expected, atol=1e-3)
    # and the first anchor of every level sits at that level's first cell
    offsets = anchor_offsets(level_shapes((200, 328), tiny_config.anchors.strides), 9)
    for level, stride in enumerate(tiny_config.anchors.strides):
        first = anchors[offsets[level]]
        np.testing.assert_allclose((first[:2] + first[2:]) / 2, [stride / 2, stride / 2])


def test_exported_model_runs_in_the_detector(tiny_onnx) -> None:
    from model.runtime import Detector

    detector = Detector.load(tiny_onnx, providers=["cpu"])
    image = np.random.default_rng(0).integers(0, 255, (150, 230, 3), dtype=np.uint8)
    out = detector.run(image, size=128)
    assert out.input_hw == (128, 128)  # letterboxed: 128 x 85 padded to 128 x 128
    assert out.scores.shape == (out.anchor_offsets[-1], 3)
    assert out.boxes.shape == (out.anchor_offsets[-1], 4)
    assert out.level_shapes == [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]
    assert set(out.pyramid) == {"P3", "P4", "P5", "P6", "P7"} and out.pyramid["P3"].shape == (16, 16, 64)
    assert out.boxes.min() >= 0 and out.boxes[:, 2].max() <= 230 and out.boxes[:, 3].max() <= 150


@pytest.mark.slow
def test_resnet50_export_matches_tensorflow(tmp_path, record_property) -> None:
    """The seed design's network (random init, ~140 MB): about 80 s to export on a CPU.

    Its own initialisation, not perturb_weights: with BatchNorm at identity statistics a
    random ResNet50's activations already reach ~20 (P3), and perturbed statistics blow
    them up further, which measures float32 range rather than the export. Pyramid outputs
    are compared relative to their magnitude."""
    import keras

    from model.tf.export import export_onnx
    from model.tf.network import build_retinanet

    keras.utils.set_random_seed(2)
    config = ModelConfig(class_names=("cat", "dog"), default_size=512)
    model = build_retinanet(config, backbone_weights=None)
    path = tmp_path / "r50.onnx"
    export_onnx(model, config, path)
    assert C.read_contract(path).feature_channels == 256
    for shape in [(1, 128, 192), (1, 200, 328)]:
        diffs = _compare(model, config, path, shape)
        _report("ResNet50", shape, diffs, config.anchors.level_names)
        record_property(f"max_abs_diff_{shape[1]}x{shape[2]}", json.dumps(diffs))
        assert diffs["boxes"] <= BOX_TOL
        assert diffs["scores"] <= SCORE_TOL
        assert max(diffs[f"{n}_relative"] for n in config.anchors.level_names) <= 1e-5


@pytest.mark.parametrize("shape", [(2, 200, 328), (1, 640, 640)], ids=lambda s: "x".join(map(str, s)))
def test_in_graph_candidates_equal_host_extraction(tiny_onnx, tiny_config, shape) -> None:
    """Contract v2: the graph's per-level TopK keeps exactly what extract_candidates keeps
    from the same run's dense outputs (top 1000 per level above the floor), for every image
    of a batch and at several floors. The test weights put more than 1000 pairs of P3 above
    the floor, so the per-level cut really happens."""
    from model.postprocess import TOPK_PER_LEVEL, candidates_from_selection, extract_candidates

    images = _images(*shape, seed=5)
    names = ["boxes", "scores", *C.CANDIDATE_OUTPUTS]
    boxes, scores, *selected = ort_session(tiny_onnx).run(names, {"image": images})
    offsets = anchor_offsets(level_shapes(shape[1:], tiny_config.anchors.strides), tiny_config.anchors.anchors_per_cell)
    cut = False
    for i in range(shape[0]):
        for floor in (0.05, 0.01, 0.3):
            host = extract_candidates(boxes[i], scores[i], anchor_offsets=offsets, floor=floor)
            graph = candidates_from_selection(*(a[i] for a in selected), floor=floor)
            assert len(graph) == len(host) > 0
            for name in ("boxes", "scores", "class_ids", "anchor_ids", "level_ids"):
                np.testing.assert_array_equal(getattr(graph, name), getattr(host, name), err_msg=name)
            counts = np.bincount(host.level_ids, minlength=5)
            assert counts.max() <= TOPK_PER_LEVEL
            cut |= bool(counts.max() == TOPK_PER_LEVEL)
    assert cut


def test_reexport_upgrades_a_v1_file_keeping_its_metadata(tiny_model, tiny_config, tiny_onnx, tmp_path) -> None:
    """reexport_onnx (how the bundled demo model became v2): the run's weights exported again,
    with the old file's metadata and provenance, as contract version 2 with the same outputs."""
    import onnx

    from model.runtime import Detector
    from model.tf.demo import reexport_onnx

    run = tmp_path / "run"
    run.mkdir()
    (run / "model_config.json").write_text(tiny_config.to_json())
    tiny_model.save_weights(run / "model.weights.h5")
    old = onnx.load(str(tiny_onnx))  # made version 1: candidate nodes and outputs removed, metadata changed
    kept = [n for n in old.graph.node if not n.name.startswith("candidates/")]
    del old.graph.node[:]
    old.graph.node.extend(kept)
    outputs = [o for o in old.graph.output if o.name not in C.CANDIDATE_OUTPUTS]
    del old.graph.output[:]
    old.graph.output.extend(outputs)
    meta = {p.key: p for p in old.metadata_props}
    meta[C.KEY_VERSION].value = "1"
    meta[C.KEY_DEFAULT_SIZE].value = "256"
    meta[C.KEY_PROVENANCE].value = json.dumps({"data": "seed 1", "test_ap": 0.5})
    old.metadata_props.remove(meta[C.KEY_CANDIDATES])
    v1_path = tmp_path / "v1.onnx"
    onnx.save(old, str(v1_path))
    assert C.read_contract(v1_path).version == 1

    reexport_onnx(v1_path, run, tmp_path / "v2.onnx", upgraded="to v2")
    contract = C.read_contract(tmp_path / "v2.onnx")
    assert contract.version == 2 and contract.default_size == 256
    assert contract.provenance == {"data": "seed 1", "test_ap": 0.5, "upgraded": "to v2"}
    image = np.random.default_rng(1).integers(0, 255, (150, 230, 3), dtype=np.uint8)
    a = Detector.load(v1_path, providers=["cpu"]).run(image, size=128, features=False)
    b = Detector.load(tmp_path / "v2.onnx", providers=["cpu"]).run(image, size=128, features=False)
    assert len(a.candidates) == len(b.candidates) > 0
    np.testing.assert_allclose(b.candidates.scores, a.candidates.scores, atol=1e-5)
