"""Pydantic inspection models returned by the repository's read methods.

Field for field the models of `lythonic.compose.dag_provenance`; every
timestamp is a timezone-aware UTC datetime. Payloads (`io`) are left `None`
by inspection queries and filled on demand by `DagProvenance.load_io`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel


class EdgeTraversal(BaseModel):
    """Edge traversed during a DAG run. `downstream_label` identifies the target node."""

    downstream_label: str
    traversed_at: datetime


class IoPayload(BaseModel):
    """Input/output JSON payload. Loaded on demand via `load_io()`."""

    input_json: str | None = None
    output_json: str | None = None


class NodeExecution(BaseModel):
    """Execution record for a single node in a DAG run.

    `sub_dags` is `None` except on composite nodes, where it maps each
    expansion key (`"chunks[0]"`, `"label[]"`, ...) to the sub-DAG's run.
    """

    node_label: str
    status: str
    is_source: bool = False
    is_sink: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    edges: list[EdgeTraversal] = []
    sub_dags: dict[str, DagRun] | None = None
    io: IoPayload | None = None


class DagRun(BaseModel):
    """A DAG execution record with nested node executions and edge traversals."""

    run_id: str
    dag_nsref: str
    parent_run_id: str | None = None
    status: str
    started_at: datetime
    finished_at: datetime | None = None
    initiated_by: str | None = None
    nodes: dict[str, NodeExecution] = {}
    io: IoPayload | None = None

    def latest_update(self) -> datetime:
        """The most recent timestamp across the run, its nodes and their traversals."""
        candidates: list[datetime] = [self.started_at]
        if self.finished_at:
            candidates.append(self.finished_at)
        for n in self.nodes.values():
            if n.started_at:
                candidates.append(n.started_at)
            if n.finished_at:
                candidates.append(n.finished_at)
            candidates.extend(e.traversed_at for e in n.edges)
        return max(candidates)

    def walk(self) -> Iterator[DagRun]:
        """This run and every sub-DAG run hung below it, each once."""
        seen: set[str] = set()
        stack = [self]
        while stack:
            run = stack.pop()
            if run.run_id in seen:
                continue
            seen.add(run.run_id)
            yield run
            for node in run.nodes.values():
                stack.extend((node.sub_dags or {}).values())

    def apply_changes(self, changes: Mapping[str, DagRun]) -> None:
        """Bring this tree up to date with `DagProvenance.changes_since(...)`:
        run statuses and finish times, changed nodes (keeping the sub-DAG runs
        and earlier edges of the nodes they replace), and new sub-DAG runs."""
        shown = {run.run_id: run for run in self.walk()}
        for run_id, fresh in changes.items():
            run = shown.get(run_id)
            if run is None:
                shown[run_id] = fresh
                continue
            run.status, run.finished_at = fresh.status, fresh.finished_at
            for label, node in fresh.nodes.items():
                old = run.nodes.get(label)
                if old is not None:
                    node.sub_dags = old.sub_dags
                    new_targets = {e.downstream_label for e in node.edges}
                    kept = [e for e in old.edges if e.downstream_label not in new_targets]
                    node.edges = kept + node.edges
                run.nodes[label] = node
        attach_sub_dags(shown.values())

    def nodes_changed_since(self, dt: datetime) -> list[NodeExecution]:
        """Nodes whose started_at or finished_at is after `dt`."""
        return [
            n
            for n in self.nodes.values()
            if (n.started_at and n.started_at > dt) or (n.finished_at and n.finished_at > dt)
        ]


NodeExecution.model_rebuild()


class NodeFailure(BaseModel):
    """A failed node execution: its run, when it failed (tz-aware UTC) and its error."""

    run_id: str
    finished_at: datetime
    error: str | None = None


class NodeStats(BaseModel):
    """What one node label did in a DAG's runs of a window (see `DagStats`).

    - `executions`: its finished executions, `completed + failed`. Skipped
      nodes (outputs copied by a replay; nothing ran) and executions still
      running or pending are not executions: a label seen only in those
      states is listed with zero executions and no figures.
    - `p50_seconds`, `p95_seconds`: nearest-rank percentiles of the
      durations (`finished_at - started_at`, exact to the microsecond) of
      the finished executions, completed and failed alike: the smallest
      duration `d` such that at least p% of the durations are `<= d`, i.e.
      the `ceil(p / 100 * n)`-th shortest of `n`. Always one of the recorded
      durations, never interpolated. None without a finished execution.
    - `failure_rate`: `failed / executions`, None without an execution.
    - `last_failure`: its latest failed execution (greatest `finished_at`,
      ties broken by the greatest run id), or None.
    """

    node_label: str
    executions: int
    completed: int
    failed: int
    p50_seconds: float | None = None
    p95_seconds: float | None = None
    failure_rate: float | None = None
    last_failure: NodeFailure | None = None


class DagStats(BaseModel):
    """Statistics of one DAG's runs started in a window.

    The window is `started_after <= started_at < started_before` (None: open
    on that side), both tz-aware UTC. Only runs whose `dag_nsref` is exactly
    `dag_nsref` count: sub-DAG runs (`<nsref>/<key>`) are not included, and
    a composite node's duration already covers its sub-DAG runs.
    `runs_by_status` has every `RunStatus` as a key (0 when no run has it);
    `nodes` has every node label recorded in those runs, sorted by label.
    """

    dag_nsref: str
    started_after: datetime | None = None
    started_before: datetime | None = None
    runs: int
    runs_by_status: dict[str, int]
    nodes: list[NodeStats] = []


def attach_sub_dags(runs: Iterable[DagRun]) -> None:
    """Hang each run under the composite node of its parent that expanded it.

    A child's nsref is `<parent nsref>/<key>`; the key (`"chunks[0]"`,
    `"label[]"`) starts with the composite node's label.
    """
    by_id = {r.run_id: r for r in runs}
    for child in by_id.values():
        parent = by_id.get(child.parent_run_id or "")
        if parent is None:
            continue
        prefix = parent.dag_nsref + "/"
        if not child.dag_nsref.startswith(prefix):
            continue
        key = child.dag_nsref[len(prefix) :]
        bracket = key.find("[")
        node = parent.nodes.get(key[:bracket] if bracket >= 0 else key)
        if node is not None:
            if node.sub_dags is None:
                node.sub_dags = {}
            node.sub_dags[key] = child


_M = TypeVar("_M", bound=BaseModel)


def _check_trusted_construction(*models: type[BaseModel]) -> None:
    """`trusted_model` skips what `model_construct` does for aliases, extras,
    private attributes and post-init hooks: make sure the models have none."""
    for model in models:
        if (
            model.__private_attributes__
            or model.__pydantic_post_init__
            or model.model_config.get("extra") == "allow"
            or any(f.alias or f.validation_alias for f in model.model_fields.values())
        ):
            raise TypeError(f"{model.__name__} can no longer be built by trusted_model()")


_check_trusted_construction(DagRun, NodeExecution, EdgeTraversal)

_set_attr = object.__setattr__


def trusted_model(model: type[_M], values: dict[str, Any], fields_set: frozenset[str]) -> _M:
    """`model.model_construct(_fields_set, **values)` for rows read from the
    database, with every field given: no validation, and ~6x cheaper, which
    matters when a run tree has hundreds of thousands of nodes and edges.

    `fields_set` is what `model_fields_set` reports: the fields the original
    store passes to the constructor, so `model_dump(exclude_unset=True)`
    gives the same keys as lythonic's models."""
    m = model.__new__(model)
    _set_attr(m, "__dict__", values)
    _set_attr(m, "__pydantic_fields_set__", set(fields_set))
    _set_attr(m, "__pydantic_extra__", None)
    _set_attr(m, "__pydantic_private__", None)
    return m
