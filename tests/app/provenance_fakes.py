"""Shared builders for the tests of provenance, rejections and the quality dock on label
sets saved by the app: two training runs' ``model.onnx`` (same name, other bytes), what they
find on every image, blank images, and the window helpers for the dock."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from app.docks.quality_monitor import image_comparison, read_labels_with_provenance
from app.window.main_window import MainWindow
from model.postprocess import Detections
from model.quality import QualityReport, compare, keep_above, model_fingerprint
from tests.app.fakes import write_fake_model

NAMES = ("cat", "dog", "bird")
SIZE = (320, 240)  # (width, height) of the blank images
# what both runs find on every image (xyxy, original pixels): cat 0.9 (anchor 3), dog 0.6 (anchor 7)
CAT, DOG = (10.0, 10.0, 50.0, 50.0), (10.0, 100.0, 70.0, 160.0)
DETECTIONS = Detections(
    boxes=np.array([CAT, DOG], np.float32),
    scores=np.array([0.9, 0.6], np.float32),
    class_ids=np.array([0, 1], np.int64),
    anchor_ids=np.array([3, 7], np.int64),
    level_ids=np.array([0, 1], np.int64),
)


def write_two_runs(folder: Path) -> dict[str, Path]:
    """``run1/model.onnx`` and ``run2/model.onnx`` under ``folder``: same name, different
    contents (the fingerprint tells them apart, the file name does not)."""
    paths = {}
    for run in ("run1", "run2"):
        path = folder / run / "model.onnx"
        path.parent.mkdir()
        path.write_bytes(f"weights of {run}".encode())
        paths[run] = path
    return paths


def write_blank_image(folder: Path, name: str) -> Path:
    path = folder / name
    cv2.imwrite(str(path), np.zeros((SIZE[1], SIZE[0], 3), np.uint8))
    return path


def evaluate_saved(
    images: list[Path], model: Path | str, *, model_id: str | None = None, score_thresh: float = 0.5
) -> QualityReport:
    """The numbers of ``model`` (a path, or a bare file name for a model whose file is
    unknown; ``model_id`` overrides its fingerprint) on the saved labels of ``images``, with
    :data:`DETECTIONS` above ``score_thresh`` on every image, built as the quality dock
    builds them (app.docks.quality_monitor.image_comparison)."""
    model_name = Path(model).name
    if model_id is None:
        model_id = model_fingerprint(model) if isinstance(model, Path) else ""
    saved, errors = read_labels_with_provenance(images, "voc")
    assert errors == []
    shown = keep_above(DETECTIONS, score_thresh)
    comparisons = []
    for key, labels in saved.items():
        own = labels.model_output(model_name=model_name, model_id=model_id)
        rejected = labels.rejected_by_model(model_name=model_name, model_id=model_id)
        comparison, unknown = image_comparison(key, labels, shown, NAMES, model_output=own, rejected=rejected, size=0)
        assert unknown == 0
        comparisons.append(comparison)
    return compare(comparisons, class_names=NAMES)


# ------------------------------------------------------------------ the real window
# The fake model finds on an image with marker m, at score > 0.5: cat 0.90 (m, 10, m+40, 50)
# and dog 0.60 (m, 100, m+60, 160) (tests/app/fakes.py PLANTED).


def run_model(folder: Path, run: str) -> Path:
    """A fake ``<run>/model.onnx``: runs detect alike and differ in their bytes only."""
    (folder / run).mkdir()
    path = write_fake_model(folder / run / "model.onnx")
    path.write_text(path.read_text() + f"{run}\n")
    return path


def load_model(qtbot, window: MainWindow, path: Path) -> None:  # noqa: ANN001
    with qtbot.waitSignal(window.controller.model_loaded, timeout=10_000):
        window.open_model(path)


def detect_labelled(qtbot, window: MainWindow) -> None:  # noqa: ANN001
    """Run the loaded model on the labelled images it has not seen yet."""
    if window.quality.undetected_paths():
        with qtbot.waitSignal(window.controller.batch_finished, timeout=10_000):
            window.quality.detect_labelled()


def wait_for(qtbot, window: MainWindow, **expected: int) -> None:  # noqa: ANN001
    """Wait until the dock's report has these field values (e.g. num_images=2)."""

    def matches() -> bool:
        report = window.quality.report()
        return report is not None and all(getattr(report, name) == value for name, value in expected.items())

    qtbot.waitUntil(matches, timeout=5000)
