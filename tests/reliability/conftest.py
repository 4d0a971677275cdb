"""Reliability suite: bad input, faults, and no data lost.

Every test records the cases it tried with the session-wide ``cases`` fixture
(``cases.add("images", "truncated JPEG")``); fuzz tests count each example they run. At the
end of the run a table of cases per category is printed (``pytest_terminal_summary``),
followed by the tests elsewhere in ``tests/`` that this suite counts by reference instead of
repeating them (``REFERENCES``; ``test_reliability_references.py`` checks they still exist).
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass

import pytest

CATEGORIES = {
    "images": "1. images",
    "labels": "2. label files",
    "models": "3. models",
    "runtime": "4. runtime faults",
    "data": "5. data safety",
}


@dataclass(frozen=True)
class Reference:
    """A test outside this folder that already covers a reliability case."""

    category: str
    test: str  # "tests/app/test_x.py::test_name"
    cases: int
    what: str


REFERENCES = (
    Reference(
        "models",
        "tests/app/window/test_main_window.py::test_broken_model_shows_dialog_and_keeps_previous",
        1,
        "app: a broken model -> one dialog, the previous model stays",
    ),
    Reference(
        "images",
        "tests/app/window/test_main_window.py::test_broken_image_is_a_status_message_not_a_dialog",
        1,
        "app: a broken image -> a status-bar message, no dialog",
    ),
    Reference(
        "runtime",
        "tests/app/window/test_main_window.py::test_switching_fast_never_shows_stale_detections",
        8,
        "app: 8 image switches faster than detection, never a stale box",
    ),
    Reference(
        "runtime",
        "tests/app/jobs/test_workers.py::test_controller_drops_late_results_but_caches_them",
        1,
        "controller: switching during a run drops the late result",
    ),
    Reference(
        "runtime", "tests/app/jobs/test_workers.py::test_long_job_gets_progress_and_cancel", 1, "worker: a long job cancelled mid-way stops at its next check"
    ),
    Reference(
        "data",
        "tests/app/labelling/test_save_kill.py::test_killing_a_saving_process_never_leaves_a_torn_label_file",
        51,
        "51 SIGKILLs of a saving process (VOC/YOLO/COCO): never a torn file",
    ),
    Reference(
        "data",
        "tests/app/labelling/test_journal.py::test_recovery_after_killing_an_editing_process",
        12,
        "12 SIGKILLs of an editing process: unsaved edits recovered",
    ),
    Reference(
        "data", "tests/app/labelling/test_journal.py::test_a_torn_last_line_is_skipped_and_appending_goes_on", 1, "a journal line torn by a kill is skipped"
    ),
    Reference(
        "data",
        "tests/app/labelling/test_labelimg_workflow.py::test_saving_keeps_what_labelimg_wrote",
        1,
        "app save of a LabelImg file: unedited byte for byte, then edited: verified, pose, occluded, tags, path kept",
    ),
    Reference(
        "data",
        "tests/model/test_cli_existing_labels.py::test_detect_skips_images_whose_labels_exist_and_says_so",
        1,
        "detect --out on the image folder: the LabelImg file kept byte for byte, the skip said",
    ),
    Reference(
        "data",
        "tests/app/labelling/test_journal.py::test_recover_applies_the_unsaved_edits_as_one_undoable_step",
        1,
        "recovery re-applies unsaved edits as one undoable step",
    ),
)


class CaseCounter:
    """Thread-safe tally of reliability cases tried, per category and kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.kinds: dict[str, Counter[str]] = defaultdict(Counter)

    def add(self, category: str, kind: str, n: int = 1) -> None:
        if category not in CATEGORIES:
            raise ValueError(f"unknown reliability category {category!r}; use one of {list(CATEGORIES)}")
        with self._lock:
            self.kinds[category][kind] += n

    def total(self, category: str) -> int:
        return sum(self.kinds[category].values())

    def __bool__(self) -> bool:
        return any(self.kinds.values())


COUNTER = CaseCounter()


@pytest.fixture(scope="session")
def cases() -> CaseCounter:
    """The session-wide tally: ``cases.add(category, kind[, n])`` for every case tried."""
    return COUNTER


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    if not COUNTER:
        return
    write = terminalreporter.write_line
    terminalreporter.write_sep("=", "reliability: cases tried")
    grand = 0
    for category, title in CATEGORIES.items():
        kinds = COUNTER.kinds.get(category, Counter())
        total = sum(kinds.values())
        grand += total
        write(f"{title:<20} {total:>7,}")
        for kind, n in sorted(kinds.items(), key=lambda item: (-item[1], item[0])):
            write(f"    {kind:<58} {n:>7,}")
    write(f"{'total':<20} {grand:>7,}")
    write("counted by reference (run elsewhere in tests/, not repeated here):")
    for ref in REFERENCES:
        write(f"    {CATEGORIES[ref.category]:<18} {ref.cases:>4}  {ref.what}")
        write(f"        {ref.test}")
