"""Browser tests of the web viewer: a real Chromium (Debian's, at
/usr/bin/chromium; nothing is downloaded) driven by Playwright, against the
viewer served by uvicorn on loopback, on a SQLite store.

Without Chromium the tests skip, so the suite passes on a machine that has
none; CI installs it and sets `DAG_PROVENANCE_REQUIRE_BROWSER=1`, which makes
a missing browser fail them instead. Screenshots are saved in
`DAG_PROVENANCE_ARTIFACTS` (default `test-artifacts/` in the working
directory) for people to look at.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("DAG_PROVENANCE_CHROMIUM", "/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveViewer:
    """The viewer served on loopback for the duration of a test module."""

    def __init__(self, db: Path) -> None:
        import uvicorn

        from dag_provenance.web import create_app

        self.db = db
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(str(db)), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> LiveViewer:
        self._thread.start()
        deadline = time.monotonic() + 30
        tick = threading.Event()
        while not self._server.started:  # waits for the server's own flag
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the viewer did not start")
            tick.wait(0.01)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(30)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = Path(os.environ.get("DAG_PROVENANCE_ARTIFACTS", "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """Debian's Chromium through Playwright (as root, Playwright's default
    --no-sandbox is what lets it run). Per module: Playwright's sync API
    keeps an event loop running on this thread while it is open, which would
    break every later test that calls `asyncio.run`."""
    if shutil.which(CHROMIUM) is None:
        why = f"{CHROMIUM} is not installed (apt-get install chromium)"
        if os.environ.get("DAG_PROVENANCE_REQUIRE_BROWSER"):
            pytest.fail(why + ", and DAG_PROVENANCE_REQUIRE_BROWSER is set (as in CI)")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield browser
        finally:
            browser.close()
