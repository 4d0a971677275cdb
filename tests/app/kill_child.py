"""Child processes for the kill tests, forked from a warm "zygote" so a kill costs no start-up.

Run ``python kill_child.py`` and talk to it on stdin/stdout, one line each:

    save IMAGE FMT      -> "spawned PID"; the child saves generation 1, 2, 3... of a big label
                           set with LabelDocument.save() in a loop, printing "PID GEN" after
                           each completed save
    edit IMAGE ROOT     -> "spawned PID"; the child edits (one undo command per generation,
                           journaled under ROOT, never saved), printing "PID GEN" after each
    reap PID            -> "reaped PID" once the (killed) child is gone: every line it printed
                           is then already in the pipe, before this one
    (end of input)      -> the zygote exits

:func:`generation_labels` is shared with the tests to recognise what they read back.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from app.labelling.commands import ReplaceAllLabels  # noqa: E402
from app.labelling.document import LabelDocument, ProjectClasses  # noqa: E402
from app.labelling.entries import LabelEntry, Provenance  # noqa: E402
from app.labelling.journal import Journal  # noqa: E402
from model.labels import Label  # noqa: E402

SIZE = (4000, 3000)
LABELS_PER_GENERATION = 1500  # ~0.35 MB of VOC XML: a save takes long enough to be hit
CLASSES = ("cat", "dog", "bird")


def generation_labels(generation: int) -> list[Label]:
    """A distinct, recognisable label set per generation (whole-pixel xyxy boxes)."""
    count = LABELS_PER_GENERATION + generation % 7
    labels = []
    for i in range(count):
        x = float((i * 37 + generation * 11) % (SIZE[0] - 60))
        y = float((i * 53 + generation * 5) % (SIZE[1] - 60))
        labels.append(Label(x, y, x + 20.0 + i % 31, y + 15.0 + generation % 29, CLASSES[(i + generation) % 3]))
    return labels


def _work(mode: str, image: str, arg: str) -> None:
    """The loop of a forked child; never returns (the parent kills it)."""
    project = ProjectClasses(CLASSES)
    if mode == "save":
        doc = LabelDocument(project)
        doc.load(image, SIZE, arg)
    else:
        doc = LabelDocument(project, journal=Journal(Path(image).parent, root=arg))
        doc.load(image, SIZE, "voc")
    pid = os.getpid()
    generation = 0
    while True:
        generation += 1
        entries = [LabelEntry(lab, Provenance()) for lab in generation_labels(generation)]
        doc.push(ReplaceAllLabels(doc, entries, [], text=f"generation {generation}"))
        if mode == "save":
            doc.save()
        os.write(1, f"{pid} {generation}\n".encode())


class Zygote:
    """Parent side: starts this script once, then spawns and SIGKILLs workers cheaply."""

    def __init__(self) -> None:
        import queue
        import subprocess
        import threading

        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._acks: list[int] = []  # generations the current worker reported complete
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line.strip())

    def _send(self, text: str) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(text + "\n")
        self._process.stdin.flush()

    def _expect(self, prefix: str) -> str:
        while True:
            line = self._lines.get(timeout=30)
            if line.startswith(prefix):
                return line
            self._acks.append(int(line.split()[1]))  # "PID GEN" from the worker

    def spawn(self, mode: str, image: Path, arg: str) -> int:
        """Start a worker (see the module docstring); returns its pid."""
        self._acks = []
        self._send(f"{mode} {image} {arg}")
        return int(self._expect("spawned").split()[1])

    def wait_reported(self, generation: int) -> None:
        """Block until the current worker has reported ``generation`` complete."""
        while max(self._acks, default=0) < generation:
            self._acks.append(int(self._lines.get(timeout=30).split()[1]))

    def kill(self, pid: int) -> int:
        """SIGKILL worker ``pid``; returns the last generation it reported complete (0: none)."""
        import signal

        os.kill(pid, signal.SIGKILL)
        self._send(f"reap {pid}")
        self._expect("reaped")
        return max(self._acks, default=0)

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)


def main() -> int:
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "reap":
            os.waitpid(int(words[1]), 0)
            print(f"reaped {words[1]}", flush=True)
            continue
        mode, image, arg = words
        pid = os.fork()
        if pid == 0:  # the child
            try:
                sys.stdin.close()
                _work(mode, image, arg)
            finally:
                os._exit(1)
        print(f"spawned {pid}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
