"""The quality dock in the real window (fake backend) counts only human-verified labels:
detections of the loaded model accepted and saved unedited leave their image out, and the
dock says so; the same labels count for another model, and once edited."""

from __future__ import annotations

import json
from pathlib import Path

from app.labelling.label_files import sidecar_path
from app.window.main_window import MainWindow
from model.labels import ImageLabels, Label, write_voc
from model.quality import model_fingerprint
from tests.app.provenance_fakes import detect_labelled, load_model, run_model, wait_for


def shown(window: MainWindow) -> tuple[str, str]:
    panel = window.quality_panel
    return panel.value_text("precision"), panel.value_text("recall")


def test_the_dock_leaves_out_the_models_own_unedited_labels(qtbot, make_window, image_folder: Path, tmp_path: Path) -> None:  # noqa: ANN001
    run1, run2 = run_model(tmp_path, "run1"), run_model(tmp_path, "run2")
    plain = image_folder / "img_1.png"  # labelled by another tool: no sidecar
    write_voc(ImageLabels(str(plain), 320, 240, labels=[Label(60, 10, 100, 50, "cat"), Label(60, 100, 120, 160, "dog")]), plain.with_suffix(".xml"))
    window = make_window(model=run1)
    window.nms_panel.score_slider.setValue(50)
    with qtbot.waitSignal(window.quality.labels_loaded, timeout=5000):
        with qtbot.waitSignal(window.controller.output_ready, timeout=5000):
            window.open_paths([image_folder])  # img_0 is shown
    panel = window.quality_panel

    # img_0: accept the model's detections and save them unedited
    assert window.annotation.accept_all_detections() == 2
    assert window.annotation.save()
    state = json.loads(sidecar_path(image_folder / "img_0.png").read_text())
    assert [entry["provenance"]["model_id"] for entry in state["labels"]] == [model_fingerprint(run1)] * 2
    detect_labelled(qtbot, window)
    wait_for(qtbot, window, num_images=1, left_out_images=1)
    report = window.quality.report()
    assert (report.num_labels, report.true_positives, report.left_out_labels) == (2, 2, 2)  # img_1 only
    assert shown(window) == ("1.000", "1.000")
    assert "1 image left out (2 labels): labels accepted unedited from this model." in panel.summary_text()
    assert panel.listed_paths() == []

    # another run, also called model.onnx: img_0's labels came from a different model
    load_model(qtbot, window, run2)
    detect_labelled(qtbot, window)
    wait_for(qtbot, window, num_images=2, left_out_images=0)
    assert window.quality.report().num_labels == 4
    assert "accepted unedited" not in panel.summary_text()

    # back to the run that proposed them: left out again
    load_model(qtbot, window, run1)
    detect_labelled(qtbot, window)
    wait_for(qtbot, window, num_images=1, left_out_images=1)

    # the user decides img_0's dog is a bird: that label is verified now, the cat is not
    document = window.session.document
    document.relabel([1], "bird")
    assert window.annotation.save()
    wait_for(qtbot, window, num_images=2, left_out_images=0, ignored_labels=1)
    report = window.quality.report()
    # img_1: cat and dog found; img_0: the dog detection is false, the bird missed, the cat ignored
    assert (report.num_labels, report.num_detections, report.true_positives) == (3, 3, 2)
    assert (report.ignored_detections, report.false_positives, report.false_negatives) == (1, 1, 1)
    assert shown(window) == ("0.667", "0.667")
    assert "1 label accepted unedited from this model, in images that also have verified labels, is ignored" in panel.summary_text()
    assert [path.name for path in panel.listed_paths()] == ["img_0.png"]
    assert panel.disagreement_list.item(0).text().endswith("1 FP · 1 FN")
