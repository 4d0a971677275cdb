"""Import TensorFlow without its start-up wall of log lines.

TensorFlow's C++ side logs through absl before its own log level applies, so
``TF_CPP_MIN_LOG_LEVEL`` does not silence it: every ``train`` or ``export`` began with
oneDNN and "could not find cuda drivers" notices and, on a machine without an NVIDIA
driver, an ``E``-level "failed call to cuInit" that reads like a failure but is not one.
:func:`import_tensorflow` captures the process's stderr (file descriptor 2, where the C++
side writes) while TensorFlow loads and finds its devices, then passes on every line
except those known notices. A cuInit failure on a machine that *has* a driver is passed on.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
import tempfile

# Lines TensorFlow prints on every start that say nothing the user can act on.
_NOTICES = (
    re.compile(r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(r"\] oneDNN custom operations are on"),
    re.compile(r"\] Could not find cuda drivers on your machine, GPU will not be used"),
    re.compile(r"Unable to register cu(DNN|FFT|BLAS) factory"),
    re.compile(r"computation placer already registered"),
)
_NO_DRIVER_CUINIT = re.compile(r"\] failed call to cuInit")


def has_nvidia_driver() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def kept_lines(captured: str, *, has_driver: bool) -> list[str]:
    """The lines of ``captured`` (TensorFlow's start-up stderr) worth showing."""
    kept = []
    for line in captured.splitlines():
        if not line.strip() or any(p.search(line) for p in _NOTICES):
            continue
        if not has_driver and _NO_DRIVER_CUINIT.search(line):
            continue
        kept.append(line)
    return kept


def import_tensorflow():  # noqa: ANN201 - returns the tensorflow module
    """``import tensorflow`` and list its devices with the start-up notices left out."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # initialises the platforms (cuInit) now
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = kept_lines(capture.read().decode("utf-8", errors="replace"), has_driver=has_nvidia_driver())
            for line in lines:
                print(line, file=sys.stderr)
    return tf
