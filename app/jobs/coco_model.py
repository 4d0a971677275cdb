"""Model › Get a COCO Model…: export a COCO-pretrained keras-hub preset (80 classes) to a
contract model in a separate process, with progress, then load it.

The export runs as ``python -m model.cli export --preset NAME --out M.onnx`` (or
``--preset-dir DIR`` for a preset folder downloaded elsewhere) in a :class:`QProcess`: the app
never imports TensorFlow or keras-hub. The first export of a preset downloads its weights
from Kaggle (keras-hub caches them); offline, the exporter ends with one ``error:`` line that
says what to download and the command to run on a connected machine, and the app shows that
line as it is, selectable, so it can be copied. The command is built by an injectable
function (:func:`export_command`) so tests can run a fake exporter.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.common.progress import progress_dialog
from app.jobs.cli_process import cli_process
from app.session import Session

# model.tf.presets.PRESETS (not importable here: the app never imports model.tf)
PRESETS = {
    "retinanet_resnet50_fpn_coco": "RetinaNet ResNet-50 FPN, COCO (torchvision v1 weights)",
    "retinanet_resnet50_fpn_v2_coco": "RetinaNet ResNet-50 FPN v2, COCO (GroupNorm heads)",
}
FROM_FOLDER = "a preset folder downloaded elsewhere…"


def is_preset_source(source: str | Path) -> bool:
    """Whether fine-tuning from ``source`` means ``--init-from-preset``: a preset name, or a
    keras-hub preset folder (config.json and model.weights.h5, not a training run)."""
    text = str(source).strip()
    if text in PRESETS:
        return True
    folder = Path(text).expanduser()
    weights = (folder / "model.weights.h5").is_file() or (folder / "model.weights.json").is_file()  # one file, or shards
    return bool(text) and (folder / "config.json").is_file() and weights and not (folder / "model_config.json").is_file()


def preset_of(provenance: dict) -> str | None:
    """The preset a COCO model was exported from (its folder when that is still here, else
    its name), from the model's provenance; None for other models."""
    folder = provenance.get("preset_folder")
    if isinstance(folder, str) and is_preset_source(folder):
        return folder
    name = provenance.get("preset")
    return name if isinstance(name, str) and is_preset_source(name) else None


def default_models_folder() -> Path:
    """Where exported COCO models go by default: the app's data folder, ``models/``."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation) or str(Path.home() / ".retinanet-studio")
    return Path(base) / "models"


@dataclass(frozen=True)
class CocoExport:
    """What to export: a preset ``source`` (a name, or a folder when ``is_folder``) into ``out``."""

    source: str
    out: Path
    is_folder: bool = False


def export_command(job: CocoExport) -> list[str]:
    """argv of the export process."""
    source = ["--preset-dir", job.source] if job.is_folder else ["--preset", job.source]
    return [sys.executable, "-m", "model.cli", "export", *source, "--out", str(job.out)]


CommandBuilder = Callable[[CocoExport], list[str]]


def last_status(stderr_text: str) -> str:
    """The latest progress line in ``stderr_text`` (download bars redraw with \\r)."""
    parts = [p.strip() for p in stderr_text.replace("\r", "\n").splitlines() if p.strip()]
    return parts[-1][:120] if parts else ""


def error_line(stderr_text: str) -> str | None:
    """The exporter's ``error: …`` line, without the prefix, if it printed one."""
    lines = [line.strip() for line in stderr_text.splitlines() if line.strip().startswith("error:")]
    return lines[-1].removeprefix("error:").strip() if lines else None


class CocoModelDialog(QDialog):
    """Choose a preset (or a downloaded preset folder) and where the model goes."""

    def __init__(self, *, out_folder: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Get a COCO Model")
        self._out_folder = out_folder
        self.preset = QComboBox()
        for name, text in PRESETS.items():
            self.preset.addItem(text, name)
        self.preset.addItem(FROM_FOLDER, "")
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("folder with config.json and model.weights.h5")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit)
        folder_row.addWidget(browse)
        self.out_edit = QLineEdit()
        self.problem = QLabel("")
        self.problem.setStyleSheet("color: #b00020")
        self.problem.setWordWrap(True)
        note = QLabel(
            "Exports a RetinaNet pretrained on COCO (80 everyday classes: person, car, dog, …) for this app. "
            "The first export downloads the weights from Kaggle (about 140 MB) and takes a minute or two."
        )
        note.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Model", self.preset)
        form.addRow("Preset folder", folder_row)
        form.addRow("Save as", self.out_edit)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self.preset.currentIndexChanged.connect(self._preset_changed)
        self.folder_edit.textChanged.connect(self._preset_changed)
        self._preset_changed()

    def _preset_changed(self) -> None:
        name = self.preset.currentData()
        self.folder_edit.setEnabled(not name)
        stem = name or (Path(self.folder_edit.text()).name if self.folder_edit.text() else "coco")
        self.out_edit.setText(str(self._out_folder / f"{stem}.onnx"))

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Preset folder (config.json, model.weights.h5)")
        if folder:
            self.folder_edit.setText(folder)

    def job(self) -> CocoExport:
        name = self.preset.currentData()
        if name:
            return CocoExport(source=name, out=Path(self.out_edit.text()))
        return CocoExport(source=self.folder_edit.text().strip(), out=Path(self.out_edit.text()), is_folder=True)

    def _accept(self) -> None:
        job = self.job()
        if job.is_folder and not (Path(job.source) / "config.json").is_file():
            self.problem.setText(f"{job.source or 'No folder'}: not a keras-hub preset folder (no config.json)")
            return
        if not job.out.name.endswith(".onnx"):
            self.problem.setText(f"{job.out}: the model file must end in .onnx")
            return
        self.accept()


class CocoModelGetter(QObject):
    """Model › Get a COCO Model… for ``session``: the dialog, the export process, its progress
    dialog, then asking the session to load the model (dialogs are children of
    ``parent_widget``). Signals ``started(QProcess)`` and ``ended(state,
    detail)``: ``"succeeded"`` (the model's Path), ``"cancelled"`` or ``"failed"`` (the
    message shown)."""

    started = Signal(object)
    ended = Signal(str, object)

    def __init__(
        self,
        session: Session,
        *,
        parent_widget: QWidget | None = None,
        command_builder: CommandBuilder = export_command,
        out_folder: Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._window = parent_widget
        self.command_builder = command_builder
        self.out_folder = out_folder or default_models_folder()
        self.dialog: CocoModelDialog | None = None
        self.progress_dialog: QProgressDialog | None = None
        self.message_box: QMessageBox | None = None
        self.process: QProcess | None = None
        self._job: CocoExport | None = None
        self._stderr = ""
        self._started_at = 0.0
        self._cancelled = False
        self._timer = QTimer(self)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self._update_progress)
        self.action = QAction("Get a &COCO Model…", parent_widget or self)
        self.action.setStatusTip("export a COCO-pretrained RetinaNet (80 classes) and load it")
        self.action.triggered.connect(self.open_dialog)

    def open_dialog(self) -> CocoModelDialog | None:
        if self.is_running():
            self._status("A COCO model export is already running")
            return None
        dialog = CocoModelDialog(out_folder=self.out_folder, parent=self._window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.start(dialog.job()))
        self.dialog = dialog
        dialog.open()
        return dialog

    def is_running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def start(self, job: CocoExport) -> QProcess:
        """Run the export of ``job`` with a progress dialog."""
        argv = self.command_builder(job)
        process = cli_process(argv, self)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        self.process, self._job, self._stderr, self._cancelled = process, job, "", False
        progress = progress_dialog(
            f"Exporting {job.source} (loading TensorFlow)…", "Get a COCO Model", parent=self._window, on_cancel=self.cancel, min_width=460
        )
        self.progress_dialog = progress
        progress.show()
        self._started_at = time.monotonic()
        self._timer.start()
        process.start()
        self._status(f"Exporting {job.source} to {job.out}…")
        self.started.emit(process)
        return process

    def cancel(self) -> None:
        if self.is_running():
            self._cancelled = True
            self.process.kill()

    def shutdown(self, msecs: int = 3000) -> None:
        """Kill a running export (the app is closing)."""
        if self.is_running():
            self.cancel()
            self.process.waitForFinished(msecs)

    def _read_stderr(self) -> None:
        if self.process is not None:
            self._stderr = (self._stderr + self.process.readAllStandardError().data().decode("utf-8", "replace"))[-20000:]
            self._update_progress()

    def _update_progress(self) -> None:
        if self.progress_dialog is None or self._job is None:
            return
        elapsed = time.monotonic() - self._started_at
        status = last_status(self._stderr)
        detail = f"\n{status}" if status else ""
        self.progress_dialog.setLabelText(f"Exporting {self._job.source} ({elapsed:.0f} s)…{detail}")

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.process is not None:
            self._end("failed", f"Could not start {self.process.program()}: {self.process.errorString()}")

    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        self._read_stderr()
        job = self._job
        if self._cancelled:
            self._end("cancelled", None)
        elif exit_status == QProcess.ExitStatus.NormalExit and exit_code == 0 and job is not None and job.out.is_file():
            self._end("succeeded", job.out)
        else:
            message = error_line(self._stderr)
            if message is None:
                how = f"exit code {exit_code}" if exit_status == QProcess.ExitStatus.NormalExit else "crashed"
                tail = "\n".join(self._stderr.strip().splitlines()[-15:]) or "(no output)"
                message = f"The export stopped ({how}).\n\n{tail}"
            self._end("failed", message)

    def _end(self, state: str, detail: object) -> None:
        self._timer.stop()
        if self.progress_dialog is not None:
            self.progress_dialog.canceled.disconnect(self.cancel)
            self.progress_dialog.close()
            self.progress_dialog.deleteLater()
            self.progress_dialog = None
        if state == "succeeded":
            self._status(f"COCO model written to {detail}; loading it")
            self._session.request_model(Path(str(detail)))
        elif state == "cancelled":
            self._status("COCO model export cancelled")
        else:
            box = QMessageBox(QMessageBox.Icon.Warning, "Get a COCO Model", "The COCO model could not be made.", parent=self._window)
            box.setInformativeText(str(detail))
            box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.destroyed.connect(lambda: setattr(self, "message_box", None))
            self.message_box = box
            box.open()
        self.ended.emit(state, detail)

    def _status(self, text: str) -> None:
        self._session.show_message(text, 10000)


__all__ = [
    "PRESETS",
    "CocoExport",
    "CocoModelDialog",
    "CocoModelGetter",
    "default_models_folder",
    "error_line",
    "export_command",
    "is_preset_source",
    "last_status",
    "preset_of",
]
