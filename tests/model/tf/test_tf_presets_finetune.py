"""Fine-tuning from a COCO preset (``train --init-from-preset``): the one network and the one
trainer, with the preset's conventions as config fields and its weights mapped in. From a
random-weight preset architecture (saved as a preset folder, no download) on the synthetic set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_tf_presets import TINY_RESNET, build_hub_detector
from test_tf_train import StepLosses
from tf_helpers import TINY_CLASSES, write_tiny_dataset

from model import contract as C
from model.tf.train import TrainConfig, train

PRESET = "retinanet_resnet50_fpn_v2_coco"
CLASSES = ("dog", "circle", "square")  # "dog" is a COCO class, the others are new


@pytest.fixture(scope="module")
def preset_folder(tmp_path_factory):
    detector = build_hub_detector(PRESET, TINY_RESNET, seed=7)
    folder = tmp_path_factory.mktemp("kaggle") / PRESET
    detector.save_to_preset(str(folder))
    return detector, folder


def test_preset_weights_start_a_model_with_new_classes(preset_folder) -> None:
    """Backbone, FPN, heads' towers and box output come from the preset; the class output
    keeps the preset's column for "dog" (COCO id 18) and starts fresh for the new classes."""
    import keras

    from model.tf.network import build_retinanet
    from model.tf.presets import copy_preset_weights, load_detector, preset_model_config

    detector = load_detector(preset_folder[1])
    config = preset_model_config(detector, class_names=CLASSES, default_size=128)
    assert (config.p6_source, config.head_norm, config.backbone) == ("c5", "group", "keras_hub_resnet")
    keras.utils.set_random_seed(0)
    model = build_retinanet(config)
    fresh_kernel, fresh_bias = (np.array(w) for w in model.get_layer("class_head").get_layer("class_head_out").get_weights())
    copy_preset_weights(detector, model, config)
    kernel, bias = model.get_layer("class_head").get_layer("class_head_out").get_weights()
    hub_kernel, hub_bias = detector.classification_head.prediction_layer.get_weights()
    k, n = config.anchors.anchors_per_cell, len(CLASSES)
    for a in range(k):
        np.testing.assert_array_equal(kernel[..., a * n], hub_kernel[..., a * 91 + 18])
        assert bias[a * n] == hub_bias[a * 91 + 18]
        for j in (1, 2):
            np.testing.assert_array_equal(kernel[..., a * n + j], fresh_kernel[..., a * n + j])
            assert bias[a * n + j] == fresh_bias[a * n + j] == pytest.approx(-np.log(99.0))
    box_out = model.get_layer("box_head").get_layer("box_head_out").get_weights()
    for ours, theirs in zip(box_out, detector.box_head.prediction_layer.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    norm = model.get_layer("class_head").get_layer("class_head_gn0").get_weights()
    for ours, theirs in zip(norm, detector.classification_head.group_norm_layers[0].get_weights()):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.slow
def test_fine_tuning_from_a_preset_lowers_the_loss_and_exports_a_contract_model(preset_folder, tmp_path: Path) -> None:
    data = write_tiny_dataset(tmp_path / "data", count=12)  # shapes: none of them a COCO class
    losses = StepLosses()
    cfg = TrainConfig(
        data=str(data), out=str(tmp_path / "run"), init_from_preset=str(preset_folder[1]), backbone_weights=None,
        size=128, batch=2, epochs=2, steps_per_epoch=6, val_fraction=0.0, seed=0, learning_rate=3e-4,
    )  # fmt: skip
    result = train(cfg, progress=losses)
    first, last = np.mean(losses.losses[:3]), np.mean(losses.losses[-3:])
    print(f"\nfine-tune from {PRESET} (small ResNet, random weights): loss {first:.3f} over the first 3 steps -> {last:.3f} over the last 3")
    assert last < first
    assert result.history[-1]["cls_loss"] + result.history[-1]["box_loss"] < result.history[0]["cls_loss"] + result.history[0]["box_loss"]
    contract = C.read_contract(result.onnx_path)
    assert contract.class_names == TINY_CLASSES
    anchors = json.loads(contract.metadata[C.KEY_ANCHORS])
    assert anchors["centre_offset"] == 0.0 and anchors["box_variance"] == [1.0, 1.0, 1.0, 1.0] and anchors["integer_sizes"]
    assert contract.provenance["init_from_preset"] == str(preset_folder[1])
    from model.runtime import Detector

    image = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    out = Detector.load(result.onnx_path, providers=["cpu"]).run(image, size=128)
    assert out.scores.shape[1] == len(TINY_CLASSES) and np.isfinite(out.boxes).all()
