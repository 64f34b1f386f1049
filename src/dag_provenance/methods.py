"""The public methods of every store, declared once.

Each is an operation of `operations` (or `maintenance`) as a `StoreMethod`:
`DagProvenance` and `NullProvenance` (sync stores) get it as a plain method,
`AsyncDagProvenance` and `AsyncNullProvenance` (async stores) as a
coroutine method, with the same name, parameters, docstring and result.
"""

from __future__ import annotations

from dag_provenance import maintenance, operations
from dag_provenance.runner import StoreMethod


class StoreMethods:
    """The store's public API (see the module)."""

    create_run = StoreMethod(operations.create_run)
    update_run_status = StoreMethod(operations.update_run_status)
    finish_run = StoreMethod(operations.finish_run)
    record_node_start = StoreMethod(operations.record_node_start)
    record_node_skipped = StoreMethod(operations.record_node_skipped)
    complete_node_with_edges = StoreMethod(operations.complete_node_with_edges)
    fail_node_and_finish_run = StoreMethod(operations.fail_node_and_finish_run)
    get_run = StoreMethod(operations.get_run)
    get_node_executions = StoreMethod(operations.get_node_executions)
    get_node_output = StoreMethod(operations.get_node_output)
    get_pending_nodes = StoreMethod(operations.get_pending_nodes)
    get_edge_traversals = StoreMethod(operations.get_edge_traversals)
    inspect_run = StoreMethod(operations.inspect_run)
    changes_since = StoreMethod(operations.changes_since)
    get_recent_runs = StoreMethod(operations.get_recent_runs)
    get_active_runs = StoreMethod(operations.get_active_runs)
    get_child_runs = StoreMethod(operations.get_child_runs)
    dag_stats = StoreMethod(operations.dag_stats)
    load_io = StoreMethod(operations.load_io)
    prune = StoreMethod(maintenance.prune_operation)


__all__ = ["StoreMethods"]
