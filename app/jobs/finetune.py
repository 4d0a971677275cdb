"""Model › Fine-tune on Saved Labels…: train from the current model on the open folder's
saved labels, in a separate process, and offer to load the result.

Fine-tuning needs the Keras weights of the current model, which its ONNX file does not
carry: :func:`find_source_run` finds the training run folder (``model_config.json`` plus
weights or checkpoints) from the model's provenance (``"run"``), a ``<model stem>_run``
folder next to the ``.onnx``, or the folder holding the ``.onnx`` (``train`` exports
``RUN/model.onnx``); otherwise the dialog asks for one.

Training runs as ``python -m model.cli train … --progress-json`` in a :class:`QProcess`
(the app never imports TensorFlow); each stdout line is a JSON step record that drives a
progress dialog. Cancel kills the process: the run folder keeps its last epoch's
checkpoint, and starting a fine-tune into the same output folder resumes from it. On
success the session is asked to load ``RUN/model.onnx``. The command is built by an
injectable function (:func:`train_command`) so tests can run a fake trainer.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.common.progress import progress_dialog
from app.jobs.cli_process import cli_process
from app.jobs.coco_model import is_preset_source, preset_of
from app.jobs.finetune_run import (  # re-exported: the fine-tune API in one place
    EXPORTED_MODEL,
    RUN_CHECKPOINTS,
    RUN_CONFIG_FILE,
    RUN_WEIGHTS_FILE,
    CommandBuilder,
    FinetuneSettings,
    FinetuneVerdict,
    TrainProgress,
    default_output_folder,
    find_source_run,
    finished_epochs,
    format_eta,
    is_run_folder,
    parse_progress_line,
    read_verdict,
    run_training_defaults,
    train_command,
)
from app.session import Session
from model.errors import StudioError
from model.labels import FORMATS

STDERR_LINES = 40


# --------------------------------------------------------------------------------------
# The training process
# --------------------------------------------------------------------------------------
class TrainingProcess(QObject):
    """Runs ``argv`` in a QProcess and reports ``progressed(TrainProgress)``, then
    ``ended(state, detail)``: ``"succeeded"`` (detail: the exported model's Path),
    ``"cancelled"`` (detail: the run folder) or ``"failed"`` (detail: a message)."""

    progressed = Signal(object)
    ended = Signal(str, object)

    def __init__(self, argv: list[str], out: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.argv = list(argv)
        self.out = Path(out)
        self.last: TrainProgress | None = None
        self._stdout = b""
        self._stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self._stderr_partial = b""
        self._cancelled = False
        self._done = False
        self._reading = False
        self.process = cli_process(argv, self)
        self.process.readyReadStandardOutput.connect(self._read_stdout)
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.finished.connect(self._on_finished)
        self.process.errorOccurred.connect(self._on_error)

    def start(self) -> None:
        self.process.start()

    def is_running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    def cancel(self) -> None:
        """Kill the trainer (checkpoints are written per epoch, atomically by TensorFlow)."""
        if self.is_running():
            self._cancelled = True
            self.process.kill()

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr).strip()

    def _read_stdout(self) -> None:
        # A modal QProgressDialog processes events in setValue(): a slot of
        # ``progressed`` can bring us back here. Only the outer call reads, in order.
        if self._reading:
            return
        self._reading = True
        try:
            while chunk := self.process.readAllStandardOutput().data():
                self._stdout += chunk
                *lines, self._stdout = self._stdout.split(b"\n")
                for line in lines:
                    progress = parse_progress_line(line)
                    if progress is not None:
                        self.last = progress
                        self.progressed.emit(progress)
        finally:
            self._reading = False

    def _read_stderr(self) -> None:
        data = self._stderr_partial + self.process.readAllStandardError().data()
        *lines, self._stderr_partial = data.split(b"\n")
        for line in lines:
            text = line.decode("utf-8", "replace").rstrip()
            if text and "\r" not in text:  # skip progress-bar redraws
                self._stderr.append(text)

    def _on_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        if self._reading:  # inside a progress slot's event processing: end after it
            QTimer.singleShot(0, lambda: self._on_finished(exit_code, exit_status))
            return
        self._read_stdout()
        self._read_stderr()
        model = self.out / EXPORTED_MODEL
        if self._cancelled:
            self._end("cancelled", self.out)
        elif exit_status == QProcess.ExitStatus.NormalExit and exit_code == 0 and model.is_file():
            self._end("succeeded", model)
        else:
            how = f"exit code {exit_code}" if exit_status == QProcess.ExitStatus.NormalExit else "crashed"
            tail = self.stderr_tail() or "(no output)"
            self._end("failed", f"Training stopped ({how}).\n\n{tail}")

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._end("failed", f"Could not start {self.argv[0]}: {self.process.errorString()}")

    def _end(self, state: str, detail: object) -> None:
        if not self._done:
            self._done = True
            self.ended.emit(state, detail)


# --------------------------------------------------------------------------------------
# The dialog
# --------------------------------------------------------------------------------------
class FinetuneDialog(QDialog):
    """Asks for the source run, epochs, image size, batch, steps, learning rate and the
    output folder; ``settings()`` once accepted. OK refuses a folder that is not a run."""

    def __init__(
        self,
        *,
        data: Path,
        fmt: str,
        labelled: int,
        source_run: Path | None,
        defaults: FinetuneSettings | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Fine-tune on Saved Labels")
        self._data, self._fmt = Path(data), fmt
        base = defaults or FinetuneSettings(data=self._data, fmt=fmt, out=default_output_folder(data), init_from=Path())
        self._labels = base.labels
        self.source_edit = QLineEdit(str(source_run) if source_run else "")
        self.source_edit.setPlaceholderText(f"a training run folder (with {RUN_CONFIG_FILE})")
        self.out_edit = QLineEdit(str(base.out))
        self.resume_note = QLabel("")
        self.resume_note.setWordWrap(True)
        self.out_edit.textChanged.connect(self._update_resume_note)
        self._update_resume_note(self.out_edit.text())
        self.epochs = self._spin(1, 1000, base.epochs)
        self.size = self._spin(128, 2048, base.size, step=32)
        self.batch = self._spin(1, 256, base.batch)
        self.steps = self._spin(0, 100_000, base.steps_per_epoch)
        self.steps.setSpecialValueText("all images")
        self.learning_rate = QDoubleSpinBox()
        self.learning_rate.setDecimals(6)
        self.learning_rate.setRange(1e-6, 1.0)
        self.learning_rate.setSingleStep(1e-4)
        self.learning_rate.setValue(base.learning_rate)

        note = QLabel(
            f"Training data: {self._data} — {labelled} labelled image{'s' if labelled != 1 else ''} ({fmt.upper()})."
            + ("" if source_run else "\nThe model's training run was not found: choose its run folder.")
        )
        note.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Start from run", self._with_browse(self.source_edit, "Choose the model's training run folder"))
        form.addRow("Epochs", self.epochs)
        form.addRow("Image size", self.size)
        form.addRow("Batch size", self.batch)
        form.addRow("Steps per epoch", self.steps)
        form.addRow("Learning rate", self.learning_rate)
        form.addRow("Output folder", self._with_browse(self.out_edit, "Choose the output (run) folder"))
        form.addRow("", self.resume_note)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Start Fine-tuning")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.problem = QLabel("")
        self.problem.setStyleSheet("color: #b00020")
        self.problem.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)

    def settings(self) -> FinetuneSettings:
        return FinetuneSettings(
            data=self._data,
            fmt=self._fmt,
            out=Path(self.out_edit.text().strip()).expanduser(),
            init_from=Path(self.source_edit.text().strip()).expanduser(),
            epochs=self.epochs.value(),
            size=self.size.value(),
            batch=self.batch.value(),
            steps_per_epoch=self.steps.value(),
            learning_rate=self.learning_rate.value(),
            labels=self._labels,
        )

    def accept(self) -> None:
        source, out = self.source_edit.text().strip(), self.out_edit.text().strip()
        if not is_run_folder(source) and not is_preset_source(source):
            self.problem.setText(
                f"{source or 'No run folder'}: not a training run folder "
                f"(needs {RUN_CONFIG_FILE} and {RUN_WEIGHTS_FILE} or {RUN_CHECKPOINTS}/) nor a COCO preset."
            )
            return
        if not out:
            self.problem.setText("Choose an output folder.")
            return
        super().accept()

    def _update_resume_note(self, text: str) -> None:
        epochs = finished_epochs(text.strip()) if text.strip() else None
        self.resume_note.setText(
            "" if epochs is None else f"This run folder has a checkpoint after epoch {epochs}: training resumes "
            "from it (with the run's own network settings) up to the epochs above."
        )

    @staticmethod
    def _spin(low: int, high: int, value: int, *, step: int = 1) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setSingleStep(step)
        spin.setValue(value)
        return spin

    def _with_browse(self, edit: QLineEdit, title: str) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(edit, 1)
        button = QPushButton("Browse…")
        layout.addWidget(button)

        def browse() -> None:
            chosen = QFileDialog.getExistingDirectory(self, title, edit.text() or str(self._data))
            if chosen:
                edit.setText(chosen)

        button.clicked.connect(browse)
        return row


# --------------------------------------------------------------------------------------
# Window glue
# --------------------------------------------------------------------------------------
class FineTuner(QObject):
    """Model › Fine-tune on Saved Labels… for ``session``: the dialog, the training process,
    its progress dialog, and "load the new model?" (asked of the session). ``confirm_leave``
    saves (or not) unsaved labels first and says whether to go on; dialogs are children of
    ``parent_widget``. ``command_builder`` makes the argv (default :func:`train_command`).
    Signals ``started(TrainingProcess)`` and ``ended(state, detail)`` (see
    :class:`TrainingProcess`)."""

    started = Signal(object)
    ended = Signal(str, object)

    def __init__(
        self,
        session: Session,
        *,
        confirm_leave: Callable[[], bool] = lambda: True,
        parent_widget: QWidget | None = None,
        command_builder: CommandBuilder = train_command,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._confirm_leave = confirm_leave
        self._window = parent_widget
        self.command_builder = command_builder
        self.dialog: FinetuneDialog | None = None
        self.last_verdict: FinetuneVerdict | None = None  # of the last finished fine-tune
        self.progress_dialog: QProgressDialog | None = None
        self.process: TrainingProcess | None = None
        self._epochs = 0
        self._started_at: float | None = None  # monotonic time of the first step record
        self._first_step = 0
        self._last_val_ap50: float | None = None
        self._resumable: FinetuneSettings | None = None  # a cancelled run with a checkpoint
        self.action = QAction("&Fine-tune on Saved Labels…", parent_widget or self)
        self.action.setStatusTip("train from the current model on the saved labels of this folder (in the background)")
        self.action.triggered.connect(self.open_dialog)

    def data_folder(self) -> Path | None:
        """The folder of the shown image (else of the first open image)."""
        folder = self._session.image_folder()
        return folder.absolute() if folder is not None else None

    def open_dialog(self) -> FinetuneDialog | None:
        """Show the fine-tune dialog (non-blocking; OK starts training). None when there
        is nothing to fine-tune (a message says why)."""
        window = self._window
        model = self._session.model
        folder = self.data_folder()
        if self.process is not None and self.process.is_running():
            self._status("A fine-tune is already running")
            if self.progress_dialog is not None:
                self.progress_dialog.show()
                self.progress_dialog.raise_()
            return None
        if model is None or folder is None:
            QMessageBox.information(window, "Fine-tune", "Open a model and a folder of labelled images first.")
            return None
        if not self._confirm_leave():  # unsaved labels: save them (or not) first
            return None
        fmt = self._session.label_format
        labels_dir = self._session.label_dir_for(folder)
        labelled = self._count_labelled(folder, fmt, labels_dir)
        if labelled == 0:
            QMessageBox.information(window, "Fine-tune", f"{folder} has no saved labels ({fmt.upper()}) to train on.")
            return None
        contract = model.contract
        source = find_source_run(model.path, contract.provenance)
        if source is None and preset_of(contract.provenance):  # a COCO model: start from its preset
            source = Path(preset_of(contract.provenance))
        defaults = run_training_defaults(source)
        base = FinetuneSettings(
            data=folder,
            fmt=fmt,
            out=default_output_folder(folder),
            init_from=source or Path(),
            size=defaults.get("size", contract.default_size),
            batch=defaults.get("batch", 8),
            labels=labels_dir,
        )
        resumable = self._resumable
        if resumable is not None and resumable.data == folder and finished_epochs(resumable.out) is not None:
            base = resumable  # offer to resume the cancelled run
        dialog = FinetuneDialog(data=folder, fmt=fmt, labelled=labelled, source_run=source, defaults=base, parent=window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.start(dialog.settings()))
        self.dialog = dialog
        dialog.open()
        return dialog

    def start(self, settings: FinetuneSettings) -> TrainingProcess:
        """Start the training process for ``settings`` with a progress dialog."""
        process = TrainingProcess(self.command_builder(settings), settings.out, parent=self)
        self._epochs = settings.epochs
        self._resumable = settings
        self._started_at, self._first_step, self._last_val_ap50 = None, 0, None
        # not modal: labelling goes on meanwhile
        progress = progress_dialog("Starting training (loading TensorFlow)…", "Fine-tuning", parent=self._window, on_cancel=self.cancel, min_width=420)
        process.progressed.connect(self._on_progress)
        process.ended.connect(self._on_ended)
        self.process, self.progress_dialog = process, progress
        progress.show()
        process.start()
        self._status(f"Fine-tuning into {settings.out}…")
        self.started.emit(process)
        return process

    def cancel(self) -> None:
        if self.process is not None:
            self.process.cancel()

    def _on_progress(self, progress: TrainProgress) -> None:
        dialog = self.progress_dialog
        if dialog is None:
            return
        if progress.val_ap50 is not None:
            self._last_val_ap50 = progress.val_ap50
        val = "" if self._last_val_ap50 is None else f"\nValidation AP50 after the last epoch: {self._last_val_ap50:.3f}"
        if progress.step >= progress.total:
            dialog.setRange(0, 0)
            dialog.setLabelText(f"Exporting {EXPORTED_MODEL}… (cls loss {progress.cls_loss:.3f}, box loss {progress.box_loss:.3f}){val}")
            return
        dialog.setRange(0, max(progress.total, 1))
        dialog.setValue(progress.step)
        now = time.monotonic()
        if self._started_at is None:  # the clock starts at the first step (TensorFlow's start-up excluded)
            self._started_at, self._first_step = now, progress.step
        done = progress.step - self._first_step
        eta = f" · about {format_eta((now - self._started_at) / done * (progress.total - progress.step))} left" if done > 0 else ""
        epochs = f"/{self._epochs}" if self._epochs else ""
        losses = "" if math.isnan(progress.cls_loss) else f" · cls loss {progress.cls_loss:.3f} · box loss {progress.box_loss:.3f}"
        dialog.setLabelText(f"Epoch {progress.epoch}{epochs} · step {progress.step}/{progress.total}{losses}{eta}{val}")

    def _on_ended(self, state: str, detail: object) -> None:
        if self.progress_dialog is not None:
            self.progress_dialog.canceled.disconnect(self.cancel)
            self.progress_dialog.close()
            self.progress_dialog.deleteLater()
            self.progress_dialog = None
        window = self._window
        if state == "succeeded":
            model = Path(str(detail))
            verdict = read_verdict(model.parent)
            self.last_verdict = verdict
            self._status(f"Fine-tuned model written to {model}")
            buttons = QMessageBox.StandardButton
            if verdict.improved is False:  # measured, and not better: do not offer to swap it in
                QMessageBox.information(
                    window,
                    "Fine-tuning finished",
                    f"The fine-tuned model is {model}.\n\n{verdict.describe()}\n\nThe current model stays loaded "
                    "(File › Open Model (.onnx)… loads the new one anyway).",
                )
            else:
                answer = QMessageBox.question(
                    window,
                    "Fine-tuning finished",
                    f"The fine-tuned model is {model}.\n\n{verdict.describe()}\n\nLoad it now?",
                    buttons.Yes | buttons.No,
                    buttons.Yes,
                )
                if answer == buttons.Yes:
                    self._session.request_model(model)
        elif state == "cancelled":
            epochs = finished_epochs(Path(str(detail)))
            if epochs is None:
                self._status("Fine-tuning cancelled before its first epoch ended: nothing to resume")
            else:
                self._status(f"Fine-tuning cancelled; {detail} keeps its checkpoint after epoch {epochs} (Fine-tune again to resume)")
        else:
            QMessageBox.critical(window, "Fine-tuning failed", str(detail))
        self.ended.emit(state, detail)

    def confirm_close(self) -> bool:
        """Before the window closes: True when no fine-tune runs or the user agrees to
        stop it."""
        if self.process is None or not self.process.is_running():
            return True
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self._window,
            "Fine-tuning is running",
            f"Closing stops the fine-tuning into {self.process.out} (it keeps the checkpoint of its last "
            "finished epoch, so it can be resumed). Close anyway?",
            buttons.Yes | buttons.No,
            buttons.No,
        )
        return answer == buttons.Yes

    def shutdown(self, msecs: int = 3000) -> None:
        """Kill a running trainer (the app is closing)."""
        if self.process is not None and self.process.is_running():
            self.process.cancel()
            self.process.process.waitForFinished(msecs)

    @staticmethod
    def _count_labelled(folder: Path, fmt: str, labels_dir: Path | None = None) -> int:
        label_format = FORMATS.get(fmt)
        if label_format is None:
            return 0
        from model.imageio import list_images

        try:
            images = list_images(folder)
        except StudioError:
            return 0
        if not label_format.per_image_files:  # a folder file (COCO) labels the folder's images
            return len(images) if label_format.label_path_for(folder / "x.jpg", labels_dir).is_file() else 0
        return sum(1 for image in images if label_format.label_path_for(image, labels_dir).is_file())

    def _status(self, text: str) -> None:
        self._session.show_message(text, 10000)


__all__ = [
    "FineTuner",
    "FinetuneDialog",
    "FinetuneSettings",
    "FinetuneVerdict",
    "TrainProgress",
    "TrainingProcess",
    "default_output_folder",
    "finished_epochs",
    "format_eta",
    "find_source_run",
    "is_run_folder",
    "parse_progress_line",
    "read_verdict",
    "train_command",
]
