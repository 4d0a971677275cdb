"""Per-image latency in one run: CPU vs CUDA (plain run, IOBinding, features off), TensorRT fp16
and an fp16 model on CUDA, same image, same process.

    .venv/bin/python bench/bench_gpu.py --model M.onnx [--fp16 M16.onnx] [--size 640] [--runs 50]
        [--image IMG] [--threads 0]

Every configuration that can run here is loaded and warmed up (TensorRT builds or reads its
fp16 engine then), then timed one image at a time, round-robin, so machine noise hits all
alike. Latency is a whole ``Detector.run`` (letterbox, network, copies back, candidates);
the ``network`` column is the part inside onnxruntime. Prints median and p90 per
configuration, ratios against the CPU and CUDA-plain medians of this same run, and the
largest score difference from the CPU. A configuration that cannot run prints one line
saying why.

The R50 files are larger than some transfer limits (fp32 ~138 MB, fp16 ~69 MB): export them
where TensorFlow is (``retinanet-studio export --classes c0,...,c79 --size 640 --out
runs/gpu/r50.onnx --fp16``), ``split -b 60M`` them, copy the parts and ``cat`` them back
together on the GPU machine, whose onnxruntime must list CUDAExecutionProvider.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent / "resources" / "samples" / "00000.jpg"
WARMUP = 3
CPU_LABEL, CUDA_LABEL = "CPU", "CUDA, run"


@dataclass
class Config:
    label: str
    run: Callable[[], object]  # one Detector.run on the bench image
    latency_ms: list[float] = field(default_factory=list)
    network_ms: list[float] = field(default_factory=list)
    score_diff: float = 0.0  # max |score - CPU score| (nan: no CPU to compare with)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _tensorrt_missing() -> str | None:
    """Why TensorRT cannot load here, or None when its library can."""
    try:  # the tensorrt wheel keeps libnvinfer in its own folder; importing it loads it
        import tensorrt  # noqa: F401
    except Exception:  # noqa: BLE001 - not installed, or a broken install: checked below
        pass
    for name in ("libnvinfer.so.10", "libnvinfer.so.8", "libnvinfer.so", "nvinfer_10.dll", "nvinfer.dll"):
        try:
            ctypes.CDLL(name)
            return None
        except OSError:
            continue
    return "TensorRT libraries (libnvinfer) cannot be loaded (pip install tensorrt)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a contract model (fp32)")
    parser.add_argument("--fp16", type=Path, default=None, help="the same model converted to fp16, timed on CUDA")
    parser.add_argument("--size", type=int, default=640, help="inference size (longest side, px)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per configuration")
    parser.add_argument("--image", type=Path, default=None, help="image to detect (default: a bundled sample, else noise)")
    parser.add_argument("--threads", type=int, default=0, help="CPU provider intra-op threads (0 = all cores)")
    args = parser.parse_args()

    import onnxruntime as ort

    from model.errors import StudioError
    from model.imageio import load_image
    from model.runtime import CPU, CUDA, TENSORRT, Detector, choose_providers

    image_path = args.image or (SAMPLE if SAMPLE.is_file() else None)
    try:
        image = load_image(image_path) if image_path else np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), np.uint8)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.model.name} at {args.size} px, image {image_path.name if image_path else 'noise'} {image.shape[1]}x{image.shape[0]},"
        f" {args.runs} runs each; onnxruntime {ort.__version__} ({', '.join(ort.get_available_providers())}); {os.cpu_count()} CPU cores"
    )

    configs: list[Config] = []
    unavailable: list[str] = []

    def add(label: str, detector: Detector, features: bool = True) -> None:
        configs.append(Config(label, lambda: detector.run(image, size=args.size, features=features)))

    def load(path: Path, providers: list[str], wanted: str) -> tuple[Detector | None, str]:
        """A Detector on ``path`` whose first provider is ``wanted``, or None and why not."""
        chosen, notes = choose_providers(providers)
        if wanted not in chosen:
            return None, "; ".join(notes) or f"{wanted} not chosen"
        try:
            detector = Detector.load(path, providers=providers, threads=args.threads)
        except StudioError as exc:
            return None, _first_line(exc)
        if detector.providers[0] != wanted:
            return None, "; ".join(detector.provider_notes) or f"{wanted} did not start"
        return detector, ""

    cpu, why = load(args.model, ["cpu"], CPU)
    if cpu is None:
        print(f"error: {why}", file=sys.stderr)
        return 2
    add(CPU_LABEL, cpu)
    add("CPU, features off", cpu, features=False)
    cuda, why = load(args.model, ["cuda"], CUDA)
    cuda_ways = ((CUDA_LABEL, False, True), ("CUDA, IOBinding", True, True), ("CUDA, IOBinding, features off", True, False))
    for label, io_binding, features in cuda_ways:  # one session, three ways of calling it
        if cuda is None:
            unavailable.append(f"{label}: {why}")
        else:
            add(label, Detector(cuda.session, cuda.contract, cuda.provider_notes, io_binding=io_binding), features)
    trt_label = "TensorRT fp16, IOBinding"
    chosen, notes = choose_providers(["tensorrt"])
    if TENSORRT not in chosen:  # no driver, or not in this onnxruntime build
        unavailable.append(f"{trt_label}: {'; '.join(notes) or 'TensorRT not chosen'}")
    elif (missing := _tensorrt_missing()) is not None:
        unavailable.append(f"{trt_label}: {missing}")
    else:
        trt, why = load(args.model, ["tensorrt"], TENSORRT)
        if trt is None:
            unavailable.append(f"{trt_label}: {why}")
        else:
            add(trt_label, trt)
    if args.fp16 is not None:
        fp16_label = "fp16 model, CUDA, IOBinding"
        fp16, why = load(args.fp16, ["cuda"], CUDA)
        if fp16 is None:
            unavailable.append(f"{fp16_label}: {why}")
        else:
            add(fp16_label, fp16)

    # Warm-up (TensorRT builds its engine here, cuDNN picks kernels), and each configuration's
    # scores against the CPU's; a configuration failing here is dropped with one line.
    reference = None
    for config in list(configs):
        started = time.perf_counter()
        try:
            outputs = [config.run() for _ in range(WARMUP)]
        except Exception as exc:  # noqa: BLE001 - reported as one line, never a traceback
            unavailable.append(f"{config.label}: failed while warming up ({_first_line(exc)})")
            configs.remove(config)
            continue
        warm_s = time.perf_counter() - started
        scores = outputs[-1].scores.astype(np.float32)
        if config.label == CPU_LABEL:
            reference = scores
        elif reference is not None and scores.shape == reference.shape:
            config.score_diff = float(np.abs(scores - reference).max())
        else:
            config.score_diff = float("nan")
        if warm_s > 10:
            print(f"{config.label}: warm-up took {warm_s:.0f} s (engine build or kernel search)")

    for _ in range(args.runs):  # round-robin so drift in machine load is shared
        for config in configs:
            t0 = time.perf_counter()
            output = config.run()
            config.latency_ms.append((time.perf_counter() - t0) * 1e3)
            config.network_ms.append(output.timings_ms["network"])

    medians = {c.label: statistics.median(c.latency_ms) for c in configs}
    cpu_ms, cuda_ms = medians.get(CPU_LABEL), medians.get(CUDA_LABEL)
    width = max(len("configuration"), *(len(c.label) for c in configs))
    print(f"{'configuration':<{width}} {'median ms':>10} {'p90 ms':>8} {'network ms':>11} {'vs CPU':>7} {'vs CUDA':>8} {'max dscore':>10}")
    for c in configs:
        median = medians[c.label]
        vs_cpu = f"{cpu_ms / median:.2f}x" if cpu_ms else "-"
        vs_cuda = f"{cuda_ms / median:.2f}x" if cuda_ms else "-"
        p90 = float(np.percentile(c.latency_ms, 90))
        print(
            f"{c.label:<{width}} {median:>10.1f} {p90:>8.1f} {statistics.median(c.network_ms):>11.1f}"
            f" {vs_cpu:>7} {vs_cuda:>8} {c.score_diff:>10.1e}"
        )
    for line in unavailable:
        print(f"{line} - not timed")
    print("vs CPU / vs CUDA: that median over this one (above 1: faster); max dscore: largest |score - CPU score|")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
