"""``POST /hooks/alertmanager``: the receiver Alertmanager notifies of operational alerts.

Alertmanager routes the alerts of ``deploy/prometheus/alerts.yml`` here with a
``webhook_config``; each notification's alerts are stored
(:class:`~dashboards.data.ops_alerts.OpsAlertTable`) and shown on ``/alerts``.  The body
is Alertmanager's webhook, payload version 4, validated with the same pydantic models
attnwatch uses to send its own sentiment alerts
(:class:`~pipeline.alerting.payloads.AlertmanagerWebhook`).

The contract, in the order it is checked:

- ``401`` (with ``WWW-Authenticate: Bearer``) when a dashboard token is set and the
  request lacks ``Authorization: Bearer <token>`` (Alertmanager's
  ``http_config.authorization.credentials``).  A browser's session cookie is not enough:
  only machines post here;
- ``403`` for a browser's cross-site post, ``415`` unless ``Content-Type`` is
  ``application/json`` (as Alertmanager sends it): together they keep a page elsewhere from
  posting alerts to a dashboard that runs on loopback without a token;
- ``413`` for a body over :data:`MAX_BODY_BYTES` (refused from ``Content-Length`` or once
  that much has arrived, never read whole);
- ``422`` with the reasons (field and problem, never the values) for a body that is not
  JSON or not a version 4 webhook;
- ``503`` when the store is unavailable, so Alertmanager retries;
- ``200`` ``{"status": "ok", "alerts": n}`` once the alerts are stored.

Each notification is logged as one line (receiver, status, alert names, counts); the token
and the body are never logged.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import SecretStr, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from dashboards.data.ops_alerts import OpsAlertTable
from dashboards.web.auth import BearerToken
from dashboards.web.forms import read_capped, same_origin
from pipeline.alerting.payloads import AlertmanagerWebhook

log = logging.getLogger(__name__)

#: Where Alertmanager posts (its ``webhook_configs[].url`` path).
PATH = "/hooks/alertmanager"
#: Largest notification accepted, in bytes.  Alertmanager's bodies are a few KiB per
#: alert; a group of hundreds of alerts still fits.
MAX_BODY_BYTES = 1 << 20
#: Most validation problems named in a ``422``.
MAX_REASONS = 5
#: Most distinct alert names listed in a log line.
MAX_LOGGED_NAMES = 10


def check_json(request: Request) -> None:
    """Refuse (``415``) a body that is not declared ``application/json``."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        msg = f"Content-Type must be application/json, not {kind or 'missing'!r}"
        raise HTTPException(415, msg)


def parse_notification(body: bytes) -> AlertmanagerWebhook:
    """The webhook in ``body``; ``422`` naming what is wrong (never echoing values)."""
    try:
        return AlertmanagerWebhook.model_validate_json(body)
    except ValidationError as exc:
        problems = exc.errors(include_url=False, include_input=False, include_context=False)
        reasons = [
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in problems[:MAX_REASONS]
        ]
        more = len(problems) - len(reasons)
        if more:
            reasons.append(f"and {more} more")
        msg = "not an Alertmanager webhook (version 4): " + "; ".join(reasons)
        raise HTTPException(422, msg) from None


def log_fields(notification: AlertmanagerWebhook) -> dict[str, Any]:
    """What a log line says about a notification: names, status and counts, no values."""
    names = sorted({a.labels.get("alertname", "") for a in notification.alerts} - {""})
    firing = sum(a.status == "firing" for a in notification.alerts)
    return {
        "receiver": notification.receiver,
        "status": notification.status,
        "alertname": ",".join(names[:MAX_LOGGED_NAMES]),
        "count": len(notification.alerts),
        "firing": firing,
        "resolved": len(notification.alerts) - firing,
        "truncated": notification.truncatedAlerts,
    }


def router(table: OpsAlertTable, token: SecretStr | None) -> APIRouter:
    """The hook's route, storing into ``table`` and guarded by ``token`` when one is set."""
    hooks = APIRouter()
    bearer = BearerToken(
        token, "send Authorization: Bearer <token> (Alertmanager: http_config.authorization)"
    )

    async def require_token(request: Request) -> None:
        try:
            await bearer(request)
        except HTTPException:
            log.warning("alertmanager notification refused", extra={"reason": "no valid token"})
            raise

    @hooks.post(PATH, dependencies=[Depends(require_token)])
    async def alertmanager(request: Request) -> dict[str, Any]:
        same_origin(request)
        check_json(request)
        try:
            body = await read_capped(
                request,
                MAX_BODY_BYTES,
                f"an Alertmanager notification may be at most {MAX_BODY_BYTES} bytes",
            )
            notification = parse_notification(body)
        except HTTPException as exc:
            log.warning(
                "alertmanager notification refused",
                extra={"status_code": exc.status_code, "reason": str(exc.detail)[:300]},
            )
            raise
        stored = await run_in_threadpool(table.record, notification, datetime.now(UTC))
        log.info("alertmanager notification", extra=log_fields(notification))
        return {"status": "ok", "alerts": stored}

    return hooks
