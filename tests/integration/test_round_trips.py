"""How many round trips each public call costs, on every engine, counted on
the wire: a relay between the store and the server reads the client's side
of the protocol and counts its requests (PostgreSQL: each Sync or simple
Query, so a pipeline of statements counts once; MariaDB: each command). On
SQLite, where there is no wire, each statement SQLite runs counts (BEGIN and
COMMIT included).

The numbers are the least the store's promises allow on each engine (see
`dag_provenance.drivers`); a change that adds a round trip fails here.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

from dag_provenance import DagProvenance
from dag_provenance.engine import make_engine

Call = Callable[[DagProvenance, str], object]

CALLS: dict[str, Call] = {
    "create_run": lambda s, r: s.create_run(r + "-new", "tests:rt", {"x": 1}),
    "update_run_status": lambda s, r: s.update_run_status(r, "paused"),
    "record_node_start": lambda s, r: s.record_node_start(r, "b", "{}"),
    "record_node_skipped": lambda s, r: s.record_node_skipped(r, "c", "1"),
    "complete_node_with_edges (2 edges)": lambda s, r: s.complete_node_with_edges(
        r, "a", "1", [("a", "b"), ("a", "c")]
    ),
    "complete_node_with_edges (no edge)": lambda s, r: s.complete_node_with_edges(r, "b", "2", []),
    "fail_node_and_finish_run": lambda s, r: s.fail_node_and_finish_run(r, "d", "boom"),
    "finish_run": lambda s, r: s.finish_run(r, "completed", '{"out": 1}'),
    "get_run": lambda s, r: s.get_run(r),
    "get_node_executions": lambda s, r: s.get_node_executions(r),
    "get_node_output": lambda s, r: s.get_node_output(r, "a"),
    "get_pending_nodes": lambda s, r: s.get_pending_nodes(r),
    "get_edge_traversals": lambda s, r: s.get_edge_traversals(r),
    "load_io": lambda s, r: s.load_io(s.inspect_run(r)),  # type: ignore[arg-type]
    "inspect_run": lambda s, r: s.inspect_run(r),
    "get_child_runs": lambda s, r: s.get_child_runs(r),
    "get_recent_runs": lambda s, r: s.get_recent_runs(limit=5),
}

# What each call costs (load_io's line includes the inspect_run it needs).
ROUND_TRIPS: dict[str, dict[str, int]] = {
    # Statements SQLite runs. A single statement commits on its own; a
    # write of several is BEGIN IMMEDIATE ... COMMIT (executemany runs the
    # edge insert once per edge); a read of several is BEGIN ... COMMIT.
    "sqlite": {
        "create_run": 1,
        "update_run_status": 1,
        "record_node_start": 1,
        "record_node_skipped": 1,
        "complete_node_with_edges (2 edges)": 5,
        "complete_node_with_edges (no edge)": 1,
        "fail_node_and_finish_run": 4,
        "finish_run": 1,
        "get_run": 1,
        "get_node_executions": 1,
        "get_node_output": 1,
        "get_pending_nodes": 1,
        "get_edge_traversals": 1,
        "load_io": 6,
        "inspect_run": 5,
        "get_child_runs": 5,
        "get_recent_runs": 6,
    },
    # Exchanges with the server. psycopg in autocommit for a single
    # statement; several statements pipelined with their BEGIN and COMMIT.
    "postgresql": {
        "create_run": 1,
        "update_run_status": 1,
        "record_node_start": 1,
        "record_node_skipped": 1,
        "complete_node_with_edges (2 edges)": 1,
        "complete_node_with_edges (no edge)": 1,
        "fail_node_and_finish_run": 1,
        "finish_run": 1,
        "get_run": 1,
        "get_node_executions": 1,
        "get_node_output": 1,
        "get_pending_nodes": 1,
        "get_edge_traversals": 1,
        "load_io": 2,
        "inspect_run": 1,
        "get_child_runs": 1,
        "get_recent_runs": 1,
    },
    # Exchanges with the server. PyMySQL has no pipeline; the first statement
    # opens the transaction and every unit ends it with COMMIT.
    "mysql": {
        "create_run": 2,
        "update_run_status": 2,
        "record_node_start": 2,
        "record_node_skipped": 2,
        "complete_node_with_edges (2 edges)": 3,
        "complete_node_with_edges (no edge)": 2,
        "fail_node_and_finish_run": 3,
        "finish_run": 2,
        "get_run": 2,
        "get_node_executions": 2,
        "get_node_output": 2,
        "get_pending_nodes": 2,
        "get_edge_traversals": 2,
        "load_io": 6,
        "inspect_run": 4,
        "get_child_runs": 4,
        "get_recent_runs": 5,
    },
}


class _PostgresRequests:
    """Counts the requests a PostgreSQL client sends: each Sync (the end of an
    extended-protocol exchange, or of a whole pipeline) and each simple Query
    is one round trip, however many messages came before it."""

    def __init__(self) -> None:
        self._buffer = b""
        self._started = False

    def feed(self, data: bytes) -> int:
        self._buffer += data
        found = 0
        while True:
            if not self._started:  # startup, or an SSL/GSS request before it
                if len(self._buffer) < 8:
                    return found
                length = int.from_bytes(self._buffer[:4], "big")
                code = int.from_bytes(self._buffer[4:8], "big")
                if len(self._buffer) < length:
                    return found
                self._buffer = self._buffer[length:]
                self._started = code not in (80877103, 80877104)
                continue
            if len(self._buffer) < 5:
                return found
            kind = self._buffer[:1]
            length = int.from_bytes(self._buffer[1:5], "big")
            if len(self._buffer) < 1 + length:
                return found
            self._buffer = self._buffer[1 + length :]
            found += kind in (b"S", b"Q")


class _MySQLCommands:
    """Counts the commands a MariaDB/MySQL client sends: a packet with
    sequence number 0 starts one (a reply, or a long packet's rest, does not)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> int:
        self._buffer += data
        found = 0
        while len(self._buffer) >= 4:
            length = int.from_bytes(self._buffer[:3], "little")
            if len(self._buffer) < 4 + length:
                break
            found += self._buffer[3] == 0
            self._buffer = self._buffer[4 + length :]
        return found


class CountingRelay:
    """A TCP relay to the server that counts the requests clients send."""

    def __init__(self, target: tuple[str, int], protocol: Callable[[], Any]) -> None:
        self.target = target
        self.requests = 0
        self._protocol = protocol
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        for s in [self._listener, *self._sockets]:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self._sockets += [client, server]
            parser = self._protocol()
            threading.Thread(target=self._pump, args=(client, server, parser), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, None), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, parser: Any) -> None:
        try:
            while data := source.recv(65536):
                if parser is not None:
                    counted = parser.feed(data)
                    with self._lock:
                        self.requests += counted
                sink.sendall(data)
        except OSError:
            pass


@dataclass
class Counted:
    store: DagProvenance
    count: Callable[[], int]


def _sqlite_counted(path: Path) -> Iterator[Counted]:
    engine = make_engine(path, pool_size=1, max_overflow=0)
    statements: list[str] = []

    @event.listens_for(engine, "connect")
    def _trace(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.set_trace_callback(statements.append)

    try:
        yield Counted(DagProvenance(engine), lambda: len(statements))
    finally:
        engine.dispose()


@pytest.fixture
def counted(engine_name: str, empty_db_url: str, tmp_path: Path) -> Iterator[Counted]:
    """A store on one pooled connection whose round trips are counted."""
    if engine_name == "sqlite":
        yield from _sqlite_counted(tmp_path / "counted.db")
        return
    url = make_url(empty_db_url)
    protocol = _PostgresRequests if engine_name == "postgresql" else _MySQLCommands
    relay = CountingRelay((url.host or "127.0.0.1", url.port or 0), protocol)
    engine: Engine = make_engine(
        url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False),
        pool_size=1,
        max_overflow=0,
    )
    try:
        yield Counted(DagProvenance(engine), lambda: relay.requests)
    finally:
        engine.dispose()
        relay.close()


def _prepared_run(store: DagProvenance, run_id: str) -> None:
    store.create_run(run_id, "tests:rt", {"x": 1})
    store.create_run(run_id + "-child", "tests:rt/a[]", {}, parent_run_id=run_id)
    for label in ("a", "b", "d"):
        store.record_node_start(run_id, label, "{}")


def test_each_public_call_costs_the_fewest_round_trips(counted: Counted, engine_name: str) -> None:
    expected = ROUND_TRIPS[engine_name]
    measured: dict[str, int] = {}
    for name, call in CALLS.items():
        # Warm up: a connection reads its payload limit once, and psycopg
        # prepares a statement on the server after five executions.
        for warm_up in range(6):
            run_id = f"rt-{len(measured)}-{warm_up}"
            _prepared_run(counted.store, run_id)
            call(counted.store, run_id)
        run_id = f"rt-{len(measured)}-measured"
        _prepared_run(counted.store, run_id)
        before = counted.count()
        call(counted.store, run_id)
        measured[name] = counted.count() - before
    assert measured == expected
