"""File › Export Labelled Set As…: runs :func:`app.labelling.export.export_labelled_set` on a
worker thread behind a cancellable progress dialog, and says how it ended."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal
from PySide6.QtWidgets import QMessageBox, QProgressDialog, QWidget

from app.common.progress import progress_dialog
from app.common.worker import Worker
from app.labelling.export import ExportCancelled, ExportResult, export_labelled_set
from model.labels import get_format


class ExportRunner(QObject):
    """One export at a time. ``status(text)`` reports to the status bar; dialogs are
    children of ``parent_widget``. Signals ``finished(ExportResult)`` and
    ``failed(exception)``."""

    finished = Signal(object)
    failed = Signal(object)

    def __init__(self, status: Callable[[str], None], parent_widget: QWidget | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._status = status
        self._parent_widget = parent_widget
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._worker: Worker | None = None
        self._progress: QProgressDialog | None = None

    def is_running(self) -> bool:
        return self._worker is not None

    def start(
        self,
        paths: Sequence[Path],
        *,
        src_fmt: str,
        label_dirs: Mapping[str, Path],
        folder: Path,
        fmt: str,
        class_names: Sequence[str],
    ) -> None:
        """Export the labelled images among ``paths`` (labels in ``src_fmt``) into ``folder``
        as ``fmt``."""
        title = get_format(fmt).title
        worker = Worker(
            export_labelled_set,
            list(paths),
            src_fmt=src_fmt,
            label_dirs=dict(label_dirs),
            dst=Path(folder),
            dst_fmt=fmt,
            class_names=list(class_names),
            long_job=True,
        )
        progress = progress_dialog(
            f"Exporting labels as {title}…",
            "Export labelled set",
            parent=self._parent_widget,
            on_cancel=worker.cancel,
            maximum=100,
            modal=True,
            show_after_ms=400,
        )
        worker.signals.progress.connect(lambda done, total: progress.setValue(int(100 * done / max(total, 1))))
        worker.signals.finished.connect(self._on_finished)
        worker.signals.errored.connect(self._on_failed)
        self._worker, self._progress = worker, progress
        self._status(f"Exporting {len(paths)} images as {title} to {folder}…")
        self._pool.start(worker)

    def wait(self, msecs: int = -1) -> bool:
        return self._pool.waitForDone(msecs)

    def _on_finished(self, result: ExportResult) -> None:
        self._end()
        text = (
            f"Exported {result.images} labelled image{'s' if result.images != 1 else ''} "
            f"({result.labels} boxes) as {get_format(result.fmt).title} to {result.folder}"
        )
        self._status(text)
        if result.skipped:
            lines = "\n".join(str(e) for e in result.skipped[:10])
            more = f"\n… and {len(result.skipped) - 10} more" if len(result.skipped) > 10 else ""
            QMessageBox.warning(self._parent_widget, "Some labels were skipped", f"{text}.\n\nSkipped:\n{lines}{more}")
        self.finished.emit(result)

    def _on_failed(self, error: BaseException) -> None:
        self._end()
        if isinstance(error, ExportCancelled):
            self._status("Export cancelled")
        else:
            QMessageBox.critical(self._parent_widget, "Export failed", str(error))
        self.failed.emit(error)

    def _end(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress.deleteLater()
        self._worker, self._progress = None, None


__all__ = ["ExportRunner"]
