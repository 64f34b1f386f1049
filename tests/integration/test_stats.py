"""`dag_stats`: a DAG's runs per status and its per-node figures (finished
executions, failure rate, nearest-rank p50/p95, latest failure), computed in
the database, on every engine and both stores."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect

from dag_provenance import (
    DagProvenance,
    DagStats,
    InvalidInputError,
    NodeFailure,
    NodeStats,
    NullProvenance,
    RunStatus,
    statements,
)

from .conftest import Clock

pytestmark = pytest.mark.both_stores

NewId = Callable[[str], str]
NO_RUNS = {status.value: 0 for status in RunStatus}


def nearest_rank(durations: Sequence[timedelta], p: int) -> float:
    """The smallest duration d with at least p% of `durations` <= d."""
    ordered = sorted(d.total_seconds() for d in durations)
    return ordered[math.ceil(p / 100 * len(ordered)) - 1]


def execute(
    provenance: DagProvenance,
    clock: Clock,
    run_id: str,
    label: str,
    took: timedelta,
    outcome: str = "completed",
    error: str = "boom",
) -> None:
    """Record one node of `run_id` that ran exactly `took`, then `outcome`:
    completed, failed (failing the run) or running (left unfinished)."""
    clock.step = timedelta(0)
    provenance.record_node_start(run_id, label, "{}")
    clock.advance(took)
    if outcome == "completed":
        provenance.complete_node_with_edges(run_id, label, "1", [])
    elif outcome == "failed":
        provenance.fail_node_and_finish_run(run_id, label, error)
    clock.advance(timedelta(milliseconds=1))


def new_run(provenance: DagProvenance, clock: Clock, run_id: str, nsref: str, **kw: str) -> None:
    clock.step = timedelta(0)
    provenance.create_run(run_id, nsref, {}, **kw)
    clock.advance(timedelta(seconds=1))


def node(stats: DagStats, label: str) -> NodeStats:
    (found,) = (n for n in stats.nodes if n.node_label == label)
    return found


# --- percentiles ----------------------------------------------------------------------


def test_p50_and_p95_are_the_nearest_rank_durations_to_the_microsecond(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    nsref = new_id("dag")
    # Label "n<k>" has k executions: the ranks ceil(p * k / 100) fall on
    # each side of a boundary somewhere among these sizes.
    sizes = (1, 2, 3, 4, 19, 20, 21, 40)
    rng = random.Random(20310517)
    durations: dict[str, list[timedelta]] = {f"n{k}": [] for k in sizes}
    for i in range(max(sizes)):
        run_id = new_id("run")
        new_run(provenance, clock, run_id, nsref)
        for k in sizes:
            if i < k:
                took = timedelta(microseconds=rng.randrange(1, 5_000_000_000))
                if i % 7 == 3:  # ties, and durations of days and of one microsecond
                    took = [timedelta(seconds=2), timedelta(days=3, microseconds=1)][i % 2]
                if i == 5:
                    took = timedelta(microseconds=1)
                durations[f"n{k}"].append(took)
                execute(
                    provenance, clock, run_id, f"n{k}", took, "failed" if i == 8 else "completed"
                )

    stats = provenance.dag_stats(nsref)

    assert [n.node_label for n in stats.nodes] == sorted(durations)
    for label, recorded in durations.items():
        figures = node(stats, label)
        assert figures.executions == len(recorded), label
        assert figures.p50_seconds == nearest_rank(recorded, 50), label
        assert figures.p95_seconds == nearest_rank(recorded, 95), label


def test_failed_executions_count_in_the_durations_and_unfinished_ones_do_not(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    nsref, runs = new_id("dag"), [new_id("run") for _ in range(4)]
    for run_id in runs:
        new_run(provenance, clock, run_id, nsref)
    execute(provenance, clock, runs[0], "work", timedelta(seconds=1))
    execute(provenance, clock, runs[1], "work", timedelta(seconds=9), "failed")
    execute(provenance, clock, runs[2], "work", timedelta(hours=5), "running")
    provenance.record_node_skipped(runs[3], "work", "1")

    figures = node(provenance.dag_stats(nsref), "work")

    assert (figures.executions, figures.completed, figures.failed) == (2, 1, 1)
    assert (figures.p50_seconds, figures.p95_seconds) == (1.0, 9.0)


def test_a_label_only_running_or_skipped_is_listed_without_figures(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    nsref, run_id = new_id("dag"), new_id("run")
    new_run(provenance, clock, run_id, nsref)
    execute(provenance, clock, run_id, "slow", timedelta(seconds=3), "running")
    provenance.record_node_skipped(run_id, "replayed", "1")

    stats = provenance.dag_stats(nsref)

    assert stats.nodes == [
        NodeStats(node_label=label, executions=0, completed=0, failed=0)
        for label in ("replayed", "slow")
    ]


# --- failures -------------------------------------------------------------------------


def test_failure_rate_is_failed_over_finished_executions(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    nsref = new_id("dag")
    outcomes = ["completed"] * 5 + ["failed"] * 3 + ["running"]
    for outcome in outcomes:
        run_id = new_id("run")
        new_run(provenance, clock, run_id, nsref)
        execute(provenance, clock, run_id, "flaky", timedelta(seconds=1), outcome)
        execute(provenance, clock, run_id, "steady", timedelta(seconds=1))

    stats = provenance.dag_stats(nsref)

    assert (node(stats, "flaky").completed, node(stats, "flaky").failed) == (5, 3)
    assert node(stats, "flaky").failure_rate == 3 / 8
    assert node(stats, "flaky").executions == 8
    assert node(stats, "steady").failure_rate == 0.0
    assert node(stats, "steady").last_failure is None


def test_the_last_failure_is_the_latest_finished_with_ties_broken_by_run_id(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    nsref, base = new_id("dag"), new_id("run")
    early, late, tie_a, tie_b = (f"{base}-{suffix}" for suffix in ("1", "2", "3", "4"))
    for run_id in (early, late, tie_a, tie_b):
        new_run(provenance, clock, run_id, nsref)
    # `late` started after `early` but fails first: finishing time decides.
    provenance.record_node_start(early, "fetch", "{}")
    execute(provenance, clock, late, "fetch", timedelta(seconds=1), "failed", "late's")
    clock.advance(timedelta(seconds=5))
    provenance.fail_node_and_finish_run(early, "fetch", "early's")
    failed_at = clock.now
    execute(provenance, clock, tie_a, "store", timedelta(0), "completed")
    provenance.record_node_start(tie_a, "tie", "{}")
    provenance.record_node_start(tie_b, "tie", "{}")
    clock.advance(timedelta(seconds=2))
    tied_at = clock.now
    provenance.fail_node_and_finish_run(tie_b, "tie", "b's")
    provenance.fail_node_and_finish_run(tie_a, "tie", "a's")

    stats = provenance.dag_stats(nsref)

    assert node(stats, "fetch").last_failure == NodeFailure(
        run_id=early, finished_at=failed_at, error="early's"
    )
    assert node(stats, "tie").last_failure == NodeFailure(
        run_id=tie_b, finished_at=tied_at, error="b's"
    )
    assert node(stats, "store").last_failure is None
    finished_at = node(stats, "tie").last_failure.finished_at  # type: ignore[union-attr]
    assert finished_at.tzinfo is not None and finished_at.utcoffset() == timedelta(0)


def test_a_long_multiline_error_comes_back_whole(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    nsref, run_id = new_id("dag"), new_id("run")
    error = "Traceback (most recent call last):\n" + "  frame 'x' [1]\n" * 5000 + "KeyError: 'é'"
    new_run(provenance, clock, run_id, nsref)
    execute(provenance, clock, run_id, "n", timedelta(seconds=1), "failed", error)

    last = node(provenance.dag_stats(nsref), "n").last_failure

    assert last is not None and last.error == error


# --- runs, window, exact DAG ----------------------------------------------------------


def test_runs_are_counted_per_status_with_every_status_present(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    nsref = new_id("dag")
    wanted = {"running": 1, "paused": 2, "completed": 3, "failed": 1, "cancelled": 1}
    for status, count in wanted.items():
        for _ in range(count):
            run_id = new_id("run")
            new_run(provenance, clock, run_id, nsref)
            if status == "paused":
                provenance.update_run_status(run_id, status)
            elif status != "running":
                provenance.finish_run(run_id, status)

    stats = provenance.dag_stats(nsref)

    assert stats.runs_by_status == wanted
    assert list(stats.runs_by_status) == [s.value for s in RunStatus]
    assert stats.runs == 8
    assert stats.nodes == []


def test_the_window_includes_its_start_and_excludes_its_end(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    nsref = new_id("dag")
    starts: list[datetime] = []
    for i in range(4):
        run_id = new_id("run")
        starts.append(clock.now)
        new_run(provenance, clock, run_id, nsref)
        execute(provenance, clock, run_id, "work", timedelta(seconds=10 + i))
        provenance.finish_run(run_id, "completed")
        clock.advance(timedelta(minutes=1))

    inside = provenance.dag_stats(nsref, started_after=starts[1], started_before=starts[3])
    # The same window, given in another time zone.
    plus_two = timezone(timedelta(hours=2))
    same = provenance.dag_stats(
        nsref,
        started_after=starts[1].astimezone(plus_two),
        started_before=starts[3].astimezone(plus_two),
    )
    open_end = provenance.dag_stats(nsref, started_after=starts[3])
    open_start = provenance.dag_stats(nsref, started_before=starts[0])

    assert inside.runs == 2 and node(inside, "work").executions == 2
    assert (node(inside, "work").p50_seconds, node(inside, "work").p95_seconds) == (11.0, 12.0)
    assert (inside.started_after, inside.started_before) == (starts[1], starts[3])
    assert inside.started_after is not None and inside.started_after.utcoffset() == timedelta(0)
    assert same == inside
    assert open_end.runs == 1 and node(open_end, "work").p50_seconds == 13.0
    assert open_start.runs == 0 and open_start.nodes == []
    assert provenance.dag_stats(nsref).runs == 4


def test_sub_dag_runs_and_other_dags_are_left_out(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    nsref, parent, child = new_id("dag"), new_id("run"), new_id("run")
    new_run(provenance, clock, parent, nsref)
    execute(provenance, clock, parent, "enrich", timedelta(seconds=4))
    new_run(provenance, clock, child, f"{nsref}/enrich[0]", parent_run_id=parent)
    execute(provenance, clock, child, "inner", timedelta(seconds=1), "failed")
    for other in (f"{nsref}x", f"{nsref} ", nsref.upper(), nsref[:-1]):
        run_id = new_id("run")
        new_run(provenance, clock, run_id, other)
        execute(provenance, clock, run_id, "enrich", timedelta(seconds=99), "failed")

    stats = provenance.dag_stats(nsref)

    assert stats.runs == 1 and stats.runs_by_status["running"] == 1
    assert stats.nodes == [
        NodeStats(
            node_label="enrich",
            executions=1,
            completed=1,
            failed=0,
            p50_seconds=4.0,
            p95_seconds=4.0,
            failure_rate=0.0,
        )
    ]
    assert provenance.dag_stats(f"{nsref}/enrich[0]").runs == 1


HOSTILE = {
    "quotes": 'it\'s a "dag"; DROP TABLE dag_runs; --',
    "like wildcards": "100%_done",
    "newline": "line one\nline two",
    "emoji": "pipeline 🚀 ünïcode",
    "backslash": "C:\\dags\\%",
    "markup": "[bold]not bold[/]",
}


def test_hostile_nsrefs_and_labels_are_matched_exactly(
    provenance: DagProvenance, new_id: NewId, clock: Clock
) -> None:
    suffix = new_id("")
    for text in HOSTILE.values():
        run_id = new_id("run")
        new_run(provenance, clock, run_id, text + suffix)
        execute(provenance, clock, run_id, text, timedelta(seconds=2), "failed", text)
    # Read as LIKE patterns, these would match every DAG above.
    for pattern in ("%", "_", "100__done" + suffix, "%" + suffix):
        assert provenance.dag_stats(pattern).runs == 0, pattern

    for name, text in HOSTILE.items():
        stats = provenance.dag_stats(text + suffix)
        assert stats.dag_nsref == text + suffix, name
        assert stats.runs == 1, name
        assert [n.node_label for n in stats.nodes] == [text], name
        last = stats.nodes[0].last_failure
        assert last is not None and last.error == text, name


def test_a_dag_without_runs_has_empty_stats(provenance: DagProvenance, new_id: NewId) -> None:
    nsref = new_id("dag")

    stats = provenance.dag_stats(nsref, started_after=datetime(2030, 1, 1, tzinfo=UTC))

    assert stats == DagStats(
        dag_nsref=nsref,
        started_after=datetime(2030, 1, 1, tzinfo=UTC),
        runs=0,
        runs_by_status=NO_RUNS,
    )


def test_bad_input_is_refused_before_any_sql(provenance: DagProvenance) -> None:
    with pytest.raises(InvalidInputError, match="started_after must be timezone-aware"):
        provenance.dag_stats("dag", started_after=datetime(2030, 1, 1))
    with pytest.raises(InvalidInputError, match="started_before must be a datetime"):
        provenance.dag_stats("dag", started_before="2030-01-01")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="dag_nsref must be a str"):
        provenance.dag_stats(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="dag_nsref contains a NUL"):
        provenance.dag_stats("a\x00b")


# --- without a database ---------------------------------------------------------------


def test_the_null_store_answers_with_empty_stats() -> None:
    assert NullProvenance().dag_stats("x") == DagStats(
        dag_nsref="x", runs=0, runs_by_status=NO_RUNS
    )
    with pytest.raises(InvalidInputError):
        NullProvenance().dag_stats("x", started_before=datetime(2030, 1, 1))


def test_the_stats_statements_bind_every_value_and_are_built_once() -> None:
    dialects: dict[str, Dialect] = {
        "sqlite": sqlite.dialect(),
        "postgresql": postgresql.dialect(),  # type: ignore[no-untyped-call]
        "mysql": mysql.dialect(),
        "mariadb": mysql.dialect(),
    }
    windows = [frozenset({"nsref", *extra}) for extra in ((), ("from_ts",), ("to_ts",))]
    windows.append(frozenset({"nsref", "from_ts", "to_ts"}))
    for name, dialect in dialects.items():
        for window in windows:
            built = statements.stats_statements(name, window)
            assert built is statements.stats_statements(name, frozenset(window))
            for statement in built:
                sql = str(statement.compile(dialect=dialect))
                assert "'" not in sql, (name, sql)
    with pytest.raises(ValueError, match="nsref"):
        statements.stats_statements("sqlite", frozenset({"from_ts"}))
