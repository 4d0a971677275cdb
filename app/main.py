"""The ``retinanet-studio`` entry point.

``retinanet-studio [PATH ...] [--model MODEL.onnx]`` (or ``retinanet-studio gui ...``) starts
the desktop app; with no arguments it opens what the last session had open, else the bundled
demo model and the sample images. ``retinanet-studio COMMAND ...`` (detect, evaluate, train,
export, ...; ``--help`` lists them) runs the command line, :func:`model.cli.main`, which
imports TensorFlow only inside train and export.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app.common.about import APP_NAME, DEFAULT_MODEL, ORGANIZATION, SAMPLES_DIR

if TYPE_CHECKING:
    from app.window.main_window import MainWindow


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="retinanet-studio", description=f"{APP_NAME}: detect, inspect, label.")
    parser.add_argument("paths", nargs="*", type=Path, help="images and/or folders of images to open")
    parser.add_argument("--model", type=Path, default=None, help=f"ONNX model (default: {DEFAULT_MODEL.name})")
    return parser


def open_window(args: argparse.Namespace, window: MainWindow | None = None) -> MainWindow:
    """Create the main window (a QApplication must exist) and start opening the model and
    the paths of ``args``; without them, what the last session had open (model, folder or
    images, and the image shown), else the demo model and the sample images. ``window``:
    an existing window to use instead of a new one."""
    from app.window.main_window import MainWindow
    from app.window.recent import last_session

    window = window if window is not None else MainWindow()
    last = last_session(window.settings)
    model = args.model or last.model or (DEFAULT_MODEL if DEFAULT_MODEL.is_file() else None)
    if model is not None:
        window.open_model(model)
    else:
        window.statusBar().showMessage(f"No model: {DEFAULT_MODEL} is missing; use File › Open Model (.onnx)… (Ctrl+M)")
    paths = args.paths or list(last.paths) or ([SAMPLES_DIR] if SAMPLES_DIR.is_dir() else [])
    if paths:
        window.open_paths(paths)
        if not args.paths and last.image is not None:
            row = window.image_list.model.row_of(last.image)
            if row > 0:
                window.show_row(row, guard=False)
    return window


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from model.cli import SUBCOMMANDS
    from model.cli import main as cli_main

    if argv and (argv[0] in SUBCOMMANDS or argv[0] in ("-h", "--help")):
        return cli_main(argv)
    return run_app(argv[1:] if argv[:1] == ["gui"] else argv)


def run_app(argv: list[str]) -> int:
    """Start the desktop app with ``argv`` (paths and ``--model``); returns its exit code."""
    args = build_parser().parse_args(argv)

    from app.common.qt_env import prepare_qt_environment

    problem = prepare_qt_environment()
    if problem:
        print(problem, file=sys.stderr)
        return 1

    from PySide6.QtWidgets import QApplication

    qt_app = QApplication.instance() or QApplication(sys.argv[:1])
    qt_app.setOrganizationName(ORGANIZATION)
    qt_app.setApplicationName(APP_NAME)
    from app.common.theme import follow_color_scheme

    follower = follow_color_scheme(qt_app)  # dark palette on a dark system scheme
    window = open_window(args)
    window.show()
    code = int(qt_app.exec())
    follower.apply(dark=False)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
