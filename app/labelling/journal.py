"""Crash recovery: an append-only journal of unsaved label edits, one file per image folder.

Every undo-stack change of a dirty document appends one JSON line holding that image's full
label state (labels, provenance, rejected detections), then flushes and fsyncs. Saving or
discarding an image appends a "cleared" line (or, when nothing stays pending, removes the
file). On the next start :meth:`Journal.pending` lists the images with unsaved edits, so the
app can offer to recover them (:meth:`app.labelling.document.LabelDocument.recover`).

A kill can tear the last line: unreadable lines are skipped, and the next append starts on
a fresh line. Boxes in the states are xyxy in original-image pixels.

Lines: ``{"image": path, "state": {...}}`` or ``{"image": path, "cleared": true}``.

:class:`app.labelling.label_session.LabelSession` builds on it: a document per shown image,
recovery on open, and the Save / Discard / Cancel prompt before leaving unsaved labels.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QStandardPaths

from app.labelling.entries import state_from_json
from model.labels import Label, atomic_write_bytes

log = logging.getLogger(__name__)

#: Rewrite the journal with only the pending states once it holds this many superseded bytes.
COMPACT_BYTES = 8 * 1024 * 1024


def default_journal_root() -> Path:
    """``<AppLocalDataLocation>/journal`` (e.g. ~/.local/share/RetinaNetStudio/<app>/journal)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    if not base:
        base = str(Path.home() / ".local" / "share" / "retinanet-studio")
    return Path(base) / "journal"


class Journal:
    """The edit journal of one image folder.

    ``root`` is where journals live (default :func:`default_journal_root`; tests pass a temp
    folder); the file is ``root/<hash of the folder path>.jsonl``. One Journal object serves
    every document of the folder. Write failures are logged, never raised: the journal is a
    safety net and must not stop editing.
    """

    def __init__(self, folder: str | Path, *, root: str | Path | None = None) -> None:
        self.folder = os.path.abspath(os.fspath(folder))
        root = Path(root) if root is not None else default_journal_root()
        digest = hashlib.sha1(self.folder.encode("utf-8")).hexdigest()[:16]
        self.path = root / f"{digest}.jsonl"
        self._pending: dict[str, dict[str, Any]] = {}
        self._live_bytes: dict[str, int] = {}  # image -> size of its latest state line
        self._file_bytes = 0
        self._fd: int | None = None
        self._read()

    # ------------------------------------------------------------------ queries
    def pending(self) -> dict[str, list[Label]]:
        """Images with unsaved edits -> their labels at the last recorded edit."""
        result: dict[str, list[Label]] = {}
        for image, state in self._pending.items():
            try:
                entries, _rejected = state_from_json(state)
            except (ValueError, KeyError, TypeError):
                continue
            result[image] = [e.label for e in entries]
        return result

    def pending_state(self, image_path: str | Path) -> dict[str, Any] | None:
        """The full last recorded state of ``image_path`` (see app.labelling.entries.state_to_json),
        or None when it has no unsaved edits."""
        return self._pending.get(os.path.abspath(os.fspath(image_path)))

    # ------------------------------------------------------------------ writes
    def record(self, image_path: str | Path, state: dict[str, Any]) -> None:
        """Append ``state`` as the latest unsaved state of ``image_path`` (fsynced)."""
        image = os.path.abspath(os.fspath(image_path))
        self._pending[image] = state
        self._live_bytes[image] = self._append({"image": image, "state": state})
        if self._file_bytes - sum(self._live_bytes.values()) > COMPACT_BYTES:
            self._compact()

    def clear(self, image_path: str | Path) -> None:
        """Forget ``image_path``'s unsaved state (it was saved or discarded)."""
        image = os.path.abspath(os.fspath(image_path))
        if self._pending.pop(image, None) is None:
            return
        self._live_bytes.pop(image, None)
        if self._pending:
            self._append({"image": image, "cleared": True})
        else:
            self._remove_file()

    def clear_all(self) -> None:
        """Forget everything (the user declined recovery)."""
        self._pending.clear()
        self._live_bytes.clear()
        self._remove_file()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:  # pragma: no cover - best effort
        with contextlib.suppress(OSError):
            self.close()

    # ------------------------------------------------------------------ internals
    def _read(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("%s: cannot read the edit journal (%s)", self.path, exc)
            return
        self._file_bytes = len(data)
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                image = str(record["image"])
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a kill
            if record.get("cleared"):
                self._pending.pop(image, None)
                self._live_bytes.pop(image, None)
            elif isinstance(record.get("state"), dict):
                self._pending[image] = record["state"]
                self._live_bytes[image] = len(line) + 1

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            size = os.fstat(fd).st_size
            if size:
                with open(self.path, "rb") as f:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":
                        os.write(fd, b"\n")  # a torn last line: start ours on a new one
            self._fd = fd
        return self._fd

    def _append(self, record: dict[str, Any]) -> int:
        """Append one line (one write() call, O_APPEND), fsync; returns its size."""
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")
        try:
            fd = self._open()
            os.write(fd, line)
            os.fsync(fd)
            self._file_bytes += len(line)
        except OSError as exc:
            log.warning("%s: cannot append to the edit journal (%s)", self.path, exc)
        return len(line)

    def _compact(self) -> None:
        lines = {
            image: json.dumps({"image": image, "state": state}, separators=(",", ":")) + "\n"
            for image, state in self._pending.items()
        }
        data = "".join(lines.values()).encode("utf-8")
        try:
            self.close()
            atomic_write_bytes(self.path, data)
            self._file_bytes = len(data)
            self._live_bytes = {i: len(line.encode("utf-8")) for i, line in lines.items()}
        except OSError as exc:
            log.warning("%s: cannot compact the edit journal (%s)", self.path, exc)

    def _remove_file(self) -> None:
        self.close()
        self._file_bytes = 0
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("%s: cannot remove the edit journal (%s)", self.path, exc)


# --------------------------------------------------------------------------- the session
#: ``ask(parent, document) -> "save" | "discard" | "cancel"`` before leaving a dirty image.


__all__ = ["COMPACT_BYTES", "Journal", "default_journal_root"]
