"""The quality dock in the real window (fake backend): precision / recall / AP50 against the
saved labels, following the sliders; the disagreement list; detect all labelled images."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.window.main_window import MainWindow
from model.labels import ImageLabels, Label, write_voc

# The fake model's detections on an image with marker m (tests/app/fakes.py PLANTED), after
# NMS: cat 0.90 (m, 10, m+40, 50), dog 0.60 (m, 100, m+60, 160), bird 0.45 (m, 200, m+30,
# 230), dog 0.35 (m+100, 10, m+150, 60), cat 0.20, bird 0.10.


def save_voc(image: Path, labels: list[Label]) -> None:
    write_voc(ImageLabels(str(image), 320, 240, labels=labels), image.with_suffix(".xml"))


def cat(m: int) -> Label:
    return Label(m, 10, m + 40, 50, "cat")


def dog(m: int) -> Label:
    return Label(m, 100, m + 60, 160, "dog")


@pytest.fixture
def labelled_folder(image_folder: Path) -> Path:
    """img_0 (m=10): the model's cat and dog. img_1 (m=60): three birds the model never
    finds. img_2 (m=110): the model's cat only."""
    save_voc(image_folder / "img_0.png", [cat(10), dog(10)])
    save_voc(image_folder / "img_1.png", [Label(200, 20 + 40 * i, 230, 50 + 40 * i, "bird") for i in range(3)])
    save_voc(image_folder / "img_2.png", [cat(110)])
    return image_folder


def open_folder(qtbot, window: MainWindow, folder: Path) -> None:  # noqa: ANN001
    with qtbot.waitSignal(window.quality.labels_loaded, timeout=5000):
        with qtbot.waitSignal(window.controller.output_ready, timeout=5000):
            window.open_paths([folder])


def set_score(qtbot, window: MainWindow, percent: int) -> None:  # noqa: ANN001
    with qtbot.waitSignal(window.quality.report_ready, timeout=3000):
        window.nms_panel.score_slider.setValue(percent)  # as a user drags it


def shown(window: MainWindow) -> tuple[str, str]:
    panel = window.quality_panel
    return panel.value_text("precision"), panel.value_text("recall")


def test_numbers_on_a_hand_made_case_follow_the_score_slider(qtbot, make_window, image_folder: Path, fake_model: Path) -> None:  # noqa: ANN001
    save_voc(image_folder / "img_0.png", [cat(10), dog(10)])  # 2 labels; the other images have none
    window = make_window(model=fake_model)
    open_folder(qtbot, window, image_folder)

    set_score(qtbot, window, 40)  # detections: cat 0.90, dog 0.60, bird 0.45
    report = window.quality.report()
    assert (report.num_images, report.num_labels, report.num_detections) == (1, 2, 3)
    assert report.precision == pytest.approx(2 / 3) and report.recall == 1.0
    assert shown(window) == ("0.667", "1.000")
    qtbot.waitUntil(lambda: window.quality_panel.value_text("ap50") == "1.000", timeout=5000)

    set_score(qtbot, window, 50)  # the bird goes
    assert shown(window) == ("1.000", "1.000")
    set_score(qtbot, window, 70)  # the dog goes too
    assert shown(window) == ("1.000", "0.500")
    assert window.quality.report().false_negatives == 1
    assert "1 image · 2 labels · 1 detections" in window.quality_panel.summary_text()
    assert window.quality.last_recompute_ms < 500


def test_disagreement_list_orders_images_and_opens_them(
    qtbot, make_window, labelled_folder: Path, fake_model: Path  # noqa: ANN001
) -> None:
    window = make_window(model=fake_model)
    window.nms_panel.score_slider.setValue(40)
    open_folder(qtbot, window, labelled_folder)
    panel = window.quality_panel
    qtbot.waitUntil(lambda: window.quality.report() is not None, timeout=3000)
    assert window.quality.report().num_images == 1  # only img_0 has been through the network
    assert "2 labelled images not detected yet" in panel.summary_text()
    assert panel.detect_button.isEnabled()

    with qtbot.waitSignal(window.controller.batch_finished, timeout=10_000) as finished:
        qtbot.mouseClick(panel.detect_button, Qt.MouseButton.LeftButton)
    assert (finished.args[0].done, finished.args[0].total, finished.args[0].cancelled) == (2, 2, False)
    qtbot.waitUntil(lambda: window.quality.report().num_images == 3, timeout=3000)
    assert not panel.detect_button.isEnabled() and panel.progress_bar.isHidden()
    assert window.image_list.model.state(2).detected  # the batch filled the detection cache

    # img_1: 3 FP + 3 FN; img_2: 2 FP (dog, bird); img_0: 1 FP (bird)
    names = [path.name for path in panel.listed_paths()]
    assert names == ["img_1.png", "img_2.png", "img_0.png"]
    assert panel.disagreement_list.item(0).text().endswith("3 FP · 3 FN")
    report = window.quality.report()
    assert (report.true_positives, report.false_positives, report.false_negatives) == (3, 6, 3)

    item = panel.disagreement_list.item(0)
    with qtbot.waitSignal(window.controller.output_ready, timeout=5000):
        rect = panel.disagreement_list.visualItemRect(item)
        qtbot.mouseClick(panel.disagreement_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.current_path() == labelled_folder / "img_1.png"
    assert window.controller.current_result.cached  # no second network run


def test_saving_labels_in_the_app_updates_the_numbers(qtbot, make_window, image_folder: Path, fake_model: Path) -> None:  # noqa: ANN001
    window = make_window(model=fake_model)
    window.nms_panel.score_slider.setValue(50)  # cat 0.90, dog 0.60
    open_folder(qtbot, window, image_folder)
    qtbot.waitUntil(lambda: "No saved labels" in window.quality_panel.summary_text(), timeout=3000)
    assert window.quality.report() is None

    assert window.annotation.accept_all_detections() == 2
    with qtbot.waitSignal(window.quality.report_ready, timeout=5000):
        assert window.annotation.save()
    report = window.quality.report()  # the model's own detections, saved unedited: no evidence
    assert (report.num_images, report.left_out_images, report.left_out_labels) == (0, 1, 2)
    assert shown(window) == ("–", "–")

    document = window.session.document
    document.set_boxes([1], [(12, 100, 72, 160)])  # the dog, moved 2 px: verified
    with qtbot.waitSignal(window.quality.report_ready, timeout=5000):
        assert window.annotation.save()
    report = window.quality.report()
    assert (report.num_labels, report.precision, report.recall) == (1, 1.0, 1.0)
    assert (report.ignored_labels, report.ignored_detections) == (1, 1)  # the unedited cat
    set_score(qtbot, window, 30)  # dog 0.35 and bird 0.45 join: unmatched
    assert shown(window) == ("0.333", "1.000")


def test_cancel_detect_all(qtbot, make_window, labelled_folder: Path, fake_model: Path) -> None:  # noqa: ANN001
    window = make_window(model=fake_model)
    open_folder(qtbot, window, labelled_folder)
    window.controller.detector.delay_s = 0.3
    panel = window.quality_panel
    assert window.quality.detect_labelled() == 2
    assert not panel.cancel_button.isHidden() and panel.detect_button.isHidden()
    with qtbot.waitSignal(window.controller.batch_finished, timeout=5000) as finished:
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    summary = finished.args[0]
    assert summary.cancelled and summary.done < 2  # the image in the network finishes, the other never runs
    assert panel.cancel_button.isHidden() and not panel.detect_button.isHidden()
    qtbot.waitUntil(lambda: panel.detect_button.isEnabled(), timeout=3000)  # images are left to detect
    assert window.quality.undetected_paths()


def test_many_images_follow_the_iou_and_score_sliders(qtbot, make_window, tmp_path: Path, fake_model: Path) -> None:  # noqa: ANN001
    from tests.app.fakes import write_marker_image

    folder = tmp_path / "many"
    folder.mkdir()
    count = 20  # more than are re-selected on the GUI thread: a worker selects them
    for i in range(count):
        marker = 5 + 5 * i
        save_voc(write_marker_image(folder / f"m{i:02d}.png", marker), [cat(marker), dog(marker)])
    window = make_window(model=fake_model)
    open_folder(qtbot, window, folder)
    qtbot.waitUntil(lambda: window.quality.report() is not None, timeout=3000)
    with qtbot.waitSignal(window.controller.batch_finished, timeout=20_000):
        assert window.quality.detect_labelled() == count - 1
    qtbot.waitUntil(lambda: window.quality.report().num_images == count, timeout=5000)
    assert shown(window) == ("0.500", "1.000")  # score 0.3: cat, dog, bird 0.45, dog 0.35

    with qtbot.waitSignal(window.quality.report_ready, timeout=5000):
        window.nms_panel.iou_slider.setValue(90)  # NMS keeps cat 0.70 as well (IoU 0.82 < 0.9)
    report = window.quality.report()
    assert report.num_images == count and report.num_detections == 5 * count
    assert shown(window) == ("0.400", "1.000")
    set_score(qtbot, window, 80)  # only cat 0.90 left
    assert shown(window) == ("1.000", "0.500")


def test_detect_all_fetches_candidates_only_and_an_opened_image_gets_its_maps(qtbot, make_window, labelled_folder: Path, fake_model: Path) -> None:  # noqa: ANN001
    """Detect All Labelled Images runs the network for the quality numbers only (no pyramid,
    no dense outputs: on a GPU ~35 MB per image less to copy). Opening one of those images
    shows its boxes from the cache, then its maps in the layer viewer, with the selected
    detection's cell still highlighted."""
    window = make_window(model=fake_model)
    open_folder(qtbot, window, labelled_folder)
    detector = window.controller.detector
    with qtbot.waitSignal(window.controller.batch_finished, timeout=5000):
        assert window.quality.detect_labelled() == 2
    assert detector.run_features == [True, False, False]  # the shown image, then the batch
    with qtbot.waitSignal(window.controller.output_ready, timeout=3000) as shown:
        window.show_row(2)
    assert shown.args[0].cached and not shown.args[0].has_features
    window.canvas.detection_selected.emit(1)  # the class-1 detection planted on P4, cell (1, 1)
    assert window.layer_viewer.highlighted_cell() == (1, 1, 1)
    qtbot.waitUntil(lambda: window.layer_viewer.levels()[0].shape is not None, timeout=3000)  # the maps follow the boxes
    output = window.controller.current_output
    assert [lv.shape[:2] for lv in window.layer_viewer.levels()] == output.level_shapes
    assert window.layer_viewer.highlighted_cell() == (1, 1, 1) and window.current_detections() is not None
    assert detector.run_features == [True, False, False, True]
