"""Keeps the quality dock current: the model's precision / recall / AP50 against the saved
labels of the open images, at the session's post-processing settings.

:class:`QualityMonitor` holds two stores and recomputes from them on the GUI thread:

* the saved labels of the open list (in the chosen label format), read on a worker thread
  when a list opens or the format changes, and re-read for one image when its document
  becomes clean (saved);
* the candidates of every network output the controller produces (``result_cached``,
  and cached ones it shows), keyed like the detection cache (image, size, model).

Only images with both count. Labels that are the current model's own detections accepted
unedited are not evidence: an image with nothing else is left out, unless the user rejected
some of this model's detections there (or deleted such a label, which rejects its
detection), and such labels in counted images are ignored; a rejected detection the model
still produces is a false positive (``model.quality``'s rule). Which detection a rejection
is follows ``app.labelling.detections.match_rejections``: by anchor at the inference size it was made
at, by box at another size. The saved labels' provenance and the rejected detections come
from the sidecars, read with
the labels (``app.labelling.label_files.saved_provenance_and_rejections``); the model is known by its
fingerprint (``model.quality.model_fingerprint``, computed on a worker when a model loads)
and, for records without one, its file name.

Per image, ``select`` runs once per IoU threshold / max
detections / class filter at the candidate floor; a score change only cuts those lists
(``model.quality.keep_above``) before matching, so following the score slider costs a
few milliseconds for hundreds of images. Changes are debounced (``debounce_ms``). AP50
(pycocotools, seconds for thousands of detections) runs on a worker thread; only the
newest request is kept while one runs. "Detect all labelled images" queues the labelled
images without an output on :meth:`DetectionController.detect_batch`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal

from app.common.worker import JobCancelled, NewestOnly, Worker
from app.docks.quality_panel import QualityPanel
from app.jobs.detection import BatchSummary, CacheKey, DetectionController, DetectionResult
from app.labelling.detections import match_rejections, rejections_of
from app.labelling.entries import DetectionKey
from app.labelling.label_files import saved_provenance_and_rejections
from app.session import Session
from model.errors import StudioError
from model.labels import ImageLabels
from model.postprocess import Candidates, Detections, PostProcessor
from model.quality import (
    ImageComparison,
    QualityReport,
    ReadCancelled,
    UneditedAcceptance,
    compare,
    is_model_output,
    keep_above,
    label_class_ids,
    model_fingerprint,
    read_saved_labels,
)

DEBOUNCE_MS = 100
#: Up to this many images are (re)selected on the GUI thread (~1 ms each); more go to a worker.
INLINE_SELECTS = 16


def select_many(
    candidates: list[tuple[str, Candidates]],
    *,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    post_processor: PostProcessor,
) -> dict[str, Detections]:
    """``post_processor`` on each (key, candidates) pair -> {key: Detections} (a worker job)."""
    selected = {}
    for done, (key, item) in enumerate(candidates, start=1):
        if cancelled is not None and cancelled():
            raise JobCancelled("selection superseded")
        selected[key] = post_processor(item)
        if progress is not None and done % 50 == 0:
            progress(done, len(candidates))
    return selected


@dataclass(frozen=True)
class SavedLabels:
    """One image's saved labels: boxes (G, 4) float32 xyxy, class names (G,), image size,
    and per label the model it is an unedited detection of (None: drawn, edited or no
    record); ``acceptances`` is None when no label is one. ``rejected``: the detections
    the user rejected on the image, of any model."""

    boxes: np.ndarray
    names: tuple[str, ...]
    size: tuple[int, int]
    acceptances: tuple[UneditedAcceptance | None, ...] | None = None
    rejected: frozenset[DetectionKey] = frozenset()

    @classmethod
    def from_item(
        cls,
        item: ImageLabels,
        acceptances: Sequence[UneditedAcceptance | None] = (),
        rejected: frozenset[DetectionKey] = frozenset(),
    ) -> SavedLabels:
        found = tuple(acceptances) if any(a is not None for a in acceptances) else None
        return cls(item.boxes(), tuple(item.names()), (int(item.width), int(item.height)), found, frozenset(rejected))

    def rejected_by_model(self, *, model_name: str, model_id: str) -> frozenset[DetectionKey]:
        """The detections of that model the user rejected here."""
        return rejections_of(self.rejected, model_name=model_name, model_id=model_id) if self.rejected else frozenset()

    def model_output(self, *, model_name: str, model_id: str) -> np.ndarray | None:
        """(G,) bool: the labels that are that model's detections accepted unedited (None: none)."""
        if self.acceptances is None:
            return None
        own = np.array([is_model_output(a, model_name=model_name, model_id=model_id) for a in self.acceptances], bool)
        return own if own.any() else None


def read_labels_with_provenance(
    images: Sequence[str | os.PathLike[str]],
    fmt: str,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    label_dirs: Mapping[str, Path] | None = None,
) -> tuple[dict[str, SavedLabels], list[StudioError]]:
    """``model.quality.read_saved_labels`` plus each label's provenance from the sidecars
    -> ({image key: SavedLabels}, unreadable files); ``label_dirs``: label folder per
    absolute image folder. A worker job."""
    items, errors = read_saved_labels(images, fmt, progress=progress, cancelled=cancelled, label_dirs=label_dirs)
    saved = {}
    for done, item in enumerate(items):
        if cancelled is not None and done % 64 == 0 and cancelled():
            raise ReadCancelled("reading labels cancelled")
        provenance, rejected = saved_provenance_and_rejections(item.image_path, item.labels)
        saved[item.image_path] = SavedLabels.from_item(item, [p.unedited_acceptance() for p in provenance], rejected)
    return saved, errors


def image_comparison(
    key: str,
    saved: SavedLabels,
    detections: Detections,
    class_names: Sequence[str],
    *,
    model_output: np.ndarray | None,
    rejected: frozenset[DetectionKey],
    size: int,
) -> tuple[ImageComparison, int]:
    """Image ``key``'s saved labels against the model's ``detections`` (xyxy, original
    pixels; ``class_ids`` index ``class_names``) made at inference size ``size`` (0:
    unknown) -> (the comparison, how many labels are of classes the model does not know:
    they are left out). ``model_output`` (G,) bool: the labels that are this model's
    unedited detections (``SavedLabels.model_output``); ``rejected``: its detections the
    user rejected here (``SavedLabels.rejected_by_model``), matched to ``detections`` by
    ``app.labelling.detections.match_rejections``."""
    ids, known = label_class_ids(saved.names, class_names)
    det_is_rejected = match_rejections(rejected, detections, size=size) if rejected else None
    comparison = ImageComparison(
        key=key,
        label_boxes=saved.boxes[known],
        label_class_ids=ids[known],
        det_boxes=detections.boxes,
        det_scores=detections.scores,
        det_class_ids=detections.class_ids,
        image_size=saved.size,
        label_is_model_output=None if model_output is None else model_output[known],
        reviewed=bool(rejected),
        det_is_rejected=det_is_rejected,
    )
    return comparison, int(known.size - np.count_nonzero(known))


class QualityMonitor(QObject):
    """Feeds ``panel`` from ``session`` and the detection ``controller`` (see the module docstring). Signals
    ``report_ready(QualityReport)`` after every recompute (AP50 NaN there) and
    ``ap_ready(QualityReport)`` when the AP50 of the newest recompute is known."""

    report_ready = Signal(object)
    ap_ready = Signal(object)
    labels_loaded = Signal(int)  # how many images have saved labels

    def __init__(
        self, session: Session, controller: DetectionController, panel: QualityPanel, *, debounce_ms: int = DEBOUNCE_MS, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._panel = panel
        self._controller = controller
        self._labels: dict[str, SavedLabels] = {}
        self._paths: dict[str, Path] = {}  # key -> the image list's path
        self._by_abspath: dict[str, str] = {}  # absolute path -> key
        self._candidates: dict[CacheKey, Candidates] = {}
        self._selected: dict[str, Detections] = {}
        self._selection_key: tuple[Any, ...] | None = None
        self._report: QualityReport | None = None
        self._last_images: list[ImageComparison] = []
        self._model_name = ""
        self._model_id: str | None = ""  # None while its fingerprint is computed
        # image key -> (model_output(), rejected_by_model()) for this model
        self._model_output: dict[str, tuple[np.ndarray | None, frozenset[DetectionKey]]] = {}
        self.last_recompute_ms = 0.0
        self._visible = True
        self._stale = False
        self._closed = False

        self._labels_pool = QThreadPool(self)
        self._labels_pool.setMaxThreadCount(1)
        self._labels_generation = 0
        self._label_jobs: set[Worker] = set()
        self._select_pool = QThreadPool(self)
        self._select_pool.setMaxThreadCount(1)
        self._select_generation = 0
        self._select_worker: Worker | None = None
        self._select_worker_generation = -1
        self._ap = NewestOnly(self)  # AP50 (pycocotools, seconds): only the newest request waits
        self._ap.finished.connect(self._on_ap)
        self._ap.errored.connect(self._on_ap_failed)
        self._model_pool = QThreadPool(self)
        self._model_pool.setMaxThreadCount(1)
        self._fingerprint_jobs: set[Worker] = set()

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(debounce_ms)
        self._timer.timeout.connect(self.recompute)

        c = self._controller
        c.model_loaded.connect(self._on_model_loaded)
        c.result_cached.connect(self._on_result)
        c.output_ready.connect(self._on_result)
        c.batch_progress.connect(panel.set_batch_progress)
        c.batch_finished.connect(self._on_batch_finished)
        session.post_processor_changed.connect(self.schedule)
        session.inference_size_changed.connect(self.schedule)
        session.images_opened.connect(lambda _paths: self.reload_labels())
        session.label_format_changed.connect(lambda _fmt: self.reload_labels())
        session.unsaved_changed.connect(self._on_dirty)
        panel.detect_requested.connect(self.detect_labelled)
        panel.cancel_requested.connect(c.cancel_batch)

    # ------------------------------------------------------------------ public
    def report(self) -> QualityReport | None:
        """The last computed report (AP50 filled in once known)."""
        return self._report

    def labelled_paths(self) -> list[Path]:
        """The open images with saved labels (in the chosen format), list order."""
        return [self._paths[key] for key in self._labels]

    def undetected_paths(self) -> list[Path]:
        """Labelled images without a network output for the current model and size."""
        model_path, size = self._controller.model_path, self._controller.inference_size
        return [
            self._paths[key]
            for key in self._labels
            if (key, size, model_path) not in self._candidates and (key, size, model_path) not in self._controller.cache
        ]

    def set_visible(self, visible: bool) -> None:
        """Whether the panel is on screen; hidden, it only marks itself stale."""
        self._visible = visible
        if visible and self._stale:
            self.schedule()

    def schedule(self, *_args: object) -> None:
        """Recompute after the debounce interval (restarted by every call)."""
        self._timer.start()

    def reload_labels(self, paths: list[Path] | None = None) -> None:
        """Re-read the saved labels of the open list (or of ``paths`` only) off the GUI
        thread; a full reload supersedes one still running."""
        full = paths is None
        if full:
            paths = list(self._session.image_paths)
            self._paths = {str(p): p for p in paths}
            self._by_abspath = {os.path.abspath(p): str(p) for p in paths}
            self._labels_generation += 1
            for worker in self._label_jobs:
                worker.cancel()
        worker = Worker(
            read_labels_with_provenance,
            list(paths),
            self._session.label_format,
            label_dirs=self._session.label_dirs,
            long_job=True,
        )
        worker.signals.finished.connect(partial(self._on_labels, worker, self._labels_generation, full, list(paths)))
        worker.signals.errored.connect(partial(self._on_labels_failed, worker))
        self._label_jobs.add(worker)
        self._labels_pool.start(worker)

    def detect_labelled(self) -> int:
        """Run the model on the labelled images that have no output yet (background).
        Returns how many were queued."""
        paths = self.undetected_paths()
        queued = self._controller.detect_batch(paths)
        if queued:
            self._panel.set_batch_running(True)
            self._panel.set_batch_progress(0, queued)
        return queued

    def wait(self, msecs: int = 10_000) -> bool:
        """Block until label reading, model fingerprint and AP jobs are done (tests and shutdown only)."""
        pools = (self._labels_pool, self._select_pool, self._ap.pool, self._model_pool)
        return all([pool.waitForDone(msecs) for pool in pools])

    def shutdown(self) -> None:
        """The window is closing: withdraw queued jobs and ignore the results of running
        ones (an AP computation cannot be interrupted: it gets two seconds to end)."""
        self._closed = True
        self._timer.stop()
        self._labels_pool.clear()
        self._select_pool.clear()
        self._model_pool.clear()
        if self._select_worker is not None:
            self._select_worker.cancel()
        # pycocotools prints (coco_evaluate redirects sys.stdout, process-wide): let a
        # running AP job end while the app is still here, but never hang the close on it
        self._ap.close(2000)
        for worker in self._label_jobs:
            worker.cancel()

    # ------------------------------------------------------------------ computing
    def recompute(self) -> QualityReport | None:
        """Recompute precision / recall and the disagreement list now; ask for AP50."""
        self._timer.stop()
        if not self._visible:
            self._stale = True
            return None
        self._stale = False
        start = time.perf_counter()
        detector = self._controller.detector
        if detector is None:
            self._show_message("Load a model to compare it with the saved labels.")
            return None
        if self._model_id is None and any(saved.acceptances is not None or saved.rejected for saved in self._labels.values()):
            self._panel.show_pending("Identifying the model…")  # its fingerprint job calls schedule()
            return None
        class_names = tuple(detector.contract.class_names)
        settings = self._session.post_processor
        missing = self._select(class_names, settings)
        if missing is None:  # selecting on a worker; it calls recompute() again
            self._panel.show_pending("Applying the new settings…")
            return None
        images, unknown = self._comparisons(class_names, settings)
        self._update_coverage(missing, unknown)
        if not images:
            text = "No labelled image has detections yet." if self._labels else "No saved labels in the open images."
            self._show_message(text)
            return None
        report = compare(images, class_names=class_names, class_ids=settings.class_ids, with_ap=False)
        self._report = report
        self._last_images = images
        if report.num_images == 0:  # every image was left out
            self._ap.invalidate()
            self._panel.show_report(report, paths=self._paths, settings_text="")
            self.last_recompute_ms = (time.perf_counter() - start) * 1000.0
            self.report_ready.emit(report)
            return report
        text = f"score > {settings.score_thresh:.2f}, NMS IoU {settings.iou_thresh:.2f}, max {settings.max_detections}"
        if settings.class_ids is not None:
            text += f", {len(settings.class_ids)} of {len(class_names)} classes"
        self._panel.show_report(report, paths=self._paths, settings_text=text)
        self.last_recompute_ms = (time.perf_counter() - start) * 1000.0
        self._request_ap(images, class_names, settings.class_ids)
        self.report_ready.emit(report)
        return report

    def _select(self, class_names: tuple[str, ...], settings: PostProcessor) -> int | None:
        """Make sure every labelled image with candidates has its selection at the
        candidate floor for ``settings`` (the score slider only cuts it). A few are
        selected here; many go to a worker (None is returned and recompute() follows).
        Returns how many labelled images have no network output."""
        model_path, size = self._controller.model_path, self._controller.inference_size
        at_floor = settings.with_(score_thresh=0.0)  # the floor: the score slider only cuts (keep_above)
        selection_key = (model_path, size, at_floor, class_names)
        if selection_key != self._selection_key:
            self._selected.clear()
            self._selection_key = selection_key
            self._select_generation += 1  # a running selection job is now stale
        missing = 0
        needed: list[tuple[str, Candidates]] = []
        for key in self._labels:
            if key not in self._selected:
                candidates = self._candidates_for((key, size, model_path))  # type: ignore[arg-type]
                if candidates is None:
                    missing += 1
                else:
                    needed.append((key, candidates))
        if len(needed) <= INLINE_SELECTS:
            for key, candidates in needed:
                self._selected[key] = at_floor(candidates)
            return missing
        if self._select_worker is None or self._select_worker_generation != self._select_generation:
            if self._select_worker is not None:
                self._select_worker.cancel()
            worker = Worker(select_many, needed, long_job=True, post_processor=at_floor)
            worker.signals.finished.connect(partial(self._on_selected, worker, self._select_generation))
            worker.signals.errored.connect(partial(self._on_select_failed, worker))
            self._select_worker, self._select_worker_generation = worker, self._select_generation
            self._select_pool.start(worker)
        return None

    def _comparisons(self, class_names: tuple[str, ...], settings: PostProcessor) -> tuple[list[ImageComparison], int]:
        """(images with labels and detections, labels of classes the model does not know)."""
        images: list[ImageComparison] = []
        unknown = 0
        size = int(self._controller.inference_size or 0)  # the selections' (see _select)
        for key, saved in self._labels.items():
            selected = self._selected.get(key)
            if selected is None:
                continue
            shown = keep_above(selected, settings.score_thresh)
            own, rejected = self._for_model(key, saved)
            image, unknown_here = image_comparison(
                key, saved, shown, class_names, model_output=own, rejected=rejected, size=size
            )
            images.append(image)
            unknown += unknown_here
        return images, unknown

    def _for_model(self, key: str, saved: SavedLabels) -> tuple[np.ndarray | None, frozenset[DetectionKey]]:
        """The labels of image ``key`` that are the current model's unedited detections, and
        its detections the user rejected there."""
        if saved.acceptances is None and not saved.rejected:
            return None, frozenset()
        if key not in self._model_output:
            model = {"model_name": self._model_name, "model_id": self._model_id or ""}
            self._model_output[key] = (saved.model_output(**model), saved.rejected_by_model(**model))
        return self._model_output[key]

    def _on_selected(self, worker: Worker, generation: int, selected: dict[str, Detections]) -> None:
        if worker is self._select_worker:
            self._select_worker = None
        if self._closed or generation != self._select_generation:
            return
        self._selected.update(selected)
        self.recompute()

    def _on_select_failed(self, worker: Worker, error: BaseException) -> None:
        if worker is self._select_worker:
            self._select_worker = None
        if not self._closed and not isinstance(error, JobCancelled):
            self._show_message(f"Could not apply the settings: {error}")

    def _candidates_for(self, key: CacheKey) -> Candidates | None:
        candidates = self._candidates.get(key)
        if candidates is None:
            cached = self._controller.cache.get(key)
            if cached is not None:
                candidates = self._candidates[key] = cached.output.candidates
        return candidates

    def _update_coverage(self, missing: int, unknown: int) -> None:
        running = self._controller.batch_running()
        parts = []
        if missing:
            parts.append(f"{missing} labelled image{'s' if missing != 1 else ''} not detected yet (not counted).")
        if unknown:
            parts.append(f"{unknown} label{'s' if unknown != 1 else ''} of classes the model does not know are left out.")
        self._panel.set_coverage(" ".join(parts), can_detect=bool(missing) and not running)

    def _show_message(self, text: str) -> None:
        self._report = None
        self._last_images = []
        self._ap.invalidate()  # a running AP job is now stale
        self._panel.show_message(text)

    # ------------------------------------------------------------------ AP50 (worker)
    def _request_ap(self, images: list[ImageComparison], names: tuple[str, ...], class_ids: frozenset[int] | None) -> None:
        self._ap.submit(compare, images, class_names=names, class_ids=class_ids)

    def _on_ap(self, report: QualityReport) -> None:
        if self._closed or self._report is None:
            return
        self._report = report
        self._panel.show_ap50(report.ap50, report.per_class_ap50)
        self.ap_ready.emit(report)

    def _on_ap_failed(self, error: BaseException) -> None:
        if not self._closed:
            self._panel.show_ap50(float("nan"), {})
            self._session.show_message(f"AP50 could not be computed: {error}", 8000)

    # ------------------------------------------------------------------ events
    def _on_model_loaded(self, _detector: Any) -> None:
        model_path = self._controller.model_path
        self._candidates = {k: v for k, v in self._candidates.items() if k[2] == model_path}
        self._selection_key = None
        self._model_name = Path(model_path or "").name
        self._model_id = None if model_path else ""
        self._model_output.clear()
        if model_path:
            worker = Worker(model_fingerprint, model_path)
            worker.signals.finished.connect(partial(self._on_fingerprint, worker, model_path))
            worker.signals.errored.connect(partial(self._on_fingerprint, worker, model_path))  # the error: ""
            self._fingerprint_jobs.add(worker)
            self._model_pool.start(worker)
        self.schedule()

    def _on_fingerprint(self, worker: Worker, model_path: str, fingerprint: object) -> None:
        """The model's fingerprint is known (an exception instead: unknown, the names decide)."""
        self._fingerprint_jobs.discard(worker)
        if self._closed or model_path != self._controller.model_path:
            return  # another model was loaded since
        self._model_id = fingerprint if isinstance(fingerprint, str) else ""
        self._model_output.clear()
        self.schedule()

    def _on_result(self, result: DetectionResult) -> None:
        if result.key not in self._candidates:
            self._candidates[result.key] = result.output.candidates
            if result.key[0] in self._labels:
                self.schedule()

    def _on_batch_finished(self, summary: BatchSummary) -> None:
        self._panel.set_batch_running(False)
        state = "cancelled after" if summary.cancelled else "done:"
        failed = f", {summary.failed} failed" if summary.failed else ""
        self._session.show_message(f"Detection of labelled images {state} {summary.done} of {summary.total}{failed}", 8000)
        if not self._closed:
            self.recompute()

    def _on_labels(self, worker: Worker, generation: int, full: bool, paths: list[Path], result: tuple) -> None:
        self._label_jobs.discard(worker)
        if generation != self._labels_generation or self._closed:
            return  # another list was opened since, or the window closed
        saved, errors = result
        if full:
            self._labels = {}
            self._model_output.clear()
        else:
            for path in paths:
                self._labels.pop(str(path), None)
                self._model_output.pop(str(path), None)
        self._labels.update(saved)
        if full:
            order = {key: row for row, key in enumerate(self._paths)}
            self._labels = dict(sorted(self._labels.items(), key=lambda kv: order.get(kv[0], len(order))))
        if errors:
            self._session.show_message(f"Quality: {len(errors)} label file(s) unreadable, e.g. {errors[0]}", 8000)
        self.labels_loaded.emit(len(self._labels))
        self.schedule()

    def _on_labels_failed(self, worker: Worker, _error: BaseException) -> None:
        self._label_jobs.discard(worker)  # cancelled by a newer list, or unreadable: keep what we have

    def _on_dirty(self, image_path: Path, dirty: bool) -> None:
        key = self._by_abspath.get(os.path.abspath(image_path))
        if not dirty and key is not None:
            self.reload_labels([self._paths[key]])  # saved (or back to the saved state)


__all__ = ["QualityMonitor", "SavedLabels", "image_comparison"]
