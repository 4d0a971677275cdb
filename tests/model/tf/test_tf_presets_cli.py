"""``retinanet-studio export --preset NAME`` and ``--preset-dir DIR``: the online path is
keras-hub's own ``from_preset`` with only the download replaced (it serves a preset folder
saved from a random-weight model); offline, one error line that says what to fetch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_tf_presets import SCORE_TOL, TINY_RESNET, _box_tolerance, build_hub_detector, hub_reference
from tf_helpers import ort_session

from model import contract as C
from model.cli import main

PRESET = "retinanet_resnet50_fpn_coco"


@pytest.fixture(scope="module")
def saved_preset(tmp_path_factory):
    """(keras-hub detector, its preset folder: config.json, model.weights.h5, ...)."""
    detector = build_hub_detector(PRESET, TINY_RESNET, seed=5)
    folder = tmp_path_factory.mktemp("kaggle") / PRESET
    detector.save_to_preset(str(folder))
    return detector, folder


def _serve_downloads(monkeypatch, folder: Path | None, requested: list[str]) -> None:
    """Replace kagglehub's download (what keras-hub's from_preset calls) by a copy from
    ``folder``, or by a network failure when ``folder`` is None."""
    from keras_hub.src.utils import preset_utils

    def model_download(handle: str, path: str | None = None, **_: object) -> str:
        requested.append(handle)
        if folder is None:
            raise ConnectionError("Failed to resolve 'api.kaggle.com' (offline)")
        target = folder / path if path else folder
        if not target.exists():
            raise ValueError(f"'{path}' is not present in the model files")
        return str(target)

    monkeypatch.setattr(preset_utils.kagglehub, "model_download", model_download)


@pytest.mark.parametrize("how", ["name", pytest.param("folder", marks=pytest.mark.slow)])
def test_export_a_preset_writes_the_coco_contract_model(how: str, saved_preset, tmp_path: Path, monkeypatch, capsys) -> None:
    from model.tf.presets import COCO_CLASSES, kaggle_handle

    detector, folder = saved_preset
    requested: list[str] = []
    _serve_downloads(monkeypatch, folder if how == "name" else None, requested)
    out = tmp_path / "models" / "coco.onnx"
    source = ["--preset", PRESET] if how == "name" else ["--preset-dir", str(folder)]
    assert main(["export", *source, "--out", str(out), "--size", "640"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    if how == "name":
        assert requested and all(handle == kaggle_handle(PRESET) for handle in requested)
    else:
        assert requested == []  # a folder never downloads
    contract = C.read_contract(out)
    assert contract.class_names == COCO_CLASSES and contract.default_size == 640
    assert PRESET in contract.provenance["weights"]
    images = np.random.default_rng(1).uniform(0, 255, (1, 128, 256, 3)).astype(np.float32)
    boxes, scores = ort_session(out).run(["boxes", "scores"], {"image": images})
    want = hub_reference(detector, images)
    assert np.abs(scores - want["scores"]).max() <= SCORE_TOL
    assert (np.abs(boxes - want["boxes"]) <= _box_tolerance(want["unclipped"], want["anchors"])).all()


def test_offline_export_says_what_to_download_and_where(tmp_path: Path, monkeypatch, capsys) -> None:
    from model.tf.presets import kaggle_handle

    _serve_downloads(monkeypatch, None, [])
    out = tmp_path / "coco.onnx"
    assert main(["export", "--preset", PRESET, "--out", str(out)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith(f"error: {PRESET}: ")
    handle = kaggle_handle(PRESET)
    assert handle.startswith("keras/retinanet/keras/retinanet_resnet50_fpn_coco/")
    assert f"kagglehub.model_download('{handle}')" in err[0]
    assert "retinanet-studio export --preset-dir FOLDER" in err[0]
    assert not out.exists()


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: p / "missing", "neither a preset folder nor a preset name"),
        (lambda p: p, "not a keras-hub preset folder (no config.json)"),
        (lambda p: (p / "config.json").write_text("{}") and p, "without model.weights.h5"),
    ],
    ids=["missing", "no-config", "no-weights"],
)
def test_a_bad_preset_folder_is_one_error_line(make, problem: str, tmp_path: Path, capsys) -> None:
    folder = make(tmp_path)
    assert main(["export", "--preset-dir", str(folder), "--out", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {folder}: ") and problem in err[0]


def test_train_from_a_preset_offline_or_from_two_sources_is_one_error_line(tmp_path: Path, monkeypatch, capsys) -> None:
    _serve_downloads(monkeypatch, None, [])
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(out), "--init-from", str(tmp_path), "--init-from-preset", PRESET]) == 2
    assert capsys.readouterr().err.strip().endswith("fine-tune from a run folder or from a preset, not both")
    assert main(["train", "--data", str(data), "--out", str(out), "--init-from-preset", PRESET]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "--init-from-preset FOLDER" in err[0] and not out.exists()
