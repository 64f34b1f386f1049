"""The async stores show the sync stores' API: the same methods, with the
same parameters, results and checks, as coroutines."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from dag_provenance import (
    AsyncDagProvenance,
    AsyncNullProvenance,
    DagProvenance,
    DagRun,
    InvalidStatusError,
    NullProvenance,
    RunStatus,
)

# What differs by nature: the context-manager protocol and closing; and
# listening, which touches no database (plain methods on both stores).
OWN_PROTOCOL = {"close", "batch", "add_listener", "remove_listener"}


def public_methods(cls: type) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))}


API = sorted(public_methods(DagProvenance) - OWN_PROTOCOL)


def test_the_async_stores_have_every_public_method_of_the_sync_ones() -> None:
    assert public_methods(AsyncDagProvenance) == public_methods(DagProvenance)
    assert public_methods(AsyncNullProvenance) == public_methods(NullProvenance)
    assert public_methods(NullProvenance) == public_methods(DagProvenance)


@pytest.mark.parametrize("name", API)
@pytest.mark.parametrize(
    ("sync", "asynchronous"),
    [(DagProvenance, AsyncDagProvenance), (NullProvenance, AsyncNullProvenance)],
)
def test_each_method_is_a_coroutine_with_the_sync_method_s_signature_and_docs(
    name: str, sync: type, asynchronous: type
) -> None:
    ours, theirs = getattr(asynchronous, name), getattr(sync, name)
    assert inspect.iscoroutinefunction(ours)
    assert not inspect.iscoroutinefunction(theirs)
    assert inspect.signature(ours) == inspect.signature(theirs)
    assert ours.__doc__ and ours.__doc__ == theirs.__doc__


def test_the_async_null_store_checks_input_and_answers_with_nothing() -> None:
    async def main() -> None:
        async with AsyncNullProvenance() as null:
            await null.create_run("r", "pkg:dag", {}, parent_run_id=None, initiator="usr")
            await null.record_node_start("r", "a", "{}", is_source=True)
            await null.complete_node_with_edges("r", "a", "1", [("a", "b")])
            await null.fail_node_and_finish_run("r", "a", "boom")
            with pytest.raises(InvalidStatusError):
                await null.update_run_status("r", "nonsense")
            assert await null.get_run("r") is None
            assert await null.get_node_executions("r") == []
            assert await null.get_pending_nodes("r") == []
            assert await null.inspect_run("r") is None
            assert await null.get_recent_runs(limit=5, status=RunStatus.RUNNING) == []
            assert await null.get_child_runs("r") == []
            run = DagRun(
                run_id="r", dag_nsref="pkg:dag", status="running", started_at="2030-01-01T00:00Z"
            )
            await null.load_io(run)
            assert run.io is None
            async with null.batch() as same:
                assert same is null

    asyncio.run(main())


def test_a_sync_null_store_refuses_the_same_input() -> None:
    with pytest.raises(InvalidStatusError):
        NullProvenance().update_run_status("r", "nonsense")
