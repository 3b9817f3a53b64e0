"""The retention applied in the background: one replica purges every ``interval_s``.

:func:`retention_worker` runs :func:`~pipeline.store.retention.purge` in a daemon thread beside
the run loop; a lease row in the store lets one replica at a time do it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from pipeline.errors import StoreError
from pipeline.store.lease import Lease
from pipeline.store.retention import BATCH_ROWS, PurgeReport, Retention, check_batch, purge

log = logging.getLogger(__name__)

#: Name of the lease that lets one replica purge at a time.
LEASE_NAME = "retention"


class RetentionWorker:
    """Applies a retention every ``interval_s`` in a daemon thread; see :func:`retention_worker`.

    Only the holder of the store's ``retention`` lease purges, so replicas do not all
    delete the same rows; the lease outlives two intervals, so a crashed holder is
    replaced within that.  The first purge runs at start: a process restarted more often
    than the interval still purges.  Store failures are logged and retried next interval.
    """

    def __init__(
        self,
        engine: Engine,
        retention: Retention,
        interval_s: float,
        owner: str,
        *,
        batch_size: int = BATCH_ROWS,
        lease_ttl_s: float | None = None,
    ) -> None:
        if not (math.isfinite(interval_s) and interval_s > 0):
            msg = f"interval_s must be > 0, got {interval_s}"
            raise ValueError(msg)
        check_batch(batch_size)
        self._engine = engine
        self._retention = retention
        self._interval_s = interval_s
        self._owner = owner
        self._batch_size = batch_size
        self._ttl_s = lease_ttl_s if lease_ttl_s is not None else max(60.0, 2 * interval_s)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        #: Purges this worker completed, and the last one's report.
        self.runs = 0
        self.last: PurgeReport | None = None

    def start(self) -> None:
        """Start the thread."""
        if self._thread is not None:
            msg = "RetentionWorker already started"
            raise RuntimeError(msg)
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop after the current batch, waiting up to ``timeout`` s; ``True`` if stopped."""
        self._stopping.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        lease: Lease | None = None
        while not self._stopping.is_set():
            try:
                # Made here, not in __init__: a store down at start-up is retried too.
                lease = lease or Lease(self._engine, LEASE_NAME, self._owner, self._ttl_s)
                self._purge_if_leader(lease)
            except StoreError as exc:
                log.warning("purge failed", extra={"error": str(exc)[:300]})
            except Exception:  # a bug must not end retention for the process's lifetime
                log.exception("purge crashed")
            self._stopping.wait(self._interval_s)
        if lease is not None:
            with contextlib.suppress(StoreError):
                lease.release()

    def _purge_if_leader(self, lease: Lease) -> None:
        now = datetime.now(UTC)
        if not lease.acquire(now):
            return
        started = time.monotonic()
        report = purge(
            self._engine,
            self._retention,
            now,
            batch_size=self._batch_size,
            stop=self._stopping,
        )
        self.last = report
        self.runs += 1
        log.info(
            "purge",
            extra={**report.counts(), "duration_s": round(time.monotonic() - started, 3)},
        )


@contextlib.contextmanager
def retention_worker(
    engine: Engine,
    retention: Retention,
    interval_s: float,
    owner: str,
    *,
    batch_size: int = BATCH_ROWS,
    lease_ttl_s: float | None = None,
) -> Iterator[RetentionWorker | None]:
    """Purge every ``interval_s`` in the background until the block exits.

    Yields the running :class:`RetentionWorker`, or ``None`` (no thread) when
    ``interval_s`` is 0 or every period is 0.  ``owner`` names this replica in the
    lease (``host:pid``).  Leaving the block stops the thread within one batch.
    """
    if interval_s <= 0 or retention.keeps_everything:
        yield None
        return
    worker = RetentionWorker(
        engine,
        retention,
        interval_s,
        owner,
        batch_size=batch_size,
        lease_ttl_s=lease_ttl_s,
    )
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
