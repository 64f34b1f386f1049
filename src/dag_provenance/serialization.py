"""JSON helpers for recording provenance payloads, as lythonic has them."""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import BaseModel

_log = logging.getLogger(__name__)


def json_default(obj: Any) -> Any:
    """JSON serialization fallback for Pydantic models and other types."""
    if isinstance(obj, BaseModel):
        return obj.model_dump()
    return str(obj)


def safe_json_dumps(obj: Any) -> str:
    """JSON serialize with Pydantic support. Logs a warning and stores `str(obj)`
    as a JSON string when the object cannot be encoded."""
    try:
        return json.dumps(obj, default=json_default)
    except Exception:
        _log.warning("Failed to serialize to JSON: %s", type(obj).__name__, exc_info=True)
        return json.dumps(str(obj))
