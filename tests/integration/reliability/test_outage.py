"""Connections cut under a live store, a database that goes away and comes
back, and one that is down or never answers: the store recovers by itself,
and a database it cannot reach gives `DatabaseUnavailableError`, never a hang."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from dag_provenance import DatabaseUnavailableError

from ..conftest import OpenStore
from ..stores import fill_pool
from .workload import row_counts, rows_of_runs, stored_violations, write_run

pytestmark = pytest.mark.both_stores

CYCLES = 5
POOLED = 3
# A guard so a hang fails the test instead of blocking the suite; the store's
# own connect timeout (patched down to CONNECT_TIMEOUT_S) must end it far sooner.
HANG_GUARD_S = 30
CONNECT_TIMEOUT_S = 1


def server_only(engine_name: str) -> None:
    if engine_name == "sqlite":
        pytest.skip("an embedded SQLite file has no server connection to cut")


def kill_other_connections(admin: sa.Engine) -> int:
    """From `admin`'s own connection, end every other session on its database
    (PostgreSQL pg_terminate_backend, MariaDB/MySQL KILL). Returns how many."""
    with admin.connect() as conn:
        if admin.dialect.name == "postgresql":
            pids = conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalars()
            killed = [conn.execute(sa.select(sa.func.pg_terminate_backend(pid))) for pid in pids]
        else:
            ids = conn.execute(
                sa.text(
                    "SELECT id FROM information_schema.processlist"
                    " WHERE db = DATABASE() AND id <> CONNECTION_ID()"
                )
            ).scalars()
            killed = [conn.execute(sa.text(f"KILL {int(i)}")) for i in ids]
        conn.commit()
    return len(killed)


def test_a_store_whose_connections_are_killed_carries_on_without_the_caller_doing_anything(
    engine_name: str, empty_db_url: str, open_store: OpenStore
) -> None:
    server_only(engine_name)
    tag = uuid.uuid4().hex[:8]
    admin = sa.create_engine(empty_db_url, poolclass=sa.pool.NullPool)
    written: list[str] = []
    try:
        with open_store(empty_db_url) as store:
            for cycle in range(CYCLES):
                fill_pool(store, POOLED)
                assert kill_other_connections(admin) >= POOLED

                # The very next calls, a write and then reads, just work.
                run_id = f"{tag}-{cycle}"
                write_run(store, run_id, cycle)
                written.append(run_id)
                assert store.inspect_run(run_id) is not None
                assert len(store.get_recent_runs(limit=CYCLES)) == len(written)
            assert row_counts(store.engine) == rows_of_runs(range(CYCLES))
            assert stored_violations(store.engine) == []
    finally:
        admin.dispose()


def test_a_batch_cut_mid_way_keeps_none_of_its_writes_and_the_store_carries_on(
    engine_name: str, empty_db_url: str, open_store: OpenStore
) -> None:
    server_only(engine_name)
    tag = uuid.uuid4().hex[:8]
    admin = sa.create_engine(empty_db_url, poolclass=sa.pool.NullPool)
    try:
        with open_store(empty_db_url) as store:
            with pytest.raises(DatabaseUnavailableError) as cut, store.batch():
                store.create_run(f"{tag}-lost", "outage:dag", {})
                assert kill_other_connections(admin) >= 1
                store.record_node_start(f"{tag}-lost", "n0", "{}")
            assert isinstance(cut.value.__cause__, sa.exc.DBAPIError)

            assert store.get_run(f"{tag}-lost") is None
            write_run(store, f"{tag}-kept", 0)
            assert row_counts(store.engine) == rows_of_runs([0])
    finally:
        admin.dispose()


# --- a database that goes away and comes back ------------------------------------


def for_good(s: socket.socket) -> None:
    with suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    s.close()


class Proxy:
    """A TCP relay on a fixed local port to the database server: `stop()` is
    the database going away (every connection cut, connections refused),
    `start()` it coming back on the same address."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone does not
            for_good(self._listener)
            self._listener = None
        for s in sockets:
            for_good(s)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxied_url(engine_name: str, empty_db_url: str) -> Iterator[tuple[str, Proxy]]:
    server_only(engine_name)
    url = make_url(empty_db_url)
    proxy = Proxy(
        (url.host or "127.0.0.1", url.port or (5432 if "postgres" in url.drivername else 3306))
    )
    proxy.start()
    try:
        yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(False), proxy
    finally:
        proxy.stop()


def test_a_store_recovers_by_itself_when_the_database_comes_back(
    proxied_url: tuple[str, Proxy], open_store: OpenStore
) -> None:
    url, proxy = proxied_url
    tag = uuid.uuid4().hex[:8]
    refused = 0
    with open_store(url) as store:
        for cycle in range(CYCLES):
            fill_pool(store, POOLED)
            proxy.stop()
            with pytest.raises(DatabaseUnavailableError) as down:
                store.create_run(f"{tag}-down-{cycle}", "outage:dag", {})
            assert isinstance(down.value.__cause__, sa.exc.DBAPIError)
            refused += 1
            proxy.start()

            write_run(store, f"{tag}-{cycle}", cycle)
        assert store.get_run(f"{tag}-down-0") is None
        assert row_counts(store.engine) == rows_of_runs(range(CYCLES))
    assert refused == CYCLES


# --- a database that is down or never answers ----------------------------------------


def raised_by(opening: Callable[[], object]) -> BaseException:
    """What `opening` raised, on a thread the test stops waiting for after
    HANG_GUARD_S (then the test fails: the store hung)."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            opening()
        except BaseException as e:
            raised.append(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(HANG_GUARD_S)
    assert not worker.is_alive(), "opening the store hung past its connect timeout"
    assert raised, "opening the store did not fail"
    return raised[0]


def unreachable(engine_name: str, empty_db_url: str, port: int, tmp_path: Path) -> str:
    if engine_name == "sqlite":
        blocker = tmp_path / "a-file"
        blocker.write_text("not a folder")
        return str(blocker / "provenance.db")
    return make_url(empty_db_url).set(host="127.0.0.1", port=port).render_as_string(False)


def test_a_database_that_is_down_raises_database_unavailable(
    engine_name: str, empty_db_url: str, tmp_path: Path, open_store: OpenStore
) -> None:
    # Port 1: nothing listens, the connection is refused at once.
    target = unreachable(engine_name, empty_db_url, 1, tmp_path)

    error = raised_by(lambda: open_store(target))

    assert isinstance(error, DatabaseUnavailableError), repr(error)
    assert error.__cause__ is not None


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and then never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        for s in held:  # lets a client still waiting on it fail and end
            s.close()


def test_a_database_that_never_answers_raises_database_unavailable_within_the_connect_timeout(
    engine_name: str,
    empty_db_url: str,
    silent_server: int,
    monkeypatch: pytest.MonkeyPatch,
    open_store: OpenStore,
) -> None:
    server_only(engine_name)
    monkeypatch.setattr("dag_provenance.engine.CONNECT_TIMEOUT_S", CONNECT_TIMEOUT_S)
    target = unreachable(engine_name, empty_db_url, silent_server, Path())

    error = raised_by(lambda: open_store(target))

    assert isinstance(error, DatabaseUnavailableError), repr(error)
    assert error.__cause__ is not None
