"""The ``retinanet-studio`` command.

``retinanet-studio [PATH ...] [--model M.onnx]`` starts the desktop app (the bundled demo
model and sample images by default). Subcommands:

    detect    batch detection of images/folders into label files (no TensorFlow)
    inspect   print a model's contract, metadata and the providers it would run on
    evaluate  COCO AP / AP50 / AP75 of a model on a labelled folder (no TensorFlow)
    synth     write a synthetic labelled dataset
    convert   convert a labelled dataset between VOC, YOLO and COCO
    train     train or fine-tune a RetinaNet (TensorFlow)
    export    export a training run, or a fresh random-init network, to ONNX (TensorFlow)

Bad input ends in one line ``error: FILE: problem`` and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

from model.config import TRAINING_DEFAULTS
from model.errors import StudioError

SUBCOMMANDS = ("detect", "inspect", "evaluate", "synth", "convert", "train", "export")


def _fail(message: object) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _quiet_tensorflow() -> None:
    """Import TensorFlow without its start-up notices (model.tf.startup): they hide the
    lines that matter."""
    from model.tf.startup import import_tensorflow

    import_tensorflow()


def _tqdm_progress(bar) -> Callable[[int, int], None]:  # noqa: ANN001 - a tqdm bar
    def progress(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
            bar.refresh()
        bar.update(done - bar.n)

    return progress


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _unit_float(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _load_detector(args: argparse.Namespace):
    from model.runtime import Detector

    providers = args.providers.split(",") if getattr(args, "providers", None) else None
    detector = Detector.load(args.model, providers=providers)
    for note in detector.provider_notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"model {detector.name}: {len(detector.contract.class_names)} classes; providers {', '.join(detector.providers)}", file=sys.stderr)
    return detector


# --- detect -----------------------------------------------------------------------------


def _add_detect(parser: argparse.ArgumentParser) -> None:
    from model.detect import output_formats

    parser.add_argument("inputs", nargs="+", type=Path, help="images and/or folders of images")
    parser.add_argument("--model", required=True, type=Path, help="contract ONNX model")
    parser.add_argument(
        "--out", "--labels", dest="out", required=True, type=Path, metavar="DIR",
        help="folder for the label files (the image folder itself, or a separate annotations folder)",
    )
    parser.add_argument("--format", choices=output_formats(), default="voc", help="label format (default voc)")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument(
        "--overwrite", dest="existing", action="store_const", const="overwrite", default="skip",
        help="replace label files that exist (default: skip their images and say so)",
    )
    existing.add_argument(
        "--merge", dest="existing", action="store_const", const="merge",
        help="add the detections to label files that exist, keeping all they hold (a detection matching a label of its class at IoU >= 0.5 is not added)",
    )
    parser.add_argument("--score", type=_unit_float, default=0.3, help="score threshold (default 0.3)")
    parser.add_argument("--iou", type=_unit_float, default=0.5, help="NMS IoU threshold (default 0.5)")
    parser.add_argument("--max", type=_positive_int, default=100, help="max detections per image (default 100)")
    parser.add_argument("--size", type=_positive_int, default=None, help="inference size: longest side in pixels (default: the model's)")
    parser.add_argument("--providers", default=None, help="comma list, e.g. cuda,cpu or tensorrt,cuda,cpu (default cuda,cpu)")
    _add_batch(parser)


def _add_batch(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=_positive_int, default=None, help="images per network call (default 8)")


def cli_detect(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model.detect import detect_images, expand_inputs

    images, errors = expand_inputs(args.inputs)
    if not images and not errors:
        return _fail(f"{', '.join(map(str, args.inputs))}: no images found (extensions: jpg, png, bmp, tif, webp)")
    if args.existing == "merge" and args.format == "json":
        return _fail("--merge needs a label format (voc, yolo or coco): json files hold detections, not labels")
    detector = _load_detector(args)
    from model.postprocess import PostProcessor

    nms = PostProcessor.with_max_detections(args.max, score_thresh=args.score, iou_thresh=args.iou)
    started = time.perf_counter()
    with tqdm(total=len(images), unit="img", desc="detect") as bar:
        summary = detect_images(
            images, detector, out_dir=args.out, fmt=args.format, nms=nms, size=args.size, progress=_tqdm_progress(bar),
            existing=args.existing, batch=args.batch,
        )
    if summary.existing_note:
        print(summary.existing_note)
        for path in summary.skipped[:10]:
            print(f"  skipped {path}", file=sys.stderr)
        if len(summary.skipped) > 10:
            print(f"  … and {len(summary.skipped) - 10} more", file=sys.stderr)
    errors += summary.errors
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    elapsed = time.perf_counter() - started
    net = sorted(summary.network_ms)
    median = f", network median {net[len(net) // 2]:.0f} ms" if net else ""
    print(f"{summary.images} images, {summary.detections} detections in {elapsed:.1f} s{median} -> {args.out} ({args.format})")
    return 2 if errors else 0


# --- inspect ----------------------------------------------------------------------------


def _add_inspect(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="ONNX model")
    parser.add_argument("--providers", default=None, help="providers to try (default cuda,cpu)")


def cli_inspect(args: argparse.Namespace) -> int:
    from model import contract as C
    from model.providers import choose_providers, precision_note

    contract = C.read_contract(args.model)
    print(f"model      {contract.path}")
    print(f"contract   version {contract.version}")
    print(f"classes    {contract.num_classes}: {', '.join(contract.class_names)}")
    levels = ", ".join(f"{lv.name} (stride {lv.stride})" for lv in contract.levels)
    print(f"pyramid    {levels}; {contract.feature_channels} channels")
    print(f"anchors    {contract.anchors_per_cell} per cell; default inference size {contract.default_size}")
    print(f"size       {Path(contract.path).stat().st_size / 1e6:.1f} MB")
    raw = contract.metadata.get(C.KEY_PROVENANCE, "{}")
    try:
        provenance = json.loads(raw)
    except json.JSONDecodeError:
        provenance = raw  # shown as it is: a model's provenance is informative, not checked
    print(f"provenance {json.dumps(provenance, indent=2, sort_keys=True)}")
    chosen, notes = choose_providers(args.providers.split(",") if args.providers else None)
    print(f"providers  {', '.join(chosen)}")
    fp16_note = precision_note(contract, chosen)
    for note in [*notes, *([fp16_note] if fp16_note else [])]:
        print(f"  note: {note}")
    return 0


# --- evaluate ---------------------------------------------------------------------------


def _add_labels_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--labels",
        dest="labels_dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of the label files (default: next to the images, else a sibling annotations/, annots/, Annotations/ or labels/ folder)",
    )


def _add_evaluate(parser: argparse.ArgumentParser) -> None:
    from model.labels.registry import format_names

    parser.add_argument("--model", required=True, type=Path, help="contract ONNX model")
    parser.add_argument("--data", required=True, type=Path, help="folder of images with labels")
    parser.add_argument("--format", choices=format_names(), default=format_names()[0])
    _add_labels_dir(parser)
    parser.add_argument("--size", type=_positive_int, default=None, help="inference size (default: the model's)")
    parser.add_argument("--providers", default=None, help="providers to try (default cuda,cpu)")
    _add_batch(parser)


def cli_evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model.evaluate import evaluate_detector
    from model.labels import load_dataset

    dataset = load_dataset(args.data, args.format, labels_dir=args.labels_dir)
    for error in dataset.errors:
        print(f"skipped: {error}", file=sys.stderr)
    items = [item for item in dataset.items if item.labels]
    if not items:
        why = dataset.missing_note or f"{dataset.label_files} label files, none with a box"
        return _fail(f"{args.data}: no labelled images ({args.format}): {why}")
    print(f"{dataset.labels_note}: {dataset.label_files} label files", file=sys.stderr)
    detector = _load_detector(args)
    known = set(detector.contract.class_names)
    unknown: dict[str, int] = {}
    for item in items:
        for label in item.labels:
            if label.name not in known:
                unknown[label.name] = unknown.get(label.name, 0) + 1
    with tqdm(total=len(items), unit="img", desc="evaluate") as bar:
        result = evaluate_detector(detector, items, size=args.size, progress=_tqdm_progress(bar), batch=args.batch)
    print(result.format())
    if unknown:
        count = sum(unknown.values())
        names = ", ".join(f"{name} ({n})" for name, n in sorted(unknown.items(), key=lambda kv: (-kv[1], kv[0])))
        print(f"{count} label{'s' if count != 1 else ''} of classes the model does not know are left out: {names}")
    return 0


# --- train ------------------------------------------------------------------------------


def _add_train(parser: argparse.ArgumentParser) -> None:
    from model.labels.registry import format_names

    parser.add_argument("--data", required=True, type=Path, help="folder of images with labels")
    parser.add_argument("--format", choices=format_names(), default=format_names()[0])
    _add_labels_dir(parser)
    parser.add_argument("--out", required=True, type=Path, help="run folder (checkpoints, model.onnx); an existing run resumes")
    parser.add_argument("--val-data", type=Path, default=None, help="validation folder (default: a split of --data)")
    parser.add_argument("--val-fraction", type=float, default=TRAINING_DEFAULTS.val_fraction, help="held-out share of --data")
    parser.add_argument("--backbone", choices=("resnet50", "mobilenet_v2", "tiny"), default="resnet50")
    parser.add_argument("--compact", action="store_true", help="compact pyramid/heads (64 channels, 2 head convs)")
    parser.add_argument(
        "--backbone-weights", default="imagenet", help="imagenet (download), a local .h5 file, or none (default imagenet)"
    )
    parser.add_argument(
        "--epochs", type=int, default=TRAINING_DEFAULTS.epochs, help=f"epochs (the app's fine-tune proposes {TRAINING_DEFAULTS.fine_tune_epochs})"
    )
    parser.add_argument("--batch", type=int, default=TRAINING_DEFAULTS.batch, help="images per step")
    parser.add_argument("--size", type=int, default=TRAINING_DEFAULTS.size, help="training image size (square canvas)")
    parser.add_argument(
        "--lr", type=float, default=TRAINING_DEFAULTS.learning_rate,
        help="peak learning rate (Adam; warm-up from a tenth of it over 10%% of the steps, at most 200, then cosine decay)",
    )
    parser.add_argument("--steps-per-epoch", type=int, default=None)
    parser.add_argument("--init-from", default=None, help="fine-tune from this run folder (classes may differ)")
    parser.add_argument(
        "--init-from-preset", default=None, metavar="NAME|DIR",
        help="fine-tune from a COCO-pretrained keras-hub preset (retinanet_resnet50_fpn_coco, retinanet_resnet50_fpn_v2_coco, or its downloaded folder)",
    )
    parser.add_argument("--strategy", choices=("auto", "default", "mirrored", "multi-worker"), default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-export", action="store_true", help="do not export model.onnx at the end")
    parser.add_argument(
        "--progress-json", action="store_true",
        help='print one JSON object per step to stdout ({"step", "total", "epoch", "cls_loss", "box_loss"}) instead of a progress bar',
    )


def cli_train(args: argparse.Namespace) -> int:
    if args.init_from and args.init_from_preset:
        return _fail("--init-from and --init-from-preset: fine-tune from a run folder or from a preset, not both")
    _quiet_tensorflow()
    from tqdm import tqdm

    from model.tf.train import TrainConfig, train

    cfg = TrainConfig(
        data=str(args.data),
        out=str(args.out),
        fmt=args.format,
        labels=str(args.labels_dir) if args.labels_dir else None,
        val_data=str(args.val_data) if args.val_data else None,
        val_fraction=args.val_fraction,
        backbone=args.backbone,
        compact=args.compact,
        backbone_weights=args.backbone_weights,
        epochs=args.epochs,
        batch=args.batch,
        size=args.size,
        learning_rate=args.lr,
        seed=args.seed,
        init_from=args.init_from,
        init_from_preset=args.init_from_preset,
        strategy=args.strategy,
        steps_per_epoch=args.steps_per_epoch,
        export=not args.no_export,
        command="retinanet-studio " + shlex.join(args.argv),
    )
    with tqdm(unit="step", desc="train", disable=args.progress_json) as bar:
        last = {"step": 0, "total": 0}
        val: dict[str, str] = {}

        def progress(done: int, total: int, info: dict) -> None:
            last.update(step=done, total=total)
            if args.progress_json:  # for the app's fine-tune dialog
                print(json.dumps({"step": done, "total": total, **info}), flush=True)
                return
            _tqdm_progress(bar)(done, total)
            bar.set_postfix(epoch=info["epoch"], cls=f"{info['cls_loss']:.3f}", box=f"{info['box_loss']:.3f}", **val, refresh=False)

        def epoch_done(record: dict) -> None:
            if "val_ap50" not in record:
                return
            if args.progress_json:  # the step record again, with the epoch's validation AP50
                keys = ("epoch", "cls_loss", "box_loss", "val_ap50")
                print(json.dumps({**last, **{k: record[k] for k in keys}}), flush=True)
            val["val_ap50"] = f"{record['val_ap50']:.3f}"

        try:
            result = train(cfg, progress=progress, epoch_done=epoch_done)
        except FileNotFoundError as exc:
            bar.close()
            return _fail(exc)
    if result.val is not None:
        print(result.val.format())
    print(f"run folder {result.run_dir}" + (f"; exported {result.onnx_path}" if result.onnx_path else ""))
    return 0


# --- export -----------------------------------------------------------------------------


def _add_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="the .onnx file to write")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="a training run folder (final weights or latest checkpoint)")
    source.add_argument("--classes", help="random-init network with these comma-separated classes")
    source.add_argument("--preset", help="a COCO-pretrained keras-hub preset: retinanet_resnet50_fpn_coco or retinanet_resnet50_fpn_v2_coco (downloads once)")
    source.add_argument("--preset-dir", type=Path, help="a keras-hub preset folder downloaded elsewhere (config.json, model.weights.h5, ...)")
    parser.add_argument("--backbone", choices=("resnet50", "mobilenet_v2", "tiny"), default="resnet50")
    parser.add_argument("--compact", action="store_true", help="compact pyramid/heads (with --classes)")
    parser.add_argument("--size", type=int, default=None, help="default inference size recorded in the model (default 512; 800 for a preset)")
    parser.add_argument("--seed", type=int, default=0, help="random-init seed (with --classes)")
    parser.add_argument("--int8", action="store_true", help="also write an int8 (static QDQ) model next to --out")
    parser.add_argument("--calib", type=Path, default=None, help="folder of calibration images for --int8")
    parser.add_argument("--calib-count", type=int, default=32)
    parser.add_argument(
        "--fp16", action="store_true", help="also write an fp16 model for GPUs next to --out (fp32 inputs, outputs and box decoding)"
    )


def cli_export(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from dataclasses import replace

    if args.int8 and args.calib is None:
        return _fail("--int8 needs --calib FOLDER of real images to calibrate on")
    import keras

    from model.config import ModelConfig, compact_config
    from model.tf.export import export_onnx, quantize_int8

    command = "retinanet-studio " + shlex.join(args.argv)
    if args.preset or args.preset_dir:
        from model.tf.presets import PRESET_DEFAULT_SIZE, load_preset_model

        source = args.preset or args.preset_dir
        model, config, provenance = load_preset_model(source, default_size=args.size or PRESET_DEFAULT_SIZE, command=command)
    elif args.run is not None:
        from model.tf.train import load_run_model, run_dir_of

        try:
            model, config = load_run_model(args.run)
        except FileNotFoundError as exc:
            return _fail(exc)
        history = run_dir_of(args.run) / "history.jsonl"
        provenance = {"run": str(args.run), "command": command}
        if history.is_file():
            lines = history.read_text().splitlines()
            if lines:
                provenance["last_epoch"] = json.loads(lines[-1])
    else:
        from model.tf.network import build_retinanet

        args.size = args.size or 512
        classes = tuple(c.strip() for c in args.classes.split(",") if c.strip())
        if not classes:
            return _fail("--classes needs at least one class name")
        keras.utils.set_random_seed(args.seed)
        if args.compact:
            config = replace(compact_config(classes, default_size=args.size), backbone=args.backbone)
        else:
            config = ModelConfig(class_names=classes, backbone=args.backbone, default_size=args.size)
        model = build_retinanet(config, backbone_weights=None)
        provenance = {"weights": "random init (untrained)", "command": command}
    started = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    export_onnx(model, config, args.out, provenance=provenance)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.0f} s")
    if args.int8:
        from model.imageio import list_images, load_image

        images = [load_image(p) for p in list_images(args.calib)[: args.calib_count]]
        if not images:
            return _fail(f"{args.calib}: no calibration images")
        int8_path = args.out.with_name(args.out.stem + ".int8.onnx")
        quantize_int8(args.out, int8_path, images, size=config.default_size)
        print(f"wrote {int8_path} ({int8_path.stat().st_size / 1e6:.1f} MB, calibrated on {len(images)} images)")
    if args.fp16:
        from model.fp16 import convert_fp16

        fp16_path = args.out.with_name(args.out.stem + ".fp16.onnx")
        convert_fp16(args.out, fp16_path)
        print(f"wrote {fp16_path} ({fp16_path.stat().st_size / 1e6:.1f} MB)")
    return 0


# --- the command ------------------------------------------------------------------------


class _DefaultsHelpFormatter(argparse.HelpFormatter):
    """Shows an option's default in ``--help`` unless it is None/False or its help names it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return f"{text} (default: %(default)s)".lstrip()


def build_parser() -> argparse.ArgumentParser:
    from model.labels.cli import add_convert_arguments, cli_convert
    from model.synth import add_synth_arguments, cli_synth

    parser = argparse.ArgumentParser(
        prog="retinanet-studio",
        description="RetinaNet Studio. With no subcommand: the desktop app (`retinanet-studio [PATH ...] [--model M.onnx]`).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = {
        "detect": (_add_detect, cli_detect, "batch detection of images/folders into label files"),
        "inspect": (_add_inspect, cli_inspect, "print a model's contract, metadata and providers"),
        "evaluate": (_add_evaluate, cli_evaluate, "COCO AP of a model on a labelled folder"),
        "synth": (add_synth_arguments, cli_synth, "write a synthetic labelled dataset"),
        "convert": (add_convert_arguments, cli_convert, "convert labels between VOC, YOLO and COCO"),
        "train": (_add_train, cli_train, "train or fine-tune a RetinaNet (TensorFlow)"),
        "export": (_add_export, cli_export, "export a run or a random-init network to ONNX (TensorFlow)"),
    }
    for name, (add_arguments, run, help_text) in commands.items():
        # --help shows every default (so the CLI and the app's fine-tune can be compared)
        command = sub.add_parser(name, help=help_text, description=help_text, formatter_class=_DefaultsHelpFormatter)
        add_arguments(command)
        command.set_defaults(handler=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help"):
        # model/ never imports the app: the desktop app starts from `retinanet-studio`
        # (app.main), which hands these commands to this function.
        build_parser().print_usage(sys.stderr)
        print("retinanet-studio: the desktop app starts from `retinanet-studio [PATH ...]`; this module runs its commands", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return int(args.handler(args))
    except StudioError as exc:
        return _fail(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
