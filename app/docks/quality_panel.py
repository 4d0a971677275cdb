"""The quality dock: how the current model agrees with the saved labels of the open images.

A view only (:class:`app.docks.quality_monitor.QualityMonitor` computes and pushes the numbers):
precision, recall and AP50 at the current thresholds, how many images they cover, how many
images and labels were left out or ignored because the labels are the model's own
detections accepted unedited (and which images count because the user rejected some of its
detections there), a "Detect all labelled images" button with a progress bar
and Cancel while that runs, and the images where model and labels disagree most. Signals: ``image_activated(Path)`` when
the user picks an image of that list, ``detect_requested()`` and ``cancel_requested()``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDockWidget,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from model.quality import MATCH_IOU, ImageAgreement, QualityReport

#: How many disagreeing images the list shows.
LIST_LIMIT = 100
PATH_ROLE = Qt.ItemDataRole.UserRole


def _number(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3f}"


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def model_output_text(report: QualityReport) -> str:
    """What the report left out or ignored as the model's own unedited detections, and what
    it counted because the user rejected some of them ("" when nothing)."""
    parts = []
    if report.left_out_images:
        parts.append(
            f"{_count(report.left_out_images, 'image')} left out ({_count(report.left_out_labels, 'label')}): "
            "labels accepted unedited from this model."
        )
    if report.ignored_labels:
        where = "also have verified labels or rejected detections" if report.reviewed_images else "also have verified labels"
        parts.append(
            f"{_count(report.ignored_labels, 'more label' if report.left_out_images else 'label')} accepted unedited from this model, in images that "
            f"{where}, {'is' if report.ignored_labels == 1 else 'are'} ignored: neither found "
            f"nor missed ({_count(report.ignored_detections, 'detection')} on them not counted)."
        )
    if report.reviewed_images:
        parts.append(
            f"{_count(report.reviewed_images, 'image')} whose labels are all accepted unedited from this model "
            f"{'counts' if report.reviewed_images == 1 else 'count'}: detections of this model were rejected there."
        )
    if report.rejected_false_positives:
        one = report.rejected_false_positives == 1
        parts.append(
            f"{_count(report.rejected_false_positives, 'detection')} rejected by the user {'is' if one else 'are'} still "
            f"produced: counted as false {'positive' if one else 'positives'}."
        )
    return " ".join(parts)


MODEL_OUTPUT_TIP = (
    "Only labels a person drew, edited, or accepted from another model are evidence.\n"
    "A label that is this model's own detection, accepted and saved unedited, agrees with it by construction:\n"
    "an image with only such labels is left out; elsewhere they are ignored regions.\n"
    "An image where this model's detections were rejected was reviewed: it counts (its own labels still ignored),\n"
    "and a rejected detection the model still produces is a false positive."
)


class QualityPanel(QWidget):
    image_activated = Signal(object)  # Path
    detect_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._values: dict[str, QLabel] = {}
        grid = QGridLayout()
        for column, (name, title, tip) in enumerate(
            (
                ("precision", "Precision", "matched detections / detections shown (IoU ≥ 0.5, same class)"),
                ("recall", "Recall", "matched labels / labels"),
                ("ap50", "AP50", "COCO AP at IoU 0.5 (pycocotools) of the detections shown"),
            )
        ):
            caption = QLabel(title)
            caption.setToolTip(tip)
            value = QLabel("–")
            value.setObjectName(f"quality_{name}")
            value.setToolTip(tip)
            font = value.font()
            font.setPointSizeF(font.pointSizeF() * 1.5)
            font.setBold(True)
            value.setFont(font)
            grid.addWidget(caption, 0, column, Qt.AlignmentFlag.AlignHCenter)
            grid.addWidget(value, 1, column, Qt.AlignmentFlag.AlignHCenter)
            self._values[name] = value
        self._summary = QLabel("Open a folder with saved labels and a model.")
        self._summary.setWordWrap(True)
        self._coverage = QLabel("")
        self._coverage.setWordWrap(True)
        self._model_output = QLabel("")
        self._model_output.setObjectName("quality_model_output")
        self._model_output.setWordWrap(True)
        self._model_output.setToolTip(MODEL_OUTPUT_TIP)

        self._detect = QPushButton("Detect All Labelled Images")
        self._detect.setToolTip("run the model on every labelled image of the list (in the background)")
        self._detect.setEnabled(False)
        self._progress = QProgressBar()
        self._progress.setVisible(False)
        self._cancel = QPushButton("Cancel")
        self._cancel.setVisible(False)
        batch_row = QHBoxLayout()
        batch_row.addWidget(self._detect, 1)
        batch_row.addWidget(self._progress, 1)
        batch_row.addWidget(self._cancel)

        self._list = QListWidget()
        self._list.setToolTip("click an image to open it")
        self._list.setMinimumHeight(48)  # the dock fits a 768 px screen; the list scrolls
        list_box = QGroupBox(f"Most disagreement (FP + FN, IoU {MATCH_IOU:g})")
        list_box.setToolTip(f"images ranked by false positives + false negatives at IoU {MATCH_IOU:g}")
        QVBoxLayout(list_box).addWidget(self._list)

        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self._summary)
        layout.addWidget(self._coverage)
        layout.addWidget(self._model_output)
        layout.addLayout(batch_row)
        layout.addWidget(list_box, 1)

        self._detect.clicked.connect(self.detect_requested)
        self._cancel.clicked.connect(self.cancel_requested)
        self._list.itemClicked.connect(self._on_item)
        self._list.itemActivated.connect(self._on_item)

    # --- public widgets and values (tests read them like a user) ----------------------
    @property
    def detect_button(self) -> QPushButton:
        return self._detect

    @property
    def cancel_button(self) -> QPushButton:
        return self._cancel

    @property
    def progress_bar(self) -> QProgressBar:
        return self._progress

    @property
    def disagreement_list(self) -> QListWidget:
        return self._list

    def value_text(self, name: str) -> str:
        """The shown text of ``precision``, ``recall`` or ``ap50``."""
        return self._values[name].text()

    def summary_text(self) -> str:
        lines = (self._summary.text(), self._coverage.text(), self._model_output.text())
        return "\n".join(line for line in lines if line)

    def listed_paths(self) -> list[Path]:
        return [self._list.item(row).data(PATH_ROLE) for row in range(self._list.count())]

    # --- what the monitor pushes -------------------------------------------------------
    def show_message(self, text: str) -> None:
        """No numbers to show (no model, no labelled image with detections): say why."""
        for value in self._values.values():
            value.setText("–")
        self._summary.setText(text)
        self._model_output.setText("")
        self._list.clear()

    def show_pending(self, text: str) -> None:
        """New numbers are being computed: "…" instead of numbers that no longer hold."""
        for value in self._values.values():
            value.setText("…")
        self._summary.setText(text)

    def show_report(self, report: QualityReport, *, paths: dict[str, Path], settings_text: str) -> None:
        """Show ``report`` (AP50 stays "…" until :meth:`show_ap50`). ``paths`` maps the
        report's image keys back to the image list's paths."""
        self._model_output.setText(model_output_text(report))
        if report.num_images == 0:
            for value in self._values.values():
                value.setText("–")
            self._summary.setText("No labelled image with human-verified labels to compare.")
            self._list.clear()
            return
        self._values["precision"].setText(_number(report.precision))
        self._values["recall"].setText(_number(report.recall))
        self._values["ap50"].setText("…" if report.num_labels else "–")
        images = report.num_images
        self._summary.setText(
            f"{images} image{'s' if images != 1 else ''} · {report.num_labels} labels · "
            f"{report.num_detections} detections ({report.true_positives} matched) at {settings_text}"
        )
        self._fill_list(report.disagreements(LIST_LIMIT), paths)

    def show_ap50(self, ap50: float, per_class: dict[str, float]) -> None:
        self._values["ap50"].setText(_number(ap50))
        lines = [f"{name}: {_number(value)}" for name, value in per_class.items()]
        self._values["ap50"].setToolTip("AP50 per class\n" + "\n".join(lines) if lines else "")

    def set_coverage(self, text: str, *, can_detect: bool) -> None:
        self._coverage.setText(text)
        self._detect.setEnabled(can_detect)

    def set_batch_running(self, running: bool) -> None:
        self._detect.setVisible(not running)
        self._progress.setVisible(running)
        self._cancel.setVisible(running)
        if running:
            self._progress.setRange(0, 0)

    def set_batch_progress(self, done: int, total: int) -> None:
        self._progress.setRange(0, max(total, 1))
        self._progress.setValue(done)
        self._progress.setFormat(f"{done} / {total}")

    # --- internals ---------------------------------------------------------------------
    def _fill_list(self, worst: Sequence[ImageAgreement], paths: dict[str, Path]) -> None:
        current = self._list.currentItem()
        selected = current.data(PATH_ROLE) if current is not None else None
        self._list.setUpdatesEnabled(False)
        try:
            self._list.clear()
            for agreement in worst:
                path = paths.get(agreement.key, Path(agreement.key))
                text = f"{path.name}    {agreement.false_positives} FP · {agreement.false_negatives} FN"
                item = QListWidgetItem(text)
                item.setData(PATH_ROLE, path)
                item.setToolTip(f"{path}\n{agreement.true_positives} matched")
                self._list.addItem(item)
                if path == selected:
                    self._list.setCurrentItem(item)
        finally:
            self._list.setUpdatesEnabled(True)

    def _on_item(self, item: QListWidgetItem) -> None:
        self.image_activated.emit(item.data(PATH_ROLE))


class QualityDock(QDockWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Quality vs Labels", parent)
        self.setObjectName("QualityDock")
        self._panel = QualityPanel()
        self.setWidget(self._panel)

    @property
    def panel(self) -> QualityPanel:
        return self._panel


__all__ = ["QualityDock", "QualityPanel", "model_output_text"]
