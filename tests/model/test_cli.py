"""The ``retinanet-studio`` command's TensorFlow-free subcommands: detect, inspect, evaluate.

Most runs call ``model.cli.main`` in-process (fast); the ones about the real process (exit
code, no traceback, no TensorFlow import) run ``python -m model.cli`` in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from model.cli import main
from model.labels import Label, read_coco, read_voc, read_yolo, save_dataset
from model.labels.annotation import ImageLabels
from tests.model.onnx_fakes import red_square_image

REPO = Path(__file__).resolve().parents[2]
# (file name, xyxy box of the square, colour channel: 0 red, 1 green)
IMAGES = (("a.png", (60, 40, 140, 120), 0), ("b.jpg", (150, 60, 250, 160), 0), ("c.png", (20, 20, 100, 100), 1))


def _write_images(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, box, color in IMAGES:
        rgb = red_square_image(width=300, height=200, box=box, color=color)
        assert cv2.imwrite(str(folder / name), rgb[..., ::-1])
    return folder


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_images(tmp_path_factory.mktemp("images"))


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _run_cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m model.cli ARGS`` from the repository root."""
    return subprocess.run(
        [sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


@pytest.mark.parametrize("fmt", ["voc", "yolo", "coco", "json"])
def test_detect_writes_one_label_file_per_image(
    fmt: str, image_folder: Path, contract_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "labels"
    code = main(["detect", str(image_folder), "--model", str(contract_model), "--out", str(out), "--format", fmt, "--score", "0.5"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "3 images" in captured.out and f"({fmt})" in captured.out
    assert f"model {contract_model.name}: 2 classes; providers " in captured.err
    expected_class = {"a": "red", "b": "red", "c": "green"}
    if fmt == "voc":
        assert sorted(p.name for p in out.iterdir()) == ["a.xml", "b.xml", "c.xml"]
        items = {p.stem: read_voc(p) for p in out.glob("*.xml")}
    elif fmt == "yolo":
        assert sorted(p.name for p in out.iterdir()) == ["a.txt", "b.txt", "c.txt", "classes.txt"]
        items = {stem: read_yolo(out / f"{stem}.txt", width=300, height=200, class_names=["red", "green"]) for stem in "abc"}
    elif fmt == "coco":
        assert [p.name for p in out.iterdir()] == ["annotations.json"]
        coco_items, coco_classes = read_coco(out / "annotations.json")
        assert coco_classes == ["red", "green"]
        items = {Path(item.image_path).stem: item for item in coco_items}
    else:
        assert sorted(p.name for p in out.iterdir()) == ["a.json", "b.json", "c.json"]
        payload = json.loads((out / "a.json").read_text())
        assert (payload["width"], payload["height"], payload["model"]) == (300, 200, contract_model.name)
        first = payload["detections"][0]
        assert first["class"] == "red" and first["level"].startswith("P") and isinstance(first["anchor"], int)
        items = {
            p.stem: [Label(*d["box"], d["class"]) for d in json.loads(p.read_text())["detections"]] for p in out.glob("*.json")
        }
    assert set(items) == {"a", "b", "c"}
    for stem, item in items.items():
        labels = item if isinstance(item, list) else item.labels
        assert labels and {label.name for label in labels} == {expected_class[stem]}


def test_detect_reports_an_unreadable_image_in_one_line_and_goes_on(
    contract_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _write_images(tmp_path / "images")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    code = main(["detect", str(folder), "--model", str(contract_model), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert _error_lines(err) == [f"error: {folder / 'broken.jpg'}: not an image or the file is corrupt/truncated"]
    assert "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.xml", "b.xml", "c.xml"]


def test_detect_missing_model_is_one_line(image_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.onnx"
    code = main(["detect", str(image_folder), "--model", str(missing), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [f"error: {missing}: model file not found"]


def test_detect_folder_without_images_is_an_error(contract_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    code = main(["detect", str(tmp_path / "empty"), "--model", str(contract_model), "--out", str(tmp_path / "out")])
    assert code == 2
    assert _error_lines(capsys.readouterr().err)[0].startswith(f"error: {tmp_path / 'empty'}: no images found")


def test_detect_does_not_overwrite_labels_of_images_sharing_a_name(
    contract_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _write_images(tmp_path / "images")
    cv2.imwrite(str(folder / "a.jpg"), np.zeros((50, 50, 3), np.uint8))  # a.png and a.jpg -> a.xml
    code = main(["detect", str(folder), "--model", str(contract_model), "--out", str(tmp_path / "out")])
    errors = _error_lines(capsys.readouterr().err)
    assert code == 2
    assert len(errors) == 1 and "a.png" in errors[0] and "same name" in errors[0]
    assert read_voc(tmp_path / "out" / "a.xml").image_path.endswith("a.jpg")


def test_detect_broken_model_in_a_real_process(image_folder: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07\x12\x04" + bytes(range(64)))  # ir_version 7, then a corrupt field
    result = _run_cli("-m", "model.cli", "detect", image_folder, "--model", broken, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: {broken}: not a readable ONNX file, truncated or corrupt (DecodeError)"]


def test_detect_never_imports_tensorflow(image_folder: Path, contract_model: Path, tmp_path: Path) -> None:
    result = _run_cli(
        "-X", "importtime", "-m", "model.cli", "detect", image_folder, "--model", contract_model, "--out", tmp_path / "out"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert "onnxruntime" in imported and "model.runtime" in imported  # the check sees the real imports
    heavy = sorted({name for name in imported if name.split(".")[0] in {"tensorflow", "keras", "tf2onnx", "tf_keras"}})
    assert heavy == []
    assert "model.tf" not in imported


def test_inspect_prints_classes_and_providers(contract_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(contract_model)]) == 0
    out = capsys.readouterr().out
    assert "classes    2: red, green" in out
    assert "pyramid    P3 (stride 8), P4 (stride 16), P5 (stride 32), P6 (stride 64), P7 (stride 128); 3 channels" in out
    providers = next(line for line in out.splitlines() if line.startswith("providers"))
    assert providers.endswith("CPUExecutionProvider")
    assert main(["inspect", str(contract_model), "--providers", "cpu"]) == 0
    assert "providers  CPUExecutionProvider\n" in capsys.readouterr().out


def test_inspect_broken_model_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    assert main(["inspect", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {path}: file is empty (0 bytes)"]


def test_evaluate_prints_ap_lines(contract_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _write_images(tmp_path / "data")
    items = [
        ImageLabels(str(folder / name), 300, 200, labels=[Label(*map(float, box), ("red", "green")[color])])
        for name, box, color in IMAGES
    ]
    save_dataset(items, folder, "voc", class_names=["red", "green"])
    assert main(["evaluate", "--model", str(contract_model), "--data", str(folder), "--format", "voc"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "images 3  labels 3"
    assert lines[1].startswith("AP ") and " AP50 " in lines[1] and " AP75 " in lines[1]
    values = [float(v) for v in lines[1].split()[1::2]]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert [line.split()[1] for line in lines[2:]] == ["red", "green"]


def test_evaluate_without_labels_is_one_line(image_folder: Path, contract_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--model", str(contract_model), "--data", str(image_folder)]) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert line.startswith(f"error: {image_folder}: no labelled images (voc): ")
    assert line.endswith(f"in {image_folder}, 0 .xml label files next to them")


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["detect", "x.png", "--model", "m.onnx", "--out", "o", "--score", "1.5"])
    assert info.value.code == 2
    assert "must be between 0 and 1" in capsys.readouterr().err
