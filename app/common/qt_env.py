"""Prepare the process environment for Qt before the QApplication exists.

Two real-display pitfalls are handled here (offscreen tests never notice them):

* importing opencv-python points ``QT_QPA_PLATFORM_PLUGIN_PATH`` (and
  ``QT_QPA_FONTDIR``) at cv2's own bundled Qt plugins, which do not match PySide6's Qt;
* on a bare Debian/Ubuntu the ``xcb`` platform plugin lacks system libraries, and Qt
  dies with "Could not load the Qt platform plugin xcb" - we name the apt-get command.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

#: Shared libraries PySide6's xcb platform plugin links against (soname -> Debian package).
XCB_LIBRARIES: dict[str, str] = {
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}

APT_INSTALL_COMMAND = (
    "sudo apt-get install libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-image0 "
    "libxcb-render-util0 libxkbcommon-x11-0 libxcb-shape0 libxcb-xinerama0 libegl1 libgl1 "
    "libfontconfig1 libdbus-1-3"
)

_CV2_VARIABLES = ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR")


def _cv2_dir() -> Path | None:
    try:
        import cv2  # noqa: F401  (imported for its side effect on the environment)
    except ImportError:
        return None
    return Path(cv2.__file__).resolve().parent


def drop_cv2_qt_paths(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Import cv2 (so its environment side effect has happened) and remove the Qt
    variables it set when they point inside cv2. Returns the names removed."""
    environ = os.environ if environ is None else environ
    cv2_dir = _cv2_dir()
    removed = []
    if cv2_dir is None:
        return removed
    for name in _CV2_VARIABLES:
        value = environ.get(name)
        if value and Path(value).resolve().is_relative_to(cv2_dir):
            del environ[name]
            removed.append(name)
    return removed


def missing_xcb_libraries() -> list[str]:
    """Sonames from :data:`XCB_LIBRARIES` the dynamic loader cannot open."""
    missing = []
    for soname in XCB_LIBRARIES:
        try:
            ctypes.CDLL(soname)
        except OSError:
            missing.append(soname)
    return missing


def xcb_problem(environ: MutableMapping[str, str] | None = None) -> str | None:
    """One line explaining why the xcb platform cannot load, or None when it can (or when
    xcb is not going to be used)."""
    environ = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return None
    platform = environ.get("QT_QPA_PLATFORM", "")
    if platform not in ("", "xcb") or not environ.get("DISPLAY"):
        return None
    if platform == "" and environ.get("WAYLAND_DISPLAY"):
        return None  # Qt prefers Wayland there; xcb is only a fallback
    missing = missing_xcb_libraries()
    if not missing:
        return None
    packages = " ".join(XCB_LIBRARIES[name] for name in missing)
    return (
        f"RetinaNet Studio: Qt's xcb platform needs system libraries that are missing "
        f"({packages}); install them with: {APT_INSTALL_COMMAND}"
    )


def prepare_qt_environment() -> str | None:
    """Call first in ``main()``, before any QApplication. Returns a one-line problem to
    print (and exit on) when the display cannot work, else None."""
    drop_cv2_qt_paths()
    return xcb_problem()


# --------------------------------------------------------------------------------------
# PySide6 6.12.0: SignalInstance.emit() returns a *borrowed* reference to True, so every
# emit from Python drops one reference to the True singleton; after a few hundred emits
# CPython aborts with "Fatal Python error: bool_dealloc". We detect the leak with a probe
# and, only where it exists, re-add the missing reference after each emit.
# --------------------------------------------------------------------------------------
_PROBE_EMITS = 16


def _emit_refcount_drift() -> int:
    """True's reference-count change over :data:`_PROBE_EMITS` Python emits (0 = healthy)."""
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        ping = Signal()

    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(_PROBE_EMITS):
        probe.ping.emit()
    return sys.getrefcount(True) - before


def fix_signal_emit_refcount() -> bool:
    """Patch ``SignalInstance.emit`` when this PySide6 leaks references to True on emit.
    Idempotent; returns whether the patch is active."""
    from PySide6.QtCore import SignalInstance

    if getattr(SignalInstance.emit, "_studio_refcount_fix", False):
        return True
    drift = _emit_refcount_drift()
    if drift >= 0:
        return False
    incref = ctypes.pythonapi.Py_IncRef
    incref.argtypes = [ctypes.py_object]
    incref.restype = None
    for _ in range(-drift):  # give back what the probe took
        incref(True)
    original = SignalInstance.emit

    def emit(self: SignalInstance, *args: object) -> object:
        result = original(self, *args)
        if result is True or result is False:
            incref(result)  # the reference PySide forgot to add
        return result

    emit._studio_refcount_fix = True  # type: ignore[attr-defined]
    emit.__doc__ = original.__doc__
    SignalInstance.emit = emit  # type: ignore[method-assign]
    if _emit_refcount_drift() != 0:  # not the bug we know: leave PySide as it was
        SignalInstance.emit = original  # type: ignore[method-assign]
        return False
    return True
