"""Batched, pipelined inference over many images (``detect`` and ``evaluate``); no TensorFlow.

Worker threads decode and letterbox the next images (``Detector.prepare``: cv2 and PIL
release the GIL) while the network runs on the current batch, and ``batch`` images go into
one network call (one call per canvas shape, so the results are those of one image per
call). On a GPU a batch of 8 on one fixed canvas keeps the device busy and the input shape
constant (the last, short batch is padded with blank canvases). On the CPU batching measured
faster too: ``detect_images`` of 100 synthetic images with the demo model on a 2-core AMD
EPYC (AVX-512 VNNI, shared with other work), batch 1 and 8 alternating in one process, two
series of 4 rounds: batch 8 was faster in all 8 pairs, medians 9.0 vs 11.8 s wall (8.7 vs
10.7 s CPU) and 3.6 vs 5.6 s wall (6.3 vs 7.8 s CPU), with identical label files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

from model.runtime import Detector, PreparedImage

GPU_BATCH = 8
CPU_BATCH = 8
# Decoding + letterboxing take ~1.9 ms per 320-512 px image on a 2-core EPYC (cv2 releases
# the GIL): two workers there; half the cores, up to 8, on bigger hosts, so that a GPU doing
# hundreds of images a second is not left waiting for them.
DECODE_WORKERS = min(8, max(2, (os.cpu_count() or 2) // 2))

Key = TypeVar("Key")
Item = TypeVar("Item")
Result = TypeVar("Result")


def default_batch(detector: Detector) -> int:
    """Images per network call when the user does not say (8 on both, measured; see above)."""
    return GPU_BATCH if detector.on_gpu else CPU_BATCH


def pad_batch_to(detector: Detector, batch: int) -> int | None:
    """What to fill a short batch up to: ``batch`` on a GPU (one input shape), else nothing."""
    return batch if detector.on_gpu and detector.fixed_canvas else None


def warm_up_for_batches(detector: Detector, *, batch: int, size: int | None = None) -> None:
    """On a GPU, one blank run at the batch's shape before the first real batch, so that cuDNN
    (or TensorRT) tunes for it once, off the progress bar's first step. Nothing on the CPU."""
    if detector.on_gpu and detector.fixed_canvas:
        detector.warm_up(size=size, batch=batch)


def prepared_batches(
    jobs: Sequence[tuple[Key, Path]],
    detector: Detector,
    *,
    load_image: Callable[[Path], np.ndarray],
    pool: ThreadPoolExecutor,
    batch: int,
    size: int | None = None,
) -> Iterator[list[tuple[Key, Future[PreparedImage]]]]:
    """Groups of ``batch`` (key, future of the decoded and letterboxed image), in order.

    Decoding runs on ``pool`` up to two batches ahead of the group being handed out; a
    future raises what ``load_image`` raised (an unreadable image) when asked for its result."""
    if batch <= 0:
        raise ValueError(f"batch must be positive, got {batch}")

    def prepare(path: Path) -> PreparedImage:
        return detector.prepare(load_image(path), size=size)

    ahead = 2 * batch + DECODE_WORKERS
    pending: list[tuple[Key, Future[PreparedImage]]] = []
    try:
        for key, path in jobs:
            pending.append((key, pool.submit(prepare, path)))
            if len(pending) >= ahead + batch:
                group, pending = pending[:batch], pending[batch:]
                yield group
        while pending:
            group, pending = pending[:batch], pending[batch:]
            yield group
    finally:  # stopped early (cancelled): drop the decodes not started yet
        for _, future in pending:
            future.cancel()


def one_ahead(items: Iterable[Item], run: Callable[[Item], Result]) -> Iterator[tuple[Item, Result]]:
    """(item, run(item)) in order, with ``run`` of the next item already going on a worker
    thread while the caller handles the current one: the network call of batch k + 1 (which
    releases the GIL) overlaps the outputs, NMS and labels of batch k on the caller's thread,
    and the filling of batch k + 2 (``items`` is advanced there, before k's result is asked
    for). Keep host work out of ``run``: a device waits for it (``Detector.run_network`` only).
    ``run`` raising is raised here, when its result is asked for. A caller that stops early
    waits for the one call in flight."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="network") as worker:
        pending: tuple[Item, Future[Result]] | None = None
        for item in items:
            future = worker.submit(run, item)
            if pending is not None:
                yield pending[0], pending[1].result()
            pending = (item, future)
        if pending is not None:
            yield pending[0], pending[1].result()
