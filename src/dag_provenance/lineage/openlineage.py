"""Recorded runs as OpenLineage run events (openlineage-python's `event_v2`
and `facet_v2` classes), for an export of a run tree (`to_openlineage`) and
for live emission (`listener.OpenLineageListener`): both build each event
with the functions here, so what a backend hears live is what an export of
the same tree gives.

The mapping:

- A DAG run is a job named by its `dag_nsref`. Its START is at `started_at`;
  a finished run ends with COMPLETE, FAIL (with the error of the node that
  failed it in the `errorMessage` facet) or ABORT (cancelled) at
  `finished_at`; a paused run has a RUNNING event at its last recorded time; a
  running run has only its START.
- Each node execution is a job of its own, `<dag_nsref>.<node_label>`, whose
  `parent` facet points at its DAG run (and `root` at the root of the tree).
  START at `started_at`, then COMPLETE or FAIL (`errorMessage`) at
  `finished_at`; the edges a node traversed are the `downstream` entries of
  its COMPLETE's `jobDependencies` facet. A skipped (replayed) node has one
  COMPLETE, marked `skipped` in the `dagprovenance_node` facet.
- A sub-DAG run's `parent` facet names its parent run, and `root` the root.
- OpenLineage run ids are UUIDs: a run id that is a UUID is used as it is,
  any other id (and every node execution) gets a stable UUIDv5. The original
  ids travel in the custom facets `dagprovenance_run` and
  `dagprovenance_node`, with the nsref, status and `initiated_by`.
- Event times are the recorded UTC timestamps, so an export of the same
  run gives the same events every time.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any

from dag_provenance.lineage.extra import require
from dag_provenance.models import DagRun, NodeExecution
from dag_provenance.status import NodeStatus, RunStatus

require("openlineage.client", "openlineage-python")

import attr  # noqa: E402  (openlineage-python's own dependency)
from openlineage.client.event_v2 import Job, Run, RunEvent, RunState  # noqa: E402
from openlineage.client.facet_v2 import (  # noqa: E402
    RunFacet,
    error_message_run,
    job_dependencies_run,
    job_type_job,
    parent_run,
)

if TYPE_CHECKING:
    from openlineage.client.facet_v2 import JobFacet

DEFAULT_NAMESPACE = "dag-provenance"
"""The OpenLineage namespace of the jobs, unless one is given."""

try:
    _VERSION = metadata.version("dag-provenance")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    _VERSION = "0"

PRODUCER = f"https://pypi.org/project/dag-provenance/{_VERSION}/"
"""The `producer` of every event and `_producer` of every facet."""

SCHEMA_BASE = "https://pypi.org/project/dag-provenance/schemas/facets/1-0-0/"
"""Where the custom facets' JSON schemas are named from (`_schemaURL`); the
schemas themselves ship in this package (`lineage/schemas/`)."""

PROGRAMMING_LANGUAGE = "python"
INTEGRATION = "DAG_PROVENANCE"

# Node execution ids are UUIDv5s of (run id, label) in this namespace; run ids
# that are not UUIDs, of (run id,).
_UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://pypi.org/project/dag-provenance/")


@attr.define
class DagProvenanceRunFacet(RunFacet):
    """`dagprovenance_run`: the recorded identity of a DAG run."""

    runId: str
    dagNsref: str
    status: str
    initiatedBy: str | None = attr.field(default=None)
    parentRunId: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA_BASE + "DagProvenanceRunFacet.json#/$defs/DagProvenanceRunFacet"


@attr.define
class DagProvenanceNodeFacet(RunFacet):
    """`dagprovenance_node`: the recorded identity of a node execution."""

    runId: str
    dagNsref: str
    nodeLabel: str
    status: str
    isSource: bool | None = attr.field(default=None)
    isSink: bool | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA_BASE + "DagProvenanceNodeFacet.json#/$defs/DagProvenanceNodeFacet"


def openlineage_run_id(run_id: str) -> str:
    """The OpenLineage run id of a DAG run: the id itself if it is a UUID (in
    its canonical form), else a UUIDv5 of it."""
    try:
        if str(uuid.UUID(run_id)) == run_id:
            return run_id
    except ValueError:
        pass
    return str(uuid.uuid5(_UUID_NAMESPACE, json.dumps([run_id])))


def node_run_id(run_id: str, node_label: str) -> str:
    """The OpenLineage run id of a node execution: a UUIDv5 of (run, label)."""
    return str(uuid.uuid5(_UUID_NAMESPACE, json.dumps([run_id, node_label])))


def node_job_name(dag_nsref: str, node_label: str) -> str:
    return f"{dag_nsref}.{node_label}"


@dataclass(frozen=True, eq=False)
class RunRef:
    """What the events of a DAG run say about it, and its place in its tree."""

    run_id: str
    dag_nsref: str
    initiated_by: str | None = None
    parent: RunRef | None = None

    @functools.cached_property
    def root(self) -> RunRef:
        ref = self
        while ref.parent is not None:
            ref = ref.parent
        return ref

    @functools.cached_property
    def lineage_id(self) -> str:
        return openlineage_run_id(self.run_id)


class EventBuilder:
    """Builds the OpenLineage events of DAG runs and node executions in one
    namespace (see the module for the mapping)."""

    def __init__(self, namespace: str = DEFAULT_NAMESPACE) -> None:
        if not isinstance(namespace, str) or not namespace:
            from dag_provenance.errors import InvalidInputError

            raise InvalidInputError(f"namespace must be a non-empty str, got {namespace!r}")
        self.namespace = namespace
        self._dag_type = job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration=INTEGRATION, jobType="DAG", producer=PRODUCER
        )
        self._task_type = job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration=INTEGRATION, jobType="TASK", producer=PRODUCER
        )
        # The parent facet of the runs met last: every node of a run shares it.
        self._parents: OrderedDict[int, tuple[RunRef, parent_run.ParentRunFacet]] = OrderedDict()

    # --- DAG runs

    def run_event(
        self,
        ref: RunRef,
        state: RunState,
        at: datetime,
        status: str,
        error: str | None = None,
    ) -> RunEvent:
        facets: dict[str, RunFacet] = {
            "dagprovenance_run": DagProvenanceRunFacet(
                runId=ref.run_id,
                dagNsref=ref.dag_nsref,
                status=status,
                initiatedBy=ref.initiated_by,
                parentRunId=ref.parent.run_id if ref.parent is not None else None,
                producer=PRODUCER,
            )
        }
        if ref.parent is not None:
            facets["parent"] = self._parent(ref.parent)
        if error is not None:
            facets["errorMessage"] = self._error(error)
        return self._event(state, at, ref.lineage_id, ref.dag_nsref, facets, self._dag_type)

    def run_state(self, status: str) -> RunState | None:
        """The event that ends a run of `status` (None: it has not ended)."""
        return _RUN_END.get(status)

    # --- node executions

    def node_event(
        self,
        ref: RunRef,
        node_label: str,
        state: RunState,
        at: datetime,
        status: str,
        *,
        is_source: bool | None = None,
        is_sink: bool | None = None,
        error: str | None = None,
        downstream: Iterable[str] = (),
    ) -> RunEvent:
        facets: dict[str, RunFacet] = {
            "dagprovenance_node": DagProvenanceNodeFacet(
                runId=ref.run_id,
                dagNsref=ref.dag_nsref,
                nodeLabel=node_label,
                status=status,
                isSource=is_source,
                isSink=is_sink,
                producer=PRODUCER,
            ),
            "parent": self._parent(ref),
        }
        if error is not None:
            facets["errorMessage"] = self._error(error)
        targets = sorted(set(downstream))
        if targets:
            facets["jobDependencies"] = job_dependencies_run.JobDependenciesRunFacet(
                downstream=[self._dependency(ref, label) for label in targets],
                producer=PRODUCER,
            )
        return self._event(
            state,
            at,
            node_run_id(ref.run_id, node_label),
            node_job_name(ref.dag_nsref, node_label),
            facets,
            self._task_type,
        )

    # --- parts

    def _event(
        self,
        state: RunState,
        at: datetime,
        run_id: str,
        job_name: str,
        run_facets: dict[str, RunFacet],
        job_type: JobFacet,
    ) -> RunEvent:
        return RunEvent(
            eventType=state,
            eventTime=at.isoformat(),
            run=Run(runId=run_id, facets=run_facets),
            job=Job(namespace=self.namespace, name=job_name, facets={"jobType": job_type}),
            producer=PRODUCER,
        )

    def _parent(self, ref: RunRef) -> parent_run.ParentRunFacet:
        cached = self._parents.get(id(ref))
        if cached is not None and cached[0] is ref:
            self._parents.move_to_end(id(ref))
            return cached[1]
        facet = self._new_parent(ref)
        self._parents[id(ref)] = (ref, facet)
        if len(self._parents) > _PARENTS_KEPT:
            self._parents.popitem(last=False)
        return facet

    def _new_parent(self, ref: RunRef) -> parent_run.ParentRunFacet:
        root = ref.root
        return parent_run.ParentRunFacet(
            run=parent_run.Run(runId=ref.lineage_id),
            job=parent_run.Job(namespace=self.namespace, name=ref.dag_nsref),
            root=parent_run.Root(
                run=parent_run.RootRun(runId=root.lineage_id),
                job=parent_run.RootJob(namespace=self.namespace, name=root.dag_nsref),
            ),
            producer=PRODUCER,
        )

    @staticmethod
    def _error(error: str) -> error_message_run.ErrorMessageRunFacet:
        return error_message_run.ErrorMessageRunFacet(
            message=error, programmingLanguage=PROGRAMMING_LANGUAGE, producer=PRODUCER
        )

    def _dependency(self, ref: RunRef, label: str) -> job_dependencies_run.JobDependency:
        return job_dependencies_run.JobDependency(
            job=job_dependencies_run.JobIdentifier(
                namespace=self.namespace, name=node_job_name(ref.dag_nsref, label)
            ),
            run=job_dependencies_run.RunIdentifier(runId=node_run_id(ref.run_id, label)),
            dependency_type="DIRECT_INVOCATION",
            sequence_trigger_rule="FINISH_TO_START",
        )


_PARENTS_KEPT = 1024

_RUN_END = {
    RunStatus.COMPLETED.value: RunState.COMPLETE,
    RunStatus.FAILED.value: RunState.FAIL,
    RunStatus.CANCELLED.value: RunState.ABORT,
    RunStatus.PAUSED.value: RunState.RUNNING,
}

# Events at the same instant: a run starts before its nodes' events and ends
# after them; otherwise they keep the order the runs and nodes started in.
_RUN_START, _NODE, _RUN_END_RANK = range(3)


def to_openlineage(
    dag_run: DagRun,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    ancestors: Sequence[tuple[str, str]] = (),
) -> list[RunEvent]:
    """The OpenLineage events of `dag_run` and every sub-DAG run under it, in
    the order they happened (see the module for the mapping).

    `ancestors`: for a sub-DAG run exported without its parent, the
    `(run_id, dag_nsref)` of its parent, grandparent, ... up to the root
    (`ancestors_of` reads them from a store), so its `parent` and `root`
    facets can name them."""
    builder = EventBuilder(namespace)
    above: RunRef | None = None
    for run_id, nsref in reversed(ancestors):
        above = RunRef(run_id, nsref, parent=above)
    refs: dict[str, RunRef] = {}
    timed: list[tuple[datetime, int, int, RunEvent]] = []

    def add(at: datetime, rank: int, event: RunEvent) -> None:
        timed.append((at, rank, len(timed), event))

    # In start order (a sub-DAG run starts after the run that holds it).
    for run in sorted(dag_run.walk(), key=lambda r: r.started_at):
        parent = refs.get(run.parent_run_id or "", above if run is dag_run else None)
        ref = refs[run.run_id] = RunRef(run.run_id, run.dag_nsref, run.initiated_by, parent)
        start = builder.run_event(ref, RunState.START, run.started_at, RunStatus.RUNNING.value)
        add(run.started_at, _RUN_START, start)
        for label, node in run.nodes.items():
            for at, rank, event in _node_events(builder, ref, label, node):
                add(at, rank, event)
        state = builder.run_state(run.status)
        if state is not None:
            at = run.finished_at or run.latest_update()
            error = _failure(run) if state is RunState.FAIL else None
            add(at, _RUN_END_RANK, builder.run_event(ref, state, at, run.status, error))
    timed.sort(key=lambda t: (t[0], t[1], t[2]))
    return [event for *_, event in timed]


def _node_events(
    builder: EventBuilder, ref: RunRef, label: str, node: NodeExecution
) -> list[tuple[datetime, int, RunEvent]]:
    status = node.status
    if status == NodeStatus.SKIPPED.value:
        at = node.finished_at or node.started_at
        if at is None:
            return []
        return [(at, _NODE, builder.node_event(ref, label, RunState.COMPLETE, at, status))]
    if node.started_at is None:  # pending: nothing happened yet
        return []
    events = [
        (
            node.started_at,
            _NODE,
            builder.node_event(
                ref,
                label,
                RunState.START,
                node.started_at,
                NodeStatus.RUNNING.value,
                is_source=node.is_source,
                is_sink=node.is_sink,
            ),
        )
    ]
    if node.finished_at is not None and status == NodeStatus.COMPLETED.value:
        downstream = [e.downstream_label for e in node.edges]
        end = builder.node_event(
            ref, label, RunState.COMPLETE, node.finished_at, status, downstream=downstream
        )
        events.append((node.finished_at, _NODE, end))
    elif node.finished_at is not None and status == NodeStatus.FAILED.value:
        end = builder.node_event(
            ref, label, RunState.FAIL, node.finished_at, status, error=node.error or ""
        )
        events.append((node.finished_at, _NODE, end))
    return events


def _failure(run: DagRun) -> str | None:
    """The error of the node that failed `run`: the failed node that finished last."""
    failed = [
        n
        for n in run.nodes.values()
        if n.status == NodeStatus.FAILED.value and n.finished_at is not None
    ]
    if not failed:
        return None
    return max(failed, key=lambda n: n.finished_at or run.started_at).error or ""


def ancestors_of(store: Any, run_id: str) -> list[tuple[str, str]]:
    """The `(run_id, dag_nsref)` of the runs above `run_id`, its parent first,
    read from a sync store (for `to_openlineage(..., ancestors=...)`)."""
    found: list[tuple[str, str]] = []
    seen = {run_id}
    record = store.get_run(run_id)
    while record is not None and record.get("parent_run_id"):
        parent_id = record["parent_run_id"]
        if parent_id in seen:  # a cycle can only come from hand-edited rows
            break
        seen.add(parent_id)
        record = store.get_run(parent_id)
        if record is None:
            break
        found.append((record["run_id"], record["dag_nsref"]))
    return found


__all__ = [
    "DEFAULT_NAMESPACE",
    "PRODUCER",
    "DagProvenanceNodeFacet",
    "DagProvenanceRunFacet",
    "EventBuilder",
    "RunRef",
    "ancestors_of",
    "node_run_id",
    "openlineage_run_id",
    "to_openlineage",
]
