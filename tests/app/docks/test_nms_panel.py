"""The NMS panel on its own: linked sliders/spin boxes, class filter, sizes, counts."""

from __future__ import annotations

import itertools

from PySide6.QtCore import Qt

from app.docks.nms_panel import INFERENCE_SIZES, NmsPanel
from model.postprocess import PostProcessor


def make_panel(qtbot) -> NmsPanel:  # noqa: ANN001
    panel = NmsPanel()
    qtbot.addWidget(panel)
    panel.set_class_names(["cat", "dog", "bird"])
    return panel


def test_slider_and_spin_box_stay_linked(qtbot) -> None:
    panel = make_panel(qtbot)
    with qtbot.waitSignal(panel.settings_changed) as blocker:
        panel.score_slider.setValue(72)
    assert blocker.args[0].score_thresh == 0.72
    assert panel.score_spin.value() == 0.72
    with qtbot.waitSignal(panel.settings_changed):
        panel.score_spin.setValue(0.15)
    assert panel.score_slider.value() == 15
    with qtbot.waitSignal(panel.settings_changed) as blocker:
        panel.iou_slider.setValue(30)
    assert blocker.args[0].iou_thresh == 0.3
    with qtbot.waitSignal(panel.settings_changed) as blocker:
        panel.max_slider.setValue(7)
    assert blocker.args[0].max_detections == 7
    assert (blocker.args[0].max_per_class, blocker.args[0].max_total) == (7, 7)  # one cap for both
    assert isinstance(blocker.args[0], PostProcessor) and panel.settings() is blocker.args[0]


def test_class_filter(qtbot) -> None:
    panel = make_panel(qtbot)
    assert panel.settings().class_ids is None  # all checked: no filter
    with qtbot.waitSignal(panel.settings_changed) as blocker:
        panel.class_list.item(1).setCheckState(Qt.CheckState.Unchecked)
    assert blocker.args[0].class_ids == frozenset({0, 2})


def test_set_settings_round_trips(qtbot) -> None:
    panel = make_panel(qtbot)
    wanted = PostProcessor.with_max_detections(42, score_thresh=0.55, iou_thresh=0.25, class_ids=frozenset({2}))
    with qtbot.waitSignal(panel.settings_changed):
        panel.set_settings(wanted)
    assert panel.settings() == wanted


def test_a_new_model_drops_the_class_filter(qtbot) -> None:
    panel = make_panel(qtbot)
    panel.class_list.item(0).setCheckState(Qt.CheckState.Unchecked)
    with qtbot.waitSignal(panel.settings_changed) as blocker:
        panel.set_class_names(["a", "b"])
    assert blocker.args[0].class_ids is None and panel.settings().class_ids is None
    with qtbot.assertNotEmitted(panel.settings_changed):
        panel.set_class_names(["a", "b", "c"])  # no filter to drop: nothing changed


def test_inference_sizes(qtbot) -> None:
    panel = make_panel(qtbot)
    combo = panel.size_combo
    sizes = [combo.itemData(i) for i in range(combo.count())]
    assert sizes[0] == 320 and sizes[-1] == 1280 and all(b - a == 32 for a, b in itertools.pairwise(sizes))
    assert tuple(sizes) == INFERENCE_SIZES
    with qtbot.assertNotEmitted(panel.inference_size_changed):
        panel.set_inference_size(500)  # off the grid: shown anyway
    assert panel.inference_size() == 500
    with qtbot.waitSignal(panel.inference_size_changed) as blocker:
        combo.setCurrentIndex(combo.findData(640))
    assert blocker.args == [640]


def test_level_counts(qtbot) -> None:
    panel = make_panel(qtbot)
    panel.set_level_counts(["P3", "P4"], [3, 1])
    assert panel.level_counts() == {"P3": 3, "P4": 1}
