"""onnxruntime inference for contract models; never imports TensorFlow.

Provider choice is deliberate: TensorRT (only when asked for) -> CUDA -> CPU, each GPU
provider tried only when its libraries can really load, so that a machine without a GPU
gets one clear notice instead of a wall of red logs. ``Detector.providers`` is what the
session really uses. On CUDA and TensorRT a run goes through onnxruntime's IOBinding
(input and wanted outputs bound in host memory, one binding per Detector); callers that need
only boxes and scores leave the pyramid on the device with ``Detector.run(..., features=False)``.
"""

from __future__ import annotations

import ctypes
import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from model import contract as C
from model.anchors import anchor_location, anchor_offsets, level_shapes
from model.boxes import clip_boxes
from model.errors import ModelContractError, StudioError
from model.postprocess import Candidates, extract_candidates

log = logging.getLogger(__name__)

PAD_MULTIPLE = 128
CPU, CUDA, TENSORRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
# Short names accepted on the command line (--providers cuda,cpu).
PROVIDER_ALIASES = {"cpu": CPU, "cuda": CUDA, "tensorrt": TENSORRT, "trt": TENSORRT}
# Inference sizes (longest side, pixels) outside these bounds are refused before any
# allocation: at 100,000 px the resized image alone would need ~30 GB, and a ResNet50
# pyramid at 4096 px already needs several GB.
MIN_INFERENCE_SIZE, MAX_INFERENCE_SIZE = 32, 4096


class InferenceSizeError(StudioError, ValueError):
    """The requested inference size is outside MIN_INFERENCE_SIZE..MAX_INFERENCE_SIZE."""


class InferenceError(StudioError):
    """onnxruntime failed while running the network (out of memory, a provider fault...)."""


def letterbox_size(image_hw: tuple[int, int], *, size: int) -> tuple[int, int]:
    """(height, width) of an ``image_hw`` image resized so that its longest side is ``size``,
    aspect kept (each side rounded, at least 1)."""
    height, width = image_hw
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def boxes_to_original(boxes: np.ndarray, *, image_hw: tuple[int, int], size: int) -> np.ndarray:
    """(A, 4) xyxy boxes in letterboxed network-input pixels -> original-image pixels, per
    axis (the short side was rounded to whole pixels), clipped to the image."""
    height, width = image_hw
    new_h, new_w = letterbox_size((height, width), size=size)
    factors = np.array([width / new_w, height / new_h] * 2, dtype=np.float32)
    return clip_boxes(boxes * factors, width=width, height=height)


def letterbox(image: np.ndarray, *, size: int, multiple: int = PAD_MULTIPLE) -> tuple[np.ndarray, float]:
    """Resize an (H, W, 3) image so the longest side is ``size`` (aspect kept), then pad
    bottom/right with zeros to a multiple of ``multiple``. Returns (padded uint8 image, scale)
    where network-input pixel ~= original pixel * scale (exactly so along the longest side;
    the other side is rounded to whole pixels, see :func:`letterbox_size`)."""
    if size <= 0:
        raise ValueError(f"inference size must be positive, got {size}")
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_h, new_w = letterbox_size((height, width), size=size)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interp) if (new_w, new_h) != (width, height) else image
    pad_h, pad_w = (math.ceil(new_h / multiple) * multiple, math.ceil(new_w / multiple) * multiple)
    padded = np.zeros((pad_h, pad_w, 3), dtype=np.uint8)
    padded[:new_h, :new_w] = resized
    return padded, scale


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _can_load(*names: str) -> bool:
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def choose_providers(requested: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """Providers to ask onnxruntime for, and notes on the GPU providers left out.

    ``requested``: provider names or aliases in order of preference; None means
    CUDA then CPU (TensorRT builds engines for minutes, so it is used only when asked for).
    """
    import onnxruntime as ort

    names = [p.strip() for p in (requested or [CUDA, CPU]) if p.strip()] or [CUDA, CPU]
    wanted = list(dict.fromkeys(PROVIDER_ALIASES.get(p.lower(), p) for p in names))  # aliases, no duplicates
    if CPU not in wanted:
        wanted.append(CPU)
    available = set(ort.get_available_providers())
    chosen, notes = [], []
    gpu_wanted = [p for p in wanted if p in (CUDA, TENSORRT)]
    driver = _can_load("libcuda.so.1", "libcuda.so", "nvcuda.dll") if gpu_wanted else False
    if gpu_wanted and driver and hasattr(ort, "preload_dlls"):
        try:  # loads the CUDA/cuDNN libraries from the nvidia-* pip packages (gpu extra)
            ort.preload_dlls()
        except Exception as exc:  # noqa: BLE001 - reported below as a note
            notes.append(f"could not preload CUDA/cuDNN libraries: {exc}")
    for provider in wanted:
        if provider == CPU:
            chosen.append(provider)
        elif provider not in available:
            hint = " (install onnxruntime-gpu)" if provider in (CUDA, TENSORRT) else ""
            notes.append(f"{provider} is not in this onnxruntime build{hint}")
        elif provider not in (CUDA, TENSORRT):
            chosen.append(provider)  # another provider of this build (OpenVINO, DirectML...)
        elif not driver:
            notes.append(f"{provider}: no NVIDIA driver found (libcuda.so.1 cannot be loaded)")
        elif provider == CUDA and not _can_load("libcudart.so.13", "libcudart.so.12", "libcudart.so"):
            notes.append(f"{provider}: CUDA runtime libraries missing (pip install 'retinanet-studio[gpu]')")
        else:
            chosen.append(provider)
    return chosen, notes


def precision_note(contract: C.ModelContract, providers: Sequence[str]) -> str | None:
    """A note when the model's precision does not suit ``providers`` (an fp16 model from
    ``export --fp16`` on the CPU), else None."""
    precision = str(contract.provenance.get("precision", ""))
    if precision.startswith("fp16") and list(providers[:1]) == [CPU]:
        # demo model at 512 px on 2 cores, interleaved: 45 ms vs 36 ms for its fp32 original
        return "fp16 model on the CPU: onnxruntime runs it through casts to fp32, slower than the fp32 model (fp16 is for GPUs)"
    return None


@dataclass
class NetworkOutput:
    """One image's network outputs, mapped to original-image pixels, plus its candidates.

    boxes (A, 4) float32 xyxy original pixels; scores (A, C); pyramid: level name ->
    (h, w, F), empty for a ``features=False`` run; level_shapes (h, w) per level (always
    set); anchor_offsets (L + 1,).
    """

    boxes: np.ndarray
    scores: np.ndarray
    pyramid: dict[str, np.ndarray]
    level_shapes: list[tuple[int, int]]
    anchor_offsets: np.ndarray
    anchors_per_cell: int
    scale: float
    image_hw: tuple[int, int]
    input_hw: tuple[int, int]
    timings_ms: dict[str, float]
    candidates: Candidates = field(repr=False)

    def anchor_location(self, anchor_id: int) -> tuple[int, int, int, int]:
        """(level index, row, col, anchor within the cell) of ``anchor_id``."""
        return anchor_location(int(anchor_id), self.level_shapes, self.anchors_per_cell)

    def level_score_map(self, level_idx: int, class_id: int | None = None) -> np.ndarray:
        """(h, w) highest class score of each cell of a level (of one class if given)."""
        h, w = self.level_shapes[level_idx]
        start, stop = self.anchor_offsets[level_idx], self.anchor_offsets[level_idx + 1]
        block = self.scores[start:stop].reshape(h, w, self.anchors_per_cell, -1)
        if class_id is not None:
            block = block[..., class_id]
        return block.reshape(h, w, -1).max(axis=-1)


class Detector:
    """An onnxruntime session on a contract model.

    ``io_binding``: run through onnxruntime's IOBinding instead of ``session.run``; None
    (default) turns it on when the session's first provider is CUDA or TensorRT. One
    Detector serves one thread at a time (the binding is reused under a lock, so a second
    thread would wait, never clash).
    """

    def __init__(self, session, contract: C.ModelContract, notes: list[str], *, io_binding: bool | None = None) -> None:
        self.session = session
        self.contract = contract
        self.providers: list[str] = list(session.get_providers())
        self.provider_notes = notes
        self._output_names = [C.BOXES, C.SCORES, *(lv.name for lv in contract.levels)]
        self._strides = tuple(lv.stride for lv in contract.levels)
        on_gpu = bool(self.providers) and self.providers[0] in (CUDA, TENSORRT)
        self.uses_io_binding: bool = on_gpu if io_binding is None else bool(io_binding)
        self._binding = None  # created on first use, then reused
        self._binding_lock = threading.Lock()

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        providers: Sequence[str] | None = None,
        threads: int = 0,
        spin: bool = True,
        io_binding: bool | None = None,
    ) -> Detector:
        """Open and validate ``path``; raise ModelContractError naming the file and problem.

        ``threads``: onnxruntime intra-op threads (0: one per core). ``spin=False`` stops
        idle worker threads from busy-waiting after each run: slightly slower back-to-back
        runs, but the cores go back to the GUI thread at once (the app's choice).
        ``io_binding``: see :class:`Detector` (None: on for CUDA/TensorRT, off for CPU).
        """
        import onnxruntime as ort

        contract = C.read_contract(path)
        chosen, notes = choose_providers(providers)
        # onnxruntime's default logger prints graph-level warnings (deprecated Resize
        # attributes from tf2onnx...) in colour at session creation; errors still show.
        ort.set_default_logger_severity(3)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # our own notes say what matters; no red walls
        provider_args: list = []
        for name in chosen:
            if name == CUDA:
                # EXHAUSTIVE re-tunes cuDNN for every new input shape; sizes vary here.
                provider_args.append((CUDA, {"cudnn_conv_algo_search": "HEURISTIC"}))
            elif name == TENSORRT:
                cache = str(Path(path).resolve().parent / ".trt_cache")
                provider_args.append((TENSORRT, {"trt_engine_cache_enable": True, "trt_engine_cache_path": cache, "trt_fp16_enable": True}))
            else:
                provider_args.append(name)
        try:
            session = ort.InferenceSession(str(path), sess_options=options, providers=provider_args)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own assorted types
            if chosen == [CPU]:
                raise ModelContractError(path, f"onnxruntime cannot load it: {_first_line(exc)}") from None
            # A GPU provider whose libraries load but which cannot start (no device, driver
            # too old) raises here instead of falling back: run on the CPU and say so.
            try:
                session = ort.InferenceSession(str(path), sess_options=options, providers=[CPU])
            except Exception as cpu_exc:  # noqa: BLE001 - then the model itself is the problem
                raise ModelContractError(path, f"onnxruntime cannot load it: {_first_line(cpu_exc)}") from None
            gpu = ", ".join(name for name in chosen if name != CPU)
            notes.append(f"{gpu} failed to start ({_first_line(exc)}); running on CPU")
            chosen = [CPU]
        used = session.get_providers()
        for name in chosen:
            if name not in used:
                notes.append(f"{name} was requested but failed to initialise; running without it")
        note = precision_note(contract, used)
        if note:
            notes.append(note)
        out_names = {o.name for o in session.get_outputs()}
        missing = [n for n in [C.BOXES, C.SCORES, *(lv.name for lv in contract.levels)] if n not in out_names]
        if missing:
            raise ModelContractError(path, f"missing outputs {missing}")
        return cls(session, contract, notes, io_binding=io_binding)

    @property
    def name(self) -> str:
        return Path(self.contract.path).name

    def _run_session(self, names: list[str], batch: np.ndarray) -> list[np.ndarray]:
        """The network's outputs ``names`` for the (1, H, W, 3) float32 ``batch``, as numpy."""
        if not self.uses_io_binding:
            return self.session.run(names, {C.INPUT_NAME: batch})
        return self._run_bound(names, batch)

    def _run_bound(self, names: list[str], batch: np.ndarray) -> list[np.ndarray]:
        """:meth:`_run_session` through IOBinding: the host input is bound (onnxruntime copies
        it to the device), and only ``names`` are bound back, to host memory."""
        with self._binding_lock:
            if self._binding is None:
                self._binding = self.session.io_binding()
            binding = self._binding
            try:
                binding.bind_cpu_input(C.INPUT_NAME, batch)
                for name in names:
                    binding.bind_output(name, "cpu")
                self.session.run_with_iobinding(binding)
                return binding.copy_outputs_to_cpu()
            finally:
                # drop the references to this run's tensors (the pyramid can be large)
                binding.clear_binding_inputs()
                binding.clear_binding_outputs()

    def run(
        self, image: np.ndarray, *, size: int | None = None, floor: float | None = None, features: bool = True
    ) -> NetworkOutput:
        """Run the network on an (H, W, 3) uint8 RGB image, longest side resized to ``size``
        (default: the model's). Boxes come back xyxy in the image's own pixels, clipped to it;
        candidates are extracted above ``floor`` (default CANDIDATE_FLOOR).

        ``features=False`` fetches only boxes and scores: the pyramid (P3..P7) is computed
        inside the graph but never copied out, ``pyramid`` is empty, and ``level_shapes``
        come from the padded input size and the contract's strides.

        Raises ModelContractError when the outputs do not have the contract's shapes."""
        if image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
        size = int(size or self.contract.default_size)
        if not MIN_INFERENCE_SIZE <= size <= MAX_INFERENCE_SIZE:
            raise InferenceSizeError(
                None, f"inference size {size} px is outside {MIN_INFERENCE_SIZE}..{MAX_INFERENCE_SIZE} px (longest side)"
            )
        t0 = time.perf_counter()
        padded, scale = letterbox(image, size=size)
        t1 = time.perf_counter()
        names = self._output_names if features else self._output_names[:2]
        try:
            outputs = self._run_session(names, padded[None].astype(np.float32))
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types (out of memory...)
            raise InferenceError(self.contract.path, f"inference at size {size} failed: {_first_line(exc)}") from exc
        t2 = time.perf_counter()
        boxes, scores, *levels = (o[0] for o in outputs)
        height, width = image.shape[:2]
        if features:
            shapes = [tuple(int(d) for d in lv.shape[:2]) for lv in levels]
        else:  # what the network's 'same'-padded stride-2 steps give: ceil(side / stride)
            shapes = level_shapes(padded.shape[:2], self._strides)
        offsets = anchor_offsets(shapes, self.contract.anchors_per_cell)
        num_anchors, num_classes = int(offsets[-1]), self.contract.num_classes
        if scores.shape != (num_anchors, num_classes) or boxes.shape != (num_anchors, 4):
            raise ModelContractError(
                self.contract.path,
                f"outputs disagree with the contract: boxes {list(boxes.shape)} and scores {list(scores.shape)} for"
                f" {num_anchors} anchors (pyramid {shapes}) and {num_classes} classes",
            )
        boxes = boxes_to_original(boxes, image_hw=(height, width), size=size)
        kwargs = {} if floor is None else {"floor": floor}
        candidates = extract_candidates(boxes, scores, anchor_offsets=offsets, **kwargs)
        t3 = time.perf_counter()
        return NetworkOutput(
            boxes=boxes,
            scores=scores,
            pyramid={lv.name: arr for lv, arr in zip(self.contract.levels, levels)},
            level_shapes=shapes,
            anchor_offsets=offsets,
            anchors_per_cell=self.contract.anchors_per_cell,
            scale=scale,
            image_hw=(height, width),
            input_hw=padded.shape[:2],
            timings_ms={"preprocess": (t1 - t0) * 1e3, "network": (t2 - t1) * 1e3, "candidates": (t3 - t2) * 1e3},
            candidates=candidates,
        )
