"""The run's graph as an SVG image.

With Graphviz installed (`dot` on the PATH), the run's DOT (`graph.to_dot`:
clusters for sub-DAG runs, colours by status) is laid out by `dot -Tsvg` in
a subprocess, with a timeout, and its SVG is cleaned: only drawing elements
and attributes are kept (no script, no style attribute, no link), so the
image is inert whatever the labels hold. Without Graphviz (or when it fails,
times out, or the tree is too large for it), the graph is drawn here: each
run of the tree a panel, its nodes in layers along the edges (a node one
layer right of the nodes that lead to it), boxes with label, status,
duration and the failed node's error line, arrows between them; sub-DAG
runs in panels below, indented by depth.

Either way the SVG is built as an ElementTree, so every recorded string is
escaped text; characters XML cannot hold (control characters) are replaced.
Rendered graphs are cached by run and tree version (`live.tree_version`): a
finished run's graph is drawn once.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import xml.etree.ElementTree as ET
from collections import OrderedDict
from dataclasses import dataclass, field

from dag_provenance.formatting import duration, error_line, shorten, start_order
from dag_provenance.graph import NOT_STARTED, colours, css_class, to_dot
from dag_provenance.models import DagRun, NodeExecution
from dag_provenance.status import NodeStatus
from dag_provenance.web.live import tree_version

log = logging.getLogger(__name__)

SVG_NS = "http://www.w3.org/2000/svg"
GRAPHVIZ_TIMEOUT_S = 10.0
GRAPHVIZ_MAX_NODES = 1500
"""Larger trees are drawn here: Graphviz would take too long to lay them out."""
GRAPHVIZ_PROCESSES = 2
"""Graphviz processes at once: a burst of requests must not fork a crowd."""
CACHE_SIZE = 64

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(text: str) -> str:
    """`text` as XML 1.0 can hold it: control characters become U+FFFD."""
    return _XML_INVALID.sub("\ufffd", text)


# --- Graphviz's SVG, cleaned ------------------------------------------------------------

_DRAWING_ELEMENTS = frozenset(
    {"svg", "g", "text", "tspan", "path", "polygon", "polyline", "ellipse", "circle", "rect"}
    | {"line", "defs", "marker"}
)
_DRAWING_ATTRIBUTES = frozenset(
    {"id", "class", "transform", "viewBox", "width", "height", "preserveAspectRatio"}
    | {"points", "d", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "dx", "dy"}
    | {"fill", "fill-opacity", "stroke", "stroke-width", "stroke-dasharray", "stroke-opacity"}
    | {"opacity", "font-family", "font-size", "font-weight", "font-style", "text-anchor"}
)


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def cleaned_svg(svg: bytes) -> str:
    """Graphviz's SVG with only drawing elements and attributes (see the module)."""
    text = re.sub(rb"<!DOCTYPE[^>]*>", b"", svg, count=1)
    root = ET.fromstring(text)
    _clean(root)
    root.set("xmlns", SVG_NS)
    return ET.tostring(root, encoding="unicode")


def _clean(element: ET.Element) -> None:
    element.tag = _local(element.tag)
    for name in list(element.attrib):
        if _local(name) not in _DRAWING_ATTRIBUTES or name != _local(name):
            del element.attrib[name]
    for child in list(element):
        if not isinstance(child.tag, str) or _local(child.tag) not in _DRAWING_ELEMENTS:
            # Titles, links, scripts, comments: leave them and their content out.
            tail = child.tail
            element.remove(child)
            if tail and tail.strip():
                element.text = (element.text or "") + tail
            continue
        _clean(child)


# --- drawn here ----------------------------------------------------------------------------

BOX_WIDTH = 190
LINE_HEIGHT = 15
COLUMN_GAP = 56
ROW_GAP = 14
PADDING = 12
TITLE_HEIGHT = 26
PANEL_GAP = 16
INDENT = 24
BOX_CHARS = 27
TITLE_CHARS = 100


@dataclass
class _Box:
    label: str
    status: str
    lines: list[str]
    column: int = 0
    row: int = 0


@dataclass
class _Panel:
    run: DagRun
    title: str
    depth: int
    boxes: dict[str, _Box] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    columns: int = 1
    rows: int = 1
    lines: int = 2

    @property
    def box_height(self) -> int:
        return LINE_HEIGHT * self.lines + 12

    @property
    def width(self) -> int:
        return 2 * PADDING + self.columns * (BOX_WIDTH + COLUMN_GAP) - COLUMN_GAP

    @property
    def height(self) -> int:
        return TITLE_HEIGHT + 2 * PADDING + self.rows * (self.box_height + ROW_GAP) - ROW_GAP


def _node_lines(node: NodeExecution) -> list[str]:
    took = duration(node.started_at, node.finished_at)
    lines = [node.node_label, f"{node.status} · {took}" if took else node.status]
    if node.status == NodeStatus.FAILED and node.error:
        lines.append(error_line(node.error, BOX_CHARS))
    return lines


def _panel(run: DagRun, title: str, depth: int) -> _Panel:
    panel = _Panel(run, title, depth)
    for node in sorted(run.nodes.values(), key=start_order):
        panel.boxes[node.node_label] = _Box(node.node_label, node.status, _node_lines(node))
    for node in sorted(run.nodes.values(), key=start_order):
        for edge in node.edges:
            target = edge.downstream_label
            if target not in panel.boxes:
                panel.boxes[target] = _Box(target, NOT_STARTED, [target, NOT_STARTED])
            panel.edges.append((node.node_label, target))
    _place(panel)
    return panel


def _place(panel: _Panel) -> None:
    """Layers along the edges (Kahn's order; nodes on a cycle after the
    rest), then rows within a layer by the mean row of their predecessors."""
    order = list(panel.boxes)
    successors: dict[str, list[str]] = {label: [] for label in order}
    predecessors: dict[str, list[str]] = {label: [] for label in order}
    for source, target in panel.edges:
        successors[source].append(target)
        predecessors[target].append(source)
    waiting = {label: len(predecessors[label]) for label in order}
    layer: dict[str, int] = {}
    ready = [label for label in order if waiting[label] == 0]
    while ready:
        label = ready.pop(0)
        layer.setdefault(label, 0)
        for target in successors[label]:
            layer[target] = max(layer.get(target, 0), layer[label] + 1)
            waiting[target] -= 1
            if waiting[target] == 0:
                ready.append(target)
    cyclic_layer = max(layer.values(), default=-1) + 1
    for label in order:
        layer.setdefault(label, cyclic_layer)
    by_column: dict[int, list[str]] = {}
    for label in order:
        by_column.setdefault(layer[label], []).append(label)
    rank = {label: i for i, label in enumerate(order)}
    row_of: dict[str, int] = {}
    for column in sorted(by_column):

        def mean_row(label: str) -> float:
            rows = [row_of[p] for p in predecessors[label] if p in row_of]
            return sum(rows) / len(rows) if rows else float(rank[label])

        for row, label in enumerate(
            sorted(by_column[column], key=lambda x: (mean_row(x), rank[x]))
        ):
            row_of[label] = row
            panel.boxes[label].column, panel.boxes[label].row = column, row
    panel.columns = max(1, len(by_column))
    panel.rows = max((len(labels) for labels in by_column.values()), default=1)
    panel.lines = max((len(box.lines) for box in panel.boxes.values()), default=2)


def _panels(run: DagRun) -> list[_Panel]:
    panels: list[_Panel] = []

    def visit(each: DagRun, title: str, depth: int) -> None:
        panels.append(_panel(each, title, depth))
        for node in sorted(each.nodes.values(), key=start_order):
            for key, sub_run in sorted((node.sub_dags or {}).items()):
                sub_title = f"sub-DAG {key} of {node.node_label} · run {sub_run.run_id}"
                visit(sub_run, sub_title, depth + 1)

    visit(run, f"run {run.run_id}", 0)
    return panels


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: object) -> ET.Element:
    element = ET.SubElement(
        parent,
        tag,
        {k.rstrip("_").replace("_", "-"): xml_text(str(v)) for k, v in attributes.items()},
    )
    if text is not None:
        element.text = xml_text(text)
    return element


def fallback_svg(run: DagRun) -> str:
    """The run tree's graph drawn without Graphviz (see the module)."""
    panels = _panels(run)
    width = max(INDENT * p.depth + p.width for p in panels) + 2
    height = sum(p.height for p in panels) + PANEL_GAP * (len(panels) - 1) + 2
    svg = ET.Element(
        "svg",
        {
            "xmlns": SVG_NS,
            "width": str(width),
            "height": str(height),
            "viewBox": f"0 0 {width} {height}",
            "font-family": "Helvetica, Arial, sans-serif",
            "font-size": "12",
            "class": "run-graph fallback",
        },
    )
    marker = _sub(
        _sub(svg, "defs"),
        "marker",
        id="arrow",
        viewBox="0 0 10 10",
        refX=10,
        refY=5,
        markerWidth=7,
        markerHeight=7,
        orient="auto",
    )
    _sub(marker, "path", d="M0,0 L10,5 L0,10 z", fill="#555555")
    top = 1
    for panel in panels:
        _draw_panel(svg, panel, 1 + INDENT * panel.depth, top)
        top += panel.height + PANEL_GAP
    return ET.tostring(svg, encoding="unicode")


def _draw_panel(svg: ET.Element, panel: _Panel, left: int, top: int) -> None:
    run = panel.run
    _, stroke = colours(run.status)
    group = _sub(svg, "g", class_=f"run {css_class(run.status)}")
    _sub(
        group,
        "rect",
        x=left,
        y=top,
        width=panel.width,
        height=panel.height,
        rx=6,
        fill="#fafafa",
        stroke=stroke,
    )
    took = duration(run.started_at, run.finished_at)
    title = " · ".join(part for part in (panel.title, run.dag_nsref, run.status, took) if part)
    _sub(
        group,
        "text",
        shorten(title, TITLE_CHARS),
        x=left + PADDING,
        y=top + 18,
        font_weight="bold",
    )
    height = panel.box_height

    def corner(box: _Box) -> tuple[int, int]:
        x = left + PADDING + box.column * (BOX_WIDTH + COLUMN_GAP)
        y = top + TITLE_HEIGHT + PADDING + box.row * (height + ROW_GAP)
        return x, y

    for source, target in panel.edges:
        (x1, y1), (x2, y2) = corner(panel.boxes[source]), corner(panel.boxes[target])
        start_x, start_y = x1 + BOX_WIDTH, y1 + height // 2
        end_x, end_y = x2, y2 + height // 2
        bend = max(30, abs(end_x - start_x) // 2)
        _sub(
            group,
            "path",
            d=f"M{start_x},{start_y} C{start_x + bend},{start_y} {end_x - bend},{end_y} "
            f"{end_x},{end_y}",
            fill="none",
            stroke="#555555",
            stroke_width="1.2",
            marker_end="url(#arrow)",
        )
    for box in panel.boxes.values():
        x, y = corner(box)
        fill, box_stroke = colours(box.status)
        node = _sub(group, "g", class_=f"node {css_class(box.status)}")
        rect = _sub(
            node,
            "rect",
            x=x,
            y=y,
            width=BOX_WIDTH,
            height=height,
            rx=5,
            fill=fill,
            stroke=box_stroke,
        )
        if box.status == NOT_STARTED:
            rect.set("stroke-dasharray", "4 3")
        for i, line in enumerate(box.lines):
            _sub(
                node,
                "text",
                shorten(line, BOX_CHARS),
                x=x + 8,
                y=y + 18 + i * LINE_HEIGHT,
                font_weight="bold" if i == 0 else "normal",
                fill="#b71c1c" if i == 2 else "#111111",
            )
        _sub(node, "title", "\n".join(box.lines))


# --- either ------------------------------------------------------------------------------


class GraphRenderer:
    """Draws run graphs for one application: Graphviz when it is there (or
    when `graphviz` is True; False never uses it), a few processes at once,
    and a small cache of what was drawn."""

    def __init__(self, graphviz: bool | None = None, timeout_s: float = GRAPHVIZ_TIMEOUT_S):
        self.graphviz = graphviz
        self.timeout_s = timeout_s
        self._slots = asyncio.Semaphore(GRAPHVIZ_PROCESSES)
        self._cache: OrderedDict[tuple[str, str, str], str] = OrderedDict()

    async def svg(self, run: DagRun) -> str:
        """The graph of `run` and its sub-DAG runs, an SVG document."""
        dot = self.dot_program()
        key = (run.run_id, tree_version(run), dot or "")
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        drawn = await self._graphviz(run, dot) if dot else None
        if drawn is None:
            drawn = fallback_svg(run)
        self._cache[key] = drawn
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return drawn

    def dot_program(self) -> str | None:
        """Graphviz's `dot`, if it is to be used and installed."""
        if self.graphviz is False:
            return None
        return shutil.which("dot")

    async def _graphviz(self, run: DagRun, dot: str) -> str | None:
        if sum(len(each.nodes) for each in run.walk()) > GRAPHVIZ_MAX_NODES:
            return None
        async with self._slots:
            process = await asyncio.create_subprocess_exec(
                dot,
                "-Tsvg",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                out, err = await asyncio.wait_for(
                    process.communicate(to_dot(run).encode()), self.timeout_s
                )
            except TimeoutError:
                process.kill()
                await process.wait()
                log.warning(
                    "Graphviz took over %gs for run %r: drawn without it",
                    self.timeout_s,
                    run.run_id,
                )
                return None
        if process.returncode != 0:
            log.warning(
                "Graphviz failed for run %r (%s): drawn without it",
                run.run_id,
                err.decode(errors="replace").strip()[:500],
            )
            return None
        try:
            return cleaned_svg(out)
        except ET.ParseError as e:
            log.warning(
                "Graphviz's SVG for run %r did not parse (%s): drawn without it", run.run_id, e
            )
            return None


__all__ = ["GraphRenderer", "cleaned_svg", "fallback_svg", "xml_text"]
