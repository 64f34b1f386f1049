"""A payload larger than the database accepts is refused before it is sent,
with `PayloadTooLargeError` naming the limit, the size and the setting;
nothing is written and the store stays usable.

Sent anyway, MariaDB drops the connection ("MySQL server has gone away") and
PostgreSQL closes it, which reads as an outage. MariaDB runs here with its
default `max_allowed_packet` (16 MiB), SQLite with its length limit lowered to
the same 16 MiB on each connection (as an application may set it), and
PostgreSQL with its fixed 1 GB.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from dag_provenance import DagProvenance, PayloadTooLargeError, copy_store
from dag_provenance.engine import make_engine

from .conftest import dump_tables

pytestmark = pytest.mark.both_stores

NewId = Callable[[str], str]
MIB = 1024 * 1024
LIMIT = 16 * MIB  # MariaDB's default max_allowed_packet
SETTING = {"mysql": "max_allowed_packet", "sqlite": "SQLITE_LIMIT_LENGTH"}


def _limited_sqlite_engine(path: Path) -> Engine:
    engine = make_engine(path)

    @event.listens_for(engine, "connect")
    def _lower_the_length_limit(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, LIMIT)

    return engine


@pytest.fixture
def limited(engine_name: str, empty_db_url: str, tmp_path: Path) -> Iterator[DagProvenance]:
    """A store whose database accepts at most 16 MiB in one statement."""
    if engine_name == "postgresql":
        pytest.skip("PostgreSQL's limit is a fixed 1 GB (tested on its own below)")
    if engine_name == "sqlite":
        engine = _limited_sqlite_engine(tmp_path / "limited.db")
        try:
            yield DagProvenance(engine)
        finally:
            engine.dispose()
        return
    admin = make_engine(empty_db_url)
    with admin.connect() as conn:
        before = conn.execute(text("SELECT @@global.max_allowed_packet")).scalar_one()
        conn.execute(text(f"SET GLOBAL max_allowed_packet = {LIMIT}"))
    engine = make_engine(empty_db_url)  # its connections start with the 16 MiB limit
    try:
        yield DagProvenance(engine)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"SET GLOBAL max_allowed_packet = {int(before)}"))
        admin.dispose()


def _started(store: DagProvenance, run_id: str) -> str:
    store.create_run(run_id, "tests:payload", {"small": True})
    store.record_node_start(run_id, "a", "{}")
    return run_id


WRITES: dict[str, Callable[[DagProvenance, str, str], object]] = {
    "create_run": lambda s, r, big: s.create_run(r + "-new", "tests:payload", {"x": big}),
    "finish_run": lambda s, r, big: s.finish_run(r, "completed", big),
    "record_node_start": lambda s, r, big: s.record_node_start(r, "b", big),
    "record_node_skipped": lambda s, r, big: s.record_node_skipped(r, "c", big),
    "complete_node_with_edges": lambda s, r, big: s.complete_node_with_edges(
        r, "a", big, [("a", "b")]
    ),
    "fail_node_and_finish_run": lambda s, r, big: s.fail_node_and_finish_run(r, "a", big),
}


@pytest.mark.parametrize("write", WRITES)
def test_every_write_refuses_a_payload_over_the_limit_and_writes_nothing(
    limited: DagProvenance, engine_name: str, new_id: NewId, write: str
) -> None:
    run_id = _started(limited, new_id("run"))
    big = "x" * (20 * MIB)
    before = dump_tables(limited)

    with pytest.raises(PayloadTooLargeError) as refused:
        WRITES[write](limited, run_id, big)

    message = str(refused.value)
    assert SETTING[engine_name] in message
    assert f"{LIMIT:,}" in message  # the limit as configured
    assert refused.value.size is not None and refused.value.size >= 20 * MIB
    assert refused.value.limit is not None and refused.value.limit <= LIMIT
    assert dump_tables(limited) == before
    # The connection was never dropped: the store carries on.
    limited.complete_node_with_edges(run_id, "a", '"done"', [("a", "b")])
    assert limited.get_node_output(run_id, "a") == '"done"'


def test_a_payload_under_the_limit_is_stored_whole(limited: DagProvenance, new_id: NewId) -> None:
    run_id = _started(limited, new_id("run"))
    payload = '"' + "y" * (15 * MIB) + '"'
    limited.complete_node_with_edges(run_id, "a", payload, [])
    assert limited.get_node_output(run_id, "a") == payload


def test_characters_sent_escaped_or_as_several_bytes_count_as_what_is_sent(
    limited: DagProvenance, engine_name: str, new_id: NewId
) -> None:
    if engine_name != "mysql":
        pytest.skip("PyMySQL sends values inline, escaped; the others bind them")
    run_id = _started(limited, new_id("run"))
    before = dump_tables(limited)
    cases = {
        "9 Mi backslashes, 18 MiB escaped": "\\" * (9 * MIB),
        "6 Mi euro signs, 18 MiB of UTF-8": "\u20ac" * (6 * MIB),
    }
    for name, payload in cases.items():
        with pytest.raises(PayloadTooLargeError):
            limited.complete_node_with_edges(run_id, "a", payload, [])
        assert dump_tables(limited) == before, name


def test_a_refused_payload_inside_a_batch_leaves_the_rest_of_the_batch(
    limited: DagProvenance, new_id: NewId
) -> None:
    run_id = new_id("run")
    with limited.batch():
        _started(limited, run_id)
        with pytest.raises(PayloadTooLargeError):
            limited.complete_node_with_edges(run_id, "a", "z" * (20 * MIB), [])
        limited.complete_node_with_edges(run_id, "a", "1", [])
    assert limited.get_node_output(run_id, "a") == "1"


def test_copying_a_row_larger_than_the_target_accepts_names_the_row(
    limited: DagProvenance, new_id: NewId, tmp_path: Path
) -> None:
    source = DagProvenance(tmp_path / "source.db")
    run_id = _started(source, new_id("run"))
    source.complete_node_with_edges(run_id, "a", "w" * (20 * MIB), [])

    with pytest.raises(PayloadTooLargeError, match=run_id) as refused:
        copy_store(source, limited)

    assert "output_json" in str(refused.value)
    assert limited.get_node_executions(run_id) == []


def test_a_sqlite_row_grown_past_the_limit_is_refused_as_too_large(
    new_id: NewId, tmp_path: Path, engine_name: str
) -> None:
    if engine_name != "sqlite":
        pytest.skip("SQLite's limit also bounds a whole row")
    engine = _limited_sqlite_engine(tmp_path / "rows.db")
    try:
        store = DagProvenance(engine)
        run_id = new_id("run")
        store.create_run(run_id, "tests:payload", {})
        store.record_node_start(run_id, "a", "i" * (10 * MIB))
        before = dump_tables(store)

        with pytest.raises(PayloadTooLargeError, match="too large"):
            store.complete_node_with_edges(run_id, "a", "o" * (10 * MIB), [])

        assert dump_tables(store) == before
    finally:
        engine.dispose()


def test_postgresql_refuses_a_gigabyte_payload_before_sending_it(
    provenance: DagProvenance, engine_name: str, new_id: NewId
) -> None:
    if engine_name != "postgresql":
        pytest.skip("PostgreSQL's fixed 1 GB limit")
    run_id = _started(provenance, new_id("run"))
    before = dump_tables(provenance)

    with pytest.raises(PayloadTooLargeError, match="1 GB") as refused:
        provenance.complete_node_with_edges(run_id, "a", "g" * (1 << 30), [])

    assert refused.value.size == 1 << 30
    assert dump_tables(provenance) == before
    provenance.complete_node_with_edges(run_id, "a", "1", [])
