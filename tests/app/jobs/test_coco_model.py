"""Model › Get a COCO Model…: the dialog, the export process (a fake exporter), progress,
loading the result, and the offline message with the command to run elsewhere."""

from __future__ import annotations

import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialogButtonBox

from app.jobs.coco_model import PRESETS, CocoExport, error_line, export_command, last_status
from app.window.main_window import MainWindow

FAKE_EXPORTER = textwrap.dedent(
    """
    import pathlib, shutil, sys, time
    out, model, code, message = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    for percent in (10, 60, 100):
        print(f"\\rDownloading model.weights.h5: {percent}%", end="", file=sys.stderr, flush=True)
        time.sleep(0.05)
    print(file=sys.stderr)
    if code:
        print(message, file=sys.stderr, flush=True)
        sys.exit(code)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(model, out)
    print(f"wrote {out}")
    """
)
OFFLINE = (
    "error: retinanet_resnet50_fpn_coco: the COCO weights are not on this machine and cannot be downloaded from here "
    "(ConnectionError). They are the Kaggle model keras/retinanet/keras/retinanet_resnet50_fpn_coco/4: on a connected "
    "machine run python -c \"import kagglehub; print(kagglehub.model_download('keras/retinanet/keras/retinanet_resnet50_fpn_coco/4'))\", "
    "copy the folder it prints to this machine, then run retinanet-studio export --preset-dir FOLDER --out coco.onnx"
)


def fake_exporter(model: Path, *, code: int = 0, message: str = ""):  # noqa: ANN201
    jobs: list[CocoExport] = []

    def build(job: CocoExport) -> list[str]:
        jobs.append(job)
        return [sys.executable, "-c", FAKE_EXPORTER, str(job.out), str(model), str(code), message]

    build.jobs = jobs  # type: ignore[attr-defined]
    return build


@pytest.fixture
def window(make_window, tmp_path: Path) -> MainWindow:  # noqa: ANN001
    window = make_window()
    window.coco_getter.out_folder = tmp_path / "models"
    return window


def test_get_a_coco_model_exports_and_loads_it(qtbot, window: MainWindow, fake_model: Path, tmp_path: Path) -> None:  # noqa: ANN001
    builder = fake_exporter(fake_model)
    window.coco_getter.command_builder = builder
    assert window.action("coco_model").text() == "Get a &COCO Model…"
    window.action("coco_model").trigger()
    dialog = window.coco_getter.dialog
    assert dialog is not None and dialog.isVisible()
    assert [dialog.preset.itemData(i) for i in range(len(PRESETS))] == list(PRESETS)
    dialog.preset.setCurrentIndex(1)
    assert dialog.out_edit.text() == str(tmp_path / "models" / "retinanet_resnet50_fpn_v2_coco.onnx")
    with qtbot.waitSignal(window.coco_getter.started, timeout=3000):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert window.coco_getter.progress_dialog.isVisible()
    with qtbot.waitSignal(window.coco_getter.ended, timeout=15_000) as ended:
        pass
    out = tmp_path / "models" / "retinanet_resnet50_fpn_v2_coco.onnx"
    assert ended.args == ["succeeded", out]
    assert builder.jobs == [CocoExport("retinanet_resnet50_fpn_v2_coco", out)]
    assert window.coco_getter.progress_dialog is None
    qtbot.waitUntil(lambda: window.controller.model_path == str(out), timeout=5000)


def test_offline_the_app_shows_what_to_run_on_a_connected_machine(qtbot, window: MainWindow, fake_model: Path) -> None:  # noqa: ANN001
    window.coco_getter.command_builder = fake_exporter(fake_model, code=2, message=OFFLINE)
    dialog = window.coco_getter.open_dialog()
    with qtbot.waitSignal(window.coco_getter.ended, timeout=15_000) as ended:
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert ended.args[0] == "failed"
    box = window.coco_getter.message_box
    assert box is not None and box.isVisible()
    text = box.informativeText()
    assert "kagglehub.model_download('keras/retinanet/keras/retinanet_resnet50_fpn_coco/4')" in text
    assert "retinanet-studio export --preset-dir FOLDER" in text and not text.startswith("error:")
    assert window.controller.detector is None  # nothing loaded, the app carries on


def test_a_preset_folder_must_hold_config_json(qtbot, window: MainWindow, fake_model: Path, tmp_path: Path) -> None:  # noqa: ANN001
    builder = fake_exporter(fake_model)
    window.coco_getter.command_builder = builder
    dialog = window.coco_getter.open_dialog()
    dialog.preset.setCurrentIndex(len(PRESETS))  # a downloaded folder
    dialog.folder_edit.setText(str(tmp_path))
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert dialog.isVisible() and "no config.json" in dialog.problem.text()
    folder = tmp_path / "retinanet_resnet50_fpn_coco"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    dialog.folder_edit.setText(str(folder))
    assert dialog.out_edit.text() == str(tmp_path / "models" / "retinanet_resnet50_fpn_coco.onnx")
    with qtbot.waitSignal(window.coco_getter.ended, timeout=15_000):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert builder.jobs == [CocoExport(str(folder), tmp_path / "models" / "retinanet_resnet50_fpn_coco.onnx", is_folder=True)]


def test_export_command_and_progress_lines(tmp_path: Path) -> None:
    argv = export_command(CocoExport("retinanet_resnet50_fpn_coco", tmp_path / "c.onnx"))
    assert argv[1:] == ["-m", "model.cli", "export", "--preset", "retinanet_resnet50_fpn_coco", "--out", str(tmp_path / "c.onnx")]
    argv = export_command(CocoExport(str(tmp_path), tmp_path / "c.onnx", is_folder=True))
    assert argv[4:6] == ["--preset-dir", str(tmp_path)]
    assert last_status("loading\n\rDownloading: 10%\rDownloading: 55%") == "Downloading: 55%"
    assert error_line("note: x\nerror: a: b\n") == "a: b" and error_line("fine\n") is None


def _preset_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.weights.h5").write_bytes(b"")
    return folder


def test_fine_tuning_a_coco_model_starts_from_its_preset(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    """Model › Fine-tune accepts a preset (folder or name) where it asks for a run folder,
    and trains with --init-from-preset."""
    from app.jobs.coco_model import is_preset_source, preset_of
    from app.jobs.finetune import FinetuneDialog, train_command

    preset = _preset_folder(tmp_path / "retinanet_resnet50_fpn_coco")
    run = tmp_path / "run"
    run.mkdir()
    (run / "model_config.json").write_text("{}")
    (run / "model.weights.h5").write_bytes(b"")
    assert is_preset_source(preset) and is_preset_source("retinanet_resnet50_fpn_v2_coco")
    assert not is_preset_source(run) and not is_preset_source(tmp_path / "nothing") and not is_preset_source("")
    assert preset_of({"preset": "retinanet_resnet50_fpn_coco", "preset_folder": str(preset)}) == str(preset)
    assert preset_of({"preset": "retinanet_resnet50_fpn_coco", "preset_folder": str(tmp_path / "gone")}) == "retinanet_resnet50_fpn_coco"
    assert preset_of({"run": str(run)}) is None

    dialog = FinetuneDialog(data=tmp_path, fmt="voc", labelled=3, source_run=None)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.source_edit.setText(str(preset))
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert not dialog.isVisible() and dialog.problem.text() == ""
    argv = train_command(dialog.settings())
    assert argv[argv.index("--init-from-preset") + 1] == str(preset) and "--init-from" not in argv
    assert "--init-from" in train_command(replace(dialog.settings(), init_from=run))
