"""Runs recorded through the store, on every engine, exported as W3C PROV:
what was recorded is in the document (an activity per run and node
execution, a communication per edge, an entity per loaded payload with its
digest, the initiator as an agent, sub-DAG runs under their composite
node), and every format reads back equal."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pytest
from lythonic.compose.dag_runner import DagRunner, DagRunResult
from lythonic.compose.namespace import Dag
from prov.model import (
    ProvActivity,
    ProvAgent,
    ProvAssociation,
    ProvCommunication,
    ProvDocument,
    ProvEntity,
    ProvRecord,
    ProvStart,
)

import dag_provenance
from dag_provenance import DagProvenance, DagRun
from dag_provenance.lineage import PROV_FORMATS, load_tree_io, serialize_prov, to_prov
from dag_provenance.lineage.prov import DAGP_VOCABULARY, DEFAULT_PROV_NAMESPACE
from dag_provenance.orm import INITIATOR_MAX, NODE_LABEL_MAX, RUN_ID_MAX

from .conftest import check_each
from .lythonic_dags import failing_dag, map_dag, nested_dag

pytestmark = [
    pytest.mark.filterwarnings("error::prov.model.ProvWarning"),
    # rdflib 7 warns about its own use of its deprecated Dataset API while
    # prov writes and reads PROV-O; nothing we call.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:rdflib"),
]

NewId = Callable[[str], str]

READERS: dict[str, tuple[str, dict[str, Any]]] = {
    "prov-json": ("json", {}),
    "prov-n": ("provn", {}),
    "prov-o": ("rdf", {"rdf_format": "turtle"}),
}

LOAD_IN = '{"path": "in.csv"}'
LOAD_OUT = '{"path": "in.csv", "rows": [3, 1, 2]}'
COUNT_IN = '{"data": {"path": "in.csv", "rows": [3, 1, 2]}}'
COUNT_OUT = "3"
REPORT_IN = '{"n": 3}'
REPORT_OUT = '"3 rows \\u2713"'
SINK_OUT = '{"report": "3 rows \\u2713"}'


# --- helpers --------------------------------------------------------------------------


def segment(text: str) -> str:
    """The documented encoding of a run id or label in an identifier."""
    return quote(text, safe="").replace(".", "%2E").replace("~", "%7E")


def uri(run_id: str) -> str:
    """The identifier of a run: `run.<run id>` in the default namespace."""
    return f"{DEFAULT_PROV_NAMESPACE}run.{segment(run_id)}"


def node_uri(run_id: str, label: str, *rest: str) -> str:
    """`run.<run id>.node.<label>[.input|.output]`."""
    return ".".join([f"{uri(run_id)}.node.{segment(label)}", *rest])


def term(name: str) -> str:
    return DAGP_VOCABULARY + name


def records(document: ProvDocument, kind: type[ProvRecord]) -> list[ProvRecord]:
    return [r for r in document.get_records() if isinstance(r, kind)]


def by_identifier(document: ProvDocument, kind: type[ProvRecord]) -> dict[str, ProvRecord]:
    return {r.identifier.uri: r for r in records(document, kind) if r.identifier is not None}


def attr(record: ProvRecord, name: str) -> Any:
    (value,) = [v for k, v in record.attributes if k.uri == name]
    return value


def communications(document: ProvDocument) -> set[tuple[str, str]]:
    return {(r.args[0].uri, r.args[1].uri) for r in records(document, ProvCommunication)}


def starts(document: ProvDocument) -> dict[str, tuple[str, datetime | None]]:
    """started activity -> (starter, time)."""
    return {r.args[0].uri: (r.args[2].uri, r.args[3]) for r in records(document, ProvStart)}


def digests(document: ProvDocument) -> dict[str, str]:
    """entity -> its dagp:sha256."""
    return {
        identifier: attr(entity, term("sha256"))
        for identifier, entity in by_identifier(document, ProvEntity).items()
    }


def sha256(payload: str) -> str:
    return hashlib.sha256(payload.encode()).hexdigest()


def recorded_payloads(tree: DagRun) -> dict[str, str]:
    """entity identifier -> sha256 of every payload `load_tree_io` loaded."""
    found = {}
    for run in tree.walk():
        if run.io is not None:
            for role, text in (
                ("source_inputs", run.io.input_json),
                ("sink_outputs", run.io.output_json),
            ):
                if text is not None:
                    found[uri(run.run_id) + "." + role] = sha256(text)
        for label, n in run.nodes.items():
            if n.io is not None:
                for role, text in (("input", n.io.input_json), ("output", n.io.output_json)):
                    if text is not None:
                        found[node_uri(run.run_id, label, role)] = sha256(text)
    return found


def assert_reads_back_equal(document: ProvDocument) -> None:
    for fmt in PROV_FORMATS:
        name, options = READERS[fmt]
        text = serialize_prov(document, fmt)
        assert ProvDocument.deserialize(content=text, format=name, **options) == document, fmt


def inspect_with_io(store: DagProvenance, run_id: str) -> DagRun:
    run = store.inspect_run(run_id)
    assert run is not None
    return load_tree_io(store, run)


def record_linear(store: DagProvenance, run_id: str, nsref: str) -> None:
    """load -> count -> report, completed, initiated by alice."""
    store.create_run(run_id, nsref, {"load": {"path": "in.csv"}}, initiator="alice")
    store.record_node_start(run_id, "load", LOAD_IN, is_source=True)
    store.complete_node_with_edges(run_id, "load", LOAD_OUT, [("load", "count")])
    store.record_node_start(run_id, "count", COUNT_IN)
    store.complete_node_with_edges(run_id, "count", COUNT_OUT, [("count", "report")])
    store.record_node_start(run_id, "report", REPORT_IN, is_sink=True)
    store.complete_node_with_edges(run_id, "report", REPORT_OUT, [])
    store.finish_run(run_id, "completed", SINK_OUT)


# --- runs recorded through the API ----------------------------------------------------


def test_a_recorded_run_exports_its_nodes_edges_payloads_and_initiator(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id, nsref = new_id("run"), new_id("tests") + ":linear"
    record_linear(provenance, run_id, nsref)
    tree = inspect_with_io(provenance, run_id)

    document = to_prov(tree)

    activities = by_identifier(document, ProvActivity)
    assert set(activities) == {uri(run_id)} | {
        node_uri(run_id, label) for label in ("load", "count", "report")
    }
    run = activities[uri(run_id)]
    assert isinstance(run, ProvActivity)
    assert (run.get_startTime(), run.get_endTime()) == (tree.started_at, tree.finished_at)
    assert (attr(run, term("status")), attr(run, term("dag_nsref"))) == ("completed", nsref)
    load = activities[node_uri(run_id, "load")]
    assert isinstance(load, ProvActivity)
    assert load.get_startTime() == tree.nodes["load"].started_at
    assert attr(load, term("is_source")) is True
    assert communications(document) == {
        (node_uri(run_id, "count"), node_uri(run_id, "load")),
        (node_uri(run_id, "report"), node_uri(run_id, "count")),
    }
    assert starts(document) == {
        node_uri(run_id, label): (uri(run_id), tree.nodes[label].started_at)
        for label in ("load", "count", "report")
    }
    record = provenance.get_run(run_id) or {}
    assert digests(document) == {
        uri(run_id) + ".source_inputs": sha256(record["source_inputs_json"]),
        uri(run_id) + ".sink_outputs": sha256(SINK_OUT),
        node_uri(run_id, "load", "input"): sha256(LOAD_IN),
        node_uri(run_id, "load", "output"): sha256(LOAD_OUT),
        node_uri(run_id, "count", "input"): sha256(COUNT_IN),
        node_uri(run_id, "count", "output"): sha256(COUNT_OUT),
        node_uri(run_id, "report", "input"): sha256(REPORT_IN),
        node_uri(run_id, "report", "output"): sha256(REPORT_OUT),
    }
    (agent,) = records(document, ProvAgent)
    assert agent.identifier is not None
    assert agent.identifier.uri == DEFAULT_PROV_NAMESPACE + "agent.alice"
    (association,) = records(document, ProvAssociation)
    assert (association.args[0].uri, association.args[1].uri) == (uri(run_id), agent.identifier.uri)
    assert_reads_back_equal(document)


def test_payloads_become_entities_only_once_loaded(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = new_id("run")
    record_linear(provenance, run_id, new_id("tests"))
    run = provenance.inspect_run(run_id)
    assert run is not None

    assert records(to_prov(run), ProvEntity) == []
    provenance.load_io(run, ["count"])  # the run's own payloads and count's
    assert set(digests(to_prov(run))) == {
        uri(run_id) + ".source_inputs",
        uri(run_id) + ".sink_outputs",
        node_uri(run_id, "count", "input"),
        node_uri(run_id, "count", "output"),
    }


def test_a_failed_run_exports_the_error_and_edges_to_nodes_that_never_ran(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = new_id("run")
    error = 'Traceback (most recent call last):\n  File "count.py", line 1\r\nValueError: "3" \\ 4'
    provenance.create_run(run_id, new_id("tests"), {"load": {}})
    provenance.record_node_start(run_id, "load", "{}", is_source=True)
    provenance.complete_node_with_edges(
        run_id, "load", "[]", [("load", "count"), ("load", "audit")]
    )
    provenance.record_node_start(run_id, "count", "[]")
    provenance.fail_node_and_finish_run(run_id, "count", error)
    tree = inspect_with_io(provenance, run_id)

    document = to_prov(tree)

    activities = by_identifier(document, ProvActivity)
    assert attr(activities[uri(run_id)], term("status")) == "failed"
    count = activities[node_uri(run_id, "count")]
    assert (attr(count, term("status")), attr(count, term("error"))) == ("failed", error)
    audit = activities[node_uri(run_id, "audit")]
    assert isinstance(audit, ProvActivity)
    assert (audit.get_startTime(), audit.get_endTime()) == (None, None)
    assert [k.localpart for k, _ in audit.attributes] == ["type", "label"]
    assert communications(document) == {
        (node_uri(run_id, "count"), node_uri(run_id, "load")),
        (node_uri(run_id, "audit"), node_uri(run_id, "load")),
    }
    assert node_uri(run_id, "count", "output") not in digests(document)
    assert digests(document) == recorded_payloads(tree)
    assert records(document, ProvAgent) == []
    assert_reads_back_equal(document)


def test_a_skipped_node_and_a_run_still_running_export(
    provenance: DagProvenance, new_id: NewId
) -> None:
    run_id = new_id("run")
    provenance.create_run(run_id, new_id("tests"), {"load": {}}, initiator="bob")
    provenance.record_node_skipped(run_id, "load", '"copied"')
    provenance.record_node_start(run_id, "count", "[]")
    tree = inspect_with_io(provenance, run_id)

    document = to_prov(tree)

    activities = by_identifier(document, ProvActivity)
    run = activities[uri(run_id)]
    assert isinstance(run, ProvActivity)
    assert (attr(run, term("status")), run.get_endTime()) == ("running", None)
    assert attr(activities[node_uri(run_id, "load")], term("status")) == "skipped"
    count = activities[node_uri(run_id, "count")]
    assert isinstance(count, ProvActivity)
    assert (attr(count, term("status")), count.get_endTime()) == ("running", None)
    assert digests(document)[node_uri(run_id, "load", "output")] == sha256('"copied"')
    assert uri(run_id) + ".sink_outputs" not in digests(document)
    assert_reads_back_equal(document)


def test_sub_dag_runs_nest_under_the_composite_nodes_that_expanded_them(
    provenance: DagProvenance, new_id: NewId
) -> None:
    root, nsref = new_id("root"), new_id("tests") + ":nested"
    provenance.create_run(root, nsref, {"split": {"text": "a b"}}, initiator="alice")
    provenance.record_node_start(root, "split", '{"text": "a b"}', is_source=True)
    provenance.complete_node_with_edges(root, "split", '["a", "b"]', [("split", "chunks")])
    provenance.record_node_start(root, "chunks", '["a", "b"]')
    children = {}
    for i, word in enumerate("ab"):
        key = f"chunks[{i}]"
        children[key] = child = new_id("chunk")
        provenance.create_run(child, f"{nsref}/{key}", {"shout": {"word": word}}, root, "alice")
        provenance.record_node_start(child, "shout", json.dumps({"word": word}), True, True)
        provenance.complete_node_with_edges(child, "shout", json.dumps(word.upper()), [])
        provenance.finish_run(child, "completed", json.dumps({"shout": word.upper()}))
    provenance.complete_node_with_edges(root, "chunks", '["A", "B"]', [("chunks", "enrich")])
    provenance.record_node_start(root, "enrich", '["A", "B"]', is_sink=True)
    call = children["enrich[]"] = new_id("call")
    provenance.create_run(call, f"{nsref}/enrich[]", {"words": {"w": ["A", "B"]}}, root, "alice")
    provenance.record_node_start(call, "words", '{"w": ["A", "B"]}', True, True)
    grandchildren = {}
    for i in range(2):
        key = f"words[{i}]"
        grandchildren[key] = grandchild = new_id("word")
        provenance.create_run(grandchild, f"{nsref}/enrich[]/{key}", {}, call, "alice")
        provenance.finish_run(grandchild, "completed", "{}")
    provenance.complete_node_with_edges(call, "words", '"A B"', [])
    provenance.finish_run(call, "completed", '{"words": "A B"}')
    provenance.complete_node_with_edges(root, "enrich", '"A B"', [])
    provenance.finish_run(root, "completed", '{"enrich": "A B"}')
    tree = inspect_with_io(provenance, root)

    document = to_prov(tree)

    started = starts(document)
    runs = {r.run_id: r for r in tree.walk()}
    for key, child in children.items():
        composite = key.split("[")[0]
        assert started[uri(child)] == (node_uri(root, composite), runs[child].started_at)
    for child in grandchildren.values():
        assert started[uri(child)] == (node_uri(call, "words"), runs[child].started_at)
    keys = {
        r.args[0].uri: attr(r, term("sub_dag_key"))
        for r in records(document, ProvStart)
        if r.args[0].uri in {uri(c) for c in runs if c != root}
    }
    assert keys == {uri(c): k for k, c in {**children, **grandchildren}.items()}
    activities = by_identifier(document, ProvActivity)
    assert attr(activities[uri(grandchildren["words[1]"])], term("parent_run_id")) == call
    assert attr(activities[uri(grandchildren["words[1]"])], term("dag_nsref")) == (
        f"{nsref}/enrich[]/words[1]"
    )
    assert len(runs) == 6
    assert len(activities) == 6 + 3 + 2 + 1  # runs, root's, chunks' and call's nodes
    associations = {r.args[0].uri for r in records(document, ProvAssociation)}
    assert associations == {uri(r) for r in runs}
    assert len(records(document, ProvAgent)) == 1
    assert digests(document) == recorded_payloads(tree)
    assert_reads_back_equal(document)


HOSTILE = [
    "'", '"', "\\", "a\nb", "a\r\nb", "a\tb", "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>', "javascript:alert(1)", "\U0001f600",
    "\U0001f469\u200d\U0001f4bb", "%", "%41", "/", ":", "#", " a b ", "a.node.b.", "~",
    "x" * 300,
]  # fmt: skip


def test_hostile_ids_labels_initiators_and_errors_read_back_equal(
    provenance: DagProvenance, new_id: NewId
) -> None:
    def check(text: str) -> None:
        run_id = (new_id("r") + text)[:RUN_ID_MAX]
        child = (new_id("c") + text)[:RUN_ID_MAX]
        label, other = text[:NODE_LABEL_MAX], ("x" + text)[:NODE_LABEL_MAX]
        who, error = text[:INITIATOR_MAX], f"{text}\nTraceback:\n  {text}"
        provenance.create_run(run_id, text, {text: {text: text}}, initiator=who)
        provenance.record_node_start(run_id, label, json.dumps(text), is_source=True)
        provenance.complete_node_with_edges(run_id, label, json.dumps(text), [(label, other)])
        provenance.create_run(child, f"{text}/{label}[0]", {}, run_id, who)
        provenance.finish_run(child, "completed", "{}")
        provenance.record_node_start(run_id, other, "{}")
        provenance.fail_node_and_finish_run(run_id, other, error)
        tree = inspect_with_io(provenance, run_id)

        document = to_prov(tree)

        activities = by_identifier(document, ProvActivity)
        assert attr(activities[uri(run_id)], term("run_id")) == run_id
        assert attr(activities[uri(run_id)], term("dag_nsref")) == text
        assert attr(activities[node_uri(run_id, other)], term("error")) == error
        assert communications(document) == {(node_uri(run_id, other), node_uri(run_id, label))}
        assert starts(document)[uri(child)][0] == node_uri(run_id, label)
        (agent,) = records(document, ProvAgent)
        assert attr(agent, "http://www.w3.org/ns/prov#label") == who
        assert digests(document) == recorded_payloads(tree)
        assert_reads_back_equal(document)

    check_each({repr(text)[:40]: text for text in HOSTILE}, check)


# --- runs recorded by lythonic's DagRunner --------------------------------------------


def run_dag(store: DagProvenance, dag: Dag, inputs: dict[str, Any], nsref: str) -> DagRunResult:
    async def attributed() -> DagRunResult:
        with dag_provenance.initiated_by("carol"):
            runner = DagRunner(dag, provenance=store)  # type: ignore[arg-type]
            return await runner.run(source_inputs=inputs, dag_nsref=nsref)

    return asyncio.run(attributed())


def test_a_lythonic_map_dag_exports_each_sub_dag_run_under_its_map_node(
    provenance: DagProvenance, new_id: NewId
) -> None:
    result = run_dag(provenance, map_dag(), {"split": {"text": "a b c"}}, new_id("tests") + ":map")
    assert result.status == "completed"
    tree = inspect_with_io(provenance, result.run_id)
    sub_dags = tree.nodes["chunks"].sub_dags or {}
    assert len(sub_dags) == 3

    document = to_prov(tree)

    started = starts(document)
    for child in sub_dags.values():
        assert started[uri(child.run_id)] == (node_uri(tree.run_id, "chunks"), child.started_at)
        assert started[node_uri(child.run_id, "shout")][0] == uri(child.run_id)
    assert communications(document) == {
        (node_uri(tree.run_id, "chunks"), node_uri(tree.run_id, "split")),
        (node_uri(tree.run_id, "join"), node_uri(tree.run_id, "chunks")),
    }
    found = digests(document)
    for word, child in zip("abc", sub_dags.values(), strict=True):
        output = provenance.get_node_output(child.run_id, "shout")
        assert output == json.dumps(word.upper() + "!")
        assert found[node_uri(child.run_id, "shout", "output")] == sha256(output)
    assert found == recorded_payloads(tree)
    assert {r.args[1].uri for r in records(document, ProvAssociation)} == {
        DEFAULT_PROV_NAMESPACE + "agent.carol"
    }
    assert_reads_back_equal(document)


def test_a_lythonic_nested_dag_exports_grandchild_runs(
    provenance: DagProvenance, new_id: NewId
) -> None:
    result = run_dag(provenance, nested_dag(), {"seed": {"token": "x y"}}, new_id("tests") + ":n")
    assert result.status == "completed"
    tree = inspect_with_io(provenance, result.run_id)
    outer = (tree.nodes["outer"].sub_dags or {})["outer[]"]
    words = outer.nodes["words"].sub_dags or {}

    document = to_prov(tree)

    started = starts(document)
    assert started[uri(outer.run_id)][0] == node_uri(tree.run_id, "outer")
    for word_run in words.values():
        assert started[uri(word_run.run_id)][0] == node_uri(outer.run_id, "words")
    assert len(by_identifier(document, ProvActivity)) == sum(1 + len(r.nodes) for r in tree.walk())
    assert digests(document) == recorded_payloads(tree)
    assert_reads_back_equal(document)


def test_a_lythonic_failing_dag_exports_the_traceback(
    provenance: DagProvenance, new_id: NewId
) -> None:
    result = run_dag(provenance, failing_dag(), {"start": {"n": 7}}, new_id("tests") + ":f")
    assert result.status == "failed"
    tree = inspect_with_io(provenance, result.run_id)

    document = to_prov(tree)

    explode = by_identifier(document, ProvActivity)[node_uri(tree.run_id, "explode")]
    assert attr(explode, term("status")) == "failed"
    assert "ValueError: cannot handle 7" in attr(explode, term("error"))
    assert "Traceback" in serialize_prov(document, "prov-n")
    assert_reads_back_equal(document)
