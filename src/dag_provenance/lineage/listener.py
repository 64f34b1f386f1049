"""`OpenLineageListener`: a store's change events (`dag_provenance.events`)
emitted as OpenLineage run events, live, through an openlineage-python
client and whatever transport it is configured with (HTTP, console, file,
Kafka: `openlineage.yml` or `OPENLINEAGE_URL`, the client's usual way).

    from dag_provenance import DagProvenance
    from dag_provenance.lineage import OpenLineageListener

    lineage = OpenLineageListener(namespace="etl")
    store = DagProvenance("provenance.db", listeners=[lineage])
    ...
    lineage.close()  # sends what is queued, within its timeout

The events are built as `to_openlineage` builds them (`openlineage`), so a
backend that heard a run live holds what an export of it gives. Building and
sending happen on the listener's own thread, behind a bounded queue: a slow
or unreachable backend never fails, slows or undoes a provenance write.
What could not be queued or sent is counted (`dropped`, `failed`) and logged.

Live and exported events agree except where the store records no time: a
status set by `update_run_status` (a pause, a restart, a run ended without
`finish_run`) is sent at the moment of the change, while an export places a
paused or unfinished run's event at the run's last recorded time; and a
restart sends events again for the nodes it re-runs, while an export shows
each node's last execution only.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import RunEvent, RunState

from dag_provenance.events import (
    BackgroundListener,
    ChangeEvent,
    NodeCompleted,
    NodeFailed,
    NodeSkipped,
    NodeStarted,
    RunCreated,
    RunFinished,
    RunStatusChanged,
)
from dag_provenance.lineage.openlineage import DEFAULT_NAMESPACE, EventBuilder, RunRef
from dag_provenance.status import NodeStatus, RunStatus

log = logging.getLogger(__name__)

Lookup = Callable[[str], "dict[str, Any] | None"]


class OpenLineageListener(BackgroundListener):
    """Emits a store's committed changes as OpenLineage events (see the module).

    `client`: an `OpenLineageClient`; by default one configured from the
    environment (`OPENLINEAGE_URL`, `openlineage.yml`, ...), closed with the
    listener. `namespace`: the jobs' OpenLineage namespace. `max_queue`:
    changes waiting to be sent before new ones are dropped; `latency`: how
    long at most a change waits before the thread picks it up. `max_tracked_runs`:
    how many runs it remembers (to name a node's job and a sub-DAG's parent
    and root); a run it does not know is read from the store it listens to.
    """

    def __init__(
        self,
        client: OpenLineageClient | None = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        max_queue: int = 10_000,
        latency: float = 0.05,
        max_tracked_runs: int = 100_000,
    ) -> None:
        self._builder = EventBuilder(namespace)
        self._own_client = client is None
        self.client = client if client is not None else OpenLineageClient()
        self._runs: OrderedDict[str, RunRef] = OrderedDict()
        self._errors: dict[str, str] = {}
        self._max_tracked = max(1, max_tracked_runs)
        self._store: Any = None
        self._lookup: Lookup | None = None
        self._lookup_lock = threading.Lock()
        self.unresolved = 0
        """Changes of runs it neither saw created nor could read: not sent."""
        super().__init__(
            self._send, max_queue=max_queue, latency=latency, name="dag-provenance-openlineage"
        )

    @property
    def namespace(self) -> str:
        return self._builder.namespace

    def attached(self, store: Any) -> None:
        """Called by a store this listener is added to: runs created before the
        listener was are read from it (on the listener's thread)."""
        with self._lookup_lock:
            self._store, self._lookup = store, None

    # --- on the listener's thread

    def _send(self, change: ChangeEvent) -> None:
        for event in self.events_for(change):
            self.client.emit(event)

    def events_for(self, change: ChangeEvent) -> list[RunEvent]:
        """The OpenLineage events of one change (and remember what later
        changes of its run need)."""
        b = self._builder
        if isinstance(change, RunCreated):
            parent = self._ref(change.parent_run_id) if change.parent_run_id else None
            created = RunRef(change.run_id, change.dag_nsref, change.initiated_by, parent)
            self._remember(created)
            return [
                b.run_event(created, RunState.START, change.started_at, RunStatus.RUNNING.value)
            ]
        ref = self._ref(change.run_id)
        if ref is None:
            self.unresolved += 1
            log.warning("not sent: %r is of a run this listener cannot find", change)
            return []
        if isinstance(change, NodeStarted):
            return [
                b.node_event(
                    ref,
                    change.node_label,
                    RunState.START,
                    change.started_at,
                    NodeStatus.RUNNING.value,
                    is_source=change.is_source,
                    is_sink=change.is_sink,
                )
            ]
        if isinstance(change, NodeCompleted):
            downstream = [down for up, down in change.edges if up == change.node_label]
            return [
                b.node_event(
                    ref,
                    change.node_label,
                    RunState.COMPLETE,
                    change.finished_at,
                    NodeStatus.COMPLETED.value,
                    downstream=downstream,
                )
            ]
        if isinstance(change, NodeSkipped):
            return [
                b.node_event(
                    ref, change.node_label, RunState.COMPLETE, change.at, NodeStatus.SKIPPED.value
                )
            ]
        if isinstance(change, NodeFailed):
            self._errors[change.run_id] = change.error
            return [
                b.node_event(
                    ref,
                    change.node_label,
                    RunState.FAIL,
                    change.finished_at,
                    NodeStatus.FAILED.value,
                    error=change.error,
                )
            ]
        if isinstance(change, RunFinished):
            return self._run_end(ref, change.status, change.finished_at, change.error)
        if isinstance(change, RunStatusChanged):
            return self._run_end(ref, change.status, change.at, None)
        raise AssertionError(f"unknown change {change!r}")  # pragma: no cover

    def _run_end(self, ref: RunRef, status: str, at: Any, error: str | None) -> list[RunEvent]:
        state = self._builder.run_state(status)
        if state is None:  # set running again (a restart)
            state = RunState.RUNNING
        remembered = self._errors.pop(ref.run_id, None)
        if state is RunState.FAIL and error is None:
            error = remembered
        return [
            self._builder.run_event(
                ref, state, at, status, error if state is RunState.FAIL else None
            )
        ]

    def _remember(self, ref: RunRef) -> None:
        self._runs[ref.run_id] = ref
        self._runs.move_to_end(ref.run_id)
        while len(self._runs) > self._max_tracked:
            forgotten, _ = self._runs.popitem(last=False)
            self._errors.pop(forgotten, None)

    def _ref(self, run_id: str | None) -> RunRef | None:
        """The run's `RunRef`: remembered, or read (with its ancestors) from the store."""
        if run_id is None:
            return None
        ref = self._runs.get(run_id)
        if ref is not None:
            self._runs.move_to_end(run_id)
            return ref
        with self._lookup_lock:
            if self._lookup is None and self._store is not None:
                self._lookup = _lookup_on(self._store)
            lookup = self._lookup
        if lookup is None:
            return None
        chain: list[dict[str, Any]] = []
        seen: set[str] = set()
        current: str | None = run_id
        while current is not None and current not in seen and current not in self._runs:
            seen.add(current)
            try:
                record = lookup(current)
            except Exception:
                log.exception("could not read run %r from the store", current)
                return None
            if record is None:
                return None
            chain.append(record)
            current = record.get("parent_run_id")
        parent = self._runs.get(current) if current is not None else None
        for record in reversed(chain):
            parent = RunRef(record["run_id"], record["dag_nsref"], record["initiated_by"], parent)
            self._remember(parent)
        return parent

    # --- waiting

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every queued change has been sent (for a transport that
        sends in the background, until it has sent them); False on timeout."""
        done = super().flush(timeout)
        wait = getattr(self.client.transport, "wait_for_completion", None)
        if done and callable(wait):
            done = bool(wait(-1 if timeout is None else timeout))
        return done

    def close(self, timeout: float | None = 10.0) -> bool:
        """Send what is queued, stop the thread and (if the listener made its
        client) close the client; False if `timeout` ran out first."""
        done = super().close(timeout)
        if self._own_client:
            done = bool(self.client.close(-1 if timeout is None else timeout)) and done
        return done


def _lookup_on(store: Any) -> Lookup | None:
    """A function reading a run record from `store`, usable on another thread."""
    from dag_provenance.engine import sync_url
    from dag_provenance.repository import DagProvenance
    from dag_provenance.unit_of_work import EngineUnitOfWork

    if isinstance(store, DagProvenance):
        if isinstance(store.unit_of_work, EngineUnitOfWork):
            return store.get_run
        target: Any = store.engine  # not the caller's connection, which is its thread's
    else:
        engine = getattr(getattr(store, "engine", None), "sync_engine", None)
        if engine is None:
            return None
        # An async store: read through a sync store on the same database (the
        # listener's thread has no event loop).
        target = sync_url(engine.url).render_as_string(hide_password=False)
    opened: list[DagProvenance] = []

    def lookup(run_id: str) -> dict[str, Any] | None:
        if not opened:  # opened on first need, on the listener's thread
            opened.append(DagProvenance(target, migrate=False))
        return opened[0].get_run(run_id)

    return lookup


__all__ = ["OpenLineageListener"]
