"""The app's guard: beyond loopback it needs a token, refuses to start without one."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from attnwatch.cli.dashboard import dashboard_app
from pipeline.config import DashboardSettings, StoreSettings
from pipeline.errors import ConfigError, StoreError

TOKEN = "s3cret-token-0123456789abcdef"
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 (the bind being checked; nothing listens)


def test_a_non_loopback_app_without_a_token_is_refused(settings):
    for token in (None, SecretStr("")):
        exposed = settings.model_copy(
            update={"dashboard": DashboardSettings(host=ALL_INTERFACES, token=token)}
        )
        with pytest.raises(ConfigError, match="not a loopback"):
            dashboard_app(exposed)


def test_a_short_token_is_refused(settings):
    exposed = settings.model_copy(
        update={"dashboard": DashboardSettings(host=ALL_INTERFACES, token=SecretStr("short"))}
    )
    with pytest.raises(ConfigError, match="shorter than 16"):
        dashboard_app(exposed)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/api/events",
        "/trends",
        "/alerts",
        "/model",
        "/export.csv",
        "/corrections.csv",
        "/vendor/plotly.min.js",
        "/static/live.js",
        "/events/stream",
    ],
)
def test_with_a_token_every_page_needs_it(settings, path):
    exposed = settings.model_copy(
        update={"dashboard": DashboardSettings(host=ALL_INTERFACES, token=SecretStr(TOKEN))}
    )
    with TestClient(dashboard_app(exposed, live_max_s=0.1)) as client:
        refused = client.get(path)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "customer" not in refused.text
        wrong = client.get(path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        allowed = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert allowed.status_code == 200


def test_health_needs_no_token_and_posts_do(settings):
    exposed = settings.model_copy(
        update={"dashboard": DashboardSettings(host=ALL_INTERFACES, token=SecretStr(TOKEN))}
    )
    with TestClient(dashboard_app(exposed)) as client:
        assert client.get("/healthz").status_code == 200
        form = {"task": "sentiment", "label": "positive", "analyst": "a"}
        assert client.post("/events/chat:0/corrections", data=form).status_code == 401


def test_a_token_on_loopback_is_required_too(settings):
    guarded = settings.model_copy(update={"dashboard": DashboardSettings(token=SecretStr(TOKEN))})
    with TestClient(dashboard_app(guarded)) as client:
        assert client.get("/").status_code == 401


def test_a_store_that_cannot_be_opened_fails_at_start(settings):
    broken = settings.model_copy(update={"store": StoreSettings(url="mysql://nowhere/db")})
    with pytest.raises(StoreError, match="unsupported store URL"):
        dashboard_app(broken)


def test_an_unreachable_store_answers_503(settings, tmp_path, monkeypatch):
    with TestClient(dashboard_app(settings)) as client:
        from dashboards.data.queries import Queries

        def down(self, *args, **kwargs):
            raise StoreError("could not read store: disk I/O error")

        monkeypatch.setattr(Queries, "feed", down)
        monkeypatch.setattr(Queries, "ping", down)
        response = client.get("/")
        assert response.status_code == 503 and "unavailable" in response.json()["detail"]
        assert client.get("/healthz").status_code == 503
