"""COCO-pretrained RetinaNet presets from keras-hub, as RetinaNet Studio networks.

keras-hub ports torchvision's COCO RetinaNets (``retinanet_resnet50_fpn_coco``,
``retinanet_resnet50_fpn_v2_coco``). Their conventions differ from the seed design's, and
each is a field of :class:`model.config.ModelConfig` / :class:`model.config.AnchorConfig`,
so the preset runs in this project's one network (model.tf.network) with its weights
mapped in, exports through the one exporter, and fine-tunes with the one trainer:

- preprocessing: ImageNet mean/std (backbone ``keras_hub_resnet`` -> "imagenet" mode);
- backbone: keras-hub's ResNetBackbone (torchvision layout);
- P6 from the smoothed P5 (v1, ``p6_source="p5"``) or from C5 (v2, ``"c5"``);
- heads: GroupNorm(32) after each conv in v2 (``head_norm="group"``);
- anchors: centres at i * stride (``centre_offset=0``), torchvision's integer sizes, ratios
  stated as height / width (so keras-hub's [0.5, 1, 2] are (2, 1, 0.5) here, width / height);
- box decoding: center-xywh deltas with variance [1, 1, 1, 1];
- classes: a 91-way head indexed by COCO category id (0 = background, "N/A" at the 11 ids
  COCO leaves out); the 80 real classes are picked out of it, in COCO id order.

``load_detector`` is the only place that may download (keras-hub's ``from_preset``, from
Kaggle); offline it raises :class:`PresetUnavailable` with the command to run on a
connected machine.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from model.config import AnchorConfig, ModelConfig
from model.errors import StudioError

log = logging.getLogger(__name__)

PRESETS = ("retinanet_resnet50_fpn_coco", "retinanet_resnet50_fpn_v2_coco")
PRESET_DEFAULT_SIZE = 800  # the presets were trained and ported at 800 x 800

# torchvision's COCO_V1 categories: the list index is the COCO category id.
COCO_91 = (
    "__background__", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "N/A", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse",
    "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "N/A", "backpack", "umbrella", "N/A",
    "N/A", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat",
    "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle", "N/A", "wine glass", "cup", "fork", "knife",
    "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza",
    "donut", "cake", "chair", "couch", "potted plant", "bed", "N/A", "dining table", "N/A", "N/A",
    "toilet", "N/A", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven",
    "toaster", "sink", "refrigerator", "N/A", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
)  # fmt: skip
COCO_CATEGORY_IDS = tuple(i for i, name in enumerate(COCO_91) if name not in ("__background__", "N/A"))
COCO_CLASSES = tuple(COCO_91[i] for i in COCO_CATEGORY_IDS)


class PresetUnavailable(StudioError):
    """A preset's weights are neither on this machine nor downloadable from here."""


def kaggle_handle(name: str) -> str:
    """The Kaggle model handle keras-hub downloads preset ``name`` from (as the installed
    keras-hub registers it, e.g. ``keras/retinanet/keras/retinanet_resnet50_fpn_coco/4``)."""
    from keras_hub.src.models.retinanet.retinanet_presets import backbone_presets

    if name not in backbone_presets:
        raise PresetUnavailable(name, f"unknown preset; choose from {', '.join(PRESETS)}")
    return backbone_presets[name]["kaggle_handle"].removeprefix("kaggle://")


def download_command(name: str) -> str:
    """A command that downloads preset ``name`` on a connected machine and prints its folder."""
    return f"python -c \"import kagglehub; print(kagglehub.model_download('{kaggle_handle(name)}'))\""


def offline_message(name: str, reason: str = "") -> str:
    """What to do when preset ``name`` cannot be downloaded here (one line)."""
    why = f" ({reason})" if reason else ""
    return (
        f"the COCO weights are not on this machine and cannot be downloaded from here{why}. "
        f"They are the Kaggle model {kaggle_handle(name)}: on a connected machine run "
        f"{download_command(name)}, copy the folder it prints to this machine, then run "
        f"retinanet-studio export --preset-dir FOLDER --out coco.onnx (or train ... --init-from-preset FOLDER)"
    )


def load_detector(source: str | Path):
    """The keras-hub RetinaNet of ``source``: a preset name (downloaded by keras-hub, or
    taken from its cache) or a preset folder downloaded elsewhere (config.json,
    model.weights.h5, ...). Raises PresetUnavailable (offline, unknown name) or StudioError
    (a folder that is not a preset)."""
    import keras_hub

    text = str(source)
    folder = Path(text).expanduser()
    if text in PRESETS:
        kaggle_handle(text)  # PresetUnavailable for a name this keras-hub does not know
        try:
            return keras_hub.models.ImageObjectDetector.from_preset(text)
        except OSError as exc:  # requests' ConnectionError, socket errors, Kaggle's 403/404 as FileNotFoundError
            raise PresetUnavailable(text, offline_message(text, type(exc).__name__)) from exc
        except (ValueError, KeyError, TypeError) as exc:  # a download that kagglehub or keras-hub refused
            raise PresetUnavailable(text, f"cannot load this preset ({type(exc).__name__}: {str(exc)[:200]})") from exc
    if not folder.exists():
        raise PresetUnavailable(text, f"neither a preset folder nor a preset name ({', '.join(PRESETS)})")
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise StudioError(folder, "not a keras-hub preset folder (no config.json)")
    if not (folder / "model.weights.h5").is_file() and not (folder / "model.weights.json").is_file():  # one file, or shards
        raise StudioError(folder, "preset folder without model.weights.h5 (download incomplete?)")
    try:
        return keras_hub.models.ImageObjectDetector.from_preset(str(folder))
    except (ValueError, KeyError, OSError, TypeError) as exc:
        raise StudioError(folder, f"cannot load this preset ({type(exc).__name__}: {str(exc)[:200]})") from exc


def _class_mapping(num_classes: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(class names, head index of each) for a keras-hub head with ``num_classes`` outputs."""
    if num_classes == len(COCO_91):
        return COCO_CLASSES, COCO_CATEGORY_IDS
    if num_classes == len(COCO_CLASSES):
        return COCO_CLASSES, tuple(range(num_classes))
    log.warning("a %d-class head is not COCO's: classes are named class_0..class_%d", num_classes, num_classes - 1)
    return tuple(f"class_{i}" for i in range(num_classes)), tuple(range(num_classes))


def _check_preprocessing(detector) -> None:
    """The preset's image converter must be the ImageNet normalisation the network builds."""
    from model.tf.network import IMAGENET_MEAN, IMAGENET_STD

    converter = getattr(getattr(detector, "preprocessor", None), "image_converter", None)
    if converter is None or converter.scale is None:
        log.warning("preset without an image converter: assuming ImageNet mean/std preprocessing")
        return
    scale = np.broadcast_to(np.asarray(converter.scale, np.float64), (3,))
    offset = np.broadcast_to(np.asarray(converter.offset if converter.offset is not None else 0.0, np.float64), (3,))
    want_scale = np.asarray([1.0 / 255.0 / s for s in IMAGENET_STD])
    want_offset = np.asarray([-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])
    if not (np.allclose(scale, want_scale, rtol=1e-5) and np.allclose(offset, want_offset, atol=1e-5)):
        raise ValueError(f"preset preprocessing scale={scale.tolist()} offset={offset.tolist()} is not ImageNet mean/std")


def preset_model_config(detector, *, class_names: tuple[str, ...] | None = None, default_size: int = PRESET_DEFAULT_SIZE) -> ModelConfig:
    """The ModelConfig that reproduces keras-hub RetinaNet ``detector`` (its conventions as
    fields). ``class_names`` default to the preset's (the 80 COCO classes)."""
    backbone = detector.backbone
    encoder = backbone.image_encoder
    if type(encoder).__name__ != "ResNetBackbone":
        raise ValueError(f"only ResNet image encoders are supported, this preset has {type(encoder).__name__}")
    if (backbone.min_level, backbone.max_level) != (3, 7):
        raise ValueError(f"the network builds P3..P7; this preset has P{backbone.min_level}..P{backbone.max_level}")
    _check_preprocessing(detector)
    encoder_config = encoder.get_config()
    spec_keys = ("input_conv_filters", "input_conv_kernel_sizes", "stackwise_num_filters", "stackwise_num_blocks",
                 "stackwise_num_strides", "block_type", "use_pre_activation")  # fmt: skip
    spec = {key: encoder_config[key] for key in spec_keys}
    generator = detector.anchor_generator
    levels = range(backbone.min_level, backbone.max_level + 1)
    anchors = AnchorConfig(
        strides=tuple(2**level for level in levels),
        areas=tuple(float(2**level * generator.anchor_size) ** 2 for level in levels),
        aspect_ratios=tuple(1.0 / float(r) for r in generator.aspect_ratios),  # h / w there, w / h here
        scales=tuple(2 ** (s / generator.num_scales) for s in range(generator.num_scales)),
        box_variance=tuple(float(v) for v in detector.label_encoder.box_variance),
        centre_offset=0.0,
        integer_sizes=True,
    )
    names, _ = _class_mapping(detector.num_classes)
    return ModelConfig(
        class_names=tuple(class_names or names),
        backbone="keras_hub_resnet",
        backbone_spec=json.dumps(spec, sort_keys=True),
        pyramid_channels=backbone.feature_pyramid.num_filters,
        head_convs=detector.pre_logits_num_conv_layers,
        head_channels=detector.box_head.num_filters,
        anchors=anchors,
        default_size=default_size,
        p6_source="c5" if backbone.use_p5 else "p5",  # keras-hub's use_p5 feeds the backbone's P5, i.e. C5
        head_norm="group" if detector.use_prediction_head_norm else "none",
    )


def _set(layer, weights: list[np.ndarray], what: str) -> None:
    current = layer.get_weights()
    if [w.shape for w in current] != [w.shape for w in weights]:
        raise ValueError(f"{what}: shapes {[w.shape for w in weights]} do not fit {layer.name} {[w.shape for w in current]}")
    layer.set_weights(weights)


def copy_preset_weights(detector, model, config: ModelConfig) -> None:
    """Map the weights of keras-hub ``detector`` into ``model`` (build_retinanet of
    ``preset_model_config(detector)``, whose classes may be any list): backbone, FPN and box
    head as they are; the class head takes the preset's columns of the classes it knows by
    name (all 80 for the COCO export) and keeps its fresh ones for the others."""
    encoder = detector.backbone.image_encoder
    features = model.get_layer("keras_hub_resnet")
    for layer in features.layers:
        if layer.weights:
            _set(layer, encoder.get_layer(layer.name).get_weights(), f"backbone {layer.name}")
    fpn = detector.backbone.feature_pyramid
    for level in (3, 4, 5):
        _set(model.get_layer(f"fpn_lateral{level}"), fpn.lateral_conv_layers[f"P{level}"].get_weights(), f"FPN lateral P{level}")
        _set(model.get_layer(f"P{level}"), fpn.output_conv_layers[f"P{level}"].get_weights(), f"FPN output P{level}")
    for level in (6, 7):
        _set(model.get_layer(f"P{level}"), fpn.output_conv_layers[f"P{level}"].get_weights(), f"FPN P{level}")
    k = config.anchors.anchors_per_cell
    for ours, theirs in (("box_head", detector.box_head), ("class_head", detector.classification_head)):
        head = model.get_layer(ours)
        for i, conv in enumerate(theirs.conv_layers):
            _set(head.get_layer(f"{ours}_conv{i}"), conv.get_weights(), f"{ours} conv {i}")
        for i, norm in enumerate(theirs.group_norm_layers):
            _set(head.get_layer(f"{ours}_gn{i}"), norm.get_weights(), f"{ours} norm {i}")
        kernel, bias = theirs.prediction_layer.get_weights()
        if ours == "class_head":
            kernel, bias = _class_columns(kernel, bias, head.get_layer(f"{ours}_out").get_weights(), detector.num_classes, config, k)
        _set(head.get_layer(f"{ours}_out"), [kernel, bias], f"{ours} output")


def _class_columns(kernel, bias, current, num_preset_classes: int, config: ModelConfig, k: int):
    """The class head's output conv for ``config.class_names``: (..., K * C_preset) ->
    (..., K * C), anchor major and class minor in both. A class the preset knows (by name)
    takes the preset's column; any other keeps ``current``'s (fresh) one."""
    names, head_ids = _class_mapping(num_preset_classes)
    new_kernel, new_bias = (np.array(w) for w in current)
    n = len(config.class_names)
    for j, name in enumerate(config.class_names):
        if name in names:
            for a in range(k):
                new_kernel[..., a * n + j] = kernel[..., a * num_preset_classes + head_ids[names.index(name)]]
                new_bias[a * n + j] = bias[a * num_preset_classes + head_ids[names.index(name)]]
    return new_kernel, new_bias


def studio_model_from_detector(detector, *, default_size: int = PRESET_DEFAULT_SIZE):
    """(Keras model, ModelConfig): keras-hub ``detector`` as this project's network, with
    the 80 COCO classes (or the preset's own) and its weights."""
    from model.tf.network import build_retinanet

    config = preset_model_config(detector, default_size=default_size)
    model = build_retinanet(config, backbone_weights=None)
    copy_preset_weights(detector, model, config)
    return model, config


def preset_provenance(source: str | Path, config: ModelConfig, *, command: str = "") -> dict:
    """What the exported model says about where it came from and the conventions it uses."""
    provenance = {
        "weights": f"keras-hub preset {Path(str(source)).name} (COCO 2017, ported from torchvision)",
        "preset": str(source),
        "conventions": (
            "anchor centres at i*stride, torchvision integer anchor sizes, box variance [1,1,1,1] "
            f"(center-xywh deltas), ImageNet mean/std preprocessing, P6 from {config.p6_source.upper()}, "
            f"head norm {config.head_norm}; anchor strides assume inputs padded to a multiple of 128, as the runtime does"
        ),
        "command": command,
    }
    if Path(str(source)).is_dir():
        provenance["preset_folder"] = str(Path(str(source)).resolve())
    return provenance


def load_preset_model(source: str | Path, *, default_size: int = PRESET_DEFAULT_SIZE, command: str = ""):
    """(Keras model, ModelConfig, provenance) of preset ``source`` (a name or a folder)."""
    detector = load_detector(source)
    model, config = studio_model_from_detector(detector, default_size=default_size)
    return model, config, preset_provenance(source, config, command=command)


def export_preset(source: str | Path, out_path: str | Path, *, default_size: int = PRESET_DEFAULT_SIZE, command: str = ""):
    """Load preset ``source`` (name or folder) and write it as a contract ONNX model;
    returns (ONNX proto, ModelConfig)."""
    from model.tf.export import export_onnx

    model, config, provenance = load_preset_model(source, default_size=default_size, command=command)
    return export_onnx(model, config, out_path, provenance=provenance), config
