"""Training and fine-tuning: tf.data pipeline, focal loss, checkpoints, resume, validation
mAP per epoch, tf.distribute strategy selection, ONNX export at the end.

``train`` is a plain function taking ``progress(done, total, info)`` and ``cancelled()``
callbacks: the CLI drives it with tqdm, the app with a Qt worker.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from model.anchors import generate_anchors
from model.config import TRAINING_DEFAULTS, ModelConfig, compact_config, from_dict, to_dict
from model.encoding import encode_targets
from model.errors import DatasetError
from model.evaluate import EvalResult, Prediction, coco_evaluate, ground_truth
from model.imageio import load_image
from model.labels import ImageLabels, load_dataset
from model.letterbox import boxes_to_original, letterbox
from model.postprocess import EVALUATION, PostProcessor, extract_candidates

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
MODEL_CONFIG_FILE = "model_config.json"
TRAIN_CONFIG_FILE = "train_config.json"
HISTORY_FILE = "history.jsonl"
INIT_EVAL_FILE = "init_eval.json"  # a fine-tune's starting weights on its held-out images
ONNX_FILE = "model.onnx"
WEIGHTS_FILE = "model.weights.h5"


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; saved as train_config.json in the run folder."""

    data: str
    out: str
    fmt: str = "voc"
    labels: str | None = None  # folder of the label files (default: next to the images, or a sibling folder found)
    val_data: str | None = None
    val_fraction: float = TRAINING_DEFAULTS.val_fraction
    backbone: str = "resnet50"
    compact: bool = False
    backbone_weights: str | None = "imagenet"
    epochs: int = TRAINING_DEFAULTS.epochs
    batch: int = TRAINING_DEFAULTS.batch
    size: int = TRAINING_DEFAULTS.size
    learning_rate: float = TRAINING_DEFAULTS.learning_rate
    scale_jitter: tuple[float, float] = TRAINING_DEFAULTS.scale_jitter
    flip: bool = True
    seed: int = 0
    init_from: str | None = None  # a run folder; the new run keeps its architecture, adds classes
    # a keras-hub COCO preset (name or downloaded folder): its architecture, conventions and
    # weights; the class head keeps the columns of classes COCO has, the others start fresh
    init_from_preset: str | None = None
    strategy: str = "auto"
    steps_per_epoch: int | None = None
    export: bool = True
    command: str = ""


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    onnx_path: Path | None
    epochs_done: int
    history: list[dict]
    val: EvalResult | None


def choose_strategy(name: str = "auto"):
    """tf.distribute strategy: "default", "mirrored" (several GPUs on one host),
    "multi-worker" (hosts described by TF_CONFIG), or "auto" (decide from the machine)."""
    import tensorflow as tf

    if name == "auto":
        if os.environ.get("TF_CONFIG"):
            name = "multi-worker"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "default":
        return tf.distribute.get_strategy()
    raise ValueError(f"unknown strategy {name!r}: auto, default, mirrored or multi-worker")


def augment(
    image: np.ndarray, boxes: np.ndarray, classes: np.ndarray, *, size: int, rng: np.random.Generator,
    jitter: tuple[float, float], flip: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal flip + scale jitter onto a (size, size) canvas.

    The longest side becomes size * U(jitter); a larger image is randomly cropped, a
    smaller one placed at a random offset on black padding. Boxes (G, 4) xyxy in the
    pixels of ``image`` follow and come back in canvas pixels, clipped to the part of the
    canvas the image covers: a box is first clipped to the image (as
    :func:`model.evaluate.ground_truth` does), then to the canvas; it is dropped when the
    canvas keeps less than 40% of its in-image area (the crop took most of it), when a
    side is under 2 px, or when it has no area inside the image at all. Classes (G,)
    follow the boxes kept.
    """
    import cv2

    h, w = image.shape[:2]
    if flip and rng.random() < 0.5:
        image = image[:, ::-1]
        boxes = boxes.copy()
        boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
    scale = size * rng.uniform(*jitter) / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(np.ascontiguousarray(image), (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    ox = rng.integers(min(0, size - new_w), max(0, size - new_w) + 1)
    oy = rng.integers(min(0, size - new_h), max(0, size - new_h) + 1)
    canvas = np.zeros((size, size, 3), np.uint8)
    src_x0, src_y0 = max(0, -ox), max(0, -oy)
    dst_x0, dst_y0 = max(0, ox), max(0, oy)
    cw, ch = min(new_w - src_x0, size - dst_x0), min(new_h - src_y0, size - dst_y0)
    canvas[dst_y0 : dst_y0 + ch, dst_x0 : dst_x0 + cw] = resized[src_y0 : src_y0 + ch, src_x0 : src_x0 + cw]
    offset = np.array([ox, oy, ox, oy], np.float32)
    moved = boxes * scale + offset
    # The image's own rectangle, moved by the same arithmetic as the boxes, so that a box
    # inside the image stays exactly as it was.
    image_box = np.array([0, 0, w, h], np.float32) * scale + offset
    in_image = np.clip(moved, image_box[[0, 1, 0, 1]], image_box[[2, 3, 2, 3]])
    clipped = np.clip(in_image, 0, size)
    area = lambda b: np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)  # noqa: E731
    in_image_area = area(in_image)
    keep = (
        (in_image_area > 0)
        & (area(clipped) >= 0.4 * in_image_area)
        & ((clipped[:, 2:] - clipped[:, :2]) >= 2).all(1)
    )
    return canvas, clipped[keep], classes[keep]


def training_example(
    item: ImageLabels, image: np.ndarray, *, class_names: list[str], anchors: np.ndarray,
    variance: tuple[float, float, float, float], size: int, rng: np.random.Generator,
    jitter: tuple[float, float], flip: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training example of ``item`` and its decoded RGB ``image`` (H, W, 3) uint8:
    the augmented (size, size, 3) float32 canvas, box_targets (A, 4) float32 and
    class_targets (A,) int32 of :func:`model.encoding.encode_targets` on ``anchors``
    (A, 4) xyxy in canvas pixels.

    The labels are those evaluation counts (:func:`model.evaluate.ground_truth`: known
    classes, clipped to the image, none without area); :func:`augment` clips them to the
    image again once it has moved onto the canvas. A label entirely outside the image is no
    target, so the anchors there stay background.
    """
    boxes, classes = ground_truth(item, class_names=class_names)
    canvas, boxes, classes = augment(image, boxes, classes, size=size, rng=rng, jitter=jitter, flip=flip)
    box_targets, class_targets = encode_targets(boxes, classes, anchors, variance=variance)
    return canvas.astype(np.float32), box_targets, class_targets


class _Samples:
    """A Python generator of (image, box_targets, class_targets) for tf.data."""

    def __init__(self, items: list[ImageLabels], class_names: list[str], config: ModelConfig, train: TrainConfig, epoch_seed: int):
        self.items, self.class_names, self.config, self.train = items, class_names, config, train
        self.anchors = generate_anchors((train.size, train.size), config.anchors)
        self.rng = np.random.default_rng(epoch_seed)

    def __call__(self):
        order = self.rng.permutation(len(self.items))
        for i in order:
            item = self.items[i]
            yield training_example(
                item, load_image(item.image_path), class_names=self.class_names, anchors=self.anchors,
                variance=self.config.anchors.box_variance, size=self.train.size, rng=self.rng,
                jitter=self.train.scale_jitter, flip=self.train.flip,
            )


def predict_tf(detect, image: np.ndarray, *, size: int, post_processor: PostProcessor = EVALUATION) -> Prediction:
    """Detections of the TF inference function on one RGB image, through the same
    letterbox and post-processing as the ONNX runtime (``evaluate``'s settings by default)."""
    padded, _ = letterbox(image, size=size)
    boxes, scores, *_ = detect(padded[None].astype(np.float32))
    boxes = boxes_to_original(boxes[0].numpy(), image_hw=image.shape[:2], size=size)
    candidates = extract_candidates(boxes, scores[0].numpy(), floor=post_processor.score_thresh)
    dets = post_processor(candidates)
    return Prediction(dets.boxes, dets.scores, dets.class_ids)


def evaluate_tf(
    detect, items: list[ImageLabels], class_names: list[str], *, size: int, post_processor: PostProcessor = EVALUATION
) -> EvalResult:
    """COCO AP of the TF inference function on labelled ``items``, with the same ground
    truth and post-processing as ``model.evaluate.evaluate_detector``
    (:func:`model.evaluate.ground_truth`, :data:`model.postprocess.EVALUATION`)."""
    gts, gcs, preds, sizes = [], [], [], []
    for item in items:
        boxes, classes = ground_truth(item, class_names=class_names)
        gts.append(boxes)
        gcs.append(classes)
        preds.append(predict_tf(detect, load_image(item.image_path), size=size, post_processor=post_processor))
        sizes.append((item.width, item.height))
    return coco_evaluate(gts, gcs, preds, class_names=class_names, image_sizes=sizes)


def load_run_config(run_dir: Path) -> ModelConfig:
    return ModelConfig.from_json((run_dir / MODEL_CONFIG_FILE).read_text())


def transfer_weights(source, target, source_classes: list[str], target_classes: list[str], anchors_per_cell: int) -> int:
    """Copy weights layer by layer (matched by name and shape) from ``source`` to ``target``;
    the class head's output conv is copied per class name so new or reordered classes keep
    what was learned for the old ones. Returns the number of layers copied."""
    copied = 0
    src_layers = {layer.name: layer for layer in _all_layers(source)}
    for layer in _all_layers(target):
        src = src_layers.get(layer.name)
        if src is None or not layer.weights:
            continue
        src_w, dst_w = src.get_weights(), layer.get_weights()
        if [w.shape for w in src_w] == [w.shape for w in dst_w] and layer.name != "class_head_out":
            layer.set_weights(src_w)
            copied += 1
        elif layer.name == "class_head_out":
            kernel, bias = dst_w
            s_kernel, s_bias = src_w
            if s_kernel.shape[:-1] != kernel.shape[:-1]:
                log.warning("class head of the source has kernel %s, this one %s: not copied", s_kernel.shape, kernel.shape)
                continue
            n_src, n_dst = len(source_classes), len(target_classes)
            for k in range(anchors_per_cell):
                for c_dst, name in enumerate(target_classes):
                    if name in source_classes:
                        c_src = source_classes.index(name)
                        kernel[..., k * n_dst + c_dst] = s_kernel[..., k * n_src + c_src]
                        bias[k * n_dst + c_dst] = s_bias[k * n_src + c_src]
            layer.set_weights([kernel, bias])
            copied += 1
    return copied


def _all_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from layer.layers
        else:
            yield layer


def run_dir_of(path: str | Path) -> Path:
    """The training run folder of ``path`` (the folder itself, or a file inside it)."""
    path = Path(path)
    run_dir = path if path.is_dir() else path.parent
    if not (run_dir / MODEL_CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{path}: not a training run folder (no {MODEL_CONFIG_FILE})")
    return run_dir


def load_run_model(path: str | Path):
    """(Keras model, ModelConfig) of a training run: its final weights, else its latest
    checkpoint. Raises FileNotFoundError naming the folder when it has neither."""
    import tensorflow as tf

    from model.tf.network import build_retinanet

    run_dir = run_dir_of(path)
    config = load_run_config(run_dir)
    model = build_retinanet(config, backbone_weights=None)
    if (run_dir / WEIGHTS_FILE).is_file():
        model.load_weights(run_dir / WEIGHTS_FILE)
    else:
        latest = tf.train.latest_checkpoint(str(run_dir / CHECKPOINTS))
        if latest is None:
            raise FileNotFoundError(f"{run_dir}: no weights or checkpoint in this run folder")
        tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    return model, config


def _restore_init(init_from: str, model, class_names: list[str], anchors_per_cell: int) -> None:
    source, source_config = load_run_model(init_from)
    copied = transfer_weights(source, model, list(source_config.class_names), class_names, anchors_per_cell)
    log.info("initialised %d layers from %s", copied, init_from)


def split_items(items: list[ImageLabels], fraction: float, seed: int) -> tuple[list[ImageLabels], list[ImageLabels]]:
    if fraction <= 0 or len(items) < 2:
        return items, []
    order = np.random.default_rng(seed).permutation(len(items))
    n_val = max(1, int(round(len(items) * fraction)))
    return [items[i] for i in order[n_val:]], [items[i] for i in order[:n_val]]


def _class_names(dataset_classes: list[str], init_from: str | None) -> list[str]:
    names = list(load_run_config(run_dir_of(init_from)).class_names) if init_from else []
    return names + [n for n in dataset_classes if n not in names]


def is_chief(strategy) -> bool:
    """Whether this process writes the run folder (history, weights, export, checkpoints):
    always outside multi-worker training; there, the "chief" task, or worker 0 when the
    cluster has no chief (TensorFlow's convention)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if not task_type:
        return True
    if task_type == "chief":
        return True
    if task_type != "worker" or int(getattr(resolver, "task_id", 0) or 0) != 0:
        return False
    try:
        return "chief" not in resolver.cluster_spec().as_dict()
    except (AttributeError, ValueError):
        return True


def read_history(run_dir: Path, *, up_to_epoch: int | None = None) -> list[dict]:
    """The records of ``history.jsonl``, one per epoch (a later record of an epoch replaces
    an earlier one), in epoch order; epochs after ``up_to_epoch`` are left out."""
    path = Path(run_dir) / HISTORY_FILE
    if not path.is_file():
        return []
    by_epoch: dict[int, dict] = {}
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
            epoch = int(record["epoch"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a kill
        if up_to_epoch is None or epoch <= up_to_epoch:
            by_epoch[epoch] = record
    return [by_epoch[e] for e in sorted(by_epoch)]


def _write_history(run_dir: Path, history: list[dict]) -> None:
    from model.labels import atomic_write_bytes

    atomic_write_bytes(Path(run_dir) / HISTORY_FILE, "".join(json.dumps(r) + "\n" for r in history).encode())


def _model_config(cfg: TrainConfig, class_names: list[str], preset_detector=None) -> ModelConfig:
    """The network of a new run. Fine-tuning keeps the architecture of the run it starts
    from (backbone, pyramid, heads, anchors) so that its weights fit; only the classes
    (the union) and the default size change. From a preset, the preset's architecture and
    conventions with the dataset's classes."""
    if preset_detector is not None:
        from model.tf.presets import preset_model_config

        return preset_model_config(preset_detector, class_names=tuple(class_names), default_size=cfg.size)
    if cfg.compact:
        fresh = replace(compact_config(tuple(class_names), default_size=cfg.size), backbone=cfg.backbone)
    else:
        fresh = ModelConfig(class_names=tuple(class_names), backbone=cfg.backbone, default_size=cfg.size)
    if not cfg.init_from:
        return fresh
    inherited = replace(load_run_config(run_dir_of(cfg.init_from)), class_names=fresh.class_names, default_size=fresh.default_size)
    if inherited != fresh:
        log.info("fine-tuning keeps the architecture of %s (backbone %s, %d pyramid channels)",
                 cfg.init_from, inherited.backbone, inherited.pyramid_channels)
    return inherited


def train(
    cfg: TrainConfig,
    *,
    progress: Callable[[int, int, dict], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    epoch_done: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train (or resume, or fine-tune) a RetinaNet; see TrainConfig. ``progress(step, total,
    info)`` is called once per step, ``epoch_done(record)`` once per finished epoch with its
    history record (losses, seconds, and ``val_ap``/``val_ap50`` when validated).

    A run folder that already holds a checkpoint resumes from its last saved epoch (its
    saved model config wins over ``cfg``'s network settings). ``cfg.init_from`` starts a
    new run from another run's weights, with the union of both runs' classes.
    """
    import keras
    import tensorflow as tf

    from model.tf.backbones import resolve_weights
    from model.tf.losses import retinanet_loss
    from model.tf.network import build_retinanet, make_inference_function

    # Multi-worker training wants its strategy before any other TensorFlow work.
    strategy = choose_strategy(cfg.strategy)
    chief = is_chief(strategy)
    replicas = strategy.num_replicas_in_sync

    run_dir = Path(cfg.out)
    resumed = (run_dir / MODEL_CONFIG_FILE).is_file() and tf.train.latest_checkpoint(str(run_dir / CHECKPOINTS)) is not None
    # Fail on a mistyped weights file before anything is written.
    backbone_weights = None if cfg.init_from or resumed else resolve_weights(cfg.backbone_weights, cfg.backbone)
    if cfg.init_from and cfg.init_from_preset:
        raise ValueError("fine-tune from a run folder or from a preset, not both")
    if cfg.init_from and not resumed:
        run_dir_of(cfg.init_from)  # FileNotFoundError naming the folder
    preset_detector = None
    if cfg.init_from_preset and not resumed:
        from model.tf.presets import load_detector

        preset_detector = load_detector(cfg.init_from_preset)  # PresetUnavailable offline
        backbone_weights = None
    dataset = load_dataset(cfg.data, cfg.fmt, labels_dir=cfg.labels)
    for error in dataset.errors:
        log.warning("skipped: %s", error)
    items = [it for it in dataset.items if it.labels]
    if not items:
        why = dataset.missing_note or f"{dataset.label_files} label files, none with a box"
        raise DatasetError(cfg.data, f"no labelled images found (format {cfg.fmt}): {why}")
    log.info("%s: %d label files", dataset.labels_note, dataset.label_files)
    if cfg.val_data:
        val_items = load_dataset(cfg.val_data, cfg.fmt).items
        train_items = items
    else:
        train_items, val_items = split_items(items, cfg.val_fraction, cfg.seed)

    if chief:
        run_dir.mkdir(parents=True, exist_ok=True)
    if resumed:
        config = load_run_config(run_dir)
        unknown = sorted(set(dataset.class_names) - set(config.class_names))
        if unknown:
            log.warning("resuming %s: its classes do not include %s; those labels are ignored", run_dir, unknown)
    else:
        config = _model_config(cfg, _class_names(dataset.class_names, cfg.init_from), preset_detector)
        if chief:
            (run_dir / MODEL_CONFIG_FILE).write_text(config.to_json())
            (run_dir / TRAIN_CONFIG_FILE).write_text(json.dumps(to_dict(cfg), indent=2))
    class_names = list(config.class_names)

    keras.utils.set_random_seed(cfg.seed)  # Keras' initialisers, not only TensorFlow's ops
    steps_per_epoch = cfg.steps_per_epoch or max(1, len(train_items) // cfg.batch)
    total_steps = steps_per_epoch * cfg.epochs
    with strategy.scope():
        model = build_retinanet(config, backbone_weights=backbone_weights)
        schedule = tf.keras.optimizers.schedules.CosineDecay(
            cfg.learning_rate * 0.1, total_steps, warmup_target=cfg.learning_rate, warmup_steps=min(200, total_steps // 10)
        ) if hasattr(tf.keras.optimizers.schedules, "CosineDecay") else cfg.learning_rate
        optimizer = tf.keras.optimizers.Adam(schedule, clipnorm=10.0)
        optimizer.build(model.trainable_variables)
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_var)
    # Every worker saves (saving is collective), but only the chief into the run folder.
    worker_dir = None if chief else Path(tempfile.mkdtemp(prefix="retinanet_worker_"))
    manager = tf.train.CheckpointManager(checkpoint, str(worker_dir or run_dir / CHECKPOINTS), max_to_keep=2)
    history: list[dict] = []
    if resumed:
        latest = tf.train.latest_checkpoint(str(run_dir / CHECKPOINTS))
        checkpoint.restore(latest).expect_partial()
        log.info("resuming %s from epoch %d", run_dir, int(epoch_var.numpy()))
        print(f"resuming from epoch {int(epoch_var.numpy())} ({latest})", file=sys.stderr)
        # Epochs after the checkpoint (a kill between writing history and saving) are redone.
        history = read_history(run_dir, up_to_epoch=int(epoch_var.numpy()))
        if chief:
            _write_history(run_dir, history)
    elif cfg.init_from:
        _restore_init(cfg.init_from, model, class_names, config.anchors.anchors_per_cell)
    elif preset_detector is not None:
        from model.tf.presets import copy_preset_weights

        copy_preset_weights(preset_detector, model, config)
        log.info("initialised from preset %s", cfg.init_from_preset)

    num_anchors = generate_anchors((cfg.size, cfg.size), config.anchors).shape[0]
    signature = (
        tf.TensorSpec((cfg.size, cfg.size, 3), tf.float32),
        tf.TensorSpec((num_anchors, 4), tf.float32),
        tf.TensorSpec((num_anchors,), tf.int32),
    )

    @tf.function
    def train_step(images, box_t, cls_t):
        def step(images, box_t, cls_t):
            with tf.GradientTape() as tape:
                box_deltas, class_logits, *_ = model(images, training=True)
                cls_loss, box_loss = retinanet_loss(box_t, cls_t, box_deltas, class_logits)
                loss = (cls_loss + box_loss) / replicas
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return cls_loss, box_loss

        cls_loss, box_loss = strategy.run(step, args=(images, box_t, cls_t))
        return (strategy.reduce("MEAN", cls_loss, axis=None), strategy.reduce("MEAN", box_loss, axis=None))

    detect = make_inference_function(model, config)
    val_result: EvalResult | None = None
    start_epoch = int(epoch_var.numpy())
    step = start_epoch * steps_per_epoch
    init_eval = _init_evaluation(run_dir, detect, val_items, class_names, cfg, chief=chief, resumed=resumed)
    try:
        for epoch in range(start_epoch, cfg.epochs):
            samples = _Samples(train_items, class_names, config, cfg, epoch_seed=cfg.seed * 1000 + epoch)
            ds = (
                tf.data.Dataset.from_generator(samples, output_signature=signature)
                .repeat()
                .batch(cfg.batch * replicas, drop_remainder=True)
                .take(steps_per_epoch)
                .prefetch(2)
            )
            t0 = time.perf_counter()
            sums = np.zeros(2)
            try:
                for i, batch in enumerate(strategy.experimental_distribute_dataset(ds)):
                    cls_loss, box_loss = train_step(*batch)
                    sums += (float(cls_loss), float(box_loss))
                    step += 1
                    if progress:
                        progress(step, total_steps, {"epoch": epoch + 1, "cls_loss": sums[0] / (i + 1), "box_loss": sums[1] / (i + 1)})
                    if cancelled and cancelled():
                        manager.save()
                        return TrainResult(run_dir, None, epoch, history, val_result)
            except KeyboardInterrupt:
                # Ctrl+C mid-epoch: keep the weights trained so far; the same command resumes
                # (the interrupted epoch is run again from this checkpoint).
                saved = manager.save()
                print(f"interrupted in epoch {epoch + 1}: checkpoint saved ({saved}); run the same command to resume", file=sys.stderr)
                raise
            epoch_var.assign(epoch + 1)
            record = {"epoch": epoch + 1, "cls_loss": sums[0] / steps_per_epoch, "box_loss": sums[1] / steps_per_epoch, "seconds": time.perf_counter() - t0}
            if val_items and chief:
                val_result = evaluate_tf(detect, val_items, class_names, size=cfg.size)
                record.update(val_ap=val_result.ap, val_ap50=val_result.ap50)
            history.append(record)
            if epoch_done:
                epoch_done(dict(record))
            if chief:
                with open(run_dir / HISTORY_FILE, "a") as fh:
                    fh.write(json.dumps(record) + "\n")
            manager.save()
            log.info("epoch %d: %s", epoch + 1, record)
            print(json.dumps(record), file=sys.stderr)
    finally:
        if worker_dir is not None:
            shutil.rmtree(worker_dir, ignore_errors=True)

    if not chief:
        return TrainResult(run_dir, None, cfg.epochs, history, val_result)
    model.save_weights(run_dir / WEIGHTS_FILE)
    onnx_path = None
    if cfg.export:
        from model.tf.export import export_onnx

        provenance = {
            "data": str(cfg.data),
            "epochs": cfg.epochs,
            "images": len(train_items),
            "command": cfg.command,
            "size": cfg.size,
        }
        if cfg.init_from:
            provenance["init_from"] = str(cfg.init_from)
        if cfg.init_from_preset:
            provenance["init_from_preset"] = str(cfg.init_from_preset)
        if val_result is not None:
            provenance.update(val_ap=round(val_result.ap, 4), val_ap50=round(val_result.ap50, 4))
        if init_eval is not None:  # the starting weights on the same held-out images
            provenance.update(init_val_ap=round(init_eval["val_ap"], 4), init_val_ap50=round(init_eval["val_ap50"], 4))
        onnx_path = run_dir / ONNX_FILE
        export_onnx(model, config, onnx_path, provenance=provenance)
    return TrainResult(run_dir, onnx_path, cfg.epochs, history, val_result)


def _init_evaluation(
    run_dir: Path, detect, val_items: list[ImageLabels], class_names: list[str], cfg: TrainConfig, *, chief: bool, resumed: bool
) -> dict | None:
    """A fine-tune's starting point on its held-out images, ``{"val_ap", "val_ap50"}``: measured
    before the first step (and kept in the run folder for a resumed run), so that the result
    can be compared with the model it started from on the same images. None when training
    from scratch or without validation images."""
    path = run_dir / INIT_EVAL_FILE
    if resumed:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None
    if not (cfg.init_from or cfg.init_from_preset) or not val_items or not chief:
        return None
    result = evaluate_tf(detect, val_items, class_names, size=cfg.size)
    record = {"val_ap": result.ap, "val_ap50": result.ap50, "images": len(val_items)}
    path.write_text(json.dumps(record))
    print(json.dumps({"init_" + k: v for k, v in record.items()}), file=sys.stderr)
    return record


def train_config_from_dict(data: dict) -> TrainConfig:
    return from_dict(TrainConfig, data)
