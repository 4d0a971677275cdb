"""Model › Fine-tune on Saved Labels…: the dialog, the training process (a fake trainer
printing --progress-json lines), progress, cancel, failure, and loading the new model."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox, QPushButton

from app.jobs.finetune import (
    EXPORTED_MODEL,
    FinetuneSettings,
    default_output_folder,
    find_source_run,
    parse_progress_line,
    train_command,
)
from app.window.main_window import MainWindow
from model.labels import ImageLabels, Label, write_voc

FAKE_TRAINER = textwrap.dedent(
    """
    import json, pathlib, sys, time
    out, total, pause, model_text, code = pathlib.Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    val = json.loads(sys.argv[6])  # {"init": AP50 of the start, "final": AP50 after training} or {}
    out.mkdir(parents=True, exist_ok=True)
    if "init" in val:
        (out / "init_eval.json").write_text(json.dumps({"val_ap": 0.1, "val_ap50": val["init"], "images": 3}))
    print("loading TensorFlow...", file=sys.stderr, flush=True)
    for step in range(1, total + 1):
        record = {"step": step, "total": total, "epoch": 1 + (step - 1) // 2, "cls_loss": 1.0 / step, "box_loss": 0.5 / step}
        print(json.dumps(record), flush=True)
        time.sleep(pause)
    if code:
        print("error: something broke", file=sys.stderr, flush=True)
        sys.exit(code)
    if "final" in val:
        print(json.dumps({"step": total, "total": total, "epoch": 1 + (total - 1) // 2, "cls_loss": 0.1, "box_loss": 0.1,
                          "val_ap50": val["final"]}), flush=True)
        (out / "history.jsonl").write_text(json.dumps({"epoch": 1, "val_ap50": val["final"]}) + "\\n")
    (out / "model.onnx").write_text(model_text)
    print("run folder", out)
    """
)


def fake_trainer(model_text: str, *, steps: int = 4, pause: float = 0.02, code: int = 0, val: dict | None = None):  # noqa: ANN201
    commands: list[FinetuneSettings] = []

    def build(settings: FinetuneSettings) -> list[str]:
        commands.append(settings)
        return [sys.executable, "-c", FAKE_TRAINER, str(settings.out), str(steps), str(pause), model_text, str(code), json.dumps(val or {})]

    build.calls = commands  # type: ignore[attr-defined]
    return build


def make_run(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_config.json").write_text("{}")
    (folder / "model.weights.h5").write_bytes(b"")
    (folder / "train_config.json").write_text(json.dumps({"size": 384, "batch": 4}))
    return folder


@pytest.fixture
def questions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """QMessageBox.question answers Yes (Load it now?) and records the texts."""
    asked: list[str] = []

    def question(parent, title, text, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


@pytest.fixture
def window(qtbot, make_window, image_folder: Path, fake_model: Path) -> MainWindow:  # noqa: ANN001
    write_voc(ImageLabels(str(image_folder / "img_0.png"), 320, 240, labels=[Label(10, 10, 50, 50, "cat")]),
              image_folder / "img_0.xml")
    window = make_window(model=fake_model)
    with qtbot.waitSignal(window.controller.image_loaded, timeout=5000):
        window.open_paths([image_folder])
    return window


def ok_button(dialog) -> QPushButton:  # noqa: ANN001
    return dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)


def test_finetune_shows_progress_and_loads_the_new_model(
    qtbot, window: MainWindow, fake_model: Path, image_folder: Path, questions: list[str]  # noqa: ANN001
) -> None:
    run = make_run(fake_model.with_name("fake_model_run"))
    builder = fake_trainer(fake_model.read_text())
    window.finetuner.command_builder = builder
    window.action("finetune").trigger()
    dialog = window.finetuner.dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.source_edit.text() == str(run)
    out = Path(dialog.out_edit.text())
    assert out.parent == image_folder.absolute() / ".retinanet-studio" and out.name.startswith("finetune-")
    assert (dialog.size.value(), dialog.batch.value()) == (384, 4)  # from the source run's training
    dialog.epochs.setValue(2)

    steps: list[int] = []
    with qtbot.waitSignal(window.finetuner.started, timeout=3000) as started:
        ok_button(dialog).click()
    started.args[0].progressed.connect(lambda progress: steps.append(progress.step))
    with qtbot.waitSignal(window.finetuner.ended, timeout=15_000) as ended:
        pass
    assert ended.args == ["succeeded", out / EXPORTED_MODEL]
    assert builder.calls[0].epochs == 2 and builder.calls[0].init_from == run
    assert builder.calls[0].data == image_folder.absolute() and builder.calls[0].fmt == "voc"
    assert steps and steps[-1] == 4 and steps == sorted(steps)
    assert window.finetuner.progress_dialog is None  # closed
    assert len(questions) == 1 and "Load it now?" in questions[0]
    qtbot.waitUntil(lambda: window.controller.model_path == str(out / EXPORTED_MODEL), timeout=5000)


def test_progress_dialog_follows_steps_and_cancel_kills_the_trainer(
    qtbot, window: MainWindow, fake_model: Path, questions: list[str]  # noqa: ANN001
) -> None:
    make_run(fake_model.with_name("fake_model_run"))
    window.finetuner.command_builder = fake_trainer(fake_model.read_text(), steps=10, pause=30.0)
    dialog = window.finetuner.open_dialog()
    with qtbot.waitSignal(window.finetuner.started, timeout=3000) as started:
        ok_button(dialog).click()
    process = started.args[0]
    with qtbot.waitSignal(process.progressed, timeout=10_000):
        pass
    progress_dialog = window.finetuner.progress_dialog
    assert progress_dialog.isVisible() and progress_dialog.maximum() == 10 and progress_dialog.value() == 1
    assert "Epoch 1/5 · step 1/10" in progress_dialog.labelText()

    with qtbot.waitSignal(window.finetuner.ended, timeout=5000) as ended:
        progress_dialog.findChild(QPushButton).click()  # its Cancel button
    assert ended.args[0] == "cancelled"
    assert not process.is_running()
    assert window.finetuner.progress_dialog is None
    assert not (process.out / EXPORTED_MODEL).exists() and questions == []
    assert "nothing to resume" in window.statusBar().currentMessage()  # the fake wrote no checkpoint
    window.action("detect").trigger()  # the app carries on
    assert window.controller.detector is not None


def test_without_a_run_folder_the_dialog_asks_for_one(qtbot, window: MainWindow, tmp_path: Path) -> None:  # noqa: ANN001
    dialog = window.finetuner.open_dialog()
    assert dialog.source_edit.text() == ""
    ok_button(dialog).click()
    assert dialog.isVisible() and "not a training run folder" in dialog.problem.text()
    dialog.source_edit.setText(str(make_run(tmp_path / "elsewhere")))
    dialog.reject()  # the user gives up after all: nothing starts
    assert window.finetuner.process is None


def test_a_failing_trainer_shows_its_error(
    qtbot, window: MainWindow, fake_model: Path, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    errors: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text, *a, **k: errors.append(text))
    make_run(fake_model.with_name("fake_model_run"))
    window.finetuner.command_builder = fake_trainer(fake_model.read_text(), steps=1, code=2)
    dialog = window.finetuner.open_dialog()
    with qtbot.waitSignal(window.finetuner.ended, timeout=15_000) as ended:
        ok_button(dialog).click()
    assert ended.args[0] == "failed"
    assert "exit code 2" in errors[0] and "error: something broke" in errors[0]


def test_find_source_run(tmp_path: Path) -> None:
    model = tmp_path / "models" / "demo_model.onnx"
    model.parent.mkdir()
    model.write_bytes(b"")
    assert find_source_run(model) is None
    beside = make_run(tmp_path / "models" / "demo_model_run")
    assert find_source_run(model) == beside
    recorded = make_run(tmp_path / "runs" / "r1")
    assert find_source_run(model, {"run": str(recorded)}) == recorded
    assert find_source_run(model, {"run": "../runs/r1"}) == model.parent / "../runs/r1"
    assert find_source_run(model, {"run": str(tmp_path / "gone")}) == beside  # a recorded run that moved
    exported = make_run(tmp_path / "run2") / "model.onnx"  # `train` exports RUN/model.onnx
    assert find_source_run(exported) == exported.parent


def test_train_command_and_progress_lines(tmp_path: Path) -> None:
    settings = FinetuneSettings(data=tmp_path, fmt="yolo", out=tmp_path / "o", init_from=tmp_path / "r", epochs=3,
                                size=256, batch=2, steps_per_epoch=5)
    argv = train_command(settings)
    assert argv[:4] == [sys.executable, "-m", "model.cli", "train"]
    flags = dict(zip(argv[4::2], argv[5::2]))
    assert flags["--data"] == str(tmp_path) and flags["--format"] == "yolo" and flags["--init-from"] == str(tmp_path / "r")
    assert "--progress-json" in argv and "--steps-per-epoch" in argv and argv[argv.index("--backbone-weights") + 1] == "none"
    record = parse_progress_line(b'{"step": 3, "total": 9, "epoch": 1, "cls_loss": 0.5, "box_loss": 0.25}')
    assert (record.step, record.total, record.epoch, record.cls_loss) == (3, 9, 1, 0.5)
    assert parse_progress_line("run folder /x") is None and parse_progress_line('{"epoch": 1}') is None
    assert default_output_folder(tmp_path).parent == tmp_path / ".retinanet-studio"


def test_a_cancelled_run_with_a_checkpoint_is_offered_for_resuming(
    qtbot, window: MainWindow, fake_model: Path, questions: list[str]  # noqa: ANN001
) -> None:
    make_run(fake_model.with_name("fake_model_run"))
    window.finetuner.command_builder = fake_trainer(fake_model.read_text(), steps=10, pause=30.0)
    dialog = window.finetuner.open_dialog()
    dialog.epochs.setValue(7)
    with qtbot.waitSignal(window.finetuner.started, timeout=3000) as started:
        ok_button(dialog).click()
    process = started.args[0]
    with qtbot.waitSignal(process.progressed, timeout=10_000):
        pass
    (process.out / "checkpoints").mkdir()  # what an epoch's end leaves in a real run
    (process.out / "checkpoints" / "checkpoint").write_text("ckpt-1")
    (process.out / "history.jsonl").write_text('{"epoch": 1}\n')
    with qtbot.waitSignal(window.finetuner.ended, timeout=5000):
        window.finetuner.cancel()
    assert "checkpoint after epoch 1" in window.statusBar().currentMessage()

    again = window.finetuner.open_dialog()
    assert Path(again.out_edit.text()) == process.out and again.epochs.value() == 7
    assert "resumes from it" in again.resume_note.text()
    again.out_edit.setText(str(process.out.parent / "fresh"))
    assert again.resume_note.text() == ""
    again.reject()


def test_closing_the_window_while_training_asks_first(
    qtbot, window: MainWindow, fake_model: Path, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda parent, title, text, *a, **k: (asked.append(title), answers.pop(0))[1])
    make_run(fake_model.with_name("fake_model_run"))
    window.finetuner.command_builder = fake_trainer(fake_model.read_text(), steps=10, pause=30.0)
    dialog = window.finetuner.open_dialog()
    with qtbot.waitSignal(window.finetuner.started, timeout=3000) as started:
        ok_button(dialog).click()
    process = started.args[0]
    qtbot.waitUntil(process.is_running, timeout=5000)
    assert not window.finetuner.progress_dialog.isModal()  # the user can keep labelling
    window.show()
    assert not window.close()  # "No": the window and the training stay
    assert process.is_running() and asked == ["Fine-tuning is running"]
    assert window.close()  # "Yes": the trainer is killed
    assert not process.is_running()


@pytest.fixture
def informations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """QMessageBox.information records its texts (and returns at once)."""
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "information", lambda parent, title, text, *a, **k: shown.append(text))
    return shown


def test_a_fine_tune_that_beats_its_start_is_offered_with_its_figures(
    qtbot, window: MainWindow, fake_model: Path, questions: list[str], informations: list[str]  # noqa: ANN001
) -> None:
    make_run(fake_model.with_name("fake_model_run"))
    window.finetuner.command_builder = fake_trainer(fake_model.read_text(), val={"init": 0.25, "final": 0.61})
    labels: list[str] = []
    dialog = window.finetuner.open_dialog()
    with qtbot.waitSignal(window.finetuner.started, timeout=3000) as started:
        ok_button(dialog).click()
    started.args[0].progressed.connect(lambda p: labels.append(window.finetuner.progress_dialog.labelText()))
    with qtbot.waitSignal(window.finetuner.ended, timeout=15_000) as ended:
        pass
    assert ended.args[0] == "succeeded"
    assert any("left" in text for text in labels)  # an ETA once steps have been timed
    assert "Validation AP50 after the last epoch: 0.610" in labels[-1]
    assert len(questions) == 1 and "0.610" in questions[0] and "0.250" in questions[0] and "beats" in questions[0]
    assert window.finetuner.last_verdict.improved is True
    qtbot.waitUntil(lambda: window.controller.model_path == str(ended.args[1]), timeout=5000)


def test_a_fine_tune_that_does_not_beat_its_start_is_not_offered(
    qtbot, window: MainWindow, fake_model: Path, questions: list[str], informations: list[str]  # noqa: ANN001
) -> None:
    make_run(fake_model.with_name("fake_model_run"))
    before = window.controller.model_path
    window.finetuner.command_builder = fake_trainer(fake_model.read_text(), val={"init": 0.52, "final": 0.40})
    dialog = window.finetuner.open_dialog()
    with qtbot.waitSignal(window.finetuner.ended, timeout=15_000) as ended:
        ok_button(dialog).click()
    assert ended.args[0] == "succeeded"
    assert questions == []  # no "Load it now?"
    assert len(informations) == 1 and "does not beat" in informations[0] and "0.400" in informations[0] and "0.520" in informations[0]
    qtbot.wait(200)
    assert window.controller.model_path == before


def test_verdict_and_eta_formatting(tmp_path: Path) -> None:
    from app.jobs.finetune import FinetuneVerdict, format_eta, read_verdict

    assert read_verdict(tmp_path) == FinetuneVerdict(None, None)
    assert FinetuneVerdict(None, None).improved is None and "not compared" in FinetuneVerdict(None, None).describe()
    (tmp_path / "history.jsonl").write_text('{"epoch": 1, "val_ap50": 0.3}\n{"epoch": 2, "val_ap50": 0.45}\nbroken\n')
    assert read_verdict(tmp_path) == FinetuneVerdict(0.45, None)
    (tmp_path / "init_eval.json").write_text('{"val_ap50": 0.45}')
    assert read_verdict(tmp_path).improved is False  # equal is not better
    assert [format_eta(s) for s in (0, 35.4, 250, 3900)] == ["0 s", "35 s", "4 min 10 s", "1 h 05 min"]


def test_progress_line_with_validation() -> None:
    line = '{"step": 8, "total": 8, "epoch": 2, "cls_loss": 0.2, "box_loss": 0.1, "val_ap50": 0.5}'
    assert parse_progress_line(line).val_ap50 == 0.5
    assert parse_progress_line('{"step": 1, "total": 8, "epoch": 1, "cls_loss": 0.2, "box_loss": 0.1}').val_ap50 is None
    assert parse_progress_line("[1, 2]") is None


def test_fine_tune_and_train_share_one_set_of_defaults() -> None:
    from model.cli import build_parser
    from model.config import TRAINING_DEFAULTS

    args = build_parser().parse_args(["train", "--data", "d", "--out", "o"])
    settings = FinetuneSettings(data=Path("d"), fmt="voc", out=Path("o"), init_from=Path("r"))
    assert settings.learning_rate == args.lr == TRAINING_DEFAULTS.learning_rate
    assert (settings.size, settings.batch) == (args.size, args.batch)
    assert settings.epochs == TRAINING_DEFAULTS.fine_tune_epochs
