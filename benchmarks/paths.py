"""The read paths the benchmark times, the answers users see on them, and the
check that the stores being compared give the same answers before they are
timed (a store that answers differently is not doing the same work).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from benchmarks.harness import interleaved_rates, mix_rate, progress
from benchmarks.workload import (
    FAILED_RUN,
    INSPECT_RUN,
    LOOKUP_NODE,
    LOOKUP_RUN,
    SUBTREE_ROOT,
)

Rates = dict[str, float | None]

READ_PATHS: list[tuple[str, Callable[[Any, Any], object]]] = [
    ("inspect_run (20-node run)", lambda st, run: st.inspect_run(INSPECT_RUN)),
    ("get_recent_runs(limit=20)", lambda st, run: st.get_recent_runs(limit=20)),
    ("get_active_runs()", lambda st, run: st.get_active_runs()),
    ("get_child_runs (30-run subtree)", lambda st, run: st.get_child_runs(SUBTREE_ROOT)),
    ("load_io (20-node run)", lambda st, run: st.load_io(run)),
]
"""Run-tree reads: (label, call(store, the store's own inspect_run(INSPECT_RUN)))."""

LOOKUP_PATHS: list[tuple[str, Callable[[Any], object]]] = [
    ("get_run", lambda st: st.get_run(LOOKUP_RUN)),
    ("get_node_executions (5 nodes)", lambda st: st.get_node_executions(LOOKUP_RUN)),
    ("get_node_output", lambda st: st.get_node_output(LOOKUP_RUN, LOOKUP_NODE)),
    ("get_pending_nodes (failed run)", lambda st: st.get_pending_nodes(FAILED_RUN)),
    ("get_edge_traversals (10 edges)", lambda st: st.get_edge_traversals(LOOKUP_RUN)),
]
"""Point lookups: one run's (or node's) rows, as plain values."""

LOOKUP_MEAN = "point lookups (mean)"
LOOKUP_MEAN_NOTE = (
    "point lookups (mean): calls/s of a mix making each of the five lookups once "
    "(the mean time per call, inverted)"
)


# Answers


def fingerprint(run: Any) -> tuple[Any, ...]:
    """What a user sees of a DagRun, minus float rounding in timestamps."""
    nodes = tuple(
        (
            label,
            n.status,
            n.is_source,
            n.is_sink,
            n.error,
            tuple(e.downstream_label for e in n.edges),
            tuple(sorted((key, fingerprint(sub)) for key, sub in (n.sub_dags or {}).items())),
            None if n.io is None else (n.io.input_json, n.io.output_json),
        )
        for label, n in sorted(run.nodes.items())
    )
    io = None if run.io is None else (run.io.input_json, run.io.output_json)
    started = round(run.started_at.timestamp(), 3)
    return (run.run_id, run.dag_nsref, run.parent_run_id, run.status, started, nodes, io)


def _plain(value: Any) -> Any:
    """A lookup's answer with epoch-second timestamps rounded to the microsecond."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def tree_answers(store: Any) -> dict[str, Any]:
    run = store.inspect_run(INSPECT_RUN)
    store.load_io(run)
    return {
        "inspect_run+load_io": fingerprint(run),
        "get_recent_runs": [fingerprint(r) for r in store.get_recent_runs(limit=20)],
        "get_active_runs": [fingerprint(r) for r in store.get_active_runs()],
        "get_child_runs": [fingerprint(r) for r in store.get_child_runs(SUBTREE_ROOT)],
    }


def lookup_answers(store: Any) -> dict[str, Any]:
    return {label: _plain(call(store)) for label, call in LOOKUP_PATHS}


def differences(
    stores: dict[str, Any], answers: Callable[[Any], dict[str, Any]], reference: str = "ours"
) -> list[str]:
    """A WARNING per answer in which a store differs from `reference`'s."""
    expected = answers(stores[reference])
    problems = []
    for kind, store in stores.items():
        if kind == reference:
            continue
        got = answers(store)
        problems += [
            f"WARNING: {name} differs between {reference} and {kind}"
            for name, value in expected.items()
            if got.get(name) != value
        ]
    return problems


# Timing


def time_reads(
    where: str, stores: dict[str, Any], seconds: float, reps: int
) -> list[tuple[str, Rates]]:
    """Each READ_PATHS call on every store, interleaved: (label, rates by store)."""
    inspected = {kind: store.inspect_run(INSPECT_RUN) for kind, store in stores.items()}
    rows = []
    for label, call in READ_PATHS:
        progress(f"{where}: {label}")
        calls = {kind: partial(call, store, inspected[kind]) for kind, store in stores.items()}
        rows.append((label, interleaved_rates(calls, seconds, reps)))
    return rows


def time_lookups(
    where: str, stores: dict[str, Any], seconds: float, reps: int
) -> list[tuple[str, Rates]]:
    """Each LOOKUP_PATHS call on every store, interleaved, then their mean."""
    progress(f"{where}: point lookups")
    rows = [
        (label, interleaved_rates({k: partial(call, s) for k, s in stores.items()}, seconds, reps))
        for label, call in LOOKUP_PATHS
    ]
    mean = {kind: mix_rate(rates[kind] for _, rates in rows) for kind in stores}
    return [*rows, (LOOKUP_MEAN, mean)]
