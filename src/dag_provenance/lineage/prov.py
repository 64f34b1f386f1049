"""Recorded runs as W3C PROV documents (PROV-DM, built with the `prov`
library), serialised as PROV-JSON, PROV-N or PROV-O.

Every identifier is a qualified name in one namespace (`namespace`, written
with `prefix`) whose local name is a series of segments joined by `.`, each
run id, label or initiator percent-encoded (`urllib.parse.quote(s, safe="")`
and `.`, `~` too), so a segment holds only ASCII letters, digits, `_`, `-`
and `%XX`:

    run.<run id>                         a run (activity)
    run.<run id>.node.<label>            a node execution (activity)
    run.<run id>.node.<label>.input      a node's recorded input (entity)
    run.<run id>.node.<label>.output     a node's recorded output (entity)
    run.<run id>.source_inputs           a run's source inputs (entity)
    run.<run id>.sink_outputs            a run's sink outputs (entity)
    agent.<initiator>                    who initiated a run (agent)

The first segment names the kind and the number of segments the shape, so no
two things share an identifier. Every format writes these names as they are
and reads them back unchanged, and an RDF writer sees one namespace, not one
per run: a `/` in the local names would make rdflib's Turtle writer take each
run's "directory" for a namespace of its own and slow down quadratically.
Attributes and types are terms of a second namespace, the vocabulary
(`vocabulary`, written with `vocabulary_prefix`).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from dag_provenance.errors import InvalidInputError
from dag_provenance.lineage.extra import require
from dag_provenance.models import DagRun, IoPayload, NodeExecution

if TYPE_CHECKING:
    from prov.identifier import Namespace, QualifiedName
    from prov.model import ProvDocument

DEFAULT_PROV_NAMESPACE = "urn:dag-provenance:id:"
"""The identifiers' namespace unless the caller names one: a URN, claiming no
web address. Pass your store's own IRI (`https://example.com/provenance/`)
to keep identifiers from different stores apart."""

DAGP_VOCABULARY = "urn:dag-provenance:vocab:"
"""The namespace of the attribute and type terms (`dagp:status`, ...)."""

PROV_FORMATS = ("prov-json", "prov-n", "prov-o")
"""The formats `serialize_prov` writes: PROV-JSON, PROV-N, PROV-O (Turtle)."""

# Our format name -> prov's serializer and its options. PROV-O is written as
# Turtle: the documents have no bundles, so TriG's named graphs add nothing.
_SERIALIZERS: dict[str, tuple[str, dict[str, Any]]] = {
    "prov-json": ("json", {}),
    "prov-n": ("provn", {}),
    "prov-o": ("rdf", {"rdf_format": "turtle"}),
}

# A prefix every format writes and reads back as given (PROV-N's PN_PREFIX
# allows more, but not all of it is a Turtle or XML prefix).
_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# prov declares these itself: a namespace given one would be renamed.
_RESERVED_PREFIXES = frozenset({"prov", "xsd", "xsi"})
# What PROV-N cannot write inside an IRI (its IRI_REF production).
_NOT_IN_IRI = re.compile(r'[<>"{}|^`\\\x00-\x20\x7f]')


def to_prov(
    dag_run: DagRun,
    *,
    namespace: str = DEFAULT_PROV_NAMESPACE,
    prefix: str = "id",
    vocabulary: str = DAGP_VOCABULARY,
    vocabulary_prefix: str = "dagp",
) -> ProvDocument:
    """The W3C PROV document of `dag_run` and every sub-DAG run below it.

    Each run and node execution is an activity. A node `wasStartedBy` its
    run, a sub-DAG run `wasStartedBy` the composite node that expanded it
    (the expansion key as `dagp:sub_dag_key`), each traversed edge is
    `wasInformedBy(downstream, upstream)` with `dagp:traversed_at`, and a
    run `wasAssociatedWith` its initiator, an agent. An edge to a label with
    no node execution (the run stopped before that node started) still gives
    its `wasInformedBy`: the downstream node is declared as an activity with
    only its label, no times and no status.

    Payloads become entities only where they are loaded: `io` is None until
    `store.load_io(run)` fills it (`load_tree_io(store, dag_run)` fills the
    whole tree). Each loaded input and output that is not None is an entity
    with `dagp:sha256` (hex digest of its UTF-8 text) and `dagp:size_bytes`,
    `used` by or `wasGeneratedBy` its node or run; the text itself is never
    written.

    The same tree always gives the same document, and so the same
    serialisations: no random ids, no export time. `namespace` and `prefix`
    name the identifiers' namespace, `vocabulary` and `vocabulary_prefix` the
    terms'; the two must differ and neither prefix may be prov, xsd or xsi.
    """
    if not isinstance(dag_run, DagRun):
        raise InvalidInputError(f"dag_run must be a DagRun, got {type(dag_run).__name__}")
    _check_namespaces(namespace, prefix, vocabulary, vocabulary_prefix)
    prov_model = require("prov.model", "prov")
    document: ProvDocument = prov_model.ProvDocument()
    builder = _DocumentBuilder(
        document,
        document.add_namespace(prefix, namespace),
        document.add_namespace(vocabulary_prefix, vocabulary),
    )
    for run in dag_run.walk():
        builder.add_run(run)
    return document


def serialize_prov(document: ProvDocument, fmt: str) -> str:
    """`document` as text in `fmt`, one of `PROV_FORMATS`: `"prov-json"`,
    `"prov-n"` or `"prov-o"` (Turtle; needs rdflib, in the `[lineage]` extra)."""
    if fmt not in _SERIALIZERS:
        allowed = ", ".join(repr(f) for f in PROV_FORMATS)
        raise InvalidInputError(f"fmt must be one of {allowed}, got {fmt!r}")
    prov_model = require("prov.model", "prov")
    if not isinstance(document, prov_model.ProvDocument):
        raise InvalidInputError(
            f"document must be a prov ProvDocument, got {type(document).__name__}"
        )
    serializer, options = _SERIALIZERS[fmt]
    if serializer == "rdf":
        require("rdflib", "rdflib")
    text = document.serialize(format=serializer, **options)
    if not isinstance(text, str):  # pragma: no cover - prov returns str given no destination
        raise TypeError(f"prov returned {type(text).__name__} for {fmt}")
    return text


def _check_namespaces(namespace: str, prefix: str, vocabulary: str, vocabulary_prefix: str) -> None:
    for field, value in (("prefix", prefix), ("vocabulary_prefix", vocabulary_prefix)):
        if not isinstance(value, str) or not _PREFIX.fullmatch(value):
            raise InvalidInputError(
                f"{field} must be a letter then letters, digits or '_', got {value!r}"
            )
        if value in _RESERVED_PREFIXES:
            raise InvalidInputError(f"{field} {value!r} is reserved by PROV")
    for field, value in (("namespace", namespace), ("vocabulary", vocabulary)):
        if not isinstance(value, str) or not value or _NOT_IN_IRI.search(value):
            raise InvalidInputError(
                f"{field} must be an IRI without spaces, control characters "
                f'or any of <>"{{}}|^`\\, got {value!r}'
            )
    if prefix == vocabulary_prefix:
        raise InvalidInputError(f"prefix and vocabulary_prefix are both {prefix!r}")
    if namespace.startswith(vocabulary) or vocabulary.startswith(namespace):
        # A reader maps an IRI back to a namespace it starts with: overlapping
        # namespaces would make identifiers and terms ambiguous.
        raise InvalidInputError(
            f"namespace {namespace!r} and vocabulary {vocabulary!r} must not overlap"
        )


def _segment(value: str) -> str:
    """A local-name segment: all but ASCII letters, digits, `_` and `-`
    percent-encoded, so it never holds the `.` that separates segments."""
    return quote(value, safe="").replace(".", "%2E").replace("~", "%7E")


def _run_path(run_id: str) -> str:
    return f"run.{_segment(run_id)}"


def _node_path(run_path: str, label: str) -> str:
    return f"{run_path}.node.{_segment(label)}"


# The roles of a node's and of a run's payloads: the last segment of their
# entities' local names, and `prov:role` in their usage and generation.
_NODE_ROLES = ("input", "output")
_RUN_ROLES = ("source_inputs", "sink_outputs")


def _digest(payload: str) -> tuple[str, int]:
    """The payload's sha256 hex digest and size, both of its UTF-8 bytes."""
    data = payload.encode("utf-8")
    return hashlib.sha256(data).hexdigest(), len(data)


class _DocumentBuilder:
    """Adds runs' records to one document, each initiator's agent once."""

    def __init__(self, document: ProvDocument, ids: Namespace, terms: Namespace) -> None:
        prov_constants = require("prov.constants", "prov")
        self._document = document
        self._ids = ids
        self._terms = terms
        self._prov_type: QualifiedName = prov_constants.PROV_TYPE
        self._prov_label: QualifiedName = prov_constants.PROV_LABEL
        self._prov_role: QualifiedName = prov_constants.PROV_ROLE
        self._agents: set[str] = set()

    def add_run(self, run: DagRun) -> None:
        """The run's activity, payloads and initiator, its node executions
        and their edges, and the starts of the sub-DAG runs its nodes expanded."""
        run_path = _run_path(run.run_id)
        activity = self._ids[run_path]
        attributes: list[tuple[QualifiedName, object]] = [
            (self._prov_type, self._terms["DagRun"]),
            (self._prov_label, run.run_id),
            (self._terms["run_id"], run.run_id),
            (self._terms["dag_nsref"], run.dag_nsref),
            (self._terms["status"], run.status),
        ]
        if run.parent_run_id is not None:
            attributes.append((self._terms["parent_run_id"], run.parent_run_id))
        self._document.activity(activity, run.started_at, run.finished_at, attributes)
        if run.io is not None:
            self._add_payloads(
                activity, run_path, _RUN_ROLES, run.io, run.started_at, run.finished_at
            )
        if run.initiated_by is not None:
            self._document.wasAssociatedWith(activity, self._agent(run.initiated_by))
        unrecorded: set[str] = set()
        for label, node in run.nodes.items():
            node_activity = self._add_node(activity, run_path, label, node)
            for edge in node.edges:
                downstream = edge.downstream_label
                if downstream not in run.nodes and downstream not in unrecorded:
                    unrecorded.add(downstream)
                    self._add_unrecorded_node(run_path, downstream)
                self._document.wasInformedBy(
                    self._ids[_node_path(run_path, downstream)],
                    node_activity,
                    other_attributes=[(self._terms["traversed_at"], edge.traversed_at)],
                )
            for key, child in (node.sub_dags or {}).items():
                self._document.wasStartedBy(
                    self._ids[_run_path(child.run_id)],
                    starter=node_activity,
                    time=child.started_at,
                    other_attributes=[(self._terms["sub_dag_key"], key)],
                )

    def _add_node(
        self, run_activity: QualifiedName, run_path: str, label: str, node: NodeExecution
    ) -> QualifiedName:
        node_path = _node_path(run_path, label)
        activity = self._ids[node_path]
        attributes: list[tuple[QualifiedName, object]] = [
            (self._prov_type, self._terms["NodeExecution"]),
            (self._prov_label, label),
            (self._terms["status"], node.status),
            (self._terms["is_source"], node.is_source),
            (self._terms["is_sink"], node.is_sink),
        ]
        if node.error is not None:
            attributes.append((self._terms["error"], node.error))
        self._document.activity(activity, node.started_at, node.finished_at, attributes)
        self._document.wasStartedBy(activity, starter=run_activity, time=node.started_at)
        if node.io is not None:
            self._add_payloads(
                activity, node_path, _NODE_ROLES, node.io, node.started_at, node.finished_at
            )
        return activity

    def _add_unrecorded_node(self, run_path: str, label: str) -> None:
        self._document.activity(
            self._ids[_node_path(run_path, label)],
            other_attributes=[
                (self._prov_type, self._terms["NodeExecution"]),
                (self._prov_label, label),
            ],
        )

    def _add_payloads(
        self,
        activity: QualifiedName,
        path: str,
        roles: tuple[str, str],
        io: IoPayload,
        started_at: datetime | None,
        finished_at: datetime | None,
    ) -> None:
        """The loaded input the activity used and the output it generated,
        each an entity at `<path>.<role>`, skipping a payload that is None."""
        input_role, output_role = roles
        if io.input_json is not None:
            entity = self._add_payload(f"{path}.{input_role}", io.input_json)
            self._document.used(
                activity, entity, started_at, other_attributes=[(self._prov_role, input_role)]
            )
        if io.output_json is not None:
            entity = self._add_payload(f"{path}.{output_role}", io.output_json)
            self._document.wasGeneratedBy(
                entity, activity, finished_at, other_attributes=[(self._prov_role, output_role)]
            )

    def _add_payload(self, path: str, payload: str) -> QualifiedName:
        entity = self._ids[path]
        sha256, size = _digest(payload)
        self._document.entity(
            entity,
            [
                (self._prov_type, self._terms["Payload"]),
                (self._terms["sha256"], sha256),
                (self._terms["size_bytes"], size),
            ],
        )
        return entity

    def _agent(self, initiator: str) -> QualifiedName:
        agent = self._ids[f"agent.{_segment(initiator)}"]
        if initiator not in self._agents:
            self._agents.add(initiator)
            self._document.agent(agent, [(self._prov_label, initiator)])
        return agent
