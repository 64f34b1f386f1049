"""Argument checks run before any SQL: bad input never reaches the database.

Each check names the offending field and raises one of the library's
`InvalidInputError` subclasses (also `ValueError`s)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from dag_provenance.errors import IdentifierTooLongError, InvalidInputError, InvalidStatusError
from dag_provenance.status import NodeStatus, RunStatus


def _type_name(value: object) -> str:
    return type(value).__name__


def text(field: str, value: object) -> str:
    """A string every engine stores exactly: no NUL, valid UTF-8."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{field} must be a str, got {_type_name(value)}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidInputError(f"{field} is not valid UTF-8 text: {e.reason}") from e
    if "\x00" in value:
        raise InvalidInputError(f"{field} contains a NUL character, which PostgreSQL cannot store")
    return value


def identifier(field: str, value: object, max_length: int) -> str:
    """A non-empty id or label of at most `max_length` characters."""
    checked = text(field, value)
    if not checked:
        raise InvalidInputError(f"{field} must not be empty")
    if len(checked) > max_length:
        raise IdentifierTooLongError(
            f"{field} is {len(checked)} characters long; the maximum is {max_length}"
        )
    return checked


def optional_identifier(field: str, value: object, max_length: int) -> str | None:
    return None if value is None else identifier(field, value, max_length)


def payload(field: str, value: object) -> str | None:
    return None if value is None else text(field, value)


def flag(field: str, value: object) -> bool:
    if not isinstance(value, bool | int):
        raise InvalidInputError(f"{field} must be a bool, got {_type_name(value)}")
    return bool(value)


def mapping(field: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{field} must be a dict, got {_type_name(value)}")
    return value


def run_status(value: object, field: str = "status") -> str:
    return _status(field, value, RunStatus)


def node_status(value: object, field: str = "status") -> str:
    return _status(field, value, NodeStatus)


def _status(field: str, value: object, allowed: type[RunStatus] | type[NodeStatus]) -> str:
    valid = [s.value for s in allowed]
    if isinstance(value, str) and value in valid:
        return str(value)
    raise InvalidStatusError(f"{field} {value!r} is not one of {', '.join(valid)}")


def run_statuses(value: object) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidInputError(f"statuses must be a collection of statuses, got {value!r}")
    return [run_status(s, "statuses item") for s in value]


def edges(value: object, max_length: int) -> list[tuple[str, str]]:
    """A list of (upstream_label, downstream_label) pairs."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidInputError(
            f"edges must be a list of (upstream, downstream) pairs, got {value!r}"
        )
    checked: list[tuple[str, str]] = []
    for i, pair in enumerate(value):
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise InvalidInputError(
                f"edges[{i}] must be an (upstream, downstream) pair, got {pair!r}"
            )
        checked.append(
            (
                identifier(f"edges[{i}] upstream label", pair[0], max_length),
                identifier(f"edges[{i}] downstream label", pair[1], max_length),
            )
        )
    return checked


def limit(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"limit must be a non-negative int, got {value!r}")
    return value


def aware_datetime(field: str, value: object) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{field} must be a datetime, got {_type_name(value)}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(f"{field} must be timezone-aware, got naive {value.isoformat()}")
    return value


_AGE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*")
_AGE_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def moment(field: str, value: str, now: datetime | None = None) -> datetime:
    """A moment as people type it: an age (`30m`, `2h`, `3d`, `1w` before
    `now`) or an ISO date/datetime (UTC when it has no offset). `field`, if
    given, starts the message of the error."""
    named = f"{field} " if field else ""
    match = _AGE.fullmatch(value)
    if match:
        seconds = float(match[1]) * _AGE_SECONDS[match[2]]
        try:
            return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
        except OverflowError:
            raise InvalidInputError(f"{named}{value!r} reaches before the year 1") from None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInputError(
            f"{named}{value!r} is neither an age (30m, 2h, 3d, 1w) nor an ISO date (2025-01-31)"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
