"""A process saving labels is SIGKILLed at random moments, many times: the label file is
always the old or the new complete content, never a torn one (atomic writes)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from app.labelling.label_files import sidecar_path  # noqa: E402
from model.labels import Label, label_path_for, read_classes_txt, read_coco, read_voc, read_yolo  # noqa: E402
from tests.app.kill_child import SIZE, Zygote, generation_labels  # noqa: E402

KILLS = 51  # 17 per format

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the kill test forks its workers (POSIX only)")


def read_back(image: Path, fmt: str) -> list[Label] | None:
    """The labels in ``image``'s label file (None when there is no file yet)."""
    path = label_path_for(image, fmt)
    if not path.exists():
        return None
    if fmt == "voc":
        return read_voc(path).labels
    if fmt == "yolo":
        names = read_classes_txt(path.parent / "classes.txt")
        return read_yolo(path, width=SIZE[0], height=SIZE[1], class_names=names).labels
    items, _names = read_coco(path)
    return [lab for item in items if Path(item.image_path).name == image.name for lab in item.labels]


def same(got: list[Label], want: list[Label], fmt: str) -> bool:
    if len(got) != len(want) or [g.name for g in got] != [w.name for w in want]:
        return False
    tol = 0.01 if fmt == "yolo" else 0.0  # YOLO keeps 6 decimals of normalised numbers (4000 px wide)
    return all(abs(a - b) <= tol for g, w in zip(got, want, strict=True) for a, b in zip(g.box, w.box, strict=True))


def test_killing_a_saving_process_never_leaves_a_torn_label_file(tmp_path: Path) -> None:
    rng = random.Random(20240607)
    images = {fmt: tmp_path / fmt / "photo.jpg" for fmt in ("voc", "yolo", "coco")}
    for image in images.values():
        image.parent.mkdir()
    previous: dict[str, list[Label] | None] = dict.fromkeys(images)
    outcomes = {"before the first save": 0, "last reported save": 0, "save done, not reported": 0}
    zygote = Zygote()
    try:
        for kill in range(KILLS):
            fmt = ("voc", "yolo", "coco")[kill % 3]
            image = images[fmt]
            pid = zygote.spawn("save", image, fmt)
            if kill % 2:  # half the kills land after a save completed, however loaded the machine
                zygote.wait_reported(1)
            time.sleep(rng.uniform(0.0, 0.12))  # a save takes tens of ms: hit every phase of it
            done = zygote.kill(pid)
            got = read_back(image, fmt)  # raises LabelFormatError on a torn file
            if done == 0 and (got == previous[fmt] or got is None):
                outcomes["before the first save"] += 1
            elif got is not None and same(got, generation_labels(done), fmt):
                outcomes["last reported save"] += 1
            elif got is not None and same(got, generation_labels(done + 1), fmt):
                outcomes["save done, not reported"] += 1
            else:
                pytest.fail(f"kill {kill} ({fmt}) after generation {done}: the file holds neither old nor new labels")
            if sidecar_path(image).exists():
                json.loads(sidecar_path(image).read_text())  # the provenance sidecar is whole JSON too
            previous[fmt] = got
    finally:
        zygote.close()
    print(f"{KILLS} kills: {outcomes}", file=sys.stderr)
    assert sum(outcomes.values()) == KILLS
    assert outcomes["last reported save"] > 0  # the kills really landed during save loops
