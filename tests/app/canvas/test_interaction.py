"""The canvas's mouse and key decisions (app.canvas.interaction), on plain values: no widget,
no events. Image points are floats in image pixels, view positions whole viewport pixels."""

from __future__ import annotations

import pytest

from app.canvas import interaction
from app.canvas.interaction import (
    CREATE,
    MOVE,
    PAN,
    RESIZE,
    RUBBER,
    Drag,
    KeyCommand,
    Targets,
    ViewMap,
    band_selection,
    boxes_intersect,
    caption_key_at,
    cursor_role,
    cycle_row,
    detection_at,
    drag_step,
    handle_at,
    key_command,
    label_at,
    min_zoom,
    nudge_delta,
    press,
    release,
    wheel_factor,
    zoom_clamped,
)
from app.labelling.geometry import HANDLES

BOUNDS = (400.0, 300.0)
BOX_A = (50.0, 60.0, 150.0, 140.0)
BOX_B = (220.0, 100.0, 300.0, 200.0)
INNER = (70.0, 80.0, 90.0, 100.0)  # inside BOX_A
DETECTION = (320.0, 20.0, 380.0, 90.0)


def targets(*, selection: tuple[int, ...] = (), zoom: float = 1.0, hidden: bool = False) -> Targets:
    """Labels A and B, one detection, image at the viewport origin."""
    return Targets(labels=[BOX_A, BOX_B], detections={3: DETECTION}, selection=selection, view=ViewMap(zoom=zoom), hidden=hidden)


def at(x: float, y: float, zoom: float = 1.0) -> dict:
    """``point`` and ``pos`` keywords of an image point with the image at the viewport origin."""
    return {"point": (x, y), "pos": ViewMap(zoom=zoom).to_view(x, y)}


# ----------------------------------------------------------------------------- hit-testing
def test_view_map_rounds_half_away_from_zero_as_qt_does() -> None:
    view = ViewMap(zoom=2.0, dx=-10.0, dy=5.0)
    assert view.to_view(10.0, 20.0) == (10, 45)
    assert view.to_view(6.25, 0.0) == (3, 5)  # 2.5 -> 3 (Python's round gives 2)
    assert view.to_view(3.75, -5.25) == (-3, -6)  # -2.5 -> -3, -5.5 -> -6


def test_the_smallest_label_under_the_point_wins_so_nested_boxes_stay_reachable() -> None:
    hits = Targets(labels=[BOX_A, INNER, BOX_B])
    assert label_at(hits, (80.0, 90.0)) == 1
    assert label_at(hits, (60.0, 70.0)) == 0
    assert label_at(hits, (150.0, 140.0)) == 0  # edges belong to the box
    assert label_at(hits, (10.0, 10.0)) is None
    assert detection_at(targets(), (350.0, 50.0)) == 3  # by detection index, not position


def test_hidden_boxes_are_never_hit() -> None:
    hidden = targets(selection=(0,), hidden=True)
    assert label_at(hidden, (100.0, 100.0)) is None
    assert detection_at(hidden, (350.0, 50.0)) is None
    assert handle_at(hidden, (50, 60)) is None


def test_handles_are_hit_within_the_tolerance_in_view_pixels_whatever_the_zoom() -> None:
    assert handle_at(targets(selection=(0,)), (56, 66)) == (0, "tl")  # 6 px off: still the corner
    assert handle_at(targets(selection=(0,)), (57, 60)) is None  # 7 px off
    assert handle_at(targets(selection=(0,)), (100, 140)) == (0, "b")  # the bottom edge's middle
    assert handle_at(targets(), (50, 60)) is None  # only the selected labels have handles
    zoomed = targets(selection=(0,), zoom=4.0)
    assert handle_at(zoomed, (206, 240)) == (0, "tl")  # 1.5 image px = 6 view px
    assert handle_at(zoomed, (208, 240)) is None  # 2 image px = 8 view px


def test_the_nearest_handle_wins() -> None:
    tiny = Targets(labels=[(10.0, 10.0, 14.0, 14.0)], selection=(0,))  # every handle within 6 px
    assert handle_at(tiny, (14, 14)) == (0, "br")
    assert handle_at(tiny, (12, 10)) == (0, "t")
    assert handle_at(tiny, (13, 13)) == (0, "r")  # as near "r" as "br": the first clockwise from top-left


def test_a_hovered_label_shows_its_caption_before_a_detection_does() -> None:
    hits = Targets(labels=[BOX_A], detections={0: BOX_A, 1: DETECTION})
    assert caption_key_at(hits, (100.0, 100.0)) == ("label", 0)
    assert caption_key_at(hits, (350.0, 50.0)) == ("detection", 1)
    assert caption_key_at(hits, (5.0, 5.0)) is None


def test_cursor_roles_in_order_of_precedence() -> None:
    assert cursor_role(panning=True, space_down=True, creating=True, handle="tl", over_label=True) == "pan_active"
    assert cursor_role(panning=False, space_down=True, creating=True, handle="tl", over_label=True) == "pan_ready"
    assert cursor_role(panning=False, space_down=False, creating=True, handle="tl", over_label=True) == "create"
    assert cursor_role(panning=False, space_down=False, creating=False, handle="tl", over_label=True) == "resize_fdiag"
    assert cursor_role(panning=False, space_down=False, creating=False, handle=None, over_label=True) == "move"
    assert cursor_role(panning=False, space_down=False, creating=False, handle=None, over_label=False) == "arrow"


@pytest.mark.parametrize(
    ("handle", "role"),
    [("tl", "resize_fdiag"), ("br", "resize_fdiag"), ("tr", "resize_bdiag"), ("bl", "resize_bdiag"),
     ("t", "resize_vertical"), ("b", "resize_vertical"), ("l", "resize_horizontal"), ("r", "resize_horizontal")],
)
def test_each_handle_has_the_double_arrow_of_its_direction(handle: str, role: str) -> None:
    assert interaction.HANDLE_ROLES[handle] == role


# ----------------------------------------------------------------------------- press
def test_a_press_on_a_handle_resizes_rather_than_moves_the_box_it_lies_on() -> None:
    result = press(targets(selection=(0,)), button="left", **at(51.0, 61.0))  # the top-left corner, inside the box
    assert result.drag is not None and result.drag.kind == RESIZE
    assert (result.drag.rows, result.drag.boxes, result.drag.handle) == ((0,), (BOX_A,), "tl")
    assert result.drag.grab_offset == (-1.0, -1.0)  # handle - press: the corner does not jump to the pointer
    assert result.selection is None and result.detection is None


def test_a_press_on_a_body_selects_it_and_moves_the_selection() -> None:
    result = press(targets(), button="left", **at(100.0, 100.0))
    assert result.selection == [0]
    assert result.drag == Drag(MOVE, (100, 100), (100.0, 100.0), rows=(0,), boxes=(BOX_A,))
    kept = press(targets(selection=(0, 1)), button="left", **at(250.0, 150.0))  # already selected: the group moves
    assert kept.selection is None and kept.drag is not None and kept.drag.rows == (0, 1) and kept.drag.boxes == (BOX_A, BOX_B)


def test_ctrl_click_toggles_a_label_in_the_selection() -> None:
    added = press(targets(selection=(0,)), button="left", ctrl=True, **at(250.0, 150.0))
    assert added.selection == [0, 1] and added.drag is not None and added.drag.rows == (0, 1)
    removed = press(targets(selection=(0, 1)), button="left", ctrl=True, **at(250.0, 150.0))
    assert removed.selection == [0] and removed.drag is None  # taken out: nothing to drag
    on_handle = press(targets(selection=(0,)), button="left", ctrl=True, **at(50.0, 60.0))
    assert on_handle.selection == [] and on_handle.drag is None  # Ctrl ignores handles: a toggle


def test_a_press_on_empty_space_in_create_mode_starts_a_new_box() -> None:
    result = press(targets(selection=(0,)), button="left", creating=True, **at(100.0, 100.0))  # even over a label
    assert result.drag == Drag(CREATE, (100, 100), (100.0, 100.0))
    assert result.selection is None and result.detection is None


def test_a_press_on_empty_space_starts_a_rubber_band_and_clears_the_selection() -> None:
    result = press(targets(selection=(0,)), button="left", **at(10.0, 280.0))
    assert result.drag == Drag(RUBBER, (10, 280), (10.0, 280.0))
    assert result.selection == [] and result.detection == -1
    with_ctrl = press(targets(selection=(0,)), button="left", ctrl=True, **at(10.0, 280.0))
    assert with_ctrl.drag is not None and with_ctrl.drag.rows == (0,)  # Ctrl keeps the selection and adds to it
    assert with_ctrl.selection is None


def test_a_press_on_a_detection_selects_it() -> None:
    result = press(targets(selection=(1,)), button="left", **at(350.0, 50.0))
    assert result.detection == 3 and result.selection == []
    assert result.drag is not None and result.drag.kind == RUBBER


@pytest.mark.parametrize(("button", "space_down"), [("middle", False), ("right", False), ("left", True)])
def test_middle_right_and_space_left_presses_pan(button: str, space_down: bool) -> None:
    result = press(targets(), button=button, space_down=space_down, dragging=True, creating=True, **at(100.0, 100.0))
    assert result.drag == Drag(PAN, (100, 100), (100.0, 100.0), last_view=(100, 100))


def test_a_left_press_during_a_drag_or_another_button_does_nothing() -> None:
    assert press(targets(), button="left", dragging=True, **at(100.0, 100.0)) == interaction.Press(None)
    assert press(targets(), button="back", **at(100.0, 100.0)) == interaction.Press(None)


# ----------------------------------------------------------------------------- move
def test_a_move_within_the_click_slop_leaves_the_boxes_alone() -> None:
    drag = Drag(MOVE, (100, 100), (100.0, 100.0), rows=(0,), boxes=(BOX_A,))
    step = drag_step(drag, point=(102.0, 101.0), pos=(102, 101), bounds=BOUNDS)  # 3 px: still a click
    assert not step.drag.moved and step.boxes == ()
    step = drag_step(step.drag, point=(102.0, 102.0), pos=(102, 102), bounds=BOUNDS)  # 4 px: a drag
    assert step.drag.moved and step.boxes == ((0, (52.0, 62.0, 152.0, 142.0)),)
    back = drag_step(step.drag, point=(100.0, 100.0), pos=(100, 100), bounds=BOUNDS)
    assert back.drag.moved and back.boxes == ((0, BOX_A),)  # once a drag, always a drag


def test_moving_several_boxes_moves_them_by_whole_pixels_and_keeps_them_inside() -> None:
    drag = Drag(MOVE, (100, 100), (100.0, 100.0), rows=(0, 1), boxes=(BOX_A, BOX_B), moved=True)
    step = drag_step(drag, point=(300.4, 119.6), pos=(300, 120), bounds=BOUNDS)
    # dx = 200 would push B past the right edge: both move by the 100 px that fit
    assert step.boxes == ((0, (150.0, 80.0, 250.0, 160.0)), (1, (320.0, 120.0, 400.0, 220.0)))


@pytest.mark.parametrize("handle", HANDLES)
def test_resizing_by_each_handle_keeps_the_opposite_edges(handle: str) -> None:
    x1, y1, x2, y2 = BOX_A
    x = 20.0 if "l" in handle else 180.0  # outwards from the box on each side the handle owns
    y = 30.0 if handle.startswith("t") else 190.0
    drag = Drag(RESIZE, (0, 0), (0.0, 0.0), rows=(0,), boxes=(BOX_A,), handle=handle, moved=True)
    [(row, box)] = drag_step(drag, point=(x, y), pos=(0, 0), bounds=BOUNDS).boxes
    assert row == 0
    assert box == (
        x if "l" in handle else x1,
        y if handle.startswith("t") else y1,
        x if "r" in handle else x2,
        y if handle.startswith("b") else y2,
    )


def test_a_resize_keeps_the_grab_offset_and_stops_at_one_pixel() -> None:
    drag = Drag(RESIZE, (0, 0), (149.0, 139.0), rows=(0,), boxes=(BOX_A,), handle="br", grab_offset=(1.0, 1.0), moved=True)
    step = drag_step(drag, point=(169.0, 174.0), pos=(0, 0), bounds=BOUNDS)
    assert step.boxes == ((0, (50.0, 60.0, 170.0, 175.0)),)
    step = drag_step(drag, point=(0.0, 0.0), pos=(0, 0), bounds=BOUNDS)  # past the opposite corner: no flip
    assert step.boxes == ((0, (50.0, 60.0, 51.0, 61.0)),)


def test_a_create_drag_previews_the_box_spanned_backwards_and_clamped() -> None:
    drag = Drag(CREATE, (380, 250), (380.0, 250.0))
    assert drag_step(drag, point=(430.0, 330.0), pos=(430, 330), bounds=BOUNDS).preview == (380.0, 250.0, 400.0, 300.0)
    assert drag_step(drag, point=(300.2, 200.7), pos=(300, 201), bounds=BOUNDS).preview == (300.0, 201.0, 380.0, 250.0)
    assert drag_step(drag, point=(380.3, 290.0), pos=(380, 290), bounds=BOUNDS).preview is None  # thinner than 1 px


def test_a_pan_scrolls_by_the_pointer_moves() -> None:
    drag = Drag(PAN, (300, 200), (300.0, 200.0), last_view=(300, 200))
    step = drag_step(drag, point=(0.0, 0.0), pos=(250, 210), bounds=BOUNDS)
    assert step.scroll == (-50, 10) and step.drag.last_view == (250, 210)
    assert drag_step(step.drag, point=(0.0, 0.0), pos=(240, 210), bounds=BOUNDS).scroll == (-10, 0)


def test_a_rubber_band_spans_from_the_press_to_the_pointer() -> None:
    drag = Drag(RUBBER, (20, 20), (20.0, 20.0))
    assert drag_step(drag, point=(240.0, 120.0), pos=(240, 120), bounds=BOUNDS).band == ((20, 20), (240, 120))


# ----------------------------------------------------------------------------- release
def test_releasing_a_move_commits_the_rows_as_one_named_step() -> None:
    one = release(Drag(MOVE, (0, 0), (5.0, 6.0), rows=(0,), boxes=(BOX_A,), moved=True), button="left", point=(9.0, 9.0), bounds=BOUNDS)
    assert (one.ended, one.kind, one.rows, one.text, one.click) == (True, MOVE, (0,), "Move Box", None)
    two = release(Drag(MOVE, (0, 0), (5.0, 6.0), rows=(0, 1), boxes=(BOX_A, BOX_B)), button="left", point=(5.0, 6.0), bounds=BOUNDS)
    assert two.text == "Move Boxes" and two.click == (5.0, 6.0)  # never moved: a click too
    resize = release(Drag(RESIZE, (0, 0), (5.0, 6.0), rows=(1,), boxes=(BOX_B,), handle="t", moved=True), button="left",
                     point=(0.0, 0.0), bounds=BOUNDS)
    assert resize.text == "Resize Box" and resize.rows == (1,)


def test_releasing_a_create_drag_gives_the_box_and_a_click_keeps_drawing() -> None:
    drawn = release(Drag(CREATE, (0, 0), (50.0, 60.0), moved=True), button="left", point=(150.0, 140.0), bounds=BOUNDS)
    assert drawn.new_box == BOX_A and drawn.click is None
    clicked = release(Drag(CREATE, (0, 0), (50.0, 60.0)), button="left", point=(52.0, 61.0), bounds=BOUNDS)
    assert clicked.ended and clicked.kind == CREATE and clicked.new_box is None and clicked.click is None


def test_another_button_coming_up_does_not_end_a_left_drag() -> None:
    result = release(Drag(MOVE, (0, 0), (5.0, 6.0), rows=(0,), boxes=(BOX_A,)), button="right", point=(5.0, 6.0), bounds=BOUNDS)
    assert not result.ended


def test_a_right_click_without_a_pan_opens_the_context_menu() -> None:
    assert release(Drag(PAN, (0, 0), (0.0, 0.0)), button="right", point=(0.0, 0.0), bounds=BOUNDS).context_menu
    panned = release(Drag(PAN, (0, 0), (0.0, 0.0), moved=True), button="right", point=(0.0, 0.0), bounds=BOUNDS)
    assert panned.ended and not panned.context_menu
    middle = release(Drag(PAN, (0, 0), (0.0, 0.0)), button="middle", point=(0.0, 0.0), bounds=BOUNDS)
    assert middle.ended and not middle.context_menu


def test_a_rubber_band_selects_what_it_touches_plus_the_rows_kept_by_ctrl() -> None:
    moved = release(Drag(RUBBER, (20, 20), (20.0, 20.0), rows=(1,), moved=True), button="left", point=(0.0, 0.0), bounds=BOUNDS)
    assert moved.select_band and moved.click is None
    click = release(Drag(RUBBER, (20, 20), (20.0, 20.0)), button="left", point=(0.0, 0.0), bounds=BOUNDS)
    assert not click.select_band and click.click == (20.0, 20.0)
    labels = [BOX_A, BOX_B, INNER]
    assert band_selection((), labels, (20.0, 20.0, 60.0, 70.0)) == [0]
    assert band_selection((1,), labels, (20.0, 20.0, 75.0, 85.0)) == [0, 1, 2]
    assert band_selection((), labels, (150.0, 0.0, 220.0, 300.0)) == []  # touching edges do not count


def test_boxes_intersect_like_qrectf() -> None:
    assert boxes_intersect((0.0, 0.0, 10.0, 10.0), (9.0, 9.0, 20.0, 20.0))
    assert not boxes_intersect((0.0, 0.0, 10.0, 10.0), (10.0, 0.0, 20.0, 10.0))
    assert not boxes_intersect((5.0, 0.0, 5.0, 10.0), (0.0, 0.0, 10.0, 10.0))  # an empty box


# ----------------------------------------------------------------------------- keys
def test_escape_cancels_drawing_or_dragging_else_clears_the_selection() -> None:
    assert key_command("escape", busy=True) == KeyCommand("cancel")
    assert key_command("escape") == KeyCommand("clear")


def test_tab_cycles_forwards_and_shift_tab_backwards_not_with_ctrl() -> None:
    assert key_command("tab") == KeyCommand("cycle", step=1)
    assert key_command("tab", frozenset({"shift"})) == KeyCommand("cycle", step=-1)
    assert key_command("backtab", frozenset({"shift"})) == KeyCommand("cycle", step=-1)
    assert key_command("tab", frozenset({"ctrl"})) is None


def test_arrows_nudge_the_selection_by_one_and_ten_with_shift() -> None:
    assert nudge_delta("right") == (1, 0) and nudge_delta("up", shift=True) == (0, -10)
    assert key_command("left", frozenset({"shift"}), has_selection=True) == KeyCommand("nudge", delta=(-10, 0))
    assert key_command("down", has_selection=True) == KeyCommand("nudge", delta=(0, 1))
    assert key_command("down") is None  # nothing selected
    assert key_command("down", has_selection=True, dragging=True) is None
    assert key_command("down", frozenset({"ctrl"}), has_selection=True) is None


def test_undo_and_redo_keys_need_exactly_their_modifiers() -> None:
    assert key_command("z", frozenset({"ctrl"})) == KeyCommand("undo")
    assert key_command("z", frozenset({"ctrl", "shift"})) == KeyCommand("redo")
    assert key_command("y", frozenset({"ctrl"})) == KeyCommand("redo")
    assert key_command("z", frozenset({"ctrl", "alt"})) is None
    assert key_command("z") is None


def test_cycling_wraps_around_and_starts_at_either_end() -> None:
    assert cycle_row([], 3, 1) == 0 and cycle_row([], 3, -1) == 2
    assert cycle_row([0, 2], 3, 1) == 0  # after the last selected, wrapping
    assert cycle_row([0, 2], 3, -1) == 2  # before the first selected, wrapping
    assert cycle_row([1], 3, 1) == 2
    assert cycle_row([], 0, 1) is None


# ----------------------------------------------------------------------------- zoom
def test_zoom_limits_and_wheel_steps() -> None:
    assert wheel_factor(240, 1.25) == pytest.approx(1.5625) and wheel_factor(-120, 1.25) == pytest.approx(0.8)
    assert min_zoom((400.0, 300.0), (640.0, 480.0)) == pytest.approx(0.8)  # half the fit (1.6)
    assert min_zoom((100.0, 100.0), (640.0, 480.0)) == 1.0  # never above 1:1
    assert min_zoom((0.0, 0.0), (640.0, 480.0)) == 0.01  # no image
    assert zoom_clamped(100.0, lowest=0.5) == interaction.MAX_ZOOM
    assert zoom_clamped(0.1, lowest=0.5) == 0.5 and zoom_clamped(2.0, lowest=0.5) == 2.0
