"""What the app is called (settings, window titles) and where its bundled files are."""

from __future__ import annotations

from pathlib import Path

APP_NAME = "RetinaNet Studio"
ORGANIZATION = "RetinaNetStudio"

#: Bundled resources (demo model, sample images, icons), next to the package.
RESOURCES_DIR = Path(__file__).resolve().parents[2] / "resources"
DEFAULT_MODEL = RESOURCES_DIR / "demo_model.onnx"
SAMPLES_DIR = RESOURCES_DIR / "samples"

__all__ = ["APP_NAME", "DEFAULT_MODEL", "ORGANIZATION", "RESOURCES_DIR", "SAMPLES_DIR"]
