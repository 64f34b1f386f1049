"""The web viewer in a real browser (Chromium, through Playwright), on a
SQLite store: the list and its filters, a failed run and its sub-DAG runs,
the timeline, a run followed live while another thread executes it, and
hostile recorded strings that must stay text on every page."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dag_provenance import DagProvenance, DagRun
from dag_provenance.demo import DemoRuns, record_demo
from dag_provenance.web.urls import run_url

from .conftest import LiveViewer

HOSTILE = [
    "<script>window.__pwned = 1</script>",
    '"><img src=x onerror="window.__pwned = 2">',
    "javascript:window.__pwned = 3",
    'it\'s "quoted" & <b>bold</b>',
    "line one\nline two",
    "\U0001f600 \U0001f469\u200d\U0001f4bb",
    "h" * 200,
]
SCRIPT_IN_PAYLOAD = '{"html": "<script>window.__pwned = 4</script>"}'


class Site:
    def __init__(self, viewer: LiveViewer, store: DagProvenance, demo: DemoRuns) -> None:
        self.viewer = viewer
        self.store = store
        self.demo = demo
        self.hostile_runs: list[str] = []

    def url(self, path: str = "/") -> str:
        return self.viewer.url + path

    def run_url(self, run_id: str) -> str:
        return self.url(run_url(run_id))  # the viewer's own address scheme


def _record_hostile(store: DagProvenance) -> list[str]:
    """A run tree per hostile string: the string as run id, nsref, label,
    initiator, error and payload, with a sub-DAG run."""
    runs = []
    for text in HOSTILE:
        run_id = text  # one with a line feed goes in ?id= (see web.urls)
        nsref = f"hostile/{text[:100]}"
        store.create_run(run_id, nsref, {"in": {"text": text}}, initiator=text)
        store.record_node_start(run_id, text, json.dumps({"text": text}), is_source=True)
        child = f"{run_id[:190]}/child"
        store.create_run(child, f"{nsref}/{text}[]", {}, parent_run_id=run_id, initiator=text)
        store.record_node_start(child, "inner", SCRIPT_IN_PAYLOAD)
        store.complete_node_with_edges(child, "inner", SCRIPT_IN_PAYLOAD, [])
        store.finish_run(child, "completed")
        store.complete_node_with_edges(run_id, text, SCRIPT_IN_PAYLOAD, [(text, "next")])
        store.record_node_start(run_id, "next", "{}")
        store.fail_node_and_finish_run(run_id, "next", text)
        runs.append(run_id)
    return runs


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    db = tmp_path_factory.mktemp("viewer") / "viewer.db"
    store = DagProvenance(db)
    demo = record_demo(store)
    hostile = _record_hostile(store)
    with LiveViewer(db) as viewer:
        built = Site(viewer, store, demo)
        built.hostile_runs = hostile
        yield built
    store.close()


@pytest.fixture
def page(chromium: Any, site: Site) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    dialogs: list[str] = []

    def dismiss(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    tab.on("dialog", dismiss)
    tab.dialogs = dialogs
    try:
        yield tab
    finally:
        context.close()


def _executions(run: DagRun) -> int:
    return sum(len(r.nodes) for r in run.walk())


def test_the_list_filters_to_failed_runs_and_a_failed_run_shows_its_error(
    page: Any, site: Site, artifacts: Path
) -> None:
    page.goto(site.url("/"))
    page.wait_for_selector("tr.run-row")
    assert page.locator("tr.run-row").count() >= 4
    page.screenshot(path=str(artifacts / "runs-list.png"), full_page=True)

    page.check("input[name=statuses][value=failed]")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**statuses=failed**")
    rows = page.locator("tr.run-row")
    assert rows.count() >= 1
    assert rows.count() == page.locator("tr.run-row.failed").count()

    failed_id = site.demo.failed_run_id
    page.click(f"tr.run-row[data-run-id='{failed_id}'] td.id a")
    page.wait_for_selector(".run-head")
    assert failed_id in page.inner_text(".run-head h1")
    failure = page.inner_text("p.failure")
    assert "publish" in failure and "PublishError" in failure
    failed_node = page.locator("li.node.failed")
    assert failed_node.count() == 1
    assert "PublishError" in failed_node.locator("pre.node-error").inner_text()

    tree = site.store.inspect_run(failed_id)
    assert tree is not None
    bars = page.locator("svg rect.bar")
    assert bars.count() == _executions(tree)
    assert page.locator("svg rect.bar.failed").count() == 1
    page.wait_for_selector("img#run-graph")
    page.screenshot(path=str(artifacts / "run-page.png"), full_page=True)


def test_a_sub_dag_run_opens_from_its_parent_and_links_back(page: Any, site: Site) -> None:
    parent = site.demo.failed_run_id
    page.goto(site.run_url(parent))
    links = page.locator("ul.subrun-links a")
    assert links.count() == len(site.demo.sub_run_ids)
    links.first.click()
    page.wait_for_url("**/runs/**")
    head = page.inner_text(".run-head")
    assert any(sub in head for sub in site.demo.sub_run_ids)
    assert parent in page.inner_text("dl.facts")
    sub = next(s for s in site.demo.sub_run_ids if s in head)
    tree = site.store.inspect_run(sub)
    assert tree is not None
    assert page.locator("svg rect.bar").count() == _executions(tree)


def test_a_run_executing_in_another_thread_completes_on_the_page_without_a_reload(
    page: Any, site: Site, artifacts: Path
) -> None:
    run_id = f"live-{uuid.uuid4().hex[:8]}"
    store = site.store
    store.create_run(run_id, "live/dag", {"a": {"n": 1}}, initiator="tester")
    page.goto(site.run_url(run_id))
    page.wait_for_selector(".run-head .badge.running")
    page.evaluate("() => { window.__sameDocument = true; }")

    step = threading.Event()
    failure: list[BaseException] = []

    def execute() -> None:  # the "runner": one node at a time, as the page follows
        try:
            store.record_node_start(run_id, "extract", "{}", is_source=True)
            step.wait(30)
            store.complete_node_with_edges(run_id, "extract", "1", [("extract", "load")])
            store.record_node_start(run_id, "load", "1", is_sink=True)
            store.complete_node_with_edges(run_id, "load", "2", [])
            store.finish_run(run_id, "completed", '{"load": 2}')
        except BaseException as e:
            failure.append(e)

    runner = threading.Thread(target=execute)
    runner.start()
    try:
        page.wait_for_selector("li.node.running", timeout=15_000)
        step.set()
        page.wait_for_selector(".run-head .badge.completed", timeout=15_000)
    finally:
        step.set()
        runner.join(30)
    assert not failure
    assert page.evaluate("() => window.__sameDocument") is True  # never reloaded
    assert page.locator("li.node.completed").count() == 2
    assert page.locator("svg rect.bar.completed").count() == 2
    page.screenshot(path=str(artifacts / "run-followed-live.png"), full_page=True)


def _assert_nothing_injected(page: Any) -> None:
    """No script ran (no dialog, no flag set) and no element came from data:
    every script is the viewer's own, no <img src=x>, no inline handler, no
    javascript: link."""
    assert page.evaluate("() => window.__pwned") is None
    assert page.dialogs == []
    scripts = page.eval_on_selector_all("script", "els => els.map(e => e.getAttribute('src'))")
    assert all(src and src.startswith("/static/") for src in scripts), scripts
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("b").count() == 0
    handlers = page.eval_on_selector_all(
        "*", "els => els.filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length"
    )
    assert handlers == 0
    links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    assert not [href for href in links if href.strip().lower().startswith("javascript:")]


def test_hostile_recorded_strings_stay_text_on_every_page(
    page: Any, site: Site, artifacts: Path
) -> None:
    page.goto(site.url("/"))
    page.wait_for_selector("tr.run-row")
    _assert_nothing_injected(page)
    listing = page.inner_text("table.runs")
    assert "<script>window.__pwned = 1</script>" in listing

    for n, run_id in enumerate(site.hostile_runs):
        text = HOSTILE[n]
        page.goto(site.run_url(run_id))
        page.wait_for_selector(".run-head")
        _assert_nothing_injected(page)
        assert page.locator("li.node.failed pre.node-error").inner_text() == text.strip("\n") or (
            text in page.locator("li.node.failed pre.node-error").inner_text()
        )
        # Inputs and outputs on demand: the payload's markup is shown as text.
        for details in page.locator("details.io").all()[:2]:
            details.locator("summary").click()
        page.wait_for_selector(".io-body pre")
        _assert_nothing_injected(page)
        # The sub-DAG run, and the DAG page.
        page.locator("ul.subrun-links a").first.click()
        page.wait_for_selector(".run-head")
        _assert_nothing_injected(page)
        page.locator("dl.facts dd a").first.click()  # its DAG
        page.wait_for_load_state()
        _assert_nothing_injected(page)
        if n == 0:
            page.goto(site.run_url(run_id))
            page.wait_for_selector(".run-head")
            page.screenshot(path=str(artifacts / "hostile-run-page.png"), full_page=True)
