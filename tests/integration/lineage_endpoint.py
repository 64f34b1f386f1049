"""A lineage backend on loopback for the tests: an HTTP server that records
the OpenLineage events POSTed to it, in the order they arrive, as a real
backend (Marquez: `POST /api/v1/lineage`) would receive them from the
client's HTTP transport."""

from __future__ import annotations

import gzip
import json
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import RunEvent
from openlineage.client.serde import Serde

LINEAGE_PATH = "/api/v1/lineage"


class LineageEndpoint:
    """What the server received (`events`, parsed JSON, in arrival order), and
    how it answers: `fail_next` makes that many POSTs get `fail_status` (the
    client's HTTP transport retries a 5xx a few times, with backoff; a 4xx it
    reports at once)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[dict[str, Any]] = []
        self.fail_next = 0
        self.fail_status = 400
        self.refused = 0
        self.lock = threading.Lock()


def _handler(endpoint: LineageEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            with endpoint.lock:
                refuse = self.path != LINEAGE_PATH or endpoint.fail_next > 0
                if refuse:
                    endpoint.fail_next = max(0, endpoint.fail_next - 1)
                    endpoint.refused += 1
                else:
                    endpoint.events.append(json.loads(body))
            self.send_response(endpoint.fail_status if refuse else 201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet

    return Handler


@contextmanager
def lineage_endpoint() -> Iterator[LineageEndpoint]:
    """A recording endpoint on 127.0.0.1 (a free port), for the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    endpoint = LineageEndpoint(f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def lineage_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[LineageEndpoint]:
    """A recording endpoint, and the OpenLineage client configured for it the
    usual way (`OPENLINEAGE_URL`; no `openlineage.yml` is read)."""
    before = set(os.environ)
    with lineage_endpoint() as endpoint:
        monkeypatch.setenv("OPENLINEAGE_URL", endpoint.url)
        monkeypatch.delenv("OPENLINEAGE_CONFIG", raising=False)
        monkeypatch.delenv("OPENLINEAGE_API_KEY", raising=False)
        monkeypatch.delenv("OPENLINEAGE_DISABLED", raising=False)
        try:
            yield endpoint
        finally:
            # The client writes its resolved configuration into os.environ
            # (OPENLINEAGE__TRANSPORT__...): none of it outlives the test.
            for name in set(os.environ) - before:
                if name.startswith("OPENLINEAGE"):
                    del os.environ[name]


def as_sent(
    events: Iterable[RunEvent], client: OpenLineageClient | None = None
) -> list[dict[str, Any]]:
    """`events` as the client sends them: with the facets it adds itself (its
    version tag; the source code location when run inside a git checkout;
    configured environment variables), as JSON objects. `client`: one
    configured as the sender's (by default, from the environment)."""
    client = client if client is not None else OpenLineageClient()
    sent = []
    for event in events:
        enriched: Any = client.add_environment_facets(event)
        enriched = client.update_event_tags_facets(enriched)
        enriched = client.add_source_code_location_facet(enriched)
        sent.append(json.loads(Serde.to_json(enriched)))
    return sent
