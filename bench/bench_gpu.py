"""GPU figures in one run: per-image latency (CPU, CUDA, TensorRT, fp16), device->host bytes per
image, the bare device-resident ``session.run`` against the product's ``Detector.run``, and
``detect`` throughput at batch 1 / 8 / 32. Runs on a CPU-only machine too (the CPU rows;
every GPU row says why it cannot run).

    .venv/bin/python bench/bench_gpu.py --model M.onnx [--fp16 M16.onnx] [--size 640] [--runs 50]
        [--image IMG] [--threads 0] [--detect-images 300] [--batches 1,8,32] [--detect-cpu]

Sections:

1. Latency. Every configuration that can run here is loaded and warmed up (TensorRT builds
   or reads its fp16 engine then), then timed one image at a time, round-robin, so machine
   noise hits all alike. A row is a whole ``Detector.run`` (letterbox, network, copies back,
   candidates) on the hot path (``features=False``: a contract-v2 model copies only its
   candidates) or, for "+ dense + pyramid", what the layer viewer fetches. Median, p90,
   the part inside onnxruntime, ratios, and the largest score difference from the CPU
   (dense scores of one extra run on the same canvas).
2. Bytes: what one image's outputs copy to the host, hot path and layer-viewer path.
3. Bare: ``session.run`` alone on the same canvas through IOBinding, outputs left where the
   provider computed them (CUDA memory on a GPU) and the input already there, in the session
   the product runs that canvas in (fixed-shape on a GPU); the product's hot-path
   ``Detector.run`` median over that, per provider (issue 14's goal: within 1.5x).
4. ``detect``: ``model.detect.detect_images`` on ``--detect-images`` synthetic images
   (320-512 px, written once to a temporary folder), one pass per batch size and provider,
   in img/s (decode, letterbox, network, NMS and label writing all included). The CPU
   provider runs it only with ``--detect-cpu`` (minutes for a ResNet50).
5. Host copies inside a run: the Memcpy nodes onnxruntime puts into the CUDA graph as it
   partitions it (the optimised graph it saves), with the input's dimensions free and fixed
   (model/fixed_shapes.py).

Section 1's CUDA rows: "CUDA" is the product's default there (fixed canvas, fixed-shape
sessions); "free shapes" is the same canvas in the one session with free dimensions; "CUDA
graph" runs the hot path through bound buffers captured as a CUDA graph
(``Detector.load(cuda_graph=True)``; off by default until this bench says it pays).

The R50 files are larger than some transfer limits (fp32 ~138 MB, fp16 ~69 MB): export them
where TensorFlow is (``retinanet-studio export --classes c0,...,c79 --size 640 --out
runs/gpu/r50.onnx --fp16``), ``split -b 60M`` them, copy the parts and ``cat`` them back
together on the GPU machine, whose onnxruntime must list CUDAExecutionProvider.
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # model/ and bench/ from a checkout

import numpy as np  # noqa: E402

from bench.machine import machine_line  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent / "resources" / "samples" / "00000.jpg"
WARMUP = 3
CPU_LABEL, CUDA_LABEL = "CPU", "CUDA"


@dataclass
class Config:
    label: str
    detector: object  # model.runtime.Detector
    run: Callable[[], object]  # one Detector.run on the bench image
    latency_ms: list[float] = field(default_factory=list)
    network_ms: list[float] = field(default_factory=list)
    score_diff: float = float("nan")  # max |score - CPU score| on the same canvas


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


def _hot_path(detector, image: np.ndarray, *, size: int) -> tuple[Any, list[str], np.ndarray]:  # noqa: ANN001 - a Detector
    """The session the product runs ``image``'s canvas in, the outputs its hot path fetches,
    and the (1, H, W, 3) float32 input."""
    batch = detector.prepare(image, size=size).canvas[None].astype(np.float32)
    return detector.session_for(batch.shape), detector._names(dense=False, features=False), batch


def _median_run_ms(run: Callable[[], object], runs: int) -> float:
    """Median ms of ``run`` over ``runs`` calls after WARMUP untimed ones."""
    times = []
    for i in range(runs + WARMUP):
        started = time.perf_counter()
        run()
        if i >= WARMUP:
            times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def bare_run_ms(detector, image: np.ndarray, *, size: int, runs: int) -> tuple[float, str]:  # noqa: ANN001 - a Detector
    """Median ms of ``session.run`` alone on ``image``'s canvas, through IOBinding with the
    input already on the provider's device and the hot path's outputs left there; and where."""
    import onnxruntime as ort

    from model import contract as C
    from model.providers import CPU

    device = "cpu" if detector.providers[0] == CPU else "cuda"
    session, names, batch = _hot_path(detector, image, size=size)
    binding = session.io_binding()
    binding.bind_ortvalue_input(C.INPUT_NAME, ort.OrtValue.ortvalue_from_numpy(batch, device, 0))
    for name in names:
        binding.bind_output(name, device)
    binding.synchronize_inputs()

    def run() -> None:
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()

    return _median_run_ms(run, runs), device


def host_run_ms(detector, image: np.ndarray, *, size: int, runs: int) -> tuple[float, int]:  # noqa: ANN001 - a Detector
    """Median ms of a plain ``session.run`` on ``image``'s canvas from a host input, fetching
    the hot path's outputs to the host, and the input's bytes: beside :func:`bare_run_ms`, what
    copying the float32 input to the device (and the small outputs back) costs per run; it
    says whether a smaller input (uint8, 4x fewer bytes) would pay."""
    from model import contract as C

    session, names, batch = _hot_path(detector, image, size=size)
    return _median_run_ms(lambda: session.run(names, {C.INPUT_NAME: batch}), runs), int(batch.nbytes)


def memcpy_nodes(path: Path, overrides: dict[str, int]) -> str:
    """How many Memcpy nodes onnxruntime adds to ``path``'s graph for the CUDA provider with
    the input dimensions ``overrides`` fixed, as "N to the device, M to the host"."""
    from model.fixed_shapes import optimised_ops
    from model.providers import CPU, CUDA, CUDA_OPTIONS

    ops = optimised_ops(path, [(CUDA, CUDA_OPTIONS), CPU], overrides)
    return f"{ops['MemcpyFromHost']} to the device, {ops['MemcpyToHost']} to the host ({sum(ops.values())} nodes)"


def detect_throughput(detector, folder: Path, *, batch: int, size: int) -> tuple[float, float]:  # noqa: ANN001 - a Detector
    """(img/s, seconds) of ``detect_images`` over ``folder`` with ``batch`` images per call."""
    from model.detect import detect_images
    from model.imageio import list_images
    from model.postprocess import PostProcessor

    paths = list_images(folder)
    detector.warm_up(size=size, batch=batch)  # what a real run pays once, at load
    with tempfile.TemporaryDirectory(prefix="bench_gpu_detect_") as out:
        started = time.perf_counter()
        summary = detect_images(paths, detector, out_dir=Path(out), fmt="voc", nms=PostProcessor(), size=size, batch=batch)
        seconds = time.perf_counter() - started
    if summary.errors:
        raise RuntimeError(f"detect reported {len(summary.errors)} errors, first: {summary.errors[0]}")
    return summary.images / seconds, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a contract model (fp32)")
    parser.add_argument("--fp16", type=Path, default=None, help="the same model converted to fp16, timed on CUDA")
    parser.add_argument("--size", type=int, default=640, help="inference size (longest side, px)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per configuration")
    parser.add_argument("--image", type=Path, default=None, help="image to detect (default: a bundled sample, else noise)")
    parser.add_argument("--threads", type=int, default=0, help="CPU provider intra-op threads (0 = all cores)")
    parser.add_argument("--detect-images", type=int, default=300, help="synthetic images for the detect throughput (0: skip)")
    parser.add_argument("--batches", default="1,8,32", help="detect batch sizes")
    parser.add_argument("--detect-cpu", action="store_true", help="also time detect on the CPU provider")
    args = parser.parse_args()

    import onnxruntime as ort

    from model.errors import StudioError
    from model.imageio import load_image
    from model.providers import CPU, CUDA, TENSORRT, choose_providers
    from model.runtime import Detector

    image_path = args.image or (SAMPLE if SAMPLE.is_file() else None)
    try:
        image = load_image(image_path) if image_path else np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), np.uint8)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(machine_line())
    print(
        f"{args.model.name} at {args.size} px, image {image_path.name if image_path else 'noise'} {image.shape[1]}x{image.shape[0]},"
        f" {args.runs} runs each; onnxruntime {ort.__version__} ({', '.join(ort.get_available_providers())})"
    )

    configs: list[Config] = []
    unavailable: list[str] = []

    def add(label: str, detector: Detector, features: bool = False) -> None:
        configs.append(Config(label, detector, lambda: detector.run(image, size=args.size, features=features)))

    def load(path: Path, providers: list[str], wanted: str, **kwargs: object) -> tuple[Detector | None, str]:
        """A Detector on ``path`` whose first provider is ``wanted``, or None and why not."""
        chosen, notes = choose_providers(providers)
        if wanted not in chosen:
            return None, "; ".join(notes) or f"{wanted} not chosen"
        try:
            # spin=False: an idle session's threads must not busy-wait through the next
            # configuration's run (round-robin on a few cores made "CPU" 1.6x slower than
            # "CPU + dense + pyramid", which fetches more)
            detector = Detector.load(path, providers=providers, threads=args.threads, spin=False, **kwargs)
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
    add(f"{CPU_LABEL} + dense + pyramid", cpu, features=True)
    cpu_fixed, why = load(args.model, ["cpu"], CPU, fixed_canvas=True)
    if cpu_fixed is None:
        unavailable.append(f"{CPU_LABEL}, fixed canvas and shapes: {why}")
    else:
        add(f"{CPU_LABEL}, fixed canvas and shapes", cpu_fixed)
    cuda, why = load(args.model, ["cuda"], CUDA)
    if cuda is None:
        unavailable += [f"{CUDA_LABEL}: {why}", f"{CUDA_LABEL}, IOBinding (host buffers): {why}"]
    else:
        add(CUDA_LABEL, cuda)
        add(f"{CUDA_LABEL} + dense + pyramid", cuda, features=True)
        free, why = load(args.model, ["cuda"], CUDA, fixed_shapes=False)
        if free is None:
            unavailable.append(f"{CUDA_LABEL}, free shapes: {why}")
        else:
            add(f"{CUDA_LABEL}, free shapes", free)
        graph, why = load(args.model, ["cuda"], CUDA, cuda_graph=True)
        if graph is None:
            unavailable.append(f"{CUDA_LABEL}, CUDA graph: {why}")
        else:
            add(f"{CUDA_LABEL}, CUDA graph", graph)
        add(f"{CUDA_LABEL}, IOBinding (host buffers)", Detector(cuda.session, cuda.contract, cuda.provider_notes, io_binding=True))
        # cuDNN's NHWC kernels: the contract's input is NHWC and tf2onnx's graph transposes to
        # NCHW once; onnxruntime builds without NHWC ops refuse or ignore the option
        nhwc, why = load(args.model, ["cuda"], CUDA, cuda_options={"prefer_nhwc": 1})
        if nhwc is None:
            unavailable.append(f"{CUDA_LABEL}, prefer_nhwc: {why}")
        else:
            add(f"{CUDA_LABEL}, prefer_nhwc", nhwc)
        exact, why = load(args.model, ["cuda"], CUDA, cuda_options={"use_tf32": 0})
        if exact is None:
            unavailable.append(f"{CUDA_LABEL}, TF32 off: {why}")
        else:
            add(f"{CUDA_LABEL}, TF32 off", exact)
    trt_label = "TensorRT fp16"
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
        fp16_label = "fp16 model, CUDA"
        fp16, why = load(args.fp16, ["cuda"], CUDA)
        if fp16 is None:
            unavailable.append(f"{fp16_label}: {why}")
        else:
            add(fp16_label, fp16)

    # Warm-up (TensorRT builds its engine here, cuDNN picks kernels), and each configuration's
    # dense scores against the CPU's on the same canvas; a configuration failing here is
    # dropped with one line.
    references: dict[tuple[int, int], np.ndarray] = {}
    for config in list(configs):
        started = time.perf_counter()
        try:
            for _ in range(WARMUP):
                config.run()
            dense = config.detector.run(image, size=args.size, features=False, dense=True)
        except Exception as exc:  # noqa: BLE001 - reported as one line, never a traceback
            unavailable.append(f"{config.label}: failed while warming up ({_first_line(exc)})")
            configs.remove(config)
            continue
        warm_s = time.perf_counter() - started
        if config.detector.providers[0] == CPU and dense.input_hw not in references:
            references[dense.input_hw] = dense.scores
        reference = references.get(dense.input_hw)
        if reference is None:  # the GPU's fixed canvas: the CPU on that canvas, once
            twin = Detector(cpu.session, cpu.contract, [], fixed_canvas=True)
            reference = references.setdefault(dense.input_hw, twin.run(image, size=args.size, features=False, dense=True).scores)
        config.score_diff = float(np.abs(dense.scores - reference).max()) if reference.shape == dense.scores.shape else float("nan")
        if warm_s > 10:
            print(f"{config.label}: warm-up took {warm_s:.0f} s (engine build or kernel search)")

    for config in list(configs):  # a CUDA graph onnxruntime refused at warm-up ran without it
        if config.label.endswith("CUDA graph") and not config.detector.uses_cuda_graph:
            unavailable.append(f"{config.label}: {'; '.join(config.detector.provider_notes)}")
            configs.remove(config)
    for _ in range(args.runs):  # round-robin so drift in machine load is shared
        for config in configs:
            t0 = time.perf_counter()
            output = config.run()
            config.latency_ms.append((time.perf_counter() - t0) * 1e3)
            config.network_ms.append(output.timings_ms["network"])

    print("\n1. latency per image (Detector.run; hot path = candidates only unless the label says more)")
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
    print("vs CPU / vs CUDA: that median over this one (above 1: faster); max dscore: largest |score - CPU score|, same canvas")

    print("\n2. device->host bytes per image")
    for detector, label in ((cpu, CPU_LABEL), (cuda, CUDA_LABEL)):
        if detector is None:
            continue
        lean = detector.run(image, size=args.size, features=False).fetched_bytes
        full = detector.run(image, size=args.size, features=True).fetched_bytes
        print(f"{label}: hot path {lean / 1e6:.3f} MB; with dense outputs and the pyramid (layer viewer) {full / 1e6:.1f} MB")

    print("\n3. bare device-resident session.run vs the product (hot path, same canvas)")
    for detector, label in ((cpu, CPU_LABEL), (cuda, CUDA_LABEL)):
        if detector is None:
            print(f"{label}: not available - not timed")
            continue
        bare_ms, device = bare_run_ms(detector, image, size=args.size, runs=args.runs)
        product = medians.get(label)
        ratio = f"{product / bare_ms:.2f}x" if product else "-"
        print(f"{label}: bare session.run (outputs on {device}) {bare_ms:.2f} ms; Detector.run {product or float('nan'):.2f} ms; product/bare {ratio}")
        host_ms, in_bytes = host_run_ms(detector, image, size=args.size, runs=args.runs)
        copies = f"{host_ms:.2f} ms: {host_ms - bare_ms:+.2f} ms for the copies"
        print(f"{label}: session.run from the host ({in_bytes / 1e6:.2f} MB float32 in, hot-path outputs out) {copies}")

    if args.detect_images > 0:
        from model.synth import write_dataset

        batches = [int(b) for b in args.batches.split(",") if b.strip()]
        print(f"\n4. detect on {args.detect_images} synthetic images (320-512 px) at {args.size} px: img/s per batch size")
        with tempfile.TemporaryDirectory(prefix="bench_gpu_images_") as folder:
            write_dataset(folder, count=args.detect_images, seed=5, fmt="voc")
            for detector, label in ((cuda, CUDA_LABEL), (cpu if args.detect_cpu else None, CPU_LABEL)):
                if detector is None:
                    why = "not available" if label == CUDA_LABEL else "skipped (--detect-cpu to time it)"
                    print(f"{label}: {why}")
                    continue
                for batch in batches:
                    rate, seconds = detect_throughput(detector, Path(folder), batch=batch, size=args.size)
                    print(f"{label}, batch {batch}: {rate:.1f} img/s ({seconds:.1f} s)")

    print("\n5. Memcpy nodes onnxruntime adds for CUDA (host copies inside every run)")
    if cuda is None or cuda._fixed is None:
        print(f"{CUDA_LABEL}: {'not available' if cuda is None else 'no fixed-shape sessions'} - not counted")
    else:
        shape = (1, *cuda.canvas_shape((args.size, args.size), size=args.size), 3)
        for label, overrides in (("free shapes", {}), (f"fixed {shape}", cuda._fixed.overrides(shape))):
            try:
                print(f"{label}: {memcpy_nodes(args.model, overrides)}")
            except Exception as exc:  # noqa: BLE001 - reported as one line
                print(f"{label}: could not save the partitioned graph ({_first_line(exc)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
