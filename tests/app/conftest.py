"""Fixtures for the Qt app tests: offscreen Qt, isolated QSettings, a window factory."""

from __future__ import annotations

# QT_QPA_PLATFORM=offscreen is set by tests/conftest.py before any test module imports Qt.
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from tests.app.fakes import RecordingCanvas, fake_backend, write_fake_model, write_marker_image

MARKERS = (10, 60, 110)


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every QSettings the app creates (INI, user scope) lands in a fresh temp folder."""
    folder = tmp_path_factory.mktemp("settings")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    yield folder


@pytest.fixture(autouse=True)
def isolated_journal(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Crash journals (app.labelling.journal) land in a fresh temp folder, not the user's data folder;
    every window of one test shares it (as two runs of the app would)."""
    folder = tmp_path_factory.mktemp("journal")
    monkeypatch.setattr("app.labelling.journal.default_journal_root", lambda: folder)
    return folder


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Three flat PNGs whose pixel value (the 'marker') is 10, 60 and 110."""
    folder = tmp_path / "images"
    folder.mkdir()
    for index, marker in enumerate(MARKERS):
        write_marker_image(folder / f"img_{index}.png", marker)
    return folder


@pytest.fixture
def fake_model(tmp_path: Path) -> Path:
    return write_fake_model(tmp_path / "fake_model.onnx")


@pytest.fixture
def make_window(qtbot) -> Callable[..., object]:  # noqa: ANN001
    """Factory: a MainWindow on the fake backend and a recording canvas, registered with
    qtbot (closed at teardown, which also waits for its workers)."""
    from app.window.main_window import MainWindow

    def make(*, backend=None, model: Path | None = None, auto_detect: bool = True):  # noqa: ANN001, ANN202
        window = MainWindow(backend=backend or fake_backend(), canvas=RecordingCanvas())
        window.resize(1400, 900)  # the default size: larger than the offscreen screen (800x800) it would be capped to
        qtbot.addWidget(window)
        if window.action("auto_detect").isChecked() != auto_detect:
            window.action("auto_detect").trigger()
        if model is not None:
            failures: list[BaseException] = []
            window.controller.model_failed.connect(lambda _path, error: failures.append(error))
            window.open_model(model)
            qtbot.waitUntil(lambda: window.controller.detector is not None or bool(failures), timeout=10_000)
            assert not failures, f"model did not load: {failures[0]}"
        return window

    return make
