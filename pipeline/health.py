"""Liveness and readiness of a running consumer, for ``/healthz`` and ``/readyz``.

The run loop owns a :class:`Health`: it calls :meth:`Health.beat` once per iteration and
:meth:`Health.set` whenever a component changes state.  ``Metrics.serve(..., health=...)``
answers the probes from it on the metrics port:

- ``/healthz``: 200 ``{"alive": true}`` while the loop has beaten within
  ``liveness_timeout_s`` (or has not started beating yet), else 503 ``{"alive": false}``;
- ``/readyz``: 200 when every component in :attr:`Health.COMPONENTS` is ok, else 503; the
  body is :meth:`Health.snapshot` in both cases.

Given a ``Metrics``, ``Health.set`` also keeps two gauges, defined with every other name in
``pipeline.metrics``: ``attnwatch_ready`` (1 when every component is ok, else 0) and
``attnwatch_component_up{component}`` (1 or 0 per component; all start at 0).

Details are served without authentication: they must say *why* (an exception class, a broker
address, a partition count), never carry message text.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.metrics import Metrics

#: Longest detail kept; probes are polled often and their bodies should stay small.
MAX_DETAIL_CHARS = 200
NOT_REPORTED = "not reported yet"


@dataclass(frozen=True)
class _State:
    ok: bool
    detail: str
    since: datetime


class Health:
    """Thread-safe component states, set by the run loop, read by the HTTP server."""

    COMPONENTS = ("model", "assignment", "broker", "store")

    def __init__(
        self,
        *,
        liveness_timeout_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
    ) -> None:
        """Start with every component not ready and no beat yet.

        ``liveness_timeout_s`` must exceed the longest healthy iteration of the run loop
        (a full micro-batch through the model plus the commit).  ``clock`` measures it
        (seconds, monotonic).  ``metrics``, if given, gets the readiness gauges.
        """
        if not liveness_timeout_s > 0:
            msg = f"liveness_timeout_s must be > 0, got {liveness_timeout_s}"
            raise ValueError(msg)
        self._timeout = liveness_timeout_s
        self._clock = clock
        self._metrics = metrics
        self._lock = threading.Lock()
        self._last_beat: float | None = None
        started = datetime.now(UTC)
        self._states = {name: _State(False, NOT_REPORTED, started) for name in self.COMPONENTS}
        if metrics is not None:
            for name in self.COMPONENTS:
                metrics.component_up.labels(component=name).set(0)
            metrics.ready.set(0)

    def set(self, component: str, ok: bool, detail: str = "") -> None:
        """Record ``component``'s state; ``since`` moves only when ``ok`` changes.

        ``detail`` is a short reason for operators (cut to ``MAX_DETAIL_CHARS``), never
        message text.  An unknown ``component`` raises ``ValueError``.
        """
        if component not in self.COMPONENTS:
            msg = f"unknown health component {component!r}; expected one of {self.COMPONENTS}"
            raise ValueError(msg)
        detail = detail[:MAX_DETAIL_CHARS]
        with self._lock:
            previous = self._states[component]
            since = previous.since if previous.ok == ok else datetime.now(UTC)
            self._states[component] = _State(ok, detail, since)
            ready = self._all_ok()
            # Under the lock so that concurrent set() calls cannot leave the gauges
            # disagreeing with the states.
            if self._metrics is not None:
                self._metrics.component_up.labels(component=component).set(1 if ok else 0)
                self._metrics.ready.set(1 if ready else 0)

    def beat(self) -> None:
        """Mark the run loop as alive now; call it every iteration."""
        now = self._clock()
        with self._lock:
            self._last_beat = now

    def alive(self) -> bool:
        """True if ``beat()`` was called within ``liveness_timeout_s``.

        Before the first beat the process is still starting (loading the model, joining
        the group) and counts as alive: slow start-up shows as not ready, and Kubernetes'
        ``startupProbe`` or ``initialDelaySeconds`` bounds it.
        """
        with self._lock:
            last = self._last_beat
        return last is None or self._clock() - last <= self._timeout

    def ready(self) -> bool:
        """True when every component has been set ok."""
        with self._lock:
            return self._all_ok()

    def snapshot(self) -> dict[str, object]:
        """``{"alive", "ready", "components": {name: {"ok", "detail", "since"}}}``, JSON-ready.

        ``since`` is ISO-8601 UTC: when the component last changed between ok and not ok
        (or when this ``Health`` was made, for a component not reported yet).
        """
        alive = self.alive()
        with self._lock:
            states = dict(self._states)
            ready = self._all_ok()
        return {
            "alive": alive,
            "ready": ready,
            "components": {
                name: {"ok": s.ok, "detail": s.detail, "since": s.since.isoformat()}
                for name, s in states.items()
            },
        }

    def _all_ok(self) -> bool:
        return all(s.ok for s in self._states.values())
