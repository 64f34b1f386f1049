"""The web viewer's JSON API, security and command line, on every engine.

The viewer (`create_app`) runs in its lifespan, on an event loop of its own
(`Viewer` below), and opens its own `AsyncDagProvenance`; the runs it shows
are written meanwhile with a sync `DagProvenance` on the same database, as a
DAG runner in another process would write them.
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient
from typer.testing import CliRunner

from dag_provenance import DagProvenance
from dag_provenance.cli import app as cli_app
from dag_provenance.engine import make_engine, sqlite_file_of
from dag_provenance.web import create_app
from dag_provenance.web.security import CONTENT_SECURITY_POLICY, token_cookie_name
from dag_provenance.web.urls import api_run_url, events_url, io_url

from .conftest import Clock

WAIT_S = 20.0
"""How long a test waits for something the viewer is expected to send."""
TOKEN = "s3cret-Token_0123456789"


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def writer(module_db_url: str) -> Iterator[DagProvenance]:
    """Writes runs as a DAG runner would (and creates the schema)."""
    store = DagProvenance(module_db_url)
    yield store
    store.close()


class Viewer:
    """The viewer under test: Starlette's `TestClient` runs its lifespan and
    event loop (and streams, for server-sent events); plain requests go
    through `httpx.AsyncClient` on `httpx.ASGITransport`, on that loop, since
    it hands the app the path decoded once, as servers do (the TestClient
    decodes `%25` twice)."""

    def __init__(self, app: FastAPI, base_url: str = "http://testserver", **options: Any):
        self.app = app
        self.base_url = base_url
        self.options = options
        self.streaming = TestClient(app, base_url=base_url)

    def __enter__(self) -> Viewer:
        self.streaming.__enter__()
        assert self.streaming.portal is not None
        self.portal = self.streaming.portal
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(self.app), base_url=self.base_url, **self.options
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.portal.call(self.http.aclose)
        self.streaming.__exit__(*exc)

    def get(self, url: str | httpx.URL, **options: Any) -> httpx.Response:
        return self.portal.call(functools.partial(self.http.get, url, **options))

    def send(self, request: httpx.Request) -> httpx.Response:
        return self.portal.call(self.http.send, request)

    @property
    def cookies(self) -> httpx.Cookies:
        return self.http.cookies


@pytest.fixture(scope="module")
def client(module_db_url: str, writer: DagProvenance) -> Iterator[Viewer]:
    with Viewer(create_app(module_db_url, poll_interval=0.05)) as viewer:
        yield viewer


@pytest.fixture
def dag() -> str:
    """A DAG nsref no other test uses."""
    return f"web/{uuid.uuid4().hex[:10]}"


def record_run(
    store: DagProvenance,
    run_id: str,
    dag_nsref: str,
    *,
    status: str = "completed",
    labels: tuple[str, ...] = ("fetch", "load"),
    parent_run_id: str | None = None,
    initiator: str | None = "tester",
) -> None:
    """A run whose nodes ran one after the other, finished with `status`
    (the last node failed if it failed; still running if "running")."""
    store.create_run(run_id, dag_nsref, {"source": run_id}, parent_run_id, initiator)
    for i, label in enumerate(labels):
        store.record_node_start(run_id, label, json.dumps({"in": label}), is_source=i == 0)
        last = i == len(labels) - 1
        if last and status == "failed":
            store.fail_node_and_finish_run(run_id, label, f"Traceback ...\nValueError: {label}")
            return
        if last and status == "running":
            return
        edges = [] if last else [(label, labels[i + 1])]
        store.complete_node_with_edges(run_id, label, json.dumps({"out": label}), edges)
    store.finish_run(run_id, status, json.dumps({"done": True}))


def run_ids(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [run["run_id"] for run in answer.json()["runs"]]


# --- listing runs ------------------------------------------------------------------------


def test_runs_are_listed_newest_first_with_their_node_counts(
    client: Viewer, writer: DagProvenance, dag: str, clock: Clock
) -> None:
    record_run(writer, f"{dag}-old", dag)
    record_run(writer, f"{dag}-new", dag, status="failed", labels=("a", "b", "c"))

    answer = client.get("/api/runs", params={"dag": dag})

    assert run_ids(answer) == [f"{dag}-new", f"{dag}-old"]
    newest = answer.json()["runs"][0]
    assert newest["status"] == "failed"
    assert newest["node_counts"] == {"completed": 2, "failed": 1}
    assert newest["initiated_by"] == "tester"
    assert newest["duration_seconds"] > 0
    assert newest["url"] == "/runs/" + quote(f"{dag}-new", safe="")
    assert answer.json()["next"] is None


def test_runs_are_filtered_by_statuses_dag_and_start_window(
    client: Viewer, writer: DagProvenance, dag: str, clock: Clock
) -> None:
    record_run(writer, f"{dag}-1-done", dag)
    clock.advance(timedelta(hours=1))
    record_run(writer, f"{dag}-2-failed", dag, status="failed")
    middle = clock.now
    clock.advance(timedelta(hours=1))
    record_run(writer, f"{dag}-3-running", dag, status="running")
    record_run(writer, f"{dag}-other", f"{dag}-other-dag")

    def listed(**params: Any) -> list[str]:
        return run_ids(client.get("/api/runs", params={"dag": dag, **params}))

    assert listed(statuses=["failed", "running"]) == [f"{dag}-3-running", f"{dag}-2-failed"]
    assert listed(statuses="completed") == [f"{dag}-1-done"]
    assert listed(status="failed") == [f"{dag}-2-failed"]  # the store's own name, too
    assert listed(since=middle.isoformat()) == [f"{dag}-3-running"]
    assert listed(until=middle.isoformat()) == [f"{dag}-2-failed", f"{dag}-1-done"]
    assert listed(since="", until="", statuses=[]) == listed()  # empty form fields
    assert len(listed()) == 3


def test_keyset_pages_stay_stable_while_new_runs_are_written(
    client: Viewer, writer: DagProvenance, dag: str, clock: Clock
) -> None:
    first_ids = [f"{dag}-{i:02d}" for i in range(5)]
    for run_id in first_ids:
        record_run(writer, run_id, dag, labels=("only",))
    clock.step = timedelta(0)  # these start at the same instant: ordered by run id
    tied = [f"{dag}-t{i}" for i in range(3)]
    for run_id in tied:
        record_run(writer, run_id, dag, labels=("only",))
    clock.step = timedelta(seconds=1)
    clock.advance(timedelta(seconds=1))
    expected = sorted(tied, reverse=True) + first_ids[::-1]

    seen: list[str] = []
    page = client.get("/api/runs", params={"dag": dag, "limit": 3}).json()
    while True:
        seen += [run["run_id"] for run in page["runs"]]
        # New runs arrive between pages; they are newer, so no page moves.
        record_run(writer, f"{dag}-new-{uuid.uuid4().hex[:6]}", dag, labels=("only",))
        if page["next"] is None:
            break
        page = client.get("/api/runs", params={"dag": dag, "limit": 3, "after": page["next"]})
        page = page.json()

    assert seen == expected
    assert len(run_ids(client.get("/api/runs", params={"dag": dag, "limit": 200}))) == 8 + 3


def test_bad_parameters_are_refused_with_a_message_naming_them(client: Viewer) -> None:
    cases = {
        "/api/runs?after=yesterday": (400, "after"),
        "/api/runs?after=2031-01-01T00:00:00,": (400, "after"),
        "/api/runs?after=2031-01-01T00:00:00,naive": (400, "after"),
        "/api/runs?statuses=nope": (422, "statuses"),
        "/api/runs?limit=0": (422, "limit"),
        "/api/runs?limit=100000": (422, "limit"),
        "/api/runs?since=last+tuesday": (400, "since"),
        "/api/runs?until=99999999999w": (400, "until"),
        "/api/io/?node=x": (400, "run id"),
    }
    for url, (status, named) in cases.items():
        answer = client.get(url)
        assert answer.status_code == status, (url, answer.text)
        assert named in answer.json()["detail"], (url, answer.json())


# --- one run -----------------------------------------------------------------------------

AWKWARD_IDS = {
    "slashes": "team/a/b/c",
    "percent": "100% %2F done",
    "spaces": "  spaced  out ",
    "quotes": 'it\'s "quoted"',
    "emoji": "🚀 launch ✨",
    "long": "r" * 200,
    "ends in /io": "ends/io",
    "ends in /events": "ends/events",
    "leading slash": "/leading",
    "trailing slash": "trailing/",
    "query-like": "?q=1&token=x#frag",
    "backslash": "back\\slash",
    "dot": ".",
    "dot dot": "..",
    "line feed": "two\nlines",
}


def test_run_trees_and_payloads_are_served_for_ids_holding_any_character(
    client: Viewer, writer: DagProvenance, dag: str
) -> None:
    # A run named by each id's prefix too, which a wrongly routed id would reach instead.
    record_run(writer, "ends", dag)
    for run_id in AWKWARD_IDS.values():
        record_run(writer, run_id, dag, labels=("step/one", "step two"))

    failures = []
    for name, run_id in AWKWARD_IDS.items():
        tree = client.get(api_run_url(run_id))
        if tree.status_code != 200 or tree.json()["run_id"] != run_id:
            failures.append(f"{name}: tree {tree.status_code} {tree.text[:100]}")
            continue
        assert sorted(tree.json()["nodes"]) == ["step two", "step/one"]
        io = client.get(io_url(run_id, "step/one"))
        if io.status_code != 200 or io.json()["input"]["text"] != '{\n  "in": "step/one"\n}':
            failures.append(f"{name}: io {io.status_code} {io.text[:100]}")
    assert not failures, failures

    # The plain path form works for every id a path can carry.
    for name in ("slashes", "percent", "ends in /io", "ends in /events", "leading slash"):
        run_id = AWKWARD_IDS[name]
        assert client.get("/api/runs/" + quote(run_id, safe="")).json()["run_id"] == run_id
        assert client.get("/api/io/" + quote(run_id, safe="")).json()["run_id"] == run_id
    # A line feed cut off at the end of a path is refused, not read as another run's id.
    answer = client.get("/api/runs/ends%0A")
    assert answer.status_code in (400, 404) and answer.json()["detail"]


def test_payloads_are_pretty_printed_and_cut_until_the_whole_is_asked_for(
    client: Viewer, writer: DagProvenance, dag: str
) -> None:
    run_id = f"{dag}-big"
    big = {"rows": [{"id": i, "name": f"row {i}", "note": "é" * 20} for i in range(2000)]}
    writer.create_run(run_id, dag, {"source": "s3://bucket/key"})
    writer.record_node_start(run_id, "load", "not json at all", is_source=True)
    writer.complete_node_with_edges(run_id, "load", json.dumps(big), [])
    writer.finish_run(run_id, "completed", None)
    pretty = json.dumps(big, indent=2, ensure_ascii=False)

    preview = client.get(io_url(run_id, "load")).json()
    whole = client.get(io_url(run_id, "load") + "&full=1").json()
    run_io = client.get(io_url(run_id)).json()

    assert preview["output"]["truncated"] is True
    assert preview["output"]["text"] == pretty[: 64 * 1024]
    assert preview["output"]["chars"] == len(pretty)
    assert whole["output"] == {
        "text": pretty,
        "chars": len(pretty),
        "truncated": False,
        "is_json": True,
    }
    assert preview["input"] == {
        "text": "not json at all",
        "chars": 15,
        "truncated": False,
        "is_json": False,
    }
    assert run_io["node"] is None
    assert json.loads(run_io["input"]["text"]) == {"source": "s3://bucket/key"}
    assert run_io["output"] == {"text": None, "chars": 0, "truncated": False, "is_json": False}


def test_missing_runs_and_nodes_answer_404_with_a_json_error(
    client: Viewer, writer: DagProvenance, dag: str
) -> None:
    record_run(writer, f"{dag}-here", dag)
    missing = {
        api_run_url(f"{dag}-gone"): f"{dag}-gone",
        io_url(f"{dag}-gone", "fetch"): f"{dag}-gone",
        io_url(f"{dag}-here", "nope"): "nope",
        events_url(f"{dag}-gone"): f"{dag}-gone",
    }
    for url, named in missing.items():
        answer = client.get(url)
        assert answer.status_code == 404, url
        assert answer.headers["content-type"] == "application/json"
        assert named in answer.json()["detail"]
    page = client.get("/runs/" + quote(f"{dag}-gone", safe=""))
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")


def test_the_openapi_document_lists_every_endpoint_and_no_cdn_page_is_served(
    client: Viewer,
) -> None:
    document = client.get("/api/openapi.json").json()

    assert set(document["paths"]) == {
        "/api/runs",
        "/api/runs/{run_id}",
        "/api/io/{run_id}",
        "/api/events/{run_id}",
        "/api/dags/{nsref}/stats",
    }
    assert "text/event-stream" in json.dumps(document["paths"]["/api/events/{run_id}"])
    assert "RunPage" in document["components"]["schemas"]
    for page in ("/docs", "/redoc", "/docs/oauth2-redirect", "/openapi.json"):
        assert client.get(page).status_code == 404, page


# --- following a run ---------------------------------------------------------------------


class EventReader:
    """Reads a server-sent event stream on a thread of its own, so a test
    can wait for each event with a timeout (and write meanwhile)."""

    END: ClassVar[dict[str, Any]] = {"event": "<end of stream>", "data": None}

    def __init__(self, client: Viewer, url: str) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.status: int | None = None
        self._thread = threading.Thread(target=self._read, args=(client, url), daemon=True)
        self._thread.start()

    def _read(self, client: Viewer, url: str) -> None:
        try:
            with client.streaming.stream("GET", url) as stream:
                self.status = stream.status_code
                event: dict[str, Any] = {}
                for line in stream.iter_lines():
                    if not line:
                        if "event" in event:
                            self.events.put(event)
                        event = {}
                    elif line.startswith("event: "):
                        event["event"] = line.removeprefix("event: ")
                    elif line.startswith("data: "):
                        event["data"] = json.loads(line.removeprefix("data: "))
        finally:
            self.events.put(self.END)

    def next(self) -> dict[str, Any]:
        try:
            return self.events.get(timeout=WAIT_S)
        except queue.Empty:
            raise AssertionError(f"no event within {WAIT_S}s") from None

    def join(self) -> None:
        self._thread.join(WAIT_S)
        assert not self._thread.is_alive()


def test_the_event_stream_follows_a_running_run_to_its_end(
    client: Viewer, writer: DagProvenance, dag: str
) -> None:
    run_id = f"{dag}/live run"
    writer.create_run(run_id, dag, {})
    writer.record_node_start(run_id, "fetch", "{}", is_source=True)
    reader = EventReader(client, events_url(run_id))
    try:
        opened = reader.next()
        assert opened["event"] == "state"
        assert opened["data"]["status"] == "running" and opened["data"]["active"] is True
        versions = [opened["data"]["version"]]

        def changed() -> dict[str, Any]:
            event = reader.next()
            assert event["event"] == "state", event
            assert event["data"]["version"] != versions[-1]
            versions.append(event["data"]["version"])
            return dict(event["data"])

        writer.complete_node_with_edges(run_id, "fetch", "{}", [("fetch", "split")])
        assert changed()["status"] == "running"
        writer.update_run_status(run_id, "paused")  # a change the store stamps no time on
        assert changed()["status"] == "paused"
        writer.update_run_status(run_id, "running")
        assert changed()["status"] == "running"
        writer.record_node_start(run_id, "split", "{}")
        assert changed()["active"] is True
        writer.create_run(f"{run_id}/sub", f"{dag}/split[0]", {}, parent_run_id=run_id)
        assert changed()["active"] is True
        writer.fail_node_and_finish_run(run_id, "split", "boom")
        finished = changed()
        assert finished == {"version": versions[-1], "status": "failed", "active": False}
        assert reader.next() == {"event": "end", "data": finished}
        assert reader.next() == EventReader.END
    finally:
        if writer.get_run(run_id)["status"] in ("running", "paused"):  # type: ignore[index]
            writer.finish_run(run_id, "cancelled")
        reader.join()
    assert reader.status == 200

    # Opening the stream of a finished run: its state, then the end at once.
    again = EventReader(client, events_url(run_id))
    assert again.next()["data"] == finished
    assert again.next() == {"event": "end", "data": finished}
    assert again.next() == EventReader.END
    again.join()


# --- security ----------------------------------------------------------------------------


def assert_security_headers(answer: httpx.Response) -> None:
    headers = answer.headers
    where = f"{answer.request.url} ({answer.status_code})"
    assert headers.get("content-security-policy") == CONTENT_SECURITY_POLICY, where
    assert headers.get("x-content-type-options") == "nosniff", where
    assert headers.get("referrer-policy") == "no-referrer", where


def test_every_response_carries_the_security_headers(
    client: Viewer, writer: DagProvenance, dag: str
) -> None:
    run_id = f"{dag}-done"
    record_run(writer, run_id, dag, status="failed")
    urls = [
        "/",
        "/?statuses=nope",
        "/?after=garbage",
        "/runs/" + quote(run_id, safe=""),
        "/runs/nope",
        "/fragments/run/" + quote(run_id, safe=""),
        "/fragments/run-list",
        "/graphs/" + quote(run_id, safe=""),
        "/dags/" + quote(dag, safe=""),
        "/static/viewer.js",
        "/static/viewer.css",
        "/static/status.css",
        "/static/nothing-here.js",
        "/api/runs",
        api_run_url(run_id),
        io_url(run_id, "fetch"),
        events_url(run_id),
        "/api/openapi.json",
        "/api/dags/" + quote(dag, safe="") + "/stats",
        "/no/such/page",
    ]
    for url in urls:
        assert_security_headers(client.get(url))
    assert "javascript" in client.get("/static/viewer.js").headers["content-type"]
    assert client.get("/").headers["cache-control"] == "no-store"


def test_a_token_is_required_on_every_request_when_one_is_set(
    module_db_url: str, writer: DagProvenance
) -> None:
    urls = ["/", "/api/runs", "/static/viewer.js", "/api/openapi.json", "/runs/x", "/nothing"]
    with Viewer(create_app(module_db_url, token=TOKEN)) as client:
        for url in urls:
            refused = client.get(url)
            assert refused.status_code == 401, url
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert_security_headers(refused)
        assert client.get("/api/runs").json()["detail"].startswith("this viewer needs its token")
        for wrong in ("Bearer nope", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer "):
            assert client.get("/api/runs", headers={"Authorization": wrong}).status_code == 401
        for url in urls[:4]:
            allowed = client.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
            assert allowed.status_code == 200, url
        assert client.get("/?token=wrong").status_code == 401

        # Visiting with ?token= sets the cookie and sends the browser on without it.
        visit = client.get(f"/?dag=a%2Fb&token={TOKEN}&since=7d")
        assert visit.status_code == 303
        location = urlsplit(visit.headers["location"])
        assert location.path == "/" and parse_qs(location.query) == {
            "dag": ["a/b"],
            "since": ["7d"],
        }
        cookie = visit.headers["set-cookie"]
        assert cookie.startswith(f"{token_cookie_name(TOKEN)}={TOKEN};")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert_security_headers(visit)
        assert client.get("/api/runs").status_code == 200  # the cookie, from now on
        assert client.get("/static/viewer.js").status_code == 200

        # The redirect never leaves the viewer, whatever the path looks like.
        outside = httpx.URL("http://testserver/").copy_with(
            raw_path=f"//evil.example/x?token={TOKEN}".encode()
        )
        sneaky = client.send(httpx.Request("GET", outside))
        assert sneaky.status_code == 303
        assert sneaky.headers["location"] == "/evil.example/x"

    with Viewer(create_app(module_db_url, token=TOKEN)) as client:
        client.cookies.set(token_cookie_name(TOKEN), "wrong")
        assert client.get("/api/runs").status_code == 401


def test_a_token_that_a_cookie_cannot_carry_is_refused(module_db_url: str) -> None:
    for token in ("has space", "semi;colon", 'quo"te', "comma,", "back\\slash", "é", ""):
        with pytest.raises(ValueError, match="token"):
            create_app(module_db_url, token=token)


def test_only_the_allowed_host_names_are_served(module_db_url: str, writer: DagProvenance) -> None:
    app = create_app(module_db_url, allowed_hosts={"127.0.0.1", "localhost", "::1"})
    with Viewer(app, base_url="http://127.0.0.1:8765") as client:
        assert client.get("/api/runs").status_code == 200
        for host in ("localhost:8765", "[::1]:8765", "LOCALHOST"):
            assert client.get("/api/runs", headers={"Host": host}).status_code == 200, host
        for host in ("evil.example", "evil.example:8765", "127.0.0.1.evil.example", ""):
            refused = client.get("/api/runs", headers={"Host": host})
            assert refused.status_code == 400, host
            assert_security_headers(refused)


def test_a_database_behind_the_code_gets_an_error_page_and_is_never_migrated(
    empty_db_url: str,
) -> None:
    with Viewer(create_app(empty_db_url)) as client:
        page = client.get("/")
        api = client.get("/api/runs")

    assert page.status_code == 503 and "dag-provenance db upgrade" in page.text
    assert api.status_code == 503 and api.json()["detail"]
    assert_security_headers(page)
    engine = make_engine(empty_db_url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


# --- the command line --------------------------------------------------------------------

runner = CliRunner()


def serve(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(cli_app, ["serve", *args], env={"COLUMNS": "200", **(env or {})})


def test_serve_refuses_another_host_without_a_token_or_no_auth() -> None:
    refused = serve("--host", "0.0.0.0", "--url", "never-opened.db")
    assert refused.exit_code == 1
    assert refused.stderr.count("\n") == 1
    assert "--token" in refused.stderr and "--no-auth" in refused.stderr

    both = serve("--host", "0.0.0.0", "--no-auth", env={"DAG_PROVENANCE_WEB_TOKEN": TOKEN})
    assert both.exit_code == 1 and "contradict" in both.stderr


class FakeServer:
    """Stands in for uvicorn's server: records what it was asked to serve."""

    configs: ClassVar[list[Any]] = []

    def __init__(self, config: Any) -> None:
        self.config = config

    def run(self) -> None:
        FakeServer.configs.append(self.config)


@pytest.fixture
def fake_uvicorn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    import uvicorn

    FakeServer.configs = []
    monkeypatch.setattr(uvicorn, "Server", FakeServer)
    return FakeServer.configs


def test_serve_checks_the_database_then_serves_it_on_loopback(
    module_db_url: str, writer: DagProvenance, fake_uvicorn: list[Any]
) -> None:
    served = serve("--url", module_db_url, "--port", "8799")

    assert served.exit_code == 0, served.output
    assert "http://127.0.0.1:8799/" in served.stdout and "token" not in served.stdout
    (config,) = fake_uvicorn
    assert (config.host, config.port) == ("127.0.0.1", 8799)
    with Viewer(config.app, base_url="http://evil.example") as client:
        assert client.get("/api/runs").status_code == 400  # a loopback viewer's host names only


def test_serve_with_a_token_prints_the_address_that_carries_it(
    module_db_url: str, writer: DagProvenance, fake_uvicorn: list[Any]
) -> None:
    served = serve(
        "--url", module_db_url, "--host", "0.0.0.0", env={"DAG_PROVENANCE_WEB_TOKEN": TOKEN}
    )

    assert served.exit_code == 0, served.output
    assert f"http://127.0.0.1:8765/?token={TOKEN}" in served.stdout
    (config,) = fake_uvicorn
    assert config.host == "0.0.0.0"
    with Viewer(config.app, base_url="http://viewer.example") as client:
        assert client.get("/api/runs").status_code == 401
        assert (
            client.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        )


def test_serve_with_no_auth_warns_that_anyone_reads_every_run(
    module_db_url: str, writer: DagProvenance, fake_uvicorn: list[Any]
) -> None:
    served = serve("--url", module_db_url, "--host", "0.0.0.0", "--no-auth")

    assert served.exit_code == 0, served.output
    assert "no authentication" in served.stderr
    with Viewer(fake_uvicorn[0].app, base_url="http://viewer.example") as client:
        assert client.get("/api/runs").status_code == 200


def test_serve_says_in_one_line_what_is_wrong_with_the_database(
    empty_db_url: str, tmp_path: Path, fake_uvicorn: list[Any]
) -> None:
    empty_file = sqlite_file_of(make_url(empty_db_url))
    if empty_file is not None:
        empty_file.touch()  # an empty SQLite database: no schema
    behind = serve("--url", empty_db_url)
    missing = serve("--url", str(tmp_path / "nothing.db"))

    assert behind.exit_code == 1 and behind.stderr.startswith("error: ")
    assert behind.stderr.count("\n") == 1 and "no database at" not in behind.stderr
    assert missing.exit_code == 1 and "no database at" in missing.stderr
    assert not (tmp_path / "nothing.db").exists()
    assert fake_uvicorn == []


def test_serve_without_the_web_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [
        m for m in sys.modules if m == "dag_provenance.web" or m.startswith("dag_provenance.web.")
    ]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "fastapi", None)

    result = serve("--url", "whatever.db")

    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "pip install 'dag-provenance[web]'" in result.stderr


def test_the_core_install_imports_nothing_of_the_web_extra() -> None:
    code = (
        "import sys, dag_provenance, dag_provenance.cli\n"
        "loaded = {'fastapi', 'starlette', 'jinja2', 'uvicorn'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_access_log_never_shows_the_token() -> None:
    from dag_provenance.cli.serve import _HiddenToken

    access = ("127.0.0.1:5", "GET", f"/?dag=x&token={TOKEN}&since=1d", "1.1", 303)
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', access, None
    )

    assert _HiddenToken().filter(record)
    assert TOKEN not in record.getMessage()
    assert "/?dag=x&token=***&since=1d" in record.getMessage()
