"""Which onnxruntime execution providers a model runs on, and why not the others.

TensorRT (only when asked for) -> CUDA -> CPU, each GPU provider tried only when its
libraries can really load, so that a machine without a GPU gets one clear notice instead of a
wall of red logs (onnxruntime-gpu lists its CUDA and TensorRT providers whether or not there
is a GPU, and logs an error when it cannot load them).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from pathlib import Path

from model import contract as C

CPU, CUDA, TENSORRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
# Short names accepted on the command line (--providers cuda,cpu).
PROVIDER_ALIASES = {"cpu": CPU, "cuda": CUDA, "tensorrt": TENSORRT, "trt": TENSORRT}

# CUDA provider options. HEURISTIC against the default EXHAUSTIVE, measured on an H200 with
# every image on one 640x640 canvas (issue 14): demo model 132.1 vs 84.1 img/s, R50 with 80
# classes 89.7 vs 61.6 img/s; with varying shapes EXHAUSTIVE re-tunes per shape (600-900 ms
# for each new one). TF32 stays on (onnxruntime's default, use_tf32=1): it moved scores by at
# most 7.3e-4 there; tests that want exact parity turn it off.
CUDA_OPTIONS = {"cudnn_conv_algo_search": "HEURISTIC"}


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (onnxruntime's run to many), at most 300 characters."""
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


def provider_args(chosen: Sequence[str], path: str | Path, cuda_options: dict[str, object] | None, *, cuda_graph: bool = False) -> list:
    """onnxruntime's ``providers`` argument for ``chosen``: CUDA with :data:`CUDA_OPTIONS`
    (and ``cuda_options``), TensorRT with its fp16 engine cached beside the model;
    ``cuda_graph``: with CUDA graph capture on (fixed-shape sessions run through IOBinding)."""
    args: list = []
    for name in chosen:
        if name == CUDA:
            args.append((CUDA, {**CUDA_OPTIONS, **(cuda_options or {}), **({"enable_cuda_graph": "1"} if cuda_graph else {})}))
        elif name == TENSORRT:
            cache = str(Path(path).resolve().parent / ".trt_cache")
            options = {"trt_engine_cache_enable": True, "trt_engine_cache_path": cache, "trt_fp16_enable": True}
            args.append((TENSORRT, {**options, **({"trt_cuda_graph_enable": True} if cuda_graph else {})}))
        else:
            args.append(name)
    return args
