"""Layer viewer: channel reductions, colormaps, one tile per declared level, hover,
anchor highlighting and the overlay."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from app.common.colors import COLORMAPS, colorize, normalize_to_uint8
from app.docks.layer_viewer import LayerViewer, cell_rect, overlay_rgb, reduce_channels
from tests.app.fakes import FakeDetector

P2_P6 = (("P2", 4), ("P3", 8), ("P4", 16), ("P5", 32), ("P6", 64))


def test_reductions_match_numpy() -> None:
    rng = np.random.default_rng(0)
    activations = rng.normal(size=(5, 7, 6)).astype(np.float32)
    np.testing.assert_allclose(reduce_channels(activations, "mean"), activations.mean(-1), rtol=1e-6)
    np.testing.assert_allclose(reduce_channels(activations, "max"), activations.max(-1))
    np.testing.assert_allclose(reduce_channels(activations, "l2"), np.linalg.norm(activations, axis=-1), rtol=1e-5)
    np.testing.assert_array_equal(reduce_channels(activations, "channel", 4), activations[..., 4])
    np.testing.assert_array_equal(reduce_channels(activations, "channel", 99), activations[..., 5])
    with pytest.raises(ValueError, match="unknown reduction"):
        reduce_channels(activations, "median")


def test_normalise_and_colorize() -> None:
    values = np.array([[1.0, 2.0], [3.0, 5.0]], np.float32)
    u8 = normalize_to_uint8(values)
    assert u8.min() == 0 and u8.max() == 255 and u8.dtype == np.uint8
    assert not normalize_to_uint8(np.full((3, 3), 7.0)).any()  # constant map: no division by 0
    for name in COLORMAPS:
        rgb = colorize(u8, name)
        assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(colorize(u8, "gray")[..., 0], u8)
    with pytest.raises(ValueError):
        colorize(u8, "rainbow-unicorn")


def test_cell_rect_and_overlay_geometry() -> None:
    assert cell_rect(2, 3, stride=16, scale=0.5) == (96, 64, 128, 96)  # a cell = 32 original px
    # 240x320 image at scale 0.8 -> 192x256 input region; stride 32 -> 6x8 cells used
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[5, 7] = 255
    overlay = overlay_rgb(rgb, stride=32, scale=0.8, image_hw=(240, 320))
    assert overlay.shape == (192, 256, 3)
    assert overlay[191, 255].tolist() == [255, 255, 255] and overlay[0, 0].tolist() == [0, 0, 0]


def make_viewer(qtbot, levels=None):  # noqa: ANN001, ANN201
    detector = FakeDetector("fake.onnx", levels) if levels else FakeDetector("fake.onnx")
    output = detector.run(np.full((240, 320, 3), 30, np.uint8), size=256)
    viewer = LayerViewer()
    qtbot.addWidget(viewer)
    viewer.resize(600, 800)
    viewer.set_contract(detector.contract)
    viewer.set_output(output)
    return viewer, detector, output


@pytest.mark.parametrize("levels", [None, P2_P6], ids=["P3-P7", "P2-P6"])
def test_one_entry_per_declared_level(qtbot, levels) -> None:  # noqa: ANN001
    viewer, detector, output = make_viewer(qtbot, levels)
    infos = viewer.levels()
    assert [(i.name, i.stride) for i in infos] == [(lv.name, lv.stride) for lv in detector.contract.levels]
    for info, (h, w) in zip(infos, output.level_shapes):
        assert info.shape == (h, w, 4)
        assert viewer.level_values(infos.index(info)).shape == (h, w)


def test_score_map_source(qtbot) -> None:
    viewer, _, output = make_viewer(qtbot)
    viewer.source_combo.setCurrentIndex(viewer.source_combo.findData("scores"))
    np.testing.assert_array_equal(viewer.level_values(0), output.level_score_map(0, None))
    viewer.class_combo.setCurrentIndex(viewer.class_combo.findData(1))
    np.testing.assert_array_equal(viewer.level_values(1), output.level_score_map(1, 1))
    assert viewer.level_values(1).max() == pytest.approx(0.6)


def test_hover_shows_level_cell_and_value(qtbot) -> None:
    viewer, _, output = make_viewer(qtbot)
    viewer.reduction_combo.setCurrentIndex(viewer.reduction_combo.findData("channel"))
    viewer.channel_spin.setValue(2)
    viewer.select_level(1)
    view = viewer.large_view
    pos = view.cell_center(3, 5)
    event = QMouseEvent(
        QEvent.Type.MouseMove,
        pos,
        view.mapToGlobal(pos),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(view, event)
    value = output.pyramid["P4"][3, 5, 2]
    assert viewer.hover_text().startswith("P4 (stride 16) · cell (row 3, col 5)")
    assert f"{value:.4g}" in viewer.hover_text()
    outside = QMouseEvent(
        QEvent.Type.MouseMove,
        QPointF(-5, -5),
        view.mapToGlobal(QPointF(-5, -5)),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(view, outside)
    assert viewer.hover_text() == ""


def test_show_anchor_highlights_level_and_cell(qtbot) -> None:
    viewer, _, output = make_viewer(qtbot)
    level, row, col = 1, 1, 1  # the fake plants a detection there (k = 1)
    anchor = int(output.anchor_offsets[level]) + (row * output.level_shapes[level][1] + col) * 3 + 1
    with qtbot.waitSignal(viewer.cell_highlighted) as blocker:
        viewer.show_anchor(anchor)
    assert viewer.selected_level() == level
    assert viewer.highlighted_cell() == (level, row, col)
    side = 16 / output.scale
    assert blocker.args[0] == pytest.approx((side, side, 2 * side, 2 * side))
    with qtbot.waitSignal(viewer.cell_highlighted) as blocker:
        viewer.clear_highlight()
    assert blocker.args[0] is None and viewer.highlighted_cell() is None


def test_overlay_follows_level_and_opacity(qtbot) -> None:
    viewer, _, output = make_viewer(qtbot)
    with qtbot.waitSignal(viewer.overlay_changed) as blocker:
        viewer.overlay_check.setChecked(True)
    image, opacity = blocker.args
    height, width = output.image_hw
    assert (image.height(), image.width()) == (round(height * output.scale), round(width * output.scale))
    assert opacity == 0.5
    with qtbot.waitSignal(viewer.overlay_changed) as blocker:
        viewer.opacity_slider.setValue(80)
    assert blocker.args[1] == 0.8
    with qtbot.waitSignal(viewer.overlay_changed) as blocker:
        viewer.overlay_check.setChecked(False)
    assert blocker.args[0] is None


def test_clearing_output_keeps_levels(qtbot) -> None:
    viewer, _, _ = make_viewer(qtbot)
    viewer.set_output(None)
    assert [i.shape for i in viewer.levels()] == [None] * 5
    assert viewer.hover_text() == ""


@pytest.mark.parametrize("source", ["activations", "scores"])
def test_an_output_without_its_pyramid_leaves_the_maps_blank_until_it_comes(qtbot, source: str) -> None:  # noqa: ANN001
    """A batch run fetches only the candidates: shown as it is, the maps stay blank (no
    crash, whatever the source) and the anchor can still be found; the same image's output
    with its pyramid then fills them and keeps the highlighted cell."""
    viewer, detector, full = make_viewer(qtbot)
    _select(viewer.source_combo, source)
    lean = detector.run(np.full((240, 320, 3), 30, np.uint8), size=256, features=False)
    viewer.set_output(lean)
    assert [i.shape for i in viewer.levels()] == [None] * 5
    assert viewer.scale_range() == (0.0, 0.0)  # no map, no scale
    anchor = int(lean.anchor_offsets[1]) + (1 * lean.level_shapes[1][1] + 1) * 3 + 1
    viewer.show_anchor(anchor)
    assert viewer.highlighted_cell() == (1, 1, 1)
    emitted: list = []
    viewer.cell_highlighted.connect(emitted.append)
    viewer.set_output(full, same_image=True)
    assert viewer.highlighted_cell() == (1, 1, 1) and emitted == []
    assert viewer.levels()[1].shape == (*full.level_shapes[1], 4) and viewer.scale_range() != (0.0, 0.0)
    expected = full.level_score_map(1, None) if source == "scores" else reduce_channels(full.pyramid["P4"], "mean")
    np.testing.assert_allclose(viewer.level_values(1), expected, rtol=1e-6)


# ----------------------------------------------------------------------------- colour scale
def _select(combo, data) -> None:  # noqa: ANN001
    combo.setCurrentIndex(combo.findData(data))


def test_score_maps_share_one_scale_by_default_so_colours_compare_across_levels(qtbot) -> None:  # noqa: ANN001
    viewer, _detector, _output = make_viewer(qtbot)
    _select(viewer.source_combo, "scores")
    assert viewer.scale_combo.currentData() == "shared"
    levels = range(len(viewer.levels()))
    assert {viewer.scale_range(level) for level in levels} == {(0.0, 1.0)}
    # the same score gets the same colour on every level: colour = colormap(score)
    colormap = viewer.colormap_combo.currentData()
    for level in levels:
        values = viewer.level_values(level)
        expected = colorize(normalize_to_uint8(values, 0.0, 1.0), colormap)
        shown = viewer.level_view(level)._image  # noqa: SLF001 - the painted QImage
        assert shown is not None and (shown.width(), shown.height()) == (values.shape[1], values.shape[0])
        pixel = shown.pixelColor(0, 0)
        assert (pixel.red(), pixel.green(), pixel.blue()) == tuple(expected[0, 0].tolist())
    bar = viewer.color_bar
    assert bar.scale() == (0.0, 1.0) and bar.tick_labels() == ["0", "0.25", "0.5", "0.75", "1"]
    assert bar.title().startswith("shared scale, P3")


def test_per_level_scale_is_an_option_and_the_choice_is_kept_per_source(qtbot) -> None:  # noqa: ANN001
    viewer, _detector, _output = make_viewer(qtbot)
    assert viewer.source_combo.currentData() == "activations" and viewer.scale_combo.currentData() == "level"
    own = [viewer.scale_range(level) for level in range(len(viewer.levels()))]
    for level, (low, high) in enumerate(own):
        values = viewer.level_values(level)
        assert (low, high) == (pytest.approx(float(values.min())), pytest.approx(float(values.max())))
    _select(viewer.scale_combo, "shared")
    shared = viewer.scale_range(0)
    assert shared == (pytest.approx(min(lo for lo, _ in own)), pytest.approx(max(hi for _, hi in own)))
    assert all(viewer.scale_range(level) == shared for level in range(len(own)))
    _select(viewer.source_combo, "scores")
    _select(viewer.scale_combo, "level")
    _select(viewer.source_combo, "activations")
    assert viewer.scale_combo.currentData() == "shared"  # what the user chose for activations
    _select(viewer.source_combo, "scores")
    assert viewer.scale_combo.currentData() == "level"
    assert viewer.color_bar.title().endswith("only")


def test_the_hover_caption_is_cleared_when_the_image_changes(qtbot) -> None:  # noqa: ANN001
    viewer, _detector, output = make_viewer(qtbot)
    view = viewer.large_view
    QApplication.sendEvent(
        view,
        QMouseEvent(
            QEvent.Type.MouseMove,
            view.cell_center(1, 1),
            view.mapToGlobal(view.cell_center(1, 1)),
            Qt.MouseButton.NoButton,
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
        ),
    )
    assert viewer.hover_text() != ""
    viewer.set_output(output)  # the next image's output
    assert viewer.hover_text() == ""
    viewer.set_output(None)
    assert viewer.hover_text() == ""


def test_thumbnail_captions_fit_a_narrow_dock(qtbot) -> None:  # noqa: ANN001
    viewer, _detector, _output = make_viewer(qtbot)
    viewer.resize(280, 700)
    viewer.show()
    qtbot.waitExposed(viewer)
    for level in range(len(viewer.levels())):
        label = viewer._tiles[level].caption  # noqa: SLF001
        for line in label.text().splitlines():
            assert label.fontMetrics().horizontalAdvance(line) <= label.width(), line
    assert viewer.minimumSizeHint().width() <= 280
