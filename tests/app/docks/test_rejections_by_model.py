"""Rejected detections are remembered per model: by the model file's fingerprint when the
sidecar and the model both have one, by its file name otherwise. "Run 1" and "run 2" are two
``model.onnx`` files with different bytes, as two training runs write them; they find the
same detections (same anchors and classes), so only the model identity decides."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.labelling.document import LabelDocument, ProjectClasses
from app.labelling.label_files import sidecar_path
from model.quality import model_fingerprint
from tests.app.provenance_fakes import DETECTIONS, NAMES, SIZE, write_blank_image, write_two_runs


@pytest.fixture
def models(tmp_path: Path) -> dict[str, Path]:
    """run1/model.onnx, run2/model.onnx (same name, other bytes), and run1's file copied
    under another name."""
    paths = write_two_runs(tmp_path)
    paths["renamed"] = tmp_path / "renamed.onnx"
    shutil.copyfile(paths["run1"], paths["renamed"])
    return paths


def open_image(image: Path, model: Path | str) -> LabelDocument:
    """``image`` opened by the app with ``model``'s detections shown (a bare file name: a
    model whose fingerprint is unknown)."""
    document = LabelDocument(ProjectClasses(NAMES))
    document.load(image, SIZE)
    model_id = model_fingerprint(model) if isinstance(model, Path) else ""
    document.set_detections(DETECTIONS, class_names=NAMES, model_name=Path(model).name, model_id=model_id)
    return document


def saved_with_dog_rejected(folder: Path, model: Path) -> Path:
    """An image on which the user rejected ``model``'s dog and saved."""
    image = write_blank_image(folder, "photo.png")
    document = open_image(image, model)
    document.reject_detection(1)
    assert document.visible_detection_indices() == [0]
    document.save()
    return image


def test_a_rejection_hides_the_detection_of_its_own_model_only(qapp, tmp_path: Path, models) -> None:  # noqa: ANN001
    image = saved_with_dog_rejected(tmp_path, models["run1"])
    [record] = json.loads(sidecar_path(image).read_text())["rejected"]
    assert record == {
        "model_name": "model.onnx",
        "anchor_id": 7,
        "class_id": 1,
        "model_id": model_fingerprint(models["run1"]),
        "box": [10.0, 100.0, 70.0, 160.0],  # no size: these detections were set without one
    }

    assert open_image(image, models["run1"]).visible_detection_indices() == [0]
    assert open_image(image, models["renamed"]).visible_detection_indices() == [0]  # the same model, renamed
    other_run = open_image(image, models["run2"])  # also model.onnx, other contents
    assert other_run.visible_detection_indices() == [0, 1]
    assert other_run.accept_all(DETECTIONS, 0.5, "model.onnx") == 2  # its dog is not rejected
    # a model whose fingerprint is unknown is judged by its file name
    assert open_image(image, "model.onnx").visible_detection_indices() == [0]
    assert open_image(image, "other.onnx").visible_detection_indices() == [0, 1]


def test_rejecting_again_under_another_run_records_a_second_rejection(qapp, tmp_path: Path, models) -> None:  # noqa: ANN001
    image = saved_with_dog_rejected(tmp_path, models["run1"])
    document = open_image(image, models["run2"])
    document.reject_detection(1)
    assert document.is_dirty() and document.visible_detection_indices() == [0]
    document.save()
    records = json.loads(sidecar_path(image).read_text())["rejected"]
    assert sorted(r["model_id"] for r in records) == sorted(model_fingerprint(models[run]) for run in ("run1", "run2"))
    document = open_image(image, models["run1"])
    document.reject_detection(1)  # already rejected for this model: nothing to undo
    assert not document.is_dirty()


def test_a_sidecar_without_model_ids_still_hides_by_file_name(qapp, tmp_path: Path, models) -> None:  # noqa: ANN001
    image = saved_with_dog_rejected(tmp_path, models["run1"])
    state = json.loads(sidecar_path(image).read_text())
    for record in state["rejected"]:
        for field in ("model_id", "size", "box"):  # as sidecars were written before these were recorded
            record.pop(field, None)
    sidecar_path(image).write_text(json.dumps(state))

    for model in (models["run1"], models["run2"], "model.onnx"):  # every model.onnx
        document = open_image(image, model)
        assert document.visible_detection_indices() == [0]
        assert document.accept_all(DETECTIONS, 0.5, "model.onnx") == 1  # the cat only
    assert open_image(image, models["renamed"]).visible_detection_indices() == [0, 1]  # the name differs
    # saved again unchanged, the old record stays as it was
    document = open_image(image, models["run1"])
    document.add_box((200, 10, 250, 60), "bird")
    document.save()
    assert json.loads(sidecar_path(image).read_text())["rejected"] == [{"model_name": "model.onnx", "anchor_id": 7, "class_id": 1, "model_id": ""}]
