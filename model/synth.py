"""Synthetic detection scenes: filled shapes on cluttered backgrounds, with exact labels.

The *shape* decides the class (circle, square, triangle, star, cross); colour, size, aspect
ratio, rotation and position vary freely. Later objects are drawn over earlier ones; an object
that ends up more than ``max_hidden`` hidden (occluded or outside the image) loses its label.
Every box is the tight bound of the object's visible pixels, xyxy in image pixels (pixel ``i``
covers ``[i, i + 1)``), clipped to the image.

Background clutter is deliberately *not* object-like: gradients, low-frequency texture, thin
lines and curves, faint translucent blobs and gaussian noise. Objects are crisp, filled and
saturated, so a small detector trained from scratch can learn them.

Everything is deterministic for a given ``numpy.random.Generator`` state (cv2 is only used to
rasterise, never for randomness). A 512x512 scene takes a few milliseconds.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from model.labels.annotation import ImageLabels, Label

CLASS_NAMES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")

# Rasterisation uses fixed-point coordinates with this many fractional bits (cv2 ``shift``).
_SHIFT = 4
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class SceneConfig:
    """How scenes are drawn. Sizes are in pixels; fractions are of the shorter image side."""

    min_objects: int = 1
    max_objects: int = 8
    min_object_size: float = 16.0
    max_object_frac: float = 0.8
    max_aspect: float = 1.7  # width/height of an object's frame varies in [1/max_aspect, max_aspect]
    max_rotation_deg: float = 30.0
    max_hidden: float = 0.7  # objects hidden more than this lose their label
    min_box_side: int = 4  # visible boxes thinner than this lose their label
    max_noise_sigma: float = 8.0
    blur_probability: float = 0.25

    def __post_init__(self) -> None:
        if not 0 <= self.min_objects <= self.max_objects <= 254:  # the owner map is uint8
            raise ValueError(f"need 0 <= min_objects <= max_objects <= 254, got {self.min_objects}, {self.max_objects}")
        if not (self.min_object_size >= 1.0 and 0.0 < self.max_object_frac <= 1.0):
            raise ValueError("need min_object_size >= 1 and 0 < max_object_frac <= 1")
        if self.max_aspect < 1.0 or not 0.0 <= self.max_hidden <= 1.0 or self.min_box_side < 1:
            raise ValueError("need max_aspect >= 1, 0 <= max_hidden <= 1 and min_box_side >= 1")


DEFAULT_SCENE_CONFIG = SceneConfig()


# --- shapes: unit polygons centred on (0, 0), roughly radius 1 -------------------------------


def _circle() -> np.ndarray:
    t = np.linspace(0.0, 2.0 * np.pi, 64, endpoint=False)
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def _square() -> np.ndarray:
    s = 0.85
    return np.array([[-s, -s], [s, -s], [s, s], [-s, s]], dtype=np.float64)


def _triangle() -> np.ndarray:
    t = np.deg2rad(np.array([-90.0, 30.0, 150.0]))
    pts = np.stack([np.cos(t), np.sin(t)], axis=1)
    pts[:, 1] += 0.25  # centre the bounding box vertically
    return pts


def _star() -> np.ndarray:
    t = np.deg2rad(-90.0 + 36.0 * np.arange(10))
    r = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def _cross() -> np.ndarray:
    a, b = 0.32, 1.0
    return np.array(
        [[-a, -b], [a, -b], [a, -a], [b, -a], [b, a], [a, a], [a, b], [-a, b], [-a, a], [-b, a], [-b, -a], [-a, -a]],
        dtype=np.float64,
    )


_UNIT_SHAPES: dict[str, np.ndarray] = {
    "circle": _circle(),
    "square": _square(),
    "triangle": _triangle(),
    "star": _star(),
    "cross": _cross(),
}


def shape_polygon(
    name: str, *, center: tuple[float, float], size: float, aspect: float, angle_deg: float
) -> np.ndarray:
    """(P, 2) float64 polygon (x, y image pixels) of shape ``name``.

    ``size`` is the frame's diameter before the aspect stretch; ``aspect`` = frame width/height.
    """
    unit = _UNIT_SHAPES[name]
    half = size / 2.0
    sx, sy = half * math.sqrt(aspect), half / math.sqrt(aspect)
    theta = math.radians(angle_deg)
    c, s = math.cos(theta), math.sin(theta)
    x = unit[:, 0] * sx
    y = unit[:, 1] * sy
    return np.stack([c * x - s * y + center[0], s * x + c * y + center[1]], axis=1)


# --- colours ----------------------------------------------------------------------------------


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """h in [0, 1), s and v in [0, 1] -> (3,) float RGB in [0, 255]."""
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array(rgb, dtype=np.float64) * 255.0


def _object_colour(rng: np.random.Generator, background_mean: np.ndarray) -> tuple[int, int, int]:
    """A saturated colour far enough from the local background mean (RGB distance)."""
    best, best_dist = None, -1.0
    for _ in range(12):
        if rng.random() < 0.12:  # now and then a near-black or near-white object
            v = rng.uniform(0.0, 0.15) if rng.random() < 0.5 else rng.uniform(0.9, 1.0)
            rgb = _hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.15), v)
        else:
            rgb = _hsv_to_rgb(rng.random(), rng.uniform(0.55, 1.0), rng.uniform(0.5, 1.0))
        dist = float(np.linalg.norm(rgb - background_mean))
        if dist > best_dist:
            best, best_dist = rgb, dist
        if dist >= 110.0:
            break
    assert best is not None
    return tuple(round(float(c)) for c in best)  # type: ignore[return-value]


# --- background -------------------------------------------------------------------------------


def _background(rng: np.random.Generator, *, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB: gradient + low-frequency texture + thin lines + faint blobs."""
    c0 = _hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.35), rng.uniform(0.2, 0.9))
    c1 = _hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.35), rng.uniform(0.2, 0.9))
    theta = rng.uniform(0.0, 2.0 * np.pi)
    # Gradient along direction theta, built from a small grid and resized (cheap).
    gh, gw = 8, 8
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32)
    t = (xx / (gw - 1) - 0.5) * math.cos(theta) + (yy / (gh - 1) - 0.5) * math.sin(theta)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    grid = (1.0 - t)[..., None] * c0[None, None, :] + t[..., None] * c1[None, None, :]
    # Low-frequency texture (a few blotches of brightness).
    texture_amp = rng.uniform(0.0, 35.0)
    grid += rng.uniform(-texture_amp, texture_amp, size=(gh, gw, 1))
    grid = np.clip(grid, 0, 255).astype(np.uint8)
    img = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)  # uint8: saturates

    # Faint translucent blobs (ellipses), blended once.
    n_blobs = int(rng.integers(0, 10))
    if n_blobs:
        overlay = img.copy()
        for _ in range(n_blobs):
            colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
            center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            axes = (int(rng.integers(8, max(9, width // 3))), int(rng.integers(8, max(9, height // 3))))
            cv2.ellipse(overlay, center, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
        alpha = float(rng.uniform(0.08, 0.22))
        img = cv2.addWeighted(overlay, alpha, img, 1.0 - alpha, 0.0)

    # Thin straight lines and wiggly curves.
    for _ in range(int(rng.integers(0, 25))):
        colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
        thickness = int(rng.integers(1, 3))
        if rng.random() < 0.5:
            p0 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.line(img, p0, p1, colour, thickness, cv2.LINE_AA)
        else:
            n = int(rng.integers(4, 12))
            steps = rng.normal(0.0, max(width, height) / 12.0, size=(n, 2))
            start = np.array([rng.uniform(0, width), rng.uniform(0, height)])
            pts = np.cumsum(np.vstack([start, steps]), axis=0)
            cv2.polylines(img, [np.round(pts).astype(np.int32)], False, colour, thickness, cv2.LINE_AA)
    return img


# --- scenes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Placed:
    name: str
    polygon: np.ndarray  # (P, 2) float64 image pixels
    area: float  # polygon area in pixels, inside or outside the image


def _place_object(rng: np.random.Generator, name: str, *, width: int, height: int, config: SceneConfig) -> _Placed:
    short = min(width, height)
    lo = config.min_object_size
    hi = max(lo + 1.0, config.max_object_frac * short)
    size = float(np.exp(rng.uniform(math.log(lo), math.log(hi))))
    aspect = float(np.exp(rng.uniform(-math.log(config.max_aspect), math.log(config.max_aspect))))
    angle = float(rng.uniform(-config.max_rotation_deg, config.max_rotation_deg))
    center = (float(rng.uniform(0, width)), float(rng.uniform(0, height)))
    poly = shape_polygon(name, center=center, size=size, aspect=aspect, angle_deg=angle)
    area = float(cv2.contourArea(poly.astype(np.float32)))
    return _Placed(name=name, polygon=poly, area=area)


def _draw_objects(
    rng: np.random.Generator,
    canvas: np.ndarray,
    owner: np.ndarray,
    *,
    class_names: Sequence[str],
    config: SceneConfig,
) -> list[_Placed]:
    """Draw 1..N objects onto ``canvas`` (H, W, 3) in place, later over earlier; ``owner``
    (H, W) uint8 records which object (index + 1) each pixel shows, 0 for background."""
    height, width = owner.shape
    background = canvas.copy()  # object colours are chosen against the clean background
    drawn: list[_Placed] = []
    n_objects = int(rng.integers(config.min_objects, config.max_objects + 1))
    for i in range(n_objects):
        name = class_names[int(rng.integers(0, len(class_names)))]
        placed = _place_object(rng, name, width=width, height=height, config=config)
        pts = np.round(placed.polygon * _ONE).astype(np.int32)
        x0, y0, bw, bh = cv2.boundingRect(placed.polygon.astype(np.float32))
        xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + bw, width), min(y0 + bh, height)
        local_mean = np.array(cv2.mean(background[ya:yb, xa:xb])[:3]) if xb > xa and yb > ya else np.full(3, 128.0)
        colour = _object_colour(rng, local_mean)
        # Image and owner map are rasterised identically (no anti-aliasing), so each box is
        # exactly the bound of the pixels that show the object.
        cv2.fillPoly(canvas, [pts], colour, cv2.LINE_8, _SHIFT)
        cv2.fillPoly(owner, [pts], i + 1, cv2.LINE_8, _SHIFT)
        if rng.random() < 0.3:  # a darker outline, part of the object
            outline = tuple(int(c * 0.45) for c in colour)
            thickness = int(rng.integers(1, 3))
            cv2.polylines(canvas, [pts], True, outline, thickness, cv2.LINE_8, _SHIFT)
            cv2.polylines(owner, [pts], True, i + 1, thickness, cv2.LINE_8, _SHIFT)
        drawn.append(placed)
    return drawn


def _visible_labels(drawn: Sequence[_Placed], owner: np.ndarray, *, config: SceneConfig) -> list[Label]:
    """Labels (xyxy, image pixels) of the objects still visible enough in ``owner``."""
    height, width = owner.shape
    labels: list[Label] = []
    for i, placed in enumerate(drawn):
        x0, y0, bw, bh = cv2.boundingRect(placed.polygon.astype(np.float32))
        xa, ya = max(x0 - 2, 0), max(y0 - 2, 0)  # 2 px margin: the outline reaches past the polygon
        xb, yb = min(x0 + bw + 2, width), min(y0 + bh + 2, height)
        if xb <= xa or yb <= ya:
            continue
        mask = (owner[ya:yb, xa:xb] == i + 1).astype(np.uint8)
        visible = int(cv2.countNonZero(mask))
        if visible == 0 or visible < (1.0 - config.max_hidden) * max(placed.area, 1.0):
            continue  # occluded by later objects and/or outside the image
        mx, my, mw, mh = cv2.boundingRect(mask)
        if mw < config.min_box_side or mh < config.min_box_side:
            continue
        px1, py1 = placed.polygon.min(axis=0)
        px2, py2 = placed.polygon.max(axis=0)
        truncated = bool(px1 < 0 or py1 < 0 or px2 > width or py2 > height)
        x1, y1 = float(xa + mx), float(ya + my)
        labels.append(Label(x1, y1, x1 + mw, y1 + mh, placed.name, truncated=truncated))
    return labels


def _degrade(rng: np.random.Generator, image: np.ndarray, *, config: SceneConfig) -> np.ndarray:
    """Optional 3x3 blur, then gaussian luminance noise; (H, W, 3) uint8 in and out."""
    if rng.random() < config.blur_probability:
        image = cv2.GaussianBlur(image, (3, 3), 0)
    sigma = float(rng.uniform(0.0, config.max_noise_sigma))
    if sigma > 0.5:
        noise = rng.standard_normal(image.shape[:2], dtype=np.float32)
        noise *= sigma
        image = cv2.add(image, cv2.merge([noise, noise, noise]), dtype=cv2.CV_8U)  # saturating
    return image


def generate_scene(
    rng: np.random.Generator,
    *,
    width: int,
    height: int,
    class_names: Sequence[str] = CLASS_NAMES,
    config: SceneConfig = DEFAULT_SCENE_CONFIG,
) -> tuple[np.ndarray, list[Label]]:
    """Draw one scene.

    Returns ``(image, labels)``: image is (H, W, 3) uint8 RGB; labels are xyxy boxes in image
    pixels (tight bounds of each object's visible pixels, clipped to the image), in drawing
    order, with ``truncated`` set for objects cut by the image border. ``class_names`` must be
    a subset of :data:`CLASS_NAMES` (the shape is the class).
    """
    if width < 8 or height < 8:
        raise ValueError(f"scene must be at least 8x8 pixels, got {width}x{height}")
    unknown = [n for n in class_names if n not in _UNIT_SHAPES]
    if unknown or not class_names:
        raise ValueError(f"unknown shape classes {unknown}; choose from {CLASS_NAMES}")
    canvas = _background(rng, width=width, height=height)
    owner = np.zeros((height, width), dtype=np.uint8)
    drawn = _draw_objects(rng, canvas, owner, class_names=class_names, config=config)
    labels = _visible_labels(drawn, owner, config=config)
    return _degrade(rng, canvas, config=config), labels


# --- datasets ---------------------------------------------------------------------------------


def _scene_rng(seed: int, index: int) -> np.random.Generator:
    """Image ``index`` of a dataset depends only on (seed, index), not on the count."""
    return np.random.default_rng([int(seed), int(index)])


def write_dataset(
    out_dir: str | Path,
    *,
    count: int,
    seed: int,
    fmt: str = "voc",
    min_side: int = 320,
    max_side: int = 512,
    class_names: Sequence[str] = CLASS_NAMES,
    config: SceneConfig = DEFAULT_SCENE_CONFIG,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> list[ImageLabels]:
    """Write ``count`` scenes as ``out_dir/00000.jpg ...`` with labels in ``fmt``.

    voc: ``00000.xml`` next to each image; yolo: ``00000.txt`` next to each image plus
    ``classes.txt``; coco: ``out_dir/annotations.json``. Each image side is drawn from
    ``[min_side, max_side]``; JPEG quality varies in [60, 98]. Returns the written items
    (absolute image paths, xyxy boxes in image pixels). Stops early if ``cancelled()``.
    """
    from model.labels.dataset import CLASSES_FILE_NAME, save_dataset
    from model.labels.registry import get_format
    from model.labels.yolo import write_classes_txt

    get_format(fmt)  # an unknown format is refused before anything is drawn
    if count < 0:
        raise ValueError("count must be >= 0")
    if not 8 <= min_side <= max_side:
        raise ValueError(f"need 8 <= min_side <= max_side, got {min_side}, {max_side}")
    out = Path(out_dir).absolute()
    out.mkdir(parents=True, exist_ok=True)
    items: list[ImageLabels] = []
    digits = max(5, len(str(max(count - 1, 0))))
    for index in range(count):
        if cancelled is not None and cancelled():
            break
        rng = _scene_rng(seed, index)
        width = int(rng.integers(min_side, max_side + 1))
        height = int(rng.integers(min_side, max_side + 1))
        image, labels = generate_scene(rng, width=width, height=height, class_names=class_names, config=config)
        quality = int(rng.integers(60, 99))
        path = out / f"{index:0{digits}d}.jpg"
        ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:  # pragma: no cover - cv2 always encodes a valid uint8 image
            raise RuntimeError(f"could not encode {path}")
        path.write_bytes(encoded.tobytes())
        items.append(ImageLabels(image_path=str(path), width=width, height=height, depth=3, labels=labels))
        if progress is not None:
            progress(index + 1, count)
    save_dataset(items, out, fmt, class_names=list(class_names))
    if not get_format(fmt).stores_class_names:  # VOC has none; classes.txt keeps the class order for training
        write_classes_txt(out / CLASSES_FILE_NAME, list(class_names))
    return items


# --- CLI --------------------------------------------------------------------------------------


def add_synth_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``retinanet-studio synth``."""
    from model.labels.registry import format_names

    parser.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    parser.add_argument("--count", type=int, default=1000, help="number of images (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same dataset")
    parser.add_argument("--format", dest="format", choices=format_names(), default=format_names()[0])
    parser.add_argument("--min-side", type=int, default=320, help="smallest image side in pixels")
    parser.add_argument("--max-side", type=int, default=512, help="largest image side in pixels")


def cli_synth(args: argparse.Namespace) -> int:
    """Run ``retinanet-studio synth``: write a synthetic dataset with a tqdm progress bar."""
    from tqdm import tqdm

    from model.errors import StudioError

    with tqdm(total=args.count, unit="img", desc="synth") as bar:

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        try:
            items = write_dataset(
                args.out,
                count=args.count,
                seed=args.seed,
                fmt=args.format,
                min_side=args.min_side,
                max_side=args.max_side,
                progress=progress,
            )
        except (StudioError, ValueError) as exc:  # ValueError: bad --count/--min-side/--max-side
            bar.close()
            print(f"error: {exc}", file=sys.stderr)
            return 2
    n_labels = sum(len(item.labels) for item in items)
    print(f"wrote {len(items)} images with {n_labels} labels ({args.format}) to {Path(args.out).absolute()}")
    return 0
