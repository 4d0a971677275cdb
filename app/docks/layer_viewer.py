"""Layer viewer dock: the feature pyramid of the last network run.

One thumbnail per level the model declares (``contract.levels``: P3..P7, or P2..P6 ...)
with its name, stride and shape h×w×F; a channel reduction (mean / max / L2 / one channel)
or the class score map (where does this level see objects); a colormap; one level shown
large and, optionally, as an overlay on the canvas. Selecting a detection highlights the
pyramid cell whose anchor produced it.

All maps are computed with vectorised numpy. Colours follow one scale shared by every
level (the default for class score maps: 0..1, so a P7 cell scoring 0.01 is dark and a P3
cell scoring 0.9 bright) or each level's own min..max (the default for activations); a
colour bar under the maps gives the values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.common.colors import COLORMAPS, colorize, normalize_to_uint8, rgb_to_qimage, value_range
from app.docks.color_bar import ColorBar
from app.docks.level_view import LevelImageView
from app.session import Session

REDUCTIONS = ("mean", "max", "l2", "channel")
#: Colour scales: one range for every level, or each level's own min..max.
SCALES = ("shared", "level")
SCALE_LABELS = {"shared": "Shared", "level": "Per level"}
#: The scale each source starts with (a user's choice is then kept per source).
DEFAULT_SCALE = {"activations": "level", "scores": "shared"}
REDUCTION_LABELS = {"mean": "Mean", "max": "Max", "l2": "L2 norm", "channel": "One channel"}
SOURCES = ("activations", "scores")


@dataclass(frozen=True)
class LevelInfo:
    name: str
    stride: int
    shape: tuple[int, int, int] | None  # (h, w, F) of the last run, None before one


def reduce_channels(activations: np.ndarray, mode: str, channel: int = 0) -> np.ndarray:
    """(h, w, F) activations -> (h, w) float32 by ``mode`` in :data:`REDUCTIONS`."""
    activations = np.asarray(activations, dtype=np.float32)
    if mode == "mean":
        return activations.mean(axis=-1)
    if mode == "max":
        return activations.max(axis=-1)
    if mode == "l2":
        return np.sqrt(np.einsum("hwf,hwf->hw", activations, activations))
    if mode == "channel":
        channel = min(max(int(channel), 0), activations.shape[-1] - 1)
        return activations[..., channel].copy()
    raise ValueError(f"unknown reduction {mode!r}; choose one of {REDUCTIONS}")


Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in original-image pixels


def cell_rect(row: int, col: int, *, stride: int, scale: float) -> Box:
    """xyxy original-image rect covered by cell (row, col) of a level with ``stride``, for
    a run at ``scale`` network pixels per original pixel."""
    side = stride / scale
    return (col * side, row * side, (col + 1) * side, (row + 1) * side)


def overlay_rgb(rgb: np.ndarray, *, stride: int, scale: float, image_hw: tuple[int, int]) -> np.ndarray:
    """Crop a level's (h, w, 3) colour map to the cells over the image and expand it so
    that, stretched over the whole image, every cell lands where it belongs.

    The network input is the image resized by ``scale`` and padded bottom/right; the
    result is the map at network-input resolution cropped to the resized image.
    """
    height = max(1, round(image_hw[0] * scale))
    width = max(1, round(image_hw[1] * scale))
    rows = min(rgb.shape[0], math.ceil(height / stride))
    cols = min(rgb.shape[1], math.ceil(width / stride))
    crop = np.ascontiguousarray(rgb[:rows, :cols])
    expanded = cv2.resize(crop, (cols * stride, rows * stride), interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(expanded[:height, :width])


class _LevelTile(QFrame):
    """Thumbnail of one level: the map, 'P3' and its grid '48×48' (stride and channels in
    the tooltip and the large view's caption: a narrow dock never cuts the text)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = LevelImageView(40)
        self.caption = QLabel()
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.caption)


class LayerViewer(QWidget):
    """The pyramid view. Observes the window's network output; emits what the canvas
    should draw (``overlay_changed``, ``cell_highlighted``)."""

    overlay_changed = Signal(object, float)  # QImage | None, opacity 0..1
    cell_highlighted = Signal(object)  # xyxy Box in original-image pixels | None
    level_selected = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._contract: Any = None
        self._output: Any = None
        self._levels: list[LevelInfo] = []
        self._values: list[np.ndarray] = []  # (h, w) displayed values per level
        self._rgb: list[np.ndarray] = []  # (h, w, 3) colour maps per level
        self._ranges: list[tuple[float, float]] = []  # (low, high) of the colour scale per level
        self._selected = 0
        self._cell: tuple[int, int, int] | None = None  # (level, row, col)
        self._hover_text = ""
        self._overlay_cache: tuple[int, QImage] | None = None  # (level, image) of the last overlay

        self._source = QComboBox()
        self._source.addItem("Activations", "activations")
        self._source.addItem("Class scores", "scores")
        self._source.setItemData(1, "the per-level class score map: where this level sees objects", Qt.ItemDataRole.ToolTipRole)
        self._reduction = QComboBox()
        for mode in REDUCTIONS:
            self._reduction.addItem(REDUCTION_LABELS[mode], mode)
        self._channel = QSpinBox()
        self._channel.setRange(0, 0)
        self._class = QComboBox()
        self._class.addItem("All classes", None)
        self._colormap = QComboBox()
        for name in COLORMAPS:
            self._colormap.addItem(name, name)
        self._scale = QComboBox()
        for mode in SCALES:
            self._scale.addItem(SCALE_LABELS[mode], mode)
        self._scale.setToolTip("one colour scale for every level, or each level stretched to its own min..max")
        self._scale_by_source = dict(DEFAULT_SCALE)
        self._scale.setCurrentIndex(SCALES.index(self._scale_by_source[self._source.currentData()]))
        # two columns of label + drop-down: six controls in three rows
        controls = QGridLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.setHorizontalSpacing(4)
        controls.setVerticalSpacing(3)
        for index, (text, widget) in enumerate(
            (
                ("Source", self._source),
                ("Colormap", self._colormap),
                ("Channels", self._reduction),
                ("Channel", self._channel),
                ("Class", self._class),
                ("Scale", self._scale),
            )
        ):
            row, column = divmod(index, 2)
            widget.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # shrink with the dock, never clip it
            widget.setMinimumWidth(60)
            if isinstance(widget, QComboBox):
                widget.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
                widget.setMinimumContentsLength(4)
                widget.view().setMinimumWidth(widget.view().sizeHintForColumn(0) + 24)  # the open list shows whole names
            label = QLabel(text)
            label.setBuddy(widget)
            controls.addWidget(label, row, column * 2)
            controls.addWidget(widget, row, column * 2 + 1)
        controls.setColumnStretch(1, 1)
        controls.setColumnStretch(3, 1)

        self._strip = QWidget()
        self._strip_layout = QHBoxLayout(self._strip)
        self._strip_layout.setContentsMargins(0, 0, 0, 0)
        self._strip_layout.setSpacing(2)
        self._tiles: list[_LevelTile] = []

        self._large = LevelImageView(96)
        self._large.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Expanding)
        self._large_caption = QLabel()
        self._large_caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._color_bar = ColorBar()
        self._info = QLabel(" ")
        self._info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._info.setWordWrap(True)  # a long hover text wraps instead of widening the dock
        self._info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self._info.setFixedHeight(self._info.fontMetrics().lineSpacing() * 2 + 2)
        self._overlay = QCheckBox("Overlay on image")
        self._opacity = QSlider(Qt.Orientation.Horizontal)
        self._opacity.setRange(0, 100)
        self._opacity.setValue(50)
        overlay_row = QHBoxLayout()
        overlay_row.addWidget(self._overlay)
        overlay_row.addWidget(QLabel("Opacity"))
        overlay_row.addWidget(self._opacity, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(controls)
        layout.addLayout(overlay_row)
        layout.addWidget(self._strip)
        layout.addWidget(self._color_bar)
        layout.addWidget(self._large_caption)
        layout.addWidget(self._large, 1)
        layout.addWidget(self._info)

        self._source.currentIndexChanged.connect(self._on_source)
        self._scale.currentIndexChanged.connect(self._on_scale)
        for combo in (self._reduction, self._class, self._colormap):
            combo.currentIndexChanged.connect(self._recompute)
        self._channel.valueChanged.connect(self._recompute)
        self._overlay.toggled.connect(self._emit_overlay)
        self._opacity.valueChanged.connect(self._emit_overlay)
        self._large.hovered.connect(lambda r, c: self._on_hover(self._selected, r, c))
        self._update_enabled()

    # --- public accessors (tests, window) -------------------------------------------
    @property
    def source_combo(self) -> QComboBox:
        return self._source

    @property
    def reduction_combo(self) -> QComboBox:
        return self._reduction

    @property
    def channel_spin(self) -> QSpinBox:
        return self._channel

    @property
    def class_combo(self) -> QComboBox:
        return self._class

    @property
    def colormap_combo(self) -> QComboBox:
        return self._colormap

    @property
    def scale_combo(self) -> QComboBox:
        """Colour scale: "shared" (one range for every level) or "level" (per level)."""
        return self._scale

    @property
    def color_bar(self) -> ColorBar:
        return self._color_bar

    def scale_range(self, level: int | None = None) -> tuple[float, float]:
        """The (low, high) values that map to the colormap's ends for ``level`` (default:
        the selected one); (0, 0) before an output."""
        level = self._selected if level is None else level
        return self._ranges[level] if 0 <= level < len(self._ranges) else (0.0, 0.0)

    def level_caption(self, level: int) -> str:
        """The caption under a level's thumbnail."""
        return self._tiles[level].caption.text()

    @property
    def overlay_check(self) -> QCheckBox:
        return self._overlay

    @property
    def opacity_slider(self) -> QSlider:
        return self._opacity

    @property
    def large_view(self) -> LevelImageView:
        return self._large

    def level_view(self, level: int) -> LevelImageView:
        return self._tiles[level].view

    def levels(self) -> list[LevelInfo]:
        return list(self._levels)

    def level_values(self, level: int) -> np.ndarray:
        """(h, w) values displayed for ``level`` (before normalisation)."""
        return self._values[level]

    def selected_level(self) -> int:
        return self._selected

    def highlighted_cell(self) -> tuple[int, int, int] | None:
        return self._cell

    def hover_text(self) -> str:
        return self._hover_text

    # --- inputs ----------------------------------------------------------------------
    def set_contract(self, contract: Any) -> None:
        """Build one tile per declared level (no images until an output arrives)."""
        self._contract = contract
        self._output = None
        self._cell = None
        self._levels = [LevelInfo(lv.name, int(lv.stride), None) for lv in contract.levels] if contract else []
        self._class.blockSignals(True)
        self._class.clear()
        self._class.addItem("All classes", None)
        for class_id, name in enumerate(contract.class_names if contract else ()):
            self._class.addItem(name, class_id)
        self._class.blockSignals(False)
        self._channel.setRange(0, max(0, (contract.feature_channels if contract else 1) - 1))
        self._rebuild_tiles()
        self._selected = min(self._selected, max(0, len(self._levels) - 1))
        self._recompute()

    def set_output(self, output: Any, *, same_image: bool = False) -> None:
        """Show the pyramid of a network output (None clears the maps; an output without its
        pyramid, from a batch run, leaves them blank until it comes). ``same_image``: the
        output of the image already shown, now with its pyramid: the highlighted cell stays."""
        self._output = output
        if not same_image:
            self._cell = None
            self._on_hover(0, -1, -1)  # the last image's hover text does not describe this one
        if self._contract is not None:
            self._levels = [LevelInfo(lv.name, int(lv.stride), self._shape_of(lv.name)) for lv in self._contract.levels]
            if output is not None and self._levels and self._levels[0].shape is not None:
                self._channel.setMaximum(max(0, self._levels[0].shape[2] - 1))
        self._recompute()
        if not same_image:
            self.cell_highlighted.emit(None)

    def select_level(self, level: int) -> None:
        if not 0 <= level < len(self._levels) or level == self._selected:
            return
        self._selected = level
        self._refresh_selection()
        self.level_selected.emit(level)
        self._emit_overlay()

    def show_anchor(self, anchor_id: int) -> Box | None:
        """Highlight the level and cell of ``anchor_id``; emits and returns the cell's
        xyxy rect in original-image pixels."""
        if self._output is None:
            return None
        level, row, col, _k = self._output.anchor_location(int(anchor_id))
        self.select_level(level)
        self._cell = (level, row, col)
        self._refresh_selection()
        rect = cell_rect(row, col, stride=self._levels[level].stride, scale=float(self._output.scale))
        self._on_hover(level, row, col)
        self.cell_highlighted.emit(rect)
        return rect

    def clear_highlight(self) -> None:
        if self._cell is None:
            return  # nothing highlighted: no repaint (this runs on every slider step)
        self._cell = None
        self._refresh_selection()
        self.cell_highlighted.emit(None)

    def describe_cell(self, level: int, row: int, col: int) -> str:
        info = self._levels[level]
        value = float(self._values[level][row, col]) if level < len(self._values) else float("nan")
        what = "score" if self._source.currentData() == "scores" else "value"
        return f"{info.name} (stride {info.stride}) · cell (row {row}, col {col}) · {what} {value:.4g}"

    # --- internals -------------------------------------------------------------------
    def _shape_of(self, name: str) -> tuple[int, int, int] | None:
        if self._output is None or name not in self._output.pyramid:
            return None
        h, w, f = self._output.pyramid[name].shape
        return int(h), int(w), int(f)

    def _rebuild_tiles(self) -> None:
        for tile in self._tiles:
            self._strip_layout.removeWidget(tile)
            tile.deleteLater()
        self._tiles = []
        for level in range(len(self._levels)):
            tile = _LevelTile()
            tile.view.clicked.connect(lambda level=level: self.select_level(level))
            tile.view.hovered.connect(lambda r, c, level=level: self._on_hover(level, r, c))
            self._strip_layout.addWidget(tile)
            self._tiles.append(tile)

    def _level_map(self, level: int) -> np.ndarray:
        info = self._levels[level]
        if self._source.currentData() == "scores":
            return np.asarray(self._output.level_score_map(level, self._class.currentData()), np.float32)
        return reduce_channels(self._output.pyramid[info.name], self._reduction.currentData(), self._channel.value())

    def _recompute(self, *_args: object) -> None:
        self._update_enabled()
        self._values, self._rgb, self._ranges = [], [], []
        self._overlay_cache = None
        if self._output is not None and self._output.pyramid:
            colormap = self._colormap.currentData()
            self._values = [self._level_map(level) for level in range(len(self._levels))]
            own = [value_range(values) for values in self._values]
            if self._scale.currentData() == "shared":
                if self._source.currentData() == "scores":
                    shared = (0.0, 1.0)  # probabilities: one fixed, honest scale
                else:
                    shared = (min(lo for lo, _ in own), max(hi for _, hi in own)) if own else (0.0, 0.0)
                self._ranges = [shared] * len(own)
            else:
                self._ranges = own
            for values, (low, high) in zip(self._values, self._ranges, strict=True):
                self._rgb.append(colorize(normalize_to_uint8(values, low, high), colormap))
        for level, tile in enumerate(self._tiles):
            info = self._levels[level]
            grid = "×".join(map(str, info.shape[:2])) if info.shape else "–"
            tile.caption.setText(f"{info.name}\n{grid}")
            full = "×".join(map(str, info.shape)) if info.shape else "no output yet"
            tile.setToolTip(f"{info.name} · stride {info.stride} · {full}")
            tile.view.set_image(rgb_to_qimage(self._rgb[level]) if level < len(self._rgb) else None)
        self._refresh_selection()
        self._emit_overlay()

    def _refresh_selection(self) -> None:
        for level, tile in enumerate(self._tiles):
            tile.view.set_selected(level == self._selected)
            cell = self._cell[1:] if self._cell and self._cell[0] == level else None
            tile.view.set_highlight(cell)
        has_map = self._selected < len(self._rgb)
        self._large.set_image(rgb_to_qimage(self._rgb[self._selected]) if has_map else None)
        self._large.set_highlight(self._cell[1:] if self._cell and self._cell[0] == self._selected else None)
        if self._levels:
            info = self._levels[self._selected]
            shape = f" · {'×'.join(map(str, info.shape))}" if info.shape else ""
            self._large_caption.setText(f"{info.name} · stride {info.stride}{shape}")
        else:
            self._large_caption.setText("No model")
        self._update_color_bar()

    def _update_color_bar(self) -> None:
        low, high = self.scale_range()
        if self._scale.currentData() == "shared":
            names = [lv.name for lv in self._levels]
            title = f"shared scale, {names[0]}–{names[-1]}" if names else "shared scale"
        else:
            title = f"{self._levels[self._selected].name} only" if self._levels else ""
        self._color_bar.set_scale(low, high, colormap=self._colormap.currentData(), title=title)
        self._color_bar.setVisible(self._output is not None)

    def _on_source(self, _index: int) -> None:
        mode = self._scale_by_source[self._source.currentData()]
        self._scale.blockSignals(True)
        self._scale.setCurrentIndex(SCALES.index(mode))
        self._scale.blockSignals(False)
        self._recompute()

    def _on_scale(self, _index: int) -> None:
        self._scale_by_source[self._source.currentData()] = self._scale.currentData()
        self._recompute()

    def _update_enabled(self) -> None:
        scores = self._source.currentData() == "scores"
        self._reduction.setEnabled(not scores)
        self._channel.setEnabled(not scores and self._reduction.currentData() == "channel")
        self._class.setEnabled(scores)

    def _on_hover(self, level: int, row: int, col: int) -> None:
        if row < 0 or level >= len(self._values):
            self._hover_text = ""
        else:
            self._hover_text = self.describe_cell(level, row, col)
        self._info.setText(self._hover_text or " ")

    def _emit_overlay(self, *_args: object) -> None:
        opacity = self._opacity.value() / 100.0
        if not self._overlay.isChecked() or self._output is None or self._selected >= len(self._rgb):
            self.overlay_changed.emit(None, opacity)
            return
        if self._overlay_cache is None or self._overlay_cache[0] != self._selected:
            rgb = overlay_rgb(
                self._rgb[self._selected],
                stride=self._levels[self._selected].stride,
                scale=float(self._output.scale),
                image_hw=tuple(self._output.image_hw),
            )
            self._overlay_cache = (self._selected, rgb_to_qimage(rgb))
        self.overlay_changed.emit(self._overlay_cache[1], opacity)


class LayerViewerDock(QDockWidget):
    """The feature pyramid of ``session``'s model; a new set of detections clears the
    highlighted anchor. (The window hands it each network output: the dense maps are not
    session state.)"""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Feature pyramid", parent)
        self.setObjectName("LayerViewerDock")
        self._viewer = LayerViewer()
        self.setWidget(self._viewer)
        session.model_changed.connect(lambda model: self._viewer.set_contract(model.contract))
        session.detections_changed.connect(lambda _detections: self._viewer.clear_highlight())

    @property
    def viewer(self) -> LayerViewer:
        return self._viewer


__all__ = [
    "REDUCTIONS",
    "SCALES",
    "LayerViewer",
    "LayerViewerDock",
    "LevelImageView",
    "LevelInfo",
    "cell_rect",
    "overlay_rgb",
    "reduce_channels",
]
