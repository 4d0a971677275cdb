"""`retinanet-studio export` end to end: a random-init compact network written as the fp32
contract model plus its int8 and fp16 copies, all three loadable by the Detector."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from model import contract as C
from model.cli import main
from model.runtime import Detector
from model.tf.startup import has_nvidia_driver, kept_lines


def test_export_writes_fp32_int8_and_fp16(tmp_path: Path, tiny_dataset: Path, capsys) -> None:
    out = tmp_path / "new" / "folder" / "shapes.onnx"  # folders are created
    argv = ["export", "--classes", "a,b", "--backbone", "tiny", "--compact", "--size", "128", "--out", str(out)]
    assert main([*argv, "--int8", "--calib", str(tiny_dataset), "--calib-count", "4", "--fp16"]) == 0
    printed = capsys.readouterr().out
    int8, fp16 = out.with_name("shapes.int8.onnx"), out.with_name("shapes.fp16.onnx")
    for path in (out, int8, fp16):
        assert f"wrote {path}" in printed
        assert C.read_contract(path).class_names == ("a", "b")
    assert json.loads(C.read_contract(fp16).metadata[C.KEY_PROVENANCE])["weights"] == "random init (untrained)"
    image = np.random.default_rng(0).integers(0, 255, (100, 140, 3), dtype=np.uint8)
    reference = Detector.load(out, providers=["cpu"]).run(image)
    half = Detector.load(fp16, providers=["cpu"]).run(image)
    assert float(np.abs(reference.scores - half.scores).max()) < 5e-3
    assert float(np.abs(reference.boxes - half.boxes).max()) < 1.0


def test_export_int8_without_calibration_images_is_refused(tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.onnx"
    assert main(["export", "--classes", "a", "--out", str(out), "--int8"]) == 2
    assert "--calib" in capsys.readouterr().err
    assert not out.exists()


def test_export_prints_no_tensorflow_start_up_notices(tmp_path: Path) -> None:
    """TensorFlow's absl notices (oneDNN, no CUDA driver, cuInit) used to open every run."""
    import subprocess
    import sys

    out = tmp_path / "m.onnx"
    argv = ["export", "--classes", "a", "--backbone", "tiny", "--compact", "--size", "128", "--out", str(out)]
    done = subprocess.run([sys.executable, "-m", "model.cli", *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}" in done.stdout
    for notice in ("oneDNN custom operations", "Could not find cuda drivers", "absl::InitializeLog"):
        assert notice not in done.stderr
    if not has_nvidia_driver():
        assert "cuInit" not in done.stderr


def test_start_up_filter_keeps_what_is_not_a_known_notice() -> None:
    captured = "\n".join(
        [
            "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
            "I0000 00:00:1.0 1 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results",
            "I0000 00:00:1.0 1 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.",
            "E0000 00:00:1.0 1 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: UNKNOWN ERROR (303)",
            "E0000 00:00:1.0 1 some_op.cc:9] out of memory allocating 4 GB",
        ]
    )
    assert kept_lines(captured, has_driver=False) == ["E0000 00:00:1.0 1 some_op.cc:9] out of memory allocating 4 GB"]
    # with a driver, a failing cuInit is a real problem and is shown
    assert [line for line in kept_lines(captured, has_driver=True) if "cuInit" in line]


def test_train_on_a_folder_without_labels_is_one_error_line(tmp_path: Path, tiny_dataset: Path, capsys) -> None:
    """No traceback: one `error:` line naming the folder and why, exit code 2, nothing written."""
    images = tmp_path / "images"
    images.mkdir()
    for path in sorted(tiny_dataset.glob("*.png"))[:3] or sorted(tiny_dataset.glob("*.jpg"))[:3]:
        (images / path.name).write_bytes(path.read_bytes())
    out = tmp_path / "run"
    assert main(["train", "--data", str(images), "--out", str(out), "--backbone", "tiny", "--compact", "--backbone-weights", "none"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and str(images) in lines[0] and "no labelled images" in lines[0]
    assert "Traceback" not in err
