"""Who started a run, through lythonic's real DagRunner and TriggerManager,
whichever of the two `initiated_by` context managers the caller uses.

lythonic's runner reads its own `run_initiator` on the event loop before it
hops to an executor thread, and its `replay()` passes no initiator at all; the
store must still record the caller's initiator, with no configuration.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Coroutine
from contextlib import AbstractContextManager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import pytest
from lythonic.compose import dag_provenance as lythonic_provenance
from lythonic.compose.dag_runner import DagRunner, DagRunResult
from lythonic.compose.namespace import Namespace, NsNodeConfig, TriggerConfig
from lythonic.compose.trigger import TriggerManager, TriggerStore

import dag_provenance
from dag_provenance import SCHEDULER, DagProvenance, DagRun

from .lythonic_dags import (
    FAIL_ONCE,
    call_dag,
    flaky_dag,
    linear_dag,
    map_dag,
    nested_dag,
)

pytestmark = pytest.mark.both_stores

NewId = Callable[[str], str]
InitiatedBy = Callable[[str | None], AbstractContextManager[None]]

INITIATED_BY: dict[str, InitiatedBy] = {
    "dag_provenance.initiated_by": dag_provenance.initiated_by,
    "lythonic.initiated_by": lythonic_provenance.initiated_by,
}


@pytest.fixture(params=list(INITIATED_BY))
def initiated_by(request: pytest.FixtureRequest) -> InitiatedBy:
    """Each test runs once with this library's `initiated_by`, once with lythonic's."""
    return INITIATED_BY[request.param]


def _as(
    initiated_by: InitiatedBy,
    who: str | None,
    work: Callable[[], Coroutine[Any, Any, DagRunResult]],
) -> DagRunResult:
    async def attributed() -> DagRunResult:
        with initiated_by(who):
            return await work()

    return asyncio.run(attributed())


def _tree(store: DagProvenance, run_id: str) -> list[DagRun]:
    run = store.inspect_run(run_id)
    assert run is not None
    return list(run.walk())


def _initiators(store: DagProvenance, run_id: str) -> dict[str, str | None]:
    return {run.dag_nsref: run.initiated_by for run in _tree(store, run_id)}


def test_run_records_the_initiator_of_either_context_manager(
    provenance: DagProvenance, new_id: NewId, initiated_by: InitiatedBy
) -> None:
    user = new_id("usr")
    runner = DagRunner(linear_dag(), provenance=provenance)  # type: ignore[arg-type]

    result = _as(
        initiated_by,
        user,
        lambda: runner.run(source_inputs={"load": {"path": "a"}}, dag_nsref=new_id("tests")),
    )

    assert result.status == "completed"
    assert (provenance.get_run(result.run_id) or {})["initiated_by"] == user


@pytest.mark.parametrize("dag", [map_dag, call_dag, nested_dag], ids=["map", "call", "nested"])
def test_sub_dag_runs_of_composite_nodes_record_the_initiator(
    provenance: DagProvenance,
    new_id: NewId,
    initiated_by: InitiatedBy,
    dag: Callable[[], Any],
) -> None:
    user = new_id("usr")
    runner = DagRunner(dag(), provenance=provenance)  # type: ignore[arg-type]
    source = "split" if dag is map_dag else "seed"
    inputs = {source: {"text": "p q"}} if dag is map_dag else {source: {"token": "p q"}}

    result = _as(
        initiated_by, user, lambda: runner.run(source_inputs=inputs, dag_nsref=new_id("tests"))
    )

    assert result.status == "completed"
    initiators = _initiators(provenance, result.run_id)
    assert len(initiators) > 1  # the run and its sub-DAG runs
    assert set(initiators.values()) == {user}


def test_replay_records_the_replaying_initiator(
    provenance: DagProvenance, new_id: NewId, initiated_by: InitiatedBy
) -> None:
    original_user, replaying_user = new_id("usr"), new_id("usr")
    dag = linear_dag()
    runner = DagRunner(dag, provenance=provenance)  # type: ignore[arg-type]
    original = _as(
        initiated_by,
        original_user,
        lambda: runner.run(source_inputs={"load": {"path": "a"}}, dag_nsref=new_id("tests")),
    )

    replayed = _as(initiated_by, replaying_user, lambda: runner.replay(original.run_id, {"count"}))

    assert replayed.status == "completed"
    assert (provenance.get_run(replayed.run_id) or {})["initiated_by"] == replaying_user
    assert (provenance.get_run(original.run_id) or {})["initiated_by"] == original_user


def test_restart_keeps_the_original_initiator(
    provenance: DagProvenance, new_id: NewId, initiated_by: InitiatedBy
) -> None:
    original_user, restarting_user = new_id("usr"), new_id("usr")
    token = new_id("token")
    FAIL_ONCE.add(token)
    dag = flaky_dag()
    runner = DagRunner(dag, provenance=provenance)  # type: ignore[arg-type]
    first = _as(
        initiated_by,
        original_user,
        lambda: runner.run(source_inputs={"seed": {"token": token}}, dag_nsref=new_id("tests")),
    )
    assert first.status == "failed"

    again = _as(initiated_by, restarting_user, lambda: runner.restart(first.run_id))

    assert (again.run_id, again.status) == (first.run_id, "completed")
    assert (provenance.get_run(first.run_id) or {})["initiated_by"] == original_user


def test_an_explicit_initiator_wins_over_both_context_variables(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id, explicit = new_id("run"), new_id("usr")
    with (
        dag_provenance.initiated_by(new_id("usr")),
        lythonic_provenance.initiated_by(new_id("usr")),
    ):
        provenance.create_run(run_id, "tests:explicit", {}, initiator=explicit)
    assert (provenance.get_run(run_id) or {})["initiated_by"] == explicit


def test_the_innermost_initiated_by_of_the_two_libraries_wins(
    provenance: DagProvenance, new_id: NewId
) -> None:
    outer, inner = new_id("usr"), new_id("usr")
    cases = {
        "ours then lythonic's": (dag_provenance.initiated_by, lythonic_provenance.initiated_by),
        "lythonic's then ours": (lythonic_provenance.initiated_by, dag_provenance.initiated_by),
    }
    for outer_cm, inner_cm in cases.values():
        with outer_cm(outer):
            with inner_cm(inner):
                inside = new_id("run")
                provenance.create_run(inside, "tests:nesting", {})
            with inner_cm(None):
                cleared = new_id("run")
                provenance.create_run(cleared, "tests:nesting", {})
            after = new_id("run")
            provenance.create_run(after, "tests:nesting", {})
        recorded = [(provenance.get_run(r) or {})["initiated_by"] for r in (inside, cleared, after)]
        assert recorded == [inner, None, outer]


def test_a_store_given_an_initiator_var_reads_only_that_variable(
    provenance: DagProvenance, new_id: NewId
) -> None:
    host_var: ContextVar[str | None] = ContextVar("host_initiator", default=None)
    store = DagProvenance(provenance.engine, initiator_var=host_var)
    host_user = new_id("usr")
    token = host_var.set(host_user)
    try:
        with dag_provenance.initiated_by(new_id("usr")):
            run_id = new_id("run")
            store.create_run(run_id, "tests:host-var", {})
    finally:
        host_var.reset(token)
    unset = new_id("run")
    with dag_provenance.initiated_by(new_id("usr")):
        store.create_run(unset, "tests:host-var", {})

    assert (store.get_run(run_id) or {})["initiated_by"] == host_user
    assert (store.get_run(unset) or {})["initiated_by"] is None


def seed_trigger(token: str) -> str:
    return token + ":fired"


def test_a_run_fired_by_a_trigger_s_schedule_is_initiated_by_the_scheduler(
    provenance: DagProvenance, new_id: NewId, tmp_path: Path
) -> None:
    namespace = Namespace()
    nsref = f"tests.triggers:{new_id('seed').replace('-', '_')}"
    name = new_id("every-second")
    namespace.register(
        seed_trigger,
        nsref=nsref,
        config=NsNodeConfig(
            nsref=nsref,
            triggers=[
                TriggerConfig(name=name, schedule="* * * * * *", payload={"token": new_id("t")})
            ],
        ),
    )
    triggers_db = tmp_path / "triggers.db"
    manager = TriggerManager(namespace, TriggerStore(triggers_db), provenance=provenance)  # type: ignore[arg-type]
    manager.activate(name)
    # The schedule was due long ago, so the first poll fires it.
    with sqlite3.connect(triggers_db) as db:
        db.execute("UPDATE trigger_activations SET created_at = 0, last_run_at = 0")

    async def first_scheduled_fire() -> DagRunResult:
        fired: asyncio.Future[DagRunResult] = asyncio.get_running_loop().create_future()
        fire = manager.fire

        async def fire_and_tell(name: str, payload: dict[str, Any] | None = None) -> DagRunResult:
            result = await fire(name, payload)
            if not fired.done():
                fired.set_result(result)
            return result

        manager.fire = fire_and_tell  # type: ignore[method-assign]
        # Someone else's initiator around start() must not leak into scheduled runs.
        with dag_provenance.initiated_by(new_id("usr")):
            manager.start()
        try:
            return await asyncio.wait_for(fired, timeout=60)
        finally:
            manager.stop()

    result = asyncio.run(first_scheduled_fire())

    assert result.status == "completed"
    assert (provenance.get_run(result.run_id) or {})["initiated_by"] == SCHEDULER
