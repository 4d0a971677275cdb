"""The one worker pattern: :class:`Worker` runs a plain function on a :class:`QThreadPool`
and reports through ``started / finished(result) / errored(exception)`` (and
``progress(done, total)`` for long jobs that accept ``progress=`` and ``cancelled=``
callbacks). Never ``terminate()``. Every background job of the app (detection, label
export, quality) goes through it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class JobCancelled(Exception):
    """Raised inside a long job when its ``cancelled()`` check turns true."""


class WorkerSignals(QObject):
    """Signals of a :class:`Worker` (a QRunnable cannot carry signals itself). It lives in
    the thread that created the worker (the GUI thread), so slots run there, queued."""

    started = Signal()
    finished = Signal(object)  # the function's return value
    errored = Signal(object)  # the exception it raised
    progress = Signal(int, int)  # done, total


class Worker(QRunnable):
    """Run ``fn(*args, **kwargs)`` on a thread pool and report through :attr:`signals`.

    With ``long_job=True`` the function also gets ``progress=(done, total) -> None`` and
    ``cancelled=() -> bool`` keyword arguments (the same function runs under tqdm on the
    command line). The caller keeps a reference until ``finished``/``errored`` arrives.
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, long_job: bool = False, **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)  # Python owns it; the pool never deletes it under us
        self.signals = WorkerSignals()
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self._long_job = long_job
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Ask a long job to stop at its next ``cancelled()`` check."""
        self._cancelled.set()

    def is_cancelled(self) -> bool:
        return self._cancelled.is_set()

    def run(self) -> None:  # runs on a pool thread
        if self._cancelled.is_set():
            self.signals.errored.emit(JobCancelled("cancelled before it started"))
            return
        self.signals.started.emit()
        kwargs = dict(self._kwargs)
        if self._long_job:
            kwargs["progress"] = self.signals.progress.emit
            kwargs["cancelled"] = self.is_cancelled
        try:
            result = self._fn(*self._args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure goes to the GUI as a value
            self.signals.errored.emit(exc)
        else:
            self.signals.finished.emit(result)


__all__ = ["JobCancelled", "NewestOnly", "Worker", "WorkerSignals"]


class NewestOnly(QObject):
    """Runs one job at a time on a pool of its own; while one runs, only the newest request
    waits (older ones are dropped). ``finished(result)`` / ``errored(exception)`` come only
    for the newest request: the result of a superseded or :meth:`invalidate`-d job is
    dropped. For work that follows a control (a slider, a list) where only the latest answer
    matters and a running job cannot be interrupted."""

    finished = Signal(object)
    errored = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._generation = 0
        self._worker: Worker | None = None
        self._pending: tuple[int, Worker] | None = None
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._generation += 1
        worker = Worker(fn, *args, **kwargs)
        generation = self._generation
        worker.signals.finished.connect(lambda result: self._done(generation, self.finished, result))
        worker.signals.errored.connect(lambda error: self._done(generation, self.errored, error))
        if self._worker is not None:
            self._pending = (generation, worker)
            return
        self._start(worker)

    def invalidate(self) -> None:
        """Drop the result of the job running now (and of any waiting one)."""
        self._generation += 1

    def close(self, msecs: int = 0) -> None:
        """Withdraw the waiting job, ignore every result from now on, and give a running job
        ``msecs`` to end."""
        self._closed = True
        self._pending = None
        self.pool.clear()
        if msecs:
            self.pool.waitForDone(msecs)

    def _start(self, worker: Worker) -> None:
        self._worker = worker
        self.pool.start(worker)

    def _done(self, generation: int, signal: Any, value: object) -> None:
        if self._closed:
            return
        self._worker = None
        pending, self._pending = self._pending, None
        if pending is not None and pending[0] == self._generation:
            self._start(pending[1])
        if generation == self._generation:
            signal.emit(value)
