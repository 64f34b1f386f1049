"""json_default and safe_json_dumps, as lythonic has them."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from lythonic.compose import dag_provenance as lythonic
from pydantic import BaseModel

from dag_provenance import json_default, safe_json_dumps


class Point(BaseModel):
    x: int
    y: int


def test_json_default_dumps_pydantic_models_to_dicts() -> None:
    assert json_default(Point(x=1, y=2)) == {"x": 1, "y": 2}


def test_json_default_turns_anything_else_into_its_str() -> None:
    when = datetime(2030, 1, 1, tzinfo=UTC)
    assert json_default(when) == str(when)
    assert json_default(Decimal("1.50")) == "1.50"


def test_safe_json_dumps_encodes_nested_models_and_odd_values() -> None:
    encoded = safe_json_dumps({"p": [Point(x=1, y=2)], "d": Decimal("2.5"), "n": None})
    assert json.loads(encoded) == {"p": [{"x": 1, "y": 2}], "d": "2.5", "n": None}


def test_safe_json_dumps_stores_the_str_of_what_it_cannot_encode_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop: list[Any] = []
    loop.append(loop)

    with caplog.at_level(logging.WARNING):
        encoded = safe_json_dumps(loop)

    assert json.loads(encoded) == str(loop)
    assert "Failed to serialize" in caplog.text


@pytest.mark.parametrize(
    "value",
    [{"a": [1, 2.5, None, True]}, {"t": "caf\u00e9 \U0001f600"}, Point(x=3, y=4), "x\x00y", 7],
)
def test_safe_json_dumps_matches_lythonic_byte_for_byte(value: Any) -> None:
    assert safe_json_dumps(value) == lythonic.safe_json_dumps(value)
