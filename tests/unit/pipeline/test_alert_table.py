"""The alerts table: one row per episode, never fired twice, resolved once."""

import json
from datetime import UTC, datetime, timedelta

from pipeline.store import open_store
from pipeline.store.alerts import AlertTable

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def row(alert_id="channel:app:chat:1"):
    return {"alert_id": alert_id, "scope_kind": "channel", "scope": "app", "stream": "chat",
            "severity": "warning", "starts_at": T0, "statistic": 5.2,
            "payload": json.dumps({"summary": "negative share 60% vs 30%"})}


def test_an_episode_fires_once_and_resolves_once(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 'a.db'}") as store:
        table = AlertTable(store.engine)
        assert table.fire(row(), T0)
        assert not table.fire(row(), T0 + timedelta(seconds=5))  # a second evaluator, a restart
        assert [r["status"] for r in table.rows(status="firing")] == ["firing"]
        assert table.resolve("channel:app:chat:1", T0 + timedelta(minutes=9), "{}", T0)
        assert not table.resolve("channel:app:chat:1", T0 + timedelta(minutes=10), "{}", T0)
        (resolved,) = table.rows()
        assert resolved["status"] == "resolved" and resolved["ends_at"] == T0 + timedelta(minutes=9)
        assert table.rows(status="firing") == []
