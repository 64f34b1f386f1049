"""Pictures of a run's graph: Mermaid flowcharts and Graphviz DOT.

Each node shows its label, status and duration (and, when it failed, the
line of its error that says why), filled with its status's colour. Edges
are the traversals recorded on each node. A composite node's sub-DAG runs
are drawn as nested subgraphs (clusters), joined to it by a dashed edge. An
edge into a node that never started (its run failed first) ends at a dashed
"not started" node.

Node and subgraph ids are generated (`r0n1`), never taken from labels;
labels are escaped for each language, so any text (quotes, brackets,
backslashes, non-Latin scripts) is drawn as written.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

from dag_provenance.formatting import duration, error_line, shorten, start_order
from dag_provenance.models import DagRun, NodeExecution
from dag_provenance.status import NodeStatus, RunStatus

NOT_STARTED = "not started"

#: (fill, stroke) per run or node status. A run and a node status of the same
#: name are equal (and hash alike), so one key serves both.
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    RunStatus.COMPLETED: ("#c8e6c9", "#2e7d32"),
    RunStatus.FAILED: ("#ffcdd2", "#c62828"),
    RunStatus.RUNNING: ("#bbdefb", "#1565c0"),
    NodeStatus.PENDING: ("#eeeeee", "#757575"),
    NodeStatus.SKIPPED: ("#fff9c4", "#9e9d24"),
    RunStatus.PAUSED: ("#ffe0b2", "#ef6c00"),
    RunStatus.CANCELLED: ("#e0e0e0", "#424242"),
    NOT_STARTED: ("#ffffff", "#9e9e9e"),
}
_UNKNOWN_COLOURS = ("#f5f5f5", "#000000")


def colours(status: str) -> tuple[str, str]:
    """The (fill, stroke) colours of a status."""
    return STATUS_COLOURS.get(status, _UNKNOWN_COLOURS)


def css_class(status: str) -> str:
    """The class name a status is drawn with (`status-completed`, `status-not-started`)."""
    return "status-" + "-".join(status.split())


@dataclass
class _Node:
    id: str
    label: str
    status: str
    lines: list[str]


@dataclass
class _Run:
    """One run as drawn: its nodes, edges and the sub-DAG runs below it."""

    id: str
    title: str
    status: str
    nodes: list[_Node] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)
    # (composite node id, sub-run)
    children: list[tuple[str, _Run]] = field(default_factory=list)


def _node_lines(node: NodeExecution) -> list[str]:
    timing = duration(node.started_at, node.finished_at)
    lines = [node.node_label, f"{node.status} · {timing}" if timing else node.status]
    if node.status == NodeStatus.FAILED and node.error:
        lines.append(error_line(node.error, 60))
    return lines


def _layout(run: DagRun) -> _Run:
    """Number every run and node of the tree, in a stable order."""
    return _layout_run(run, run.run_id, itertools.count())


def _layout_run(run: DagRun, title_key: str, counter: Iterator[int]) -> _Run:
    index = next(counter)
    timing = duration(run.started_at, run.finished_at)
    title = " · ".join(
        part for part in (shorten(title_key, 60), run.dag_nsref, run.status, timing) if part
    )
    drawn = _Run(id=f"run{index}", title=title, status=run.status)
    ids: dict[str, str] = {}
    nodes = sorted(run.nodes.values(), key=start_order)
    for node in nodes:
        label = node.node_label
        ids[label] = f"r{index}n{len(ids)}"
        drawn.nodes.append(_Node(ids[label], label, node.status, _node_lines(node)))
    for node in nodes:
        label = node.node_label
        for edge in node.edges:
            target = edge.downstream_label
            if target not in ids:
                ids[target] = f"r{index}n{len(ids)}"
                drawn.nodes.append(_Node(ids[target], target, NOT_STARTED, [target, NOT_STARTED]))
            drawn.edges.append((ids[label], ids[target]))
        for key, sub_run in sorted((node.sub_dags or {}).items()):
            drawn.children.append((ids[label], _layout_run(sub_run, key, counter)))
    return drawn


def _walk(run: _Run) -> Iterator[_Run]:
    yield run
    for _, child in run.children:
        yield from _walk(child)


# Mermaid

_MERMAID_SAFE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:/-_+*=!?@$%^~'·…"
)


def mermaid_text(text: str) -> str:
    """`text` for a quoted Mermaid label: every character that Mermaid could
    read as syntax becomes an entity code (`#34;`); other printable Unicode stays."""
    return "".join(
        ch if ch in _MERMAID_SAFE or (ord(ch) > 127 and ch.isprintable()) else f"#{ord(ch)};"
        for ch in text
    )


def to_mermaid(dag_run: DagRun) -> str:
    """A Mermaid flowchart of the run and its sub-DAG runs."""
    root = _layout(dag_run)
    out = ["flowchart LR"]
    _mermaid_run(root, out, "  ")
    for run in _walk(root):
        out.extend(f"  {a} --> {b}" for a, b in run.edges)
        out.extend(f"  {composite} -.-> {child.id}" for composite, child in run.children)
    statuses = sorted({n.status for run in _walk(root) for n in run.nodes})
    for status in statuses:
        fill, stroke = colours(status)
        dash = ",stroke-dasharray:4 3" if status == NOT_STARTED else ""
        out.append(f"  classDef {css_class(status)} fill:{fill},stroke:{stroke},color:#111{dash}")
    return "\n".join(out) + "\n"


def _mermaid_run(run: _Run, out: list[str], indent: str) -> None:
    _, stroke = colours(run.status)
    out.append(f'{indent}subgraph {run.id}["{mermaid_text(run.title)}"]')
    out.append(f"{indent}  direction LR")
    for node in run.nodes:
        label = "<br/>".join(mermaid_text(line) for line in node.lines)
        out.append(f'{indent}  {node.id}["{label}"]:::{css_class(node.status)}')
    for _, child in run.children:
        _mermaid_run(child, out, indent + "  ")
    out.append(f"{indent}end")
    out.append(f"{indent}style {run.id} fill:#fafafa,stroke:{stroke}")


# Graphviz DOT


def dot_text(text: str) -> str:
    """`text` inside a DOT double-quoted string (backslash and quote escaped,
    line breaks as `\\n`)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return escaped.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def to_dot(dag_run: DagRun) -> str:
    """A Graphviz DOT digraph of the run and its sub-DAG runs (render with
    `dot -Tsvg`)."""
    root = _layout(dag_run)
    out = [
        "digraph run {",
        "  graph [rankdir=LR, compound=true, fontname=Helvetica, fontsize=11];",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica, fontsize=10];',
        "  edge [fontname=Helvetica, fontsize=9];",
    ]
    _dot_run(root, out, "  ")
    for run in _walk(root):
        out.extend(f"  {a} -> {b};" for a, b in run.edges)
        for composite, child in run.children:
            if child.nodes:
                first = child.nodes[0].id
                out.append(f'  {composite} -> {first} [style=dashed, lhead="cluster_{child.id}"];')
    out.append("}")
    return "\n".join(out) + "\n"


def _dot_run(run: _Run, out: list[str], indent: str) -> None:
    _, stroke = colours(run.status)
    out.append(f"{indent}subgraph cluster_{run.id} {{")
    out.append(
        f'{indent}  graph [label="{dot_text(run.title)}", style="rounded", color="{stroke}"];'
    )
    for node in run.nodes:
        fill, node_stroke = colours(node.status)
        style = '"rounded,filled,dashed"' if node.status == NOT_STARTED else '"rounded,filled"'
        out.append(
            f'{indent}  {node.id} [label="{dot_text(chr(10).join(node.lines))}", '
            f'fillcolor="{fill}", color="{node_stroke}", style={style}, '
            f'class="{css_class(node.status)}", id="{node.id}"];'
        )
    for _, child in run.children:
        _dot_run(child, out, indent + "  ")
    out.append(f"{indent}}}")


__all__ = ["NOT_STARTED", "STATUS_COLOURS", "colours", "css_class", "to_dot", "to_mermaid"]
