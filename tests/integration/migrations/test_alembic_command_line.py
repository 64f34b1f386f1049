"""`alembic upgrade head` / `alembic check` / `alembic downgrade base` from the
repository root, the URL given by `-x url=` or `DAG_PROVENANCE_URL`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from dag_provenance import migrate
from dag_provenance.engine import make_engine

REPO_ROOT = Path(__file__).resolve().parents[3]


def alembic(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_alembic_upgrades_checks_and_downgrades_from_the_repository_root(
    empty_db_url: str,
) -> None:
    upgraded = alembic("upgrade", "head", env={"DAG_PROVENANCE_URL": empty_db_url})
    assert upgraded.returncode == 0, upgraded.stderr
    checked = alembic("-x", "url=" + empty_db_url, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "No new upgrade operations detected" in checked.stdout

    engine = make_engine(empty_db_url)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision()
        downgraded = alembic("-x", "url=" + empty_db_url, "downgrade", "base")
        assert downgraded.returncode == 0, downgraded.stderr
        assert migrate.current_revision(engine) is None
        assert set(sa.inspect(engine).get_table_names()) <= {migrate.VERSION_TABLE}
    finally:
        engine.dispose()
