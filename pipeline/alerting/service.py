"""Wire the alert evaluator and the notifier worker from the ``alerts`` settings, as threads.

Every ``attnwatch run`` replica (and ``demo``) starts them; the lease in the store lets one
evaluate.  Alert events go to the ``alerts`` table (the source of truth), the outbox
(notifications) and, through ``publish``, the ``alerts`` topic.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

from pydantic import ValidationError
from sqlalchemy.engine import Engine

from pipeline.alerting.detectors import ShiftSettings
from pipeline.alerting.evaluator import AlertSettings, Evaluator
from pipeline.alerting.model import AlertEvent
from pipeline.alerting.notify import Notifier, NotifierWorker, Receiver
from pipeline.alerting.relay import TopicRelay
from pipeline.alerting.windows import Window
from pipeline.config import AlertingSettings
from pipeline.errors import ConfigError, StoreError
from pipeline.metrics import Metrics
from pipeline.store.outbox import BASE_BACKOFF_S, Outbox

log = logging.getLogger(__name__)

#: How long ``run --idle-exit`` waits for an evaluation in progress before its final one.
FINISH_JOIN_S = 300.0
#: How long an exiting ``run --idle-exit`` spends sending what its final evaluation queued.
DRAIN_S = 30.0
#: How long a claimed alerts-topic row is held by the relay that claimed it (a publish is
#: bounded by the producer's io timeout, well under this).
RELAY_LEASE_S = 60.0
#: Sends one alert event: (key, JSON value).  Failures are logged, never raised.
Publish = Callable[[bytes, bytes], None]


def alert_settings(config: AlertingSettings) -> AlertSettings:
    """The evaluator's settings from the ``alerts`` settings; invalid ones are a ConfigError."""
    try:
        window = Window(
            current_s=config.current_s,
            baseline_s=config.baseline_s,
            lateness_s=config.lateness_s,
            bucket_s=config.bucket_s,
        )
        shift = ShiftSettings(
            z_open=config.z_open,
            z_close=min(1.5, config.z_open / 2),
            min_current=config.min_current,
            min_baseline=config.min_baseline,
            cooldown_s=float(config.current_s),
        )
    except ValueError as exc:
        msg = f"invalid alert settings: {exc}"
        raise ConfigError(msg) from exc
    return AlertSettings(
        window=window,
        shift=shift,
        interval_s=config.interval_s,
        lease_ttl_s=config.lease_ttl_s,
        idle_s=config.idle_s,
        late_after_s=config.late_after_s,
        history=config.history,
    )


class Alerting:
    """The evaluator's background thread; :meth:`finish` evaluates to the final watermark."""

    def __init__(self, evaluator: Evaluator, timeout_s: float = 10.0) -> None:
        self.evaluator = evaluator
        self._timeout_s = timeout_s
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(
            target=evaluator.run, args=(self._stop,), name="alerts", daemon=True
        )

    def start(self) -> None:
        """Start evaluating every ``interval_s``."""
        self._thread.start()

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop the thread (its evaluation in progress finishes first, bounded)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s if timeout_s is not None else self._timeout_s)

    @property
    def finished(self) -> bool:
        """Whether :meth:`finish` ran (the input is over and the process is exiting)."""
        return self._finished

    def finish(self) -> list[AlertEvent]:
        """The input is over (``run --idle-exit``): evaluate up to the final watermark.

        Stops the thread, evaluates every bucket holding an event, gives the lease up, and
        returns the events emitted (none if another replica holds the lease: it goes on).
        """
        self._finished = True
        # An evaluation catching up on a backlog may take a while; it is bounded.
        self.stop(FINISH_JOIN_S)
        if self._thread.is_alive():
            log.warning("alert evaluation still running; final evaluation skipped")
            return []
        # A replica that died holding the lease blocks it for lease_ttl_s: wait that long
        # (bounded) rather than exit with the backlog unevaluated.
        settings = self.evaluator.settings
        deadline = time.monotonic() + settings.lease_ttl_s + 2 * settings.interval_s
        events: list[AlertEvent] = []
        led = False
        try:
            while True:
                events = self.evaluator.evaluate(final=True)
                led = self.evaluator.leading
                if led or time.monotonic() > deadline:
                    break
                time.sleep(min(settings.interval_s, 1.0))
        except StoreError as exc:
            log.warning("final alert evaluation failed", extra={"error": str(exc)[:300]})
            return []
        finally:
            self.evaluator.release()
        if not led:
            log.warning("final alert evaluation skipped: another replica holds the lease")
        log.info("final alert evaluation", extra={"events": len(events), "leading": led})
        return events


def receivers(config: AlertingSettings) -> list[Receiver]:
    """The notifier's receivers from ``alerts.receivers``."""
    try:
        return [Receiver.model_validate(r.model_dump()) for r in config.receivers]
    except ValidationError as exc:
        msg = f"invalid alert_receivers: {exc.errors(include_url=False, include_input=False)}"
        raise ConfigError(msg) from exc


@contextlib.contextmanager
def alerting(
    config: AlertingSettings,
    engine: Engine,
    metrics: Metrics,
    *,
    publish: Publish | None = None,
) -> Iterator[Alerting | None]:
    """Run the evaluator (and the notifier worker, given receivers) until the block exits."""
    if not config.enabled:
        yield None
        return
    configured = receivers(config)
    outbox = Outbox(engine)
    notifier = Notifier(outbox, configured, config.external_url) if configured else None
    worker = (
        NotifierWorker(
            outbox,
            configured,
            max_backoff_s=config.retry_max_s,
            base_backoff_s=min(BASE_BACKOFF_S, config.retry_max_s),
        )
        if configured
        else None
    )

    # The alerts topic is fed through the outbox: a change recorded just before a crash
    # still reaches it (pipeline/alerting/relay.py).
    relay = (
        TopicRelay(outbox, publish, lease_s=RELAY_LEASE_S)
        if publish is not None
        else None
    )

    evaluator = Evaluator(
        engine,
        metrics,
        owner=f"{socket.gethostname()}:{os.getpid()}",
        settings=alert_settings(config),
        notifier=notifier,
        relay=relay,
        on_lead=relay.take_over if relay is not None else None,
    )
    handle = Alerting(evaluator)
    if worker is not None:
        worker.start()
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()
        if relay is not None:
            relay.publish_due()  # what a failed publish left queued, before the producer closes
        if worker is not None:
            if handle.finished:
                # What the final evaluation queued is sent by this process, bounded.
                worker.drain(timeout=DRAIN_S)
            worker.stop(timeout=10.0)
