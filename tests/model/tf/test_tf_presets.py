"""keras-hub COCO presets exported as contract models (no download: the architectures are
built from keras-hub's classes with random weights, from the preset configs written out
below). The ONNX model computes what keras-hub computes: its forward pass, anchors and box
decoding, before NMS, on three input sizes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from tf_helpers import ort_session

from model import contract as C
from model.anchors import generate_anchors

SCORE_TOL = 1e-4
# Boxes: 1e-4 px, or 3e-5 of the box's side where that is larger. An absolute 1e-4 px is one
# float32 step at ~1000 px, and two runtimes' convolutions (oneDNN vs MLAS, with BatchNorm
# folded into the weights by onnxruntime) sum the dot products of a ResNet and 256-channel
# heads in different orders: measured here, that moves a box delta by up to ~1e-5, i.e.
# about 1e-5 of the anchor's or box's side (2e-4 px on a 29 px box, 5e-4 px on a 170 px
# one). The box's side is the unclipped one: a box reaching far outside the input keeps the
# error of its size after clipping. The figures (absolute, and relative to the side) are printed with -s.
BOX_TOL = 1e-4  # px
BOX_REL_TOL = 3e-5

# The presets' architectures, as keras-hub's conversion script (tools/checkpoint_conversion/
# convert_retinanet_checkpoints.py) builds them from torchvision's retinanet_resnet50_fpn(_v2):
# a ResNet-50 image encoder (keras-hub "resnet_50_imagenet" layout), P3..P7, 91 classes
# (COCO category ids, 0 = background), ImageNet mean/std.
RESNET50 = {
    "input_conv_filters": [64],
    "input_conv_kernel_sizes": [7],
    "stackwise_num_filters": [64, 128, 256, 512],
    "stackwise_num_blocks": [3, 4, 6, 3],
    "stackwise_num_strides": [1, 2, 2, 2],
    "block_type": "bottleneck_block",
    "use_pre_activation": False,
}
PRESET_ARCHITECTURES = {
    # torchvision v1: LastLevelP6P7(256, 256), P6 from the FPN's P5; heads without norm
    "retinanet_resnet50_fpn_coco": {"use_p5": False, "use_prediction_head_norm": False},
    # torchvision v2: LastLevelP6P7(2048, 256), P6 from C5 (keras-hub's use_p5 feeds the
    # backbone's P5 = C5); GroupNorm heads
    "retinanet_resnet50_fpn_v2_coco": {"use_p5": True, "use_prediction_head_norm": True},
}
NUM_CLASSES = 91
# A small ResNet of the same kind (bottleneck blocks, torchvision layout) for fast tests.
TINY_RESNET = {**RESNET50, "stackwise_num_filters": [64, 64, 64, 64], "stackwise_num_blocks": [1, 1, 1, 1]}

PARITY_SIZES = [(1, 128, 128), (1, 128, 256), (2, 256, 384)]  # runtime inputs are padded to multiples of 128


def build_hub_detector(preset: str, encoder: dict, *, seed: int = 0):
    """keras-hub's RetinaNetObjectDetector with the preset's architecture, random weights
    made to look trained (BatchNorm/GroupNorm statistics away from identity, head outputs
    with a spread of about 0.5 for box deltas and 2 for logits)."""
    import keras
    from keras_hub.layers import RetinaNetImageConverter
    from keras_hub.models import ResNetBackbone, RetinaNetBackbone, RetinaNetObjectDetector, RetinaNetObjectDetectorPreprocessor

    from model.tf.network import IMAGENET_MEAN, IMAGENET_STD

    keras.utils.set_random_seed(seed)
    arch = PRESET_ARCHITECTURES[preset]
    backbone = RetinaNetBackbone(image_encoder=ResNetBackbone(**encoder), min_level=3, max_level=7, use_p5=arch["use_p5"])
    converter = RetinaNetImageConverter(
        scale=[1.0 / 255.0 / s for s in IMAGENET_STD], offset=[-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
    )
    detector = RetinaNetObjectDetector(
        backbone=backbone,
        num_classes=NUM_CLASSES,
        preprocessor=RetinaNetObjectDetectorPreprocessor(image_converter=converter),
        use_prediction_head_norm=arch["use_prediction_head_norm"],
    )
    rng = np.random.default_rng(seed)
    for layer in detector.backbone.image_encoder.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape), rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 2, var.shape)]
            )
    for norm in [*detector.box_head.group_norm_layers, *detector.classification_head.group_norm_layers]:
        gamma, beta = norm.get_weights()
        norm.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape)])
    images = np.random.default_rng(seed + 1).uniform(0, 255, (1, 128, 128, 3)).astype(np.float32)
    outputs = detector(converter(images))
    for head, key, spread in ((detector.box_head, "bbox_regression", 0.5), (detector.classification_head, "cls_logits", 2.0)):
        kernel, bias = head.prediction_layer.get_weights()
        factor = spread / float(np.std(np.asarray(outputs[key])))
        head.prediction_layer.set_weights([kernel * factor, bias * factor + rng.normal(0, 0.1, bias.shape)])
    return detector


def hub_reference(detector, images: np.ndarray) -> dict[str, np.ndarray]:
    """keras-hub's own pre-NMS outputs on RGB 0..255 ``images``: boxes decoded with its
    AnchorGenerator and decode_deltas_to_boxes (xyxy, clipped to the input as the contract's
    exports are), sigmoid scores of the 80 COCO classes, P3..P7."""
    import keras
    from keras import ops

    from model.tf.presets import COCO_CATEGORY_IDS

    _, height, width, _ = images.shape
    x = detector.preprocessor.image_converter(images)
    outputs = detector(x)
    anchors = ops.concatenate(list(detector.anchor_generator(x).values()), axis=0)
    boxes = keras.utils.bounding_boxes.decode_deltas_to_boxes(
        anchors=anchors,
        boxes_delta=outputs["bbox_regression"],
        encoded_format="center_xywh",
        anchor_format=detector.anchor_generator.bounding_box_format,
        box_format="xyxy",
        variance=detector.label_encoder.box_variance,
        image_shape=(height, width, 3),
    )
    unclipped = np.asarray(boxes)
    boxes = np.clip(unclipped, 0.0, np.asarray([width, height, width, height], np.float32))
    scores = np.asarray(ops.sigmoid(outputs["cls_logits"]))[..., list(COCO_CATEGORY_IDS)]
    pyramid = {name: np.asarray(t) for name, t in detector.backbone(x).items()}
    anchors = keras.utils.bounding_boxes.convert_format(anchors, source=detector.anchor_generator.bounding_box_format, target="xyxy")
    return {"boxes": boxes, "unclipped": unclipped, "scores": scores, "anchors": np.asarray(anchors), **pyramid}


def _box_side(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """(..., 1) longer side of each xyxy box or of its anchor (A, 4), at least 1 px: a
    delta's error moves the centre by that much of the anchor, the size by that much of the box."""
    both = np.stack(np.broadcast_arrays(boxes, anchors))
    return np.maximum(np.maximum(both[..., 2] - both[..., 0], both[..., 3] - both[..., 1]).max(axis=0), 1.0)[..., None]


def _box_tolerance(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    return np.maximum(BOX_TOL, BOX_REL_TOL * _box_side(boxes, anchors))


def _parity(detector, onnx_path: Path, label: str) -> list[dict[str, float]]:
    session = ort_session(onnx_path)
    names = ["boxes", "scores", "P3", "P4", "P5", "P6", "P7"]
    figures = []
    for batch, height, width in PARITY_SIZES:
        images = np.random.default_rng(height + width).uniform(0, 255, (batch, height, width, 3)).astype(np.float32)
        want = hub_reference(detector, images)
        got = dict(zip(names, session.run(names, {"image": images})))
        diffs = {name: float(np.abs(got[name] - want[name]).max()) for name in names}
        box_error = np.abs(got["boxes"] - want["boxes"])
        allowed = _box_tolerance(want["unclipped"], want["anchors"])
        diffs["boxes_relative"] = float((box_error / _box_side(want["unclipped"], want["anchors"])).max())
        print(
            f"\n{label} {batch}x{height}x{width}: onnxruntime vs keras-hub max |diff| boxes {diffs['boxes']:.3g} px "
            f"({diffs['boxes_relative']:.3g} of the box's or anchor's side), scores {diffs['scores']:.3g}, P3..P7 {max(diffs[n] for n in names[2:]):.3g}",
            file=sys.stderr,
        )
        figures.append(diffs)
        # the parity is not about constants: scores and boxes vary from anchor to anchor
        assert want["scores"].std() > 0.05 and np.abs(want["boxes"][0] - np.clip(want["anchors"], 0, max(height, width))).max() > 5
        assert (box_error <= allowed).all(), diffs
        assert diffs["scores"] <= SCORE_TOL, diffs
        # the contract's anchors (the runtime and the layer viewer use them) are keras-hub's
        from model.config import ModelConfig

        config = ModelConfig.from_json(C.read_contract(onnx_path).metadata[C.KEY_MODEL_CONFIG])
        np.testing.assert_array_equal(generate_anchors((height, width), config.anchors), want["anchors"])
    return figures


@pytest.fixture(scope="module", params=sorted(PRESET_ARCHITECTURES))
def tiny_preset_export(request, tmp_path_factory):
    from model.tf.export import export_onnx
    from model.tf.presets import preset_provenance, studio_model_from_detector

    detector = build_hub_detector(request.param, TINY_RESNET)
    model, config = studio_model_from_detector(detector, default_size=256)
    path = tmp_path_factory.mktemp("preset") / f"{request.param}.onnx"
    export_onnx(model, config, path, provenance=preset_provenance(request.param, config))
    return request.param, detector, path


def test_tiny_preset_export_matches_keras_hub(tiny_preset_export) -> None:
    preset, detector, path = tiny_preset_export
    _parity(detector, path, f"{preset} (small ResNet)")


def test_preset_export_is_a_contract_model_with_the_coco_classes(tiny_preset_export) -> None:
    from model.tf.presets import COCO_CLASSES

    preset, _, path = tiny_preset_export
    contract = C.read_contract(path)
    assert contract.class_names == COCO_CLASSES
    assert len(COCO_CLASSES) == 80 and COCO_CLASSES[:3] == ("person", "bicycle", "car") and COCO_CLASSES[-1] == "toothbrush"
    assert [(lv.name, lv.stride) for lv in contract.levels] == [("P3", 8), ("P4", 16), ("P5", 32), ("P6", 64), ("P7", 128)]
    assert contract.anchors_per_cell == 9 and contract.default_size == 256
    anchors = json.loads(contract.metadata[C.KEY_ANCHORS])
    assert anchors["centre_offset"] == 0.0 and anchors["integer_sizes"] is True
    assert anchors["box_variance"] == [1.0, 1.0, 1.0, 1.0] and anchors["aspect_ratios"] == [2.0, 1.0, 0.5]
    provenance = contract.provenance
    assert preset in provenance["weights"] and "i*stride" in provenance["conventions"]


def test_the_runtime_runs_a_preset_model_as_keras_hub_would(tiny_preset_export) -> None:
    """The app's path (Detector: letterbox, pad to 128, map back to the photo) gives keras-hub's
    boxes and scores for the letterboxed photo."""
    from model.letterbox import boxes_to_original, letterbox
    from model.runtime import Detector

    _, hub, path = tiny_preset_export
    image = np.random.default_rng(3).integers(0, 255, (150, 230, 3), dtype=np.uint8)
    out = Detector.load(path, providers=["cpu"]).run(image, size=256)
    padded, _ = letterbox(image, size=256)
    want = hub_reference(hub, padded[None].astype(np.float32))
    assert out.level_shapes == [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)]
    np.testing.assert_allclose(out.scores, want["scores"][0], atol=SCORE_TOL, rtol=0)
    want_boxes = boxes_to_original(want["boxes"][0], image_hw=(150, 230), size=256)
    scale = 256 / 230  # letterbox: longest side to 256
    assert (np.abs(out.boxes - want_boxes) <= _box_tolerance(want["unclipped"][0], want["anchors"]) / scale).all()


def test_coco_class_columns_are_picked_by_category_id() -> None:
    """The 91-way head is indexed by COCO category id; our class j reads column id(j)."""
    from model.tf.presets import COCO_91, COCO_CATEGORY_IDS, COCO_CLASSES

    assert len(COCO_91) == 91 and COCO_91.count("N/A") == 10
    assert dict(zip(COCO_CLASSES, COCO_CATEGORY_IDS))["person"] == 1
    assert dict(zip(COCO_CLASSES, COCO_CATEGORY_IDS))["dog"] == 18
    assert dict(zip(COCO_CLASSES, COCO_CATEGORY_IDS))["toothbrush"] == 90


def test_written_out_preset_architectures_are_keras_hubs_presets() -> None:
    """The configs above have the parameter counts keras-hub registers for the presets
    (v1: the whole detector; v2: its backbone, as keras-hub's metadata counts it)."""
    from keras_hub.src.models.retinanet.retinanet_presets import backbone_presets

    v1 = build_hub_detector("retinanet_resnet50_fpn_coco", RESNET50)
    assert v1.count_params() == backbone_presets["retinanet_resnet50_fpn_coco"]["metadata"]["params"]
    v2 = build_hub_detector("retinanet_resnet50_fpn_v2_coco", RESNET50)
    assert v2.backbone.count_params() == backbone_presets["retinanet_resnet50_fpn_v2_coco"]["metadata"]["params"]


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(PRESET_ARCHITECTURES))
def test_full_size_preset_export_matches_keras_hub(preset: str, tmp_path: Path) -> None:
    from model.tf.export import export_onnx
    from model.tf.presets import preset_provenance, studio_model_from_detector

    detector = build_hub_detector(preset, RESNET50)
    model, config = studio_model_from_detector(detector)
    path = tmp_path / f"{preset}.onnx"
    export_onnx(model, config, path, provenance=preset_provenance(preset, config))
    _parity(detector, path, f"{preset} (ResNet-50)")


def test_keras_hubs_decoder_is_our_nms_made_class_agnostic(tiny_preset_export) -> None:
    """Why detections differ from keras-hub's (README, "NMS differs"): its decoder keeps each
    anchor's best class and runs NMS across classes. Our post-processing given only that best
    score per anchor gives exactly its detections; per class (what the app does) it keeps
    more, never fewer."""
    from keras_hub.src.layers.modeling.non_max_supression import NonMaxSuppression

    from model.postprocess import combined_nms

    _, hub, _ = tiny_preset_export
    images = np.random.default_rng(11).uniform(0, 255, (1, 256, 256, 3)).astype(np.float32)
    want = hub_reference(hub, images)
    boxes, scores = want["boxes"][0], want["scores"][0].copy()
    # Random heads push some boxes wholly outside the input, clipped to zero area; the two
    # NMS treat those 0/0 IoUs differently (ours: IoU 0, kept). Trained models rarely make
    # them; they are left out here.
    scores[(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) <= 0] = 0.0
    decoder = NonMaxSuppression(bounding_box_format="xyxy", from_logits=False, iou_threshold=0.5, confidence_threshold=0.5, max_detections=100)
    theirs = decoder(boxes[None], scores[None])
    count = int(np.asarray(theirs["num_detections"])[0])
    best = scores.max(axis=1, keepdims=True)
    agnostic = combined_nms(boxes, best, score_thresh=0.5, iou_thresh=0.5, max_per_class=100, max_total=100)
    assert 3 <= count == len(agnostic.scores)
    their_boxes, their_scores = np.asarray(theirs["boxes"])[0, :count], np.asarray(theirs["confidence"])[0, :count]
    their_labels = np.asarray(theirs["labels"])[0, :count]
    ours_order = np.lexsort((agnostic.boxes[:, 1], agnostic.boxes[:, 0], -agnostic.scores))  # equal scores: any order
    their_order = np.lexsort((their_boxes[:, 1], their_boxes[:, 0], -their_scores))
    np.testing.assert_allclose(agnostic.scores[ours_order], their_scores[their_order], rtol=0, atol=1e-6)
    np.testing.assert_allclose(agnostic.boxes[ours_order], their_boxes[their_order], rtol=0, atol=1e-4)
    np.testing.assert_array_equal(scores[agnostic.anchor_ids].argmax(axis=1)[ours_order], their_labels[their_order])
    per_class = combined_nms(boxes, scores, score_thresh=0.5, iou_thresh=0.5, max_per_class=100, max_total=1000)
    assert len(per_class.scores) > count
