"""Change events: what a store's writes recorded, for listeners that follow
runs as they happen (a lineage backend, a live view, metrics).

A listener is any callable taking one `ChangeEvent`. A store is given its
listeners at construction (`DagProvenance(..., listeners=[...])`) or later
(`store.add_listener(...)`). Each write that commits delivers its events, in
the order it recorded them:

- only after the transaction that recorded them has committed: never for a
  call that was refused, failed or rolled back;
- inside `batch()`, when the batch commits (a nested batch that raises drops
  its own events); on a caller's `Connection` or `Session`, when the caller's
  transaction commits (its rollback, or a rollback to a savepoint of its own
  taken before the calls, drops them);
- on the thread (or event loop) of the call, right after the commit.

A listener with an `attached(store)` method is told the store it was added
to (`OpenLineageListener` reads there the runs it did not see created).

A listener must return quickly: it runs on the caller's path. One that
raises is logged (logger `dag_provenance.events`) and the other listeners
still get the event; the write stands. Slow work belongs off that path:
`in_background(listener)` delivers through a bounded queue on a thread of its
own, as `lineage.OpenLineageListener` does.

Timestamps are the ones the store recorded (tz-aware UTC), so an event
describes the same moment a later read of the run shows.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from dag_provenance.errors import InvalidInputError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunCreated:
    """`create_run`: a run started (status 'running')."""

    run_id: str
    dag_nsref: str
    parent_run_id: str | None
    initiated_by: str | None
    started_at: datetime


@dataclass(frozen=True, slots=True)
class RunStatusChanged:
    """`update_run_status`: a run's status was set (a pause, a restart). The
    store records no time for it: `at` is when the store made the change."""

    run_id: str
    status: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RunFinished:
    """`finish_run`, or `fail_node_and_finish_run` (then `failed_node` and
    `error` name the node that failed the run and its error)."""

    run_id: str
    status: str
    finished_at: datetime
    failed_node: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class NodeStarted:
    """`record_node_start`: a node started (again, on a restart)."""

    run_id: str
    node_label: str
    is_source: bool
    is_sink: bool
    started_at: datetime


@dataclass(frozen=True, slots=True)
class NodeSkipped:
    """`record_node_skipped`: a replay copied the node's output from an
    earlier run instead of running it."""

    run_id: str
    node_label: str
    at: datetime


@dataclass(frozen=True, slots=True)
class NodeCompleted:
    """`complete_node_with_edges`: a node completed, and the `edges` it was
    given, `(upstream_label, downstream_label)` pairs, were traversed, all at
    `finished_at`."""

    run_id: str
    node_label: str
    finished_at: datetime
    edges: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class NodeFailed:
    """`fail_node_and_finish_run`: a node failed (its run's `RunFinished`
    follows, in the same transaction)."""

    run_id: str
    node_label: str
    error: str
    finished_at: datetime


ChangeEvent: TypeAlias = (
    RunCreated
    | RunStatusChanged
    | RunFinished
    | NodeStarted
    | NodeSkipped
    | NodeCompleted
    | NodeFailed
)
Listener: TypeAlias = Callable[[ChangeEvent], object]


class Listeners:
    """A store's listeners and the delivery of its events to them."""

    def __init__(self, listeners: Iterable[Listener] = (), owner: object = None) -> None:
        self._listeners: tuple[Listener, ...] = ()
        self._owner = owner
        for listener in listeners:
            self.add(listener)

    @property
    def active(self) -> bool:
        """Whether anyone listens (writes build no events otherwise)."""
        return bool(self._listeners)

    def add(self, listener: Listener) -> None:
        if not callable(listener):
            raise InvalidInputError(
                f"a listener must be callable with one change event, got {type(listener).__name__}"
            )
        self._listeners = (*self._listeners, listener)
        attached = getattr(listener, "attached", None)
        if self._owner is not None and callable(attached):
            attached(self._owner)

    def remove(self, listener: Listener) -> None:
        """Stop delivering to `listener` (a ValueError if it was not added)."""
        listeners = list(self._listeners)
        listeners.remove(listener)
        self._listeners = tuple(listeners)

    def deliver(self, events: Sequence[ChangeEvent]) -> None:
        """Each event to each listener, in order; a listener's error is logged."""
        listeners = self._listeners
        for event in events:
            for listener in listeners:
                try:
                    listener(event)
                except Exception:
                    log.exception("change listener %r failed on %r", listener, event)


class ListenedStore:
    """`add_listener` and `remove_listener` of the stores."""

    _listeners: Listeners

    def add_listener(self, listener: Listener) -> None:
        """Deliver the change events of this store's committed writes to
        `listener` too (see `dag_provenance.events`)."""
        self._listeners.add(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop delivering to `listener` (a ValueError if it was never added)."""
        self._listeners.remove(listener)


class _Marker:
    """Put in the queue by `flush` (set once everything before it is handled)
    and by `close` (the worker stops there)."""

    def __init__(self, stop: bool = False) -> None:
        self.reached = threading.Event()
        self.stop = stop


class BackgroundListener:
    """Delivers to `handler` on a thread of its own, through a bounded queue,
    so a slow or failing handler never holds up a write.

    Handing an event over costs the caller an append: the thread is not woken
    for each event but drains the queue every `latency` seconds (sooner on
    `flush` or `close`), so a burst of writes does not pay a thread switch
    per event. When the queue is full the event is dropped, counted
    (`dropped`) and logged; a handler that raises is counted (`failed`) and
    logged. `flush` waits until everything queued has been handled, `close`
    also stops the thread; both give up after `timeout` seconds and say
    whether they got there.
    """

    def __init__(
        self,
        handler: Listener,
        *,
        max_queue: int = 10_000,
        latency: float = 0.05,
        name: str | None = None,
    ) -> None:
        if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
            raise InvalidInputError(f"max_queue must be an int of at least 1, got {max_queue!r}")
        if isinstance(latency, bool) or not isinstance(latency, int | float) or latency <= 0:
            raise InvalidInputError(
                f"latency must be a positive number of seconds, got {latency!r}"
            )
        self._handler = handler
        self.max_queue = max_queue
        self._latency = latency
        # deque.append and popleft are atomic: producers take no lock.
        self._queue: deque[ChangeEvent | _Marker] = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._closing: _Marker | None = None
        self.dropped = 0
        """Events not handled: the queue was full, or the listener was closed."""
        self.failed = 0
        """Events whose handler raised."""
        self.handled = 0
        """Events handled without error."""
        self._thread = threading.Thread(
            target=self._work, name=name or f"dag-provenance-listener-{id(self):x}", daemon=True
        )
        self._thread.start()

    def __call__(self, event: ChangeEvent) -> None:
        if self._closing is not None:
            self._drop(event, "the listener is closed")
        elif len(self._queue) >= self.max_queue:
            self._drop(event, f"its queue is full ({self.max_queue} events)")
        else:
            self._queue.append(event)

    def _drop(self, event: ChangeEvent, why: str) -> None:
        with self._lock:
            self.dropped += 1
            dropped = self.dropped
        log.warning("dropped %r: %s (%d dropped so far)", event, why, dropped)

    def _work(self) -> None:
        queue, handler = self._queue, self._handler
        while True:
            try:
                item = queue.popleft()
            except IndexError:
                self._wake.wait(self._latency)
                self._wake.clear()
                continue
            if isinstance(item, _Marker):
                item.reached.set()
                if item.stop:
                    return
                continue
            try:
                handler(item)
            except Exception:
                with self._lock:
                    self.failed += 1
                log.exception("listener %r failed on %r", handler, item)
            else:
                with self._lock:
                    self.handled += 1

    def _reach(self, marker: _Marker, timeout: float | None) -> bool:
        self._queue.append(marker)
        self._wake.set()
        return marker.reached.wait(timeout)

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every event queued so far has been handled; False on timeout."""
        if self._closing is not None:
            return self._closing.reached.wait(timeout)
        return self._reach(_Marker(), timeout)

    def close(self, timeout: float | None = 10.0) -> bool:
        """Handle what is queued, then stop the thread (idempotent); events
        that arrive afterwards are dropped. False if `timeout` ran out first
        (the thread then finishes in the background)."""
        with self._lock:
            closing, first = self._closing, self._closing is None
            if first:
                closing = self._closing = _Marker(stop=True)
        assert closing is not None
        if first:
            self._queue.append(closing)
            self._wake.set()
        if not closing.reached.wait(timeout):
            return False
        self._thread.join(timeout)
        late = 0
        while self._queue:  # handed over while the listener was closing
            if not isinstance(self._queue.popleft(), _Marker):
                late += 1
        if late:
            with self._lock:
                self.dropped += late
            log.warning("dropped %d events that arrived as the listener closed", late)
        return not self._thread.is_alive()


def in_background(
    listener: Listener, *, max_queue: int = 10_000, latency: float = 0.05
) -> BackgroundListener:
    """`listener`, delivered on a thread of its own (see `BackgroundListener`)."""
    return BackgroundListener(listener, max_queue=max_queue, latency=latency)


__all__ = [
    "BackgroundListener",
    "ChangeEvent",
    "ListenedStore",
    "Listener",
    "Listeners",
    "NodeCompleted",
    "NodeFailed",
    "NodeSkipped",
    "NodeStarted",
    "RunCreated",
    "RunFinished",
    "RunStatusChanged",
    "in_background",
]
