"""'About model' dialog: the contract, the execution providers really in use (and why
CUDA / TensorRT are not), and per-stage timings of the last detection."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

#: Stage order in the timings table: network side (worker), then GUI side.
STAGES = ("preprocess", "network", "candidates", "postprocess", "paint")
_PROVENANCE_KEY = "retinanet_studio.provenance"


def model_report(detector: Any) -> list[tuple[str, str]]:
    """(field, value) rows describing a loaded Detector: contract, providers, notes."""
    if detector is None:
        return [("Model", "none loaded")]
    contract = detector.contract
    levels = ", ".join(f"{lv.name} (stride {lv.stride})" for lv in contract.levels)
    rows = [
        ("File", str(contract.path)),
        ("Contract version", str(contract.version)),
        ("Classes", f"{len(contract.class_names)}: " + ", ".join(contract.class_names)),
        ("Pyramid levels", levels),
        ("Anchors per cell", str(contract.anchors_per_cell)),
        ("Default inference size", f"{contract.default_size} px"),
        ("Feature channels", str(contract.feature_channels)),
        ("Providers in use", ", ".join(detector.providers) or "none"),
    ]
    notes = list(getattr(detector, "provider_notes", []) or [])
    rows.append(("Provider notes", "\n".join(notes) if notes else "GPU providers in use"))
    metadata: Mapping[str, str] = getattr(contract, "metadata", {}) or {}
    provenance = metadata.get(_PROVENANCE_KEY)
    if provenance:
        try:
            data = json.loads(provenance)
            text = "\n".join(f"{k}: {v}" for k, v in data.items()) if isinstance(data, dict) else str(data)
        except json.JSONDecodeError:
            text = provenance
        rows.append(("Provenance", text))
    for key, value in sorted(metadata.items()):
        if key != _PROVENANCE_KEY and not key.startswith("retinanet_studio."):
            rows.append((key, value))
    return rows


def timings_report(timings_ms: Mapping[str, float]) -> list[tuple[str, str]]:
    """(stage, 'x.y ms') rows in :data:`STAGES` order, then any other stage, then total."""
    ordered = [s for s in STAGES if s in timings_ms] + [s for s in timings_ms if s not in STAGES]
    rows = [(stage, f"{timings_ms[stage]:.1f} ms") for stage in ordered]
    if rows:
        rows.append(("total", f"{sum(timings_ms[s] for s in ordered):.1f} ms"))
    return rows


def _table(title: str, rows: list[tuple[str, str]]) -> str:
    cells = "".join(
        f"<tr><td valign='top'><b>{html.escape(k)}</b></td><td>{html.escape(v).replace(chr(10), '<br>')}</td></tr>"
        for k, v in rows
    )
    return f"<h3>{html.escape(title)}</h3><table cellspacing='4'>{cells}</table>"


class DiagnosticsDialog(QDialog):
    """Non-modal dialog; the window keeps it up to date."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About model")
        self.resize(560, 520)
        self._detector: Any = None
        self._timings: dict[str, float] = {}
        self._stale = True
        self._browser = QTextBrowser()
        self._browser.setOpenLinks(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self._browser)
        layout.addWidget(buttons)
        self._refresh()

    def set_detector(self, detector: Any) -> None:
        self._detector = detector
        self._timings = {}
        self._refresh()

    def set_timings(self, timings_ms: Mapping[str, float]) -> None:
        self._timings = dict(timings_ms)
        self._refresh()

    def update_timings(self, **timings_ms: float) -> None:
        """Add GUI-side stages (postprocess, paint) to the last detection's timings."""
        self._timings.update(timings_ms)
        self._refresh()

    def timings(self) -> dict[str, float]:
        return dict(self._timings)

    def text(self) -> str:
        if self._stale:
            self._render()
        return self._browser.toPlainText()

    def _refresh(self) -> None:
        """Render now when visible; otherwise on show (slider drags stay cheap)."""
        self._stale = True
        if self.isVisible():
            self._render()

    def _render(self) -> None:
        self._stale = False
        parts = [_table("Model", model_report(self._detector))]
        timings = timings_report(self._timings)
        parts.append(_table("Last detection", timings) if timings else "<h3>Last detection</h3><p>none yet</p>")
        self._browser.setHtml("".join(parts))

    def showEvent(self, event: Any) -> None:  # noqa: N802
        if self._stale:
            self._render()
        super().showEvent(event)
