"""Detection off the GUI thread: the detection cache, and the controller that loads models,
decodes images and runs the network without ever blocking the GUI thread (through
:class:`app.common.worker.Worker`).

* :class:`DetectionCache` keeps recent network outputs per (image path, size, model path).
* :class:`DetectionController` tags every job with a request id and drops late results, so
  switching images faster than detection finishes never shows stale boxes. It also runs
  the network over a list of images in the background (:meth:`~DetectionController.detect_batch`),
  behind the shown image's detection.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal
from PySide6.QtGui import QImage

from app.common.colors import rgb_to_qimage
from app.common.worker import JobCancelled, Worker

CacheKey = tuple[str, int, str]  # (image path, inference size, model path)


# --------------------------------------------------------------------------------------
# Inference backend (what the app needs from model/); tests pass fakes
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InferenceBackend:
    """The model-side functions the app calls, gathered so tests can substitute fakes.

    load_detector(path) -> Detector (raises ModelContractError); load_image(path) -> (H, W, 3)
    uint8 RGB (raises ImageReadError); list_images(folder) -> list[Path]. Post-processing
    is not here: it is the session's :class:`model.postprocess.PostProcessor`.
    """

    load_detector: Callable[[str], Any]
    load_image: Callable[[Path], np.ndarray]
    list_images: Callable[[Path], list[Path]]
    image_extensions: Sequence[str]


def default_backend() -> InferenceBackend:
    """The real backend: onnxruntime Detector, model.imageio."""
    from model.imageio import IMAGE_EXTENSIONS, list_images, load_image
    from model.runtime import Detector

    return InferenceBackend(
        # no busy-waiting onnxruntime threads: the cores go back to the GUI after a run
        load_detector=partial(Detector.load, spin=False),
        load_image=load_image,
        list_images=list_images,
        image_extensions=tuple(IMAGE_EXTENSIONS),
    )


# --------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------
def output_nbytes(output: Any) -> int:
    """Approximate memory held by a NetworkOutput (its big arrays)."""
    total = 0
    for name in ("boxes", "scores"):
        array = getattr(output, name, None)
        total += int(getattr(array, "nbytes", 0))
    for array in (getattr(output, "pyramid", None) or {}).values():
        total += int(getattr(array, "nbytes", 0))
    return total


class DetectionCache:
    """LRU of detection results keyed by (image path, inference size, model path), bounded
    by a count and by memory (an 80-class R50 output at 640 px is ~35 MB)."""

    def __init__(self, max_items: int = 32, max_bytes: int = 768 * 2**20) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: OrderedDict[CacheKey, tuple[Any, int]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: CacheKey) -> Any | None:
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: CacheKey, value: Any, nbytes: int | None = None) -> None:
        if key in self._items:
            self._bytes -= self._items.pop(key)[1]
        size = output_nbytes(getattr(value, "output", value)) if nbytes is None else nbytes
        self._items[key] = (value, size)
        self._bytes += size
        while self._items and (len(self._items) > self.max_items or self._bytes > self.max_bytes):
            if len(self._items) == 1:
                break  # always keep the newest, however big
            _, (_, dropped) = self._items.popitem(last=False)
            self._bytes -= dropped

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0


# --------------------------------------------------------------------------------------
# Jobs (plain functions, run on pool threads)
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadedImage:
    path: Path
    array: np.ndarray  # (H, W, 3) uint8 RGB, EXIF orientation applied
    qimage: QImage  # an independent copy of the pixels


@dataclass(frozen=True)
class DetectionResult:
    path: Path
    key: CacheKey
    output: Any  # NetworkOutput
    latency_ms: float  # wall time of the network job (decode excluded)
    cached: bool = False

    @property
    def has_features(self) -> bool:
        """Whether the output holds what the layer viewer shows (the pyramid and the dense
        outputs). Batch runs fetch only the candidates, which is all the quality dock needs:
        on a GPU the rest is ~35 MB per image to copy at 640 px with 80 classes."""
        return bool(getattr(self.output, "pyramid", None))


def load_image_job(load_image: Callable[[Path], np.ndarray], path: Path) -> LoadedImage:
    array = np.ascontiguousarray(load_image(path))
    return LoadedImage(path=path, array=array, qimage=rgb_to_qimage(array))


def detect_job(detector: Any, array: np.ndarray, size: int, path: Path, key: CacheKey, features: bool = True) -> DetectionResult:
    start = time.perf_counter()
    output = detector.run(array, size=size, features=features)
    latency_ms = (time.perf_counter() - start) * 1000.0
    return DetectionResult(path=path, key=key, output=output, latency_ms=latency_ms)


def decode_detect_job(
    load_image: Callable[[Path], np.ndarray], detector: Any, size: int, path: Path, key: CacheKey
) -> DetectionResult:
    """Decode ``path`` and run the network on it, fetching only the candidates (a batch job:
    nothing is shown; should the image be shown, :class:`DetectionController` fetches its
    pyramid then)."""
    return detect_job(detector, np.ascontiguousarray(load_image(path)), size, path, key, features=False)


@dataclass(frozen=True)
class BatchSummary:
    """How a :meth:`DetectionController.detect_batch` ended: ``done`` of ``total`` images
    ran (``failed`` of them with an error, listed in ``errors`` as (path, exception))."""

    total: int
    done: int
    failed: int
    cancelled: bool
    errors: tuple[tuple[Path, BaseException], ...] = ()


# --------------------------------------------------------------------------------------
# Controller
# --------------------------------------------------------------------------------------
class DetectionController(QObject):
    """Holds the detector, the current image and its network output; does all the slow
    work (model load, decode, inference) on thread pools. Views observe its signals.

    Only the current request's image reaches ``image_loaded``, and only a network output
    whose (path, size, model) key is the current one reaches ``output_ready`` (after that
    image is decoded); late results for images the user has left are cached
    (``path_detected``) and never shown.
    """

    model_loaded = Signal(object)  # the new Detector
    model_failed = Signal(str, object)  # model path, exception (the previous model stays)
    image_loaded = Signal(object, object)  # Path, QImage
    image_failed = Signal(object, object)  # Path, exception
    output_ready = Signal(object)  # DetectionResult for the current image
    features_ready = Signal(object)  # DetectionResult: the current image's output again, now with its pyramid
    output_cleared = Signal()
    path_detected = Signal(object)  # Path: any image whose output is now cached
    result_cached = Signal(object)  # DetectionResult: every new network output (batch too)
    batch_progress = Signal(int, int)  # done, total
    batch_finished = Signal(object)  # BatchSummary
    detection_failed = Signal(object, object)  # Path, exception
    busy_changed = Signal(bool)

    def __init__(
        self, backend: InferenceBackend, *, cache: DetectionCache | None = None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._backend = backend
        self._cache = cache or DetectionCache()
        self._io_pool = QThreadPool(self)
        self._io_pool.setMaxThreadCount(2)
        self._inference_pool = QThreadPool(self)
        self._inference_pool.setMaxThreadCount(1)  # one network run at a time
        self._detector: Any = None
        self._model_path: str | None = None
        self._model_loading: Worker | None = None
        self._request_id = 0
        self._path: Path | None = None
        self._array: np.ndarray | None = None
        self._result: DetectionResult | None = None
        self._size: int | None = None
        self._auto_detect = True
        self._image_job: Worker | None = None
        self._detections: dict[CacheKey, Worker] = {}
        self._jobs: set[Worker] = set()  # strong references to every job in flight
        self._busy = 0
        self._batch: dict[CacheKey, Worker] = {}  # queued or running batch jobs
        self._batch_total = 0
        self._batch_done = 0
        self._batch_errors: list[tuple[Path, BaseException]] = []
        self._batch_cancelled = False

    # --- state ---------------------------------------------------------------------
    @property
    def backend(self) -> InferenceBackend:
        return self._backend

    @property
    def detector(self) -> Any:
        return self._detector

    @property
    def model_path(self) -> str | None:
        return self._model_path

    @property
    def current_path(self) -> Path | None:
        return self._path

    @property
    def current_result(self) -> DetectionResult | None:
        return self._result

    @property
    def current_output(self) -> Any:
        return self._result.output if self._result is not None else None

    @property
    def cache(self) -> DetectionCache:
        return self._cache

    @property
    def inference_size(self) -> int | None:
        if self._size is not None:
            return self._size
        return self._detector.contract.default_size if self._detector is not None else None

    @property
    def auto_detect(self) -> bool:
        return self._auto_detect

    def is_busy(self) -> bool:
        return self._busy > 0

    def has_image(self) -> bool:
        return self._array is not None

    # --- model ---------------------------------------------------------------------
    def load_model(self, path: str | Path) -> None:
        """Load a model in the background; ``model_loaded`` or ``model_failed`` follows."""
        path = str(path)
        worker = Worker(self._backend.load_detector, path)
        self._model_loading = worker
        worker.signals.finished.connect(partial(self._on_model_loaded, worker, path))
        worker.signals.errored.connect(partial(self._on_model_failed, worker, path))
        self._start(self._inference_pool, worker)

    def set_detector(self, detector: Any, path: str | Path) -> None:
        """Install an already loaded detector (what a finished load does)."""
        self._detector = detector
        self._model_path = str(path)
        self._size = None
        self._clear_result()
        self.model_loaded.emit(detector)
        if self._auto_detect:
            self.detect()

    def _on_model_loaded(self, worker: Worker, path: str, detector: Any) -> None:
        self._finish(worker)
        if worker is self._model_loading:
            self._model_loading = None
        self.set_detector(detector, path)

    def _on_model_failed(self, worker: Worker, path: str, error: BaseException) -> None:
        self._finish(worker)
        if worker is self._model_loading:
            self._model_loading = None
        self.model_failed.emit(path, error)

    # --- images --------------------------------------------------------------------
    def open_image(self, path: str | Path) -> None:
        """Make ``path`` the current image: decode it off the GUI thread, then detect
        (when auto-detect is on). Queued jobs for the previous image are withdrawn."""
        path = Path(path)
        self._request_id += 1
        self._path = path
        self._array = None
        self._clear_result()
        if self._image_job is not None and self._io_pool.tryTake(self._image_job):
            self._finish(self._image_job)
        self._withdraw_detections(keep=None)
        worker = Worker(load_image_job, self._backend.load_image, path)
        self._image_job = worker
        worker.signals.finished.connect(partial(self._on_image_loaded, self._request_id, worker))
        worker.signals.errored.connect(partial(self._on_image_failed, self._request_id, worker, path))
        self._start(self._io_pool, worker)

    def _on_image_loaded(self, request_id: int, worker: Worker, loaded: LoadedImage) -> None:
        self._finish(worker)
        if worker is self._image_job:
            self._image_job = None
        if request_id != self._request_id:
            return  # the user has moved on
        self._array = loaded.array
        self.image_loaded.emit(loaded.path, loaded.qimage)
        if self._auto_detect:
            self.detect()

    def _on_image_failed(self, request_id: int, worker: Worker, path: Path, error: BaseException) -> None:
        self._finish(worker)
        if worker is self._image_job:
            self._image_job = None
        if request_id == self._request_id:
            self.image_failed.emit(path, error)

    # --- detection -----------------------------------------------------------------
    def current_key(self) -> CacheKey | None:
        size = self.inference_size
        if self._path is None or self._model_path is None or size is None:
            return None
        return (str(self._path), int(size), self._model_path)

    def set_inference_size(self, size: int | None) -> None:
        if size == self._size:
            return
        had_result = self._result is not None
        self._size = size
        if had_result and self._result is not None and self._result.key != self.current_key():
            self._clear_result()
        if self._auto_detect or had_result:
            self.detect()

    def set_auto_detect(self, enabled: bool) -> None:
        self._auto_detect = bool(enabled)
        if enabled and self._result is None:
            self.detect()

    def detect(self) -> None:
        """Show the network output for the current image and size: from the cache, or by
        running the network in the background."""
        key = self.current_key()
        if key is None or self._array is None or self._path is None:
            return
        cached = self._cache.get(key)
        if cached is not None:
            self._result = DetectionResult(self._path, key, cached.output, cached.latency_ms, cached=True)
            self.output_ready.emit(self._result)
            if not cached.has_features:
                self._run_shown(key)
            return
        if self._result is not None and self._result.key == key:
            return
        self._withdraw_detections(keep=key)
        if key in self._detections:
            return  # already running
        batch_job = self._batch.get(key)
        if batch_job is not None:  # a batch will run it: now, and its result is shown
            if self._inference_pool.tryTake(batch_job):
                self._inference_pool.start(batch_job, 1)
            return
        self._run_shown(key)

    def _run_shown(self, key: CacheKey) -> None:
        """Run the network on the current image, fetching everything the layer viewer shows:
        for an image not yet detected, or one whose output came from a batch run (which has
        only its candidates)."""
        if key in self._detections or self._array is None or self._path is None:
            return  # already running
        worker = Worker(detect_job, self._detector, self._array, key[1], self._path, key)
        self._detections[key] = worker
        worker.signals.finished.connect(partial(self._on_detected, worker))
        worker.signals.errored.connect(partial(self._on_detect_failed, worker, key))
        self._start(self._inference_pool, worker)

    def _shows(self, key: CacheKey) -> bool:
        """Whether a result for ``key`` belongs on screen now: same image, size and model
        as the current ones, and the current image is decoded (boxes never precede it)."""
        return key == self.current_key() and self._array is not None

    def _on_detected(self, worker: Worker, result: DetectionResult) -> None:
        self._finish(worker)
        if self._detections.get(result.key) is worker:
            del self._detections[result.key]
        self._store(result)
        if self._shows(result.key):
            upgrade = self._result is not None and self._result.key == result.key and not self._result.has_features
            self._result = result
            # the same candidates, with the pyramid: only the layer viewer has something new
            (self.features_ready if upgrade and result.has_features else self.output_ready).emit(result)

    def _store(self, result: DetectionResult) -> None:
        cached = self._cache.get(result.key)
        if cached is None or result.has_features or not cached.has_features:  # never the pyramid for less
            self._cache.put(result.key, result, output_nbytes(result.output))
        self.path_detected.emit(result.path)
        self.result_cached.emit(result)

    def _on_detect_failed(self, worker: Worker, key: CacheKey, error: BaseException) -> None:
        self._finish(worker)
        if self._detections.get(key) is worker:
            del self._detections[key]
        if self._shows(key) and self._path is not None:
            self.detection_failed.emit(self._path, error)

    # --- batch detection -----------------------------------------------------------
    def detect_batch(self, paths: Sequence[Path]) -> int:
        """Run the network on ``paths`` at the current size in the background, one image
        at a time and behind any detection of the shown image (lower priority); images
        already cached are skipped. Results go to the cache (``path_detected``,
        ``result_cached``); ``batch_progress(done, total)`` follows each image and
        ``batch_finished(BatchSummary)`` the last. A running batch is cancelled first.
        Returns how many images were queued (0: nothing to do, no signal follows)."""
        self.cancel_batch()
        size = self.inference_size
        if self._detector is None or self._model_path is None or size is None:
            return 0
        self._batch_total = self._batch_done = 0
        self._batch_errors = []
        self._batch_cancelled = False
        for path in paths:
            key = (str(path), int(size), self._model_path)
            if key in self._cache or key in self._batch or key in self._detections:
                continue
            worker = Worker(decode_detect_job, self._backend.load_image, self._detector, int(size), Path(path), key)
            worker.signals.finished.connect(partial(self._on_batch_detected, worker, key))
            worker.signals.errored.connect(partial(self._on_batch_failed, worker, key, Path(path)))
            self._batch[key] = worker
            self._start(self._inference_pool, worker, priority=-1)
        self._batch_total = len(self._batch)
        return self._batch_total

    def cancel_batch(self) -> None:
        """Withdraw the queued images of a running batch (the image in the network
        finishes); ``batch_finished`` reports ``cancelled``."""
        if not self._batch:
            return
        self._batch_cancelled = True
        for key, worker in list(self._batch.items()):
            if self._inference_pool.tryTake(worker):
                del self._batch[key]
                self._finish(worker)
        self._maybe_end_batch()

    def batch_running(self) -> bool:
        return bool(self._batch)

    def _on_batch_detected(self, worker: Worker, key: CacheKey, result: DetectionResult) -> None:
        self._finish(worker)
        if self._batch.pop(key, None) is not worker:
            return
        self._store(result)
        if self._shows(key) and (self._result is None or self._result.key != key):
            self._result = result  # the shown image was in the batch: show its boxes now
            self.output_ready.emit(result)
            if not result.has_features:
                self._run_shown(key)
        self._batch_step()

    def _on_batch_failed(self, worker: Worker, key: CacheKey, path: Path, error: BaseException) -> None:
        self._finish(worker)
        if self._batch.pop(key, None) is not worker:
            return
        if not isinstance(error, JobCancelled):
            self._batch_errors.append((path, error))
        self._batch_step()

    def _batch_step(self) -> None:
        self._batch_done += 1
        self.batch_progress.emit(self._batch_done, self._batch_total)
        self._maybe_end_batch()

    def _maybe_end_batch(self) -> None:
        if self._batch or not self._batch_total:
            return
        summary = BatchSummary(
            total=self._batch_total,
            done=self._batch_done,
            failed=len(self._batch_errors),
            cancelled=self._batch_cancelled,
            errors=tuple(self._batch_errors),
        )
        self._batch_total = 0
        self.batch_finished.emit(summary)

    def _withdraw_detections(self, keep: CacheKey | None) -> None:
        """Take back queued (not yet started) detection jobs other than ``keep``."""
        for key, worker in list(self._detections.items()):
            if key != keep and self._inference_pool.tryTake(worker):
                del self._detections[key]
                self._finish(worker)

    def _clear_result(self) -> None:
        if self._result is not None:
            self._result = None
        self.output_cleared.emit()

    # --- bookkeeping ---------------------------------------------------------------
    def _start(self, pool: QThreadPool, worker: Worker, priority: int = 0) -> None:
        self._jobs.add(worker)
        self._busy += 1
        if self._busy == 1:
            self.busy_changed.emit(True)
        pool.start(worker, priority)

    def _finish(self, worker: Worker) -> None:
        if worker not in self._jobs:
            return
        self._jobs.discard(worker)
        self._busy = max(0, self._busy - 1)
        if self._busy == 0:
            self.busy_changed.emit(False)

    def wait_for_done(self, msecs: int = -1) -> bool:
        """Block until the pools are idle (tests and shutdown only)."""
        done_io = self._io_pool.waitForDone(msecs)
        return self._inference_pool.waitForDone(msecs) and done_io

    def shutdown(self, msecs: int = 10_000) -> None:
        """Withdraw queued jobs and wait for running ones (a network run cannot be
        interrupted; threads are never terminated)."""
        self._request_id += 1
        self._io_pool.clear()
        self._inference_pool.clear()
        for worker in [*self._detections.values(), *self._batch.values()]:
            worker.cancel()
        self._batch.clear()
        self.wait_for_done(msecs)
