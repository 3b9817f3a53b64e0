"""The feed's live updates: server-sent events carrying the rows processed since the last.

Each connection polls the store every ``poll_s`` seconds for events matching the feed's
filter that were processed after the last one it sent (keyset on
``(processed_time, input_id)``), and sends them as one ``rows`` event whose data is
``{"html": ..., "count": n}`` and whose ``id`` is the new position.  A browser's
``EventSource`` reconnects by itself and sends that id back as ``Last-Event-ID``, so a
connection can be short: each ends after ``max_s`` seconds (an ``end`` event first),
which bounds what one client can hold, and as soon as the client goes away.  A comment
line is sent when nothing happened for ``keepalive_s``, so proxies keep the stream open.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import anyio.to_thread
from fastapi.sse import format_sse_event

from dashboards.data.filters import Cursor, EventFilter
from dashboards.data.queries import EventRow, Queries

#: Rows sent per poll at most; a backlog drains over the next polls.
MAX_ROWS_PER_POLL = 100
#: What the browser waits before reconnecting, in ms.
RETRY_MS = 1000


async def live_events(
    queries: Queries,
    f: EventFilter,
    after: Cursor | None,
    render: Callable[[Sequence[EventRow]], str],
    is_disconnected: Callable[[], Awaitable[bool]],
    *,
    poll_s: float = 1.0,
    max_s: float = 300.0,
    keepalive_s: float = 15.0,
) -> AsyncIterator[bytes]:
    """The SSE byte stream of one connection (see the module docstring).

    ``after`` is where to start (``None``: after the newest event processed now);
    ``render`` turns rows (newest first) into the feed's HTML.  Store reads run in a
    worker thread, so a slow store does not stall other requests.
    """
    if after is None:
        after = await anyio.to_thread.run_sync(queries.newest_processed)
    # An id even before any row: a reconnect then resumes here rather than at its own now.
    start_id = after.encode() if after is not None else None
    yield format_sse_event(data_str="{}", event="hello", id=start_id, retry=RETRY_MS)
    deadline = time.monotonic() + max_s
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        if await is_disconnected():
            return
        rows = await anyio.to_thread.run_sync(queries.processed_after, f, after, MAX_ROWS_PER_POLL)
        if rows:
            last = rows[-1]
            after = Cursor(last.processed_time, last.input_id)
            data = {"html": render(list(reversed(rows))), "count": len(rows)}
            yield format_sse_event(
                data_str=json.dumps(data, separators=(",", ":")), event="rows", id=after.encode()
            )
            quiet_since = time.monotonic()
            if len(rows) == MAX_ROWS_PER_POLL:
                continue  # a backlog: fetch the rest without waiting
        elif time.monotonic() - quiet_since >= keepalive_s:
            yield format_sse_event(comment="keepalive")
            quiet_since = time.monotonic()
        await anyio.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
    yield format_sse_event(data_str="{}", event="end", retry=RETRY_MS)
