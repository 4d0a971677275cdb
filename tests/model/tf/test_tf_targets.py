"""Training targets follow the evaluation rule (model.evaluate.ground_truth): a label is
clipped to the image, before augmentation and again on the canvas, and one with no area in
the image is no target. Numpy only: no network, no training."""

from __future__ import annotations

import numpy as np
import pytest
from tf_helpers import TINY_CLASSES

from model.anchors import generate_anchors
from model.boxes import decode_boxes
from model.encoding import BACKGROUND, encode_targets
from model.labels import ImageLabels
from model.labels.annotation import Label
from model.tf.train import training_example

SIZE = 128
CLASSES = list(TINY_CLASSES)  # circle, square, triangle


@pytest.fixture(scope="module")
def anchors(tiny_config) -> np.ndarray:
    return generate_anchors((SIZE, SIZE), tiny_config.anchors)


@pytest.fixture(scope="module")
def variance(tiny_config) -> tuple[float, float, float, float]:
    return tiny_config.anchors.box_variance


def example(item: ImageLabels, image: np.ndarray, anchors, variance, *, seed: int = 0, jitter=(1.0, 1.0), flip=False):
    return training_example(
        item, image, class_names=CLASSES, anchors=anchors, variance=variance, size=SIZE,
        rng=np.random.default_rng(seed), jitter=jitter, flip=flip,
    )


def image_rows(canvas: np.ndarray) -> tuple[int, int]:
    """First and one-past-last canvas row the (non-black) image covers."""
    rows = np.nonzero(canvas.any(axis=(1, 2)))[0]
    return int(rows[0]), int(rows[-1]) + 1


def grey_image(width: int, height: int) -> np.ndarray:
    return np.full((height, width, 3), 128, np.uint8)


# A 128 x 64 image at 128 px without jitter: scale 1, x offset 0, a random y offset on
# black padding; the offset is read back from the canvas.


def test_a_label_partly_outside_the_image_is_clipped_to_it(anchors, variance) -> None:
    item = ImageLabels("x.png", 128, 64, labels=[
        Label(-30, 10, 40, 50, "circle"),  # reaches past the left border
        Label(90, 20, 168, 94, "square"),  # past the right border and down into the padding
    ])
    canvas, box_t, cls_t = example(item, grey_image(128, 64), anchors, variance, seed=3)
    top, bottom = image_rows(canvas)
    assert bottom - top == 64 and bottom < SIZE  # there is padding below the image

    expected = np.array([[0, 10 + top, 40, 50 + top], [90, 20 + top, 128, 64 + top]], np.float32)
    want_box_t, want_cls_t = encode_targets(expected, np.array([0, 1]), anchors, variance=variance)
    np.testing.assert_array_equal(cls_t, want_cls_t)
    np.testing.assert_array_equal(box_t, want_box_t)
    positive = cls_t >= 0
    assert set(np.unique(cls_t[positive])) == {0, 1}
    decoded = decode_boxes(box_t[positive], anchors[positive], variance=variance)
    assert (decoded[:, 1] >= top - 1e-3).all() and (decoded[:, 3] <= bottom + 1e-3).all()


def test_a_label_entirely_outside_the_image_is_no_target(anchors, variance) -> None:
    outside = [
        Label(10, 70, 50, 110, "circle"),  # below the image: on the padding of the canvas
        Label(-60, 5, -10, 40, "square"),  # left of the image
        Label(30, -50, 90, 0, "triangle"),  # touches the top border from outside: no area
    ]
    inside = Label(60, 10, 100, 50, "square")
    image = grey_image(128, 64)

    canvas, box_t, cls_t = example(ImageLabels("x.png", 128, 64, labels=outside), image, anchors, variance, seed=3)
    top, _ = image_rows(canvas)
    assert top + 70 < SIZE  # the first label would have landed on the canvas
    assert (cls_t == BACKGROUND).all()
    assert not box_t.any()

    # Beside a label inside the image, they add nothing.
    _, box_t, cls_t = example(ImageLabels("x.png", 128, 64, labels=[*outside, inside]), image, anchors, variance, seed=3)
    _, only_box_t, only_cls_t = example(ImageLabels("x.png", 128, 64, labels=[inside]), image, anchors, variance, seed=3)
    np.testing.assert_array_equal(cls_t, only_cls_t)
    np.testing.assert_array_equal(box_t, only_box_t)
    assert (cls_t == 1).any()


def test_clipped_to_the_image_itself_when_its_size_is_not_recorded(anchors, variance) -> None:
    """ground_truth cannot clip a label of an image of unknown size (0 x 0); the
    augmentation clips it to the decoded image all the same."""
    labels = [Label(-30, 10, 40, 50, "circle"), Label(90, 20, 168, 94, "square"), Label(10, 70, 50, 110, "triangle")]
    image = grey_image(128, 64)
    _, box_t, cls_t = example(ImageLabels("x.png", 0, 0, labels=labels), image, anchors, variance, seed=3)
    _, want_box_t, want_cls_t = example(ImageLabels("x.png", 128, 64, labels=labels), image, anchors, variance, seed=3)
    np.testing.assert_array_equal(cls_t, want_cls_t)
    np.testing.assert_array_equal(box_t, want_box_t)


@pytest.mark.parametrize("seed", range(8))
def test_with_flip_jitter_and_crop_every_target_stays_on_the_image(anchors, variance, seed) -> None:
    rng = np.random.default_rng(100 + seed)
    width, height = int(rng.integers(60, 220)), int(rng.integers(60, 220))
    labels = []
    for _ in range(6):
        x1, y1 = rng.uniform(-0.5, 1.0) * width, rng.uniform(-0.5, 1.0) * height
        labels.append(Label(x1, y1, x1 + rng.uniform(10, 0.8 * width), y1 + rng.uniform(10, 0.8 * height), CLASSES[seed % 3]))
    item = ImageLabels("x.png", width, height, labels=labels)
    canvas, box_t, cls_t = example(item, grey_image(width, height), anchors, variance, seed=seed, jitter=(0.6, 1.4), flip=True)

    covered = np.nonzero(canvas.any(axis=2))
    y0, y1, x0, x1 = covered[0].min(), covered[0].max() + 1, covered[1].min(), covered[1].max() + 1
    positive = cls_t >= 0
    decoded = decode_boxes(box_t[positive], anchors[positive], variance=variance)
    # The resized image covers round(side * scale) pixels of the side * scale the boxes
    # were scaled by: up to half a pixel apart.
    tol = 0.5 + 1e-3
    assert (decoded[:, 0] >= x0 - tol).all() and (decoded[:, 2] <= x1 + tol).all()
    assert (decoded[:, 1] >= y0 - tol).all() and (decoded[:, 3] <= y1 + tol).all()
    assert (decoded[:, 2:] - decoded[:, :2] >= 2 - 1e-3).all()


# Labels inside the image (one touching the bottom border, one of an unknown class, one
# without width) on a 160 x 120 image, default jitter and flip at 128 px. The boxes are
# those the pipeline gave before clipping to the image was added, for three seeds:
# padding (0), a crop at the left border (1), a flip (2).
NORMAL_ITEM = ImageLabels("x.png", 160, 120, labels=[
    Label(10, 20, 60, 70, "circle"), Label(100, 30, 150, 110, "square"), Label(40, 80, 90, 118, "triangle"),
    Label(5, 5, 30, 30, "dog"), Label(70, 10, 70, 40, "circle"),
])
NORMAL_BOXES = {
    0: [[12.679146766662598, 15.358293533325195, 46.07488250732422, 48.7540283203125],
        [72.79146575927734, 22.03744125366211, 106.18720245361328, 75.47061920166016],
        [32.71658706665039, 55.43317413330078, 66.11231994628906, 80.81393432617188]],
    1: [[0.0, 20.803709030151367, 34.411128997802734, 67.81298065185547],
        [72.01854705810547, 30.205564498901367, 119.02781677246094, 105.42040252685547],
        [15.607418060302734, 77.21483612060547, 62.61669158935547, 112.94188690185547]],
    2: [[75.93964385986328, 51.587928771972656, 109.90946960449219, 85.55775451660156],
        [14.793964385986328, 58.381893157958984, 48.76378631591797, 112.73361206054688],
        [55.5577507019043, 92.35171508789062, 89.52757263183594, 118.16877746582031]],
}


@pytest.mark.parametrize("seed", sorted(NORMAL_BOXES))
def test_labels_inside_the_image_give_the_same_targets_as_before(anchors, variance, seed) -> None:
    image = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    _, box_t, cls_t = example(NORMAL_ITEM, image, anchors, variance, seed=seed, jitter=(0.7, 1.2), flip=True)
    want_box_t, want_cls_t = encode_targets(np.array(NORMAL_BOXES[seed], np.float32), np.array([0, 1, 2]), anchors, variance=variance)
    np.testing.assert_array_equal(cls_t, want_cls_t)
    np.testing.assert_array_equal(box_t, want_box_t)
