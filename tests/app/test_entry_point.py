"""The `retinanet-studio` entry point (app.main.main): subcommands go to the command line
(model.cli), anything else starts the app; model.cli itself never starts the app."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app import main as entry

ROOT = Path(__file__).resolve().parents[2]


def test_a_subcommand_runs_the_command_line(capsys: pytest.CaptureFixture[str], fake_model: Path) -> None:
    from tests.model.onnx_fakes import write_contract_model

    model = write_contract_model(fake_model.with_name("contract.onnx"))
    assert entry.main(["inspect", str(model)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"model      {model}") and "contract   version" in out


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        entry.main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "With no subcommand: the desktop app" in out and "detect" in out and "train" in out


def test_paths_and_gui_start_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[list[str]] = []
    monkeypatch.setattr(entry, "run_app", lambda argv: started.append(argv) or 0)
    assert entry.main(["images/", "--model", "m.onnx"]) == 0
    assert entry.main(["gui", "images/"]) == 0
    assert entry.main([]) == 0
    assert started == [["images/", "--model", "m.onnx"], ["images/"], []]


def test_the_command_line_alone_does_not_start_the_app() -> None:
    done = subprocess.run([sys.executable, "-m", "model.cli"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert "the desktop app starts from `retinanet-studio [PATH ...]`" in done.stderr
