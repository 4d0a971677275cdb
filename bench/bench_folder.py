"""Big folders in the real window, in one run: open a folder of N images (default 10,000) and
move to the next image at the start and at the end of the list.

    .venv/bin/python bench/bench_folder.py [--count 10000] [--repeat 5]

The images are real (small) JPEGs, so each step decodes one image off the GUI thread; the
time measured is the GUI thread's: from the call until the list and status bar are updated.
Goal (issue: big folders): opening takes about a second, and next/previous costs the same
at image 10,000 as at image 1 (ratio ~1).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from bench.machine import machine_line

    print(machine_line())  # every figure below comes from this machine

    import cv2
    import numpy as np
    from PySide6.QtWidgets import QApplication

    folder = Path(tempfile.mkdtemp(prefix="bench_folder_"))
    ok, jpeg = cv2.imencode(".jpg", np.full((240, 320, 3), 128, np.uint8))
    assert ok
    for index in range(args.count):
        (folder / f"img_{index:05d}.jpg").write_bytes(jpeg.tobytes())

    app = QApplication.instance() or QApplication([])
    from app.window.main_window import MainWindow

    window = MainWindow()
    window.show()
    app.processEvents()
    opens = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        window.open_folder(folder)
        app.processEvents()
        opens.append(time.perf_counter() - t0)

    def step(row: int) -> float:
        t0 = time.perf_counter()
        window.show_row(row)
        app.processEvents()
        return time.perf_counter() - t0

    start, end = [], []
    for _ in range(args.repeat):  # interleaved so load drift hits both alike
        start += [step(row) for row in (1, 2, 1)]
        end += [step(row) for row in (args.count - 2, args.count - 1, args.count - 2)]
    first_ms, last_ms = statistics.median(start) * 1e3, statistics.median(end) * 1e3
    print(f"open a folder of {args.count} images: median {statistics.median(opens):.2f} s (max {max(opens):.2f} s)")
    print(f"next/previous near image 1: {first_ms:.1f} ms; near image {args.count}: {last_ms:.1f} ms; ratio {last_ms / first_ms:.2f}")
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
