"""`dag-provenance runs stats` through typer's test runner, on every engine."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from dag_provenance import DagProvenance, DagStats
from dag_provenance.cli import app

from .conftest import CLOCK_START, Clock

runner = CliRunner()
NewId = Callable[[str], str]
LABEL = "[bold]not bold[/]"
ERROR = "ValueError: bad [red]input[/]\nsecond line"


def cli(*args: str) -> Result:
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def ok(*args: str) -> Result:
    result = cli(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


@pytest.fixture
def store(empty_db_url: str) -> Iterator[DagProvenance]:
    with DagProvenance(empty_db_url) as provenance:
        yield provenance


@pytest.fixture
def dag(store: DagProvenance, clock: Clock, new_id: NewId) -> str:
    """Three runs a day apart from CLOCK_START: `fetch` takes 1, 2 and 3 s
    and fails in the last run; a sub-DAG run and another DAG beside them."""
    nsref = new_id("dag")
    clock.step = timedelta(0)
    for day, outcome in enumerate(("completed", "completed", "failed")):
        run_id = f"{nsref}-run{day}"
        clock.now = CLOCK_START + timedelta(days=day)
        store.create_run(run_id, nsref, {})
        store.record_node_start(run_id, LABEL, "{}")
        clock.advance(timedelta(seconds=day + 1))
        if outcome == "failed":
            store.fail_node_and_finish_run(run_id, LABEL, ERROR)
        else:
            store.complete_node_with_edges(run_id, LABEL, "1", [])
            store.finish_run(run_id, "completed")
    store.create_run(f"{nsref}-sub", f"{nsref}/x[0]", {}, parent_run_id=f"{nsref}-run0")
    store.create_run(f"{nsref}-other", f"{nsref}-other", {})
    return nsref


def test_stats_prints_runs_per_status_and_a_row_per_node(
    dag: str, store: DagProvenance, empty_db_url: str
) -> None:
    shown = ok("runs", "stats", "--dag", dag, "--url", empty_db_url).stdout

    lines = shown.splitlines()
    assert lines[0] == f"DAG {dag}  (all runs)"
    assert lines[1] == "3 runs: ✔ 2 completed  ✘ 1 failed"
    assert " ".join(lines[2].split()) == "NODE EXECUTIONS FAILURE RATE P50 P95 LAST FAILURE (UTC)"
    failed_at = CLOCK_START + timedelta(days=2, seconds=3)
    # The label and the error are shown as written, never read as markup.
    assert lines[3].split("  ")[0] == LABEL
    assert lines[3].split() == [
        *LABEL.split(),
        "3",
        "33.3%",
        "2.00s",
        "3.00s",
        *failed_at.strftime("%Y-%m-%d %H:%M:%S").split(),
        *ERROR.splitlines()[0].split(),
    ]
    assert "second line" not in shown


def test_stats_json_is_the_library_s_model(
    dag: str, store: DagProvenance, empty_db_url: str
) -> None:
    printed = json.loads(ok("runs", "stats", "--dag", dag, "--url", empty_db_url, "--json").stdout)

    assert printed == store.dag_stats(dag).model_dump(mode="json")
    assert DagStats.model_validate(printed).nodes[0].last_failure is not None
    assert printed["runs_by_status"] == {
        "running": 0,
        "paused": 0,
        "completed": 2,
        "failed": 1,
        "cancelled": 0,
    }


def test_since_and_until_bound_the_window(dag: str, empty_db_url: str) -> None:
    day_one = (CLOCK_START + timedelta(days=1)).isoformat()
    day_two = (CLOCK_START + timedelta(days=2)).isoformat()

    def runs(*window: str) -> Any:
        return json.loads(
            ok("runs", "stats", "--dag", dag, "--url", empty_db_url, "--json", *window).stdout
        )

    middle = runs("--since", day_one, "--until", day_two)
    assert middle["runs"] == 1 and middle["nodes"][0]["p50_seconds"] == 2.0
    assert middle["started_after"].startswith(day_one[:19])
    assert runs("--since", day_one)["runs"] == 2
    assert runs("--until", day_two)["runs"] == 2
    # The runs start in 2031: thirty days back from today reaches all of them.
    assert runs("--since", "30d")["runs"] == 3
    shown = ok("runs", "stats", "--dag", dag, "--url", empty_db_url, "--since", day_one).stdout
    assert shown.splitlines()[0].startswith(f"DAG {dag}  started since 2031-05-18 09:30:00 UTC")


def test_a_dag_without_runs_in_the_window_says_so_and_succeeds(dag: str, empty_db_url: str) -> None:
    result = ok("runs", "stats", "--dag", dag, "--url", empty_db_url, "--since", "2099-01-01")
    assert result.stdout == ""
    assert f"no runs of DAG {dag} started since 2099-01-01 00:00:00 UTC" in result.stderr

    unknown = ok("runs", "stats", "--dag", "no/such/dag", "--url", empty_db_url, "--json")
    assert json.loads(unknown.stdout)["runs"] == 0
    assert json.loads(unknown.stdout)["nodes"] == []


def test_runs_without_nodes_are_counted_with_no_node_rows(
    store: DagProvenance, empty_db_url: str, new_id: NewId
) -> None:
    nsref = new_id("dag")
    store.create_run(new_id("run"), nsref, {})

    shown = ok("runs", "stats", "--dag", nsref, "--url", empty_db_url).stdout

    assert shown.splitlines()[1:] == ["1 run: ▶ 1 running", "no node executions recorded"]


def test_an_until_before_since_and_a_missing_dag_are_refused(
    store: DagProvenance, empty_db_url: str
) -> None:
    window = ("--since", "2030-02-01", "--until", "2030-01-01")
    backwards = cli("runs", "stats", "--dag", "d", "--url", empty_db_url, *window)
    assert backwards.exit_code == 1
    assert "--until (2030-01-01 00:00:00 UTC) must be after --since" in backwards.stderr
    assert cli("runs", "stats", "--url", empty_db_url).exit_code == 2
    assert "stats" in ok("runs", "--help").stdout
