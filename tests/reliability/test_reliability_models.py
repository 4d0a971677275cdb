"""3. Models: a file that is not a usable contract model is refused with a
ModelContractError naming the file and the problem -- by ``read_contract``, by
``Detector.load``, at run time when the outputs disagree with the metadata, on the command
line (exit code 2, one line on stderr, no traceback) and in the app (the previous model stays)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from model import contract as C
from model.errors import ModelContractError
from model.runtime import Detector
from tests.reliability.builders import mutated_model, point_initializer_at, set_metadata, set_output_dims, tiny_model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def valid_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("valid") / "tiny.onnx")


def _meta(key: str, value: str | None) -> Callable:
    return lambda proto: set_metadata(proto, key, value)


def _dims(name: str, dims: list) -> Callable:
    return lambda proto: set_output_dims(proto, name, dims)


def _rename_output(old: str, new: str) -> Callable:
    def mutate(proto) -> None:  # noqa: ANN001
        for output in proto.graph.output:
            if output.name == old:
                output.name = new

    return mutate


def _input(**changes: object) -> Callable:
    def mutate(proto) -> None:  # noqa: ANN001
        value = proto.graph.input[0]
        if "name" in changes:
            value.name = changes["name"]
        if "elem_type" in changes:
            value.type.tensor_type.elem_type = changes["elem_type"]
        if "dims" in changes:
            shape = value.type.tensor_type.shape
            del shape.dim[:]
            for d in changes["dims"]:
                dim = shape.dim.add()
                if isinstance(d, int):
                    dim.dim_value = d
                else:
                    dim.dim_param = d

    return mutate


def _second_input(proto) -> None:  # noqa: ANN001
    proto.graph.input.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", "H", "W", 1]))


def _clear_metadata(proto) -> None:  # noqa: ANN001
    del proto.metadata_props[:]


def _op(old: str, new: str) -> Callable:
    def mutate(proto) -> None:  # noqa: ANN001
        for node in proto.graph.node:
            if node.op_type == old:
                node.op_type = new
                return

    return mutate


def _dangling_input(proto) -> None:  # noqa: ANN001
    for node in proto.graph.node:
        if node.op_type == "Sigmoid":
            node.input[0] = "a_tensor_nobody_makes"
            return


def _constant_from_outside(proto) -> None:  # noqa: ANN001
    tensor = helper.make_tensor("stolen", TensorProto.FLOAT, [1], [0.0])
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../outside.bin"
    proto.graph.node.append(helper.make_node("Constant", [], ["stolen_out"], value=tensor))


LEVELS = json.dumps([["P3", 8], ["P4", 16], ["P5", 32], ["P6", 64], ["P7", 128]])

# kind: (mutation of the valid model, words the problem must contain)
BROKEN: dict[str, tuple[Callable, str]] = {
    "no metadata at all": (_clear_metadata, "metadata"),
    "contract version 3": (_meta(C.KEY_VERSION, "3"), "version"),
    "class names not JSON": (_meta(C.KEY_CLASSES, "cat,dog"), "JSON"),
    "class names empty": (_meta(C.KEY_CLASSES, "[]"), "class names"),
    "class names not strings": (_meta(C.KEY_CLASSES, "[1, 2, 3]"), "class names"),
    "pyramid levels missing": (_meta(C.KEY_LEVELS, None), "levels"),
    "pyramid levels not pairs": (_meta(C.KEY_LEVELS, '[["P3"]]'), "levels"),
    "pyramid level stride not a number": (_meta(C.KEY_LEVELS, LEVELS.replace("128", '"wide"')), "levels"),
    "pyramid level stride 1e400": (_meta(C.KEY_LEVELS, LEVELS.replace("128", "1e400")), "levels"),
    "pyramid level stride 0": (_meta(C.KEY_LEVELS, LEVELS.replace("128", "0")), "levels"),
    "anchor settings malformed": (_meta(C.KEY_ANCHORS, '{"aspect_ratios": 5}'), "anchor"),
    "default size not a number": (_meta(C.KEY_DEFAULT_SIZE, "big"), "default size"),
    "output 'scores' missing": (_rename_output("scores", "logits"), "missing outputs"),
    "output 'P5' missing": (_rename_output("P5", "C5"), "missing outputs"),
    "'boxes' rank 2": (_dims("boxes", ["N", 4]), "boxes"),
    "'boxes' last dim 5": (_dims("boxes", ["N", "A", 5]), "boxes"),
    "'scores' rank 4": (_dims("scores", ["N", "A", 3, 1]), "scores"),
    "pyramid output rank 3": (_dims("P5", ["N", "h", "w"]), "P5"),
    "input renamed": (_input(name="images"), "input"),
    "input rank 3": (_input(dims=["H", "W", 3]), "input"),
    "input with 4 channels": (_input(dims=["N", "H", "W", 4]), "input"),
    "input uint8": (_input(elem_type=TensorProto.UINT8), "float32"),
    "two inputs": (_second_input, "input"),
    "'scores' has 5 classes, metadata names 3": (_dims("scores", ["N", "A", 5]), "classes"),
    "metadata names 2 classes, graph has 3": (_meta(C.KEY_CLASSES, '["cat", "dog"]'), "classes"),
    "external data: ../outside.bin": (lambda p: point_initializer_at(p, "../outside.bin"), "outside"),
    "external data: absolute path": (lambda p: point_initializer_at(p, "/etc/passwd"), "outside"),
    "external data: sub/../../outside.bin": (lambda p: point_initializer_at(p, "sub/../../outside.bin"), "outside"),
    "external data: symlink leading out": (lambda p: point_initializer_at(p, "link.bin"), "outside"),
    "external data in a Constant node": (_constant_from_outside, "outside"),
    "unknown operator": (_op("Sigmoid", "NoSuchOp"), "onnxruntime"),
    "node reads a tensor nobody makes": (_dangling_input, "onnxruntime"),
}
# refused by onnxruntime when the session is built, not by reading the contract
RUNTIME_ONLY = {"unknown operator", "node reads a tensor nobody makes"}


def _write_broken(valid: Path, folder: Path, kind: str) -> Path:
    mutate, _words = BROKEN[kind]
    folder.mkdir(parents=True, exist_ok=True)
    (folder.parent / "outside.bin").write_bytes(b"\0" * 4096)  # what an escaping path would read
    if kind == "external data: symlink leading out":
        os.symlink(folder.parent / "outside.bin", folder / "link.bin")
    return mutated_model(valid, folder / "broken model.onnx", mutate)


@pytest.mark.parametrize("kind", list(BROKEN))
def test_contract_breaks_are_refused_with_file_and_problem(valid_model: Path, tmp_path: Path, kind: str, cases) -> None:  # noqa: ANN001
    path = _write_broken(valid_model, tmp_path / "models", kind)
    words = BROKEN[kind][1]
    if kind not in RUNTIME_ONLY:
        with pytest.raises(ModelContractError) as info:
            C.read_contract(path)
        assert str(path) in str(info.value) and words.lower() in info.value.problem.lower(), info.value
        cases.add("models", "contract break -> read_contract refuses", 1)
    with pytest.raises(ModelContractError) as info:
        Detector.load(path, providers=["cpu"])
    assert str(path) in str(info.value) and words.lower() in info.value.problem.lower(), info.value
    cases.add("models", "contract break -> Detector.load refuses", 1)


FILES: dict[str, Callable[[bytes], bytes]] = {
    "text file": lambda valid: b"this is not a model\n",
    "0 bytes": lambda valid: b"",
    "random bytes": lambda valid: np.random.default_rng(1).integers(0, 256, 20_000, np.uint8).tobytes(),
    "a PNG renamed .onnx": lambda valid: b"\x89PNG\r\n\x1a\n" + bytes(200),
    "a JSON file": lambda valid: b'{"model": "retinanet"}',
    "truncated to 1 byte": lambda valid: valid[:1],
    "truncated at 10%": lambda valid: valid[: len(valid) // 10],
    "truncated at 50%": lambda valid: valid[: len(valid) // 2],
    "truncated at 90%": lambda valid: valid[: len(valid) * 9 // 10],
    "last byte missing": lambda valid: valid[:-1],
}


@pytest.mark.parametrize("kind", list(FILES))
def test_unreadable_model_files(valid_model: Path, tmp_path: Path, kind: str, cases) -> None:  # noqa: ANN001
    path = tmp_path / "model.onnx"
    path.write_bytes(FILES[kind](valid_model.read_bytes()))
    for load in (C.read_contract, lambda p: Detector.load(p, providers=["cpu"])):
        with pytest.raises(ModelContractError) as info:
            load(path)
        assert str(path) in str(info.value) and info.value.problem
    cases.add("models", "not ONNX / truncated -> refused", 2)


@pytest.mark.parametrize("kind", ["missing", "folder named .onnx"])
def test_missing_model_or_folder(tmp_path: Path, kind: str, cases) -> None:  # noqa: ANN001
    path = tmp_path / "model.onnx"
    if kind != "missing":
        path.mkdir()
    with pytest.raises(ModelContractError) as info:
        Detector.load(path, providers=["cpu"])
    assert str(path) in str(info.value)
    cases.add("models", "not ONNX / truncated -> refused", 1)


def test_external_data_inside_the_folder_is_fine(valid_model: Path, tmp_path: Path, cases) -> None:  # noqa: ANN001
    import onnx

    proto = onnx.load(str(valid_model))
    path = tmp_path / "with weights.onnx"
    onnx.save(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin", size_threshold=100)
    assert (tmp_path / "weights.bin").is_file()
    detector = Detector.load(path, providers=["cpu"])
    output = detector.run(np.zeros((64, 96, 3), np.uint8), size=128)
    assert np.isfinite(output.boxes).all()
    cases.add("models", "external data inside the folder accepted (control)", 1)


# --------------------------------------------------------------------------- run-time disagreement
def _symbolic_classes(names: list[str]) -> Callable:
    def mutate(proto) -> None:  # noqa: ANN001
        set_output_dims(proto, "scores", ["N", "A", "C"])
        set_metadata(proto, C.KEY_CLASSES, json.dumps(names))

    return mutate


DISAGREE = {
    "metadata names 2 classes, graph computes 3": _symbolic_classes(["cat", "dog"]),
    "metadata names 4 classes, graph computes 3": _symbolic_classes(["cat", "dog", "bird", "fish"]),
    "metadata says 9 anchors per cell, graph has 2": _meta(C.KEY_ANCHORS, json.dumps({"aspect_ratios": [0.5, 1, 2], "scales": [1, 2, 3]})),
    "metadata declares 4 of the 5 levels": _meta(C.KEY_LEVELS, json.dumps([["P3", 8], ["P4", 16], ["P5", 32], ["P6", 64]])),
}


@pytest.mark.parametrize("kind", list(DISAGREE))
def test_outputs_disagreeing_with_metadata_at_run_time(valid_model: Path, tmp_path: Path, kind: str, cases) -> None:  # noqa: ANN001
    path = mutated_model(valid_model, tmp_path / "liar.onnx", DISAGREE[kind])
    detector = Detector.load(path, providers=["cpu"])  # shapes are symbolic: only running tells
    with pytest.raises(ModelContractError) as info:
        detector.run(np.zeros((64, 80, 3), np.uint8), size=128)
    assert str(path) in str(info.value) and "disagree" in info.value.problem
    cases.add("models", "outputs disagree with metadata at run time", 1)


# --------------------------------------------------------------------------- command line
def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "model.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


CLI_CASES = {
    "inspect: text file": ("inspect", "text"),
    "detect: text file": ("detect", "text"),
    "detect: truncated at 50%": ("detect", "truncated"),
    "inspect: no metadata": ("inspect", "no metadata at all"),
    "detect: 'scores' missing": ("detect", "output 'scores' missing"),
    "detect: external data outside": ("detect", "external data: ../outside.bin"),
    "detect: unknown operator": ("detect", "unknown operator"),
    "inspect: missing file": ("inspect", "missing"),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_prints_one_line_and_exits_2(valid_model: Path, tmp_path: Path, case: str, cases) -> None:  # noqa: ANN001
    command, kind = CLI_CASES[case]
    if kind == "text":
        path = tmp_path / "model.onnx"
        path.write_bytes(b"not a model")
    elif kind == "truncated":
        path = tmp_path / "model.onnx"
        data = valid_model.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "missing":
        path = tmp_path / "nowhere.onnx"
    else:
        path = _write_broken(valid_model, tmp_path / "models", kind)
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # never opened: the model fails first
    args = [command, str(path)] if command == "inspect" else [command, str(images), "--model", str(path), "--out", str(tmp_path / "out")]
    result = run_cli(*args, cwd=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and str(path) in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    cases.add("models", "CLI: exit 2, one stderr line, no traceback", 1)


# --------------------------------------------------------------------------- the app
def test_app_keeps_the_previous_real_model(qtbot, valid_model: Path, tmp_path: Path, cases) -> None:  # noqa: ANN001
    """With the real onnxruntime backend (tests/app uses a fake): each broken model is
    reported and the loaded one stays. The dialog is covered by tests/app/window/test_main_window.py."""
    from app.jobs.detection import DetectionController, default_backend

    controller = DetectionController(default_backend())
    try:
        with qtbot.waitSignal(controller.model_loaded, timeout=30_000):
            controller.load_model(valid_model)
        detector = controller.detector
        for i, kind in enumerate(["no metadata at all", "external data: ../outside.bin", "unknown operator"]):
            broken = _write_broken(valid_model, tmp_path / f"m{i}", kind)
            with qtbot.waitSignal(controller.model_failed, timeout=30_000) as blocker:
                controller.load_model(broken)
            failed_path, error = blocker.args
            assert failed_path == str(broken) and isinstance(error, ModelContractError)
            assert controller.detector is detector and controller.model_path == str(valid_model)
            cases.add("models", "app (real runtime): broken model, previous one stays", 1)
    finally:
        controller.shutdown()
