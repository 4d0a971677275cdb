"""RetinaNet Studio desktop app (PySide6): the only package that imports Qt.

It imports the inference side of :mod:`model` (runtime, postprocess, imageio, labels) and
never TensorFlow/Keras (:mod:`model.tf`). Start it with :func:`app.main.main`.
"""

from __future__ import annotations

from pathlib import Path

#: Bundled resources (demo model, sample images, icons), next to the package.
RESOURCES_DIR = Path(__file__).resolve().parent.parent / "resources"
DEFAULT_MODEL = RESOURCES_DIR / "demo_model.onnx"
SAMPLES_DIR = RESOURCES_DIR / "samples"

APP_NAME = "RetinaNet Studio"
ORGANIZATION = "RetinaNetStudio"


def _apply_pyside_fixes() -> None:
    # Must run before any app code emits a signal (see app.common.qt_env.fix_signal_emit_refcount:
    # PySide6 6.12.0's emit() drops a reference to True on every call and CPython aborts
    # after a few hundred emits). A no-op on PySide6 versions without the bug.
    from app.common.qt_env import fix_signal_emit_refcount

    fix_signal_emit_refcount()


_apply_pyside_fixes()
