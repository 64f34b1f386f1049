"""Many threads on one store, on every engine: no call fails, nothing is lost,
and every multi-statement read shows one snapshot of the database."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from dag_provenance import DagProvenance, DagRun

from ..stores import statement_engine, statement_thread, sync_writer
from .workload import (
    EDGES,
    Rows,
    fails,
    row_counts,
    rows_of_runs,
    snapshot_violations,
    stored_violations,
    write_run,
)

pytestmark = pytest.mark.both_stores

WRITERS = 8
RUNS_PER_WRITER = 25
# The reader stops once it has made this many reads and every writer is done.
MIN_READS = 40


@pytest.mark.slow
def test_eight_writer_threads_and_a_reader_lose_nothing_and_read_consistent_snapshots(
    provenance: DagProvenance,
) -> None:
    tag = uuid.uuid4().hex[:8]
    parents = [f"{tag}-parent-{w}" for w in range(WRITERS)]
    for parent in parents:
        provenance.create_run(parent, f"reliability:{tag}", {})
    writers_done = threading.Event()
    reads = {"inspect_run": 0, "get_recent_runs": 0, "get_child_runs": 0, "load_io": 0}
    runs_seen: set[str] = set()
    violations: list[str] = []

    def write(w: int) -> int:
        for i in range(RUNS_PER_WRITER):
            # nsref under the parent's, so sub-DAG runs also hang under parent nodes
            write_run(
                provenance,
                f"{tag}-w{w}-r{i}",
                i,
                parent_run_id=parents[w],
                dag_nsref=f"reliability:{tag}/n0[{i}]",
            )
        return RUNS_PER_WRITER

    def check(runs: list[DagRun]) -> None:
        for run in runs:
            runs_seen.add(run.run_id)
            violations.extend(snapshot_violations(run))

    def read() -> int:
        turn = 0
        while not writers_done.is_set() or turn < MIN_READS:
            parent = parents[turn % WRITERS]
            children = provenance.get_child_runs(parent)
            reads["get_child_runs"] += 1
            check(children)
            check(provenance.get_recent_runs(limit=20))
            reads["get_recent_runs"] += 1
            tree = provenance.inspect_run(parent)
            reads["inspect_run"] += 1
            assert tree is not None
            check([tree])
            if children:
                newest = children[-1]
                provenance.load_io(newest)
                reads["load_io"] += 1
                for label, node in newest.nodes.items():
                    if node.status == "completed":
                        assert node.io is not None and node.io.output_json, (newest.run_id, label)
            turn += 1
        return turn

    with ThreadPoolExecutor(WRITERS + 1) as pool:
        reader = pool.submit(read)
        written = [pool.submit(write, w) for w in range(WRITERS)]
        try:
            assert [f.result() for f in written] == [RUNS_PER_WRITER] * WRITERS
        finally:
            writers_done.set()
        assert reader.result() >= MIN_READS

    assert violations == []
    assert runs_seen, "the reader saw no run at all"
    per_writer = rows_of_runs(range(RUNS_PER_WRITER))
    parents_rows = Rows(WRITERS, 0, 0)
    assert row_counts(provenance.engine) == parents_rows + Rows(
        per_writer.runs * WRITERS, per_writer.nodes * WRITERS, per_writer.edges * WRITERS
    )
    assert stored_violations(provenance.engine) == []
    statuses = [r.status for p in parents for r in provenance.get_child_runs(p)]
    assert statuses.count("failed") == WRITERS * sum(map(fails, range(RUNS_PER_WRITER)))
    assert statuses.count("completed") == len(statuses) - statuses.count("failed")


# --- a writer commits between a read's statements -----------------------------------


@contextmanager
def commit_between_statements(
    store: DagProvenance, after_select: int, commit: Callable[[], None]
) -> Iterator[list[str]]:
    """While the block runs, the calling thread's `after_select`-th SELECT (the
    store's, for an async store) is
    followed, before the read's next statement, by `commit` run to completion
    on another thread (another connection). Yields the SELECTs the thread sent."""
    reader = statement_thread(store)
    selects: list[str] = []
    fired = threading.Event()

    def after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.get_ident() != reader or not statement.lstrip().upper().startswith(
            ("SELECT", "WITH")
        ):
            return
        selects.append(statement)
        if len(selects) == after_select and not fired.is_set():
            fired.set()
            errors: list[BaseException] = []

            def run() -> None:
                try:
                    commit()
                except BaseException as e:  # re-raised on the reader's thread
                    errors.append(e)

            writer = threading.Thread(target=run)
            writer.start()
            writer.join()
            if errors:
                raise errors[0]

    engine = statement_engine(store)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield selects
    finally:
        event.remove(engine, "after_cursor_execute", after)
    assert fired.is_set(), f"the read sent only {len(selects)} SELECTs"


def half_done_run(store: DagProvenance, run_id: str, parent: str | None, nsref: str) -> None:
    """A running run whose n0 is completed and whose n1 and n2 are running."""
    store.create_run(run_id, nsref, {}, parent_run_id=parent)
    store.record_node_start(run_id, "n0", "{}", is_source=True)
    store.complete_node_with_edges(run_id, "n0", '{"edges": 2}', [("n0", "n1"), ("n0", "n2")])
    store.record_node_start(run_id, "n1", "{}")
    store.record_node_start(run_id, "n2", "{}")


def finish_it(store: DagProvenance, run_id: str) -> Callable[[], None]:
    """Complete n1 with its edge, then fail n2 and the run: two commits."""

    def commit() -> None:
        store.complete_node_with_edges(run_id, "n1", '{"edges": 1}', [("n1", "n3")])
        store.fail_node_and_finish_run(run_id, "n2", "boom")

    return commit


READS: dict[str, Callable[[DagProvenance, str, str], list[DagRun]]] = {
    "inspect_run": lambda s, parent, _run: [r for r in [s.inspect_run(parent)] if r],
    "get_child_runs": lambda s, parent, _run: s.get_child_runs(parent),
    "get_recent_runs": lambda s, _parent, _run: s.get_recent_runs(limit=5),
}


def selects_sent(store: DagProvenance, read: Callable[[], object]) -> int:
    reader = statement_thread(store)
    count = 0

    def after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal count
        if threading.get_ident() == reader and statement.lstrip().upper().startswith(
            ("SELECT", "WITH")
        ):
            count += 1

    engine = statement_engine(store)
    event.listen(engine, "after_cursor_execute", after)
    try:
        read()
    finally:
        event.remove(engine, "after_cursor_execute", after)
    return count


@pytest.mark.parametrize("name", READS)
def test_a_read_shows_one_snapshot_when_a_writer_commits_between_its_statements(
    provenance: DagProvenance, name: str
) -> None:
    read = READS[name]
    tag = uuid.uuid4().hex[:8]
    parent = f"{tag}-parent"
    provenance.create_run(parent, f"snap:{tag}", {})
    # the composite node the child runs hang under in inspect_run's tree
    provenance.record_node_start(parent, "n0", "{}")
    runs = [f"{tag}-run-{gap}" for gap in range(1, 6)]
    for i, run_id in enumerate(runs):
        half_done_run(provenance, run_id, parent, f"snap:{tag}/n0[{i}]")
    gaps = selects_sent(provenance, lambda: read(provenance, parent, parent))
    writer = sync_writer(provenance)  # commits on another thread while the read waits
    assert 2 <= gaps <= len(runs), f"{name} reads in {gaps} statement(s)"
    checked = 0
    for gap, run_id in zip(range(1, gaps), runs, strict=False):
        with commit_between_statements(provenance, gap, finish_it(writer, run_id)):
            before = read(provenance, parent, run_id)
        after = read(provenance, parent, run_id)

        shown_before = find(before, run_id)
        assert shown_before.status == "running"
        assert {k: (n.status, len(n.edges)) for k, n in shown_before.nodes.items()} == {
            "n0": ("completed", 2),
            "n1": ("running", 0),
            "n2": ("running", 0),
        }
        shown_after = find(after, run_id)
        assert shown_after.status == "failed"
        assert {k: (n.status, len(n.edges)) for k, n in shown_after.nodes.items()} == {
            "n0": ("completed", 2),
            "n1": ("completed", 1),
            "n2": ("failed", 0),
        }
        checked += 1
    assert checked == gaps - 1
    assert EDGES["n1"] == ["n3"]


def find(runs: list[DagRun], run_id: str) -> DagRun:
    """`run_id` among `runs` or hung under their nodes as a sub-DAG run."""
    stack = list(runs)
    while stack:
        run = stack.pop()
        if run.run_id == run_id:
            return run
        for node in run.nodes.values():
            stack.extend((node.sub_dags or {}).values())
    raise AssertionError(f"{run_id} not shown")


def test_load_io_reads_a_run_and_its_nodes_in_one_statement(provenance: DagProvenance) -> None:
    run_id = f"io-{uuid.uuid4().hex[:8]}"
    half_done_run(provenance, run_id, None, "snap:io")
    run = provenance.inspect_run(run_id)
    assert run is not None

    assert selects_sent(provenance, lambda: provenance.load_io(run)) == 1
    assert run.io is not None
    assert run.nodes["n0"].io is not None and run.nodes["n0"].io.output_json == '{"edges": 2}'
