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
    print(f"{args.model.name} at {args.size} px, {args.images} images, network replaced by its cached outputs, {args.rounds} rounds")
    for batch in batches:
        runs = " / ".join(f"{r:.0f}" for r in rates[batch])
        print(f"batch {batch:>2}: {statistics.median(rates[batch]):7.1f} img/s (rounds {runs}); CPU {statistics.median(cpu_ms[batch]):.2f} ms per image")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
