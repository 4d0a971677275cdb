"""The RetinaNet network (Keras 3, TensorFlow backend), as in the seed design.

``build_retinanet`` returns the trainable Keras model: RGB 0..255 image in, raw head
outputs and the pyramid out. ``make_inference_function`` wraps it with anchor generation,
box decoding and the sigmoid: the graph that is exported to ONNX (see DESIGN.md's contract).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from model.anchors import cell_anchor_sizes
from model.config import AnchorConfig, ModelConfig
from model.tf.backbones import BACKBONES, PREPROCESSING, build_backbone

_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
# torchvision's (and so the keras-hub COCO presets') normalisation of RGB in [0, 1]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="retinanet_studio")
class Preprocess(layers.Layer):
    """RGB 0..255 -> what the backbone expects ("caffe": BGR minus mean; "tf": [-1, 1];
    "unit": [0, 1]; "imagenet": (x / 255 - mean) / std per channel, computed as keras-hub's
    ImageConverter does: x * (1 / 255 / std) + (-mean / std))."""

    def __init__(self, mode: str, **kwargs):
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, images):
        images = tf.cast(images, tf.float32)
        if self.mode == "caffe":
            return images[..., ::-1] - tf.constant(_CAFFE_BGR_MEAN, dtype=tf.float32)
        if self.mode == "tf":
            return images / 127.5 - 1.0
        if self.mode == "imagenet":
            scale = tf.constant([1.0 / 255.0 / s for s in IMAGENET_STD], dtype=tf.float32)
            offset = tf.constant([-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)], dtype=tf.float32)
            return images * scale + offset
        return images / 255.0

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="retinanet_studio")
class UpsampleLike(layers.Layer):
    """Nearest-neighbour resize of ``source`` to the spatial size of ``target``.

    Sizes come from ``tf.shape`` so that odd feature sizes (inputs that are not multiples of
    128) line up, and the export is a single ONNX Resize node.

    The coarse level has ``ceil(n / 2)`` cells for the fine level's ``n``, and fine cell ``j``
    lies inside coarse cell ``j // 2``. Asymmetric nearest sampling (``floor(j * in / out)``,
    no half-pixel centres) is exactly ``j // 2`` for both ``n = 2 * in`` and
    ``n = 2 * in - 1``; ``tf.image.resize``'s half-pixel centres shift odd sizes by a cell
    and export as ONNX's deprecated ``tf_half_pixel_for_nn`` mode. For inputs padded to a
    multiple of 128 (the runtime's) both give the same values.
    """

    def call(self, source, target):
        return tf.raw_ops.ResizeNearestNeighbor(
            images=source, size=tf.shape(target)[1:3], align_corners=False, half_pixel_centers=False
        )


@keras.saving.register_keras_serializable(package="retinanet_studio")
class FlattenAnchors(layers.Layer):
    """(N, h, w, K * D) -> (N, h * w * K, D): row, column, anchor order."""

    def __init__(self, depth: int, **kwargs):
        super().__init__(**kwargs)
        self.depth = depth

    def call(self, x):
        return tf.reshape(x, [tf.shape(x)[0], -1, self.depth])

    def get_config(self):
        return {**super().get_config(), "depth": self.depth}


def _fpn(c3, c4, c5, channels: int, p6_source: str = "c5"):
    """P3..P5 from laterals + top-down, P6 = conv3x3/2(C5) (or of the smoothed P5 with
    ``p6_source="p5"``), P7 = conv3x3/2(relu(P6))."""
    if p6_source not in ("c5", "p5"):
        raise ValueError(f"p6_source must be 'c5' or 'p5', got {p6_source!r}")
    p3 = layers.Conv2D(channels, 1, name="fpn_lateral3")(c3)
    p4 = layers.Conv2D(channels, 1, name="fpn_lateral4")(c4)
    p5 = layers.Conv2D(channels, 1, name="fpn_lateral5")(c5)
    p4 = layers.Add(name="fpn_merge4")([p4, UpsampleLike(name="fpn_up5")(p5, p4)])
    p3 = layers.Add(name="fpn_merge3")([p3, UpsampleLike(name="fpn_up4")(p4, p3)])
    p3 = layers.Conv2D(channels, 3, padding="same", name="P3")(p3)
    p4 = layers.Conv2D(channels, 3, padding="same", name="P4")(p4)
    p5 = layers.Conv2D(channels, 3, padding="same", name="P5")(p5)
    p6 = layers.Conv2D(channels, 3, strides=2, padding="same", name="P6")(c5 if p6_source == "c5" else p5)
    p7 = layers.Conv2D(channels, 3, strides=2, padding="same", name="P7")(layers.ReLU(name="P6_relu")(p6))
    return [p3, p4, p5, p6, p7]


def _head(config: ModelConfig, out_channels: int, bias_init, name: str) -> keras.Sequential:
    """A head shared across levels: head_convs x (conv3x3 [+ GroupNorm] + ReLU), then conv3x3."""
    if config.head_norm not in ("none", "group"):
        raise ValueError(f"head_norm must be 'none' or 'group', got {config.head_norm!r}")
    norm = config.head_norm == "group"
    kernel_init = keras.initializers.RandomNormal(0.0, 0.01)
    head = keras.Sequential(name=name)
    head.add(keras.Input((None, None, config.pyramid_channels)))
    for i in range(config.head_convs):
        conv = layers.Conv2D(config.head_channels, 3, padding="same", kernel_initializer=kernel_init, use_bias=not norm, name=f"{name}_conv{i}")
        head.add(conv)
        if norm:
            head.add(layers.GroupNormalization(groups=32, name=f"{name}_gn{i}"))
        head.add(layers.ReLU(name=f"{name}_relu{i}"))
    head.add(layers.Conv2D(out_channels, 3, padding="same", kernel_initializer=kernel_init, bias_initializer=bias_init, name=f"{name}_out"))
    return head


def build_retinanet(config: ModelConfig, *, backbone_weights: str | None = None) -> keras.Model:
    """The trainable RetinaNet.

    Input ``image``: (N, H, W, 3) float32 RGB 0..255. Outputs (a list):
    ``box_deltas`` (N, A, 4), ``class_logits`` (N, A, C), then P3..P7 (N, h, w, F).
    A = sum over levels of h * w * anchors_per_cell, level-major then row, column, anchor.
    """
    if config.backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {config.backbone!r}; choose from {', '.join(BACKBONES)}")
    if len(config.anchors.strides) != 5:
        raise ValueError("this network builds the P3..P7 pyramid: anchors need 5 strides")
    k = config.anchors.anchors_per_cell
    inputs = keras.Input((None, None, 3), name="image", dtype="float32")
    x = Preprocess(PREPROCESSING[config.backbone], name="preprocess")(inputs)
    c3, c4, c5 = build_backbone(config.backbone, x, weights=backbone_weights, spec=config.backbone_spec)
    pyramid = _fpn(c3, c4, c5, config.pyramid_channels, config.p6_source)
    prior = -math.log((1 - config.prior_probability) / config.prior_probability)
    box_head = _head(config, 4 * k, "zeros", "box_head")
    class_head = _head(config, config.num_classes * k, keras.initializers.Constant(prior), "class_head")
    flat_box = FlattenAnchors(4, name="flatten_box")
    flat_cls = FlattenAnchors(config.num_classes, name="flatten_class")
    box_deltas = layers.Concatenate(axis=1, name="box_deltas")([flat_box(box_head(p)) for p in pyramid])
    class_logits = layers.Concatenate(axis=1, name="class_logits")([flat_cls(class_head(p)) for p in pyramid])
    return keras.Model(inputs, [box_deltas, class_logits, *pyramid], name="retinanet")


def tf_anchors(pyramid: list[tf.Tensor], config: AnchorConfig) -> tf.Tensor:
    """(A, 4) xyxy anchors in input pixels from the pyramid's dynamic shapes; the same
    values as :func:`model.anchors.generate_anchors`."""
    sizes = cell_anchor_sizes(config)  # (L, K, 2)
    offset = config.centre_offset
    chunks = []
    for level, (feature, stride) in enumerate(zip(pyramid, config.strides)):
        shape = tf.shape(feature)
        h, w = shape[1], shape[2]
        cx = (tf.cast(tf.range(w), tf.float32) + offset) * stride
        cy = (tf.cast(tf.range(h), tf.float32) + offset) * stride
        gx, gy = tf.meshgrid(cx, cy)  # (h, w)
        centres = tf.stack([gx, gy], axis=-1)[:, :, None, :]  # (h, w, 1, 2)
        half = tf.constant(sizes[level] / 2.0, dtype=tf.float32)[None, None]  # (1, 1, K, 2)
        boxes = tf.concat([centres - half, centres + half], axis=-1)  # (h, w, K, 4)
        chunks.append(tf.reshape(boxes, [-1, 4]))
    return tf.concat(chunks, axis=0)


def tf_decode_boxes(deltas: tf.Tensor, anchors: tf.Tensor, variance) -> tf.Tensor:
    """(N, A, 4) deltas + (A, 4) xyxy anchors -> (N, A, 4) xyxy (inverse of encode)."""
    deltas = deltas * tf.constant(np.asarray(variance, np.float32))
    anchor_wh = anchors[:, 2:] - anchors[:, :2]
    anchor_c = anchors[:, :2] + 0.5 * anchor_wh
    centre = deltas[..., :2] * anchor_wh + anchor_c
    half = 0.5 * tf.exp(deltas[..., 2:]) * anchor_wh
    return tf.concat([centre - half, centre + half], axis=-1)


OUTPUT_ORDER = ("boxes", "scores", "P3", "P4", "P5", "P6", "P7")


def make_inference_function(model: keras.Model, config: ModelConfig):
    """A ``tf.function`` image -> (boxes, scores, P3..P7), the ONNX contract's outputs in
    :data:`OUTPUT_ORDER`. Input: (N, H, W, 3) float32 RGB 0..255, H and W dynamic; boxes
    are xyxy input pixels clipped to [0, W] x [0, H]."""

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="image")])
    def detect(image):
        box_deltas, class_logits, *pyramid = model(image, training=False)
        anchors = tf_anchors(pyramid, config.anchors)
        boxes = tf_decode_boxes(box_deltas, anchors, config.anchors.box_variance)
        # Clipped to the input, as every consumer clips to the image anyway: a P7 anchor
        # on a small input otherwise reaches ~900 px outside it, where float32 steps are
        # 6e-5 px and two runtimes' roundings differ by more than the parity bound.
        height_width = tf.cast(tf.shape(image)[1:3], tf.float32)
        limit = tf.tile(height_width[::-1], [2])  # (W, H, W, H)
        boxes = tf.minimum(tf.maximum(boxes, 0.0), limit)
        scores = tf.sigmoid(class_logits)
        return (boxes, scores, *pyramid)

    return detect
