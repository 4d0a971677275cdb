"""4. Runtime faults: no GPU, a broken CUDA install, an inference size that would exhaust
memory, detection cancelled mid-way or outrun by image switches, and a disk that is full or
refuses writes while labels are saved."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import model.providers as providers
import model.runtime as runtime
from model.detect import detect_images
from model.errors import LabelWriteError, StudioError
from model.labels import ImageLabels, Label, read_voc, write_classes_txt, write_coco, write_voc, write_yolo
from model.postprocess import PostProcessor
from model.providers import CPU, CUDA, TENSORRT, choose_providers
from model.runtime import Detector, InferenceError, InferenceSizeError
from tests.reliability.builders import tiny_model

REPO = Path(__file__).resolve().parents[2]
IMAGE = np.zeros((60, 80, 3), np.uint8)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("model") / "tiny.onnx")


def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """No NVIDIA driver on this machine (whatever the real one has)."""
    monkeypatch.setattr(providers, "_can_load", lambda *names: False)


# =========================================================================== no GPU
@pytest.mark.parametrize(
    "requested, expected_notes",
    [(None, 1), (["cuda", "cpu"], 1), (["cuda"], 1), (["tensorrt", "cuda", "cpu"], 2), (["cpu"], 0)],
    ids=["default", "cuda,cpu", "cuda only", "tensorrt,cuda,cpu", "cpu"],
)
def test_no_gpu_means_cpu_and_one_notice_per_gpu_provider(
    monkeypatch: pytest.MonkeyPatch,
    requested: list[str] | None,
    expected_notes: int,
    cases,  # noqa: ANN001
) -> None:
    no_gpu(monkeypatch)
    chosen, notes = choose_providers(requested)
    assert chosen == [CPU]
    assert len(notes) == expected_notes, notes
    assert all("no NVIDIA driver" in note for note in notes)
    cases.add("runtime", "no GPU: CPU with one notice per GPU provider", 1)


def test_onnxruntime_without_cuda_build(monkeypatch: pytest.MonkeyPatch, cases) -> None:  # noqa: ANN001
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CPU])
    chosen, notes = choose_providers(None)
    assert chosen == [CPU] and len(notes) == 1 and "not in this onnxruntime build" in notes[0]
    cases.add("runtime", "no GPU: CPU with one notice per GPU provider", 1)


def test_driver_but_no_cuda_runtime(monkeypatch: pytest.MonkeyPatch, cases) -> None:  # noqa: ANN001
    monkeypatch.setattr(providers, "_can_load", lambda *names: names[0] == "libcuda.so.1")
    monkeypatch.setattr(ort, "preload_dlls", lambda *a, **k: None, raising=False)
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    chosen, notes = choose_providers(None)
    assert chosen == [CPU] and len(notes) == 1 and "CUDA runtime libraries missing" in notes[0]
    cases.add("runtime", "no GPU: CPU with one notice per GPU provider", 1)


def test_detector_asking_for_cuda_runs_on_cpu_without_gpu(model_path: Path, monkeypatch: pytest.MonkeyPatch, cases) -> None:  # noqa: ANN001
    no_gpu(monkeypatch)
    detector = Detector.load(model_path, providers=["cuda", "cpu"])
    assert detector.providers == [CPU] == detector.session.get_providers()
    assert len(detector.provider_notes) == 1 and CUDA in detector.provider_notes[0]
    assert np.isfinite(detector.run(IMAGE, size=128).boxes).all()
    cases.add("runtime", "no GPU: Detector(cuda,cpu) runs on CPU", 1)


def test_providers_reported_are_the_ones_in_use_on_this_machine(model_path: Path, cases) -> None:  # noqa: ANN001
    """Unpatched: whatever this machine has, the Detector reports what the session uses, and
    every requested GPU provider it does not use is explained by a note."""
    detector = Detector.load(model_path)
    assert detector.providers == detector.session.get_providers() and detector.providers[-1] == CPU
    if CUDA not in detector.providers:
        assert any(CUDA in note for note in detector.provider_notes), detector.provider_notes
    cases.add("runtime", "no GPU: Detector(cuda,cpu) runs on CPU", 1)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "model.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _image_folder(folder: Path, count: int) -> Path:
    import cv2

    folder.mkdir()
    for i in range(count):
        image = np.full((48 + 8 * i, 64, 3), 30 * i % 256, np.uint8)
        cv2.imwrite(str(folder / f"img_{i:02d}.png"), image)
    return folder


def test_cli_on_this_machine_states_the_providers_quietly(model_path: Path, tmp_path: Path, cases) -> None:  # noqa: ANN001
    images = _image_folder(tmp_path / "images", 2)
    result = run_cli("detect", str(images), "--model", str(model_path), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    used = [line for line in result.stderr.splitlines() if line.startswith("model tiny.onnx") and "providers" in line]
    assert len(used) == 1
    if "CUDAExecutionProvider" not in used[0]:
        assert len(notes) == 1 and "CUDA" in notes[0], result.stderr  # the one CPU notice
    assert "[E:onnxruntime" not in result.stderr and "[W:onnxruntime" not in result.stderr, result.stderr
    cases.add("runtime", "CLI on this machine: providers stated, no log wall", 1)


# =========================================================================== broken CUDA
class FakeCudaSession:
    """Stands in for ``ort.InferenceSession`` on a machine whose CUDA install is broken:
    ``mode="fallback"`` silently drops CUDA (what onnxruntime does when the provider library
    cannot load), ``mode="raise"`` raises (what it does when the library loads but no device
    starts). Either way a CPU-only request works."""

    real = ort.InferenceSession
    mode = "fallback"

    def __new__(cls, path: str, sess_options=None, providers=None):  # noqa: ANN001, ANN204
        names = [p[0] if isinstance(p, tuple) else p for p in providers or [CPU]]
        if names != [CPU] and cls.mode == "raise":
            raise RuntimeError("[ONNXRuntimeError] : 1 : FAIL : CUDA failure 100: no CUDA-capable device is detected")
        return cls.real(path, sess_options=sess_options, providers=[CPU])


def broken_cuda(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    def preload() -> None:
        raise OSError("libcudnn_graph.so.9: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(providers, "_can_load", lambda *names: True)  # "a driver and CUDA are installed"
    monkeypatch.setattr(ort, "get_available_providers", lambda: [TENSORRT, CUDA, CPU])
    monkeypatch.setattr(ort, "preload_dlls", preload, raising=False)
    monkeypatch.setattr(FakeCudaSession, "mode", mode)
    monkeypatch.setattr(ort, "InferenceSession", FakeCudaSession)


@pytest.mark.parametrize("mode", ["fallback", "raise"])
@pytest.mark.parametrize("requested", [["cuda", "cpu"], None, ["tensorrt", "cuda", "cpu"]], ids=["cuda,cpu", "default", "tensorrt,cuda,cpu"])
def test_broken_cuda_install_runs_on_cpu_and_says_so(
    model_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    requested: list[str] | None,
    cases,  # noqa: ANN001
) -> None:
    broken_cuda(monkeypatch, mode)
    detector = Detector.load(model_path, providers=requested)
    assert detector.providers == [CPU], "must report the providers really used"
    notes = " | ".join(detector.provider_notes)
    assert "could not preload" in notes
    assert ("failed to initialise" in notes) if mode == "fallback" else ("failed to start" in notes and "running on CPU" in notes), notes
    assert np.isfinite(detector.run(IMAGE, size=128).boxes).all()
    cases.add("runtime", "broken CUDA: CPU fallback, providers really used + note", 1)


def test_broken_cuda_does_not_hide_a_broken_model(model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cases) -> None:  # noqa: ANN001
    from tests.reliability.builders import mutated_model

    def unknown_op(proto) -> None:  # noqa: ANN001
        next(n for n in proto.graph.node if n.op_type == "Sigmoid").op_type = "NoSuchOp"

    broken = mutated_model(model_path, tmp_path / "bad.onnx", unknown_op)
    broken_cuda(monkeypatch, "raise")
    with pytest.raises(runtime.ModelContractError, match="NoSuchOp"):
        Detector.load(broken, providers=["cuda", "cpu"])
    cases.add("runtime", "broken CUDA: CPU fallback, providers really used + note", 1)


def test_real_onnxruntime_with_missing_cuda_libraries(model_path: Path, monkeypatch: pytest.MonkeyPatch, cases) -> None:  # noqa: ANN001
    """The real onnxruntime asked for CUDA after we wrongly believe a driver exists: on a
    machine without a usable GPU it falls back; the Detector reports that."""
    monkeypatch.setattr(providers, "_can_load", lambda *names: True)
    monkeypatch.setattr(ort, "preload_dlls", lambda *a, **k: None, raising=False)
    detector = Detector.load(model_path, providers=["cuda", "cpu"])
    assert detector.providers == detector.session.get_providers()
    if CUDA not in detector.providers:
        assert any(CUDA in note for note in detector.provider_notes), detector.provider_notes
    assert np.isfinite(detector.run(IMAGE, size=128).boxes).all()
    cases.add("runtime", "broken CUDA: CPU fallback, providers really used + note", 1)


# =========================================================================== out of memory
@pytest.mark.parametrize("size", [100_000, 2**31 - 1, runtime.MAX_INFERENCE_SIZE + 1, 16, -640])
def test_absurd_inference_size_is_refused_before_allocating(model_path: Path, size: int, cases) -> None:  # noqa: ANN001
    detector = Detector.load(model_path, providers=["cpu"])
    started = time.perf_counter()
    with pytest.raises(InferenceSizeError) as info:
        detector.run(IMAGE, size=size)
    assert time.perf_counter() - started < 1.0
    assert isinstance(info.value, ValueError) and isinstance(info.value, StudioError)
    assert str(size) in str(info.value) and str(runtime.MAX_INFERENCE_SIZE) in str(info.value)
    assert detector.run(IMAGE, size=128).image_hw == (60, 80)  # and the detector still works
    cases.add("runtime", "inference size that would exhaust memory: refused", 1)


def test_onnxruntime_out_of_memory_is_a_clear_error(model_path: Path, monkeypatch: pytest.MonkeyPatch, cases) -> None:  # noqa: ANN001
    detector = Detector.load(model_path, providers=["cpu"])
    real = detector.session

    class OutOfMemory:
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def run(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError(
                "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while running Conv node."
                " Failed to allocate memory for requested buffer of size 8589934592\nstack trace..."
            )

    monkeypatch.setattr(detector, "session", OutOfMemory())
    with pytest.raises(InferenceError) as info:
        detector.run(IMAGE, size=512)
    assert str(detector.contract.path) in str(info.value) and "allocate memory" in str(info.value)
    assert "\n" not in str(info.value)
    monkeypatch.setattr(detector, "session", real)
    assert detector.run(IMAGE, size=128).image_hw == (60, 80)
    cases.add("runtime", "onnxruntime out of memory: one-line error, detector usable", 1)


def test_cli_with_an_absurd_size(model_path: Path, tmp_path: Path, cases) -> None:  # noqa: ANN001
    images = _image_folder(tmp_path / "images", 1)
    result = run_cli("detect", str(images), "--model", str(model_path), "--out", str(tmp_path / "out"), "--size", "100000", cwd=tmp_path)
    assert result.returncode == 2
    last = [line for line in result.stderr.splitlines() if line.strip()][-1]
    assert last.startswith("error: ") and "100000" in last
    assert "Traceback" not in result.stderr
    cases.add("runtime", "inference size that would exhaust memory: refused", 1)


def test_app_survives_an_absurd_size(qtbot, model_path: Path, tmp_path: Path, cases) -> None:  # noqa: ANN001
    from app.jobs.detection import DetectionController, default_backend

    images = _image_folder(tmp_path / "images", 1)
    controller = DetectionController(default_backend())
    try:
        with qtbot.waitSignal(controller.model_loaded, timeout=30_000):
            controller.load_model(model_path)
        with qtbot.waitSignal(controller.output_ready, timeout=30_000):
            controller.open_image(images / "img_00.png")
        with qtbot.waitSignal(controller.detection_failed, timeout=30_000) as blocker:
            controller.set_inference_size(100_000)
        assert isinstance(blocker.args[1], InferenceSizeError)
        with qtbot.waitSignal(controller.output_ready, timeout=30_000) as blocker:
            controller.set_inference_size(256)
        assert blocker.args[0].key[1] == 256
    finally:
        controller.shutdown()
    cases.add("runtime", "inference size that would exhaust memory: refused", 1)


# =========================================================================== cancel / outrun
def test_folder_detection_cancelled_mid_way_leaves_only_whole_files(model_path: Path, tmp_path: Path, cases) -> None:  # noqa: ANN001
    images = _image_folder(tmp_path / "images", 8)
    detector = Detector.load(model_path, providers=["cpu"])
    out = tmp_path / "out"
    steps: list[int] = []
    summary = detect_images(
        sorted(images.iterdir()),
        detector,
        out_dir=out,
        fmt="voc",
        nms=PostProcessor(score_thresh=0.0, iou_thresh=0.5, max_per_class=5, max_total=5),
        size=128,
        progress=lambda done, total: steps.append(done),
        cancelled=lambda: len(steps) >= 3,
    )
    assert summary.images == 3 and not summary.errors
    written = sorted(p.name for p in out.iterdir())
    assert written == ["img_00.xml", "img_01.xml", "img_02.xml"], written  # no temp files, nothing half done
    for name in written:
        assert read_voc(out / name).width == 64
    cases.add("runtime", "folder detection cancelled mid-way: whole files only", 1)


def test_switching_images_faster_than_the_real_runtime(qtbot, model_path: Path, tmp_path: Path, cases) -> None:  # noqa: ANN001
    """tests/app covers this with a fake detector; here the real onnxruntime one runs."""
    from app.jobs.detection import DetectionController, default_backend

    images = sorted(_image_folder(tmp_path / "images", 3).iterdir())
    heights = {image: 48 + 8 * i for i, image in enumerate(images)}
    controller = DetectionController(default_backend())
    shown: list[tuple[Path, Path | None, int]] = []
    controller.output_ready.connect(lambda r: shown.append((r.path, controller.current_path, r.output.image_hw[0])))
    switches = 15
    try:
        with qtbot.waitSignal(controller.model_loaded, timeout=30_000):
            controller.load_model(model_path)
        for i in range(switches):
            controller.open_image(images[i % 3])
            qtbot.wait(3)
        last = images[(switches - 1) % 3]
        qtbot.waitUntil(lambda: bool(shown) and shown[-1][0] == last and not controller.is_busy(), timeout=30_000)
    finally:
        controller.shutdown()
    assert all(path == current and height == heights[path] for path, current, height in shown), shown
    cases.add("runtime", "image switches faster than detection (real runtime)", switches)


# =========================================================================== disk full / denied
def _raise(code: int) -> Callable[..., None]:
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    return fail


class _FailingFile:
    """What ``os.fdopen`` returns when the disk fills up during ``write``."""

    def __init__(self, fd: int, *args: object, **kwargs: object) -> None:
        self._file = open(fd, "wb", closefd=True)  # noqa: SIM115 - closed in __exit__

    def __enter__(self) -> _FailingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def write(self, data: bytes) -> int:
        self._file.write(data[: len(data) // 2])
        self._file.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


FAULTS: dict[str, tuple[str, Callable[..., object], int]] = {
    "disk full creating the temp file": ("model.labels.atomic.tempfile.mkstemp", _raise(errno.ENOSPC), errno.ENOSPC),
    "disk full half-way through write": ("model.labels.atomic.os.fdopen", _FailingFile, errno.ENOSPC),
    "disk full at fsync": ("os.fsync", _raise(errno.ENOSPC), errno.ENOSPC),
    "quota exceeded at fsync": ("os.fsync", _raise(errno.EDQUOT), errno.EDQUOT),
    "I/O error at fsync": ("os.fsync", _raise(errno.EIO), errno.EIO),
    "permission denied at rename": ("os.replace", _raise(errno.EACCES), errno.EACCES),
    "read-only file system at rename": ("os.replace", _raise(errno.EROFS), errno.EROFS),
    "permission denied at chmod": ("os.chmod", _raise(errno.EPERM), errno.EPERM),
}
OLD = ImageLabels("photo.jpg", 640, 480, labels=[Label(1, 1, 9, 9, "cat")])
NEW = ImageLabels("photo.jpg", 640, 480, labels=[Label(2, 2, 300, 200, "dog"), Label(5, 5, 50, 50, "cat")])
WRITERS: dict[str, tuple[str, Callable[[ImageLabels, Path], None]]] = {
    "voc": ("photo.xml", lambda item, p: write_voc(item, p)),
    "yolo": ("photo.txt", lambda item, p: write_yolo(item, p, class_names=["cat", "dog"])),
    "coco": ("annotations.json", lambda item, p: write_coco([item], p, class_names=["cat", "dog"])),
    "classes.txt": ("classes.txt", lambda item, p: write_classes_txt(p, sorted({lb.name for lb in item.labels}))),
}


@pytest.mark.parametrize("fmt", list(WRITERS))
@pytest.mark.parametrize("fault", list(FAULTS))
def test_disk_full_or_denied_while_saving_keeps_the_old_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    fmt: str,
    cases,  # noqa: ANN001
) -> None:
    name, write = WRITERS[fmt]
    path = tmp_path / name
    write(OLD, path)
    before = path.read_bytes()
    target, replacement, code = FAULTS[fault]
    monkeypatch.setattr(target, replacement)
    with pytest.raises(LabelWriteError) as info:
        write(NEW, path)
    monkeypatch.undo()
    assert str(path) in str(info.value) and os.strerror(code) in str(info.value), info.value
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [name], "a temporary file was left behind"
    write(NEW, path)  # the fault is gone: saving works again
    assert path.read_bytes() != before
    cases.add("runtime", "disk full / denied while saving: old file kept, file named", 1)


FILE_SIZE_LIMIT_SCRIPT = r"""
import json, resource, signal, sys
from pathlib import Path
from model.errors import LabelWriteError
from model.labels import ImageLabels, Label, read_voc, write_voc
path = Path(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
big = ImageLabels("photo.jpg", 640, 480, labels=[Label(i, i, i + 10, i + 10, "cat") for i in range(200)])
try:
    write_voc(big, path)
except LabelWriteError as exc:
    print(json.dumps({"error": str(exc), "labels": len(read_voc(path).labels)}))
else:
    print(json.dumps({"error": None}))
"""


def test_a_real_file_size_limit_while_saving(tmp_path: Path, cases) -> None:  # noqa: ANN001
    """Not a mock: the kernel refuses the bytes past RLIMIT_FSIZE (EFBIG), as a full disk would."""
    path = tmp_path / "photo.xml"
    write_voc(OLD, path)
    before = path.read_bytes()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", FILE_SIZE_LIMIT_SCRIPT, str(path)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["error"] and str(path) in report["error"] and os.strerror(errno.EFBIG) in report["error"], report
    assert report["labels"] == 1 and path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["photo.xml"]
    cases.add("runtime", "disk full / denied while saving: old file kept, file named", 1)
