"""Network latency in one run: onnxruntime (fp32, int8) vs TensorFlow graph mode, same weights.

    .venv/bin/python bench/bench_latency.py [--backbone resnet50] [--sizes 512 640] [--repeat 5]
        [--calib DIR] [--eval DIR] [--threads 0]

Builds one random-init RetinaNet (or ``--run RUN`` for trained weights), exports it with
tf2onnx, quantises it to int8 (static QDQ, calibrated on real images: ``--calib``, default a
synthetic set written on the fly), then times, interleaved so machine noise hits all alike:
TF ``tf.function`` graph mode, onnxruntime fp32 and onnxruntime int8, per size. Prints the
medians and the ratios. With ``--eval DIR`` (a labelled VOC folder) it also prints the AP50
of fp32 vs int8 for a trained ``--run``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def _median_ms(fn, repeat: int) -> float:
    fn()  # warm-up: graph tracing, allocator, cuDNN/oneDNN kernel choice
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet50", choices=("resnet50", "mobilenet_v2", "tiny"))
    parser.add_argument("--run", type=Path, default=None, help="a training run folder instead of random init")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 640])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--classes", type=int, default=80)
    parser.add_argument("--calib", type=Path, default=None, help="calibration images (default: 32 synthetic ones)")
    parser.add_argument("--eval", type=Path, default=None, help="labelled VOC folder: AP50 fp32 vs int8")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0 = all cores)")
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the exported models in")
    args = parser.parse_args()
    from bench.machine import machine_line

    print(machine_line())  # every figure below comes from this machine

    import tensorflow as tf

    from model.config import ModelConfig
    from model.imageio import list_images, load_image
    from model.runtime import Detector
    from model.synth import write_dataset
    from model.tf.export import export_onnx, quantize_int8
    from model.tf.network import build_retinanet, make_inference_function
    from model.tf.train import load_run_model

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_latency_"))
    work.mkdir(parents=True, exist_ok=True)
    if args.run:
        model, config = load_run_model(args.run)
    else:
        config = ModelConfig(class_names=tuple(f"c{i}" for i in range(args.classes)), backbone=args.backbone, default_size=args.sizes[0])
        model = build_retinanet(config, backbone_weights=None)
    detect_tf = make_inference_function(model, config)
    fp32_path, int8_path = work / "model.onnx", work / "model.int8.onnx"
    t0 = time.perf_counter()
    export_onnx(model, config, fp32_path)
    export_s = time.perf_counter() - t0
    calib_dir = args.calib
    if calib_dir is None:
        calib_dir = work / "calib"
        write_dataset(calib_dir, count=32, seed=7, fmt="voc", min_side=400, max_side=640)
    calib = [load_image(p) for p in list_images(calib_dir)[:32]]
    t0 = time.perf_counter()
    quantize_int8(fp32_path, int8_path, calib, size=args.sizes[0])
    quant_s = time.perf_counter() - t0
    fp32 = Detector.load(fp32_path, providers=["cpu"], threads=args.threads)
    int8 = Detector.load(int8_path, providers=["cpu"], threads=args.threads)
    print(f"{config.backbone} RetinaNet, {config.num_classes} classes; export {export_s:.0f} s "
          f"({fp32_path.stat().st_size / 1e6:.1f} MB), int8 quantisation {quant_s:.0f} s "
          f"({int8_path.stat().st_size / 1e6:.1f} MB); {os.cpu_count()} CPU cores; TF {tf.__version__}")

    rng = np.random.default_rng(0)
    print(f"{'size':>6} {'TF graph ms':>12} {'ORT fp32 ms':>12} {'ORT int8 ms':>12} {'TF/fp32':>8} {'TF/int8':>8}")
    for size in args.sizes:
        batch = rng.uniform(0, 255, (1, size, size, 3)).astype(np.float32)
        image = batch[0].astype(np.uint8)
        tf_input = tf.constant(batch)
        runs = {
            "tf": lambda x=tf_input: [t.numpy() for t in detect_tf(x)],
            "fp32": lambda im=image, s=size: fp32.run(im, size=s),
            "int8": lambda im=image, s=size: int8.run(im, size=s),
        }
        medians = {name: [] for name in runs}
        for _ in range(2):  # interleave rounds so drift in machine load is shared
            for name, fn in runs.items():
                medians[name].append(_median_ms(fn, max(1, args.repeat // 2)))
        tf_ms, fp_ms, q_ms = (statistics.median(medians[k]) for k in ("tf", "fp32", "int8"))
        print(f"{size:>6} {tf_ms:>12.0f} {fp_ms:>12.0f} {q_ms:>12.0f} {tf_ms / fp_ms:>8.2f} {tf_ms / q_ms:>8.2f}")

    if args.eval is not None:
        from model.evaluate import evaluate_detector
        from model.labels import load_dataset

        items = [it for it in load_dataset(args.eval, "voc").items if it.labels]
        for name, detector in (("fp32", fp32), ("int8", int8)):
            result = evaluate_detector(detector, items, size=args.sizes[0])
            print(f"{name}: AP {result.ap:.3f} AP50 {result.ap50:.3f} on {len(items)} images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
