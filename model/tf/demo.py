"""Build the bundled demo model from nothing: ``python -m model.tf.demo`` (``make demo-model``).

1. synthetic data: a training set, a validation set and a test set, each from its own seed;
2. train a compact RetinaNet (tiny backbone, P3..P7 pyramid with 64 channels) from scratch;
3. export it to ONNX, evaluate it with onnxruntime on the unseen test seed, and record the
   command, the data and the measured AP in the model's metadata;
4. copy it to ``resources/demo_model.onnx`` (with the run's config and weights in
   ``resources/demo_model_run/`` for fine-tuning) and a few sample images from a fourth seed.

Every step is the same code a user runs from the command line (``synth``, ``train``,
``evaluate``); this module only chains them with fixed seeds.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from pathlib import Path

TRAIN_SEED, VAL_SEED, TEST_SEED, SAMPLE_SEED = 1, 2, 3, 4


def _set_default_size(proto, size: int) -> None:  # noqa: ANN001 - an onnx.ModelProto
    """Record ``size`` as the model's default inference size (contract metadata and config)."""
    from model import contract as C

    for entry in proto.metadata_props:
        if entry.key == C.KEY_DEFAULT_SIZE:
            entry.value = str(size)
        elif entry.key == C.KEY_MODEL_CONFIG:
            entry.value = json.dumps({**json.loads(entry.value), "default_size": size}, sort_keys=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.tf.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/demo"), help="scratch folder (data, run)")
    parser.add_argument("--resources", type=Path, default=Path("resources"), help="where demo_model.onnx and samples/ go")
    parser.add_argument("--train-count", type=int, default=3000)
    parser.add_argument("--test-count", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=28)
    parser.add_argument("--steps-per-epoch", type=int, default=250)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=384, help="training canvas size")
    parser.add_argument(
        "--infer-size", type=int, default=512, help="default inference size recorded in the model (and used to measure its AP)"
    )
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    from model.tf.startup import import_tensorflow

    import_tensorflow()

    from model.contract import copy_metadata
    from model.evaluate import evaluate_detector
    from model.labels import load_dataset
    from model.runtime import Detector
    from model.synth import write_dataset
    from model.tf.train import TrainConfig, train

    started = time.perf_counter()
    data = {
        "train": (TRAIN_SEED, args.train_count),
        "val": (VAL_SEED, 150),
        "test": (TEST_SEED, args.test_count),
    }
    for split, (seed, count) in data.items():
        folder = args.work / split
        if not (folder / f"{count - 1:05d}.xml").is_file():
            write_dataset(folder, count=count, seed=seed, fmt="voc")
    command = "python -m model.tf.demo " + shlex.join(sys.argv[1:] if argv is None else argv)
    cfg = TrainConfig(
        data=str(args.work / "train"),
        out=str(args.work / "run"),
        val_data=str(args.work / "val"),
        backbone="tiny",
        compact=True,
        backbone_weights=None,
        epochs=args.epochs,
        batch=args.batch,
        size=args.size,
        steps_per_epoch=args.steps_per_epoch,
        command=command,
    )

    def progress(done: int, total: int, info: dict) -> None:
        if done % 50 == 0 or done == total:
            print(f"step {done}/{total} epoch {info['epoch']} cls {info['cls_loss']:.3f} box {info['box_loss']:.3f}", flush=True)

    result = train(cfg, progress=progress)
    train_minutes = (time.perf_counter() - started) / 60

    import onnx

    # The network is fully convolutional: trained on 384-px crops with scale jitter, it sees
    # the 320..512-px images best at their native size, so 512 is the default inference size.
    detector = Detector.load(result.onnx_path, providers=["cpu"])
    test_items = [it for it in load_dataset(args.work / "test", "voc").items if it.labels]
    evaluation = evaluate_detector(detector, test_items, size=args.infer_size)
    print(evaluation.format(), flush=True)

    proto = onnx.load(str(result.onnx_path))
    _set_default_size(proto, args.infer_size)
    copy_metadata(
        proto,
        proto,
        data=f"synthetic shapes: train seed {TRAIN_SEED} x {args.train_count}, val seed {VAL_SEED}, test seed {TEST_SEED}",
        test_ap=round(evaluation.ap, 4),
        test_ap50=round(evaluation.ap50, 4),
        test_ap75=round(evaluation.ap75, 4),
        test_images=evaluation.num_images,
        test_size=args.infer_size,
        build_minutes=round(train_minutes, 1),
    )
    args.resources.mkdir(parents=True, exist_ok=True)
    target = args.resources / "demo_model.onnx"
    from model.labels import atomic_write_bytes

    atomic_write_bytes(target, proto.SerializeToString())
    # Fine-tuning needs the Keras weights, which an ONNX file does not carry: ship the run's
    # config and final weights beside the model (the app looks for `<model stem>_run/`).
    run_copy = args.resources / "demo_model_run"
    run_copy.mkdir(exist_ok=True)
    for name in ("model_config.json", "model.weights.h5"):
        shutil.copy2(result.run_dir / name, run_copy / name)
    samples = args.resources / "samples"
    if samples.exists():
        shutil.rmtree(samples)
    written = write_dataset(samples, count=args.samples, seed=SAMPLE_SEED, fmt="voc", min_side=480, max_side=640)
    for item in written:  # samples ship as plain images: the app's detections are the point
        Path(item.image_path).with_suffix(".xml").unlink()
    (samples / "classes.txt").unlink(missing_ok=True)
    minutes = round((time.perf_counter() - started) / 60, 1)
    summary = {"model": str(target), "mb": round(target.stat().st_size / 1e6, 2), "test": evaluation.format(), "minutes": minutes}
    print(json.dumps(summary, indent=1))
    return 0


# Lives here, not in model.tf.export: it reads a training run (model.tf.train), which itself
# imports the exporter.
def reexport_onnx(source: str | Path, run_dir: str | Path, out_path: str | Path, **provenance_updates: object):
    """Export the weights of the training run ``run_dir`` again (current contract version)
    with the metadata of the model file ``source`` they were exported to before (class
    names, default size, provenance with its measured AP...), provenance updated with
    ``provenance_updates``. For upgrading a version-1 file such as the bundled demo model."""
    import onnx

    from model import contract as C
    from model.contract import copy_metadata
    from model.labels.atomic import atomic_write_bytes
    from model.tf.export import export_onnx
    from model.tf.train import load_run_model

    old = onnx.load(str(source), load_external_data=False)
    C.contract_from_proto(old, source)
    model, config = load_run_model(run_dir)
    proto = export_onnx(model, config, out_path)
    new_keys = {C.KEY_VERSION, C.KEY_CANDIDATES}
    fresh = {p.key: p.value for p in proto.metadata_props if p.key in new_keys}
    copy_metadata(old, proto, **provenance_updates)
    for entry in proto.metadata_props:
        if entry.key in fresh:
            entry.value = fresh.pop(entry.key)
    for key, value in fresh.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    C.contract_from_proto(proto, out_path)
    atomic_write_bytes(Path(out_path), proto.SerializeToString())
    return proto


if __name__ == "__main__":
    raise SystemExit(main())
