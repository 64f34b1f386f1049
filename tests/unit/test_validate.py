"""Argument checks: bad input is refused before any SQL, naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dag_provenance import (
    IdentifierTooLongError,
    InvalidInputError,
    InvalidStatusError,
    NodeStatus,
    RunStatus,
    validate,
)

STORABLE_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))


# No deadline: a loaded CI machine must not turn a slow example into a failure.
@settings(deadline=None)
@given(STORABLE_TEXT)
def test_text_any_engine_can_store_is_accepted_unchanged(value: str) -> None:
    assert validate.text("field", value) == value


@settings(deadline=None)
@given(STORABLE_TEXT, STORABLE_TEXT)
def test_text_with_a_nul_anywhere_is_refused(before: str, after: str) -> None:
    with pytest.raises(InvalidInputError, match="field contains a NUL"):
        validate.text("field", before + "\x00" + after)


@pytest.mark.parametrize("value", ["\ud800", "ok\udfffok"])
def test_text_with_a_lone_surrogate_is_refused(value: str) -> None:
    with pytest.raises(InvalidInputError, match="field is not valid UTF-8"):
        validate.text("field", value)


@pytest.mark.parametrize("value", [None, 1, b"bytes", ["a"]])
def test_text_of_another_type_is_refused_naming_the_type(value: object) -> None:
    with pytest.raises(InvalidInputError, match=f"field must be a str, got {type(value).__name__}"):
        validate.text("field", value)


def test_identifiers_are_limited_in_characters_not_bytes() -> None:
    assert validate.identifier("run_id", "\U0001f600" * 5, 5) == "\U0001f600" * 5
    with pytest.raises(
        IdentifierTooLongError, match="run_id is 6 characters long; the maximum is 5"
    ):
        validate.identifier("run_id", "x" * 6, 5)
    with pytest.raises(InvalidInputError, match="run_id must not be empty"):
        validate.identifier("run_id", "", 5)


def test_optional_values_may_be_none() -> None:
    assert validate.optional_identifier("parent_run_id", None, 5) is None
    assert validate.payload("output_json", None) is None
    assert validate.payload("output_json", "{}") == "{}"


def test_flags_are_bools_or_ints() -> None:
    assert validate.flag("is_source", True) is True
    assert validate.flag("is_source", 0) is False
    with pytest.raises(InvalidInputError, match="is_source must be a bool, got str"):
        validate.flag("is_source", "true")


def test_mappings_are_refused_unless_dict_like() -> None:
    assert validate.mapping("source_inputs", {"a": 1}) == {"a": 1}
    with pytest.raises(InvalidInputError, match="source_inputs must be a dict, got list"):
        validate.mapping("source_inputs", [("a", 1)])


@pytest.mark.parametrize("status", [*RunStatus, *(s.value for s in RunStatus)])
def test_every_run_status_is_accepted_as_enum_or_string(status: str) -> None:
    checked = validate.run_status(status)
    assert checked == str(status)
    assert type(checked) is str


def test_a_node_status_enum_with_a_run_status_value_is_accepted_as_a_run_status() -> None:
    assert validate.run_status(NodeStatus.FAILED) == "failed"


@pytest.mark.parametrize("status", ["skipped", "pending", "RUNNING", " running", "", None, 1])
def test_other_run_statuses_are_refused_listing_the_allowed_ones(status: object) -> None:
    with pytest.raises(InvalidStatusError) as info:
        validate.run_status(status)
    assert str(info.value).endswith("is not one of running, paused, completed, failed, cancelled")
    assert isinstance(info.value, ValueError)


def test_node_statuses_have_their_own_allowed_values() -> None:
    assert validate.node_status(NodeStatus.SKIPPED) == "skipped"
    with pytest.raises(InvalidStatusError, match="pending, running, completed, failed, skipped"):
        validate.node_status("paused")


def test_status_collections_are_checked_item_by_item() -> None:
    assert validate.run_statuses(("running", RunStatus.FAILED)) == ["running", "failed"]
    assert validate.run_statuses(set()) == []
    with pytest.raises(InvalidStatusError, match="statuses item 'nope'"):
        validate.run_statuses(["running", "nope"])
    with pytest.raises(InvalidInputError, match="statuses must be a collection"):
        validate.run_statuses("running")


def test_edges_are_pairs_of_labels() -> None:
    assert validate.edges([("a", "b"), ["b", "c"]], 10) == [("a", "b"), ("b", "c")]
    assert validate.edges((), 10) == []
    with pytest.raises(InvalidInputError, match=r"edges\[1\] must be an \(upstream, downstream\)"):
        validate.edges([("a", "b"), ("a",)], 10)
    with pytest.raises(IdentifierTooLongError, match=r"edges\[0\] downstream label"):
        validate.edges([("a", "b" * 11)], 10)
    with pytest.raises(InvalidInputError, match="edges must be a list"):
        validate.edges("ab", 10)


@pytest.mark.parametrize("value", [-1, True, 1.0, "3", None])
def test_limits_are_non_negative_ints(value: object) -> None:
    with pytest.raises(InvalidInputError, match="limit must be a non-negative int"):
        validate.limit(value)
    assert validate.limit(0) == 0


def test_datetimes_must_be_timezone_aware() -> None:
    plus_two = datetime(2030, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert validate.aware_datetime("started_after", plus_two) is plus_two
    assert validate.aware_datetime("started_after", datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(InvalidInputError, match="started_after must be timezone-aware"):
        validate.aware_datetime("started_after", datetime(2030, 1, 1))
    with pytest.raises(InvalidInputError, match="started_after must be a datetime, got str"):
        validate.aware_datetime("started_after", "2030-01-01T00:00:00Z")
