"""The app's progress dialogs: one set-up for long jobs that the user can cancel."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QProgressDialog, QWidget


def progress_dialog(
    text: str,
    title: str,
    *,
    parent: QWidget | None,
    on_cancel: Callable[[], object],
    maximum: int = 0,
    modal: bool = False,
    show_after_ms: int = 0,
    min_width: int = 0,
) -> QProgressDialog:
    """A progress dialog with a Cancel button that calls ``on_cancel``; it stays open (no
    auto close or reset) until its owner closes it. ``maximum`` 0: a busy indicator.
    ``modal``: blocks the window (else labelling goes on meanwhile)."""
    dialog = QProgressDialog(text, "Cancel", 0, maximum, parent)
    dialog.setWindowTitle(title)
    dialog.setWindowModality(Qt.WindowModality.WindowModal if modal else Qt.WindowModality.NonModal)
    dialog.setMinimumDuration(show_after_ms)
    dialog.setAutoClose(False)
    dialog.setAutoReset(False)
    if min_width:
        dialog.setMinimumWidth(min_width)
    dialog.canceled.connect(on_cancel)
    return dialog


__all__ = ["progress_dialog"]
