"""Frozen configuration dataclasses, serialised from their fields (never by hand)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (possibly nested) config dataclass."""
    return dataclasses.asdict(config)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build ``cls`` from :func:`to_dict` output (lists become tuples again). Unknown keys
    are an error so that a stale or foreign file does not pass silently."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass(frozen=True)
class AnchorConfig:
    """Anchors as in RetinaNet: one anchor area per pyramid level, 3 ratios x 3 scales.

    ``areas[i]`` is the base anchor area of ``strides[i]``'s level; ratios are width/height (as in the Keras RetinaNet example).
    """

    strides: tuple[int, ...] = (8, 16, 32, 64, 128)
    areas: tuple[float, ...] = (32.0**2, 64.0**2, 128.0**2, 256.0**2, 512.0**2)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    scales: tuple[float, ...] = (2**0, 2 ** (1 / 3), 2 ** (2 / 3))
    box_variance: tuple[float, float, float, float] = (0.1, 0.1, 0.2, 0.2)
    # Conventions of models ported from elsewhere (keras-hub / torchvision presets):
    # cell (row, col) is centred at ((col + centre_offset) * stride, (row + centre_offset) * stride);
    # integer_sizes: the side of each scale is int(sqrt(area) * scale) and half-extents are
    # rounded to whole pixels (torchvision's AnchorGenerator).
    centre_offset: float = 0.5
    integer_sizes: bool = False

    @property
    def anchors_per_cell(self) -> int:
        return len(self.aspect_ratios) * len(self.scales)

    @property
    def level_names(self) -> tuple[str, ...]:
        return tuple(f"P{int(round(math.log2(s)))}" for s in self.strides)


@dataclass(frozen=True)
class ModelConfig:
    """The network: backbone, pyramid width and heads.

    ``pyramid_channels`` is F in the contract (256 for the standard RetinaNet); a compact
    model may use fewer. ``head_convs`` is the depth of the shared class/box heads.
    """

    class_names: tuple[str, ...] = ("object",)
    backbone: str = "resnet50"
    pyramid_channels: int = 256
    head_convs: int = 4
    head_channels: int = 256
    anchors: AnchorConfig = field(default_factory=AnchorConfig)
    default_size: int = 512
    prior_probability: float = 0.01
    # "c5": P6 = conv3x3/2(C5) (the seed design); "p5": from the smoothed P5 (torchvision v1).
    p6_source: str = "c5"
    # "none", or "group": GroupNorm(32) after every head conv, which then has no bias.
    head_norm: str = "none"
    # backbone "keras_hub_resnet": JSON of keras_hub.models.ResNetBackbone's architecture
    # arguments ("" = ResNet-50 as in the COCO presets).
    backbone_spec: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_json(self) -> str:
        return json.dumps(to_dict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        data = json.loads(text)
        data["anchors"] = from_dict(AnchorConfig, data.get("anchors", {}))
        return from_dict(cls, data)


# The compact preset used for the bundled demo model and fast tests: a small backbone,
# a 64-channel pyramid and 2-conv heads keep a 512² image well under 0.1 s on a CPU.
def compact_config(class_names: tuple[str, ...], *, default_size: int = 384) -> ModelConfig:
    return ModelConfig(
        class_names=class_names,
        backbone="tiny",
        pyramid_channels=64,
        head_convs=2,
        head_channels=64,
        anchors=AnchorConfig(areas=(24.0**2, 48.0**2, 96.0**2, 192.0**2, 384.0**2)),
        default_size=default_size,
    )


@dataclass(frozen=True)
class TrainingDefaults:
    """The one set of training defaults, shared by ``retinanet-studio train`` and the app's
    *Fine-tune on Saved Labels…* (which cannot import the TensorFlow side).

    ``learning_rate`` is the peak of the schedule (Adam; linear warm-up from a tenth of it
    over the first 10% of steps, at most 200, then cosine decay to 0). 1e-3 is the rate that
    learned in one fine-tuning epoch on a 200-image LabelImg set (val AP50 0.39), where 1e-4
    learned nothing in the same epoch; the warm-up keeps a fine-tune from wrecking the
    pretrained weights in its first steps. Small sets get box-aware random flips and scale
    jitter (``scale_jitter``) as augmentation.
    """

    epochs: int = 20
    fine_tune_epochs: int = 5
    batch: int = 8
    size: int = 512
    learning_rate: float = 1e-3
    val_fraction: float = 0.1
    scale_jitter: tuple[float, float] = (0.7, 1.2)


TRAINING_DEFAULTS = TrainingDefaults()
