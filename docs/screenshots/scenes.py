"""Scripted scenes for the README screenshots, on a real X display (Xvfb):

    xshot docs/screenshots/main.png 25 -- .venv/bin/python docs/screenshots/scenes.py main
    xshot /tmp/x.png 25 -- .venv/bin/python docs/screenshots/scenes.py pyramid --size 1366x768 \
        --grab docs/screenshots/pyramid-1366x768.png --grab-dock docs/screenshots/pyramid-dock-1366x768.png

Opens the app as `retinanet-studio` does (demo model, sample images), waits for the first
detections, then sets the scene: ``main`` (detections + pyramid dock), ``pyramid`` (a level
overlaid on the image, a detection's anchor cell highlighted), ``editing`` (detections
accepted as labels, one selected with its handles, the undo history non-empty), ``quality``
(the Quality vs Labels tab raised).
``--size WxH`` sets the window size; ``--grab PNG`` saves the window itself (any size, even
larger than the virtual screen) once the scene is set, ``--grab-dock PNG`` the Feature
pyramid dock.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scene", choices=("main", "pyramid", "editing", "quality"))
    parser.add_argument("--image", type=int, default=1, help="row of the sample image to show")
    parser.add_argument("--size", default="1600x1000", help="window size, WIDTHxHEIGHT")
    parser.add_argument("--grab", type=Path, default=None, help="save the window to this PNG when the scene is set")
    parser.add_argument("--grab-dock", type=Path, default=None, help="save the Feature pyramid dock to this PNG")
    parser.add_argument("--dark", action="store_true", help="the dark palette, as on a dark system colour scheme")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    from app.common.qt_env import prepare_qt_environment
    from app.main import build_parser, open_window

    problem = prepare_qt_environment()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QDockWidget

    from app.common.about import APP_NAME, ORGANIZATION

    qt_app = QApplication(sys.argv[:1])
    qt_app.setOrganizationName(ORGANIZATION + "-screenshots")  # leave the user's settings alone
    qt_app.setApplicationName(APP_NAME)
    from app.common.theme import ColorSchemeFollower

    theme = ColorSchemeFollower(qt_app)
    if args.dark:
        theme.apply(dark=True)
    import shutil

    from app.labelling.journal import default_journal_root

    shutil.rmtree(default_journal_root(), ignore_errors=True)  # the last scene's edits (xshot kills it)
    from app.common.settings import Settings

    Settings().store.clear()  # the screenshot settings start afresh (default layout, demo model)
    window = open_window(build_parser().parse_args([]))
    window.resize(width, height)
    window.show()
    state = {"shown": False}

    def stage() -> None:
        if window.controller.detector is None or window.image_list.model.rowCount() == 0:
            return
        if not state["shown"]:
            state["shown"] = True
            window.show_row(args.image)
            return
        detections = window.current_detections()
        if detections is None or window.controller.is_busy():
            return
        timer.stop()
        canvas = window.canvas
        if args.scene == "pyramid":
            viewer = window.layer_viewer
            viewer.source_combo.setCurrentIndex(viewer.source_combo.findData("scores"))  # shared 0..1 scale
            viewer.overlay_check.setChecked(True)
            viewer.opacity_slider.setValue(55)
            if len(detections):  # click the best detection, as a user would
                from PySide6.QtCore import QPointF, Qt
                from PySide6.QtTest import QTest

                x1, y1, x2, y2 = (float(v) for v in detections.boxes[0])
                point = canvas.mapFromScene(QPointF((x1 + x2) / 2, (y1 + y2) / 2))
                QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=point)
        elif args.scene == "quality":
            window.findChild(QDockWidget, "QualityDock").raise_()
        elif args.scene == "editing":
            window.annotation.accept_all_detections()
            canvas.set_selected_rows([0])
        window.statusBar().showMessage(f"scene: {args.scene}", 60_000)
        if args.grab or args.grab_dock:
            QTimer.singleShot(1500, save)

    def save() -> None:
        if args.grab:
            window.grab().save(str(args.grab))
            print(f"saved {args.grab} ({window.width()}x{window.height()})")
        if args.grab_dock:
            dock = window.findChild(QDockWidget, "LayerViewerDock")
            dock.grab().save(str(args.grab_dock))
            print(f"saved {args.grab_dock} ({dock.width()}x{dock.height()})")

    timer = QTimer()
    timer.timeout.connect(stage)
    timer.start(200)
    return int(qt_app.exec())


if __name__ == "__main__":
    raise SystemExit(main())
