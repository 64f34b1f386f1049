"""NullProvenance and DagProvenance as drop-ins for lythonic's classes."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from lythonic.compose import dag_provenance as lythonic
from lythonic.compose.dag_runner import DagRunner
from lythonic.compose.namespace import Dag

from dag_provenance import DagProvenance, DagRun, NullProvenance, RunStatus

LYTHONIC_METHODS = sorted(
    name
    for name, _ in inspect.getmembers(lythonic.DagProvenance, inspect.isfunction)
    if not name.startswith("_")
)


def test_null_provenance_discards_writes_and_answers_reads_with_nothing() -> None:
    null = NullProvenance()
    null.create_run("r", "pkg:dag", {}, parent_run_id=None, initiator="usr")
    null.update_run_status("r", "paused")
    null.record_node_start("r", "a", "{}", is_source=True, is_sink=False)
    null.record_node_skipped("r", "a", "1")
    null.complete_node_with_edges("r", "a", "1", [("a", "b")])
    null.fail_node_and_finish_run("r", "a", "boom")
    null.finish_run("r", "completed", sink_outputs_json="{}")

    assert null.get_run("r") is None
    assert null.get_node_executions("r") == []
    assert null.get_node_output("r", "a") is None
    assert null.get_pending_nodes("r") == []
    assert null.get_edge_traversals("r") == []
    assert null.inspect_run("r") is None
    assert null.get_recent_runs(limit=5, status=RunStatus.RUNNING, dag_nsref="pkg:dag") == []
    assert null.get_active_runs() == []
    assert null.get_child_runs("r") == []
    run = DagRun(run_id="r", dag_nsref="pkg:dag", status="running", started_at="2030-01-01T00:00Z")
    null.load_io(run)
    assert run.io is None
    with null.batch() as same:
        assert same is null
    null.close()


@pytest.mark.parametrize("name", LYTHONIC_METHODS)
def test_dag_provenance_takes_every_argument_lythonic_s_does(name: str) -> None:
    theirs = inspect.signature(getattr(lythonic.DagProvenance, name)).parameters
    ours = inspect.signature(getattr(DagProvenance, name)).parameters
    positional = [p for p in ours.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert [p.name for p in positional[: len(theirs)]] == list(theirs)
    for p in theirs.values():
        assert ours[p.name].default == p.default


@pytest.mark.parametrize(
    "name",
    sorted(
        name
        for name, _ in inspect.getmembers(lythonic.NullProvenance, inspect.isfunction)
        if not name.startswith("_")
    ),
)
def test_null_provenance_takes_every_argument_lythonic_s_does(name: str) -> None:
    theirs = inspect.signature(getattr(lythonic.NullProvenance, name)).parameters
    ours = inspect.signature(getattr(NullProvenance, name)).parameters
    assert list(ours)[: len(theirs)] == list(theirs)


def test_null_provenance_has_every_public_method_of_dag_provenance() -> None:
    public = {
        n
        for n in dir(DagProvenance)
        if not n.startswith("_") and callable(getattr(DagProvenance, n))
    }
    assert public <= set(dir(NullProvenance))


def double(n: int) -> int:
    return 2 * n


def test_lythonic_s_runner_runs_a_dag_with_null_provenance() -> None:
    dag = Dag()
    dag.node(double)
    runner = DagRunner(dag, provenance=NullProvenance())  # type: ignore[arg-type]

    result = asyncio.run(runner.run(source_inputs={"double": {"n": 4}}))

    assert (result.status, result.outputs) == ("completed", {"double": 8})
