"""`BackgroundListener`: a slow or failing handler never holds up the caller;
what cannot be queued or handled is counted and logged; flush and close wait,
within their timeouts."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from dag_provenance import InvalidInputError
from dag_provenance.events import BackgroundListener, ChangeEvent, RunStatusChanged, in_background

AT = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def change(n: int) -> RunStatusChanged:
    return RunStatusChanged(f"run-{n}", "paused", AT)


class Gate:
    """A handler that blocks until opened, keeping what it handled."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.entered = threading.Event()
        self.handled: list[ChangeEvent] = []

    def __call__(self, event: ChangeEvent) -> None:
        self.entered.set()
        self.opened.wait()
        self.handled.append(event)


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate()
    yield g
    g.opened.set()  # never leave a worker thread blocked


def test_the_caller_returns_while_the_handler_is_still_blocked(gate: Gate) -> None:
    listener = BackgroundListener(gate, max_queue=100)
    for n in range(50):
        listener(change(n))  # returns at once: the handler has not finished one
    assert gate.entered.wait(5)
    assert gate.handled == []
    gate.opened.set()
    assert listener.flush(timeout=10)
    assert gate.handled == [change(n) for n in range(50)]
    assert (listener.handled, listener.dropped, listener.failed) == (50, 0, 0)
    assert listener.close()


def test_a_full_queue_drops_counts_and_logs(gate: Gate, caplog: pytest.LogCaptureFixture) -> None:
    listener = BackgroundListener(gate, max_queue=3)
    listener(change(0))
    assert gate.entered.wait(5)  # the worker holds event 0; the queue is empty
    with caplog.at_level(logging.WARNING, logger="dag_provenance.events"):
        for n in range(1, 7):
            listener(change(n))
    assert listener.dropped == 3
    assert "queue is full" in caplog.text and "run-6" in caplog.text
    gate.opened.set()
    assert listener.close(timeout=10)
    assert gate.handled == [change(n) for n in range(4)]


def test_a_failing_handler_is_counted_and_the_next_events_still_handled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handled: list[ChangeEvent] = []

    def sometimes(event: ChangeEvent) -> None:
        if event.run_id == "run-1":
            raise RuntimeError("backend said no")
        handled.append(event)

    listener = in_background(sometimes)
    with caplog.at_level(logging.ERROR, logger="dag_provenance.events"):
        for n in range(3):
            listener(change(n))
        assert listener.flush()
    assert handled == [change(0), change(2)]
    assert (listener.handled, listener.failed) == (2, 1)
    assert "backend said no" in caplog.text
    listener.close()


def test_flush_and_close_give_up_after_their_timeout(gate: Gate) -> None:
    listener = BackgroundListener(gate)
    listener(change(0))
    listener(change(1))
    assert gate.entered.wait(5)
    assert listener.flush(timeout=0.05) is False
    assert listener.close(timeout=0.05) is False
    gate.opened.set()
    assert listener.close(timeout=10)  # closing again waits for the rest
    assert gate.handled == [change(0), change(1)]


def test_events_after_close_are_dropped_not_queued(caplog: pytest.LogCaptureFixture) -> None:
    handled: list[ChangeEvent] = []
    listener = BackgroundListener(handled.append)
    assert listener.close()
    with caplog.at_level(logging.WARNING, logger="dag_provenance.events"):
        listener(change(9))
    assert listener.dropped == 1 and handled == []
    assert "closed" in caplog.text


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"max_queue": 0}, "max_queue"),
        ({"max_queue": 2.5}, "max_queue"),
        ({"latency": 0}, "latency"),
        ({"latency": "soon"}, "latency"),
    ],
)
def test_bad_options_are_refused_by_name(options: dict[str, object], named: str) -> None:
    with pytest.raises(InvalidInputError, match=named):
        BackgroundListener(print, **options)  # type: ignore[arg-type]
