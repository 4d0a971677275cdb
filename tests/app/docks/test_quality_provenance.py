"""model.quality on label sets saved by the app (LabelDocument.save writes the labels and the
provenance sidecar): the model's own detections accepted unedited are no evidence.

"This model" and "another run" are two ``model.onnx`` files with different bytes, as two
training runs write them; the detections are the same on every image, so only the
provenance of the saved labels changes the numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.labelling.document import LabelDocument
from app.labelling.label_files import sidecar_path
from model.labels import ImageLabels, Label, write_voc
from model.quality import QualityReport, model_fingerprint
from tests.app.provenance_fakes import CAT, DETECTIONS, DOG, NAMES, SIZE, evaluate_saved, write_blank_image, write_two_runs


@pytest.fixture
def models(tmp_path: Path) -> dict[str, Path]:
    return write_two_runs(tmp_path)


def save_accepted(folder: Path, name: str, model: Path, *, edit=None) -> Path:  # noqa: ANN001
    """``name`` with the detections of ``model`` accepted (all, score >= 0.5), then
    ``edit(document)`` if given, saved by the app."""
    image = write_blank_image(folder, name)
    document = LabelDocument()
    document.load(image, SIZE)
    document.set_detections(DETECTIONS, class_names=NAMES, model_name=model.name, model_id=model_fingerprint(model))
    assert document.accept_all(DETECTIONS, 0.5, model.name) == 2
    if edit is not None:
        edit(document)
    document.save()
    return image


def numbers(report: QualityReport) -> tuple:
    return (report.num_images, report.num_labels, report.num_detections, report.true_positives, report.precision, report.recall)


def test_an_image_of_unedited_acceptances_is_left_out_for_that_model_only(qapp, tmp_path: Path, models) -> None:  # noqa: ANN001
    accepted = save_accepted(tmp_path, "accepted.png", models["run1"])
    drawn = write_blank_image(tmp_path, "drawn.png")
    document = LabelDocument()
    document.load(drawn, SIZE)
    document.add_box(CAT, "cat")  # the model's cat, drawn by hand; its dog is not there
    document.save()

    report = evaluate_saved([accepted, drawn], models["run1"])
    assert numbers(report) == (1, 1, 2, 1, 0.5, 1.0)  # the drawn image only
    assert (report.left_out_images, report.left_out_labels) == (1, 2)
    assert [a.key for a in report.images] == [str(drawn)]
    # for the other run (same file name) the accepted labels are ordinary evidence
    other = evaluate_saved([accepted, drawn], models["run2"])
    assert numbers(other) == (2, 3, 4, 3, 0.75, 1.0)
    assert (other.left_out_images, other.ignored_labels) == (0, 0)


def test_an_edited_label_counts_and_the_unedited_rest_of_its_image_is_ignored(qapp, tmp_path: Path, models) -> None:  # noqa: ANN001
    moved = save_accepted(tmp_path, "moved.png", models["run1"], edit=lambda d: d.set_boxes([1], [(12, 100, 72, 160)]))
    relabelled = save_accepted(tmp_path, "relabelled.png", models["run1"], edit=lambda d: d.relabel([1], "bird"))

    report = evaluate_saved([moved], models["run1"])
    # the moved dog is found; the unedited cat and the detection on it do not count
    assert numbers(report) == (1, 1, 1, 1, 1.0, 1.0)
    assert (report.ignored_labels, report.ignored_detections, report.left_out_images) == (1, 1, 0)

    report = evaluate_saved([relabelled], models["run1"])
    # the user says the dog is a bird: the model's dog is a false positive, the bird missed
    assert numbers(report) == (1, 1, 1, 0, 0.0, 0.0)
    assert report.images[0].disagreement == 2


def test_old_label_files_and_old_sidecars_still_count(qapp, tmp_path: Path, models) -> None:  # noqa: ANN001
    plain = write_blank_image(tmp_path, "plain.png")  # labelled by another tool: no sidecar
    write_voc(ImageLabels(str(plain), *SIZE, labels=[Label(*CAT, "cat"), Label(*DOG, "dog")]), plain.with_suffix(".xml"))
    assert not sidecar_path(plain).exists()
    report = evaluate_saved([plain], models["run1"])
    assert numbers(report) == (1, 2, 2, 2, 1.0, 1.0) and report.left_out_images == 0

    # a sidecar from before fingerprints were recorded: the model's file name decides
    accepted = save_accepted(tmp_path, "accepted.png", models["run1"])
    state = json.loads(sidecar_path(accepted).read_text())
    fingerprints = {entry["provenance"]["model_id"] for entry in state["labels"]}
    assert fingerprints == {model_fingerprint(models["run1"])}  # what the app records now
    for entry in state["labels"]:
        del entry["provenance"]["model_id"]
    sidecar_path(accepted).write_text(json.dumps(state))
    assert evaluate_saved([plain, accepted], models["run2"]).left_out_images == 1  # also a model.onnx
    report = evaluate_saved([plain, accepted], "other.onnx")
    assert numbers(report) == (2, 4, 4, 4, 1.0, 1.0) and report.left_out_images == 0
