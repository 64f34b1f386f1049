"""copy_store(), on every engine and across engines: every value preserved,
interrupted copies finish, non-empty targets refused."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from dag_provenance import DagProvenance, InvalidInputError
from dag_provenance.demo import record_demo
from dag_provenance.engine import sqlite_file_url
from dag_provenance.maintenance import CopyResult, Counts, TargetNotEmptyError, copy_store
from dag_provenance.testing import scratch_database

from .conftest import dump_tables

NewId = Callable[[str], str]

SERVER_ENV = {
    "postgresql": "DAG_PROVENANCE_TEST_POSTGRES_URL",
    "mysql": "DAG_PROVENANCE_TEST_MYSQL_URL",
}


def _fill(store: DagProvenance, new_id: NewId) -> None:
    """The demo tree plus a run whose values are hard to carry over exactly."""
    record_demo(store)
    run = new_id("odd")
    store.create_run(run, "odd/ünïcode «dag»", {"s": {"text": "  trailing  ", "n": None}})
    payload = '{"emoji": "🧪", "quote": "\\"", "nl": "a\\nb", "big": "' + "x" * 70_000 + '"}'
    store.record_node_start(run, "Node ", payload, is_source=True, is_sink=True)
    store.record_node_start(run, "node", "{}")
    store.complete_node_with_edges(run, "Node ", payload, [("Node ", "node")])
    store.update_run_status(run, "paused")


@contextmanager
def _database(engine_name: str, tmp_path: Path, name: str) -> Iterator[str]:
    if engine_name == "sqlite":
        yield sqlite_file_url(tmp_path / f"{name}.db").render_as_string(False)
        return
    server = os.environ.get(SERVER_ENV[engine_name])
    if not server:
        pytest.skip(f"{SERVER_ENV[engine_name]} is not set")
    with scratch_database(server) as url:
        yield url


@contextmanager
def _stores(*urls: str) -> Iterator[list[DagProvenance]]:
    with ExitStack() as stack:
        yield [stack.enter_context(DagProvenance(url)) for url in urls]


def test_copy_preserves_every_row_and_value(
    provenance: DagProvenance, empty_db_url: str, new_id: NewId
) -> None:
    _fill(provenance, new_id)
    with DagProvenance(empty_db_url) as target:
        result = copy_store(provenance, target, batch_size=3)
        assert dump_tables(target) == dump_tables(provenance)
    assert result == CopyResult(runs=6, node_executions=18, edge_traversals=8)


def test_interrupted_copy_run_again_finishes_with_the_same_result(
    provenance: DagProvenance, empty_db_url: str, new_id: NewId
) -> None:
    _fill(provenance, new_id)

    class Interrupted(Exception):
        pass

    def stop_in(phase: str) -> Callable[[str, int, int], None]:
        def progress(current: str, done: int, total: int) -> None:
            if current == phase:
                raise Interrupted

        return progress

    with DagProvenance(empty_db_url) as target:
        for phase in ("runs", "node_executions", "edge_traversals", "parent links"):
            with pytest.raises(Interrupted):
                copy_store(provenance, target, batch_size=2, progress=stop_in(phase))
        result = copy_store(provenance, target, batch_size=2)
        assert dump_tables(target) == dump_tables(provenance)
        again = copy_store(provenance, target)
    assert result.already_present.total > 0
    assert result.total + result.already_present.total == 6 + 18 + 8
    assert again == CopyResult(
        already_present=Counts(runs=6, node_executions=18, edge_traversals=8)
    )


def test_copy_refuses_a_target_holding_a_run_the_source_lacks(
    provenance: DagProvenance, empty_db_url: str, new_id: NewId
) -> None:
    _fill(provenance, new_id)
    with DagProvenance(empty_db_url) as target:
        target.create_run(new_id("other"), "other/dag", {})
        before = dump_tables(target)
        with pytest.raises(TargetNotEmptyError, match="is not empty: its run 'other-"):
            copy_store(provenance, target)
        assert dump_tables(target) == before


def test_copy_refuses_a_target_whose_copy_of_a_row_differs(
    provenance: DagProvenance, empty_db_url: str, new_id: NewId
) -> None:
    _fill(provenance, new_id)
    with DagProvenance(empty_db_url) as target:
        copy_store(provenance, target)
        demo_run = next(r for r in provenance.get_recent_runs(50) if r.status == "failed")
        provenance.update_run_status(demo_run.run_id, "cancelled")
        before = dump_tables(target)
        with pytest.raises(TargetNotEmptyError, match="differs from the one in the source"):
            copy_store(provenance, target)
        assert dump_tables(target) == before


def test_copy_refuses_to_copy_a_database_onto_itself(provenance: DagProvenance) -> None:
    with pytest.raises(InvalidInputError, match="same database"):
        copy_store(provenance, provenance)


@pytest.mark.parametrize(
    ("source_engine", "target_engine"),
    [("sqlite", "postgresql"), ("postgresql", "mysql"), ("mysql", "sqlite")],
)
def test_copy_between_engines_preserves_every_value_and_refuses_a_used_target(
    source_engine: str, target_engine: str, tmp_path: Path, new_id: NewId
) -> None:
    with (
        _database(source_engine, tmp_path, "source") as source_url,
        _database(target_engine, tmp_path, "target") as target_url,
        _stores(source_url, target_url) as (source, target),
    ):
        _fill(source, new_id)
        result = copy_store(source, target, batch_size=4)
        assert result == CopyResult(runs=6, node_executions=18, edge_traversals=8)
        assert dump_tables(target) == dump_tables(source)

        target.create_run(new_id("stray"), "stray/dag", {})
        with pytest.raises(TargetNotEmptyError, match="'stray-"):
            copy_store(source, target)
