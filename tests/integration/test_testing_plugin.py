"""The pytest plugin users get with the package: its `provenance` fixture
hands each test a fresh, migrated store and cleans up after the session.

Each test here runs a small test suite of its own through pytester, with
the plugin pointed at the engine under test through DAG_PROVENANCE_TEST_URL.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dag_provenance import DagProvenance
from dag_provenance.migrate import current_revision, head_revision
from dag_provenance.testing import TEST_URL_ENV

pytest_plugins = ["pytester"]

SERVER_URL_ENV = {
    "postgresql": "DAG_PROVENANCE_TEST_POSTGRES_URL",
    "mysql": "DAG_PROVENANCE_TEST_MYSQL_URL",
}

# Two tests that run in file order and write down which database they saw.
USER_SUITE = """
import json, os, pathlib

from dag_provenance import DagProvenance
from dag_provenance.migrate import current_revision, head_revision

RECORD = pathlib.Path(os.environ["DP_PLUGIN_RECORD"])


def _note(store, name):
    seen = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    seen[name] = store.engine.url.render_as_string(hide_password=False)
    RECORD.write_text(json.dumps(seen))


def test_first_writes_a_run(provenance):
    assert isinstance(provenance, DagProvenance)
    assert current_revision(provenance.engine) == head_revision()
    assert provenance.get_recent_runs() == []
    provenance.create_run("plugin-run", "pkg:dag", {"a": {}})
    provenance.record_node_start("plugin-run", "a", "{}")
    provenance.complete_node_with_edges("plugin-run", "a", "1", [("a", "b")])
    _note(provenance, "first")


def test_second_finds_the_store_empty(provenance):
    assert provenance.get_run("plugin-run") is None
    assert provenance.get_recent_runs() == []
    provenance.create_run("plugin-run", "pkg:dag", {})
    _note(provenance, "second")
"""


@pytest.fixture
def user_env(
    engine_name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[Path, str | None]:
    """Points the plugin at the engine under test; returns where the user
    suite records the URLs it saw, and the server URL (None for SQLite)."""
    record = tmp_path / "seen.json"
    monkeypatch.setenv("DP_PLUGIN_RECORD", str(record))
    server = os.environ[SERVER_URL_ENV[engine_name]] if engine_name != "sqlite" else None
    if server is None:
        monkeypatch.delenv(TEST_URL_ENV, raising=False)
    else:
        monkeypatch.setenv(TEST_URL_ENV, server)
    return record, server


def _database_exists(server: str, name: str) -> bool:
    engine = create_engine(server)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                query = text("SELECT 1 FROM pg_database WHERE datname = :name")
            else:
                query = text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :name")
            return conn.execute(query, {"name": name}).first() is not None
    finally:
        engine.dispose()


def test_each_user_test_gets_a_fresh_migrated_store_cleaned_up_afterwards(
    pytester: pytest.Pytester, user_env: tuple[Path, str | None]
) -> None:
    record, server = user_env
    pytester.makepyfile(test_user_suite=USER_SUITE)

    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:pytest_alembic")

    result.assert_outcomes(passed=2)
    seen = json.loads(record.read_text())
    if server is None:
        # SQLite: each test its own file; the first still holds what it wrote.
        assert seen["first"] != seen["second"]
        first = DagProvenance(make_url(seen["first"]).database or "")
        try:
            assert first.get_run("plugin-run") is not None
        finally:
            first.close()
    else:
        # A server: one scratch database per session, emptied between tests,
        # dropped at the end; the database named in the URL is left alone.
        scratch = make_url(seen["first"]).database
        assert scratch is not None
        assert seen["second"] == seen["first"]
        assert scratch != make_url(server).database
        assert not _database_exists(server, scratch)


def test_the_suite_s_own_provenance_fixture_starts_empty_and_migrated(
    provenance: DagProvenance,
) -> None:
    assert provenance.get_recent_runs() == []
    assert current_revision(provenance.engine) == head_revision()
