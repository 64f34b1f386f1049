"""Recorded payloads as the viewer shows them: JSON pretty-printed, and cut
at `PREVIEW_CHARS` unless the whole is asked for."""

from __future__ import annotations

import asyncio
import json

from dag_provenance.web.schemas import Payload

PREVIEW_CHARS = 64 * 1024
"""Characters of a payload shown until the whole is asked for."""
PRETTY_MAX_CHARS = 8 * 1024 * 1024
"""Larger payloads are shown as recorded: re-indenting them costs seconds."""
_OFF_LOOP_CHARS = 256 * 1024


def shown(raw: str | None, full: bool) -> Payload:
    """`raw` as shown: pretty-printed if it is JSON (and not huge), cut at
    `PREVIEW_CHARS` unless `full`."""
    if raw is None:
        return Payload(text=None, chars=0, truncated=False, is_json=False)
    text, is_json = raw, False
    if len(raw) <= PRETTY_MAX_CHARS:
        try:
            text = json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
            is_json = True
        except (ValueError, RecursionError):
            pass
    cut = not full and len(text) > PREVIEW_CHARS
    return Payload(
        text=text[:PREVIEW_CHARS] if cut else text, chars=len(text), truncated=cut, is_json=is_json
    )


async def shown_async(raw: str | None, full: bool) -> Payload:
    """`shown`, on a worker thread for a large payload (the event loop serves
    other requests meanwhile)."""
    if raw is not None and len(raw) > _OFF_LOOP_CHARS:
        return await asyncio.to_thread(shown, raw, full)
    return shown(raw, full)


__all__ = ["PREVIEW_CHARS", "shown", "shown_async"]
