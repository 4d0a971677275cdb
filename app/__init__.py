"""RetinaNet Studio desktop app (PySide6): the only package that imports Qt.

It imports the inference side of :mod:`model` (runtime, postprocess, imageio, labels) and
never TensorFlow/Keras (:mod:`model.tf`). Start it with :func:`app.main.main`. Its layers,
top down (each imports only from below; the import contracts in pyproject.toml check it):
``main`` / ``window`` (assembly) > ``canvas`` | ``docks`` (views) > ``jobs`` >
``labelling`` > ``session`` (the shared state, Qt-free) > ``common``.
"""

from __future__ import annotations

# Must run before any app code emits a signal: PySide6 6.12.0's emit() drops a reference to
# True on every call and CPython aborts after a few hundred emits. A no-op on PySide6
# versions without the bug (see app.common.qt_env.fix_signal_emit_refcount).
from app.common.qt_env import fix_signal_emit_refcount

fix_signal_emit_refcount()
