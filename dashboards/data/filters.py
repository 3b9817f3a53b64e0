"""Request parameters, parsed and checked before any query runs.

Everything a dashboard URL can say about which events to show becomes an
:class:`EventFilter`, a :class:`Cursor` or a time window here; anything that cannot be used
raises :class:`BadParameter`, which the app answers with ``400`` and the message (never a
``500``).  Times without a zone are read as UTC, because the pages label every time UTC and
an HTML ``datetime-local`` control sends none.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Self

from pydantic import TypeAdapter, ValidationError

from pipeline.schema import EARLIEST_TS, LATEST_TS, Ticker

#: The streams (``events.kind``) a filter may name.
STREAMS = ("chat", "news")
#: Longest value accepted for a free-text or label parameter.
MAX_PARAMETER_CHARS = 200
#: Named windows of the time-range selectors, newest end first.
WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT_WINDOW = "24h"
#: The range preset meaning "the data's own time range" (the default where there is data).
DATA_RANGE = "data"
#: Longest span the data's own range shows, back from the newest event.
MAX_DATA_RANGE = timedelta(days=30)

_TICKER: TypeAdapter[str] = TypeAdapter(Ticker)


class BadParameter(ValueError):
    """A request parameter the dashboard cannot use; its message says which and why."""


def _text(value: str | None, name: str) -> str | None:
    """``value`` stripped, ``None`` when empty; too long a value is refused."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > MAX_PARAMETER_CHARS:
        msg = f"{name} is longer than {MAX_PARAMETER_CHARS} characters"
        raise BadParameter(msg)
    if "\x00" in value:
        # PostgreSQL refuses NUL in text: it would be a store error, not a bad request.
        msg = f"{name} contains a NUL character"
        raise BadParameter(msg)
    return value


def parse_time(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 time as aware UTC (no zone: UTC); ``None`` when empty."""
    value = _text(value, name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except ValueError:
        msg = f"{name} {value!r} is not an ISO 8601 time such as 2026-11-26T08:00:00Z"
        raise BadParameter(msg) from None
    except OverflowError:
        moment = None  # year 1 or 9999 with an offset that points past datetime's range
    if moment is None or not EARLIEST_TS <= moment <= LATEST_TS:
        msg = f"{name} must be from {EARLIEST_TS.isoformat()} to {LATEST_TS.isoformat()}"
        raise BadParameter(msg)
    return moment


def parse_stream(value: str | None) -> str | None:
    """``chat``, ``news`` or ``None`` (both); anything else is refused."""
    value = _text(value, "stream")
    if value is None or value == "all":
        return None
    if value not in STREAMS:
        msg = f"unknown stream {value!r}: use chat, news or all"
        raise BadParameter(msg)
    return value


def parse_ticker(value: str | None) -> str | None:
    """A ticker symbol as the input schema allows it (upper-cased); ``None`` when empty."""
    value = _text(value, "ticker")
    if value is None:
        return None
    try:
        return _TICKER.validate_python(value.upper())
    except ValidationError:
        msg = f"ticker {value!r} is not a symbol such as NWB or BRK.B"
        raise BadParameter(msg) from None


def check_range(since: datetime | None, until: datetime | None) -> None:
    """Refuse a time range that ends before (or when) it starts."""
    if since is not None and until is not None and since >= until:
        msg = f"bad time range: since {since.isoformat()} is not before until {until.isoformat()}"
        raise BadParameter(msg)


@dataclass(frozen=True)
class EventFilter:
    """Which events a page, export or live stream shows; ``None`` fields do not filter.

    ``since`` is inclusive and ``until`` exclusive (event time, aware UTC); ``ticker``
    matches a symbol in the event's ``tickers``; ``text`` is a case-insensitive substring
    of the message, ``%`` and ``_`` taken literally.
    """

    stream: str | None = None
    channel: str | None = None
    intent: str | None = None
    sentiment: str | None = None
    ticker: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None

    @classmethod
    def parse(
        cls,
        *,
        stream: str | None = None,
        channel: str | None = None,
        intent: str | None = None,
        sentiment: str | None = None,
        ticker: str | None = None,
        source: str | None = None,
        since: str | None = None,
        until: str | None = None,
        q: str | None = None,
    ) -> Self:
        """Build a filter from query-string values; raises :class:`BadParameter`."""
        start, end = parse_time(since, "since"), parse_time(until, "until")
        check_range(start, end)
        return cls(
            stream=parse_stream(stream),
            channel=_text(channel, "channel"),
            intent=_text(intent, "intent"),
            sentiment=_text(sentiment, "sentiment"),
            ticker=parse_ticker(ticker),
            source=_text(source, "source"),
            since=start,
            until=end,
            text=_text(q, "q"),
        )

    def params(self) -> dict[str, str]:
        """The filter as query-string values (the names :meth:`parse` takes)."""
        out: dict[str, str] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            name = "q" if field.name == "text" else field.name
            out[name] = value.isoformat() if isinstance(value, datetime) else str(value)
        return out


@dataclass(frozen=True)
class Cursor:
    """A keyset position: a time and the ``input_id`` that breaks ties at that time.

    The feed pages by ``(event_time, input_id)`` downwards, the live stream by
    ``(processed_time, input_id)`` upwards; the token is opaque to clients.
    """

    time: datetime
    input_id: str

    def encode(self) -> str:
        """The URL-safe token of this position."""
        raw = json.dumps([self.time.astimezone(UTC).isoformat(), self.input_id])
        return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, token: str | None, name: str = "cursor") -> Self | None:
        """The position a token names; ``None`` when empty; raises :class:`BadParameter`."""
        token = _text(token, name)
        if token is None:
            return None
        msg = f"malformed {name}: use the link the page gave"
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            moment, input_id = json.loads(raw.decode("utf-8"))
            when = datetime.fromisoformat(moment)
            if when.tzinfo is None or not isinstance(input_id, str) or not input_id:
                raise BadParameter(msg)
            return cls(when.astimezone(UTC), input_id)
        except (binascii.Error, ValueError, TypeError, OverflowError):
            raise BadParameter(msg) from None


@dataclass(frozen=True)
class Window:
    """A time window of a chart page, and the name of the preset it came from (if any)."""

    start: datetime
    end: datetime
    preset: str | None

    @property
    def seconds(self) -> float:
        """The window's length in seconds."""
        return (self.end - self.start).total_seconds()


def wants_data_range(preset: str | None, since: datetime | None, until: datetime | None) -> bool:
    """Whether :func:`parse_window` would use the data's own range (so read it first)."""
    return (preset or "").strip() in ("", DATA_RANGE) and since is None and until is None


def parse_window(
    preset: str | None,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
    data: tuple[datetime, datetime] | None = None,
) -> Window:
    """The window of a chart page: ``since``/``until`` if given, else a preset ending now.

    With neither and no preset (or the preset ``data``), the window is ``data``: the
    first and last event time of the data shown (at most :data:`MAX_DATA_RANGE`), so a
    replay or a backfill of last week is on screen without picking a range; with no data,
    the default preset.  ``since`` without ``until`` runs to ``now``; ``until`` without
    ``since`` takes the preset's length back from ``until``.  Raises :class:`BadParameter`.
    """
    name = _text(preset, "range") or ""
    if name in ("", DATA_RANGE) and since is None and until is None and data is not None:
        first, last = data
        end = last + timedelta(seconds=1)  # ``until`` is exclusive: the last event shows
        return Window(max(first, end - MAX_DATA_RANGE), end, DATA_RANGE)
    if name in ("", DATA_RANGE):
        name = DEFAULT_WINDOW
    if name not in WINDOWS:
        msg = f"unknown range {name!r}: use one of {', '.join((DATA_RANGE, *WINDOWS))}"
        raise BadParameter(msg)
    end = until if until is not None else now
    if since is None:
        return Window(end - WINDOWS[name], end, name)
    if since >= end:
        msg = f"bad time range: since {since.isoformat()} is not before {end.isoformat()}"
        raise BadParameter(msg)
    return Window(since, end, None)
