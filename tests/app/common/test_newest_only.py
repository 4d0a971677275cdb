"""app.common.worker.NewestOnly: one job at a time, only the newest request waits, and only
the newest request's result is reported."""

from __future__ import annotations

import threading

import pytest

from app.common.worker import NewestOnly


def gated(gate: threading.Event, value: object) -> object:
    assert gate.wait(10), "the test never opened the gate"
    return value


def failing(message: str) -> object:
    raise ValueError(message)


@pytest.fixture
def runner(qtbot):  # noqa: ANN001, ANN201
    jobs = NewestOnly()
    yield jobs
    jobs.close(5000)


def test_only_the_newest_request_runs_after_the_busy_one_and_reports(qtbot, runner: NewestOnly) -> None:  # noqa: ANN001
    gate = threading.Event()
    results: list[object] = []
    runner.finished.connect(results.append)
    ran: list[str] = []
    runner.submit(lambda: ran.append("first") or gated(gate, "first"))
    runner.submit(lambda: ran.append("second") or "second")  # superseded while waiting: never runs
    runner.submit(lambda: ran.append("third") or "third")
    gate.set()
    qtbot.waitUntil(lambda: results == ["third"], timeout=5000)
    assert runner.pool.waitForDone(5000)
    qtbot.wait(50)  # nothing else arrives
    assert results == ["third"] and ran == ["first", "third"]


def test_a_lone_request_reports_its_result_and_its_error(qtbot, runner: NewestOnly) -> None:  # noqa: ANN001
    results: list[object] = []
    errors: list[BaseException] = []
    runner.finished.connect(results.append)
    runner.errored.connect(errors.append)
    runner.submit(lambda: 42)
    qtbot.waitUntil(lambda: results == [42], timeout=5000)
    runner.submit(failing, "bad input")
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=5000)
    assert isinstance(errors[0], ValueError) and str(errors[0]) == "bad input"


def test_invalidate_drops_the_running_jobs_result(qtbot, runner: NewestOnly) -> None:  # noqa: ANN001
    gate = threading.Event()
    results: list[object] = []
    runner.finished.connect(results.append)
    runner.submit(gated, gate, "stale")
    runner.invalidate()
    gate.set()
    assert runner.pool.waitForDone(5000)
    qtbot.wait(50)
    assert results == []
    runner.submit(lambda: "fresh")  # the runner is free again
    qtbot.waitUntil(lambda: results == ["fresh"], timeout=5000)


def test_close_withdraws_the_waiting_job_and_ignores_results(qtbot) -> None:  # noqa: ANN001
    runner = NewestOnly()
    gate = threading.Event()
    results: list[object] = []
    ran: list[str] = []
    runner.finished.connect(results.append)
    runner.submit(gated, gate, "running")
    runner.submit(lambda: ran.append("waiting") or "waiting")
    runner.close()
    gate.set()
    assert runner.pool.waitForDone(5000)
    qtbot.wait(50)
    assert results == [] and ran == []
