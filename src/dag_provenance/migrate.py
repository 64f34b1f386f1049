"""Programmatic Alembic: bring a database to the schema this code expects.

`ensure_schema` is what `DagProvenance` runs on start. It is cheap when the
database is already at head (one SELECT on the version table), builds an
empty database in one step (`create_all` + stamp, Alembic's "building an up
to date database from scratch"), runs the migrations when the database is
behind, and adopts SQLite files written by lythonic's own `DagProvenance`
(no version table: the schema is recognised, any of lythonic's tables the
file lacks are created as lythonic would, then it is stamped and upgraded).

Everything that changes the schema runs under the engine's own lock, so many
processes starting at once on one database migrate it exactly once:
PostgreSQL `pg_advisory_lock`, MariaDB/MySQL `GET_LOCK`, SQLite a
`BEGIN IMMEDIATE` transaction. On SQLite foreign keys are switched off
for the migration (batch table rebuilds would otherwise cascade-delete or
fail on child rows) and `PRAGMA foreign_key_check` runs before the commit.

The version table is `dag_provenance_version`, not `alembic_version`, so the
store can share a database with an application that has its own Alembic
history. `upgrade`, `downgrade` and `stamp` take an Engine or a Connection
(such as the one a host application's `env.py` opens); a Connection must be
outside any transaction, because the migration commits one transaction of its
own under the lock, and is left outside one. `current_revision` and
`migration_status` read through either, inside the caller's transaction if
there is one.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import DBAPIError

from dag_provenance.dberrors import translating
from dag_provenance.engine import WRITE_OPTION
from dag_provenance.errors import (
    DatabaseError,
    InvalidInputError,
    SchemaError,
    SchemaOutOfDateError,
    SchemaTooNewError,
    UnrecognizedSchemaError,
)
from dag_provenance.orm import VERSION_TABLE as VERSION_TABLE  # re-exported: part of this API

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

UPGRADE_COMMAND = "`alembic upgrade head` (or `dag-provenance db upgrade`)"

#: Revisions whose schema is exactly what lythonic's own DagProvenance writes.
LYTHONIC_0_0_24_REVISION = "0001"
LYTHONIC_0_0_28_REVISION = "0002"

#: Seconds MariaDB/MySQL waits for another process's migration to finish.
MYSQL_LOCK_TIMEOUT_S = 300
_LOCK_NAME = "dag_provenance_migrate:"

_TABLES = ("dag_runs", "node_executions", "edge_traversals")
_LYTHONIC_VERSIONS = {LYTHONIC_0_0_24_REVISION: "0.0.24", LYTHONIC_0_0_28_REVISION: "0.0.28"}
#: What a reflected column must be an instance of to stand for lythonic's
#: TEXT, REAL and INTEGER (SQLite stores by affinity, so TEXT or VARCHAR, REAL
#: or DOUBLE hold the same values; the later revisions restate every type).
_TYPE_FAMILIES: tuple[type[sa.types.TypeEngine[Any]], ...] = (sa.String, sa.Float, sa.Integer)

_version = sa.table(VERSION_TABLE, sa.column("version_num", sa.String(32)))


# --- where the migrations live ------------------------------------------------


def script_location() -> Path:
    """The migrations folder: packaged in the wheel, else the source checkout's."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "migrations", here.parents[1] / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise SchemaError(f"dag-provenance migrations not found next to {here}")


def alembic_config(connection: Connection | Engine | None = None) -> Config:
    """An Alembic `Config` for the library's migrations, needing no alembic.ini.

    With `connection`, `env.py` migrates through it (Alembic's "sharing a
    connection" recipe) instead of opening its own.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location()))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


@functools.cache
def head_revision() -> str:
    """The newest revision this code knows (read once per process)."""
    head = _script().get_current_head()
    if head is None:
        raise SchemaError("the migration history has no head revision")
    return head


def _known_revision(revision: object) -> str:
    """`revision` if Alembic can resolve it (an id or its prefix, head, heads,
    base, or a relative step such as -1), else `InvalidInputError`."""
    from alembic.util import CommandError

    if not isinstance(revision, str) or not revision.strip():
        raise InvalidInputError(f"revision must be a non-empty str, got {revision!r}")
    if revision in ("head", "heads", "base") or revision[0] in "+-":
        return revision
    try:
        _script().get_revisions(revision)
    except CommandError as e:
        known = ", ".join(r for r, _, _ in history())
        raise InvalidInputError(
            f"unknown revision {revision!r}; known revisions: {known}, head, base"
        ) from e
    return revision


def _is_known(revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return _script().get_revision(revision) is not None
    except CommandError:
        return False


@translating
def history() -> list[tuple[str, str | None, str]]:
    """Every revision, oldest first, as (revision, down_revision, description)."""
    rows = []
    for script in _script().walk_revisions():
        down = script.down_revision
        if down is not None and not isinstance(down, str):
            down = ",".join(down)
        rows.append((script.revision, down, script.doc))
    return rows[::-1]


# --- what the database holds ----------------------------------------------------


def _checked_target(target: object) -> Connection | Engine:
    if not isinstance(target, Connection | Engine):
        raise InvalidInputError(
            f"expected a SQLAlchemy Engine or Connection, got {type(target).__name__}"
        )
    return target


@contextmanager
def _reading(target: Connection | Engine) -> Iterator[Connection]:
    """A connection to read the schema through.

    A Connection in a transaction is read inside it and left in it; one
    outside any is left outside (the transaction the reads began is rolled
    back), so a later `upgrade` on it is not refused.
    """
    target = _checked_target(target)
    if isinstance(target, Engine):
        with target.connect() as conn:
            yield conn
        return
    began_here = not target.in_transaction()
    try:
        yield target
    finally:
        if began_here and target.in_transaction():
            target.rollback()


@translating
def current_revision(conn_or_engine: Connection | Engine) -> str | None:
    """The revision in the version table, or None when there is none."""
    with _reading(conn_or_engine) as conn:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return None
        return _read_version(conn)


def _read_version(conn: Connection) -> str | None:
    versions = conn.execute(sa.select(_version.c.version_num)).scalars().all()
    if len(versions) > 1:
        raise UnrecognizedSchemaError(
            f"{VERSION_TABLE} holds several revisions {versions!r}; expected one"
        )
    return versions[0] if versions else None


@dataclass(frozen=True)
class _Found:
    """What a database holds: a revision (None: nothing of ours) and how it was known.

    `missing` names the lythonic tables an unversioned file lacks, which
    adoption creates before stamping `revision`.
    """

    revision: str | None
    description: str
    stamped: bool
    missing: tuple[str, ...] = ()


def _inspect_schema(conn: Connection) -> _Found:
    """Read the version table, or recognise an unversioned (lythonic-written) schema."""
    inspector = sa.inspect(conn)
    names = set(inspector.get_table_names())
    if VERSION_TABLE in names:
        revision = _read_version(conn)
        if revision is not None:
            return _Found(revision, f"revision {revision}", stamped=True)
    present = [t for t in _TABLES if t in names]
    if not present:
        return _Found(None, "an empty database (no provenance tables)", stamped=False)
    return _recognise_lythonic(inspector, conn.dialect, present)


def _recognise_lythonic(inspector: sa.Inspector, dialect: sa.Dialect, present: list[str]) -> _Found:
    """The revision lythonic's tables `present` are, or UnrecognizedSchemaError.

    Any of the three may be missing: early lythonic wrote only dag_runs, and
    lythonic itself creates what is missing on start. Only dag_runs tells
    0.0.24 from 0.0.28 (by initiated_by); without it the file is read as
    0.0.24, whose other two tables 0.0.28 left unchanged, so adoption creates
    dag_runs as revision 0001 does and revision 0002 adds initiated_by.
    """
    initiated_by = "dag_runs" in present and "initiated_by" in {
        c["name"] for c in inspector.get_columns("dag_runs")
    }
    revision = LYTHONIC_0_0_28_REVISION if initiated_by else LYTHONIC_0_0_24_REVISION
    schema = _lythonic_schema(revision)
    problems = {
        name: found
        for name in present
        if (found := _mismatches(inspector, dialect, schema.tables[name]))
    }
    if problems:
        raise UnrecognizedSchemaError(
            f"provenance tables without a {VERSION_TABLE} table that are not lythonic's "
            "(0.0.24 or 0.0.28): "
            + "; ".join(f"{name}: {', '.join(found)}" for name, found in problems.items())
        )
    missing = tuple(t for t in _TABLES if t not in present)
    described = f"lythonic {_LYTHONIC_VERSIONS[revision]}'s schema"
    if missing:
        described += f" without {', '.join(missing)}"
    if "dag_runs" in missing:
        described += " (no dag_runs to tell 0.0.24 from 0.0.28)"
    return _Found(revision, described, stamped=False, missing=missing)


def _mismatches(inspector: sa.Inspector, dialect: sa.Dialect, expected: sa.Table) -> list[str]:
    """How the database's table named like `expected` differs from it (empty: it does not).

    Columns are compared by name and type family, keys by their columns.
    Nullability and defaults are not: lythonic's `run_id TEXT PRIMARY KEY`
    is nullable on SQLite, and the later revisions restate both.
    """
    name = expected.name
    columns = {c["name"]: c["type"] for c in inspector.get_columns(name)}
    problems: list[str] = []
    if absent := [c.name for c in expected.columns if c.name not in columns]:
        problems.append(f"no column {', '.join(absent)}")
    if extra := [c for c in columns if c not in expected.columns]:
        problems.append(f"unexpected column {', '.join(extra)}")
    for column in expected.columns:
        found = columns.get(column.name)
        if found is not None and not _same_family(found, column.type):
            problems.append(
                f"{column.name} is {_type_text(found, dialect)}, "
                f"lythonic's is {_type_text(column.type, dialect)}"
            )
    primary_key = inspector.get_pk_constraint(name)["constrained_columns"]
    if primary_key != [c.name for c in expected.primary_key]:
        problems.append(
            f"primary key ({', '.join(primary_key)}), "
            f"lythonic's is ({', '.join(c.name for c in expected.primary_key)})"
        )
    foreign_keys = sorted(
        _foreign_key_text(fk["constrained_columns"], fk["referred_table"], fk["referred_columns"])
        for fk in inspector.get_foreign_keys(name)
    )
    lythonic_keys = sorted(
        _foreign_key_text(
            fk.column_keys, fk.referred_table.name, [e.column.name for e in fk.elements]
        )
        for fk in expected.foreign_key_constraints
    )
    if foreign_keys != lythonic_keys:
        problems.append(
            f"foreign keys {', '.join(foreign_keys) or '(none)'}, "
            f"lythonic's are {', '.join(lythonic_keys)}"
        )
    return problems


def _same_family(found: sa.types.TypeEngine[Any], expected: sa.types.TypeEngine[Any]) -> bool:
    return any(isinstance(found, f) and isinstance(expected, f) for f in _TYPE_FAMILIES)


def _type_text(type_: sa.types.TypeEngine[Any], dialect: sa.Dialect) -> str:
    # A SQLite column declared without a type reflects as NullType, which has no DDL.
    if isinstance(type_, sa.types.NullType):
        return "untyped"
    return str(type_.compile(dialect=dialect))


def _foreign_key_text(
    columns: Sequence[str], referred: str, referred_columns: Sequence[str]
) -> str:
    return f"({', '.join(columns)}) -> {referred}({', '.join(referred_columns)})"


@functools.cache
def _lythonic_schema(revision: str) -> sa.MetaData:
    """lythonic's tables at `revision` (0001: lythonic 0.0.24, 0002: 0.0.28), as
    revisions 0001 and 0002 build them.

    A lythonic file is recognised against these, and adoption creates the
    tables it lacks from them, exactly as those revisions would, so the later
    revisions apply unchanged (a test compares the two). Like a revision they
    are frozen: never derive them from tables.py.
    """

    def key() -> sa.types.TypeEngine[str]:
        return sa.Text().with_variant(mysql.VARCHAR(200), "mysql", "mariadb")

    def epoch() -> sa.types.TypeEngine[float]:
        return sa.Double().with_variant(sa.REAL(), "sqlite")

    metadata = sa.MetaData()
    sa.Table(
        "dag_runs",
        metadata,
        sa.Column("run_id", key(), nullable=False),
        sa.Column("dag_nsref", sa.Text(), nullable=False),
        sa.Column("parent_run_id", key(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("started_at", epoch(), nullable=False),
        sa.Column("finished_at", epoch(), nullable=True),
        sa.Column("source_inputs_json", sa.Text(), nullable=True),
        sa.Column("sink_outputs_json", sa.Text(), nullable=True),
        *(
            [sa.Column("initiated_by", sa.Text(), nullable=True)]
            if revision == LYTHONIC_0_0_28_REVISION
            else []
        ),
        sa.PrimaryKeyConstraint("run_id", name="pk_dag_runs"),
        sa.ForeignKeyConstraint(
            ["parent_run_id"], ["dag_runs.run_id"], name="fk_dag_runs_parent_run_id_dag_runs"
        ),
    )
    sa.Table(
        "node_executions",
        metadata,
        sa.Column("run_id", key(), nullable=False),
        sa.Column("node_label", key(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("is_source", sa.Integer(), server_default=sa.text("0"), nullable=True),
        sa.Column("is_sink", sa.Integer(), server_default=sa.text("0"), nullable=True),
        sa.Column("input_json", sa.Text(), nullable=True),
        sa.Column("output_json", sa.Text(), nullable=True),
        sa.Column("started_at", epoch(), nullable=True),
        sa.Column("finished_at", epoch(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "node_label", name="pk_node_executions"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["dag_runs.run_id"], name="fk_node_executions_run_id_dag_runs"
        ),
    )
    sa.Table(
        "edge_traversals",
        metadata,
        sa.Column("run_id", key(), nullable=False),
        sa.Column("upstream_label", key(), nullable=False),
        sa.Column("downstream_label", key(), nullable=False),
        sa.Column("traversed_at", epoch(), nullable=False),
        sa.PrimaryKeyConstraint(
            "run_id", "upstream_label", "downstream_label", name="pk_edge_traversals"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["dag_runs.run_id"], name="fk_edge_traversals_run_id_dag_runs"
        ),
    )
    return metadata


def _check_not_too_new(found: _Found) -> None:
    if found.revision is not None and not _is_known(found.revision):
        raise SchemaTooNewError(
            f"the database is at revision {found.revision!r}, which this dag-provenance "
            f"does not know (its newest is {head_revision()!r}): it was migrated by a "
            "newer version; upgrade dag-provenance"
        )


def _out_of_date(found: _Found) -> SchemaOutOfDateError:
    return SchemaOutOfDateError(
        f"the database holds {found.description}, expected revision {head_revision()!r}; "
        f"run {UPGRADE_COMMAND}, or open the store with migrate=True"
    )


# --- locking and the migration transaction ---------------------------------------


@contextmanager
def migration_transaction(conn: Connection) -> Iterator[Connection]:
    """Hold the schema lock and one transaction on `conn` for a migration.

    `conn` must not be in a transaction. On SQLite foreign keys are off
    inside (they can only be switched outside a transaction), checked with
    `PRAGMA foreign_key_check` before the commit, and back on afterwards.
    """
    if conn.in_transaction():
        raise SchemaError("migration_transaction needs a connection outside any transaction")
    if conn.dialect.name == "sqlite":
        with _sqlite_foreign_keys_off(conn), _sqlite_write_transaction(conn):
            yield conn
            _raise_on_foreign_key_violations(conn)
        return
    with _server_lock(conn), conn.begin():
        yield conn


def _sqlite_pragma(conn: Connection, pragma: str) -> list[Any]:
    # On the DBAPI connection, so no SQLAlchemy transaction (and no BEGIN) starts:
    # PRAGMA foreign_keys is a no-op inside a transaction.
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(pragma)
        return list(cursor.fetchall())
    finally:
        cursor.close()


@contextmanager
def _sqlite_foreign_keys_off(conn: Connection) -> Iterator[None]:
    """Foreign keys off inside, then as they were: on for the library's engines,
    and left off on a host's plain pysqlite connection, whose own batch
    migrations may rely on that."""
    were_on = bool(_sqlite_pragma(conn, "PRAGMA foreign_keys")[0][0])
    _sqlite_pragma(conn, "PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        if conn.in_transaction():
            conn.rollback()
        if were_on:
            _sqlite_pragma(conn, "PRAGMA foreign_keys = ON")


@contextmanager
def _sqlite_write_transaction(conn: Connection) -> Iterator[None]:
    """One transaction that holds SQLite's write lock from its start.

    An engine set up by `engine.configure_sqlite` sends BEGIN IMMEDIATE for
    the write option. Any other pysqlite engine (a host application's) sends
    no BEGIN before DDL, which would then commit statement by statement, so
    BEGIN IMMEDIATE is sent here. The connection's options are restored after.
    """
    previous = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.execution_options(**{WRITE_OPTION: True})  # in place, on this Connection
    try:
        with conn.begin():
            driver = conn.connection.driver_connection
            if driver is not None and not driver.in_transaction:
                driver.execute("BEGIN IMMEDIATE")
            yield
    finally:
        conn.execution_options(**{WRITE_OPTION: previous})


def _raise_on_foreign_key_violations(conn: Connection) -> None:
    violations = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    if violations:
        shown = ", ".join(f"{row[0]} row {row[1]} -> {row[2]}" for row in violations[:5])
        raise SchemaError(
            f"migration left {len(violations)} rows whose foreign key points nowhere "
            f"({shown}); rolled back"
        )


@contextmanager
def _server_lock(conn: Connection) -> Iterator[None]:
    """A session lock named after the database (PostgreSQL: and the schema)."""
    name = sa.bindparam("lock_name", _LOCK_NAME, type_=sa.String())
    if conn.dialect.name == "postgresql":
        key = sa.func.hashtext(sa.func.concat(name, sa.func.current_schema()))
        acquire = sa.select(sa.func.pg_advisory_lock(key))
        release = sa.select(sa.func.pg_advisory_unlock(key))
    elif conn.dialect.name in ("mysql", "mariadb"):
        # MD5 keeps the name under MySQL's 64-character limit for any database name.
        key = sa.func.concat(name, sa.func.md5(sa.func.coalesce(sa.func.database(), "")))
        timeout = sa.bindparam("timeout", MYSQL_LOCK_TIMEOUT_S, type_=sa.Integer())
        acquire = sa.select(sa.func.get_lock(key, timeout))
        release = sa.select(sa.func.release_lock(key))
    else:
        yield
        return
    got = conn.execute(acquire).scalar()
    conn.commit()
    if conn.dialect.name != "postgresql" and got != 1:
        raise DatabaseError(
            f"timed out after {MYSQL_LOCK_TIMEOUT_S}s waiting for another process's migration"
        )
    try:
        yield
    finally:
        if conn.in_transaction():
            conn.rollback()
        conn.execute(release)
        conn.commit()


# --- changing the schema -----------------------------------------------------------


def _create_from_scratch(conn: Connection) -> None:
    """Alembic's cookbook "building an up to date database from scratch"."""
    from dag_provenance.orm import Base

    Base.metadata.create_all(conn)
    _stamp(conn, head_revision())


def _stamp(conn: Connection, revision: str) -> None:
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    context.stamp(_script(), revision)


def _run_command(conn: Connection, name: str, *args: Any) -> None:
    from alembic import command

    with _callers_alembic_kept():
        getattr(command, name)(alembic_config(conn), *args)


@contextmanager
def _callers_alembic_kept() -> Iterator[None]:
    """Put back the `alembic.context` and `alembic.op` of a caller's Alembic run.

    Both are module-level proxies that an Alembic command installs and, on
    the way out, removes rather than restores: an application's env.py that
    calls `upgrade` would otherwise find `context.configure` gone.
    """
    import alembic.context
    import alembic.op

    callers = [getattr(module, "_proxy", None) for module in (alembic.context, alembic.op)]
    try:
        yield
    finally:
        for proxy in callers:
            if proxy is not None:
                proxy._install_proxy()


def _upgrade_locked(conn: Connection, revision: str, *, fast_create: bool) -> None:
    """Under the lock: re-read the schema (another process may have just migrated it)."""
    found = _inspect_schema(conn)
    _check_not_too_new(found)
    target = head_revision() if revision in ("head", "heads") else revision
    if found.revision is not None and not found.stamped:
        _adopt_lythonic(conn, found.revision, found.missing)
    if found.revision == target:
        return
    if found.revision is None and fast_create and target == head_revision():
        _create_from_scratch(conn)
        return
    _run_command(conn, "upgrade", revision)


def _adopt_lythonic(conn: Connection, revision: str, missing: tuple[str, ...]) -> None:
    """Make a recognised lythonic file exactly `revision`, then stamp it.

    The tables it lacks are created as lythonic (and that revision) would.
    Rows the later foreign keys cannot keep are refused, never dropped.
    """
    schema = _lythonic_schema(revision)
    schema.create_all(conn, tables=[schema.tables[t] for t in missing], checkfirst=False)
    _refuse_rows_without_their_run(conn, schema)
    _stamp(conn, revision)


#: Rows named in the error when a lythonic file holds rows without their run.
_SHOWN_ROWS = 5


def _refuse_rows_without_their_run(conn: Connection, schema: sa.MetaData) -> None:
    """Raise SchemaError naming the rows whose run (or parent run) is not in dag_runs.

    lythonic never switched SQLite's foreign keys on, and a file may lack
    dag_runs altogether, so such rows exist. Revision 0004 ties every row to
    its run with a foreign key that cascades deletes; keeping them would
    mean inventing runs nobody recorded, and dropping them would lose data.
    """
    runs = schema.tables["dag_runs"].alias("runs")
    problems: list[str] = []
    for table in (schema.tables[t] for t in _TABLES):
        for fk in table.foreign_keys:
            column = fk.parent
            orphan = sa.and_(column.is_not(None), ~sa.exists().where(runs.c.run_id == column))
            count = conn.execute(
                sa.select(sa.func.count()).select_from(table).where(orphan)
            ).scalar_one()
            if not count:
                continue
            key = list(table.primary_key.columns)
            shown = conn.execute(
                sa.select(*key).where(orphan).order_by(*key).limit(_SHOWN_ROWS)
            ).all()
            rows = ", ".join(
                "(" + ", ".join(f"{c.name}={v!r}" for c, v in zip(key, row, strict=True)) + ")"
                for row in shown
            )
            more = f" and {count - len(shown)} more" if count > len(shown) else ""
            problems.append(
                f"{count} {table.name} {'row' if count == 1 else 'rows'} whose {column.name} "
                f"is not in dag_runs: {rows}{more}"
            )
    if problems:
        raise SchemaError(
            f"this lythonic file holds {'; '.join(problems)}. dag-provenance keeps every row, "
            "and from revision 0004 these columns are foreign keys to dag_runs that cascade "
            "deletes, so the rows cannot be kept without inventing runs nobody recorded: add "
            "their runs to dag_runs or delete them, then open the file again. Nothing was changed"
        )


@translating
def ensure_schema(target: Engine | Connection, *, migrate: bool = True) -> None:
    """Make sure the database holds the schema this code expects.

    At head: returns after one SELECT. Empty: creates the tables and stamps
    head. Behind, or written by lythonic: migrates (keeping every row), unless
    `migrate` is False, which raises `SchemaOutOfDateError` and changes nothing.
    A revision newer than this code raises `SchemaTooNewError`; tables this
    library cannot identify raise `UnrecognizedSchemaError`.

    Through an Engine, or a Connection outside any transaction (the async
    store passes its connection's sync side, through `run_sync`), which is
    left outside any.
    """
    head = head_revision()
    with _lent(target) as conn:
        quick = _quick_revision(conn)
        if quick == head:
            return
        if quick is not None:
            _check_not_too_new(_Found(quick, f"revision {quick}", stamped=True))
        if not migrate:
            found = _inspect_schema(conn)
            conn.rollback()
            _check_not_too_new(found)
            if found.revision != head:
                raise _out_of_date(found)
            return
        with migration_transaction(conn):
            _upgrade_locked(conn, "head", fast_create=True)


@contextmanager
def _lent(target: Engine | Connection) -> Iterator[Connection]:
    """A connection: the Engine's own, closed after, or the Connection given."""
    if isinstance(target, Connection):
        yield target
        return
    with target.connect() as conn:  # an unreachable database fails here, once
        yield conn


def _quick_revision(conn: Connection) -> str | None:
    """The version table's revision in one SELECT; None if it cannot be read.
    Leaves `conn` outside any transaction."""
    try:
        revision: str | None = conn.execute(sa.select(_version.c.version_num)).scalar()
    except DBAPIError:
        revision = None  # no version table yet
    conn.rollback()
    return revision


@contextmanager
def _migrating(target: Connection | Engine) -> Iterator[Connection]:
    """`target` under the schema lock, in one transaction that is committed at the end.

    An Engine lends a connection of its own. A Connection is used as given
    and must be outside any transaction (else `InvalidInputError`, before any
    SQL): the migration cannot be part of the caller's transaction, since it
    takes and releases a session lock around its own, MariaDB commits at
    every DDL statement, and SQLite's foreign keys, which must be off while
    batch migrations rebuild tables, can only be switched between
    transactions. It is left outside any transaction.
    """
    target = _checked_target(target)
    if isinstance(target, Engine):
        with target.connect() as conn, migration_transaction(conn):
            yield conn
        return
    if target.in_transaction():
        raise InvalidInputError(
            "the Connection is in a transaction; dag-provenance migrations run in a "
            "transaction of their own under the schema lock and commit it. Commit or "
            "roll back first (in an Alembic env.py: migrate before "
            "`context.begin_transaction()`), or pass the Engine"
        )
    with migration_transaction(target):
        yield target


@translating
def upgrade(conn_or_engine: Connection | Engine, revision: str = "head") -> None:
    """Run the migrations up to `revision`, adopting a lythonic-written database.

    Through an Engine, or a Connection outside any transaction, which is
    left outside any, the migration committed. A Connection in a transaction
    is refused (`InvalidInputError`, before any SQL): the migration runs a
    transaction of its own under the schema lock and cannot join the caller's.
    """
    revision = _known_revision(revision)
    with _migrating(conn_or_engine) as conn:
        _upgrade_locked(conn, revision, fast_create=False)


@translating
def downgrade(conn_or_engine: Connection | Engine, revision: str) -> None:
    """Run the downgrades down to `revision` ("base" removes every table).

    Through an Engine, or a Connection outside any transaction (as `upgrade`).
    """
    revision = _known_revision(revision)
    with _migrating(conn_or_engine) as conn:
        _run_command(conn, "downgrade", revision)


@translating
def stamp(conn_or_engine: Connection | Engine, revision: str) -> None:
    """Record `revision` as current without running any migration.

    Through an Engine, or a Connection outside any transaction (as `upgrade`).
    """
    revision = _known_revision(revision)
    with _migrating(conn_or_engine) as conn:
        _run_command(conn, "stamp", revision)


# --- reporting -----------------------------------------------------------------


class PendingRevision(BaseModel):
    revision: str
    description: str


class MigrationStatus(BaseModel):
    """Where a database stands against this code's migration history.

    For a lythonic-written database (no version table) `current_revision` is
    the revision its schema is recognised as, which the next upgrade stamps
    (after creating any of lythonic's tables the file lacks).
    """

    current_revision: str | None
    head_revision: str
    pending: list[PendingRevision]
    is_up_to_date: bool
    is_too_new: bool


@translating
def migration_status(conn_or_engine: Connection | Engine) -> MigrationStatus:
    """Report the current and head revisions and the migrations still to run.

    A Connection is read inside its transaction if it is in one, and left
    outside any if it is not.
    """
    with _reading(conn_or_engine) as conn:
        found = _inspect_schema(conn)
    head = head_revision()
    too_new = found.revision is not None and not _is_known(found.revision)
    pending: list[PendingRevision] = []
    if not too_new:
        pending = [
            PendingRevision(revision=s.revision, description=s.doc)
            for s in _script().iterate_revisions(head, found.revision or "base")
        ][::-1]
    return MigrationStatus(
        current_revision=found.revision,
        head_revision=head,
        pending=pending,
        is_up_to_date=found.revision == head,
        is_too_new=too_new,
    )
