"""Run pictures (Mermaid, DOT) from DagRun models, no database."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from dag_provenance.graph import colours, dot_text, mermaid_text, to_dot, to_mermaid
from dag_provenance.models import DagRun, EdgeTraversal, NodeExecution

T0 = datetime(2031, 5, 17, 9, 30, tzinfo=UTC)


def _node(
    label: str,
    status: str,
    seconds: float,
    edges: tuple[str, ...] = (),
    start: int = 0,
    **kw: object,
) -> NodeExecution:
    return NodeExecution(
        node_label=label,
        status=status,
        started_at=T0 + timedelta(seconds=start),
        finished_at=T0 + timedelta(seconds=start + seconds),
        edges=[EdgeTraversal(downstream_label=d, traversed_at=T0) for d in edges],
        **kw,
    )


def _run() -> DagRun:
    sub = DagRun(
        run_id="sub-1",
        dag_nsref='dag/map["x"]',
        parent_run_id="run-1",
        status="completed",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=1),
        nodes={"inner": _node("inner", "completed", 0.5)},
    )
    error = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: bad "input" [3]'
    return DagRun(
        run_id="run-1",
        dag_nsref="dag",
        status="failed",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=3),
        nodes={
            'load "raw" [v2]': _node('load "raw" [v2]', "completed", 1.25, ("map", "naïve→日本")),
            "map": _node("map", "completed", 2, ("fail",), 1, sub_dags={'map["x"]': sub}),
            "fail": _node("fail", "failed", 0.2, (), 2, error=error),
            "naïve→日本": _node("naïve→日本", "skipped", 0, (), 3),
        },
    )


def test_mermaid_draws_every_node_coloured_by_status_with_durations() -> None:
    source = to_mermaid(_run())
    assert source.startswith("flowchart LR\n")
    nodes = re.findall(r'^\s+(r\d+n\d+)\["(.*)"\]:::status-(\w+)$', source, re.M)
    assert [status for _, _, status in nodes] == ["completed"] * 2 + [
        "failed",
        "skipped",
        "completed",
    ]
    assert "1.25s" in source and "200ms" in source
    for status in ("completed", "failed", "skipped"):
        fill, stroke = colours(status)
        assert f"classDef status-{status} fill:{fill},stroke:{stroke}" in source


def test_mermaid_escapes_quotes_brackets_and_keeps_unicode() -> None:
    source = to_mermaid(_run())
    assert "load #34;raw#34; #91;v2#93;" in source
    assert "naïve→日本" in source
    assert "ValueError: bad #34;input#34; #91;3#93;" in source
    assert "Traceback" not in source
    assert mermaid_text('a"b[c]<d>|e#f') == "a#34;b#91;c#93;#60;d#62;#124;e#35;f"


def test_mermaid_draws_sub_dag_runs_as_nested_subgraphs_joined_to_their_node() -> None:
    source = to_mermaid(_run())
    lines = source.splitlines()
    outer = lines.index(next(line for line in lines if line.startswith("  subgraph run0")))
    inner = lines.index(next(line for line in lines if line.startswith("    subgraph run1")))
    assert outer < inner
    assert "  r0n1 -.-> run1" in lines
    assert "    r0n0 --> r0n1" not in lines and "  r0n0 --> r0n1" in lines


def test_dot_escapes_labels_and_colours_nodes_by_status() -> None:
    source = to_dot(_run())
    assert source.startswith("digraph run {")
    assert 'label="load \\"raw\\" [v2]\\ncompleted · 1.25s"' in source
    assert 'fillcolor="#ffcdd2"' in source and 'class="status-failed"' in source
    assert "subgraph cluster_run1 {" in source
    assert 'lhead="cluster_run1"' in source
    assert dot_text('a\\b"c\nd') == 'a\\\\b\\"c\\nd'


def test_an_edge_to_a_node_that_never_started_ends_at_a_dashed_node() -> None:
    run = DagRun(
        run_id="r",
        dag_nsref="d",
        status="failed",
        started_at=T0,
        nodes={"a": _node("a", "completed", 1, ("b",))},
    )
    assert 'r0n1["b<br/>not started"]:::status-not-started' in to_mermaid(run)
    assert "dashed" in to_dot(run)
