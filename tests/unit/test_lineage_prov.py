"""`to_prov` / `serialize_prov` on run trees built from the models (no
database): the PROV-DM mapping, identifiers that survive any text, every
format written by `prov` and read back equal, determinism and memory."""

from __future__ import annotations

import hashlib
import sys
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
import rdflib
from hypothesis import given, settings
from hypothesis import strategies as st
from prov.model import (
    ProvActivity,
    ProvAgent,
    ProvAssociation,
    ProvCommunication,
    ProvDocument,
    ProvEntity,
    ProvGeneration,
    ProvRecord,
    ProvStart,
    ProvUsage,
)

from dag_provenance import ExtraNotInstalledError, InvalidInputError
from dag_provenance.lineage import PROV_FORMATS, serialize_prov, to_prov
from dag_provenance.lineage.prov import DAGP_VOCABULARY, DEFAULT_PROV_NAMESPACE
from dag_provenance.models import DagRun, EdgeTraversal, IoPayload, NodeExecution

pytestmark = [
    # Our identifiers must never make prov warn (it does when PROV-N cannot
    # write a local name as it is).
    pytest.mark.filterwarnings("error::prov.model.ProvWarning"),
    # rdflib 7 warns about its own use of its deprecated Dataset API while
    # prov writes and reads PROV-O; nothing we call.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:rdflib"),
]

T0 = datetime(2031, 5, 17, 9, 30, 0, 123457, tzinfo=UTC)

HOSTILE = {
    "quote": "'",
    "double quote": '"',
    "backslash": "\\",
    "newline": "a\nb",
    "crlf": "a\r\nb",
    "tab": "a\tb",
    "script": "<script>alert(1)</script>",
    "attribute break": '"><img src=x onerror=alert(1)>',
    "javascript url": "javascript:alert(1)",
    "emoji": "\U0001f600",
    "zwj emoji": "\U0001f469\u200d\U0001f4bb",
    "percent": "%",
    "percent escape": "%41",
    "slash": "/",
    "colon": ":",
    "hash": "#",
    "spaces": " a b ",
    "dots": "a.node.b.",
    "tilde": "~",
    "200 characters": "x" * 199 + "\U0001f600",
}

# prov's format name and options for each of ours, to read a serialisation back.
READERS: dict[str, tuple[str, dict[str, Any]]] = {
    "prov-json": ("json", {}),
    "prov-n": ("provn", {}),
    "prov-o": ("rdf", {"rdf_format": "turtle"}),
}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def node(
    label: str,
    start: float = 0,
    *,
    status: str = "completed",
    to: tuple[str, ...] = (),
    io: IoPayload | None = None,
    **fields: Any,
) -> NodeExecution:
    """A node started `start` seconds in, finished a second later, with
    edges to the labels in `to` traversed when it finished."""
    fields.setdefault("finished_at", at(start + 1))
    return NodeExecution(
        node_label=label,
        status=status,
        started_at=at(start),
        edges=[EdgeTraversal(downstream_label=d, traversed_at=at(start + 1)) for d in to],
        io=io,
        **fields,
    )


def dag_run(run_id: str, *nodes: NodeExecution, **fields: Any) -> DagRun:
    fields.setdefault("dag_nsref", "tests:pipeline")
    fields.setdefault("status", "completed")
    fields.setdefault("started_at", T0)
    fields.setdefault("finished_at", at(60))
    return DagRun(run_id=run_id, nodes={n.node_label: n for n in nodes}, **fields)


def sub_run(
    parent: DagRun,
    key: str,
    run_id: str,
    *nodes: NodeExecution,
    composite_label: str | None = None,
    **fields: Any,
) -> DagRun:
    """A sub-DAG run of `parent`, hung under the composite node its key names
    (or `composite_label`, for a label with a `[` in it)."""
    child = dag_run(
        run_id,
        *nodes,
        dag_nsref=f"{parent.dag_nsref}/{key}",
        parent_run_id=parent.run_id,
        **fields,
    )
    composite = parent.nodes[composite_label or key.split("[")[0]]
    if composite.sub_dags is None:
        composite.sub_dags = {}
    composite.sub_dags[key] = child
    return child


def linear_run(run_id: str = "run-1", **fields: Any) -> DagRun:
    """load -> count -> report, payloads loaded, initiated by alice."""
    fields.setdefault("initiated_by", "alice")
    fields.setdefault("io", IoPayload(input_json='{"load": {"path": "in.csv"}}', output_json="3"))
    return dag_run(
        run_id,
        node("load", 1, to=("count",), is_source=True, io=IoPayload(input_json='{"p": 1}')),
        node("count", 2, to=("report",), io=IoPayload(input_json="[3]", output_json="3")),
        node("report", 3, is_sink=True, io=IoPayload(input_json="3", output_json='"3 rows"')),
        **fields,
    )


def nested_tree() -> DagRun:
    """A map node `chunks` with two sub-DAG runs, a call node `enrich` with one,
    whose own map node `words` has two more (grandchildren)."""
    root = dag_run(
        "root",
        node("split", 1, to=("chunks",)),
        node("chunks", 2, to=("enrich",)),
        node("enrich", 10),
        initiated_by="alice",
    )
    sub_run(root, "chunks[0]", "root-c0", node("shout", 3))
    sub_run(root, "chunks[1]", "root-c1", node("shout", 4))
    enrich = sub_run(
        root, "enrich[]", "root-e", node("split", 11, to=("words",)), node("words", 12)
    )
    sub_run(enrich, "words[0]", "root-e-w0", node("shout", 13))
    sub_run(enrich, "words[1]", "root-e-w1", node("shout", 14))
    return root


def hostile_tree(text: str) -> DagRun:
    """`text` as run id, nsref, key, labels, initiator, error and payload."""
    root = dag_run(
        text,
        node(text, 1, to=(text + "2", text + " missing"), io=IoPayload(input_json=text)),
        node(text + "2", 2, status="failed", error=f"{text}\nTraceback:\n  {text}"),
        dag_nsref=text,
        initiated_by=text,
        status="failed",
    )
    sub_run(
        root, text + "[0]", text + "[child]", node(text, 3), composite_label=text, initiated_by=text
    )
    return root


# --- looking things up in a document --------------------------------------------------


def ident(local: str) -> str:
    """The full identifier (URI) of a local name in the default namespace."""
    return DEFAULT_PROV_NAMESPACE + local


def term(name: str) -> str:
    return DAGP_VOCABULARY + name


def enc(text: str) -> str:
    """The documented encoding of one identifier segment."""
    return quote(text, safe="").replace(".", "%2E").replace("~", "%7E")


def records(document: ProvDocument, kind: type[ProvRecord]) -> list[ProvRecord]:
    return [r for r in document.get_records() if isinstance(r, kind)]


def element(document: ProvDocument, uri: str) -> ProvRecord:
    (found,) = [r for r in document.get_records() if r.identifier and r.identifier.uri == uri]
    return found


def attr(record: ProvRecord, name: str) -> Any:
    """The one value of the attribute `name` (a full URI) of `record`."""
    values = [v for k, v in record.attributes if k.uri == name]
    assert len(values) == 1, (record, name, values)
    return values[0]


def has_attr(record: ProvRecord, name: str) -> bool:
    return any(k.uri == name for k, _ in record.attributes)


def uris(*values: Any) -> tuple[str | None, ...]:
    """The URIs of a relation's arguments (None where one is absent)."""
    return tuple(v.uri if v is not None else None for v in values)


def communications(document: ProvDocument) -> set[tuple[str | None, ...]]:
    """(informed, informant) of every wasInformedBy."""
    return {uris(*r.args) for r in records(document, ProvCommunication)}


def starts(document: ProvDocument) -> dict[str | None, tuple[str | None, datetime | None]]:
    """started activity -> (starter, time) of every wasStartedBy."""
    found = {}
    for r in records(document, ProvStart):
        activity, _trigger, starter, time = r.args
        found[activity.uri] = (starter.uri, time)
    return found


def read_back(text: str, fmt: str) -> ProvDocument:
    name, options = READERS[fmt]
    return ProvDocument.deserialize(content=text, format=name, **options)


# --- the mapping ----------------------------------------------------------------------


def test_a_run_is_an_activity_with_its_times_status_nsref_and_run_id() -> None:
    document = to_prov(linear_run("run-1"))

    run = element(document, ident("run.run-1"))
    assert isinstance(run, ProvActivity)
    assert (run.get_startTime(), run.get_endTime()) == (T0, at(60))
    assert attr(run, term("status")) == "completed"
    assert attr(run, term("dag_nsref")) == "tests:pipeline"
    assert attr(run, term("run_id")) == "run-1"
    assert attr(run, "http://www.w3.org/ns/prov#type").uri == term("DagRun")
    assert not has_attr(run, term("parent_run_id"))


def test_each_node_execution_is_an_activity_started_by_its_run() -> None:
    document = to_prov(linear_run("run-1"))

    load = element(document, ident("run.run-1.node.load"))
    assert isinstance(load, ProvActivity)
    assert (load.get_startTime(), load.get_endTime()) == (at(1), at(2))
    assert attr(load, "http://www.w3.org/ns/prov#label") == "load"
    assert attr(load, term("status")) == "completed"
    assert (attr(load, term("is_source")), attr(load, term("is_sink"))) == (True, False)
    report = element(document, ident("run.run-1.node.report"))
    assert (attr(report, term("is_source")), attr(report, term("is_sink"))) == (False, True)
    assert starts(document) == {
        ident(f"run.run-1.node.{label}"): (ident("run.run-1"), at(start))
        for label, start in (("load", 1), ("count", 2), ("report", 3))
    }


def test_each_traversed_edge_is_a_communication_from_upstream_to_downstream() -> None:
    document = to_prov(linear_run("run-1"))

    assert communications(document) == {
        (ident("run.run-1.node.count"), ident("run.run-1.node.load")),
        (ident("run.run-1.node.report"), ident("run.run-1.node.count")),
    }
    (load_to_count,) = [
        r for r in records(document, ProvCommunication) if r.args[1].localpart.endswith("load")
    ]
    assert attr(load_to_count, term("traversed_at")) == at(2)


def test_an_edge_to_a_node_that_never_started_declares_it_with_only_its_label() -> None:
    run = dag_run(
        "stopped",
        node("load", 1, to=("count", "audit")),
        node("other", 1, to=("count",)),
        status="failed",
    )
    document = to_prov(run)

    assert communications(document) == {
        (ident("run.stopped.node.count"), ident("run.stopped.node.load")),
        (ident("run.stopped.node.audit"), ident("run.stopped.node.load")),
        (ident("run.stopped.node.count"), ident("run.stopped.node.other")),
    }
    count = element(document, ident("run.stopped.node.count"))
    assert isinstance(count, ProvActivity)
    assert (count.get_startTime(), count.get_endTime()) == (None, None)
    assert attr(count, "http://www.w3.org/ns/prov#label") == "count"
    assert not has_attr(count, term("status"))
    assert read_back(serialize_prov(document, "prov-json"), "prov-json") == document


def test_loaded_payloads_are_entities_with_their_digest_and_size_never_their_text() -> None:
    secret = '{"password": "hunter2 \U0001f600"}'
    run = dag_run(
        "run-1",
        node("load", 1, io=IoPayload(input_json=secret, output_json="[1, 2]")),
        io=IoPayload(input_json=secret, output_json='{"load": [1, 2]}'),
    )
    document = to_prov(run)

    def payload(local: str, text: str) -> None:
        entity = element(document, ident(local))
        assert isinstance(entity, ProvEntity)
        assert attr(entity, term("sha256")) == hashlib.sha256(text.encode()).hexdigest()
        assert attr(entity, term("size_bytes")) == len(text.encode())

    payload("run.run-1.node.load.input", secret)
    payload("run.run-1.node.load.output", "[1, 2]")
    payload("run.run-1.source_inputs", secret)
    payload("run.run-1.sink_outputs", '{"load": [1, 2]}')
    used = {(*uris(*r.args[:2]), r.args[2]) for r in records(document, ProvUsage)}
    assert used == {
        (ident("run.run-1.node.load"), ident("run.run-1.node.load.input"), at(1)),
        (ident("run.run-1"), ident("run.run-1.source_inputs"), T0),
    }
    generated = {(*uris(*r.args[:2]), r.args[2]) for r in records(document, ProvGeneration)}
    assert generated == {
        (ident("run.run-1.node.load.output"), ident("run.run-1.node.load"), at(2)),
        (ident("run.run-1.sink_outputs"), ident("run.run-1"), at(60)),
    }
    for fmt in PROV_FORMATS:
        assert "hunter2" not in serialize_prov(document, fmt)


def test_payloads_not_loaded_or_none_make_no_entities() -> None:
    not_loaded = dag_run("run-1", node("load", 1))
    nothing_recorded = dag_run(
        "run-2", node("load", 1, io=IoPayload()), io=IoPayload(input_json=None)
    )
    for run in (not_loaded, nothing_recorded):
        document = to_prov(run)
        assert records(document, ProvEntity) == []
        assert records(document, ProvUsage) == records(document, ProvGeneration) == []


def test_the_initiator_is_one_agent_every_run_it_started_is_associated_with() -> None:
    document = to_prov(nested_tree())

    (agent,) = records(document, ProvAgent)
    assert agent.identifier is not None
    assert agent.identifier.uri == ident("agent.alice")
    assert attr(agent, "http://www.w3.org/ns/prov#label") == "alice"
    associations = {uris(*r.args[:2]) for r in records(document, ProvAssociation)}
    assert associations == {(ident("run.root"), ident("agent.alice"))}


def test_a_run_without_an_initiator_has_no_agent() -> None:
    document = to_prov(linear_run(initiated_by=None))
    assert records(document, ProvAgent) == records(document, ProvAssociation) == []


def test_a_failed_node_carries_its_multi_line_error() -> None:
    error = 'Traceback (most recent call last):\r\n  File "x.py"\n\tValueError: "bad" \\ \''
    run = dag_run("run-1", node("explode", 1, status="failed", error=error), status="failed")
    document = to_prov(run)

    explode = element(document, ident("run.run-1.node.explode"))
    assert attr(explode, term("status")) == "failed"
    assert attr(explode, term("error")) == error
    for fmt in PROV_FORMATS:
        assert read_back(serialize_prov(document, fmt), fmt) == document
    assert '"""Traceback (most recent call last):' in serialize_prov(document, "prov-n")


def test_a_run_still_running_has_no_end_time() -> None:
    run = dag_run(
        "live",
        node("load", 1, to=("count",)),
        node("count", 2, status="running", finished_at=None),
        status="running",
        finished_at=None,
        io=IoPayload(input_json="{}", output_json=None),
    )
    document = to_prov(run)

    live = element(document, ident("run.live"))
    assert isinstance(live, ProvActivity)
    assert (live.get_startTime(), live.get_endTime()) == (T0, None)
    count = element(document, ident("run.live.node.count"))
    assert isinstance(count, ProvActivity)
    assert (count.get_startTime(), count.get_endTime()) == (at(2), None)
    assert records(document, ProvGeneration) == []
    for fmt in PROV_FORMATS:
        assert read_back(serialize_prov(document, fmt), fmt) == document


def test_a_run_with_no_nodes_is_one_activity() -> None:
    document = to_prov(dag_run("empty", status="cancelled"))

    (activity,) = document.get_records()
    assert isinstance(activity, ProvActivity)
    assert activity.identifier is not None
    assert activity.identifier.uri == ident("run.empty")
    for fmt in PROV_FORMATS:
        assert read_back(serialize_prov(document, fmt), fmt) == document


def test_sub_dag_runs_are_started_by_the_composite_node_that_expanded_them() -> None:
    document = to_prov(nested_tree())

    started = starts(document)
    for key, child, composite in (
        ("chunks[0]", "root-c0", "run.root.node.chunks"),
        ("chunks[1]", "root-c1", "run.root.node.chunks"),
        ("enrich[]", "root-e", "run.root.node.enrich"),
        ("words[0]", "root-e-w0", "run.root-e.node.words"),
        ("words[1]", "root-e-w1", "run.root-e.node.words"),
    ):
        assert started[ident(f"run.{child}")] == (ident(composite), T0)
        (start,) = [
            r for r in records(document, ProvStart) if r.args[0].uri == ident(f"run.{child}")
        ]
        assert attr(start, term("sub_dag_key")) == key
        activity = element(document, ident(f"run.{child}"))
        parent = "root-e" if child.startswith("root-e-") else "root"
        assert attr(activity, term("parent_run_id")) == parent
    # Every run of the tree is there once, with its own nodes.
    runs = [
        r
        for r in records(document, ProvActivity)
        if attr(r, "http://www.w3.org/ns/prov#type").uri == term("DagRun")
    ]
    assert len(runs) == 6
    assert element(document, ident("run.root-e-w1.node.shout"))


# --- identifiers ----------------------------------------------------------------------


def test_identifiers_are_percent_encoded_segments_joined_by_dots() -> None:
    run_id, label, who = "a/b.c d", "x:y~z", "bob@example.com"
    document = to_prov(
        dag_run(
            run_id,
            node(label, 1, io=IoPayload(input_json="1", output_json="2")),
            initiated_by=who,
            io=IoPayload(input_json="{}", output_json="{}"),
        )
    )

    found = {r.identifier.uri for r in document.get_records() if r.identifier is not None}
    assert found == {
        ident(local)
        for local in (
            "run.a%2Fb%2Ec%20d",
            "run.a%2Fb%2Ec%20d.source_inputs",
            "run.a%2Fb%2Ec%20d.sink_outputs",
            "run.a%2Fb%2Ec%20d.node.x%3Ay%7Ez",
            "run.a%2Fb%2Ec%20d.node.x%3Ay%7Ez.input",
            "run.a%2Fb%2Ec%20d.node.x%3Ay%7Ez.output",
            "agent.bob%40example%2Ecom",
        )
    }
    assert found == {
        ident(f"run.{enc(run_id)}{rest}")
        for rest in (
            "",
            ".source_inputs",
            ".sink_outputs",
            f".node.{enc(label)}",
            f".node.{enc(label)}.input",
            f".node.{enc(label)}.output",
        )
    } | {ident(f"agent.{enc(who)}")}


def test_ids_and_labels_that_look_like_identifier_paths_stay_apart() -> None:
    # Unencoded, run "r.node.x" would be node "x" of run "r", run "agent"'s
    # node "alice" the agent "alice", and so on.
    tree = dag_run("r", node("x", 1), node("x.input", 2), node("source_inputs", 3))
    sub_run(tree, "x[0]", "r.node.x")
    sub_run(tree, "x[1]", "agent", node("alice", 4))
    sub_run(tree, "x[2]", "r.source_inputs", io=IoPayload(input_json="{}"))
    tree.initiated_by = "alice"
    tree.io = IoPayload(input_json="{}")
    document = to_prov(tree)

    identifiers = [r.identifier for r in document.get_records() if r.identifier is not None]
    assert len(records(document, ProvActivity)) == 4 + 4  # the runs and their nodes
    assert len(records(document, ProvEntity)) == 2
    assert len(records(document, ProvAgent)) == 1
    assert len(set(identifiers)) == len(identifiers) == 11


# --- formats --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", PROV_FORMATS)
def test_every_format_reads_back_equal_to_the_document(fmt: str) -> None:
    tree = nested_tree()
    for run in tree.walk():
        run.io = IoPayload(input_json=f'{{"run": "{run.run_id}"}}', output_json="null")
        for n in run.nodes.values():
            n.io = IoPayload(input_json="[]", output_json='"done"')
    document = to_prov(tree)

    assert read_back(serialize_prov(document, fmt), fmt) == document


@pytest.mark.parametrize("text", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_text_anywhere_reads_back_equal_in_every_format(text: str) -> None:
    document = to_prov(hostile_tree(text))

    root = element(document, ident(f"run.{enc(text)}"))
    assert attr(root, term("run_id")) == attr(root, term("dag_nsref")) == text
    failed = element(document, ident(f"run.{enc(text)}.node.{enc(text + '2')}"))
    assert attr(failed, term("error")) == f"{text}\nTraceback:\n  {text}"
    agent = element(document, ident(f"agent.{enc(text)}"))
    assert attr(agent, "http://www.w3.org/ns/prov#label") == text
    for fmt in PROV_FORMATS:
        assert read_back(serialize_prov(document, fmt), fmt) == document, fmt


# Any text the store accepts: no NUL, no lone surrogate.
storable_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=40
)


@settings(max_examples=40, deadline=None)
@given(text=storable_text)
def test_any_storable_text_reads_back_equal_in_every_format(text: str) -> None:
    document = to_prov(hostile_tree(text))
    for fmt in PROV_FORMATS:
        assert read_back(serialize_prov(document, fmt), fmt) == document, fmt


@pytest.mark.parametrize("fmt", PROV_FORMATS)
def test_exporting_the_same_tree_twice_gives_identical_text(fmt: str) -> None:
    tree = nested_tree()
    tree.nodes["split"].io = IoPayload(input_json='{"text": "a b"}', output_json='["a", "b"]')
    tree.nodes["split"].edges.append(EdgeTraversal(downstream_label="ghost", traversed_at=at(5)))

    first = serialize_prov(to_prov(tree), fmt)
    second = serialize_prov(to_prov(tree.model_copy(deep=True)), fmt)
    assert first == second


def test_prov_o_is_turtle_that_rdflib_parses() -> None:
    text = serialize_prov(to_prov(linear_run("run-1")), "prov-o")

    graph = rdflib.Graph().parse(data=text, format="turtle")
    prov = rdflib.Namespace("http://www.w3.org/ns/prov#")
    activities = set(graph.subjects(rdflib.RDF.type, prov.Activity))
    assert activities == {
        rdflib.URIRef(ident(local))
        for local in (
            "run.run-1",
            "run.run-1.node.load",
            "run.run-1.node.count",
            "run.run-1.node.report",
        )
    }
    assert (
        rdflib.URIRef(ident("run.run-1.node.count")),
        prov.wasInformedBy,
        rdflib.URIRef(ident("run.run-1.node.load")),
    ) in graph
    assert (
        rdflib.URIRef(ident("run.run-1")),
        prov.wasAssociatedWith,
        rdflib.URIRef(ident("agent.alice")),
    ) in graph
    assert set(graph.subjects(rdflib.RDF.type, prov.Agent)) == {rdflib.URIRef(ident("agent.alice"))}


def test_prov_n_states_the_mapping() -> None:
    text = serialize_prov(to_prov(linear_run("run-1")), "prov-n")

    assert text.startswith("document\n")
    assert text.rstrip().endswith("endDocument")
    assert f"prefix id <{DEFAULT_PROV_NAMESPACE}>" in text
    assert f"prefix dagp <{DAGP_VOCABULARY}>" in text
    for statement in (
        "activity(id:run.run-1, 2031-05-17T09:30:00.123457+00:00, "
        "2031-05-17T09:31:00.123457+00:00, [",
        'agent(id:agent.alice, [prov:label="alice"])',
        "wasAssociatedWith(id:run.run-1, id:agent.alice, -)",
        "wasStartedBy(id:run.run-1.node.load, -, id:run.run-1, 2031-05-17T09:30:01.123457+00:00)",
        "wasInformedBy(id:run.run-1.node.count, id:run.run-1.node.load, [dagp:traversed_at=",
        "used(id:run.run-1.node.count, id:run.run-1.node.count.input, ",
        "wasGeneratedBy(id:run.run-1.node.count.output, id:run.run-1.node.count, ",
        'dagp:status="completed"',
        'dagp:is_source="true" %% xsd:boolean',
    ):
        assert statement in text, statement


def test_prov_json_names_both_namespaces() -> None:
    text = serialize_prov(to_prov(linear_run("run-1")), "prov-json")
    assert f'"id": "{DEFAULT_PROV_NAMESPACE}"' in text
    assert f'"dagp": "{DAGP_VOCABULARY}"' in text
    assert '"id:run.run-1.node.load"' in text


# --- options and refusals -------------------------------------------------------------


def test_both_namespaces_and_prefixes_can_be_chosen() -> None:
    document = to_prov(
        linear_run("run-1"),
        namespace="https://example.com/provenance/",
        prefix="ex",
        vocabulary="https://example.com/terms#",
        vocabulary_prefix="t",
    )

    run = element(document, "https://example.com/provenance/run.run-1")
    assert attr(run, "https://example.com/terms#status") == "completed"
    text = serialize_prov(document, "prov-n")
    assert "activity(ex:run.run-1.node.load, " in text
    assert 't:status="completed"' in text
    for fmt in PROV_FORMATS:
        assert read_back(serialize_prov(document, fmt), fmt) == document


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"prefix": "dagp"}, "both 'dagp'"),
        ({"prefix": "prov"}, "reserved"),
        ({"vocabulary_prefix": "xsd"}, "reserved"),
        ({"prefix": "1x"}, "prefix must be"),
        ({"prefix": "a:b"}, "prefix must be"),
        ({"namespace": "https://example.com/a b/"}, "namespace must be an IRI"),
        ({"namespace": ""}, "namespace must be an IRI"),
        ({"vocabulary": "<x>"}, "vocabulary must be an IRI"),
        ({"namespace": DAGP_VOCABULARY}, "must not overlap"),
        ({"namespace": "urn:dag-provenance:"}, "must not overlap"),
    ],
)
def test_unusable_namespaces_are_refused(options: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        to_prov(linear_run(), **options)


def test_an_unknown_format_is_refused_naming_the_allowed_ones() -> None:
    document = to_prov(linear_run())
    with pytest.raises(InvalidInputError, match=r"'prov-json', 'prov-n', 'prov-o'.*'xml'"):
        serialize_prov(document, "xml")


def test_to_prov_refuses_what_is_not_a_dag_run() -> None:
    with pytest.raises(InvalidInputError, match="must be a DagRun, got dict"):
        to_prov({"run_id": "x"})  # type: ignore[arg-type]


def test_serialize_prov_refuses_what_is_not_a_prov_document() -> None:
    with pytest.raises(InvalidInputError, match="must be a prov ProvDocument, got DagRun"):
        serialize_prov(linear_run(), "prov-json")  # type: ignore[arg-type]


def test_without_the_lineage_extra_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prov.model", None)
    with pytest.raises(ExtraNotInstalledError, match=r"dag-provenance\[lineage\]"):
        to_prov(linear_run())


def test_without_rdflib_prov_o_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    document = to_prov(linear_run())
    monkeypatch.setitem(sys.modules, "rdflib", None)
    with pytest.raises(ExtraNotInstalledError, match=r"dag-provenance\[lineage\]"):
        serialize_prov(document, "prov-o")


# --- size -----------------------------------------------------------------------------


def map_tree(runs: int) -> DagRun:
    """A root whose map node expanded `runs - 1` sub-DAG runs of two nodes,
    every payload loaded."""
    root = dag_run(
        "big",
        node("split", 1, to=("chunks",), io=IoPayload(input_json='{"n": 1}', output_json="[]")),
        node("chunks", 2),
        initiated_by="alice",
        io=IoPayload(input_json="{}", output_json="{}"),
    )
    sub_dags = root.nodes["chunks"].sub_dags = {}
    for i in range(runs - 1):
        key = f"chunks[{i}]"
        sub_dags[key] = dag_run(
            f"big-{i}",
            node(
                "shout", 3, to=("join",), io=IoPayload(input_json=f'"w{i}"', output_json=f'"W{i}"')
            ),
            node("join", 4, io=IoPayload(input_json=f'["W{i}"]', output_json=f'"W{i}!"')),
            dag_nsref=f"tests:pipeline/{key}",
            parent_run_id="big",
            initiated_by="alice",
            io=IoPayload(input_json=f'{{"shout": "w{i}"}}', output_json=f'{{"join": "W{i}!"}}'),
        )
    return root


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("runs", [1_000, pytest.param(10_000, marks=pytest.mark.slow)])
def test_memory_to_export_a_tree_stays_within_a_constant_factor_of_the_tree(
    runs: int, traced: None
) -> None:
    tree = map_tree(runs)
    tree_size, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()

    document = to_prov(tree)
    _, peak = tracemalloc.get_traced_memory()

    # Per sub-DAG run: 3 activities, 6 entities, 6 usages/generations, 3 starts,
    # 1 communication, 1 association.
    assert len(document.records) > 20 * (runs - 1)
    # The document (prov's records) measures about 6.5 times the tree at
    # either size: linear, with room for other Python versions.
    assert peak - tree_size < 10 * tree_size
