"""The window's status bar: messages on the left; busy, zoom, latency, providers and model
fields on the right."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QWidget


class StatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._zoom = QLabel("")
        self._zoom.setToolTip("zoom: screen pixels per image pixel (Ctrl+F fit, Ctrl+1 1:1)")
        self._model = QLabel("No model")
        self._providers = QLabel("")
        self._latency = QLabel("")
        self._busy = QProgressBar()
        self._busy.setRange(0, 0)  # indeterminate
        self._busy.setMaximumWidth(90)
        self._busy.setTextVisible(False)
        self._busy.setVisible(False)
        for widget in (self._busy, self._zoom, self._latency, self._providers, self._model):
            self.addPermanentWidget(widget)

    def set_busy(self, busy: bool) -> None:
        self._busy.setVisible(busy)

    def is_busy_shown(self) -> bool:
        return not self._busy.isHidden()

    def show_zoom(self, scale: float) -> None:
        self._zoom.setText(f"{scale * 100:.0f}%")

    def show_latency(self, ms: float, *, cached: bool) -> None:
        self._latency.setText(f"{ms:.0f} ms{' (cached)' if cached else ''}")

    def show_model(self, path: Path, providers: Sequence[str], notes: Sequence[str] = ()) -> None:
        """The loaded model's file name and the providers it really runs on."""
        self._model.setText(f"Model: {path.name}")
        self._model.setToolTip(str(path))
        self._providers.setText("Providers: " + ", ".join(p.removesuffix("ExecutionProvider") for p in providers))
        self._providers.setToolTip("\n".join(notes))

    def fields(self) -> dict[str, str]:
        return {
            "zoom": self._zoom.text(),
            "model": self._model.text(),
            "providers": self._providers.text(),
            "latency": self._latency.text(),
            "message": self.currentMessage(),
        }


__all__ = ["StatusBar"]
