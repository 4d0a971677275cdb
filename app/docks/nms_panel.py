"""NMS panel: score / IoU thresholds, max detections, class filter, inference size, and
the per-level detection counts at the current thresholds.

The panel only edits a :class:`model.postprocess.PostProcessor` (the post-processing
settings live in model/): every change emits the new one in ``settings_changed``. The dock
writes it to the :class:`app.session.Session`, which holds the current one and re-runs it on
the cached candidates (no network run, no worker).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.session import Session
from model.postprocess import Detections, PostProcessor

INFERENCE_SIZES = tuple(range(320, 1281, 32))
MAX_DETECTIONS_LIMIT = 1000


class _LinkedFraction(QWidget):
    """A 0..1 slider (steps of 0.01) linked to a spin box."""

    value_changed = Signal(float)

    def __init__(self, value: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setPageStep(5)
        self.spin = QDoubleSpinBox()
        self.spin.setRange(0.0, 1.0)
        self.spin.setSingleStep(0.01)
        self.spin.setDecimals(2)
        self.spin.setKeyboardTracking(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)
        self.set_value(value)
        self.slider.valueChanged.connect(self._on_slider)
        self.spin.valueChanged.connect(self._on_spin)

    def value(self) -> float:
        return round(self.spin.value(), 2)

    def set_value(self, value: float) -> None:
        value = min(1.0, max(0.0, float(value)))
        for widget, v in ((self.slider, round(value * 100)), (self.spin, value)):
            widget.blockSignals(True)
            widget.setValue(v)
            widget.blockSignals(False)

    def _on_slider(self, position: int) -> None:
        self.spin.blockSignals(True)
        self.spin.setValue(position / 100.0)
        self.spin.blockSignals(False)
        self.value_changed.emit(self.value())

    def _on_spin(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(value * 100))
        self.slider.blockSignals(False)
        self.value_changed.emit(self.value())


class NmsPanel(QWidget):
    """Signal ``settings_changed(PostProcessor)``: the user changed a setting (the payload
    is the whole new post-processor)."""

    settings_changed = Signal(object)  # PostProcessor
    inference_size_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        defaults = PostProcessor()
        self._settings = defaults  # what the controls show; each edit replaces it
        self._score = _LinkedFraction(defaults.score_thresh)
        self._iou = _LinkedFraction(defaults.iou_thresh)
        self._max_slider = QSlider(Qt.Orientation.Horizontal)
        self._max_slider.setRange(1, MAX_DETECTIONS_LIMIT)
        self._max_spin = QSpinBox()
        self._max_spin.setRange(1, MAX_DETECTIONS_LIMIT)
        self._max_spin.setKeyboardTracking(False)
        self._set_max(defaults.max_detections)
        max_row = QHBoxLayout()
        max_row.addWidget(self._max_slider, 1)
        max_row.addWidget(self._max_spin)

        self._size = QComboBox()
        for size in INFERENCE_SIZES:
            self._size.addItem(str(size), size)
        self._size.setToolTip("Longest image side fed to the network (runs the network again)")

        form = QFormLayout()
        form.addRow("Score ≥", self._score)
        form.addRow("IoU ≤", self._iou)
        form.addRow("Max detections", max_row)
        form.addRow("Inference size", self._size)

        self._classes = QListWidget()
        self._classes.setMaximumHeight(88)  # ~5 rows, then it scrolls: the dock fits a 768 px screen
        all_button = QPushButton("All")
        none_button = QPushButton("None")
        buttons = QVBoxLayout()
        buttons.addWidget(all_button)
        buttons.addWidget(none_button)
        buttons.addStretch(1)
        class_row = QHBoxLayout()
        class_row.setContentsMargins(0, 0, 0, 0)
        class_row.addWidget(self._classes, 1)
        class_row.addLayout(buttons)
        form.addRow("Classes", class_row)

        self._counts = QLabel("–")
        self._counts.setTextFormat(Qt.TextFormat.PlainText)
        self._counts.setWordWrap(True)
        self._counts.setToolTip("detections per pyramid level at the current thresholds")
        self._counts.setMinimumHeight(self._counts.fontMetrics().lineSpacing() * 2 + 2)  # room to wrap: no jump
        self._level_counts: dict[str, int] = {}
        form.addRow("Per level", self._counts)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(form)
        layout.addStretch(1)

        self._score.value_changed.connect(lambda value: self._change(score_thresh=value))
        self._iou.value_changed.connect(lambda value: self._change(iou_thresh=value))
        self._max_slider.valueChanged.connect(self._on_max_slider)
        self._max_spin.valueChanged.connect(self._on_max_spin)
        self._classes.itemChanged.connect(self._on_class_checked)
        all_button.clicked.connect(lambda: self._check_all(True))
        none_button.clicked.connect(lambda: self._check_all(False))
        self._size.currentIndexChanged.connect(self._on_size)

    # --- public widgets (tests drive them like a user) ------------------------------
    @property
    def score_slider(self) -> QSlider:
        return self._score.slider

    @property
    def score_spin(self) -> QDoubleSpinBox:
        return self._score.spin

    @property
    def iou_slider(self) -> QSlider:
        return self._iou.slider

    @property
    def max_slider(self) -> QSlider:
        return self._max_slider

    @property
    def size_combo(self) -> QComboBox:
        return self._size

    @property
    def class_list(self) -> QListWidget:
        return self._classes

    # --- settings --------------------------------------------------------------------
    def settings(self) -> PostProcessor:
        """The post-processor the controls show (the last one emitted)."""
        return self._settings

    def set_settings(self, settings: PostProcessor) -> None:
        """Show ``settings`` (class filter included) and emit ``settings_changed`` once.
        Thresholds are shown to 0.01 and *Max detections* (both caps) shows ``max_total``;
        what is emitted is what the controls show."""
        self._score.set_value(settings.score_thresh)
        self._iou.set_value(settings.iou_thresh)
        self._set_max(settings.max_total)
        self._classes.blockSignals(True)
        for row in range(self._classes.count()):
            on = settings.class_ids is None or row in settings.class_ids
            self._classes.item(row).setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        self._classes.blockSignals(False)
        self._settings = settings.with_(
            score_thresh=self._score.value(),
            iou_thresh=self._iou.value(),
            max_detections=self._max_spin.value(),
            class_ids=self._checked_classes(),
        )
        self._emit()

    def set_class_names(self, names: Sequence[str]) -> None:
        """Replace the class filter with ``names``, all checked; ``settings_changed`` only
        when that drops a filter (a new model: its classes are all shown)."""
        self._classes.blockSignals(True)
        self._classes.clear()
        for class_id, name in enumerate(names):
            item = QListWidgetItem(f"{class_id}: {name}")
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            self._classes.addItem(item)
        self._classes.blockSignals(False)
        if self._settings.class_ids is not None:
            self._change(class_ids=None)

    def inference_size(self) -> int:
        return int(self._size.currentData())

    def set_inference_size(self, size: int) -> None:
        """Show ``size`` (added to the list if it is off the 32-step grid); no signal."""
        index = self._size.findData(int(size))
        self._size.blockSignals(True)
        if index < 0:
            position = sum(1 for s in INFERENCE_SIZES if s < size)
            self._size.insertItem(position, str(size), int(size))
            index = position
        self._size.setCurrentIndex(index)
        self._size.blockSignals(False)

    def set_level_counts(self, level_names: Sequence[str], counts: Sequence[int]) -> None:
        self._level_counts = {name: int(count) for name, count in zip(level_names, counts)}
        if not self._level_counts:
            self._counts.setText("–")
            return
        total = sum(self._level_counts.values())
        parts = [f"{name}: {count}" for name, count in self._level_counts.items()]
        self._counts.setText(" · ".join(parts) + f" — total {total}")

    def level_counts(self) -> dict[str, int]:
        return dict(self._level_counts)

    # --- internals -------------------------------------------------------------------
    def _checked_classes(self) -> frozenset[int] | None:
        checked = [
            row for row in range(self._classes.count()) if self._classes.item(row).checkState() == Qt.CheckState.Checked
        ]
        if len(checked) == self._classes.count():
            return None
        return frozenset(checked)

    def _check_all(self, on: bool) -> None:
        self._classes.blockSignals(True)
        for row in range(self._classes.count()):
            self._classes.item(row).setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        self._classes.blockSignals(False)
        self._change(class_ids=self._checked_classes())

    def _on_class_checked(self, _item: QListWidgetItem) -> None:
        self._change(class_ids=self._checked_classes())

    def _set_max(self, value: int) -> None:
        for widget in (self._max_slider, self._max_spin):
            widget.blockSignals(True)
            widget.setValue(int(value))
            widget.blockSignals(False)

    def _on_max_slider(self, value: int) -> None:
        self._max_spin.blockSignals(True)
        self._max_spin.setValue(value)
        self._max_spin.blockSignals(False)
        self._change(max_detections=value)

    def _on_max_spin(self, value: int) -> None:
        self._max_slider.blockSignals(True)
        self._max_slider.setValue(value)
        self._max_slider.blockSignals(False)
        self._change(max_detections=value)

    def _on_size(self, _index: int) -> None:
        self.inference_size_changed.emit(self.inference_size())

    def _change(self, **changes: object) -> None:
        self._settings = self._settings.with_(**changes)
        self._emit()

    def _emit(self) -> None:
        self.settings_changed.emit(self._settings)


class NmsDock(QDockWidget):
    """The Detection dock on ``session``: the panel writes the post-processing and the
    inference size to the session, and shows the model's classes and the level counts of
    the session's detections."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Detection", parent)
        self.setObjectName("NmsDock")
        self._session = session
        self._panel = NmsPanel()
        self.setWidget(self._panel)
        panel = self._panel
        panel.set_settings(session.post_processor)
        panel.settings_changed.connect(session.set_post_processor)
        panel.inference_size_changed.connect(session.set_inference_size)
        session.post_processor_changed.connect(self._show_settings)
        session.model_changed.connect(lambda model: panel.set_class_names(model.class_names))
        session.inference_size_changed.connect(panel.set_inference_size)
        session.detections_changed.connect(self._show_level_counts)

    def _show_settings(self, post_processor: PostProcessor) -> None:
        if post_processor != self._panel.settings():
            self._panel.set_settings(post_processor)

    def _show_level_counts(self, detections: Detections | None) -> None:
        model = self._session.model
        if detections is None or model is None:
            self._panel.set_level_counts([], [])
            return
        names = model.level_names
        counts = np.bincount(np.asarray(detections.level_ids, dtype=np.int64), minlength=len(names))
        self._panel.set_level_counts(list(names), counts.tolist())

    @property
    def panel(self) -> NmsPanel:
        return self._panel


__all__ = ["INFERENCE_SIZES", "NmsDock", "NmsPanel"]
