"""The opt-in raw store as a checkpoint sink: raw text is durable before offsets commit."""

from __future__ import annotations

from pipeline.sinks.base import Record
from pipeline.store.raw import RawDeadLetter, RawEvent, RawStore


class RawSink:
    """Buffers raw rows handed to it by the run loop; ignores the (redacted) records.

    The checkpoint's records are redacted, so the run loop hands the raw side over with
    :meth:`keep_event` / :meth:`keep_dead_letter` when it builds them.
    """

    name = "raw_store"

    def __init__(self, store: RawStore) -> None:
        self._store = store
        self._events: list[RawEvent] = []
        self._letters: list[RawDeadLetter] = []

    def keep_event(self, event: RawEvent) -> None:
        """Buffer one event's raw text."""
        self._events.append(event)

    def keep_dead_letter(self, letter: RawDeadLetter) -> None:
        """Buffer one dead letter's raw value."""
        self._letters.append(letter)

    def add(self, record: Record) -> None:
        """Nothing to do: redacted records go to the other sinks."""

    def flush(self) -> None:
        """Write the buffer; keep it if that fails so a retry loses nothing."""
        if not self._events and not self._letters:
            return
        self._store.write(self._events, self._letters)
        self._events = []
        self._letters = []
