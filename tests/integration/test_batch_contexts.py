"""`batch()` belongs to the execution context that opened it: asyncio tasks,
threads and nested batches, on every engine.

A batch once belonged to a thread, so every asyncio task on the event loop's
thread joined whichever batch another task had open, and lost its writes when
that batch rolled back after the call had returned.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable

import pytest

from dag_provenance import BatchThreadError, DagProvenance

from .conftest import Refused

pytestmark = pytest.mark.both_stores

NewId = Callable[[str], str]


class BatchAbandoned(Exception):
    """Raised by a test to make its batch roll back."""


def test_a_task_outside_the_batch_does_not_see_the_batch_s_uncommitted_writes(
    provenance: DagProvenance, new_id: NewId
) -> None:
    in_batch = new_id("run")

    async def main() -> object:
        opened, looked = asyncio.Event(), asyncio.Event()
        seen: list[object] = []

        async def batching() -> None:
            with provenance.batch():
                provenance.create_run(in_batch, "tests:batch", {})
                opened.set()
                await looked.wait()

        async def looking() -> None:
            await opened.wait()
            seen.append(provenance.get_run(in_batch))
            looked.set()

        await asyncio.gather(batching(), looking())
        return seen[0]

    assert asyncio.run(main()) is None
    assert provenance.get_run(in_batch) is not None


def test_a_write_of_another_task_survives_a_batch_that_rolls_back(
    provenance: DagProvenance, new_id: NewId, engine_name: str
) -> None:
    if engine_name == "sqlite":
        pytest.skip("SQLite has one writer: another task's write waits for the batch's write lock")
    in_batch, someone_elses = new_id("run"), new_id("someone-elses")

    async def main() -> None:
        opened, written = asyncio.Event(), asyncio.Event()

        async def batching() -> None:
            with provenance.batch():
                provenance.create_run(in_batch, "tests:batch", {})
                opened.set()
                await written.wait()
                raise BatchAbandoned

        async def writing() -> None:
            await opened.wait()
            provenance.create_run(someone_elses, "tests:batch", {})
            written.set()

        results = await asyncio.gather(batching(), writing(), return_exceptions=True)
        assert isinstance(results[0], BatchAbandoned)
        assert results[1] is None

    asyncio.run(main())

    assert provenance.get_run(in_batch) is None
    assert provenance.get_run(someone_elses) is not None


def test_tasks_created_inside_a_batch_join_it(provenance: DagProvenance, new_id: NewId) -> None:
    run_ids = [new_id("run") for _ in range(3)]

    async def main() -> None:
        async def create(run_id: str) -> None:
            provenance.create_run(run_id, "tests:batch", {})

        with provenance.batch():
            await asyncio.gather(*(create(run_id) for run_id in run_ids))
            raise BatchAbandoned

    with pytest.raises(BatchAbandoned):
        asyncio.run(main())
    assert [provenance.get_run(run_id) for run_id in run_ids] == [None, None, None]


def test_a_task_that_outlives_its_batch_writes_in_its_own_transaction(
    provenance: DagProvenance, new_id: NewId
) -> None:
    in_batch, after_batch = new_id("run"), new_id("run")

    async def main() -> None:
        batch_ended = asyncio.Event()

        async def straggler() -> None:
            await batch_ended.wait()
            provenance.create_run(after_batch, "tests:batch", {})

        task: asyncio.Task[None] | None = None
        try:
            with provenance.batch():
                provenance.create_run(in_batch, "tests:batch", {})
                task = asyncio.create_task(straggler())
                raise BatchAbandoned
        except BatchAbandoned:
            batch_ended.set()
        assert task is not None
        await task

    asyncio.run(main())
    assert provenance.get_run(in_batch) is None
    assert provenance.get_run(after_batch) is not None


def test_a_thread_without_the_context_runs_its_calls_outside_the_batch(
    provenance: DagProvenance, new_id: NewId
) -> None:
    in_batch = new_id("run")
    seen: list[object] = []
    with pytest.raises(BatchAbandoned), provenance.batch():
        provenance.create_run(in_batch, "tests:batch", {})
        reader = threading.Thread(target=lambda: seen.append(provenance.get_run(in_batch)))
        reader.start()
        reader.join()
        raise BatchAbandoned
    assert seen == [None]
    assert provenance.get_run(in_batch) is None


@pytest.mark.sync_store(reason="threads carrying a batch's context are the sync store's concern")
def test_a_call_on_another_thread_in_a_copy_of_the_batch_s_context_is_refused(
    provenance: DagProvenance, new_id: NewId, refused: Refused
) -> None:
    in_batch, from_thread = new_id("run"), new_id("run")

    async def main() -> None:
        with provenance.batch():
            provenance.create_run(in_batch, "tests:batch", {})
            await asyncio.to_thread(provenance.create_run, from_thread, "tests:batch", {})

    with refused(BatchThreadError, match="another thread"):
        asyncio.run(main())
    assert provenance.get_run(from_thread) is None

    errors: list[BaseException] = []

    def in_copied_context() -> None:
        try:
            provenance.get_run(in_batch)
        except BatchThreadError as e:
            errors.append(e)

    with provenance.batch():
        copied = contextvars.copy_context()
        thread = threading.Thread(target=copied.run, args=(in_copied_context,))
        thread.start()
        thread.join()
    assert len(errors) == 1


def test_a_batch_inside_a_batch_that_raises_undoes_only_its_own_calls(
    provenance: DagProvenance, new_id: NewId
) -> None:
    outer_run, inner_run = new_id("outer"), new_id("inner")
    with provenance.batch():
        provenance.create_run(outer_run, "tests:batch", {})
        with pytest.raises(BatchAbandoned), provenance.batch():
            provenance.create_run(inner_run, "tests:batch", {})
            provenance.record_node_start(outer_run, "a", "{}")
            raise BatchAbandoned
        assert provenance.get_run(inner_run) is None
        provenance.record_node_start(outer_run, "b", "{}")

    assert provenance.get_run(inner_run) is None
    assert [n["node_label"] for n in provenance.get_node_executions(outer_run)] == ["b"]


def test_a_batch_inside_a_batch_commits_with_the_outer_one_or_not_at_all(
    provenance: DagProvenance, new_id: NewId
) -> None:
    kept_outer, kept_inner = new_id("outer"), new_id("inner")
    with provenance.batch():
        provenance.create_run(kept_outer, "tests:batch", {})
        with provenance.batch():
            provenance.create_run(kept_inner, "tests:batch", {})
    assert provenance.get_run(kept_outer) is not None
    assert provenance.get_run(kept_inner) is not None

    dropped_outer, dropped_inner = new_id("outer"), new_id("inner")
    with pytest.raises(BatchAbandoned), provenance.batch():
        provenance.create_run(dropped_outer, "tests:batch", {})
        with provenance.batch():
            provenance.create_run(dropped_inner, "tests:batch", {})
        raise BatchAbandoned
    assert provenance.get_run(dropped_outer) is None
    assert provenance.get_run(dropped_inner) is None


def test_each_store_has_its_own_batch(provenance: DagProvenance, new_id: NewId) -> None:
    other = DagProvenance(provenance.engine)
    in_batch = new_id("run")
    with provenance.batch():
        provenance.create_run(in_batch, "tests:batch", {})
        assert other.get_run(in_batch) is None
        assert provenance.get_run(in_batch) is not None
