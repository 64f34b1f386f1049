"""A 10,000-run tree recorded on each engine exports whole to OpenLineage and
to W3C PROV (the exports' memory is measured on model trees in the unit
tests; here the tree comes from the database)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from dag_provenance import DagProvenance
from dag_provenance.lineage import to_openlineage, to_prov
from dag_provenance.orm import dag_runs, node_executions

from .stores import statement_engine

RUNS = 10_000
T0 = datetime(2031, 1, 1, tzinfo=UTC)


def _record_fan(store: DagProvenance, root: str) -> None:
    """`root` with one composite node "fan" whose 9,999 sub-DAG runs each ran
    one node: written in bulk through the store's own tables."""
    runs: list[dict[str, Any]] = [
        {
            "run_id": root,
            "dag_nsref": "big",
            "parent_run_id": None,
            "status": "completed",
            "started_at": T0,
            "finished_at": T0 + timedelta(seconds=RUNS + 2),
        }
    ]
    nodes: list[dict[str, Any]] = [
        {
            "run_id": root,
            "node_label": "fan",
            "status": "completed",
            "started_at": T0 + timedelta(seconds=1),
            "finished_at": T0 + timedelta(seconds=RUNS + 1),
        }
    ]
    for i in range(RUNS - 1):
        at = T0 + timedelta(seconds=1 + i, microseconds=1)
        child = f"{root}.{i}"
        runs.append(
            {
                "run_id": child,
                "dag_nsref": f"big/fan[{i}]",
                "parent_run_id": root,
                "status": "completed",
                "started_at": at,
                "finished_at": at + timedelta(microseconds=3),
            }
        )
        nodes.append(
            {
                "run_id": child,
                "node_label": "work",
                "status": "completed",
                "started_at": at + timedelta(microseconds=1),
                "finished_at": at + timedelta(microseconds=2),
            }
        )
    with statement_engine(store).begin() as conn:
        conn.execute(insert(dag_runs), runs)
        conn.execute(insert(node_executions), nodes)


@pytest.mark.slow
def test_a_10000_run_tree_exports_to_openlineage_and_prov(
    provenance: DagProvenance, new_id: Callable[[str], str]
) -> None:
    root = new_id("big")
    _record_fan(provenance, root)
    tree = provenance.inspect_run(root)
    assert tree is not None and sum(1 for _ in tree.walk()) == RUNS

    events = to_openlineage(tree)
    kinds = Counter(
        ("node" if "dagprovenance_node" in (e.run.facets or {}) else "run", str(e.eventType))
        for e in events
    )
    assert kinds == {
        ("run", "EventType.START"): RUNS,
        ("run", "EventType.COMPLETE"): RUNS,
        ("node", "EventType.START"): RUNS,
        ("node", "EventType.COMPLETE"): RUNS,
    }
    assert events[0].job.name == "big" and events[-1].job.name == "big"
    document = to_prov(tree)
    activities = [r for r in document.get_records() if r.get_type().localpart == "Activity"]
    assert len(activities) == RUNS + RUNS  # every run and every node execution
