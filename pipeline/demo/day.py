"""The demo's simulated day: event times spread over 24 hours, replayed in a few minutes.

A two-minute replay stamped with the wall clock fills two minutes of event time: Trends,
the ticker and the conversation pages then show a sliver, and alert windows must be
shrunk to seconds.  The demo instead stamps message *k* of *n* at ``start + k/n`` of a
day that ends when the replay is expected to end, so it reads like a day of traffic
(with its injected shift at the same fractions of it) and the alert windows are the
production kind: minutes and hours of event time.

The day ends at the replay's expected end, so no event time lies in the future: message
*k* is sent at the earliest ``k/n`` of the way through the replay (the replay never
outruns its rate), and its event time is ``(1 - k/n) * (day - replay)`` before that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

#: Length of the simulated day, in event-time seconds.
DAY_S = 86_400


@dataclass(frozen=True)
class SimulatedDay:
    """Event times from ``start`` over ``length_s`` seconds, by position in the stream."""

    start: datetime
    length_s: float = DAY_S

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            msg = "the simulated day needs a timezone-aware start"
            raise ValueError(msg)
        if self.length_s <= 0:
            msg = f"length_s must be positive, got {self.length_s}"
            raise ValueError(msg)

    @classmethod
    def ending(cls, end: datetime, length_s: float = DAY_S) -> SimulatedDay:
        """The day of ``length_s`` seconds that ends at ``end``."""
        return cls(end - timedelta(seconds=length_s), length_s)

    @property
    def end(self) -> datetime:
        """The event time of the end of the day."""
        return self.start + timedelta(seconds=self.length_s)

    def at(self, position: float) -> datetime:
        """The event time ``position`` (0 to 1) of the way through the day."""
        return self.start + timedelta(seconds=self.length_s * min(max(position, 0.0), 1.0))

    def speed(self, replay_s: float) -> float:
        """Event-time seconds per wall-clock second when the day is replayed in ``replay_s``."""
        return self.length_s / max(replay_s, 1e-9)
