"""Hostile and odd input, property-tested on every engine: what is accepted is
stored and read back exactly; what is refused raises the library's own error
and leaves the database exactly as it was."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lythonic.compose.dag_provenance import safe_json_dumps as lythonic_safe_json_dumps

from dag_provenance import (
    DagProvenance,
    DuplicateEdgeError,
    DuplicateRunError,
    IdentifierTooLongError,
    InvalidInputError,
    InvalidStatusError,
    NodeNotFoundError,
    ProvenanceError,
    RunNotFoundError,
)
from dag_provenance.orm import DAG_NSREF_MAX, NODE_LABEL_MAX, RUN_ID_MAX

from ..conftest import dump_tables

pytestmark = pytest.mark.both_stores

EXAMPLES = 40
SIXTEEN_MIB = 16 * 1024 * 1024

on_every_engine = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    # One store per test serves every example; each example makes its own ids.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

NASTY = [
    "'", '"', "\\", "\\'", "''", "`", "--", "/*", "*/", ";", "#", "%", "_", "%s", "%(x)s",
    ":name", "?", "$1", "{}", "[]", "\n", "\r\n", "\t", " ", "  ", "\u00a0", "\u200b", "\ufeff",
    "\u202e", "NULL", "null", "None", "DROP TABLE dag_runs;", "' OR '1'='1", "'); --",
    "SELECT * FROM node_executions", "UNION SELECT", "\U0001f600", "\U0001f469\u200d\U0001f4bb",
    "\U0001f1fa\U0001f1f8", "e\u0301", "\u00e9", "\u00df", "SS", "\u0130", "i", "\u01c5",
    "\u4e2d\u6587", "\u0627\u0644\u0639", "\u2028", "\x7f", "\x01", "a", "A",
]  # fmt: skip

# Any character every engine can store: no NUL, no lone surrogate.
storable = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
fragment = st.one_of(st.sampled_from(NASTY), st.text(storable, min_size=1, max_size=8))


def hostile(max_size: int) -> st.SearchStrategy[str]:
    """Non-empty text of at most `max_size` characters built from nasty pieces."""
    return (
        st.lists(fragment, min_size=1, max_size=12)
        .map("".join)
        .map(lambda s: s[:max_size])
        .filter(bool)
    )


payload = st.one_of(st.just(""), st.lists(fragment, max_size=40).map("".join))

_serial = itertools.count()


def unique(prefix: str) -> str:
    """A short prefix no other example uses (keeps generated ids apart)."""
    return f"{prefix}{next(_serial)}~"


# --- accepted input comes back exactly --------------------------------------------------


@on_every_engine
@given(
    run_part=hostile(RUN_ID_MAX - 12),
    nsref=hostile(DAG_NSREF_MAX),
    labels=st.lists(hostile(NODE_LABEL_MAX), min_size=2, max_size=4, unique=True),
)
def test_hostile_ids_nsrefs_and_labels_are_stored_and_read_back_exactly(
    provenance: DagProvenance, run_part: str, nsref: str, labels: list[str]
) -> None:
    run_id = unique("h") + run_part
    first, *rest = labels
    provenance.create_run(run_id, nsref, {})
    provenance.record_node_start(run_id, first, "{}")
    provenance.complete_node_with_edges(run_id, first, "1", [(first, r) for r in rest])
    for label in rest:
        provenance.record_node_start(run_id, label, "{}")

    run = provenance.get_run(run_id)
    assert run is not None
    assert (run["run_id"], run["dag_nsref"]) == (run_id, nsref)
    assert {n["node_label"] for n in provenance.get_node_executions(run_id)} == set(labels)
    assert provenance.get_node_output(run_id, first) == "1"
    assert sorted(e["downstream_label"] for e in provenance.get_edge_traversals(run_id)) == sorted(
        rest
    )
    inspected = provenance.inspect_run(run_id)
    assert inspected is not None
    assert (inspected.run_id, inspected.dag_nsref) == (run_id, nsref)
    assert set(inspected.nodes) == set(labels)
    assert sorted(e.downstream_label for e in inspected.nodes[first].edges) == sorted(rest)
    assert [r.run_id for r in provenance.get_recent_runs(limit=5, dag_nsref=nsref)][:1] == [run_id]


def variants(text: str) -> set[str]:
    return {
        text, text + " ", " " + text, text + "\t", text.upper(), text.lower(), text.swapcase(),
        text.casefold(), text + "\u00a0",
    }  # fmt: skip


@on_every_engine
@given(base=hostile(RUN_ID_MAX - 20))
def test_ids_differing_only_in_case_or_spaces_are_different_runs_and_nodes(
    provenance: DagProvenance, base: str
) -> None:
    prefix = unique("v")
    ids = sorted({prefix + v for v in variants(base) if len(prefix + v) <= RUN_ID_MAX})
    labels = sorted(v for v in variants(base) if len(v) <= NODE_LABEL_MAX)
    for run_id in ids:
        provenance.create_run(run_id, "hostile:variants", {"id": run_id})
    for label in labels:
        provenance.record_node_start(ids[0], label, json.dumps(label))

    for run_id in ids:
        run = provenance.get_run(run_id)
        assert run is not None and run["run_id"] == run_id
        assert json.loads(run["source_inputs_json"]) == {"id": run_id}
    nodes = provenance.get_node_executions(ids[0])
    assert sorted(n["node_label"] for n in nodes) == labels
    assert all(json.loads(n["input_json"]) == n["node_label"] for n in nodes)


@on_every_engine
@given(
    source=st.dictionaries(hostile(40), st.dictionaries(hostile(20), payload, max_size=3)),
    node_input=payload,
    output=payload,
    sink=st.one_of(st.none(), payload),
    error=payload,
)
def test_payloads_round_trip_byte_for_byte(
    provenance: DagProvenance,
    source: dict[str, Any],
    node_input: str,
    output: str,
    sink: str | None,
    error: str,
) -> None:
    run_id = unique("p")
    provenance.create_run(run_id, "hostile:payloads", source)
    provenance.record_node_start(run_id, "n", node_input, is_source=True)
    provenance.complete_node_with_edges(run_id, "n", output, [])
    provenance.record_node_start(run_id, "f", node_input)
    provenance.finish_run(run_id, "completed", sink)
    failed = unique("pf")
    provenance.create_run(failed, "hostile:payloads", {})
    provenance.record_node_start(failed, "f", "{}")
    provenance.fail_node_and_finish_run(failed, "f", error)

    run = provenance.get_run(run_id)
    assert run is not None
    assert run["source_inputs_json"].encode() == json.dumps(source).encode()
    assert run["sink_outputs_json"] == sink
    nodes = {n["node_label"]: n for n in provenance.get_node_executions(run_id)}
    assert nodes["n"]["input_json"].encode() == node_input.encode()
    assert nodes["n"]["output_json"].encode() == output.encode()
    assert [n["error"] for n in provenance.get_node_executions(failed)] == [error]
    inspected = provenance.inspect_run(run_id)
    assert inspected is not None
    provenance.load_io(inspected)
    assert inspected.io is not None and inspected.io.output_json == sink
    assert inspected.nodes["n"].io is not None
    assert inspected.nodes["n"].io.input_json == node_input
    assert inspected.nodes["n"].io.output_json == output


class Opaque:
    """An object json cannot encode, with a stable str()."""

    def __str__(self) -> str:
        return "<Opaque 'quoted' \\ \U0001f600>"


def circular() -> dict[str, Any]:
    loop: dict[str, Any] = {"name": "loop"}
    loop["self"] = loop
    return loop


unencodable = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        hostile(20),
        st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7))])),
        st.frozensets(st.integers(), max_size=3),
        st.sets(st.integers(), max_size=3),
        st.binary(max_size=8),
        st.decimals(allow_nan=False),
        st.uuids(),
        st.builds(Opaque),
        st.builds(circular),
        st.dictionaries(st.tuples(st.integers(), st.integers()), st.integers(), max_size=2),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile(10), inner, max_size=3),
    max_leaves=8,
)


@on_every_engine
@given(inputs=st.dictionaries(hostile(20), unencodable, max_size=4))
def test_source_inputs_json_cannot_encode_are_stored_as_lythonic_stores_them(
    provenance: DagProvenance, inputs: dict[str, Any]
) -> None:
    run_id = unique("u")

    provenance.create_run(run_id, "hostile:unencodable", inputs)

    run = provenance.get_run(run_id)
    assert run is not None
    assert run["source_inputs_json"] == lythonic_safe_json_dumps(inputs)


def test_the_usual_unencodable_inputs_are_stored_as_lythonic_stores_them(
    provenance: DagProvenance,
) -> None:
    cases: dict[str, Any] = {
        "set": {"load": {"ids": {3, 1, 2}}},
        "datetime": {"load": {"at": datetime(2030, 1, 2, 3, 4, 5, 6, tzinfo=UTC)}},
        "object": {"load": {"thing": Opaque()}},
        "decimal and uuid": {"load": [Decimal("1.10"), UUID(int=7)]},
        "bytes": {"load": b"\x00\xff'"},
        "tuple keys (json refuses: whole dict as its str)": {"load": {(1, 2): 3}},
        "circular (json refuses: whole dict as its str)": {"load": circular()},
    }
    for name, inputs in cases.items():
        run_id = unique("c")
        provenance.create_run(run_id, "hostile:unencodable", inputs)
        run = provenance.get_run(run_id)
        assert run is not None
        assert run["source_inputs_json"] == lythonic_safe_json_dumps(inputs), name


@pytest.mark.slow
def test_sixteen_mib_payloads_round_trip_byte_for_byte_in_every_column(
    provenance: DagProvenance,
) -> None:
    # 1-, 2-, 3- and 4-byte UTF-8 characters, quotes and backslashes, to 16 MiB exactly.
    chunk = "a\u00e9\u4e2d\U0001f600'\"\\ "
    repeat, rest = divmod(SIXTEEN_MIB, len(chunk.encode()))
    big = chunk * repeat + "x" * rest
    assert len(big.encode()) == SIXTEEN_MIB
    run_id = unique("big")

    provenance.create_run(run_id, "hostile:big", {"n": big})
    provenance.record_node_start(run_id, "n", big)
    provenance.complete_node_with_edges(run_id, "n", big, [])
    provenance.finish_run(run_id, "completed", big)
    failed = unique("bigf")
    provenance.create_run(failed, "hostile:big", {})
    provenance.record_node_start(failed, "f", "{}")
    provenance.fail_node_and_finish_run(failed, "f", big)

    run = provenance.get_run(run_id)
    assert run is not None
    assert run["source_inputs_json"] == json.dumps({"n": big})
    assert run["sink_outputs_json"].encode() == big.encode()
    (node,) = provenance.get_node_executions(run_id)
    assert node["input_json"].encode() == big.encode()
    assert node["output_json"].encode() == big.encode()
    (failed_node,) = provenance.get_node_executions(failed)
    assert failed_node["error"].encode() == big.encode()


# --- refused input changes nothing --------------------------------------------------------

Refusal = tuple[type[ProvenanceError], Callable[[DagProvenance, str], object]]
wrong_type = st.one_of(
    st.none(), st.integers(), st.floats(), st.binary(min_size=1), st.lists(st.integers()),
    st.builds(Opaque), st.booleans(),
)  # fmt: skip
bad_status = st.one_of(
    hostile(20).filter(
        lambda s: s not in ("running", "paused", "completed", "failed", "cancelled")
    ),
    st.sampled_from(["Running", "COMPLETED", "completed ", " failed", "running;--", "skipped"]),
)
# text with a NUL (PostgreSQL cannot store one), wherever it falls
unstorable = st.lists(fragment, max_size=3).map(lambda parts: "\x00".join(["x", *parts, ""]))


def refusals() -> st.SearchStrategy[Refusal]:
    """A refused call on the store (given an existing run with a completed node
    'a' -> 'b' and a running node 'r'), and the error it must raise."""
    too_long_run = st.builds(lambda c: c * (RUN_ID_MAX + 1), st.sampled_from(["x", "\U0001f600"]))
    too_long_label = st.builds(lambda c: c * (NODE_LABEL_MAX + 1), st.sampled_from(["y", "\u4e2d"]))
    too_long_nsref = st.builds(lambda c: c * (DAG_NSREF_MAX + 1), st.sampled_from(["z", "'"]))
    return st.one_of(
        # wrong types
        wrong_type.map(lambda v: (InvalidInputError, lambda s, r: s.create_run(v, "ns", {}))),
        wrong_type.map(lambda v: (InvalidInputError, lambda s, r: s.record_node_start(r, v, "{}"))),
        wrong_type.filter(lambda v: v is not None).map(
            lambda v: (InvalidInputError, lambda s, r: s.record_node_start(r, "q", v))
        ),
        wrong_type.filter(lambda v: not isinstance(v, dict)).map(
            lambda v: (InvalidInputError, lambda s, r: s.create_run(r + "!", "ns", v))
        ),
        st.sampled_from(["yes", 1.5, None, [True]]).map(
            lambda v: (InvalidInputError, lambda s, r: s.record_node_start(r, "q", "{}", v))
        ),
        st.sampled_from(["ab", [("a",)], [("a", "b", "c")], [["a", 1]], 7]).map(
            lambda v: (InvalidInputError, lambda s, r: s.complete_node_with_edges(r, "r", "1", v))
        ),
        unstorable.map(lambda v: (InvalidInputError, lambda s, r: s.finish_run(r, "failed", v))),
        unstorable.map(lambda v: (InvalidInputError, lambda s, r: s.create_run(v, "ns", {}))),
        # unknown runs and nodes (hostile ids that exist nowhere)
        hostile(RUN_ID_MAX - 8).map(
            lambda v: (RunNotFoundError, lambda s, r: s.finish_run("nope~" + v, "failed"))
        ),
        hostile(RUN_ID_MAX - 8).map(
            lambda v: (RunNotFoundError, lambda s, r: s.record_node_start("nope~" + v, "a", "{}"))
        ),
        hostile(RUN_ID_MAX - 8).map(
            lambda v: (RunNotFoundError, lambda s, r: s.create_run(r + "c", "ns", {}, "nope~" + v))
        ),
        hostile(NODE_LABEL_MAX - 8).map(
            lambda v: (
                NodeNotFoundError,
                lambda s, r: s.complete_node_with_edges(r, "nope~" + v, "1", []),
            )
        ),
        hostile(NODE_LABEL_MAX - 8).map(
            lambda v: (
                NodeNotFoundError,
                lambda s, r: s.fail_node_and_finish_run(r, "no~" + v, "e"),
            )
        ),
        # duplicates
        hostile(DAG_NSREF_MAX).map(
            lambda v: (DuplicateRunError, lambda s, r: s.create_run(r, v, {}))
        ),
        hostile(NODE_LABEL_MAX).map(
            lambda v: (
                DuplicateEdgeError,
                lambda s, r: s.complete_node_with_edges(r, "r", "1", [("r", v), ("r", v)]),
            )
        ),
        st.just(
            (
                DuplicateEdgeError,
                lambda s, r: s.complete_node_with_edges(r, "a", "1", [("a", "b")]),
            )
        ),
        # over-long identifiers
        too_long_run.map(
            lambda v: (IdentifierTooLongError, lambda s, r: s.create_run(v, "ns", {}))
        ),
        too_long_nsref.map(
            lambda v: (IdentifierTooLongError, lambda s, r: s.create_run(r + "!", v, {}))
        ),
        too_long_label.map(
            lambda v: (IdentifierTooLongError, lambda s, r: s.record_node_start(r, v, "{}"))
        ),
        too_long_label.map(
            lambda v: (
                IdentifierTooLongError,
                lambda s, r: s.complete_node_with_edges(r, "r", "1", [("r", v)]),
            )
        ),
        # invalid statuses
        bad_status.map(lambda v: (InvalidStatusError, lambda s, r: s.update_run_status(r, v))),
        bad_status.map(lambda v: (InvalidStatusError, lambda s, r: s.finish_run(r, v))),
        bad_status.map(lambda v: (InvalidStatusError, lambda s, r: s.get_recent_runs(status=v))),
    )


@on_every_engine
@given(refusal=refusals(), run_part=hostile(RUN_ID_MAX - 20))
def test_a_refused_call_raises_the_librarys_error_and_changes_nothing(
    provenance: DagProvenance, refusal: Refusal, run_part: str
) -> None:
    expected, call = refusal
    run_id = unique("r") + run_part
    provenance.create_run(run_id, "hostile:refused", {})
    provenance.record_node_start(run_id, "a", "{}")
    provenance.complete_node_with_edges(run_id, "a", "1", [("a", "b")])
    provenance.record_node_start(run_id, "r", "{}")
    before = dump_tables(provenance)

    with pytest.raises(ProvenanceError) as raised:
        call(provenance, run_id)

    assert isinstance(raised.value, expected), repr(raised.value)
    assert dump_tables(provenance) == before
    # Errors that come from the database keep the driver's error as their cause.
    if isinstance(raised.value, DuplicateRunError | DuplicateEdgeError):
        assert raised.value.__cause__ is not None
