"""``retinanet-studio convert SRC --from voc|yolo|coco --to voc|yolo|coco --out DST``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.labels.dataset import FORMATS, convert_dataset


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``retinanet-studio convert``."""
    parser.add_argument("src", type=Path, help="folder with the images (and their labels, unless --labels says where)")
    parser.add_argument("--from", dest="src_fmt", required=True, choices=tuple(FORMATS), help="label format of SRC")
    parser.add_argument("--to", dest="dst_fmt", required=True, choices=tuple(FORMATS), help="label format to write")
    parser.add_argument("--out", dest="dst", required=True, type=Path, help="output folder (may be SRC itself)")
    parser.add_argument(
        "--labels",
        dest="labels_dir",
        type=Path,
        default=None,
        help="folder of SRC's label files (default: next to the images, else a sibling annotations/, annots/, Annotations/ or labels/ folder)",
    )
    parser.add_argument(
        "--labels-only",
        action="store_true",
        help="write only the labels into --out; do not link/copy the images there",
    )


def cli_convert(args: argparse.Namespace) -> int:
    """Run the conversion with a tqdm progress bar. Exit code 0 when every file converted,
    2 when some source files were skipped (each named on its own line) or nothing could be
    read/written."""
    from tqdm import tqdm

    from model.errors import StudioError

    with tqdm(total=0, unit="file", desc="convert") as bar:

        def progress(done: int, total: int) -> None:
            if bar.total != total:
                bar.total = total
                bar.refresh()
            bar.update(done - bar.n)

        try:
            dataset = convert_dataset(
                args.src,
                src_fmt=args.src_fmt,
                dst=args.dst,
                dst_fmt=args.dst_fmt,
                copy_images=not args.labels_only,
                labels_dir=getattr(args, "labels_dir", None),
                progress=progress,
            )
        except StudioError as exc:
            bar.close()
            print(f"error: {exc}", file=sys.stderr)
            return 2
    for error in dataset.errors:
        print(f"skipped: {error}", file=sys.stderr)
    print(dataset.labels_note, file=sys.stderr)
    n_labels = sum(len(item.labels) for item in dataset.items)
    print(
        f"converted {len(dataset.items)} images, {n_labels} labels, {len(dataset.class_names)} classes "
        f"({args.src_fmt} -> {args.dst_fmt}) into {Path(args.dst).absolute()}"
    )
    if dataset.errors:
        print(f"{len(dataset.errors)} file(s) skipped")
        return 2
    return 0
