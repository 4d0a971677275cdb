"""Fine-tune runs, the plain parts (no widgets): where a model's training run is, the output
folder, the `train` command line and its ``--progress-json`` records, the ETA, and the verdict
a finished run measured on its held-out images. :mod:`app.jobs.finetune` runs and shows them."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from app.jobs.coco_model import is_preset_source
from model.config import TRAINING_DEFAULTS

RUN_CONFIG_FILE = "model_config.json"  # model.tf.train's names (not importable here: no TensorFlow)
RUN_WEIGHTS_FILE = "model.weights.h5"
RUN_CHECKPOINTS = "checkpoints"
RUN_TRAIN_CONFIG = "train_config.json"
RUN_HISTORY = "history.jsonl"  # one record per finished epoch (with val_ap50 when validated)
RUN_INIT_EVAL = "init_eval.json"  # the starting weights on the run's held-out images
EXPORTED_MODEL = "model.onnx"
RUNS_FOLDER = ".retinanet-studio"


def is_run_folder(path: str | Path | None) -> bool:
    """Whether ``path`` is a training run folder with weights to start from."""
    if path is None or not str(path):
        return False
    folder = Path(path)
    return (folder / RUN_CONFIG_FILE).is_file() and (
        (folder / RUN_WEIGHTS_FILE).is_file() or (folder / RUN_CHECKPOINTS).is_dir()
    )


def find_source_run(model_path: str | Path, provenance: dict[str, Any] | None = None) -> Path | None:
    """The training run folder the model at ``model_path`` came from, or None: the
    provenance's ``"run"`` (if relative: to the model's folder, else to the working
    folder), else
    ``<stem>_run`` next to the model, else the model's own folder."""
    model = Path(model_path)
    candidates: list[Path] = []
    run = (provenance or {}).get("run")
    if isinstance(run, str) and run:  # `export --run` records it as typed: try both bases
        candidates += [Path(run)] if Path(run).is_absolute() else [model.parent / run, Path(run).absolute()]
    candidates += [model.with_name(f"{model.stem}_run"), model.parent]
    return next((c for c in candidates if is_run_folder(c)), None)


def default_output_folder(data: str | Path, now: datetime | None = None) -> Path:
    """``<data>/.retinanet-studio/finetune-YYYYmmdd-HHMMSS``: beside the images, hidden from
    image and label tools (the data loader lists only the folder's own files)."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    return Path(data) / RUNS_FOLDER / f"finetune-{stamp}"


def finished_epochs(run: str | Path) -> int | None:
    """How many epochs the run folder ``run`` has a checkpoint of (None: no checkpoint, so
    training into it starts afresh)."""
    folder = Path(run)
    if not (folder / RUN_CHECKPOINTS / "checkpoint").is_file():
        return None
    try:
        return sum(1 for line in (folder / RUN_HISTORY).read_text().splitlines() if line.strip())
    except OSError:
        return 0


def run_training_defaults(run: Path | None) -> dict[str, Any]:
    """The source run's training size and batch (its train_config.json), when readable."""
    if run is None:
        return {}
    try:
        config = json.loads((run / RUN_TRAIN_CONFIG).read_text())
    except (OSError, ValueError):
        return {}
    return {k: config[k] for k in ("size", "batch") if isinstance(config.get(k), int)}


@dataclass(frozen=True)
class FinetuneSettings:
    """What the dialog asks: ``data`` folder with labels in ``fmt``, the run ``out`` folder
    (an existing run resumes), the source run ``init_from``, and the schedule."""

    data: Path
    fmt: str
    out: Path
    init_from: Path
    epochs: int = TRAINING_DEFAULTS.fine_tune_epochs
    size: int = TRAINING_DEFAULTS.size
    batch: int = TRAINING_DEFAULTS.batch
    steps_per_epoch: int = 0  # 0: as many as the images need
    learning_rate: float = TRAINING_DEFAULTS.learning_rate  # the CLI's, one schedule for both
    labels: Path | None = None  # folder of the label files (None: next to the images)


def train_command(settings: FinetuneSettings) -> list[str]:
    """argv of the fine-tune process: ``python -m model.cli train … --progress-json``."""
    argv = [
        sys.executable, "-m", "model.cli", "train",
        "--data", str(settings.data),
        "--format", settings.fmt,
        "--out", str(settings.out),
        "--init-from-preset" if is_preset_source(settings.init_from) else "--init-from", str(settings.init_from),
        "--epochs", str(settings.epochs),
        "--size", str(settings.size),
        "--batch", str(settings.batch),
        "--lr", f"{settings.learning_rate:g}",
        "--backbone-weights", "none",  # the weights come from --init-from: never download
        "--progress-json",
    ]
    if settings.steps_per_epoch > 0:
        argv += ["--steps-per-epoch", str(settings.steps_per_epoch)]
    if settings.labels is not None:
        argv += ["--labels", str(settings.labels)]
    return argv


CommandBuilder = Callable[[FinetuneSettings], list[str]]


@dataclass(frozen=True)
class TrainProgress:
    """One ``--progress-json`` record."""

    step: int
    total: int
    epoch: int
    cls_loss: float
    box_loss: float
    val_ap50: float | None = None  # set on the record that ends an epoch with validation


def parse_progress_line(line: str | bytes) -> TrainProgress | None:
    """The step record on ``line``, or None for any other output."""
    try:
        data = json.loads(line)
        val_ap50 = data.get("val_ap50")
        return TrainProgress(
            int(data["step"]),
            int(data["total"]),
            int(data["epoch"]),
            float(data["cls_loss"]),
            float(data["box_loss"]),
            None if val_ap50 is None else float(val_ap50),
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def format_eta(seconds: float) -> str:
    """``"1 h 05 min"``, ``"4 min 10 s"`` or ``"35 s"``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


@dataclass(frozen=True)
class FinetuneVerdict:
    """What a finished fine-tune measured on its held-out images: its own AP50 and that of
    the weights it started from (None when it had no held-out images)."""

    val_ap50: float | None
    init_val_ap50: float | None

    @property
    def improved(self) -> bool | None:
        """Whether it beats its starting point on the held-out images (None: not measured)."""
        if self.val_ap50 is None or self.init_val_ap50 is None:
            return None
        return self.val_ap50 > self.init_val_ap50

    def describe(self) -> str:
        if self.val_ap50 is None:
            return "It had no held-out images, so it was not compared with the current model."
        if self.init_val_ap50 is None:
            return f"Validation AP50 on its held-out images: {self.val_ap50:.3f}."
        verb = "beats" if self.improved else "does not beat"
        return (
            f"Validation AP50 on its held-out images: {self.val_ap50:.3f}; the model it started from: "
            f"{self.init_val_ap50:.3f}. It {verb} the current model there."
        )


def read_verdict(run: Path) -> FinetuneVerdict:
    """What the trainer measured in the run folder ``run``: the last epoch's validation AP50
    (``history.jsonl``) and the starting weights' on the same images (``init_eval.json``)."""
    val_ap50 = init_val_ap50 = None
    try:
        for line in (run / RUN_HISTORY).read_text().splitlines():
            record = json.loads(line) if line.strip() else {}
            if isinstance(record.get("val_ap50"), (int, float)):
                val_ap50 = float(record["val_ap50"])
    except (OSError, ValueError, AttributeError):
        pass
    try:
        value = json.loads((run / RUN_INIT_EVAL).read_text()).get("val_ap50")
        init_val_ap50 = float(value) if isinstance(value, (int, float)) else None
    except (OSError, ValueError, AttributeError):
        pass
    return FinetuneVerdict(val_ap50, init_val_ap50)
