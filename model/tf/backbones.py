"""Backbones returning the C3, C4, C5 feature maps (strides 8, 16, 32).

``resnet50`` is the seed design's (keras.applications.ResNet50, ImageNet weights when they
can be had). ``mobilenet_v2`` is a compact Keras-applications choice (ImageNet weights too).
``tiny`` is a small residual CNN for the bundled demo model and fast tests; it has no
pretrained weights and trains from scratch on synthetic data. ``keras_hub_resnet`` is
keras-hub's ResNetBackbone (torchvision's layout: stride in the 3x3 conv, symmetric padding),
the backbone of the COCO-pretrained presets; its weights come from a preset
(model.tf.presets).
"""

from __future__ import annotations

import json
import logging
import os

import keras
from keras import layers

log = logging.getLogger(__name__)

BACKBONES = ("resnet50", "mobilenet_v2", "tiny", "keras_hub_resnet")

# (layer name of C3, C4, C5) in the Keras applications graphs.
_RESNET50_LAYERS = ("conv3_block4_out", "conv4_block6_out", "conv5_block3_out")
_MOBILENET_V2_LAYERS = ("block_6_expand_relu", "block_13_expand_relu", "out_relu")

# Pixel preprocessing inside the graph: the input is RGB 0..255.
PREPROCESSING = {"resnet50": "caffe", "mobilenet_v2": "tf", "tiny": "unit", "keras_hub_resnet": "imagenet"}

# keras_hub.models.ResNetBackbone arguments of ResNet-50 (the COCO presets' image encoder)
KERAS_HUB_RESNET50 = {
    "input_conv_filters": [64],
    "input_conv_kernel_sizes": [7],
    "stackwise_num_filters": [64, 128, 256, 512],
    "stackwise_num_blocks": [3, 4, 6, 3],
    "stackwise_num_strides": [1, 2, 2, 2],
    "block_type": "bottleneck_block",
    "use_pre_activation": False,
}


def resolve_weights(weights: str | None, backbone: str) -> str | None:
    """Decide what the backbone loads: "imagenet", a local file, or None (random init).

    ``None``, ``""``, ``"none"`` and ``"random"`` mean random init. ``"imagenet"`` needs a
    download from Keras' servers; when that fails (no network) :func:`build_backbone` falls
    back to random init with one clear warning. ``"imagenet"`` for the ``tiny`` backbone
    (which has no pretrained weights; it is the command line's default) means random init.
    Anything else is a local ``.h5`` file, used as given; a missing file raises
    FileNotFoundError naming it.
    """
    if weights is None or weights.strip().lower() in ("", "none", "random"):
        return None
    if weights.strip().lower() == "imagenet":
        if backbone in ("tiny", "keras_hub_resnet"):
            log.info("%s backbone: its pretrained weights come from a preset (--init-from-preset); random initialisation", backbone)
            return None
        return "imagenet"
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"{weights}: backbone weights file not found")
    return weights


def _keras_app(builder, weights: str | None, inputs: keras.KerasTensor, names: tuple[str, ...], label: str):
    try:
        base = builder(include_top=False, weights=weights, input_tensor=inputs)
    except Exception as exc:  # noqa: BLE001 - any download failure means: no weights here
        if weights != "imagenet":
            raise
        log.warning(
            "%s: ImageNet weights could not be loaded (%s); using random initialisation. "
            "Pass --backbone-weights FILE.h5 to use a local copy.",
            label,
            type(exc).__name__,
        )
        base = builder(include_top=False, weights=None, input_tensor=inputs)
    return [base.get_layer(name).output for name in names]


def _conv_bn(x, filters: int, *, stride: int = 1, name: str, relu: bool = True):
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _tiny_stage(x, filters: int, *, name: str):
    x = _conv_bn(x, filters, stride=2, name=f"{name}_down")
    shortcut = x
    y = _conv_bn(x, filters, name=f"{name}_a")
    y = _conv_bn(y, filters, name=f"{name}_b", relu=False)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))


def tiny_backbone(inputs: keras.KerasTensor) -> list[keras.KerasTensor]:
    """A small residual CNN: strides 2, 4, 8 (C3), 16 (C4), 32 (C5)."""
    x = _conv_bn(inputs, 16, stride=2, name="tiny_stem")
    x = _conv_bn(x, 32, stride=2, name="tiny_s4")
    c3 = _tiny_stage(x, 64, name="tiny_c3")
    c4 = _tiny_stage(c3, 128, name="tiny_c4")
    c5 = _tiny_stage(c4, 192, name="tiny_c5")
    return [c3, c4, c5]


def keras_hub_resnet(inputs: keras.KerasTensor, spec: str = "") -> list[keras.KerasTensor]:
    """keras-hub's ResNetBackbone (``spec``: JSON of its architecture arguments, "" for
    ResNet-50) as one nested model whose outputs are its P3, P4, P5 (= C3, C4, C5)."""
    from keras_hub.models import ResNetBackbone

    arguments = {**KERAS_HUB_RESNET50, **(json.loads(spec) if spec else {})}
    encoder = ResNetBackbone(**arguments)
    features = keras.Model(encoder.inputs, [encoder.pyramid_outputs[f"P{i}"] for i in (3, 4, 5)], name="keras_hub_resnet")
    return features(inputs)


def build_backbone(name: str, inputs: keras.KerasTensor, *, weights: str | None = None, spec: str = "") -> list[keras.KerasTensor]:
    """C3, C4, C5 for backbone ``name`` on preprocessed ``inputs``.

    ``weights`` as for :func:`resolve_weights` (a missing local file raises
    FileNotFoundError before anything is built); ``spec`` as for :func:`keras_hub_resnet`.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")
    weights = resolve_weights(weights, name)
    if name == "resnet50":
        return _keras_app(keras.applications.ResNet50, weights, inputs, _RESNET50_LAYERS, "ResNet50")
    if name == "mobilenet_v2":
        return _keras_app(keras.applications.MobileNetV2, weights, inputs, _MOBILENET_V2_LAYERS, "MobileNetV2")
    if name == "tiny":
        if weights is not None:
            log.warning("tiny backbone has no pretrained weights; ignoring %s", weights)
        return tiny_backbone(inputs)
    if name == "keras_hub_resnet":
        if weights is not None:
            log.warning("keras_hub_resnet: its weights come from a preset (--init-from-preset); ignoring %s", weights)
        return keras_hub_resnet(inputs, spec)
    raise ValueError(f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")
