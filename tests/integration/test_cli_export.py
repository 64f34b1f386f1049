"""`dag-provenance runs export` through typer's test runner, on every engine:
run trees as OpenLineage events (written, or sent to a backend on loopback)
and as W3C PROV documents."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from openlineage.client.event_v2 import RunEvent
from openlineage.client.serde import Serde
from prov.model import ProvDocument
from rdflib import Graph
from typer.testing import CliRunner, Result

from dag_provenance import DagProvenance
from dag_provenance.cli import app
from dag_provenance.cli import export as export_command
from dag_provenance.lineage import (
    DEFAULT_NAMESPACE,
    PROV_FORMATS,
    load_tree_io,
    serialize_prov,
    to_openlineage,
    to_prov,
)
from dag_provenance.lineage.openlineage import ancestors_of
from dag_provenance.models import DagRun

from .conftest import Clock
from .lineage_endpoint import LineageEndpoint, as_sent, lineage_backend  # noqa: F401

runner = CliRunner()
NewId = Callable[[str], str]
FORMATS = ("openlineage", *PROV_FORMATS)

# rdflib 7 warns about its own use of its deprecated Dataset API while prov
# writes PROV-O; nothing we call.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:rdflib")


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, list(args), env={"COLUMNS": "200", **(env or {})})


def ok(*args: str) -> Result:
    result = cli(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def refused(*args: str, exit_code: int = 1) -> Result:
    result = cli(*args)
    assert result.exit_code == exit_code, (result.stdout, result.stderr, result.exception)
    assert result.stdout == ""
    return result


@pytest.fixture
def store(empty_db_url: str) -> Iterator[DagProvenance]:
    """A store of its own on the engine under test (its URL: `empty_db_url`)."""
    with DagProvenance(empty_db_url) as provenance:
        yield provenance


@pytest.fixture(autouse=True)
def _client_environment_restored() -> Iterator[None]:
    """The OpenLineage client copies `OPENLINEAGE_URL` into `OPENLINEAGE__...`
    variables of `os.environ` when it is made; drop those after each test."""
    before = set(os.environ)
    yield
    for name in set(os.environ) - before:
        if name.startswith("OPENLINEAGE__"):
            del os.environ[name]


# Recording


def record_tree(
    store: DagProvenance, new_id: NewId, nsref: str = "export/pipeline", *, fails: bool = True
) -> list[str]:
    """Record a run tree and return its run ids, the root's first: a source
    node, a skipped node, a composite node that ran two sub-DAG runs (the
    second holding a sub-DAG run of its own), and a sink that fails (or
    completes)."""
    root = new_id("root")
    store.create_run(root, nsref, {"a": {"x": 1}}, parent_run_id=None, initiator="exporter")
    store.record_node_start(root, "load", '{"x": 1}', is_source=True)
    store.complete_node_with_edges(root, "load", '{"rows": 2}', [("load", "fan"), ("load", "memo")])
    store.record_node_skipped(root, "memo", '{"cached": true}')
    store.record_node_start(root, "fan", '{"rows": 2}')
    subs = [record_sub_run(store, new_id, root, f"{nsref}/fan[{i}]", nested=i == 1) for i in (0, 1)]
    store.complete_node_with_edges(root, "fan", "[1, 2]", [("fan", "publish")])
    store.record_node_start(root, "publish", "[1, 2]", is_sink=True)
    if fails:
        store.fail_node_and_finish_run(root, "publish", "PublishError: the endpoint refused")
    else:
        store.complete_node_with_edges(root, "publish", '"done"', [])
        store.finish_run(root, "completed", '{"publish": "done"}')
    return [root, *(run_id for sub in subs for run_id in sub)]


def record_sub_run(
    store: DagProvenance, new_id: NewId, parent: str, nsref: str, *, nested: bool
) -> list[str]:
    """A completed sub-DAG run `clean -> score`; if `nested`, `clean` runs a
    sub-DAG run of its own. Its run ids, its own first."""
    run_id = new_id("sub")
    store.create_run(run_id, nsref, {"clean": {"n": 1}}, parent_run_id=parent, initiator=None)
    store.record_node_start(run_id, "clean", '{"n": 1}', is_source=True)
    below = []
    if nested:
        below = [new_id("deep")]
        store.create_run(below[0], f"{nsref}/clean[0]", {"inner": {}}, parent_run_id=run_id)
        store.record_node_start(below[0], "inner", "{}", is_source=True, is_sink=True)
        store.complete_node_with_edges(below[0], "inner", "{}", [])
        store.finish_run(below[0], "completed", '{"inner": {}}')
    store.complete_node_with_edges(run_id, "clean", '{"n": 1}', [("clean", "score")])
    store.record_node_start(run_id, "score", '{"n": 1}', is_sink=True)
    store.complete_node_with_edges(run_id, "score", "0.5", [])
    store.finish_run(run_id, "completed", '{"score": 0.5}')
    return [run_id, *below]


def tree_of(store: DagProvenance, run_id: str) -> DagRun:
    tree = store.inspect_run(run_id)
    assert tree is not None
    return tree


def events_of(store: DagProvenance, run_id: str, **options: Any) -> list[RunEvent]:
    """What the library exports for the run's tree, its ancestors named."""
    return to_openlineage(tree_of(store, run_id), ancestors=ancestors_of(store, run_id), **options)


def sent_of(store: DagProvenance, run_id: str) -> list[dict[str, Any]]:
    """The run tree's events as the client sends them (built afresh: the
    client adds its facets to the events it is given)."""
    return as_sent(events_of(store, run_id))


def as_json(events: list[RunEvent]) -> list[dict[str, Any]]:
    return [json.loads(Serde.to_json(event)) for event in events]


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects of `text`, one a line, each line ended."""
    assert text == "" or text.endswith("\n")
    lines = text.split("\n")[:-1]
    assert all(line.startswith("{") and line.endswith("}") for line in lines)
    return [json.loads(line) for line in lines]


def recorded_run_ids(events: list[dict[str, Any]]) -> set[str]:
    """The dag-provenance run ids the events describe."""
    facets = [e["run"]["facets"] for e in events]
    return {(f.get("dagprovenance_run") or f["dagprovenance_node"])["runId"] for f in facets}


def loaded_tree(store: DagProvenance, run_id: str) -> DagRun:
    return load_tree_io(store, tree_of(store, run_id))


def with_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


# One run tree


def test_openlineage_export_is_one_json_event_a_line_as_the_library_exports_it(
    store: DagProvenance, empty_db_url: str, new_id: NewId, clock: Clock
) -> None:
    run_ids = record_tree(store, new_id)

    result = ok("runs", "export", run_ids[0], "--format", "openlineage", "--url", empty_db_url)

    events = json_lines(result.stdout)
    assert events == as_json(to_openlineage(tree_of(store, run_ids[0])))
    assert recorded_run_ids(events) == set(run_ids)
    assert {e["job"]["namespace"] for e in events} == {DEFAULT_NAMESPACE}
    assert result.stderr == ""


def test_a_sub_dag_run_exported_alone_names_its_parent_and_root_as_in_its_roots_export(
    store: DagProvenance, empty_db_url: str, new_id: NewId, clock: Clock
) -> None:
    root, _, sub, deep = record_tree(store, new_id)
    whole = json_lines(
        ok("runs", "export", root, "--format", "openlineage", "--url", empty_db_url).stdout
    )

    alone = json_lines(
        ok("runs", "export", sub, "--format", "openlineage", "--url", empty_db_url).stdout
    )

    assert alone == [e for e in whole if recorded_run_ids([e]) <= {sub, deep}]
    assert alone == as_json(events_of(store, sub))
    parent = alone[0]["run"]["facets"]["parent"]
    assert parent["job"]["name"] == "export/pipeline"
    assert parent["root"]["job"]["name"] == "export/pipeline"
    assert parent["run"]["runId"] == parent["root"]["run"]["runId"] == whole[0]["run"]["runId"]


def test_namespace_names_the_jobs_and_its_default_is_the_librarys(
    store: DagProvenance, empty_db_url: str, new_id: NewId, clock: Clock
) -> None:
    root = record_tree(store, new_id)[0]
    args = ("runs", "export", root, "--format", "openlineage", "--url", empty_db_url)

    events = json_lines(ok(*args, "--namespace", "team-a").stdout)

    assert events == as_json(to_openlineage(tree_of(store, root), namespace="team-a"))
    assert {e["job"]["namespace"] for e in events} == {"team-a"}
    assert f"(default: {DEFAULT_NAMESPACE})" in ok("runs", "export", "--help").stdout
    assert "namespace must be a non-empty str" in refused(*args, "--namespace", "").stderr


def test_prov_json_reads_back_as_the_document_of_the_tree_with_its_payloads(
    store: DagProvenance, empty_db_url: str, new_id: NewId, clock: Clock
) -> None:
    root = record_tree(store, new_id)[0]

    result = ok("runs", "export", root, "--format", "prov-json", "--url", empty_db_url)

    document = ProvDocument.deserialize(content=result.stdout, format="json")
    assert document == to_prov(loaded_tree(store, root))
    assert document != to_prov(tree_of(store, root))  # the payloads' entities are in it
    assert result.stderr == ""


@pytest.mark.parametrize("fmt", ["prov-n", "prov-o"])
def test_prov_n_and_prov_o_are_the_librarys_serialisations_of_the_tree(
    store: DagProvenance, empty_db_url: str, new_id: NewId, clock: Clock, fmt: str
) -> None:
    root = record_tree(store, new_id)[0]

    text = ok("runs", "export", root, "--format", fmt, "--url", empty_db_url).stdout

    assert text == with_newline(serialize_prov(to_prov(loaded_tree(store, root)), fmt))
    if fmt == "prov-n":
        assert text.startswith("document\n") and text.rstrip().endswith("endDocument")
    else:
        graph = Graph().parse(data=text, format="turtle")
        assert len(graph) > 50


@pytest.mark.parametrize("fmt", FORMATS)
def test_out_writes_the_file_and_says_so(
    store: DagProvenance, empty_db_url: str, new_id: NewId, clock: Clock, tmp_path: Path, fmt: str
) -> None:
    root = record_tree(store, new_id)[0]
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "export.out"
    target.write_text("an older export\n")
    args = ("runs", "export", root, "--format", fmt, "--url", empty_db_url)

    result = ok(*args, "--out", str(target))

    assert result.stdout == ""
    assert result.stderr.startswith("wrote ") and result.stderr.endswith(f" to {target}\n")
    assert target.read_text(encoding="utf-8") == ok(*args).stdout
    assert [p.name for p in target.parent.iterdir()] == ["export.out"]


def test_a_failed_export_leaves_the_out_file_as_it_was(
    store: DagProvenance, empty_db_url: str, tmp_path: Path
) -> None:
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "export.jsonl"
    target.write_text("an older export\n")
    to_target = ("--url", empty_db_url, "--out", str(target))
    for fmt in FORMATS:
        missing = refused("runs", "export", "no-such-run", "--format", fmt, *to_target)
        assert missing.stderr == "error: run 'no-such-run' does not exist\n"
    assert target.read_text() == "an older export\n"
    assert [p.name for p in target.parent.iterdir()] == ["export.jsonl"]

    nowhere = ("--url", empty_db_url, "--out", str(tmp_path / "no-such-dir" / "x.jsonl"))
    unwritable = refused("runs", "export", "--since", "1h", "--format", "openlineage", *nowhere)
    assert unwritable.stderr.startswith("error: cannot write ")
    assert unwritable.stderr.count("\n") == 1
    as_dir = refused("runs", "export", "x", "--format", "prov-n", "--out", str(tmp_path))
    assert as_dir.stderr == f"error: --out {tmp_path} is a directory: give a file\n"


def test_a_unique_prefix_names_the_run_in_every_format(
    store: DagProvenance, empty_db_url: str, new_id: NewId, clock: Clock
) -> None:
    root = record_tree(store, new_id)[0]
    for fmt in FORMATS:
        args = ("--format", fmt, "--url", empty_db_url)
        whole = ok("runs", "export", root, *args).stdout
        assert ok("runs", "export", root[:10], *args).stdout == whole


def test_a_missing_run_is_one_line_on_stderr_and_nothing_on_stdout(
    store: DagProvenance, empty_db_url: str
) -> None:
    for fmt in FORMATS:
        result = refused("runs", "export", "no-such-run", "--format", fmt, "--url", empty_db_url)
        assert result.stderr == "error: run 'no-such-run' does not exist\n"


def test_a_bad_format_is_refused_naming_every_format(empty_db_url: str) -> None:
    result = refused("runs", "export", "x", "--format", "xml", "--url", empty_db_url, exit_code=2)
    assert "--format must be one of openlineage, prov-json, prov-n, prov-o, not 'xml'" in (
        " ".join(result.stderr.replace("│", " ").split())
    )
    missing = refused("runs", "export", "x", "--url", empty_db_url, exit_code=2)
    assert "Missing option '--format'" in missing.stderr


def test_options_that_make_no_export_are_refused_in_one_line(
    store: DagProvenance, empty_db_url: str
) -> None:
    expected = {
        ("x", "--since", "1h"): "give a RUN_ID or --since, not both",
        (): "give a RUN_ID (to export that run's tree) or --since",
        ("x", "--status", "failed"): "--status and --dag choose the run trees of --since",
        ("x", "--dag", "a/b"): "--status and --dag choose the run trees of --since",
        ("--since", "1h", "--format", "prov-json"): "--since exports OpenLineage events",
        ("x", "--send", "--format", "prov-n"): "--send sends OpenLineage events",
        ("x", "--namespace", "n", "--format", "prov-o"): "--namespace names OpenLineage jobs",
        ("--since", "1h", "--status", "lost"): "lost",
    }
    for args, message in expected.items():
        fmt = () if "--format" in args else ("--format", "openlineage")
        result = refused("runs", "export", *args, *fmt, "--url", empty_db_url)
        assert result.stderr.startswith("error: ") and message in result.stderr, args
        assert result.stderr.count("\n") == 1, args
    bad_since = refused("runs", "export", "--since", "soon", "--format", "openlineage", exit_code=2)
    assert "neither an age" in bad_since.stderr


def test_hostile_run_ids_and_labels_export_to_valid_json_lines_and_prov(
    store: DagProvenance, empty_db_url: str
) -> None:
    hostile = [
        'quote\'s "double" `back`',
        "new\nline\ttab\r",
        "emoji 🚀✨ ünïcødé",
        "<script>alert('x')</script>",
        "x" * 200,
        '{"json": [1]}\\',
    ]
    for run_id in hostile:
        labels = [f"{run_id[:190]}-{n}" for n in range(2)]
        store.create_run(run_id, f"dag/{run_id[:50]}", {labels[0]: {}}, initiator=run_id)
        store.record_node_start(run_id, labels[0], "{}", is_source=True)
        store.complete_node_with_edges(run_id, labels[0], '"🚀"', [(labels[0], labels[1])])
        store.record_node_start(run_id, labels[1], '"🚀"', is_sink=True)
        store.fail_node_and_finish_run(run_id, labels[1], f"Boom: {run_id}")

        args = ("runs", "export", run_id, "--url", empty_db_url, "--format")
        events = json_lines(ok(*args, "openlineage").stdout)
        assert events == as_json(to_openlineage(tree_of(store, run_id))), run_id
        assert recorded_run_ids(events) == {run_id}
        document = ProvDocument.deserialize(content=ok(*args, "prov-json").stdout, format="json")
        assert document == to_prov(loaded_tree(store, run_id)), run_id
        assert len(Graph().parse(data=ok(*args, "prov-o").stdout, format="turtle")) > 10


# Every tree started since a moment


def test_since_exports_each_tree_whose_root_started_since_then_oldest_first(
    store: DagProvenance,
    empty_db_url: str,
    new_id: NewId,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    early = new_id("early")
    store.create_run(early, "export/pipeline", {})
    clock.advance(timedelta(hours=1))
    since = clock.now.isoformat()
    # A sub-DAG run inside the window whose root started before it: not exported.
    record_sub_run(store, new_id, early, "export/pipeline/fan[0]", nested=True)
    failed = record_tree(store, new_id)[0]
    completed = record_tree(store, new_id, fails=False)[0]
    other = record_tree(store, new_id, "other/dag", fails=False)[0]
    monkeypatch.setattr(export_command, "PAGE_SIZE", 3)  # several pages

    def exported(*args: str) -> list[dict[str, Any]]:
        window = ("--since", since, "--format", "openlineage", "--url", empty_db_url)
        return json_lines(ok("runs", "export", *window, *args).stdout)

    def trees(*roots: str) -> list[dict[str, Any]]:
        return [event for root in roots for event in as_json(events_of(store, root))]

    assert exported() == trees(failed, completed, other)
    assert exported("--status", "completed") == trees(completed, other)
    assert exported("--dag", "export/pipeline") == trees(failed, completed)
    both = exported("--status", "failed", "--status", "completed", "--dag", "export/pipeline")
    assert both == trees(failed, completed)
    assert exported("--status", "running") == []  # `early` is running, but began before
    later = (clock.now + timedelta(days=1)).isoformat()
    nothing = ok(
        "runs", "export", "--since", later, "--format", "openlineage", "--url", empty_db_url
    )
    assert nothing.stdout == ""
    assert nothing.stderr.startswith("no root run started since ")


def test_since_exports_roots_that_started_at_the_same_instant_across_pages(
    store: DagProvenance,
    empty_db_url: str,
    new_id: NewId,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    since = clock.now.isoformat()
    clock.step = timedelta(0)  # every run starts at the same instant
    roots = [new_id("tie") for _ in range(5)]
    for root in roots:
        store.create_run(root, "export/ties", {})
    monkeypatch.setattr(export_command, "PAGE_SIZE", 2)

    result = ok(
        "runs", "export", "--since", since, "--format", "openlineage", "--url", empty_db_url
    )

    events = json_lines(result.stdout)
    assert [e["run"]["facets"]["dagprovenance_run"]["runId"] for e in events] == sorted(roots)


# Sending to a lineage backend


def test_send_emits_every_event_of_each_tree_to_the_backend_and_sums_up(
    store: DagProvenance,
    empty_db_url: str,
    new_id: NewId,
    clock: Clock,
    lineage_backend: LineageEndpoint,  # noqa: F811
    tmp_path: Path,
) -> None:
    since = clock.now.isoformat()
    first = record_tree(store, new_id)[0]
    second = record_tree(store, new_id, fails=False)[0]
    copy = tmp_path / "sent.jsonl"

    result = ok(
        "runs",
        "export",
        "--since",
        since,
        "--format",
        "openlineage",
        "--send",
        "--out",
        str(copy),
        "--url",
        empty_db_url,
    )

    exported = as_json(events_of(store, first)) + as_json(events_of(store, second))
    assert lineage_backend.events == sent_of(store, first) + sent_of(store, second)
    assert result.stdout == (
        f"exported 2 run trees (8 runs): {len(exported)} events sent, 0 failed\n"
    )
    assert json_lines(copy.read_text()) == exported
    assert result.stderr.startswith(f"wrote {len(exported)} events of 2 run trees (8 runs) to ")


def test_send_of_one_sub_dag_run_sends_its_tree_with_its_ancestors_named(
    store: DagProvenance,
    empty_db_url: str,
    new_id: NewId,
    clock: Clock,
    lineage_backend: LineageEndpoint,  # noqa: F811
) -> None:
    sub = record_tree(store, new_id)[2]
    args = ("runs", "export", sub[:12], "--format", "openlineage", "--send", "--url", empty_db_url)

    # In a terminal (as rich tells one), with its progress bars on stderr.
    result = cli(*args, env={"TTY_COMPATIBLE": "1"})

    sent = sent_of(store, sub)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert lineage_backend.events == sent
    assert sent[0]["run"]["facets"]["parent"]["run"]["runId"] != sent[0]["run"]["runId"]
    assert result.stdout == f"exported 1 run tree (2 runs): {len(sent)} events sent, 0 failed\n"
    assert "run trees" in result.stderr and f"{len(sent)}/{len(sent)}" in result.stderr


def test_send_counts_each_event_the_backend_refuses_as_failed_and_exits_1(
    store: DagProvenance,
    empty_db_url: str,
    new_id: NewId,
    clock: Clock,
    lineage_backend: LineageEndpoint,  # noqa: F811
) -> None:
    root = record_tree(store, new_id)[0]
    lineage_backend.fail_status = 400  # the client reports a 4xx at once
    lineage_backend.fail_next = 2

    result = cli("runs", "export", root, "--format", "openlineage", "--send", "--url", empty_db_url)

    sent = sent_of(store, root)
    assert result.exit_code == 1
    assert lineage_backend.events == sent[2:]
    assert result.stdout == f"exported 1 run tree (4 runs): {len(sent) - 2} events sent, 2 failed\n"
    assert result.stderr == (
        f"error: 2 of {len(sent)} events were not sent; the first failure: HTTPError: "
        f"400 Client Error: Bad Request for url: {lineage_backend.url}/api/v1/lineage\n"
    )


def test_send_retries_a_5xx_answer_and_counts_it_failed_once_the_retries_run_out(
    store: DagProvenance,
    empty_db_url: str,
    new_id: NewId,
    clock: Clock,
    lineage_backend: LineageEndpoint,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = record_tree(store, new_id)[0]
    args = ("runs", "export", root, "--format", "openlineage", "--send", "--url", empty_db_url)
    lineage_backend.fail_status = 500
    lineage_backend.fail_next = 2  # the default retry policy outlasts two 500s

    assert ok(*args).stdout.endswith(" events sent, 0 failed\n")
    assert lineage_backend.events == sent_of(store, root)
    assert lineage_backend.refused == 2

    # Configured the client's other way, with no retries: the 500 is a failure.
    for name, value in {
        "TYPE": "http",
        "URL": lineage_backend.url,
        "RETRY": '{"total": 0}',
    }.items():
        monkeypatch.setenv(f"OPENLINEAGE__TRANSPORT__{name}", value)
    lineage_backend.events.clear()
    lineage_backend.fail_next = 1

    result = cli(*args)

    sent = sent_of(store, root)
    assert result.exit_code == 1
    assert lineage_backend.events == sent[1:]
    assert result.stdout.endswith(f": {len(sent) - 1} events sent, 1 failed\n")
    assert "the first failure: RetryError: " in result.stderr
    assert "too many 500 error responses" in result.stderr


def test_send_is_refused_when_the_client_would_send_nothing(
    store: DagProvenance,
    empty_db_url: str,
    new_id: NewId,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    root = record_tree(store, new_id)[0]
    for name in list(os.environ):
        if name.startswith("OPENLINEAGE"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no openlineage.yml here
    monkeypatch.setenv("HOME", str(tmp_path))  # nor in ~/.openlineage
    args = ("runs", "export", root, "--format", "openlineage", "--send", "--url", empty_db_url)

    unconfigured = refused(*args)
    assert unconfigured.stderr.startswith("error: --send found no OpenLineage transport")
    assert "OPENLINEAGE_URL" in unconfigured.stderr

    monkeypatch.setenv("OPENLINEAGE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    disabled = refused(*args)
    assert disabled.stderr == (
        "error: OpenLineage is disabled (OPENLINEAGE_DISABLED=true): --send would send nothing\n"
    )


def test_a_password_in_openlineage_url_is_never_printed(
    store: DagProvenance,
    empty_db_url: str,
    new_id: NewId,
    lineage_backend: LineageEndpoint,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = record_tree(store, new_id)[0]
    with_password = lineage_backend.url.replace("//", "//someone:s3cr3t-pw@")
    monkeypatch.setenv("OPENLINEAGE_URL", with_password)
    lineage_backend.fail_status = 400
    lineage_backend.fail_next = 1

    result = cli("runs", "export", root, "--format", "openlineage", "--send", "--url", empty_db_url)

    assert result.exit_code == 1
    assert "s3cr3t-pw" not in result.stdout + result.stderr
    assert "Bad Request for url: http://someone:***@127.0.0.1:" in result.stderr


# Without the extra, and in a pipe


def test_without_the_lineage_extra_export_says_how_to_install_it_and_the_rest_works(
    store: DagProvenance, empty_db_url: str, new_id: NewId, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = record_tree(store, new_id)[0]
    for missing in ("openlineage.client", "prov.model"):
        monkeypatch.setitem(sys.modules, missing, None)  # as if not installed
    monkeypatch.delitem(sys.modules, "dag_provenance.lineage.openlineage")

    for fmt in FORMATS:
        result = refused("runs", "export", root, "--format", fmt, "--url", empty_db_url)
        assert result.stderr.startswith("error: dag_provenance.lineage needs ")
        assert result.stderr.endswith(": pip install 'dag-provenance[lineage]'\n")
    send = refused(
        "runs", "export", root, "--format", "openlineage", "--send", "--url", empty_db_url
    )
    assert "pip install 'dag-provenance[lineage]'" in send.stderr
    assert root in ok("runs", "list", "--url", empty_db_url, "--wide").stdout


def test_a_reader_that_stops_early_ends_the_export_without_an_error(
    store: DagProvenance, empty_db_url: str, new_id: NewId
) -> None:
    run_id = new_id("wide")
    store.create_run(run_id, "export/wide", {})
    for n in range(150):  # some 300 events: more than a pipe holds
        store.record_node_start(run_id, f"node-{n}", "{}", is_source=True, is_sink=True)
        store.complete_node_with_edges(run_id, f"node-{n}", "{}", [])
    command = [sys.executable, "-m", "dag_provenance.cli", "runs", "export", run_id]

    with subprocess.Popen(
        [*command, "--format", "openlineage", "--url", empty_db_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as reader:
        assert reader.stdout is not None and reader.stderr is not None
        assert json.loads(reader.stdout.readline())["eventType"] == "START"
        reader.stdout.close()  # as `| head -1` does
        assert reader.stderr.read() == b""
        assert reader.wait(timeout=60) == 1
