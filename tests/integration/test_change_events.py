"""Change events: each committed write tells the store's listeners what it
recorded, with the timestamps a read shows; refused, failed and rolled-back
calls tell nothing; a batch or a caller's transaction holds its events until
it commits. On both stores and every engine."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from dag_provenance import (
    DagProvenance,
    DuplicateRunError,
    InvalidInputError,
    NodeNotFoundError,
    RunNotFoundError,
)
from dag_provenance.events import (
    ChangeEvent,
    NodeCompleted,
    NodeFailed,
    NodeSkipped,
    NodeStarted,
    RunCreated,
    RunFinished,
    RunStatusChanged,
)

from .conftest import Clock, OpenStore, Refused

pytestmark = pytest.mark.both_stores

NewId = Callable[[str], str]


class Heard:
    """A listener that keeps what it hears, and the thread it heard it on."""

    def __init__(self) -> None:
        self.events: list[ChangeEvent] = []
        self.threads: set[int] = set()
        self._lock = threading.Lock()

    def __call__(self, event: ChangeEvent) -> None:
        with self._lock:
            self.events.append(event)
            self.threads.add(threading.get_ident())

    def take(self) -> list[ChangeEvent]:
        with self._lock:
            taken, self.events = self.events, []
        return taken


@pytest.fixture
def heard(provenance: DagProvenance) -> Heard:
    listener = Heard()
    provenance.add_listener(listener)
    return listener


def test_each_write_tells_what_it_recorded_with_the_recorded_times(
    provenance: DagProvenance, heard: Heard, new_id: NewId, clock: Clock
) -> None:
    run, child = new_id("run"), new_id("child")
    provenance.create_run(run, "etl:daily", {"a": {"x": 1}}, initiator="alice")
    provenance.record_node_start(run, "load", "{}", is_source=True)
    provenance.complete_node_with_edges(run, "load", "1", [("load", "split"), ("load", "sum")])
    provenance.record_node_skipped(run, "split", '"copied"')
    provenance.create_run(child, "etl:daily/sum[]", {}, parent_run_id=run)
    provenance.record_node_start(child, "inner", "{}", is_sink=True)
    provenance.fail_node_and_finish_run(child, "inner", "boom\nline two")
    provenance.update_run_status(run, "paused")
    provenance.finish_run(run, "completed", '{"sum": 3}')

    tree, inner_run = provenance.inspect_run(run), provenance.inspect_run(child)
    assert tree is not None and inner_run is not None
    load, split, inner = tree.nodes["load"], tree.nodes["split"], inner_run.nodes["inner"]
    events = heard.take()
    status_change = events[8]
    assert isinstance(status_change, RunStatusChanged)
    assert status_change.at.tzinfo is not None  # the store records no time for it
    assert events == [
        RunCreated(run, "etl:daily", None, "alice", tree.started_at),
        NodeStarted(run, "load", True, False, load.started_at),  # type: ignore[arg-type]
        NodeCompleted(
            run,
            "load",
            load.finished_at,  # type: ignore[arg-type]
            (("load", "split"), ("load", "sum")),
        ),
        NodeSkipped(run, "split", split.finished_at),  # type: ignore[arg-type]
        RunCreated(child, "etl:daily/sum[]", run, None, inner_run.started_at),
        NodeStarted(child, "inner", False, True, inner.started_at),  # type: ignore[arg-type]
        NodeFailed(child, "inner", "boom\nline two", inner.finished_at),  # type: ignore[arg-type]
        RunFinished(
            child,
            "failed",
            inner_run.finished_at,  # type: ignore[arg-type]
            "inner",
            "boom\nline two",
        ),
        RunStatusChanged(run, "paused", status_change.at),
        RunFinished(run, "completed", tree.finished_at),  # type: ignore[arg-type]
    ]


def test_refused_calls_tell_nothing(
    provenance: DagProvenance, heard: Heard, new_id: NewId, refused: Refused
) -> None:
    run = new_id("run")
    provenance.create_run(run, "dag", {})
    provenance.record_node_start(run, "a", "{}")
    heard.take()
    with refused(DuplicateRunError):
        provenance.create_run(run, "dag", {})
    with refused(RunNotFoundError):
        provenance.create_run(new_id("orphan"), "dag", {}, parent_run_id=new_id("missing"))
    with refused(NodeNotFoundError):
        provenance.complete_node_with_edges(run, "never-started", "1", [])
    with refused(RunNotFoundError):
        provenance.finish_run(new_id("missing"), "completed")
    with refused(RunNotFoundError):
        provenance.update_run_status(new_id("missing"), "paused")
    with refused(InvalidInputError):
        provenance.record_node_start(run, "", "{}")
    with refused(InvalidInputError):
        provenance.finish_run(run, "no-such-status")
    with refused(NodeNotFoundError):
        provenance.fail_node_and_finish_run(run, "never-started", "x")
    assert heard.take() == []


def test_a_batch_tells_its_events_when_it_commits_and_none_when_it_rolls_back(
    provenance: DagProvenance, heard: Heard, new_id: NewId
) -> None:
    kept, undone = new_id("kept"), new_id("undone")
    with provenance.batch():
        provenance.create_run(kept, "dag", {})
        provenance.record_node_start(kept, "a", "{}")
        assert heard.events == []  # not committed yet
    assert [type(e) for e in heard.take()] == [RunCreated, NodeStarted]

    with pytest.raises(RuntimeError), provenance.batch():
        provenance.create_run(undone, "dag", {})
        raise RuntimeError("the block failed")
    assert heard.take() == []
    assert provenance.get_run(undone) is None


def test_a_nested_batch_that_raises_drops_only_its_own_events(
    provenance: DagProvenance, heard: Heard, new_id: NewId
) -> None:
    outer, inner, after = new_id("outer"), new_id("inner"), new_id("after")
    with provenance.batch():
        provenance.create_run(outer, "dag", {})
        with pytest.raises(RuntimeError), provenance.batch():
            provenance.create_run(inner, "dag", {})
            raise RuntimeError("only the inner block")
        provenance.create_run(after, "dag", {})
        # A refused call inside the batch tells nothing either.
        with pytest.raises(DuplicateRunError):
            provenance.create_run(outer, "dag", {})
    assert [e.run_id for e in heard.take()] == [outer, after]
    assert provenance.get_run(inner) is None


def test_a_failing_listener_neither_fails_the_write_nor_silences_the_others(
    provenance: DagProvenance, heard: Heard, new_id: NewId, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: ChangeEvent) -> None:
        raise RuntimeError("listener bug")

    provenance.remove_listener(heard)
    provenance.add_listener(broken)
    provenance.add_listener(heard)
    run = new_id("run")
    with caplog.at_level(logging.ERROR, logger="dag_provenance.events"):
        provenance.create_run(run, "dag", {})
    assert provenance.get_run(run) is not None
    assert [e.run_id for e in heard.take()] == [run]
    assert "listener bug" in caplog.text


def test_listeners_are_added_and_removed(
    provenance: DagProvenance, heard: Heard, new_id: NewId
) -> None:
    provenance.remove_listener(heard)
    provenance.create_run(new_id("unheard"), "dag", {})
    assert heard.take() == []
    with pytest.raises(ValueError):
        provenance.remove_listener(heard)
    with pytest.raises(InvalidInputError, match="callable"):
        provenance.add_listener("not a listener")  # type: ignore[arg-type]


def test_listeners_given_to_the_constructor_hear_every_write(
    open_store: OpenStore, empty_db_url: str, new_id: NewId
) -> None:
    heard = Heard()
    store = open_store(empty_db_url, listeners=[heard])
    try:
        run = new_id("run")
        store.create_run(run, "dag", {})
        store.finish_run(run, "cancelled")
    finally:
        store.close()
    assert [type(e) for e in heard.take()] == [RunCreated, RunFinished]


def test_nothing_is_built_for_a_store_without_listeners(
    provenance: DagProvenance, new_id: NewId, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_be_built(*args: object, **kwargs: object) -> None:
        raise AssertionError("an event was built with no one listening")

    monkeypatch.setattr("dag_provenance.operations.NodeStarted", must_not_be_built)
    run = new_id("run")
    provenance.create_run(run, "dag", {})
    provenance.record_node_start(run, "a", "{}")


# --- the caller's transaction (the sync store on a Connection or Session) ------------


@pytest.mark.sync_store("a caller's Connection or Session is the sync store's")
def test_on_a_callers_connection_events_wait_for_its_commit(
    empty_db_url: str, new_id: NewId
) -> None:
    DagProvenance(empty_db_url).close()  # migrate on a connection of its own
    engine = create_engine(empty_db_url)
    heard = Heard()
    kept, rolled_back, in_savepoint = new_id("kept"), new_id("rolled"), new_id("savepoint")
    try:
        with engine.connect() as conn:
            store = DagProvenance(conn, listeners=[heard])
            store.create_run(kept, "dag", {})
            assert heard.events == []
            conn.commit()
            assert [e.run_id for e in heard.take()] == [kept]

            store.create_run(rolled_back, "dag", {})
            conn.rollback()
            assert heard.take() == []

            nested = conn.begin_nested()
            store.create_run(in_savepoint, "dag", {})
            nested.rollback()
            store.create_run(kept + "-2", "dag", {})
            conn.commit()
            assert [e.run_id for e in heard.take()] == [kept + "-2"]
    finally:
        engine.dispose()


@pytest.mark.sync_store("a caller's Connection or Session is the sync store's")
def test_on_a_callers_session_events_wait_for_its_commit(empty_db_url: str, new_id: NewId) -> None:
    DagProvenance(empty_db_url).close()
    engine = create_engine(empty_db_url)
    heard = Heard()
    first, dropped, second = new_id("first"), new_id("dropped"), new_id("second")
    try:
        with Session(engine) as session:
            store = DagProvenance(session, listeners=[heard])
            store.create_run(first, "dag", {})
            assert heard.events == []
            session.commit()
            assert [e.run_id for e in heard.take()] == [first]

            store.create_run(dropped, "dag", {})
            session.rollback()
            assert heard.take() == []

            store.create_run(second, "dag", {})
            session.commit()
            assert [e.run_id for e in heard.take()] == [second]
    finally:
        engine.dispose()
