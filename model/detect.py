"""Batch detection of images and folders (``retinanet-studio detect``); never imports TensorFlow.

Four stages overlap: a thread pool decodes and letterboxes the next images, a network thread
runs batch k + 1 (model.pipeline: ``batch`` images per network call, ``one_ahead``) while the
caller's thread fills batch k + 2 into the network's input and maps the outputs of batch k
and runs their NMS, and a writer thread saves label files. onnxruntime releases the GIL
during ``session.run``, so the stages really run in parallel, and the network thread does
nothing else: on a GPU the device then waits for no host work (``bench/bench_pipeline.py
--device-ms``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from model.errors import ImageReadError, LabelWriteError, StudioError
from model.imageio import is_image_path, list_images, load_image
from model.labels import ImageLabels, Label
from model.labels.existing import DETECTIONS_JSON, LabelSetWriter
from model.labels.registry import FORMATS
from model.pipeline import DECODE_WORKERS, default_batch, one_ahead, pad_batch_to, prepared_batches, warm_up_for_batches
from model.postprocess import Detections, PostProcessor
from model.runtime import Detector, NetworkBatch


def output_formats() -> tuple[str, ...]:
    """What ``detect --format`` writes: every registered label format, then ``json`` (the
    detections with their scores: detect's own output, not a label format)."""
    return (*FORMATS, DETECTIONS_JSON)


def expand_inputs(paths: Iterable[str | Path]) -> tuple[list[Path], list[ImageReadError]]:
    """Image files named directly plus the images inside named folders (not recursive),
    in order, without duplicates; a missing path or a non-image file becomes an error."""
    images: list[Path] = []
    errors: list[ImageReadError] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = list_images(path)
        elif path.is_file():
            if not is_image_path(path):
                errors.append(ImageReadError(path, "not an image file (unknown extension)"))
                continue
            found = [path]
        else:
            errors.append(ImageReadError(path, "no such file or folder"))
            continue
        for image in found:
            key = image.resolve()
            if key not in seen:
                seen.add(key)
                images.append(image)
    return images, errors


def detections_to_labels(
    detections: Detections, class_names: Sequence[str], *, image_path: str | Path, width: int, height: int
) -> ImageLabels:
    """One image's detections as labels (xyxy original-image pixels)."""
    labels = [
        Label(float(x1), float(y1), float(x2), float(y2), class_names[int(c)])
        for (x1, y1, x2, y2), c in zip(detections.boxes.tolist(), detections.class_ids)
    ]
    return ImageLabels(image_path=str(image_path), width=width, height=height, labels=labels)


def detections_json(detections: Detections, class_names: Sequence[str], *, level_names: Sequence[str]) -> list[dict]:
    """JSON-ready detections: box xyxy pixels, score, class, anchor index and pyramid level."""
    return [
        {
            "box": [round(float(v), 2) for v in box],
            "score": round(float(score), 5),
            "class": class_names[int(cls)],
            "class_id": int(cls),
            "anchor": int(anchor),
            "level": level_names[int(level)],
        }
        for box, score, cls, anchor, level in zip(
            detections.boxes.tolist(), detections.scores, detections.class_ids, detections.anchor_ids, detections.level_ids
        )
    ]


@dataclass
class DetectSummary:
    images: int = 0
    detections: int = 0
    errors: list[StudioError] = field(default_factory=list)
    network_ms: list[float] = field(default_factory=list)
    #: Images not detected because their label files exist (mode "skip").
    skipped: list[Path] = field(default_factory=list)
    #: One line on label files that existed: skipped, replaced or merged ("" when none).
    existing_note: str = ""


def detect_images(
    paths: Sequence[Path],
    detector: Detector,
    *,
    out_dir: Path,
    fmt: str,
    nms: PostProcessor,
    size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    existing: str = "skip",
    batch: int | None = None,
) -> DetectSummary:
    """Detect every image of ``paths`` and write one label set per image into ``out_dir``
    (COCO: one ``annotations.json``). Unreadable images are skipped and reported.
    ``batch``: images per network call (default :func:`model.pipeline.default_batch`).
    ``nms``: the :class:`model.postprocess.PostProcessor` that makes each image's detections.

    A label file that exists is never replaced unless asked: ``existing`` is ``"skip"``
    (those images are not detected; :attr:`DetectSummary.skipped`), ``"overwrite"`` or
    ``"merge"`` (detections added to the labels, :class:`model.labels.existing.LabelSetWriter`)."""
    if fmt not in output_formats():
        raise ValueError(f"unknown output format {fmt!r}; choose from {', '.join(output_formats())}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabelWriteError(out_dir, f"cannot create the output folder ({exc.strerror or exc})") from None
    class_names = list(detector.contract.class_names)
    level_names = [lv.name for lv in detector.contract.levels]
    summary = DetectSummary()
    label_writer = LabelSetWriter(out_dir, fmt, class_names=class_names, mode=existing)
    paths = label_writer.to_detect(paths)
    summary.skipped = list(label_writer.skipped)
    owners: dict[str, Path] = {}  # label file stem -> the image that writes it
    writes: queue.Queue = queue.Queue(maxsize=8)

    def writer() -> None:
        while (job := writes.get()) is not None:
            path, item, dets = job
            try:
                payload = None
                if fmt == DETECTIONS_JSON:
                    payload = {
                        "image": str(path),
                        "width": item.width,
                        "height": item.height,
                        "model": detector.name,
                        "detections": detections_json(dets, class_names, level_names=level_names),
                    }
                label_writer.write(path, item, payload)
            except StudioError as exc:
                summary.errors.append(exc)
            except Exception as exc:  # noqa: BLE001 - a dead writer would block the queue forever
                summary.errors.append(LabelWriteError(out_dir, f"cannot write the labels of {path} ({type(exc).__name__}: {exc})"))

    write_thread = threading.Thread(target=writer, name="detect-writer", daemon=True)
    write_thread.start()
    try:
        batch = batch or default_batch(detector)
        warm_up_for_batches(detector, batch=batch, size=size)
        with ThreadPoolExecutor(max_workers=DECODE_WORKERS, thread_name_prefix="detect-decode") as pool:
            done = 0
            stop = False
            jobs = [(path, path) for path in paths]

            def resolved() -> Iterator[tuple[list, dict, NetworkBatch]]:
                """Each group with its images that decoded, {position: (path, prepared)}, and
                them filled into the network's input, here, while the network runs the group
                before: the network thread does nothing but run the network."""
                for group in prepared_batches(jobs, detector, load_image=load_image, pool=pool, batch=batch, size=size):
                    if stop or (cancelled is not None and cancelled()):
                        return
                    ready = {}
                    for position, (path, future) in enumerate(group):
                        label_name = label_writer.owner_key(path)
                        try:
                            if label_name in owners:
                                raise LabelWriteError(path, f"its label file would overwrite that of {owners[label_name]} (same name); skipped")
                            prepared = future.result()
                        except (ImageReadError, LabelWriteError) as exc:
                            summary.errors.append(exc)
                        else:
                            owners[label_name] = path
                            ready[position] = (path, prepared)
                    yield group, ready, detector.fill([p for _, p in ready.values()], pad_batch_to=pad_batch_to(detector, batch))

            def run(resolved_group: tuple[list, dict, NetworkBatch]) -> NetworkBatch:
                # labels need no pyramid and no dense outputs: a v2 model copies only its candidates
                return detector.run_network(resolved_group[2])

            for (group, ready, _), ran in one_ahead(resolved(), run):
                if stop:
                    break
                by_position = dict(zip(ready, detector.outputs(ran)))
                for position in range(len(group)):  # image by image: progress and cancel as without batches
                    if position in by_position:
                        if cancelled is not None and cancelled():
                            stop = True
                            break
                        path, prepared = ready[position]
                        output = by_position[position]
                        dets = nms(output.candidates)
                        height, width = prepared.image_hw
                        item = detections_to_labels(dets, class_names, image_path=path, width=width, height=height)
                        writes.put((path, item, dets))
                        summary.images += 1
                        summary.detections += len(dets)
                        summary.network_ms.append(output.timings_ms["network"])
                    done += 1
                    if progress is not None:
                        progress(done, len(paths))
    finally:
        writes.put(None)
        write_thread.join()
    try:
        label_writer.finish()
    except StudioError as exc:
        summary.errors.append(exc)
    summary.existing_note = label_writer.summary()
    return summary
