"""The one way the app runs a TensorFlow-side command (`python -m model.cli train|export …`):
in a QProcess, never in-process, so the app itself never imports TensorFlow."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment

#: The folder that holds the ``model`` package, so that ``-m model.cli`` resolves.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def cli_process(argv: list[str], parent: QObject | None = None) -> QProcess:
    """A QProcess (not started) for ``argv``, run from the project root with unbuffered output
    so that progress lines arrive as they are printed."""
    process = QProcess(parent)
    process.setProgram(argv[0])
    process.setArguments(argv[1:])
    process.setWorkingDirectory(str(PROJECT_ROOT))
    env = QProcessEnvironment.systemEnvironment()
    env.insert("PYTHONUNBUFFERED", "1")
    process.setProcessEnvironment(env)
    return process
