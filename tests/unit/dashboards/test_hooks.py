"""Alertmanager's webhook receiver: stored once per alert, shown on /alerts, guarded, bounded."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from attnwatch.cli.dashboard import dashboard_app
from dashboards.data.ops_alerts import MAX_VALUE_CHARS, OpsAlertTable, ops_alerts_table
from dashboards.web.auth import SESSION_COOKIE, session_value
from dashboards.web.hooks import MAX_BODY_BYTES, PATH
from pipeline.alerting.payloads import AlertmanagerWebhook, fingerprint
from pipeline.config import DashboardSettings
from pipeline.errors import StoreError
from pipeline.store import open_store

TOKEN = "s3cret-token-0123456789abcdef"
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 (the bind being checked; nothing listens)
STARTS = "2026-11-26T09:14:07.123456789Z"  # nanoseconds, as Alertmanager writes them
ENDS = "2026-11-26T09:44:37.5Z"
ZERO = "0001-01-01T00:00:00Z"
RUNBOOK = "https://github.com/attnwatch/attnwatch/blob/main/docs/operations.md#attnwatchprocessingstalled"
STALLED = {"alertname": "AttnwatchProcessingStalled", "severity": "critical", "topic": "chat"}
JSON = {"content-type": "application/json"}


def am_alert(
    labels: dict[str, str], status: str = "firing", starts: str = STARTS, **annotations: str
) -> dict[str, Any]:
    """One alert as Alertmanager writes it into a webhook body."""
    return {
        "status": status,
        "labels": labels,
        "annotations": {
            "summary": f"attnwatch handles nothing from {labels.get('topic', '?')} "
            "while 412 messages wait",
            "description": "Topic chat has a backlog but no message was enriched.",
            "runbook_url": RUNBOOK,
            **annotations,
        },
        "startsAt": starts,
        "endsAt": ENDS if status == "resolved" else ZERO,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=attnwatch_consumer_lag&g0.tab=1",
        "fingerprint": fingerprint(labels),
    }


def body(*alerts: dict[str, Any], truncated: int = 0) -> dict[str, Any]:
    """A version 4 webhook body, as Alertmanager POSTs it to a ``webhook_config``."""
    first = alerts[0]
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return {
        "receiver": "attnwatch-dashboard",
        "status": status,
        "alerts": list(alerts),
        "groupLabels": {"alertname": first["labels"]["alertname"]},
        "commonLabels": first["labels"] if len(alerts) == 1 else {},
        "commonAnnotations": first["annotations"] if len(alerts) == 1 else {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": '{}:{alertname="AttnwatchProcessingStalled"}',
        "truncatedAlerts": truncated,
    }


def ops_rows(page: str) -> list[tuple[str, str, str]]:
    """``(status, fingerprint, row HTML)`` of each operational alert, in page order."""
    found = re.findall(
        r'<tr class="ops-alert" data-status="([^"]+)" data-fingerprint="([^"]+)">(.*?)</tr>',
        page,
        re.S,
    )
    return [(s, f, html) for s, f, html in found]


def count_rows(store_url: str) -> int:
    with open_store(store_url) as store:
        return OpsAlertTable(store.engine).count()


@pytest.fixture
def guarded(settings) -> Iterator[TestClient]:
    exposed = settings.model_copy(
        update={"dashboard": DashboardSettings(host=ALL_INTERFACES, token=SecretStr(TOKEN))}
    )
    with TestClient(dashboard_app(exposed)) as client:
        yield client


def test_firing_then_resolved_is_one_row_shown_as_firing_then_resolved(client, store_url):
    firing = client.post(PATH, json=body(am_alert(STALLED)))
    assert firing.status_code == 200 and firing.json() == {"status": "ok", "alerts": 1}
    page = client.get("/alerts").text
    assert "Operational alerts (Alertmanager)" in page
    [(status, fp, html)] = ops_rows(page)
    assert (status, fp) == ("firing", fingerprint(STALLED))
    assert "AttnwatchProcessingStalled" in html and "critical" in html
    assert "attnwatch handles nothing from chat while 412 messages wait" in html
    assert f'href="{RUNBOOK}"' in html
    assert 'datetime="2026-11-26T09:14:07.123456+00:00"' in html  # since, in UTC
    assert "1 firing" in page

    resolved = client.post(PATH, json=body(am_alert(STALLED, status="resolved")))
    assert resolved.status_code == 200
    assert count_rows(store_url) == 1
    page = client.get("/alerts").text
    [(status, fp, html)] = ops_rows(page)
    assert (status, fp) == ("resolved", fingerprint(STALLED))
    assert 'datetime="2026-11-26T09:44:37.500000+00:00"' in html  # when it resolved
    assert "0 firing, 1 recently resolved" in page


def test_repeated_notifications_do_not_duplicate_rows(client, store_url):
    lag = {"alertname": "AttnwatchConsumerLagHigh", "severity": "warning", "topic": "news"}
    notification = body(am_alert(STALLED), am_alert(lag))
    for _ in range(3):  # every repeat_interval, and a retried delivery
        assert client.post(PATH, json=notification).status_code == 200
    assert count_rows(store_url) == 2
    # A new episode of the same labels starts later: a row of its own.
    later = am_alert(STALLED, starts="2026-11-26T11:00:00Z")
    assert client.post(PATH, json=body(later)).status_code == 200
    assert count_rows(store_url) == 3
    rows = ops_rows(client.get("/alerts").text)
    assert [s for s, _, _ in rows] == ["firing"] * 3
    # Most severe first: both critical episodes (newest first) before the warning.
    assert ["AttnwatchProcessingStalled" in h for _, _, h in rows] == [True, True, False]


def test_the_status_filter_applies_to_operational_alerts(client):
    lag = {"alertname": "AttnwatchConsumerLagHigh", "severity": "warning", "topic": "news"}
    client.post(PATH, json=body(am_alert(STALLED), am_alert(lag, status="resolved")))
    assert [s for s, _, _ in ops_rows(client.get("/alerts?status=firing").text)] == ["firing"]
    assert [s for s, _, _ in ops_rows(client.get("/alerts?status=resolved").text)] == ["resolved"]
    assert [s for s, _, _ in ops_rows(client.get("/alerts").text)] == ["firing", "resolved"]
    assert "(Alertmanager)</a>: 1 recently resolved." in client.get("/alerts?status=resolved").text
    assert "(Alertmanager)</a>: 1 firing." in client.get("/alerts?status=firing").text


def test_replicas_and_restarts_see_the_same_alerts(client, settings):
    client.post(PATH, json=body(am_alert(STALLED)))
    with TestClient(dashboard_app(settings)) as other:
        assert [s for s, _, _ in ops_rows(other.get("/alerts").text)] == ["firing"]
        other.post(PATH, json=body(am_alert(STALLED, status="resolved")))
    assert [s for s, _, _ in ops_rows(client.get("/alerts").text)] == ["resolved"]


def test_with_a_token_the_hook_needs_the_bearer_header(guarded, store_url):
    notification = body(am_alert(STALLED))
    missing = guarded.post(PATH, json=notification)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    wrong = guarded.post(PATH, json=notification, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    # A browser session is for reading pages; only the token itself may post alerts.
    guarded.cookies.set(SESSION_COOKIE, session_value(SecretStr(TOKEN)))
    assert guarded.post(PATH, json=notification).status_code == 401
    assert count_rows(store_url) == 0
    right = guarded.post(PATH, json=notification, headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200 and count_rows(store_url) == 1


def encoded(notification: dict[str, Any], **alert_changes: str) -> bytes:
    """``notification`` as bytes, its first alert's fields changed as given."""
    first = {**notification["alerts"][0], **alert_changes}
    return json.dumps({**notification, "alerts": [first]}).encode()


FIRING = body(am_alert(STALLED))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "Invalid JSON"),
        (b"\xff\xfe\x00garbage", "Invalid JSON"),
        (b"[]", "body:"),
        (json.dumps({**FIRING, "version": "3"}).encode(), "version"),
        (json.dumps({k: v for k, v in FIRING.items() if k != "alerts"}).encode(), "alerts: Field"),
        (encoded(FIRING, fingerprint="XYZ"), "alerts.0.fingerprint"),
        (encoded(FIRING, startsAt="yesterday"), "alerts.0.startsAt"),
        (encoded(FIRING, startsAt="2026-11-26T09:14:07"), "timezone"),
        (encoded(FIRING, status="pending"), "alerts.0.status"),
    ],
)
@pytest.mark.slow
def test_a_malformed_body_is_422_with_a_reason(client, store_url, content, reason):
    response = client.post(PATH, content=content, headers=JSON)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("not an Alertmanager webhook (version 4): ") and reason in detail
    assert "XYZ" not in detail and "yesterday" not in detail  # values are not echoed
    assert count_rows(store_url) == 0


def test_an_oversized_body_is_413_declared_or_streamed(client, store_url):
    padding = "x" * MAX_BODY_BYTES
    big = json.dumps(body(am_alert(STALLED, padding=padding))).encode()
    declared = client.post(PATH, content=big, headers=JSON)
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused once too much arrived
        for start in range(0, len(big), 65_536):
            yield big[start : start + 65_536]

    streamed = client.post(PATH, content=chunks(), headers=JSON)
    assert streamed.status_code == 413
    assert count_rows(store_url) == 0


def test_only_json_from_this_site_is_accepted(client, store_url):
    text = json.dumps(body(am_alert(STALLED)))
    # A page elsewhere can post text/plain without a preflight; never JSON.
    plain = client.post(PATH, content=text, headers={"content-type": "text/plain"})
    assert plain.status_code == 415
    cross = client.post(PATH, content=text, headers={**JSON, "sec-fetch-site": "cross-site"})
    assert cross.status_code == 403
    assert count_rows(store_url) == 0


def test_an_unavailable_store_is_503_so_alertmanager_retries(client, monkeypatch):
    def down(*_: object) -> int:
        msg = "recording Alertmanager alerts: database is locked"
        raise StoreError(msg)

    monkeypatch.setattr(OpsAlertTable, "record", down)
    response = client.post(PATH, json=body(am_alert(STALLED)))
    assert response.status_code == 503 and "unavailable" in response.json()["detail"]


def test_each_notification_is_one_log_line_without_secrets(guarded, caplog):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    lag = {"alertname": "AttnwatchConsumerLagHigh", "severity": "warning", "topic": "news"}
    with caplog.at_level(logging.INFO, logger="dashboards.web.hooks"):
        guarded.post(PATH, json=body(am_alert(STALLED), am_alert(lag), truncated=2), headers=auth)
        guarded.post(PATH, content=b"{", headers={**auth, **JSON})
    [line] = [r for r in caplog.records if r.getMessage() == "alertmanager notification"]
    fields = vars(line)
    assert fields["alertname"] == "AttnwatchConsumerLagHigh,AttnwatchProcessingStalled"
    assert (fields["status"], fields["count"], fields["firing"], fields["resolved"]) == (
        "firing",
        2,
        2,
        0,
    )
    assert fields["truncated"] == 2 and fields["receiver"] == "attnwatch-dashboard"
    [refused] = [r for r in caplog.records if r.getMessage() == "alertmanager notification refused"]
    assert vars(refused)["status_code"] == 422
    for record in caplog.records:
        assert TOKEN not in json.dumps(vars(record), default=str)


def test_unsafe_links_and_markup_are_not_rendered(client):
    hostile = am_alert(
        {"alertname": "Injected", "severity": "info"},
        summary="<script>alert(1)</script>",
        runbook_url="javascript:alert(1)",
    )
    hostile["generatorURL"] = "javascript:alert(2)"
    assert client.post(PATH, json=body(hostile)).status_code == 200
    [(_, _, html)] = ops_rows(client.get("/alerts").text)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "javascript:" not in html and "runbook" not in html


def test_the_row_bound_holds_firing_first(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 'bound.db'}") as store:
        table = OpsAlertTable(store.engine, max_rows=3)
        now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
        stalled = AlertmanagerWebhook.model_validate(body(am_alert(STALLED)))
        table.record(stalled, now)
        for n in range(5):  # five episodes of another alert, each resolved
            labels = {"alertname": "AttnwatchNotReady", "severity": "warning", "pod": f"p{n}"}
            done = am_alert(labels, status="resolved", starts=f"2026-11-26T0{n}:00:00Z")
            notification = AlertmanagerWebhook.model_validate(body(done))
            table.record(notification, now + timedelta(minutes=n + 1))
            assert table.count() <= 3
        assert [a.fingerprint for a in table.firing(10)] == [fingerprint(STALLED)]
        # The two most recently notified resolved alerts stay.
        assert [a.labels["pod"] for a in table.resolved(10)] == ["p4", "p3"]
        with pytest.raises(ValueError, match="at least 1"):
            OpsAlertTable(store.engine, max_rows=0)


def test_long_values_are_cut_to_keep_rows_small(client, store_url):
    long = am_alert(STALLED, description="d" * (3 * MAX_VALUE_CHARS))
    assert client.post(PATH, json=body(long)).status_code == 200
    with open_store(store_url) as store:
        [alert] = OpsAlertTable(store.engine).firing(10)
    assert len(alert.annotations["description"]) == MAX_VALUE_CHARS
    assert alert.annotations["description"].endswith("…")


@pytest.mark.integration
def test_upsert_and_bound_on_postgresql(postgres_url):
    with open_store(postgres_url) as store:
        empty = ops_alerts_table.delete()  # the table is the migrated store's
        with store.engine.begin() as conn:
            conn.execute(empty)
        try:
            table = OpsAlertTable(store.engine, max_rows=2)
            now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
            firing = AlertmanagerWebhook.model_validate(body(am_alert(STALLED)))
            table.record(firing, now)
            table.record(firing, now + timedelta(minutes=1))
            assert table.count() == 1
            assert table.firing(10)[0].last_received == now + timedelta(minutes=1)
            resolved = AlertmanagerWebhook.model_validate(body(am_alert(STALLED, "resolved")))
            table.record(resolved, now + timedelta(minutes=2))
            [done] = table.resolved(10)
            assert done.ends_at == datetime(2026, 11, 26, 9, 44, 37, 500000, tzinfo=UTC)
            assert done.first_received == now and table.firing(10) == []
            for n in range(3):
                labels = {"alertname": "AttnwatchNotReady", "severity": "warning", "pod": f"p{n}"}
                table.record(
                    AlertmanagerWebhook.model_validate(body(am_alert(labels))),
                    now + timedelta(minutes=3 + n),
                )
            assert table.count() == 2 and table.resolved(10) == []
            assert sorted(a.labels["pod"] for a in table.firing(10)) == ["p1", "p2"]
        finally:
            with store.engine.begin() as conn:
                conn.execute(empty)
