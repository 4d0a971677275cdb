"""app.session.Session on its own: no QApplication, no window. What each setter emits, that
the detections follow the candidates and the post-processor, and that the module is Qt-free."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.session import Session
from model.postprocess import PostProcessor, extract_candidates

ROOT = Path(__file__).resolve().parents[2]


def record(signal) -> list:  # noqa: ANN001
    seen: list = []
    signal.connect(lambda *args: seen.append(args[0] if len(args) == 1 else args))
    return seen


def candidates():  # noqa: ANN201
    """Two overlapping cats (0.9, 0.8: IoU 0.83) and a dog (0.3) on one image."""
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 12], [20, 20, 30, 30]], dtype=np.float32)
    scores = np.array([[0.9, 0.0], [0.8, 0.0], [0.0, 0.3]], dtype=np.float32)
    return extract_candidates(boxes, scores, topk_per_level=None)


def test_the_session_module_needs_no_qt() -> None:
    """Loaded on its own (the ``app`` package's __init__ applies a PySide6 fix, so it is
    bypassed here), the session pulls in no Qt module. Also enforced by an import contract."""
    code = (
        "import importlib.util, sys; "
        "spec = importlib.util.spec_from_file_location('session', 'app/session.py'); "
        "module = sys.modules['session'] = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
        "print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken6'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_detections_follow_candidates_and_post_processor() -> None:
    session = Session(post_processor=PostProcessor(score_thresh=0.5, iou_thresh=0.5))
    shown = record(session.detections_changed)
    changed = record(session.post_processor_changed)
    session.set_candidates(candidates(), size=640)
    assert session.detection_size == 640
    assert shown[-1] is session.detections and session.detections.scores.tolist() == pytest.approx([0.9])

    looser = session.post_processor.with_(iou_thresh=0.9, score_thresh=0.2)
    session.set_post_processor(looser)
    assert changed == [looser]
    assert session.detections.scores.tolist() == pytest.approx([0.9, 0.8, 0.3])
    assert len(shown) == 2 and session.last_select_ms >= 0.0

    session.set_post_processor(looser.with_())  # equal: nothing is emitted, nothing recomputed
    assert changed == [looser] and len(shown) == 2

    session.set_candidates(None)
    assert shown[-1] is None and session.detections is None and session.detection_size == 0
    session.set_candidates(None)
    assert len(shown) == 3  # already none: no second signal


def test_setters_emit_only_on_change() -> None:
    session = Session(label_format="voc")
    sizes = record(session.inference_size_changed)
    formats = record(session.label_format_changed)
    autosave = record(session.autosave_changed)
    current = record(session.current_changed)
    for _ in range(2):
        session.set_inference_size(512)
        session.set_label_format("yolo")
        session.set_autosave(True)
        session.set_current_path(Path("a.jpg"))
    assert (sizes, formats, autosave, current) == ([512], ["yolo"], [True], [Path("a.jpg")])
    assert session.label_format == "yolo" and session.autosave and session.inference_size == 512


def test_label_dirs_are_keyed_by_absolute_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    session = Session()
    seen = record(session.label_dirs_changed)
    session.set_label_dir("images", tmp_path / "labels")
    assert session.label_dir_for(tmp_path / "images") == tmp_path / "labels"
    assert seen == [{str(tmp_path / "images"): tmp_path / "labels"}]
    session.set_label_dir(tmp_path / "images", tmp_path / "labels")  # the same: no signal
    session.set_label_dir("images", None)
    assert session.label_dir_for("images") is None and seen[-1] == {} and len(seen) == 2


def test_image_list_and_folder() -> None:
    session = Session()
    opened = record(session.images_opened)
    assert session.image_folder() is None
    session.set_image_paths([Path("/data/a/1.jpg"), Path("/data/a/2.jpg")])
    assert opened == [[Path("/data/a/1.jpg"), Path("/data/a/2.jpg")]]
    assert session.image_folder() == Path("/data/a")
    session.set_current_path(Path("/data/b/3.jpg"))
    assert session.image_folder() == Path("/data/b")
    requested = record(session.open_model_requested)
    messages = record(session.message)
    session.request_model("m.onnx")
    session.show_message("hello", 100)
    assert requested == [Path("m.onnx")] and messages == [("hello", 100)]
