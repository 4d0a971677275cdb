"""Caption legibility: captions are laid out by priority (labels, then detections by score)
with no overlaps and inside the image; checked on geometry (caption rects), not pixels."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from app.canvas.captions import Caption, layout_captions, overlaps
from app.labelling.document import LabelDocument, ProjectClasses  # noqa: I001
from model.postprocess import Detections
from tests.app.canvas.test_canvas import HEIGHT, WIDTH, ScriptedChooser, show_canvas, show_detections


def _inside(rect, width: float, height: float) -> bool:  # noqa: ANN001
    return rect[0] >= -1e-6 and rect[1] >= -1e-6 and rect[2] <= width + 1e-6 and rect[3] <= height + 1e-6


# ----------------------------------------------------------------------------- pure layout
def test_a_weak_caption_never_covers_a_strong_one() -> None:
    strong = Caption("circle", (100, 100, 200, 200), 70, 14, 0.90)
    weak = Caption("square", (102, 101, 198, 205), 72, 14, 0.10)  # nearly the same box
    placed = layout_captions([weak, strong], scale=1.0, image_size=(400, 300))
    assert placed["circle"].placed and placed["circle"].rect == (100, 86, 170, 100)  # the usual spot, above
    assert not overlaps(placed["circle"].rect, placed["square"].rect)


def test_captions_at_the_image_edge_move_inside() -> None:
    top = Caption("top", (10, 0, 50, 40), 60, 14, 0.9)  # no room above the box
    right = Caption("right", (380, 100, 400, 140), 60, 14, 0.8)  # would stick out on the right
    placed = layout_captions([top, right], scale=1.0, image_size=(400, 300))
    assert placed["top"].rect == (10, 0, 70, 14)
    assert placed["right"].rect[2] == 400
    assert all(_inside(p.rect, 400, 300) for p in placed.values())


def test_a_caption_with_no_free_spot_is_hidden_not_stacked() -> None:
    captions = [Caption(i, (50, 50, 60, 60), 300, 14, 1.0 - i / 100) for i in range(40)]
    placed = layout_captions(captions, scale=1.0, image_size=(310, 100))
    shown = [k for k, p in placed.items() if p.placed]
    assert shown[:1] == [0] and len(shown) < 40
    assert all(not placed[k].placed for k in range(len(shown), 40))  # the weakest are the ones hidden


boxes = st.tuples(st.floats(0, 390), st.floats(0, 290), st.floats(1, 200), st.floats(1, 200)).map(
    lambda t: (t[0], t[1], min(t[0] + t[2], 400.0), min(t[1] + t[3], 300.0))
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(boxes, st.floats(10, 120), st.floats(0, 1)), max_size=40),
    st.sampled_from([0.25, 0.5, 1.0, 3.0]),
)
def test_placed_captions_never_overlap_and_stay_inside(specs, scale: float) -> None:  # noqa: ANN001
    captions = [Caption(i, box, width, 14.0, score) for i, (box, width, score) in enumerate(specs)]
    placed = layout_captions(captions, scale=scale, image_size=(400, 300))
    shown = [p.rect for p in placed.values() if p.placed]
    for a, b in itertools.combinations(shown, 2):
        assert not overlaps(a, b)
    for caption in captions:
        rect = placed[caption.key].rect
        if rect[2] - rect[0] <= 400 * scale and rect[3] - rect[1] <= 300 * scale:
            assert _inside(rect, 400 * scale, 300 * scale)
    # the strongest caption always gets its spot
    if captions:
        best = max(captions, key=lambda c: c.priority)
        assert placed[best.key].placed or all(c.priority == best.priority for c in captions[:1])


# ----------------------------------------------------------------------------- on the canvas
@pytest.fixture
def canvas(qtbot, tmp_path: Path):  # noqa: ANN001, ANN201
    document = LabelDocument(ProjectClasses(["circle", "square", "triangle"]))
    document.load(tmp_path / "photo.png", (WIDTH, HEIGHT), "voc")
    return show_canvas(qtbot, document, ScriptedChooser())


def _detections(rows) -> Detections:  # noqa: ANN001
    return Detections(
        boxes=np.array([r[0] for r in rows], np.float32).reshape(-1, 4),
        scores=np.array([r[1] for r in rows], np.float32),
        class_ids=np.array([r[2] for r in rows], np.int64),
        anchor_ids=np.arange(len(rows), dtype=np.int64) * 7,
        level_ids=np.zeros(len(rows), np.int64),
    )


def test_the_canvas_shows_the_strong_caption_and_keeps_weak_ones_apart(qtbot, canvas) -> None:  # noqa: ANN001
    dets = _detections(
        [
            ((100, 100, 200, 200), 0.90, 0),  # circle 0.90
            ((101, 100, 199, 201), 0.10, 1),  # square 0.10, almost the same box
            ((102, 102, 198, 198), 0.08, 2),
            ((360, 0, 400, 30), 0.50, 2),  # at the top-right corner of the image
        ]
    )
    show_detections(canvas, dets, ["circle", "square", "triangle"], model_name="m.onnx")
    rects = canvas.caption_rects()
    assert ("detection", 0) in rects
    assert rects[("detection", 0)][:2] == pytest.approx((100, 100 - (rects[("detection", 0)][3] - rects[("detection", 0)][1])))
    for a, b in itertools.combinations(rects.values(), 2):
        assert not overlaps(a, b)
    scale = canvas.zoom()
    assert all(_inside(r, WIDTH * scale, HEIGHT * scale) for r in rects.values())

    # a pile of weak detections on the same object: the ones with no free spot give way
    pile = _detections([((100, 100, 200, 200), 0.90, 0)] + [((100 + i, 100, 200 - i, 200), 0.3 - i / 100, 1) for i in range(12)])
    show_detections(canvas, pile, ["circle", "square", "triangle"], model_name="m.onnx")
    shown = canvas.caption_rects()
    for a, b in itertools.combinations(shown.values(), 2):
        assert not overlaps(a, b)
    hidden = set(canvas.caption_rects(shown_only=False)) - set(shown)
    assert hidden and ("detection", 0) in shown
    weakest_shown = min(float(pile.scores[i]) for _kind, i in shown)
    assert all(float(pile.scores[i]) <= weakest_shown for _kind, i in hidden)

    # a hidden caption shows while the mouse is over its box, and when it is selected
    key = max(hidden, key=lambda k: k[1])  # the weakest, the innermost box
    x1, y1, x2, y2 = (float(v) for v in pile.boxes[key[1]])
    QTest.mouseMove(canvas.viewport(), canvas.mapFromScene(QPointF((x1 + x2) / 2, (y1 + y2) / 2)))
    qtbot.waitUntil(lambda: key in canvas.caption_rects())
    QTest.mouseMove(canvas.viewport(), QPoint(2, 2))
    qtbot.waitUntil(lambda: key not in canvas.caption_rects())
    QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=canvas.mapFromScene(QPointF((x1 + x2) / 2, (y1 + y2) / 2)))
    assert canvas.selected_detection() == key[1]
    QTest.mouseMove(canvas.viewport(), QPoint(2, 2))
    assert key in canvas.caption_rects()


def test_label_captions_come_before_detection_captions(qtbot, canvas) -> None:  # noqa: ANN001
    document = canvas.document()
    document.add_box((100, 100, 200, 200), "triangle")
    show_detections(canvas, _detections([((100, 100, 200, 200), 0.99, 0)]), ["circle", "square", "triangle"])
    rects = canvas.caption_rects()
    label = rects[("label", 0)]
    assert label[1] < 100  # the label's caption has the usual spot above the box
    if ("detection", 0) in rects:
        assert not overlaps(label, rects[("detection", 0)])
