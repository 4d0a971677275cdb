"""The host's ceiling for ``detect``: img/s with the network taken out.

    .venv/bin/python bench/bench_pipeline.py [--model M.onnx] [--size 640] [--images 300] [--batches 1,8,32] [--rounds 2]

``detect_images`` runs as the product runs it (decode and letterbox on worker threads, the
network call on its own thread, NMS and label building on the caller's, label files on a
writer thread), on the GPU's fixed canvas, but every network call returns the outputs of an
earlier real call of the same input shape, at once. What is left is the host's share of
each image: decoding, letterboxing, filling the input batch, the candidates, NMS, labels.
Its img/s bounds what any GPU reaches on this machine (issue 14's goals: 500 img/s for the
demo model, 200 for R50 at 640 px); CPU seconds per image say what it costs in all.
Rounds alternate the batch sizes, so machine noise hits all alike; each line names the machine.
Then each stage alone, one image at a time on one thread (median ms per image): which one caps
the ceiling, and which run in parallel (decode and letterbox on the worker threads, label files
on the writer thread) or on the caller's thread (candidates, NMS, label building).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # model/ and bench/ from a checkout

import numpy as np  # noqa: E402

from bench.machine import machine_line  # noqa: E402

DEMO = Path(__file__).resolve().parent.parent / "resources" / "demo_model.onnx"


def cached_network(detector) -> None:  # noqa: ANN001 - a model.runtime.Detector
    """Make ``detector``'s network calls return the first real call's outputs for each
    (outputs, input shape): copies, as the real call hands out fresh arrays."""
    real = detector._run_session
    cache: dict[tuple, list[np.ndarray]] = {}

    def run(names: list[str], batch: np.ndarray) -> list[np.ndarray]:
        key = (tuple(names), batch.shape)
        if key not in cache:
            cache[key] = real(names, batch)
        return [array.copy() for array in cache[key]]

    detector._run_session = run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEMO)
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--images", type=int, default=300, help="synthetic images (320-512 px)")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from model.detect import detect_images
    from model.imageio import list_images
    from model.postprocess import PostProcessor
    from model.runtime import Detector
    from model.synth import write_dataset

    print(machine_line())
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    detector = Detector.load(args.model, providers=["cpu"], fixed_canvas=True)
    cached_network(detector)
    rates: dict[int, list[float]] = {b: [] for b in batches}
    cpu_ms: dict[int, list[float]] = {b: [] for b in batches}
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as folder:
        write_dataset(folder, count=args.images, seed=5, fmt="voc")
        paths = list_images(Path(folder))
        for batch in batches:  # one untimed pass each: the page cache, and the cached outputs
            with tempfile.TemporaryDirectory() as out:
                detect_images(paths[: batch * 2], detector, out_dir=Path(out), fmt="voc", nms=PostProcessor(), size=args.size, batch=batch)
        for _ in range(args.rounds):
            for batch in batches:
                with tempfile.TemporaryDirectory() as out:
                    wall, cpu = time.perf_counter(), time.process_time()
                    summary = detect_images(paths, detector, out_dir=Path(out), fmt="voc", nms=PostProcessor(), size=args.size, batch=batch)
                    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                rates[batch].append(summary.images / wall)
                cpu_ms[batch].append(cpu * 1e3 / summary.images)
        stages = stage_times(detector, paths[:100], size=args.size)
    print(f"{args.model.name} at {args.size} px, {args.images} images, network replaced by its cached outputs, {args.rounds} rounds")
    for batch in batches:
        runs = " / ".join(f"{r:.0f}" for r in rates[batch])
        print(f"batch {batch:>2}: {statistics.median(rates[batch]):7.1f} img/s (rounds {runs}); CPU {statistics.median(cpu_ms[batch]):.2f} ms per image")
    print("stages alone, median ms per image: " + ", ".join(f"{name} {ms:.3f}" for name, ms in stages.items()))
    return 0


def stage_times(detector, paths: list[Path], *, size: int) -> dict[str, float]:  # noqa: ANN001 - a Detector
    """Median ms per image of each host stage of ``detect``, one image at a time."""
    from model.detect import detections_to_labels
    from model.imageio import load_image
    from model.labels.existing import LabelSetWriter
    from model.postprocess import PostProcessor

    def timed(fn, items: list) -> tuple[float, list]:  # noqa: ANN001 - any callable
        times, results = [], []
        for item in items:
            started = time.perf_counter()
            results.append(fn(item))
            times.append((time.perf_counter() - started) * 1e3)
        return statistics.median(times), results

    stages: dict[str, float] = {}
    stages["decode"], images = timed(load_image, paths)
    stages["letterbox"], prepared = timed(lambda image: detector.prepare(image, size=size), images)
    outputs = [detector.run_prepared([item])[0] for item in prepared]  # cached network: fill + candidates
    stages["input fill + candidates"] = statistics.median(o.timings_ms["network"] + o.timings_ms["candidates"] for o in outputs)
    nms = PostProcessor()
    stages["NMS"], detections = timed(lambda output: nms(output.candidates), outputs)
    names = detector.contract.class_names
    stages["labels"], items = timed(lambda d: detections_to_labels(d, names, image_path="x.jpg", width=640, height=480), detections)
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_write_") as out:
        writer = LabelSetWriter(Path(out), "voc", class_names=names)
        numbered = list(enumerate(items))
        stages["label file (VOC, atomic)"], _ = timed(lambda pair: writer.write(Path(f"/images/{pair[0]:05d}.jpg"), pair[1], None), numbered)
    return stages


if __name__ == "__main__":
    raise SystemExit(main())
