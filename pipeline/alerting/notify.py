"""Alert notifications: render an alert per receiver into the outbox, deliver it in the background.

:class:`Notifier` is what the evaluator calls: it renders the alert for every
:class:`Receiver` (Alertmanager webhook or Slack) and inserts one outbox row each, nothing
more, so a slow or dead receiver never holds up the evaluation.  :class:`NotifierWorker`
runs one daemon thread per receiver that POSTs the receiver's due rows and marks them
delivered (any 2xx) or failed (anything else, retried with capped exponential backoff,
never dropped).  A thread per receiver keeps a hanging receiver from delaying the others.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from pipeline.alerting.model import AlertEvent
from pipeline.alerting.payloads import alertmanager_payload, slack_payload
from pipeline.errors import StoreError
from pipeline.store.outbox import BASE_BACKOFF_S, Message, Outbox, OutboxRow

log = logging.getLogger(__name__)

#: A claimed row's lease beyond the POST's timeout: time to record the outcome.
LEASE_MARGIN_S = 5.0
#: Most bytes read of a receiver's response (only its first line is kept on failure).
MAX_RESPONSE_BYTES = 64 * 1024
_USER_AGENT = "attnwatch-notifier"


class Receiver(BaseModel):
    """Where notifications go: a name (the outbox key), an http(s) URL, a format, a timeout."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, description="Receiver name, as in the payload.")
    # repr=False: a Slack webhook URL is a secret.
    url: HttpUrl = Field(repr=False, description="URL the payload is POSTed to.")
    format: Literal["alertmanager", "slack"] = Field("alertmanager", description="Payload format.")
    timeout_s: float = Field(10.0, gt=0, le=300, description="Socket timeout of one POST.")


class Notifier:
    """Queues every alert for every receiver; never talks to a receiver itself."""

    def __init__(self, outbox: Outbox, receivers: Sequence[Receiver], external_url: str) -> None:
        names = [r.name for r in receivers]
        if len(set(names)) != len(names):
            msg = f"receiver names must be unique, got {names}"
            raise ValueError(msg)
        self._outbox = outbox
        self._receivers = tuple(receivers)
        self._external_url = external_url

    def notify(self, event: AlertEvent) -> int:
        """Queue ``event`` for every receiver; return how many notifications are new.

        Only inserts outbox rows (one transaction), so it takes as long as a store write
        whatever the receivers do.  Queuing the same alert and status again is a no-op.
        Raises :class:`~pipeline.errors.StoreError` if the store cannot be written.
        """
        messages = [
            Message(
                alert_id=event.alert_id,
                status=event.status,
                receiver=receiver.name,
                payload=render(event, receiver, self._external_url),
            )
            for receiver in self._receivers
        ]
        return self._outbox.enqueue(messages)


def render(event: AlertEvent, receiver: Receiver, external_url: str) -> dict[str, Any]:
    """The JSON body ``receiver`` gets for ``event``."""
    if receiver.format == "slack":
        return slack_payload(event).model_dump(mode="json")
    return alertmanager_payload(event, receiver.name, external_url).model_dump(mode="json")


class NotifierWorker:
    """Background delivery of the outbox: one daemon thread per receiver.

    ``start()`` starts the threads, ``stop(timeout)`` asks them to finish the POST in
    progress and waits.  Rows of receivers not given here stay queued.
    """

    def __init__(
        self,
        outbox: Outbox,
        receivers: Sequence[Receiver],
        *,
        max_backoff_s: float = 300.0,
        base_backoff_s: float = BASE_BACKOFF_S,
        poll_interval_s: float = 1.0,
        batch_size: int = 20,
    ) -> None:
        if not 0 < base_backoff_s <= max_backoff_s:
            msg = f"need 0 < base_backoff_s <= max_backoff_s, got {base_backoff_s}, {max_backoff_s}"
            raise ValueError(msg)
        if poll_interval_s <= 0 or batch_size < 1:
            msg = "poll_interval_s must be positive and batch_size at least 1"
            raise ValueError(msg)
        self._outbox = outbox
        self._receivers = tuple(receivers)
        self._max_backoff_s = max_backoff_s
        self._base_backoff_s = base_backoff_s
        self._poll_interval_s = poll_interval_s
        self._batch_size = batch_size
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start one delivery thread per receiver."""
        if self._threads:
            msg = "NotifierWorker already started"
            raise RuntimeError(msg)
        self._stopping.clear()
        for receiver in self._receivers:
            thread = threading.Thread(
                target=self._run, args=(receiver,), name=f"notify-{receiver.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the threads, waiting up to ``timeout`` s in all; ``True`` if all stopped.

        A POST in progress is not interrupted; it ends within its receiver's timeout.
        """
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stopped = not any(t.is_alive() for t in self._threads)
        if stopped:
            self._threads = []
        return stopped

    def drain(self, timeout: float) -> int:
        """Deliver every row due now once, within ``timeout`` s; return how many were tried.

        For a process about to exit (``run --idle-exit``): what its final evaluation queued
        is sent now rather than by whichever process starts next.  A row that fails is due
        again later (its backoff), so each row is tried at most once here.
        """
        deadline = time.monotonic() + timeout
        attempted = 0
        for receiver in self._receivers:
            while time.monotonic() < deadline:
                try:
                    tried = self.deliver_due(receiver)
                except StoreError as exc:
                    log.warning("notification outbox unavailable", extra={"error": str(exc)})
                    return attempted
                attempted += tried
                if tried == 0:
                    break
        return attempted

    def deliver_due(self, receiver: Receiver) -> int:
        """POST ``receiver``'s due rows once; return how many were attempted."""
        rows = self._outbox.claim(
            receiver.name, self._batch_size, lease_s=receiver.timeout_s + LEASE_MARGIN_S
        )
        attempted = 0
        for row in rows:
            if self._stopping.is_set():
                break  # the rest are due again when their lease ends
            self._deliver(receiver, row)
            attempted += 1
        return attempted

    def _deliver(self, receiver: Receiver, row: OutboxRow) -> None:
        error = post_json(str(receiver.url), row.payload, receiver.timeout_s)
        if error is None:
            self._outbox.mark_delivered(row.id)
            log.info(
                "notification delivered",
                extra={
                    "receiver": receiver.name,
                    "alert_id": row.alert_id,
                    "status": row.status,
                    "attempts": row.attempts + 1,
                },
            )
            return
        due = self._outbox.mark_failed(
            row.id, error, self._max_backoff_s, base_backoff_s=self._base_backoff_s
        )
        log.warning(
            "notification failed, will retry",
            extra={
                "receiver": receiver.name,
                "alert_id": row.alert_id,
                "status": row.status,
                "attempts": row.attempts + 1,
                "error": error,
                "next_attempt_at": due.isoformat() if due else None,
            },
        )

    def _run(self, receiver: Receiver) -> None:
        while not self._stopping.is_set():
            try:
                attempted = self.deliver_due(receiver)
            except StoreError as exc:
                log.warning("notification outbox unavailable", extra={"error": str(exc)})
                attempted = 0
            except Exception:
                # A thread that dies here would silently end all notifications to this
                # receiver; log the bug and keep going.
                log.exception("notification worker error", extra={"receiver": receiver.name})
                attempted = 0
            if attempted == 0:
                self._stopping.wait(self._poll_interval_s)


# One client for every receiver thread (httpx clients are thread-safe and pool connections).
# Redirects are not followed: a redirected webhook is a misconfiguration to see, not to chase.
_client = httpx.Client(follow_redirects=False, headers={"User-Agent": _USER_AGENT})


def post_json(url: str, payload: Any, timeout_s: float) -> str | None:
    """POST ``payload`` as JSON; ``None`` on a 2xx answer, else why it failed.

    ``timeout_s`` bounds connecting, writing and each read; a redirect counts as a failure.
    The reason never contains the URL (Slack's URLs are secrets).
    """
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    try:
        with _client.stream(
            "POST",
            url,
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=httpx.Timeout(timeout_s),
        ) as response:
            head = _read_at_most(response, MAX_RESPONSE_BYTES)
            status = response.status_code
    except httpx.TimeoutException:
        return f"timed out after {timeout_s:g} s"
    except httpx.ConnectError as exc:
        return f"unreachable: {exc}"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if 200 <= status < 300:
        return None
    # The first line of an error response's body: Slack says what was wrong there.
    lines = head[:200].decode("utf-8", "replace").strip().splitlines()
    return f"HTTP {status}" + (f": {lines[0]}" if lines else "")


def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    """Up to ``limit`` bytes of the body; a receiver streaming forever cannot fill memory."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]
