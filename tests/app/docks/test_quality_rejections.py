"""The quality dock's numbers on label sets saved by the app (LabelDocument.save writes the
labels and the provenance sidecar) where the user rejected some of the model's detections:
such an image was reviewed, so it counts even when its remaining labels are all the model's
unedited acceptances, and a rejected detection the model still produces is a false positive.

"Run 1" and "run 2" are two ``model.onnx`` files with different bytes, as two training runs
write them; they find the same detections, so only the provenance changes the numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.docks.quality_panel import model_output_text
from app.labelling.document import LabelDocument, ProjectClasses
from app.labelling.label_files import sidecar_path
from app.window.main_window import MainWindow
from model.quality import QualityReport, model_fingerprint
from tests.app.provenance_fakes import (
    DETECTIONS,
    NAMES,
    SIZE,
    detect_labelled,
    evaluate_saved,
    load_model,
    run_model,
    wait_for,
    write_blank_image,
    write_two_runs,
)


@pytest.fixture
def models(tmp_path: Path) -> dict[str, Path]:
    return write_two_runs(tmp_path)


def save_reviewed(folder: Path, name: str, model: Path, *, reject_dog: bool = True) -> Path:
    """``name`` on which the user accepted ``model``'s cat unedited and rejected its dog
    (or left the dog alone), saved by the app."""
    image = write_blank_image(folder, name)
    document = LabelDocument(ProjectClasses(NAMES))
    document.load(image, SIZE)
    document.set_detections(DETECTIONS, class_names=NAMES, model_name=model.name, model_id=model_fingerprint(model))
    document.accept_detection(DETECTIONS, 0, model.name)
    if reject_dog:
        document.reject_detection(1)
    document.save()
    return image


def counts(report: QualityReport) -> tuple[int, ...]:
    return (report.num_images, report.num_labels, report.num_detections, report.true_positives, report.false_positives, report.false_negatives)


def test_an_image_with_a_rejection_counts_and_the_rejected_detection_is_a_false_positive(qapp, tmp_path: Path, models) -> None:  # noqa: ANN001
    reviewed = save_reviewed(tmp_path, "reviewed.png", models["run1"])
    untouched = save_reviewed(tmp_path, "untouched.png", models["run1"], reject_dog=False)

    report = evaluate_saved([reviewed, untouched], models["run1"])
    # untouched: only an unedited cat, nothing rejected -> left out; reviewed: the cat is
    # an ignored region (and its detection not counted), the rejected dog a false positive
    assert counts(report) == (1, 0, 1, 0, 1, 0)
    assert (report.left_out_images, report.left_out_labels, report.reviewed_images) == (1, 1, 1)
    assert (report.ignored_labels, report.ignored_detections, report.rejected_false_positives) == (1, 1, 1)
    assert report.precision == 0.0
    assert [(a.key, a.false_positives) for a in report.disagreements()] == [(str(reviewed), 1)]
    text = model_output_text(report)
    assert "1 image left out (1 label)" in text
    assert "in images that also have verified labels or rejected detections, is ignored" in text
    assert "1 image whose labels are all accepted unedited from this model counts: detections of this model were rejected there." in text
    assert "1 detection rejected by the user is still produced: counted as false positive." in text

    # above the dog's score, the model no longer produces it: the image still counts
    report = evaluate_saved([reviewed], models["run1"], score_thresh=0.7)
    assert counts(report) == (1, 0, 0, 0, 0, 0)
    assert (report.left_out_images, report.reviewed_images, report.rejected_false_positives) == (0, 1, 0)


def test_for_another_run_the_rejection_is_no_evidence_but_the_acceptance_is(qapp, tmp_path: Path, models) -> None:  # noqa: ANN001
    reviewed = save_reviewed(tmp_path, "reviewed.png", models["run1"])
    report = evaluate_saved([reviewed], models["run2"])
    # run 1's accepted cat is a verified label for run 2, which finds it; its dog is false
    # (no dog label) but was not rejected by anyone under run 2
    assert counts(report) == (1, 1, 2, 1, 1, 0)
    assert (report.left_out_images, report.reviewed_images, report.rejected_false_positives, report.ignored_labels) == (0, 0, 0, 0)
    assert "rejected" not in model_output_text(report)


def test_a_sidecar_without_model_ids_judges_the_rejection_by_file_name(qapp, tmp_path: Path, models) -> None:  # noqa: ANN001
    reviewed = save_reviewed(tmp_path, "reviewed.png", models["run1"])
    state = json.loads(sidecar_path(reviewed).read_text())
    assert [r["model_id"] for r in state["rejected"]] == [model_fingerprint(models["run1"])]  # what the app records
    for record in state["labels"]:
        del record["provenance"]["model_id"]
    for record in state["rejected"]:
        del record["model_id"]  # as before fingerprints were recorded
    sidecar_path(reviewed).write_text(json.dumps(state))

    for model in (models["run1"], models["run2"], "model.onnx"):  # every model.onnx: the same model
        report = evaluate_saved([reviewed], model)
        assert counts(report) == (1, 0, 1, 0, 1, 0)
        assert (report.reviewed_images, report.rejected_false_positives, report.ignored_labels) == (1, 1, 1)
    report = evaluate_saved([reviewed], "other.onnx")
    assert counts(report) == (1, 1, 2, 1, 1, 0) and report.reviewed_images == 0


def test_the_dock_counts_a_reviewed_image_and_another_run_shows_the_rejected_detection(qtbot, make_window, image_folder: Path, tmp_path: Path) -> None:  # noqa: ANN001
    run1, run2 = run_model(tmp_path, "run1"), run_model(tmp_path, "run2")
    window: MainWindow = make_window(model=run1)
    window.nms_panel.score_slider.setValue(50)
    with qtbot.waitSignal(window.quality.labels_loaded, timeout=5000):
        with qtbot.waitSignal(window.controller.output_ready, timeout=5000):
            window.open_paths([image_folder])  # img_0 is shown: cat 0.90 and dog 0.60
    panel = window.quality_panel
    document = window.session.document
    assert document.visible_detection_indices() == [0, 1]
    assert [document.detection_name(i) for i in (0, 1)] == ["cat", "dog"]

    # img_0: the user accepts the cat as it is and rejects the dog
    document.accept_detection(document.detections, 0, document.model_name)
    document.reject_detection(1)
    assert document.visible_detection_indices() == []
    assert window.annotation.save()
    [record] = json.loads(sidecar_path(image_folder / "img_0.png").read_text())["rejected"]
    assert record["model_id"] == model_fingerprint(run1)
    detect_labelled(qtbot, window)
    wait_for(qtbot, window, num_images=1, reviewed_images=1)
    report = window.quality.report()
    assert (report.left_out_images, report.num_labels, report.num_detections, report.false_positives) == (0, 0, 1, 1)
    assert (report.ignored_labels, report.rejected_false_positives) == (1, 1)
    assert "1 detection rejected by the user is still produced: counted as false positive." in panel.summary_text()
    assert [path.name for path in panel.listed_paths()] == ["img_0.png"]

    # another run, also called model.onnx: run 1's rejection does not hide its dog
    load_model(qtbot, window, run2)
    qtbot.waitUntil(lambda: window.session.document.model_id == model_fingerprint(run2), timeout=5000)
    document = window.session.document
    assert [document.detection_name(i) for i in document.visible_detection_indices()] == ["dog"]  # the cat is a label
    detect_labelled(qtbot, window)
    wait_for(qtbot, window, num_images=1, reviewed_images=0, num_labels=1)
    assert "rejected" not in panel.summary_text()
