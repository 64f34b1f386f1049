"""The `dag-provenance` command line through typer's test runner, on every engine."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from dag_provenance import DagProvenance
from dag_provenance.cli import app
from dag_provenance.engine import sqlite_file_url
from dag_provenance.formatting import STATUS_ICONS, duration
from dag_provenance.testing import scratch_database

from .conftest import dump_tables

runner = CliRunner()


def cli(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, list(args), input=input, env={"COLUMNS": "200", **(env or {})})


def ok(*args: str, input: str | None = None) -> Result:
    result = cli(*args, input=input)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def as_json(*args: str) -> Any:
    return json.loads(ok(*args, "--json").stdout)


@pytest.fixture
def demo(empty_db_url: str) -> dict[str, Any]:
    """A database holding the demo run tree; returns its run ids and URL."""
    runs = as_json("demo", "--url", empty_db_url)
    return {**runs, "url": empty_db_url}


@pytest.fixture
def other_db_url(engine_name: str, tmp_path: Path) -> Iterator[str]:
    if engine_name == "sqlite":
        yield sqlite_file_url(tmp_path / "other.db").render_as_string(False)
        return
    env = {
        "postgresql": "DAG_PROVENANCE_TEST_POSTGRES_URL",
        "mysql": "DAG_PROVENANCE_TEST_MYSQL_URL",
    }
    with scratch_database(os.environ[env[engine_name]]) as url:
        yield url


def test_demo_records_a_failed_run_with_sub_dags_and_a_completed_replay(empty_db_url: str) -> None:
    result = ok("demo", "--url", empty_db_url)

    assert "failed in `publish`" in result.stdout
    assert "sub-DAG enrich[2]" in result.stdout
    assert "PublishError: publish endpoint" in result.stdout
    with DagProvenance(empty_db_url) as store:
        runs = store.get_recent_runs(10)
    assert sorted(r.status for r in runs) == ["completed"] * 4 + ["failed"]


def test_runs_list_filters_by_status_dag_and_since(demo: dict[str, Any]) -> None:
    url = demo["url"]
    assert len(as_json("runs", "list", "--url", url)) == 5
    failed = as_json("runs", "list", "--url", url, "--status", "failed")
    assert [r["run_id"] for r in failed] == [demo["failed_run_id"]]
    top = as_json("runs", "list", "--url", url, "--dag", "demo/pipeline", "--limit", "1")
    assert [r["run_id"] for r in top] == [demo["replay_run_id"]]
    assert as_json("runs", "list", "--url", url, "--since", "2099-01-01") == []
    assert len(as_json("runs", "list", "--url", url, "--since", "1h")) == 5

    table = ok("runs", "list", "--url", url, "--wide").stdout
    assert demo["failed_run_id"] in table
    assert "✘ failed" in table and "dag-provenance demo" in table


def test_runs_show_draws_nodes_errors_edges_and_nested_sub_dags(demo: dict[str, Any]) -> None:
    url, run_id = demo["url"], demo["failed_run_id"]
    shown = ok("runs", "show", run_id, "--url", url, "--io").stdout

    assert "✘ failed  publish" in shown
    assert "error: dag_provenance.demo.PublishError" in shown
    assert "→ audit, enrich" in shown
    assert 'out: [{"id": 1' in shown
    for sub_run_id in demo["sub_run_ids"]:
        assert sub_run_id in shown
    tree = as_json("runs", "show", run_id, "--url", url)
    assert sorted(tree["nodes"]["enrich"]["sub_dags"]) == ["enrich[0]", "enrich[1]", "enrich[2]"]


def test_runs_children_and_pending(demo: dict[str, Any]) -> None:
    url, run_id = demo["url"], demo["failed_run_id"]
    children = as_json("runs", "children", run_id, "--url", url)
    assert [c["run_id"] for c in children] == demo["sub_run_ids"]
    assert as_json("runs", "pending", run_id, "--url", url) == ["publish"]
    assert as_json("runs", "pending", demo["replay_run_id"], "--url", url) == []
    assert demo["sub_run_ids"][0] in ok("runs", "children", run_id, "--url", url, "--wide").stdout


def test_runs_watch_ends_when_the_run_has_finished(demo: dict[str, Any]) -> None:
    result = ok("runs", "watch", demo["replay_run_id"], "--url", demo["url"], "--interval", "0.1")
    assert "completed" in result.stdout


def test_runs_watch_gives_up_after_its_timeout(empty_db_url: str) -> None:
    with DagProvenance(empty_db_url) as store:
        store.create_run("live-run", "live/dag", {})
    result = cli(
        "runs", "watch", "live-run", "--url", empty_db_url, "--interval", "0.05", "--timeout", "0.2"
    )
    assert result.exit_code == 1
    assert "still running after 0.2s" in result.stderr


def test_runs_graph_prints_mermaid_and_dot(demo: dict[str, Any]) -> None:
    url, run_id = demo["url"], demo["failed_run_id"]
    mermaid = ok("runs", "graph", run_id, "--url", url).stdout
    assert mermaid.startswith("flowchart LR")
    assert "subgraph run1" in mermaid
    dot = ok("runs", "graph", run_id, "--url", url, "--format", "dot").stdout
    assert dot.startswith("digraph run {")


@pytest.mark.skipif(
    shutil.which("dot") is None and not os.environ.get("CI"),
    reason="Graphviz is not installed (CI installs it)",
)
def test_runs_graph_out_svg_holds_one_node_per_run_node_coloured_by_status(
    demo: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "run.svg"
    ok("runs", "graph", demo["failed_run_id"], "--url", demo["url"], "--out", str(out))

    svg = out.read_text()
    nodes = re.findall(r'<g id="[^"]+" class="node status&#45;(\w+)">.*?fill="([^"]+)"', svg, re.S)
    # 5 nodes in the run, 2 in each of its 3 sub-DAG runs
    assert sorted(status for status, _ in nodes) == ["completed"] * 10 + ["failed"]
    assert {fill for status, fill in nodes if status == "completed"} == {"#c8e6c9"}
    assert {fill for status, fill in nodes if status == "failed"} == {"#ffcdd2"}


def test_runs_graph_without_graphviz_says_how_to_install_it(
    demo: dict[str, Any], tmp_path: Path
) -> None:
    result = cli(
        "runs",
        "graph",
        demo["failed_run_id"],
        "--url",
        demo["url"],
        "--out",
        str(tmp_path / "x.svg"),
        env={"PATH": str(tmp_path)},
    )
    assert result.exit_code == 1
    assert "apt-get install graphviz" in result.stderr


def test_runs_prune_dry_run_then_confirmed_prune(demo: dict[str, Any]) -> None:
    url = demo["url"]
    before = as_json("runs", "list", "--url", url)
    planned = as_json("runs", "prune", "--url", url, "--older-than", "0s", "--dry-run")
    assert planned["runs"] == 5 and planned["dry_run"] is True
    assert as_json("runs", "list", "--url", url) == before

    refused = cli("runs", "prune", "--url", url, "--older-than", "0s", input="n\n")
    assert refused.exit_code == 1
    assert len(as_json("runs", "list", "--url", url)) == 5

    failed_only = ok(
        "runs", "prune", "--url", url, "--older-than", "0s", "--status", "failed", "--yes"
    )
    assert "deleted 4 runs, 11 node executions, 7 edge traversals" in failed_only.stdout
    assert failed_only.stderr == ""  # no progress bar (nor its blank line) outside a terminal
    done = ok("runs", "prune", "--url", url, "--older-than", "0s", input="y\n").stdout
    assert "deleted 1 runs, 5 node executions, 0 edge traversals" in done
    assert as_json("runs", "list", "--url", url) == []


def test_db_commands_report_the_schema(demo: dict[str, Any]) -> None:
    url = demo["url"]
    status = as_json("db", "status", "--url", url)
    assert status["is_up_to_date"] is True and status["pending"] == []
    assert as_json("db", "current", "--url", url) == {"current_revision": status["head_revision"]}
    history = as_json("db", "history")
    assert history[-1]["revision"] == status["head_revision"]
    assert "up to date" in ok("db", "status", "--url", url).stdout


def test_db_downgrade_and_upgrade(other_db_url: str) -> None:
    ok("db", "upgrade", "--url", other_db_url)
    head = as_json("db", "current", "--url", other_db_url)["current_revision"]
    history = [h["revision"] for h in as_json("db", "history")]
    previous = history[history.index(head) - 1]
    ok("db", "downgrade", previous, "--url", other_db_url)
    status = as_json("db", "status", "--url", other_db_url)
    assert status["current_revision"] == previous
    assert [p["revision"] for p in status["pending"]] == [head]
    ok("db", "upgrade", "--url", other_db_url)
    assert as_json("db", "current", "--url", other_db_url) == {"current_revision": head}


def test_db_copy_copies_everything_and_refuses_a_used_target(
    demo: dict[str, Any], other_db_url: str
) -> None:
    result = as_json("db", "copy", "--url", demo["url"], "--to", other_db_url)
    assert (result["runs"], result["node_executions"], result["edge_traversals"]) == (5, 16, 7)
    with DagProvenance(demo["url"]) as source, DagProvenance(other_db_url) as target:
        assert dump_tables(target) == dump_tables(source)
        target.create_run("stray", "stray/dag", {})
    refused = cli("db", "copy", "--url", demo["url"], "--to", other_db_url)
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: the target") and "not empty" in refused.stderr


def test_errors_are_one_line_on_stderr_without_a_traceback(demo: dict[str, Any]) -> None:
    result = cli("runs", "show", "no-such-run", "--url", demo["url"])
    assert result.exit_code == 1
    assert result.stderr == "error: run 'no-such-run' does not exist\n"
    assert result.stdout == ""
    debug = cli("--debug", "runs", "show", "no-such-run", "--url", demo["url"])
    assert debug.exit_code == 1
    assert debug.exception is not None


def test_a_password_in_the_url_is_never_printed(tmp_path: Path) -> None:
    url = "postgresql+psycopg://someone:s3cr3t-pw@127.0.0.1:1/nowhere"
    for args in (["runs", "list", "--url", url], ["db", "status"], ["demo", "--url", url]):
        result = cli(*args, env={"DAG_PROVENANCE_URL": url})
        assert result.exit_code == 1
        assert "s3cr3t-pw" not in result.stdout + result.stderr
        assert result.stderr.count("\n") == 1


def test_database_comes_from_env_then_default_file(
    demo: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert (
        len(
            json.loads(
                cli("runs", "list", "--json", env={"DAG_PROVENANCE_URL": demo["url"]}).stdout
            )
        )
        == 5
    )
    missing = cli("runs", "list", env={"DAG_PROVENANCE_URL": ""})
    assert missing.exit_code == 1
    assert "no database at dag_provenance.db" in missing.stderr
    ok("demo")
    assert (tmp_path / "dag_provenance.db").exists()


# In an ordinary terminal: listings that fit 80 and 120 columns, short run ids
# that can be typed back, --url before or after the command.


def at(width: int, *args: str) -> Result:
    """The command run in a terminal `width` columns wide (rich reads $COLUMNS)."""
    result = cli(*args, env={"COLUMNS": str(width)})
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def listing_rows(screen: str, run_ids: list[str]) -> dict[str, str]:
    """Each run's line in a listing, found by the (short) id that starts it;
    fails on any line that is not one whole row (a wrapped cell's overflow)."""
    header, *lines = screen.splitlines()
    assert header.startswith("RUN ID")
    rows: dict[str, str] = {}
    for line in lines:
        token = line.split(" ", 1)[0]
        named = [rid for rid in run_ids if rid.startswith(token)] if token else run_ids
        assert len(named) == 1, f"not one whole row: {line!r}"
        rows[named[0]] = line
    assert sorted(rows) == sorted(run_ids)
    return rows


def readable_cells(run: dict[str, Any]) -> str:
    """A pattern of the DAG, status, start (UTC) and duration of a run from
    its JSON, whole and in that order, as a listing's row must hold them."""
    started = datetime.fromisoformat(run["started_at"])
    finished = datetime.fromisoformat(run["finished_at"])
    cells = [
        run["dag_nsref"],
        f"{STATUS_ICONS[run['status']]} {run['status']}",
        started.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        duration(started, finished),
    ]
    return r"\s+".join(re.escape(cell) for cell in cells)


@pytest.mark.parametrize("width", [80, 120])
def test_runs_list_shows_each_runs_dag_status_start_and_duration_whole_on_one_line(
    demo: dict[str, Any], width: int
) -> None:
    runs = as_json("runs", "list", "--url", demo["url"])
    screen = at(width, "runs", "list", "--url", demo["url"]).stdout

    assert "…" not in screen
    assert max(len(line) for line in screen.splitlines()) <= width
    rows = listing_rows(screen, [r["run_id"] for r in runs])
    for run in runs:
        assert re.search(readable_cells(run), rows[run["run_id"]]), rows[run["run_id"]]
    if width >= 120:  # room for every column
        header = "RUN ID  DAG  STATUS  STARTED (UTC)  TOOK  NODES  INITIATED BY"
        assert screen.splitlines()[0].split() == header.split()
        assert "dag-provenance demo" in rows[demo["failed_run_id"]]


@pytest.mark.parametrize("width", [80, 120])
def test_runs_children_shows_each_runs_dag_status_start_and_duration_whole_on_one_line(
    demo: dict[str, Any], width: int
) -> None:
    parent = demo["failed_run_id"]
    children = as_json("runs", "children", parent, "--url", demo["url"])
    screen = at(width, "runs", "children", parent, "--url", demo["url"]).stdout

    assert "…" not in screen
    assert max(len(line) for line in screen.splitlines()) <= width
    rows = listing_rows(screen, [c["run_id"] for c in children])
    for child in children:
        assert re.search(readable_cells(child), rows[child["run_id"]]), rows[child["run_id"]]


def test_listings_show_the_shortest_unique_prefix_of_at_least_8_characters(
    empty_db_url: str,
) -> None:
    alone = uuid.uuid4().hex
    twin = uuid.uuid4().hex[:10]  # two ids that agree on 11 characters
    nested = uuid.uuid4().hex[:12]  # an id that starts another
    tiny = "t-" + uuid.uuid4().hex[:4]
    shortest = {
        alone: alone[:8],
        f"{twin}x1-rest": f"{twin}x1",
        f"{twin}x2-rest": f"{twin}x2",
        nested: nested,
        f"{nested}-more": f"{nested}-",
        tiny: tiny,
    }
    with DagProvenance(empty_db_url) as store:
        for run_id in shortest:
            store.create_run(run_id, "ids/dag", {})

    screen = ok("runs", "list", "--url", empty_db_url).stdout
    shown = [line.split()[0] for line in screen.splitlines()[1:]]
    assert sorted(shown) == sorted(shortest.values())
    for full, short in shortest.items():
        assert as_json("runs", "show", short, "--url", empty_db_url)["run_id"] == full

    wide = at(80, "runs", "list", "--url", empty_db_url, "--wide").stdout
    assert sorted(line.split()[0] for line in wide.splitlines()[1:]) == sorted(shortest)
    listed = as_json("runs", "list", "--url", empty_db_url)
    assert sorted(r["run_id"] for r in listed) == sorted(shortest)


def test_every_command_that_takes_a_run_id_takes_the_short_id_a_listing_shows(
    demo: dict[str, Any],
) -> None:
    url, failed, replay = demo["url"], demo["failed_run_id"], demo["replay_run_id"]
    screen = ok("runs", "list", "--url", url).stdout
    short = {
        r: line.split()[0]
        for r, line in listing_rows(screen, [failed, replay, *demo["sub_run_ids"]]).items()
    }
    assert len(short[failed]) < len(failed)

    for command in (["show"], ["children"], ["pending"], ["graph"], ["graph", "--format", "dot"]):
        by_short = ok("runs", *command, short[failed], "--url", url).stdout
        assert by_short == ok("runs", *command, failed, "--url", url).stdout
    assert as_json("runs", "pending", short[failed], "--url", url) == ["publish"]
    watched = ok("runs", "watch", short[replay], "--url", url, "--interval", "0.05").stdout
    assert f"run {replay}" in watched and "completed" in watched


RUN_ID_COMMANDS = (["show"], ["children"], ["pending"], ["graph"], ["watch", "--timeout", "0"])


def test_an_ambiguous_prefix_is_a_one_line_error_naming_some_runs_and_an_unknown_one_not_found(
    empty_db_url: str,
) -> None:
    prefix = uuid.uuid4().hex[:12]
    run_ids = [f"{prefix}-{n}" for n in range(7)]
    with DagProvenance(empty_db_url) as store:
        for run_id in run_ids:
            store.create_run(run_id, "ids/dag", {})

    for command in RUN_ID_COMMANDS:
        result = cli("runs", command[0], prefix, *command[1:], "--url", empty_db_url)
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr.startswith(
            f"error: run id '{prefix}' is ambiguous: 7 runs start with it ('{prefix}-"
        )
        assert result.stderr.endswith(" and 2 more); give more of the id\n")
        named = re.findall(rf"'({prefix}-\d)'", result.stderr)
        assert len(set(named)) == 5 and set(named) <= set(run_ids)

        unknown = cli("runs", command[0], f"{prefix}-x", *command[1:], "--url", empty_db_url)
        assert unknown.exit_code == 1
        assert unknown.stderr == f"error: run '{prefix}-x' does not exist\n"


def test_a_whole_id_names_its_run_even_when_it_starts_a_longer_id(empty_db_url: str) -> None:
    short = uuid.uuid4().hex[:10]
    longer = f"{short}-retry"
    with DagProvenance(empty_db_url) as store:
        store.create_run(short, "ids/short", {})
        store.create_run(longer, "ids/longer", {})

    assert as_json("runs", "show", short, "--url", empty_db_url)["run_id"] == short
    assert as_json("runs", "show", f"{short}-", "--url", empty_db_url)["run_id"] == longer
    shorter = cli("runs", "show", short[:-1], "--url", empty_db_url)
    assert shorter.exit_code == 1 and "is ambiguous: 2 runs start with it" in shorter.stderr


def test_a_prefix_matches_case_and_like_wildcards_exactly(empty_db_url: str) -> None:
    base = "id" + uuid.uuid4().hex[:10]  # letters, so its upper case differs
    lower, upper = f"x{base}-lower", f"X{base}-upper"
    percent, underscore, slash, plain = (f"{base}{c}-run" for c in "%_/a")
    with DagProvenance(empty_db_url) as store:
        for run_id in (lower, upper, percent, underscore, slash, plain):
            store.create_run(run_id, "ids/dag", {})

    def named(ref: str) -> str:
        return str(as_json("runs", "show", ref, "--url", empty_db_url)["run_id"])

    assert named(f"x{base}") == lower
    assert named(f"X{base}") == upper
    assert named(f"{base}%") == percent
    assert named(f"{base}_") == underscore
    assert named(f"{base}/") == slash
    assert named(f"{base}a") == plain
    missing = cli("runs", "show", f"x{base.upper()}", "--url", empty_db_url)
    assert missing.stderr == f"error: run 'x{base.upper()}' does not exist\n"


def test_url_may_come_before_the_command_and_the_one_after_it_wins(
    demo: dict[str, Any], other_db_url: str, new_id: Callable[[str], str]
) -> None:
    url = demo["url"]
    ok("db", "upgrade", "--url", other_db_url)
    elsewhere = new_id("elsewhere")
    with DagProvenance(other_db_url) as store:
        store.create_run(elsewhere, "other/dag", {})

    before = json.loads(ok("--url", url, "runs", "list", "--json").stdout)
    assert len(before) == 5
    assert json.loads(ok("--url", url, "db", "status", "--json").stdout)["is_up_to_date"]
    assert ok("--url", url, "runs", "pending", demo["failed_run_id"]).stdout == "publish\n"
    both = json.loads(ok("--url", url, "runs", "list", "--url", other_db_url, "--json").stdout)
    assert [r["run_id"] for r in both] == [elsewhere]
    env_too = cli("--url", other_db_url, "runs", "list", "--json", env={"DAG_PROVENANCE_URL": url})
    assert [r["run_id"] for r in json.loads(env_too.stdout)] == [elsewhere]
