"""Every read answers with the same shape as lythonic's own store: the same
dict keys, and models whose `model_fields_set` match field for field, so
`model_dump(exclude_unset=True)` gives the same keys.

The same lythonic DagRunner workload (a run with mapped sub-DAG runs and its
replay, a failed run, a run left running) is recorded into lythonic's store and into
ours, on every engine, and each read method is called on both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lythonic.compose import dag_provenance as lythonic_provenance
from lythonic.compose.dag_runner import DagRunner
from pydantic import BaseModel

from dag_provenance import DagProvenance

from .lythonic_dags import failing_dag, map_dag

NewId = Callable[[str], str]
Store = Any  # ours or lythonic's: the same API
RUNS = ("mapped", "failed", "replayed", "running")


def fields_set_shape(value: Any) -> Any:
    """The nested `model_fields_set` of a model tree, without its values:
    node labels and sub-DAG keys stay (they are the same in both stores)."""
    if isinstance(value, BaseModel):
        return {name: fields_set_shape(getattr(value, name)) for name in value.model_fields_set}
    if isinstance(value, dict):
        return {key: fields_set_shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [fields_set_shape(item) for item in value]
    return type(value).__name__


def dict_shape(value: Any) -> Any:
    """Keys and value types of the plain reads' dicts."""
    if isinstance(value, dict):
        return {key: dict_shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [dict_shape(item) for item in value]
    return type(value).__name__


def sorted_shape(value: Any) -> Any:
    """`dict_shape` of a listing, in an order both stores agree on."""
    if not isinstance(value, list):
        return dict_shape(value)

    def key(item: Any) -> str:
        if isinstance(item, dict):
            return repr([item.get(k) for k in ("node_label", "upstream_label", "downstream_label")])
        return repr(item)

    return [dict_shape(item) for item in sorted(value, key=key)]


class Recorded:
    """The workload's run ids in one store."""

    def __init__(self, store: Store, nsref: str, running_id: str) -> None:
        self.store = store
        self.nsref = nsref

        async def record() -> tuple[str, str, str]:
            mapped = await DagRunner(map_dag(), provenance=store).run(
                source_inputs={"split": {"text": "a b c"}}, dag_nsref=nsref
            )
            failed = await DagRunner(failing_dag(), provenance=store).run(
                source_inputs={"start": {"n": 2}}, dag_nsref=nsref
            )
            replayed = await DagRunner(map_dag(), provenance=store).replay(mapped.run_id, {"join"})
            return mapped.run_id, failed.run_id, replayed.run_id

        self.mapped, self.failed, self.replayed = asyncio.run(record())
        store.create_run(running_id, nsref, {"split": {"text": "x"}})
        store.record_node_start(running_id, "split", '{"text": "x"}', is_source=True)
        self.running = running_id


@pytest.fixture
def both(provenance: DagProvenance, new_id: NewId, tmp_path: Path) -> tuple[Recorded, Recorded]:
    nsref = new_id("tests") + ":parity"
    running = new_id("running")
    theirs = lythonic_provenance.DagProvenance(tmp_path / "lythonic.db")
    return Recorded(provenance, nsref, running), Recorded(theirs, nsref, running)


def test_inspect_run_and_get_child_runs_models_have_lythonic_s_fields_set(
    both: tuple[Recorded, Recorded],
) -> None:
    ours, theirs = both
    for name in RUNS:
        mine = ours.store.inspect_run(getattr(ours, name))
        original = theirs.store.inspect_run(getattr(theirs, name))
        assert fields_set_shape(mine) == fields_set_shape(original), name
        assert (
            mine.model_dump(exclude_unset=True).keys()
            == original.model_dump(exclude_unset=True).keys()
        )

    mine_children = ours.store.get_child_runs(ours.mapped)
    their_children = theirs.store.get_child_runs(theirs.mapped)
    assert len(mine_children) == len(their_children) == 3
    by_nsref = {run.dag_nsref: fields_set_shape(run) for run in their_children}
    assert {run.dag_nsref: fields_set_shape(run) for run in mine_children} == by_nsref


def test_listed_runs_have_lythonic_s_fields_set(both: tuple[Recorded, Recorded]) -> None:
    ours, theirs = both

    def roots(runs: list[Any], store: Recorded) -> dict[str, Any]:
        wanted = {getattr(store, name): name for name in RUNS}
        return {wanted[r.run_id]: fields_set_shape(r) for r in runs if r.run_id in wanted}

    mine = roots(ours.store.get_recent_runs(limit=1000, dag_nsref=ours.nsref), ours)
    original = roots(theirs.store.get_recent_runs(limit=1000), theirs)
    assert mine == original
    assert set(mine) == set(RUNS)

    mine_active = roots(ours.store.get_active_runs(), ours)
    original_active = roots(theirs.store.get_active_runs(), theirs)
    assert mine_active == original_active
    assert set(mine_active) >= {"running"}


@pytest.mark.parametrize("node_labels", [None, ["split"], []], ids=["all", "one", "none"])
def test_load_io_sets_the_same_fields_as_lythonic_s(
    both: tuple[Recorded, Recorded], node_labels: list[str] | None
) -> None:
    ours, theirs = both
    mine = ours.store.inspect_run(ours.mapped)
    original = theirs.store.inspect_run(theirs.mapped)
    ours.store.load_io(mine, node_labels)
    theirs.store.load_io(original, node_labels)
    assert fields_set_shape(mine) == fields_set_shape(original)


def test_plain_reads_return_lythonic_s_keys_and_value_types(
    both: tuple[Recorded, Recorded],
) -> None:
    ours, theirs = both
    for name in RUNS:
        mine, original = getattr(ours, name), getattr(theirs, name)
        for read in ("get_run", "get_node_executions", "get_pending_nodes", "get_edge_traversals"):
            # Compared as sets: our listings are in start order, lythonic's in
            # primary-key order.
            assert sorted_shape(getattr(ours.store, read)(mine)) == sorted_shape(
                getattr(theirs.store, read)(original)
            ), (name, read)
        for label in ("split", "chunks", "join", "start", "explode", "absent"):
            assert dict_shape(ours.store.get_node_output(mine, label)) == dict_shape(
                theirs.store.get_node_output(original, label)
            ), (name, label)
