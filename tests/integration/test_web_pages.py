"""The web viewer's pages, on every engine: each renders a run tree with
sub-DAG runs, a failed node and hostile text everywhere (ids, nsrefs,
labels, errors, initiators, payloads), and none of that text ever becomes
markup. The pages are parsed, and every tag and attribute checked: scripts
only from the viewer, no inline style, no event handler, no `javascript:`
link, no image but the run's graph.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from dag_provenance import DagProvenance, DagRun, NodeExecution
from dag_provenance.web import create_app
from dag_provenance.web.graphsvg import GRAPHVIZ_TIMEOUT_S, GraphRenderer
from dag_provenance.web.security import CONTENT_SECURITY_POLICY
from dag_provenance.web.urls import dag_url, graph_url, io_url, run_fragment_url, run_url

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
JS_URL = "javascript:alert(1)"
QUOTES = 'it\'s "quoted" & <b>bold</b>'
NEWLINES = "first line\nsecond line\r\nthird"
EMOJI = "🚀 émoji ✨ 数据"
LONG = "L" * 200
HOSTILE = (SCRIPT, IMG, JS_URL, QUOTES, NEWLINES, EMOJI)

ROOT = SCRIPT  # the root run's id
ROOT_DAG = IMG + "/" + JS_URL
COMPOSITE = IMG  # the node that expands sub-DAG runs
SUB_RUNS = {f"{COMPOSITE}[0]": JS_URL, f"{COMPOSITE}[1]": LONG}
NESTED = NEWLINES  # a sub-DAG run of the first sub-DAG run
FAILED = QUOTES  # the node that fails the root run
RUNNING = EMOJI + " still going"


@dataclass
class Tree:
    """What was recorded: every run id and its number of node executions."""

    nodes_per_run: dict[str, int] = field(default_factory=dict)

    @property
    def run_ids(self) -> list[str]:
        return list(self.nodes_per_run)


def _record(store: DagProvenance) -> Tree:
    """The hostile tree: a root run whose composite node expanded two sub-DAG
    runs (the first with a sub-DAG run of its own), a failed node, and a
    second root run still running."""
    tree = Tree()
    payload = json.dumps({"html": SCRIPT, "attr": IMG, "url": JS_URL, "text": NEWLINES})

    store.create_run(ROOT, ROOT_DAG, {"in": SCRIPT}, initiator=SCRIPT + " & " + IMG)
    store.record_node_start(ROOT, SCRIPT, payload, is_source=True)
    store.complete_node_with_edges(ROOT, SCRIPT, payload, [(SCRIPT, COMPOSITE), (SCRIPT, FAILED)])
    store.record_node_start(ROOT, COMPOSITE, payload)
    for key, sub_id in SUB_RUNS.items():
        sub_dag = f"{ROOT_DAG}/{key}"
        store.create_run(sub_id, sub_dag, {"in": IMG}, parent_run_id=ROOT, initiator=JS_URL)
        store.record_node_start(sub_id, JS_URL, payload, is_source=True)
        store.complete_node_with_edges(sub_id, JS_URL, payload, [(JS_URL, EMOJI)])
        store.record_node_start(sub_id, EMOJI, payload, is_sink=True)
        if sub_id == JS_URL:
            nested_dag = f"{sub_dag}/{EMOJI}[]"
            store.create_run(NESTED, nested_dag, {}, parent_run_id=sub_id)
            store.record_node_start(NESTED, LONG, payload, is_source=True)
            store.complete_node_with_edges(NESTED, LONG, payload, [])
            store.finish_run(NESTED, "completed", payload)
            tree.nodes_per_run[NESTED] = 1
        store.complete_node_with_edges(sub_id, EMOJI, payload, [])
        store.finish_run(sub_id, "completed", payload)
        tree.nodes_per_run[sub_id] = 2
    store.complete_node_with_edges(ROOT, COMPOSITE, payload, [(COMPOSITE, NEWLINES)])
    store.record_node_start(ROOT, NEWLINES, payload)
    store.complete_node_with_edges(ROOT, NEWLINES, payload, [(NEWLINES, "never ran " + IMG)])
    store.record_node_start(ROOT, FAILED, payload, is_sink=True)
    error = f"Traceback (most recent call last):\n  {SCRIPT}\nValueError: {IMG} {JS_URL}"
    store.fail_node_and_finish_run(ROOT, FAILED, error)
    tree.nodes_per_run[ROOT] = 4

    store.create_run(RUNNING, ROOT_DAG, {}, initiator=EMOJI)
    store.record_node_start(RUNNING, SCRIPT, payload, is_source=True)
    store.complete_node_with_edges(RUNNING, SCRIPT, payload, [(SCRIPT, IMG)])
    store.record_node_start(RUNNING, IMG, payload)
    tree.nodes_per_run[RUNNING] = 2
    return tree


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tree(module_db_url: str) -> Iterator[Tree]:
    store = DagProvenance(module_db_url)
    try:
        yield _record(store)
    finally:
        store.close()


@pytest.fixture(scope="module")
def app(module_db_url: str, tree: Tree) -> FastAPI:
    return create_app(module_db_url)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    # No id below holds a valid %XX escape, which the TestClient would decode twice.
    with TestClient(app) as test_client:
        yield test_client


# --- what a page may hold ------------------------------------------------------------------


class Markup(HTMLParser):
    """Every start tag of a page, with its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


ALLOWED_SCRIPTS = re.compile(r"/static/viewer\.js\?v=[0-9a-f]+")


def checked_page(client: TestClient, url: str, status: int = 200) -> Markup:
    """The page at `url`, after checking that nothing recorded became markup."""
    answer = client.get(url)
    assert answer.status_code == status, (url, answer.text[:300])
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert answer.headers["content-type"].startswith("text/html")
    html = answer.text
    assert "<script>alert" not in html and "<img src=x" not in html, url
    assert "<b>bold" not in html, url
    page = Markup()
    page.feed(html)
    problems = []
    for tag, attributes in page.tags:
        if tag == "script" and not ALLOWED_SCRIPTS.fullmatch(attributes.get("src", "")):
            problems.append(f"script {attributes}")
        if tag == "style":
            problems.append("a style element")
        if tag == "img" and not (
            attributes.get("class") == "run-graph" and attributes["src"].startswith("/graphs/")
        ):
            problems.append(f"img {attributes}")
        for name, value in attributes.items():
            if name.startswith("on") or name == "style" or name == "srcdoc":
                problems.append(f"{tag} {name}={value!r}")
            if name in ("href", "src", "action") and not value.startswith(("/", "#", "data:,")):
                problems.append(f"{tag} {name}={value!r}")
    assert not problems, (url, problems)
    return page


def parsed(html: str) -> Markup:
    page = Markup()
    page.feed(html)
    return page


def bars(page: Markup) -> list[dict[str, str]]:
    return [a for tag, a in page.tags if tag == "rect" and "bar" in a.get("class", "").split()]


# --- the pages ---------------------------------------------------------------------------


def test_every_page_of_a_hostile_tree_renders_and_shows_its_text_as_text(
    client: TestClient, tree: Tree
) -> None:
    pages = [
        "/",
        "/?" + str(httpx.QueryParams({"dag": ROOT_DAG, "statuses": "failed"})),
        dag_url(ROOT_DAG),
        dag_url(ROOT_DAG + "/" + next(iter(SUB_RUNS)), ""),
    ]
    for run_id in tree.run_ids:
        pages += [run_url(run_id), run_fragment_url(run_id)]
    for url in pages:
        checked_page(client, url)

    root = client.get(run_url(ROOT)).text
    for text in (SCRIPT, IMG, QUOTES):  # shown, escaped
        assert (
            text.replace("&", "&amp;")
            .replace("<", "&lt;")
            .replace(">", "&gt;")
            .replace('"', "&#34;")
            .replace("'", "&#39;")
            in root
        )
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;&gt;&lt;img" in root  # the initiator


def test_the_list_shows_each_run_with_its_status_and_links_to_it(
    client: TestClient, tree: Tree
) -> None:
    page = checked_page(client, "/")
    rows = {
        a["data-run-id"]: a["class"].split()
        for tag, a in page.tags
        if tag == "tr" and "data-run-id" in a
    }
    links = {a["href"] for tag, a in page.tags if tag == "a"}

    assert set(rows) == set(tree.run_ids)
    assert "failed" in rows[ROOT] and "active" not in rows[ROOT]
    assert "running" in rows[RUNNING] and "active" in rows[RUNNING]
    assert {run_url(run_id) for run_id in tree.run_ids} <= links
    assert dag_url(ROOT_DAG) in links

    live = client.get("/fragments/run-list?statuses=running")
    assert live.status_code == 200 and "<html" not in live.text
    assert [
        a["data-run-id"] for t, a in parsed(live.text).tags if t == "tr" and "data-run-id" in a
    ] == [RUNNING]


def test_the_list_pages_through_runs_with_a_keyset_cursor(client: TestClient, tree: Tree) -> None:
    seen: list[str] = []
    url: str | None = "/?limit=2"
    while url is not None:
        page = checked_page(client, url)
        seen += [a["data-run-id"] for tag, a in page.tags if tag == "tr" and "data-run-id" in a]
        nexts = [a["href"] for tag, a in page.tags if tag == "a" and a.get("rel") == "next"]
        url = nexts[0] if nexts else None
        assert len(seen) <= len(tree.run_ids)

    assert sorted(seen) == sorted(tree.run_ids)


def test_the_run_page_marks_the_failed_node_and_shows_its_error_in_full(
    client: TestClient, tree: Tree
) -> None:
    html = client.get(run_url(ROOT)).text
    page = checked_page(client, run_url(ROOT))

    failed_nodes = [
        a for tag, a in page.tags if tag == "li" and "failed" in a.get("class", "").split()
    ]
    assert len(failed_nodes) == 1
    errors = re.findall(r'<pre class="node-error">(.*?)</pre>', html, re.DOTALL)
    assert errors == [
        "Traceback (most recent call last):\n  &lt;script&gt;alert(1)&lt;/script&gt;\n"
        "ValueError: &#34;&gt;&lt;img src=x onerror=alert(1)&gt; javascript:alert(1)"
    ]
    assert 'class="failure"' in html
    # Sub-DAG runs are linked from the header and nested under their composite node.
    links = {a["href"] for tag, a in page.tags if tag == "a"}
    assert {run_url(run_id) for run_id in (*SUB_RUNS.values(), NESTED)} <= links
    assert html.count('<section class="subrun') == 3


def test_the_timeline_has_one_bar_per_node_execution_sub_dag_runs_included(
    client: TestClient, tree: Tree
) -> None:
    whole_tree = sum(tree.nodes_per_run[r] for r in (ROOT, *SUB_RUNS.values(), NESTED))
    drawn = bars(checked_page(client, run_url(ROOT)))

    assert len(drawn) == whole_tree
    assert {b["data-run"] for b in drawn} == {ROOT, *SUB_RUNS.values(), NESTED}
    failed = [b for b in drawn if "failed" in b["class"].split()]
    assert [(b["data-run"], b["data-node"]) for b in failed] == [(ROOT, FAILED)]
    for b in drawn:
        assert float(b["width"]) > 0 and float(b["x"]) >= 0

    sub_bars = bars(checked_page(client, run_url(JS_URL)))
    assert len(sub_bars) == tree.nodes_per_run[JS_URL] + tree.nodes_per_run[NESTED]

    running = bars(checked_page(client, run_url(RUNNING)))
    assert len(running) == 2
    assert [b["class"] for b in running if b["data-node"] == IMG] == ["bar running open"]


def test_an_active_run_page_follows_its_events_and_a_finished_one_does_not(
    client: TestClient, tree: Tree
) -> None:
    def live_part(run_id: str) -> dict[str, str]:
        page = checked_page(client, run_url(run_id))
        return next(a for tag, a in page.tags if tag == "div" and a.get("id") == "run-live")

    active = live_part(RUNNING)
    finished = live_part(ROOT)

    assert active["data-events"].startswith("/api/events/")
    assert active["data-fragment"] == run_fragment_url(RUNNING)
    assert "data-events" not in finished
    fragment = client.get(run_fragment_url(RUNNING)).text
    assert f'data-version="{active["data-version"]}"' in fragment


def test_payloads_are_fetched_on_demand_from_the_io_endpoint(
    client: TestClient, tree: Tree
) -> None:
    page = checked_page(client, run_url(ROOT))
    wanted = [a["data-io"] for tag, a in page.tags if tag == "details" and "data-io" in a]

    assert io_url(ROOT, FAILED) in wanted and io_url(ROOT) in wanted
    answer = client.get(io_url(ROOT, SCRIPT))
    assert answer.headers["content-type"] == "application/json"
    shown = json.loads(answer.json()["input"]["text"])
    assert shown == {"html": SCRIPT, "attr": IMG, "url": JS_URL, "text": NEWLINES}


def test_error_pages_show_the_asked_for_text_as_text(client: TestClient, tree: Tree) -> None:
    checked_page(client, run_url(SCRIPT + "missing"), status=404)
    checked_page(client, "/?statuses=" + SCRIPT, status=422)
    checked_page(client, "/?since=" + SCRIPT, status=400)


# --- the graph ---------------------------------------------------------------------------

ALLOWED_SVG = {"svg", "g", "text", "tspan", "path", "polygon", "polyline", "ellipse", "rect"}
ALLOWED_SVG |= {"line", "circle", "defs", "marker", "title"}


def checked_svg(client: TestClient, run_id: str) -> ET.Element:
    answer = client.get(graph_url(run_id))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/svg+xml"
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    root = ET.fromstring(answer.text)  # well-formed XML, whatever the labels hold
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        assert tag in ALLOWED_SVG, tag
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on") and name not in ("style", "href"), name
            assert "javascript:" not in value or name == "class", (name, value)
            assert "{http://www.w3.org/1999/xlink}" not in name
    return root


def texts(root: ET.Element) -> str:
    return "\n".join(t for element in root.iter() for t in [element.text or ""] if t.strip())


@pytest.fixture
def no_graphviz(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine without Graphviz."""
    monkeypatch.setattr("dag_provenance.web.graphsvg.shutil.which", lambda name: None)


def test_the_graph_is_drawn_by_graphviz_as_a_clean_svg(client: TestClient, tree: Tree) -> None:
    if shutil.which("dot") is None:
        pytest.skip("Graphviz is not installed (apt-get install graphviz)")
    root = checked_svg(client, ROOT)

    assert "fallback" not in root.get("class", "")
    node_groups = [g for g in root.iter() if "node" in (g.get("class") or "").split()]
    assert (
        len(node_groups)
        == sum(tree.nodes_per_run[r] for r in (ROOT, *SUB_RUNS.values(), NESTED)) + 1
    )
    assert any("status-failed" in (g.get("class") or "") for g in node_groups)
    assert SCRIPT in texts(root) and "not started" in texts(root)


def test_the_graph_is_drawn_without_graphviz_too(
    client: TestClient, tree: Tree, no_graphviz: None
) -> None:
    for run_id in tree.run_ids:
        root = checked_svg(client, run_id)
        assert "fallback" in root.get("class", "")

    root = checked_svg(client, ROOT)
    boxes = [g for g in root.iter() if "node" in (g.get("class") or "").split()]
    # Every node of the tree, and the one an edge leads to that never started.
    assert len(boxes) == sum(tree.nodes_per_run[r] for r in (ROOT, *SUB_RUNS.values(), NESTED)) + 1
    assert [g.get("class") for g in boxes].count("node status-failed") == 1
    assert [g.get("class") for g in boxes].count("node status-not-started") == 1
    panels = [g for g in root.iter() if (g.get("class") or "").startswith("run ")]
    assert len(panels) == 4
    shown = texts(root)
    assert SCRIPT in shown and "sub-DAG" in shown
    arrows = [p for p in root.iter() if p.get("marker-end")]
    assert len(arrows) == 6  # the edges traversed in the tree


def test_the_graph_is_in_the_run_page_as_an_image(client: TestClient, tree: Tree) -> None:
    page = checked_page(client, run_url(ROOT))
    images = [a for tag, a in page.tags if tag == "img"]

    assert [image["src"] for image in images] == [graph_url(ROOT)]


def test_dag_pages_show_runs_per_status_and_node_statistics(client: TestClient, tree: Tree) -> None:
    html = client.get(dag_url(ROOT_DAG, "")).text
    page = checked_page(client, dag_url(ROOT_DAG, ""))

    rows = [a for tag, a in page.tags if tag == "tr" and "node-stats" in a.get("class", "")]
    labels = re.findall(r'<td class="label">(.*?)</td>', html, re.DOTALL)
    assert len(rows) == len(labels) == 4  # the labels of both root runs
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in labels
    assert "2 runs" in html
    stats = client.get("/api/dags/" + quote(ROOT_DAG, safe="") + "/stats?since=").json()
    assert stats["runs"] == 2 and stats["runs_by_status"]["failed"] == 1


def _small_run() -> DagRun:
    started = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    node = NodeExecution(
        node_label="only <one>", status="completed", started_at=started, finished_at=started
    )
    return DagRun(
        run_id="small",
        dag_nsref="d",
        status="completed",
        started_at=started,
        finished_at=started,
        nodes={node.node_label: node},
    )


@pytest.mark.parametrize(
    ("dot", "timeout_s"),
    [("dot", 1e-9), ("/bin/false", GRAPHVIZ_TIMEOUT_S)],
    ids=["too slow", "failing"],
)
def test_a_graphviz_that_fails_or_takes_too_long_gives_way_to_the_drawing_here(
    monkeypatch: pytest.MonkeyPatch, dot: str, timeout_s: float
) -> None:
    program = shutil.which(dot)
    if program is None:
        pytest.skip(f"{dot} is not installed")
    monkeypatch.setattr("dag_provenance.web.graphsvg.shutil.which", lambda name: program)

    svg = asyncio.run(GraphRenderer(timeout_s=timeout_s).svg(_small_run()))

    root = ET.fromstring(svg)
    assert root.get("class") == "run-graph fallback"
    assert "only <one>" in texts(root)
