"""Worker pattern, detection cache and the detection controller (no window)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QThreadPool

from app.common.worker import JobCancelled, Worker
from app.jobs.detection import DetectionCache, DetectionController
from tests.app.fakes import FakeDetector, fake_backend, image_marker


# --------------------------------------------------------------------------- Worker
def test_worker_runs_off_the_gui_thread_and_reports_on_it(qtbot) -> None:
    gui_thread = threading.get_ident()
    seen: dict[str, int] = {}

    def job(a: int, b: int) -> int:
        seen["job"] = threading.get_ident()
        return a + b

    worker = Worker(job, 2, b=3)
    pool = QThreadPool()
    results: list[int] = []
    worker.signals.finished.connect(
        lambda value: (results.append(value), seen.setdefault("slot", threading.get_ident()))
    )
    with qtbot.waitSignal(worker.signals.finished, timeout=3000):
        pool.start(worker)
    assert results == [5]
    assert seen["job"] != gui_thread
    assert seen["slot"] == gui_thread


def test_worker_reports_exceptions_as_values(qtbot) -> None:
    def job() -> None:
        raise ValueError("bad input")

    worker = Worker(job)
    pool = QThreadPool()
    with qtbot.waitSignal(worker.signals.errored, timeout=3000) as blocker:
        pool.start(worker)
    assert isinstance(blocker.args[0], ValueError)
    assert str(blocker.args[0]) == "bad input"


def test_long_job_gets_progress_and_cancel(qtbot) -> None:
    started = threading.Event()
    release = threading.Event()

    def job(total: int, *, progress, cancelled) -> int:  # noqa: ANN001
        done = 0
        for done in range(1, total + 1):
            progress(done, total)
            if done == 2:
                started.set()
                release.wait(3)
            if cancelled():
                raise JobCancelled(f"stopped at {done}")
        return done

    worker = Worker(job, 10, long_job=True)
    steps: list[tuple[int, int]] = []
    worker.signals.progress.connect(lambda d, t: steps.append((d, t)))
    pool = QThreadPool()
    with qtbot.waitSignal(worker.signals.errored, timeout=3000) as blocker:
        pool.start(worker)
        assert started.wait(3)
        worker.cancel()
        release.set()
    assert isinstance(blocker.args[0], JobCancelled)
    qtbot.waitUntil(lambda: len(steps) == 2)
    assert steps == [(1, 10), (2, 10)]


# --------------------------------------------------------------------------- cache
def test_cache_is_lru_by_count() -> None:
    cache = DetectionCache(max_items=2)
    cache.put(("a", 320, "m"), "A", nbytes=1)
    cache.put(("b", 320, "m"), "B", nbytes=1)
    assert cache.get(("a", 320, "m")) == "A"  # a is now the most recent
    cache.put(("c", 320, "m"), "C", nbytes=1)
    assert ("b", 320, "m") not in cache
    assert cache.get(("a", 320, "m")) == "A" and cache.get(("c", 320, "m")) == "C"
    assert len(cache) == 2


def test_cache_is_bounded_by_memory_but_keeps_the_newest() -> None:
    cache = DetectionCache(max_items=32, max_bytes=100)
    cache.put(("a", 1, "m"), "A", nbytes=60)
    cache.put(("b", 1, "m"), "B", nbytes=60)
    assert ("a", 1, "m") not in cache and ("b", 1, "m") in cache
    cache.put(("c", 1, "m"), "C", nbytes=500)
    assert len(cache) == 1 and cache.get(("c", 1, "m")) == "C"


def test_cache_key_includes_size_and_model() -> None:
    cache = DetectionCache()
    cache.put(("img", 320, "m1"), "x", nbytes=1)
    assert cache.get(("img", 352, "m1")) is None
    assert cache.get(("img", 320, "m2")) is None


# --------------------------------------------------------------------------- controller
@pytest.fixture
def controller(qtbot, fake_model: Path):  # noqa: ANN001, ANN201
    controller = DetectionController(fake_backend())
    with qtbot.waitSignal(controller.model_loaded, timeout=3000):
        controller.load_model(fake_model)
    yield controller
    controller.shutdown()


def test_controller_decodes_then_detects_current_image(qtbot, controller, image_folder: Path) -> None:
    path = image_folder / "img_1.png"
    loaded: list[tuple] = []
    controller.image_loaded.connect(lambda *args: loaded.append(args))
    with qtbot.waitSignals([controller.image_loaded, controller.output_ready], timeout=3000):
        controller.open_image(path)
    [(loaded_path, qimage)] = loaded
    assert loaded_path == path and image_marker(qimage) == 60
    result = controller.current_result
    assert result.path == path and not result.cached
    assert result.key == (str(path), FakeDetector(str(path)).contract.default_size, controller.model_path)


def test_controller_drops_late_results_but_caches_them(qtbot, controller, image_folder: Path) -> None:
    controller.detector.delay_s = 0.2
    first, second = image_folder / "img_0.png", image_folder / "img_2.png"
    shown: list[Path] = []
    controller.output_ready.connect(lambda result: shown.append(result.path))
    detected: list[Path] = []
    controller.path_detected.connect(detected.append)
    with qtbot.waitSignal(controller.image_loaded, timeout=3000):
        controller.open_image(first)
    qtbot.waitUntil(lambda: controller.detector.run_count == 1)  # first run is in progress
    controller.open_image(second)
    qtbot.waitUntil(lambda: shown == [second] and not controller.is_busy(), timeout=5000)
    assert detected == [first, second]  # the late result was cached, not shown
    runs = controller.detector.run_count
    with qtbot.waitSignal(controller.output_ready, timeout=3000) as blocker:
        controller.open_image(first)
    assert blocker.args[0].cached and blocker.args[0].path == first
    assert controller.detector.run_count == runs


def test_inference_size_change_runs_again_once(qtbot, controller, image_folder: Path) -> None:
    with qtbot.waitSignal(controller.output_ready, timeout=3000):
        controller.open_image(image_folder / "img_0.png")
    with qtbot.waitSignal(controller.output_ready, timeout=3000) as blocker:
        controller.set_inference_size(320)
    assert blocker.args[0].key[1] == 320
    assert controller.detector.run_sizes == [256, 320]
    assert np.isclose(controller.current_output.scale, 320 / 320)


def test_manual_mode_waits_for_detect(qtbot, controller, image_folder: Path) -> None:
    controller.set_auto_detect(False)
    with qtbot.waitSignal(controller.image_loaded, timeout=3000):
        controller.open_image(image_folder / "img_0.png")
    assert controller.current_output is None and controller.detector.run_count == 0
    with qtbot.waitSignal(controller.output_ready, timeout=3000):
        controller.detect()
    assert controller.detector.run_count == 1


def test_unreadable_image_reports_failure(qtbot, controller, tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with qtbot.waitSignal(controller.image_failed, timeout=3000) as blocker:
        controller.open_image(broken)
    assert blocker.args[0] == broken
    assert str(broken) in str(blocker.args[1])
    assert controller.detector.run_count == 0


def test_batch_runs_fetch_only_candidates_and_a_shown_image_gets_its_pyramid_after(qtbot, controller, image_folder: Path) -> None:
    """Detect All (the quality dock) needs only the candidates: batch runs leave the pyramid
    and the dense outputs on the device. Opening such an image shows its boxes from the cache
    at once, then fetches what the layer viewer shows, once (``features_ready``, not a second
    ``output_ready``: the boxes stay as they are)."""
    paths = sorted(image_folder.glob("*.png"))
    with qtbot.waitSignal(controller.batch_finished, timeout=5000):
        assert controller.detect_batch(paths) == 3
    detector = controller.detector
    assert detector.run_features == [False, False, False]
    shown: list = []
    upgraded: list = []
    controller.output_ready.connect(shown.append)
    controller.features_ready.connect(upgraded.append)
    with qtbot.waitSignal(controller.features_ready, timeout=3000):
        controller.open_image(paths[1])
    [first] = shown
    assert first.cached and not first.has_features and first.output.scores is None
    [full] = upgraded
    assert full.has_features and full.output.pyramid and full.key == first.key
    np.testing.assert_array_equal(full.output.candidates.scores, first.output.candidates.scores)
    assert controller.current_result is full and detector.run_features == [False, False, False, True]
    with qtbot.waitSignal(controller.output_ready, timeout=3000) as blocker:  # elsewhere and back: all cached now
        controller.open_image(paths[0])
    qtbot.waitUntil(lambda: len(upgraded) == 2, timeout=3000)
    with qtbot.waitSignal(controller.output_ready, timeout=3000) as blocker:
        controller.open_image(paths[1])
    assert blocker.args[0].has_features and blocker.args[0].cached
    assert detector.run_features == [False, False, False, True, True] and len(upgraded) == 2


def test_the_shown_image_taken_from_a_running_batch_gets_its_pyramid_too(qtbot, controller, image_folder: Path) -> None:
    paths = sorted(image_folder.glob("*.png"))
    controller.detector.delay_s = 0.1
    with qtbot.waitSignal(controller.image_loaded, timeout=3000):
        controller.set_auto_detect(False)
        controller.open_image(paths[2])
    controller.detect_batch(paths)
    upgraded: list = []
    controller.features_ready.connect(upgraded.append)
    controller.detect()  # the batch's job for this image moves to the front; its result is shown
    qtbot.waitUntil(lambda: bool(upgraded), timeout=5000)
    assert upgraded[0].path == paths[2] and upgraded[0].has_features
    qtbot.waitUntil(lambda: not controller.batch_running(), timeout=5000)
    assert sorted(controller.detector.run_features) == [False, False, False, True]
