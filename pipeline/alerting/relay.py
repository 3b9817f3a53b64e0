"""Alert events onto the alerts topic through the store's outbox: none lost to a crash.

The ``alerts`` table is written first; publishing straight after it left a window in which
a process killed between the two recorded a change that never reached the topic (the step
replayed by the next process found the change recorded and handed nothing on).  The relay
queues every recorded change as an outbox row (idempotent per alert, status and topic, so a
replayed step queues what a crash left unqueued and nothing twice), then publishes what is
due and marks it delivered.  A process killed between the publish and the mark publishes
that row again (at-least-once, as Kafka producers are; consumers dedupe on ``alert_id`` and
``status``).  A failed publish stays queued with capped backoff and goes out with the next
change or the exit drain.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from pipeline.alerting.model import AlertEvent
from pipeline.errors import StoreError
from pipeline.store.outbox import Message, Outbox

log = logging.getLogger(__name__)

#: Rows published per call; a backlog of more goes out over the next calls.
BATCH = 100
#: Longest wait before a failed publish is tried again, in seconds.
MAX_BACKOFF_S = 60.0

Publish = Callable[[bytes, bytes], None]


class TopicRelay:
    """Queue each recorded alert change for the alerts topic and publish what is due."""

    #: The topic's name among the outbox's receivers (webhook receivers' names otherwise).
    receiver = "kafka:alerts-topic"

    def __init__(self, outbox: Outbox, publish: Publish, lease_s: float) -> None:
        self._outbox = outbox
        self._publish = publish
        self._lease_s = lease_s

    def __call__(self, event: AlertEvent) -> None:
        """Queue ``event`` (a no-op if it was queued before), then publish what is due."""
        message = Message(
            alert_id=event.alert_id,
            status=event.status,
            receiver=self.receiver,
            payload=json.loads(event.model_dump_json()),
        )
        try:
            self._outbox.enqueue([message])
        except StoreError as exc:
            log.warning("could not queue alert event", extra={"error": str(exc)[:300]})
            return
        self.publish_due()

    def take_over(self) -> int:
        """Publish what a previous leader left claimed or queued; return how many went out.

        Called when this process becomes the alert evaluator: only the leader publishes, so
        a row still held by another claim was left by a leader that is gone (killed between
        claiming and marking it delivered).  Publishing it again is at-least-once, as above.
        """
        try:
            self._outbox.release(self.receiver)
        except StoreError as exc:
            log.warning("alert event outbox unavailable", extra={"error": str(exc)[:300]})
            return 0
        return self.publish_due()

    def publish_due(self) -> int:
        """Publish the queued changes that are due, oldest first; return how many went out."""
        sent = 0
        try:
            rows = self._outbox.claim(self.receiver, BATCH, lease_s=self._lease_s)
            for row in rows:
                try:
                    self._publish(row.alert_id.encode(), json.dumps(row.payload).encode())
                except Exception as exc:  # noqa: BLE001 - kept queued, retried with backoff
                    log.warning("could not publish alert event", extra={"error": str(exc)[:300]})
                    self._outbox.mark_failed(row.id, str(exc), MAX_BACKOFF_S)
                    continue
                self._outbox.mark_delivered(row.id)
                sent += 1
        except StoreError as exc:
            log.warning("alert event outbox unavailable", extra={"error": str(exc)[:300]})
        return sent
