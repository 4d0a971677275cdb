"""One post-processor in the window (fake backend): settings changed in one place — the
Detection dock — reach the canvas, the quality dock and *Accept All* alike; the canvas
shows exactly the detections that post-processor makes from the cached candidates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt

from app.window.main_window import MainWindow
from model.labels import ImageLabels, Label, write_voc
from model.postprocess import PostProcessor

# The fake model's detections on img_0 (marker 10), after NMS: cat 0.90, dog 0.60, bird
# 0.45, dog 0.35, cat 0.20, bird 0.10 (tests/app/fakes.py PLANTED).


def changes(window: MainWindow) -> list[PostProcessor]:
    """What the session's ``post_processor_changed`` emits from now on (synchronously)."""
    seen: list[PostProcessor] = []
    window.session.post_processor_changed.connect(seen.append)
    return seen


def set_in_the_dock(qtbot, window: MainWindow, post_processor: PostProcessor) -> None:  # noqa: ANN001
    seen = changes(window)
    with qtbot.waitSignal(window.quality.report_ready, timeout=3000):
        window.nms_panel.set_settings(post_processor)
    assert seen == [post_processor]
    window.session.post_processor_changed.disconnect(seen.append)


def assert_shown_by(window: MainWindow, post_processor: PostProcessor) -> None:
    expected = post_processor(window.controller.current_output.candidates)
    shown = window.current_detections()
    assert window.canvas.detections is shown
    for field in ("boxes", "scores", "class_ids", "anchor_ids", "level_ids"):
        np.testing.assert_array_equal(getattr(shown, field), getattr(expected, field), err_msg=field)


def test_one_setting_changes_canvas_quality_and_accept_all(qtbot, make_window, image_folder: Path, fake_model: Path) -> None:  # noqa: ANN001
    image = image_folder / "img_0.png"
    write_voc(ImageLabels(str(image), 320, 240, labels=[Label(10, 10, 50, 50, "cat"), Label(10, 100, 70, 160, "dog")]), image.with_suffix(".xml"))
    window = make_window(model=fake_model)
    with qtbot.waitSignal(window.quality.labels_loaded, timeout=5000):
        with qtbot.waitSignal(window.controller.output_ready, timeout=5000):
            window.open_paths([image_folder])

    everything = PostProcessor.with_max_detections(100, score_thresh=0.4, iou_thresh=0.5)
    set_in_the_dock(qtbot, window, everything)
    assert window.post_processor == everything == window.nms_panel.settings()
    assert_shown_by(window, everything)
    report = window.quality.report()
    assert (report.num_labels, report.num_detections, report.true_positives) == (2, 3, 2)  # cat, dog, bird > 0.40

    cats = everything.with_(class_ids=frozenset({0}))  # only the class filter changes
    set_in_the_dock(qtbot, window, cats)
    assert window.post_processor == cats
    assert_shown_by(window, cats)
    assert set(window.current_detections().class_ids.tolist()) == {0}
    report = window.quality.report()
    assert (report.num_labels, report.num_detections, report.true_positives) == (1, 1, 1)  # cats only, labels too

    one = everything.with_(score_thresh=0.0, max_detections=1)  # the cap, through the same object
    set_in_the_dock(qtbot, window, one)
    assert_shown_by(window, one)
    assert len(window.current_detections()) == 1
    assert window.quality.report().num_detections == 1


def test_the_dock_edits_only_what_the_user_touched(qtbot, make_window, image_folder: Path, fake_model: Path) -> None:  # noqa: ANN001
    window = make_window(model=fake_model)
    with qtbot.waitSignal(window.controller.output_ready, timeout=5000):
        window.open_paths([image_folder])
    before = window.post_processor
    seen = changes(window)
    window.nms_panel.iou_slider.setValue(80)
    assert seen == [before.with_(iou_thresh=0.8)] and seen[-1] == window.post_processor
    assert_shown_by(window, window.post_processor)
    window.nms_panel.class_list.item(2).setCheckState(Qt.CheckState.Unchecked)
    assert seen[-1] == before.with_(iou_thresh=0.8, class_ids=frozenset({0, 1}))
    assert_shown_by(window, window.post_processor)
    # Accept All takes the threshold from the session's current post-processor as well
    window.nms_panel.score_slider.setValue(50)
    assert seen[-1].score_thresh == 0.5 and len(seen) == 3
    assert window.annotation.accept_all_detections() == 2  # cat 0.90, dog 0.60 (no bird: filtered out anyway)
    assert window.annotation.save()  # nothing unsaved when the window closes
