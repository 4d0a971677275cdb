"""Batched, pipelined detect and evaluate (model.pipeline): N images per network call give
what one image per call gives, unreadable images and name clashes are still reported one by
one, progress counts every image, and a GPU detector pads short batches to one shape."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from model.detect import detect_images
from model.errors import ImageReadError, LabelWriteError
from model.evaluate import evaluate_detector
from model.imageio import load_image
from model.labels import load_dataset, save_dataset
from model.labels.annotation import ImageLabels, Label
from model.pipeline import CPU_BATCH, GPU_BATCH, default_batch, one_ahead, pad_batch_to, prepared_batches
from model.postprocess import PostProcessor
from model.runtime import Detector
from tests.model.onnx_fakes import red_square_image

NMS = PostProcessor(score_thresh=0.5, iou_thresh=0.5, max_per_class=20, max_total=20)
# (height, width): landscape, portrait, square, tiny; different canvases at size 256
SHAPES = [(200, 300), (300, 120), (256, 256), (40, 70), (180, 400), (250, 260), (90, 90)]


def _folder(folder: Path, *, unreadable: int | None = None) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for i, (h, w) in enumerate(SHAPES):
        path = folder / f"img_{i:02d}.png"
        if i == unreadable:
            path.write_bytes(b"not a png")
        else:
            image = red_square_image(width=w, height=h, box=(w // 6, h // 6, w // 2, h // 2), color=i % 2)
            cv2.imwrite(str(path), image[..., ::-1])
        paths.append(path)
    return paths


def _json_labels(out: Path) -> dict[str, list]:
    return {p.name: json.loads(p.read_text())["detections"] for p in sorted(out.glob("*.json"))}


@pytest.mark.parametrize("batch", [3, 4, 7])
def test_batched_detect_writes_what_one_image_per_call_writes(cpu_detector: Detector, tmp_path: Path, batch: int) -> None:
    paths = _folder(tmp_path / "images", unreadable=2)
    one = detect_images(paths, cpu_detector, out_dir=tmp_path / "one", fmt="json", nms=NMS, size=256, batch=1)
    steps: list[tuple[int, int]] = []
    many = detect_images(
        paths, cpu_detector, out_dir=tmp_path / "many", fmt="json", nms=NMS, size=256, batch=batch, progress=lambda d, t: steps.append((d, t))
    )
    assert one.images == many.images == len(SHAPES) - 1 and many.detections == one.detections > 0
    assert [type(e) for e in many.errors] == [ImageReadError] and "img_02.png" in str(many.errors[0])
    assert _json_labels(tmp_path / "many") == _json_labels(tmp_path / "one")
    assert steps[-1] == (len(SHAPES), len(SHAPES)) and [d for d, _ in steps] == sorted({d for d, _ in steps})


def test_batched_detect_still_refuses_a_second_image_with_the_same_label_name(cpu_detector: Detector, tmp_path: Path) -> None:
    paths = _folder(tmp_path / "a")
    twin = tmp_path / "b" / paths[1].name
    twin.parent.mkdir()
    twin.write_bytes(paths[1].read_bytes())
    summary = detect_images([*paths, twin], cpu_detector, out_dir=tmp_path / "out", fmt="voc", nms=NMS, size=256, batch=4)
    assert summary.images == len(SHAPES)
    assert [type(e) for e in summary.errors] == [LabelWriteError] and str(twin) in str(summary.errors[0])


def test_batched_evaluate_gives_the_same_ap(cpu_detector: Detector, tmp_path: Path) -> None:
    paths = _folder(tmp_path / "images")
    items = []
    for i, path in enumerate(paths):
        h, w = SHAPES[i]
        items.append(ImageLabels(image_path=str(path), width=w, height=h, labels=[Label(w // 6, h // 6, w // 2, h // 2, ("red", "green")[i % 2])]))
    save_dataset(items, tmp_path / "images", "voc", class_names=["red", "green"])
    labelled = [it for it in load_dataset(tmp_path / "images", "voc").items if it.labels]
    steps: list[int] = []
    one = evaluate_detector(cpu_detector, labelled, size=256, batch=1)
    many = evaluate_detector(cpu_detector, labelled, size=256, batch=3, progress=lambda d, t: steps.append(d))
    assert (many.ap, many.ap50, many.ap75) == (one.ap, one.ap50, one.ap75) and one.ap50 > 0  # the anchors-as-boxes model: low, not nil
    assert steps == [3, 6, 7]


def test_prepared_batches_keep_order_and_report_unreadable_images_in_place(cpu_detector: Detector, tmp_path: Path) -> None:
    paths = _folder(tmp_path / "images", unreadable=4)
    with ThreadPoolExecutor(max_workers=2) as pool:
        groups = list(prepared_batches([(i, p) for i, p in enumerate(paths)], cpu_detector, load_image=load_image, pool=pool, batch=3, size=256))
        assert [[k for k, _ in g] for g in groups] == [[0, 1, 2], [3, 4, 5], [6]]
        with pytest.raises(ImageReadError):
            groups[1][1][1].result()
        shapes = [f.result().image_hw for g in groups for k, f in g if k != 4]
    assert shapes == [s for i, s in enumerate(SHAPES) if i != 4]
    with pytest.raises(ValueError, match="batch must be positive"):
        next(prepared_batches([(0, paths[0])], cpu_detector, load_image=load_image, pool=pool, batch=0))


def test_run_prepared_pads_a_short_batch_and_returns_one_output_per_image(cpu_detector: Detector) -> None:
    fixed = Detector(cpu_detector.session, cpu_detector.contract, [], fixed_canvas=True)
    images = [red_square_image(width=w, height=h, box=(5, 5, w // 2, h // 2)) for h, w in SHAPES[:3]]
    prepared = [fixed.prepare(image, size=256) for image in images]
    outputs = fixed.run_prepared(prepared, pad_batch_to=8)
    assert len(outputs) == 3
    for image, output in zip(images, outputs):
        alone = fixed.run(image, size=256, features=False)
        np.testing.assert_array_equal(output.candidates.scores, alone.candidates.scores)
        np.testing.assert_array_equal(output.candidates.boxes, alone.candidates.boxes)
        assert output.image_hw == image.shape[:2] and output.input_hw == (256, 256)
    with pytest.raises(ValueError, match="one inference size per batch"):
        fixed.run_prepared([fixed.prepare(images[0], size=256), fixed.prepare(images[0], size=384)])
    assert fixed.run_prepared([]) == []


def test_default_batch_is_eight_and_only_a_gpu_pads_short_batches(cpu_detector: Detector) -> None:
    assert default_batch(cpu_detector) == CPU_BATCH == 8 and pad_batch_to(cpu_detector, 8) is None
    gpu_like = Detector(cpu_detector.session, cpu_detector.contract, [])
    gpu_like.on_gpu, gpu_like.fixed_canvas = True, True  # what Detector sets for CUDA / TensorRT sessions
    assert default_batch(gpu_like) == GPU_BATCH == 8 and pad_batch_to(gpu_like, 8) == 8


def test_a_gpu_detect_tunes_once_for_the_batch_shape_before_the_first_batch(cpu_detector: Detector, tmp_path: Path) -> None:
    shapes: list[tuple[int, ...]] = []

    class Spy:  # records the input shape of every network call
        def __getattr__(self, name: str):
            return getattr(cpu_detector.session, name)

        def run(self, names, feed):
            shapes.append(feed["image"].shape)
            return cpu_detector.session.run(names, feed)

    paths = _folder(tmp_path / "images")
    gpu_like = Detector(Spy(), cpu_detector.contract, [], fixed_canvas=True)
    gpu_like.on_gpu = True  # what Detector sets for CUDA / TensorRT sessions
    detect_images(paths, gpu_like, out_dir=tmp_path / "out", fmt="voc", nms=NMS, size=256, batch=4)
    assert shapes == [(4, 256, 256, 3)] * 3  # the warm-up, then two batches, the short one padded
    shapes.clear()
    cpu_like = Detector(Spy(), cpu_detector.contract, [])
    detect_images(paths, cpu_like, out_dir=tmp_path / "out2", fmt="voc", nms=NMS, size=256, batch=4)
    assert len(shapes) >= 2 and all(shape[0] <= 4 for shape in shapes)  # no warm-up, no padding on the CPU
    assert sum(shape[0] for shape in shapes) == len(SHAPES)


def test_the_padding_of_a_reused_input_batch_is_blank(cpu_detector: Detector) -> None:
    """Input batches are reused: a short batch after a full one must not run on the full
    one's leftover canvases (their images would come back as detections of nothing, and the
    padded rows cost nothing only when blank)."""
    fixed = Detector(cpu_detector.session, cpu_detector.contract, [], fixed_canvas=True)
    images = [red_square_image(width=200, height=200, box=(20 + 10 * i, 20, 120 + 10 * i, 150), color=i % 2) for i in range(4)]
    full = fixed.fill([fixed.prepare(image, size=256) for image in images])
    [(_, buffer)] = full.calls
    fixed.run_network(full)
    assert buffer[3].any()  # the last full batch is still in it
    short = fixed.fill([fixed.prepare(images[0], size=256)], pad_batch_to=4)
    assert short.calls[0][1] is buffer and not buffer[1:].any()  # the same array, blank after the image
    [output] = fixed.outputs(fixed.run_network(short))
    alone = Detector(cpu_detector.session, cpu_detector.contract, [], fixed_canvas=True).run(images[0], size=256, features=False)
    np.testing.assert_array_equal(output.candidates.scores, alone.candidates.scores)


def test_a_batch_filled_while_another_waits_gets_its_own_arrays_and_each_runs_once(cpu_detector: Detector) -> None:
    """detect fills batch k + 1 while the network runs batch k: the two must not share an
    input array, and an array goes back to the detector only when its batch has run."""
    fixed = Detector(cpu_detector.session, cpu_detector.contract, [], fixed_canvas=True)
    images = [red_square_image(width=200, height=160, box=(20, 20 + 10 * i, 120, 150), color=i % 2) for i in range(3)]
    first = fixed.fill([fixed.prepare(images[0], size=256), fixed.prepare(images[1], size=256)])
    second = fixed.fill([fixed.prepare(images[2], size=256)], pad_batch_to=2)
    assert first.calls[0][1] is not second.calls[0][1]
    a, b = first.calls[0][1], second.calls[0][1]
    with pytest.raises(ValueError, match="not run yet"):
        fixed.outputs(second)
    out_second = fixed.outputs(fixed.run_network(second))
    out_first = fixed.outputs(fixed.run_network(first))
    for image, output in zip(images, [*out_first, *out_second]):
        alone = fixed.run(image, size=256, features=False)
        np.testing.assert_array_equal(output.candidates.scores, alone.candidates.scores)
        assert output.timings_ms["preprocess"] > 0
    with pytest.raises(ValueError, match="already run"):
        fixed.run_network(first)
    again = {id(fixed.fill([fixed.prepare(images[0], size=256)], pad_batch_to=2).calls[0][1]) for _ in range(2)}
    assert again <= {id(a), id(b)}  # both came back and are lent again


def test_detect_fills_and_maps_outputs_on_the_callers_thread_and_the_network_thread_only_runs(cpu_detector: Detector, tmp_path: Path) -> None:
    """The network thread of detect / evaluate does nothing but the network call: filling the
    input batch and mapping the outputs there had left a (simulated) device idle for ~1 ms
    per image (bench_pipeline --device-ms)."""
    threads: dict[str, set[str]] = {"fill": set(), "run_network": set(), "outputs": set()}
    detector = Detector(cpu_detector.session, cpu_detector.contract, [])
    for name in threads:
        method = getattr(detector, name)

        def spy(*args, _method=method, _name=name, **kwargs):
            threads[_name].add(threading.current_thread().name)
            return _method(*args, **kwargs)

        setattr(detector, name, spy)
    paths = _folder(tmp_path / "images")
    detect_images(paths, detector, out_dir=tmp_path / "out", fmt="voc", nms=NMS, size=256, batch=2)
    items = [ImageLabels(image_path=str(path), width=w, height=h, labels=[]) for path, (h, w) in zip(paths, SHAPES)]
    evaluate_detector(detector, items, size=256, batch=2)
    assert threads["fill"] == threads["outputs"] == {threading.current_thread().name}
    assert threads["run_network"] and all(name.startswith("network") for name in threads["run_network"])


def test_one_ahead_runs_the_next_item_while_the_caller_handles_this_one() -> None:
    started = {i: threading.Event() for i in range(4)}

    def run(item: int) -> int:
        started[item].set()
        return item * 10

    seen = []
    for item, result in one_ahead(range(4), run):
        if item < 3:  # while the caller holds item k, item k + 1's run has started
            assert started[item + 1].wait(5)
        seen.append((item, result))
    assert seen == [(0, 0), (1, 10), (2, 20), (3, 30)]
    assert list(one_ahead([], run)) == []


def test_one_ahead_raises_the_runs_error_in_order() -> None:
    def run(item: int) -> int:
        if item == 2:
            raise RuntimeError("network failed")
        return item

    got = []
    with pytest.raises(RuntimeError, match="network failed"):
        for _item, result in one_ahead(range(5), run):
            got.append(result)
    assert got == [0, 1]
