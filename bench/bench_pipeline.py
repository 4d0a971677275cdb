"""The host's ceiling for ``detect``: img/s with the network taken out.

    .venv/bin/python bench/bench_pipeline.py [--model M.onnx] [--size 640] [--images 300] [--batches 1,8,32]
                                             [--device-ms 0,3] [--rounds 2]

``detect_images`` runs as the product runs it (decode and letterbox on worker threads, the
network call on its own thread, NMS and label building on the caller's, label files on a
writer thread), on the GPU's fixed canvas, but every network call returns the outputs of an
earlier real call of the same input shape, at once. What is left is the host's share of
each image: decoding, letterboxing, filling the input batch, the candidates, NMS, labels.
Its img/s bounds what any GPU reaches on this machine (issue 14's goals: 500 img/s for the
demo model, 200 for R50 at 640 px); CPU seconds per image say what it costs in all.
Rounds alternate the batch sizes, so machine noise hits all alike; each line names the machine.

``--device-ms``: the cached call also sleeps that many ms per image (the GIL released, no CPU
used), standing in for a device's network time. A serial pipeline would take host + device per
image; one that overlaps the device with the host's work takes max(host, device). The run at 0
gives the host's time, and each row prints both bounds beside what was measured.
Then each stage alone, one image at a time on one thread (median ms per image): which one caps
the ceiling, and which run in parallel (decode and letterbox on the worker threads, label files
on the writer thread) or on the caller's thread (input fill, candidates, NMS, label building).
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


def cached_network(detector) -> list[float]:  # noqa: ANN001 - a model.runtime.Detector
    """Make ``detector``'s network calls return the first real call's outputs for each
    (outputs, input shape): copies, as the real call hands out fresh arrays. Returns a
    one-item list: set its value to sleep that many ms per image in every call (a device)."""
    real = detector._run_session
    cache: dict[tuple, list[np.ndarray]] = {}
    device_ms = [0.0]

    def run(names: list[str], batch: np.ndarray) -> list[np.ndarray]:
        key = (tuple(names), batch.shape)
        if key not in cache:
            cache[key] = real(names, batch)
        if device_ms[0] > 0:
            time.sleep(device_ms[0] * batch.shape[0] / 1e3)
        return [array.copy() for array in cache[key]]

    detector._run_session = run
    return device_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEMO)
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--images", type=int, default=300, help="synthetic images (320-512 px)")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--device-ms", default="0", help="simulated device ms per image, comma-separated (0: none)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from model.detect import detect_images
    from model.imageio import list_images
    from model.postprocess import PostProcessor
    from model.runtime import Detector
    from model.synth import write_dataset

    print(machine_line())
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    devices = sorted({0.0, *(float(d) for d in args.device_ms.split(",") if d.strip())})
    detector = Detector.load(args.model, providers=["cpu"], fixed_canvas=True)
    device_ms = cached_network(detector)
    runs = [(batch, device) for device in devices for batch in batches]
    rates: dict[tuple, list[float]] = {run: [] for run in runs}
    cpu_ms: dict[tuple, list[float]] = {run: [] for run in runs}
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as folder:
        write_dataset(folder, count=args.images, seed=5, fmt="voc")
        paths = list_images(Path(folder))
        for batch in batches:  # one untimed pass each: the page cache, and the cached outputs of every
            # batch shape, the last short batch's included (else each round ran that batch's real network)
            with tempfile.TemporaryDirectory() as out:
                detect_images(paths, detector, out_dir=Path(out), fmt="voc", nms=PostProcessor(), size=args.size, batch=batch)
        for _ in range(args.rounds):
            for batch, device in runs:
                device_ms[0] = device
                with tempfile.TemporaryDirectory() as out:
                    wall, cpu = time.perf_counter(), time.process_time()
                    summary = detect_images(paths, detector, out_dir=Path(out), fmt="voc", nms=PostProcessor(), size=args.size, batch=batch)
                    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                rates[batch, device].append(summary.images / wall)
                cpu_ms[batch, device].append(cpu * 1e3 / summary.images)
        device_ms[0] = 0.0
        stages = stage_times(detector, paths[:100], size=args.size)
    print(f"{args.model.name} at {args.size} px, {args.images} images, network replaced by its cached outputs, {args.rounds} rounds")
    for batch, device in runs:
        rate = statistics.median(rates[batch, device])
        rounds = " / ".join(f"{r:.0f}" for r in rates[batch, device])
        line = f"batch {batch:>2}: {rate:7.1f} img/s (rounds {rounds}); CPU {statistics.median(cpu_ms[batch, device]):.2f} ms per image"
        if device > 0:
            host = 1e3 / statistics.median(rates[batch, 0.0])  # wall ms per image with no device time
            line = (
                f"{line}; device {device:g} ms per image: serial bound {1e3 / (host + device):.1f}, "
                f"overlapped bound {1e3 / max(host, device):.1f} img/s, measured/overlapped {rate * max(host, device) / 1e3:.2f}"
            )
        print(line)
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
    fill_ms, outputs = [], []
    for item in prepared:  # each batch runs before the next is filled: its input array is reused, as in detect
        started = time.perf_counter()
        batch = detector.fill([item])
        fill_ms.append((time.perf_counter() - started) * 1e3)
        outputs.append(detector.outputs(detector.run_network(batch))[0])  # the cached network, then the candidates
    stages["input fill"] = statistics.median(fill_ms)
    stages["candidates"] = statistics.median(o.timings_ms["candidates"] for o in outputs)
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
